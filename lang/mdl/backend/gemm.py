"""The GEMM micro-kernel: explicit vector code for `loopir.Gemm`, emitted once per dtype.

    void mdl_gemm_f32(A*, B*, C*, i64 m, i64 n, i64 k, i64 lda, i64 ldb, i64 ldc)

computes C = A @ B (row-major, leading dimensions lda/ldb/ldc). Blocks of MR
rows by NR = 2 vectors of columns keep their MR x 2 accumulators in vector
registers through the whole k loop: per step two loads of B, MR broadcasts of
A and 2 MR fused multiply-adds. Rows past the last full block use the same
kernel with one row; columns past the last full vector pair, a scalar loop.
Every element is the k-ordered chain of fused multiply-adds in every path, so
results do not depend on the blocking (or, later, on how threads split it).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import llvmlite.ir as ll

I64 = ll.IntType(64)


def rows_per_block(width: int) -> int:
    # accumulators (2 MR vectors) + 2 B vectors + 1 broadcast must fit the register file:
    # 16 registers with AVX2 (width 8 f32), 32 with AVX-512 (width 16)
    return 8 if width >= 16 else 6


def define_gemm(m: ll.Module, t: ll.Type, width: int) -> ll.Function:
    name = f"mdl_gemm_{'f32' if t == ll.FloatType() else 'f64'}_w{width}"
    if name in m.globals:
        return m.globals[name]
    p = t.as_pointer()
    fn = ll.Function(m, ll.FunctionType(ll.VoidType(), [p, p, p] + [I64] * 6), name)
    fn.linkage = "internal"
    for arg in fn.args[:3]:
        arg.add_attribute("noalias")
    a, b, c, rows, cols, depth, lda, ldb, ldc = fn.args
    vec = ll.VectorType(t, width)
    fma_v = _intrinsic(m, "llvm.fma", vec)
    fma_s = _intrinsic(m, "llvm.fma", t)
    bld = ll.IRBuilder(fn.append_basic_block("entry"))
    mr = rows_per_block(width)
    nr = 2 * width
    full_rows = bld.mul(bld.sdiv(rows, ll.Constant(I64, mr)), ll.Constant(I64, mr))
    full_cols = bld.mul(bld.sdiv(cols, ll.Constant(I64, nr)), ll.Constant(I64, nr))

    def block(bld: ll.IRBuilder, i0: Any, nrows: int) -> None:
        """Rows i0 .. i0+nrows: vector pairs of columns, then the scalar column tail."""

        def vector_cols(bld: ll.IRBuilder, j0: Any) -> None:
            zero = ll.Constant(vec, [ll.Constant(t, 0.0)] * width)
            accs = _loop_carry(
                fn,
                bld,
                ll.Constant(I64, 0),
                depth,
                [zero] * (2 * nrows),
                lambda bld, kk, accs: _kstep(bld, kk, accs, i0, j0, nrows),
            )
            for r in range(nrows):
                row = bld.mul(bld.add(i0, ll.Constant(I64, r)), ldc)
                for h in range(2):
                    at = bld.add(row, bld.add(j0, ll.Constant(I64, h * width)))
                    ptr = bld.bitcast(bld.gep(c, [at]), vec.as_pointer())
                    bld.store(accs[2 * r + h], ptr, align=4 if t == ll.FloatType() else 8)

        def _kstep(
            bld: ll.IRBuilder, kk: Any, accs: list[Any], i0: Any, j0: Any, nrows: int
        ) -> list[Any]:
            brow = bld.mul(kk, ldb)
            bvecs = []
            for h in range(2):
                at = bld.add(brow, bld.add(j0, ll.Constant(I64, h * width)))
                ptr = bld.bitcast(bld.gep(b, [at]), vec.as_pointer())
                bvecs.append(bld.load(ptr, align=4 if t == ll.FloatType() else 8))
            out = []
            for r in range(nrows):
                x = bld.load(
                    bld.gep(a, [bld.add(bld.mul(bld.add(i0, ll.Constant(I64, r)), lda), kk)])
                )
                splat = bld.shuffle_vector(
                    bld.insert_element(
                        ll.Constant(vec, ll.Undefined), x, ll.Constant(ll.IntType(32), 0)
                    ),
                    ll.Constant(vec, ll.Undefined),
                    ll.Constant(ll.VectorType(ll.IntType(32), width), [0] * width),
                )
                for h in range(2):
                    out.append(bld.call(fma_v, [splat, bvecs[h], accs[2 * r + h]]))
            return out

        _loop(fn, bld, ll.Constant(I64, 0), full_cols, nr, vector_cols)

        def scalar_col(bld: ll.IRBuilder, j: Any) -> None:
            for r in range(nrows):
                i = bld.add(i0, ll.Constant(I64, r))

                def kstep(bld: ll.IRBuilder, kk: Any, accs: list[Any], i: Any = i) -> list[Any]:
                    x = bld.load(bld.gep(a, [bld.add(bld.mul(i, lda), kk)]))
                    y = bld.load(bld.gep(b, [bld.add(bld.mul(kk, ldb), j)]))
                    return [bld.call(fma_s, [x, y, accs[0]])]

                (acc,) = _loop_carry(
                    fn, bld, ll.Constant(I64, 0), depth, [ll.Constant(t, 0.0)], kstep
                )
                bld.store(acc, bld.gep(c, [bld.add(bld.mul(i, ldc), j)]))

        _loop(fn, bld, full_cols, cols, 1, scalar_col)

    _loop(fn, bld, ll.Constant(I64, 0), full_rows, mr, lambda bld, i0: block(bld, i0, mr))
    _loop(fn, bld, full_rows, rows, 1, lambda bld, i0: block(bld, i0, 1))
    bld.ret_void()
    return fn


def _intrinsic(m: ll.Module, name: str, t: ll.Type) -> ll.Function:
    suffix = (
        f"v{t.count}{_scalar_name(t.element)}" if isinstance(t, ll.VectorType) else _scalar_name(t)
    )
    full = f"{name}.{suffix}"
    if full in m.globals:
        return m.globals[full]
    return ll.Function(m, ll.FunctionType(t, [t, t, t]), full)


def _scalar_name(t: ll.Type) -> str:
    return "f32" if t == ll.FloatType() else "f64"


def _loop(
    fn: ll.Function,
    bld: ll.IRBuilder,
    start: Any,
    stop: Any,
    step: int,
    body: Callable[[ll.IRBuilder, Any], None],
) -> None:
    """for (i = start; i < stop; i += step) body(i) — leaves `bld` after the loop."""
    head = fn.append_basic_block("head")
    loop_body = fn.append_basic_block("body")
    done = fn.append_basic_block("done")
    before = bld.block
    bld.branch(head)
    bld.position_at_end(head)
    i = bld.phi(I64)
    i.add_incoming(start, before)
    bld.cbranch(bld.icmp_signed("<", i, stop), loop_body, done)
    bld.position_at_end(loop_body)
    body(bld, i)
    i.add_incoming(bld.add(i, ll.Constant(I64, step)), bld.block)
    bld.branch(head)
    bld.position_at_end(done)


def _loop_carry(
    fn: ll.Function,
    bld: ll.IRBuilder,
    start: Any,
    stop: Any,
    init: list[Any],
    step: Callable[[ll.IRBuilder, Any, list[Any]], list[Any]],
) -> list[Any]:
    """A counted loop carrying values in registers; returns their final values."""
    head = fn.append_basic_block("khead")
    loop_body = fn.append_basic_block("kbody")
    done = fn.append_basic_block("kdone")
    before = bld.block
    bld.branch(head)
    bld.position_at_end(head)
    i = bld.phi(I64)
    i.add_incoming(start, before)
    carried = []
    for v in init:
        phi = bld.phi(v.type)
        phi.add_incoming(v, before)
        carried.append(phi)
    bld.cbranch(bld.icmp_signed("<", i, stop), loop_body, done)
    bld.position_at_end(loop_body)
    new = step(bld, i, carried)
    for phi, v in zip(carried, new, strict=True):
        phi.add_incoming(v, bld.block)
    i.add_incoming(bld.add(i, ll.Constant(I64, 1)), bld.block)
    bld.branch(head)
    bld.position_at_end(done)
    return carried
