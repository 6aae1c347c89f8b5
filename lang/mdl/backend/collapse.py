"""Loop-IR pass: `Program` -> the same program with each parallel loop over a small
outermost axis merged with the loop inside it.

Lowerings mark the outermost loop of a nest parallel, and for most kernels that is the
batch axis: at batch 1 a parallel loop of one iteration runs on one thread however much
work is inside (GPT's GELU over 64 positions x 1024 features). When the parallel loop's
body is exactly one loop whose bounds do not depend on it, both become one parallel
loop over their product, the two indices recovered by a division per outer iteration
(cheap beside the loops still inside). Only nests at least three deep are merged, so
that the division is never per element. Which thread runs which index changes nothing
in what it computes (parallel iterations are independent), so results are unchanged.
Runs after epilogue fusion, which merges a tail into its product's loop by comparing
their (unmerged) ranges.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from . import loopir as ir


def collapse_parallel(program: ir.Program) -> ir.Program:
    program.kernels = [
        replace(k, body=tuple(_collapse(st) for st in k.body)) for k in program.kernels
    ]
    return program


def _collapse(st: ir.Stmt) -> ir.Stmt:
    if not (isinstance(st, ir.For) and st.parallel and len(st.body) == 1):
        return st
    inner = st.body[0]
    if not isinstance(inner, ir.For) or inner.parallel:
        return st
    if not _zero(st.start) or not _zero(inner.start):
        return st
    if _mentions(inner.stop, st.var) or not any(_has_loop(s) for s in inner.body):
        return st
    flat = f"{st.var}_{inner.var}"
    total = ir.Bin("mul", st.stop, inner.stop, ir.I64)
    indices = (
        ir.Local(st.var, ir.I64, ir.Bin("floordiv", ir.Var(flat), inner.stop, ir.I64)),
        ir.Local(inner.var, ir.I64, ir.Bin("mod", ir.Var(flat), inner.stop, ir.I64)),
    )
    return ir.For(flat, ir.idx(0), total, indices + inner.body, True)


def _zero(e: ir.Expr) -> bool:
    return isinstance(e, ir.Const) and e.value == 0


def _has_loop(st: ir.Stmt) -> bool:
    match st:
        case ir.For() | ir.Gemm():
            return True
        case ir.If():
            return any(_has_loop(s) for s in st.then + st.orelse)
    return False


def _mentions(e: Any, name: str) -> bool:
    return any(isinstance(x, ir.Var) and x.name == name for x in ir.subexpressions(e))
