"""Lowerings of the element-wise primitives: graph node -> one loop nest over the output.

Unary math, binary arithmetic and comparisons (numpy broadcasting), `where`,
`cast`, and the constructors `full` and `arange`. Each output element is
computed from the operands loaded at their broadcast index; a 0-d operand (a
scalar such as the `2.0` of `x * 2.0`) is a buffer of shape () read at offset 0.
The semantics are those of `primitives/elementwise.py`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from ...dims import Dim
from ...graph import Node, Value
from ...primitives.bind import fit_number
from ...primitives.elementwise import cast_array
from ...types import DType
from .. import loopir as ir
from . import lowering

# graph op -> loop-IR op, where the names differ
_UNARY = {
    "exp": "exp", "log": "log", "sqrt": "sqrt", "rsqrt": "rsqrt", "tanh": "tanh",
    "erf": "erf", "sigmoid": "sigmoid", "sin": "sin", "cos": "cos", "abs": "abs",
    "neg": "neg", "floor": "floor", "ceil": "ceil", "logical_not": "not", "isnan": "isnan",
}  # fmt: skip
_BINARY = {
    "add": "add", "sub": "sub", "mul": "mul", "div": "div", "floordiv": "floordiv",
    "mod": "mod", "pow": "pow", "maximum": "max", "minimum": "min", "eq": "eq", "ne": "ne",
    "lt": "lt", "le": "le", "gt": "gt", "ge": "ge", "logical_and": "and", "logical_or": "or",
}  # fmt: skip
_BOOL_RESULT = frozenset({"not", "isnan", "and", "or"}) | ir.COMPARISONS

# f16 and bf16 are storage dtypes: the reference computes them in f32 and rounds once.
_STORAGE_FLOATS = frozenset({DType.F16, DType.BF16})

Compute = Callable[[list[ir.Expr]], ir.Expr]


def _compute_dtype(dtype: DType) -> DType:
    return DType.F32 if dtype in _STORAGE_FLOATS else dtype


def _convert(e: ir.Expr, dtype: DType) -> ir.Expr:
    return e if e.dtype is dtype else ir.Cast(e, dtype)


def operand(ctx, v: Value, out_shape: tuple[Dim, ...], out_vars: Sequence[ir.Expr]) -> ir.Expr:
    """Operand `v` at the broadcast index of `out_vars`: a load, or, when its producer is
    fused into this kernel, the producer's own expression at that index."""
    shape = ctx.shape(v)
    ix = ir.broadcast_indices(out_shape, shape, out_vars)
    producer = ctx.fused.get(v.id)
    if producer is not None:
        return value_at(ctx, producer, ix)
    return ir.Load(ctx.buf(v), ir.flat_index(shape, ix), v.type.dtype)


def value_at(ctx, node: Node, ix: Sequence[ir.Expr]) -> ir.Expr:
    """The value of element-wise `node`'s output at `ix`, in its dtype (as stored)."""
    out = node.outputs[0]
    shape = ctx.shape(out)
    compute = COMPUTE[node.op](node)
    value = compute([operand(ctx, v, shape, ix) for v in node.inputs])
    return _convert(value, out.type.dtype)


def _each_element(ctx, node: Node, compute: Compute) -> tuple[ir.Stmt, ...]:
    """`out[i...] = compute(operands at their broadcast index of i...)`."""
    out = node.outputs[0]
    shape = ctx.shape(out)

    def body(ix: list[ir.Expr]) -> list[ir.Stmt]:
        return [ir.Store(ctx.buf(out), ir.flat_index(shape, ix), value_at(ctx, node, ix))]

    return ir.loop_nest(shape, ctx.fresh("i"), body, parallel=True)


def _unary_compute(node: Node) -> Compute:
    op = _UNARY[node.op]
    compute_in = _compute_dtype(node.inputs[0].type.dtype)

    def compute(args: list[ir.Expr]) -> ir.Expr:
        x = _convert(args[0], compute_in)
        return ir.Un(op, x, DType.BOOL if op in _BOOL_RESULT else compute_in)

    return compute


def _binary_compute(node: Node) -> Compute:
    op = _BINARY[node.op]
    compute_in = _compute_dtype(node.inputs[0].type.dtype)

    def compute(args: list[ir.Expr]) -> ir.Expr:
        a, b = (_convert(x, compute_in) for x in args)
        return ir.Bin(op, a, b, DType.BOOL if op in _BOOL_RESULT else compute_in)

    return compute


def _where_compute(node: Node) -> Compute:
    dtype = node.outputs[0].type.dtype
    return lambda args: ir.Select(args[0], args[1], args[2], dtype)


def _cast_compute(node: Node) -> Compute:
    return lambda args: args[0]  # value_at converts to the output dtype


# element-wise ops whose value at an index is an expression of their operands there:
# what the lowering of a consumer may fuse (lower.py decides when)
COMPUTE: dict[str, Callable[[Node], Compute]] = {
    **{op: _unary_compute for op in _UNARY},
    **{op: _binary_compute for op in _BINARY},
    "where": _where_compute,
    "cast": _cast_compute,
}


@lowering(*COMPUTE)
def lower_elementwise(ctx, node: Node) -> tuple[ir.Stmt, ...]:
    return _each_element(ctx, node, COMPUTE[node.op](node))


@lowering("full")
def lower_full(ctx, node: Node) -> tuple[ir.Stmt, ...]:
    dtype: DType = node.attrs["dtype"]
    value = node.attrs["value"]
    if isinstance(value, Dim):
        value = int(value)
    value = fit_number(value, dtype)
    if dtype.is_float:
        # rounded (or overflowed to inf) here exactly as the reference's cast from f64
        value = float(cast_array(np.asarray(value, dtype=np.float64), dtype))
    out = node.outputs[0]
    shape = ctx.shape(out)
    return ir.loop_nest(
        shape,
        ctx.fresh("i"),
        lambda ix: [ir.Store(ctx.buf(out), ir.flat_index(shape, ix), ir.Const(value, dtype))],
        parallel=True,
    )


@lowering("arange")
def lower_arange(ctx, node: Node) -> tuple[ir.Stmt, ...]:
    start, stop = node.attrs["start"], node.attrs["stop"]
    if stop is None:  # arange(n) counts 0..n
        start = 0
    step = int(node.attrs["step"])
    out = node.outputs[0]
    shape = ctx.shape(out)

    def body(ix: list[ir.Expr]) -> list[ir.Stmt]:
        # start + i * step exactly in i64, then converted as `cast` does
        value = ir.add(ir.dim(start), ir.mul(ix[0], ir.idx(step)))
        return [ir.Store(ctx.buf(out), ix[0], _convert(value, out.type.dtype))]

    return ir.loop_nest(shape, ctx.fresh("i"), body, parallel=True)
