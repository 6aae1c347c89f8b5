"""mdl: a model-as-code language and compiler.

`mdl.load(path, weights=...)` compiles a model and returns a callable;
errors raise `mdl.MdlError` carrying diagnostics. Heavy modules are imported
lazily so that `mdlc --help` stays fast.
"""

from __future__ import annotations

from typing import Any

from .diagnostics import Diagnostic, MdlError

__all__ = ["Diagnostic", "MdlError", "load", "__version__"]
__version__ = "0.1.0"


def load(path: str, weights: Any = None, **kwargs: Any) -> Any:
    from .api import load as _load

    return _load(path, weights=weights, **kwargs)
