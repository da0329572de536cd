/* Training options, the run with Ctrl-C handling, and its summary (see
 * train_common.h). */
#include "train_common.h"

#include "headroom/study.h"

#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static volatile int g_stop;
static void on_sigint(int sig) {
    (void)sig;
    g_stop = 1;
}

static void (*g_old_handler)(int);

void cli_train_stop_on_sigint(hr_train_params *p, bool on) {
    if (on) {
        g_stop = 0;
        p->stop = &g_stop;
        g_old_handler = signal(SIGINT, on_sigint);
    } else {
        signal(SIGINT, g_old_handler);
    }
}

static bool has(const cli_spec *spec, const char *name) {
    for (int i = 0; i < spec->n_opts; i++)
        if (!strcmp(spec->opts[i].name, name)) return true;
    return false;
}

int cli_train_read(const cli_spec *spec, const cli_args *a, hr_train_params *p) {
    long steps = p->steps, batch = p->batch, accum = p->accum, warmup = p->warmup, window = p->window,
         every = p->eval_every, ck_every = p->checkpoint_every, rank = p->lora_rank, threads = p->n_threads;
    double lr = p->lr, wd = p->weight_decay, clip = p->clip, alpha = p->lora_alpha;
    if (cli_get_int(spec, a, "steps", 1, INT_MAX, &steps) || cli_get_float(spec, a, "lr", -INFINITY, INFINITY, &lr) ||
        cli_get_int(spec, a, "batch", 1, 65536, &batch) || cli_get_int(spec, a, "accum", 1, 65536, &accum) ||
        cli_get_int(spec, a, "warmup", 0, INT_MAX, &warmup) || cli_get_int(spec, a, "window", 2, INT_MAX, &window) ||
        cli_get_float(spec, a, "weight-decay", 0, 1e6, &wd) || cli_get_float(spec, a, "clip", 0, 1e30, &clip) ||
        cli_get_int(spec, a, "eval-every", 0, INT_MAX, &every) ||
        cli_get_int(spec, a, "checkpoint-every", 0, INT_MAX, &ck_every) ||
        cli_get_int(spec, a, "lora-rank", 1, 65536, &rank) || cli_get_float(spec, a, "lora-alpha", 0, 1e9, &alpha) ||
        cli_get_int(spec, a, "threads", 0, 4096, &threads) || cli_get_u64(spec, a, "seed", &p->seed))
        return CLI_FAIL;
    p->steps = (int)steps, p->lr = (float)lr, p->batch = (int)batch, p->accum = (int)accum, p->warmup = (int)warmup;
    p->window = (int)window, p->weight_decay = (float)wd, p->clip = (float)clip, p->eval_every = (int)every;
    p->checkpoint_every = (int)ck_every, p->lora_rank = (int)rank, p->lora_alpha = (float)alpha;
    p->n_threads = (int)threads;
    const char *tg = has(spec, "lora-targets") ? cli_value(spec, a, "lora-targets") : NULL;
    if (tg && hr_lora_targets_parse(tg, &p->lora_targets) != HR_OK) return cli_lib_error("bad --lora-targets");
    if (has(spec, "recompute")) p->recompute = cli_value(spec, a, "recompute") != NULL;
    if (has(spec, "full")) p->full = cli_value(spec, a, "full") != NULL;
    if (has(spec, "only")) p->only = cli_value(spec, a, "only");
    if (has(spec, "checkpoint")) p->checkpoint = cli_value(spec, a, "checkpoint");
    if (has(spec, "resume")) p->resume = cli_value(spec, a, "resume");
    return CLI_OK;
}

int cli_train_check_outputs(const char *out, const char *hf, const hr_train_params *p, bool force,
                            const char *model_path, const char *const *inputs) {
    if (!out) return cli_error("--out OUT.gguf is required");
    if (cli_check_output(out, HR_OUT_GGUF, NULL, force, model_path, NULL, inputs) ||
        (hf && cli_check_output(hf, HR_OUT_HF_FOLDER, NULL, force, model_path, NULL, inputs)))
        return CLI_FAIL;
    /* the checkpoint may be the file resumed from (continuing it) */
    const char *ck = p->checkpoint;
    if (ck && !(p->resume && !strcmp(ck, p->resume)) &&
        cli_check_output(ck, HR_OUT_FILE, "HRTRAIN1", force, model_path, NULL, inputs))
        return CLI_FAIL;
    if ((ck && !strcmp(ck, out)) || (hf && !strcmp(hf, out)))
        return cli_error("--out, --hf and --checkpoint must differ");
    return CLI_OK;
}

int cli_train_run(const hr_model *m, const hr_tokenizer *tok, const char *text_path, const char *out_path,
                  hr_train_params *p, hr_model **out) {
    char *text = NULL, ck[PATH_MAX + 16];
    size_t len = 0, n_ids = 0;
    int32_t *ids = NULL;
    if (cli_read_text(text_path, &text, &len)) return CLI_FAIL;
    hr_status st = hr_calib_tokens(tok, text, len, 0, &ids, &n_ids);
    free(text);
    if (st != HR_OK) return cli_lib_error("cannot tokenize the text");
    bool own_ck = !p->checkpoint;
    if (own_ck) snprintf(ck, sizeof ck, "%s.ckpt", out_path), p->checkpoint = ck;
    hr_train *t = NULL;
    cli_train_stop_on_sigint(p, true); /* hr_train_new copies p, stop flag included */
    if (hr_train_new(m, ids, n_ids, p, &t) != HR_OK) {
        cli_train_stop_on_sigint(p, false);
        hr_free(ids);
        return cli_lib_error("cannot start training");
    }
    double before = 0, t0 = cli_now();
    hr_train_info info;
    hr_train_get_info(t, &info);
    if (info.step == 0 && hr_train_eval(t, &before) != HR_OK) st = HR_ERR_RANGE;
    if (st == HR_OK) st = hr_train_run(t);
    cli_train_stop_on_sigint(p, false);
    int rc = CLI_OK;
    hr_train_get_info(t, &info);
    if (st != HR_OK) rc = cli_lib_error("training failed");
    else if (hr_train_model(t, out) != HR_OK) rc = cli_lib_error("cannot build the trained model");
    if (rc == CLI_OK) {
        if (own_ck) remove(ck);
        char took[32];
        cli_format_seconds(cli_now() - t0, took, sizeof took);
        printf("trained %d steps in %s on %lld tokens (%lld held out)\n", info.step, took, (long long)info.train_tokens,
               (long long)info.heldout_tokens);
        if (before > 0)
            printf("held-out loss %.4f -> %.4f (perplexity %.3f -> %.3f)\n", before, info.heldout_loss, exp(before),
                   exp(info.heldout_loss));
        else printf("held-out loss %.4f (perplexity %.3f)\n", info.heldout_loss, exp(info.heldout_loss));
    }
    p->checkpoint = own_ck ? NULL : p->checkpoint;
    hr_train_free(t);
    hr_free(ids);
    return rc;
}

int cli_train_write(const hr_model *m, const hr_tokenizer *tok, const char *out, const char *hf, hr_dtype dtype) {
    if (hr_model_save_gguf(m, tok, out, cli_gguf_dtype(dtype)) != HR_OK) return cli_lib_error("cannot write the GGUF");
    if (hf && hr_model_save_hf(m, tok, hf, dtype) != HR_OK) {
        remove(out);
        return cli_lib_error("cannot write the Hugging Face folder");
    }
    printf("wrote %s (%s)%s%s\n", out, hr_dtype_name(hr_dtype_for_model(m, dtype, true)), hf ? " and " : "",
           hf ? hf : "");
    return CLI_OK;
}
