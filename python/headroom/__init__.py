"""headroom: run transformer language models, open up their attention heads,
measure what each head does and how much it matters, prune them — from
Python, over libheadroom (C). No weight copies, NumPy arrays in and out
(zero-copy views inside hooks), the library's errors as headroom.Error.

    import headroom
    m = headroom.Model.load("stories260K.bin")
    ids = m.tokenize("Once upon a time")
    logits, cache = m.run_with_cache(ids, names=["pattern"])
    lab = headroom.heads(m, pathlib.Path("tinystories_val.txt"), methods=["ablation"])
    small = headroom.prune(m, lab, by="ablation", heads="25%")
    print(headroom.eval(m, small, pathlib.Path("tinystories_val.txt"), windows=8)["ppl_candidate"])
    g = headroom.grad(m, ids, wrt=["head_gates"])          # dL/d(gate), (layers, heads)
    ft = headroom.finetune(m, pathlib.Path("story.txt"), lora_rank=8, steps=100)  # LoRA merged
"""
from ._lib import (Error, InvalidArgument, FormatError, Unsupported, OutOfMemory, RangeError, NotFound, Aborted,
                   version as _version)
from ._lib import IOError_ as IOError  # noqa: A001  (headroom.IOError, a subclass of OSError)
from .model import Model, Cache, Config, NAMES
from .study import (HeadsResult, Scores, KvPlan, PrunedModel, heads, methods, layer_metrics, kv_plan_from_scores,
                    prune, evaluate, convert)
from .gradients import Gradients, grad
from .circuits import Influence, Pairs, PatchResult, influence, patch
from .train import FinetunedModel, finetune

eval = evaluate  # noqa: A001  (headroom.eval, as the CLI command)

__version__ = _version()

__all__ = ["Model", "Cache", "Config", "NAMES", "HeadsResult", "Scores", "KvPlan", "PrunedModel", "heads", "methods",
           "layer_metrics", "kv_plan_from_scores", "prune", "eval", "evaluate", "convert", "grad", "Gradients", "Pairs",
           "PatchResult", "patch", "Influence", "influence", "finetune", "FinetunedModel", "Error", "InvalidArgument",
           "IOError", "FormatError", "Unsupported", "OutOfMemory", "RangeError", "NotFound", "Aborted", "__version__"]
