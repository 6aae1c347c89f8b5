"""Boundary errors: bad inputs and bad weights -> `MdlError` with the right code.

Inputs are checked when a compiled model is called (E06xx); weights when
`mdl.load` binds them (E05xx). Every error must be an `MdlError`, never a raw
Python exception, and a good call after a bad one must still work.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pytest

import mdl
from mdl.api import init_weights

INPUT_MODEL = """
model M(x: f32[B, 4], y: f32[B, 4], ids: i64[B, T] in 0..V) -> f32[B, 4] {
    return x + y
}
"""
V = 8


def write(tmp_path: Path, src: str, name: str = "m.mdl") -> str:
    path = tmp_path / name
    path.write_text(textwrap.dedent(src).lstrip("\n"), encoding="utf-8")
    return str(path)


def codes_of(excinfo: pytest.ExceptionInfo[mdl.MdlError]) -> list[str]:
    return [d.code for d in excinfo.value.diagnostics]


@pytest.fixture
def model(tmp_path):
    src = INPUT_MODEL.replace("model M(", f"model M[V = {V}](")
    return mdl.load(write(tmp_path, src), backend="ref")


def good_inputs(batch: int = 2, t: int = 3) -> dict[str, np.ndarray]:
    return {
        "x": np.ones((batch, 4), np.float32),
        "y": np.full((batch, 4), 2.0, np.float32),
        "ids": np.zeros((batch, t), np.int64),
    }


def test_good_call_works(model):
    np.testing.assert_array_equal(model(**good_inputs()), np.full((2, 4), 3.0, np.float32))


def bad_call(model, **changes):
    inputs = good_inputs()
    for k, v in changes.items():
        if v is None:
            del inputs[k]
        else:
            inputs[k] = v
    with pytest.raises(mdl.MdlError) as excinfo:
        model(**inputs)
    return codes_of(excinfo)


def test_missing_input_e0601(model):
    assert bad_call(model, y=None) == ["E0601"]


def test_unexpected_input_e0602(model):
    assert bad_call(model, z=np.ones((2, 4), np.float32)) == ["E0602"]
    with pytest.raises(mdl.MdlError) as excinfo:
        model(*good_inputs().values(), np.ones(1, np.float32))
    assert codes_of(excinfo) == ["E0602"]
    with pytest.raises(mdl.MdlError) as excinfo:
        inputs = good_inputs()
        model(inputs["x"], x=inputs["x"], y=inputs["y"], ids=inputs["ids"])
    assert codes_of(excinfo) == ["E0602"]


def test_wrong_dtype_e0603(model):
    assert bad_call(model, x=np.ones((2, 4), np.float64)) == ["E0603"]
    assert bad_call(model, ids=np.zeros((2, 3), np.int32)) == ["E0603"]
    assert bad_call(model, ids=np.zeros((2, 3), np.float32)) == ["E0603"]


def test_wrong_rank_e0604(model):
    assert bad_call(model, x=np.ones((2, 4, 1), np.float32)) == ["E0604"]
    assert bad_call(model, y=np.ones(4, np.float32)) == ["E0604"]
    assert bad_call(model, y=np.ones((), np.float32)) == ["E0604"]


def test_wrong_dim_e0605(model):
    assert bad_call(model, x=np.ones((2, 5), np.float32)) == ["E0605"]


def test_symbolic_dim_contradicted_by_another_input_e0605(model):
    # x binds B = 2; y says B = 3.
    assert bad_call(model, y=np.ones((3, 4), np.float32)) == ["E0605"]
    assert bad_call(model, ids=np.zeros((5, 3), np.int64)) == ["E0605"]


def test_index_input_out_of_declared_range_e0606(model):
    ids = np.zeros((2, 3), np.int64)
    ids[1, 2] = V
    assert bad_call(model, ids=ids) == ["E0606"]
    ids[1, 2] = -1
    assert bad_call(model, ids=ids) == ["E0606"]
    ids[1, 2] = V - 1
    assert model(**good_inputs() | {"ids": ids}).shape == (2, 4)


def test_not_an_array_e0608(model):
    assert bad_call(model, x=[[1.0] * 4] * 2) == ["E0608"]
    assert bad_call(model, x=np.array([[object()] * 4] * 2)) == ["E0608"]
    assert bad_call(model, x="not an array") == ["E0608"]


def test_model_still_works_after_errors(model):
    bad_call(model, y=None)
    bad_call(model, x=np.ones((2, 5), np.float32))
    out = model(**good_inputs(batch=5, t=1))
    assert out.shape == (5, 4)


def test_gather_out_of_range_at_run_time_e0607(tmp_path):
    m = mdl.load(
        write(
            tmp_path,
            "model G(x: f32[N, D], ids: i64[K]) -> f32[K, D] { return gather(x, ids, axis=0) }\n",
        ),
        backend="ref",
    )
    x = np.ones((4, 2), np.float32)
    assert m(x, np.array([0, 3, -4], np.int64)).shape == (3, 2)
    for bad in ([0, 4], [-5]):
        with pytest.raises(mdl.MdlError) as excinfo:
            m(x, np.array(bad, np.int64))
        assert codes_of(excinfo) == ["E0607"]


# ---------------------------------------------------------------- weights
WEIGHTS_MODEL = """
layer Lin[I, O](x: f32[B, I]) -> f32[B, O] {
    param weight: f32[O, I] = zeros
    param bias: f32[O] = zeros
    return x @ weight.T + bias
}
model M(x: f32[B, 3]) -> f32[B, 2] {
    let fc = Lin[3, 2]
    return fc(x)
}
"""


@pytest.fixture
def weights_path(tmp_path):
    return write(tmp_path, WEIGHTS_MODEL)


def load_codes(path: str, weights) -> list[str]:
    with pytest.raises(mdl.MdlError) as excinfo:
        mdl.load(path, weights=weights, backend="ref")
    return codes_of(excinfo)


def test_good_weights_work(weights_path):
    w = {"fc.weight": np.eye(2, 3, dtype=np.float32), "fc.bias": np.array([1, 2], np.float32)}
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    np.testing.assert_array_equal(
        mdl.load(weights_path, weights=w, backend="ref")(x), x[:, :2] + [1, 2]
    )
    assert sorted(init_weights(weights_path)) == ["fc.bias", "fc.weight"]


def test_missing_weight_e0503(weights_path):
    assert load_codes(weights_path, {"fc.weight": np.zeros((2, 3), np.float32)}) == ["E0503"]
    assert "E0503" in load_codes(weights_path, None)


def test_unexpected_weight_e0504(weights_path):
    w = init_weights(weights_path) | {"fc.extra": np.zeros(1, np.float32)}
    assert load_codes(weights_path, w) == ["E0504"]


def test_wrong_shape_e0505(weights_path):
    w = init_weights(weights_path) | {"fc.weight": np.zeros((3, 2), np.float32)}
    assert load_codes(weights_path, w) == ["E0505"]
    w = init_weights(weights_path) | {"fc.bias": np.zeros((2, 1), np.float32)}
    assert load_codes(weights_path, w) == ["E0505"]


def test_wrong_dtype_e0506(weights_path):
    w = init_weights(weights_path) | {"fc.bias": np.zeros(2, np.int64)}
    assert load_codes(weights_path, w) == ["E0506"]


def test_every_weight_problem_reported_at_once(weights_path):
    w = {"fc.weight": np.zeros((3, 3), np.float32), "junk": np.zeros(1, np.float32)}
    assert sorted(load_codes(weights_path, w)) == ["E0503", "E0504", "E0505"]


def test_load_on_a_file_without_a_model(tmp_path):
    path = write(tmp_path, "fn f(x: f32[N]) -> f32[N] = x\n")
    assert load_codes(path, None) == ["E0109"]


def test_load_on_a_missing_file(tmp_path):
    assert load_codes(str(tmp_path / "nope.mdl"), None) == ["E0701"]


def test_load_on_a_file_with_errors_reports_them(tmp_path):
    path = write(tmp_path, "model M(x: f32[B]) -> f32[B] { return y }\n")
    assert "E0101" in load_codes(path, None)
