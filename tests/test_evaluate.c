/* Comparison metrics: identical models agree perfectly, different ones do
 * not; task files are validated line by line; sizes follow the shapes. */
#include "check.h"
#include "headroom/context.h"
#include "headroom/evaluate.h"
#include "headroom/prune.h"
#include "study/prune/surgery_internal.h"
#include "headroom/tokenizer.h"
#include "model/config.h"

#include <string.h>

#define MODEL SHARED("models/stories260K/stories260K.bin")
#define TOKENIZER SHARED("models/stories260K/tok512.bin")
#define TEXT SHARED("data/text/tinystories_val.txt")

typedef struct {
    hr_model *m, *pruned;
    hr_tokenizer *tok;
    hr_context *a, *b, *p;
    int32_t *ids;
    size_t n_ids;
} fixture;

static hr_context *new_ctx(const hr_model *m) {
    hr_context *c = NULL;
    hr_context_params p = hr_context_default_params();
    p.n_ctx = 128;
    CHECK(hr_context_new(m, &p, &c) == HR_OK, "%s", hr_last_error());
    return c;
}

static void setup(fixture *f) {
    memset(f, 0, sizeof *f);
    CHECK(hr_model_load(MODEL, &f->m) == HR_OK, "%s", hr_last_error());
    CHECK(hr_tokenizer_load(TOKENIZER, &f->tok) == HR_OK, "%s", hr_last_error());
    FILE *fp = fopen(TEXT, "rb");
    char buf[6000];
    size_t n = fp ? fread(buf, 1, sizeof buf - 1, fp) : 0;
    if (fp) fclose(fp);
    while (n > 0 && (buf[n - 1] & 0xC0) == 0x80) n--; /* do not cut a UTF-8 sequence */
    if (n > 0 && (unsigned char)buf[n - 1] >= 0xC0) n--;
    hr_encode_params ep = hr_encode_default_params();
    CHECK(hr_tokenizer_encode(f->tok, buf, n, &ep, &f->ids, &f->n_ids) == HR_OK, "%s", hr_last_error());
    hr_prune_spec *s = NULL;
    hr_prune_spec_new(f->m, &s);
    s->drop_attn[2] = true;
    CHECK(hr_prune_apply(f->m, s, &f->pruned) == HR_OK, "%s", hr_last_error());
    hr_prune_spec_free(s);
    f->a = new_ctx(f->m);
    f->b = new_ctx(f->m);
    f->p = new_ctx(f->pruned);
}

static void teardown(fixture *f) {
    hr_context_free(f->a);
    hr_context_free(f->b);
    hr_context_free(f->p);
    free(f->ids);
    hr_tokenizer_free(f->tok);
    hr_model_free(f->pruned);
    hr_model_free(f->m);
}

static void identical_models_have_zero_kl_and_full_agreement(void) {
    fixture f;
    setup(&f);
    hr_compare_result r;
    CHECK(hr_compare_logits(f.a, f.b, f.ids, f.n_ids, 128, 3, &r) == HR_OK, "%s", hr_last_error());
    CHECK(r.n_tokens == 127 + 2 * 126 && r.kl < 1e-9 && r.top1 == 1.0, "n %lld kl %g top1 %g", (long long)r.n_tokens,
          r.kl, r.top1);
    CHECK(r.nll_base == r.nll_cand && r.nll_base > 0, "nll %g vs %g", r.nll_base, r.nll_cand);
    double fdtm = 0;
    CHECK(hr_compare_fdtm(f.a, f.b, f.ids, f.n_ids, 3, 16, 24, 7, &fdtm) == HR_OK, "%s", hr_last_error());
    CHECK(fdtm == 24.0, "FDTM of identical models %g, expected the continuation length 24", fdtm);
    teardown(&f);
}

static void a_pruned_model_diverges_from_its_base(void) {
    fixture f;
    setup(&f);
    hr_compare_result r;
    CHECK(hr_compare_logits(f.a, f.p, f.ids, f.n_ids, 128, 2, &r) == HR_OK, "%s", hr_last_error());
    CHECK(r.kl > 1e-3 && r.top1 < 1.0 && r.kl_max >= r.kl, "kl %g top1 %g", r.kl, r.top1);
    double fdtm = 0;
    CHECK(hr_compare_fdtm(f.a, f.p, f.ids, f.n_ids, 4, 16, 32, 7, &fdtm) == HR_OK, "%s", hr_last_error());
    CHECK(fdtm < 32.0, "FDTM %g", fdtm);
    teardown(&f);
}

static void windows_larger_than_the_contexts_are_rejected(void) {
    fixture f;
    setup(&f);
    hr_compare_result r;
    CHECK(hr_compare_logits(f.a, f.b, f.ids, f.n_ids, 1000, 1, &r) == HR_ERR_RANGE, "oversized window accepted");
    teardown(&f);
}

static void passkey_prompts_are_scored_for_the_base_model(void) {
    fixture f;
    setup(&f);
    hr_passkey_result r, r2;
    CHECK(hr_passkey(f.a, f.ids, f.n_ids, 1, 64, 8, 6, 3, &r) == HR_OK, "%s", hr_last_error());
    CHECK(r.trials == 8 && r.token >= 0 && r.token <= 1 && r.exact <= r.token, "token %g exact %g", r.token, r.exact);
    CHECK(hr_passkey(f.b, f.ids, f.n_ids, 1, 64, 8, 6, 3, &r2) == HR_OK, "%s", hr_last_error());
    CHECK(r.token == r2.token && r.exact == r2.exact, "same model and seed gave different accuracy");
    CHECK(hr_passkey(f.a, f.ids, f.n_ids, 1, 1000, 8, 6, 3, &r) == HR_ERR_RANGE, "over-long prompt accepted");
    teardown(&f);
}

static void malformed_task_lines_are_reported_with_their_number(void) {
    const char *good = "{\"context\": \"a\", \"choices\": [\" b\", \" c\"], \"gold\": 1}\n\n"
                       "{\"context\": \"x\", \"choices\": [\" y\", \" z\", \" w\"], \"gold\": 0}\n";
    hr_mc_task *t = NULL;
    CHECK(hr_mc_parse(good, strlen(good), &t) == HR_OK && t && t->n_items == 2, "%s", hr_last_error());
    if (t) CHECK(t->items[1].n_choices == 3 && t->items[0].gold == 1, "parsed wrong");
    hr_mc_task_free(t);
    const char *bad[] = {
        "{\"context\": \"a\", \"choices\": [\" b\", \" c\"], \"gold\": 1}\n{\"context\": \"a\", \"choices\": [\" b\"",
        "{\"context\": \"a\", \"choices\": [\" b\", \" c\"], \"gold\": 1}\n{\"context\": \"a\", \"choices\": [\" b\", "
        "\" c\"], \"gold\": 2}",
        "{\"context\": \"a\", \"choices\": [\" b\", \" c\"], \"gold\": 1}\n[1, 2]",
        "{\"context\": \"a\", \"choices\": [\" b\", \" c\"], \"gold\": 1}\n{\"context\": 3, \"choices\": [\" b\", \" "
        "c\"], \"gold\": 0}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        t = NULL;
        CHECK(hr_mc_parse(bad[i], strlen(bad[i]), &t) == HR_ERR_FORMAT && !t, "bad file %zu accepted", i);
        CHECK(strstr(hr_last_error(), "line 2") != NULL, "message: %s", hr_last_error());
    }
    CHECK(hr_mc_parse("\n\n", 2, &t) == HR_ERR_FORMAT, "empty task file accepted");
}

static void multiple_choice_prefers_the_story_continuation(void) {
    fixture f;
    setup(&f);
    const char *tasks =
        "{\"context\": \"Once upon a time, there was a little\", \"choices\": [\" girl\", \" qxz\"], \"gold\": 0}\n"
        "{\"context\": \"Lily and her mom went to the\", \"choices\": [\" zzv kq\", \" park\"], \"gold\": 1}\n";
    hr_mc_task *t = NULL;
    CHECK(hr_mc_parse(tasks, strlen(tasks), &t) == HR_OK, "%s", hr_last_error());
    hr_mc_result r;
    if (t) CHECK(hr_mc_eval(f.a, f.tok, t, &r) == HR_OK, "%s", hr_last_error());
    if (t) CHECK(r.n_items == 2 && r.acc == 1.0 && r.acc_norm == 1.0, "acc %g acc_norm %g", r.acc, r.acc_norm);
    hr_mc_task_free(t);
    teardown(&f);
}

static void sizes_follow_the_shapes(void) {
    fixture f;
    setup(&f);
    const hr_config *c = hr_model_config(f.m);
    int64_t kv = 0;
    for (int l = 0; l < c->n_layers; l++) kv += 2 * c->n_head_kv[l] * c->head_dim * 4;
    CHECK(hr_model_kv_bytes_per_token(f.m) == kv, "kv bytes %lld", (long long)hr_model_kv_bytes_per_token(f.m));
    CHECK(hr_model_kv_bytes_per_token(f.pruned) == kv - 2 * c->n_head_kv[2] * c->head_dim * 4, "pruned kv bytes");
    /* resident weight bytes: a fresh f32 model holds its mapped floats; once a
     * context packed it, the panels (rows padded to 16, each matrix 64-byte
     * aligned: kernels.h) and the vectors, the matrices' pages released */
    hr_model *fresh = NULL;
    CHECK(hr_model_load(SHARED("models/stories260K/stories260K.bin"), &fresh) == HR_OK, "%s", hr_last_error());
    CHECK(fresh && hr_model_weight_bytes(fresh) == 4 * hr_model_n_params(fresh), "fresh weight bytes %lld",
          fresh ? (long long)hr_model_weight_bytes(fresh) : 0LL);
    hr_model_free(fresh);
    int64_t want = 0, mats = 0;
    for (int l = 0; l < c->n_layers; l++) {
        int64_t q = (int64_t)c->n_head[l] * c->head_dim, kvd = (int64_t)c->n_head_kv[l] * c->head_dim, d = c->dim;
        int64_t ff = c->n_ff[l], r[7][2] = {{q, d}, {kvd, d}, {kvd, d}, {d, q}, {ff, d}, {ff, d}, {d, ff}};
        for (int i = 0; i < 7; i++) {
            want += ((r[i][0] + 15) / 16 * 16 * r[i][1] * 4 + 63) / 64 * 64;
            mats += r[i][0] * r[i][1];
        }
    }
    want += ((c->vocab_size + 15) / 16 * 16 * (int64_t)c->dim * 4 + 63) / 64 * 64; /* the classifier */
    mats += (int64_t)c->vocab_size * c->dim * (hr_config_tied_classifier(c) ? 1 : 2);
    want += 4 * (hr_model_n_params(f.m) - mats); /* norms */
    printf("    weight bytes after packing: %lld (expected %lld)\n", (long long)hr_model_weight_bytes(f.m),
           (long long)want);
    CHECK(hr_model_weight_bytes(f.m) == want, "weight bytes %lld, expected %lld", (long long)hr_model_weight_bytes(f.m),
          (long long)want);
    double pre = 0, dec = 0;
    CHECK(hr_measure_speed(f.a, f.ids, 64, 16, 2, &pre, &dec) == HR_OK && pre > 0 && dec > 0, "%s", hr_last_error());
    teardown(&f);
}

/* A whole run: the token budget decides the windows (counted by hand), the
 * candidate's KV plan applies to it alone, and bad parameters fail first. */
static void an_eval_run_scores_its_token_budget_and_flags_nothing_for_itself(void) {
    fixture f;
    setup(&f);
    const char *story = "Once upon a time there was a little girl named Lily. She loved to play outside in the sun. "
                        "One day she saw a big red ball in the park and ran to get it. Her mom smiled at her. ";
    char text[1024] = "";
    for (int i = 0; i < 3; i++) strcat(text, story); /* 64 tokens each: the budget, not the text, ends the run */
    hr_eval_params p = hr_eval_default_params();
    p.text = text;
    p.text_len = strlen(text);
    p.n_ctx = 48;
    p.max_tokens = 100; /* 100 / 48 = 2 windows: 47 + 46 scored positions */
    p.fdtm_prompts = 2;
    p.fdtm_gen = 8;
    p.speed = false;
    p.text_path = TEXT; /* only named and hashed */
    hr_eval_result *r = NULL;
    CHECK(hr_eval_run(f.m, f.m, f.tok, &p, &r) == HR_OK, "%s", hr_last_error());
    const hr_eval_summary *s = hr_eval_result_summary(r);
    if (s) {
        printf("    %lld text tokens, %lld scored in %d windows; KL %.3g, ppl %.4f / %.4f\n", (long long)s->text_tokens,
               (long long)s->cmp.n_tokens, s->cmp.n_windows, s->cmp.kl, s->ppl_base, s->ppl_cand);
        CHECK(s->cmp.n_windows == 2 && s->cmp.n_tokens == 47 + 46, "%d windows, %lld tokens", s->cmp.n_windows,
              (long long)s->cmp.n_tokens);
        CHECK(s->cmp.kl < 1e-12 && s->cmp.top1 == 1 && s->fdtm == 8 && s->ppl_base == s->ppl_cand && !s->warning[0],
              "self-evaluation differs: KL %g top-1 %g FDTM %g", s->cmp.kl, s->cmp.top1, s->fdtm);
        CHECK(strcmp(s->text.path, TEXT) == 0 && strlen(s->text.sha256) == 64 && !s->base.path[0], "sources: '%s' '%s'",
              s->text.path, s->text.sha256);
    }
    hr_eval_result_free(r);
    /* the whole text: every token after BOS once */
    p.max_tokens = 0;
    CHECK(hr_eval_run(f.m, f.m, f.tok, &p, &r) == HR_OK, "%s", hr_last_error());
    s = hr_eval_result_summary(r);
    if (s)
        CHECK(s->cmp.n_tokens == s->text_tokens - 1, "%lld of %lld", (long long)s->cmp.n_tokens,
              (long long)s->text_tokens);
    hr_eval_result_free(r);
    /* refused before any work */
    p.fdtm_gen = 40;
    CHECK(hr_eval_run(f.m, f.m, f.tok, &p, &r) == HR_ERR_RANGE && !r &&
              strstr(hr_last_error(), "window 48 is too short for 16-token FDTM prompts and 40 generated tokens"),
          "%s", hr_last_error());
    p.fdtm_gen = 8;
    p.speed = true;
    p.text_len = 30;
    CHECK(hr_eval_run(f.m, f.m, f.tok, &p, &r) == HR_ERR_RANGE && strstr(hr_last_error(), "speed measurement needs 36"),
          "%s", hr_last_error());
    teardown(&f);
}

/* Progress: perplexity reports one phase of windows and stops when its
 * callback says so; an evaluation run reports its phases in order and
 * stops at any of them with no result. */
typedef struct {
    int64_t updates, stop_at;
    int phases, last_step, n_steps;
    char first[32], last[32];
    bool ends_at_total;
} prog;

static int count_progress(const hr_progress_info *p, void *ud) {
    prog *g = ud;
    g->updates++;
    if (p->step != g->last_step) {
        g->phases++;
        if (g->phases == 1) snprintf(g->first, sizeof g->first, "%s", p->phase);
        snprintf(g->last, sizeof g->last, "%s", p->phase);
        g->last_step = p->step;
    }
    g->n_steps = p->n_steps;
    g->ends_at_total = p->done == p->total;
    return g->stop_at > 0 && g->updates >= g->stop_at;
}

static void progress_names_phases_and_a_callback_can_stop_perplexity_and_evaluation(void) {
    fixture f;
    setup(&f);
    hr_ppl_params pp = hr_ppl_default_params();
    pp.n_ctx = 64;
    prog g = {0};
    pp.progress_phase = count_progress;
    pp.progress_user_data = &g;
    hr_ppl_result res;
    CHECK(hr_perplexity(f.a, f.ids, f.n_ids, &pp, &res) == HR_OK, "%s", hr_last_error());
    CHECK(g.phases == 1 && strcmp(g.first, "perplexity") == 0 && g.n_steps == 1 && g.ends_at_total &&
              g.updates == res.n_windows + 1,
          "%d phases '%s', %lld updates for %d windows", g.phases, g.first, (long long)g.updates, res.n_windows);
    g = (prog){.stop_at = 3};
    CHECK(hr_perplexity(f.a, f.ids, f.n_ids, &pp, &res) == HR_ERR_ABORTED && g.updates == 3 &&
              strstr(hr_last_error(), "stopped"),
          "stop: %lld updates, %s", (long long)g.updates, hr_last_error());
    /* an evaluation: hashing, KL / top-1, FDTM, passkey 64 for both models, speed */
    hr_eval_params p = hr_eval_default_params();
    char text[6000];
    size_t n = strlen("Once upon a time there was a little girl named Lily. She loved to play outside. ");
    text[0] = 0;
    for (int i = 0; i < 20; i++)
        strcat(text, "Once upon a time there was a little girl named Lily. She loved to play outside. ");
    p.text = text;
    p.text_len = 20 * n;
    p.n_ctx = 64;
    p.windows = 2;
    p.fdtm_prompts = 2;
    p.fdtm_gen = 8;
    p.passkey = true;
    p.passkey_trials = 2;
    g = (prog){0};
    p.progress_phase = count_progress;
    p.progress_user_data = &g;
    hr_eval_result *r = NULL;
    CHECK(hr_eval_run(f.m, f.pruned, f.tok, &p, &r) == HR_OK, "%s", hr_last_error());
    printf("    evaluation: %d phases of %d, '%s' .. '%s', %lld updates\n", g.phases, g.n_steps, g.first, g.last,
           (long long)g.updates);
    CHECK(g.phases == 6 && g.n_steps == 6 && strcmp(g.first, "hashing inputs") == 0 && strcmp(g.last, "speed") == 0 &&
              g.ends_at_total,
          "phases %d of %d", g.phases, g.n_steps);
    hr_eval_result_free(r);
    for (int64_t stop = 1; stop < g.updates; stop += 7) {
        int64_t total = g.updates;
        g = (prog){.stop_at = stop};
        r = (hr_eval_result *)&g;
        CHECK(hr_eval_run(f.m, f.pruned, f.tok, &p, &r) == HR_ERR_ABORTED && r == NULL && g.updates == stop,
              "stop at update %lld of %lld: %s", (long long)stop, (long long)total, hr_last_error());
        g.updates = total;
    }
    teardown(&f);
}

int main(void) {
    HR_T_REQUIRE_SHARED("models/stories260K/stories260K.bin", "models/stories260K/tok512.bin",
                        "data/text/tinystories_val.txt");
    RUN(identical_models_have_zero_kl_and_full_agreement);
    RUN(a_pruned_model_diverges_from_its_base);
    RUN(windows_larger_than_the_contexts_are_rejected);
    RUN(passkey_prompts_are_scored_for_the_base_model);
    RUN(malformed_task_lines_are_reported_with_their_number);
    RUN(multiple_choice_prefers_the_story_continuation);
    RUN(sizes_follow_the_shapes);
    RUN(an_eval_run_scores_its_token_budget_and_flags_nothing_for_itself);
    RUN(progress_names_phases_and_a_callback_can_stop_perplexity_and_evaluation);
    TEST_MAIN_END();
}
