"""Layout, gather, pad, reductions and matmul -> ONNX nodes with the reference's semantics.

Shapes come from the mdl types of the node's outputs, where every `-1` and default is
already resolved; a symbolic dim is computed at run time from the model inputs (see
builder.py). Float reductions accumulate in f64 and round once, as the reference does;
max, min, argmax and argmin propagate NaN as numpy does (onnxruntime's kernels skip it).

Each lowering: (builder, node, input tensor names) -> output tensor names.
"""

from __future__ import annotations

import numpy as np

from ..dims import Dim
from ..graph import Node
from ..primitives.gather import _pad_fill
from ..types import DType
from .builder import ONNX_DTYPES, OnnxBuilder, compute_dtype
from .ops_elementwise import Lowering


def _axis(axis: int, rank: int) -> int:
    return axis + rank if axis < 0 else axis


def _no_bf16(b: OnnxBuilder, dtype: DType, ins: list[str], fn) -> str:
    """`fn(ins)` in f32 when `dtype` is bf16 (onnxruntime lacks the kernel); exact for data
    movement, every bf16 value being an f32 value."""
    if dtype is not DType.BF16:
        return fn(ins)
    return b.cast(fn([b.cast(n, dtype, DType.F32) for n in ins]), DType.F32, dtype)


def _reshape(b: OnnxBuilder, node: Node, ins: list[str]) -> list[str]:
    return [b.op("Reshape", ins[0], b.shape(node.outputs[0].type.shape, allow_infer=True))]


def _transpose(b: OnnxBuilder, node: Node, ins: list[str]) -> list[str]:
    rank = node.inputs[0].type.rank
    perm = node.attrs.get("perm")
    order = list(reversed(range(rank))) if perm is None else [_axis(int(p), rank) for p in perm]
    return [b.op("Transpose", ins[0], perm=order)]


def _expand(b: OnnxBuilder, node: Node, ins: list[str]) -> list[str]:
    x, out = node.inputs[0].type, node.outputs[0].type
    offset = out.rank - x.rank
    # a 1 in Expand's shape keeps the input's dim: no run-time size for dims that stay
    target = [
        Dim.of(1) if i >= offset and x.shape[i - offset] == d else d
        for i, d in enumerate(out.shape)
    ]
    shape = b.shape(target)
    return [_no_bf16(b, x.dtype, ins, lambda v: b.op("Expand", v[0], shape))]


def _concat(b: OnnxBuilder, node: Node, ins: list[str]) -> list[str]:
    axis = _axis(int(node.attrs["axis"]), node.outputs[0].type.rank)
    return [b.op("Concat", *ins, axis=axis)]


def _stack(b: OnnxBuilder, node: Node, ins: list[str]) -> list[str]:
    axis = _axis(int(node.attrs["axis"]), node.outputs[0].type.rank)
    where = b.ints([axis])
    return [b.op("Concat", *(b.op("Unsqueeze", x, where) for x in ins), axis=axis)]


def _split(b: OnnxBuilder, node: Node, ins: list[str]) -> list[str]:
    axis = _axis(int(node.attrs["axis"]), node.inputs[0].type.rank)
    if len(node.outputs) == 1:
        return [ins[0]]  # the same tensor: no node (onnxruntime mis-merges Identities)
    sizes = b.shape([v.type.shape[axis] for v in node.outputs])
    return b.node("Split", [ins[0], sizes], len(node.outputs), axis=axis)


def _slice(b: OnnxBuilder, node: Node, ins: list[str]) -> list[str]:
    x = node.inputs[0].type
    attrs = node.attrs
    axes = [
        i
        for i, (d, start, stop, step) in enumerate(
            zip(x.shape, attrs["starts"], attrs["stops"], attrs["steps"], strict=True)
        )
        if not (Dim.of(start) == 0 and Dim.of(stop) == d and int(step) == 1)
    ]
    if not axes:
        return [ins[0]]  # the same tensor: no node (onnxruntime mis-merges Identities)
    starts = b.shape([Dim.of(attrs["starts"][i]) for i in axes])
    stops = b.shape([Dim.of(attrs["stops"][i]) for i in axes])
    steps = b.ints([int(attrs["steps"][i]) for i in axes])
    return [b.op("Slice", ins[0], starts, stops, b.ints(axes), steps)]


def _gather(b: OnnxBuilder, node: Node, ins: list[str]) -> list[str]:
    # ONNX Gather takes negative indices as the reference does and rejects indices
    # outside the axis at run time, as the reference does (E0607)
    axis = _axis(int(node.attrs["axis"]), node.inputs[0].type.rank)
    return [b.op("Gather", ins[0], ins[1], axis=axis)]


def _pad(b: OnnxBuilder, node: Node, ins: list[str]) -> list[str]:
    x = node.inputs[0].type
    begins = [Dim.of(p) for p in node.attrs["pads"][: x.rank]]
    ends = [Dim.of(p) for p in node.attrs["pads"][x.rank :]]
    pads = b.shape(begins + ends)
    compute = DType.F32 if x.dtype is DType.BF16 else x.dtype
    fill = b.const(np.asarray(_pad_fill(x.dtype, node.attrs["value"])).astype(compute.numpy))
    return [_no_bf16(b, x.dtype, ins, lambda v: b.op("Pad", v[0], pads, fill, mode="constant"))]


# --- reductions -------------------------------------------------------------------------------

_REDUCE = {
    "reduce_sum": "ReduceSum",
    "reduce_mean": "ReduceMean",
    "reduce_max": "ReduceMax",
    "reduce_min": "ReduceMin",
    "reduce_prod": "ReduceProd",
}


def _axes_of(node: Node) -> list[int]:
    rank = node.inputs[0].type.rank
    axes = node.attrs["axes"]
    return list(range(rank)) if axes is None else sorted(_axis(int(a), rank) for a in axes)


def _any_nan(b: OnnxBuilder, x: str, axes: str, keep: int) -> str:
    mask = b.op("Cast", b.op("IsNaN", x), to=ONNX_DTYPES[DType.I32])  # onnxruntime reduces no bools
    return b.op("Greater", b.op("ReduceMax", mask, axes, keepdims=keep), b.scalar(0, DType.I32))


def _reduce(b: OnnxBuilder, node: Node, ins: list[str]) -> list[str]:
    dtype = node.inputs[0].type.dtype
    axes = _axes_of(node)
    keep = int(bool(node.attrs["keep"]))
    if not axes:  # nothing to reduce: ONNX would read empty axes as all of them
        return [ins[0]]  # the same tensor: no node (onnxruntime mis-merges Identities)
    axes_name = b.ints(axes)
    onnx_op = _REDUCE[node.op]
    if not dtype.is_float:
        if node.op in ("reduce_sum", "reduce_prod"):
            return [_wrapping_reduce(b, node, ins[0], axes)]
        return [b.op(onnx_op, ins[0], axes_name, keepdims=keep)]
    if node.op in ("reduce_max", "reduce_min"):
        compute = compute_dtype(dtype)
        x = b.cast(ins[0], dtype, compute)
        value = b.op(onnx_op, x, axes_name, keepdims=keep)
        nan = b.scalar(np.nan, compute)
        value = b.op("Where", _any_nan(b, x, axes_name, keep), nan, value)
        return [b.cast(value, compute, dtype)]
    # sums, means and products of floats accumulate in f64 and round once, as the reference
    x = b.cast(ins[0], dtype, DType.F64)
    return [b.cast(b.op(onnx_op, x, axes_name, keepdims=keep), DType.F64, dtype)]


def _wrapping_reduce(b: OnnxBuilder, node: Node, x: str, axes: list[int]) -> str:
    """An integer sum or product that wraps as the reference's (onnxruntime's ReduceSum and
    ReduceProd saturate): a Scan adding or multiplying the slices along the reduced axes,
    moved to the front and flattened into one."""
    from onnx import helper, numpy_helper

    xt = node.inputs[0].type
    dtype = ONNX_DTYPES[xt.dtype]
    kept = [a for a in range(xt.rank) if a not in axes]
    moved = b.op("Transpose", x, perm=axes + kept) if axes != list(range(len(axes))) else x
    rest = b.op("Shape", moved, start=len(axes))
    flat = b.op("Reshape", moved, b.op("Concat", b.ints([-1]), rest, axis=0))
    start = 0 if node.op == "reduce_sum" else 1
    initial = b.op(
        "ConstantOfShape", rest, value=numpy_helper.from_array(np.full(1, start, xt.dtype.numpy))
    )
    combine = "Add" if node.op == "reduce_sum" else "Mul"
    body = helper.make_graph(
        [helper.make_node(combine, ["acc", "item"], ["next"])],
        f"{node.op}_step",
        [helper.make_tensor_value_info(n, dtype, None) for n in ("acc", "item")],
        [helper.make_tensor_value_info("next", dtype, None)],
    )
    total = b.op("Scan", initial, flat, body=body, num_scan_inputs=1)
    if node.attrs["keep"]:
        total = b.op("Unsqueeze", total, b.ints(axes))
    return total


def _arg_reduce(b: OnnxBuilder, node: Node, ins: list[str]) -> list[str]:
    dtype = node.inputs[0].type.dtype
    rank = node.inputs[0].type.rank
    axis = _axis(int(node.attrs["axis"]), rank)
    keep = int(bool(node.attrs["keep"]))
    onnx_op = "ArgMax" if node.op == "argmax" else "ArgMin"
    compute = compute_dtype(dtype)
    x = b.cast(ins[0], dtype, compute)
    index = b.op(onnx_op, x, axis=axis, keepdims=keep, select_last_index=0)
    if not dtype.is_float:
        return [index]
    # numpy: the first NaN wins
    mask = b.op("Cast", b.op("IsNaN", x), to=ONNX_DTYPES[DType.I32])
    first_nan = b.op("ArgMax", mask, axis=axis, keepdims=keep, select_last_index=0)
    return [b.op("Where", _any_nan(b, x, b.ints([axis]), keep), first_nan, index)]


def _matmul(b: OnnxBuilder, node: Node, ins: list[str]) -> list[str]:
    dtype = node.inputs[0].type.dtype
    compute = compute_dtype(dtype)
    x, y = (b.cast(n, dtype, compute) for n in ins)
    return [b.cast(b.op("MatMul", x, y), compute, dtype)]


LOWERINGS: dict[str, Lowering] = {
    "reshape": _reshape,
    "transpose": _transpose,
    "expand": _expand,
    "concat": _concat,
    "stack": _stack,
    "split": _split,
    "slice": _slice,
    "gather": _gather,
    "pad": _pad,
    **{op: _reduce for op in _REDUCE},
    "argmax": _arg_reduce,
    "argmin": _arg_reduce,
    "matmul": _matmul,
}
