"""Circuits (circuits.h): prompt pairs and headroom.patch — activation and
path patching, attention knockout, direct logit attribution and the logit
lens over the pairs (hr_patch_run), as `headroom patch` runs them."""
import ctypes
import json
import os

import numpy as np

from . import _lib
from ._handle import Handle, Owner
from ._lib import lib, check
from .model import _iptr, _progress, _threads, text_bytes
from .study import _HeadMask, _out_string

RECALL_MAX_CTX = 192  # `headroom patch --name-recall`: prompts of at most min(seq_len, 192) tokens


class Pairs(Owner):
    """Prompt pairs (hr_pairs): a clean and a corrupt prompt of the same token
    length, the answer and the wrong answer scored at the last position.
        Pairs.read(m, path_or_jsonl, single_token=False)   JSONL as `--pairs`
        Pairs.from_ids([(clean_ids, corrupt_ids, answer_id, wrong_id), ...])
        Pairs.name_recall(m, text, n=100, seed=0)          as `--name-recall`
        Pairs.letters(m, tasks)                            as `--letters`
        Pairs.conflict(m, text, n=100, min_prob=0.5, seed=0)  as `--conflict`
    len(p), p[i] (a dict of ids), p.to_jsonl() (the CLI's pairs.jsonl)."""

    _handles = ("_h",)
    _what = "pairs"

    def __init__(self, h, path=None, text=None):
        self._h = h
        self.path = path    # the file the pairs came from (named in patch.json), or None
        self._text = text   # the name-recall text (mean-ablated heads' default calibration)

    @classmethod
    def read(cls, model, pairs, single_token=False):
        """JSONL pairs (circuits.h): a pathlib.Path of a file or the JSONL text
        itself; text fields are tokenized with the model's tokenizer.
        single_token: an answer of several tokens is an error (default: its
        first token stands for it)."""
        data, path = text_bytes(pairs, "pairs")
        pp = lib.hr_pairs_default_params()
        pp.answers = 1 if single_token else 0
        tok = model._th.get() if model._th is not None else None
        out = ctypes.c_void_p()
        st = lib.hr_pairs_parse(data, len(data), tok, ctypes.byref(pp), ctypes.byref(out))
        if st != 0:
            raise _lib.error(st, f"{path or 'pairs'}: {_lib.last_error()}")
        return cls(Handle(out.value, lib.hr_pairs_free, "pairs"), path)

    @classmethod
    def from_ids(cls, items):
        """Pairs from (clean_ids, corrupt_ids, answer_id, wrong_id) tuples (or
        dicts with those keys as in JSONL: clean_ids, corrupt_ids, answer_id, wrong_id)."""
        out = ctypes.c_void_p()
        check(lib.hr_pairs_new(ctypes.byref(out)))
        self = cls(Handle(out.value, lib.hr_pairs_free, "pairs"))
        try:
            for it in items:
                if isinstance(it, dict):
                    it = (it["clean_ids"], it["corrupt_ids"], it["answer_id"], it["wrong_id"])
                clean, corrupt, answer, wrong = it
                c = np.ascontiguousarray(clean, dtype=np.int32)
                k = np.ascontiguousarray(corrupt, dtype=np.int32)
                if c.ndim != 1 or c.shape != k.shape:
                    raise ValueError(f"clean and corrupt must be 1-D token ids of the same length, got shapes "
                                     f"{c.shape} and {k.shape}")
                check(lib.hr_pairs_add(out.value, _iptr(c), _iptr(k), c.size, int(answer), int(wrong)))
        except BaseException:
            self.close()
            raise
        return self

    @classmethod
    def name_recall(cls, model, text, n=100, seed=0):
        """Name-recall pairs from a text (hr_pairs_name_recall), at most n, as
        `headroom patch --name-recall TEXT --n-pairs n --seed seed` builds them."""
        data, path = text_bytes(text)
        max_ctx = min(model.config.seq_len, RECALL_MAX_CTX)
        out = ctypes.c_void_p()
        st = lib.hr_pairs_name_recall(model._tokenizer(), data, len(data), max_ctx, int(n), int(seed),
                                      ctypes.byref(out))
        if st != 0:
            raise _lib.error(st, f"{path or 'text'}: {_lib.last_error()}")
        return cls(Handle(out.value, lib.hr_pairs_free, "pairs"), path, text)

    @classmethod
    def conflict(cls, model, text, n=100, min_prob=0.5, seed=0):
        """Knowledge-conflict pairs from a text with the model's own memory
        (hr_pairs_conflict; answer = the context's word, wrong = the memory's),
        as `headroom patch --conflict TEXT --n-pairs n --min-prob p --seed s`."""
        data, path = text_bytes(text)
        out = ctypes.c_void_p()
        st = lib.hr_pairs_conflict(model._model(), model._tokenizer(), data, len(data), int(n), float(min_prob),
                                   int(seed), ctypes.byref(out))
        if st != 0:
            raise _lib.error(st, f"{path or 'text'}: {_lib.last_error()}")
        return cls(Handle(out.value, lib.hr_pairs_free, "pairs"), path, text)

    @classmethod
    def letters(cls, model, tasks):
        """"Correct letter" pairs from multiple-choice items (hr_pairs_from_choices;
        tasks: a pathlib.Path of a JSONL file or its text), as `--letters`."""
        data, path = text_bytes(tasks, "tasks")
        t = ctypes.c_void_p()
        st = lib.hr_mc_parse(data, len(data), ctypes.byref(t))
        try:
            if st == 0:
                out = ctypes.c_void_p()
                st = lib.hr_pairs_from_choices(model._tokenizer(), t.value, model.config.seq_len, ctypes.byref(out))
            if st != 0:
                raise _lib.error(st, f"{path or 'tasks'}: {_lib.last_error()}")
        finally:
            lib.hr_mc_task_free(t.value)
        return cls(Handle(out.value, lib.hr_pairs_free, "pairs"), path)

    def __len__(self):
        return int(lib.hr_pairs_count(self._ptr()))

    def __getitem__(self, i):
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"pair {i} of {n}")
        p = _lib.Pair()
        check(lib.hr_pairs_get(self._ptr(), i % n, ctypes.byref(p)))
        return {"clean_ids": np.ctypeslib.as_array(p.clean, shape=(p.n_tokens,)).copy(),
                "corrupt_ids": np.ctypeslib.as_array(p.corrupt, shape=(p.n_tokens,)).copy(),
                "answer_id": int(p.answer), "wrong_id": int(p.wrong), "answer_tokens": int(p.answer_tokens),
                "wrong_tokens": int(p.wrong_tokens), "line": int(p.line)}

    def to_jsonl(self):
        """The pairs by ids, as the CLI's pairs.jsonl (readable by Pairs.read)."""
        return _out_string(lib.hr_pairs_to_jsonl, self._ptr())

    def __repr__(self):
        return f"headroom.Pairs({len(self) if self._h is not None else 'closed'} pairs, from {self.path!r})"


def _arr(ptr, shape):
    """A float64 copy of a summary array, None when the study did not run."""
    if not ptr:
        return None
    return np.ctypeslib.as_array(ptr, shape=shape).copy()


class PatchResult(Owner):
    """What headroom.patch found (hr_patch_summary), as NumPy float64 copies
    normalised so 0 = the corrupt run and 1 = the clean run (NaN: no such
    head, no path, no pair reaching the column); None for a study not run:
        r.heads (n_layers, max_heads)             each head's output patched
        r.attn, r.mlp, r.resid (n_layers, n_positions)   per position
        r.head_pos (n_layers, max_heads, n_positions)
        r.labels (n_positions) clean tokens of the first longest pair
        r.clean, r.corrupt (mean raw metric), r.pair_clean, r.pair_corrupt
        r.path_heads / r.path_value, r.knockout_heads / r.knockout_value
        r.dla: dict total, sum, embed, norm_bias, heads (L, H), attn_bias (L), mlp (L)
        r.lens: dict logit_diff, prob, rank (L), tokens (lens_pairs, L, lens_top)
        r.forward_passes, r.warning
    to_json() is patch.json as `headroom patch` writes it, byte for byte."""

    _handles = ("_h",)
    _what = "patch result"

    def __init__(self, h, model, pairs_path):
        self._h = h
        self._m, self._mh, self._th = model._m, model._mh, model._th
        self._model_path = model.path
        self._pairs_path = pairs_path
        s = lib.hr_patch_result_summary(h.ptr).contents
        L, H, P = s.n_layers, s.max_heads, s.n_positions
        self.n_pairs, self.n_layers, self.max_heads, self.n_positions = s.n_pairs, L, H, P
        self.metric = lib.hr_patch_metric_name(s.metric).decode()
        self.direction = "noise" if s.direction == 1 else "denoise"
        self.labels = np.ctypeslib.as_array(s.labels, shape=(P,)).copy() if s.labels else None
        self.clean, self.corrupt = s.clean, s.corrupt
        self.pair_clean, self.pair_corrupt = _arr(s.pair_clean, (s.n_pairs,)), _arr(s.pair_corrupt, (s.n_pairs,))
        self.heads = _arr(s.heads, (L, H))
        self.attn, self.mlp, self.resid = (_arr(x, (L, P)) for x in (s.attn, s.mlp, s.resid))
        self.head_pos = _arr(s.head_pos, (L, H, P))
        self.dla = None
        if s.has_dla:
            self.dla = {"total": s.dla_total, "sum": s.dla_sum, "embed": s.dla_embed,
                        "norm_bias": s.dla_norm_bias if s.has_norm_bias else None,
                        "heads": _arr(s.dla_heads, (L, H)),
                        "attn_bias": _arr(s.dla_attn_bias, (L,)) if s.has_attn_bias else None,
                        "mlp": _arr(s.dla_mlp, (L,))}
        self.lens = None
        if s.has_lens:
            self.lens = {"logit_diff": _arr(s.lens_logit_diff, (L,)), "prob": _arr(s.lens_prob, (L,)),
                         "rank": _arr(s.lens_rank, (L,)),
                         "tokens": np.ctypeslib.as_array(s.lens_tokens, shape=(s.lens_pairs, L, s.lens_top)).copy()
                         if s.lens_tokens and s.lens_pairs and s.lens_top else None}
        self.path = s.path.decode() if s.path else None
        self.path_heads, self.path_value = _arr(s.path_heads, (L, H)), s.path_value
        self.knockout = s.knockout.decode() if s.knockout else None
        self.knockout_heads, self.knockout_value = _arr(s.knockout_heads, (L, H)), s.knockout_value
        self.forward_passes = int(s.forward_passes)
        self.warning = s.warning.decode("utf-8", "replace")
        self.clean_top_answer, self.clean_top_wrong = int(s.clean_top_answer), int(s.clean_top_wrong)

    def __repr__(self):
        return (f"headroom.PatchResult({self.n_pairs} pairs, metric {self.metric} ({self.direction}), "
                f"clean {self.clean:.4f}, corrupt {self.corrupt:.4f})")

    def to_json(self):
        """patch.json (format headroom.patch), as `headroom patch` writes it."""
        meta = _lib.PatchMeta(_lib.encode_path(self._model_path), _lib.encode_path(self._pairs_path),
                              self._th.get() if self._th is not None else None)
        return _out_string(lib.hr_patch_result_json, self._ptr(), self._m, ctypes.byref(meta))

    def to_dict(self):
        return json.loads(self.to_json())

    def ph3_json(self):
        """ph3.json (PH3's memory / context heads, hr_patch_ph3_json) of a run
        over conflict pairs with path="* -> logits", as `headroom patch
        --conflict` writes it."""
        meta = _lib.PatchMeta(_lib.encode_path(self._model_path), _lib.encode_path(self._pairs_path),
                              self._th.get() if self._th is not None else None)
        return _out_string(lib.hr_patch_ph3_json, self._ptr(), self._m, ctypes.byref(meta))


def _pairs_of(model, pairs, single_token):
    """(Pairs, owned) of a Pairs, a pathlib.Path / JSONL str, or a list of id tuples."""
    if isinstance(pairs, Pairs):
        return pairs, False
    if isinstance(pairs, (str, os.PathLike)):
        return Pairs.read(model, pairs, single_token), True
    if isinstance(pairs, (list, tuple)):
        return Pairs.from_ids(pairs), True
    raise TypeError(f"pairs must be a headroom.Pairs, a pathlib.Path of JSONL, JSONL text or a list of "
                    f"(clean_ids, corrupt_ids, answer_id, wrong_id), not {type(pairs).__name__}")


def patch(model, pairs, what="heads", metric="logit-diff", direction="denoise", path=None, path_mlps="frozen",
          knockout=None, dla=True, lens=True, single_token=False, mask_heads=None, mean_heads=None, gates=None,
          calib=None, threads=None, progress=None):
    """Runs `headroom patch` (hr_patch_run) over prompt pairs and returns a PatchResult.
      pairs      a headroom.Pairs, a pathlib.Path of a JSONL file (`--pairs`), JSONL
                 text, or a list of (clean_ids, corrupt_ids, answer_id, wrong_id)
      what       "heads,layers,mlp,resid,positions", "all" or "none" (or a list)
      metric     "logit-diff" | "prob" | "kl";  direction "denoise" | "noise"
      path       path patching "SENDERS -> RECEIVERS" ("* -> logits", "3.1 -> 4.2q");
                 path_mlps "frozen" | "recomputed" (IOI's variant)
      knockout   attention knockout "HEADS : QUERIES -> KEYS" ("*: -1 -> 2..4")
      dla, lens  direct logit attribution, logit lens
      mask_heads, mean_heads, gates, calib   heads masked in every run, as in
                 headroom.eval (the name-recall text is the default calib)
      threads    None = the model's;  progress(done, total) per forward pass
                 (an exception raised there stops the run)."""
    m = model._model()
    p = lib.hr_patch_default_params()
    w = ctypes.c_uint32()
    spec = what if isinstance(what, str) else ",".join(what)
    check(lib.hr_patch_parse_what(spec.encode(), ctypes.byref(w)))
    p.what = w.value
    mt = ctypes.c_int()
    check(lib.hr_patch_parse_metric(str(metric).encode(), ctypes.byref(mt)))
    p.metric = mt.value
    if direction not in ("denoise", "noise"):
        raise ValueError(f"direction must be 'denoise' or 'noise', got {direction!r}")
    p.direction = 1 if direction == "noise" else 0
    if path_mlps not in ("frozen", "recomputed"):
        raise ValueError(f"path_mlps must be 'frozen' or 'recomputed', got {path_mlps!r}")
    if path_mlps == "recomputed" and path is None:
        raise ValueError("path_mlps is for path= (it would do nothing)")
    cfg = lib.hr_model_config(m)
    if path is not None:
        check(lib.hr_patch_check_path(cfg, path.encode()))
        p.path, p.path_mlps_recomputed = path.encode(), path_mlps == "recomputed"
    if knockout is not None:
        check(lib.hr_patch_check_knockout(cfg, knockout.encode()))
        p.knockout = knockout.encode()
    p.dla, p.lens = bool(dla), bool(lens)
    p.n_threads = model._threads if threads is None else _threads(threads)
    ps, owned = _pairs_of(model, pairs, single_token)
    mask = None
    try:
        mask = _HeadMask(model, mask_heads, mean_heads, gates, calib, default_text=ps._text)
        p.heads = mask.ptr
        if mask.calib is not None:
            p.calib_tokens, p.n_calib_tokens = _iptr(mask.calib), mask.calib.size
        with _progress(progress) as cb:
            p.progress = cb.c
            out = ctypes.c_void_p()
            st = lib.hr_patch_run(m, ps._ptr(), ctypes.byref(p), ctypes.byref(out))
            cb.check(st)
        pairs_path = ps.path
    finally:
        if mask is not None:
            mask.close()
        if owned:
            ps.close()
    deps = (model._mh,) + ((model._th,) if model._th is not None else ())  # to_json names tokens
    h = Handle(out.value, lib.hr_patch_result_free, "patch result", deps=deps)
    try:
        return PatchResult(h, model, pairs_path)
    except BaseException:
        h.release()
        raise


# ---------------------------------------------------------------- AttentionInfluence

class Influence:
    """AttentionInfluence per document (hr_influence_run): NumPy arrays
    doc (index in the text), n_tokens, loss_base, loss_masked, influence
    ((masked - base) / base), sha256 (list), n_docs (documents in the text),
    heads (the mask's description); to_jsonl() is the file `headroom
    influence --out` writes (header + one line per document), byte for byte."""

    def __init__(self, header, lines, docs, n_docs, heads):
        self._header, self._lines = header, lines
        self.doc = np.array([d[0] for d in docs], dtype=np.int32)
        self.sha256 = [d[1] for d in docs]
        self.n_tokens = np.array([d[2] for d in docs], dtype=np.int32)
        self.loss_base = np.array([d[3] for d in docs])
        self.loss_masked = np.array([d[4] for d in docs])
        self.influence = np.array([d[5] for d in docs])
        self.n_docs = n_docs
        self.heads = heads

    def __len__(self):
        return int(self.doc.size)

    def __repr__(self):
        mean = float(np.mean(self.influence)) if len(self) else float("nan")
        return f"headroom.Influence({len(self)} of {self.n_docs} documents, heads {self.heads}, mean {mean:.5f})"

    def to_jsonl(self):
        return "".join(x + "\n" for x in [self._header] + self._lines)


def influence(model, text, mask_heads=None, mean_heads=None, gates=None, calib=None, split=None, ctx=None,
              max_docs=None, threads=None, progress=None):
    """AttentionInfluence (Hua et al. 2025) as `headroom influence` computes it:
    for every document of text (a str or pathlib.Path; documents separated by
    blank lines, or by lines equal to split), the mean NLL of its tokens with
    the model as it is and with the heads masked (mask_heads / mean_heads /
    gates / calib as in headroom.eval; one is required), and influence =
    (masked - base) / base. ctx: tokens per document incl. BOS (default the
    model's context); max_docs: stop after that many. Returns Influence."""
    m = model._model()
    tok = model._tokenizer()
    data, text_path = text_bytes(text)
    p = lib.hr_influence_default_params()
    p.text, p.text_len = data, len(data)
    p.split = split.encode() if split is not None else None
    p.max_tokens = 0 if ctx is None else int(ctx)
    p.max_docs = 0 if max_docs is None else int(max_docs)
    p.n_threads = model._threads if threads is None else _threads(threads)
    docs, lines, err = [], [], []

    def on_doc(dp, _ud):
        try:
            d = dp.contents
            docs.append((d.index, d.sha256.decode(), d.n_tokens, d.loss_base, d.loss_masked, d.influence))
            lines.append(_out_string(lib.hr_influence_doc_json, dp))
            return 0
        except BaseException as e:  # never unwind into C
            err.append(e)
            return 1

    fn = _lib.INFLUENCE_FN(on_doc)
    p.on_doc = fn
    with _HeadMask(model, mask_heads, mean_heads, gates, calib, default_text=text) as mask:
        if mask.ptr is None:
            raise ValueError("give the heads to mask: mask_heads=, mean_heads= or gates=")
        p.heads = mask.ptr
        if mask.calib is not None:
            p.calib_tokens, p.n_calib_tokens = _iptr(mask.calib), mask.calib.size
        header = _out_string(lib.hr_influence_header_json, _lib.encode_path(model.path), _lib.encode_path(text_path),
                             ctypes.byref(p))
        heads = mask.describe()
        n_docs = ctypes.c_int()
        with _progress(progress) as cb:
            p.progress = cb.c
            st = lib.hr_influence_run(m, tok, ctypes.byref(p), ctypes.byref(n_docs))
            if err:
                raise err[0]
            cb.check(st)
    return Influence(header, lines, docs, n_docs.value, heads)
