"""Lowerings of the layout ops: graph node -> loop-IR statements that move data.

reshape, transpose, expand, concat, stack, split, slice, pad and gather copy
elements without arithmetic; each is a loop nest over one buffer's shape
whose other side's index is computed from the loop variables. Output shapes
come from the node's output types, never from attributes that may hold -1.
The reference semantics are the `evaluate`s of primitives/layout.py and
primitives/gather.py.
"""

from __future__ import annotations

from collections.abc import Sequence

from ...dims import Dim
from ...primitives.gather import _pad_fill
from ...shapes import normalize_axis, num_elements
from ...types import DType
from .. import loopir as ir
from . import lowering

I64 = DType.I64


def _pull(
    dst: str,
    dst_shape: Sequence[Dim],
    src: str,
    src_shape: Sequence[Dim],
    src_index_of,
    dtype: DType,
    prefix: str,
) -> tuple[ir.Stmt, ...]:
    """dst[i...] = src[src_index_of(i...)], looping over every element of `dst`."""
    return ir.loop_nest(
        dst_shape,
        prefix,
        lambda vs: [
            ir.Store(
                dst,
                ir.flat_index(dst_shape, vs),
                ir.Load(src, ir.flat_index(src_shape, src_index_of(vs)), dtype),
            )
        ],
        parallel=True,
    )


def _push(
    dst: str,
    dst_shape: Sequence[Dim],
    dst_index_of,
    src: str,
    src_shape: Sequence[Dim],
    dtype: DType,
    prefix: str,
) -> tuple[ir.Stmt, ...]:
    """dst[dst_index_of(i...)] = src[i...], looping over every element of `src`."""
    return ir.loop_nest(
        src_shape,
        prefix,
        lambda vs: [
            ir.Store(
                dst,
                ir.flat_index(dst_shape, dst_index_of(vs)),
                ir.Load(src, ir.flat_index(src_shape, vs), dtype),
            )
        ],
        parallel=True,  # dst_index_of is one-to-one: no two iterations write one element
    )


def _flat_copy(dst: str, src: str, count: Dim, dtype: DType, var: str) -> tuple[ir.Stmt, ...]:
    i = ir.Var(var)
    copy = (ir.Store(dst, i, ir.Load(src, i, dtype)),)
    return (ir.For(var, ir.idx(0), ir.dim(count), copy, parallel=True),)


@lowering("reshape")
def lower_reshape(ctx, node) -> tuple[ir.Stmt, ...]:
    # row-major order is unchanged by a reshape: the copy is flat
    (x,), (out,) = node.inputs, node.outputs
    return _flat_copy(
        ctx.buf(out), ctx.buf(x), num_elements(ctx.shape(out)), x.type.dtype, ctx.fresh("i")
    )


@lowering("transpose")
def lower_transpose(ctx, node) -> tuple[ir.Stmt, ...]:
    (x,), (out,) = node.inputs, node.outputs
    rank = len(ctx.shape(x))
    perm = node.attrs.get("perm")
    perm = (
        tuple(reversed(range(rank)))
        if perm is None
        else tuple(normalize_axis(int(p), rank) for p in perm)
    )

    out_shape, in_shape = ctx.shape(out), ctx.shape(x)
    if rank and not out_shape[-1].is_const and in_shape[-1].is_const:
        # loop over the input: LLVM fully unrolls constant-trip outer loops, and a strided
        # run-time inner loop copied into each (vectorized with run-time checks) takes
        # seconds to compile
        return _push(
            ctx.buf(out),
            out_shape,
            lambda vs: [vs[p] for p in perm],
            ctx.buf(x),
            in_shape,
            x.type.dtype,
            ctx.fresh("i"),
        )

    def src_index(vs: list[ir.Expr]) -> list[ir.Expr]:
        # output axis k is input axis perm[k]
        src = [ir.idx(0)] * rank
        for k, p in enumerate(perm):
            src[p] = vs[k]
        return src

    return _pull(
        ctx.buf(out), out_shape, ctx.buf(x), in_shape, src_index, x.type.dtype, ctx.fresh("i")
    )


@lowering("expand")
def lower_expand(ctx, node) -> tuple[ir.Stmt, ...]:
    (x,), (out,) = node.inputs, node.outputs
    out_shape, in_shape = ctx.shape(out), ctx.shape(x)
    return _pull(
        ctx.buf(out),
        out_shape,
        ctx.buf(x),
        in_shape,
        lambda vs: ir.broadcast_indices(out_shape, in_shape, vs),
        x.type.dtype,
        ctx.fresh("i"),
    )


def _shifted(vs: list[ir.Expr], axis: int, offset: Dim) -> list[ir.Expr]:
    return [*vs[:axis], ir.add(vs[axis], ir.dim(offset)), *vs[axis + 1 :]]


@lowering("concat")
def lower_concat(ctx, node) -> tuple[ir.Stmt, ...]:
    (out,) = node.outputs
    out_shape = ctx.shape(out)
    axis = normalize_axis(int(node.attrs["axis"]), len(out_shape))
    stmts: list[ir.Stmt] = []
    offset = Dim.of(0)
    for x in node.inputs:
        stmts += _push(
            ctx.buf(out),
            out_shape,
            lambda vs, o=offset: _shifted(vs, axis, o),
            ctx.buf(x),
            ctx.shape(x),
            x.type.dtype,
            ctx.fresh("i"),
        )
        offset = offset + ctx.shape(x)[axis]
    return tuple(stmts)


@lowering("stack")
def lower_stack(ctx, node) -> tuple[ir.Stmt, ...]:
    (out,) = node.outputs
    out_shape = ctx.shape(out)
    axis = normalize_axis(int(node.attrs["axis"]), len(out_shape))
    stmts: list[ir.Stmt] = []
    for k, x in enumerate(node.inputs):
        stmts += _push(
            ctx.buf(out),
            out_shape,
            lambda vs, k=k: [*vs[:axis], ir.idx(k), *vs[axis:]],
            ctx.buf(x),
            ctx.shape(x),
            x.type.dtype,
            ctx.fresh("i"),
        )
    return tuple(stmts)


@lowering("split")
def lower_split(ctx, node) -> tuple[ir.Stmt, ...]:
    (x,) = node.inputs
    in_shape = ctx.shape(x)
    axis = normalize_axis(int(node.attrs["axis"]), len(in_shape))
    stmts: list[ir.Stmt] = []
    offset = Dim.of(0)
    for out in node.outputs:
        stmts += _pull(
            ctx.buf(out),
            ctx.shape(out),
            ctx.buf(x),
            in_shape,
            lambda vs, o=offset: _shifted(vs, axis, o),
            x.type.dtype,
            ctx.fresh("i"),
        )
        offset = offset + ctx.shape(out)[axis]
    return tuple(stmts)


@lowering("slice")
def lower_slice(ctx, node) -> tuple[ir.Stmt, ...]:
    (x,), (out,) = node.inputs, node.outputs
    starts = [Dim.of(s) for s in node.attrs["starts"]]
    steps = [int(s) for s in node.attrs["steps"]]

    def src_index(vs: list[ir.Expr]) -> list[ir.Expr]:
        return [
            ir.add(ir.dim(start), ir.mul(v, ir.idx(step)))
            for v, start, step in zip(vs, starts, steps, strict=True)
        ]

    return _pull(
        ctx.buf(out),
        ctx.shape(out),
        ctx.buf(x),
        ctx.shape(x),
        src_index,
        x.type.dtype,
        ctx.fresh("i"),
    )


@lowering("pad")
def lower_pad(ctx, node) -> tuple[ir.Stmt, ...]:
    (x,), (out,) = node.inputs, node.outputs
    dtype = x.type.dtype
    in_shape, out_shape = ctx.shape(x), ctx.shape(out)
    begins = [Dim.of(p) for p in node.attrs["pads"][: len(in_shape)]]
    # the same scalar the reference writes (an f32 border holds f32(value))
    fill = ir.Const(_pad_fill(dtype, node.attrs["value"]).item(), dtype)
    out_buf = ctx.buf(out)
    stmts: list[ir.Stmt] = []
    if out_shape != in_shape:  # fill everything, then overwrite the interior
        i = ctx.fresh("i")
        stmts.append(
            ir.For(
                i, ir.idx(0), ir.dim(num_elements(out_shape)), (ir.Store(out_buf, ir.Var(i), fill),)
            )
        )
    stmts += _push(
        out_buf,
        out_shape,
        lambda vs: [ir.add(v, ir.dim(b)) for v, b in zip(vs, begins, strict=True)],
        ctx.buf(x),
        in_shape,
        dtype,
        ctx.fresh("i"),
    )
    return tuple(stmts)


@lowering("gather")
def lower_gather(ctx, node) -> tuple[ir.Stmt, ...]:
    (table, indices), (out,) = node.inputs, node.outputs
    table_shape, ids_shape, out_shape = ctx.shape(table), ctx.shape(indices), ctx.shape(out)
    axis = normalize_axis(int(node.attrs["axis"]), len(table_shape))
    size = ir.dim(table_shape[axis])
    ids_buf, ids_dtype = ctx.buf(indices), indices.type.dtype

    def index_at(position: ir.Expr) -> ir.Expr:
        raw = ir.Load(ids_buf, position, ids_dtype)
        return raw if ids_dtype is I64 else ir.Cast(raw, I64)

    # every index is checked before any is used, in row-major order, so the one reported is
    # the reference's (the first bad one) and no load below can leave the table
    code = ctx.error(f"index {{0}} out of range for axis {axis} of size {{1}}")
    j = ctx.fresh("j")
    ij = index_at(ir.Var(j))
    outside = ir.Bin(
        "or",
        ir.Bin("lt", ij, ir.Bin("sub", ir.idx(0), size, I64), DType.BOOL),
        ir.Bin("ge", ij, size, DType.BOOL),
        DType.BOOL,
    )
    check = ir.For(
        j,
        ir.idx(0),
        ir.dim(num_elements(ids_shape)),
        (ir.If(outside, (ir.Fail(code, (ij, size)),)),),
    )

    pre, post = len(table_shape[:axis]), len(table_shape) - axis - 1
    n_ids = len(ids_shape)
    prefix, pos = ctx.fresh("i"), ctx.fresh("pos")

    def outer(vs: list[ir.Expr]) -> list[ir.Stmt]:
        raw = index_at(ir.flat_index(ids_shape, vs[pre:]))
        wrapped = ir.Select(ir.Bin("lt", raw, ir.idx(0), DType.BOOL), ir.add(raw, size), raw, I64)

        def inner(ws: list[ir.Expr]) -> list[ir.Stmt]:
            src = [*vs[:pre], ir.Var(pos), *ws]
            dst = [*vs, *ws]
            return [
                ir.Store(
                    ctx.buf(out),
                    ir.flat_index(out_shape, dst),
                    ir.Load(ctx.buf(table), ir.flat_index(table_shape, src), table.type.dtype),
                )
            ]

        return [
            ir.Local(pos, I64, wrapped),
            *ir.loop_nest(out_shape[pre + n_ids :], f"{prefix}p", inner),
        ]

    assert pre + n_ids + post == len(out_shape)
    return (check, *ir.loop_nest(out_shape[: pre + n_ids], prefix, outer, parallel=True))
