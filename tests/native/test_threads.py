"""Threads: the pool runs every iteration once, and results are bit-identical whatever
the thread count (1 vs 2 here; the machines have 2 cores), with both threads really used."""

from __future__ import annotations

import ctypes
import threading
from pathlib import Path

import llvmlite.ir as ll
import numpy as np
import pytest

import mdl
from mdl import driver
from mdl.backend import pool as P
from mdl.backend.jit import _llvm, host_target_machine, optimize
from mdl.diagnostics import MdlError

EXAMPLES = Path(__file__).parents[2] / "examples"
I64 = ll.IntType(64)


@pytest.fixture(scope="module")
def pool_module():
    """A module with the pool and `run(pool, out, n)`: out[i] = 3 i + 1 for i < n in parallel."""
    m = ll.Module("pool_test")
    pool = P.define_pool(m)
    P.define_ran_count(m)
    P.define_strict_split(m)
    task = ll.Function(m, P.TASK, "task")
    task.linkage = "internal"
    b = ll.IRBuilder(task.append_basic_block("entry"))
    out = b.bitcast(task.args[0], I64.as_pointer())
    head, body, done = (task.append_basic_block(n) for n in ("head", "body", "done"))
    before = b.block
    b.branch(head)
    b.position_at_end(head)
    i = b.phi(I64)
    i.add_incoming(task.args[1], before)
    b.cbranch(b.icmp_signed("<", i, task.args[2]), body, done)
    b.position_at_end(body)
    slot = b.gep(out, [i])
    # += rather than =: an iteration run twice would show
    b.store(b.add(b.load(slot), b.add(b.mul(i, ll.Constant(I64, 3)), ll.Constant(I64, 1))), slot)
    nxt = b.add(i, ll.Constant(I64, 1))
    i.add_incoming(nxt, body)
    b.branch(head)
    b.position_at_end(done)
    b.ret_void()
    run = ll.Function(m, ll.FunctionType(ll.VoidType(), [P.I8P, P.I8P, I64]), "run")
    b = ll.IRBuilder(run.append_basic_block("entry"))
    b.call(pool.parallel_for, [run.args[0], task, run.args[1], run.args[2]])
    b.ret_void()
    llvm = _llvm()
    tm = host_target_machine()
    engine = llvm.create_mcjit_compiler(optimize(str(m), tm), tm)
    engine.finalize_object()

    def fn(name, restype, *argtypes):
        return ctypes.CFUNCTYPE(restype, *argtypes)(engine.get_function_address(name))

    vp, i64 = ctypes.c_void_p, ctypes.c_int64
    yield {
        "engine": engine,
        "create": fn(P.CREATE, vp, i64),
        "destroy": fn(P.DESTROY, None, vp),
        "ran": fn(P.RAN_COUNT, i64, vp, i64),
        "strict": fn(P.STRICT_SPLIT, None, vp, i64),
        "run": fn("run", None, vp, vp, i64),
    }


@pytest.mark.parametrize("threads", [1, 2, 3, 5])
def test_parallel_for_runs_every_iteration_once(pool_module, threads):
    f = pool_module
    pool = f["create"](threads)
    assert (pool is None) == (threads == 1)
    try:
        for n in (0, 1, 2, 3, 7, 64, 1001):
            out = np.zeros(n, np.int64)
            for _ in range(3):
                f["run"](pool, out.ctypes.data, n)
            np.testing.assert_array_equal(out, 3 * (3 * np.arange(n) + 1))
        # the caller runs the ranges no worker has claimed yet, so with tiny loops the workers
        # may never get one; in strict mode it waits for each worker to run its own range
        f["strict"](pool, 1)
        before = [f["ran"](pool, w) for w in range(threads)]
        out = np.zeros(1001, np.int64)
        f["run"](pool, out.ctypes.data, out.size)
        np.testing.assert_array_equal(out, 3 * np.arange(out.size) + 1)
        ran = [f["ran"](pool, w) - b for w, b in enumerate(before)]
        assert ran == ([1] * threads if threads > 1 else [0]), ran  # every thread took part
        f["strict"](pool, 0)
    finally:
        f["destroy"](pool)


def test_concurrent_callers_share_a_pool(pool_module):
    f = pool_module
    pool = f["create"](2)
    errors = []

    def call(k: int) -> None:
        for n in range(50, 300):
            out = np.zeros(n, np.int64)
            f["run"](pool, out.ctypes.data, n)
            if not np.array_equal(out, 3 * np.arange(n) + 1):
                errors.append((k, n))

    try:
        workers = [threading.Thread(target=call, args=(k,)) for k in range(3)]
        for t in workers:
            t.start()
        for t in workers:
            t.join()
    finally:
        f["destroy"](pool)
    assert errors == []


def _models(path: Path, weights, threads=(1, 2)):
    return [mdl.load(str(path), weights=weights, backend="native", threads=t) for t in threads]


def _inputs(graph, batch: int, rng) -> list[np.ndarray]:
    out = []
    for inp in graph.inputs:
        shape = [batch if not d.is_const else int(d) for d in map(_dim, inp.value.type.shape)]
        if inp.index_range is not None:
            hi = int(inp.index_range[1].evaluate({s: batch for s in graph.symbols()}))
            out.append(rng.integers(0, hi, size=shape).astype(inp.value.type.dtype.numpy))
        else:
            out.append(rng.standard_normal(shape).astype(inp.value.type.dtype.numpy))
    return out


def _dim(d):
    from mdl.dims import Dim

    return Dim.of(d)


@pytest.mark.parametrize("name", ["digits.mdl", "mlp.mdl", "lenet.mdl", "resnet20.mdl", "gpt.mdl"])
def test_examples_are_bit_identical_on_one_and_two_threads(name):
    path = EXAMPLES / name
    graph = driver.compile_model(str(path)).graph
    weights = driver.init_weights(graph, seed=3, random=True)
    one, two = _models(path, weights)
    rng = np.random.default_rng(0)
    # small models reach the thresholds for threads only with big batches
    for batch in (1, 5, 16) + ((300,) if name in ("digits.mdl", "mlp.mdl") else ()):
        xs = _inputs(graph, batch, rng)
        a, b = one(*xs), two(*xs)
        a = a if isinstance(a, tuple) else (a,)
        b = b if isinstance(b, tuple) else (b,)
        for x, y in zip(a, b, strict=True):
            assert x.dtype == y.dtype and x.shape == y.shape
            assert x.tobytes() == y.tobytes(), f"{name} batch {batch}"
    # a worker asleep when a loop starts may find its range already taken by the caller
    # (pool.py); in strict mode the caller leaves each worker its own range
    before = two._native.tasks_run()
    two._native.strict_split(True)
    b = two(*xs)
    b = b if isinstance(b, tuple) else (b,)
    for x, y in zip(a, b, strict=True):
        assert x.tobytes() == y.tobytes(), f"{name} batch {batch}"
    ran = [n - m for n, m in zip(two._native.tasks_run(), before, strict=True)]
    assert len(ran) == 2 and ran[0] > 0 and ran[0] == ran[1], ran  # the second thread worked too
    assert one._native.tasks_run() == []  # one thread: no pool at all


def test_run_time_errors_are_those_of_a_serial_run(tmp_path):
    src = "import nn\n\nmodel G(ids: i64[N]) -> f32[N, 64] {\n    let e = nn.Embedding[4, 64]\n    return e(ids)\n}\n"
    (tmp_path / "g.mdl").write_text(src)
    graph = driver.compile_model(str(tmp_path / "g.mdl")).graph
    weights = driver.init_weights(graph, seed=0, random=True)
    one, two = _models(tmp_path / "g.mdl", weights)
    ids = np.zeros(4096, np.int64)
    ids[[1000, 3000, 4000]] = [7, 9, 11]  # the first bad index sits in the first thread's half
    messages = []
    for model in (one, two, two):
        with pytest.raises(MdlError) as e:
            model(ids)
        messages.append([(d.code, d.message) for d in e.value.diagnostics])
    assert messages[0] == [("E0607", "index 7 out of range for axis 0 of size 4")]
    assert messages[1] == messages[2] == messages[0]
    ids[1000] = 0  # now the first bad index is in the second half
    for model in (one, two):
        with pytest.raises(MdlError, match="index 9 out of range"):
            model(ids)


def test_threads_argument_is_checked(tmp_path):
    (tmp_path / "m.mdl").write_text("model M(x: f32[3]) -> f32[3] {\n    x * 2.0\n}\n")
    for bad in (0, -1, 1.5, "2"):
        with pytest.raises(MdlError) as e:
            mdl.load(str(tmp_path / "m.mdl"), weights={}, backend="native", threads=bad)
        assert e.value.diagnostics[0].code == "E0704"
