"""Bad inputs to `export_onnx` give coded diagnostics, never tracebacks, and write nothing:
an unwritable output, an op without a lowering (E1101), a name ONNX cannot keep apart
(E1103), source and weights errors. Also: the f64 `erf` warning (E1104), weights written
beside the model past the protobuf limit, and `-D` defines."""

from __future__ import annotations

import sys

import numpy as np
import onnx
import pytest
from onnx_harness import session

from mdl import driver
from mdl.onnx_export import export, export_onnx

SOURCE = "model M(x: f32[B, 3]) -> f32[B, 3] {\n    param w: f32[3]\n    return erf(x) * w\n}\n"


def _write(tmp_path, text: str = SOURCE, name: str = "m.mdl") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def _codes(diags) -> list[str]:
    return [d.code for d in diags if d.is_error]


def test_writes_a_runnable_model(tmp_path):
    out = tmp_path / "m.onnx"
    weights = {"w": np.array([1.0, -2.0, 0.5], np.float32)}
    assert export_onnx(_write(tmp_path), weights, str(out)) == []
    x = np.array([[0.1, -0.7, 2.0]], np.float32)
    got = session(onnx.load(str(out))).run(None, {"x": x})[0]
    graph = driver.compile_model(_write(tmp_path)).graph
    np.testing.assert_allclose(
        got, driver.run_reference(graph, weights, {"x": x})["output"], rtol=1e-6
    )


@pytest.mark.parametrize("where", ["missing/dir/m.onnx", "."])
def test_unwritable_output_is_e0702(tmp_path, where):
    out = tmp_path / where
    diags = export_onnx(_write(tmp_path), None, str(out))
    assert _codes(diags) == ["E0702"]
    assert str(out) in diags[0].message


def test_an_op_without_lowering_is_e1101_at_its_node(tmp_path, monkeypatch):
    monkeypatch.delitem(export.LOWERINGS, "erf")
    out = tmp_path / "m.onnx"
    diags = export_onnx(_write(tmp_path), None, str(out))
    assert _codes(diags) == ["E1101"]
    assert "`erf`" in diags[0].message
    assert diags[0].span is not None and diags[0].span.line == 3
    assert not out.exists()


def test_an_output_named_like_a_parameter_is_e1103(tmp_path):
    source = "model M(x: f32[3]) -> (w: f32[3]) {\n    param w: f32[3]\n    return x * w\n}\n"
    diags = export_onnx(_write(tmp_path, source), None, str(tmp_path / "m.onnx"))
    assert _codes(diags) == ["E1103"]


def test_source_and_weights_errors_pass_through(tmp_path):
    out = str(tmp_path / "m.onnx")
    assert _codes(
        export_onnx(_write(tmp_path, "model M(x: f32[3]) -> f32[3] { return y }"), None, out)
    ) == ["E0101"]
    assert _codes(export_onnx(_write(tmp_path), str(tmp_path / "none.safetensors"), out)) == [
        "E0501"
    ]
    assert _codes(export_onnx(_write(tmp_path), {}, out)) == ["E0503"]


def test_f64_erf_warns_e1104_and_still_exports(tmp_path):
    out = tmp_path / "m.onnx"
    source = "model M(x: f64[N]) -> f64[N] { return erf(x) }"
    diags = export_onnx(_write(tmp_path, source), None, str(out))
    assert [(d.code, d.is_error) for d in diags] == [("E1104", False)]
    x = np.linspace(-3, 3, 13)
    got = session(onnx.load(str(out))).run(None, {"x": x})[0]
    np.testing.assert_allclose(got, [__import__("math").erf(v) for v in x], rtol=1e-6, atol=1e-7)


def test_big_weights_go_to_a_data_file_beside_the_model(tmp_path, monkeypatch):
    monkeypatch.setattr(export, "EXTERNAL_DATA_BYTES", 0)
    source = (
        "model M(x: f32[B, 512]) -> f32[B, 512] {\n    param w: f32[512]\n    return x * w\n}\n"
    )
    out = tmp_path / "m.onnx"
    weights = {"w": np.arange(512, dtype=np.float32)}
    assert export_onnx(_write(tmp_path, source), weights, str(out)) == []
    assert (tmp_path / "m.onnx.data").stat().st_size == 512 * 4
    x = np.ones((2, 512), np.float32)
    np.testing.assert_array_equal(
        session(onnx.load(str(out))).run(None, {"x": x})[0], x * weights["w"]
    )


def test_defines_reach_the_model(tmp_path):
    source = "model M[K = 2](x: f32[B, K]) -> f32[B, K] { return x + 1.0 }"
    out = tmp_path / "m.onnx"
    assert export_onnx(_write(tmp_path, source), None, str(out), defines={"K": 5}) == []
    dims = onnx.load(str(out)).graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_param or d.dim_value for d in dims] == ["B", 5]


def test_missing_onnx_package_is_e1105(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)  # `import onnx` raises ImportError
    diags = export_onnx(_write(tmp_path), None, str(tmp_path / "m.onnx"))
    assert _codes(diags) == ["E1105"]


def test_a_crashing_lowering_is_an_internal_error_not_a_traceback(tmp_path, monkeypatch):
    def broken(b, node, ins):
        raise ValueError("boom")

    monkeypatch.setitem(export.LOWERINGS, "mul", broken)
    diags = export_onnx(_write(tmp_path), None, str(tmp_path / "m.onnx"))
    assert _codes(diags) == ["E0901"]
    assert "`mul`" in diags[0].message and "boom" in diags[0].message
