"""Native reductions (sum, mean, max, min, prod, argmax, argmin) against the reference interpreter."""

from __future__ import annotations

import numpy as np
import pytest
from native_harness import assert_close, assert_native_matches, models

import mdl
from mdl import driver
from mdl.backend import loopir as ir
from mdl.backend.lower import lower

FLOATS = ("f32", "f64")
INTS = ("i32", "i64")


def data(shape: tuple[int, ...], dtype: str, seed: int = 0) -> np.ndarray:
    """Random values of `dtype`; ints are small so that argmax/argmin meet ties."""
    rng = np.random.default_rng(seed)
    if dtype in INTS:
        return rng.integers(-4, 5, size=shape).astype(dtype.replace("i", "int"))
    return rng.standard_normal(shape).astype(dtype.replace("f", "float"))


def model(x_type: str, body: str, out_type: str) -> str:
    return f"model M(x: {x_type}) -> {out_type} {{\n    return {body}\n}}\n"


# ---------------------------------------------------------------- every reduction, every dtype
# (expression, output shape for an input [3, 7, 13]); one model per dtype keeps JIT time down
REDUCTIONS = [
    ("sum(x, axis=-1, keep=true)", "[3, 7, 1]"),
    ("sum(x)", "[]"),
    ("sum(x, axis=[0, 2])", "[7]"),
    ("max(x, axis=0)", "[7, 13]"),
    ("max(x, axis=[1, 2], keep=true)", "[3, 1, 1]"),
    ("min(x, axis=1)", "[3, 13]"),
    ("min(x)", "[]"),
    ("prod(x, axis=0)", "[7, 13]"),
    ("prod(x, axis=[0, 1], keep=true)", "[1, 1, 13]"),
]
MEANS = [
    ("mean(x, axis=[1, 2])", "[3]"),
    ("mean(x, axis=-1, keep=true)", "[3, 7, 1]"),
    ("mean(x)", "[]"),
    ("mean(x, axis=0)", "[7, 13]"),
]
# over `r`, a copy of x with ties (ints are small; floats are rounded): the first index wins
ARG_REDUCTIONS = [
    ("argmax(r, axis=1)", "[3, 13]"),
    ("argmin(r, axis=0)", "[7, 13]"),
    ("argmax(r, axis=-1, keep=true)", "[3, 7, 1]"),
    ("argmin(r, axis=2)", "[3, 7]"),
]


def multi_output_model(inputs: str, cases: list[tuple[str, str]]) -> str:
    outs = ", ".join(f"o{k}: {out}" for k, (_, out) in enumerate(cases))
    values = ", ".join(expr for expr, _ in cases)
    return f"model M({inputs}) -> ({outs}) {{\n    return ({values})\n}}\n"


@pytest.mark.parametrize("dtype", FLOATS + INTS)
def test_reductions_match_reference(tmp_path, dtype):
    cases = [(e, f"{dtype}{s}") for e, s in REDUCTIONS + (MEANS if dtype in FLOATS else [])]
    cases += [(e, f"i64{s}") for e, s in ARG_REDUCTIONS]
    source = multi_output_model(f"x: {dtype}[3, 7, 13], r: {dtype}[3, 7, 13]", cases)
    x = data((3, 7, 13), dtype)
    ties = data((3, 7, 13), dtype, seed=1)
    assert_native_matches(tmp_path, source, x, np.round(ties) if dtype in FLOATS else ties)


def test_odd_sizes(tmp_path):
    cases = [
        ("sum(x, axis=1)", "f32[N]"),
        ("mean(x, axis=0)", "f32[M]"),
        ("max(x, axis=1, keep=true)", "f32[N, 1]"),
        ("min(x)", "f32[]"),
        ("prod(x, axis=0)", "f32[M]"),
        ("argmax(x, axis=1)", "i64[N]"),
        ("argmin(x, axis=0)", "i64[M]"),
    ]
    ref, nat = models(tmp_path, multi_output_model("x: f32[N, M]", cases))
    for shape in [(1, 1), (1, 65), (65, 1), (13, 3), (7, 65)]:
        x = data(shape, "f32", seed=shape[0] * 100 + shape[1])
        for got, want in zip(nat(x), ref(x), strict=True):
            assert_close(got, want)


def test_odd_known_sizes(tmp_path):
    cases = [
        ("sum(a, axis=1)", "f32[1]"),
        ("max(a)", "f32[]"),
        ("argmin(a, axis=0)", "i64[1]"),
        ("sum(b, axis=0, keep=true)", "f32[1, 13]"),
        ("mean(b, axis=1)", "f32[65]"),
        ("argmax(b, axis=1)", "i64[65]"),
        ("min(b, axis=[0, 1])", "f32[]"),
        ("sum(c)", "f32[]"),
        ("max(c, keep=true)", "f32[]"),
        ("mean(v, axis=0, keep=true)", "f32[1]"),
        ("argmax(v, axis=0)", "i64[]"),
    ]
    source = multi_output_model("a: f32[1, 1], b: f32[65, 13], c: f32[], v: f32[7]", cases)
    assert_native_matches(
        tmp_path,
        source,
        data((1, 1), "f32"),
        data((65, 13), "f32", seed=5),
        np.array(2.5, np.float32),
        data((7,), "f32", seed=6),
    )


def test_symbolic_batch(tmp_path):
    cases = [
        ("sum(x, axis=-1)", "f32[B, 7]"),
        ("mean(x, axis=[1, 2])", "f32[B]"),
        ("max(x, axis=1, keep=true)", "f32[B, 1, T]"),
        ("argmax(x, axis=1)", "i64[B, T]"),
        ("prod(1.0 + 0.01 * x, axis=[0, 2])", "f32[7]"),
    ]
    ref, nat = models(tmp_path, multi_output_model("x: f32[B, 7, T]", cases))
    for batch, length in [(1, 1), (3, 13), (2, 65)]:
        x = data((batch, 7, length), "f32", seed=batch)
        for got, want in zip(nat(x), ref(x), strict=True):
            assert_close(got, want)


# ---------------------------------------------------------------- numerics
def test_float_sums_accumulate_in_f64(tmp_path):
    # in f32, 1e8 + 1 rounds back to 1e8 and the sum would come out 0
    x = np.array([[1e8, 1.0, -1e8], [1.0, 1e8, -1e8]], dtype=np.float32)
    source = (
        "model M(x: f32[2, 3]) -> (s: f32[2], m: f32[2]) {\n"
        "    return (sum(x, axis=1), mean(x, axis=1))\n}\n"
    )
    ref, nat = models(tmp_path, source)
    s, m = nat(x)
    np.testing.assert_array_equal(s, np.array([1.0, 1.0], np.float32))
    np.testing.assert_allclose(m, ref(x)[1], rtol=1e-6)


@pytest.mark.parametrize("dtype", INTS)
def test_integer_sums_and_products_wrap(tmp_path, dtype):
    info = np.iinfo(dtype.replace("i", "int"))
    x = np.array([[info.max, 1, 1], [info.min, -1, 3], [7, 11, 13]], dtype=info.dtype)
    x = np.concatenate([x, np.full((1, 3), info.max // 3, info.dtype)])
    source = (
        f"model M(x: {dtype}[4, 3]) -> (s: {dtype}[4], p: {dtype}[3]) {{\n"
        "    return (sum(x, axis=1), prod(x, axis=0))\n}\n"
    )
    assert_native_matches(tmp_path, source, x)


NAN_CASES = {
    "nan_first": [np.nan, 1.0, 5.0, -2.0],
    "nan_middle": [1.0, 5.0, np.nan, -2.0, np.nan],
    "nan_last": [1.0, 5.0, -2.0, np.nan],
    "all_nan": [np.nan, np.nan, np.nan],
    "infinities": [-np.inf, 3.0, np.inf, -np.inf, np.inf],
    "neg_inf_only": [-np.inf, -np.inf],
    "inf_minus_inf": [np.inf, 1.0, -np.inf],
}


@pytest.mark.parametrize("dtype", FLOATS)
def test_nan_and_infinity(tmp_path, dtype):
    cases = [
        ("sum(x, axis=1)", f"{dtype}[R]"),
        ("mean(x, axis=0)", f"{dtype}[N]"),
        ("max(x, axis=1)", f"{dtype}[R]"),
        ("min(x, axis=0)", f"{dtype}[N]"),
        ("prod(x, axis=1)", f"{dtype}[R]"),
        ("argmax(x, axis=1)", "i64[R]"),
        ("argmax(x, axis=0)", "i64[N]"),
        ("argmin(x, axis=1)", "i64[R]"),
    ]
    ref, nat = models(tmp_path, multi_output_model(f"x: {dtype}[R, N]", cases))
    for values in NAN_CASES.values():
        row = np.array(values)
        # the row forwards and backwards, and a plain row: nan positions vary along both axes
        x = np.stack([row, row[::-1], np.arange(len(row), dtype=np.float64)])
        x = x.astype(dtype.replace("f", "float"))
        for got, want in zip(nat(x), ref(x), strict=True):
            assert_close(got, want)


# ---------------------------------------------------------------- empty axes at run time
def test_empty_axis_at_run_time_gives_identities(tmp_path):
    # x[:, 1:] has T - 1 columns: none when T is 1
    source = (
        "model M(x: f32[B, T], n: i32[B, T]) -> (s: f32[B], m: f32[B], mx: f32[B], mn: i32[B],"
        " p: f32[B]) {\n"
        "    let y = x[:, 1:]\n"
        "    let k = n[:, 1:]\n"
        "    return (sum(y, axis=1), mean(y, axis=1), max(y, axis=1), min(k, axis=1),"
        " prod(y, axis=1))\n}\n"
    )
    ref, nat = models(tmp_path, source)
    for length in (1, 4):
        x = data((2, length), "f32")
        n = data((2, length), "i32")
        for got, want in zip(nat(x, n), ref(x, n), strict=True):
            np.testing.assert_allclose(got, want, rtol=1e-5, equal_nan=True)
    s, m, mx, mn, p = nat(data((2, 1), "f32"), data((2, 1), "i32"))
    assert (s == 0).all() and np.isnan(m).all() and (mx == -np.inf).all()
    assert (mn == np.iinfo(np.int32).max).all() and (p == 1).all()


@pytest.mark.parametrize("op", ["argmax", "argmin"])
def test_arg_reduction_of_empty_axis_is_a_clean_error(tmp_path, op):
    source = f"model M(x: f32[B, T]) -> i64[B] {{\n    return {op}(x[:, 1:], axis=1)\n}}\n"
    _, nat = models(tmp_path, source)
    np.testing.assert_array_equal(
        nat(np.array([[0, 3, 9, 1]], np.float32)), [1 if op == "argmax" else 2]
    )
    with pytest.raises(mdl.MdlError) as err:
        nat(np.zeros((2, 1), np.float32))
    assert "E0313" in str(err.value)
    assert "size 0" in str(err.value)


def test_known_axis_sizes_need_no_run_time_check(tmp_path):
    path = tmp_path / "m.mdl"
    path.write_text(model("f32[B, 5]", "argmax(x, axis=1)", "i64[B]"))
    program = lower(driver.compile_model(str(path)).graph)
    ir.verify(program)
    assert program.errors == []


def test_float_sums_fold_into_eight_partial_sums(tmp_path):
    # sum/mean/max/min: 8 chains over the innermost reduced axis (its tail into the first),
    # combined pairwise; prod: one chain. Exact f64 sums make every order agree, so the
    # result is checked against math.fsum for sizes around multiples of 8.
    import math

    (tmp_path / "m.mdl").write_text(
        "model M(x: f32[B, N]) -> (s: f32[B], m: f32[B, 1], t: f32[B]) {\n"
        "    return sum(x, axis=1), mean(x, axis=-1, keep=true), max(x, axis=1)\n}\n"
    )
    graph = driver.compile_model(str(tmp_path / "m.mdl")).graph
    text = repr(lower(graph).kernels)
    assert text.count("Local(name='acc") == 8 + 8 + 8
    model = mdl.load(str(tmp_path / "m.mdl"), backend="native")
    rng = np.random.default_rng(5)
    for n in (1, 7, 8, 9, 16, 61):
        x = (rng.integers(-1000, 1000, (3, n)) / 64).astype(np.float32)  # exact in f64 sums
        s, m, t = model(x)
        for row in range(3):
            assert s[row] == np.float32(math.fsum(map(float, x[row])))
            assert m[row, 0] == np.float32(math.fsum(map(float, x[row])) / n)
        np.testing.assert_array_equal(t, x.max(axis=1))
        y = x.copy()
        y[:, n // 2] = np.nan  # NaN wins whichever chain it falls in
        assert np.isnan(model(y)[2]).all()
