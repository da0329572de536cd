/* Progress of long runs: the thread's callback and the current phase
 * (core/progress.h). */
#include "core/progress.h"
#include "core/internal.h"

#include <string.h>

typedef struct {
    hr_progress_phase_fn thread_fn; /* hr_set_progress_callback */
    void *thread_ud;
    hr_progress_run cur; /* the innermost run and its phase */
} progress_state;

static _Thread_local progress_state g_progress;

void hr_set_progress_callback(hr_progress_phase_fn fn, void *user_data) {
    g_progress.thread_fn = fn;
    g_progress.thread_ud = user_data;
}

void hr_progress_enter(hr_progress_run *saved, hr_progress_phase_fn fn, void *user_data, int n_steps) {
    hr_progress_run *c = &g_progress.cur;
    *saved = *c;
    if (c->depth == 0) {
        c->fn = g_progress.thread_fn;
        c->user_data = g_progress.thread_ud;
        c->step = 0;
        c->n_steps = n_steps > 0 ? n_steps : 0;
    }
    if (fn) {
        c->fn = fn;
        c->user_data = user_data;
    }
    c->depth++;
}

void hr_progress_leave(const hr_progress_run *saved) {
    hr_progress_run *c = &g_progress.cur;
    int step = c->step;
    bool own = c->fn != saved->fn || c->user_data != saved->user_data; /* the inner run named its own callback */
    *c = *saved;
    if (c->depth > 0 && !own) c->step = step; /* the outer run goes on counting its inner runs' phases */
}

static hr_status report(void) {
    hr_progress_run *c = &g_progress.cur;
    if (!c->fn) return HR_OK;
    hr_progress_info info = {
        c->phase ? c->phase : "", c->unit ? c->unit : "items", c->done, c->total, c->step, c->n_steps};
    if (info.n_steps && info.step > info.n_steps) info.n_steps = info.step; /* never "step 5 of 4" */
    if (c->fn(&info, c->user_data) == 0) return HR_OK;
    return hr_err(HR_ERR_ABORTED, "%s: stopped by the progress callback after %lld of %lld %s", info.phase,
                  (long long)c->done, (long long)c->total, info.unit);
}

hr_status hr_progress_phase(const char *phase, const char *unit, int64_t total) {
    hr_progress_run *c = &g_progress.cur;
    c->phase = phase;
    c->unit = unit;
    c->total = total > 0 ? total : 1;
    c->done = 0;
    c->step++;
    return report();
}

hr_status hr_progress_update(int64_t done) {
    hr_progress_run *c = &g_progress.cur;
    c->done = done < 0 ? 0 : done > c->total ? c->total : done;
    return report();
}
