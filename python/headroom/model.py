"""headroom.Model: a model loaded by libheadroom with its tokenizer and an
inference context; logits, generation, perplexity, TransformerLens-style
activation caches and hooks, head gates, KV plans, saving."""
import contextlib
import ctypes
import os
import re
import sys
import threading

import numpy as np

from . import _lib
from ._handle import Handle, Owner
from ._lib import lib, check

_F32P = ctypes.POINTER(ctypes.c_float)
_I32P = ctypes.POINTER(ctypes.c_int32)


def _fptr(a):
    return a.ctypes.data_as(_F32P)


def _iptr(a):
    return a.ctypes.data_as(_I32P)


class Config(dict):
    """The model's hyper-parameters, a plain dict also readable as attributes
    (cfg.n_layers). Per-layer values are lists (pruned models differ per
    layer). TransformerLens names are attributes too: d_model, d_head,
    d_vocab, n_ctx, d_mlp (the largest MLP width)."""

    _ALIASES = {"d_model": "dim", "d_head": "head_dim", "d_vocab": "vocab_size", "n_ctx": "seq_len",
                "d_mlp": "max_ff"}

    def __getattr__(self, k):
        try:
            return self[self._ALIASES.get(k, k)]
        except KeyError:
            raise AttributeError(k) from None


def _config(mptr):
    cp = lib.hr_model_config(mptr)
    L = lib.hr_config_n_layers(cp)
    return Config(
        architecture=lib.hr_arch_name(lib.hr_config_arch(cp)).decode(),
        format=lib.hr_format_name(lib.hr_model_format(mptr)).decode(),
        source_dtype=lib.hr_model_source_dtype(mptr).decode(),
        n_params=int(lib.hr_model_n_params(mptr)),
        n_layers=L,
        dim=lib.hr_config_dim(cp),
        head_dim=lib.hr_config_head_dim(cp),
        n_heads=[lib.hr_config_n_head(cp, l) for l in range(L)],
        n_kv_heads=[lib.hr_config_n_head_kv(cp, l) for l in range(L)],
        n_ff=[lib.hr_config_n_ff(cp, l) for l in range(L)],
        max_heads=lib.hr_config_max_heads(cp),
        max_kv_heads=lib.hr_config_max_kv_heads(cp),
        max_ff=lib.hr_config_max_ff(cp),
        vocab_size=lib.hr_config_vocab_size(cp),
        seq_len=lib.hr_config_seq_len(cp),
        rope_theta=float(lib.hr_config_rope_theta(cp)),
        norm_eps=float(lib.hr_config_norm_eps(cp)),
        tied_classifier=bool(lib.hr_config_tied_classifier(cp)),
        uniform=bool(lib.hr_config_uniform(cp)),
    )


def _threads(threads):
    if threads is None:
        return 0
    if isinstance(threads, bool) or not isinstance(threads, (int, np.integer)) or not 0 <= threads <= 1024:
        raise ValueError(f"threads must be None (all cores) or an int in [0, 1024], got {threads!r}")
    return int(threads)


def text_bytes(text, what="text"):
    """(bytes, path or None) of a text argument: a str is the text itself; a
    pathlib.Path / os.PathLike names a UTF-8 file (read as the CLI reads it)."""
    if isinstance(text, os.PathLike):
        path = os.fspath(text)
        buf = ctypes.c_void_p()
        n = ctypes.c_size_t()
        check(lib.hr_read_file(os.fsencode(path), ctypes.byref(buf), ctypes.byref(n)))
        data = ctypes.string_at(buf, n.value)
        lib.hr_free(buf)
        if not data:
            raise _lib.InvalidArgument(f"text is empty: '{path}'")
        try:
            data.decode("utf-8")
        except UnicodeDecodeError as e:
            raise _lib.FormatError(f"text file '{path}' is not valid UTF-8 (byte offset {e.start})", -3) from None
        return data, path
    if isinstance(text, bytes):
        raise TypeError(f"{what} must be a str (the text) or a pathlib.Path (a file), not bytes")
    if not isinstance(text, str):
        raise TypeError(f"{what} must be a str (the text) or a pathlib.Path (a file), not {type(text).__name__}")
    try:
        return text.encode("utf-8"), None
    except UnicodeEncodeError as e:
        raise ValueError(f"{what} is not valid Unicode (character {e.start} is a lone surrogate)") from None


# ---------------------------------------------------------------- activation names

NAMES = ("pattern", "head_out", "resid_pre", "attn_out", "mlp_out", "resid_post", "final")
_TL = {"attn.hook_pattern": "pattern", "attn.hook_z": "head_out", "hook_resid_pre": "resid_pre",
       "hook_attn_out": "attn_out", "hook_mlp_out": "mlp_out", "hook_resid_post": "resid_post"}
_TL_RE = re.compile(r"^blocks\.(\d+)\.(.+)$")


def _key(key):
    """(name, layer) of an activation key: ("pattern", 3), "final",
    ("final", None) or a TransformerLens name ("blocks.3.attn.hook_pattern",
    "ln_final.hook_normalized"). layer None = every layer (hooks)."""
    if isinstance(key, str):
        if key in ("final", "ln_final.hook_normalized"):
            return "final", None
        m = _TL_RE.match(key)
        if m and m.group(2) in _TL:
            return _TL[m.group(2)], int(m.group(1))
        if key in NAMES:
            return key, None
        raise KeyError(f"unknown activation {key!r} (known: {', '.join(NAMES)}, or TransformerLens names "
                       f"such as 'blocks.0.attn.hook_pattern')")
    if isinstance(key, tuple) and len(key) == 2 and key[0] in NAMES:
        name, layer = key
        if name == "final" or layer is None:
            return name, None
        if isinstance(layer, bool) or not isinstance(layer, (int, np.integer)):
            raise KeyError(f"layer of {key!r} must be an int or None")
        return name, int(layer)
    raise KeyError(f"unknown activation {key!r}: use (name, layer) with name in {', '.join(NAMES)}")


class Cache(dict):
    """Activations recorded by Model.run_with_cache, keyed by (name, layer):
    cache["pattern", 3] (heads, n, n) attention probabilities (row = query);
    cache["head_out", 3] (n, heads, head_dim) head outputs before W_O and
    gates (TransformerLens' hook_z); cache["resid_pre" | "attn_out" |
    "mlp_out" | "resid_post", 3] (n, dim); cache["final"] (n, dim) the final
    normed hidden state. TransformerLens names work as keys too."""

    def __getitem__(self, key):
        return dict.__getitem__(self, _key(key))

    def __contains__(self, key):
        try:
            return dict.__contains__(self, _key(key))
        except KeyError:
            return False

    def stack(self, name):
        """np.stack of one activation over the recorded layers (needs equal shapes)."""
        layers = sorted(l for (n, l) in self.keys() if n == name)
        if not layers:
            raise KeyError(f"no {name!r} recorded")
        return np.stack([dict.__getitem__(self, (name, l)) for l in layers])


def _layer_view(events, per_head, writable):
    """One array over the per-head buffers of a layer's events [(addr,
    n_tokens, n_cols, stride)] (head order) when the buffers are evenly
    spaced, as the engine emits them: (n, heads, cols) for head_out,
    (heads, n, cols) for pattern. None when they are not."""
    a0, n, cols, stride = events[0]
    H = len(events)
    delta = events[1][0] - a0 if H > 1 else 0
    for h, (a, nh, ch, sh) in enumerate(events):
        if (nh, ch, sh) != (n, cols, stride) or a != a0 + h * delta:
            return None
    if delta < 0 or delta % 4:
        return None
    count = (H - 1) * delta // 4 + (n - 1) * stride + cols
    flat = np.frombuffer((ctypes.c_float * count).from_address(a0), dtype=np.float32)
    if per_head:  # head_out: (n, heads, cols)
        shape, strides = (n, H, cols), (4 * stride, delta, 4)
    else:  # pattern: (heads, n, cols)
        shape, strides = (H, n, cols), (delta, 4 * stride, 4)
    return np.lib.stride_tricks.as_strided(flat, shape=shape, strides=strides, writeable=writable)


class Model(Owner):
    """A model loaded by libheadroom (weights memory-mapped or converted once,
    never copied by Python), its tokenizer and an inference context.

        m = headroom.Model.load("stories260K.bin")
        ids = m.tokenize("Once upon a time")
        logits = m.logits(ids)                                   # (n, vocab) float32
        logits, cache = m.run_with_cache(ids, names=["pattern"])
        with m.gates(mask=[(3, 5)]):
            ablated = m.logits(ids)

    One thread at a time runs a Model (a lock serialises calls); views made by
    with_kv_plan have their own context and run in parallel with it."""

    _handles = ("_mh", "_ctx", "_th", "_planh")

    def __init__(self, mh, mptr, th, path, threads, tok_note=""):
        self._mh = mh            # Handle keeping the hr_model alive (the model, or the prune result owning it)
        self._m = mptr           # the hr_model pointer
        self._th = th            # Handle of the hr_tokenizer, or None
        self._ctx = None         # Handle of the hr_context, made on first use
        self._planh = None       # Handle of the KV plan of a with_kv_plan view
        self._plan = None        # that KvPlan (Python object)
        self._path = path
        self._threads = threads
        self._tok_note = tok_note
        self._lock = threading.RLock()
        self._busy = False       # a C call runs on the context (hooks and callbacks run inside it)
        self.config = _config(mptr)
        c = self.config
        self._gates = np.ones((c.n_layers, max(c.max_heads, 1)), dtype=np.float32)  # (layers, max_heads)
        self._means = None       # (layers, max_heads, head_dim) or None

    # -------------------------------------------------------------- lifetime
    @classmethod
    def load(cls, path, threads=None, tokenizer=None):
        """Loads a llama2.c .bin, GGUF file or Hugging Face folder (format from
        the content). The tokenizer is found beside the model as the CLI finds
        it (tok512.bin, tokenizer.bin/.json/.model, or the GGUF itself), or
        given as tokenizer=PATH. threads: worker threads of every forward pass
        (None = all cores)."""
        nthreads = _threads(threads)
        p = os.fspath(path)
        h = ctypes.c_void_p()
        check(lib.hr_model_load(os.fsencode(p), ctypes.byref(h)))
        mh = Handle(h.value, lib.hr_model_free, "model")
        try:
            th, note = cls._find_tokenizer(p, tokenizer, h.value)
        except BaseException:
            mh.release()
            raise
        return cls(mh, h.value, th, p, nthreads, note)

    @staticmethod
    def _find_tokenizer(model_path, explicit, mptr):
        buf = ctypes.create_string_buffer(8192)
        exp = os.fsencode(os.fspath(explicit)) if explicit is not None else None
        st = lib.hr_tokenizer_find_for_model(os.fsencode(model_path), exp, buf, len(buf))
        if st != 0:
            if explicit is not None:
                raise _lib.error(st)
            return None, _lib.last_error()
        t = ctypes.c_void_p()
        st = lib.hr_tokenizer_load(buf.value, ctypes.byref(t))
        if st != 0:
            if explicit is not None:
                raise _lib.error(st)
            return None, f"cannot load tokenizer '{os.fsdecode(buf.value)}': {_lib.last_error()}"
        th = Handle(t.value, lib.hr_tokenizer_free, "tokenizer")
        tv, mv = lib.hr_tokenizer_vocab_size(t.value), lib.hr_config_vocab_size(lib.hr_model_config(mptr))
        if tv > mv:
            th.release()
            msg = f"tokenizer '{os.fsdecode(buf.value)}' has {tv} tokens but the model's vocabulary has only {mv}"
            if explicit is not None:
                raise _lib.InvalidArgument(msg)
            return None, msg
        return th, ""

    def _model(self):
        if self._mh is None or not self._mh.alive:
            raise _lib.closed("model")
        return self._m

    def close(self):
        """Releases the model's C handles now (idempotent); waits for a call
        running in another thread. Calling it from a hook of the model's own
        forward pass raises (the pass still needs them)."""
        with self._lock:
            if self._busy:
                raise _lib.InvalidArgument("cannot close a model from inside its own forward pass (a hook)")
            Owner.close(self)

    @contextlib.contextmanager
    def _running(self):
        """Holds the lock for one C call on the context; re-entry from a hook of
        that call (running the model inside its own pass) is refused."""
        with self._lock:
            if self._busy:
                raise _lib.InvalidArgument("a hook or callback cannot run the model whose pass called it "
                                           "(use another Model or a with_kv_plan view)")
            self._busy = True
            try:
                yield self._context()
            finally:
                self._busy = False

    @property
    def path(self):
        """The path the model was loaded from (None for a model made in memory)."""
        return self._path

    @property
    def threads(self):
        return self._threads

    def __repr__(self):
        c = self.config
        state = " (closed)" if self._mh is None else ""
        return (f"headroom.Model({self._path!r}, {c.architecture}, {c.n_layers} layers, dim {c.dim}, "
                f"heads {c.max_heads}, vocab {c.vocab_size}){state}")

    def _context(self):
        """The inference context (made on first use; cleared before each run).
        Without a KV plan one batch covers the whole context, so hooks see
        every sequence in one event per point; with a plan the batch is the
        library's default (as the CLI runs plans)."""
        self._model()
        if self._ctx is None:
            p = lib.hr_context_default_params()
            p.n_threads = self._threads
            p.n_batch = 0 if self._plan is not None else self.config.seq_len
            p.kv_plan = self._planh.get() if self._planh is not None else None
            c = ctypes.c_void_p()
            check(lib.hr_context_new(self._m, ctypes.byref(p), ctypes.byref(c)))
            self._ctx = Handle(c.value, lib.hr_context_free, "model", deps=(self._mh,))
            self._push_gates()
        return self._ctx.ptr

    def weight_bytes(self):
        """Resident bytes of the weights: mapped file pages still in use, converted or packed buffers
        (hr_model_weight_bytes; `headroom info` prints the same figure)."""
        with self._lock:
            return int(lib.hr_model_weight_bytes(self._model()))

    def kv_bytes(self):
        """Bytes of every KV-cache allocation of the context (hr_context_kv_bytes)."""
        with self._lock:
            return int(lib.hr_context_kv_bytes(self._context()))

    # -------------------------------------------------------------- tokens
    def _tokenizer(self):
        self._model()
        if self._th is None:
            raise _lib.NotFound(f"this model has no tokenizer ({self._tok_note or 'none found'}); "
                                "pass tokenizer= to Model.load", -7)
        return self._th.get()

    @property
    def bos(self):
        """BOS id (None when the vocabulary has none)."""
        b = lib.hr_tokenizer_bos(self._tokenizer())
        return None if b < 0 else int(b)

    @property
    def eos(self):
        e = lib.hr_tokenizer_eos(self._tokenizer())
        return None if e < 0 else int(e)

    def tokenize(self, text, bos=True):
        """Token ids (np.int32) of a str, BOS first when bos."""
        tok = self._tokenizer()
        if not isinstance(text, str):
            raise TypeError(f"tokenize takes a str, not {type(text).__name__}")
        data, _ = text_bytes(text)
        p = lib.hr_encode_default_params()
        p.add_bos = bool(bos)
        ids = _I32P()
        n = ctypes.c_size_t()
        check(lib.hr_tokenizer_encode(tok, data, len(data), ctypes.byref(p), ctypes.byref(ids), ctypes.byref(n)))
        try:
            return np.ctypeslib.as_array(ids, shape=(n.value,)).copy() if n.value else np.zeros(0, np.int32)
        finally:
            lib.hr_free(ids)

    def decode(self, ids):
        """Text of token ids (BOS/EOS skipped, the leading space the tokenizer added removed)."""
        tok = self._tokenizer()
        a = self._ids(ids, allow_empty=True)
        out = ctypes.c_void_p()
        n = ctypes.c_size_t()
        check(lib.hr_tokenizer_decode(tok, _iptr(a), a.size, True, ctypes.byref(out), ctypes.byref(n)))
        return _lib.take_string(out, n.value)

    def _piece(self, prev, tid):
        buf = ctypes.create_string_buffer(1024)
        n = ctypes.c_size_t()
        check(lib.hr_tokenizer_decode_one(self._tokenizer(), int(prev), int(tid), buf, len(buf), ctypes.byref(n)))
        return buf.raw[:n.value]

    def to_str_tokens(self, ids):
        """Each token as the text it prints (TransformerLens' to_str_tokens);
        BOS and EOS as their pieces' names."""
        a = self._ids(ids, allow_empty=True)
        out, prev = [], -1
        for t in a:
            if t in (self.bos, self.eos):
                out.append("<s>" if t == self.bos else "</s>")
            else:
                out.append(self._piece(prev, t).decode("utf-8", "replace"))
            prev = t
        return out

    def _ids(self, ids, allow_empty=False):
        """ids as a contiguous np.int32 array, checked: 1-D, integers, inside the
        vocabulary and the context. A str is tokenized (with BOS)."""
        if isinstance(ids, str):
            return self.tokenize(ids)
        a = np.asarray(ids)
        if a.dtype == object or a.dtype.kind in "SUV":
            raise TypeError(f"token ids must be integers, got {type(ids).__name__} of {a.dtype}")
        if a.ndim != 1:
            raise ValueError(f"token ids must be one sequence (a 1-D array), got shape {a.shape}")
        if a.size == 0:
            if allow_empty:
                return np.zeros(0, dtype=np.int32)
            raise ValueError("no tokens given")
        if a.dtype == object or a.dtype.kind not in "iu":
            raise TypeError(f"token ids must be integers, got an array of {a.dtype}")
        V = self.config.vocab_size
        if a.size and (int(a.min()) < 0 or int(a.max()) >= V):
            bad = int(a[(a < 0) | (a >= V)][0])
            raise ValueError(f"token id {bad} is outside the vocabulary [0, {V})")
        if a.size > self.config.seq_len:
            raise ValueError(f"{a.size} tokens exceed the model's context of {self.config.seq_len}")
        return np.ascontiguousarray(a, dtype=np.int32)

    # -------------------------------------------------------------- forward
    def _run(self, a, all_logits=True, hook=None, mask=0):
        """Runs a fresh sequence; hook(event) is called for the points in mask."""
        with self._running() as ctx:
            return self._forward(ctx, a, all_logits, hook, mask)

    def _forward(self, ctx, a, all_logits, hook, mask):
        check(lib.hr_context_truncate(ctx, 0))
        out = np.empty((a.size if all_logits else 1, self.config.vocab_size), dtype=np.float32)
        if hook is None:
            check(lib.hr_forward(ctx, _iptr(a), a.size, _fptr(out), all_logits))
            return out
        err = []

        def cb(ev_p, _ud):
            try:
                hook(ev_p.contents)
                return 0
            except BaseException as e:  # stop the forward; re-raised below
                err.append(e)
                return 1

        fn = _lib.HOOK_FN(cb)
        lib.hr_context_set_hook(ctx, fn, mask, None)
        try:
            st = lib.hr_forward(ctx, _iptr(a), a.size, _fptr(out), all_logits)
        finally:
            lib.hr_context_set_hook(ctx, _lib.HOOK_FN(), 0, None)
            lib.hr_context_truncate(ctx, 0)
        if err:
            raise err[0]
        check(st)
        return out

    def logits(self, ids):
        """(n, vocab) float32 logits of every position of ids (a fresh sequence;
        a str is tokenized with BOS)."""
        return self._run(self._ids(ids))

    def __call__(self, ids):
        return self.logits(ids)

    def loss(self, ids):
        """Mean next-token cross-entropy in nats of ids (every token after the
        first predicted from the ones before it; the library's log-softmax)."""
        a = self._ids(ids)
        if a.size < 2:
            raise ValueError("loss needs at least 2 tokens")
        return self._perplexity(a, n_ctx=a.size, stride=a.size, protocol=0, bos=-1, progress=None)["mean_nll"]

    def perplexity(self, text, ctx=None, stride=None, protocol="sliding", progress=None):
        """Perplexity of a text (str, or pathlib.Path of a file) as `headroom ppl`
        computes it: tokenized with BOS, windows of ctx tokens (default the
        model's seq_len) every stride tokens (sliding, default ctx/2), or
        llama.cpp's chunks (protocol="llama.cpp"; one trailing newline of the
        text is dropped, as llama-perplexity does). Returns a dict: ppl,
        ppl_stderr, mean_nll, n_scored, n_evaluated, n_windows, n_tokens,
        seconds, tokens_per_s. progress(done, total) is called per window;
        raising from it stops the run."""
        proto = {"sliding": 0, "llama.cpp": 1, "llamacpp": 1}.get(protocol)
        if proto is None:
            raise ValueError(f"unknown protocol {protocol!r} (expected 'sliding' or 'llama.cpp')")
        data, _ = text_bytes(text)
        if proto == 1 and data.endswith(b"\n"):
            data = data[:-1]
        seq = self.config.seq_len
        n_ctx = seq if ctx is None else int(ctx)
        if n_ctx > seq:
            raise _lib.RangeError(f"ctx {n_ctx} exceeds the model's context length {seq}", -6)
        if stride is not None and proto != 0:
            raise ValueError("stride applies only to protocol 'sliding'")
        ids = self.tokenize(data.decode("utf-8"))
        bos = self.bos
        r = self._perplexity(ids, n_ctx=n_ctx, stride=int(stride or 0), protocol=proto,
                             bos=-1 if bos is None else bos, progress=progress)
        r["n_tokens"] = int(ids.size)
        return r

    def _perplexity(self, ids, n_ctx, stride, protocol, bos, progress):
        p = lib.hr_ppl_default_params()
        p.n_ctx, p.stride, p.protocol, p.bos = n_ctx, stride, protocol, bos
        with _progress(progress) as cb:
            p.progress = cb.c
            r = _lib.PplResult()
            with self._running() as ctx:
                st = lib.hr_perplexity(ctx, _iptr(ids), ids.size, ctypes.byref(p), ctypes.byref(r))
                lib.hr_context_truncate(ctx, 0)
            cb.check(st)
        return {k: getattr(r, k) for k, _ in _lib.PplResult._fields_}

    def generate(self, prompt, n=128, temp=1.0, top_p=0.9, seed=42):
        """Continues prompt by up to n tokens as `headroom generate` does: stops
        at EOS or BOS (llama2.c stories end with BOS) or at the context limit.
        temp 0 = greedy. A str prompt (tokenized with BOS) gives the prompt
        plus the continuation as text (what the CLI prints); ids give the
        generated ids (np.int32)."""
        as_text = isinstance(prompt, str)
        if as_text and not prompt:
            raise ValueError("text is empty: the prompt needs at least one character")
        a = self._ids(prompt)
        if a.size >= self.config.seq_len:
            raise ValueError(f"the prompt is {a.size} tokens; the model's context holds {self.config.seq_len}, "
                             "leaving no room to generate")
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
            raise ValueError(f"n must be a non-negative int, got {n!r}")
        sp = _lib.SamplerParams(float(temp), float(top_p), int(seed))
        s = ctypes.c_void_p()
        check(lib.hr_sampler_new(ctypes.byref(sp), self.config.vocab_size, ctypes.byref(s)))
        eos = bos = -1
        if self._th is not None:
            eos, bos = lib.hr_tokenizer_eos(self._th.get()), lib.hr_tokenizer_bos(self._th.get())
        out = []
        try:
            with self._running() as ctx:
                check(lib.hr_context_truncate(ctx, 0))
                logits = np.empty(self.config.vocab_size, dtype=np.float32)  # (vocab) of the last position
                check(lib.hr_forward(ctx, _iptr(a), a.size, _fptr(logits), False))
                one = np.zeros(1, dtype=np.int32)
                while len(out) < n:
                    t = int(lib.hr_sampler_sample(s, _fptr(logits)))
                    if (eos >= 0 and t == eos) or (bos >= 0 and t == bos):
                        break
                    out.append(t)
                    if len(out) == n or lib.hr_context_n_past(ctx) >= lib.hr_context_n_ctx(ctx):
                        break
                    one[0] = t
                    check(lib.hr_forward(ctx, _iptr(one), 1, _fptr(logits), False))
                lib.hr_context_truncate(ctx, 0)
        finally:
            lib.hr_sampler_free(s)
        if not as_text:
            return np.asarray(out, dtype=np.int32)
        text, prev = [prompt.encode("utf-8")], int(a[-1])
        for t in out:
            text.append(self._piece(prev, t))
            prev = t
        return b"".join(text).decode("utf-8", "replace")

    # -------------------------------------------------------------- caches and hooks
    def _layers(self, layers):
        L = self.config.n_layers
        if layers is None:
            return None
        want = set()
        for l in ([layers] if isinstance(layers, (int, np.integer)) else layers):
            if isinstance(l, bool) or not isinstance(l, (int, np.integer)) or not 0 <= l < L:
                raise ValueError(f"layer {l!r} is not in the model (0..{L - 1})")
            want.add(int(l))
        return want

    def run_with_cache(self, ids, names=("pattern", "head_out", "resid_pre", "attn_out", "mlp_out"), layers=None):
        """(logits, Cache) of a fresh sequence with the named activations of
        the chosen layers (None = all) recorded — and nothing else: only the
        named hook points are enabled. See Cache for names and shapes."""
        names = [names] if isinstance(names, str) else list(names)
        for nm in names:
            if nm not in NAMES:
                raise ValueError(f"unknown activation name {nm!r} (known: {', '.join(NAMES)})")
        want = self._layers(layers)
        a = self._ids(ids)
        n, c = a.size, self.config
        cache = Cache()
        for nm in names:
            if nm == "final":
                dict.__setitem__(cache, ("final", None), np.zeros((n, c.dim), dtype=np.float32))
                continue
            for l in range(c.n_layers):
                if want is not None and l not in want:
                    continue
                if nm == "pattern":
                    arr = np.zeros((c.n_heads[l], n, n), dtype=np.float32)  # (heads, queries, keys)
                elif nm == "head_out":
                    arr = np.zeros((n, c.n_heads[l], c.head_dim), dtype=np.float32)  # (n, heads, head_dim)
                else:
                    arr = np.zeros((n, c.dim), dtype=np.float32)  # (n, dim)
                dict.__setitem__(cache, (nm, l), arr)
        mask = 0
        for nm in names:
            mask |= _lib.HOOK[nm]

        def record(ev):  # copies the event's rows into the cache (the buffer is reused after the call)
            nm = _lib.HOOK_NAME[ev.point]
            arr = dict.get(cache, (nm, None if nm == "final" else ev.layer))
            if arr is None:
                return
            v = _event_view(ev)
            r0, r1 = ev.pos0, ev.pos0 + ev.n_tokens
            if nm == "pattern":
                arr[ev.head, r0:r1, :ev.n_cols] = v
            elif nm == "head_out":
                arr[r0:r1, ev.head, :] = v
            else:
                arr[r0:r1, :] = v

        return self._run(a, hook=record, mask=mask), cache

    def run_with_hooks(self, ids, hooks):
        """Logits of a fresh sequence with hooks {key: fn}; key is (name, layer)
        (layer None = every layer), "final" or a TransformerLens name. fn(array,
        layer) receives a zero-copy view of the library's buffer, valid only
        during the call:
          "head_out"  (n, heads, head_dim), writable: a change is what W_O reads
          "resid_pre" / "attn_out" / "mlp_out" / "resid_post" / "final"
                      (n, dim), writable: the change flows into the rest of the pass
          "pattern"   (heads, n, n), read-only (the heads' outputs are already computed)
        fn may modify the array in place or return an array to copy over it.
        Keeping the array (or a view of it) after the call is an error —
        store array.copy(). An exception raised by fn stops the forward and
        propagates."""
        if not isinstance(hooks, dict):
            hooks = dict(hooks)
        table = {}
        mask = 0
        for key, fn in hooks.items():
            nm, l = _key(key)
            if not callable(fn):
                raise TypeError(f"hook for {key!r} is not callable")
            if l is not None and not 0 <= l < self.config.n_layers:
                raise ValueError(f"hook {key!r}: layer {l} is not in the model (0..{self.config.n_layers - 1})")
            mask |= _lib.HOOK[nm]
            table.setdefault((nm, l), []).append(fn)
        a = self._ids(ids)
        pending = {}  # per-head events of the current layer: point -> [(addr, n, cols, stride)]

        def call(nm, layer, v):
            fns = table.get((nm, layer), []) + (table.get((nm, None), []) if nm != "final" else [])
            for fn in fns:
                ret = fn(v, layer)
                if ret is not None and ret is not v:
                    if not v.flags.writeable:
                        raise _lib.InvalidArgument(f"hook for {(nm, layer)!r} returned an array; "
                                                   f"'{nm}' is read-only")
                    r = np.asarray(ret)
                    if r.shape != v.shape:
                        raise ValueError(f"hook for {(nm, layer)!r} returned shape {r.shape}, expected {v.shape}")
                    np.copyto(v, r, casting="same_kind")
                del ret
                # the view must not outlive the call: the buffer is reused (and freed with the model)
                if sys.getrefcount(v) > 3:  # v in call's frame + hook_event's + getrefcount's argument
                    raise _lib.InvalidArgument(
                        f"hook for {(nm, layer)!r} kept a reference to its array, which is only valid during "
                        "the call; store array.copy() instead")

        def hook_event(ev):
            nm = _lib.HOOK_NAME[ev.point]
            layer = None if nm == "final" else ev.layer
            if (nm, layer) not in table and (nm == "final" or (nm, None) not in table):
                return
            if nm not in ("pattern", "head_out"):
                v = _event_view(ev)
                call(nm, layer, v)
                return
            evs = pending.setdefault(nm, [])
            if ev.head == 0:
                evs.clear()
            evs.append((ctypes.cast(ev.data, ctypes.c_void_p).value, ev.n_tokens, ev.n_cols, ev.stride))
            if ev.head != self.config.n_heads[layer] - 1:
                return
            v = _layer_view(evs, nm == "head_out", writable=nm == "head_out")
            evs.clear()
            if v is None:
                raise _lib.Unsupported(f"the library emitted the heads of layer {layer} in buffers that are not "
                                       "evenly spaced; per-layer views are not possible", -4)
            call(nm, layer, v)

        return self._run(a, hook=hook_event, mask=mask)

    # -------------------------------------------------------------- gradients
    def grad(self, ids, wrt=("head_gates",), recompute=False, threads=None):
        """headroom.grad(self, ...): the gradient of the mean next-token loss of
        ids with respect to wrt, at the current head gates (see headroom.grad)."""
        from .gradients import grad
        return grad(self, ids, wrt=wrt, recompute=recompute, threads=threads)

    def weights(self):
        """The weight tensors by name as read-only zero-copy float32 arrays
        (headroom.gradients.weights; the names Model.grad's wrt takes)."""
        from .gradients import weights
        return weights(self)

    # -------------------------------------------------------------- gates
    def _push_gates(self):
        if self._ctx is not None:
            check(lib.hr_context_set_head_gates(self._ctx.ptr, _fptr(self._gates)))
            check(lib.hr_context_set_head_means(self._ctx.ptr, _fptr(self._means) if self._means is not None
                                                else None))

    def set_head_gates(self, gates):
        """Multiplies head h of layer l by gates[l, h] in every later forward
        pass (1 = unchanged, 0 = removed; shape (n_layers, max_heads)). None
        restores all 1."""
        g = np.ones(self._gates.shape, dtype=np.float32) if gates is None else \
            _finite_f32(gates, self._gates.shape, "gates", "(layers, max heads)")
        self._set_ablation(gates=g)

    def head_gates(self):
        """A copy of the current gates, (n_layers, max_heads) float32."""
        return self._gates.copy()

    def set_head_means(self, means):
        """Mean-ablation: a gated head moves towards means[l, h] (shape
        (n_layers, max_heads, head_dim)) instead of 0: out = g*out + (1-g)*mean.
        None = zero-ablation (the default)."""
        c = self.config
        shape = (c.n_layers, max(c.max_heads, 1), c.head_dim)
        self._set_ablation(means=None if means is None else
                           _finite_f32(means, shape, "means", "(layers, max heads, head_dim)"))

    def _set_ablation(self, **kw):
        """Sets the gates and/or means (checked copies) on the model and its context."""
        with self._lock:
            self._model()
            for k, v in kw.items():
                setattr(self, "_" + k, v)
            self._push_gates()

    def mask_heads(self, heads, value=0.0):
        """Gates the listed (layer, head) pairs to value (default 0 = removed);
        the other heads keep their gates."""
        g = self._gates.copy()
        for lh in heads:
            l, h = lh
            if not (0 <= l < self.config.n_layers and 0 <= h < self.config.n_heads[l]):
                raise IndexError(f"head {l}.{h} is not in the model")
            g[l, h] = value
        self.set_head_gates(g)

    @contextlib.contextmanager
    def gates(self, gates=None, mask=None):
        """Temporary gates (an array) and/or masked heads [(l, h)], restored on
        exit:  with m.gates(mask=[(3, 5)]): m.logits(ids)"""
        saved = self._gates.copy()
        try:
            if gates is not None:
                self.set_head_gates(gates)
            if mask:
                self.mask_heads(mask)
            yield self
        finally:
            if self._mh is not None:
                self.set_head_gates(saved)

    # -------------------------------------------------------------- KV plans, saving
    def with_kv_plan(self, plan):
        """A view of this model (same weights and tokenizer, no copy) whose
        context uses the per-head KV-cache plan (a headroom.KvPlan); its gates
        start at 1. Close it when done (the weights stay with this model)."""
        from .study import KvPlan
        if not isinstance(plan, KvPlan):
            raise TypeError(f"plan must be a headroom.KvPlan, not {type(plan).__name__}")
        plan._ptr()  # a closed plan raises InvalidArgument
        self._model()
        view = Model.__new__(Model)
        Model.__init__(view, self._mh.acquire(), self._m, self._th.acquire() if self._th else None, self._path,
                       self._threads, self._tok_note)
        view._planh = plan._h.acquire()
        view._plan = plan
        try:
            view._context()  # the plan is checked against the model now
        except BaseException:
            view.close()
            raise
        return view

    @property
    def kv_plan(self):
        """The KvPlan of a with_kv_plan view (None: a full cache)."""
        return self._plan

    def save(self, path, format="gguf", dtype=None, tokenizer=True, force=False):
        """Writes the model as a GGUF file or a Hugging Face folder (format
        "hf", uniform models only), with its tokenizer unless tokenizer=False.
        dtype "f32" | "f16" | "bf16" | "q8_0" (GGUF only) | "int8" (HF only:
        compressed-tensors per-channel int8 projections; default: the
        library's hr_dtype_for_model — the source's when one of those and the
        format holds it, else f32; a pruned or fine-tuned model keeps its
        input's).
        The output is checked first as the CLI checks it (never an input,
        never a foreign file unless force) and appears atomically."""
        if format not in ("gguf", "hf"):
            raise ValueError(f"format must be 'gguf' or 'hf', got {format!r}")
        m = self._model()
        d = ctypes.c_int(_lib.DTYPE_KEEP)  # hr_dtype: the writers resolve HR_DTYPE_KEEP
        if dtype is not None:
            check(lib.hr_dtype_from_name(str(dtype).encode(), ctypes.byref(d)))
        _lib.output_check(path, _lib.OUT_GGUF if format == "gguf" else _lib.OUT_HF_FOLDER, None,
                          self._inputs(), force)
        tok = self._th.get() if (tokenizer and self._th is not None) else None
        with self._lock:
            if format == "gguf":
                check(lib.hr_model_save_gguf(m, tok, os.fsencode(path), d.value))
            else:
                check(lib.hr_model_save_hf(m, tok, os.fsencode(path), d.value))

    def _inputs(self):
        """Paths this model was read from (outputs must never replace them)."""
        return model_inputs(self._path)


def model_inputs(path):
    """A model path and the tokenizer found for it: what outputs must never replace."""
    if not path:
        return []
    ins = [path]
    buf = ctypes.create_string_buffer(8192)
    if lib.hr_tokenizer_find_for_model(os.fsencode(path), None, buf, len(buf)) == 0:
        ins.append(os.fsdecode(buf.value))
    return ins


def _finite_f32(x, shape, what, dims):
    """A float32 copy of x (the caller cannot change it later), checked: numbers,
    the shape, finite."""
    a = np.asarray(x)
    if a.dtype == object or a.dtype.kind not in "biuf":
        raise TypeError(f"{what} must be numbers, got an array of {a.dtype}")
    if a.shape != shape:
        raise ValueError(f"{what} must have shape {shape} {dims}, got {a.shape}")
    a = np.array(a, dtype=np.float32)
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{what} must be finite")
    return a


def _event_view(ev):
    """Zero-copy (n_tokens, n_cols) view of an event's rows (strided)."""
    count = (ev.n_tokens - 1) * ev.stride + ev.n_cols
    flat = np.ctypeslib.as_array(ev.data, shape=(count,))
    return np.lib.stride_tricks.as_strided(flat, shape=(ev.n_tokens, ev.n_cols), strides=(4 * ev.stride, 4))


class _progress(contextlib.AbstractContextManager):
    """A progress callback for the library: calls fn(done, total) (when given)
    and turns an exception raised there — KeyboardInterrupt included — into
    an abort of the C call, re-raised once it has returned."""

    def __init__(self, fn):
        self.fn = fn
        self.err = None

        def cb(done, total, _ud):
            try:
                if self.fn is not None:
                    self.fn(int(done), int(total))
                return 0
            except BaseException as e:
                self.err = e
                return 1

        self.c = _lib.PROGRESS_FN(cb)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def check(self, status):
        if self.err is not None:
            raise self.err
        check(status)
