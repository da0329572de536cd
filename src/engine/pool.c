#include "engine/pool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

#include "core/internal.h"

struct hr_pool {
    int n_threads;
    pthread_t *threads; /* (n_threads - 1) */
    pthread_mutex_t mu;
    pthread_cond_t wake;
    pthread_cond_t done_cv;
    atomic_uint generation; /* bumped per job; workers wait for a change */
    /* Claims: task count in the high half, next index in the low half, in
     * one word so that a claim is always decoded against the job it was made
     * in. (With separate counters a worker late from the previous job could
     * claim an index of that job's counter and check it against the next
     * job's count, running a task twice.) Between jobs the count is 0. */
    _Atomic uint64_t ticket;
    atomic_int remaining; /* tasks not yet finished */
    atomic_int sleeping;  /* workers blocked on `wake` */
    hr_pool_task task;
    void *arg;
    atomic_int quit; /* set once by hr_pool_free; workers read it outside the mutex too */
};

static void drain(hr_pool *p) {
    for (;;) {
        uint64_t t = atomic_fetch_add(&p->ticket, 1);
        uint32_t i = (uint32_t)t, n = (uint32_t)(t >> 32);
        if (i >= n) break; /* job finished or between jobs: claims nothing */
        /* A valid claim keeps its job running (remaining > 0), so task and
         * arg still hold that job's values. */
        p->task(p->arg, (int)i);
        if (atomic_fetch_sub(&p->remaining, 1) == 1) {
            pthread_mutex_lock(&p->mu);
            pthread_cond_broadcast(&p->done_cv);
            pthread_mutex_unlock(&p->mu);
        }
    }
}

enum { SPIN_ITERS = 20000 };

static void *worker(void *vp) {
    hr_pool *p = vp;
    unsigned seen = atomic_load(&p->generation);
    for (;;) {
        int spins = 0;
        while (atomic_load_explicit(&p->generation, memory_order_acquire) == seen && spins < SPIN_ITERS) {
            spins++;
#if defined(__x86_64__)
            __builtin_ia32_pause();
#endif
        }
        if (atomic_load_explicit(&p->generation, memory_order_acquire) == seen) {
            pthread_mutex_lock(&p->mu);
            atomic_fetch_add(&p->sleeping, 1);
            while (atomic_load(&p->generation) == seen && !atomic_load(&p->quit)) pthread_cond_wait(&p->wake, &p->mu);
            atomic_fetch_sub(&p->sleeping, 1);
            int quit = atomic_load(&p->quit);
            pthread_mutex_unlock(&p->mu);
            if (quit) return NULL;
        }
        seen = atomic_load(&p->generation);
        if (atomic_load(&p->quit)) return NULL;
        drain(p);
    }
}

hr_status hr_pool_new(int n_threads, hr_pool **out) {
    *out = NULL;
    if (n_threads < 1) n_threads = 1;
    hr_pool *p = calloc(1, sizeof *p);
    if (!p) return hr_err(HR_ERR_NOMEM, "out of memory");
    p->n_threads = n_threads;
    atomic_store(&p->ticket, 0);
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->wake, NULL);
    pthread_cond_init(&p->done_cv, NULL);
    if (n_threads > 1) {
        p->threads = calloc((size_t)n_threads - 1, sizeof *p->threads);
        if (!p->threads) {
            hr_pool_free(p);
            return hr_err(HR_ERR_NOMEM, "out of memory");
        }
        for (int i = 0; i < n_threads - 1; i++) {
            if (pthread_create(&p->threads[i], NULL, worker, p) != 0) {
                p->n_threads = i + 1; /* only join the ones that started */
                hr_pool_free(p);
                return hr_err(HR_ERR_NOMEM, "cannot start worker thread");
            }
        }
    }
    *out = p;
    return HR_OK;
}

void hr_pool_free(hr_pool *p) {
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    atomic_store(&p->quit, 1);
    atomic_fetch_add(&p->generation, 1);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    if (p->threads)
        for (int i = 0; i < p->n_threads - 1; i++) pthread_join(p->threads[i], NULL);
    free(p->threads);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->wake);
    pthread_cond_destroy(&p->done_cv);
    free(p);
}

int hr_pool_n_threads(const hr_pool *p) { return p->n_threads; }

void hr_pool_run(hr_pool *p, hr_pool_task task, void *arg, int n_tasks) {
    if (n_tasks <= 0) return;
    if (p->n_threads == 1 || n_tasks == 1) {
        for (int i = 0; i < n_tasks; i++) task(arg, i);
        return;
    }
    p->task = task;
    p->arg = arg;
    atomic_store(&p->remaining, n_tasks);
    atomic_store(&p->ticket, (uint64_t)(uint32_t)n_tasks << 32);
    atomic_fetch_add_explicit(&p->generation, 1, memory_order_release);
    if (atomic_load(&p->sleeping) > 0) {
        pthread_mutex_lock(&p->mu);
        pthread_cond_broadcast(&p->wake);
        pthread_mutex_unlock(&p->mu);
    }
    drain(p);
    /* Spin for stragglers first: jobs are short. */
    for (int spins = 0; atomic_load(&p->remaining) > 0 && spins < SPIN_ITERS; spins++) {
#if defined(__x86_64__)
        __builtin_ia32_pause();
#endif
    }
    if (atomic_load(&p->remaining) > 0) {
        pthread_mutex_lock(&p->mu);
        while (atomic_load(&p->remaining) > 0) pthread_cond_wait(&p->done_cv, &p->mu);
        pthread_mutex_unlock(&p->mu);
    }
    atomic_store(&p->ticket, 0);
}
