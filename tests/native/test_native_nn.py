"""Native conv, max_pool and avg_pool against the reference interpreter.

Stdlib layers (`nn.Conv2d`, `nn.MaxPool2d`, ...) and the raw primitives, with
odd sizes, strides that do not divide the input, every padding form, groups,
dilation, 1-D and 2-D, f32 and f64, symbolic batch and spatial dims, NaN and
inf, the run-time window-size error, and the LeNet and ResNet-20 examples.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from native_harness import assert_close, assert_native_matches, models

import mdl
from mdl import driver
from mdl.backend import loopir
from mdl.backend.lower import lower

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def _normal(shape: tuple[int, ...], dtype=np.float32, seed: int = 0) -> np.ndarray:
    return _rng(seed).standard_normal(shape).astype(dtype)


# ---------------------------------------------------------------- stdlib layers


def test_conv2d_layer_same_padding_over_batch_sizes(tmp_path: Path) -> None:
    source = """
import nn
model M(x: f32[B, 3, 7, 13]) -> f32[B, 8, _, _] {
    let conv = nn.Conv2d[3, 8, 3, padding=1]
    return conv(x)
}
"""
    ref, nat = models(tmp_path, source)
    for batch in (1, 2, 3):
        x = _normal((batch, 3, 7, 13), seed=batch)
        assert_close(nat(x), ref(x))


def test_pool_layers_on_odd_sizes(tmp_path: Path) -> None:
    source = """
import nn
model M(x: f32[B, 3, 7, 13]) -> (
    mx: f32[B, 3, _, _], avg: f32[B, 3, _, _], avg_in: f32[B, 3, _, _], mx3: f32[B, 3, _, _],
) {
    let mx = nn.MaxPool2d[2]
    let avg = nn.AvgPool2d[3, stride=2, padding=1]
    let avg_in = nn.AvgPool2d[3, stride=2, padding=1, count_include_pad=false]
    let mx3 = nn.MaxPool2d[3, stride=2, padding=1]
    return mx(x), avg(x), avg_in(x), mx3(x)
}
"""
    assert_native_matches(tmp_path, source, _normal((2, 3, 7, 13)))


def test_conv2d_layers_stride_groups_dilation(tmp_path: Path) -> None:
    source = """
import nn
model M(x: f32[B, 6, 13, 7]) -> (
    strided: f32[B, 4, _, _], grouped: f32[B, 9, _, _], depthwise: f32[B, 12, _, _],
    dilated: f32[B, 5, _, _], mixed: f32[B, 4, _, _],
) {
    let strided = nn.Conv2d[6, 4, 3, stride=2, padding=1]
    let grouped = nn.Conv2d[6, 9, 3, groups=3]
    let depthwise = nn.Conv2d[6, 12, 3, padding=1, groups=6]
    let dilated = nn.Conv2d[6, 5, 3, dilation=2]
    let mixed = nn.Conv2d[6, 4, 3, stride=2, padding=2, dilation=3, groups=2]
    return strided(x), grouped(x), depthwise(x), dilated(x), mixed(x)
}
"""
    assert_native_matches(tmp_path, source, _normal((3, 6, 13, 7)))


def test_conv1d_layer(tmp_path: Path) -> None:
    source = """
import nn
model M(x: f32[B, 3, 13]) -> (a: f32[B, 5, _], b: f32[B, 4, _], c: f32[B, 6, _]) {
    let a = nn.Conv1d[3, 5, 4, stride=2, padding=1, dilation=2]
    let b = nn.Conv1d[3, 4, 1]
    let c = nn.Conv1d[3, 6, 3, groups=3, bias=false]
    return a(x), b(x), c(x)
}
"""
    assert_native_matches(tmp_path, source, _normal((2, 3, 13)))


# ---------------------------------------------------------------- primitives


def test_conv_padding_forms_and_per_axis_geometry(tmp_path: Path) -> None:
    # weights as model inputs: the harness compares every output
    source = """
model M(x: f32[B, 4, 7, 9], w: f32[6, 2, 3, 2]) -> (
    begin_end: f32[B, 6, _, _], per_axis: f32[B, 6, _, _], asym: f32[B, 6, _, _],
) {
    let begin_end = conv(x, w, padding=[0, 1, 1, 0], groups=2)
    let per_axis = conv(x, w, stride=[2, 3], padding=[1, 2], dilation=[1, 2], groups=2)
    let asym = conv(x, w, stride=[3, 4], padding=[2, 0, 0, 3], dilation=[2, 1], groups=2)
    return begin_end, per_axis, asym
}
"""
    assert_native_matches(tmp_path, source, _normal((2, 4, 7, 9)), _normal((6, 2, 3, 2), seed=1))


def test_conv_f64_1d_and_2d(tmp_path: Path) -> None:
    source = """
model M(x: f64[B, 4, 11], w: f64[6, 2, 3], y: f64[B, 2, 5, 7], v: f64[3, 2, 5, 1]) -> (
    a: f64[B, 6, _], b: f64[B, 3, _, _],
) {
    return conv(x, w, stride=2, padding=[0, 2], dilation=2, groups=2), conv(y, v, padding=1)
}
"""
    x, w = _normal((3, 4, 11), np.float64), _normal((6, 2, 3), np.float64, seed=1)
    y, v = _normal((3, 2, 5, 7), np.float64, seed=2), _normal((3, 2, 5, 1), np.float64, seed=3)
    # f64 accumulates in f64: hold it to a tolerance f32 could not meet
    assert_native_matches(tmp_path, source, x, w, y, v, rtol=1e-12, atol=1e-12)


def test_pools_1d_2d_f64_with_dilation(tmp_path: Path) -> None:
    source = """
model M(x: f64[B, 2, 13], y: f64[B, 3, 9, 7]) -> (
    m1: f64[B, 2, _], a1: f64[B, 2, _], a1n: f64[B, 2, _],
    m2: f64[B, 3, _, _], a2: f64[B, 3, _, _], a2n: f64[B, 3, _, _],
) {
    let m1 = max_pool(x, 3, stride=2, padding=1, dilation=2)
    let a1 = avg_pool(x, 4, stride=2, padding=[2, 1], count_include_pad=true)
    let a1n = avg_pool(x, 4, stride=2, padding=[2, 1], count_include_pad=false)
    let m2 = max_pool(y, [2, 3], stride=[2, 3], padding=[1, 0], dilation=[2, 1])
    let a2 = avg_pool(y, [3, 2], stride=[2, 3], padding=[1, 1, 1, 0])
    let a2n = avg_pool(y, [3, 2], stride=[2, 3], padding=[1, 1, 1, 0], count_include_pad=false)
    return m1, a1, a1n, m2, a2, a2n
}
"""
    x, y = _normal((2, 2, 13), np.float64), _normal((2, 3, 9, 7), np.float64, seed=1)
    assert_native_matches(tmp_path, source, x, y, rtol=1e-12, atol=1e-12)


def test_nan_and_inf_propagate(tmp_path: Path) -> None:
    source = """
model M(x: f32[B, 2, 6, 5], w: f32[3, 2, 2, 2]) -> (
    mx: f32[B, 2, _, _], avg: f32[B, 2, _, _], cv: f32[B, 3, _, _], dil: f32[B, 2, _, _],
) {
    let mx = max_pool(x, 2, padding=1)
    let avg = avg_pool(x, 2, padding=1, count_include_pad=false)
    let cv = conv(x, w, padding=1)
    let dil = max_pool(x, 2, stride=1, padding=1, dilation=3)
    return mx, avg, cv, dil
}
"""
    x = _normal((2, 2, 6, 5))
    x[0, 0, 1, 1] = np.nan
    x[0, 1, 4, 3] = np.inf
    x[1, 0, 2, 2] = -np.inf
    x[1, 1] = -np.inf  # a whole channel of -inf: max is -inf, not a NaN or a pad value
    x[1, 1, 5, 4] = np.nan
    assert_native_matches(tmp_path, source, x, _normal((3, 2, 2, 2), seed=1))


def test_max_pool_window_only_padding_gives_minus_inf(tmp_path: Path) -> None:
    # kernel 2, dilation 3, padding 1 on a size-2 axis: the only window reads
    # positions -1 and 2, both padding (PyTorch gives -inf too)
    source = """
model M(x: f32[B, 1, 2]) -> f32[B, 1, _] {
    return max_pool(x, 2, stride=1, padding=1, dilation=3)
}
"""
    ref, nat = models(tmp_path, source)
    x = np.array([[[1.0, 2.0]]], dtype=np.float32)
    got = nat(x)
    assert_close(got, ref(x))
    assert got[0, 0, 0] == -np.inf


def test_symbolic_spatial_dims(tmp_path: Path) -> None:
    source = """
model M(x: f32[B, 2, L], w: f32[3, 2, 3]) -> (c: f32[B, 3, _], m: f32[B, 2, _], a: f32[B, 2, _]) {
    let c = conv(x, w, stride=2, padding=1)
    let m = max_pool(x, 3, stride=2, padding=1)
    let a = avg_pool(x, 3, stride=2, padding=1, count_include_pad=false)
    return c, m, a
}
"""
    ref, nat = models(tmp_path, source)
    w = _normal((3, 2, 3), seed=9)
    for batch, length in ((1, 1), (2, 2), (1, 7), (3, 12)):
        x = _normal((batch, 2, length), seed=length)
        for got, want in zip(nat(x, w), ref(x, w), strict=True):
            assert_close(got, want)


def test_window_larger_than_symbolic_input_is_a_clean_error(tmp_path: Path) -> None:
    source = """
model M(x: f32[B, 2, L], w: f32[3, 2, 3]) -> f32[B, 3, _] {
    return conv(x, w, dilation=2, padding=[0, 2])
}
"""
    ref, nat = models(tmp_path, source)
    w = _normal((3, 2, 3))
    x = _normal((1, 2, 2))  # 2 + 2 of padding < the window of 5
    for model in (ref, nat):
        with pytest.raises(mdl.MdlError) as err:
            model(x, w)
        (diag,) = err.value.diagnostics
        assert diag.code == "E0605"
        assert "spatial size 2" in diag.message and "window of size 5" in diag.message
    x = _normal((1, 2, 3))  # fits exactly: one output position
    assert_close(nat(x, w), ref(x, w))


def test_unpadded_axes_need_no_clamping(tmp_path: Path) -> None:
    # without padding the output formula keeps every window inside the input, so the
    # direct lowering (used when spatial sizes are symbolic) emits plain kernel loops;
    # with padding it clamps them per output position
    path = tmp_path / "m.mdl"
    path.write_text("""
model M(x: f32[B, 2, H, W], w: f32[2, 2, 3, 3]) -> (a: f32[B, 2, _, _], b: f32[B, 2, _, _]) {
    return conv(x, w), conv(x, w, padding=1)
}
""")
    program = lower(driver.compile_model(str(path)).graph)
    loopir.verify(program)
    (unpadded, padded) = (repr(k.body) for k in program.kernels)
    assert "tap_lo" not in unpadded
    assert "tap_lo" in padded


def test_known_sizes_use_the_gemm(tmp_path: Path) -> None:
    path = tmp_path / "m.mdl"
    path.write_text("""
model M(x: f32[B, 4, 9, 7], w: f32[6, 2, 3, 3], v: f32[8, 4, 1, 1]) -> (a: f32[B, 6, _, _], b: f32[B, 8, 9, 7]) {
    return conv(x, w, padding=[1, 2], stride=2, groups=2), conv(x, v)
}
""")
    program = lower(driver.compile_model(str(path)).graph)
    loopir.verify(program)
    strided, pointwise = (repr(k.body) for k in program.kernels)
    # strided: a padded copy in phase planes read through an offset table (conv_shifted.py)
    assert "Gemm(" in strided and "b_rows='taps." in strided and "im2col." not in strided
    assert "Gemm(" in pointwise and "b_rows=''" in pointwise  # 1x1: the input is the matrix
    # the scratch is per thread (outside the arena), the size of one batch entry's
    assert sorted(b.name.split(".")[0] for b in program.chunks) == ["padded", "wide"]
    assert {b.role for b in program.chunks} == {"chunk"}
    assert not [b for b in program.buffers if b.role == "temp"]
    rng = np.random.default_rng(3)
    x = rng.standard_normal((3, 4, 9, 7)).astype(np.float32)
    w = rng.standard_normal((6, 2, 3, 3)).astype(np.float32)
    v = rng.standard_normal((8, 4, 1, 1)).astype(np.float32)
    ref = mdl.load(str(path), backend="ref")(x, w, v)
    nat = mdl.load(str(path), backend="native")(x, w, v)
    for g, r in zip(nat, ref, strict=True):
        assert_close(g, r)


# ---------------------------------------------------------------- examples


@pytest.mark.parametrize("example", ["lenet", "resnet20"])
def test_example_models(example: str) -> None:
    path = str(EXAMPLES / f"{example}.mdl")
    graph = driver.compile_model(path).graph
    weights = driver.init_weights(graph, seed=0, random=True)
    x = np.load(EXAMPLES / "inputs" / f"{example}.npy")
    want = mdl.load(path, weights=weights, backend="ref")(x)
    got = mdl.load(path, weights=weights, backend="native")(x)
    if not isinstance(want, tuple):
        want, got = (want,), (got,)
    for g, w in zip(got, want, strict=True):
        assert_close(g, w)
