"""A parallel loop over a batch of one still splits: the batch loop and the loop inside it
become one parallel loop (backend/collapse.py); math-library calls weigh in the work
estimate. Results stay bit-identical on 1 and 2 threads and equal to the reference."""

from __future__ import annotations

import numpy as np

import mdl
from mdl import driver
from mdl.backend import loopir as ir
from mdl.backend.lower import lower
from mdl.backend.parallel import LIBRARY_COST, MIN_LOOP_WORK, work_estimate

SRC = """
model G(x: f32[B, 64, 1000]) -> f32[B, 64, 1000] {
    return 0.5 * x * (1.0 + erf(x * 0.7071067811865476))
}
"""


def test_batch_and_rows_merge_into_one_parallel_loop(tmp_path):
    (tmp_path / "g.mdl").write_text(SRC)
    program = lower(driver.compile_model(str(tmp_path / "g.mdl")).graph)
    (kernel,) = program.kernels
    (loop,) = kernel.body
    assert isinstance(loop, ir.For) and loop.parallel
    # one loop over B * 64, the two indices recovered from it, the 1000 inside
    assert isinstance(loop.stop, ir.Bin) and loop.stop.op == "mul"
    assert [type(s) for s in loop.body[:3]] == [ir.Local, ir.Local, ir.For]
    # 64 000 erf steps: under the threshold as plain steps, over it as library calls
    work = work_estimate((loop,))
    assert 64_000 < MIN_LOOP_WORK <= 64_000 * LIBRARY_COST
    assert "B" in repr(work)


def test_a_batch_of_one_runs_on_both_threads_with_the_same_bits(tmp_path):
    (tmp_path / "g.mdl").write_text(SRC)
    path = str(tmp_path / "g.mdl")
    one, two = (mdl.load(path, backend="native", threads=t) for t in (1, 2))
    ref = mdl.load(path, backend="ref")
    x = np.random.default_rng(0).standard_normal((1, 64, 1000)).astype(np.float32)
    want = one(x)
    assert two(x).tobytes() == want.tobytes()
    two._native.strict_split(True)  # the caller leaves the worker its range: both must run
    assert two(x).tobytes() == want.tobytes()
    assert min(two._native.tasks_run()) > 0
    np.testing.assert_allclose(want, ref(x), rtol=1e-6, atol=1e-7)
