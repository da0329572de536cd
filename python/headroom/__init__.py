"""headroom: the attention heads of transformer language models, measured
and cut, from Python. A thin layer over libheadroom (C): no weight copies,
NumPy arrays in and out, the library's errors as headroom.Error.

    import headroom
    m = headroom.Model.load("stories260K.bin")
    logits, cache = m.run_with_cache(m.tokenize("Once upon a time"), names=["pattern"])
"""
from ._lib import (Error, InvalidArgument, FormatError, Unsupported, OutOfMemory, RangeError, NotFound, Aborted,
                   version as _version)
from ._lib import IOError_ as IOError  # noqa: A001  (headroom.IOError, a subclass of OSError)
from .model import Model, Cache, Config

__version__ = _version()

__all__ = ["Model", "Cache", "Config", "Error", "InvalidArgument", "IOError", "FormatError", "Unsupported",
           "OutOfMemory", "RangeError", "NotFound", "Aborted", "__version__"]
