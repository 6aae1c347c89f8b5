"""The row kernel of a fused region (rowplan.py): `RowRegion` -> one parallel loop over rows.

For each row (an index of the sink's shape outside the reduced axes): one loop per
reduction, in graph order, folding its input into a scalar exactly as the separate
reduction kernel does (same `Fold`, same order), row scalars as locals, and a last loop
storing the sink. Row values are expressions recomputed at each use; the stashed one is
stored into the sink's buffer by a loop of its own just before the first reduction that
needs it (the first loop that computes it, when that is the sink's) and loaded from there
afterwards (the sink's last loop reads it at the index it then overwrites).
"""

from __future__ import annotations

from collections.abc import Sequence

from ...dims import Dim
from ...graph import Node, Value
from .. import loopir as ir
from ..rowplan import RowRegion
from .elementwise import COMPUTE, operand
from .reduce import REDUCTIONS, fold_of


def _convert(e: ir.Expr, dtype) -> ir.Expr:
    return e if e.dtype is dtype else ir.Cast(e, dtype)


class _Row:
    """Expressions of one row's values; `scalars` holds the row scalars computed so far."""

    def __init__(self, ctx, region: RowRegion):
        self.ctx = ctx
        self.region = region
        self.inside = {n.outputs[0].id: n for n in region.nodes}
        self.full = ctx.shape(region.sink.outputs[0])
        self.scalars: dict[int, ir.Expr] = {}
        self.bound: dict[int, ir.Expr] = {}  # the stash, once computed in the current loop

    def value(self, v: Value, ix: Sequence[ir.Expr]) -> ir.Expr:
        """Row value `v` at full index `ix` (in v's dtype)."""
        if v.id in self.scalars:
            return self.scalars[v.id]
        if v.id in self.bound:
            return self.bound[v.id]
        node = self.inside.get(v.id)
        if node is None:
            return operand(self.ctx, v, self.full, ix)
        return self.compute(node, [self.value(u, ix) for u in node.inputs])

    def compute(self, node: Node, args: list[ir.Expr]) -> ir.Expr:
        return _convert(COMPUTE[node.op](node)(args), node.outputs[0].type.dtype)

    def reaches(self, v: Value, target: Value) -> bool:
        """Does computing `v` here compute `target` (not yet bound)?"""
        if v.id == target.id:
            return True
        node = self.inside.get(v.id)
        if node is None or v.id in self.scalars or v.id in self.bound:
            return False
        return any(self.reaches(u, target) for u in node.inputs)


def lower_rows(ctx, region: RowRegion) -> tuple[ir.Stmt, ...]:
    row = _Row(ctx, region)
    full = row.full
    axes = region.axes
    sink_out = region.sink.outputs[0]
    sink_buf = ctx.buf(sink_out)
    outer_axes = [a for a in range(len(full)) if a not in axes]
    reduced = [full[a] for a in axes]
    stash = region.stash

    def per_row(outer_vars: list[ir.Expr]) -> list[ir.Stmt]:
        row.scalars.clear()
        row.bound.clear()
        stashed = False

        def full_index(red_vars: Sequence[ir.Expr]) -> list[ir.Expr]:
            outer, inner = iter(outer_vars), iter(red_vars)
            return [next(inner) if a in axes else next(outer) for a in range(len(full))]

        scalar_index = full_index([ir.idx(0)] * len(axes))
        scalar_shape = tuple(Dim.of(1) if a in axes else d for a, d in enumerate(full))
        stmts: list[ir.Stmt] = []

        def row_loop(target: Value, body_of, fold=None) -> tuple[list[ir.Stmt], ir.Expr | None]:
            """A loop over the row computing `target`'s expression, stashing on the way;
            with a `fold`, the reduction's own loop (fold.loop), and its accumulator."""
            nonlocal stashed

            def body(red_vars: list[ir.Expr], acc: str | None = None) -> list[ir.Stmt]:
                ix = full_index(red_vars)
                at = ir.flat_index(full, ix)
                pre: list[ir.Stmt] = []
                if stash is not None and stashed:
                    row.bound[stash.id] = ir.Load(sink_buf, at, stash.type.dtype)
                elif stash is not None and row.reaches(target, stash):
                    name = ctx.fresh("stash")
                    pre = [
                        ir.Local(name, stash.type.dtype, row.value(stash, ix)),
                        ir.Store(sink_buf, at, ir.Var(name, stash.type.dtype)),
                    ]
                    row.bound[stash.id] = ir.Var(name, stash.type.dtype)
                out = pre + body_of(ix, at, acc)
                row.bound.clear()
                return out

            computes_stash = stash is not None and not stashed and row.reaches(target, stash)
            pre_loop: list[ir.Stmt] = []
            if computes_stash and fold is not None:
                # the stash in a loop of its own (softmax: out = exp(x - max)), which the
                # loop vectorizer takes; the fold's unrolled chains then only load it
                def store_stash(red_vars: list[ir.Expr]) -> list[ir.Stmt]:
                    ix = full_index(red_vars)
                    return [ir.Store(sink_buf, ir.flat_index(full, ix), row.value(stash, ix))]

                pre_loop = list(ir.loop_nest(reduced, ctx.fresh("r"), store_stash))
                stashed, computes_stash = True, False
            if fold is None:
                loop, total = list(ir.loop_nest(reduced, ctx.fresh("r"), body)), None
            else:
                loop, total = fold.loop(ctx, reduced, body)
            stashed = stashed or computes_stash
            return pre_loop + loop, total

        for node in region.nodes:
            out = node.outputs[0]
            if node is region.sink:
                loop, _ = row_loop(
                    out, lambda ix, at, _acc, out=out: [ir.Store(sink_buf, at, row.value(out, ix))]
                )
                stmts += loop
            elif node.op in REDUCTIONS:
                (x,) = node.inputs
                fold = fold_of(node.op, x.type.dtype, reduced)
                loop, total = row_loop(
                    x,
                    lambda ix, at, acc, x=x, fold=fold: [
                        ir.Assign(acc, fold.step(ir.Var(acc, fold.acc_dtype), row.value(x, ix)))
                    ],
                    fold,
                )
                stmts += loop
                name = ctx.fresh("s")
                stmts.append(ir.Local(name, out.type.dtype, fold.result(total)))
                row.scalars[out.id] = ir.Var(name, out.type.dtype)
            elif ctx.shape(out) == scalar_shape and ctx.shape(out) != full:
                args = [
                    row.scalars[u.id]
                    if u.id in row.scalars
                    else operand(ctx, u, scalar_shape, scalar_index)
                    for u in node.inputs
                ]
                name = ctx.fresh("s")
                stmts.append(ir.Local(name, out.type.dtype, row.compute(node, args)))
                row.scalars[out.id] = ir.Var(name, out.type.dtype)
            # row values: expressions, computed where they are used
        return stmts

    return ir.flat_loop([full[a] for a in outer_axes], ctx.fresh("row"), per_row, parallel=True)
