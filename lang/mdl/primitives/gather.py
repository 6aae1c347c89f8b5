"""Data-movement primitives without arithmetic: gather and pad.

Shape rules: operand `TensorType`s + bound attributes -> output `TensorType`.
Reference semantics: numpy arrays -> numpy arrays, matching ONNX `Gather`
(negative indices count from the end) and ONNX `Pad` in constant mode. An
index outside its axis is an `EvalError` (E0607), never a wild read.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..dims import Dim
from ..shapes import normalize_axis
from ..types import DType, TensorType
from .nn import describe_value, pad_constant
from .registry import EvalError, Param, Primitive, ShapeError, register

# ---------------------------------------------------------------------------
# gather


def _gather_axis(axis: Any, rank: int) -> int:
    if isinstance(axis, bool) or not isinstance(axis, int | np.integer):
        raise ShapeError(
            "E0205",
            f"`axis` must be an int, found {describe_value(axis)}",
            kwarg="axis",
            label="expected an int",
        )
    try:
        return normalize_axis(int(axis), rank)
    except IndexError as err:
        raise ShapeError("E0305", str(err), kwarg="axis", label=f"axis {axis}") from None


def _gather_infer(operands: list[TensorType], attrs: dict[str, Any]) -> tuple[TensorType, ...]:
    table, indices = operands
    if not indices.dtype.is_int:
        raise ShapeError(
            "E0202",
            f"`gather` indices must be i32 or i64, found {indices.dtype}",
            arg=1,
            label=f"{indices.dtype} indices",
            help="cast them first: `cast(indices, i64)`",
        )
    axis = _gather_axis(attrs["axis"], table.rank)
    shape = (*table.shape[:axis], *indices.shape, *table.shape[axis + 1 :])
    return (TensorType(table.dtype, shape),)


def _gather_eval(arrays: list[np.ndarray], attrs: dict[str, Any]) -> tuple[np.ndarray, ...]:
    table, indices = arrays
    axis = _gather_axis(attrs["axis"], table.ndim)
    size = table.shape[axis]
    outside = (indices < -size) | (indices >= size)
    if outside.any():
        bad = int(indices[outside].flat[0])
        raise EvalError("E0607", f"index {bad} out of range for axis {axis} of size {size}")
    positions = np.where(indices < 0, indices + size, indices)
    return (np.take(table, positions, axis=axis),)


register(
    Primitive(
        name="gather",
        params=(
            Param("table", "tensor", doc="the tensor to pick from"),
            Param("indices", "tensor", doc="i32 or i64 of any shape; negative counts from the end"),
            Param("axis", "int", 0, doc="the axis of `table` the indices select along"),
        ),
        infer=_gather_infer,
        evaluate=_gather_eval,
        flops=lambda operands, outputs, attrs: 0,
        doc="pick slices of `table` along `axis`, as ONNX Gather and torch.index_select "
        "(an embedding lookup is gather(weight, ids))",
    )
)


# ---------------------------------------------------------------------------
# pad


def _pad_amounts(pads: Any, rank: int) -> tuple[list[Dim], list[Dim]]:
    """`pads` (2 * rank ints or Dims, begins then ends) -> (begins, ends) as Dims."""
    if not isinstance(pads, list | tuple):
        raise ShapeError(
            "E0205",
            f"`pads` must be a list of {2 * rank} dims, found {describe_value(pads)}",
            kwarg="pads",
            label="expected a list",
        )
    if len(pads) != 2 * rank:
        raise ShapeError(
            "E0304",
            f"`pads` has {len(pads)} values but the input has rank {rank}",
            kwarg="pads",
            label=f"expected {2 * rank} values",
            help=f"give {2 * rank} values: the begins of every axis, then the ends",
        )
    amounts = []
    for v in pads:
        if isinstance(v, bool) or not isinstance(v, int | np.integer | Dim):
            raise ShapeError(
                "E0205",
                f"`pads` must hold dims, found {describe_value(v)}",
                kwarg="pads",
                label="expected a dim",
            )
        amount = Dim.of(v)
        if amount.is_const and amount.value < 0:
            raise ShapeError(
                "E0310",
                f"`pads` must not be negative, found {amount}",
                kwarg="pads",
                label="negative padding",
                help="to crop, slice the input instead",
            )
        amounts.append(amount)
    return amounts[:rank], amounts[rank:]


def _pad_fill(dtype: DType, value: Any) -> Any:
    """The pad value as a scalar of `dtype`; ShapeError if it is not representable."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ShapeError(
            "E0205",
            f"`value` must be a number, found {describe_value(value)}",
            kwarg="value",
            label="expected a number",
        )
    if dtype.is_float:
        return dtype.numpy.type(value)
    integral = math.isfinite(value) and float(value).is_integer()
    if dtype is DType.BOOL:
        if not (integral and value in (0, 1)):
            raise ShapeError(
                "E0202",
                f"cannot pad a bool tensor with {value}",
                kwarg="value",
                label="not 0 or 1",
                help="pad with 0 (false) or 1 (true)",
            )
        return np.bool_(value)
    info = np.iinfo(dtype.numpy)
    if not (integral and info.min <= value <= info.max):
        raise ShapeError(
            "E0202",
            f"cannot pad a {dtype} tensor with {value}",
            kwarg="value",
            label=f"not a {dtype} value",
            help="pad an integer tensor with an integer",
        )
    return dtype.numpy.type(int(value))


def _pad_infer(operands: list[TensorType], attrs: dict[str, Any]) -> tuple[TensorType, ...]:
    (x,) = operands
    begins, ends = _pad_amounts(attrs["pads"], x.rank)
    _pad_fill(x.dtype, attrs["value"])
    shape = tuple(d + b + e for d, b, e in zip(x.shape, begins, ends, strict=True))
    return (TensorType(x.dtype, shape),)


def _pad_eval(arrays: list[np.ndarray], attrs: dict[str, Any]) -> tuple[np.ndarray, ...]:
    (x,) = arrays
    begins, ends = _pad_amounts(attrs["pads"], x.ndim)
    fill = _pad_fill(DType.from_numpy(x.dtype), attrs["value"])
    return (pad_constant(x, [int(b) for b in begins], [int(e) for e in ends], fill),)


register(
    Primitive(
        name="pad",
        params=(
            Param("x", "tensor"),
            Param("pads", "dims", doc="2 * rank amounts: the begins of every axis, then the ends"),
            Param("value", "float", 0.0, doc="the constant written into the border"),
        ),
        infer=_pad_infer,
        evaluate=_pad_eval,
        flops=lambda operands, outputs, attrs: 0,
        doc="constant padding, as ONNX Pad (mode constant) and torch.nn.functional.pad",
    )
)
