/* A small fork-join thread pool: the caller and n_threads-1 workers split
 * n_tasks between them. Workers spin briefly after a job (decode issues
 * hundreds of short jobs per token) and then sleep on a condition variable,
 * so an idle pool costs no CPU. */
#ifndef HR_POOL_H
#define HR_POOL_H

#include "headroom/common.h"

typedef struct hr_pool hr_pool;

/* task(arg, i) for i in [0, n_tasks); tasks run concurrently. */
typedef void (*hr_pool_task)(void *arg, int i);

/* n_threads >= 1 (1 = no worker threads). *out owned: hr_pool_free(). */
hr_status hr_pool_new(int n_threads, hr_pool **out);
void hr_pool_free(hr_pool *p); /* NULL ok */
int hr_pool_n_threads(const hr_pool *p);
/* Runs all tasks and returns when every one has finished. */
void hr_pool_run(hr_pool *p, hr_pool_task task, void *arg, int n_tasks);

#endif
