"""Parallel execution in emitted code: when a loop or a matrix product is worth the threads.

`work_estimate` turns a statement list into an i64 loop-IR expression of how many
innermost steps it runs (loop trip counts multiplied out; a trip count that depends
on an enclosing loop counts as `GUESS`; a step calling the math library as
`LIBRARY_COST`). Kernels compare it with `MIN_LOOP_WORK` at
run time: below it, waking the workers costs more than it saves.

`define_parallel_gemm` wraps the GEMM micro-kernel: large products are split into
blocks of columns (or of rows, for tall and narrow products), one contiguous range per
thread. Every element of C is the same k-ordered chain of fused multiply-adds however
the product is split (gemm.py), so results do not depend on the thread count.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import llvmlite.ir as ll

from . import loopir as ir
from .pool import I8P, I64, TASK, Pool, threads_of

MIN_LOOP_WORK = 1 << 17  # innermost steps of a loop nest worth splitting (measured: GPT, ResNet-20)
MIN_GEMM_WORK = 1 << 19  # multiply-adds of a product worth splitting
# ... or elements of B for a product of few rows (a batch-1 Dense): it streams B from L3
# once, so two cores' caches and load ports halve it where the multiply-adds alone would not
# repay the workers' wake-up
MIN_GEMV_B = 1 << 17
GEMV_ROWS = 4
GUESS = 16  # the trip count of a loop whose bounds depend on an enclosing loop
ROW_UNIT = 8  # rows per unit when splitting rows
COL_UNIT = 32  # columns per unit when splitting columns (two AVX-512 vectors of f32)


def _has_var(e: ir.Expr) -> bool:
    """Does `e` depend on anything but the run-time dims (a variable or memory)?"""
    return any(isinstance(x, ir.Var | ir.Load) for x in ir.subexpressions(e))


def _known(e: ir.Expr) -> ir.Expr:
    return ir.idx(GUESS) if _has_var(e) else e


def work_estimate(stmts: Sequence[ir.Stmt]) -> ir.Expr:
    total: ir.Expr = ir.idx(0)
    for st in stmts:
        match st:
            case ir.For():
                trip = _known(ir.Bin("sub", st.stop, st.start, ir.I64))
                inner = work_estimate(st.body)
                total = ir.add(total, ir.mul(trip, inner))
            case ir.Gemm():
                total = ir.add(total, ir.mul(ir.mul(_known(st.m), _known(st.n)), _known(st.k)))
            case ir.If():
                total = ir.add(total, ir.add(work_estimate(st.then), work_estimate(st.orelse)))
            case ir.Store() | ir.Local() | ir.Assign():
                total = ir.add(total, ir.idx(_cost(st)))
            case _:
                total = ir.add(total, ir.idx(1))
    return total


# library calls (erf, exp, tanh, ...) cost tens of cycles where a step costs about one: a
# GELU over 64 x 1024 floats is worth splitting though it has few steps
LIBRARY_COST = 16
_LIBRARY = frozenset({"exp", "log", "tanh", "erf", "sigmoid", "sin", "cos", "pow"})


def _cost(st: ir.Stmt) -> int:
    value = st.value if isinstance(st, ir.Store | ir.Assign) else st.init
    return LIBRARY_COST if _calls_library(value) else 1


def _calls_library(e: ir.Expr) -> bool:
    return any(isinstance(x, ir.Un | ir.Bin) and x.op in _LIBRARY for x in ir.subexpressions(e))


def define_parallel_gemm(m: ll.Module, gemm: ll.Function, pool: Pool) -> ll.Function:
    """`void <gemm>_par(i8* pool, A*, B*, C*, m, n, k, lda, ldb, ldc)`."""
    name = f"{gemm.name}_par"
    if name in m.globals:
        return m.globals[name]
    ptr = gemm.args[0].type
    extra = [a.type for a in gemm.args[9:]]  # the row offsets of an indirect product
    args = ll.LiteralStructType([ptr, ptr, ptr] + [I64] * 6 + extra)
    fn = ll.Function(
        m, ll.FunctionType(ll.VoidType(), [I8P, ptr, ptr, ptr] + [I64] * 6 + extra), name
    )
    fn.linkage = "internal"
    by_rows = _gemm_task(m, gemm, args, rows=True)
    by_cols = _gemm_task(m, gemm, args, rows=False)
    raw, a, b_, c, rows, cols, depth, lda, ldb, ldc = fn.args[:10]
    tail = list(fn.args[10:])
    b = ll.IRBuilder(fn.append_basic_block("entry"))
    alone = fn.append_basic_block("alone")
    check = fn.append_basic_block("check")
    b.cbranch(b.icmp_unsigned("==", raw, ll.Constant(I8P, None)), alone, check)
    b.position_at_end(alone)
    b.call(gemm, [a, b_, c, rows, cols, depth, lda, ldb, ldc, *tail])
    b.ret_void()
    b.position_at_end(check)
    b_elements = b.mul(cols, depth)
    work = b.mul(rows, b_elements)
    enough = b.or_(
        b.icmp_signed(">=", work, ll.Constant(I64, MIN_GEMM_WORK)),
        b.and_(
            b.icmp_signed("<=", rows, ll.Constant(I64, GEMV_ROWS)),
            b.icmp_signed(">=", b_elements, ll.Constant(I64, MIN_GEMV_B)),
        ),
    )
    split = fn.append_basic_block("split")
    b.cbranch(enough, split, alone)
    b.position_at_end(split)
    threads = threads_of(b, raw)
    ctx = b.alloca(args)
    for i, v in enumerate((a, b_, c, rows, cols, depth, lda, ldb, ldc, *tail)):
        b.store(v, b.gep(ctx, [ll.Constant(ll.IntType(32), 0), ll.Constant(ll.IntType(32), i)]))
    ctx_raw = b.bitcast(ctx, I8P)
    col_units = _ceil_div(b, cols, COL_UNIT)
    row_units = _ceil_div(b, rows, ROW_UNIT)
    # columns when each thread gets at least two units (each packs only its part of B),
    # else rows when there are several row blocks, else columns
    use_cols = b.or_(
        b.icmp_signed(">=", col_units, b.mul(threads, ll.Constant(I64, 2))),
        b.icmp_signed("<", row_units, ll.Constant(I64, 2)),
    )
    pf = pool.parallel_for
    with b.if_else(use_cols) as (then, orelse):
        with then:
            b.call(pf, [raw, by_cols, ctx_raw, col_units])
        with orelse:
            b.call(pf, [raw, by_rows, ctx_raw, row_units])
    b.ret_void()
    return fn


def _ceil_div(b: ll.IRBuilder, x: Any, unit: int) -> Any:
    return b.sdiv(b.add(x, ll.Constant(I64, unit - 1)), ll.Constant(I64, unit))


def _gemm_task(m: ll.Module, gemm: ll.Function, args: ll.Type, rows: bool) -> ll.Function:
    fn = ll.Function(m, TASK, f"{gemm.name}_{'rows' if rows else 'cols'}")
    fn.linkage = "internal"
    raw, begin, end = fn.args
    b = ll.IRBuilder(fn.append_basic_block("entry"))
    ctx = b.bitcast(raw, args.as_pointer())
    fields = [
        b.load(b.gep(ctx, [ll.Constant(ll.IntType(32), 0), ll.Constant(ll.IntType(32), i)]))
        for i in range(len(args.elements))
    ]
    a, b_, c, nrows, ncols, depth, lda, ldb, ldc = fields[:9]
    tail = fields[9:]  # an indirect product's row offsets: the same for any split
    unit = ll.Constant(I64, ROW_UNIT if rows else COL_UNIT)
    lo = b.mul(begin, unit)
    size = nrows if rows else ncols
    hi = b.mul(end, unit)
    hi = b.select(b.icmp_signed("<", hi, size), hi, size)
    count = b.sub(hi, lo)
    if rows:
        b.call(
            gemm,
            [
                b.gep(a, [b.mul(lo, lda)]),
                b_,
                b.gep(c, [b.mul(lo, ldc)]),
                count,
                ncols,
                depth,
                lda,
                ldb,
                ldc,
                *tail,
            ],
        )
    else:
        b.call(
            gemm, [a, b.gep(b_, [lo]), b.gep(c, [lo]), nrows, count, depth, lda, ldb, ldc, *tail]
        )
    b.ret_void()
    return fn
