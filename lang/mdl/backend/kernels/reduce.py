"""Lowerings of the reductions: reduce_{sum,mean,max,min,prod} and argmax/argmin -> loop IR.

Shape of every kernel: a loop nest over the output, and inside it a loop nest
over the reduced axes that folds the input into a scalar `Local`, stored once.
Numerics follow the reference (primitives/reduce.py): float sums, means and
products accumulate in f64 and round once; integer sums and products wrap in
their own dtype; max/min start from their identity (-inf / int min) and
propagate nan; the mean of an empty axis is 0/0 = nan. argmax/argmin keep the
first extreme and let the first nan win, as numpy; an empty axis at run time
is the reference's E0313 error.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from ...dims import Dim
from ...types import DType
from .. import loopir as ir
from . import lowering

F64 = DType.F64

# reduction -> the IR op that folds one more element into the accumulator
_FOLD = {
    "reduce_sum": "add",
    "reduce_mean": "add",
    "reduce_prod": "mul",
    "reduce_max": "max",
    "reduce_min": "min",
}


def _accumulator_dtype(op: str, dtype: DType) -> DType:
    if op in ("reduce_max", "reduce_min") or not dtype.is_float:
        return dtype
    return F64  # float sums and products round once, like the reference


def _initial(op: str, dtype: DType) -> ir.Const:
    """The identity of the fold: what an empty reduction gives (before the mean's division)."""
    match op:
        case "reduce_sum" | "reduce_mean":
            value: int | float = 0
        case "reduce_prod":
            value = 1
        case "reduce_max":
            value = -np.inf if dtype.is_float else int(np.iinfo(dtype.numpy).min)
        case _:
            value = np.inf if dtype.is_float else int(np.iinfo(dtype.numpy).max)
    return ir.Const(float(value) if dtype.is_float else int(value), dtype)


def _cast(x: ir.Expr, dtype: DType) -> ir.Expr:
    return x if x.dtype is dtype else ir.Cast(x, dtype)


def _input_indices(
    rank: int,
    axes: Sequence[int],
    keep: bool,
    out_vars: Sequence[ir.Expr],
    red_vars: Sequence[ir.Expr],
) -> list[ir.Expr]:
    """Indices into the input: output loop variables on kept axes, reduction ones on `axes`."""
    outer = iter(out_vars)
    inner = iter(red_vars)
    indices = []
    for axis in range(rank):
        if axis in axes:
            if keep:
                next(outer)  # the size-1 axis of the output
            indices.append(next(inner))
        else:
            indices.append(next(outer))
    return indices


@dataclass(frozen=True)
class Fold:
    """How a reduction folds elements into its accumulator: shared by the reduction
    kernels below and by the row kernels (rows.py), so a fused softmax or layer norm
    folds exactly as the separate reduction would."""

    op: str  # reduce_sum, ...
    dtype: DType  # of the input and the result
    acc_dtype: DType
    count: Dim  # elements folded per result (the mean's divisor)

    def initial(self) -> ir.Const:
        return _initial(self.op, self.acc_dtype)

    def step(self, acc: ir.Expr, value: ir.Expr) -> ir.Expr:
        """acc folded with one more element `value` (in the input's dtype)."""
        return ir.Bin(_FOLD[self.op], acc, _cast(value, self.acc_dtype), self.acc_dtype)

    @property
    def lanes(self) -> int:
        """Float sums, maxima and minima fold into LANES partials (element r of the innermost
        reduced axis into partial r % LANES, the tail into the first), combined pairwise at
        the end: eight independent chains instead of one, which the vectoriser can pack. A
        fixed order, so the same bits on every thread count and path. NaN still propagates
        through max and min; only the sign of a zero maximum of +0 and -0 depends on the
        order, and numpy's own (the reference's `np.max`) depends on the array's length.
        Products keep one chain (their order decides overflow); so do integers."""
        chained = ("reduce_sum", "reduce_mean", "reduce_max", "reduce_min")
        return LANES if self.op in chained and self.acc_dtype.is_float else 1

    def loop(
        self,
        ctx,
        reduced: Sequence[Dim],
        element: Callable[[list[ir.Expr], str], list[ir.Stmt]],
    ) -> tuple[list[ir.Stmt], ir.Expr]:
        """Statements folding every element of the `reduced` index space, and the final
        accumulator: `element(indices, acc)` folds the element at `indices` into local `acc`."""
        names = [ctx.fresh("acc") for _ in range(self.lanes if reduced else 1)]
        stmts: list[ir.Stmt] = [ir.Local(n, self.acc_dtype, self.initial()) for n in names]
        if len(names) == 1:
            stmts += ir.loop_nest(reduced, ctx.fresh("r"), lambda ix: element(ix, names[0]))
            return stmts, ir.Var(names[0], self.acc_dtype)
        last = ir.dim(reduced[-1])
        chunks = ir.Bin("floordiv", last, ir.idx(LANES), ir.I64)

        def innermost(outer: list[ir.Expr]) -> list[ir.Stmt]:
            c, r = ctx.fresh("c"), ctx.fresh("r")
            unrolled: list[ir.Stmt] = []
            for j, name in enumerate(names):
                unrolled += element(
                    [*outer, ir.add(ir.mul(ir.Var(c), ir.idx(LANES)), ir.idx(j))], name
                )
            tail_start = ir.mul(chunks, ir.idx(LANES))
            return [
                ir.For(c, ir.idx(0), chunks, tuple(unrolled)),
                ir.For(r, tail_start, last, tuple(element([*outer, ir.Var(r)], names[0]))),
            ]

        stmts += ir.loop_nest(reduced[:-1], ctx.fresh("r"), innermost)
        parts: list[ir.Expr] = [ir.Var(n, self.acc_dtype) for n in names]
        while len(parts) > 1:
            parts = [
                ir.Bin(_FOLD[self.op], parts[i], parts[i + 1], self.acc_dtype)
                for i in range(0, len(parts), 2)
            ]
        return stmts, parts[0]

    def result(self, acc: ir.Expr) -> ir.Expr:
        """The reduction's value (in its dtype) from the final accumulator."""
        if self.op != "reduce_mean":
            return _cast(acc, self.dtype)
        mean = ir.Bin("div", acc, ir.Cast(ir.dim(self.count), F64), F64)  # 0/0: nan when empty
        return _cast(mean, self.dtype)


REDUCTIONS = frozenset(_FOLD)
LANES = 8


def fold_of(op: str, dtype: DType, reduced: Sequence[Dim]) -> Fold:
    count: Dim = Dim.of(1)
    for d in reduced:
        count = count * Dim.of(d)
    return Fold(op, dtype, _accumulator_dtype(op, dtype), count)


def reduced_axes(node, rank: int) -> tuple[int, ...]:
    """The sorted axes a reduction node reduces."""
    axes = node.attrs.get("axes")
    return tuple(range(rank)) if axes is None else tuple(sorted(a % rank for a in axes))


@lowering("reduce_sum", "reduce_mean", "reduce_prod", "reduce_max", "reduce_min")
def lower_reduce(ctx, node) -> tuple[ir.Stmt, ...]:
    (x,) = node.inputs
    (y,) = node.outputs
    x_shape, y_shape = ctx.shape(x), ctx.shape(y)
    x_buf, y_buf = ctx.buf(x), ctx.buf(y)
    dtype = x.type.dtype
    axes = reduced_axes(node, len(x_shape))
    keep = bool(node.attrs.get("keep", False))
    red_shape = [x_shape[a] for a in axes]
    fold = fold_of(node.op, dtype, red_shape)

    def per_output(out_vars: list[ir.Expr]) -> list[ir.Stmt]:
        def per_element(red_vars: list[ir.Expr], acc: str) -> list[ir.Stmt]:
            index = ir.flat_index(
                x_shape, _input_indices(len(x_shape), axes, keep, out_vars, red_vars)
            )
            acc_var = ir.Var(acc, fold.acc_dtype)
            return [ir.Assign(acc, fold.step(acc_var, ir.Load(x_buf, index, dtype)))]

        stmts, total = fold.loop(ctx, red_shape, per_element)
        return [*stmts, ir.Store(y_buf, ir.flat_index(y_shape, out_vars), fold.result(total))]

    return ir.loop_nest(y_shape, ctx.fresh("o"), per_output, parallel=True)


@lowering("argmax", "argmin")
def lower_arg_reduce(ctx, node) -> tuple[ir.Stmt, ...]:
    (x,) = node.inputs
    (y,) = node.outputs
    x_shape, y_shape = ctx.shape(x), ctx.shape(y)
    x_buf, y_buf = ctx.buf(x), ctx.buf(y)
    dtype = x.type.dtype
    axis = int(node.attrs["axis"])
    keep = bool(node.attrs.get("keep", False))
    size = x_shape[axis]
    best, best_at, k = ctx.fresh("best"), ctx.fresh("best_at"), ctx.fresh("k")
    best_var, best_at_var = ir.Var(best, dtype), ir.Var(best_at, ir.I64)
    better = "gt" if node.op == "argmax" else "lt"

    def per_output(out_vars: list[ir.Expr]) -> list[ir.Stmt]:
        def load_at(position: ir.Expr) -> ir.Expr:
            index = _input_indices(len(x_shape), (axis,), keep, out_vars, [position])
            return ir.Load(x_buf, ir.flat_index(x_shape, index), dtype)

        value = load_at(ir.Var(k))
        wins: ir.Expr = ir.Bin(better, value, best_var, ir.BOOL)
        if dtype.is_float:
            # the first nan wins and stays: comparisons with nan are false
            first_nan = ir.Bin(
                "and",
                ir.Un("isnan", value, ir.BOOL),
                ir.Un("not", ir.Un("isnan", best_var, ir.BOOL), ir.BOOL),
                ir.BOOL,
            )
            wins = ir.Bin("or", wins, first_nan, ir.BOOL)
        scan = ir.For(
            k,
            ir.idx(1),
            ir.dim(size),
            (ir.If(wins, (ir.Assign(best, value), ir.Assign(best_at, ir.Var(k)))),),
        )
        return [
            ir.Local(best, dtype, load_at(ir.idx(0))),
            ir.Local(best_at, ir.I64, ir.idx(0)),
            scan,
            ir.Store(y_buf, ir.flat_index(y_shape, out_vars), best_at_var),
        ]

    body = ir.loop_nest(y_shape, ctx.fresh("o"), per_output, parallel=True)
    if Dim.of(size).is_const and int(Dim.of(size)) > 0:
        return body
    code = ctx.error(f"E0313: `{node.op}` over axis {axis}, which has size {{0}}")
    empty = ir.If(ir.Bin("le", ir.dim(size), ir.idx(0), ir.BOOL), (ir.Fail(code, (ir.dim(size),)),))
    return (empty, *body)
