/* Minimal test harness: each test is a function whose name reads as a
 * sentence; CHECK records failures without stopping the test. */
#ifndef HR_TEST_CHECK_H
#define HR_TEST_CHECK_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int hr_t_failures;
static int hr_t_run;
static const char *hr_t_current;

#define CHECK(cond, ...)                                                                                               \
    do {                                                                                                               \
        if (!(cond)) {                                                                                                 \
            hr_t_failures++;                                                                                           \
            fprintf(stderr, "  FAIL %s:%d in %s: %s — ", __FILE__, __LINE__, hr_t_current, #cond);                     \
            fprintf(stderr, __VA_ARGS__);                                                                              \
            fprintf(stderr, "\n");                                                                                     \
        }                                                                                                              \
    } while (0)

#define RUN(test)                                                                                                      \
    do {                                                                                                               \
        int before_ = hr_t_failures;                                                                                   \
        hr_t_current = #test;                                                                                          \
        hr_t_run++;                                                                                                    \
        test();                                                                                                        \
        printf("%s %s\n", hr_t_failures == before_ ? "ok  " : "FAIL", #test);                                          \
        fflush(stdout);                                                                                                \
    } while (0)

#define TEST_MAIN_END()                                                                                                \
    do {                                                                                                               \
        printf("%d tests, %d failed checks\n", hr_t_run, hr_t_failures);                                               \
        return hr_t_failures ? 1 : 0;                                                                                  \
    } while (0)

/* Max |a-b| over n floats, printed with a label; returns it. */
static inline double hr_t_maxdiff(const char *label, const float *a, const float *b, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (isnan(d)) {
            m = INFINITY;
            break;
        } /* NaN reads as a failure */
        if (d > m) m = d;
    }
    printf("    %s: max abs diff %.3g over %zu values\n", label, m, n);
    return m;
}

#define SHARED(rel) HR_SHARED_DIR "/" rel

/* ctest's skip code (the SKIP_RETURN_CODE property of every test). */
#define HR_T_SKIP 77

/* Whether this is a CI run (the CI environment sets CI=true). */
static inline int hr_t_in_ci(void) {
    const char *ci = getenv("CI");
    return ci && *ci && strcmp(ci, "false") != 0 && strcmp(ci, "0") != 0;
}

/* The shared data files a test needs (paths relative to ../shared, NULL
 * ends the list), checked first in main(): when one is missing the test
 * fails in CI and is skipped locally (exit 77) — never a silent pass. */
static inline void hr_t_require_shared_list(const char *const *rel) {
    for (; *rel; rel++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", HR_SHARED_DIR, *rel);
        if (access(path, R_OK) == 0) continue;
        if (hr_t_in_ci()) {
            fprintf(stderr, "FAIL: shared data %s is missing (CI=true: required)\n", path);
            exit(1);
        }
        printf("SKIP: shared data %s is missing\n", path);
        exit(HR_T_SKIP);
    }
}
#define HR_T_REQUIRE_SHARED(...) hr_t_require_shared_list((const char *const[]){__VA_ARGS__, NULL})

/* A fresh scratch folder /tmp/hr_<name>.XXXXXX, written into dir (cap
 * bytes); 0 on success, reported on stderr otherwise. */
static inline int hr_t_scratch_dir(char *dir, size_t cap, const char *name) {
    snprintf(dir, cap, "/tmp/hr_%s.XXXXXX", name);
    if (mkdtemp(dir)) return 0;
    perror("mkdtemp");
    return -1;
}

/* Removes a scratch folder and everything in it (kept when HR_KEEP is set). */
static inline void hr_t_rm_rf(const char *dir) {
    if (getenv("HR_KEEP")) return;
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", dir);
}

#endif
