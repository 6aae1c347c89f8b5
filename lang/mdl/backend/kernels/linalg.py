"""Lowering of matmul -> loop IR: for each output row, rank-1 updates over the inner axis.

numpy `@` semantics (primitives/linalg.py): the last two axes are the
matrices, leading axes a batch that broadcasts; a 1-D left operand is a row
vector and a 1-D right operand a column vector, their axis dropped from the
result. Products accumulate in the operands' dtype, as the reference's
np.matmul does (floats then agree within tolerance, since BLAS sums in another
order; integers wrap and agree exactly); f16 and bf16 in f32, rounded once
(kernels/half.py).

Loop order: with a right matrix, `y[i, :] += a[i, k] * b[k, :]` for k in
order, so the innermost loop runs along contiguous rows of `b` and `y` and
vectorizes, while every output element still sums its products sequentially
in k. With a right vector, a plain dot product per output. This is the simple
version: a packed, register-blocked GEMM replaces it for large products later.
"""

from __future__ import annotations

from ...dims import Dim
from ...types import DType
from .. import loopir as ir
from . import lowering
from .half import F32, HALF, f32_result, rounded_into, widened


@lowering("matmul")
def lower_matmul(ctx, node) -> tuple[ir.Stmt, ...]:
    a, b = node.inputs
    (y,) = node.outputs
    a_shape, b_shape, y_shape = ctx.shape(a), ctx.shape(b), ctx.shape(y)
    if y.type.dtype in HALF:
        # in f32, rounded once (the reference's compute dtype)
        a_wide, a_copy = widened(ctx, a)
        b_wide, b_copy = widened(ctx, b)
        y_wide = f32_result(ctx, y)
        product = _product(ctx, (a_wide, a_shape), (b_wide, b_shape), (y_wide, y_shape), F32)
        return (*a_copy, *b_copy, *product, *rounded_into(ctx, y, y_wide))
    return _product(
        ctx, (ctx.buf(a), a_shape), (ctx.buf(b), b_shape), (ctx.buf(y), y_shape), y.type.dtype
    )


def _product(ctx, a_of, b_of, y_of, dtype: DType) -> tuple[ir.Stmt, ...]:
    """`y = a @ b` on buffers given as (name, shape), all of `dtype`."""
    (a_buf, a_shape), (b_buf, b_shape), (y_buf, y_shape) = a_of, b_of, y_of
    has_rows, has_cols = len(a_shape) >= 2, len(b_shape) >= 2
    n_batch = len(y_shape) - has_rows - has_cols
    inner = a_shape[-1]
    k = ctx.fresh("k")
    k_var = ir.Var(k)
    zero = ir.Const(0.0 if dtype.is_float else 0, dtype)

    def operands(batch: list[ir.Expr], row: list[ir.Expr], col: list[ir.Expr]):
        a_index = [*ir.broadcast_indices(y_shape[:n_batch], a_shape[:-2], batch), *row, k_var]
        b_index = [*ir.broadcast_indices(y_shape[:n_batch], b_shape[:-2], batch), k_var, *col]
        return (
            ir.Load(a_buf, ir.flat_index(a_shape, a_index), dtype),
            ir.Load(b_buf, ir.flat_index(b_shape, b_index), dtype),
        )

    def dot(out_vars: list[ir.Expr]) -> list[ir.Stmt]:
        """y[out] = sum over k of a[.., k] * b[.., k]: the right operand is a vector."""
        acc = ctx.fresh("acc")
        acc_var = ir.Var(acc, dtype)
        row = [out_vars[n_batch]] if has_rows else []
        a_k, b_k = operands(out_vars[:n_batch], row, [])
        step = ir.Assign(acc, ir.Bin("add", acc_var, ir.Bin("mul", a_k, b_k, dtype), dtype))
        return [
            ir.Local(acc, dtype, zero),
            ir.For(k, ir.idx(0), ir.dim(inner), (step,)),
            ir.Store(y_buf, ir.flat_index(y_shape, out_vars), acc_var),
        ]

    def row_updates(row_vars: list[ir.Expr]) -> list[ir.Stmt]:
        """y[row, :] = sum over k of a[row, k] * b[k, :], accumulated in y."""
        j, a_ik = ctx.fresh("j"), ctx.fresh("a_ik")
        j_var = ir.Var(j)
        batch, row = row_vars[:n_batch], row_vars[n_batch:]
        a_k, b_kj = operands(batch, row, [j_var])
        y_at = ir.flat_index(y_shape, [*row_vars, j_var])
        update = ir.Bin(
            "add",
            ir.Load(y_buf, y_at, dtype),
            ir.Bin("mul", ir.Var(a_ik, dtype), b_kj, dtype),
            dtype,
        )
        cols = ir.dim(y_shape[-1])
        return [
            ir.For(j, ir.idx(0), cols, (ir.Store(y_buf, y_at, zero),)),
            ir.For(
                k,
                ir.idx(0),
                ir.dim(inner),
                (
                    ir.Local(a_ik, dtype, a_k),
                    ir.For(j, ir.idx(0), cols, (ir.Store(y_buf, y_at, update),)),
                ),
            ),
        ]

    def gemm(batch: list[ir.Expr]) -> list[ir.Stmt]:
        """Float matrix by matrix: the emitter's register-blocked micro-kernel per batch entry."""
        rows, cols = y_shape[-2], y_shape[-1]
        zero2 = [ir.idx(0), ir.idx(0)]
        a_at = [*ir.broadcast_indices(y_shape[:n_batch], a_shape[:-2], batch), *zero2]
        b_at = [*ir.broadcast_indices(y_shape[:n_batch], b_shape[:-2], batch), *zero2]
        return [
            ir.Gemm(
                a_buf,
                b_buf,
                y_buf,
                ir.dim(rows),
                ir.dim(cols),
                ir.dim(inner),
                ir.flat_index(a_shape, a_at),
                ir.flat_index(b_shape, b_at),
                ir.flat_index(y_shape, [*batch, *zero2]),
                ir.dim(inner),
                ir.dim(cols),
                ir.dim(cols),
            )
        ]

    if not has_cols:
        return ir.loop_nest(y_shape, ctx.fresh("o"), dot, parallel=True)
    if (
        has_rows
        and dtype.is_float
        and n_batch
        and len(b_shape) == 2
        and _same(a_shape[:-1], y_shape[:-1])
    ):
        # a stack of rows times one matrix (a Dense over [B, T, D]): one product of B*T
        # rows, bigger and split across threads even at batch 1, its tail a loop of its own
        rows = Dim.of(1)
        for d in y_shape[:-1]:
            rows = rows * Dim.of(d)
        cols = y_shape[-1]
        zero = ir.idx(0)
        return (
            ir.Gemm(a_buf, b_buf, y_buf, ir.dim(rows), ir.dim(cols), ir.dim(inner),
                    zero, zero, zero, ir.dim(inner), ir.dim(cols), ir.dim(cols)),
        )  # fmt: skip
    if has_rows and dtype.is_float:
        return ir.loop_nest(y_shape[:n_batch], ctx.fresh("o"), gemm, parallel=True)
    return ir.loop_nest(y_shape[:-1], ctx.fresh("o"), row_updates, parallel=True)


def _same(x, y) -> bool:
    return len(x) == len(y) and all(Dim.of(a) == Dim.of(b) for a, b in zip(x, y, strict=True))
