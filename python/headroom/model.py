"""headroom.Model: a loaded model with its tokenizer and an inference
context, with TransformerLens-style caches and hooks over libheadroom."""
import contextlib
import ctypes
import threading

import numpy as np

from . import _lib
from ._lib import lib, check, Error

_ARCHS = {0: "llama", 1: "qwen2", 2: "gpt2"}


class Config(dict):
    """The model's hyper-parameters (a plain dict: layers, heads per layer, ...)."""

    def __getattr__(self, k):
        try:
            return self[k]
        except KeyError:
            raise AttributeError(k) from None


def _config(cp):
    L = lib.hr_config_n_layers(cp)
    return Config(
        architecture=lib.hr_arch_name(lib.hr_config_arch(cp)).decode(),
        dim=lib.hr_config_dim(cp),
        n_layers=L,
        head_dim=lib.hr_config_head_dim(cp),
        n_heads=[lib.hr_config_n_head(cp, l) for l in range(L)],
        n_kv_heads=[lib.hr_config_n_head_kv(cp, l) for l in range(L)],
        n_ff=[lib.hr_config_n_ff(cp, l) for l in range(L)],
        vocab_size=lib.hr_config_vocab_size(cp),
        seq_len=lib.hr_config_seq_len(cp),
        rope_theta=lib.hr_config_rope_theta(cp),
        norm_eps=lib.hr_config_norm_eps(cp),
        tied_classifier=bool(lib.hr_config_tied_classifier(cp)),
        max_heads=lib.hr_config_max_heads(cp),
    )


def _ids_array(ids):
    a = np.ascontiguousarray(ids, dtype=np.int32)
    if a.ndim != 1:
        raise ValueError(f"token ids must be a 1-D sequence, got shape {a.shape}")
    return a


class Cache(dict):
    """Recorded activations, keyed by (name, layer): cache["pattern", 3] is a
    (heads, n, n) array, cache["head_out", 3] (n, heads, head_dim),
    cache["resid_pre", 3] / ["attn_out", 3] / ["mlp_out", 3] /
    ["resid_post", 3] (n, dim), cache["final"] (n, dim)."""

    def __getitem__(self, key):
        if isinstance(key, str):
            key = (key, None)
        return dict.__getitem__(self, key)


class Model:
    """A model loaded by libheadroom.

    m = headroom.Model.load("stories260K.bin")
    ids = m.tokenize("Once upon a time")
    logits = m.logits(ids)                      # (n, vocab) float32
    logits, cache = m.run_with_cache(ids, names=["pattern"])
    """

    def __init__(self, handle, path, threads, tokenizer):
        self._m = handle
        self._path = path
        self._threads = threads or 0
        self._tok = tokenizer
        self._ctx = None
        self._ctx_n = 0
        self._lock = threading.RLock()
        self.config = _config(lib.hr_model_config(handle))
        self._gates = np.ones((self.config.n_layers, max(self.config.max_heads, 1)), dtype=np.float32)

    # -------------------------------------------------------------- lifetime
    @classmethod
    def load(cls, path, threads=None, tokenizer=None):
        """Loads a llama2.c .bin, GGUF file or Hugging Face folder; the
        tokenizer is found beside the model (or given). threads: None = all cores."""
        if threads is not None and (not isinstance(threads, int) or threads < 0):
            raise ValueError("threads must be None or a non-negative int")
        h = ctypes.c_void_p()
        check(lib.hr_model_load(str(path).encode(), ctypes.byref(h)))
        tok = None
        buf = ctypes.create_string_buffer(4352)
        if lib.hr_tokenizer_find_for_model(str(path).encode(), tokenizer.encode() if tokenizer else None, buf,
                                           len(buf)) == 0:
            t = ctypes.c_void_p()
            if lib.hr_tokenizer_load(buf.value, ctypes.byref(t)) == 0:
                tok = t
            elif tokenizer:
                lib.hr_model_free(h)
                check(-2, "cannot load the tokenizer")
        elif tokenizer:
            lib.hr_model_free(h)
            check(-7, "tokenizer not found")
        return cls(h, str(path), threads, tok)

    def close(self):
        """Frees the C handles now (also done on garbage collection). Idempotent."""
        with self._lock:
            if self._ctx:
                lib.hr_context_free(self._ctx)
                self._ctx = None
            if self._tok:
                lib.hr_tokenizer_free(self._tok)
                self._tok = None
            if self._m:
                lib.hr_model_free(self._m)
                self._m = None

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _handle(self):
        if not self._m:
            raise Error("the model is closed", -1)
        return self._m

    def _context(self, n):
        """The inference context, (re)created when a longer one is needed."""
        self._handle()
        if self._ctx is None or self._ctx_n < n:
            if self._ctx:
                lib.hr_context_free(self._ctx)
                self._ctx = None
            p = lib.hr_context_default_params()
            p.n_ctx = self.config.seq_len
            p.n_threads = self._threads
            c = ctypes.c_void_p()
            check(lib.hr_context_new(self._m, ctypes.byref(p), ctypes.byref(c)))
            self._ctx, self._ctx_n = c, p.n_ctx
            self._push_gates()
        else:
            check(lib.hr_context_truncate(self._ctx, 0))
        return self._ctx

    def __repr__(self):
        c = self.config
        return (f"headroom.Model({self._path!r}, {c.architecture}, {c.n_layers} layers, dim {c.dim}, "
                f"vocab {c.vocab_size})")

    # -------------------------------------------------------------- tokens
    def _tokenizer(self):
        self._handle()
        if not self._tok:
            raise Error("this model has no tokenizer (pass tokenizer= to Model.load)", -7)
        return self._tok

    def tokenize(self, text, bos=True):
        """Token ids (np.int32) of text, BOS first when bos."""
        tok = self._tokenizer()
        data = text.encode("utf-8")
        p = lib.hr_encode_default_params()
        p.add_bos = bool(bos)
        ids = ctypes.POINTER(ctypes.c_int32)()
        n = ctypes.c_size_t()
        check(lib.hr_tokenizer_encode(tok, data, len(data), ctypes.byref(p), ctypes.byref(ids), ctypes.byref(n)))
        try:
            return np.ctypeslib.as_array(ids, shape=(n.value,)).copy() if n.value else np.zeros(0, np.int32)
        finally:
            lib.hr_free(ids)

    def decode(self, ids):
        """Text of token ids (BOS/EOS skipped)."""
        tok = self._tokenizer()
        a = _ids_array(ids)
        out = ctypes.c_void_p()
        n = ctypes.c_size_t()
        check(lib.hr_tokenizer_decode(tok, a.ctypes.data_as(ctypes.POINTER(ctypes.c_int32)), a.size, True,
                                      ctypes.byref(out), ctypes.byref(n)))
        try:
            return ctypes.string_at(out, n.value).decode("utf-8", "replace")
        finally:
            lib.hr_free(out)

    def _ids(self, ids):
        if isinstance(ids, str):
            return self.tokenize(ids)
        a = _ids_array(ids)
        if a.size == 0:
            raise ValueError("no tokens given")
        if a.size > self.config.seq_len:
            raise ValueError(f"{a.size} tokens exceed the model's context of {self.config.seq_len}")
        return a

    # -------------------------------------------------------------- forward
    def _forward(self, ids, all_logits=True):
        ctx = self._context(ids.size)
        V = self.config.vocab_size
        out = np.empty((ids.size if all_logits else 1, V), dtype=np.float32)
        st = lib.hr_forward(ctx, ids.ctypes.data_as(ctypes.POINTER(ctypes.c_int32)), ids.size,
                            out.ctypes.data_as(ctypes.POINTER(ctypes.c_float)), all_logits)
        check(st, "forward failed")
        return out

    def logits(self, ids):
        """(n, vocab) float32 logits of every position of ids (a fresh sequence)."""
        with self._lock:
            return self._forward(self._ids(ids))

    def loss(self, ids):
        """Mean next-token cross-entropy (nats) of ids."""
        a = self._ids(ids)
        if a.size < 2:
            raise ValueError("loss needs at least 2 tokens")
        lg = self.logits(a)[:-1].astype(np.float64)
        m = lg.max(axis=1, keepdims=True)
        lse = np.log(np.exp(lg - m).sum(axis=1)) + m[:, 0]
        return float(np.mean(lse - lg[np.arange(a.size - 1), a[1:]]))

    def generate(self, prompt, n=32, temp=0.0, top_p=0.9, seed=0):
        """Continues prompt (text or ids) by n tokens; returns the text (or ids
        when given ids). temp 0 = greedy."""
        as_text = isinstance(prompt, str)
        ids = list(self._ids(prompt))
        with self._lock:
            p = lib.hr_sampler_default_params()
            p.temperature, p.top_p, p.seed = float(temp), float(top_p), int(seed)
            s = ctypes.c_void_p()
            check(lib.hr_sampler_new(ctypes.byref(p), self.config.vocab_size, ctypes.byref(s)))
            try:
                ctx = self._context(len(ids))
                V = self.config.vocab_size
                logits = np.empty(V, dtype=np.float32)
                lp = logits.ctypes.data_as(ctypes.POINTER(ctypes.c_float))
                arr = np.asarray(ids, dtype=np.int32)
                check(lib.hr_forward(ctx, arr.ctypes.data_as(ctypes.POINTER(ctypes.c_int32)), arr.size, lp, False))
                eos = lib.hr_tokenizer_eos(self._tok) if self._tok else -1
                out = []
                for _ in range(int(n)):
                    t = int(lib.hr_sampler_sample(s, lp))
                    if t == eos or lib.hr_context_n_past(ctx) >= self._ctx_n:
                        break
                    out.append(t)
                    one = np.array([t], dtype=np.int32)
                    check(lib.hr_forward(ctx, one.ctypes.data_as(ctypes.POINTER(ctypes.c_int32)), 1, lp, False))
            finally:
                lib.hr_sampler_free(s)
        if as_text:
            return self.decode(np.asarray(ids + out, dtype=np.int32))
        return np.asarray(out, dtype=np.int32)

    # -------------------------------------------------------------- hooks
    def _run_hooked(self, ids, mask, on_event):
        """Runs ids with on_event(event) called for each hook point in mask."""
        ctx = self._context(ids.size)
        err = []

        def cb(ev_p, _ud):
            try:
                on_event(ev_p.contents)
                return 0
            except BaseException as e:  # stop the forward, re-raise below
                err.append(e)
                return 1

        fn = _lib.HOOK_FN(cb)
        lib.hr_context_set_hook(ctx, fn, mask, None)
        try:
            V = self.config.vocab_size
            out = np.empty((ids.size, V), dtype=np.float32)
            st = lib.hr_forward(ctx, ids.ctypes.data_as(ctypes.POINTER(ctypes.c_int32)), ids.size,
                                out.ctypes.data_as(ctypes.POINTER(ctypes.c_float)), True)
        finally:
            lib.hr_context_set_hook(ctx, _lib.HOOK_FN(0), 0, None)
        if err:
            raise err[0]
        check(st, "forward failed")
        return out

    @staticmethod
    def _view(ev):
        """Writable (n_tokens, n_cols) view of an event's data (strided rows)."""
        base = ctypes.cast(ev.data, ctypes.c_void_p).value
        buf = (ctypes.c_float * ((ev.n_tokens - 1) * ev.stride + ev.n_cols)).from_address(base)
        a = np.frombuffer(buf, dtype=np.float32)
        return np.lib.stride_tricks.as_strided(a, shape=(ev.n_tokens, ev.n_cols), strides=(4 * ev.stride, 4))

    def run_with_cache(self, ids, names=("pattern", "head_out", "resid_pre", "attn_out", "mlp_out"), layers=None):
        """Logits and a Cache of the named activations (only those are recorded)."""
        names = [names] if isinstance(names, str) else list(names)
        for nm in names:
            if nm not in _lib.HOOK:
                raise ValueError(f"unknown activation name {nm!r} (known: {', '.join(_lib.HOOK)})")
        want = None if layers is None else set(int(l) for l in layers)
        a = self._ids(ids)
        n, c = a.size, self.config
        cache = Cache()
        for nm in names:
            for l in range(c.n_layers):
                if want is not None and l not in want:
                    continue
                if nm == "pattern":
                    cache[nm, l] = np.zeros((c.n_heads[l], n, n), dtype=np.float32)
                elif nm == "head_out":
                    cache[nm, l] = np.zeros((n, c.n_heads[l], c.head_dim), dtype=np.float32)
                elif nm != "final":
                    cache[nm, l] = np.zeros((n, c.dim), dtype=np.float32)
            if nm == "final":
                cache[nm, None] = np.zeros((n, c.dim), dtype=np.float32)
        mask = 0
        for nm in names:
            mask |= _lib.HOOK[nm]

        def on_event(ev):
            nm = _lib.HOOK_NAME[ev.point]
            l = None if nm == "final" else ev.layer
            if nm != "final" and want is not None and l not in want:
                return
            v = self._view(ev)
            r0, r1 = ev.pos0, ev.pos0 + ev.n_tokens
            if nm == "pattern":
                cache[nm, l][ev.head, r0:r1, :] = v[:, :n]
            elif nm == "head_out":
                cache[nm, l][r0:r1, ev.head, :] = v
            else:
                cache[nm, l][r0:r1, :] = v

        with self._lock:
            logits = self._run_hooked(a, mask, on_event)
        return logits, cache

    def run_with_hooks(self, ids, hooks):
        """Logits of ids with hooks {(name, layer): fn}; fn(array, layer)
        receives a writable view valid during the call and may modify it in
        place (zero a head, patch from another run, steer). For "head_out"
        the view is (n, heads, head_dim); for "pattern" (heads, n, n) is not
        writable through this call (patterns are read-only results)."""
        a = self._ids(ids)
        mask = 0
        table = {}
        for (nm, l), fn in hooks.items():
            if nm not in _lib.HOOK:
                raise ValueError(f"unknown hook point {nm!r}")
            if not callable(fn):
                raise TypeError(f"hook for {(nm, l)} is not callable")
            mask |= _lib.HOOK[nm]
            table.setdefault((nm, l), []).append(fn)
        def on_event(ev):
            nm = _lib.HOOK_NAME[ev.point]
            l = None if nm == "final" else ev.layer
            fns = table.get((nm, l))
            if not fns:
                return
            v = self._view(ev)
            if nm == "head_out":
                # one event per head: gather the heads of a layer into one
                # writable (n, heads, head_dim) view of the shared buffer
                hd = self.config.head_dim
                if ev.head == self.config.n_heads[l] - 1:
                    base = ctypes.cast(ev.data, ctypes.c_void_p).value - 4 * hd * ev.head
                    size = (ev.n_tokens - 1) * ev.stride + hd * (ev.head + 1)
                    buf = (ctypes.c_float * size).from_address(base)
                    arr = np.lib.stride_tricks.as_strided(
                        np.frombuffer(buf, dtype=np.float32), shape=(ev.n_tokens, ev.head + 1, hd),
                        strides=(4 * ev.stride, 4 * hd, 4))
                    for fn in fns:
                        fn(arr, l)
                return
            if nm == "pattern":
                v = v.copy()
                v.setflags(write=False)
            for fn in fns:
                fn(v, l)

        with self._lock:
            return self._run_hooked(a, mask, on_event)

    # -------------------------------------------------------------- gates
    def _push_gates(self):
        if self._ctx:
            g = np.ascontiguousarray(self._gates, dtype=np.float32)
            check(lib.hr_context_set_head_gates(self._ctx, g.ctypes.data_as(ctypes.POINTER(ctypes.c_float))))

    def set_head_gates(self, gates):
        """Multiplies head h of layer l by gates[l, h] (1 = unchanged, 0 = removed)
        in every later forward; None restores all 1."""
        shape = self._gates.shape
        if gates is None:
            g = np.ones(shape, dtype=np.float32)
        else:
            g = np.asarray(gates, dtype=np.float32)
            if g.shape != shape:
                raise ValueError(f"gates must have shape {shape} (layers, max heads), got {g.shape}")
            if not np.all(np.isfinite(g)):
                raise ValueError("gates must be finite")
        with self._lock:
            self._gates = g.copy()
            self._push_gates()

    def head_gates(self):
        return self._gates.copy()

    def mask_heads(self, heads):
        """Gates the listed (layer, head) pairs to 0 (the others keep their gates)."""
        g = self._gates.copy()
        for l, h in heads:
            if not (0 <= l < self.config.n_layers and 0 <= h < self.config.n_heads[l]):
                raise IndexError(f"head {l}.{h} is not in the model")
            g[l, h] = 0.0
        self.set_head_gates(g)

    @contextlib.contextmanager
    def gates(self, gates=None, mask=None):
        """Temporarily set gates (an array) and/or mask heads [(l, h)]:
        with m.gates(mask=[(3, 5)]): ..."""
        saved = self._gates.copy()
        try:
            if gates is not None:
                self.set_head_gates(gates)
            if mask:
                self.mask_heads(mask)
            yield self
        finally:
            self.set_head_gates(saved)
