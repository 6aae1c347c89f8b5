"""The arena plan: temporaries share slots only when their lifetimes do not overlap."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import mdl
from mdl import driver
from mdl.backend import loopir as ir
from mdl.backend.lower import lower
from mdl.backend.memplan import ALIGN, buffer_bytes, lifetimes, plan_memory
from mdl.dims import Dim
from mdl.types import DType

EXAMPLES = Path(__file__).parents[2] / "examples"


def _program(name: str) -> ir.Program:
    graph = driver.compile_model(str(EXAMPLES / name)).graph
    prepared, _ = driver.prepare_native(graph, driver.init_weights(graph))
    return lower(prepared)


@pytest.mark.parametrize("name", ["digits.mdl", "mlp.mdl", "lenet.mdl", "resnet20.mdl", "gpt.mdl"])
def test_plan_never_overlaps_live_buffers(name: str) -> None:
    program = _program(name)
    plan = plan_memory(program)
    life = lifetimes(program)
    temps = {b.name for b in program.buffers if b.role == "temp"}
    assert set(plan.slot_of) == temps
    for members in plan.slots:  # lifetimes in one slot are disjoint
        spans = sorted(life[n] for n in members)
        for (_, end), (start, _) in zip(spans, spans[1:], strict=False):
            assert end < start
    for kernel in program.kernels:  # what one kernel touches never shares memory
        used = [n for n in ir.used_buffers(kernel.body) if n in temps]
        assert len({plan.slot_of[n] for n in used}) == len(used)
    for batch in (1, 3, 64):
        env = dict.fromkeys(program.symbols, batch)
        offsets, total = plan.layout(env)
        ends = sorted({offsets[m[0]] for m in plan.slots}) + [total]
        for name_, off in offsets.items():
            assert off % ALIGN == 0
            nxt = (
                next(e for e in ends if e > off)
                if buffer_bytes(program.buffer(name_)).evaluate(env)
                else off
            )
            assert off + buffer_bytes(program.buffer(name_)).evaluate(env) <= nxt
        assert total <= plan.unshared_bytes(env)


def test_deep_models_reuse_most_memory() -> None:
    plan = plan_memory(_program("resnet20.mdl"))
    env = {"B": 64}
    assert plan.layout(env)[1] * 4 < plan.unshared_bytes(env)


def _temp(name: str, *shape: Dim | int) -> ir.Buffer:
    return ir.Buffer(name, DType.F32, tuple(Dim.of(d) for d in shape), "temp")


def _touch(*names: str) -> ir.Kernel:
    return ir.Kernel(
        "k", tuple(ir.Store(n, ir.Const(0, DType.I64), ir.Const(0.0, DType.F32)) for n in names)
    )


def test_slot_size_is_the_max_under_the_actual_dims() -> None:
    b = Dim.sym("B")
    p = ir.Program("m", symbols=["B"])
    p.buffers += [_temp("a", b, 25), _temp("c", 250), _temp("d", 7)]
    p.kernels += [_touch("a"), _touch("c"), _touch("d", "c")]
    plan = plan_memory(p)
    assert plan.slot_of["a"] == plan.slot_of["c"] != plan.slot_of["d"]
    assert plan.layout({"B": 1})[1] == 1024 + 64  # 1000 bytes of c win over a's 100
    assert plan.layout({"B": 100})[1] == 10048 + 64  # a's 10,000 bytes win
    assert plan.formula() == "max(100 * B, 1000) + 28"


def test_native_call_reuses_the_arena_across_sizes(tmp_path: Path) -> None:
    src = (
        "model M(x: f32[B, 5]) -> f32[B, 5] {\n"
        "    let a = exp(x)\n    let b = a * 2.0\n    let c = b + a\n    c * c + b\n}\n"
    )
    (tmp_path / "m.mdl").write_text(src)
    ref = mdl.load(str(tmp_path / "m.mdl"), weights={}, backend="ref")
    nat = mdl.load(str(tmp_path / "m.mdl"), weights={}, backend="native")
    for batch in (1, 9, 2, 9):
        x = np.linspace(-1, 1, batch * 5, dtype=np.float32).reshape(batch, 5)
        np.testing.assert_allclose(nat(x), ref(x), rtol=1e-6, atol=0)
