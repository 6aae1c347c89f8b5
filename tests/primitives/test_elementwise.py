"""Element-wise primitives, where, cast, arange and full: shape and dtype rules, reference values.

Expectations are computed independently of the code under test: per element with
Python's `math` module, by hand, or with numpy functions the primitive does not use.
Tolerances: f64 results within 1e-15 relative (math and numpy libm may differ by
an ulp); f32 within 1e-6 relative; f16 and bf16 must equal the f32 result rounded
once; integer and bool results are exact.
"""

from __future__ import annotations

import math
import warnings

import ml_dtypes
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mdl.dims import Dim
from mdl.primitives import REGISTRY, ShapeError
from mdl.types import DType, TensorType

B, T = Dim.of("B"), Dim.of("T")
BF16 = np.dtype(ml_dtypes.bfloat16)


def ttype(dtype: DType, *dims) -> TensorType:
    return TensorType(dtype, tuple(Dim.of(d) for d in dims))


def type_of(a: np.ndarray) -> TensorType:
    return TensorType(DType.from_numpy(a.dtype), tuple(Dim.of(n) for n in a.shape))


def run(name: str, *arrays: np.ndarray, **attrs) -> np.ndarray:
    """infer + evaluate, checking the result matches the inferred type and inputs are intact."""
    prim = REGISTRY[name]
    arrays = [np.asarray(a) for a in arrays]
    inferred = prim.infer([type_of(a) for a in arrays], attrs)
    before = [a.copy() for a in arrays]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the reference never warns
        results = prim.evaluate(arrays, attrs)
    for a, b in zip(arrays, before, strict=True):
        np.testing.assert_array_equal(a, b)
    assert len(results) == len(inferred) == 1
    assert isinstance(results[0], np.ndarray)
    assert type_of(results[0]) == inferred[0]
    return results[0]


def error(name: str, operands: list[TensorType], **attrs) -> ShapeError:
    with pytest.raises(ShapeError) as info:
        REGISTRY[name].infer(operands, attrs)
    return info.value


VALUES = [-3.5, -1.0, -0.25, 0.0, 0.5, 1.0, 2.0, 7.25]
POSITIVE = [0.125, 0.5, 1.0, 2.0, 10.0, 1e3]

UNARY_EXPECTED = {
    "exp": (VALUES, math.exp),
    "log": (POSITIVE, math.log),
    "sqrt": (POSITIVE, math.sqrt),
    "rsqrt": (POSITIVE, lambda v: 1 / math.sqrt(v)),
    "tanh": (VALUES, math.tanh),
    "erf": (VALUES, math.erf),
    "sigmoid": (VALUES, lambda v: 1 / (1 + math.exp(-v))),
    "sin": (VALUES, math.sin),
    "cos": (VALUES, math.cos),
    "floor": (VALUES, math.floor),
    "ceil": (VALUES, math.ceil),
    "abs": (VALUES, abs),
    "neg": (VALUES, lambda v: -v),
}


@pytest.mark.parametrize("name", sorted(UNARY_EXPECTED))
@pytest.mark.parametrize(("dtype", "rtol"), [(np.float64, 1e-15), (np.float32, 1e-6)])
def test_unary_float_values(name, dtype, rtol):
    inputs, fn = UNARY_EXPECTED[name]
    x = np.array(inputs, dtype=dtype).reshape(2, -1)
    expected = np.array([fn(float(v)) for v in x.ravel()]).reshape(x.shape)
    out = run(name, x)
    assert out.dtype == dtype
    np.testing.assert_allclose(out, expected, rtol=rtol, atol=0)


@pytest.mark.parametrize("name", ["exp", "tanh", "erf", "sigmoid", "sqrt"])
@pytest.mark.parametrize("storage", [np.float16, BF16])
def test_storage_floats_compute_in_f32_and_round_once(name, storage):
    x = np.array(POSITIVE, dtype=np.float32).astype(storage)
    in_f32 = run(name, x.astype(np.float32))
    out = run(name, x)
    assert out.dtype == storage
    np.testing.assert_array_equal(out.astype(np.float32), in_f32.astype(storage).astype(np.float32))


def test_unary_special_values():
    nan, inf = math.nan, math.inf
    x = np.array([-inf, -1.0, 0.0, inf, nan], dtype=np.float32)
    np.testing.assert_array_equal(run("log", x), [nan, nan, -inf, inf, nan])
    np.testing.assert_array_equal(run("rsqrt", x)[2:4], [inf, 0.0])
    np.testing.assert_array_equal(run("sigmoid", np.array([-1e4, 1e4, nan])), [0.0, 1.0, nan])
    np.testing.assert_array_equal(run("erf", np.array([-inf, inf, nan])), [-1.0, 1.0, nan])
    np.testing.assert_array_equal(run("isnan", x), [False, False, False, False, True])
    assert run("isnan", x).dtype == np.bool_
    assert run("exp", np.array(0.0, dtype=np.float32)).shape == ()


def test_unary_int_and_bool():
    ints = np.array([-5, 0, 3, np.iinfo(np.int32).min], dtype=np.int32)
    np.testing.assert_array_equal(run("abs", ints), [5, 0, 3, np.iinfo(np.int32).min])
    np.testing.assert_array_equal(run("neg", ints), [5, 0, -3, np.iinfo(np.int32).min])
    assert run("abs", ints).dtype == np.int32
    np.testing.assert_array_equal(run("logical_not", np.array([True, False])), [False, True])


@pytest.mark.parametrize(
    ("name", "dtype", "help_part"),
    [
        ("exp", DType.I64, "cast(x, f32)"),
        ("sqrt", DType.BOOL, "cast(x, f32)"),
        ("isnan", DType.I32, "cast(x, f32)"),
        ("abs", DType.BOOL, "cast(x, i64)"),
        ("logical_not", DType.F32, "x != 0"),
    ],
)
def test_unary_dtype_errors(name, dtype, help_part):
    e = error(name, [ttype(dtype, B)])
    assert (e.code, e.arg) == ("E0202", 0)
    assert help_part in e.help
    assert f"`{dtype}`" in e.message


# ---------------------------------------------------------------------------
# Binary


def test_arithmetic_broadcasts_like_numpy():
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    b = np.array([10.0, 20.0, 30.0], dtype=np.float32)
    np.testing.assert_array_equal(run("add", a, b), [[10, 21, 32], [13, 24, 35]])
    np.testing.assert_array_equal(run("sub", b, a), [[10, 19, 28], [7, 16, 25]])
    np.testing.assert_array_equal(run("mul", a, np.float32(2)), [[0, 2, 4], [6, 8, 10]])
    np.testing.assert_allclose(run("div", a, b), [[0, 0.05, 2 / 30], [0.3, 0.2, 5 / 30]], 1e-6)
    np.testing.assert_array_equal(run("pow", b, np.float32(2)), [100, 400, 900])
    np.testing.assert_array_equal(run("maximum", a, np.float32(2.5)), [[2.5, 2.5, 2.5], [3, 4, 5]])
    np.testing.assert_array_equal(run("minimum", a, np.float32(2.5)), [[0, 1, 2], [2.5, 2.5, 2.5]])


def test_mod_follows_the_divisor_sign():
    a = np.array([7, -7, 7, -7, 5], dtype=np.int64)
    b = np.array([3, 3, -3, -3, 0], dtype=np.int64)
    np.testing.assert_array_equal(run("mod", a, b), [1, 2, -2, -1, 0])
    x = np.array([-7.5, 7.5, 1.0], dtype=np.float64)
    out = run("mod", x, np.array([2.0, -2.0, 0.0]))
    np.testing.assert_array_equal(out[:2], [0.5, -0.5])
    assert math.isnan(out[2])


def test_floordiv_rounds_toward_minus_infinity():
    a = np.array([7, -7, 7, -7, 5], np.int64)
    b = np.array([2, 2, -2, -2, 0], np.int64)
    # Python's // for the first four; integer division by zero is 0 (numpy's rule)
    expected = [7 // 2, -7 // 2, 7 // -2, -7 // -2, 0]
    np.testing.assert_array_equal(run("floordiv", a, b), expected)
    x = np.array([7.5, -7.5, 1.0], np.float32)
    out = run("floordiv", x, np.array([2.0, 2.0, 0.0], np.float32))
    np.testing.assert_array_equal(out[:2], [3.0, -4.0])
    assert np.isinf(out[2])


def test_integer_arithmetic_wraps_and_int_pow_is_total():
    big = np.array([np.iinfo(np.int32).max], dtype=np.int32)
    assert run("add", big, np.array(1, dtype=np.int32))[0] == np.iinfo(np.int32).min
    base = np.array([2, 1, -1, -1, 0, 3], dtype=np.int64)
    exponent = np.array([-1, -5, -3, -2, -1, 4], dtype=np.int64)
    np.testing.assert_array_equal(run("pow", base, exponent), [0, 1, -1, 1, 0, 81])


def test_float_division_by_zero_is_ieee():
    out = run("div", np.array([1.0, -1.0, 0.0]), np.array([0.0, 0.0, 0.0]))
    assert out[0] == math.inf and out[1] == -math.inf and math.isnan(out[2])


def test_comparisons_and_logic():
    nan = math.nan
    a = np.array([1.0, 2.0, nan], dtype=np.float32)
    b = np.array([2.0, 2.0, nan], dtype=np.float32)
    assert run("eq", a, b).tolist() == [False, True, False]
    assert run("ne", a, b).tolist() == [True, False, True]
    assert run("lt", a, b).tolist() == [True, False, False]
    assert run("le", a, b).tolist() == [True, True, False]
    assert run("gt", a, b).tolist() == [False, False, False]
    assert run("ge", a, b).tolist() == [False, True, False]
    p, q = np.array([True, True, False, False]), np.array([True, False, True, False])
    assert run("logical_and", p, q).tolist() == [True, False, False, False]
    assert run("logical_or", p, q).tolist() == [True, True, True, False]
    assert run("eq", p, q).dtype == np.bool_
    assert run("maximum", np.array([nan, 1.0]), np.array([0.0, nan])).tolist() != [0.0, 1.0]
    assert np.isnan(run("maximum", np.array([nan, 1.0]), np.array([0.0, nan]))).all()


def test_binary_on_bf16_rounds_once():
    a = np.array([1.0, 3.0], dtype=BF16)
    b = np.array([2.0**-8, 2.0**-7], dtype=BF16)
    # 1 + 2^-8 is a tie: round to even gives 1; 3 + 2^-7 rounds to 3 (spacing 2^-6)
    np.testing.assert_array_equal(run("add", a, b).astype(np.float32), [1.0, 3.0])
    assert run("add", a, b).dtype == BF16


def test_symbolic_broadcast():
    out = REGISTRY["add"].infer([ttype(DType.F32, B, 1), ttype(DType.F32, 1, 64)], {})
    assert out == (ttype(DType.F32, B, 64),)
    out = REGISTRY["lt"].infer([ttype(DType.I64, T, 1), ttype(DType.I64, T)], {})
    assert out == (ttype(DType.BOOL, T, T),)
    out = REGISTRY["mul"].infer([ttype(DType.F32, 2 * B, 64), ttype(DType.F32, B * 2, 1)], {})
    assert out[0].shape == (2 * B, Dim.of(64))


def test_broadcast_errors():
    e = error("add", [ttype(DType.F32, B, 64), ttype(DType.F32, 32)])
    assert (e.code, e.arg) == ("E0301", 1)
    assert e.label == "f32[B, 64] + f32[32]: 64 != 32"
    e = error("maximum", [ttype(DType.F32, B), ttype(DType.F32, T)])
    assert e.code == "E0301" and e.label == "maximum(f32[B], f32[T]): B != T"


def test_binary_dtype_errors():
    e = error("add", [ttype(DType.I64, B), ttype(DType.F32, B)])
    assert (e.code, e.arg) == ("E0201", 0)  # convert the int side
    assert e.help == "convert with `cast(x, f32)`"
    assert e.message == "mismatched dtypes for `+`: `i64` and `f32`"
    e = error("div", [ttype(DType.I64, B), ttype(DType.I64, B)])
    assert e.code == "E0202" and "cast(x, f32)" in e.help
    e = error("add", [ttype(DType.BOOL, B), ttype(DType.BOOL, B)])
    assert e.code == "E0202"
    e = error("lt", [ttype(DType.BOOL, B), ttype(DType.BOOL, B)])
    assert e.code == "E0202"
    e = error("logical_and", [ttype(DType.F32, B), ttype(DType.F32, B)])
    assert e.code == "E0202" and "x != 0" in e.help
    assert REGISTRY["eq"].infer([ttype(DType.BOOL, B)] * 2, {})[0].dtype is DType.BOOL


SHAPES = st.lists(st.sampled_from([1, 2, 3]), min_size=0, max_size=4)


@given(SHAPES, SHAPES)
def test_broadcast_agrees_with_numpy(left, right):
    try:
        expected = np.broadcast_shapes(tuple(left), tuple(right))
    except ValueError:
        expected = None
    operands = [ttype(DType.F32, *left), ttype(DType.F32, *right)]
    if expected is None:
        with pytest.raises(ShapeError):
            REGISTRY["sub"].infer(operands, {})
    else:
        assert REGISTRY["sub"].infer(operands, {})[0] == ttype(DType.F32, *expected)


# ---------------------------------------------------------------------------
# where


def test_where_selects_and_broadcasts():
    cond = np.array([[True], [False]])
    a = np.array([1.0, 2.0, 3.0], dtype=np.float32)
    b = np.float32(-1.0)
    np.testing.assert_array_equal(run("where", cond, a, np.asarray(b)), [[1, 2, 3], [-1, -1, -1]])
    out = REGISTRY["where"].infer(
        [ttype(DType.BOOL, T, T), ttype(DType.F32, B, 1, T, T), ttype(DType.F32)], {}
    )
    assert out == (ttype(DType.F32, B, 1, T, T),)


def test_where_errors():
    e = error("where", [ttype(DType.F32, B), ttype(DType.F32, B), ttype(DType.F32, B)])
    assert (e.code, e.arg) == ("E0202", 0)
    e = error("where", [ttype(DType.BOOL, B), ttype(DType.F32, B), ttype(DType.I32, B)])
    assert (e.code, e.arg) == ("E0201", 2)
    e = error("where", [ttype(DType.BOOL, 3), ttype(DType.F32, 4), ttype(DType.F32)])
    assert e.code == "E0301"


# ---------------------------------------------------------------------------
# cast


def test_float_to_int_truncates_saturates_and_maps_nan_to_zero():
    x = np.array([-1.7, 1.7, -0.5, math.nan, 1e10, -1e10, math.inf, 2.0**31], dtype=np.float64)
    i32 = np.iinfo(np.int32)
    expected = [-1, 1, 0, 0, i32.max, i32.min, i32.max, i32.max]
    np.testing.assert_array_equal(run("cast", x, dtype=DType.I32), expected)
    x64 = np.array([2.0**63, -(2.0**63), 2.0**62, -math.inf], dtype=np.float64)
    i64 = np.iinfo(np.int64)
    np.testing.assert_array_equal(
        run("cast", x64, dtype=DType.I64), [i64.max, i64.min, 2**62, i64.min]
    )
    half = np.array([-2.5, 65504.0], dtype=np.float16)
    np.testing.assert_array_equal(run("cast", half, dtype=DType.I64), [-2, 65504])


def test_other_casts():
    x = np.array([0.0, -0.0, 0.1, math.nan], dtype=np.float32)
    assert run("cast", x, dtype=DType.BOOL).tolist() == [False, False, True, True]
    assert run("cast", np.array([0, 3, -1]), dtype=DType.BOOL).tolist() == [False, True, True]
    assert run("cast", np.array([True, False]), dtype=DType.F32).tolist() == [1.0, 0.0]
    wrapped = run("cast", np.array([2**31 + 5, -1], dtype=np.int64), dtype=DType.I32)
    assert wrapped.tolist() == [-(2**31) + 5, -1]
    assert run("cast", np.array([1e6], dtype=np.float32), dtype=DType.F16)[0] == math.inf
    # bf16 keeps 8 significant bits, rounding to nearest even
    ints = np.array([257, 259, 1], dtype=np.int64)
    assert run("cast", ints, dtype=DType.BF16).astype(np.float64).tolist() == [256, 260, 1]
    out = run("cast", np.array([1 + 2**-8, 1 + 3 * 2**-8]), dtype=DType.BF16)
    assert out.astype(np.float64).tolist() == [1.0, 1 + 2**-6]


def test_cast_types():
    assert REGISTRY["cast"].infer([ttype(DType.F32, B, 3)], {"dtype": DType.I64}) == (
        ttype(DType.I64, B, 3),
    )
    e = error("cast", [ttype(DType.F32, B)], dtype="f32")
    assert (e.code, e.kwarg) == ("E0205", "dtype")


# ---------------------------------------------------------------------------
# arange and full


def arange(start, stop=None, step=1, dtype=DType.I64):
    return {"start": start, "stop": stop, "step": step, "dtype": dtype}


def test_arange_values():
    prim = REGISTRY["arange"]
    cases = [
        (arange(5), list(range(5))),
        (arange(2, 10, 3), list(range(2, 10, 3))),
        (arange(10, 1, -3), list(range(10, 1, -3))),
        (arange(-2, 2, 1, DType.F32), [-2.0, -1.0, 0.0, 1.0]),
    ]
    for attrs, expected in cases:
        (typ,) = prim.infer([], attrs)
        (out,) = prim.evaluate([], attrs)
        assert out.tolist() == expected
        assert type_of(out) == typ


def test_arange_symbolic_length():
    prim = REGISTRY["arange"]
    assert prim.infer([], arange(T)) == (ttype(DType.I64, T),)
    assert prim.infer([], arange(0, T, 2))[0].shape == ((T + 1).floordiv(2),)
    assert prim.infer([], arange(1, T + 1))[0].shape == (T,)


def test_arange_errors():
    prim = REGISTRY["arange"]
    for attrs, code, where in [
        (arange(5, 2), "E0313", None),
        (arange(0, 5, 0), "E0409", "step"),
        (arange(5, dtype=DType.BOOL), "E0202", "dtype"),
        (arange(0, 5, B), "E0205", "step"),
    ]:
        with pytest.raises(ShapeError) as info:
            prim.infer([], attrs)
        assert (info.value.code, info.value.kwarg) == (code, where)


def test_full():
    prim = REGISTRY["full"]
    for value, dtype, expected_dtype in [
        (1.5, None, np.float32),
        (3, None, np.int64),
        (True, None, np.bool_),
        (2, DType.F64, np.float64),
        (-math.inf, DType.BF16, BF16),
        (4.0, DType.I32, np.int32),
    ]:
        attrs = {"shape": (2, 3), "value": value, "dtype": dtype}
        (typ,) = prim.infer([], attrs)
        (out,) = prim.evaluate([], attrs)
        assert out.dtype == expected_dtype and out.shape == (2, 3)
        assert type_of(out) == typ
        assert (out.astype(np.float64) == float(value)).all()
    (typ,) = prim.infer([], {"shape": (B, T), "value": 0.0, "dtype": DType.F16})
    assert typ == ttype(DType.F16, B, T)


def test_full_errors():
    prim = REGISTRY["full"]
    for attrs, code, where in [
        ({"shape": (2,), "value": 0.5, "dtype": DType.I64}, "E0201", "value"),
        ({"shape": (2,), "value": 2**40, "dtype": DType.I32}, "E0409", "value"),
        ({"shape": (2, 0), "value": 1, "dtype": None}, "E0313", "shape"),
        ({"shape": (2,), "value": "x", "dtype": None}, "E0205", "value"),
    ]:
        with pytest.raises(ShapeError) as info:
            prim.infer([], attrs)
        assert (info.value.code, info.value.kwarg) == (code, where)
