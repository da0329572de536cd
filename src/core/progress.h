/* Progress of long runs (see headroom/common.h): one home for the
 * callback, the phase and the abort message. A run brackets its work with
 * hr_progress_enter / hr_progress_leave (runs nest: an inner run's phases
 * are steps of the outer run and go to the outer run's callback unless it
 * names its own), starts each phase with hr_progress_phase and reports
 * items with hr_progress_update. Thread-local: runs on different threads
 * never see each other's phases. */
#ifndef HR_CORE_PROGRESS_H
#define HR_CORE_PROGRESS_H

#include "headroom/common.h"

/* What hr_progress_enter saves and hr_progress_leave restores. */
typedef struct {
    hr_progress_phase_fn fn;
    void *user_data;
    int depth, step, n_steps;
    const char *phase, *unit;
    int64_t done, total;
} hr_progress_run;

/* Starts a run. fn NULL keeps the current callback (the outer run's, else
 * the thread's). n_steps (phases the run will start; 0 = unknown) counts
 * only for the outermost run: inner runs' phases continue its numbering. */
void hr_progress_enter(hr_progress_run *saved, hr_progress_phase_fn fn, void *user_data, int n_steps);
/* Ends the run started with `saved`, restoring the outer state. The
 * outer run's step count includes the inner run's phases unless the inner
 * run named its own callback (its phases were not the outer run's). */
void hr_progress_leave(const hr_progress_run *saved);

/* Starts the next phase of total items (total < 1 counts as 1) and
 * reports done = 0. HR_ERR_ABORTED when the callback asks to stop. */
hr_status hr_progress_phase(const char *phase, const char *unit, int64_t total);
/* Reports done items of the current phase. HR_ERR_ABORTED (with a message
 * naming the phase and done / total) when the callback asks to stop. */
hr_status hr_progress_update(int64_t done);

#endif
