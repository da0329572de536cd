"""The studies, over the library's study API: the head lab (hr_heads_run),
score tables (scores.h), KV plans (kvcache.h), pruning (hr_prune_run +
prune.json), evaluation (hr_eval_run + eval.json) and conversion (save.h).
Each function does what the CLI command of the same name does, with the
same defaults, so its JSON equals the command's."""
import ctypes
import json
import os

import numpy as np

from . import _lib
from ._handle import Handle, Owner
from ._lib import lib, check
from .model import Model, _fptr, _iptr, _progress, _threads, model_inputs, text_bytes

HR_CALIB_HEADS_TOKENS = 1024   # headroom/study.h: the head lab's default calibration tokens
HR_CALIB_SURGERY_TOKENS = 2048  # pruning's
HR_EVAL_TOKENS = 16384          # evaluation's


def _s(b):
    return b.decode("utf-8", "replace") if b is not None else None


def methods():
    """The head lab's methods in output order: dicts with id, name, paper,
    formula, good_for, higher ("more important" / "more <trait>") and opt_in
    (True: not in the default set)."""
    out = []
    for i in range(lib.hr_heads_n_methods()):
        mi = lib.hr_heads_method_info(i).contents
        d = {k: _s(getattr(mi, k)) for k, _ in _lib.HeadMethodInfo._fields_ if k != "opt_in"}
        d["opt_in"] = bool(mi.opt_in)  # not in the default set: run when named or with "all"
        out.append(d)
    return out


def layer_metrics():
    """The head lab's layer / sublayer metrics: dicts with id, name, paper, formula."""
    out = []
    for i in range(lib.hr_heads_n_layer_metrics()):
        mi = lib.hr_heads_layer_metric_info(i).contents
        out.append({k: _s(getattr(mi, k)) for k, _ in _lib.LayerMetricInfo._fields_})
    return out


def _new_context(mptr, mh, threads):
    """A fresh context of a model (default parameters, as the CLI's), as a
    Handle that keeps the model alive."""
    p = lib.hr_context_default_params()
    p.n_threads = threads
    c = ctypes.c_void_p()
    check(lib.hr_context_new(mptr, ctypes.byref(p), ctypes.byref(c)))
    return Handle(c.value, lib.hr_context_free, "context", deps=(mh,))


def _out_string(fn, *args):
    """Calls fn(*args, &out) and returns the library-allocated text."""
    out = ctypes.c_void_p()
    check(fn(*args, ctypes.byref(out)))
    return _lib.take_string(out)


# ---------------------------------------------------------------- the head lab

class HeadsResult(Owner):
    """Scores of every head by every method run, classes and layer metrics
    (a hr_heads_result). Arrays are (n_layers, max_heads), NaN where a layer
    has fewer heads or a method has no score:
        r.scores["ablation"], r.ranks["ablation"] (1 = highest, 0 = none),
        r.classes[l][h] (list of class names), r.layer_scores["block_influence"],
        r.notes (why a selected method was skipped), r.methods (ids run).
    to_json() / layers_json() / to_csv() are heads.json / layers.json /
    heads.csv as `headroom heads` writes them; save(dir) writes the whole
    head-lab folder (with heatmaps, patterns and report.html)."""

    _handles = ("_h",)
    _what = "head-lab result"

    def __init__(self, h, model, tokens, bos, text_path, seed, threads):
        self._h = h
        self._m = model._m
        self._mh = model._mh
        self._th = model._th       # Handle of the tokenizer (labels of the pattern pictures), or None
        self._model_path = model.path
        self._arch = model.config.architecture
        self._tokens = tokens      # (n) calibration text tokens without BOS
        self._bos = bos
        self._text_path = text_path
        self._threads = threads
        self.seed = seed
        r = h.ptr
        c = model.config
        L, H = c.n_layers, max(c.max_heads, 1)
        self.n_layers = L
        self.n_heads = list(c.n_heads)
        self.n_calib_tokens = lib.hr_heads_result_n_calib_tokens(r)
        self.window = lib.hr_heads_result_window(r)
        self.scores, self.ranks, self.notes, self.methods = {}, {}, {}, []
        self.info = {}
        for i, mi in enumerate(methods()):
            note = _s(lib.hr_heads_result_note(r, i))
            if note:
                self.notes[mi["id"]] = note
            if not lib.hr_heads_result_has(r, i):
                continue
            self.methods.append(mi["id"])
            self.info[mi["id"]] = mi
            s = np.full((L, H), np.nan)     # (layers, max_heads)
            rk = np.zeros((L, H), dtype=np.int32)
            for l in range(L):
                for hd in range(c.n_heads[l]):
                    s[l, hd] = lib.hr_heads_score(r, i, l, hd)
                    rk[l, hd] = lib.hr_heads_rank(r, i, l, hd)
            self.scores[mi["id"]], self.ranks[mi["id"]] = s, rk
        self.layer_scores = {}
        for k, li in enumerate(layer_metrics()):
            v = np.array([lib.hr_heads_layer_score(r, k, l) for l in range(L)])
            if not np.all(np.isnan(v)):
                self.layer_scores[li["id"]] = v
        buf = ctypes.create_string_buffer(512)
        self.classes = []
        for l in range(L):
            row = []
            for hd in range(c.n_heads[l]):
                lib.hr_heads_classes(r, l, hd, buf, len(buf))
                row.append([x for x in buf.value.decode().split(",") if x])
            self.classes.append(row)

    def __repr__(self):
        return (f"headroom.HeadsResult({self.n_layers} layers, methods {', '.join(self.methods)}, "
                f"{self.n_calib_tokens} calibration tokens)")

    def top(self, method, k=10):
        """The k heads with the highest score of method: [(layer, head, score)]."""
        s = self.scores[method]
        order = np.argsort(-np.nan_to_num(s, nan=-np.inf), axis=None, kind="stable")
        out = []
        for idx in order[:k]:
            l, h = np.unravel_index(idx, s.shape)
            if not np.isnan(s[l, h]):
                out.append((int(l), int(h), float(s[l, h])))
        return out

    def _json(self, which):
        meta = _lib.HeadsMeta(_lib.encode_path(self._model_path or ""), self._arch.encode(),
                              _lib.encode_path(self._text_path or ""), self.seed)
        outs = [ctypes.c_void_p(), ctypes.c_void_p(), ctypes.c_void_p()]
        args = [ctypes.byref(o) if k == which else None for k, o in enumerate(outs)]
        check(lib.hr_heads_to_json(self._ptr(), self._m, ctypes.byref(meta), *args))
        return _lib.take_string(outs[which])

    def to_json(self):
        """heads.json (format headroom.heads), as `headroom heads` writes it."""
        return self._json(0)

    def layers_json(self):
        """layers.json (format headroom.layers)."""
        return self._json(1)

    def to_csv(self):
        """heads.csv."""
        return self._json(2)

    def to_scores(self):
        """The score table of this result (a headroom.Scores)."""
        return Scores._from_result(self)

    def save(self, out_dir, top=4, force=False):
        """Writes the head-lab folder as `headroom heads --out DIR` does: heads.json,
        heads.csv, layers.json, heatmaps, the top attention patterns and
        report.html. The folder is checked first (never an input, empty or an
        earlier head-lab folder unless force). Returns the number of pictures."""
        r = self._ptr()
        inputs = model_inputs(self._model_path) + ([self._text_path] if self._text_path else [])
        _lib.output_check(out_dir, _lib.OUT_FOLDER, "heads.json", inputs, force)
        os.makedirs(out_dir, exist_ok=True)
        p = lib.hr_lab_report_default_params()
        p.model_path = _lib.encode_path(self._model_path or "")
        p.text_path = _lib.encode_path(self._text_path or "")
        p.seed, p.top = self.seed, int(top)
        p.text_tokens, p.n_text_tokens, p.bos = _iptr(self._tokens), self._tokens.size, self._bos
        p.tok = self._th.get() if self._th is not None else None
        ctx = _new_context(self._m, self._mh, self._threads)
        try:
            n = ctypes.c_int()
            check(lib.hr_report_head_lab(os.fsencode(out_dir), r, ctx.ptr, self._m, ctypes.byref(p), ctypes.byref(n)))
        finally:
            ctx.release()
        return n.value


def heads(model, text, methods=None, tokens=None, window=None, seed=0, mean_ablation=False, threads=None,
          progress=None):
    """The head lab (hr_heads_run) on a calibration text (a str, or a
    pathlib.Path of a UTF-8 file), as `headroom heads` runs it: methods is a
    list of ids or "all" (default; see headroom.methods()), tokens the
    calibration tokens in whole windows (default 1024), window the tokens per
    window incl. BOS (default min(seq_len, 256)), seed of the generated inputs.
    threads: None = the model's. progress(done, total) is called as the lab
    advances; an exception raised there (KeyboardInterrupt too) stops it.
    Returns a HeadsResult."""
    tok = model._tokenizer()
    data, text_path = text_bytes(text)
    n_m = lib.hr_heads_n_methods()
    sel = (ctypes.c_bool * n_m)()
    spec = "all" if methods is None else methods if isinstance(methods, str) else ",".join(methods)
    check(lib.hr_heads_parse_methods(spec.encode(), sel))
    ep = lib.hr_encode_default_params()
    ep.add_bos = False
    ids_p = ctypes.POINTER(ctypes.c_int32)()
    n = ctypes.c_size_t()
    check(lib.hr_tokenizer_encode(tok, data, len(data), ctypes.byref(ep), ctypes.byref(ids_p), ctypes.byref(n)))
    try:
        ids = np.ctypeslib.as_array(ids_p, shape=(n.value,)).copy() if n.value else np.zeros(0, np.int32)
    finally:
        lib.hr_free(ids_p)
    bos = lib.hr_tokenizer_bos(tok)
    nthreads = model._threads if threads is None else _threads(threads)
    p = lib.hr_heads_default_params()
    p.tokens, p.n_tokens, p.bos = _iptr(ids), ids.size, bos if bos >= 0 else 0
    p.window = 0 if window is None else int(window)
    p.max_tokens = 0 if tokens is None else int(tokens)
    p.seed, p.mean_ablation, p.tok = int(seed), bool(mean_ablation), tok
    ctx = _new_context(model._model(), model._mh, nthreads)
    try:
        with _progress(progress) as cb:
            p.progress = cb.c
            out = ctypes.c_void_p()
            st = lib.hr_heads_run(ctx.ptr, ctypes.byref(p), sel, ctypes.byref(out))
            cb.check(st)
    finally:
        ctx.release()
    h = Handle(out.value, lib.hr_heads_result_free, "head-lab result", deps=(model._mh,))
    return HeadsResult(h, model, ids, p.bos, text_path, int(seed), nthreads)


# ---------------------------------------------------------------- score tables

class Scores(Owner):
    """A score table (hr_scores): per-head scores of head-lab methods and
    per-layer metrics for one model shape — the one reader of heads.json /
    layers.json, checked as every command checks them."""

    _handles = ("_h",)
    _what = "score table"

    def __init__(self, h, n_layers, max_heads):
        self._h = h
        self._shape = (n_layers, max(max_heads, 1))

    @classmethod
    def read(cls, model, heads=None, layers=None):
        """Reads heads.json and/or layers.json (`headroom heads` outputs) for model's shape."""
        if heads is None and layers is None:
            raise ValueError("give heads= (heads.json) and/or layers= (layers.json)")
        s = ctypes.c_void_p()
        check(lib.hr_scores_new(lib.hr_model_config(model._model()), ctypes.byref(s)))
        self = cls(Handle(s.value, lib.hr_scores_free, "score table"), model.config.n_layers, model.config.max_heads)
        try:
            if heads is not None:
                check(lib.hr_scores_read_heads(s.value, os.fsencode(heads)))
            if layers is not None:
                check(lib.hr_scores_read_layers(s.value, os.fsencode(layers)))
        except BaseException:
            self.close()
            raise
        return self

    @classmethod
    def _from_result(cls, res):
        s = ctypes.c_void_p()
        check(lib.hr_scores_from_heads(res._h.get(), lib.hr_model_config(res._m), ctypes.byref(s)))
        return cls(Handle(s.value, lib.hr_scores_free, "score table"), res.n_layers, max(res.n_heads))

    from_heads = _from_result

    @property
    def methods(self):
        h = self._ptr()
        return [_s(lib.hr_scores_method_id(h, i)) for i in range(lib.hr_scores_n_methods(h))]

    @property
    def layer_metrics(self):
        h = self._ptr()
        return [_s(lib.hr_scores_layer_metric_id(h, i)) for i in range(lib.hr_scores_n_layer_metrics(h))]

    @property
    def source(self):
        """Where the head scores came from (a file name, or "head-lab result")."""
        return _s(lib.hr_scores_heads_source(self._ptr()))

    def _index(self, method):
        i = self.methods.index(method) if method in self.methods else -1
        if i < 0:
            raise _lib.NotFound(f"no scores for method '{method}' (present: {', '.join(self.methods)})", -7)
        return i

    def kind(self, method):
        """"importance", "harmlessness" or "trait" (from the method's "higher")."""
        return _s(lib.hr_score_kind_name(lib.hr_scores_method_kind(self._ptr(), self._index(method))))

    def higher(self, method):
        return _s(lib.hr_scores_method_higher(self._ptr(), self._index(method)))

    def head_scores(self, method):
        """(n_layers, max_heads) float64 scores as stored; NaN when null or absent."""
        h, i = self._ptr(), self._index(method)
        L, H = self._shape
        return np.array([[lib.hr_scores_head(h, i, l, k) for k in range(H)] for l in range(L)])

    def keep_order(self, method, invert=False):
        """(n_layers, max_heads) float32 keep order (higher = keep), oriented by the
        method's kind, negated when invert; NaN beyond a layer's heads."""
        out = np.empty(self._shape, dtype=np.float32)
        check(lib.hr_scores_keep_order(self._ptr(), method.encode(), bool(invert), _fptr(out)))
        return out

    def layer_metric(self, metric):
        """(n_layers) float32 values of a layer metric."""
        out = np.empty(self._shape[0], dtype=np.float32)
        check(lib.hr_scores_layer_metric(self._ptr(), metric.encode(), _fptr(out)))
        return out

    def kv_plan(self, model, fraction=0.25, method=None, sink=4, window=64):
        """DuoAttention-style plan (hr_scores_kv_plan): the fraction of KV heads
        that most need a full cache (by method, default "streaming") stay full,
        the rest stream (sink + window tokens) — `--kv-from heads.json`."""
        rest = _lib.KvPolicy(_lib.KV_KINDS["streaming"], int(sink), int(window), 0)
        out = ctypes.c_void_p()
        check(lib.hr_scores_kv_plan(self._ptr(), lib.hr_model_config(model._model()),
                                    method.encode() if method else None, float(fraction), rest, ctypes.byref(out)))
        return KvPlan(Handle(out.value, lib.hr_kv_plan_free, "KV plan"), model.config)


def _scores_of(model, scores, layers=None):
    """(Scores, owned) from a HeadsResult, a Scores, or heads.json path(s)."""
    if scores is None and layers is None:
        return None, False
    if isinstance(scores, Scores):
        if layers is not None:
            raise ValueError("layers= applies to a heads.json path; a Scores object already holds its layers")
        return scores, False
    if isinstance(scores, HeadsResult):
        if layers is not None:
            raise ValueError("layers= applies to a heads.json path; a HeadsResult holds its layer metrics")
        return scores.to_scores(), True
    if scores is not None and not isinstance(scores, (str, os.PathLike)):
        raise TypeError(f"scores must be a HeadsResult, a Scores or a heads.json path, not {type(scores).__name__}")
    return Scores.read(model, heads=scores, layers=layers), True


# ---------------------------------------------------------------- KV plans

class KvPlan(Owner):
    """A per-(layer, KV head) KV-cache plan (hr_kv_plan): each entry a policy
    dict {"kind": "full" | "streaming" | "heavy", "sink", "window", "budget"}.
    Use it with Model.with_kv_plan(plan) or headroom.eval(..., kv_plan=plan)."""

    _handles = ("_h",)
    _what = "KV plan"

    def __init__(self, h, config):
        self._h = h
        self.n_kv_heads = list(config.n_kv_heads)

    @classmethod
    def full(cls, model):
        """A plan of all-full heads for model's shape (to edit with set())."""
        out = ctypes.c_void_p()
        check(lib.hr_kv_plan_new(lib.hr_model_config(model._model()), ctypes.byref(out)))
        return cls(Handle(out.value, lib.hr_kv_plan_free, "KV plan"), model.config)

    @classmethod
    def load(cls, path, model):
        """Reads a plan file (`--kv PLAN`; format in README "Head-aware KV cache")."""
        out = ctypes.c_void_p()
        check(lib.hr_kv_plan_load(os.fsencode(path), lib.hr_model_config(model._model()), ctypes.byref(out)))
        return cls(Handle(out.value, lib.hr_kv_plan_free, "KV plan"), model.config)

    @classmethod
    def random(cls, model, fraction=0.25, sink=4, window=64, seed=0):
        """As many full KV heads as a score plan of `fraction` keeps, chosen at
        random (seeded), the rest streaming: the baseline a head-aware plan must beat."""
        rest = _lib.KvPolicy(_lib.KV_KINDS["streaming"], int(sink), int(window), 0)
        out = ctypes.c_void_p()
        check(lib.hr_kv_plan_random(lib.hr_model_config(model._model()), float(fraction), rest, int(seed),
                                    ctypes.byref(out)))
        return cls(Handle(out.value, lib.hr_kv_plan_free, "KV plan"), model.config)

    def _check(self, layer, kv_head):
        if not (0 <= layer < len(self.n_kv_heads) and 0 <= kv_head < self.n_kv_heads[layer]):
            raise IndexError(f"KV head {layer}.{kv_head} is not in the plan's model")

    def __getitem__(self, key):
        l, g = key
        self._check(l, g)
        p = lib.hr_kv_plan_get(self._ptr(), l, g)
        return {"kind": _s(lib.hr_kv_kind_name(p.kind)), "sink": p.sink, "window": p.window, "budget": p.budget}

    def set(self, layer, kv_head, kind, sink=0, window=0, budget=0):
        """Sets the policy of one KV head (its query heads share it)."""
        self._check(layer, kv_head)
        if kind not in _lib.KV_KINDS:
            raise ValueError(f"unknown KV policy {kind!r} (known: {', '.join(_lib.KV_KINDS)})")
        check(lib.hr_kv_plan_set(self._ptr(), layer, kv_head,
                                 _lib.KvPolicy(_lib.KV_KINDS[kind], int(sink), int(window), int(budget))))

    @property
    def n_reduced(self):
        """KV heads that are not full."""
        return int(lib.hr_kv_plan_n_reduced(self._ptr()))

    def policies(self):
        """Every policy: a list per layer of the KV heads' policy dicts."""
        return [[self[l, g] for g in range(n)] for l, n in enumerate(self.n_kv_heads)]

    def save(self, path, force=False):
        """Writes the plan file (`--kv-save`), checked and atomic."""
        h = self._ptr()
        _lib.output_check(path, _lib.OUT_TEXT, "# headroom KV plan", (), force)
        check(lib.hr_kv_plan_save(h, os.fsencode(path)))


def kv_plan_from_scores(model, scores, fraction=0.25, method=None, sink=4, window=64):
    """The KV plan `--kv-from heads.json --retrieval-fraction F` builds:
    scores is a HeadsResult, a Scores or a heads.json path; see Scores.kv_plan."""
    sc, owned = _scores_of(model, scores)
    try:
        return sc.kv_plan(model, fraction=fraction, method=method, sink=sink, window=window)
    finally:
        if owned:
            sc.close()


# ---------------------------------------------------------------- pruning

class PrunedModel(Model):
    """The smaller model hr_prune_run built, in memory (a headroom.Model: it
    runs, hooks, studies and saves like any other). .report is prune.json as
    a dict; .heads_removed / .neurons_removed hold requested, removed and the
    reason they differ. The base model's weights are not needed by the
    pruned one, but the base stays allocated until this model is closed."""

    def __init__(self, rh, base, text_path):
        mptr = lib.hr_prune_result_model(rh.ptr)
        th = base._th.acquire() if base._th is not None else None
        Model.__init__(self, rh, mptr, th, None, base._threads, base._tok_note)
        self._base_path = base.path
        self._text_path = text_path
        self._base_inputs = base._inputs()
        self.heads_removed = self._plan_result(lib.hr_prune_result_heads(rh.ptr).contents)
        self.neurons_removed = self._plan_result(lib.hr_prune_result_neurons(rh.ptr).contents)
        sub, sc = ctypes.POINTER(ctypes.c_int)(), ctypes.POINTER(ctypes.c_double)()
        n = lib.hr_prune_result_sublayers(rh.ptr, ctypes.byref(sub), ctypes.byref(sc))
        # drop_sublayers steps in order: (layer, "attention" | "mlp", score)
        self.sublayer_drops = [(sub[i] // 2, "mlp" if sub[i] % 2 else "attention", sc[i]) for i in range(n)]
        self.report = json.loads(self.report_json())

    @staticmethod
    def _plan_result(r):
        return {"requested": int(r.requested), "removed": int(r.removed), "reason": _s(r.reason)}

    def __repr__(self):
        c = self.config
        return (f"headroom.PrunedModel(from {self._base_path!r}, {c.architecture}, {c.n_layers} layers, "
                f"heads {c.n_heads}, {c.n_params} parameters)")

    def report_json(self, output=None, output_hf=None):
        """prune.json (format headroom.prune) naming the outputs given."""
        meta = _lib.PruneReportMeta(_lib.encode_path(self._base_path), _lib.encode_path(output),
                                    _lib.encode_path(output_hf), _lib.encode_path(self._text_path))
        return _out_string(lib.hr_prune_report_json, self._mh.get(), ctypes.byref(meta))

    def save(self, path, format="gguf", dtype=None, tokenizer=True, force=False, report=None):
        """Model.save, plus prune.json when report is a path (or True: PATH.prune.json,
        the CLI's default), naming path as the output."""
        rpath = None
        if report:
            rpath = os.fspath(path) + ".prune.json" if report is True else os.fspath(report)
            inputs = self._base_inputs + ([self._text_path] if self._text_path else [])
            _lib.output_check(rpath, _lib.OUT_JSON, "headroom.prune", inputs, force)
            if os.path.abspath(rpath) == os.path.abspath(os.fspath(path)):
                raise ValueError("the model and its report must be different paths")
        Model.save(self, path, format=format, dtype=dtype, tokenizer=tokenizer, force=force)
        if rpath:
            p = os.fspath(path)
            text = self.report_json(output=p if format == "gguf" else None, output_hf=p if format == "hf" else None)
            data = text.encode("utf-8")
            check(lib.hr_write_file_atomic(os.fsencode(rpath), data, len(data)))

    def _inputs(self):
        return list(self._base_inputs)


def prune(model, scores=None, by=None, heads=None, mlp=None, text=None, drop_attn=0, drop_mlp=0, drop_blocks=0,
          layers=None, layer_metric=None, budget=None, uniform=False, strict=False, invert=False, uneven="even",
          seed=0, tokens=None, window=None, threads=None, drop_sublayers=0, iterative=False, by_output=False):
    """Prunes model as `headroom prune` does (hr_prune_run) and returns the
    smaller model in memory (a PrunedModel; .report is prune.json).
      scores   head scores: a HeadsResult, a Scores, or a heads.json path
      by       the method ranking heads (keep the highest), or "random"
      heads    query heads to remove: "25%" or a count; mlp: MLP neurons (needs text)
      text     calibration text (str or pathlib.Path): MLP importance, and layer
               scores when scores hold none
      drop_attn / drop_mlp / drop_blocks   sublayers / blocks to drop
      drop_sublayers   attention + MLP sublayers dropped from one pool: by the layer
               metrics (joint layer drop), or with iterative=True FinerCut (needs
               text; by_output=True ranks once by FinerCut's output change)
      layers   layers.json path (with a heads.json path); layer_metric its metric
      budget   "global" | "per-layer" | "cfsp" (default global; per-layer with uniform)
      uniform, strict, invert, uneven ("even" | "duplicate"), seed (of "random"),
      tokens   calibration tokens (default 2048), window, threads (None = the model's)."""
    m = model._model()
    sc, owned = _scores_of(model, scores, layers)
    try:
        p = lib.hr_prune_default_params()
        p.scores = sc._ptr() if sc is not None else None
        p.method = by.encode() if by is not None else None
        p.invert, p.seed = bool(invert), int(seed)
        p.heads = str(heads).encode() if heads is not None else None
        p.mlp = str(mlp).encode() if mlp is not None else None
        p.drop_attn, p.drop_mlp, p.drop_blocks = int(drop_attn), int(drop_mlp), int(drop_blocks)
        p.drop_sublayers, p.iterative, p.sublayers_by_output = int(drop_sublayers), bool(iterative), bool(by_output)
        p.layer_metric = layer_metric.encode() if layer_metric else None
        b = ctypes.c_int()
        check(lib.hr_prune_budget_from_name((budget or ("per-layer" if uniform else "global")).encode(),
                                            ctypes.byref(b)))
        p.budget, p.uniform, p.strict = b.value, bool(uniform), bool(strict)
        if uneven not in ("even", "duplicate"):
            raise ValueError(f"uneven must be 'even' or 'duplicate', got {uneven!r}")
        p.uneven_duplicate = uneven == "duplicate"
        text_path = None
        if text is not None:
            data, text_path = text_bytes(text)
            p.text, p.text_len = data, len(data)
        p.max_tokens = HR_CALIB_SURGERY_TOKENS if tokens is None else int(tokens)
        p.window = 0 if window is None else int(window)
        p.n_threads = model._threads if threads is None else _threads(threads)
        tok = model._th.get() if model._th is not None else None
        out = ctypes.c_void_p()
        check(lib.hr_prune_run(m, tok, ctypes.byref(p), ctypes.byref(out)))
    finally:
        if owned:
            sc.close()
    rh = Handle(out.value, lib.hr_prune_result_free, "model", deps=(model._mh,))
    try:
        pruned = PrunedModel(rh, model, text_path)
    except BaseException:
        rh.release()
        raise
    for what, asked, r in (("heads", heads, pruned.heads_removed), ("mlp", mlp, pruned.neurons_removed)):
        if r["removed"] != r["requested"]:  # what `headroom prune` warns about (strict=True makes it an error)
            _lib.log.warning("%s=%s asks for %d; removed %d: %s", what, asked, r["requested"], r["removed"],
                             r["reason"])
    return pruned


# ---------------------------------------------------------------- heads masked without writing a model

def _heads_spec(heads, what):
    """"L.H,..." of a head list: a str as it is, or [(layer, head) or (layer, "*")]."""
    if heads is None or isinstance(heads, str):
        return heads
    try:
        return ",".join(f"{int(l)}.{h if h == '*' else int(h)}" for l, h in heads)
    except (TypeError, ValueError):
        raise TypeError(f"{what} must be a str \"L.H,...\" or a list of (layer, head) pairs, got {heads!r}") from None


class _HeadMask:
    """hr_head_mask of the options eval, ppl, generate and patch share
    (study.h; the CLI's --mask-heads, --mean-heads, --gates, --calib,
    --random-heads), with the calibration tokens of mean-ablated heads:
    calib (str or pathlib.Path) when given, else default_text (None: an
    error naming calib). ptr is None when nothing is masked; close() frees."""

    def __init__(self, model, mask_heads=None, mean_heads=None, gates=None, calib=None, random_heads=0, seed=0,
                 default_text=None):
        self.ptr, self.calib = None, None
        if calib is not None and mean_heads is None:
            raise ValueError("calib is for mean_heads (it would do nothing)")
        if mask_heads is None and mean_heads is None and gates is None and not random_heads:
            return
        p = lib.hr_head_mask_default_params()
        p.mask_heads = _enc(_heads_spec(mask_heads, "mask_heads"))
        p.mean_heads = _enc(_heads_spec(mean_heads, "mean_heads"))
        if gates is not None:
            gdata, gpath = text_bytes(gates, "gates")
            p.gates_text, p.gates_name = gdata, _lib.encode_path(gpath)
        p.random_heads, p.seed = int(random_heads), int(seed)
        out = ctypes.c_void_p()
        check(lib.hr_head_mask_new(lib.hr_model_config(model._model()), ctypes.byref(p), ctypes.byref(out)))
        self.ptr = out.value
        try:
            if lib.hr_head_mask_needs_means(self.ptr):
                src = calib if calib is not None else default_text
                if src is None:
                    raise ValueError("mean_heads needs a calibration text: calib=")
                data, path = text_bytes(src, "calib")
                ids = ctypes.POINTER(ctypes.c_int32)()
                n = ctypes.c_size_t()
                st = lib.hr_calib_tokens(model._tokenizer(), data, len(data), 0, ctypes.byref(ids), ctypes.byref(n))
                if st != 0:
                    raise _lib.error(st, f"{path or 'calib'}: {_lib.last_error()}")
                try:
                    self.calib = np.ctypeslib.as_array(ids, shape=(n.value,)).copy()  # (n) BOS first
                finally:
                    lib.hr_free(ids)
        except BaseException:
            self.close()
            raise

    def describe(self):
        """"2.3=0 4.1=mean ..." of the heads changed ("" when none)."""
        return _out_string(lib.hr_head_mask_describe, self.ptr) if self.ptr else ""

    def close(self):
        lib.hr_head_mask_free(self.ptr)
        self.ptr = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _enc(s):
    return s.encode() if s is not None else None


# ---------------------------------------------------------------- evaluation

def evaluate(base, cand, text, ctx=None, windows=None, tokens=None, tasks=None, passkey=False, passkey_trials=20,
             fdtm_prompts=8, fdtm_prompt_len=16, fdtm_gen=32, speed=True, seed=0, threads=None, kv_plan=None,
             recall=False, recall_items=200, mask_heads=None, mean_heads=None, gates=None, random_heads=0,
             calib=None):
    """Compares cand with base as `headroom eval` does (hr_eval_run) and returns
    eval.json as a dict: perplexity of both, KL, top-1, FDTM, passkey,
    natural retrieval (recall) and multiple-choice accuracy, sizes and
    (speed=True) speeds.
      cand     the candidate Model, or None: base itself with heads masked (below)
      text     str or pathlib.Path (a path is named and hashed in the result)
      recall   the natural retrieval task (name recall, 4-way) with recall_items items
      mask_heads / mean_heads   heads of the candidate gated to 0 / mean-ablated:
               "L.H,..." ("L.*" = a whole layer) or [(layer, head)]; gates: a gates
               file (pathlib.Path, or its text as a str); random_heads: K heads
               drawn at random (seed) gated to 0; calib: the text of the means
               (default: the evaluation text) — the CLI's --mask-heads,
               --mean-heads, --gates, --random-heads, --calib
      ctx      window length (default min(seq_len, 256)); windows: windows to
               score (0 = the whole text); tokens: the token budget when windows
               is None (default 16384)
      tasks    multiple-choice JSONL: a pathlib.Path or the JSONL text
      kv_plan  the candidate's KvPlan (default: cand's own, for a with_kv_plan view)
      threads  None = the base model's."""
    if cand is None:
        if mask_heads is None and mean_heads is None and gates is None and not random_heads and kv_plan is None:
            raise ValueError("eval needs a candidate model, or heads to mask (mask_heads=, mean_heads=, gates=, "
                             "random_heads=) or a kv_plan= for the base itself")
        cand = base
    bm, cm = base._model(), cand._model()
    tok = base._tokenizer()
    data, text_path = text_bytes(text)
    p = lib.hr_eval_default_params()
    p.text, p.text_len = data, len(data)
    if ctx is not None:
        p.n_ctx = int(ctx)
    if windows is not None:
        p.windows, p.max_tokens = int(windows), 0
    elif tokens is not None:
        p.max_tokens = int(tokens)
    p.fdtm_prompts, p.fdtm_prompt_len, p.fdtm_gen = int(fdtm_prompts), int(fdtm_prompt_len), int(fdtm_gen)
    p.passkey, p.passkey_trials, p.speed, p.seed = bool(passkey), int(passkey_trials), bool(speed), int(seed)
    p.recall, p.recall_items = bool(recall), int(recall_items)
    p.n_threads = base._threads if threads is None else _threads(threads)
    plan = kv_plan if kv_plan is not None else cand.kv_plan
    if plan is not None and not isinstance(plan, KvPlan):
        raise TypeError(f"kv_plan must be a headroom.KvPlan, not {type(plan).__name__}")
    p.cand_kv_plan = plan._ptr() if plan is not None else None
    p.base_path, p.cand_path = _lib.encode_path(base.path), _lib.encode_path(cand.path)
    p.text_path = _lib.encode_path(text_path)
    task = None
    if tasks is not None:
        tdata, tpath = text_bytes(tasks, "tasks")
        t = ctypes.c_void_p()
        st = lib.hr_mc_parse(tdata, len(tdata), ctypes.byref(t))
        if st != 0:
            raise _lib.error(st, f"{tpath or 'tasks'}: {_lib.last_error()}")
        task = t.value
        p.tasks, p.tasks_path = task, _lib.encode_path(tpath)
    mask = None
    try:
        mask = _HeadMask(cand, mask_heads, mean_heads, gates, calib, random_heads, seed, default_text=text)
        p.cand_heads = mask.ptr
        if calib is not None:  # else the library takes the means from the evaluation text
            p.calib_tokens, p.n_calib_tokens = _iptr(mask.calib), mask.calib.size
        out = ctypes.c_void_p()
        check(lib.hr_eval_run(bm, cm, tok, ctypes.byref(p), ctypes.byref(out)))
        try:
            return json.loads(_out_string(lib.hr_eval_result_json, out.value))
        finally:
            lib.hr_eval_result_free(out.value)
    finally:
        lib.hr_mc_task_free(task)
        if mask is not None:
            mask.close()


# ---------------------------------------------------------------- conversion

def convert(src, dst, to="gguf", dtype=None, tokenizer=None, write_tokenizer=True, force=False, threads=None):
    """`headroom convert SRC DST --to gguf|hf`: loads any readable model and
    writes it as GGUF or a Hugging Face folder (dtype default: the source's
    when f32/f16/bf16, else f32), with its tokenizer when one is found (or
    given). The output is checked before loading."""
    if to not in ("gguf", "hf"):
        raise ValueError(f"to must be 'gguf' or 'hf', got {to!r}")
    inputs = model_inputs(os.fspath(src)) + ([os.fspath(tokenizer)] if tokenizer else [])
    _lib.output_check(dst, _lib.OUT_GGUF if to == "gguf" else _lib.OUT_HF_FOLDER, None, inputs, force)
    with Model.load(src, threads=threads, tokenizer=tokenizer) as m:
        if write_tokenizer and m._th is None:
            _lib.log.warning("no tokenizer written (%s)", m._tok_note)
        m.save(dst, format=to, dtype=dtype, tokenizer=write_tokenizer, force=force)
