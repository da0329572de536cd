"""ctypes bindings of libheadroom's public C API (include/headroom/*.h).

Only this module touches ctypes: it finds the shared library, declares the
prototypes it uses and turns hr_status codes into headroom.Error
exceptions carrying the library's last-error message. ctypes releases the
GIL around every foreign call, so long C calls (forward passes, the head
lab) run while other Python threads go on.
"""
import ctypes
import ctypes.util
import os
import sys

from ctypes import (POINTER, Structure, CFUNCTYPE, c_bool, c_char_p, c_double,
                    c_float, c_int, c_int32, c_int64, c_size_t, c_uint32,
                    c_uint64, c_void_p)

# ---------------------------------------------------------------- finding it

_NAMES = ("libheadroom.so", "libheadroom.so.0")


def _candidates():
    env = os.environ.get("HEADROOM_LIB")
    if env:
        yield env
        return
    here = os.path.dirname(os.path.abspath(__file__))
    for n in _NAMES:  # installed beside the package
        yield os.path.join(here, n)
    # a build tree: <repo>/python/headroom -> <repo>/build*/
    repo = os.path.dirname(os.path.dirname(here))
    for b in ("build", "build-release"):
        for n in _NAMES:
            yield os.path.join(repo, b, n)
    for prefix in (sys.prefix, "/usr/local", "/usr"):  # install prefixes
        for sub in ("lib", "lib64", "lib/x86_64-linux-gnu"):
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
    raise ImportError("headroom: cannot find libheadroom.so; build it (cmake --build build) or set "
                      "HEADROOM_LIB to its path. Tried: " + ", ".join(tried[:8]))


lib, path = _load()

# ---------------------------------------------------------------- errors

HR_OK = 0
STATUS_NAMES = {
    -1: "InvalidArgument", -2: "IOError", -3: "FormatError", -4: "Unsupported",
    -5: "OutOfMemory", -6: "RangeError", -7: "NotFound", -8: "Aborted",
}


class Error(Exception):
    """A failure reported by libheadroom; .status is the hr_status code."""

    def __init__(self, message, status=-1):
        super().__init__(message)
        self.status = status


class InvalidArgument(Error, ValueError):
    pass


class IOError_(Error, OSError):
    pass


class FormatError(Error, ValueError):
    pass


class Unsupported(Error):
    pass


class OutOfMemory(Error, MemoryError):
    pass


class RangeError(Error, IndexError):
    pass


class NotFound(Error, LookupError):
    pass


class Aborted(Error):
    pass


_CLASSES = {-1: InvalidArgument, -2: IOError_, -3: FormatError, -4: Unsupported,
            -5: OutOfMemory, -6: RangeError, -7: NotFound, -8: Aborted}


def last_error():
    return lib.hr_last_error().decode("utf-8", "replace")


def check(status, what=""):
    """Raises the Error subclass of a failing hr_status with the library's message."""
    if status == HR_OK:
        return
    msg = last_error() or what or STATUS_NAMES.get(status, f"status {status}")
    raise _CLASSES.get(status, Error)(msg, status)


# ---------------------------------------------------------------- prototypes

class HookEvent(Structure):
    _fields_ = [("point", c_int), ("layer", c_int), ("head", c_int), ("n_tokens", c_int),
                ("pos0", c_int), ("n_cols", c_int), ("stride", c_int), ("data", POINTER(c_float))]


HOOK_FN = CFUNCTYPE(c_int, POINTER(HookEvent), c_void_p)


class ContextParams(Structure):
    _fields_ = [("n_ctx", c_int), ("n_threads", c_int), ("n_batch", c_int),
                ("kv_plan", c_void_p), ("blas_prefill", c_bool)]


class EncodeParams(Structure):
    _fields_ = [("add_bos", c_bool), ("add_eos", c_bool), ("add_space_prefix", c_int),
                ("parse_special", c_bool)]


class SamplerParams(Structure):
    _fields_ = [("temperature", c_float), ("top_p", c_float), ("seed", c_uint64)]


class RopeScaling(Structure):
    _fields_ = [("llama3", c_bool), ("factor", c_float), ("low_freq_factor", c_float),
                ("high_freq_factor", c_float), ("original_ctx", c_int)]


def _fn(name, restype, *argtypes):
    f = getattr(lib, name)
    f.restype = restype
    f.argtypes = list(argtypes)
    return f


P = c_void_p  # opaque handles
_fn("hr_last_error", c_char_p)
_fn("hr_version", c_char_p)
_fn("hr_status_str", c_char_p, c_int)
_fn("hr_free", None, c_void_p)
# models
_fn("hr_model_load", c_int, c_char_p, POINTER(P))
_fn("hr_model_free", None, P)
_fn("hr_model_config", P, P)
_fn("hr_model_format", c_int, P)
_fn("hr_format_name", c_char_p, c_int)
_fn("hr_model_source_dtype", c_char_p, P)
_fn("hr_model_n_params", c_int64, P)
for _n in ("hr_config_dim", "hr_config_n_layers", "hr_config_head_dim", "hr_config_vocab_size",
           "hr_config_seq_len", "hr_config_arch", "hr_config_norm", "hr_config_mlp", "hr_config_pos",
           "hr_config_max_heads", "hr_config_max_kv_heads", "hr_config_max_ff"):
    _fn(_n, c_int, P)
for _n in ("hr_config_n_head", "hr_config_n_head_kv", "hr_config_n_ff"):
    _fn(_n, c_int, P, c_int)
for _n in ("hr_config_rope_theta", "hr_config_norm_eps"):
    _fn(_n, c_float, P)
for _n in ("hr_config_tied_classifier", "hr_config_qkv_bias", "hr_config_out_bias", "hr_config_mlp_bias"):
    _fn(_n, c_bool, P)
_fn("hr_arch_name", c_char_p, c_int)
# contexts
_fn("hr_context_default_params", ContextParams)
_fn("hr_context_new", c_int, P, POINTER(ContextParams), POINTER(P))
_fn("hr_context_free", None, P)
_fn("hr_context_last_error", c_char_p, P)
_fn("hr_context_n_ctx", c_int, P)
_fn("hr_context_n_past", c_int, P)
_fn("hr_context_truncate", c_int, P, c_int)
_fn("hr_context_kv_bytes", c_size_t, P)
_fn("hr_forward", c_int, P, POINTER(c_int32), c_int, POINTER(c_float), c_bool)
_fn("hr_context_set_hook", None, P, HOOK_FN, c_uint32, c_void_p)
_fn("hr_context_set_head_gates", c_int, P, POINTER(c_float))
_fn("hr_context_set_head_means", c_int, P, POINTER(c_float))
# tokenizers
_fn("hr_tokenizer_find_for_model", c_int, c_char_p, c_char_p, ctypes.c_char_p, c_size_t)
_fn("hr_tokenizer_load", c_int, c_char_p, POINTER(P))
_fn("hr_tokenizer_free", None, P)
_fn("hr_tokenizer_vocab_size", c_int, P)
_fn("hr_tokenizer_bos", c_int32, P)
_fn("hr_tokenizer_eos", c_int32, P)
_fn("hr_encode_default_params", EncodeParams)
_fn("hr_tokenizer_encode", c_int, P, c_char_p, c_size_t, POINTER(EncodeParams), POINTER(POINTER(c_int32)),
    POINTER(c_size_t))
_fn("hr_tokenizer_decode", c_int, P, POINTER(c_int32), c_size_t, c_bool, POINTER(c_void_p), POINTER(c_size_t))
# sampling
_fn("hr_sampler_default_params", SamplerParams)
_fn("hr_sampler_new", c_int, POINTER(SamplerParams), c_int, POINTER(P))
_fn("hr_sampler_free", None, P)
_fn("hr_sampler_sample", c_int32, P, POINTER(c_float))
_fn("hr_argmax", c_int32, POINTER(c_float), c_int)

HOOK = {"pattern": 1 << 0, "head_out": 1 << 1, "resid_pre": 1 << 2, "attn_out": 1 << 3,
        "mlp_out": 1 << 4, "resid_post": 1 << 5, "final": 1 << 6}
HOOK_NAME = {v: k for k, v in HOOK.items()}


def version():
    return lib.hr_version().decode()
