#include "engine/blas.h"

#include <stddef.h>

#include "core/internal.h"

#if HR_HAVE_BLAS
#include <cblas.h>
#endif

bool hr_blas_available(void) { return HR_HAVE_BLAS != 0; }

hr_status hr_blas_use_in_pool(void) {
#if HR_HAVE_BLAS
    openblas_set_num_threads(1);
    return HR_OK;
#else
    return hr_err(HR_ERR_UNSUPPORTED, "built without OpenBLAS: batched products through BLAS (blas_prefill, "
                                      "ppl --blas) are unavailable; install libopenblas-dev and rebuild with "
                                      "-DHR_BLAS=ON");
#endif
}

void hr_sgemm_nt(float *y, int ldy, const float *x, const float *w, int n, int d_in, int d_out) {
#if HR_HAVE_BLAS
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, d_out, d_in, 1.0f, x, d_in, w, d_in, 0.0f, y, ldy);
#else
    for (int t = 0; t < n; t++) {
        const float *xt = x + (size_t)t * d_in; // (d_in)
        float *yt = y + (size_t)t * ldy;        // (d_out)
        for (int r = 0; r < d_out; r++) {
            const float *wr = w + (size_t)r * d_in; // (d_in)
            float s = 0.0f;
            for (int k = 0; k < d_in; k++) s += wr[k] * xt[k];
            yt[r] = s;
        }
    }
#endif
}
