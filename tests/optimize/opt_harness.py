"""Helpers for the optimizer tests: compile mdl text, run the reference, compare bits.

`compile_source` elaborates a model written to a temporary folder (the stdlib is
importable from there); `bits_equal` is bit-identity (nan payloads and the sign
of zero included); `snapshot` records a graph so a test can show a pass left its
input untouched.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from mdl.driver import compile_model, run_reference
from mdl.graph import Graph

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
TORCH_FIXTURES = REPO / "tests" / "fixtures" / "torch"
EXAMPLE_NAMES = sorted(p.stem for p in EXAMPLES.glob("*.mdl"))


def compile_source(tmp_path: Path, source: str, name: str = "case.mdl") -> Graph:
    path = tmp_path / name
    path.write_text(source, encoding="utf-8")
    graph = compile_model(str(path)).graph
    assert graph is not None
    return graph


def example_inputs(graph: Graph, name: str) -> dict[str, np.ndarray]:
    (inp,) = graph.inputs
    return {inp.name: np.load(EXAMPLES / "inputs" / f"{name}.npy")}


def bits_equal(a: np.ndarray, b: np.ndarray) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def assert_same_outputs(
    before: Graph,
    after: Graph,
    weights: Mapping[str, np.ndarray],
    inputs: Mapping[str, np.ndarray],
    after_weights: Mapping[str, np.ndarray] | None = None,
) -> dict[str, np.ndarray]:
    """The reference interpreter gives the same bits on both graphs; returns the outputs."""
    expected = run_reference(before, weights, inputs)
    assert_outputs(after, after_weights or weights, inputs, expected)
    return expected


def assert_outputs(
    graph: Graph,
    weights: Mapping[str, np.ndarray],
    inputs: Mapping[str, np.ndarray],
    expected: Mapping[str, np.ndarray],
) -> None:
    got = run_reference(graph, weights, inputs)
    assert list(got) == list(expected)
    for name in expected:
        assert bits_equal(got[name], expected[name]), name


def snapshot(graph: Graph) -> tuple:
    """Everything a pass could mutate, by identity and value."""
    return (
        graph.name,
        tuple(map(id, graph.inputs)),
        tuple(map(id, graph.params)),
        tuple(
            (
                id(n),
                n.op,
                tuple(v.id for v in n.inputs),
                tuple(map(id, n.outputs)),
                id(n.attrs),
                dict(n.attrs).keys(),
            )
            for n in graph.nodes
        ),
        tuple((name, v.id) for name, v in graph.outputs),
        graph._next_id,
    )


def ops(graph: Graph) -> list[str]:
    return [n.op for n in graph.nodes]


def special_floats(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Random f32 values with -0.0, +0.0, nan and infinities sprinkled in."""
    x = rng.standard_normal(shape).astype(np.float32)
    flat = x.reshape(-1)
    specials = np.array([-0.0, 0.0, np.nan, np.inf, -np.inf], dtype=np.float32)
    flat[: min(flat.size, specials.size)] = specials[: flat.size]
    return x
