"""GEMM tiles: LLVM functions that compute one block of C held in vector registers.

    void tile(A*, i64 lda, B*, i64 ldb, C*, i64 ldc, i64 kc, i1 accumulate, i64 ncols)

computes a `rows` x `vecs` vectors block: C = (accumulate ? C : 0) + A[:, :kc] @ B[:kc, :].
The rows * vecs accumulators stay in registers through the whole k loop; per step,
`vecs` loads of B, `rows` broadcasts of A and rows * vecs fused multiply-adds.
Masked tiles touch only the first `ncols` columns of B and C (the column tail of a
product); the others ignore `ncols`. B is either the caller's matrix (ldb its leading
dimension) or a packed panel (ldb the panel width): the tile does not know which.

Starting from 0 or reloading C is exact, so every element is the k-ordered chain of
fused multiply-adds whatever the blocking of k, rows or columns; the drivers in
gemm.py rely on it. Also the IR helpers the drivers share (loops, intrinsics, masks).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import llvmlite.ir as ll

I1 = ll.IntType(1)
I32 = ll.IntType(32)
I64 = ll.IntType(64)
F32 = ll.FloatType()


def const(v: int) -> ll.Constant:
    return ll.Constant(I64, v)


def dtype_name(t: ll.Type) -> str:
    return "f32" if t == F32 else "f64"


def align_of(t: ll.Type) -> int:
    return 4 if t == F32 else 8


def define_tile(
    m: ll.Module, t: ll.Type, width: int, rows: int, vecs: int, masked: bool,
    indirect: bool = False,
) -> ll.Function:  # fmt: skip
    """`indirect`: a last argument `i64* boff`, B's row k at b + boff[k] (ldb unused)."""
    name = f"mdl_gemm_{dtype_name(t)}_w{width}_tile{rows}x{vecs}{'m' if masked else ''}"
    name += "_ind" if indirect else ""
    if name in m.globals:
        return m.globals[name]
    p = t.as_pointer()
    extra = [I64.as_pointer()] if indirect else []
    fn = ll.Function(
        m, ll.FunctionType(ll.VoidType(), [p, I64, p, I64, p, I64, I64, I1, I64, *extra]), name
    )
    fn.linkage = "internal"
    fn.attributes.add("noinline")
    for arg in (fn.args[0], fn.args[2], fn.args[4]):
        arg.add_attribute("noalias")
    a, lda, b, ldb, c, ldc, kc, accumulate, ncols = fn.args[:9]
    boff = fn.args[9] if indirect else None
    vec = ll.VectorType(t, width)
    vp = vec.as_pointer()
    align = align_of(t)
    bld = ll.IRBuilder(fn.append_basic_block("entry"))
    masks = [lane_mask(bld, width, bld.sub(ncols, const(h * width))) for h in range(vecs)]
    zero = ll.Constant(vec, [ll.Constant(t, 0.0)] * width)

    def c_ptr(bld: ll.IRBuilder, r: int, h: int) -> Any:
        at = bld.add(bld.mul(const(r), ldc), const(h * width))
        return bld.bitcast(bld.gep(c, [at]), vp)

    def load(bld: ll.IRBuilder, ptr: Any, h: int) -> Any:
        if masked:
            return masked_load(m, bld, ptr, masks[h], zero, align)
        return bld.load(ptr, align=align)

    # accumulators start from 0, or from C when an earlier block of k wrote it
    start = bld.block
    reload = fn.append_basic_block("reload")
    ready = fn.append_basic_block("ready")
    bld.cbranch(accumulate, reload, ready)
    bld.position_at_end(reload)
    loaded = [load(bld, c_ptr(bld, r, h), h) for r in range(rows) for h in range(vecs)]
    bld.branch(ready)
    bld.position_at_end(ready)
    init = []
    for v in loaded:
        phi = bld.phi(vec)
        phi.add_incoming(zero, start)
        phi.add_incoming(v, reload)
        init.append(phi)

    fma = intrinsic(m, "llvm.fma", vec, 3)
    a_rows = [bld.gep(a, [bld.mul(const(r), lda)]) for r in range(rows)]

    def kstep(bld: ll.IRBuilder, kk: Any, accs: list[Any]) -> list[Any]:
        if boff is not None:
            brow = bld.gep(b, [bld.load(bld.gep(boff, [kk]))])
        else:
            brow = bld.gep(b, [bld.mul(kk, ldb)])
        bvecs = [
            load(bld, bld.bitcast(bld.gep(brow, [const(h * width)]), vp), h) for h in range(vecs)
        ]
        out = []
        for r in range(rows):
            x = splat(bld, bld.load(bld.gep(a_rows[r], [kk])), width)
            out += [bld.call(fma, [x, bvecs[h], accs[r * vecs + h]]) for h in range(vecs)]
        return out

    accs = loop_carry(fn, bld, const(0), kc, init, kstep)
    for r in range(rows):
        for h in range(vecs):
            ptr = c_ptr(bld, r, h)
            if masked:
                masked_store(m, bld, accs[r * vecs + h], ptr, masks[h], align)
            else:
                bld.store(accs[r * vecs + h], ptr, align=align)
    bld.ret_void()
    return fn


# ---------------------------------------------------------------- shared IR helpers


def splat(bld: ll.IRBuilder, x: Any, width: int) -> Any:
    vec = ll.VectorType(x.type, width)
    one = bld.insert_element(ll.Constant(vec, ll.Undefined), x, ll.Constant(I32, 0))
    return bld.shuffle_vector(
        one, ll.Constant(vec, ll.Undefined), ll.Constant(ll.VectorType(I32, width), [0] * width)
    )


def lane_mask(bld: ll.IRBuilder, width: int, count: Any) -> Any:
    """<width x i1> with the first clamp(count, 0, width) lanes set: a bit mask, which
    AVX-512 moves straight into a mask register."""
    bits = ll.IntType(width)
    n = bld.select(bld.icmp_signed("<", count, const(0)), const(0), count)
    n = bld.select(bld.icmp_signed(">", n, const(width)), const(width), n)
    wide = bld.sub(bld.shl(const(1), n), const(1))
    return bld.bitcast(bld.trunc(wide, bits), ll.VectorType(I1, width))


def masked_load(
    m: ll.Module, bld: ll.IRBuilder, ptr: Any, mask: Any, passthru: Any, align: int
) -> Any:
    vec = passthru.type
    name = f"llvm.masked.load.{_vector_suffix(vec)}.p0"
    fn = m.globals.get(name) or ll.Function(
        m, ll.FunctionType(vec, [vec.as_pointer(), I32, mask.type, vec]), name
    )
    return bld.call(fn, [ptr, ll.Constant(I32, align), mask, passthru])


def masked_store(
    m: ll.Module, bld: ll.IRBuilder, value: Any, ptr: Any, mask: Any, align: int
) -> None:
    vec = value.type
    name = f"llvm.masked.store.{_vector_suffix(vec)}.p0"
    fn = m.globals.get(name) or ll.Function(
        m, ll.FunctionType(ll.VoidType(), [vec, vec.as_pointer(), I32, mask.type]), name
    )
    bld.call(fn, [value, ptr, ll.Constant(I32, align), mask])


def intrinsic(m: ll.Module, name: str, t: ll.Type, arity: int) -> ll.Function:
    suffix = _vector_suffix(t) if isinstance(t, ll.VectorType) else dtype_name(t)
    full = f"{name}.{suffix}"
    if full in m.globals:
        return m.globals[full]
    return ll.Function(m, ll.FunctionType(t, [t] * arity), full)


def _vector_suffix(t: ll.VectorType) -> str:
    return f"v{t.count}{dtype_name(t.element)}"


def loop_carry(
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
    i.add_incoming(bld.add(i, const(1)), bld.block)
    bld.branch(head)
    bld.position_at_end(done)
    return carried
