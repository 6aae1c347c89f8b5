"""Lowerings of conv, max_pool and avg_pool: graph node -> direct loop nests.

One loop per output element (batch, channel, spatial positions), then loops
over the input channels of its group and the kernel taps. Padding is never
materialised: each kernel-tap loop runs only over the taps whose input
coordinate lies inside the input (its bounds clamped per output position),
which is what zero padding (conv, avg_pool) and -inf padding (max_pool) mean.
Semantics are those of `primitives/nn.py`: PyTorch cross-correlation, NaN
propagating max, avg_pool dividing by the kernel size or by the taps inside.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ...dims import Dim
from ...graph import Node
from ...primitives.nn import Window, paddings, per_axis
from ...types import DType
from .. import loopir as ir
from . import lowering
from .conv_shifted import shifted_conv_body
from .half import f32_result, rounded_into, widened

SHIFTED = True  # convs without im2col (conv_shifted.py); tests compare both paths

I64 = DType.I64


def _bin(op: str, a: ir.Expr, b: ir.Expr) -> ir.Expr:
    return ir.Bin(op, a, b, DType.BOOL if op in ir.COMPARISONS else a.dtype)


def _sub(a: ir.Expr, b: ir.Expr) -> ir.Expr:
    if isinstance(b, ir.Const) and b.value == 0:
        return a
    return _bin("sub", a, b)


def _ceildiv(a: ir.Expr, d: int) -> ir.Expr:
    """ceil(a / d) for d >= 1, from floor division (numpy semantics, so also for a < 0)."""
    if d == 1:
        return a
    return _bin("floordiv", ir.add(a, ir.idx(d - 1)), ir.idx(d))


def _acc_dtype(dtype: DType) -> DType:
    # the reference computes f16 and bf16 in f32, rounded once
    return DType.F32 if dtype in (DType.F16, DType.BF16) else dtype


# ---------------------------------------------------------------- geometry


def _int_list(value: object, name: str, spatial: int) -> tuple[int, ...]:
    return per_axis(value, name, spatial, minimum=1)


def _conv_window(spatial: int, kernel: Sequence[Dim], attrs: dict) -> Window:
    begin, end = paddings(attrs.get("padding", 0), spatial)
    return Window(
        tuple(kernel),
        _int_list(attrs.get("stride", 1), "stride", spatial),
        _int_list(attrs.get("dilation", 1), "dilation", spatial),
        begin,
        end,
    )


def _pool_window(spatial: int, attrs: dict) -> Window:
    kernel = _int_list(attrs["kernel"], "kernel", spatial)
    stride = attrs.get("stride")
    begin, end = paddings(attrs.get("padding", 0), spatial)
    return Window(
        tuple(Dim.of(k) for k in kernel),
        kernel if stride is None else _int_list(stride, "stride", spatial),
        _int_list(attrs.get("dilation", 1), "dilation", spatial),
        begin,
        end,
    )


@dataclass(frozen=True, slots=True)
class _TapRange:
    """The kernel taps of one axis whose input coordinate is inside: start <= t < stop."""

    start: ir.Expr
    stop: ir.Expr


def _tap_ranges(
    ctx, win: Window, in_sizes: Sequence[Dim], out_vars: Sequence[ir.Expr]
) -> tuple[list[ir.Stmt], list[_TapRange]]:
    """Per spatial axis, the clamped tap range of the window at output position `out_vars`.

    Input coordinate of tap t: v * stride - pad_begin + t * dilation, inside when it is in
    [0, size). Solving for t gives ceil((pad_begin - v*stride) / dilation) <= t and
    t < ceil((size + pad_begin - v*stride) / dilation), clamped to [0, kernel).
    """
    stmts: list[ir.Stmt] = []
    ranges = []
    for axis, (size, v) in enumerate(zip(in_sizes, out_vars, strict=True)):
        kernel = ir.dim(win.kernel[axis])
        begin, end = win.pad_begin[axis], win.pad_end[axis]
        if begin == 0 and end == 0:
            # the output size formula keeps every window inside the input
            ranges.append(_TapRange(ir.idx(0), kernel))
            continue
        stride, dilation = win.stride[axis], win.dilation[axis]
        offset = _sub(ir.idx(begin), ir.mul(v, ir.idx(stride)))  # pad_begin - v*stride
        lo = _bin("max", ir.idx(0), _ceildiv(offset, dilation))
        hi = _bin("min", kernel, _ceildiv(ir.add(ir.dim(size), offset), dilation))
        lo_name, hi_name = ctx.fresh("tap_lo"), ctx.fresh("tap_hi")
        stmts += [ir.Local(lo_name, I64, lo), ir.Local(hi_name, I64, hi)]
        ranges.append(_TapRange(ir.Var(lo_name), ir.Var(hi_name)))
    return stmts, ranges


def _input_coords(
    win: Window, out_vars: Sequence[ir.Expr], taps: Sequence[ir.Expr]
) -> list[ir.Expr]:
    return [
        ir.add(
            _sub(ir.mul(v, ir.idx(win.stride[a])), ir.idx(win.pad_begin[a])),
            ir.mul(t, ir.idx(win.dilation[a])),
        )
        for a, (v, t) in enumerate(zip(out_vars, taps, strict=True))
    ]


def _window_fits_check(ctx, win: Window, in_sizes: Sequence[Dim]) -> list[ir.Stmt]:
    """Run-time E0605 for symbolic spatial sizes too small for the window (compile time
    already rejects constant ones)."""
    stmts: list[ir.Stmt] = []
    for axis, size in enumerate(in_sizes):
        room = Dim.of(size) + win.pad_begin[axis] + win.pad_end[axis] - win.extent(axis)
        if room.is_const:
            continue
        code = ctx.error(
            f"input of spatial size {{0}} on axis {axis + 2} is smaller than the window "
            f"of size {{1}} (with padding {win.pad_begin[axis]} + {win.pad_end[axis]})",
            "E0605",
        )
        extent = ir.dim(Dim.of(win.extent(axis)))
        stmts.append(
            ir.If(
                _bin("lt", ir.dim(room), ir.idx(0)),
                (ir.Fail(code, (ir.dim(size), extent)),),
            )
        )
    return stmts


def _nest(
    names: Sequence[str],
    starts: Sequence[ir.Expr],
    stops: Sequence[ir.Expr],
    body: Sequence[ir.Stmt],
) -> tuple[ir.Stmt, ...]:
    out = tuple(body)
    for name, start, stop in reversed(list(zip(names, starts, stops, strict=True))):
        out = (ir.For(name, start, stop, out),)
    return out


def _windowed(
    ctx,
    node: Node,
    win: Window,
    lead: Sequence[tuple[str, ir.Expr]],
    per_output: Callable[[list[ir.Expr], list[ir.Expr], list[_TapRange]], list[ir.Stmt]],
) -> tuple[ir.Stmt, ...]:
    """Loops over `lead` (name, stop) then every output spatial position, each running
    `per_output(lead_vars, out_vars, tap_ranges)`."""
    x = node.inputs[0]
    in_sizes = ctx.shape(x)[2:]
    out_sizes = ctx.shape(node.outputs[0])[2:]
    spatial_names = [ctx.fresh(f"s{a}_") for a in range(len(out_sizes))]
    lead_vars: list[ir.Expr] = [ir.Var(name) for name, _ in lead]
    out_vars: list[ir.Expr] = [ir.Var(n) for n in spatial_names]
    range_stmts, ranges = _tap_ranges(ctx, win, in_sizes, out_vars)
    body = [*range_stmts, *per_output(lead_vars, out_vars, ranges)]
    names = [name for name, _ in lead] + spatial_names
    stops = [stop for _, stop in lead] + [ir.dim(d) for d in out_sizes]
    loops = _nest(names, [ir.idx(0)] * len(names), stops, body)
    # batch entries (the outermost lead loop) write disjoint outputs: split across threads
    loops = (dataclasses.replace(loops[0], parallel=True), *loops[1:])
    return (*_window_fits_check(ctx, win, in_sizes), *loops)


# ---------------------------------------------------------------- conv


@lowering("conv")
def lower_conv(ctx, node: Node) -> tuple[ir.Stmt, ...]:
    x, w = node.inputs
    (out,) = node.outputs
    x_shape, w_shape, out_shape = ctx.shape(x), ctx.shape(w), ctx.shape(out)
    spatial = len(x_shape) - 2
    win = _conv_window(spatial, w_shape[2:], node.attrs)
    # a single int: `per_axis` with one axis reads it (a known Dim too) like the geometry
    groups = per_axis(node.attrs.get("groups", 1), "groups", 1, minimum=1)[0]
    out_per_group = w_shape[0].exact_div(groups)
    in_per_group = w_shape[1]
    dtype, acc_dtype = x.type.dtype, _acc_dtype(x.type.dtype)
    x_buf, w_buf, out_buf = ctx.buf(x), ctx.buf(w), ctx.buf(out)
    n, g, oo, c = ctx.fresh("n"), ctx.fresh("g"), ctx.fresh("o"), ctx.fresh("c")
    acc = ctx.fresh("acc")
    tap_names = [ctx.fresh(f"k{a}_") for a in range(spatial)]
    padded = any(win.pad_begin) or any(win.pad_end)

    def per_output(lead: list[ir.Expr], pos: list[ir.Expr], ranges: list[_TapRange]):
        batch, group, o_in_group = lead
        out_channel = ir.add(ir.mul(group, ir.dim(out_per_group)), o_in_group)
        in_channel = ir.add(ir.mul(group, ir.dim(in_per_group)), ir.Var(c))
        taps: list[ir.Expr] = [ir.Var(t) for t in tap_names]
        coords = _input_coords(win, pos, taps)
        in_sizes = x_shape[2:]
        if padded:
            # every tap runs: a tap in the padding reads a zero, which times an inf or nan
            # weight is nan, as in the reference (which pads, then multiplies); loads are
            # clamped so they never leave the input
            inside: ir.Expr | None = None
            for coord, size in zip(coords, in_sizes, strict=True):
                ok = _bin("and", _bin("ge", coord, ir.idx(0)), _bin("lt", coord, ir.dim(size)))
                inside = ok if inside is None else _bin("and", inside, ok)
            clamped = [
                _bin("min", _bin("max", coord, ir.idx(0)), _sub(ir.dim(size), ir.idx(1)))
                for coord, size in zip(coords, in_sizes, strict=True)
            ]
            load = ir.Load(x_buf, ir.flat_index(x_shape, [batch, in_channel, *clamped]), dtype)
            xv: ir.Expr = ir.Select(inside, load, ir.Const(0.0, dtype), dtype)
            ranges = [_TapRange(ir.idx(0), ir.dim(k)) for k in win.kernel]
        else:
            xv = ir.Load(x_buf, ir.flat_index(x_shape, [batch, in_channel, *coords]), dtype)
        wv: ir.Expr = ir.Load(w_buf, ir.flat_index(w_shape, [out_channel, ir.Var(c), *taps]), dtype)
        if acc_dtype is not dtype:
            xv, wv = ir.Cast(xv, acc_dtype), ir.Cast(wv, acc_dtype)
        step = ir.Assign(
            acc, ir.Bin("add", ir.Var(acc, acc_dtype), ir.Bin("mul", xv, wv, acc_dtype), acc_dtype)
        )
        tap_loops = _nest(tap_names, [r.start for r in ranges], [r.stop for r in ranges], [step])
        result: ir.Expr = ir.Var(acc, acc_dtype)
        if acc_dtype is not dtype:
            result = ir.Cast(result, dtype)
        return [
            ir.Local(acc, acc_dtype, ir.Const(0.0, acc_dtype)),
            ir.For(c, ir.idx(0), ir.dim(in_per_group), tap_loops),
            ir.Store(out_buf, ir.flat_index(out_shape, [batch, out_channel, *pos]), result),
        ]

    if _gemm_friendly(x_shape, out_shape, win, acc_dtype):
        if acc_dtype is dtype:
            return _conv_as_gemm(ctx, node, win, groups, (x_buf, w_buf, out_buf), dtype)
        # f16/bf16: the f32 kernel on widened copies, each result rounded once
        x_wide, x_copy = widened(ctx, x)
        w_wide, w_copy = widened(ctx, w)
        out_wide = f32_result(ctx, out)
        conv = _conv_as_gemm(ctx, node, win, groups, (x_wide, w_wide, out_wide), acc_dtype)
        return (*x_copy, *w_copy, *conv, *rounded_into(ctx, out, out_wide))
    # groups outermost, so an output channel's group needs no division
    lead = [(n, ir.dim(x_shape[0])), (g, ir.idx(groups)), (oo, ir.dim(out_per_group))]
    return _windowed(ctx, node, win, lead, per_output)


def _gemm_friendly(x_shape, out_shape, win: Window, dtype: DType) -> bool:
    """1-D and 2-D float convs with known spatial sizes go through im2col and the GEMM kernel
    (`dtype`: the one they compute in)."""
    if len(x_shape) not in (3, 4) or dtype not in (DType.F32, DType.F64):
        return False
    dims = [*x_shape[1:], *out_shape[1:], *win.kernel]
    return all(Dim.of(d).is_const for d in dims)


def _conv_as_gemm(
    ctx, node: Node, win: Window, groups: int, bufs: tuple[str, str, str], dtype: DType
) -> tuple[ir.Stmt, ...]:
    """y[n, group] = w[group] @ columns(x[n, group]): per batch entry and group, the input
    patches are gathered into a [C/groups * KH * KW, OH * OW] scratch matrix (zeros where the
    window hangs over the padding; loads clamped so they never leave the input), then one
    GEMM. A 1x1, stride-1, unpadded conv multiplies the input directly. `bufs`: the x, w
    and output buffers (of the node's shapes), all of `dtype`."""
    x, _ = node.inputs
    (out,) = node.outputs
    x_shape, out_shape = ctx.shape(x), ctx.shape(out)
    one_d = len(x_shape) == 3
    if one_d:  # a 1-D conv is a 2-D conv of height 1
        win = Window(
            (1, *win.kernel),
            (1, *win.stride),
            (1, *win.dilation),
            (0, *win.pad_begin),
            (0, *win.pad_end),
        )
    channels, height, width = (
        (int(d) for d in x_shape[1:]) if not one_d else (int(x_shape[1]), 1, int(x_shape[2]))
    )
    out_channels, out_h, out_w = (
        (int(d) for d in out_shape[1:]) if not one_d else (int(out_shape[1]), 1, int(out_shape[2]))
    )
    kh, kw = (int(k) for k in win.kernel)
    cg, og = channels // groups, out_channels // groups
    depth, positions = cg * kh * kw, out_h * out_w
    x_buf, w_buf, out_buf = bufs
    n, g = ctx.fresh("n"), ctx.fresh("g")
    n_var, g_var = ir.Var(n), ir.Var(g)
    direct = (kh, kw) == (1, 1) and win.stride == (1, 1) and not any(win.pad_begin + win.pad_end)
    if SHIFTED and not direct:

        def x_at(c: ir.Expr, ih: ir.Expr, iw: ir.Expr) -> ir.Expr:
            channel = ir.add(ir.mul(g_var, ir.idx(cg)), c)
            at = [n_var, channel, iw] if one_d else [n_var, channel, ih, iw]
            return ir.flat_index(x_shape, at)

        def out_store(o: ir.Expr, oh: ir.Expr, ow: ir.Expr, value: ir.Expr) -> ir.Stmt:
            channel = ir.add(ir.mul(g_var, ir.idx(og)), o)
            at = [n_var, channel, ow] if one_d else [n_var, channel, oh, ow]
            return ir.Store(out_buf, ir.flat_index(out_shape, at), value)

        body = shifted_conv_body(
            ctx, win, x_buf, x_at, w_buf, out_store, g_var, cg, og,
            (height, width), (out_h, out_w), dtype,
        )  # fmt: skip
        per_group = ir.For(g, ir.idx(0), ir.idx(groups), tuple(body))
        return (ir.For(n, ir.idx(0), ir.dim(x_shape[0]), (per_group,), parallel=True),)
    if direct:
        cols, cols_off, ldb = (
            x_buf,
            ir.mul(
                ir.add(ir.mul(n_var, ir.idx(channels)), ir.mul(g_var, ir.idx(cg))),
                ir.idx(height * width),
            ),
            ir.idx(height * width),
        )
        gather: list[ir.Stmt] = []
    else:
        # one scratch matrix per thread, reused by its batch entries while in its cache
        cols, cols_off, ldb = (
            ctx.chunk(dtype, (Dim.of(depth), Dim.of(positions)), "im2col"),
            ir.idx(0),
            ir.idx(positions),
        )
        gather = [
            _gather_columns(
                ctx,
                win,
                x_buf,
                x_shape,
                cols,
                cols_off,
                n_var,
                g_var,
                cg,
                (height, width),
                (out_h, out_w),
                one_d,
                dtype,
            )
        ]
    product = ir.Gemm(
        w_buf,
        cols,
        out_buf,
        ir.idx(og),
        ir.idx(positions),
        ir.idx(depth),
        ir.mul(g_var, ir.idx(og * depth)),
        cols_off,
        ir.mul(
            ir.add(ir.mul(n_var, ir.idx(out_channels)), ir.mul(g_var, ir.idx(og))),
            ir.idx(positions),
        ),
        ir.idx(depth),
        ldb,
        ir.idx(positions),
    )
    per_group = ir.For(g, ir.idx(0), ir.idx(groups), (*gather, product))
    return (ir.For(n, ir.idx(0), ir.dim(x_shape[0]), (per_group,), parallel=True),)


def _gather_columns(
    ctx,
    win: Window,
    x_buf: str,
    x_shape,
    cols: str,
    cols_off: ir.Expr,
    n_var: ir.Expr,
    g_var: ir.Expr,
    cg: int,
    in_hw: tuple[int, int],
    out_hw: tuple[int, int],
    one_d: bool,
    dtype: DType,
) -> ir.Stmt:
    """im2col of one batch entry and group: cols[(c, ki, kj), (oh, ow)] = x[c, ih, iw], zero
    where the window hangs over the padding.

    Each row segment (c, ki, kj, oh) over ow splits into three loops: zeros left of the
    input, a plain strided copy, zeros right of it. The bounds come from the tap's offset
    (the copy is empty when the input row ih is padding), so the copy needs no per-element
    check or clamp and vectorises."""
    (height, width), (out_h, out_w) = in_hw, out_hw
    kh, kw = (int(k) for k in win.kernel)
    sw, dw, pw = win.stride[1], win.dilation[1], win.pad_begin[1]
    positions = out_h * out_w
    c, ki, kj, oh, ow = (ctx.fresh(p) for p in ("c", "ki", "kj", "oh", "ow"))
    lo, hi = ctx.fresh("lo"), ctx.fresh("hi")
    ih = _tap_coord(ir.Var(oh), ir.Var(ki), win, 0)
    row_inside = _bin("and", _bin("ge", ih, ir.idx(0)), _bin("lt", ih, ir.idx(height)))
    shift = _sub(ir.mul(ir.Var(kj), ir.idx(dw)), ir.idx(pw))  # iw = ow * sw + shift
    # first ow with iw >= 0: ceil(-shift / sw); one past the last with iw < width
    first = _bin("sub", ir.idx(0), _bin("floordiv", shift, ir.idx(sw)))
    past = ir.add(_bin("floordiv", _sub(ir.idx(width - 1), shift), ir.idx(sw)), ir.idx(1))

    def clip(v: ir.Expr, low: ir.Expr) -> ir.Expr:
        return _bin("min", _bin("max", v, low), ir.idx(out_w))

    lo_v = ir.Select(row_inside, clip(first, ir.idx(0)), ir.idx(0), ir.I64)
    hi_v = ir.Select(row_inside, clip(past, ir.Var(lo)), ir.idx(0), ir.I64)
    channel = ir.add(ir.mul(g_var, ir.idx(cg)), ir.Var(c))
    iw = ir.add(ir.mul(ir.Var(ow), ir.idx(sw)), shift)
    at_x = [n_var, channel, iw] if one_d else [n_var, channel, ih, iw]
    row = ir.add(ir.mul(ir.add(ir.mul(ir.Var(c), ir.idx(kh)), ir.Var(ki)), ir.idx(kw)), ir.Var(kj))
    at = ir.add(
        cols_off,
        ir.add(
            ir.mul(row, ir.idx(positions)), ir.add(ir.mul(ir.Var(oh), ir.idx(out_w)), ir.Var(ow))
        ),
    )
    zero = ir.Store(cols, at, ir.Const(0.0, dtype))
    copy = ir.Store(cols, at, ir.Load(x_buf, ir.flat_index(x_shape, at_x), dtype))
    segment = (
        ir.Local(lo, ir.I64, lo_v),
        ir.Local(hi, ir.I64, hi_v),
        ir.For(ow, ir.idx(0), ir.Var(lo), (zero,)),
        ir.For(ow, ir.Var(lo), ir.Var(hi), (copy,)),
        ir.For(ow, ir.Var(hi), ir.idx(out_w), (zero,)),
    )
    return _nest(
        [c, ki, kj, oh],
        [ir.idx(0)] * 4,
        [ir.idx(cg), ir.idx(kh), ir.idx(kw), ir.idx(out_h)],
        segment,
    )[0]


def _tap_coord(pos: ir.Expr, tap: ir.Expr, win: Window, axis: int) -> ir.Expr:
    """The input coordinate of output position `pos`, kernel tap `tap` (may be in the padding)."""
    return ir.add(
        _sub(ir.mul(pos, ir.idx(win.stride[axis])), ir.idx(win.pad_begin[axis])),
        ir.mul(tap, ir.idx(win.dilation[axis])),
    )


# ---------------------------------------------------------------- pools


def _pool(ctx, node: Node, reduce: str) -> tuple[ir.Stmt, ...]:
    (x,) = node.inputs
    (out,) = node.outputs
    x_shape, out_shape = ctx.shape(x), ctx.shape(out)
    spatial = len(x_shape) - 2
    win = _pool_window(spatial, node.attrs)
    dtype, acc_dtype = x.type.dtype, _acc_dtype(x.type.dtype)
    if reduce == "max":
        acc_dtype = dtype  # max is exact in any dtype
    x_buf, out_buf = ctx.buf(x), ctx.buf(out)
    n, c, acc = ctx.fresh("n"), ctx.fresh("c"), ctx.fresh("acc")
    tap_names = [ctx.fresh(f"k{a}_") for a in range(spatial)]
    include_pad = bool(node.attrs.get("count_include_pad", True))

    def per_output(lead: list[ir.Expr], pos: list[ir.Expr], ranges: list[_TapRange]):
        taps: list[ir.Expr] = [ir.Var(t) for t in tap_names]
        coords = _input_coords(win, pos, taps)
        xv: ir.Expr = ir.Load(x_buf, ir.flat_index(x_shape, [*lead, *coords]), dtype)
        if acc_dtype is not dtype:
            xv = ir.Cast(xv, acc_dtype)
        current = ir.Var(acc, acc_dtype)
        if reduce == "max":
            # taps in the padding are -inf, which never changes the max: skipping them is exact
            init = ir.Const(-math.inf, acc_dtype)
            result: ir.Expr = current
        else:
            init = ir.Const(0.0, acc_dtype)
            result = ir.Bin(
                "div", current, _avg_divisor(win, ranges, include_pad, acc_dtype), acc_dtype
            )
        step = ir.Assign(acc, ir.Bin(reduce, current, xv, acc_dtype))
        tap_loops = _nest(tap_names, [r.start for r in ranges], [r.stop for r in ranges], [step])
        if acc_dtype is not dtype:
            result = ir.Cast(result, dtype)
        return [
            ir.Local(acc, acc_dtype, init),
            *tap_loops,
            ir.Store(out_buf, ir.flat_index(out_shape, [*lead, *pos]), result),
        ]

    lead = [(n, ir.dim(x_shape[0])), (c, ir.dim(x_shape[1]))]
    return _windowed(ctx, node, win, lead, per_output)


def _avg_divisor(
    win: Window, ranges: Sequence[_TapRange], include_pad: bool, dtype: DType
) -> ir.Expr:
    if include_pad:
        return ir.Const(float(math.prod(int(k) for k in win.kernel)), dtype)
    # avg_pool has no dilation, so the taps inside are exactly the clamped ranges
    count: ir.Expr = ir.idx(1)
    for r in ranges:
        count = ir.mul(count, _sub(r.stop, r.start))
    if isinstance(count, ir.Const):
        return ir.Const(float(count.value), dtype)
    return ir.Cast(count, dtype)


@lowering("max_pool")
def lower_max_pool(ctx, node: Node) -> tuple[ir.Stmt, ...]:
    return _pool(ctx, node, "max")


@lowering("avg_pool")
def lower_avg_pool(ctx, node: Node) -> tuple[ir.Stmt, ...]:
    return _pool(ctx, node, "add")
