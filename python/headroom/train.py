"""headroom.finetune: LoRA or full fine-tuning of a model on a text
(train.h: hr_train_new / _run / _model), the result an in-memory Model with
the adapters merged — what `headroom finetune` writes, from Python."""
import ctypes
import math
import os

from . import _lib
from ._handle import Handle
from ._lib import lib, check
from .model import Model, _threads, text_bytes


class FinetunedModel(Model):
    """The model hr_train_model built (base weights plus the updates, LoRA
    merged), in memory: it runs, hooks, studies and saves (.save(path,
    format="gguf" | "hf")) like any other Model; float32 weights.

    .losses: the mean training loss of each optimiser step (step 1 first).
    .info:   steps, train_tokens, heldout_tokens (the text's split),
             heldout_loss_before / heldout_loss (mean held-out loss of the
             base and of the trained weights), heldout_losses ({step: loss}
             of the evaluations), lr and grad_norm of the last step.
    The base model stays allocated until this model is closed."""

    def __init__(self, mh, base, text_path, losses, info):
        th = base._th.acquire() if base._th is not None else None
        Model.__init__(self, mh, mh.ptr, th, None, base._threads, base._tok_note)
        self._base_path = base.path
        self._base_inputs = base._inputs() + ([text_path] if text_path else [])
        self.losses = losses
        self.info = info

    def __repr__(self):
        c = self.config
        return (f"headroom.FinetunedModel(from {self._base_path!r}, {c.architecture}, {c.n_layers} layers, "
                f"{self.info['steps']} steps, held-out loss {self.info['heldout_loss_before']:.4f} -> "
                f"{self.info['heldout_loss']:.4f})")

    def _inputs(self):
        return list(self._base_inputs)


def _targets(lora_targets):
    """hr_lora_target bits of None (all), "q,k,..." or a list of names."""
    if lora_targets is None:
        return 0
    if not isinstance(lora_targets, str):
        lora_targets = ",".join(lora_targets)
    out = ctypes.c_uint32()
    check(lib.hr_lora_targets_parse(lora_targets.encode(), ctypes.byref(out)))
    return out.value


def finetune(model, text, lora_rank=None, lora_alpha=None, lora_targets=None, full=False, only=None, steps=100,
             lr=1e-3, batch=1, accum=1, warmup=0, window=None, seed=0, threads=None, recompute=False,
             progress=None):
    """Fine-tunes model on text (str, or pathlib.Path of a UTF-8 file) as
    `headroom finetune` does (train.h): exact gradients, AdamW, warm-up then
    cosine learning rate, gradient clipping at 1; the text's last 10% is held
    out. Returns a new FinetunedModel; model is unchanged.

      lora_rank     LoRA adapters of this rank on lora_targets ("q,k,v,o,gate,
                    up,down" names, a str or list; None = all), scale
                    lora_alpha / rank (None = rank); default 8 unless full
      full          train the base weights instead; only="heads:L.H,...;mlp:L,..."
                    restricts them to those heads' rows / columns and MLPs
      steps, lr, batch, accum, warmup, window (None = min(context, 256)), seed
                    as the CLI's options of the same names
      threads       None = the model's
      recompute     keep only each layer's input and recompute its activations
                    in the backward (the CLI's --recompute): the same weights,
                    bit for bit, with less activation memory, for ~1 more
                    forward per step
      progress      fn(done_steps, total_steps); raising in it stops the run
                    (the exception is re-raised)
    Same options and text give the same weights, bit for bit, as the CLI.
    Bad values raise headroom.Error with the library's message before any work."""
    m = model._model()
    if model._th is None:
        raise _lib.InvalidArgument(f"finetune needs the model's tokenizer ({model._tok_note or 'none found'})")
    if full and lora_rank is not None:
        raise ValueError("lora_rank and full=True exclude each other (LoRA adapters or the base weights)")
    if only is not None and not full:
        raise ValueError("only= selects base weights: it needs full=True")
    p = lib.hr_train_default_params()
    p.full = bool(full)
    p.lora_rank = 0 if full else (8 if lora_rank is None else int(lora_rank))
    p.lora_alpha = 0.0 if lora_alpha is None else float(lora_alpha)
    p.lora_targets = _targets(lora_targets)
    p.only = None if only is None else str(only).encode()
    p.steps, p.lr, p.batch, p.accum, p.warmup = int(steps), float(lr), int(batch), int(accum), int(warmup)
    p.window = 0 if window is None else int(window)
    p.seed = int(seed)
    p.n_threads = model._threads if threads is None else _threads(threads)
    p.recompute = bool(recompute)
    data, text_path = text_bytes(text)
    ids, n = ctypes.POINTER(ctypes.c_int32)(), ctypes.c_size_t()
    check(lib.hr_calib_tokens(model._th.get(), data, len(data), 0, ctypes.byref(ids), ctypes.byref(n)))
    t = ctypes.c_void_p()
    losses, heldout, err = [], {}, []
    ti = _lib.TrainInfo()

    def on_progress(info_p, _ud):  # phase "training", after each step (done = steps so far): record its loss
        try:
            if info_p.contents.phase != b"training":
                return 0
            done, total = int(info_p.contents.done), int(info_p.contents.total)
            if done > len(losses):
                lib.hr_train_get_info(t, ctypes.byref(ti))
                losses.append(float(ti.loss))
                if math.isfinite(ti.heldout_loss):
                    heldout[ti.step] = float(ti.heldout_loss)
            if progress is not None:
                progress(done, total)
            return 0
        except BaseException as e:  # KeyboardInterrupt included: abort the run, re-raised below
            err.append(e)
            return 1

    cb = _lib.PROGRESS_PHASE_FN(on_progress)
    p.progress_phase = cb
    out = ctypes.c_void_p()
    try:
        with model._lock:
            check(lib.hr_train_new(m, ids, n.value, ctypes.byref(p), ctypes.byref(t)))
            before = ctypes.c_double()
            check(lib.hr_train_eval(t, ctypes.byref(before)))
            st = lib.hr_train_run(t)
            if err:
                raise err[0]
            check(st)
            lib.hr_train_get_info(t, ctypes.byref(ti))
            check(lib.hr_train_model(t, ctypes.byref(out)))
    finally:
        lib.hr_train_free(t)
        lib.hr_free(ids)
    info = {"steps": int(ti.step), "train_tokens": int(ti.train_tokens), "heldout_tokens": int(ti.heldout_tokens),
            "heldout_loss_before": float(before.value), "heldout_loss": float(ti.heldout_loss),
            "heldout_losses": heldout, "lr": float(ti.lr), "grad_norm": float(ti.grad_norm)}
    mh = Handle(out.value, lib.hr_model_free, "model", deps=(model._mh,))
    try:
        return FinetunedModel(mh, model, os.fspath(text_path) if text_path else None, losses, info)
    except BaseException:
        mh.release()
        raise
