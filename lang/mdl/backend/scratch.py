"""Per-thread scratch blocks kept between calls, emitted into every compiled module.

    i8*  take(size)                       (internal) a cached block, else malloc(size)
    void give(i8* block)                  (internal) back into the cache, else free
    void mdl_scratch_release()            frees every cached block (the JIT's finalizer,
                                          an artifact's destroy)

A parallel loop with per-thread scratch (`Program.chunks`: a convolution's padded
input, wide output, offset table) used to malloc it on every run of its body and free
it after. Blocks of 100 KB and more sit at the top of glibc's heap, so each free gave
the memory back to the kernel (`brk`) and the next malloc faulted it in again: 12
`brk` calls per ResNet-20 call, and with a second thread every shrink also cost a
TLB shootdown interrupt on the other core (ResNet-20 batch 1 was slower on two
threads than on one). Now a run takes a block from a small lock-free cache of the
module (an atomic exchange with NULL per slot) and puts it back after (a
compare-and-exchange from NULL; when every slot is taken, free). Every block has the
module's largest per-thread size, so any block serves any loop; concurrent runs (two
threads calling one model, several contexts of one library) each get their own
block, a missing one from malloc. The cache holds at most SLOTS blocks (SLOTS x
`MemoryPlan.per_thread` bytes) until `mdl_scratch_release`.
"""

from __future__ import annotations

from typing import Any

import llvmlite.ir as ll

from .irloops import loop

I8P = ll.IntType(8).as_pointer()
I64 = ll.IntType(64)
SLOTS = 8  # blocks kept: one per thread of the pools we make (2 to 8 cores), and some more
CACHE, TAKE, GIVE, RELEASE = (
    "mdl_scratch_cache",
    "mdl_scratch_take",
    "mdl_scratch_give",
    ("mdl_scratch_release"),
)


def _libc(m: ll.Module, name: str, fty: ll.FunctionType) -> ll.Function:
    return m.globals.get(name) or ll.Function(m, fty, name)


def _cache(m: ll.Module) -> Any:
    if CACHE in m.globals:
        return m.globals[CACHE]
    cache = ll.GlobalVariable(m, ll.ArrayType(I8P, SLOTS), CACHE)
    cache.linkage = "internal"
    cache.initializer = ll.Constant(ll.ArrayType(I8P, SLOTS), None)
    return cache


def _slot(b: ll.IRBuilder, cache: Any, i: Any) -> Any:
    return b.gep(cache, [ll.Constant(I64, 0), i])


def define_take(m: ll.Module) -> ll.Function:
    """`i8* take(i64 size)`: the first cached block, else malloc(size) (NULL when it fails)."""
    if TAKE in m.globals:
        return m.globals[TAKE]
    malloc = _libc(m, "malloc", ll.FunctionType(I8P, [I64]))
    fn = ll.Function(m, ll.FunctionType(I8P, [I64]), TAKE)
    fn.linkage = "internal"
    fn.attributes.add("nounwind")
    b = ll.IRBuilder(fn.append_basic_block("entry"))
    cache = _cache(m)
    null = ll.Constant(I8P, None)
    for i in range(SLOTS):  # unrolled: a handful of exchanges
        got = b.atomic_rmw("xchg", _slot(b, cache, ll.Constant(I64, i)), null, "acq_rel")
        found = fn.append_basic_block(f"found{i}")
        nxt = fn.append_basic_block(f"next{i}")
        b.cbranch(b.icmp_unsigned("!=", got, null), found, nxt)
        ll.IRBuilder(found).ret(got)
        b.position_at_end(nxt)
    b.ret(b.call(malloc, [fn.args[0]]))
    return fn


def define_give(m: ll.Module) -> ll.Function:
    """`void give(i8* block)`: into the first empty slot, else free."""
    if GIVE in m.globals:
        return m.globals[GIVE]
    free = _libc(m, "free", ll.FunctionType(ll.VoidType(), [I8P]))
    fn = ll.Function(m, ll.FunctionType(ll.VoidType(), [I8P]), GIVE)
    fn.linkage = "internal"
    fn.attributes.add("nounwind")
    b = ll.IRBuilder(fn.append_basic_block("entry"))
    cache = _cache(m)
    null = ll.Constant(I8P, None)
    for i in range(SLOTS):
        slot = _slot(b, cache, ll.Constant(I64, i))
        got = b.cmpxchg(slot, null, fn.args[0], "acq_rel", "monotonic")
        kept = fn.append_basic_block(f"kept{i}")
        nxt = fn.append_basic_block(f"next{i}")
        b.cbranch(b.extract_value(got, 1), kept, nxt)
        ll.IRBuilder(kept).ret_void()
        b.position_at_end(nxt)
    b.call(free, [fn.args[0]])
    b.ret_void()
    return fn


def define_release(m: ll.Module) -> ll.Function:
    """`void mdl_scratch_release()`: free every cached block (blocks in use by a running
    call are not in the cache: they come back to it, or are freed, when that call ends)."""
    if RELEASE in m.globals:
        return m.globals[RELEASE]
    free = _libc(m, "free", ll.FunctionType(ll.VoidType(), [I8P]))
    fn = ll.Function(m, ll.FunctionType(ll.VoidType(), []), RELEASE)
    fn.attributes.add("nounwind")
    b = ll.IRBuilder(fn.append_basic_block("entry"))
    cache = _cache(m)
    null = ll.Constant(I8P, None)

    def one(bb: ll.IRBuilder, i: Any) -> None:
        bb.call(free, [bb.atomic_rmw("xchg", _slot(bb, cache, i), null, "acq_rel")])

    loop(fn, b, ll.Constant(I64, 0), ll.Constant(I64, SLOTS), 1, one)
    b.ret_void()
    return fn
