"""The ONNX node-suite runner (tools/onnx_suite.py) end to end on a fixed sample of ~40
cases: with a stub importer (tests/onnx_export/suite_stub.py), every case the stub takes
passes on both backends and every other one is unsupported, never failed; with the real
importer (when `mdl.onnx_import` exists) the runner classifies every case and some pass
on both backends. The sample comes from a few ops' case modules, which load fast."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import suite_stub

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))

import onnx_suite  # noqa: E402

OPS = ["Abs", "Add", "Relu", "Sigmoid", "Sub", "Neg", "MatMul", "Concat", "ReduceMax", "Where"]
SAMPLE, SEED = 40, 5


@pytest.fixture(scope="module")
def cases():
    return onnx_suite.sample_cases(onnx_suite.load_cases(OPS), SAMPLE, SEED)


def test_the_sample_is_fixed_and_named_by_op(cases):
    assert len(cases) == SAMPLE
    again = onnx_suite.sample_cases(onnx_suite.load_cases(OPS), SAMPLE, SEED)
    assert [c.name for c in again] == [c.name for c in cases]
    assert {onnx_suite.case_op(c) for c in cases} <= set(OPS)
    by_name = {c.name: c for c in onnx_suite.load_cases(["ReduceMax"])}
    assert (
        onnx_suite.case_op(by_name["test_reduce_max_default_axes_keepdim_example"]) == "ReduceMax"
    )


def test_with_a_stub_importer_supported_cases_pass_and_the_rest_are_unsupported(cases):
    results = onnx_suite.run_suite(cases, suite_stub.import_onnx)
    taken = [r for r, c in zip(results, cases, strict=True) if suite_stub.supports(c.model)]
    assert len(taken) >= 6
    for result, case in zip(results, cases, strict=True):
        want = "passed" if suite_stub.supports(case.model) else "unsupported"
        assert {b: o.status for b, o in result.outcomes.items()} == {
            "ref": want,
            "native": want,
        }, (case.name, result.outcomes)


def test_a_wrong_import_is_a_failure_not_a_crash(cases, tmp_path):
    def negating_importer(path: str, out_mdl: str):
        diags = suite_stub.import_onnx(path, out_mdl)
        if not diags:  # a plausible bug: the result's sign flipped
            text = Path(out_mdl).read_text().replace("{ return ", "{ return -(")
            Path(out_mdl).write_text(text.replace(" }\n", ") }\n"))
        return diags

    results = onnx_suite.run_suite(cases[:12], negating_importer)
    statuses = {o.status for r in results for o in r.outcomes.values()}
    assert "failed" in statuses
    failed = next(o for r in results for o in r.outcomes.values() if o.status == "failed")
    assert "output" in failed.detail


def test_the_report_counts_per_backend_and_op(tmp_path):
    out = tmp_path / "coverage.md"
    code = onnx_suite.main(
        ["--ops", "Abs,Neg,Concat", "--out", str(out), "-q"], importer=suite_stub.import_onnx
    )
    assert code == 0
    text = out.read_text()
    assert "| Abs | 1 | 1 | 0 | 0 | 1 | 0 | 0 |" in text
    assert "| Neg | 2 | 2 | 0 | 0 | 2 | 0 | 0 |" in text
    assert "| Concat |" in text and "--ops Abs,Neg,Concat" in text
    assert "passing on the native backend" in text


@pytest.mark.skipif(
    importlib.util.find_spec("mdl.onnx_import") is None, reason="mdl.onnx_import not there yet"
)
def test_with_the_real_importer_every_case_is_classified(cases):
    results = onnx_suite.run_suite(cases)
    assert all(set(r.outcomes) == {"ref", "native"} for r in results)
    both = [r for r in results if all(o.status == "passed" for o in r.outcomes.values())]
    assert both, [(r.name, r.outcomes) for r in results]
