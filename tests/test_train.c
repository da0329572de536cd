/* Training loop (headroom/train.h): resuming equals never stopping, bit for
 * bit; checkpoints of another model or corrupt ones are refused; LoRA
 * merged into the weights gives the LoRA forward's logits (1e-5 of the
 * largest logit); --only leaves
 * every other weight bit-identical; fine-tuning stories260K lowers its
 * held-out loss; bad parameters fail before any work; a non-finite loss
 * stops the run without changing anything; random initialisation is
 * deterministic. (AdamW, the schedule and clipping against PyTorch:
 * test_train_reference.sh.) */
#include "check.h"
#include "headroom/context.h"
#include "headroom/grad.h"
#include "headroom/model.h"
#include "headroom/study.h"
#include "headroom/tokenizer.h"
#include "headroom/train.h"

#include <stdint.h>

static hr_model *g_model;
static int32_t *g_ids;
static size_t g_n;

static hr_train_params small_params(void) {
    hr_train_params p = hr_train_default_params();
    p.lora_rank = 4, p.lora_alpha = 8, p.steps = 6, p.lr = 1e-2f, p.window = 32, p.batch = 2, p.warmup = 1;
    p.eval_windows = 4, p.n_threads = 2, p.seed = 5;
    return p;
}

static void tmp_path(char *buf, size_t cap, const char *name) {
    snprintf(buf, cap, "%s/hr_test_train_%d_%s", HR_BINARY_DIR, (int)getpid(), name);
}

/* Tensors whose values are not bit-identical in two parameter sets of one shape. */
static int tensors_differ(const hr_params *pa, const hr_params *pb) {
    int differ = 0;
    for (int i = 0; i < hr_params_n_tensors(pa); i++) {
        hr_param_info in;
        hr_params_info(pa, i, &in);
        differ +=
            memcmp(hr_params_data(pa, i), hr_params_data(pb, i), sizeof(float) * (size_t)(in.rows * in.cols)) != 0;
    }
    return differ;
}

static int stop_at_3(const hr_progress_info *info, void *user) {
    (void)user;
    return info->done == 3;
}

static void a_resumed_run_continues_the_loss_curve_bit_for_bit(void) {
    hr_train_params p = small_params();
    hr_train *t = NULL;
    double full[6];
    CHECK(hr_train_new(g_model, g_ids, g_n, &p, &t) == HR_OK, "%s", hr_last_error());
    if (!t) return;
    hr_train_info info;
    for (int s = 0; s < 6; s++) {
        hr_train_step(t);
        hr_train_get_info(t, &info);
        full[s] = info.loss;
    }
    char ck[512];
    tmp_path(ck, sizeof ck, "resume.ckpt");
    /* interrupted by the progress callback after step 3: checkpoint written */
    hr_train_params p2 = small_params();
    p2.checkpoint = ck, p2.progress_phase = stop_at_3;
    hr_train *a = NULL, *b = NULL;
    CHECK(hr_train_new(g_model, g_ids, g_n, &p2, &a) == HR_OK, "%s", hr_last_error());
    hr_status st = hr_train_run(a);
    CHECK(st == HR_ERR_ABORTED && strstr(hr_last_error(), "checkpoint written"), "status %d: %s", st, hr_last_error());
    hr_train_free(a);
    hr_train_params p3 = small_params();
    p3.resume = ck;
    CHECK(hr_train_new(g_model, g_ids, g_n, &p3, &b) == HR_OK, "%s", hr_last_error());
    if (b) {
        hr_train_get_info(b, &info);
        CHECK(info.step == 3, "resumed at step %d", info.step);
        int same = 0;
        for (int s = 3; s < 6; s++) {
            hr_train_step(b);
            hr_train_get_info(b, &info);
            same += memcmp(&info.loss, &full[s], sizeof(double)) == 0;
            printf("    step %d: uninterrupted %.17g, resumed %.17g\n", s + 1, full[s], info.loss);
        }
        CHECK(same == 3, "%d of 3 losses bit-identical", same);
        const hr_params *pa = hr_train_parameters(t), *pb = hr_train_parameters(b);
        int differ = tensors_differ(pa, pb);
        CHECK(differ == 0, "%d tensors differ after resuming", differ);
    }
    hr_train_free(b);
    hr_train_free(t);
    unlink(ck);
}

/* --recompute keeps only each layer's input and recomputes the rest in the
 * backward: fewer bytes, the same steps bit for bit. */
static void recomputing_activations_trains_bit_identically(void) {
    hr_train_params p = small_params(), pr = small_params();
    pr.recompute = true;
    hr_train *a = NULL, *b = NULL;
    CHECK(hr_train_new(g_model, g_ids, g_n, &p, &a) == HR_OK, "%s", hr_last_error());
    CHECK(hr_train_new(g_model, g_ids, g_n, &pr, &b) == HR_OK, "%s", hr_last_error());
    if (a && b) {
        hr_train_info ia, ib;
        int same = 0;
        for (int s = 0; s < 3; s++) {
            hr_train_step(a), hr_train_step(b);
            hr_train_get_info(a, &ia), hr_train_get_info(b, &ib);
            same += memcmp(&ia.loss, &ib.loss, sizeof(double)) == 0 && memcmp(&ia.grad_norm, &ib.grad_norm, 8) == 0;
        }
        CHECK(same == 3, "%d of 3 steps with bit-identical loss and gradient norm", same);
        int differ = tensors_differ(hr_train_parameters(a), hr_train_parameters(b));
        CHECK(differ == 0, "%d tensors differ with recompute", differ);
    }
    hr_train_free(a);
    hr_train_free(b);
}

static void checkpoints_of_another_model_or_mode_or_corrupt_ones_are_refused(void) {
    char ck[512];
    tmp_path(ck, sizeof ck, "refuse.ckpt");
    hr_train_params p = small_params();
    hr_train *t = NULL;
    CHECK(hr_train_new(g_model, g_ids, g_n, &p, &t) == HR_OK, "%s", hr_last_error());
    hr_train_step(t);
    CHECK(hr_train_save(t, ck) == HR_OK, "%s", hr_last_error());
    hr_train_free(t);
    t = NULL;
    /* another model shape */
    hr_random_model_params rp = {
        .dim = 64, .n_layers = 2, .n_heads = 4, .n_kv_heads = 4, .hidden = 96, .vocab = 512, .seq_len = 64, .seed = 1};
    hr_model *other = NULL;
    CHECK(hr_model_random(&rp, &other) == HR_OK, "%s", hr_last_error());
    p.resume = ck;
    CHECK(hr_train_new(other, g_ids, g_n, &p, &t) == HR_ERR_FORMAT && strstr(hr_last_error(), "another model"), "%s",
          hr_last_error());
    hr_model_free(other);
    /* another LoRA rank */
    p.lora_rank = 2;
    CHECK(hr_train_new(g_model, g_ids, g_n, &p, &t) == HR_ERR_FORMAT, "%s", hr_last_error());
    p.lora_rank = 4;
    /* one flipped byte */
    char *data = NULL;
    size_t len = 0;
    hr_read_file(ck, &data, &len);
    data[len / 2] ^= 0x10;
    hr_write_file_atomic(ck, data, len);
    CHECK(hr_train_new(g_model, g_ids, g_n, &p, &t) == HR_ERR_FORMAT && strstr(hr_last_error(), "corrupt"), "%s",
          hr_last_error());
    hr_write_file_atomic(ck, data, 100);
    CHECK(hr_train_new(g_model, g_ids, g_n, &p, &t) == HR_ERR_FORMAT, "truncated: %s", hr_last_error());
    printf("    refused: %s\n", hr_last_error());
    hr_free(data);
    CHECK(t == NULL, "no run created");
    unlink(ck);
}

static void the_merged_model_gives_the_lora_forwards_logits(void) {
    hr_train_params p = small_params();
    p.lora_targets = HR_LORA_ALL;
    hr_train *t = NULL;
    CHECK(hr_train_new(g_model, g_ids, g_n, &p, &t) == HR_OK, "%s", hr_last_error());
    if (!t) return;
    for (int s = 0; s < 4; s++) hr_train_step(t);
    hr_model *merged = NULL;
    CHECK(hr_train_model(t, &merged) == HR_OK, "%s", hr_last_error());
    int n = 40, V = hr_config_vocab_size(hr_model_config(g_model));
    float *lora = malloc(sizeof(float) * (size_t)(n - 1) * V), *full = malloc(sizeof(float) * (size_t)n * V);
    hr_grad_params gp = hr_grad_default_params();
    gp.kinds = 0, gp.n_threads = 2;
    hr_grad *g = NULL;
    double loss;
    CHECK(hr_grad_new(hr_train_parameters_mut(t), &gp, &g) == HR_OK, "%s", hr_last_error());
    CHECK(hr_grad_loss(g, g_ids + 100, n, &loss, lora) == HR_OK, "%s", hr_last_error());
    hr_context *ctx = NULL;
    hr_context_params cp = hr_context_default_params();
    cp.n_threads = 2;
    CHECK(hr_context_new(merged, &cp, &ctx) == HR_OK, "%s", hr_last_error());
    CHECK(hr_forward(ctx, g_ids + 100, n, full, true) == HR_OK, "%s", hr_last_error());
    double d = hr_t_maxdiff("merged logits vs LoRA forward", lora, full, (size_t)(n - 1) * V), big = 0;
    for (size_t i = 0; i < (size_t)(n - 1) * V; i++) big = fmax(big, fabs(lora[i]));
    printf("    relative to the largest |logit| %.3g: %.3g (tolerance 1e-5)\n", big, d / big);
    CHECK(d <= 1e-5 * big, "max diff %g > 1e-5 * %g", d, big);
    /* and the adapters moved the model: the merged logits differ from the base's */
    hr_context *base = NULL;
    hr_context_new(g_model, &cp, &base);
    hr_forward(base, g_ids + 100, n, full, true);
    double moved = hr_t_maxdiff("base vs merged logits", lora, full, (size_t)(n - 1) * V);
    CHECK(moved > 1e-3, "the adapters changed nothing (%g)", moved);
    hr_context_free(base);
    hr_context_free(ctx);
    hr_grad_free(g);
    hr_model_free(merged);
    hr_train_free(t);
    free(lora), free(full);
}

static void only_leaves_every_other_weight_bit_identical(void) {
    hr_train_params p = small_params();
    p.lora_rank = 0, p.full = true, p.only = "heads:1.3,4.0;mlp:2", p.lr = 1e-2f;
    hr_train *t = NULL;
    CHECK(hr_train_new(g_model, g_ids, g_n, &p, &t) == HR_OK, "%s", hr_last_error());
    if (!t) return;
    for (int s = 0; s < 3; s++) hr_train_step(t);
    hr_model *out = NULL;
    CHECK(hr_train_model(t, &out) == HR_OK, "%s", hr_last_error());
    hr_params *a = NULL, *b = NULL;
    hr_params_new(g_model, NULL, &a);
    hr_params_new(out, NULL, &b);
    int hd = hr_config_head_dim(hr_model_config(g_model));
    int64_t changed_in = 0, changed_out = 0;
    for (int i = 0; i < hr_params_n_tensors(a); i++) {
        hr_param_info in;
        hr_params_info(a, i, &in);
        const float *x = hr_params_data(a, i), *y = hr_params_data(b, i);
        for (int64_t r = 0; r < in.rows; r++)
            for (int64_t c = 0; c < in.cols; c++) {
                bool part = (in.layer == 2 &&
                             (in.kind == HR_PARAM_W_GATE || in.kind == HR_PARAM_W_UP || in.kind == HR_PARAM_W_DOWN)) ||
                            (in.layer == 1 && in.kind == HR_PARAM_WQ && r / hd == 3) ||
                            (in.layer == 1 && in.kind == HR_PARAM_WO && c / hd == 3) ||
                            (in.layer == 4 && in.kind == HR_PARAM_WQ && r / hd == 0) ||
                            (in.layer == 4 && in.kind == HR_PARAM_WO && c / hd == 0) ||
                            ((in.kind == HR_PARAM_WK || in.kind == HR_PARAM_WV) &&
                             ((in.layer == 1 && r / hd == 3 / 2) || (in.layer == 4 && r / hd == 0)));
                bool ch = memcmp(&x[r * in.cols + c], &y[r * in.cols + c], sizeof(float)) != 0;
                if (part) changed_in += ch;
                else changed_out += ch;
            }
    }
    printf("    elements changed inside the part %lld, outside %lld\n", (long long)changed_in, (long long)changed_out);
    CHECK(changed_out == 0, "%lld elements outside --only changed", (long long)changed_out);
    CHECK(changed_in > 1000, "only %lld elements of the part changed", (long long)changed_in);
    hr_params_free(a), hr_params_free(b);
    hr_model_free(out);
    hr_train_free(t);
}

static void fine_tuning_stories260k_lowers_its_held_out_loss(void) {
    hr_train_params p = small_params();
    p.steps = 40, p.lr = 1e-3f, p.window = 64, p.batch = 4, p.eval_windows = 16, p.warmup = 4;
    hr_train *t = NULL;
    CHECK(hr_train_new(g_model, g_ids, g_n, &p, &t) == HR_OK, "%s", hr_last_error());
    if (!t) return;
    double before = 0, after = 0;
    hr_train_eval(t, &before);
    CHECK(hr_train_run(t) == HR_OK, "%s", hr_last_error());
    hr_train_eval(t, &after);
    hr_train_info info;
    hr_train_get_info(t, &info);
    /* the run gives back its window buffers when done: an evaluation after it rebuilds them, same loss */
    CHECK(after == info.heldout_loss, "held-out loss after the run %.9g, the run's last evaluation %.9g", after,
          info.heldout_loss);
    printf("    held-out loss %.4f -> %.4f after %d LoRA steps\n", before, after, p.steps);
    CHECK(after < before - 0.01, "held-out loss %.4f -> %.4f", before, after);
    hr_train_free(t);
}

static void bad_parameters_fail_before_any_work(void) {
    hr_train *t = NULL;
    hr_train_params p = small_params();
    p.lr = 0;
    CHECK(hr_train_new(g_model, g_ids, g_n, &p, &t) == HR_ERR_RANGE && strstr(hr_last_error(), "learning rate"), "%s",
          hr_last_error());
    p.lr = NAN;
    CHECK(hr_train_new(g_model, g_ids, g_n, &p, &t) == HR_ERR_RANGE, "NaN lr: %s", hr_last_error());
    p = small_params();
    p.lora_rank = 1000;
    CHECK(hr_train_new(g_model, g_ids, g_n, &p, &t) == HR_ERR_RANGE && strstr(hr_last_error(), "larger"), "%s",
          hr_last_error());
    printf("    %s\n", hr_last_error());
    p = small_params();
    p.lora_rank = 0, p.full = true, p.only = "heads:0.99";
    CHECK(hr_train_new(g_model, g_ids, g_n, &p, &t) == HR_ERR_INVALID_ARG, "%s", hr_last_error());
    printf("    %s\n", hr_last_error());
    p.only = "mlp:77";
    CHECK(hr_train_new(g_model, g_ids, g_n, &p, &t) == HR_ERR_INVALID_ARG, "%s", hr_last_error());
    p = small_params();
    CHECK(hr_train_new(g_model, g_ids, 50, &p, &t) == HR_ERR_RANGE && strstr(hr_last_error(), "too short"), "%s",
          hr_last_error());
    printf("    %s\n", hr_last_error());
    p.full = true;
    CHECK(hr_train_new(g_model, g_ids, g_n, &p, &t) == HR_ERR_INVALID_ARG, "full and LoRA: %s", hr_last_error());
    CHECK(t == NULL, "no run created");
}

static void a_non_finite_loss_stops_the_run_without_changing_anything(void) {
    hr_train_params p = small_params();
    p.lora_rank = 0, p.full = true;
    hr_train *t = NULL;
    CHECK(hr_train_new(g_model, g_ids, g_n, &p, &t) == HR_OK, "%s", hr_last_error());
    if (!t) return;
    hr_params *P = hr_train_parameters_mut(t);
    int iq = hr_params_find(P, HR_PARAM_WQ, 0, 0), io = hr_params_find(P, HR_PARAM_WO, 3, 0);
    hr_params_data_mut(P, iq)[5] = INFINITY;
    hr_param_info in;
    hr_params_info(P, io, &in);
    float *before = malloc(sizeof(float) * (size_t)(in.rows * in.cols));
    memcpy(before, hr_params_data(P, io), sizeof(float) * (size_t)(in.rows * in.cols));
    hr_status st = hr_train_step(t);
    CHECK(st == HR_ERR_RANGE && strstr(hr_last_error(), "not finite"), "status %d: %s", st, hr_last_error());
    printf("    %s\n", hr_last_error());
    CHECK(memcmp(before, hr_params_data(P, io), sizeof(float) * (size_t)(in.rows * in.cols)) == 0, "weights changed");
    hr_train_info info;
    hr_train_get_info(t, &info);
    CHECK(info.step == 0, "step counted: %d", info.step);
    free(before);
    hr_train_free(t);
}

/* Per-layer ranks: layer l's adapters change only in their first r_l rows
 * of A / columns of B, the rest of A is zero and of B stays zero, so each
 * merged update W' - W has rank <= r_l (its B has r_l non-zero columns);
 * ranks outside 0..lora_rank and a checkpoint of other ranks are refused. */
static void per_layer_ranks_train_only_the_first_ranks_of_each_layer(void) {
    hr_train_params p = small_params();
    int ranks[5] = {4, 2, 1, 0, 3};
    p.lora_layer_ranks = ranks;
    hr_train *t = NULL;
    CHECK(hr_train_new(g_model, g_ids, g_n, &p, &t) == HR_OK, "%s", hr_last_error());
    CHECK(t && hr_train_run(t) == HR_OK, "%s", hr_last_error());
    const hr_params *P = hr_train_parameters(t);
    for (int l = 0; P && l < 5; l++)
        for (int tg = 0; tg < 7; tg++) {
            int ia = hr_params_find(P, HR_PARAM_LORA_A, l, (hr_lora_target)(1u << tg));
            int ib = hr_params_find(P, HR_PARAM_LORA_B, l, (hr_lora_target)(1u << tg));
            if (ia < 0 || ib < 0) continue;
            hr_param_info a, b;
            hr_params_info(P, ia, &a), hr_params_info(P, ib, &b);
            const float *A = hr_params_data(P, ia), *B = hr_params_data(P, ib);
            int moved = 0, stray = 0;
            for (int64_t i = 0; i < b.rows; i++)
                for (int64_t k = 0; k < b.cols; k++) {
                    float v = B[i * b.cols + k];
                    if (k < ranks[l]) moved += v != 0;
                    else stray += v != 0;
                }
            for (int64_t k = ranks[l] ? ranks[l] : a.rows; k < a.rows; k++)
                for (int64_t j = 0; j < a.cols; j++) stray += A[k * a.cols + j] != 0;
            CHECK(stray == 0 && (ranks[l] == 0 ? moved == 0 : moved > 0),
                  "layer %d target %d (rank %d): %d trained B entries, %d outside the rank", l, tg, ranks[l], moved,
                  stray);
        }
    char ck[512];
    tmp_path(ck, sizeof ck, "ranks.ckpt");
    CHECK(t && hr_train_save(t, ck) == HR_OK, "%s", hr_last_error());
    hr_train_free(t);
    t = NULL;
    ranks[1] = 3;
    p.resume = ck;
    CHECK(hr_train_new(g_model, g_ids, g_n, &p, &t) == HR_ERR_FORMAT, "other ranks resumed: %s", hr_last_error());
    unlink(ck);
    p.resume = NULL;
    ranks[1] = 5;
    CHECK(hr_train_new(g_model, g_ids, g_n, &p, &t) == HR_ERR_RANGE && strstr(hr_last_error(), "outside 0..4"), "%s",
          hr_last_error());
    CHECK(t == NULL, "no run created");
}

static void random_initialisation_is_deterministic_and_trains(void) {
    hr_random_model_params rp = {
        .dim = 32, .n_layers = 2, .n_heads = 4, .n_kv_heads = 2, .hidden = 64, .vocab = 512, .seq_len = 64, .seed = 9};
    hr_model *a = NULL, *b = NULL;
    CHECK(hr_model_random(&rp, &a) == HR_OK && hr_model_random(&rp, &b) == HR_OK, "%s", hr_last_error());
    if (!a || !b) return;
    hr_params *pa = NULL, *pb = NULL;
    hr_params_new(a, NULL, &pa), hr_params_new(b, NULL, &pb);
    int differ = tensors_differ(pa, pb);
    CHECK(differ == 0, "%d tensors differ for the same seed", differ);
    /* initial loss near log(vocab): the classifier starts almost uniform */
    hr_train_params p = small_params();
    p.lora_rank = 0, p.full = true, p.steps = 30, p.lr = 1e-2f;
    hr_train *t = NULL;
    CHECK(hr_train_new(a, g_ids, g_n, &p, &t) == HR_OK, "%s", hr_last_error());
    double l0 = 0, l1 = 0;
    hr_train_eval(t, &l0);
    CHECK(fabs(l0 - log(512.0)) < 0.1, "initial held-out loss %.4f, log(vocab) %.4f", l0, log(512.0));
    CHECK(hr_train_run(t) == HR_OK, "%s", hr_last_error());
    hr_train_eval(t, &l1);
    hr_train_info info;
    hr_train_get_info(t, &info);
    /* window buffers and the packed copy of the trained weights are rebuilt after the run: same loss */
    CHECK(l1 == info.heldout_loss, "held-out loss after the run %.9g, the run's last evaluation %.9g", l1,
          info.heldout_loss);
    printf("    random model: held-out loss %.4f -> %.4f in %d steps\n", l0, l1, p.steps);
    CHECK(l1 < l0 - 0.5, "no learning: %.4f -> %.4f", l0, l1);
    hr_train_free(t);
    hr_params_free(pa), hr_params_free(pb);
    hr_model_free(a), hr_model_free(b);
}

int main(void) {
    hr_tokenizer *tok = NULL;
    char *text = NULL;
    size_t len = 0;
    if (hr_model_load(SHARED("models/stories260K/stories260K.bin"), &g_model) != HR_OK ||
        hr_tokenizer_load(SHARED("models/stories260K/tok512.bin"), &tok) != HR_OK ||
        hr_read_file(SHARED("data/text/tinystories_val.txt"), &text, &len) != HR_OK ||
        hr_calib_tokens(tok, text, len, 12000, &g_ids, &g_n) != HR_OK) {
        fprintf(stderr, "test_train: cannot load stories260K or its text: %s\n", hr_last_error());
        return 1;
    }
    RUN(a_resumed_run_continues_the_loss_curve_bit_for_bit);
    RUN(recomputing_activations_trains_bit_identically);
    RUN(checkpoints_of_another_model_or_mode_or_corrupt_ones_are_refused);
    RUN(the_merged_model_gives_the_lora_forwards_logits);
    RUN(only_leaves_every_other_weight_bit_identical);
    RUN(fine_tuning_stories260k_lowers_its_held_out_loss);
    RUN(bad_parameters_fail_before_any_work);
    RUN(a_non_finite_loss_stops_the_run_without_changing_anything);
    RUN(random_initialisation_is_deterministic_and_trains);
    RUN(per_layer_ranks_train_only_the_first_ranks_of_each_layer);
    hr_free(g_ids);
    hr_free(text);
    hr_tokenizer_free(tok);
    hr_model_free(g_model);
    TEST_MAIN_END();
}
