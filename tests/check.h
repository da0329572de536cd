/* Minimal test harness: each test is a function whose name reads as a
 * sentence; CHECK records failures without stopping the test. */
#ifndef HR_TEST_CHECK_H
#define HR_TEST_CHECK_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static int hr_t_failures;
static int hr_t_run;
static const char *hr_t_current;

#define CHECK(cond, ...)                                                        \
    do {                                                                        \
        if (!(cond)) {                                                          \
            hr_t_failures++;                                                    \
            fprintf(stderr, "  FAIL %s:%d in %s: %s — ", __FILE__, __LINE__,    \
                    hr_t_current, #cond);                                       \
            fprintf(stderr, __VA_ARGS__);                                       \
            fprintf(stderr, "\n");                                              \
        }                                                                       \
    } while (0)

#define RUN(test)                                                               \
    do {                                                                        \
        int before_ = hr_t_failures;                                            \
        hr_t_current = #test;                                                   \
        hr_t_run++;                                                             \
        test();                                                                 \
        printf("%s %s\n", hr_t_failures == before_ ? "ok  " : "FAIL", #test);   \
        fflush(stdout);                                                         \
    } while (0)

#define TEST_MAIN_END()                                                         \
    do {                                                                        \
        printf("%d tests, %d failed checks\n", hr_t_run, hr_t_failures);       \
        return hr_t_failures ? 1 : 0;                                           \
    } while (0)

/* Max |a-b| over n floats, printed with a label; returns it. */
static inline double hr_t_maxdiff(const char *label, const float *a, const float *b, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (isnan(d)) { m = INFINITY; break; } /* NaN reads as a failure */
        if (d > m) m = d;
    }
    printf("    %s: max abs diff %.3g over %zu values\n", label, m, n);
    return m;
}

#define SHARED(rel) HR_SHARED_DIR "/" rel

#endif
