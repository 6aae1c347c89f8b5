"""Neural-network primitives: conv, max_pool and avg_pool.

Shape rules: operand `TensorType`s + bound attributes -> output `TensorType`
(symbolic dims allowed; constants are checked). Reference semantics: numpy
arrays -> numpy arrays, matching PyTorch's conv1d/conv2d, max_pool1d/2d,
avg_pool1d/2d (ceil_mode=False). `pad` (constant padding) lives in gather.py
with the other data-movement ops and shares `pad_constant` from here.

Numerics: conv and avg_pool compute in the input dtype (f16 and bf16 in f32,
rounded once, as the other primitives do); max_pool is exact.

Layout is always channels-first: x is [N, C, L] (1-D) or [N, C, H, W] (2-D).
Window geometry (stride, padding, dilation, kernel) is written as one int for
every spatial axis or a list with one per axis; padding may also be a list of
2 * spatial ints, the begins for every axis then the ends (ONNX `pads` order).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..dims import Dim, dim_product
from ..shapes import shape_str
from ..types import TensorType
from .elementwise import compute_dtype
from .registry import EvalError, Param, Primitive, ShapeError, register

# Operand positions, for pointing diagnostics at the offending argument.
_X, _W = 0, 1


# ---------------------------------------------------------------------------
# Geometry attributes: raw binder values -> per-axis ints


def describe_value(value: Any) -> str:
    match value:
        case bool():
            return f"the bool `{str(value).lower()}`"
        case float():
            return f"the float `{value}`"
        case str():
            return f"the string {value!r}"
        case None:
            return "`none`"
        case list() | tuple():
            return "a list"
        case _:
            return f"`{value}`"


def _known_int(value: Any, name: str) -> int:
    """One geometry value (an int, or a Dim with a known value) -> int."""
    match value:
        case bool():
            pass
        case int():
            return value
        case np.integer():
            return int(value)
        case Dim() if value.is_const:
            return value.value
        case Dim():
            raise ShapeError(
                "E0312",
                f"`{name}` must be a known integer, found the symbolic dimension `{value}`",
                kwarg=name,
                label="symbolic value",
            )
    raise ShapeError(
        "E0205",
        f"expected an integer for `{name}`, found {describe_value(value)}",
        kwarg=name,
        label="expected an integer",
    )


def _axes_phrase(spatial: int) -> str:
    return "1 spatial axis" if spatial == 1 else f"{spatial} spatial axes"


def per_axis(value: Any, name: str, spatial: int, *, minimum: int) -> tuple[int, ...]:
    """An int or a list of `spatial` ints -> one int per spatial axis, each >= minimum."""
    items = list(value) if isinstance(value, list | tuple) else [value] * spatial
    if len(items) != spatial:
        raise ShapeError(
            "E0312",
            f"`{name}` has {len(items)} values but the input has {_axes_phrase(spatial)}",
            kwarg=name,
            label=f"expected {spatial} values",
            help=f"give one int for every spatial axis, or a list of {spatial}",
        )
    ints = tuple(_known_int(v, name) for v in items)
    for v in ints:
        if v < minimum:
            raise ShapeError(
                "E0312",
                f"`{name}` must be at least {minimum}, found {v}",
                kwarg=name,
                label=f"`{name}` of {v}",
            )
    return ints


def paddings(value: Any, spatial: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """`padding` as an int, a list per axis, or begins + ends -> (begins, ends)."""
    items = list(value) if isinstance(value, list | tuple) else [value] * spatial
    if len(items) == spatial:
        items = items + items
    if len(items) != 2 * spatial:
        raise ShapeError(
            "E0312",
            f"`padding` has {len(items)} values but the input has {_axes_phrase(spatial)}",
            kwarg="padding",
            label=f"expected 1, {spatial} or {2 * spatial} values",
            help=(
                f"give one int, one per spatial axis ({spatial}), or the begins then the "
                f"ends of every spatial axis ({2 * spatial})"
            ),
        )
    ints = tuple(_known_int(v, "padding") for v in items)
    for v in ints:
        if v < 0:
            raise ShapeError(
                "E0312",
                f"`padding` must not be negative, found {v}",
                kwarg="padding",
                label="negative padding",
                help="to crop, slice the input instead",
            )
    return ints[:spatial], ints[spatial:]


@dataclass(frozen=True, slots=True)
class Window:
    """The sliding-window geometry of one conv or pool, per spatial axis."""

    kernel: tuple  # tuple[Dim | int, ...]; conv kernels come from the weight's shape
    stride: tuple[int, ...]
    dilation: tuple[int, ...]
    pad_begin: tuple[int, ...]
    pad_end: tuple[int, ...]

    def extent(self, axis: int) -> Any:
        """The span one window covers on `axis` (kernel size with dilation)."""
        return (self.kernel[axis] - 1) * self.dilation[axis] + 1

    def output_shape(self, spatial_in: Sequence[Any]) -> tuple[Dim, ...]:
        """Input spatial dims -> output spatial dims, checking constant geometry."""
        out = []
        for axis, size in enumerate(spatial_in):
            size = Dim.of(size) if isinstance(size, int) else size
            padded = size + self.pad_begin[axis] + self.pad_end[axis]
            room = padded - self.extent(axis)
            if room.is_const and room.value < 0:
                raise ShapeError(
                    "E0312",
                    f"window of size {self.extent(axis)} does not fit in the padded input "
                    f"of size {padded} on axis {axis + 2}",
                    arg=_X,
                    label=f"size {size} on axis {axis + 2}",
                    notes=(
                        f"kernel {self.kernel[axis]}, dilation {self.dilation[axis]}, "
                        f"padding {self.pad_begin[axis]} + {self.pad_end[axis]}",
                    ),
                    help="use a smaller kernel or dilation, or pad the input",
                )
            out.append(room.floordiv(self.stride[axis]) + 1)
        return tuple(out)


def _spatial_rank(x: TensorType, op: str) -> int:
    if x.rank not in (3, 4):
        raise ShapeError(
            "E0304",
            f"`{op}` expects an input of rank 3 [N, C, L] or 4 [N, C, H, W], "
            f"found rank {x.rank} {shape_str(x.shape)}",
            arg=_X,
            label=f"rank {x.rank}",
        )
    return x.rank - 2


def _require_float(t: TensorType, op: str, arg: int, what: str) -> None:
    if not t.dtype.is_float:
        raise ShapeError(
            "E0202",
            f"`{op}` expects a float {what}, found {t.dtype}",
            arg=arg,
            label=f"{t.dtype} tensor",
            help="cast it first, for example with `cast(x, f32)`",
        )


# ---------------------------------------------------------------------------
# Sliding windows in numpy


def pad_constant(
    x: np.ndarray, begins: Sequence[int], ends: Sequence[int], fill: Any
) -> np.ndarray:
    """Pad the trailing len(begins) axes of x with `fill`, never mutating x."""
    lead = x.ndim - len(begins)
    shape = x.shape[:lead] + tuple(
        n + b + e for n, b, e in zip(x.shape[lead:], begins, ends, strict=True)
    )
    out = np.full(shape, fill, dtype=x.dtype)
    inner = tuple(slice(b, b + n) for b, n in zip(begins, x.shape[lead:], strict=True))
    out[(Ellipsis, *inner)] = x
    return out


def _window_taps(xp: np.ndarray, win: Window, out_sizes: Sequence[int]):
    """Padded input [N, C, *S] -> one strided view [N, C, *out] per kernel tap."""
    for taps in itertools.product(*(range(k) for k in win.kernel)):
        yield xp[
            (
                Ellipsis,
                *(
                    slice(t * d, t * d + s * (n - 1) + 1, s)
                    for t, d, s, n in zip(taps, win.dilation, win.stride, out_sizes, strict=True)
                ),
            )
        ]


def _eval_out_sizes(x: np.ndarray, win: Window) -> tuple[int, ...]:
    """Concrete output sizes; a run-time spatial size too small for the window is an error."""
    sizes = []
    for axis, n in enumerate(x.shape[2:]):
        room = n + win.pad_begin[axis] + win.pad_end[axis] - win.extent(axis)
        if room < 0:
            raise EvalError(
                "E0605",
                f"input of spatial size {n} on axis {axis + 2} is smaller than the window "
                f"of size {win.extent(axis)} (with padding {win.pad_begin[axis]} + {win.pad_end[axis]})",
            )
        sizes.append(room // win.stride[axis] + 1)
    return tuple(sizes)


# ---------------------------------------------------------------------------
# conv


def _groups(value: Any) -> int:
    groups = _known_int(value, "groups")
    if groups < 1:
        raise ShapeError(
            "E0312",
            f"`groups` must be at least 1, found {groups}",
            kwarg="groups",
            label=f"`groups` of {groups}",
        )
    return groups


def _conv_window(spatial: int, kernel: Sequence[Any], attrs: dict[str, Any]) -> Window:
    stride = per_axis(attrs["stride"], "stride", spatial, minimum=1)
    dilation = per_axis(attrs["dilation"], "dilation", spatial, minimum=1)
    begin, end = paddings(attrs["padding"], spatial)
    return Window(tuple(kernel), stride, dilation, begin, end)


def _conv_infer(operands: list[TensorType], attrs: dict[str, Any]) -> tuple[TensorType, ...]:
    x, w = operands
    spatial = _spatial_rank(x, "conv")
    if w.rank != x.rank:
        layout = "[O, C/groups, K]" if spatial == 1 else "[O, C/groups, KH, KW]"
        raise ShapeError(
            "E0304",
            f"`conv` weight must have rank {x.rank} {layout} for a {spatial}-D input, "
            f"found rank {w.rank} {shape_str(w.shape)}",
            arg=_W,
            label=f"rank {w.rank}",
            notes=(f"the input is {x}",),
        )
    _require_float(x, "conv", _X, "input")
    if w.dtype != x.dtype:
        raise ShapeError(
            "E0201",
            f"`conv` input and weight have different dtypes: {x.dtype} and {w.dtype}",
            arg=_W,
            label=f"{w.dtype} weight",
            help=f"cast the weight: `cast(w, {x.dtype})`",
        )
    groups = _groups(attrs["groups"])
    out_channels, group_channels = w.shape[0], w.shape[1]
    if out_channels.exact_div(groups) is None:
        raise ShapeError(
            "E0306",
            f"`conv` weight has {out_channels} output channels, not divisible by groups = {groups}",
            arg=_W,
            label=f"{out_channels} output channels",
            help="the weight's first dimension must be a multiple of `groups`",
        )
    expected = group_channels * groups
    if x.shape[1] != expected:
        per_group = f" ({group_channels} per group x {groups} groups)" if groups > 1 else ""
        raise ShapeError(
            "E0303",
            f"`conv` input has {x.shape[1]} channels but the weight expects {expected}{per_group}",
            arg=_W,
            label=f"weight for {expected} input channels",
            notes=(f"the input is {x} and the weight {w}",),
            help="the weight's second dimension times `groups` must equal the input's channels",
        )
    win = _conv_window(spatial, w.shape[2:], attrs)
    return (TensorType(x.dtype, (x.shape[0], out_channels, *win.output_shape(x.shape[2:]))),)


def _conv_eval(arrays: list[np.ndarray], attrs: dict[str, Any]) -> tuple[np.ndarray, ...]:
    # im2col: gather every kernel tap into columns, then one batched matmul per group.
    x, w = arrays
    win = _conv_window(x.ndim - 2, w.shape[2:], attrs)
    groups = _groups(attrs["groups"])
    out_sizes = _eval_out_sizes(x, win)
    batch, channels = x.shape[:2]
    out_channels, taps = w.shape[0], math.prod(w.shape[2:])
    compute = compute_dtype(x.dtype)
    xp = pad_constant(x, win.pad_begin, win.pad_end, 0)
    cols = np.empty((batch, channels, taps, *out_sizes), dtype=compute)
    for tap, view in enumerate(_window_taps(xp, win, out_sizes)):
        cols[:, :, tap] = view
    # [N, C, taps, *out] -> [N, G, C/G * taps, L]: channel-major, matching w's layout
    cols = cols.reshape(batch, groups, (channels // groups) * taps, math.prod(out_sizes))
    kernels = w.reshape(groups, out_channels // groups, (channels // groups) * taps)
    out = np.matmul(kernels.astype(compute, copy=False), cols)
    return (out.reshape(batch, out_channels, *out_sizes).astype(x.dtype, copy=False),)


def _conv_flops(
    operands: list[TensorType], outputs: tuple[TensorType, ...], attrs: dict[str, Any]
) -> Any:
    w = operands[_W]
    out = outputs[0]
    # one multiply and one add per output element per weight tap of its group
    return dim_product([2, *out.shape, *w.shape[1:]])


register(
    Primitive(
        name="conv",
        params=(
            Param("x", "tensor", doc="input [N, C, L] or [N, C, H, W]"),
            Param("w", "tensor", doc="weight [O, C/groups, K] or [O, C/groups, KH, KW]"),
            Param("stride", "any", 1, doc="an int or one per spatial axis"),
            Param("padding", "any", 0, doc="an int, one per spatial axis, or begins then ends"),
            Param("dilation", "any", 1, doc="an int or one per spatial axis"),
            Param("groups", "int", 1, doc="channel groups; C and O must be multiples"),
        ),
        infer=_conv_infer,
        evaluate=_conv_eval,
        flops=_conv_flops,
        doc="1-D or 2-D cross-correlation without bias, as PyTorch conv1d/conv2d and ONNX Conv",
    )
)


# ---------------------------------------------------------------------------
# max_pool and avg_pool


def _pool_window(spatial: int, attrs: dict[str, Any]) -> Window:
    kernel = per_axis(attrs["kernel"], "kernel", spatial, minimum=1)
    stride = (
        kernel
        if attrs["stride"] is None
        else per_axis(attrs["stride"], "stride", spatial, minimum=1)
    )
    dilation = per_axis(attrs.get("dilation", 1), "dilation", spatial, minimum=1)
    begin, end = paddings(attrs["padding"], spatial)
    # PyTorch's limit: with at most half a kernel of padding every window overlaps the input
    # (count_include_pad=false never divides by zero) and the op exports as is
    for k, b, e in zip(kernel, begin, end, strict=True):
        if max(b, e) > k // 2:
            raise ShapeError(
                "E0312",
                f"pooling padding of {max(b, e)} is more than half the kernel size {k}",
                kwarg="padding",
                label=f"padding {max(b, e)}",
                help=f"pad by at most {k // 2}, or pad the input explicitly with `pad`",
            )
    return Window(kernel, stride, dilation, begin, end)


def _pool_infer(op: str):
    def infer(operands: list[TensorType], attrs: dict[str, Any]) -> tuple[TensorType, ...]:
        (x,) = operands
        spatial = _spatial_rank(x, op)
        _require_float(x, op, _X, "input")
        win = _pool_window(spatial, attrs)
        include = attrs.get("count_include_pad", False)
        if not isinstance(include, bool):
            raise ShapeError(
                "E0205",
                f"`count_include_pad` must be `true` or `false`, found {describe_value(include)}",
                kwarg="count_include_pad",
                label="not a bool",
            )
        return (TensorType(x.dtype, (*x.shape[:2], *win.output_shape(x.shape[2:]))),)

    return infer


def _max_pool_eval(arrays: list[np.ndarray], attrs: dict[str, Any]) -> tuple[np.ndarray, ...]:
    (x,) = arrays
    win = _pool_window(x.ndim - 2, attrs)
    out_sizes = _eval_out_sizes(x, win)
    xp = pad_constant(x, win.pad_begin, win.pad_end, -np.inf)
    taps = _window_taps(xp, win, out_sizes)
    out = next(taps).copy()
    for view in taps:
        np.maximum(out, view, out=out)  # propagates NaN, as PyTorch does
    return (out,)


def _window_counts(x: np.ndarray, win: Window, out_sizes: Sequence[int]) -> np.ndarray:
    """How many taps of each window fall inside the unpadded input, shaped [*out]."""
    counts = np.ones((), dtype=np.int64)
    for axis, (n, k, s, b, m) in enumerate(
        zip(x.shape[2:], win.kernel, win.stride, win.pad_begin, out_sizes, strict=True)
    ):
        starts = np.arange(m) * s - b
        inside = np.minimum(starts + k, n) - np.maximum(starts, 0)
        counts = np.multiply.outer(counts, inside) if axis else inside
    return counts


def _avg_pool_eval(arrays: list[np.ndarray], attrs: dict[str, Any]) -> tuple[np.ndarray, ...]:
    (x,) = arrays
    win = _pool_window(x.ndim - 2, attrs)
    out_sizes = _eval_out_sizes(x, win)
    compute = compute_dtype(x.dtype)
    xp = pad_constant(x, win.pad_begin, win.pad_end, 0)
    taps = _window_taps(xp, win, out_sizes)
    total = next(taps).astype(compute)
    for view in taps:
        np.add(total, view, out=total)
    if attrs["count_include_pad"]:
        divisor = np.asarray(math.prod(win.kernel), dtype=compute)
    else:
        divisor = _window_counts(x, win, out_sizes).astype(compute)
    return ((total / divisor).astype(x.dtype, copy=False),)


def _pool_flops(
    operands: list[TensorType], outputs: tuple[TensorType, ...], attrs: dict[str, Any]
) -> Any:
    kernel = per_axis(attrs["kernel"], "kernel", operands[_X].rank - 2, minimum=1)
    return dim_product([*outputs[0].shape, *kernel])


_POOL_DOC = "an int or one per spatial axis"

register(
    Primitive(
        name="max_pool",
        params=(
            Param("x", "tensor", doc="input [N, C, L] or [N, C, H, W]"),
            Param("kernel", "any", doc=_POOL_DOC),
            Param("stride", "any", None, doc=_POOL_DOC + "; none means the kernel"),
            Param("padding", "any", 0, doc="as conv's, at most half the kernel; pads with -inf"),
            Param("dilation", "any", 1, doc=_POOL_DOC),
        ),
        infer=_pool_infer("max_pool"),
        evaluate=_max_pool_eval,
        flops=_pool_flops,
        doc="1-D or 2-D max pooling, as PyTorch max_pool1d/2d (ceil_mode=false) and ONNX MaxPool",
    )
)

register(
    Primitive(
        name="avg_pool",
        params=(
            Param("x", "tensor", doc="input [N, C, L] or [N, C, H, W]"),
            Param("kernel", "any", doc=_POOL_DOC),
            Param("stride", "any", None, doc=_POOL_DOC + "; none means the kernel"),
            Param("padding", "any", 0, doc="as conv's, at most half the kernel; pads with zeros"),
            Param(
                "count_include_pad",
                "bool",
                True,
                doc="divide by the kernel size, not the taps inside",
            ),
        ),
        infer=_pool_infer("avg_pool"),
        evaluate=_avg_pool_eval,
        flops=_pool_flops,
        doc="1-D or 2-D average pooling, as PyTorch avg_pool1d/2d (ceil_mode=false) and ONNX AveragePool",
    )
)
