"""The thread pool, emitted into every compiled module as LLVM IR (so the JIT needs no C compiler).

    i8*  mdl_pool_create(i64 threads)     threads - 1 workers started once; NULL for 1 thread
    void mdl_pool_destroy(i8* pool)       stops and joins them
    i64  mdl_pool_ran(i8* pool, i64 w)    how many tasks worker w has run (tests read it)
    void mdl_pool_strict(i8* pool, i64 on) the caller never runs a worker's range (tests: a
                                          worker's share then always shows in mdl_pool_ran)
    void parallel_for(i8* pool, void (i8*, i64, i64)* task, i8* ctx, i64 n)   (internal)

`parallel_for` splits 0..n into one contiguous range per thread, the caller
taking the first, and returns when every range is done. Each worker claims its
range (a compare-and-swap on its flag) before it runs it; the caller, its own range
done, claims and runs every range no worker has claimed yet. A worker that is slow
to wake (asleep, or its core taken by another process) thus costs at most the wait
for the ranges already started, never the whole split: on a busy machine a parallel
loop degrades to the caller running it alone. Which thread runs an
iteration never changes what it computes (the kernels' parallel loops have
independent iterations and reduce nothing across them), so results are
bit-identical whatever the thread count. Workers spin on a generation counter
for a while after each task (kernels come in quick succession) and then sleep
on a condition variable; the caller does the same while it waits. A second
caller that finds the pool busy (another thread running the same model) runs
its loop alone rather than wait. pthread objects are treated as opaque blocks
of 64 bytes (glibc x86-64 needs 40 for a mutex, 48 for a condition).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import llvmlite.ir as ll

from .irloops import loop, when

I8 = ll.IntType(8)
I32 = ll.IntType(32)
I64 = ll.IntType(64)
I8P = I8.as_pointer()
VOID = ll.VoidType()
OPAQUE = ll.ArrayType(I64, 8)  # a pthread mutex or condition variable
TASK = ll.FunctionType(VOID, [I8P, I64, I64])
# nthreads, task, ctx, n, generation, pending, stop, busy, mutex, work, done, threads, ran,
# args, claimed, strict
POOL = ll.LiteralStructType(
    [I64, TASK.as_pointer(), I8P, I64, I64, I64, I64, I64, OPAQUE, OPAQUE, OPAQUE]
    + [I64.as_pointer(), I64.as_pointer(), I8P, I64.as_pointer(), I64]
)
(
    NTHREADS,
    TASKF,
    CTX,
    N,
    GENERATION,
    PENDING,
    STOP,
    BUSY,
    MUTEX,
    WORK,
    DONE,
    THREADS,
    RAN,
    ARGS,
    CLAIMED,
    STRICT,
) = range(16)
WORKER_ARG = ll.LiteralStructType([POOL.as_pointer(), I64])
SPIN = 20000  # pause instructions (~0.3 ms) before a waiting thread sleeps

CREATE, DESTROY, RAN_COUNT = "mdl_pool_create", "mdl_pool_destroy", "mdl_pool_ran"
STRICT_SPLIT = "mdl_pool_strict"


@dataclass(frozen=True)
class Pool:
    parallel_for: ll.Function
    create: ll.Function
    destroy: ll.Function


def define_pool(m: ll.Module) -> Pool:
    if CREATE in m.globals:
        return Pool(m.globals["mdl_parallel_for"], m.globals[CREATE], m.globals[DESTROY])
    lib = _Libc(m)
    worker = _worker(m, lib)
    return Pool(_parallel_for(m, lib), _create(m, lib, worker), _destroy(m, lib))


class _Libc:
    def __init__(self, m: ll.Module):
        def fn(name: str, ret: ll.Type, *args: ll.Type) -> ll.Function:
            return m.globals.get(name) or ll.Function(m, ll.FunctionType(ret, args), name)

        start = ll.FunctionType(I8P, [I8P]).as_pointer()
        self.create = fn("pthread_create", I32, I64.as_pointer(), I8P, start, I8P)
        self.join = fn("pthread_join", I32, I64, I8P.as_pointer())
        self.mutex_init = fn("pthread_mutex_init", I32, I8P, I8P)
        self.mutex_destroy = fn("pthread_mutex_destroy", I32, I8P)
        self.lock = fn("pthread_mutex_lock", I32, I8P)
        self.unlock = fn("pthread_mutex_unlock", I32, I8P)
        self.cond_init = fn("pthread_cond_init", I32, I8P, I8P)
        self.cond_destroy = fn("pthread_cond_destroy", I32, I8P)
        self.wait = fn("pthread_cond_wait", I32, I8P, I8P)
        self.broadcast = fn("pthread_cond_broadcast", I32, I8P)
        self.calloc = fn("calloc", I8P, I64, I64)
        self.free = fn("free", VOID, I8P)
        self.sched_yield = fn("sched_yield", I32)
        self.pause = m.globals.get("llvm.x86.sse2.pause") or ll.Function(
            m, ll.FunctionType(VOID, []), "llvm.x86.sse2.pause"
        )


def _c(n: int) -> ll.Constant:
    return ll.Constant(I64, n)


def _field(b: ll.IRBuilder, pool: Any, i: int) -> Any:
    return b.gep(pool, [ll.Constant(I32, 0), ll.Constant(I32, i)])


def _opaque(b: ll.IRBuilder, pool: Any, i: int) -> Any:
    return b.bitcast(_field(b, pool, i), I8P)


def _load(b: ll.IRBuilder, ptr: Any) -> Any:
    return b.load_atomic(ptr, "acquire", 8)


def _internal(m: ll.Module, fty: ll.FunctionType, name: str) -> ll.Function:
    fn = ll.Function(m, fty, name)
    fn.linkage = "internal"
    fn.attributes.add("nounwind")
    return fn


def _spin_until(fn: ll.Function, b: ll.IRBuilder, lib: _Libc, ready: Any, name: str) -> Any:
    """Spin (with `pause`) until `ready(b)` is true or SPIN rounds pass.

    Leaves `b` in a block whose predecessors are `done` (ready) and `timeout`; returns
    (done_block, timeout_block) so the caller branches on which."""
    head = fn.append_basic_block(f"{name}_spin")
    step = fn.append_basic_block(f"{name}_pause")
    done = fn.append_basic_block(f"{name}_ready")
    timeout = fn.append_basic_block(f"{name}_sleep")
    before = b.block
    b.branch(head)
    b.position_at_end(head)
    i = b.phi(I64)
    i.add_incoming(_c(0), before)
    b.cbranch(ready(b), done, step)
    b.position_at_end(step)
    b.call(lib.pause, [])
    # every 64 rounds give the core away: with more threads than cores, spinning
    # waiters would otherwise starve the threads they wait for
    give = fn.append_basic_block(f"{name}_yield")
    again = fn.append_basic_block(f"{name}_again")
    b.cbranch(b.icmp_unsigned("==", b.and_(i, _c(63)), _c(63)), give, again)
    b.position_at_end(give)
    b.call(lib.sched_yield, [])
    b.branch(again)
    b.position_at_end(again)
    nxt = b.add(i, _c(1))
    i.add_incoming(nxt, again)
    b.cbranch(b.icmp_unsigned("<", nxt, _c(SPIN)), head, timeout)
    return done, timeout


def _sleep_until(
    fn: ll.Function,
    b: ll.IRBuilder,
    lib: _Libc,
    pool: Any,
    cond: int,
    ready: Any,
    after: ll.Block,
    name: str,
) -> None:
    """lock; while not ready: wait(cond); unlock; branch to `after`."""
    b.call(lib.lock, [_opaque(b, pool, MUTEX)])
    check = fn.append_basic_block(f"{name}_check")
    wait = fn.append_basic_block(f"{name}_wait")
    out = fn.append_basic_block(f"{name}_unlock")
    b.branch(check)
    b.position_at_end(check)
    b.cbranch(ready(b), out, wait)
    b.position_at_end(wait)
    b.call(lib.wait, [_opaque(b, pool, cond), _opaque(b, pool, MUTEX)])
    b.branch(check)
    b.position_at_end(out)
    b.call(lib.unlock, [_opaque(b, pool, MUTEX)])
    b.branch(after)


def _range_of(b: ll.IRBuilder, n: Any, w: Any, threads: Any) -> tuple[Any, Any]:
    """Worker w's share of 0..n: [n*w/T, n*(w+1)/T). (n is an iteration count of a loop over
    memory, far below 2**63 / T; 128-bit arithmetic would call into the compiler's runtime.)"""
    begin = b.udiv(b.mul(n, w), threads)
    end = b.udiv(b.mul(n, b.add(w, _c(1))), threads)
    return begin, end


def _worker(m: ll.Module, lib: _Libc) -> ll.Function:
    fn = _internal(m, ll.FunctionType(I8P, [I8P]), "mdl_pool_worker")
    b = ll.IRBuilder(fn.append_basic_block("entry"))
    arg = b.bitcast(fn.args[0], WORKER_ARG.as_pointer())
    pool = b.load(b.gep(arg, [ll.Constant(I32, 0), ll.Constant(I32, 0)]))
    me = b.load(b.gep(arg, [ll.Constant(I32, 0), ll.Constant(I32, 1)]))
    seen = b.alloca(I64)
    b.store(_c(0), seen)
    loop = fn.append_basic_block("loop")
    work = fn.append_basic_block("work")
    b.branch(loop)
    b.position_at_end(loop)

    def new_task(bb: ll.IRBuilder) -> Any:
        return bb.icmp_unsigned("!=", _load(bb, _field(bb, pool, GENERATION)), bb.load(seen))

    done, timeout = _spin_until(fn, b, lib, new_task, "task")
    b.position_at_end(done)
    b.branch(work)
    b.position_at_end(timeout)
    _sleep_until(fn, b, lib, pool, WORK, new_task, work, "task")
    b.position_at_end(work)
    b.store(_load(b, _field(b, pool, GENERATION)), seen)
    run = fn.append_basic_block("run")
    leave = fn.append_basic_block("leave")
    b.cbranch(b.icmp_unsigned("!=", _load(b, _field(b, pool, STOP)), _c(0)), leave, run)
    b.position_at_end(leave)
    b.ret(ll.Constant(I8P, None))
    b.position_at_end(run)
    # the caller may have taken this range already (it found it unclaimed)
    flag = b.gep(b.load(_field(b, pool, CLAIMED)), [me])
    got = b.cmpxchg(flag, _c(0), _c(1), "acq_rel", "acquire")
    mine = fn.append_basic_block("claimed")
    b.cbranch(b.extract_value(got, 1), mine, loop)
    b.position_at_end(mine)
    begin, end = _range_of(b, b.load(_field(b, pool, N)), me, b.load(_field(b, pool, NTHREADS)))
    call = fn.append_basic_block("call")
    finish = fn.append_basic_block("finish")
    b.cbranch(b.icmp_signed("<", begin, end), call, finish)
    b.position_at_end(call)
    b.call(b.load(_field(b, pool, TASKF)), [b.load(_field(b, pool, CTX)), begin, end])
    ran = b.gep(b.load(_field(b, pool, RAN)), [me])
    b.atomic_rmw("add", ran, _c(1), "monotonic")
    b.branch(finish)
    b.position_at_end(finish)
    left = b.atomic_rmw("sub", _field(b, pool, PENDING), _c(1), "acq_rel")
    last = fn.append_basic_block("last")
    with_lock = ll.IRBuilder(last)
    b.cbranch(b.icmp_unsigned("==", left, _c(1)), last, loop)
    # the caller checks `pending` under the lock before it sleeps: signalling under it too
    # means the wake-up cannot fall between its check and its wait
    with_lock.call(lib.lock, [_opaque(with_lock, pool, MUTEX)])
    with_lock.call(lib.broadcast, [_opaque(with_lock, pool, DONE)])
    with_lock.call(lib.unlock, [_opaque(with_lock, pool, MUTEX)])
    with_lock.branch(loop)
    return fn


def _parallel_for(m: ll.Module, lib: _Libc) -> ll.Function:
    fn = _internal(m, ll.FunctionType(VOID, [I8P, TASK.as_pointer(), I8P, I64]), "mdl_parallel_for")
    raw, task, ctx, n = fn.args
    b = ll.IRBuilder(fn.append_basic_block("entry"))
    alone = fn.append_basic_block("alone")
    check = fn.append_basic_block("check")
    claim = fn.append_basic_block("claim")
    start = fn.append_basic_block("start")
    b.cbranch(b.icmp_unsigned("==", raw, ll.Constant(I8P, None)), alone, check)
    b.position_at_end(alone)
    b.call(task, [ctx, _c(0), n])
    b.ret_void()
    b.position_at_end(check)
    pool = b.bitcast(raw, POOL.as_pointer())
    threads = b.load(_field(b, pool, NTHREADS))
    b.cbranch(b.icmp_unsigned("<", n, _c(2)), alone, claim)
    b.position_at_end(claim)
    got = b.cmpxchg(_field(b, pool, BUSY), _c(0), _c(1), "acquire", "monotonic")
    b.cbranch(b.extract_value(got, 1), start, alone)  # busy: another caller runs; go alone
    b.position_at_end(start)
    b.store(task, _field(b, pool, TASKF))
    b.store(ctx, _field(b, pool, CTX))
    b.store(n, _field(b, pool, N))
    claimed = b.load(_field(b, pool, CLAIMED))
    loop(
        fn,
        b,
        _c(1),
        threads,
        1,
        lambda bb, w: bb.store_atomic(_c(0), bb.gep(claimed, [w]), "release", 8),
    )
    b.store_atomic(b.sub(threads, _c(1)), _field(b, pool, PENDING), "release", 8)
    b.call(lib.lock, [_opaque(b, pool, MUTEX)])
    b.atomic_rmw("add", _field(b, pool, GENERATION), _c(1), "release")
    b.call(lib.broadcast, [_opaque(b, pool, WORK)])
    b.call(lib.unlock, [_opaque(b, pool, MUTEX)])
    _, end = _range_of(b, n, _c(0), threads)
    b.call(task, [ctx, _c(0), end])
    b.atomic_rmw("add", b.gep(b.load(_field(b, pool, RAN)), [_c(0)]), _c(1), "monotonic")

    def steal(bb: ll.IRBuilder, w: Any) -> None:
        got = bb.cmpxchg(bb.gep(claimed, [w]), _c(0), _c(1), "acq_rel", "acquire")

        def run(b2: ll.IRBuilder) -> None:
            begin, end = _range_of(b2, n, w, threads)
            when(
                fn, b2, b2.icmp_signed("<", begin, end), lambda b3: b3.call(task, [ctx, begin, end])
            )
            b2.atomic_rmw("sub", _field(b2, pool, PENDING), _c(1), "acq_rel")

        when(fn, bb, bb.extract_value(got, 1), run)

    lenient = b.icmp_unsigned("==", _load(b, _field(b, pool, STRICT)), _c(0))
    when(fn, b, lenient, lambda bb: loop(fn, bb, _c(1), threads, 1, steal))

    def all_done(bb: ll.IRBuilder) -> Any:
        return bb.icmp_unsigned("==", _load(bb, _field(bb, pool, PENDING)), _c(0))

    finished = fn.append_basic_block("finished")
    done, timeout = _spin_until(fn, b, lib, all_done, "join")
    b.position_at_end(done)
    b.branch(finished)
    b.position_at_end(timeout)
    _sleep_until(fn, b, lib, pool, DONE, all_done, finished, "join")
    b.position_at_end(finished)
    b.store_atomic(_c(0), _field(b, pool, BUSY), "release", 8)
    b.ret_void()
    return fn


def _create(m: ll.Module, lib: _Libc, worker: ll.Function) -> ll.Function:
    fn = ll.Function(m, ll.FunctionType(I8P, [I64]), CREATE)
    fn.attributes.add("nounwind")
    (threads,) = fn.args
    b = ll.IRBuilder(fn.append_basic_block("entry"))
    none = fn.append_basic_block("none")
    make = fn.append_basic_block("make")
    b.cbranch(b.icmp_signed("<=", threads, _c(1)), none, make)
    b.position_at_end(none)
    b.ret(ll.Constant(I8P, None))
    b.position_at_end(make)
    size = b.ptrtoint(b.gep(ll.Constant(POOL.as_pointer(), None), [_c(1)]), I64)
    raw = b.call(lib.calloc, [_c(1), size])
    pool = b.bitcast(raw, POOL.as_pointer())
    b.store(threads, _field(b, pool, NTHREADS))
    null = ll.Constant(I8P, None)
    b.call(lib.mutex_init, [_opaque(b, pool, MUTEX), null])
    b.call(lib.cond_init, [_opaque(b, pool, WORK), null])
    b.call(lib.cond_init, [_opaque(b, pool, DONE), null])
    tids = b.bitcast(b.call(lib.calloc, [threads, _c(8)]), I64.as_pointer())
    ran = b.bitcast(b.call(lib.calloc, [threads, _c(8)]), I64.as_pointer())
    arg_size = b.ptrtoint(b.gep(ll.Constant(WORKER_ARG.as_pointer(), None), [_c(1)]), I64)
    args_raw = b.call(lib.calloc, [threads, arg_size])
    b.store(tids, _field(b, pool, THREADS))
    b.store(ran, _field(b, pool, RAN))
    b.store(args_raw, _field(b, pool, ARGS))
    claimed = b.bitcast(b.call(lib.calloc, [threads, _c(8)]), I64.as_pointer())
    b.store(claimed, _field(b, pool, CLAIMED))
    args = b.bitcast(args_raw, WORKER_ARG.as_pointer())
    # start workers 1 .. threads-1; if one cannot start, the pool has as many as did
    head = fn.append_basic_block("spawn")
    body = fn.append_basic_block("spawn_one")
    failed = fn.append_basic_block("spawn_failed")
    out = fn.append_basic_block("spawned")
    before = b.block
    b.branch(head)
    b.position_at_end(head)
    w = b.phi(I64)
    w.add_incoming(_c(1), before)
    b.cbranch(b.icmp_signed("<", w, threads), body, out)
    b.position_at_end(body)
    arg = b.gep(args, [w])
    b.store(pool, b.gep(arg, [ll.Constant(I32, 0), ll.Constant(I32, 0)]))
    b.store(w, b.gep(arg, [ll.Constant(I32, 0), ll.Constant(I32, 1)]))
    rc = b.call(lib.create, [b.gep(tids, [w]), null, worker, b.bitcast(arg, I8P)])
    nxt = b.add(w, _c(1))
    w.add_incoming(nxt, body)
    b.cbranch(b.icmp_signed("==", rc, ll.Constant(I32, 0)), head, failed)
    b.position_at_end(failed)
    b.store(w, _field(b, pool, NTHREADS))
    b.branch(out)
    b.position_at_end(out)
    b.ret(raw)
    return fn


def _destroy(m: ll.Module, lib: _Libc) -> ll.Function:
    fn = ll.Function(m, ll.FunctionType(VOID, [I8P]), DESTROY)
    fn.attributes.add("nounwind")
    (raw,) = fn.args
    b = ll.IRBuilder(fn.append_basic_block("entry"))
    none = fn.append_basic_block("none")
    stop = fn.append_basic_block("stop")
    b.cbranch(b.icmp_unsigned("==", raw, ll.Constant(I8P, None)), none, stop)
    b.position_at_end(none)
    b.ret_void()
    b.position_at_end(stop)
    pool = b.bitcast(raw, POOL.as_pointer())
    b.call(lib.lock, [_opaque(b, pool, MUTEX)])
    b.store_atomic(_c(1), _field(b, pool, STOP), "release", 8)
    b.atomic_rmw("add", _field(b, pool, GENERATION), _c(1), "release")
    b.call(lib.broadcast, [_opaque(b, pool, WORK)])
    b.call(lib.unlock, [_opaque(b, pool, MUTEX)])
    threads = b.load(_field(b, pool, NTHREADS))
    tids = b.load(_field(b, pool, THREADS))
    loop(
        fn,
        b,
        _c(1),
        threads,
        1,
        lambda b, w: b.call(
            lib.join, [b.load(b.gep(tids, [w])), ll.Constant(I8P.as_pointer(), None)]
        ),
    )
    b.call(lib.mutex_destroy, [_opaque(b, pool, MUTEX)])
    b.call(lib.cond_destroy, [_opaque(b, pool, WORK)])
    b.call(lib.cond_destroy, [_opaque(b, pool, DONE)])
    b.call(lib.free, [b.bitcast(tids, I8P)])
    b.call(lib.free, [b.bitcast(b.load(_field(b, pool, RAN)), I8P)])
    b.call(lib.free, [b.load(_field(b, pool, ARGS))])
    b.call(lib.free, [b.bitcast(b.load(_field(b, pool, CLAIMED)), I8P)])
    b.call(lib.free, [raw])
    b.ret_void()
    return fn


def define_ran_count(m: ll.Module) -> ll.Function:
    """`mdl_pool_ran(pool, w)`: tasks run by worker w (0 for a NULL pool)."""
    if RAN_COUNT in m.globals:
        return m.globals[RAN_COUNT]
    fn = ll.Function(m, ll.FunctionType(I64, [I8P, I64]), RAN_COUNT)
    raw, w = fn.args
    b = ll.IRBuilder(fn.append_basic_block("entry"))
    none = fn.append_basic_block("none")
    read = fn.append_basic_block("read")
    b.cbranch(b.icmp_unsigned("==", raw, ll.Constant(I8P, None)), none, read)
    b.position_at_end(none)
    b.ret(_c(0))
    b.position_at_end(read)
    pool = b.bitcast(raw, POOL.as_pointer())
    b.ret(_load(b, b.gep(b.load(_field(b, pool, RAN)), [w])))
    return fn


def define_strict_split(m: ll.Module) -> ll.Function:
    """`mdl_pool_strict(pool, on)`: with `on` the caller waits for every worker's range
    instead of running the unclaimed ones (no effect on a NULL pool)."""
    if STRICT_SPLIT in m.globals:
        return m.globals[STRICT_SPLIT]
    fn = ll.Function(m, ll.FunctionType(VOID, [I8P, I64]), STRICT_SPLIT)
    raw, on = fn.args
    b = ll.IRBuilder(fn.append_basic_block("entry"))

    def store(bb: ll.IRBuilder) -> None:
        flag = _field(bb, bb.bitcast(raw, POOL.as_pointer()), STRICT)
        bb.store_atomic(on, flag, "release", 8)

    when(fn, b, b.icmp_unsigned("!=", raw, ll.Constant(I8P, None)), store)
    b.ret_void()
    return fn


def threads_of(b: ll.IRBuilder, raw: Any) -> Any:
    """The pool's thread count (the caller included); `raw` must not be NULL."""
    return b.load(_field(b, b.bitcast(raw, POOL.as_pointer()), NTHREADS))
