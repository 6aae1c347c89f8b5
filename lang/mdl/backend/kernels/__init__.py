"""Lowerings: one function per graph op, `(ctx, node) -> statements` of the loop IR.

Each module here registers its lowerings with `@lowering("op", ...)`; importing
this package fills `LOWERINGS`. A lowering reads its operands through
`ctx.buf(value)` / `ctx.shape(value)`, writes only its outputs' buffers, and
computes exactly what the primitive's reference `evaluate` computes (the
native tests compare the two).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

LOWERINGS: dict[str, Callable[[Any, Any], tuple]] = {}


def lowering(*ops: str) -> Callable:
    def register(fn: Callable) -> Callable:
        for op in ops:
            if op in LOWERINGS:
                raise ValueError(f"lowering of {op!r} registered twice")
            LOWERINGS[op] = fn
        return fn

    return register


def load_all() -> None:
    """Import every kernel module (each registers its ops)."""
    import importlib
    import pkgutil

    for info in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{info.name}")
