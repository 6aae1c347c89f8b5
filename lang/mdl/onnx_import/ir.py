"""The importer's intermediate form: what an ONNX graph becomes before it is written as mdl.

Each ONNX value is either `Known` (a compile-time array: initializers used as
constants, folded shape arithmetic, whose int entries may be symbolic `Dim`s)
or `Tensor` (a run-time value with a dtype and a symbolic shape). Run-time
values are computed by `Stmt`s: an mdl expression (`Expr`, with holes for the
values it reads) placed in a module scope (a path such as ("blocks", "0",
"attn")). Parameters are either `Instance`s of standard layers (`nn.Dense[...]`
bound at their path) or raw `Param`s declared with `param`/`buffer`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..dims import Dim
from ..types import DType, TensorType

Path = tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Known:
    """A compile-time value. `array` is numeric, or an object array of ints and `Dim`s."""

    array: np.ndarray
    dtype: DType | None  # None: an ONNX type mdl has no tensors of (uint8, ...), usable folded

    @property
    def is_symbolic(self) -> bool:
        return self.array.dtype == object


@dataclass(frozen=True, slots=True)
class Tensor:
    type: TensorType


Value = Known | Tensor


@dataclass(frozen=True, slots=True)
class InstRef:
    """A hole for the layer instance bound at `path` (`fc1`, or `blocks[0]` in a list)."""

    path: Path


Ref = str | InstRef  # a str is an ONNX value name


@dataclass(frozen=True, slots=True)
class Expr:
    """mdl expression text; `\\x01i\\x02` marks hole i, filled from `refs[i]`."""

    text: str
    refs: tuple[Ref, ...] = ()
    symbols: frozenset[str] = frozenset()
    raw: bool = False  # inserted as is: a list of arguments, never parenthesised

    @property
    def is_hole(self) -> bool:
        return self.text == "\x010\x02"


def hole(ref: Ref) -> Expr:
    return Expr("\x010\x02", (ref,))


def lit(text: str, symbols: frozenset[str] = frozenset(), raw: bool = False) -> Expr:
    return Expr(text, (), symbols, raw)


def ex(template: str, *parts: Expr | str) -> Expr:
    """Fill each `{}` of `template` with a part. Expression parts that are not plain holes,
    names or calls are parenthesised (the formatter drops the parentheses the grammar does
    not need); `str` parts and raw parts go in as they are."""
    pieces = template.split("{}")
    if len(pieces) != len(parts) + 1:
        raise ValueError(f"template {template!r} has {len(pieces) - 1} holes, {len(parts)} given")
    text = [pieces[0]]
    refs: list[Ref] = []
    symbols: set[str] = set()
    for part, after in zip(parts, pieces[1:], strict=True):
        if isinstance(part, str):
            part = lit(part, raw=True)
        body = part.text
        for i in range(len(part.refs) - 1, -1, -1):
            body = body.replace(f"\x01{i}\x02", f"\x01{i + len(refs)}\x02")
        atomic = part.raw or part.is_hole or body.isidentifier() or _is_call(body)
        text.append(body if atomic else f"({body})")
        text.append(after)
        refs.extend(part.refs)
        symbols |= part.symbols
    return Expr("".join(text), tuple(refs), frozenset(symbols))


def _is_call(text: str) -> bool:
    """`name(...)` or `a.b[...](...)` with balanced brackets closing at the very end."""
    if not text or text[-1] not in ")]" or not (text[0].isalpha() or text[0] == "_"):
        return False
    depth = 0
    for i, ch in enumerate(text):
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
            if depth == 0 and i != len(text) - 1 and text[i + 1] not in "([.":
                return False
        elif depth == 0 and not (ch.isalnum() or ch in "_."):
            return False
    return depth == 0


@dataclass(frozen=True, slots=True)
class Stmt:
    outputs: tuple[str, ...]  # ONNX value names this statement defines
    expr: Expr
    scope: Path
    hint: str  # a variable-name hint ("relu", "fc1")


@dataclass(frozen=True, slots=True)
class Instance:
    """A standard-layer instance (`nn.Dense[64, 48]`) bound at `path`, owning `weights`
    (local name -> array, the names the layer declares)."""

    path: Path
    decl: str
    weights: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Param:
    """A raw parameter (`param weight: f32[4]`) or buffer for an initializer; `value` is its
    ONNX name, read by statements like any run-time value."""

    value: str
    path: Path
    array: np.ndarray
    dtype: DType
    is_buffer: bool = False


def dim_text(d: Dim | int) -> str:
    return str(Dim.of(d))


def dims_symbols(dims: tuple | list) -> frozenset[str]:
    out: set[str] = set()
    for d in dims:
        out |= Dim.of(d).symbols if not isinstance(d, int) else set()
    return frozenset(out)
