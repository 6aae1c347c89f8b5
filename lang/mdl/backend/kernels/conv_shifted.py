"""Stride-1 convolutions without im2col: one batch entry and group -> padded copy, one
indirect GEMM, compaction.

The input planes are copied once into a zero-bordered scratch P[c, Hp, Wp] (Hp, Wp: the
padded sizes). For stride 1, the im2col row of tap (c, ki, kj) is then P's plane c read
from offset ki*dh*Wp + kj*dw on, if the output is computed "wide", Wp columns per
output row instead of OW: column q = oh*Wp + ow. So the GEMM reads B's row k straight
from P at a table of offsets (`Gemm.b_rows`, in im2col's (c, ki, kj) order), into a wide
scratch Y'[og, OH*Wp], whose first OW columns of each row are copied out. The last
Wp - OW columns of a row mix neighbouring rows and are never read.

Every output element is the same k-ordered chain of fused multiply-adds over the same
values (P's zeros are im2col's zeros) as through im2col, so the results are the bits of
the im2col path (`tests/native/test_conv_shifted.py`), at a fraction of the memory
traffic: P is about the input's size where im2col's matrix is KH*KW times it.
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
    dh, dw = (int(d) for d in win.dilation)
    pt, pl = (int(p) for p in win.pad_begin)
    hp = height + pt + int(win.pad_end[0])
    wp = width + pl + int(win.pad_end[1])
    cg, og = channels_per_group, outs_per_group
    plane = hp * wp
    slack = (kw - 1) * dw  # the last tap's wide row runs past the last plane by this much
    padded = ctx.chunk(dtype, (Dim.of(cg * plane + slack),), "padded")
    wide_n = out_h * wp
    wide = ctx.chunk(dtype, (Dim.of(og * wide_n),), "wide")
    taps = np.array(
        [
            c * plane + ki * dh * wp + kj * dw
            for c in range(cg)
            for ki in range(kh)
            for kj in range(kw)
        ],
        np.int64,
    )
    rows = ctx.constant(taps, "taps")
    zero = ir.Const(0.0, dtype)

    # P: each padded row is zeros, the input row (when inside), zeros
    c, ih, iw = ctx.fresh("c"), ctx.fresh("ih"), ctx.fresh("iw")
    src_h = ir.Bin("sub", ir.Var(ih), ir.idx(pt), ir.I64)
    inside = ir.Bin(
        "and",
        ir.Bin("ge", src_h, ir.idx(0), ir.BOOL),
        ir.Bin("lt", src_h, ir.idx(height), ir.BOOL),
        ir.BOOL,
    )
    lo, hi = ctx.fresh("lo"), ctx.fresh("hi")
    at = ir.add(ir.mul(ir.add(ir.mul(ir.Var(c), ir.idx(hp)), ir.Var(ih)), ir.idx(wp)), ir.Var(iw))
    src = ir.Load(
        x_buf, x_at(ir.Var(c), src_h, ir.Bin("sub", ir.Var(iw), ir.idx(pl), ir.I64)), dtype
    )
    fill_row = (
        ir.Local(lo, ir.I64, ir.Select(inside, ir.idx(pl), ir.idx(wp), ir.I64)),
        ir.Local(hi, ir.I64, ir.Select(inside, ir.idx(pl + width), ir.idx(wp), ir.I64)),
        ir.For(iw, ir.idx(0), ir.Var(lo), (ir.Store(padded, at, zero),)),
        ir.For(iw, ir.Var(lo), ir.Var(hi), (ir.Store(padded, at, src),)),
        ir.For(iw, ir.Var(hi), ir.idx(wp), (ir.Store(padded, at, zero),)),
    )
    fill = ir.For(c, ir.idx(0), ir.idx(cg), (ir.For(ih, ir.idx(0), ir.idx(hp), fill_row),))
    s = ctx.fresh("s")
    tail = ir.For(
        s, ir.idx(cg * plane), ir.idx(cg * plane + slack), (ir.Store(padded, ir.Var(s), zero),)
    )
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
            ir.mul(ir.Var(o), ir.idx(wide_n)), ir.add(ir.mul(ir.Var(oh), ir.idx(wp)), ir.Var(ow))
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
    stmts: list[ir.Stmt] = [fill]
    if slack:
        stmts.append(tail)
    return [*stmts, product, compact]
