/* hr_bench_train: time of headroom's training step (forward + backward +
 * clipping + AdamW over every weight) for bench/bench_train.sh.
 *
 *   hr_bench_train MODEL --ids FILE --window W --windows K [--bos 1]
 *                  [--threads T] [--repeats R]
 *
 * FILE holds whitespace-separated token ids (no BOS); the stream is BOS +
 * ids. One step = K windows of W tokens (batch K), full training, lr 1e-3,
 * clip 1. After one warm-up step, R steps are timed one by one; prints
 *   RESULT what=train_step seconds=<best> cpu_seconds=<best> tokens_per_s=<K*W/best>
 * (cpu_seconds: the process's CPU time, all threads).
 */
#include "headroom/train.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(clockid_t id) {
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int main(int argc, char **argv) {
    const char *model = NULL, *ids_path = NULL;
    int W = 256, K = 4, bos = 1, threads = 2, repeats = 3;
    for (int i = 1; i < argc; i++) {
        if (argv[i][0] != '-') {
            model = argv[i];
            continue;
        }
        if (i + 1 >= argc) goto usage;
        const char *a = argv[i], *v = argv[++i];
        if (!strcmp(a, "--ids")) ids_path = v;
        else if (!strcmp(a, "--window")) W = atoi(v);
        else if (!strcmp(a, "--windows")) K = atoi(v);
        else if (!strcmp(a, "--bos")) bos = atoi(v);
        else if (!strcmp(a, "--threads")) threads = atoi(v);
        else if (!strcmp(a, "--repeats")) repeats = atoi(v);
        else goto usage;
    }
    if (!model || !ids_path || repeats < 1) goto usage;
    FILE *f = fopen(ids_path, "r");
    size_t n = 1, cap = 4096;
    int32_t *ids = malloc(cap * sizeof *ids); // (cap) BOS + text ids
    if (!f || !ids) goto usage;
    ids[0] = bos;
    for (int v; fscanf(f, "%d", &v) == 1;) {
        if (n == cap && !(ids = realloc(ids, (cap *= 2) * sizeof *ids))) return 1;
        ids[n++] = v;
    }
    fclose(f);
    hr_model *m = NULL;
    hr_train *t = NULL;
    hr_train_params p = hr_train_default_params();
    p.full = true, p.window = W, p.batch = K, p.steps = repeats + 1, p.n_threads = threads;
    if (hr_model_load(model, &m) != HR_OK || hr_train_new(m, ids, n, &p, &t) != HR_OK) {
        fprintf(stderr, "hr_bench_train: %s\n", hr_last_error());
        return 1;
    }
    double best = 1e30, best_cpu = 1e30;
    for (int s = 0; s <= repeats; s++) {
        double t0 = now(CLOCK_MONOTONIC), c0 = now(CLOCK_PROCESS_CPUTIME_ID);
        if (hr_train_step(t) != HR_OK) {
            fprintf(stderr, "hr_bench_train: %s\n", hr_last_error());
            return 1;
        }
        double dt = now(CLOCK_MONOTONIC) - t0, dc = now(CLOCK_PROCESS_CPUTIME_ID) - c0;
        if (s > 0 && dt < best) best = dt;
        if (s > 0 && dc < best_cpu) best_cpu = dc;
    }
    printf("RESULT what=train_step seconds=%.5f cpu_seconds=%.5f tokens_per_s=%.1f\n", best, best_cpu, K * W / best);
    hr_train_free(t);
    hr_model_free(m);
    free(ids);
    return 0;
usage:
    fprintf(stderr, "usage: hr_bench_train MODEL --ids FILE --window W --windows K [--threads T] [--repeats R]\n");
    return 2;
}
