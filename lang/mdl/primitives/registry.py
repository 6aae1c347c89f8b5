"""The primitive registry: one `Primitive` entry per graph operation.

Each entry holds everything about one op: its signature (`params`), its shape
and dtype rule (`infer`), its reference semantics in numpy (`evaluate`), its
cost (`flops`) and its documentation. Code generation, gradients and ONNX
mappings will hang off the same entry, so adding an op touches one place.

Contract
--------
- `infer(operands, attrs) -> tuple[TensorType, ...]`: operands are the tensor
  operands as `TensorType`s (scalars already settled into 0-d tensor types),
  attrs the bound compile-time attributes (values may contain symbolic `Dim`s).
  Raises `ShapeError` for ill-formed uses.
- `evaluate(arrays, attrs) -> tuple[np.ndarray, ...]`: arrays are numpy arrays
  of exactly the inferred dtypes; attrs have every `Dim` replaced by a concrete
  int. Must not mutate its inputs. Raises `EvalError` for run-time faults
  (index out of range).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..types import TensorType


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()

# Kinds of parameters:
#   "tensor"   one tensor operand (a compile-time number is accepted as a Scalar)
#   "tensors"  the rest of the positional arguments, each a tensor operand
#   "int" "float" "bool" "dtype" "dim"  one compile-time value of that kind
#   "ints" "dims"  a compile-time list (or the rest of the positionals, if last)
#   "axes"     an int, a list of ints, or none
#   "any"      any compile-time value
PARAM_KINDS = (
    "tensor",
    "tensors",
    "int",
    "float",
    "bool",
    "dtype",
    "dim",
    "ints",
    "dims",
    "axes",
    "any",
)


@dataclass(frozen=True, slots=True)
class Param:
    name: str
    kind: str
    default: Any = REQUIRED
    doc: str = ""


@dataclass(frozen=True, slots=True)
class Scalar:
    """A compile-time number written where a tensor operand is expected."""

    value: int | float | bool


class ShapeError(Exception):
    """An ill-formed use of a primitive, reported as a diagnostic at the call.

    `arg` is the index of the offending positional argument, `kwarg` the name
    of the offending keyword argument (both None: the whole call).
    """

    def __init__(
        self,
        code: str,
        message: str,
        *,
        arg: int | None = None,
        kwarg: str | None = None,
        label: str = "",
        notes: tuple[str, ...] = (),
        help: str | None = None,
    ):
        super().__init__(message)
        self.code = code
        self.message = message
        self.arg = arg
        self.kwarg = kwarg
        self.label = label
        self.notes = notes
        self.help = help


class EvalError(Exception):
    """A run-time fault in the reference semantics (for example an index out of range)."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True, eq=False)
class Primitive:
    name: str
    params: tuple[Param, ...]
    infer: Callable[[list[TensorType], dict[str, Any]], tuple[TensorType, ...]]
    evaluate: Callable[[list[np.ndarray], dict[str, Any]], tuple[np.ndarray, ...]]
    doc: str = ""
    elementwise: bool = False
    flops: Callable[[list[TensorType], tuple[TensorType, ...], dict[str, Any]], Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


REGISTRY: dict[str, Primitive] = {}


def register(prim: Primitive) -> Primitive:
    if prim.name in REGISTRY:
        raise ValueError(f"primitive {prim.name!r} registered twice")
    REGISTRY[prim.name] = prim
    return prim
