/* Run-time kernel paths (src/engine/kernels_isa.h): every path this CPU
 * supports is forced in turn; each kernel is checked against its scalar
 * reference (the fmaf chain for the products: bit for bit; double / libm
 * references for the rest, tolerances stated) and all paths against each
 * other bit for bit; stories260K's logits are the same bits on every path,
 * and prefill = decode and pruned = gated hold on each. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "engine/grad/grad_kernels.h"
#include "engine/kernels.h"
#include "engine/kernels_isa.h"
#include "engine/pool.h"
#include "headroom/context.h"
#include "headroom/model.h"
#include "headroom/prune.h"
#include "headroom/save.h"
#include "model/config.h"
#include "model/model_internal.h"
#include "study/prune/surgery_internal.h"
#include "typed_util.h"

static const char *const k_names[HR_CPU_N_PATHS] = {"scalar", "avx2", "avx512"};
static uint32_t g_seed = 12345;

static float frand(void) { /* uniform in [-1, 1) */
    g_seed = g_seed * 1664525u + 1013904223u;
    return (float)((g_seed >> 8) & 0xFFFFFF) / 8388608.0f - 1.0f;
}

static float *rand_buf(size_t n, float scale) {
    float *p = aligned_alloc(64, ((n * sizeof(float)) + 63) & ~(size_t)63);
    for (size_t i = 0; i < n; i++) p[i] = frand() * scale;
    return p;
}

/* Bitwise equality of n floats (NaN patterns included); prints the count. */
static size_t n_bits_differ(const float *a, const float *b, size_t n) {
    size_t d = 0;
    for (size_t i = 0; i < n; i++) d += memcmp(a + i, b + i, sizeof(float)) != 0;
    return d;
}

static int n_supported(void) {
    int n = 0;
    for (int k = 0; k < HR_CPU_N_PATHS; k++) n += hr_cpu_supports((hr_cpu_kind)k);
    return n;
}

static void each_supported_path_can_be_forced_and_others_are_refused(void) {
    printf("    this CPU runs: ");
    for (int k = 0; k < HR_CPU_N_PATHS; k++)
        if (hr_cpu_supports((hr_cpu_kind)k)) printf("%s ", k_names[k]);
    printf("(default %s)\n", hr_cpu_path());
    CHECK(hr_cpu_supports(HR_CPU_SCALAR), "plain C must always run");
    for (int k = 0; k < HR_CPU_N_PATHS; k++) {
        hr_status st = hr_cpu_force((hr_cpu_kind)k);
        if (hr_cpu_supports((hr_cpu_kind)k)) {
            CHECK(st == HR_OK, "forcing %s: %s", k_names[k], hr_last_error());
            CHECK(strcmp(hr_cpu_path(), k_names[k]) == 0, "path %s after forcing %s", hr_cpu_path(), k_names[k]);
        } else {
            CHECK(st == HR_ERR_UNSUPPORTED && strlen(hr_last_error()) > 0, "unsupported %s accepted", k_names[k]);
        }
    }
    CHECK(hr_cpu_force((hr_cpu_kind)7) == HR_ERR_UNSUPPORTED, "path 7 accepted");
    hr_cpu_force(hr_cpu_best());
}

/* Every kernel's outputs on one path, concatenated (sizes chosen to cross
 * the tails: 16-lane blocks, 64-position blocks, K-blocks of 256 / 128,
 * tiles of 8 or 6 tokens, partial panels). */
typedef struct {
    float *out;
    size_t n, pos;
} outbuf;

static void put(outbuf *o, const float *x, size_t n) {
    if (o->pos + n <= o->n) memcpy(o->out + o->pos, x, n * sizeof(float));
    o->pos += n;
}

static void put_d(outbuf *o, double v) {
    float f[2];
    memcpy(f, &v, sizeof v);
    put(o, f, 2);
}

enum { D_IN = 300, D_OUT = 45, NT = 19, LEN = 83, HD = 20, LD = 96, VOC = 1000 };

/* The bf16 dot (t bf16) or the int8 dot (t Q8_0 / int8) of D_OUT x din random
 * weights: its scalar reference, bit for bit, for every batch size, with
 * the hardware instruction (VDPBF16PS / VPDPBUSD, where the path and CPU
 * have it) and with the emulation. */
static void dot_matches_reference(outbuf *o, const char *path, hr_pool *pool, float *y, float *yr, const int *sizes,
                                  hr_wtype t, int din) {
    bool i8 = t == HR_WT_Q8_0 || t == HR_WT_I8;
    float *tw = rand_buf((size_t)D_OUT * din, 1.0f), *tx = rand_buf((size_t)NT * din, 1.0f);
    float *deq = malloc((size_t)D_OUT * din * sizeof(float));
    uint32_t *xq = i8 ? NULL : malloc(sizeof(uint32_t) * NT * (size_t)((din + 1) / 2));
    hr_q8_act *xa = i8 ? malloc(hr_q8_act_bytes(NT, din)) : NULL;
    unsigned char *enc = NULL;
    size_t rb = hr_t_encode(t, tw, D_OUT, din, &enc, deq);
    hr_panels tp = {hr_t_pack_typed(t, enc, rb, 0, 0, D_OUT, din), t};
    if (i8) memset(tx + 2 * din + 64, 0, 32 * sizeof(float)); /* a zero block */
    for (int hw = 1; hw >= 0; hw--) {
        (void)(i8 ? hr_cpu_force_int8_hw(hw) : hr_cpu_force_bf16_hw(hw)); /* refused: emulated either way */
        for (int i = 0; i < 7; i++) {
            int n = sizes[i];
            hr_matmul_out mo = {y, NULL, tp, D_OUT};
            hr_matmul_multi(pool, tx, n, din, &mo, 1, false, xq, xa);
            if (i8) hr_matmul_int8dot_ref(yr, tx, tp, n, din, D_OUT);
            else hr_matmul_bf16dot_ref(yr, tx, tp, n, din, D_OUT);
            size_t bad = n_bits_differ(y, yr, (size_t)n * D_OUT);
            CHECK(bad == 0, "%s%s: %s dot of %d tokens, d_in %d: %zu outputs differ from its reference", path,
                  (i8 ? hr_cpu_int8_hw() : hr_cpu_bf16_hw()) ? " (hardware)" : "", i8 ? "int8" : "bf16", n, din, bad);
            put(o, y, (size_t)n * D_OUT);
        }
    }
    (void)(i8 ? hr_cpu_force_int8_hw(1) : hr_cpu_force_bf16_hw(1));
    free(tw), free(tx), free(deq), free(enc), free(xq), free(xa), free((void *)tp.p);
}

static void run_kernels(outbuf *o, const char *path) {
    hr_pool *pool = NULL;
    hr_pool_new(3, &pool);
    g_seed = 777; /* the same inputs on every path */
    float *w = rand_buf((size_t)D_OUT * D_IN, 1.0f), *x = rand_buf((size_t)NT * D_IN, 1.0f);
    float *wp = aligned_alloc(64, hr_packed_floats(D_OUT, D_IN) * sizeof(float));
    hr_pack_panels(wp, w, D_OUT, D_IN, 0, (D_OUT + 15) / 16);
    float *y = calloc((size_t)NT * D_OUT, sizeof(float)), *yr = calloc((size_t)NT * D_OUT, sizeof(float));
    /* products: the fmaf chain, bit for bit, for every batch size */
    int sizes[] = {1, 2, 3, 4, 7, 8, NT};
    for (int i = 0; i < 7; i++) {
        int n = sizes[i];
        hr_matmul(pool, y, x, hr_panels_f32(wp), n, D_IN, D_OUT);
        hr_matmul_packed_ref(yr, x, wp, n, D_IN, D_OUT);
        size_t bad = n_bits_differ(y, yr, (size_t)n * D_OUT);
        CHECK(bad == 0, "%s: matmul of %d tokens: %zu outputs differ from the fmaf chain", path, n, bad);
        put(o, y, (size_t)n * D_OUT);
    }
    /* typed panels (bf16, f16, Q8_0, int8 of the same weights, d_in 320):
     * the typed scalar reference, bit for bit, for every batch size */
    for (int t = HR_WT_BF16; t <= HR_WT_I8; t++) {
        enum { TD_IN = 320 };
        float *tw = rand_buf((size_t)D_OUT * TD_IN, 1.0f), *tx = rand_buf((size_t)NT * TD_IN, 1.0f);
        float *deq = malloc((size_t)D_OUT * TD_IN * sizeof(float));
        unsigned char *enc = NULL;
        size_t rb = hr_t_encode((hr_wtype)t, tw, D_OUT, TD_IN, &enc, deq);
        hr_panels tp = {hr_t_pack_typed((hr_wtype)t, enc, rb, 0, 0, D_OUT, TD_IN), (hr_wtype)t};
        for (int i = 0; i < 7; i++) {
            int n = sizes[i];
            hr_matmul(pool, y, tx, tp, n, TD_IN, D_OUT);
            hr_matmul_panels_ref(yr, tx, tp, n, TD_IN, D_OUT);
            size_t bad = n_bits_differ(y, yr, (size_t)n * D_OUT);
            CHECK(bad == 0, "%s: %s matmul of %d tokens: %zu outputs differ from the typed chain", path,
                  hr_wtype_name((hr_wtype)t), n, bad);
            put(o, y, (size_t)n * D_OUT);
        }
        free(tw), free(tx), free(deq), free(enc), free((void *)tp.p);
    }
    /* the bf16 dot (odd and even d_in) and the int8 dot (d_in 32 x odd
     * and even, a zero block) */
    for (int din = 319; din <= 320; din++) dot_matches_reference(o, path, pool, y, yr, sizes, HR_WT_BF16, din);
    for (int din = 288; din <= 320; din += 32) dot_matches_reference(o, path, pool, y, yr, sizes, HR_WT_Q8_0, din);
    for (int din = 288; din <= 320; din += 32) dot_matches_reference(o, path, pool, y, yr, sizes, HR_WT_I8, din);
    /* dot: 16 lanes + tree, vs double (|err| <= 1e-5 relative to sum |a b|) */
    double ref = 0, mag = 0;
    for (int k = 0; k < D_IN; k++) ref += (double)x[k] * w[k], mag += fabs((double)x[k] * w[k]);
    float d = hr_dot(x, w, D_IN - 3);
    double ref3 = ref;
    for (int k = D_IN - 3; k < D_IN; k++) ref3 -= (double)x[k] * w[k];
    CHECK(fabs(d - ref3) <= 1e-5 * mag, "%s: dot %g vs %g", path, (double)d, ref3);
    put(o, &d, 1);
    /* softmax with a wide range (underflow to 0 and subnormals): |err| <= 1e-6 */
    float *sm = rand_buf(VOC + 7, 60.0f), *smr = malloc((VOC + 7) * sizeof(float));
    sm[5] = -200.0f, sm[6] = 95.0f;
    memcpy(smr, sm, (VOC + 7) * sizeof(float));
    float mx = hr_max_f32(sm, VOC + 7), mxr = -INFINITY;
    for (int i = 0; i < VOC + 7; i++) mxr = sm[i] > mxr ? sm[i] : mxr;
    CHECK(mx == mxr, "%s: max %g vs %g", path, (double)mx, (double)mxr);
    double se = hr_sum_exp(sm, VOC + 7, mx), ser = hr_sum_exp_ref(sm, VOC + 7, mx);
    CHECK(fabs(se - ser) <= 1e-14 * ser, "%s: sum_exp %.17g vs %.17g", path, se, ser);
    put_d(o, se);
    double df = hr_dot_f64(x, w, D_IN - 1), dfr = hr_dot_f64_ref(x, w, D_IN - 1);
    CHECK(fabs(df - dfr) <= 1e-12 * mag, "%s: dot_f64 %.17g vs %.17g", path, df, dfr);
    put_d(o, df);
    hr_softmax(sm, VOC + 7);
    hr_softmax_ref(smr, VOC + 7);
    printf("    %-6s ", path);
    CHECK(hr_t_maxdiff("softmax vs double reference", sm, smr, VOC + 7) <= 1e-6, "%s: softmax", path);
    put(o, sm, VOC + 7);
    /* swiglu, gates up to +-100 (e^100 overflows to inf: silu -> -0): rel 1e-6 */
    float *g = rand_buf(VOC + 5, 12.0f), *u = rand_buf(VOC + 5, 1.0f);
    g[0] = 100.0f, g[1] = -100.0f, g[2] = -88.0f, g[3] = 0.0f;
    float *h = malloc((VOC + 5) * sizeof(float)), *hr = malloc((VOC + 5) * sizeof(float));
    hr_swiglu(h, g, u, VOC + 5);
    hr_swiglu_ref(hr, g, u, VOC + 5);
    double sw = 0;
    for (int i = 0; i < VOC + 5; i++) {
        double e = fabs((double)h[i] - hr[i]) / (fabs((double)hr[i]) + 1e-30);
        if (fabs((double)hr[i]) > 1e-30 && e > sw) sw = e;
    }
    printf("    %-6s swiglu vs libm reference: max rel diff %.3g\n", path, sw);
    CHECK(sw <= 1e-6, "%s: swiglu rel %g", path, sw);
    put(o, h, VOC + 5);
    /* attention: one and several queries agree bit for bit; vs double 1e-5 */
    float *q = rand_buf(4 * HD, 1.0f), *kt = rand_buf((size_t)HD * LD, 1.0f), *vt = rand_buf((size_t)HD * LD, 1.0f);
    float s1[4][LD], sr[LD], sm4[4][LD], o1[4][HD], o4[4][HD], orf[HD];
    int lens[4] = {LEN - 3, LEN - 2, LEN - 1, LEN};
    hr_attn_scores_multi(&sm4[0][0], LD, q, HD, 4, kt, LD, HD, LEN, 0.25f);
    hr_attn_values_multi(&o4[0][0], HD, &sm4[0][0], LD, 4, vt, LD, HD, lens);
    for (int i = 0; i < 4; i++) {
        hr_attn_scores(s1[i], q + i * HD, kt, LD, HD, LEN, 0.25f);
        hr_attn_values(o1[i], sm4[i], vt, LD, HD, lens[i]);
        CHECK(n_bits_differ(s1[i], sm4[i], LEN) == 0, "%s: scores of query %d: multi != single", path, i);
        CHECK(n_bits_differ(o1[i], o4[i], HD) == 0, "%s: values of query %d: multi != single", path, i);
    }
    hr_attn_scores_ref(sr, q + 3 * HD, kt, LD, HD, LEN, 0.25f);
    hr_attn_values_ref(orf, sm4[3], vt, LD, HD, LEN);
    CHECK(hr_t_maxdiff("attention scores vs double", s1[3], sr, LEN) <= 1e-5, "%s: scores", path);
    CHECK(hr_t_maxdiff("attention values vs double", o1[3], orf, HD) <= 1e-4, "%s: values", path);
    put(o, &sm4[0][0], 4 * LD), put(o, &o4[0][0], 4 * HD);
    /* training GEMM: the fmaf chain of hr_gemm_ref, bit for bit (A transposed too) */
    enum { GM = 21, GK = 150, GN = 45 };
    float *ga = rand_buf((size_t)GM * GK, 1.0f), *gb = rand_buf((size_t)GK * GN, 1.0f);
    float *gc = rand_buf((size_t)GM * GN, 1.0f), *gr = malloc((size_t)GM * GN * sizeof(float));
    memcpy(gr, gc, (size_t)GM * GN * sizeof(float));
    hr_gemm(pool, gc, GN, ga, GK, 1, gb, GN, GM, GK, GN, true);
    hr_gemm_ref(gr, GN, ga, GK, 1, gb, GN, GM, GK, GN, true);
    CHECK(n_bits_differ(gc, gr, (size_t)GM * GN) == 0, "%s: gemm differs from the fmaf chain", path);
    put(o, gc, (size_t)GM * GN);
    hr_gemm(pool, gc, GN, ga, 1, GM, gb, GN, 7, 20, GN, false); /* A read transposed */
    hr_gemm_ref(gr, GN, ga, 1, GM, gb, GN, 7, 20, GN, false);
    CHECK(n_bits_differ(gc, gr, (size_t)7 * GN) == 0, "%s: transposed gemm differs from the fmaf chain", path);
    /* key / value gradients: brute force chains over heads, then t >= s */
    enum { NQ = 2, N = 37, BH = 20, BLDP = 48 };
    size_t hs = (size_t)N * BLDP, qs = NQ * BH;
    float *ds = rand_buf(NQ * hs, 1.0f), *pp = rand_buf(NQ * hs, 1.0f);
    float *bq = rand_buf((size_t)N * qs, 1.0f), *bo = rand_buf((size_t)N * qs, 1.0f);
    float dk[N][BH], dv[N][BH];
    hr_attn_bwd_keys(&dk[0][0], &dv[0][0], BH, ds, pp, hs, BLDP, NQ, bq, qs, bo, qs, BH, N, 0, N, 0.5f);
    size_t bad = 0;
    for (int s = 0; s < N; s++)
        for (int dd = 0; dd < BH; dd++) {
            float ak = 0, av = 0;
            for (int j = 0; j < NQ; j++)
                for (int t = s; t < N; t++) {
                    ak = fmaf(ds[j * hs + (size_t)t * BLDP + s], bq[(size_t)t * qs + j * BH + dd], ak);
                    av = fmaf(pp[j * hs + (size_t)t * BLDP + s], bo[(size_t)t * qs + j * BH + dd], av);
                }
            bad += ak * 0.5f != dk[s][dd] || av != dv[s][dd];
        }
    CHECK(bad == 0, "%s: %zu key/value gradients differ from the fmaf chains", path, bad);
    put(o, &dk[0][0], (size_t)N * BH), put(o, &dv[0][0], (size_t)N * BH);
    free(w), free(x), free(wp), free(y), free(yr), free(sm), free(smr), free(g), free(u), free(h), free(hr);
    free(q), free(kt), free(vt), free(ga), free(gb), free(gc), free(gr), free(ds), free(pp), free(bq), free(bo);
    hr_pool_free(pool);
}

static void every_kernel_gives_the_same_bits_on_every_path(void) {
    enum { CAP = 1 << 16 };
    outbuf ref = {calloc(CAP, sizeof(float)), CAP, 0};
    int have_ref = 0;
    for (int k = HR_CPU_N_PATHS - 1; k >= 0; k--) {
        if (hr_cpu_force((hr_cpu_kind)k) != HR_OK) continue;
        outbuf o = {calloc(CAP, sizeof(float)), CAP, 0};
        run_kernels(&o, k_names[k]);
        CHECK(o.pos <= CAP, "output buffer too small (%zu)", o.pos);
        if (!have_ref) {
            memcpy(ref.out, o.out, CAP * sizeof(float)), ref.pos = o.pos, have_ref = 1;
        } else {
            size_t bad = n_bits_differ(ref.out, o.out, o.pos);
            printf("    %s vs the widest path: %zu of %zu kernel outputs differ in any bit\n", k_names[k], bad, o.pos);
            CHECK(o.pos == ref.pos && bad == 0, "%s differs from the widest path", k_names[k]);
        }
        free(o.out);
    }
    free(ref.out);
    hr_cpu_force(hr_cpu_best());
}

/* ---- whole model ---- */

static const int32_t k_tokens[] = {1,   403, 407, 261, 378, 429, 360, 365, 267, 265, 281, 304, 292, 412,
                                   439, 259, 284, 266, 292, 343, 261, 378, 429, 360, 370, 300, 322, 411,
                                   290, 268, 407, 270, 301, 280, 290, 300, 310, 320, 330, 340, 350, 360,
                                   370, 380, 390, 400, 410, 420, 430, 440, 450, 460, 470, 480, 490, 500,
                                   260, 270, 280, 290, 300, 310, 320, 330, 340, 350, 360, 370, 380, 390};
enum { N_TOK = sizeof k_tokens / sizeof k_tokens[0] };

static bool g_bf16_dot;   /* contexts of logits() use the bf16 dot */
static bool g_int8_dot;   /* contexts of logits() use the int8 dot */
static int g_threads = 2; /* threads of logits()' contexts */

/* All-position logits (prefill, or one token at a time), optional gates. */
static float *logits(const hr_model *m, const float *gates, int decode) {
    hr_context *ctx = NULL;
    hr_context_params p = hr_context_default_params();
    p.n_threads = g_threads;
    p.bf16_dot = g_bf16_dot;
    p.int8_dot = g_int8_dot;
    if (hr_context_new(m, &p, &ctx) != HR_OK) return NULL;
    int V = hr_model_config(m)->vocab_size;
    float *lg = malloc(sizeof(float) * N_TOK * V);
    if (gates) hr_context_set_head_gates(ctx, gates);
    hr_status st = HR_OK;
    if (decode)
        for (int t = 0; t < N_TOK && st == HR_OK; t++) st = hr_forward(ctx, &k_tokens[t], 1, lg + (size_t)t * V, false);
    else st = hr_forward(ctx, k_tokens, N_TOK, lg, true);
    hr_context_free(ctx);
    if (st != HR_OK) free(lg), lg = NULL;
    return lg;
}

static void stories260k_logits_prefill_decode_and_pruning_agree_on_every_path(void) {
    hr_model *m = NULL, *pruned = NULL;
    CHECK(hr_model_load(SHARED("models/stories260K/stories260K.bin"), &m) == HR_OK, "load: %s", hr_last_error());
    if (!m) return;
    const hr_config *c = hr_model_config(m);
    int V = c->vocab_size, mh = hr_config_max_heads(c);
    size_t n = (size_t)N_TOK * V;
    /* layer 2 loses both query heads of KV group 1; the gated model zeroes them */
    hr_prune_spec *s = NULL;
    hr_prune_spec_new(m, &s);
    float *gates = malloc(sizeof(float) * (size_t)c->n_layers * mh);
    for (int i = 0; i < c->n_layers * mh; i++) gates[i] = 1.0f;
    s->keep_head[2][2] = s->keep_head[2][3] = 0;
    gates[2 * mh + 2] = gates[2 * mh + 3] = 0;
    CHECK(hr_prune_apply(m, s, &pruned) == HR_OK, "prune: %s", hr_last_error());
    float *first = NULL;
    for (int k = HR_CPU_N_PATHS - 1; k >= 0 && pruned; k--) {
        if (hr_cpu_force((hr_cpu_kind)k) != HR_OK) continue;
        float *pre = logits(m, NULL, 0), *dec = logits(m, NULL, 1), *gp = logits(m, gates, 0),
              *pp = logits(pruned, NULL, 0);
        CHECK(pre && dec && gp && pp, "%s: forward failed: %s", k_names[k], hr_last_error());
        if (pre && dec && gp && pp) {
            printf("    %s:\n", k_names[k]);
            CHECK(hr_t_maxdiff("prefill vs decode", pre, dec, n) == 0, "%s: prefill != decode", k_names[k]);
            CHECK(hr_t_maxdiff("pruned vs gated", pp, gp, n) == 0, "%s: pruned != gated", k_names[k]);
            CHECK(n_bits_differ(pre, dec, n) == 0 && n_bits_differ(pp, gp, n) == 0, "%s: bits differ", k_names[k]);
            if (!first) {
                first = pre, pre = NULL;
            } else {
                double d = hr_t_maxdiff("logits vs the widest path", first, pre, n);
                CHECK(d == 0 && n_bits_differ(first, pre, n) == 0, "%s: logits differ from the widest path (%.3g)",
                      k_names[k], d);
            }
        }
        free(pre), free(dec), free(gp), free(pp);
    }
    free(first), free(gates);
    hr_prune_spec_free(s);
    hr_model_free(pruned);
    hr_model_free(m);
    hr_cpu_force(hr_cpu_best());
}

/* stories260K written as bf16, f16 and Q8_0 GGUF: the forward pass reads
 * the typed weights in place (no f32 rows are made) and its logits equal,
 * bit for bit on every path, those of the same file's weights dequantized
 * to f32 (hr_model_need_f32, written as an f32 GGUF, loaded: the f32
 * kernels); prefill = decode and pruned (f32 surgery of the dequantized
 * weights) = gated hold on the typed model. */
static void typed_models_compute_like_their_f32_dequantization_on_every_path(void) {
    hr_model *m = NULL;
    CHECK(hr_model_load(SHARED("models/stories260K/stories260K.bin"), &m) == HR_OK, "load: %s", hr_last_error());
    if (!m) return;
    const hr_config *c = hr_model_config(m);
    int V = c->vocab_size, mh = hr_config_max_heads(c);
    size_t n = (size_t)N_TOK * V;
    char typed_path[64], f32_path[64];
    snprintf(typed_path, sizeof typed_path, "/tmp/hr_dispatch_typed_%d.gguf", (int)getpid());
    snprintf(f32_path, sizeof f32_path, "/tmp/hr_dispatch_f32_%d.gguf", (int)getpid());
    float *gates = malloc(sizeof(float) * (size_t)c->n_layers * mh);
    for (int i = 0; i < c->n_layers * mh; i++) gates[i] = 1.0f;
    gates[1 * mh + 0] = gates[1 * mh + 1] = 0;
    static const hr_dtype dts[] = {HR_DTYPE_BF16, HR_DTYPE_F16, HR_DTYPE_Q8_0};
    static const char *const names[] = {"bf16", "f16", "q8_0"};
    /* the rounding of each format against the original f32 model (a loose
     * bound, for the record: RESULTS §5 has the table) */
    static const double tol[] = {0.3, 0.03, 1.0};
    float *orig = logits(m, NULL, 0);
    for (int d = 0; d < 3; d++) {
        hr_model *t = NULL, *deq = NULL, *f = NULL, *pruned = NULL;
        CHECK(hr_model_save_gguf(m, NULL, typed_path, dts[d]) == HR_OK, "save: %s", hr_last_error());
        CHECK(hr_model_load(typed_path, &t) == HR_OK && hr_model_load(typed_path, &deq) == HR_OK, "load: %s",
              hr_last_error());
        CHECK(deq && hr_model_need_f32(deq) == HR_OK, "f32 rows: %s", hr_last_error());
        CHECK(deq && hr_model_save_gguf(deq, NULL, f32_path, HR_DTYPE_F32) == HR_OK, "save f32: %s", hr_last_error());
        CHECK(hr_model_load(f32_path, &f) == HR_OK, "load f32: %s", hr_last_error());
        hr_prune_spec *s = NULL;
        if (t) hr_prune_spec_new(t, &s);
        if (s) s->keep_head[1][0] = s->keep_head[1][1] = 0;
        CHECK(s && hr_prune_apply(t, s, &pruned) == HR_OK, "prune: %s", hr_last_error());
        hr_prune_spec_free(s);
        if (!t || !f || !pruned) {
            hr_model_free(t), hr_model_free(deq), hr_model_free(f), hr_model_free(pruned);
            continue;
        }
        hr_model *t2 = NULL; /* a fresh typed model: pruning above made t's f32 rows */
        CHECK(hr_model_load(typed_path, &t2) == HR_OK, "load: %s", hr_last_error());
        for (int k = HR_CPU_N_PATHS - 1; k >= 0 && t2; k--) {
            if (hr_cpu_force((hr_cpu_kind)k) != HR_OK) continue;
            float *pre = logits(t2, NULL, 0), *dec = logits(t2, NULL, 1), *ref = logits(f, NULL, 0),
                  *gp = logits(t2, gates, 0), *pp = logits(pruned, NULL, 0);
            CHECK(pre && dec && ref && gp && pp, "%s: forward failed: %s", k_names[k], hr_last_error());
            if (pre && dec && ref && gp && pp) {
                printf("    %s, %s:\n", names[d], k_names[k]);
                CHECK(hr_t_maxdiff("typed vs f32 of the dequantized weights", pre, ref, n) == 0 &&
                          n_bits_differ(pre, ref, n) == 0,
                      "%s %s: typed != f32", names[d], k_names[k]);
                CHECK(hr_t_maxdiff("prefill vs decode", pre, dec, n) == 0 && n_bits_differ(pre, dec, n) == 0,
                      "%s %s: prefill != decode", names[d], k_names[k]);
                CHECK(hr_t_maxdiff("pruned vs gated", pp, gp, n) == 0 && n_bits_differ(pp, gp, n) == 0,
                      "%s %s: pruned != gated", names[d], k_names[k]);
                if (orig && k == (int)hr_cpu_best())
                    CHECK(hr_t_maxdiff("vs the original f32 model", pre, orig, n) <= tol[d], "%s: %g", names[d],
                          tol[d]);
            }
            free(pre), free(dec), free(ref), free(gp), free(pp);
        }
        CHECK(t2 && !t2->f32_ready && !t2->w.layers[0].wq && !t2->w.tok_embd,
              "%s: the forward pass made f32 rows of the typed weights", names[d]);
        hr_model_free(t), hr_model_free(t2), hr_model_free(deq), hr_model_free(f), hr_model_free(pruned);
    }
    remove(typed_path), remove(f32_path);
    free(gates), free(orig);
    hr_model_free(m);
    hr_cpu_force(hr_cpu_best());
}

/* stories260K under a dot: as a bf16 GGUF under the bf16 dot
 * (hr_context_params.bf16_dot) or as a Q8_0 GGUF under the int8 dot
 * (int8_dot): prefill = decode, 1 thread = 2 threads and pruned = gated,
 * bit for bit, on every path, with the hardware instruction (VDPBF16PS /
 * VPDPBUSD) and with the emulation, and all give the same bits. The pruned
 * model (saved in the same dtype and reloaded, so its panels are typed
 * too) loses heads 0-1 of layer 1 under the bf16 dot, heads 0-3 under the
 * int8 dot (head_dim 8: W_o's input columns 0-31, one whole 32-block of
 * every row; Q8_0 of dequantized Q8_0 is the same bytes, so the kept blocks
 * and scales are the typed model's); the gated model zeroes the same heads.
 * Against the exact products of the same weights the logits move by the
 * activations' rounding (the measured max |diff| is printed; RESULTS §5 /
 * §11 have it), bounded as the dtype's weights against the f32 model above
 * (bf16 0.3, Q8_0 1.0). */
static void dot_logits_agree_on_every_path_and_prefill_decode_pruning_hold(bool i8) {
    hr_model *m = NULL, *t = NULL, *t2 = NULL, *pruned = NULL;
    CHECK(hr_model_load(SHARED("models/stories260K/stories260K.bin"), &m) == HR_OK, "load: %s", hr_last_error());
    if (!m) return;
    const hr_config *c = hr_model_config(m);
    int V = c->vocab_size, mh = hr_config_max_heads(c), n_cut = i8 ? 4 : 2;
    size_t n = (size_t)N_TOK * V;
    hr_dtype dt = i8 ? HR_DTYPE_Q8_0 : HR_DTYPE_BF16;
    char typed_path[64], pruned_path[64];
    snprintf(typed_path, sizeof typed_path, "/tmp/hr_dispatch_dot%d_%d.gguf", (int)i8, (int)getpid());
    snprintf(pruned_path, sizeof pruned_path, "/tmp/hr_dispatch_dot%d_pruned_%d.gguf", (int)i8, (int)getpid());
    CHECK(hr_model_save_gguf(m, NULL, typed_path, dt) == HR_OK, "save: %s", hr_last_error());
    CHECK(hr_model_load(typed_path, &t) == HR_OK && hr_model_load(typed_path, &t2) == HR_OK, "load: %s",
          hr_last_error());
    CHECK(!i8 || c->head_dim * 4 == 32, "stories260K's heads 0-3 are one 32-block");
    hr_prune_spec *s = NULL;
    if (t) hr_prune_spec_new(t, &s);
    for (int h = 0; s && h < n_cut; h++) s->keep_head[1][h] = 0;
    hr_model *pf = NULL;
    CHECK(s && hr_prune_apply(t, s, &pf) == HR_OK, "prune: %s", hr_last_error());
    CHECK(pf && hr_model_save_gguf(pf, NULL, pruned_path, dt) == HR_OK, "save: %s", hr_last_error());
    CHECK(hr_model_load(pruned_path, &pruned) == HR_OK, "load pruned: %s", hr_last_error());
    hr_prune_spec_free(s);
    hr_model_free(pf);
    float *gates = malloc(sizeof(float) * (size_t)c->n_layers * mh);
    for (int i = 0; i < c->n_layers * mh; i++) gates[i] = 1.0f;
    for (int h = 0; h < n_cut; h++) gates[1 * mh + h] = 0;
    float *exact = t2 ? logits(t2, NULL, 0) : NULL, *first = NULL;
    hr_status (*force_hw)(int) = i8 ? hr_cpu_force_int8_hw : hr_cpu_force_bf16_hw;
    int (*has_hw)(void) = i8 ? hr_cpu_int8_hw : hr_cpu_bf16_hw;
    *(i8 ? &g_int8_dot : &g_bf16_dot) = true;
    for (int k = HR_CPU_N_PATHS - 1; k >= 0 && t2 && pruned && exact; k--) {
        if (hr_cpu_force((hr_cpu_kind)k) != HR_OK) continue;
        for (int hw = 1; hw >= 0; hw--) {
            if (hw && force_hw(1) != HR_OK) continue;
            if (!hw) force_hw(0);
            if (hw && !has_hw()) continue; /* this path (or CPU) has no such kernels */
            float *pre = logits(t2, NULL, 0), *dec = logits(t2, NULL, 1), *gp = logits(t2, gates, 0),
                  *pp = logits(pruned, NULL, 0);
            g_threads = 1;
            float *one = logits(t2, NULL, 0);
            g_threads = 2;
            CHECK(pre && dec && gp && pp && one, "%s: forward failed: %s", k_names[k], hr_last_error());
            if (pre && dec && gp && pp && one) {
                printf("    %s dot, %s%s:\n", i8 ? "int8" : "bf16", k_names[k],
                       hw ? (i8 ? " with VPDPBUSD" : " with VDPBF16PS") : ", emulated");
                CHECK(hr_t_maxdiff("prefill vs decode", pre, dec, n) == 0 && n_bits_differ(pre, dec, n) == 0,
                      "%s: prefill != decode", k_names[k]);
                CHECK(hr_t_maxdiff("1 vs 2 threads", pre, one, n) == 0 && n_bits_differ(pre, one, n) == 0,
                      "%s: thread count changes the logits", k_names[k]);
                CHECK(hr_t_maxdiff("pruned vs gated", pp, gp, n) == 0 && n_bits_differ(pp, gp, n) == 0,
                      "%s: pruned != gated", k_names[k]);
                CHECK(hr_t_maxdiff("vs the exact products", pre, exact, n) <= (i8 ? 1.0 : 0.3),
                      "%s: too far from exact", k_names[k]);
                if (!first) {
                    first = pre, pre = NULL;
                } else {
                    CHECK(hr_t_maxdiff("vs the first path", first, pre, n) == 0 && n_bits_differ(first, pre, n) == 0,
                          "%s: logits differ from the first path", k_names[k]);
                }
            }
            free(pre), free(dec), free(gp), free(pp), free(one);
        }
    }
    g_bf16_dot = g_int8_dot = false;
    force_hw(1);
    remove(typed_path), remove(pruned_path);
    free(gates), free(exact), free(first);
    hr_model_free(t), hr_model_free(t2), hr_model_free(pruned), hr_model_free(m);
    hr_cpu_force(hr_cpu_best());
}
static void bf16_dot_logits_agree_on_every_path_and_prefill_decode_pruning_hold(void) {
    dot_logits_agree_on_every_path_and_prefill_decode_pruning_hold(false);
}
static void int8_dot_logits_agree_on_every_path_and_prefill_decode_pruning_hold(void) {
    dot_logits_agree_on_every_path_and_prefill_decode_pruning_hold(true);
}

int main(void) {
    HR_T_REQUIRE_SHARED("models/stories260K/stories260K.bin");
    printf("    %d kernel paths on this CPU\n", n_supported());
    RUN(each_supported_path_can_be_forced_and_others_are_refused);
    RUN(every_kernel_gives_the_same_bits_on_every_path);
    RUN(stories260k_logits_prefill_decode_and_pruning_agree_on_every_path);
    RUN(typed_models_compute_like_their_f32_dequantization_on_every_path);
    RUN(bf16_dot_logits_agree_on_every_path_and_prefill_decode_pruning_hold);
    RUN(int8_dot_logits_agree_on_every_path_and_prefill_decode_pruning_hold);
    TEST_MAIN_END();
}
