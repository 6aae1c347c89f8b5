"""Convs through a padded copy (phase planes for strides) and an indirect GEMM
(kernels/conv_shifted.py) give the bits of the im2col path, and the reference's values
(f32 rtol 1e-5 / atol 1e-5)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mdl import driver
from mdl.backend.jit import NativeModel
from mdl.backend.kernels import nn as conv_kernels
from mdl.backend.lower import lower

ROOT = Path(__file__).resolve().parents[2]

CASES = {
    # name: (input shape without batch, weight shape, conv keyword arguments)
    "3x3_same": ((4, 9, 7), (6, 4, 3, 3), "padding=1"),
    "5x5_valid": ((1, 12, 13), (3, 1, 5, 5), ""),
    "asymmetric_pad": ((3, 8, 5), (5, 3, 3, 2), "padding=[2, 1]"),
    "dilated": ((2, 11, 10), (4, 2, 3, 3), "padding=2, dilation=2"),
    "groups": ((4, 6, 6), (6, 2, 3, 3), "padding=1, groups=2"),
    "wide_row": ((2, 3, 40), (3, 2, 1, 3), "padding=1"),
    "conv1d": ((3, 17), (4, 3, 5), "padding=2"),
    "stride2": ((3, 9, 8), (4, 3, 3, 3), "padding=1, stride=2"),
    "stride2_1x1": ((4, 8, 8), (6, 4, 1, 1), "stride=2"),
    "stride3_dilated": ((2, 13, 11), (3, 2, 3, 2), "padding=[2, 1], stride=[3, 2], dilation=2"),
    "stride2_conv1d": ((3, 20), (2, 3, 4), "padding=1, stride=2"),
}


def _model(tmp_path: Path, name: str, dtype: str = "f32") -> Path:
    x, w, kw = CASES[name]
    dims = ", ".join(map(str, x))
    wdims = ", ".join(map(str, w))
    args = f", {kw}" if kw else ""
    path = tmp_path / f"{name}.mdl"
    path.write_text(
        f"model M(x: {dtype}[B, {dims}], w: {dtype}[{wdims}]) -> {dtype}[B, {w[0]}, *_] {{\n"
        f"    return conv(x, w{args})\n}}\n"
    )
    return path


def _graph(path: Path):
    return driver.compile_model(str(path)).graph


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("dtype", ["f32", "f64"])
def test_shifted_equals_im2col_bitwise_and_the_reference(tmp_path, name, dtype, monkeypatch):
    graph = _graph(_model(tmp_path, name, dtype))
    rng = np.random.default_rng(7)
    x_shape, w_shape, _ = CASES[name]
    np_dtype = np.float32 if dtype == "f32" else np.float64
    inputs = {
        "x": rng.standard_normal((3, *x_shape)).astype(np_dtype),
        "w": rng.standard_normal(w_shape).astype(np_dtype),
    }
    program = lower(graph)
    gemms = repr(program.kernels)
    assert "b_rows='taps." in gemms  # the indirect GEMM, no im2col
    assert not [b for b in program.chunks if b.name.startswith("im2col")]
    shifted = NativeModel(graph, {}, cache=False).run(inputs)["output"]
    monkeypatch.setattr(conv_kernels, "SHIFTED", False)
    assert "im2col." in repr(lower(graph).chunks)
    im2col = NativeModel(graph, {}, cache=False).run(inputs)["output"]
    assert shifted.tobytes() == im2col.tobytes()
    ref = driver.run_reference(graph, {}, inputs)["output"]
    np.testing.assert_allclose(shifted, ref, rtol=1e-5, atol=1e-5)


def test_special_values_through_the_padding(tmp_path):
    # inf * padding zero is nan in im2col's chain; the padded copy holds the same zeros
    graph = _graph(_model(tmp_path, "3x3_same"))
    x = np.ones((1, 4, 9, 7), np.float32)
    w = np.ones((6, 4, 3, 3), np.float32)
    w[0, 0, 0, 0] = np.inf
    x[0, 1, 4, 3] = np.nan
    got = NativeModel(graph, {}, cache=False).run({"x": x, "w": w})["output"]
    ref = driver.run_reference(graph, {}, {"x": x, "w": w})["output"]
    np.testing.assert_array_equal(np.isnan(got), np.isnan(ref))
    np.testing.assert_array_equal(np.isinf(got), np.isinf(ref))
    finite = np.isfinite(ref)
    np.testing.assert_allclose(got[finite], ref[finite], rtol=1e-6)


def test_resnet_uses_it_for_every_conv():
    program = lower(_graph(ROOT / "examples/resnet20.mdl"))
    text = repr(program.kernels)
    # 21 convs: the stem, 18 3x3 of stride 1 or 2, the 2 downsampling 1x1 of stride 2
    assert text.count("b_rows='taps.") == 21
    assert not [b for b in program.chunks if b.name.startswith("im2col.")]
