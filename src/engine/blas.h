/* OpenBLAS, the one place that calls it. The build may leave it out
 * (CMake -DHR_BLAS=OFF, or OpenBLAS not found: HR_HAVE_BLAS 0); then only
 * the blas_prefill path is unsupported and every other product runs on the
 * plain loops below. */
#ifndef HR_BLAS_H
#define HR_BLAS_H

#include <stdbool.h>

#include "headroom/common.h"

/* Whether this build links OpenBLAS. */
bool hr_blas_available(void);

/* Prepares OpenBLAS for products made inside the thread pool's tasks
 * (hr_context_params.blas_prefill): the pool owns all parallelism, so
 * OpenBLAS is set to one thread. openblas_set_num_threads is process-wide,
 * which is why only contexts that ask for the blas path call this.
 * HR_ERR_UNSUPPORTED ("built without OpenBLAS") when the build has none. */
hr_status hr_blas_use_in_pool(void);

/* y (n, ldy; first d_out columns written) = x (n, d_in) · W^T, with W
 * (d_out, d_in) row-major: cblas_sgemm, or without OpenBLAS a plain loop
 * (float sums over k in order; not bit-identical to the packed kernels). */
void hr_sgemm_nt(float *y, int ldy, const float *x, const float *w, int n, int d_in, int d_out);

#endif
