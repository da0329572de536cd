"""Gradients of the next-token loss (grad.h): headroom.grad(model, ids, wrt=...)
runs the library's exact backward pass (hr_grad) over one or more windows
of tokens and returns a Gradients object of NumPy arrays."""
import ctypes
import fnmatch

import numpy as np

from . import _lib
from ._handle import Handle, Owner
from ._lib import lib, check
from .model import _iptr, _threads

HR_PARAM_HEAD_GATE, HR_PARAM_NEURON_GATE = 22, 23  # hr_param_kind (grad.h)
GROUPS = ("head_gates", "neuron_gates", "embeddings", "weights")


class _Keep:
    """The base of a zero-copy array over a buffer of a hr_grad: holds the
    handle (and so the hr_grad, its hr_params and the model) while any array
    over the buffer lives."""

    def __init__(self, handle, ptr, shape):
        self._h = handle.acquire()
        self.__array_interface__ = {"shape": shape, "typestr": "<f4", "data": (ptr, True), "version": 3}

    def __del__(self):
        try:
            self._h.release()
        except Exception:  # interpreter shutdown: modules may be gone
            pass


def _view(handle, ptr, shape):
    return np.asarray(_Keep(handle, ctypes.cast(ptr, ctypes.c_void_p).value, shape))


class Gradients(Owner):
    """The gradient of a model's mean next-token loss (hr_grad), by name:

        g = headroom.grad(m, ids, wrt=["head_gates", "blk.0.attn_q.weight"])
        g["head_gates"]            (n_layers, max_heads) float32 dL/d(gate), 0 beyond a layer's heads
        g["neuron_gates"]          (n_layers, max_ff) float32 dL/d(neuron gate), 0 beyond a layer's width
        g["embeddings"]            (n, dim) float32 dL/d(input embeddings) of the last window, times 1/K
        g["blk.0.attn_q.weight"]   a weight tensor's gradient, its shape (hr_param_info rows, cols;
                                   vectors 1-D), read-only
        g.loss, g.losses           mean loss over the K windows, each window's loss (nats)
        g.taylor_heads()           (n_layers, max_heads) |sum of w * dL/dw| over each head's weights
        g.taylor_neurons()         (n_layers, max_ff) the same per MLP neuron

    Weight gradients are zero-copy views of the library's buffers: each
    array keeps those buffers (and the model) alive on its own, so it stays
    valid after close(). Gate and embedding gradients are copies (gates are
    gathered from per-layer tensors into one matrix). Iterating gives the
    names; names() lists them."""

    _handles = ("_gh",)

    def __init__(self, gh, ph, model, names, groups, losses):
        self._gh, self._ph = gh, ph
        self._model = model
        self.losses = losses
        self.loss = float(np.mean(losses))
        self._names = names          # tensor name -> (index, shape)
        self._arrays = {}
        c = model.config
        g = gh.ptr
        if "head_gates" in groups:
            self._arrays["head_gates"] = self._gather(HR_PARAM_HEAD_GATE, max(c.max_heads, 1))
        if "neuron_gates" in groups:
            self._arrays["neuron_gates"] = self._gather(HR_PARAM_NEURON_GATE, max(c.max_ff, 1))
        if "embeddings" in groups:
            n = ctypes.c_int()
            ptr = lib.hr_grad_input(g, ctypes.byref(n))
            self._arrays["embeddings"] = np.ctypeslib.as_array(ptr, shape=(n.value, c.dim)).copy()
        for name, (i, shape) in names.items():
            self._arrays[name] = _view(gh, lib.hr_grad_tensor(g, i), shape)
            self._arrays[name].flags.writeable = False

    def _gather(self, kind, width):
        c = self._model.config
        out = np.zeros((c.n_layers, width), dtype=np.float32)  # (n_layers, width)
        for i, (k, layer, n) in self._gate_index(kind):
            out[layer, :n] = np.ctypeslib.as_array(lib.hr_grad_tensor(self._gh.ptr, i), shape=(n,))
        return out

    def _gate_index(self, kind):
        for i, (_, k, layer, shape) in enumerate(_tensors(self._ph.ptr)):
            if k == kind:
                yield i, (k, layer, shape[0])

    _what = "gradient"

    def _g(self):
        return self._ptr()

    def __getitem__(self, name):
        self._g()
        try:
            return self._arrays[name]
        except KeyError:
            raise KeyError(f"no gradient {name!r} was asked for (have: {', '.join(self._arrays)})") from None

    def __contains__(self, name):
        return name in self._arrays

    def __iter__(self):
        return iter(self._arrays)

    def __len__(self):
        return len(self._arrays)

    def names(self):
        return list(self._arrays)

    def items(self):
        return [(k, self[k]) for k in self._arrays]

    def __repr__(self):
        return f"headroom.Gradients(loss {self.loss:.4f}, {len(self.losses)} windows, {', '.join(self._arrays)})"

    @property
    def nbytes(self):
        """Bytes the library holds for this gradient (hr_grad_bytes)."""
        return int(lib.hr_grad_bytes(self._g()))

    def _taylor(self, fn, width):
        g, c = self._g(), self._model.config
        out = np.zeros((c.n_layers, width))  # (n_layers, width)
        sizes = c.n_heads if fn is lib.hr_grad_taylor_heads else c.n_ff
        for l in range(c.n_layers):
            row = np.zeros(max(sizes[l], 1))
            st = fn(g, l, row.ctypes.data_as(ctypes.POINTER(ctypes.c_double)))
            if st != 0:
                raise _lib.error(st, lib.hr_grad_last_error(g).decode() or None)
            out[l, :sizes[l]] = row[:sizes[l]]
        return out

    def taylor_heads(self):
        """LLM-Pruner's first-order score of every head (hr_grad_taylor_heads):
        |sum over its Wq rows, Wo columns (and its KV head's rows when it is
        the group's only query head) of w * dL/dw|; (n_layers, max_heads)
        float64. Needs the attention weights' gradients (wrt=["weights"])."""
        return self._taylor(lib.hr_grad_taylor_heads, max(self._model.config.max_heads, 1))

    def taylor_neurons(self):
        """The same per MLP neuron (hr_grad_taylor_neurons), (n_layers, max_ff) float64."""
        return self._taylor(lib.hr_grad_taylor_neurons, max(self._model.config.max_ff, 1))


def _windows(model, ids):
    """The windows of a grad call as a list of int32 arrays: a str (tokenized
    with BOS) or a 1-D array is one window; a 2-D array or a list of 1-D
    sequences are several."""
    if isinstance(ids, str) or (isinstance(ids, np.ndarray) and ids.ndim == 1):
        ws = [model._ids(ids)]
    elif isinstance(ids, np.ndarray) and ids.ndim == 2:
        ws = [model._ids(w) for w in ids]
    elif isinstance(ids, (list, tuple)) and ids and all(isinstance(w, (list, tuple, np.ndarray, str)) for w in ids):
        ws = [model._ids(w) for w in ids]
    else:
        ws = [model._ids(ids)]
    if not ws:
        raise ValueError("no windows given")
    for w in ws:
        if w.size < 2:
            raise ValueError(f"a window needs at least 2 tokens (the loss predicts each token from the ones before "
                             f"it), got {w.size}")
    return ws


def _selection(p, wrt):
    """(select[], tensor names -> (index, shape), groups) of the wrt list."""
    if isinstance(wrt, str):
        wrt = [wrt]
    tensors = [(name, kind, shape) for name, kind, _, shape in _tensors(p)]
    sel = (ctypes.c_bool * max(len(tensors), 1))()
    names, groups = {}, set()
    for w in wrt:
        if not isinstance(w, str):
            raise TypeError(f"wrt entries are names (str), got {type(w).__name__}")
        if w in GROUPS:
            groups.add(w)
            continue
        hit = False
        for i, (name, kind, shape) in enumerate(tensors):
            if kind < HR_PARAM_HEAD_GATE and fnmatch.fnmatchcase(name, w):
                names[name] = (i, shape)
                hit = True
        if not hit:
            raise _lib.NotFound(f"wrt {w!r} names no weight tensor of this model (use {', '.join(GROUPS)}, a "
                                f"tensor name such as {tensors[0][0]!r} or a pattern such as 'blk.*.attn_q.weight')",
                                -7)
    for i, (name, kind, shape) in enumerate(tensors):
        if "weights" in groups and kind < HR_PARAM_HEAD_GATE:
            names[name] = (i, shape)
        sel[i] = name in names or (kind == HR_PARAM_HEAD_GATE and "head_gates" in groups) or \
            (kind == HR_PARAM_NEURON_GATE and "neuron_gates" in groups)
    if not names and not groups:
        raise ValueError("wrt is empty: name what to differentiate")
    return sel, names, groups


def _params(model):
    """A hr_params of the model (weights borrowed, gates 1, no adapters) as a
    Handle keeping the model alive."""
    pp = lib.hr_params_default_params()
    out = ctypes.c_void_p()
    check(lib.hr_params_new(model._model(), ctypes.byref(pp), ctypes.byref(out)))
    return Handle(out.value, lib.hr_params_free, "gradient", deps=(model._mh,))


def _tensors(p):
    """[(name, kind, layer, shape)] of every tensor of a hr_params (vectors 1-D)."""
    info = _lib.ParamInfo()
    out = []
    for i in range(lib.hr_params_n_tensors(p)):
        check(lib.hr_params_info(p, i, ctypes.byref(info)))
        shape = (int(info.cols),) if info.rows == 1 else (int(info.rows), int(info.cols))
        out.append((info.name.decode(), int(info.kind), int(info.layer), shape))
    return out


def weights(model):
    """The model's weight tensors by GGUF-style name ("token_embd.weight",
    "blk.0.attn_q.weight", ...; hr_params order), as read-only zero-copy
    float32 views of the library's weights (Q/K rows in the interleaved RoPE
    layout the engine uses). Each array keeps the weights alive. A model
    whose matrices stay in their file's dtype (bf16, f16, 8-bit) gets f32
    copies of them here, once (their f32 memory on top)."""
    ph = _params(model)
    try:
        out = {}
        for i, (name, kind, _, shape) in enumerate(_tensors(ph.ptr)):
            if kind >= HR_PARAM_HEAD_GATE:
                continue
            ptr = lib.hr_params_data(ph.ptr, i)
            if not ptr:  # a typed model's f32 copy did not fit: the library's error
                raise _lib.OutOfMemory(_lib.last_error(), -5)
            out[name] = _view(ph, ptr, shape)
        return out
    finally:
        ph.release()


def grad(model, ids, wrt=("head_gates",), recompute=False, threads=None):
    """The gradient of the mean next-token cross-entropy (hr_grad_accumulate)
    with respect to what wrt names, at the model's current head gates:
      ids   one window (a str, tokenized with BOS, or 1-D token ids) or K
            windows (a 2-D array or a list of 1-D sequences): the gradient of
            the mean of the K windows' losses (each window scale 1/K)
      wrt   names: "head_gates", "neuron_gates", "embeddings" (the input
            embeddings of the last window), "weights" (every weight tensor),
            or weight tensor names / fnmatch patterns ("blk.0.attn_q.weight",
            "blk.*.ffn_down.weight"; see Gradients)
      recompute  keep only each layer's input and recompute in the backward
            pass (less memory; the same gradients bit for bit)
      threads    None = the model's (the gradients are identical for any count)
    Weights are borrowed from the loaded model (no copy). Mean-ablated heads
    (set_head_means) are not differentiable: Unsupported. Returns Gradients."""
    model._model()
    if model._means is not None and np.any(model._gates != 1):
        raise _lib.Unsupported("gradients of a model with mean-ablated heads are not supported "
                               "(set_head_means(None) first)", -4)
    ws = _windows(model, ids)
    ph = _params(model)
    try:
        p = ph.ptr
        sel, names, groups = _selection(p, wrt)
        for i, (_, kind, layer, shape) in enumerate(_tensors(p)):  # the model's current gates
            if kind == HR_PARAM_HEAD_GATE and np.any(model._gates[layer] != 1):
                dst = np.ctypeslib.as_array(lib.hr_params_data_mut(p, i), shape=shape)
                dst[:] = model._gates[layer, :shape[0]]
        gp = lib.hr_grad_default_params()
        gp.n_threads = model._threads if threads is None else _threads(threads)
        gp.max_tokens = max(w.size for w in ws)
        gp.select = ctypes.cast(sel, ctypes.POINTER(ctypes.c_bool))
        gp.input_grad = "embeddings" in groups
        gp.recompute = bool(recompute)
        gout = ctypes.c_void_p()
        check(lib.hr_grad_new(p, ctypes.byref(gp), ctypes.byref(gout)))
    except BaseException:
        ph.release()
        raise
    gh = Handle(gout.value, lib.hr_grad_free, "gradient", deps=(ph,))
    ph.release()  # the gradient's handle keeps the parameters alive
    try:
        losses = []
        loss = ctypes.c_double()
        for w in ws:
            st = lib.hr_grad_accumulate(gh.ptr, _iptr(w), w.size, 1.0 / len(ws), ctypes.byref(loss))
            if st != 0:
                raise _lib.error(st, lib.hr_grad_last_error(gh.ptr).decode() or None)
            losses.append(loss.value)
        return Gradients(gh, ph, model, names, groups, losses)
    except BaseException:
        gh.release()
        raise
