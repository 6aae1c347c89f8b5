"""The inline f32 exp, erf and tanh (backend/vmath.py), measured: ulp distance from the correctly
rounded result (f64 numpy/math, rounded once) on millions of inputs and at the edges;
the same bits in every vector lane and in the scalar remainder; NaN, infinities, zeros,
overflow and subnormal results; f16/bf16 through them; untouched by --fast-math."""

from __future__ import annotations

import math

import ml_dtypes
import numpy as np
import pytest

import mdl

SRC = """model M(x: {t}[N]) -> (e: {t}[N], r: {t}[N], s: {t}[N], h: {t}[N]) {{
    return (exp(x), erf(x), sigmoid(x), tanh(x))
}}
"""
_erf64 = np.vectorize(math.erf, otypes=[np.float64])
F32_MAX_FINITE_EXP = np.float32(88.72283)  # exp of the next float up overflows


def _model(tmp_path, dtype: str = "f32", **options):
    path = tmp_path / f"m_{dtype}.mdl"
    path.write_text(SRC.format(t=dtype))
    return mdl.load(str(path), backend="native", **options), path


def _ulps(got: np.ndarray, want: np.ndarray) -> np.ndarray:
    """Distance in ulps of the arrays' own float type (f32, f16 or bf16); NaN = NaN."""
    bits = 8 * got.dtype.itemsize
    ints = (got.view(f"i{bits // 8}").astype(np.int64), want.view(f"i{bits // 8}").astype(np.int64))
    magnitude = (1 << (bits - 1)) - 1
    a, b = (np.where(i < 0, -(i & magnitude), i) for i in ints)  # float order
    d = np.abs(a - b)
    nan_got, nan_want = np.isnan(got.astype(np.float32)), np.isnan(want.astype(np.float32))
    d[nan_got & nan_want] = 0
    d[nan_got != nan_want] = 1 << 40
    return d


def _expected(x: np.ndarray) -> tuple[np.ndarray, ...]:
    x64 = x.astype(np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        e = np.exp(x64)
        z = np.exp(-np.abs(x64))
        s = np.where(x64 >= 0, 1 / (1 + z), z / (1 + z))
    return e, _erf64(x64), s, np.tanh(x64)


EDGES = np.array(
    [0.0, -0.0, np.inf, -np.inf, np.nan, 1e-45, -1e-45, 1e-38, -1e-38, 1e-8, -1e-8]
    + [F32_MAX_FINITE_EXP, np.nextafter(F32_MAX_FINITE_EXP, np.float32(np.inf))]
    + [-87.33654, -87.33655, -103.9720, -103.9721, -150.0, 1000.0, -1000.0]
    + [0.875, -0.875, float(np.nextafter(np.float32(0.875), np.float32(0))), 3.92, 4.0, 4.5],
    np.float32,
)


def test_f32_functions_are_within_an_ulp_or_two_of_correctly_rounded(tmp_path):
    model, _ = _model(tmp_path)
    rng = np.random.default_rng(7)
    x = np.concatenate(
        [
            rng.uniform(-110, 95, 400_000),  # every exponent of exp's results, subnormals too
            rng.standard_normal(400_000) * 1.5,  # where GELU, softmax and sigmoid live
            rng.uniform(-5, 5, 200_000),  # both branches of erf, and its clamp
            EDGES,
        ]
    ).astype(np.float32)
    got = model(x)
    names, bounds = ("exp", "erf", "sigmoid", "tanh"), (1, 1, 2, 1)
    for name, g, w, bound in zip(names, got, _expected(x), bounds, strict=True):
        with np.errstate(over="ignore"):
            want = w.astype(np.float32)
        d = _ulps(g, want)
        worst = int(np.argmax(d))
        assert d.max() <= bound, (name, x[worst], g[worst], want[worst], int(d.max()))
        # and usually exact: a regression in the polynomials would show here first
        assert np.mean(d == 0) > {"exp": 0.9, "erf": 0.95, "sigmoid": 0.7, "tanh": 0.9}[name], name


def test_special_values_are_exact(tmp_path):
    model, _ = _model(tmp_path)
    x = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 89.0, -104.0, 100.0, -200.0], np.float32)
    e, r, s, h = model(x)
    assert np.isnan(e[0]) and np.isnan(r[0]) and np.isnan(s[0]) and np.isnan(h[0])
    np.testing.assert_array_equal(e[1:], [np.inf, 0, 1, 1, np.inf, 0, np.inf, 0])
    np.testing.assert_array_equal(r[1:], [1, -1, 0, -0.0, 1, -1, 1, -1])
    assert np.signbit(r[4]) and not np.signbit(r[3])  # erf(-0) = -0
    np.testing.assert_array_equal(s[1:], [1, 0, 0.5, 0.5, 1, 0, 1, 0])
    np.testing.assert_array_equal(h[1:], [1, -1, 0, -0.0, 1, -1, 1, -1])
    assert np.signbit(h[4]) and not np.signbit(h[3])  # tanh(-0) = -0
    # the smallest results are subnormal, not flushed: exp(-100) = 3.7e-44
    assert 0 < np.float32(model(np.array([-100.0], np.float32))[0][0]) < 1e-43


def test_every_lane_and_the_remainder_compute_the_same_bits(tmp_path):
    model, _ = _model(tmp_path)
    rng = np.random.default_rng(3)
    values = np.concatenate([rng.standard_normal(13) * 3, EDGES[:13]]).astype(np.float32)
    first = model(values)
    for n in (1, 7, 16, 17, 33, 64 + 5):
        for shift in range(0, len(values), 5):
            x = np.resize(np.roll(values, shift), n)
            out = model(x)
            for got, want in zip(out, first, strict=True):
                expect = np.resize(np.roll(want, shift), n)
                assert got.tobytes() == expect.tobytes(), (n, shift)


@pytest.mark.parametrize("dtype,numpy_dtype", [("f16", np.float16), ("bf16", ml_dtypes.bfloat16)])
def test_half_types_round_once_from_f32(tmp_path, dtype, numpy_dtype):
    model, path = _model(tmp_path, dtype)
    ref = mdl.load(str(path), backend="ref")
    rng = np.random.default_rng(11)
    x = np.concatenate([rng.standard_normal(5000) * 3, rng.uniform(-20, 12, 5000)])
    x = x.astype(np.float32).astype(numpy_dtype)
    for got, want in zip(model(x), ref(x), strict=True):
        # one f32 ulp can move a half's rounding by one step
        assert _ulps(got, want).max() <= 1, dtype


def test_fast_math_leaves_them_alone(tmp_path):
    exact, _ = _model(tmp_path)
    relaxed, _ = _model(tmp_path, fast_math=True)
    x = np.random.default_rng(5).standard_normal(10_000).astype(np.float32) * 4
    for a, b in zip(exact(x), relaxed(x), strict=True):
        assert a.tobytes() == b.tobytes()
