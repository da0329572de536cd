/* Hugging Face folders: config.json parsing (every supported field, and
 * missing / mistyped / contradictory ones as clear errors) and hostile
 * folders (missing files, wrong shapes, bad shard indexes). */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "headroom/save.h"
#include "headroom/model.h"
#include "io/hf_internal.h"
#include "model/config.h"

static hr_status parse(const char *json, hr_config *c) { return hr_hf_parse_config(json, strlen(json), c, NULL); }

#define LLAMA_BASE                                                                                                     \
    "\"model_type\":\"llama\",\"hidden_size\":64,\"num_hidden_layers\":2,\"num_attention_heads\":4,"                   \
    "\"intermediate_size\":96,\"max_position_embeddings\":128,\"vocab_size\":100"
#define GPT2_BASE                                                                                                      \
    "\"model_type\":\"gpt2\",\"n_embd\":64,\"n_layer\":2,\"n_head\":4,\"n_positions\":32,\"vocab_size\":50"

static void llama3_config_reads_every_field(void) {
    hr_config c;
    hr_hf_extra ex;
    const char *j =
        "{\"model_type\":\"llama\",\"hidden_size\":2048,\"num_hidden_layers\":16,\"num_attention_heads\":32,"
        "\"num_key_value_heads\":8,\"head_dim\":64,\"intermediate_size\":8192,\"max_position_embeddings\":131072,"
        "\"rms_norm_eps\":1e-05,\"rope_theta\":500000.0,\"vocab_size\":128256,\"tie_word_embeddings\":true,"
        "\"bos_token_id\":128000,\"eos_token_id\":[128001,128008],\"hidden_act\":\"silu\","
        "\"rope_scaling\":{\"factor\":32.0,\"high_freq_factor\":4.0,\"low_freq_factor\":1.0,"
        "\"original_max_position_embeddings\":8192,\"rope_type\":\"llama3\"}}";
    CHECK(hr_hf_parse_config(j, strlen(j), &c, &ex) == HR_OK, "%s", hr_last_error());
    CHECK(c.arch == HR_ARCH_LLAMA && c.dim == 2048 && c.n_layers == 16 && c.n_head[15] == 32 && c.n_head_kv[0] == 8 &&
              c.head_dim == 64 && c.n_ff[3] == 8192 && c.seq_len == 131072 && c.vocab_size == 128256,
          "sizes");
    CHECK(c.norm_eps == 1e-5f && c.rope_theta == 500000.0f && c.tied_classifier, "floats and tie");
    CHECK(c.rope_scaling.llama3 && c.rope_scaling.factor == 32.0f && c.rope_scaling.low_freq_factor == 1.0f &&
              c.rope_scaling.high_freq_factor == 4.0f && c.rope_scaling.original_ctx == 8192,
          "rope scaling");
    CHECK(ex.bos_id == 128000 && ex.eos_id == 128001, "bos %d eos %d", ex.bos_id, ex.eos_id);
    CHECK(c.norm == HR_NORM_RMS && !c.qkv_bias, "llama traits");
}

static void qwen2_mistral_and_gpt2_configs_set_their_traits(void) {
    hr_config c;
    const char *q =
        "{\"model_type\":\"qwen2\",\"hidden_size\":64,\"num_hidden_layers\":2,\"num_attention_heads\":4,"
        "\"num_key_value_heads\":2,\"intermediate_size\":96,\"max_position_embeddings\":64,\"vocab_size\":97}";
    CHECK(parse(q, &c) == HR_OK && c.arch == HR_ARCH_QWEN2 && c.qkv_bias && !c.out_bias && c.head_dim == 16 &&
              c.norm_eps == 1e-6f && !c.tied_classifier,
          "qwen2: %s", hr_last_error());
    const char *mi = "{\"model_type\":\"mistral\",\"hidden_size\":64,\"num_hidden_layers\":2,\"num_attention_heads\":4,"
                     "\"intermediate_size\":96,\"max_position_embeddings\":128,\"vocab_size\":100}";
    CHECK(parse(mi, &c) == HR_OK && c.arch == HR_ARCH_LLAMA && c.n_head_kv[0] == 4, "mistral: %s", hr_last_error());
    const char *g = "{" GPT2_BASE ",\"n_inner\":null,\"n_ctx\":32,\"layer_norm_epsilon\":1e-5}";
    CHECK(parse(g, &c) == HR_OK && c.arch == HR_ARCH_GPT2 && c.n_ff[0] == 256 && c.seq_len == 32 && c.tied_classifier &&
              c.norm == HR_NORM_LAYER && c.pos == HR_POS_LEARNED && c.mlp_bias,
          "gpt2: %s", hr_last_error());
    const char *lb = "{" LLAMA_BASE ",\"attention_bias\":true}";
    CHECK(parse(lb, &c) == HR_OK && c.qkv_bias && c.out_bias, "llama attention_bias");
}

static void expect(hr_status want, const char *json, const char *msg) {
    hr_config c;
    hr_status s = parse(json, &c);
    CHECK(s == want, "status %d (want %d) for %s: %s", s, want, json, hr_last_error());
    CHECK(strstr(hr_last_error(), msg) != NULL, "message '%s' lacks '%s'", hr_last_error(), msg);
}

static void hostile_or_incomplete_configs_fail_clearly(void) {
    expect(HR_ERR_FORMAT, "not json", "not valid JSON");
    expect(HR_ERR_FORMAT, "[1]", "not a JSON object");
    expect(HR_ERR_FORMAT, "{\"hidden_size\":64}", "model_type");
    expect(HR_ERR_UNSUPPORTED, "{\"model_type\":\"bert\"}", "'bert' is not supported");
    expect(HR_ERR_FORMAT, "{\"model_type\":\"llama\",\"num_hidden_layers\":2}", "missing 'hidden_size'");
    expect(HR_ERR_FORMAT, "{\"model_type\":\"llama\",\"hidden_size\":\"64\"}", "'hidden_size' is not an integer");
    expect(HR_ERR_FORMAT, "{\"model_type\":\"llama\",\"hidden_size\":64.5}", "not an integer");
    expect(HR_ERR_FORMAT, "{\"model_type\":\"llama\",\"hidden_size\":-64}", "out of range");
    expect(HR_ERR_FORMAT, "{" LLAMA_BASE ",\"num_key_value_heads\":3}", "cannot share");
    expect(HR_ERR_FORMAT,
           "{\"model_type\":\"llama\",\"hidden_size\":65,\"num_hidden_layers\":2,\"num_attention_heads\":4,"
           "\"intermediate_size\":96,\"max_position_embeddings\":128,\"vocab_size\":100}",
           "not a multiple");
    expect(HR_ERR_FORMAT, "{" LLAMA_BASE ",\"num_hidden_layers\":3}", "gives 'num_hidden_layers' twice");
    expect(HR_ERR_FORMAT, "{\"model_type\":\"llama\",\"hidden_size\":64,\"num_hidden_layers\":100000}",
           "num_hidden_layers");
    expect(HR_ERR_FORMAT,
           "{\"model_type\":\"llama\",\"hidden_size\":64,\"num_hidden_layers\":2,\"num_attention_heads\":4,"
           "\"intermediate_size\":96,\"max_position_embeddings\":128}",
           "vocab_size");
    expect(HR_ERR_FORMAT, "{" LLAMA_BASE ",\"rms_norm_eps\":\"small\"}", "rms_norm_eps");
    expect(HR_ERR_FORMAT, "{" LLAMA_BASE ",\"tie_word_embeddings\":1}", "true/false");
    expect(HR_ERR_UNSUPPORTED, "{" LLAMA_BASE ",\"hidden_act\":\"relu\"}", "hidden_act");
    expect(HR_ERR_UNSUPPORTED, "{" LLAMA_BASE ",\"mlp_bias\":true}", "mlp_bias");
    expect(HR_ERR_UNSUPPORTED, "{" LLAMA_BASE ",\"rope_scaling\":{\"type\":\"yarn\",\"factor\":4}}", "yarn");
    expect(HR_ERR_FORMAT, "{" LLAMA_BASE ",\"rope_scaling\":{\"rope_type\":\"llama3\",\"factor\":8}}",
           "low_freq_factor");
    expect(HR_ERR_FORMAT,
           "{" LLAMA_BASE ",\"rope_scaling\":{\"rope_type\":\"llama3\",\"factor\":8,\"low_freq_factor\":4,"
           "\"high_freq_factor\":1,\"original_max_position_embeddings\":8192}}",
           "invalid");
    expect(HR_ERR_FORMAT, "{" LLAMA_BASE ",\"rope_scaling\":[1]}", "not an object");
    expect(HR_ERR_FORMAT, "{" GPT2_BASE ",\"hidden_size\":32}", "contradicts");
    expect(HR_ERR_FORMAT, "{" GPT2_BASE ",\"n_ctx\":64}", "contradicts");
    expect(HR_ERR_FORMAT, "{\"model_type\":\"gpt2\",\"n_embd\":64,\"n_layer\":2,\"n_head\":4,\"vocab_size\":50}",
           "n_positions");
    expect(HR_ERR_UNSUPPORTED, "{" GPT2_BASE ",\"activation_function\":\"relu\"}", "activation_function");
    char deep[300];
    memset(deep, '[', 100);
    memset(deep + 100, ']', 100);
    deep[200] = 0;
    char j[400];
    snprintf(j, sizeof j, "{\"model_type\":%s}", deep);
    expect(HR_ERR_FORMAT, j, "nests deeper");
}

/* ---- folders ---- */

static char g_dir[256];

static const char *path_in(const char *dir, const char *name) {
    static char buf[4][700];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
    return buf[k];
}

static void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    if (!f) return;
    fputs(text, f);
    fclose(f);
}

/* A valid HF folder written from stories260K. */
static const char *make_folder(const char *name) {
    static char dir[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(dir[k], sizeof dir[k], "%s/%s", g_dir, name);
    hr_model *m = NULL;
    if (hr_model_load(SHARED("models/stories260K/stories260K.bin"), &m) == HR_OK)
        hr_model_save_hf(m, NULL, dir[k], HR_DTYPE_F32);
    hr_model_free(m);
    return dir[k];
}

static void expect_load_error(const char *dir, hr_status want, const char *msg) {
    hr_model *m = NULL;
    hr_status s = hr_model_load(dir, &m);
    CHECK(s == want && m == NULL, "status %d (want %d): %s", s, want, hr_last_error());
    CHECK(strstr(hr_last_error(), msg) != NULL, "message '%s' lacks '%s'", hr_last_error(), msg);
    hr_model_free(m);
}

static void folders_without_config_or_weights_are_rejected(void) {
    expect_load_error(g_dir, HR_ERR_NOT_FOUND, "without config.json");
    const char *d = make_folder("noweights");
    unlink(path_in(d, "model.safetensors"));
    expect_load_error(d, HR_ERR_NOT_FOUND, "neither model.safetensors");
    const char *d2 = make_folder("rawfile");
    hr_model *m = NULL;
    CHECK(hr_model_load(path_in(d2, "model.safetensors"), &m) == HR_ERR_FORMAT &&
              strstr(hr_last_error(), "Hugging Face folder"),
          "a bare safetensors file points at its folder: %s", hr_last_error());
}

static void config_that_disagrees_with_tensor_shapes_is_rejected(void) {
    const char *d = make_folder("shape");
    write_text(path_in(d, "config.json"),
               "{\"model_type\":\"llama\",\"hidden_size\":64,\"num_hidden_layers\":5,\"num_attention_heads\":8,"
               "\"num_key_value_heads\":4,\"intermediate_size\":170,\"max_position_embeddings\":512,"
               "\"vocab_size\":512,\"tie_word_embeddings\":true}");
    expect_load_error(d, HR_ERR_FORMAT, "has shape [172, 64], expected [170, 64]");
    write_text(path_in(d, "config.json"),
               "{\"model_type\":\"llama\",\"hidden_size\":64,\"num_hidden_layers\":6,\"num_attention_heads\":8,"
               "\"num_key_value_heads\":4,\"intermediate_size\":172,\"max_position_embeddings\":512,"
               "\"vocab_size\":512,\"tie_word_embeddings\":true}");
    expect_load_error(d, HR_ERR_FORMAT, "missing the tensor 'model.layers.5.input_layernorm.weight'");
    write_text(path_in(d, "config.json"),
               "{\"model_type\":\"llama\",\"hidden_size\":64,\"num_hidden_layers\":5,\"num_attention_heads\":8,"
               "\"num_key_value_heads\":4,\"intermediate_size\":172,\"max_position_embeddings\":512,"
               "\"vocab_size\":512,\"tie_word_embeddings\":false}");
    expect_load_error(d, HR_ERR_FORMAT, "lm_head.weight");
}

static void shard_indexes_with_bad_names_or_duplicates_are_rejected(void) {
    const char *d = make_folder("index");
    write_text(path_in(d, "model.safetensors.index.json"), "{\"weight_map\":{\"a\":\"../../etc/passwd\"}}");
    expect_load_error(d, HR_ERR_FORMAT, "not a plain file name");
    write_text(path_in(d, "model.safetensors.index.json"), "{\"weight_map\":{\"a\":5}}");
    expect_load_error(d, HR_ERR_FORMAT, "not a file name");
    write_text(path_in(d, "model.safetensors.index.json"), "{\"weight_map\":{}}");
    expect_load_error(d, HR_ERR_FORMAT, "empty");
    write_text(path_in(d, "model.safetensors.index.json"), "{\"metadata\":{}}");
    expect_load_error(d, HR_ERR_FORMAT, "no weight_map");
    write_text(path_in(d, "model.safetensors.index.json"), "{\"weight_map\":{\"a\":\"missing.safetensors\"}}");
    expect_load_error(d, HR_ERR_IO, "missing.safetensors");
    /* Two shards holding the same tensors. */
    char cmd[1600];
    snprintf(cmd, sizeof cmd, "cp '%s' '%s'", path_in(d, "model.safetensors"), path_in(d, "copy.safetensors"));
    CHECK(system(cmd) == 0, "copy shard");
    write_text(path_in(d, "model.safetensors.index.json"),
               "{\"weight_map\":{\"a\":\"model.safetensors\",\"b\":\"copy.safetensors\"}}");
    expect_load_error(d, HR_ERR_FORMAT, "more than one shard");
    /* A valid two-entry index pointing at the one shard loads. */
    write_text(path_in(d, "model.safetensors.index.json"),
               "{\"weight_map\":{\"a\":\"model.safetensors\",\"b\":\"model.safetensors\"}}");
    hr_model *m = NULL;
    CHECK(hr_model_load(d, &m) == HR_OK, "%s", hr_last_error());
    hr_model_free(m);
}

static void corrupt_safetensors_in_a_folder_names_the_file(void) {
    const char *d = make_folder("corrupt");
    FILE *f = fopen(path_in(d, "model.safetensors"), "r+b");
    if (f) {
        uint64_t huge = 1ull << 40;
        fwrite(&huge, 8, 1, f);
        fclose(f);
    }
    expect_load_error(d, HR_ERR_FORMAT, "model.safetensors");
}

int main(void) {
    HR_T_REQUIRE_SHARED("models/stories260K/stories260K.bin");
    if (hr_t_scratch_dir(g_dir, sizeof g_dir, "test_hf")) return 1;
    RUN(llama3_config_reads_every_field);
    RUN(qwen2_mistral_and_gpt2_configs_set_their_traits);
    RUN(hostile_or_incomplete_configs_fail_clearly);
    RUN(folders_without_config_or_weights_are_rejected);
    RUN(config_that_disagrees_with_tensor_shapes_is_rejected);
    RUN(shard_indexes_with_bad_names_or_duplicates_are_rejected);
    RUN(corrupt_safetensors_in_a_folder_names_the_file);
    hr_t_rm_rf(g_dir);
    TEST_MAIN_END();
}
