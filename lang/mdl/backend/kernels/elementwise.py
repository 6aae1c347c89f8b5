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


def _operand(ctx, v: Value, out_shape: tuple[Dim, ...], out_vars: Sequence[ir.Expr]) -> ir.Load:
    shape = ctx.shape(v)
    index = ir.flat_index(shape, ir.broadcast_indices(out_shape, shape, out_vars))
    return ir.Load(ctx.buf(v), index, v.type.dtype)


def _each_element(ctx, node: Node, compute: Compute) -> tuple[ir.Stmt, ...]:
    """`out[i...] = compute(operands loaded at their broadcast index of i...)`."""
    out = node.outputs[0]
    shape = ctx.shape(out)
    dtype = out.type.dtype

    def body(ix: list[ir.Expr]) -> list[ir.Stmt]:
        value = compute([_operand(ctx, v, shape, ix) for v in node.inputs])
        return [ir.Store(ctx.buf(out), ir.flat_index(shape, ix), _convert(value, dtype))]

    return ir.loop_nest(shape, ctx.fresh("i"), body)


@lowering(*_UNARY)
def lower_unary(ctx, node: Node) -> tuple[ir.Stmt, ...]:
    op = _UNARY[node.op]
    compute_in = _compute_dtype(node.inputs[0].type.dtype)
    if op == "erf":
        # the reference computes erf in f64 (math.erf) and rounds once
        compute_in = DType.F64

    def compute(args: list[ir.Expr]) -> ir.Expr:
        x = _convert(args[0], compute_in)
        return ir.Un(op, x, DType.BOOL if op in _BOOL_RESULT else compute_in)

    return _each_element(ctx, node, compute)


@lowering(*_BINARY)
def lower_binary(ctx, node: Node) -> tuple[ir.Stmt, ...]:
    op = _BINARY[node.op]
    compute_in = _compute_dtype(node.inputs[0].type.dtype)

    def compute(args: list[ir.Expr]) -> ir.Expr:
        a, b = (_convert(x, compute_in) for x in args)
        return ir.Bin(op, a, b, DType.BOOL if op in _BOOL_RESULT else compute_in)

    return _each_element(ctx, node, compute)


@lowering("where")
def lower_where(ctx, node: Node) -> tuple[ir.Stmt, ...]:
    dtype = node.outputs[0].type.dtype
    return _each_element(ctx, node, lambda args: ir.Select(args[0], args[1], args[2], dtype))


@lowering("cast")
def lower_cast(ctx, node: Node) -> tuple[ir.Stmt, ...]:
    # _each_element converts the loaded value to the output dtype
    return _each_element(ctx, node, lambda args: args[0])


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
    return _each_element(ctx, node, lambda args: ir.Const(value, dtype))


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

    return ir.loop_nest(shape, ctx.fresh("i"), body)
