"""fold_parameters: weight-only nodes precomputed with the known weights, results unchanged."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mdl import driver
from mdl.graph import verify
from mdl.interp import run
from mdl.optimize import fold_parameters, optimize

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("example", ["digits", "mlp", "lenet", "gpt"])
def test_examples_unchanged_bitwise(example: str) -> None:
    graph = driver.compile_model(str(ROOT / "examples" / f"{example}.mdl")).graph
    weights = driver.init_weights(graph, seed=0, random=True)
    x = np.load(ROOT / "examples" / "inputs" / f"{example}.npy")
    inputs = {graph.inputs[0].name: x}
    folded, new_weights = fold_parameters(graph, weights)
    verify(folded)
    assert {p.path for p in folded.params} == set(new_weights)
    want = run(graph, weights, inputs)
    got = run(optimize(folded), new_weights, inputs)
    for k in want:
        np.testing.assert_array_equal(got[k], want[k])
    # every Dense's `weight.T` is now a parameter: no transpose reads a parameter any more
    params = {p.value.id for p in folded.params}
    assert not [n for n in folded.nodes if n.op == "transpose" and n.inputs[0].id in params]


def test_only_weight_only_nodes_fold(tmp_path: Path) -> None:
    path = tmp_path / "m.mdl"
    path.write_text("""
layer L(x: f32[B, 4]) -> f32[B, 4] {
    param w: f32[4, 4] = ones
    param s: f32[4] = ones
    let scale = exp(s) * 2.0            # weight-only: folds
    return x @ w.T * scale + x          # reads the input: stays
}

model M(x: f32[B, 4]) -> f32[B, 4] {
    let l = L
    return l(x)
}
""")
    graph = driver.compile_model(str(path)).graph
    weights = {
        "l.w": np.arange(16, dtype=np.float32).reshape(4, 4),
        "l.s": np.array([0.0, 1.0, -1.0, 0.5], np.float32),
    }
    folded, new_weights = fold_parameters(graph, weights)
    assert "l.w" not in new_weights and "l.s" not in new_weights  # nothing reads them now
    ops = [n.op for n in optimize(folded).nodes]
    assert "exp" not in ops and "transpose" not in ops and "matmul" in ops
    x = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    np.testing.assert_array_equal(
        run(optimize(folded), new_weights, {"x": x})["output"],
        run(graph, weights, {"x": x})["output"],
    )


def test_missing_weights_are_named() -> None:
    graph = driver.compile_model(str(ROOT / "examples" / "digits.mdl")).graph
    with pytest.raises(ValueError, match="fc1.weight"):
        fold_parameters(graph, {})
