"""Epilogue fusion (backend/epilogue.py): element-wise tails run inside the kernel of the
product or conv they finish, only when that is legal, with unchanged results (the
examples are compared fused against unfused bit for bit in test_fusion.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

import mdl
from mdl import driver
from mdl.backend import loopir as ir
from mdl.backend.lower import lower

EXAMPLES = Path(__file__).parents[2] / "examples"


def _program(path: Path, fuse: bool = True) -> ir.Program:
    graph = driver.compile_model(str(path)).graph
    prepared, _ = driver.prepare_native(graph, driver.init_weights(graph))
    return lower(prepared, fuse=fuse)


def test_conv_bias_relu_becomes_one_loop_over_images():
    program = _program(EXAMPLES / "resnet20.mdl")
    merged = [k for k in program.kernels if "conv" in k.name and "+" in k.name]
    assert len(merged) >= 19  # every conv of ResNet-20 takes its tail
    for k in merged:
        assert len(k.body) == 1 and isinstance(k.body[0], ir.For) and k.body[0].parallel
    temps = {b.name for b in program.buffers if b.role == "temp"}
    used = {n for k in program.kernels for n in ir.used_buffers(k.body)}
    assert temps <= used  # the products' temporaries are gone, not left unused
    assert len(program.kernels) < len(_program(EXAMPLES / "resnet20.mdl", fuse=False).kernels)


def test_dense_bias_activation_tail_moves_into_the_product():
    program = _program(EXAMPLES / "mlp.mdl")
    names = [k.name for k in program.kernels]
    assert any(n.startswith("fc1/matmul") and "+" in n for n in names), names


SOURCE = """\
model M(x: f32[B, 8], w: f32[8, 8]) -> f32[B, 8] {
    let y = x @ w
    let z = exp(x)
    return max(y + z, 0.0) * z
}
"""


def test_a_tail_reading_what_is_computed_later_stays_apart(tmp_path):
    (tmp_path / "m.mdl").write_text(SOURCE)
    program = _program(tmp_path / "m.mdl")
    # exp(x) has two uses, so it gets a kernel of its own, after the product: the tail
    # (add, max, mul) reads it and cannot move into the product
    assert [k.name.split("_")[0] for k in program.kernels] == ["matmul", "exp", "mul"]
    ref = mdl.load(str(tmp_path / "m.mdl"), weights={}, backend="ref")
    nat = mdl.load(str(tmp_path / "m.mdl"), weights={}, backend="native")
    rng = np.random.default_rng(0)
    for batch in (1, 5):
        x = rng.standard_normal((batch, 8)).astype(np.float32)
        w = rng.standard_normal((8, 8)).astype(np.float32)
        np.testing.assert_allclose(nat(x, w), ref(x, w), rtol=1e-5, atol=1e-6)
