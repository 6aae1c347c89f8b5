"""conv, max_pool and avg_pool -> ONNX nodes with the reference's semantics.

f32 (and f16/bf16, computed in f32) conv and avg_pool are ONNX Conv and AveragePool.
onnxruntime has neither for f64, so f64 takes the reference's own route: the padded
input cut into one strided slice per kernel tap, then im2col and a MatMul (conv) or a
sum divided by the window's count (avg_pool). max_pool always takes the slices and a
chain of Max: onnxruntime's MaxPool neither propagates NaN nor returns -inf for a window
of -inf, and the reference does both.

Each lowering: (builder, node, input tensor names) -> output tensor names.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Sequence

import numpy as np

from ..dims import Dim
from ..graph import Node
from ..primitives.nn import Window, _conv_window, _pool_window
from ..types import DType
from .builder import OnnxBuilder, compute_dtype
from .ops_elementwise import Lowering


def _pad_spatial(b: OnnxBuilder, x: str, win: Window, fill: float, dtype: DType) -> str:
    if not any(win.pad_begin) and not any(win.pad_end):
        return x
    pads = b.ints([0, 0, *win.pad_begin, 0, 0, *win.pad_end])
    return b.op("Pad", x, pads, b.scalar(fill, dtype), mode="constant")


def _taps(
    b: OnnxBuilder, xp: str, win: Window, out_sizes: Sequence[Dim], first_axis: int = 2
) -> Iterator[str]:
    """One strided slice of the padded input per kernel tap, each shaped [..., *out]."""
    spatial = len(out_sizes)
    axes = b.ints(range(first_axis, first_axis + spatial))
    steps = b.ints(win.stride)
    for taps in itertools.product(*(range(int(k)) for k in win.kernel)):
        starts = [t * d for t, d in zip(taps, win.dilation, strict=True)]
        ends = [
            (Dim.of(n) - 1) * s + start + 1
            for start, s, n in zip(starts, win.stride, out_sizes, strict=True)
        ]
        yield b.op("Slice", xp, b.ints(starts), b.shape(ends), axes, steps)


def _sum(b: OnnxBuilder, parts: Iterator[str], combine: str = "Add") -> str:
    total = next(parts)
    for part in parts:
        total = b.op(combine, total, part)
    return total


def _conv(b: OnnxBuilder, node: Node, ins: list[str]) -> list[str]:
    xt, wt = (v.type for v in node.inputs)
    out = node.outputs[0].type
    spatial = xt.rank - 2
    kernel = [int(k) for k in wt.shape[2:]]
    win = _conv_window(spatial, kernel, node.attrs)
    groups = int(node.attrs["groups"])
    dtype = xt.dtype
    compute = compute_dtype(dtype)
    x, w = (b.cast(n, dtype, compute) for n in ins)
    if compute is not DType.F64:
        y = b.op(
            "Conv",
            x,
            w,
            kernel_shape=kernel,
            strides=list(win.stride),
            dilations=list(win.dilation),
            pads=[*win.pad_begin, *win.pad_end],
            group=groups,
        )
        return [b.cast(y, compute, dtype)]
    # im2col in f64, laid out as the reference's: [N, G, C/G * taps, L] and [G, O/G, C/G * taps]
    channels, out_channels = int(xt.shape[1]), int(wt.shape[0])
    taps = math.prod(kernel)
    xp = _pad_spatial(b, x, win, 0.0, compute)
    where = b.ints([2])
    cols = b.op(
        "Concat", *(b.op("Unsqueeze", t, where) for t in _taps(b, xp, win, out.shape[2:])), axis=2
    )
    inner = (channels // groups) * taps
    cols = b.op("Reshape", cols, b.ints([0, groups, inner, -1]))
    kernels = b.op("Reshape", w, b.ints([groups, out_channels // groups, inner]))
    y = b.op("MatMul", kernels, cols)
    return [b.op("Reshape", y, b.shape(out.shape, allow_infer=True))]


def _max_pool(b: OnnxBuilder, node: Node, ins: list[str]) -> list[str]:
    xt, out = node.inputs[0].type, node.outputs[0].type
    win = _pool_window(xt.rank - 2, node.attrs)
    compute = compute_dtype(xt.dtype)
    x = b.cast(ins[0], xt.dtype, compute)
    xp = _pad_spatial(b, x, win, -np.inf, compute)
    y = _sum(b, _taps(b, xp, win, out.shape[2:]), "Max")  # Max propagates NaN
    return [b.cast(y, compute, xt.dtype)]


def _avg_pool(b: OnnxBuilder, node: Node, ins: list[str]) -> list[str]:
    xt, out = node.inputs[0].type, node.outputs[0].type
    spatial = xt.rank - 2
    win = _pool_window(spatial, node.attrs)
    include = bool(node.attrs["count_include_pad"])
    compute = compute_dtype(xt.dtype)
    x = b.cast(ins[0], xt.dtype, compute)
    if compute is not DType.F64:
        y = b.op(
            "AveragePool",
            x,
            kernel_shape=[int(k) for k in win.kernel],
            strides=list(win.stride),
            pads=[*win.pad_begin, *win.pad_end],
            count_include_pad=int(include),
        )
        return [b.cast(y, compute, xt.dtype)]
    xp = _pad_spatial(b, x, win, 0.0, compute)
    total = _sum(b, _taps(b, xp, win, out.shape[2:]))
    if include:
        return [b.op("Div", total, b.scalar(math.prod(win.kernel), compute))]
    # the taps inside the unpadded input: the same sum over a padded mask of ones
    ones = b.op("ConstantOfShape", b.shape(xt.shape[2:]), value=_one(compute))
    mask = ones
    if any(win.pad_begin) or any(win.pad_end):
        pads = b.ints([*win.pad_begin, *win.pad_end])
        mask = b.op("Pad", ones, pads, b.scalar(0.0, compute), mode="constant")
    counts = _sum(b, _taps(b, mask, win, out.shape[2:], first_axis=0))
    return [b.op("Div", total, counts)]


def _one(dtype: DType):
    from onnx import numpy_helper

    return numpy_helper.from_array(np.ones(1, dtype=dtype.numpy))


LOWERINGS: dict[str, Lowering] = {
    "conv": _conv,
    "max_pool": _max_pool,
    "avg_pool": _avg_pool,
}
