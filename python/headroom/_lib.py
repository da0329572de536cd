"""ctypes bindings of libheadroom's public C API (include/headroom/*.h).

Only this module touches the C ABI: it finds the shared library, declares
the structs and prototypes the package uses, turns hr_status codes into
headroom.Error exceptions carrying the library's last-error message, and
forwards the library's log lines to Python's logging ("headroom" logger).
ctypes releases the GIL around every foreign call, so long C calls (forward
passes, the head lab, pruning, evaluation) let other Python threads run.

Struct layouts mirror the C headers field for field; python/tests checks
every size and offset against the compiler's (tests/tools/hr_abi_dump).
"""
import ctypes
import ctypes.util
import logging
import os
import sys

from ctypes import (POINTER, Structure, CFUNCTYPE, c_bool, c_char, c_char_p, c_double, c_float, c_int, c_int32,
                    c_int64, c_size_t, c_uint32, c_uint64, c_void_p)

# ---------------------------------------------------------------- finding it

_NAMES = ("libheadroom.so",)


def _candidates():
    """Where libheadroom.so is looked for, in order (README "Python")."""
    env = os.environ.get("HEADROOM_LIB")
    if env:  # an explicit choice is the only one tried
        yield env
        return
    here = os.path.dirname(os.path.abspath(__file__))
    for n in _NAMES:  # copied into the package by pip install
        yield os.path.join(here, n)
    repo = os.path.dirname(os.path.dirname(here))  # <repo>/python/headroom -> <repo>
    if os.path.isfile(os.path.join(repo, "include", "headroom", "common.h")):
        for n in _NAMES:  # the source tree's Release build
            yield os.path.join(repo, "build", n)
    for prefix in dict.fromkeys((sys.prefix, os.path.expanduser("~/.local"), "/usr/local", "/usr")):
        for sub in ("lib", "lib64", "lib/x86_64-linux-gnu"):  # cmake --install prefixes
            for n in _NAMES:
                yield os.path.join(prefix, sub, n)
    found = ctypes.util.find_library("headroom")
    if found:
        yield found


def _load():
    tried = []
    for path in _candidates():
        if os.path.sep in path and not os.path.exists(path):
            tried.append(path)
            continue
        try:
            return ctypes.CDLL(path), path
        except OSError as e:
            tried.append(f"{path} ({e})")
    raise ImportError("headroom: cannot find libheadroom.so; build it (cmake -S . -B build && cmake --build build), "
                      "install the package (pip install ./python) or set HEADROOM_LIB to its path. Tried: "
                      + ", ".join(tried[:6]) + (" ..." if len(tried) > 6 else ""))


lib, path = _load()

# ---------------------------------------------------------------- errors

HR_OK = 0


class Error(Exception):
    """A failure reported by libheadroom: str(e) is the library's message,
    e.status the hr_status code (negative)."""

    def __init__(self, message, status=-1):
        super().__init__(message)
        self.status = status


class InvalidArgument(Error, ValueError):
    """HR_ERR_INVALID_ARG: the caller passed something unusable (also: a closed handle)."""


class IOError_(Error, OSError):
    """HR_ERR_IO: open, read, write, map or rename failed."""

    def __init__(self, message, status=-2):  # OSError's constructor would read (errno, strerror)
        Error.__init__(self, message, status)

    def __str__(self):
        return self.args[0]


class FormatError(Error, ValueError):
    """HR_ERR_FORMAT: a file or text is malformed or hostile."""


class Unsupported(Error):
    """HR_ERR_UNSUPPORTED: well formed but not supported (a dtype, an architecture, a shape)."""


class OutOfMemory(Error, MemoryError):
    """HR_ERR_NOMEM: an allocation failed or a size overflowed."""


class RangeError(Error, IndexError):
    """HR_ERR_RANGE: a value outside the allowed range (context length, amount)."""


class NotFound(Error, LookupError):
    """HR_ERR_NOT_FOUND: a key, tensor, method or file is missing."""


class Aborted(Error):
    """HR_ERR_ABORTED: a callback asked to stop."""


ERRORS = {-1: InvalidArgument, -2: IOError_, -3: FormatError, -4: Unsupported, -5: OutOfMemory, -6: RangeError,
          -7: NotFound, -8: Aborted}


def last_error():
    return lib.hr_last_error().decode("utf-8", "replace")


def error(status, message=None):
    """The Error subclass of a failing hr_status, with the library's message."""
    msg = message or last_error() or lib.hr_status_str(status).decode()
    return ERRORS.get(status, Error)(msg, status)


def check(status):
    """Raises the Error of a failing hr_status (the calling thread's hr_last_error)."""
    if status != HR_OK:
        raise error(status)


def closed(what):
    return InvalidArgument(f"the {what} is closed", -1)


# ---------------------------------------------------------------- structs (mirror include/headroom/*.h)

P = c_void_p  # every opaque handle
PROGRESS_FN = CFUNCTYPE(c_int, c_int64, c_int64, c_void_p)   # hr_progress_fn
LOG_FN = CFUNCTYPE(None, c_int, c_char_p, c_void_p)          # hr_log_fn


class HookEvent(Structure):  # hr_hook_event (context.h)
    _fields_ = [("point", c_int), ("layer", c_int), ("head", c_int), ("n_tokens", c_int), ("pos0", c_int),
                ("n_cols", c_int), ("stride", c_int), ("data", POINTER(c_float))]


HOOK_FN = CFUNCTYPE(c_int, POINTER(HookEvent), c_void_p)     # hr_hook_fn


class ContextParams(Structure):  # hr_context_params
    _fields_ = [("n_ctx", c_int), ("n_threads", c_int), ("n_batch", c_int), ("kv_plan", P), ("blas_prefill", c_bool),
                ("bf16_dot", c_bool), ("int8_dot", c_bool)]


class EncodeParams(Structure):  # hr_encode_params
    _fields_ = [("add_bos", c_bool), ("add_eos", c_bool), ("add_space_prefix", c_int), ("parse_special", c_bool)]


class SamplerParams(Structure):  # hr_sampler_params
    _fields_ = [("temperature", c_float), ("top_p", c_float), ("seed", c_uint64)]


class OutputParams(Structure):  # hr_output_params (common.h)
    _fields_ = [("kind", c_int), ("format", c_char_p), ("inputs", POINTER(c_char_p)), ("n_inputs", c_int),
                ("force", c_bool)]


class PplParams(Structure):  # hr_ppl_params (evaluate.h)
    _fields_ = [("n_ctx", c_int), ("stride", c_int), ("protocol", c_int), ("bos", c_int32),
                ("progress", PROGRESS_FN), ("progress_user_data", c_void_p),
                ("progress_phase", c_void_p), ("heads", P), ("calib_tokens", POINTER(c_int32)),
                ("n_calib_tokens", c_size_t)]


class PplResult(Structure):  # hr_ppl_result
    _fields_ = [("n_scored", c_int64), ("n_evaluated", c_int64), ("n_windows", c_int), ("mean_nll", c_double),
                ("ppl", c_double), ("ppl_stderr", c_double), ("seconds", c_double), ("tokens_per_s", c_double)]


class HeadMethodInfo(Structure):  # hr_head_method_info (heads.h)
    _fields_ = [("id", c_char_p), ("name", c_char_p), ("paper", c_char_p), ("formula", c_char_p),
                ("good_for", c_char_p), ("higher", c_char_p), ("opt_in", c_bool)]


class LayerMetricInfo(Structure):  # hr_layer_metric_info
    _fields_ = [("id", c_char_p), ("name", c_char_p), ("paper", c_char_p), ("formula", c_char_p)]


class HeadsParams(Structure):  # hr_heads_params
    _fields_ = [("tokens", POINTER(c_int32)), ("n_tokens", c_size_t), ("bos", c_int32), ("window", c_int),
                ("max_tokens", c_int), ("seed", c_uint64), ("mean_ablation", c_bool), ("tok", P),
                ("rep_len", c_int), ("rep_seqs", c_int), ("n_needles", c_int), ("needle_len", c_int),
                ("natural_needles", c_bool),
                ("fdtm_prompts", c_int), ("fdtm_prompt_len", c_int), ("fdtm_gen", c_int),
                ("progress", PROGRESS_FN), ("progress_ud", c_void_p), ("progress_phase", c_void_p),
                ("no_layer_metrics", c_bool)]


class HeadsMeta(Structure):  # hr_heads_meta
    _fields_ = [("model_path", c_char_p), ("arch", c_char_p), ("text_path", c_char_p), ("seed", c_uint64)]


class LabReportParams(Structure):  # hr_lab_report_params (report.h)
    _fields_ = [("model_path", c_char_p), ("text_path", c_char_p), ("seed", c_uint64), ("top", c_int),
                ("text_tokens", POINTER(c_int32)), ("n_text_tokens", c_size_t), ("bos", c_int32),
                ("pattern_tokens", POINTER(c_int32)), ("n_pattern_tokens", c_size_t), ("tok", P)]


class KvPolicy(Structure):  # hr_kv_policy (kvcache.h)
    _fields_ = [("kind", c_int), ("sink", c_int), ("window", c_int), ("budget", c_int)]


class PruneParams(Structure):  # hr_prune_params (prune.h)
    _fields_ = [("scores", P), ("method", c_char_p), ("invert", c_bool), ("seed", c_uint64), ("heads", c_char_p),
                ("mlp", c_char_p), ("mlp_method", c_char_p), ("drop_attn", c_int), ("drop_mlp", c_int),
                ("drop_blocks", c_int),
                ("layer_metric", c_char_p), ("budget", c_int), ("uniform", c_bool), ("strict", c_bool),
                ("uneven_duplicate", c_bool), ("text", c_char_p), ("text_len", c_size_t), ("max_tokens", c_int64),
                ("window", c_int), ("n_threads", c_int), ("progress_phase", c_void_p),
                ("progress_user_data", c_void_p), ("drop_sublayers", c_int), ("iterative", c_bool),
                ("sublayers_by_output", c_bool)]


class Mod10Probe(Structure):  # hr_mod10_probe (heads.h)
    _fields_ = [("n", c_int), ("n_classes", c_int), ("train_accuracy", c_double), ("loo_accuracy", c_double),
                ("chance", c_double)]


class PrunePlanResult(Structure):  # hr_prune_plan_result
    _fields_ = [("requested", c_int64), ("removed", c_int64), ("reason", c_char * 512)]


class PruneReportMeta(Structure):  # hr_prune_report_meta
    _fields_ = [("base", c_char_p), ("output", c_char_p), ("output_hf", c_char_p), ("text", c_char_p)]


class McItem(Structure):  # hr_mc_item
    _fields_ = [("context", c_char_p), ("choices", POINTER(c_char_p)), ("n_choices", c_int), ("gold", c_int)]


class McTask(Structure):  # hr_mc_task
    _fields_ = [("items", POINTER(McItem)), ("n_items", c_int)]


class EvalParams(Structure):  # hr_eval_params
    _fields_ = [("text", c_char_p), ("text_len", c_size_t), ("n_ctx", c_int), ("windows", c_int),
                ("max_tokens", c_int64), ("fdtm_prompts", c_int), ("fdtm_prompt_len", c_int), ("fdtm_gen", c_int),
                ("passkey", c_bool), ("passkey_trials", c_int), ("tasks", P), ("speed", c_bool), ("seed", c_uint64),
                ("n_threads", c_int), ("bf16_dot", c_bool), ("int8_dot", c_bool), ("cand_kv_plan", P), ("cand_kv_random", c_double),
                ("cand_heads", P),
                ("calib_tokens", POINTER(c_int32)), ("n_calib_tokens", c_size_t), ("recall", c_bool),
                ("recall_items", c_int), ("base_path", c_char_p), ("cand_path", c_char_p),
                ("text_path", c_char_p), ("tasks_path", c_char_p), ("progress_phase", c_void_p),
                ("progress_user_data", c_void_p)]


class HeadMaskParams(Structure):  # hr_head_mask_params (study.h)
    _fields_ = [("mask_heads", c_char_p), ("mean_heads", c_char_p), ("gates_text", c_char_p),
                ("gates_name", c_char_p), ("random_heads", c_int), ("seed", c_uint64)]


class ParamsParams(Structure):  # hr_params_params (grad.h)
    _fields_ = [("copy_weights", c_bool), ("lora_rank", c_int), ("lora_alpha", c_float), ("lora_targets", c_uint32),
                ("seed", c_uint64)]


class ParamInfo(Structure):  # hr_param_info
    _fields_ = [("name", c_char * 64), ("kind", c_int), ("layer", c_int), ("target", c_int), ("rows", c_int64),
                ("cols", c_int64), ("writable", c_bool)]


class GradParams(Structure):  # hr_grad_params
    _fields_ = [("n_threads", c_int), ("max_tokens", c_int), ("kinds", c_uint64), ("select", POINTER(c_bool)),
                ("input_grad", c_bool), ("recompute", c_bool)]


class PairsParams(Structure):  # hr_pairs_params (circuits.h)
    _fields_ = [("answers", c_int)]


class Pair(Structure):  # hr_pair
    _fields_ = [("clean", POINTER(c_int32)), ("corrupt", POINTER(c_int32)), ("n_tokens", c_int), ("answer", c_int32),
                ("wrong", c_int32), ("answer_tokens", c_int), ("wrong_tokens", c_int), ("line", c_int)]


class PatchParams(Structure):  # hr_patch_params
    _fields_ = [("what", c_uint32), ("metric", c_int), ("direction", c_int), ("path", c_char_p),
                ("path_mlps_recomputed", c_bool), ("knockout", c_char_p), ("dla", c_bool), ("lens", c_bool),
                ("lens_top", c_int), ("lens_pairs", c_int), ("heads", P), ("calib_tokens", POINTER(c_int32)),
                ("n_calib_tokens", c_size_t), ("n_threads", c_int), ("progress", PROGRESS_FN),
                ("progress_user_data", c_void_p)]


_DP = POINTER(c_double)


class PatchSummary(Structure):  # hr_patch_summary
    _fields_ = [("n_pairs", c_int), ("n_layers", c_int), ("max_heads", c_int), ("n_positions", c_int),
                ("metric", c_int), ("direction", c_int), ("labels", POINTER(c_int32)), ("clean", c_double),
                ("corrupt", c_double), ("pair_clean", _DP), ("pair_corrupt", _DP), ("heads", _DP), ("attn", _DP),
                ("mlp", _DP), ("resid", _DP), ("head_pos", _DP), ("has_dla", c_bool), ("has_attn_bias", c_bool),
                ("has_norm_bias", c_bool), ("dla_total", c_double), ("dla_sum", c_double), ("dla_embed", c_double),
                ("dla_norm_bias", c_double), ("dla_heads", _DP), ("dla_attn_bias", _DP), ("dla_mlp", _DP),
                ("has_lens", c_bool), ("lens_top", c_int), ("lens_pairs", c_int), ("lens_logit_diff", _DP),
                ("lens_prob", _DP), ("lens_rank", _DP), ("lens_tokens", POINTER(c_int32)), ("path", c_char_p),
                ("knockout", c_char_p), ("path_heads", _DP), ("path_value", c_double), ("knockout_heads", _DP),
                ("knockout_value", c_double), ("forward_passes", c_int64), ("warning", c_char * 192),
                ("clean_top_answer", c_int), ("clean_top_wrong", c_int)]


class PatchMeta(Structure):  # hr_patch_meta
    _fields_ = [("model_path", c_char_p), ("pairs_path", c_char_p), ("tok", P)]


class InfluenceDoc(Structure):  # hr_influence_doc (evaluate.h)
    _fields_ = [("index", c_int), ("sha256", c_char * 65), ("n_tokens", c_int), ("loss_base", c_double),
                ("loss_masked", c_double), ("influence", c_double)]


INFLUENCE_FN = CFUNCTYPE(c_int, POINTER(InfluenceDoc), c_void_p)  # hr_influence_fn


class InfluenceParams(Structure):  # hr_influence_params
    _fields_ = [("text", c_char_p), ("text_len", c_size_t), ("split", c_char_p), ("heads", P),
                ("calib_tokens", POINTER(c_int32)), ("n_calib_tokens", c_size_t), ("max_tokens", c_int),
                ("first_doc", c_int), ("max_docs", c_int), ("n_threads", c_int), ("on_doc", INFLUENCE_FN),
                ("user_data", c_void_p), ("progress", PROGRESS_FN), ("progress_user_data", c_void_p), ("corpus", P)]


class ProgressInfo(Structure):  # hr_progress_info (common.h)
    _fields_ = [("phase", c_char_p), ("unit", c_char_p), ("done", c_int64), ("total", c_int64), ("step", c_int),
                ("n_steps", c_int)]


PROGRESS_PHASE_FN = CFUNCTYPE(c_int, POINTER(ProgressInfo), c_void_p)  # hr_progress_phase_fn


class TrainParams(Structure):  # hr_train_params (train.h)
    _fields_ = [("full", c_bool), ("lora_rank", c_int), ("lora_alpha", c_float), ("lora_targets", c_uint32),
                ("only", c_char_p), ("steps", c_int), ("lr", c_float), ("min_lr_ratio", c_float), ("warmup", c_int),
                ("beta1", c_float), ("beta2", c_float), ("eps", c_float), ("weight_decay", c_float),
                ("clip", c_float), ("window", c_int), ("batch", c_int), ("accum", c_int), ("heldout", c_float),
                ("eval_every", c_int), ("eval_windows", c_int), ("seed", c_uint64), ("n_threads", c_int),
                ("recompute", c_bool), ("checkpoint", c_char_p), ("checkpoint_every", c_int), ("resume", c_char_p), ("stop", c_void_p),
                ("progress_phase", PROGRESS_PHASE_FN), ("progress_user_data", c_void_p),
                ("lora_layer_ranks", c_void_p)]


class TrainInfo(Structure):  # hr_train_info
    _fields_ = [("step", c_int), ("loss", c_double), ("heldout_loss", c_double), ("lr", c_double),
                ("grad_norm", c_double), ("tokens_per_s", c_double), ("train_tokens", c_int64),
                ("heldout_tokens", c_int64)]


STRUCTS = {  # C name -> ctypes struct, for the ABI check in python/tests
    "hr_hook_event": HookEvent, "hr_context_params": ContextParams, "hr_encode_params": EncodeParams,
    "hr_sampler_params": SamplerParams, "hr_output_params": OutputParams, "hr_ppl_params": PplParams,
    "hr_ppl_result": PplResult, "hr_head_method_info": HeadMethodInfo, "hr_layer_metric_info": LayerMetricInfo,
    "hr_heads_params": HeadsParams, "hr_heads_meta": HeadsMeta, "hr_lab_report_params": LabReportParams,
    "hr_kv_policy": KvPolicy, "hr_prune_params": PruneParams, "hr_prune_plan_result": PrunePlanResult,
    "hr_mod10_probe": Mod10Probe,
    "hr_prune_report_meta": PruneReportMeta, "hr_mc_item": McItem, "hr_mc_task": McTask, "hr_eval_params": EvalParams,
    "hr_head_mask_params": HeadMaskParams, "hr_params_params": ParamsParams, "hr_param_info": ParamInfo,
    "hr_grad_params": GradParams, "hr_pairs_params": PairsParams, "hr_pair": Pair, "hr_patch_params": PatchParams,
    "hr_patch_summary": PatchSummary, "hr_patch_meta": PatchMeta, "hr_influence_doc": InfluenceDoc,
    "hr_influence_params": InfluenceParams, "hr_progress_info": ProgressInfo, "hr_train_params": TrainParams,
    "hr_train_info": TrainInfo,
}

# ---------------------------------------------------------------- prototypes


def _fn(name, restype, *argtypes):
    f = getattr(lib, name)
    f.restype = restype
    f.argtypes = list(argtypes)
    return f


OUT = POINTER  # an OUT parameter
_ = c_int  # hr_status
# common.h
_fn("hr_version", c_char_p)
_fn("hr_status_str", c_char_p, c_int)
_fn("hr_last_error", c_char_p)
_fn("hr_set_log_callback", None, LOG_FN, c_void_p)
_fn("hr_free", None, c_void_p)
_fn("hr_read_file", _, c_char_p, OUT(c_void_p), OUT(c_size_t))
_fn("hr_write_file_atomic", _, c_char_p, c_void_p, c_size_t)
_fn("hr_output_default_params", OutputParams)
_fn("hr_output_check", _, c_char_p, POINTER(OutputParams))
# model.h
_fn("hr_model_load", _, c_char_p, OUT(P))
_fn("hr_model_free", None, P)
_fn("hr_model_config", P, P)
_fn("hr_model_format", c_int, P)
_fn("hr_format_name", c_char_p, c_int)
_fn("hr_arch_name", c_char_p, c_int)
_fn("hr_model_source_dtype", c_char_p, P)
_fn("hr_model_n_params", c_int64, P)
_fn("hr_model_weight_bytes", c_int64, P)
for _n in ("hr_config_arch", "hr_config_dim", "hr_config_n_layers", "hr_config_head_dim", "hr_config_vocab_size",
           "hr_config_seq_len", "hr_config_norm", "hr_config_mlp", "hr_config_pos", "hr_config_max_heads",
           "hr_config_max_kv_heads", "hr_config_max_ff"):
    _fn(_n, c_int, P)
for _n in ("hr_config_n_head", "hr_config_n_head_kv", "hr_config_n_ff"):
    _fn(_n, c_int, P, c_int)
for _n in ("hr_config_rope_theta", "hr_config_norm_eps"):
    _fn(_n, c_float, P)
for _n in ("hr_config_tied_classifier", "hr_config_qkv_bias", "hr_config_out_bias", "hr_config_mlp_bias",
           "hr_config_uniform"):
    _fn(_n, c_bool, P)
# context.h
_fn("hr_context_default_params", ContextParams)
_fn("hr_context_new", _, P, POINTER(ContextParams), OUT(P))
_fn("hr_context_free", None, P)
_fn("hr_context_n_ctx", c_int, P)
_fn("hr_context_n_past", c_int, P)
_fn("hr_context_truncate", _, P, c_int)
_fn("hr_context_kv_bytes", c_size_t, P)
_fn("hr_forward", _, P, POINTER(c_int32), c_int, POINTER(c_float), c_bool)
_fn("hr_context_set_hook", None, P, HOOK_FN, c_uint32, c_void_p)
_fn("hr_context_set_head_gates", _, P, POINTER(c_float))
_fn("hr_context_set_head_means", _, P, POINTER(c_float))
# tokenizer.h
_fn("hr_tokenizer_find_for_model", _, c_char_p, c_char_p, c_void_p, c_size_t)
_fn("hr_tokenizer_load", _, c_char_p, OUT(P))
_fn("hr_tokenizer_free", None, P)
_fn("hr_tokenizer_vocab_size", c_int, P)
_fn("hr_tokenizer_kind", c_char_p, P)
_fn("hr_tokenizer_bos", c_int32, P)
_fn("hr_tokenizer_eos", c_int32, P)
_fn("hr_encode_default_params", EncodeParams)
_fn("hr_tokenizer_encode", _, P, c_char_p, c_size_t, POINTER(EncodeParams), OUT(POINTER(c_int32)), OUT(c_size_t))
_fn("hr_tokenizer_decode", _, P, POINTER(c_int32), c_size_t, c_bool, OUT(c_void_p), OUT(c_size_t))
_fn("hr_tokenizer_decode_one", _, P, c_int32, c_int32, c_void_p, c_size_t, OUT(c_size_t))
# sample.h
_fn("hr_sampler_default_params", SamplerParams)
_fn("hr_sampler_new", _, POINTER(SamplerParams), c_int, OUT(P))
_fn("hr_sampler_free", None, P)
_fn("hr_sampler_sample", c_int32, P, POINTER(c_float))
# save.h
_fn("hr_dtype_from_name", _, c_char_p, OUT(c_int))
_fn("hr_dtype_for_model", c_int, P, c_int, c_bool)
_fn("hr_model_save_gguf", _, P, P, c_char_p, c_int)
_fn("hr_model_save_hf", _, P, P, c_char_p, c_int)
# evaluate.h: perplexity and the whole evaluation
_fn("hr_ppl_default_params", PplParams)
_fn("hr_perplexity", _, P, POINTER(c_int32), c_size_t, POINTER(PplParams), POINTER(PplResult))
_fn("hr_mc_parse", _, c_char_p, c_size_t, OUT(P))
_fn("hr_mc_task_free", None, P)
_fn("hr_eval_default_params", EvalParams)
_fn("hr_eval_run", _, P, P, P, POINTER(EvalParams), OUT(P))
_fn("hr_eval_result_free", None, P)
_fn("hr_eval_result_json", _, P, OUT(c_void_p))
_fn("hr_influence_default_params", InfluenceParams)
_fn("hr_influence_run", _, P, P, POINTER(InfluenceParams), OUT(c_int))
_fn("hr_influence_header_json", _, c_char_p, c_char_p, POINTER(InfluenceParams), OUT(c_void_p))
_fn("hr_influence_doc_json", _, POINTER(InfluenceDoc), OUT(c_void_p))
# heads.h + report.h
_fn("hr_heads_n_methods", c_int)
_fn("hr_heads_method_info", POINTER(HeadMethodInfo), c_int)
_fn("hr_heads_parse_methods", _, c_char_p, POINTER(c_bool))
_fn("hr_heads_n_layer_metrics", c_int)
_fn("hr_heads_layer_metric_info", POINTER(LayerMetricInfo), c_int)
_fn("hr_heads_default_params", HeadsParams)
_fn("hr_heads_run", _, P, POINTER(HeadsParams), POINTER(c_bool), OUT(P))
_fn("hr_heads_result_free", None, P)
_fn("hr_heads_result_n_layers", c_int, P)
_fn("hr_heads_result_n_heads", c_int, P, c_int)
_fn("hr_heads_result_has", c_bool, P, c_int)
_fn("hr_heads_result_note", c_char_p, P, c_int)
_fn("hr_heads_score", c_double, P, c_int, c_int, c_int)
_fn("hr_heads_rank", c_int, P, c_int, c_int, c_int)
_fn("hr_heads_layer_score", c_double, P, c_int, c_int)
_fn("hr_heads_result_n_calib_tokens", c_int, P)
_fn("hr_heads_result_window", c_int, P)
_fn("hr_heads_classes", None, P, c_int, c_int, c_void_p, c_size_t)
_fn("hr_heads_to_json", _, P, P, POINTER(HeadsMeta), OUT(c_void_p), OUT(c_void_p), OUT(c_void_p))
_fn("hr_heads_attention_map", _, P, POINTER(c_int32), c_int, c_int, c_int, POINTER(c_float))
_fn("hr_lab_report_default_params", LabReportParams)
_fn("hr_report_head_lab", _, c_char_p, P, P, P, POINTER(LabReportParams), OUT(c_int))
# scores.h
_fn("hr_scores_new", _, P, OUT(P))
_fn("hr_scores_free", None, P)
_fn("hr_scores_from_heads", _, P, P, OUT(P))
_fn("hr_scores_read_heads", _, P, c_char_p)
_fn("hr_scores_read_layers", _, P, c_char_p)
_fn("hr_scores_heads_source", c_char_p, P)
_fn("hr_scores_layers_source", c_char_p, P)
_fn("hr_scores_n_methods", c_int, P)
_fn("hr_scores_method_id", c_char_p, P, c_int)
_fn("hr_scores_method_higher", c_char_p, P, c_int)
_fn("hr_scores_method_kind", c_int, P, c_int)
_fn("hr_score_kind_name", c_char_p, c_int)
_fn("hr_scores_head", c_double, P, c_int, c_int, c_int)
_fn("hr_scores_keep_order", _, P, c_char_p, c_bool, POINTER(c_float))
_fn("hr_scores_n_layer_metrics", c_int, P)
_fn("hr_scores_layer_metric_id", c_char_p, P, c_int)
_fn("hr_scores_layer_metric", _, P, c_char_p, POINTER(c_float))
_fn("hr_scores_kv_plan", _, P, P, c_char_p, c_float, KvPolicy, OUT(P))
# kvcache.h
_fn("hr_kv_kind_name", c_char_p, c_int)
_fn("hr_kv_plan_new", _, P, OUT(P))
_fn("hr_kv_plan_free", None, P)
_fn("hr_kv_plan_set", _, P, c_int, c_int, KvPolicy)
_fn("hr_kv_plan_get", KvPolicy, P, c_int, c_int)
_fn("hr_kv_plan_check", _, P, P)
_fn("hr_kv_plan_load", _, c_char_p, P, OUT(P))
_fn("hr_kv_plan_save", _, P, c_char_p)
_fn("hr_kv_plan_random", _, P, c_float, KvPolicy, c_uint64, OUT(P))
_fn("hr_kv_plan_n_reduced", c_int, P)
# prune.h
_fn("hr_prune_default_params", PruneParams)
_fn("hr_prune_budget_from_name", _, c_char_p, OUT(c_int))
_fn("hr_prune_run", _, P, P, POINTER(PruneParams), OUT(P))
_fn("hr_prune_result_free", None, P)
_fn("hr_prune_result_model", P, P)
_fn("hr_prune_result_heads", POINTER(PrunePlanResult), P)
_fn("hr_prune_result_neurons", POINTER(PrunePlanResult), P)
_fn("hr_prune_result_sublayers", c_int, P, POINTER(POINTER(c_int)), POINTER(POINTER(c_double)))
_fn("hr_prune_report_json", _, P, POINTER(PruneReportMeta), OUT(c_void_p))
# study.h: heads masked without writing a model
_fn("hr_calib_tokens", _, P, c_char_p, c_size_t, c_int64, OUT(POINTER(c_int32)), OUT(c_size_t))
_fn("hr_head_mask_default_params", HeadMaskParams)
_fn("hr_head_mask_new", _, P, POINTER(HeadMaskParams), OUT(P))
_fn("hr_head_mask_free", None, P)
_fn("hr_head_mask_gates", POINTER(c_float), P)
_fn("hr_head_mask_needs_means", c_bool, P)
_fn("hr_head_mask_n_heads", c_int, P)
_fn("hr_head_mask_describe", _, P, OUT(c_void_p))
_fn("hr_head_mask_apply", _, P, P, POINTER(c_int32), c_size_t)
# grad.h
_fn("hr_params_default_params", ParamsParams)
_fn("hr_params_new", _, P, POINTER(ParamsParams), OUT(P))
_fn("hr_params_free", None, P)
_fn("hr_params_n_tensors", c_int, P)
_fn("hr_params_info", _, P, c_int, POINTER(ParamInfo))
_fn("hr_params_data", POINTER(c_float), P, c_int)
_fn("hr_params_data_mut", POINTER(c_float), P, c_int)
_fn("hr_grad_default_params", GradParams)
_fn("hr_grad_new", _, P, POINTER(GradParams), OUT(P))
_fn("hr_grad_free", None, P)
_fn("hr_grad_last_error", c_char_p, P)
_fn("hr_grad_zero", None, P)
_fn("hr_grad_accumulate", _, P, POINTER(c_int32), c_int, c_float, OUT(c_double))
_fn("hr_grad_tensor", POINTER(c_float), P, c_int)
_fn("hr_grad_input", POINTER(c_float), P, OUT(c_int))
_fn("hr_grad_bytes", c_size_t, P)
_fn("hr_grad_taylor_heads", _, P, c_int, POINTER(c_double))
_fn("hr_grad_taylor_neurons", _, P, c_int, POINTER(c_double))
# circuits.h
_fn("hr_pairs_default_params", PairsParams)
_fn("hr_pairs_parse", _, c_char_p, c_size_t, P, POINTER(PairsParams), OUT(P))
_fn("hr_pairs_new", _, OUT(P))
_fn("hr_pairs_add", _, P, POINTER(c_int32), POINTER(c_int32), c_int, c_int32, c_int32)
_fn("hr_pairs_free", None, P)
_fn("hr_pairs_count", c_int, P)
_fn("hr_pairs_get", _, P, c_int, POINTER(Pair))
_fn("hr_pairs_to_jsonl", _, P, OUT(c_void_p))
_fn("hr_pairs_name_recall", _, P, c_char_p, c_size_t, c_int, c_int, c_uint64, OUT(P))
_fn("hr_pairs_from_choices", _, P, P, c_int, OUT(P))
_fn("hr_patch_default_params", PatchParams)
_fn("hr_patch_parse_what", _, c_char_p, OUT(c_uint32))
_fn("hr_patch_parse_metric", _, c_char_p, OUT(c_int))
_fn("hr_patch_metric_name", c_char_p, c_int)
_fn("hr_patch_check_path", _, P, c_char_p)
_fn("hr_patch_check_knockout", _, P, c_char_p)
_fn("hr_patch_run", _, P, P, POINTER(PatchParams), OUT(P))
_fn("hr_patch_result_free", None, P)
_fn("hr_patch_result_summary", POINTER(PatchSummary), P)
_fn("hr_patch_result_json", _, P, P, POINTER(PatchMeta), OUT(c_void_p))
_fn("hr_patch_ph3_json", _, P, P, POINTER(PatchMeta), OUT(c_void_p))
_fn("hr_pairs_conflict", _, P, P, c_char_p, c_size_t, c_int, c_float, c_uint64, OUT(P))
# train.h
_fn("hr_train_default_params", TrainParams)
_fn("hr_train_new", _, P, POINTER(c_int32), c_size_t, POINTER(TrainParams), OUT(P))
_fn("hr_train_free", None, P)
_fn("hr_train_step", _, P)
_fn("hr_train_run", _, P)
_fn("hr_train_eval", _, P, OUT(c_double))
_fn("hr_train_get_info", None, P, POINTER(TrainInfo))
_fn("hr_lora_targets_parse", _, c_char_p, OUT(c_uint32))
_fn("hr_train_model", _, P, OUT(P))

HOOK = {"pattern": 1 << 0, "head_out": 1 << 1, "resid_pre": 1 << 2, "attn_out": 1 << 3, "mlp_out": 1 << 4,
        "resid_post": 1 << 5, "final": 1 << 6}  # hr_hook_point
HOOK_NAME = {v: k for k, v in HOOK.items()}
OUT_FILE, OUT_GGUF, OUT_JSON, OUT_TEXT, OUT_FOLDER, OUT_HF_FOLDER = range(6)  # hr_output_kind
DTYPE_F32, DTYPE_F16, DTYPE_BF16, DTYPE_Q8_0, DTYPE_KEEP, DTYPE_INT8 = range(6)  # hr_dtype
KV_KINDS = {"full": 0, "streaming": 1, "heavy": 2}  # hr_kv_kind


def version():
    return lib.hr_version().decode()


def take_string(ptr, n=None):
    """The text of a buffer the library allocated (then freed with hr_free)."""
    try:
        raw = ctypes.string_at(ptr, n) if n is not None else ctypes.string_at(ptr)
        return raw.decode("utf-8", "replace")
    finally:
        lib.hr_free(ptr)


def encode_path(p):
    """bytes of a path argument (str or os.PathLike); None stays None."""
    return None if p is None else os.fsencode(p)


def output_check(path, kind, fmt=None, inputs=(), force=False):
    """hr_output_check: path may be written (never an input, never a foreign
    file unless force, its folder writable). Raises the library's error."""
    p = lib.hr_output_default_params()
    ins = [encode_path(i) for i in inputs if i is not None]
    arr = (c_char_p * max(1, len(ins)))(*ins)
    p.kind, p.format, p.force = kind, fmt.encode() if fmt else None, bool(force)
    p.inputs, p.n_inputs = ctypes.cast(arr, POINTER(c_char_p)), len(ins)
    check(lib.hr_output_check(encode_path(path), ctypes.byref(p)))


# ---------------------------------------------------------------- logging

log = logging.getLogger("headroom")
_LEVELS = {0: logging.ERROR, 1: logging.WARNING, 2: logging.INFO, 3: logging.DEBUG}


@LOG_FN
def _log_sink(level, msg, _ud):
    try:
        log.log(_LEVELS.get(level, logging.INFO), "%s", (msg or b"").decode("utf-8", "replace").rstrip("\r\n"))
    except BaseException:  # a log line must never unwind into C
        pass


lib.hr_set_log_callback(_log_sink, None)  # the library's warnings reach logging.getLogger("headroom")
