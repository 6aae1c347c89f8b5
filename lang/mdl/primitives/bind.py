"""Argument binding: a call's evaluated arguments -> a primitive's tensor operands and attributes.

The checker evaluates a call's arguments (tensors as `TensorType`s,
compile-time values as Python ints, floats, bools, `Dim`s, `DType`s, None or
lists of these) and `bind` maps them onto the primitive's `params`: numbers
written where a tensor goes become `Scalar`s, compile-time values are checked
and converted by kind, and axes are normalized (the primitive's
`extra["canonical"]` hook). `settle_scalars` then gives each `Scalar` a 0-d
tensor type from the tensors beside it, and `relocate` points an error raised
by `infer` at the argument the user wrote.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..dims import Dim
from ..types import DType, TensorType
from .registry import REQUIRED, Param, Primitive, Scalar, ShapeError


@dataclass(frozen=True, slots=True)
class _Given:
    """Where a parameter's value came from: positional `arg` (the first of the rest, when
    `spread`), or keyword `kwarg`."""

    value: Any
    arg: int | None = None
    kwarg: str | None = None
    spread: bool = False

    def at(self, item: int | None = None) -> dict[str, Any]:
        """ShapeError location keywords for the value, or for one item of a spread list."""
        if self.kwarg is not None:
            return {"kwarg": self.kwarg}
        if self.spread and item is not None:
            return {"arg": self.arg + item}
        return {"arg": self.arg}


def describe(value: Any) -> str:
    """A value as a message names it: "the float `0.5`", "a tensor `f32[B, 64]`"."""
    match value:
        case TensorType():
            return f"a tensor `{value}`"
        case Scalar():
            return describe(value.value)
        case bool():
            return f"the bool `{str(value).lower()}`"
        case int():
            return f"the int `{value}`"
        case float():
            return f"the float `{value}`"
        case Dim() if value.is_const:
            return f"the int `{value}`"
        case Dim():
            return f"the dimension `{value}`"
        case DType():
            return f"the dtype `{value}`"
        case None:
            return "`None`"
        case list() | tuple():
            return "a list"
    return f"a {type(value).__name__}"


def _is_spread(prim: Primitive, index: int) -> bool:
    """Whether the parameter at `index` takes the rest of the positional arguments."""
    param = prim.params[index]
    return param.kind == "tensors" or (
        param.kind in ("ints", "dims") and index == len(prim.params) - 1
    )


def _positional_slots(prim: Primitive, n_positional: int) -> dict[str, tuple[int, bool]]:
    """Parameter name -> (index of its first positional argument, spread)."""
    slots: dict[str, tuple[int, bool]] = {}
    for index, param in enumerate(prim.params):
        if index >= n_positional:
            break
        spread = _is_spread(prim, index)
        slots[param.name] = (index, spread)
        if spread:
            break
    return slots


def _assign(
    prim: Primitive, op: str, args: Sequence[Any], kwargs: dict[str, Any]
) -> dict[str, _Given]:
    """Positional and keyword arguments -> each parameter's given value (defaults absent)."""
    given: dict[str, _Given] = {}
    consumed = 0
    for name, (index, spread) in _positional_slots(prim, len(args)).items():
        if spread:
            rest = tuple(args[index:])
            if len(rest) == 1 and isinstance(rest[0], list | tuple):
                given[name] = _Given(rest[0], arg=index)  # transpose(x, [0, 2, 1]) spelling
            else:
                given[name] = _Given(rest, arg=index, spread=True)
            consumed = len(args)
        else:
            given[name] = _Given(args[index], arg=index)
            consumed = index + 1
    if consumed < len(args):
        takes = consumed if consumed else "no"
        raise ShapeError(
            "E0113",
            f"`{op}` takes {takes} positional argument{'s' * (consumed != 1)} but "
            f"{len(args)} were given",
            arg=consumed,
            label="unexpected argument",
            notes=(f"signature: {signature(prim, op)}",),
        )
    aliases = prim.extra.get("aliases", {})
    names = [p.name for p in prim.params]
    for keyword, value in kwargs.items():
        name = aliases.get(keyword, keyword)
        if name not in names:
            close = difflib.get_close_matches(keyword, [*names, *aliases], n=1, cutoff=0.6)
            raise ShapeError(
                "E0111",
                f"`{op}` has no argument named `{keyword}`",
                kwarg=keyword,
                label="unknown keyword",
                notes=(f"signature: {signature(prim, op)}",),
                help=f"did you mean `{close[0]}`?" if close else None,
            )
        if name in given:
            before = given[name]
            where = "by position" if before.kwarg is None else f"as `{before.kwarg}`"
            raise ShapeError(
                "E0114",
                f"argument `{keyword}` of `{op}` given twice",
                kwarg=keyword,
                label=f"already given {where}",
            )
        given[name] = _Given(value, kwarg=keyword)
    return given


# ---------------------------------------------------------------------------
# Conversion by parameter kind


def _kind_error(op: str, param: Param, value: Any, wanted: str, at: dict[str, Any]):
    if isinstance(value, TensorType):
        return ShapeError(
            "E0204",
            f"`{param.name}` of `{op}` must be a compile-time value, found {describe(value)}",
            label=f"expected {wanted}, not a tensor",
            notes=("compile-time values are numbers, dimensions, dtypes and lists of them",),
            **at,
        )
    return ShapeError(
        "E0205",
        f"`{param.name}` of `{op}` must be {wanted}, found {describe(value)}",
        label=f"expected {wanted}",
        **at,
    )


def _to_tensor(op: str, param: Param, value: Any, at: dict[str, Any]) -> TensorType | Scalar:
    match value:
        case TensorType() | Scalar():
            return value
        case bool() | int() | float():
            return Scalar(value)
        case Dim() if value.is_const:
            return Scalar(value.value)
    raise ShapeError(
        "E0203",
        f"`{param.name}` of `{op}` must be a tensor, found {describe(value)}",
        label="expected a tensor",
        notes=("a symbolic dimension is not a value a tensor can hold",)
        if isinstance(value, Dim)
        else (),
        **at,
    )


def _to_int(op: str, param: Param, value: Any, at: dict[str, Any]) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, Dim) and value.is_const:
        return value.value
    raise _kind_error(op, param, value, "a known int", at)


def _to_dim(op: str, param: Param, value: Any, at: dict[str, Any]) -> Dim:
    if isinstance(value, Dim):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return Dim.of(value)
    raise _kind_error(op, param, value, "a dimension", at)


def _items(given: _Given, one: bool) -> Iterable[tuple[Any, dict[str, Any]]]:
    """The items of a list value with their locations; a lone value is a list of one."""
    value = given.value
    if isinstance(value, list | tuple):
        return [(item, given.at(i)) for i, item in enumerate(value)]
    if one:
        return [(value, given.at())]
    return []


def _convert(op: str, param: Param, given: _Given) -> Any:
    value, at = given.value, given.at()
    if value is None and param.default is None:
        return None
    match param.kind:
        case "tensor":
            return _to_tensor(op, param, value, at)
        case "tensors":
            if not isinstance(value, list | tuple):
                value = (value,)
                given = _Given(value, given.arg, given.kwarg, spread=True)
            return [_to_tensor(op, param, item, loc) for item, loc in _items(given, False)]
        case "int":
            return _to_int(op, param, value, at)
        case "dim":
            return _to_dim(op, param, value, at)
        case "float":
            if isinstance(value, int | float) and not isinstance(value, bool):
                return float(value)
            if isinstance(value, Dim) and value.is_const:
                return float(value.value)
            raise _kind_error(op, param, value, "a number", at)
        case "bool":
            if isinstance(value, bool):
                return value
            raise _kind_error(op, param, value, "`true` or `false`", at)
        case "dtype":
            if isinstance(value, DType):
                return value
            raise _kind_error(op, param, value, "a dtype such as `f32`", at)
        case "ints" | "axes":
            if value is None and param.kind == "axes":
                return None
            if not isinstance(value, list | tuple | int | Dim) or isinstance(value, bool):
                raise _kind_error(op, param, value, "a list of ints", at)
            return tuple(_to_int(op, param, item, loc) for item, loc in _items(given, True))
        case "dims":
            if not isinstance(value, list | tuple | int | Dim) or isinstance(value, bool):
                raise _kind_error(op, param, value, "a list of dimensions", at)
            return tuple(_to_dim(op, param, item, loc) for item, loc in _items(given, True))
        case _:  # "any"
            return _compile_time(op, param, value, at)


def _compile_time(op: str, param: Param, value: Any, at: dict[str, Any]) -> Any:
    if isinstance(value, TensorType):
        raise _kind_error(op, param, value, "a compile-time value", at)
    if isinstance(value, list | tuple):
        return tuple(_compile_time(op, param, item, at) for item in value)
    return value


# ---------------------------------------------------------------------------
# Public API


def bind(
    prim: Primitive,
    args: list[Any],
    kwargs: dict[str, Any],
    *,
    name: str | None = None,
) -> tuple[list[TensorType | Scalar], dict[str, Any]]:
    """Map a call's arguments onto `prim.params` -> (tensor operands in order, attrs).

    `name` is the surface name the user wrote (`sum` for `reduce_sum`), for messages.
    Errors are `ShapeError`s with `arg` the index into `args` or `kwarg` the keyword.
    """
    op = name or prim.name
    given = _assign(prim, op, args, kwargs)
    operands: list[TensorType | Scalar] = []
    attrs: dict[str, Any] = {}
    for param in prim.params:
        if param.name not in given:
            if param.default is REQUIRED:
                raise ShapeError(
                    "E0112",
                    f"missing argument `{param.name}` in call to `{op}`",
                    label=f"`{param.name}` is required",
                    notes=(f"signature: {signature(prim, op)}",),
                )
            if param.kind in ("tensor", "tensors"):
                continue
            attrs[param.name] = param.default
            continue
        value = _convert(op, param, given[param.name])
        if param.kind == "tensor":
            operands.append(value)
        elif param.kind == "tensors":
            operands.extend(value)
        else:
            attrs[param.name] = value
    canonical = prim.extra.get("canonical")
    if canonical is not None:
        ranks = [0 if isinstance(o, Scalar) else o.rank for o in operands]
        try:
            attrs = canonical(ranks, attrs)
        except ShapeError as e:
            raise _moved(e, given) from None
    return operands, attrs


def _moved(error: ShapeError, given: dict[str, _Given]) -> ShapeError:
    """The error pointing at where the parameter named by its `kwarg` was given."""
    where = given.get(error.kwarg) if error.kwarg is not None else None
    return _with(error, where.at() if where is not None else {})


def _with(error: ShapeError, at: dict[str, Any]) -> ShapeError:
    return ShapeError(
        error.code,
        error.message,
        arg=at.get("arg"),
        kwarg=at.get("kwarg"),
        label=error.label,
        notes=error.notes,
        help=error.help,
    )


def relocate(
    error: ShapeError, prim: Primitive, n_positional: int, kw_names: Iterable[str]
) -> ShapeError:
    """An error from `infer` (arg: operand index, kwarg: parameter name) -> the same error
    located in the call as written (arg: positional index, kwarg: the keyword used; neither
    when the value was a default)."""
    aliases = prim.extra.get("aliases", {})
    keyword_of = {aliases.get(k, k): k for k in kw_names}
    slots = _positional_slots(prim, n_positional)
    given: dict[str, _Given] = {}
    for param in prim.params:
        if param.name in slots:
            index, spread = slots[param.name]
            given[param.name] = _Given(None, arg=index, spread=spread)
        elif param.name in keyword_of:
            given[param.name] = _Given(None, kwarg=keyword_of[param.name])
    if error.arg is None:
        return _moved(error, given)
    # operand index -> the tensor parameter (or the item of a variadic one) it came from
    index = error.arg
    for param in prim.params:
        where = given.get(param.name)
        if param.kind == "tensors":
            at = where.at(index) if where is not None else {}
            if at.get("arg") is not None and at["arg"] >= n_positional:
                at = where.at()  # the tensors came as one list: point at the list
            return _with(error, at)
        if param.kind == "tensor":
            if index == 0:
                return _with(error, where.at() if where is not None else {})
            index -= 1
    return _with(error, {})


def fit_number(value: int | float | bool, dtype: DType) -> int | float | bool:
    """A number written in the source, as a value of `dtype`; E0201 for a fraction given
    to an int or bool tensor, E0409 for an int outside the int dtype's range."""
    if isinstance(value, float) and not dtype.is_float:
        if not value.is_integer():
            article = "an" if dtype.is_int else "a"
            raise ShapeError(
                "E0201",
                f"float literal `{value}` used with {article} `{dtype}` tensor",
                label="not a whole number",
                help="convert the tensor with `cast(x, f32)`, or write a whole number",
            )
        value = int(value)
    if dtype.is_int and not isinstance(value, bool):
        info = np.iinfo(dtype.numpy)
        if not info.min <= value <= info.max:
            raise ShapeError(
                "E0409",
                f"the number {value} does not fit in `{dtype}`",
                label=f"{dtype} holds {info.min} to {info.max}",
            )
    if dtype is DType.BOOL:
        return bool(value)
    return int(value) if dtype.is_int else float(value)


def settle_scalars(operands: list[TensorType | Scalar]) -> list[TensorType]:
    """Give each `Scalar` a 0-d tensor type: the dtype of the first tensor operand that is not
    bool; when every tensor is bool (or there is none), a bool number is `bool` and other
    numbers take their own type (int -> i64, float -> f32)."""
    tensors = [o for o in operands if isinstance(o, TensorType)]
    context = next((t.dtype for t in tensors if t.dtype is not DType.BOOL), None)
    settled: list[TensorType] = []
    for index, operand in enumerate(operands):
        if isinstance(operand, TensorType):
            settled.append(operand)
            continue
        value = operand.value
        if context is not None:
            dtype = context
        elif isinstance(value, bool):
            dtype = DType.BOOL
        else:
            dtype = DType.I64 if isinstance(value, int) else DType.F32
        try:
            fit_number(value, dtype)
        except ShapeError as e:
            raise ShapeError(e.code, e.message, arg=index, label=e.label, help=e.help) from None
        settled.append(TensorType(dtype, ()))
    return settled


def signature(prim: Primitive, name: str | None = None) -> str:
    """`sum(x, axis=None, keep=false)`: a one-line signature as the user calls it."""
    shown = {v: k for k, v in prim.extra.get("aliases", {}).items()}
    parts = []
    for index, param in enumerate(prim.params):
        label = shown.get(param.name, param.name)
        if _is_spread(prim, index):
            label = "*" + label
        elif param.default is not REQUIRED:
            label += "=" + _literal(param.default)
        parts.append(label)
    return f"{name or prim.name}({', '.join(parts)})"


def _literal(value: Any) -> str:
    match value:
        case bool():
            return str(value).lower()
        case list() | tuple():
            return "[" + ", ".join(_literal(v) for v in value) + "]"
    return str(value)
