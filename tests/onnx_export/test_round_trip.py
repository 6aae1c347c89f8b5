"""Real PyTorch exports (tests/fixtures/onnx) -> `mdlc import` -> `mdlc export` -> onnxruntime:
the same outputs as onnxruntime on the original file, at both batch sizes the fixture holds
(rtol 1e-4, atol 1e-5), with the input and output names kept and the batch still symbolic.
Also: constants an exporter shares between modules import and export again."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from mdl.onnx_export import export_onnx
from mdl.onnx_import import import_onnx

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "onnx"
CASES = ["mlp", "lenet", "resnet20", "gpt"]

ort.set_default_logger_severity(4)


def _session(path: Path) -> ort.InferenceSession:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def _round_trip(source: Path, tmp_path: Path) -> Path:
    imported, exported = tmp_path / "m.mdl", tmp_path / "m.onnx"
    diags = import_onnx(str(source), str(imported))
    assert diags == [], [str(d) for d in diags]
    weights = str(imported.with_suffix(".safetensors"))
    diags = export_onnx(str(imported), weights, str(exported))
    assert not [d for d in diags if d.is_error], [str(d) for d in diags]
    onnx.checker.check_model(str(exported), full_check=True)
    return exported


@pytest.mark.parametrize("case", CASES)
def test_import_export_matches_the_original_on_onnxruntime(case: str, tmp_path: Path) -> None:
    original = FIXTURES / f"{case}.onnx"
    exported = _round_trip(original, tmp_path)
    before, after = _session(original), _session(exported)
    assert [i.name for i in after.get_inputs()] == [i.name for i in before.get_inputs()]
    assert [o.name for o in after.get_outputs()] == [o.name for o in before.get_outputs()]
    assert after.get_inputs()[0].shape[0] == "batch"
    io = np.load(FIXTURES / f"{case}.npz")
    inputs = sorted(k for k in io.files if k.startswith("in."))
    assert len(inputs) == 2
    for key in inputs:
        feed = {key.split(".")[1]: io[key]}
        (expected,) = before.run(None, feed)
        (got,) = after.run(None, feed)
        assert got.shape == expected.shape
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)
        # the original on onnxruntime is torch's output: the comparison is not vacuous
        torch_key = f"out.{before.get_outputs()[0].name}.{key.rsplit('.', 1)[1]}"
        np.testing.assert_allclose(expected, io[torch_key], rtol=1e-4, atol=1e-5)
        assert expected.std(axis=0).mean() > 1e-2


def test_a_constant_shared_by_two_modules_round_trips(tmp_path: Path) -> None:
    """An anonymous initializer read in two module scopes (as exporters share a constant)
    is declared where both readers see it."""
    rng = np.random.default_rng(0)
    inits = [
        numpy_helper.from_array(rng.normal(size=4).astype(np.float32), name)
        for name in ("a.weight", "b.weight", "onnx::Add_9")
    ]
    nodes = [
        helper.make_node("Mul", ["x", "a.weight"], ["h1"], name="/a/Mul"),
        helper.make_node("Add", ["h1", "onnx::Add_9"], ["h2"], name="/a/Add"),
        helper.make_node("Mul", ["h2", "b.weight"], ["h3"], name="/b/Mul"),
        helper.make_node("Add", ["h3", "onnx::Add_9"], ["y"], name="/b/Add"),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    original = tmp_path / "shared.onnx"
    onnx.save(model, original)
    exported = _round_trip(original, tmp_path)
    assert "a(x," in (tmp_path / "m.mdl").read_text()  # module `a` stays a layer
    x = rng.normal(size=(3, 4)).astype(np.float32)
    (expected,) = _session(original).run(None, {"x": x})
    (got,) = _session(exported).run(None, {"x": x})
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)
