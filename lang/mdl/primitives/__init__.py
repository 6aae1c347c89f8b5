"""Primitive operations: importing this package fills `REGISTRY` with every op.

See registry.py for the contract of an entry, bind.py for how a call's
arguments become operands and attributes, and surface.py for the names users
call them by.
"""

from __future__ import annotations

from . import elementwise, gather, layout, linalg, nn, reduce  # noqa: F401  (each registers its ops)
from .bind import bind, relocate, settle_scalars
from .registry import REGISTRY, EvalError, Param, Primitive, Scalar, ShapeError
from .surface import OPERATORS, SIGNATURES, SURFACE_NAMES, resolve

__all__ = [
    "OPERATORS",
    "REGISTRY",
    "SIGNATURES",
    "SURFACE_NAMES",
    "EvalError",
    "Param",
    "Primitive",
    "Scalar",
    "ShapeError",
    "bind",
    "relocate",
    "resolve",
    "settle_scalars",
]
