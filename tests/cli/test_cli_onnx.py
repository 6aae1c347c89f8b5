"""`mdlc import` and `mdlc export`: the commands around onnx_import/ and onnx_export/."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort

import mdl

ROOT = Path(__file__).resolve().parents[2]
MLP_ONNX = ROOT / "tests" / "fixtures" / "onnx" / "mlp.onnx"
DIGITS = ROOT / "examples" / "digits.mdl"
DIGITS_W = ROOT / "examples" / "digits.safetensors"


def test_import_writes_source_and_weights_that_check(mdlc, tmp_path):
    out = tmp_path / "mlp.mdl"
    r = mdlc("import", MLP_ONNX, "-o", out)
    assert r.code == 0, r.err
    assert r.err.endswith(f"wrote {out} and {tmp_path / 'mlp.safetensors'}\n")
    assert mdlc("check", out).code == 0
    assert mdlc("fmt", "--check", out).code == 0
    model = mdl.load(str(out), weights=str(tmp_path / "mlp.safetensors"))
    fixture = np.load(MLP_ONNX.with_suffix(".npz"))
    x = fixture[sorted(k for k in fixture.files if k.startswith("in"))[0]]
    assert model(x).shape[0] == x.shape[0]


def test_import_of_a_file_that_is_not_onnx_is_a_coded_error(mdlc, tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x08\x07garbage" * 10)
    r = mdlc("import", bad, "-o", tmp_path / "bad.mdl")
    assert r.code == 1
    assert "error[E1001]" in r.err and "Traceback" not in r.err
    assert not (tmp_path / "bad.mdl").exists()
    r = mdlc("import", tmp_path / "missing.onnx", "-o", tmp_path / "m.mdl")
    assert r.code == 1 and "error[E" in r.err


def test_import_and_export_name_their_outputs(mdlc, tmp_path):
    assert mdlc("import", MLP_ONNX, "-o", tmp_path / "m.txt").code == 2
    assert mdlc("export", DIGITS, "--weights", DIGITS_W, "-o", tmp_path / "d.bin").code == 2
    assert mdlc("export", DIGITS, "--weights", DIGITS_W, "-o", tmp_path).code == 2


def test_export_runs_in_onnxruntime_with_the_references_outputs(mdlc, tmp_path):
    out = tmp_path / "digits.onnx"
    r = mdlc("export", DIGITS, "--weights", DIGITS_W, "-o", out)
    assert r.code == 0, r.err
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    x = np.load(ROOT / "examples" / "inputs" / "digits.npy")
    got = session.run(None, {"x": x})[0]
    want = mdl.load(str(DIGITS), weights=str(DIGITS_W), backend="ref")(x)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_export_to_a_missing_folder_is_a_coded_error(mdlc, tmp_path):
    r = mdlc("export", DIGITS, "--weights", DIGITS_W, "-o", tmp_path / "no" / "d.onnx")
    assert r.code == 1 and "error[E0702]" in r.err
