"""Epilogue fusion: loop-IR `Program` -> `Program` with element-wise tails moved into the
matrix products and convolutions they finish.

A kernel P that computes a temporary t with a `Gemm` (a matrix product, or a conv through
im2col), followed later by the one kernel L that reads t: an element-wise kernel (its
loops store one buffer o of t's dtype, reading t only at the element it stores; the bias
add, activation and residual add of a layer, already fused into one loop by lower.py).
Then P writes o directly and L's loop runs inside P, updating o in place: t is gone, and
o is finished while it is still in the cache. When both kernels are one parallel loop
over the same range (a conv's loop over batch entries and the tail's outermost loop over
the same axis), the two loop bodies merge, so each thread finishes the images it
computed. Results do not change: every element gets the same operations in the same
order, only sooner.

L moves only when what else it reads is ready at P: no kernel between P and L writes it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from . import loopir as ir

Rename = Callable[[str], str]


def fuse_epilogues(program: ir.Program) -> ir.Program:
    kernels = list(program.kernels)
    roles = {b.name: b.role for b in program.buffers}
    dtypes = {b.name: b.dtype for b in program.buffers}
    shapes = {b.name: tuple(str(d) for d in b.shape) for b in program.buffers}
    gone: set[str] = set()
    # each kernel's buffers, computed once: the readers of every product's output are looked
    # up among all kernels (GPT: 76 kernels, 4,000 walks and 0.4 s before this cache)
    cache: dict[int, tuple[ir.Kernel, frozenset[str]]] = {}

    def uses(k: ir.Kernel) -> frozenset[str]:
        hit = cache.get(id(k))
        if hit is None or hit[0] is not k:
            hit = cache[id(k)] = (k, frozenset(ir.used_buffers(k.body)))
        return hit[1]

    i = 0
    while i < len(kernels):
        fused = _try_fuse(kernels, i, roles, dtypes, shapes, uses)
        if fused is None:
            i += 1
            continue
        j, merged, temp = fused
        kernels[i] = merged
        del kernels[j]
        gone.add(temp)
    program.kernels = kernels
    program.buffers = [b for b in program.buffers if b.name not in gone]
    return program


def _try_fuse(kernels, i, roles, dtypes, shapes, uses) -> tuple[int, ir.Kernel, str] | None:
    p = kernels[i]
    if not _has_gemm(p.body):
        return None
    for temp in sorted(_written(p.body)):
        if roles.get(temp) != "temp":
            continue
        readers = [j for j, k in enumerate(kernels) if j != i and temp in uses(k)]
        if len(readers) != 1 or readers[0] < i:
            continue
        j = readers[0]
        tail = kernels[j]
        out = _elementwise_output(tail.body, temp)
        if out is None or dtypes[out] is not dtypes[temp] or shapes[out] != shapes[temp]:
            continue
        inputs = set(uses(tail)) - {temp, out}
        if any(_written(k.body) & inputs for k in kernels[i + 1 : j]):
            continue
        if out in _touched(kernels[i + 1 : j]):
            continue

        def to_out(name: str, temp: str = temp, out: str = out) -> str:
            return out if name == temp else name

        head = _rename_stmts(p.body, to_out, {})
        rest = _rename_stmts(tail.body, to_out, {})
        return j, ir.Kernel(f"{p.name}+{tail.name}", _join(head, rest)), temp
    return None


def _join(head: tuple, tail: tuple) -> tuple:
    """The tail after the head; one loop when both are one parallel loop over one range."""
    if (
        len(head) == 1
        and len(tail) == 1
        and isinstance(head[0], ir.For)
        and isinstance(tail[0], ir.For)
        and head[0].parallel
        and tail[0].parallel
        and repr(head[0].start) == repr(tail[0].start)
        and repr(head[0].stop) == repr(tail[0].stop)
    ):
        outer, inner = head[0], tail[0]
        body = _rename_stmts(inner.body, lambda b: b, {inner.var: outer.var})
        return (ir.For(outer.var, outer.start, outer.stop, outer.body + body, True),)
    return head + tail


def _elementwise_output(body: Sequence[ir.Stmt], temp: str) -> str | None:
    """o when `body` is a loop nest storing only o and reading `temp` only at that store's
    own index; else None."""
    stores: list[ir.Store] = []
    ok = _collect(body, stores)
    if not ok or len(stores) != 1:
        return None
    store = stores[0]
    index = repr(store.index)
    loads = _loads(store.value)
    if store.buf == temp or not any(ld.buf == temp for ld in loads):
        return None
    if any(ld.buf == temp and repr(ld.index) != index for ld in loads):
        return None
    if any(ld.buf == store.buf for ld in loads):
        return None
    return store.buf


def _collect(body: Sequence[ir.Stmt], stores: list[ir.Store]) -> bool:
    for st in body:
        match st:
            case ir.For():
                if not _collect(st.body, stores):
                    return False
            case ir.Store():
                stores.append(st)
            case _:
                return False  # locals, conditions, failures: not a plain element-wise loop
    return True


def _loads(e: Any) -> list[ir.Load]:
    return [x for x in ir.subexpressions(e) if isinstance(x, ir.Load)]


def _has_gemm(body: Sequence[ir.Stmt]) -> bool:
    for st in body:
        match st:
            case ir.Gemm():
                return True
            case ir.For():
                if _has_gemm(st.body):
                    return True
            case ir.If():
                if _has_gemm(st.then) or _has_gemm(st.orelse):
                    return True
    return False


def _written(body: Sequence[ir.Stmt]) -> set[str]:
    out: set[str] = set()
    for st in body:
        match st:
            case ir.Store():
                out.add(st.buf)
            case ir.Gemm():
                out.add(st.c)
            case ir.For():
                out |= _written(st.body)
            case ir.If():
                out |= _written(st.then) | _written(st.orelse)
    return out


def _touched(kernels: Sequence[ir.Kernel]) -> set[str]:
    out: set[str] = set()
    for k in kernels:
        out |= set(ir.used_buffers(k.body))
    return out


# ---------------------------------------------------------------- renaming
def _rename_stmts(body: Sequence[ir.Stmt], buf: Rename, var: dict[str, str]) -> tuple:
    return tuple(_rename_stmt(st, buf, var) for st in body)


def _rename_stmt(st: ir.Stmt, buf: Rename, var: dict[str, str]) -> ir.Stmt:
    def e(x: Any) -> Any:
        return _rename_expr(x, buf, var)

    match st:
        case ir.For():
            return ir.For(
                var.get(st.var, st.var),
                e(st.start),
                e(st.stop),
                _rename_stmts(st.body, buf, var),
                st.parallel,
            )
        case ir.Store():
            return ir.Store(buf(st.buf), e(st.index), e(st.value))
        case ir.Local():
            return ir.Local(var.get(st.name, st.name), st.dtype, e(st.init))
        case ir.Assign():
            return ir.Assign(var.get(st.name, st.name), e(st.value))
        case ir.If():
            return ir.If(
                e(st.cond), _rename_stmts(st.then, buf, var), _rename_stmts(st.orelse, buf, var)
            )
        case ir.Fail():
            return ir.Fail(st.code, tuple(e(v) for v in st.values))
        case ir.Gemm():
            return ir.Gemm(
                buf(st.a),
                buf(st.b),
                buf(st.c),
                *(e(x) for x in (st.m, st.n, st.k, st.a_off, st.b_off, st.c_off)),
                *(e(x) for x in (st.lda, st.ldb, st.ldc)),
                buf(st.b_rows) if st.b_rows else "",
            )
    raise ir.LoopIRError(f"cannot rename in {st!r}")


def _rename_expr(x: Any, buf: Rename, var: dict[str, str]) -> Any:
    match x:
        case ir.Var():
            return ir.Var(var.get(x.name, x.name), x.dtype)
        case ir.Const() | ir.Sym():
            return x
        case ir.Load():
            return ir.Load(buf(x.buf), _rename_expr(x.index, buf, var), x.dtype)
        case ir.Un():
            return ir.Un(x.op, _rename_expr(x.x, buf, var), x.dtype)
        case ir.Cast():
            return ir.Cast(_rename_expr(x.x, buf, var), x.dtype)
        case ir.Bin():
            return ir.Bin(x.op, _rename_expr(x.a, buf, var), _rename_expr(x.b, buf, var), x.dtype)
        case ir.Select():
            return ir.Select(
                _rename_expr(x.cond, buf, var),
                _rename_expr(x.a, buf, var),
                _rename_expr(x.b, buf, var),
                x.dtype,
            )
    raise ir.LoopIRError(f"cannot rename in {x!r}")
