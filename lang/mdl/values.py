"""Compile-time values the elaborator computes with.

Besides Python ints, floats, bools, `Dim`s, `DType`s, tuples and lists, an
expression can evaluate to a tensor (`Tensor`, a graph value), a reference to
a declaration (`FnRef`, `LayerRef`), an unbound layer instantiation
(`LayerRef` with compile-time arguments, `SequentialSpec`), a bound layer
instance (`Instance`, which has a parameter path), a primitive (`PrimRef`) or
a method (`Method`). `POISON` stands for a value whose computation already
reported an error; operations on it are silent so errors do not cascade.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .graph import Value
from .syntax import ast


class _Poison:
    def __repr__(self) -> str:
        return "POISON"


POISON: Any = _Poison()


@dataclass(frozen=True, eq=False)
class Tensor:
    value: Value

    @property
    def type(self):
        return self.value.type


@dataclass(frozen=True, eq=False)
class CtArgs:
    positional: tuple[Any, ...] = ()
    keywords: tuple[tuple[str, Any], ...] = ()
    span: Any = None


@dataclass(frozen=True, eq=False)
class FnRef:
    decl: ast.Decl
    module: Any  # resolve.ModuleInfo
    ctargs: CtArgs | None = None


@dataclass(frozen=True, eq=False)
class LayerRef:
    decl: ast.Decl
    module: Any
    ctargs: CtArgs | None = None


@dataclass(frozen=True, eq=False)
class SequentialSpec:
    children: tuple[Any, ...]  # LayerRef | SequentialSpec


@dataclass(eq=False)
class Instance:
    spec: LayerRef | SequentialSpec
    path: str
    children: list[Instance] = field(default_factory=list)
    called: bool = False


@dataclass(frozen=True, eq=False)
class PrimRef:
    name: str


@dataclass(frozen=True, eq=False)
class Method:
    name: str
    receiver: Tensor


@dataclass(frozen=True, eq=False)
class RangeVal:
    start: Any
    stop: Any

    def __len__(self) -> int:
        return max(0, int(self.stop) - int(self.start))

    def items(self) -> list[int]:
        return list(range(int(self.start), int(self.stop)))


def describe(v: Any) -> str:
    """A short phrase naming what kind of value `v` is, for messages."""
    from .dims import Dim
    from .types import DType

    match v:
        case Tensor():
            return f"a tensor `{v.type}`"
        case bool():
            return "a bool"
        case int():
            return "an int"
        case float():
            return "a float"
        case Dim():
            return f"the dim `{v}`"
        case DType():
            return f"the dtype `{v}`"
        case FnRef():
            return f"the function `{v.decl.name.name}`"
        case LayerRef():
            return f"the layer `{v.decl.name.name}`"
        case Instance():
            return f"the layer instance `{v.path}`"
        case SequentialSpec():
            return "a `Sequential` layer"
        case PrimRef():
            return f"the primitive `{v.name}`"
        case Method():
            return f"the method `{v.name}`"
        case RangeVal():
            return "a range"
        case tuple():
            return "a tuple"
        case list():
            return "a list"
        case None:
            return "`None`"
    return type(v).__name__
