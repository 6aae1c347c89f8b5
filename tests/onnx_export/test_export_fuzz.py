"""Random valid models (tests/native/graphgen.py) exported to ONNX equal the reference.

A fixed, seeded sample: MDL_ONNX_FUZZ_GRAPHS graphs (default 200, 10 per model) from
MDL_ONNX_FUZZ_SEED (default 1). Each model is exported, checked (ONNX checker, strict
shape inference) and run in onnxruntime on the generator's inputs, then again with
other batch sizes when it has a batch symbol, and compared output by output with the
reference (tolerances: onnx_harness.py). The sample together must use every primitive.
"""

from __future__ import annotations

import os
from collections import Counter

import pytest
from onnx_harness import compare, compile_source, export, session

from mdl import driver
from mdl.primitives import REGISTRY

GRAPHS = int(os.environ.get("MDL_ONNX_FUZZ_GRAPHS", "200"))
FIRST_SEED = int(os.environ.get("MDL_ONNX_FUZZ_SEED", "1"))
PER_MODEL = 10
_used: Counter[str] = Counter()


def _seed_ranges() -> list[range]:
    end = FIRST_SEED + GRAPHS
    return [range(s, min(s + PER_MODEL, end)) for s in range(FIRST_SEED, end, PER_MODEL)]


@pytest.mark.parametrize("seeds", _seed_ranges(), ids=lambda r: f"seeds-{r.start}-{r.stop - 1}")
def test_random_models_match_the_reference(seeds, tmp_path):
    from graphgen import make_case  # tests/native, put on the path by onnx_harness

    case = make_case(seeds)
    graph = compile_source(tmp_path, case.source)
    _used.update(n.op for n in graph.nodes if n.op != "const")
    weights = driver.init_weights(graph, seed=0, random=True)
    sess = session(export(graph, weights))
    for call, inputs in enumerate(case.calls):
        try:
            compare(graph, weights, sess, inputs)
        except AssertionError as e:
            pytest.fail(f"graph seeds {list(seeds)}, call {call}:\n{e}\n{case.source}")


def test_the_sample_uses_every_primitive():
    if len(_seed_ranges()) * PER_MODEL < 200 or not _used:
        pytest.skip("needs the default sample, run in the same session")
    assert set(REGISTRY) <= set(_used), sorted(set(REGISTRY) - set(_used))
