"""Reductions: a tensor type and axes -> the reduced type; numpy arrays -> reduced arrays.

reduce_sum, reduce_mean, reduce_max, reduce_min and reduce_prod take `axes`
(None for every axis) and `keep`; argmax and argmin take one `axis` and give
i64 indices.

Numerics of the reference: float sums, means and products accumulate in f64
and round once to the result dtype; integer sums and products wrap in their
own dtype. The max of an empty axis is the identity of max (-inf, or the
smallest int), likewise for min; the mean of an empty axis is nan.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..dims import Dim
from ..shapes import normalize_axis, num_elements
from ..types import DType, TensorType
from .elementwise import FLOAT, NUMERIC, as_result, compute_dtype, known_int, require_dtype
from .registry import EvalError, Param, Primitive, ShapeError, register


def normalize_axes(op: str, x_rank: int, axes: Any, param: str = "axes") -> tuple[int, ...]:
    """`axes` (None, or ints possibly negative) -> sorted non-negative axes; E0305 when out of
    range or repeated."""
    if axes is None:
        return tuple(range(x_rank))
    seen: set[int] = set()
    for axis in axes:
        axis = known_int(op, param, axis)
        try:
            norm = normalize_axis(axis, x_rank)
        except IndexError:
            valid = f"valid axes are {-x_rank} to {x_rank - 1}" if x_rank else "a 0-d tensor"
            raise ShapeError(
                "E0305",
                f"axis {axis} is out of range for `{op}` of a rank {x_rank} tensor",
                kwarg=param,
                label=f"{valid}" if x_rank else "a 0-d tensor has no axes",
            ) from None
        if norm in seen:
            raise ShapeError(
                "E0305",
                f"axis {norm} appears twice in `{op}`",
                kwarg=param,
                label=f"axis {axis} repeats axis {norm}",
                help="list each axis once",
            )
        seen.add(norm)
    return tuple(sorted(seen))


def reduced_shape(shape: tuple, axes: tuple[int, ...], keep: bool) -> tuple:
    if keep:
        return tuple(Dim.of(1) if i in axes else d for i, d in enumerate(shape))
    return tuple(d for i, d in enumerate(shape) if i not in axes)


def _check_keep(op: str, keep: Any) -> bool:
    if not isinstance(keep, bool):
        raise ShapeError(
            "E0205",
            f"`keep` of `{op}` must be `true` or `false`, found `{keep}`",
            kwarg="keep",
            label="not a bool",
        )
    return keep


def input_elements(
    operands: list[TensorType], outputs: tuple[TensorType, ...], attrs: dict[str, Any]
) -> Any:
    """Cost of a reduction: one operation per input element."""
    return num_elements(operands[0].shape)


def _canonical_axes(ranks: list[int], attrs: dict[str, Any], op: str) -> dict[str, Any]:
    axes = attrs["axes"]
    if axes is None:
        return attrs
    return {**attrs, "axes": normalize_axes(op, ranks[0], axes)}


# ---------------------------------------------------------------------------
# reduce_*


def _identity(op: str, dtype: np.dtype) -> Any:
    """The value max/min of an empty axis gives (their identity)."""
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        return info.min if op == "reduce_max" else info.max
    return -np.inf if op == "reduce_max" else np.inf


def _reduce_values(op: str, x: np.ndarray, axes: Any, keep: bool) -> np.ndarray:
    axis = None if axes is None else tuple(axes)
    if op in ("reduce_max", "reduce_min"):
        data = x.astype(compute_dtype(x.dtype), copy=False)
        fn = np.max if op == "reduce_max" else np.min
        return fn(data, axis=axis, keepdims=keep, initial=_identity(op, data.dtype))
    is_float = x.dtype.kind not in "iub"
    data = x.astype(np.float64) if is_float else x
    if op == "reduce_prod":
        return np.prod(data, axis=axis, keepdims=keep, dtype=data.dtype)
    total = np.sum(data, axis=axis, keepdims=keep, dtype=data.dtype)
    if op == "reduce_sum":
        return total
    count = int(np.prod([x.shape[a] for a in (range(x.ndim) if axis is None else axis)]))
    return np.divide(total, count)  # 0 / 0 is nan for an empty axis


_REDUCTIONS = {
    "reduce_sum": (NUMERIC, "sum over the given axes"),
    "reduce_mean": (FLOAT, "arithmetic mean over the given axes; nan for an empty axis"),
    "reduce_max": (NUMERIC, "maximum over the given axes; nan propagates; -inf (int min) if empty"),
    "reduce_min": (NUMERIC, "minimum over the given axes; nan propagates; inf (int max) if empty"),
    "reduce_prod": (NUMERIC, "product over the given axes"),
}


def _reduction(name: str, allowed: frozenset[DType], doc: str) -> Primitive:
    shown = name.removeprefix("reduce_")  # messages use the name users call: `sum`

    def infer(operands: list[TensorType], attrs: dict[str, Any]) -> tuple[TensorType, ...]:
        (x,) = operands
        require_dtype(shown, x, allowed, 0)
        axes = normalize_axes(shown, x.rank, attrs["axes"])
        keep = _check_keep(shown, attrs["keep"])
        return (TensorType(x.dtype, reduced_shape(x.shape, axes, keep)),)

    def evaluate(arrays: list[np.ndarray], attrs: dict[str, Any]) -> tuple[np.ndarray, ...]:
        (x,) = arrays
        with np.errstate(all="ignore"):
            value = _reduce_values(name, x, attrs["axes"], attrs["keep"])
        return (as_result(value, DType.from_numpy(x.dtype)),)

    return Primitive(
        name=name,
        params=(
            Param("x", "tensor"),
            Param("axes", "axes", None, doc="an axis, a list of axes, or none for all"),
            Param("keep", "bool", False, doc="keep reduced axes with size 1"),
        ),
        infer=infer,
        evaluate=evaluate,
        doc=doc + " (every axis when none); `keep` leaves them with size 1",
        flops=input_elements,
        extra={
            "aliases": {"axis": "axes"},
            "canonical": lambda ranks, attrs: _canonical_axes(ranks, attrs, shown),
        },
    )


for _name, (_allowed, _doc) in _REDUCTIONS.items():
    register(_reduction(_name, _allowed, _doc))


# ---------------------------------------------------------------------------
# argmax, argmin


def _one_axis(op: str, rank: int, axis: Any) -> int:
    if isinstance(axis, bool) or not isinstance(axis, int):
        raise ShapeError(
            "E0205",
            f"`axis` of `{op}` must be an int, found `{axis}`",
            kwarg="axis",
            label="not an int",
        )
    return normalize_axes(op, rank, (axis,), "axis")[0]


def _arg_reduction(name: str) -> Primitive:
    fn = np.argmax if name == "argmax" else np.argmin

    def infer(operands: list[TensorType], attrs: dict[str, Any]) -> tuple[TensorType, ...]:
        (x,) = operands
        require_dtype(name, x, NUMERIC, 0)
        axis = _one_axis(name, x.rank, attrs["axis"])
        keep = _check_keep(name, attrs["keep"])
        return (TensorType(DType.I64, reduced_shape(x.shape, (axis,), keep)),)

    def evaluate(arrays: list[np.ndarray], attrs: dict[str, Any]) -> tuple[np.ndarray, ...]:
        (x,) = arrays
        axis = attrs["axis"]
        if x.shape[axis] == 0:
            raise EvalError("E0313", f"`{name}` over axis {axis}, which has size 0")
        data = x.astype(compute_dtype(x.dtype), copy=False)
        return (as_result(fn(data, axis=axis, keepdims=attrs["keep"]), DType.I64),)

    def canonical(ranks: list[int], attrs: dict[str, Any]) -> dict[str, Any]:
        return {**attrs, "axis": _one_axis(name, ranks[0], attrs["axis"])}

    what = "largest" if name == "argmax" else "smallest"
    return Primitive(
        name=name,
        params=(
            Param("x", "tensor"),
            Param("axis", "int", doc="the axis to search"),
            Param("keep", "bool", False, doc="keep the axis with size 1"),
        ),
        infer=infer,
        evaluate=evaluate,
        doc=f"i64 index of the {what} value along `axis`; ties give the first, a nan wins",
        flops=input_elements,
        extra={"canonical": canonical},
    )


register(_arg_reduction("argmax"))
register(_arg_reduction("argmin"))
