"""Fusing element-wise chains never changes a result: fused and unfused code agree bit for bit."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mdl import driver
from mdl.backend.jit import NativeModel
from mdl.backend.lower import fusion_plan, lower

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("example, shape", [("gpt", (2, 64)), ("lenet", (2, 1, 28, 28))])
def test_examples_fused_equal_unfused_bitwise(example: str, shape: tuple[int, ...]) -> None:
    graph = driver.compile_model(str(ROOT / "examples" / f"{example}.mdl")).graph
    weights = driver.init_weights(graph, seed=1, random=True)
    rng = np.random.default_rng(0)
    name = graph.inputs[0].name
    x = (
        rng.integers(0, 512, shape)
        if example == "gpt"
        else rng.standard_normal(shape).astype(np.float32)
    )
    fused = NativeModel(graph, weights, cache=False).run({name: x})
    plain = NativeModel(graph, weights, cache=False, fuse=False).run({name: x})
    for k in fused:
        np.testing.assert_array_equal(fused[k], plain[k])
    assert len(lower(graph).kernels) < len(lower(graph, fuse=False).kernels)


def test_fusion_plan_respects_uses_shapes_and_outputs(tmp_path: Path) -> None:
    path = tmp_path / "m.mdl"
    path.write_text("""
model M(x: f32[B, 7], r: f32[B, 1]) -> (a: f32[B, 7], b: f32[B, 7], c: f32[B, 7]) {
    let e = exp(x)           # used twice: stays a buffer
    let f = e * 2.0 + e      # `e * 2.0` fuses into `+`
    let g = sqrt(r) + x      # sqrt(r) is [B, 1] under a [B, 7] use: no fusion (no recomputation)
    let h = -x               # a model output: stays a buffer
    return f, g, h
}
""")
    graph = driver.compile_model(str(path)).graph
    plan = fusion_plan(graph)
    fused_ops = sorted(node.op for node in plan.values())
    assert fused_ops == ["mul"]
