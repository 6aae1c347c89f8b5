"""Convolutions without im2col: one batch entry and group -> padded copy, one indirect
GEMM, compaction.

The input planes are copied once into a zero-bordered scratch P (padded sizes Hp, Wp).
For stride 1, the im2col row of tap (c, ki, kj) is then P's plane c read from offset
ki*dh*Wp + kj*dw on, if the output is computed "wide", Wp columns per output row instead
of OW: column q = oh*Wp + ow. For stride (sh, sw), P is kept as sh*sw phase planes
(phase (py, px) holds the padded rows py, py + sh, ... and columns px, px + sw, ...), and
tap (c, ki, kj) reads its phase's plane c from offset (ki*dh // sh)*Wq + kj*dw // sw on,
with Wq = ceil(Wp / sw) columns per wide row: the same contiguous reads as stride 1.
So the GEMM reads B's row k straight from P at a table of offsets (`Gemm.b_rows`, in
im2col's (c, ki, kj) order) into a wide scratch Y'[og, OH*Wq], whose first OW columns of
each row are copied out. The other columns of a row mix neighbouring rows and are never
read.

Every output element is the same k-ordered chain of fused multiply-adds over the same
values (P's zeros are im2col's zeros) as through im2col, so the results are the bits of
the im2col path (`tests/native/test_conv_shifted.py`), at a fraction of the memory
traffic: P is about the input's size where im2col's matrix is KH*KW/(sh*sw) times it.
"""

from __future__ import annotations

import numpy as np

from ...dims import Dim
from ...primitives.nn import Window
from ...types import DType
from .. import loopir as ir


def shifted_conv_body(
    ctx,
    win: Window,
    x_buf: str,
    x_at,  # (channel, ih, iw) -> the input index expressions (batch entry bound)
    w_buf: str,
    out_store,  # (o, oh, ow, value) -> the statement storing one output element
    g_var: ir.Expr,
    channels_per_group: int,
    outs_per_group: int,
    in_hw: tuple[int, int],
    out_hw: tuple[int, int],
    dtype: DType,
) -> list[ir.Stmt]:
    """The statements for one batch entry and group (inside the kernel's loops)."""
    (height, width), (out_h, out_w) = in_hw, out_hw
    kh, kw = (int(k) for k in win.kernel)
    sh, sw = (int(k) for k in win.stride)
    dh, dw = (int(d) for d in win.dilation)
    pt, pl = (int(p) for p in win.pad_begin)
    hp = height + pt + int(win.pad_end[0])
    wp = width + pl + int(win.pad_end[1])
    cg, og = channels_per_group, outs_per_group
    # phase (py, px): the padded input's rows py, py + sh, ... and columns px, px + sw, ...
    hq, wq = -(-hp // sh), -(-wp // sw)
    plane = hq * wq
    wide_n = out_h * wq
    taps = np.array(
        [
            (((ki * dh) % sh * sw + (kj * dw) % sw) * cg + c) * plane
            + (ki * dh) // sh * wq
            + (kj * dw) // sw
            for c in range(cg)
            for ki in range(kh)
            for kj in range(kw)
        ],
        np.int64,
    )
    filled = sh * sw * cg * plane
    size = max(filled, int(taps.max()) + wide_n)  # the last wide rows run past the planes
    padded = ctx.chunk(dtype, (Dim.of(size),), "padded")
    wide = ctx.chunk(dtype, (Dim.of(og * wide_n),), "wide")
    rows = ctx.constant(taps, "taps")
    zero = ir.Const(0.0, dtype)
    stmts: list[ir.Stmt] = [
        _fill_phase(
            ctx,
            (py, px),
            (sh, sw),
            (pt, pl),
            (height, width),
            (hq, wq),
            cg,
            plane,
            padded,
            x_buf,
            x_at,
            dtype,
        )
        for py in range(sh)
        for px in range(sw)
    ]  # every phase, read or not: the wide rows' spare columns never read memory unset
    if size > filled:
        s = ctx.fresh("s")
        stmts.append(ir.For(s, ir.idx(filled), ir.idx(size), (ir.Store(padded, ir.Var(s), zero),)))
    depth = cg * kh * kw
    product = ir.Gemm(
        w_buf,
        padded,
        wide,
        ir.idx(og),
        ir.idx(wide_n),
        ir.idx(depth),
        ir.mul(g_var, ir.idx(og * depth)),
        ir.idx(0),
        ir.idx(0),
        ir.idx(depth),
        ir.idx(0),  # unused: rows come from `taps`
        ir.idx(wide_n),
        rows,
    )
    o, oh, ow = ctx.fresh("o"), ctx.fresh("oh"), ctx.fresh("ow")
    value = ir.Load(
        wide,
        ir.add(
            ir.mul(ir.Var(o), ir.idx(wide_n)), ir.add(ir.mul(ir.Var(oh), ir.idx(wq)), ir.Var(ow))
        ),
        dtype,
    )
    compact = ir.For(
        o,
        ir.idx(0),
        ir.idx(og),
        (
            ir.For(
                oh,
                ir.idx(0),
                ir.idx(out_h),
                (
                    ir.For(
                        ow,
                        ir.idx(0),
                        ir.idx(out_w),
                        (out_store(ir.Var(o), ir.Var(oh), ir.Var(ow), value),),
                    ),
                ),
            ),
        ),
    )
    return [*stmts, product, compact]


def _fill_phase(ctx, phase, stride, pad, in_hw, q_hw, cg, plane, padded, x_buf, x_at, dtype):
    """Phase (py, px) of the zero-bordered input: element (c, i, j) is the padded input's
    (c, i*sh + py, j*sw + px). Each row: zeros, a strided copy of the input row (when
    inside), zeros; the bounds of the copy are known when compiling."""
    (py, px), (sh, sw), (pt, pl), (height, width), (hq, wq) = phase, stride, pad, in_hw, q_hw
    base = (py * sw + px) * cg * plane
    # columns j with 0 <= j*sw + px - pl < width
    lo = max(0, -(-(pl - px) // sw))
    hi = max(lo, min(wq, (width - 1 + pl - px) // sw + 1))
    c, i, j = ctx.fresh("c"), ctx.fresh("i"), ctx.fresh("j")
    src_h = ir.Bin("sub", ir.add(ir.mul(ir.Var(i), ir.idx(sh)), ir.idx(py)), ir.idx(pt), ir.I64)
    inside = ir.Bin(
        "and",
        ir.Bin("ge", src_h, ir.idx(0), ir.BOOL),
        ir.Bin("lt", src_h, ir.idx(height), ir.BOOL),
        ir.BOOL,
    )
    first, last = ctx.fresh("lo"), ctx.fresh("hi")
    at = ir.add(
        ir.idx(base),
        ir.add(ir.mul(ir.add(ir.mul(ir.Var(c), ir.idx(hq)), ir.Var(i)), ir.idx(wq)), ir.Var(j)),
    )
    src_w = ir.Bin("sub", ir.add(ir.mul(ir.Var(j), ir.idx(sw)), ir.idx(px)), ir.idx(pl), ir.I64)
    zero = ir.Const(0.0, dtype)
    row = (
        ir.Local(first, ir.I64, ir.Select(inside, ir.idx(lo), ir.idx(wq), ir.I64)),
        ir.Local(last, ir.I64, ir.Select(inside, ir.idx(hi), ir.idx(wq), ir.I64)),
        ir.For(j, ir.idx(0), ir.Var(first), (ir.Store(padded, at, zero),)),
        ir.For(
            j, ir.Var(first), ir.Var(last),
            (ir.Store(padded, at, ir.Load(x_buf, x_at(ir.Var(c), src_h, src_w), dtype)),),
        ),
        ir.For(j, ir.Var(last), ir.idx(wq), (ir.Store(padded, at, zero),)),
    )  # fmt: skip
    return ir.For(c, ir.idx(0), ir.idx(cg), (ir.For(i, ir.idx(0), ir.idx(hq), row),))
