"""Differential fuzzing, native vs reference: a fixed, seeded sample of random valid models
(graphgen.py) compiled from mdl source, run by both backends and compared output by output.

MDL_FUZZ_GRAPHS sets the sample size (default 200 graphs, 10 independent graphs per
model) and MDL_FUZZ_SEED the first graph seed (default 1). A failure prints its graph seed
and the reduced model, and saves it to fuzz-failures/ at the repository root. Long runs:
`python tools/fuzz_native.py --seed S --count N` (or `make fuzz`). Run with `-s` to see the
primitive coverage table.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import sys
from collections import Counter
from pathlib import Path

import fuzzcheck
import numpy as np
import pytest
from graphgen import ALL, Builder, Case, generate, make_case
from graphgen_ops import OPS
from native_harness import assert_close

import mdl
from mdl.api import Model, init_weights
from mdl.diagnostics import MdlError
from mdl.primitives import REGISTRY

ROOT = Path(__file__).resolve().parents[2]
SAVE_DIR = ROOT / "fuzz-failures"
GRAPHS = int(os.environ.get("MDL_FUZZ_GRAPHS", "200"))
FIRST_SEED = int(os.environ.get("MDL_FUZZ_SEED", "1"))
PER_MODEL = 10
COVERAGE_SAMPLE = max(GRAPHS, 200)  # coverage is asserted over the default sample at least

# Primitives the generator cannot produce, with the reason: none.
NOT_GENERATED: dict[str, str] = {}

log = logging.getLogger("mdl.fuzz")
_coverage: dict[int, fuzzcheck.Coverage] = {}  # first seed of a model -> its primitives


def model_seeds(first: int, count: int) -> list[range]:
    end = first + count
    return [range(s, min(s + PER_MODEL, end)) for s in range(first, end, PER_MODEL)]


@pytest.mark.parametrize(
    "seeds", model_seeds(FIRST_SEED, GRAPHS), ids=lambda r: f"seeds-{r.start}-{r.stop - 1}"
)
def test_random_graphs_match_the_reference(seeds: range, tmp_path: Path) -> None:
    result = fuzzcheck.check(make_case(seeds), tmp_path, SAVE_DIR)
    _coverage[seeds.start] = result.coverage
    if result.failures:
        pytest.fail("\n\n".join(f.report() for f in result.failures), pytrace=False)
    assert result.outputs >= len(seeds)  # every graph has an output, and all were compared


def test_every_primitive_is_generated(tmp_path: Path) -> None:
    coverage = fuzzcheck.Coverage()
    for seeds in model_seeds(FIRST_SEED, COVERAGE_SAMPLE):
        found = _coverage.get(seeds.start)
        coverage.update(found or fuzzcheck.case_coverage(make_case(seeds), tmp_path))
    table = fuzzcheck.coverage_table(coverage, NOT_GENERATED)
    print(f"\n{table}")
    counts = " ".join(
        f"{n}={coverage.graph.get(n, 0)}/{coverage.native.get(n, 0)}" for n in sorted(REGISTRY)
    )
    log.info("fuzz coverage (generated/native): %s", counts)
    # native code computed every primitive: generating it and folding it all away is not enough
    missing = sorted(set(REGISTRY) - set(coverage.native) - set(NOT_GENERATED))
    assert not missing, table
    assert not set(NOT_GENERATED) - set(REGISTRY), "NOT_GENERATED names an unknown primitive"


def test_cases_depend_only_on_their_seeds() -> None:
    one, two = make_case(range(40, 43)), make_case(range(40, 43))
    assert one.source == two.source
    assert one.inputs.keys() == two.inputs.keys()
    for name, array in one.inputs.items():
        np.testing.assert_array_equal(array, two.inputs[name])
    # a graph is the same whatever its neighbours: it can be replayed alone
    alone = generate(41, index=1)
    assert alone.stmts == one.graphs[1].stmts
    assert make_case(range(41, 44)).graphs[0].stmts != alone.stmts  # the prefix is g0_ there


def test_a_mismatch_is_reduced_to_one_output_and_saved(tmp_path: Path, monkeypatch) -> None:
    case = make_case(range(60, 63))
    target = case.graphs[1].outputs[-1][0]
    real = fuzzcheck.compare_output

    def compare(name: str, native: np.ndarray, reference: np.ndarray) -> None:
        assert name != target, "injected mismatch"
        real(name, native, reference)

    monkeypatch.setattr(fuzzcheck, "compare_output", compare)
    save = tmp_path / "saved"
    result = fuzzcheck.check(case, tmp_path, save)
    (failure,) = result.failures
    assert failure.seed == case.graphs[1].seed and failure.kind == "mismatch"
    assert "injected mismatch" in failure.detail and str(failure.seed) in failure.report()
    assert [line.split(":")[0].strip() for line in declared_outputs(failure.source)] == [target]
    assert "g0_" not in failure.source
    saved = sorted(p.name for p in save.iterdir())
    assert saved[:2] == [f"{failure.seed}.mdl", f"{failure.seed}.npz"]
    assert not [name for name in saved if name.startswith("running-")]
    replay = np.load(save / f"{failure.seed}.npz")
    assert set(replay.files) <= set(case.inputs)


def test_a_model_wide_failure_is_pinned_on_the_graph_that_fails_alone(
    tmp_path: Path, monkeypatch
) -> None:
    case = make_case(range(70, 73))
    culprit = case.graphs[2]

    def load_native(path: Path, weights: dict[str, np.ndarray]) -> Model:
        if f"g{culprit.index}_" in path.read_text():
            raise RuntimeError("injected internal compiler error")
        return mdl.load(str(path), weights, backend="native")

    monkeypatch.setattr(fuzzcheck, "load_native", load_native)
    result = fuzzcheck.check(case, tmp_path, None)
    (failure,) = result.failures
    assert failure.seed == culprit.seed and failure.kind == "native compile"
    assert "injected internal compiler error" in failure.detail
    assert len(declared_outputs(failure.source)) == 1  # cut down to one output


def declared_outputs(source: str) -> list[str]:
    lines = source.splitlines()
    start, end = lines.index(") -> ("), lines.index(") {")
    return lines[start + 1 : end]


def out_of_range_gather(seed: int) -> tuple[Case, str]:
    """A random graph ending in a gather whose indices (an input without a declared range)
    hold a value outside the axis; returns the case and the message both backends owe."""
    b = Builder(seed, 0)
    for name in b.rng.sample(sorted(OPS), 3):
        OPS[name](b)
    table = b.operand(
        ALL,
        lambda v: v.rank >= 1 and v.shape[0].known,
        shape=lambda: b.rand_shape(2, batch_first=False),
    )
    size = table.shape[0].c
    ids = b.new_input(b.rng.choice(("i32", "i64")), b.rand_shape(2, batch_first=False))
    shape = ids.shape + table.shape[1:]
    b.emit("gather", f"{table.name}[{ids.name}]", [table, ids], [(table.dtype, shape)])
    graph = b.finish()
    indices = graph.arrays[ids.name]
    indices[...] = np.random.default_rng(seed).integers(-size, size, indices.shape)
    flat = indices.reshape(-1)
    bad = size + 3 if seed % 2 else -size - 1
    flat[len(flat) // 2] = bad
    return Case.of([graph]), f"index {bad} out of range for axis 0 of size {size}"


@pytest.mark.parametrize("seed", [3, 4, 5])
def test_out_of_range_indices_fail_alike(seed: int, tmp_path: Path) -> None:
    case, message = out_of_range_gather(seed)
    path = tmp_path / "m.mdl"
    path.write_text(case.source)
    weights = init_weights(str(path), random=True)
    errors = []
    for backend in ("ref", "native"):
        with pytest.raises(MdlError) as caught:
            mdl.load(str(path), weights, backend=backend).run(case.inputs)
        errors.append(caught.value.diagnostics[0])
    assert [(d.code, d.message) for d in errors] == [("E0607", message)] * 2, case.source


# --- regressions the fuzzer found (minimal models; the lead fixes the backend) -------------

CONV_PADDING_NONFINITE = """
model M(x: f32[1, 1, 2], w: f32[1, 1, 3]) -> f32[1, 1, 2] {
    return conv(x, w, padding=1)
}
"""


@pytest.mark.parametrize("bad", [np.inf, np.nan])
def test_conv_zero_padding_times_a_nonfinite_weight(bad: float, tmp_path: Path) -> None:
    # the reference (the spec) pads with zeros and multiplies them by the weights, so a
    # padded tap with an inf or nan weight makes the output nan; native once skipped the
    # padded taps (fuzz seeds 1422, 2417, 2780)
    path = tmp_path / "m.mdl"
    path.write_text(CONV_PADDING_NONFINITE)
    x = np.array([[[1.0, 2.0]]], np.float32)
    w = np.array([[[bad, 1.0, 1.0]]], np.float32)
    want = mdl.load(str(path), backend="ref")(x, w)
    assert np.isnan(want[0, 0, 0])
    assert_close(mdl.load(str(path), backend="native")(x, w), want)


def test_the_long_run_tool_names_the_graph_whose_process_crashes(tmp_path: Path, monkeypatch):
    if multiprocessing.get_start_method() != "fork":
        pytest.skip("the patched worker function reaches the workers by fork")
    sys.path.insert(0, str(ROOT / "tools"))
    import fuzz_native

    crashing = 21

    def check_model(seeds: range, save_dir: str) -> fuzz_native.Outcome:
        if crashing in seeds:
            os._exit(3)  # as a segfault in generated code would end the worker
        return fuzzcheck.Coverage(Counter(add=len(seeds))), [], len(seeds)

    # the worker processes are forked: they see the patched module attribute
    check_model.__module__, check_model.__qualname__ = fuzz_native.__name__, "check_model"
    monkeypatch.setattr(fuzz_native, "check_model", check_model)
    save = tmp_path / "saved"
    status = fuzz_native.main(
        ["--seed", "17", "--count", "8", "--per-model", "4", "--jobs", "1", "--save-dir", str(save)]
    )
    assert status == 1
    assert sorted(p.name for p in save.iterdir()) == [f"{crashing}.mdl", f"{crashing}.npz"]
    assert "crash" in (save / f"{crashing}.mdl").read_text().splitlines()[0]


SIGNED_ZERO = """
model M(a: f32[2], b: f32[2], c: f32[1, 1, 2]) -> (e: f32[2], r: f32, p: f32[1, 1, 1]) {
    return 1.0 / max(a, b), 1.0 / min(a), 1.0 / max_pool(c, 2)
}
"""


def test_max_and_min_of_zeros_of_both_signs(tmp_path: Path) -> None:
    # np.maximum(-0.0, 0.0) is 0.0 but np.maximum(0.0, -0.0) is -0.0 (and np.min, the
    # pools alike); native takes IEEE maximum/minimum, so 1 / x has the other infinity
    # (fuzz seed 50284). Either native follows numpy or the spec leaves the sign open
    # and the reference makes it deterministic.
    path = tmp_path / "m.mdl"
    path.write_text(SIGNED_ZERO)
    a = np.array([-0.0, 0.0], np.float32)
    b = np.array([0.0, -0.0], np.float32)
    c = np.array([[[0.0, -0.0]]], np.float32)
    want = mdl.load(str(path), backend="ref")(a, b, c)
    got = mdl.load(str(path), backend="native")(a, b, c)
    for g, w in zip(got, want, strict=True):
        assert_close(g, w)


POW_HALF = """
model M(x: f32[3], y: f32[3]) -> (p: f32[3], q: f32[3]) {
    return x ** 0.5, x ** y
}
"""


def test_pow_of_minus_infinity_to_the_half(tmp_path: Path) -> None:
    # np.power takes sqrt for a broadcast exponent of 0.5: (-inf) ** 0.5 would be nan, but
    # inf with a full exponent array (C's pow). The reference now always uses C's pow, as
    # native does (fuzz seed 63954)
    path = tmp_path / "m.mdl"
    path.write_text(POW_HALF)
    x = np.array([-np.inf, 4.0, -np.inf], np.float32)
    y = np.array([0.5, 0.5, 0.5], np.float32)
    want = mdl.load(str(path), backend="ref")(x, y)
    assert want[0][0] == np.inf and want[1][0] == np.inf  # one rule for both forms
    got = mdl.load(str(path), backend="native")(x, y)
    for g, w in zip(got, want, strict=True):
        assert_close(g, w)
