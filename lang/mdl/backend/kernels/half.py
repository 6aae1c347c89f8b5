"""f16/bf16 operands of products: a graph value -> an f32 scratch copy, an f32 result -> its
rounded store.

The reference computes matmul and conv of f16 and bf16 in f32 and rounds each result
element once (primitives/linalg.py, primitives/nn.py). Their lowerings convert the
operands into f32 scratch buffers (exact), run the f32 kernel (so the GEMM micro-kernel
serves them too) into an f32 scratch result, and round that into the output.
"""

from __future__ import annotations

from ...graph import Value
from ...shapes import num_elements
from ...types import DType
from .. import loopir as ir

HALF = frozenset({DType.F16, DType.BF16})
F32 = DType.F32


def _converting_copy(ctx, dst: str, src: str, src_dtype: DType, dst_dtype: DType, count) -> ir.For:
    i = ctx.fresh("i")
    value = ir.Cast(ir.Load(src, ir.Var(i), src_dtype), dst_dtype)
    return ir.For(i, ir.idx(0), ir.dim(count), (ir.Store(dst, ir.Var(i), value),), parallel=True)


def widened(ctx, v: Value) -> tuple[str, tuple[ir.Stmt, ...]]:
    """An f32 scratch copy of f16/bf16 value `v`: its buffer name and the copy loop."""
    shape = ctx.shape(v)
    name = ctx.temp(F32, shape, "wide")
    copy = _converting_copy(ctx, name, ctx.buf(v), v.type.dtype, F32, num_elements(shape))
    return name, (copy,)


def f32_result(ctx, v: Value) -> str:
    """An f32 scratch buffer for the unrounded result `v`."""
    return ctx.temp(F32, ctx.shape(v), "wide")


def rounded_into(ctx, v: Value, scratch: str) -> tuple[ir.Stmt, ...]:
    """Store the f32 `scratch` into `v`'s buffer, each element rounded once to v's dtype."""
    shape = ctx.shape(v)
    return (_converting_copy(ctx, ctx.buf(v), scratch, F32, v.type.dtype, num_elements(shape)),)
