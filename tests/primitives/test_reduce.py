"""Reductions and argmax/argmin: shape and dtype rules, reference values.

Expectations come from explicit Python loops over the elements (math.fsum for
exact float sums), never from the numpy call the primitive makes. Tolerances:
float sums and means accumulate in f64 and round once, so f64 results are within
1e-15 relative of math.fsum and f32 results equal fsum rounded to f32; max, min,
argmax, argmin and integer results are exact.
"""

from __future__ import annotations

import itertools
import math
import warnings

import numpy as np
import pytest

from mdl.dims import Dim
from mdl.primitives import REGISTRY, EvalError, ShapeError, bind
from mdl.types import DType, TensorType

B, T = Dim.of("B"), Dim.of("T")


def ttype(dtype: DType, *dims) -> TensorType:
    return TensorType(dtype, tuple(Dim.of(d) for d in dims))


def type_of(a: np.ndarray) -> TensorType:
    return TensorType(DType.from_numpy(a.dtype), tuple(Dim.of(n) for n in a.shape))


def run(name: str, x: np.ndarray, **attrs) -> np.ndarray:
    prim = REGISTRY[name]
    (typ,) = prim.infer([type_of(x)], attrs)
    before = x.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        (out,) = prim.evaluate([x], attrs)
    np.testing.assert_array_equal(x, before)
    assert isinstance(out, np.ndarray) and type_of(out) == typ
    return out


def loop_reduce(x: np.ndarray, axes: tuple[int, ...], combine, keep: bool) -> np.ndarray:
    """Reduce with explicit loops: group elements by their kept indices."""
    groups: dict[tuple, list] = {}
    for index in itertools.product(*(range(n) for n in x.shape)):
        key = tuple(i for a, i in enumerate(index) if a not in axes)
        groups.setdefault(key, []).append(x[index].item())
    kept = [n for a, n in enumerate(x.shape) if a not in axes]
    out = np.empty(kept, dtype=object)
    for key, items in groups.items():
        out[key] = combine(items)
    if keep:
        out = out.reshape([1 if a in axes else n for a, n in enumerate(x.shape)])
    return out


X = np.arange(24, dtype=np.float64).reshape(2, 3, 4) * 0.37 - 3.1


@pytest.mark.parametrize("axes", [(0,), (1,), (2,), (0, 2), (0, 1, 2)])
@pytest.mark.parametrize("keep", [False, True])
def test_float_reductions_match_loops(axes, keep):
    cases = {
        "reduce_sum": math.fsum,
        "reduce_mean": lambda v: math.fsum(v) / len(v),
        "reduce_max": max,
        "reduce_min": min,
        "reduce_prod": math.prod,
    }
    for name, combine in cases.items():
        expected = loop_reduce(X, axes, combine, keep).astype(np.float64)
        out = run(name, X, axes=axes, keep=keep)
        np.testing.assert_allclose(out, expected, rtol=1e-15, atol=1e-15)
        f32 = run(name, X.astype(np.float32), axes=axes, keep=keep)
        assert f32.dtype == np.float32
        exact = loop_reduce(X.astype(np.float32).astype(np.float64), axes, combine, keep)
        np.testing.assert_array_equal(f32, exact.astype(np.float64).astype(np.float32))


def test_axes_none_reduces_everything_to_a_scalar():
    out = run("reduce_sum", X, axes=None, keep=False)
    assert out.shape == () and out == pytest.approx(math.fsum(X.ravel()), rel=1e-15)
    assert run("reduce_max", X, axes=None, keep=True).shape == (1, 1, 1)
    assert run("reduce_sum", X, axes=(), keep=False).tolist() == X.tolist()


def test_f32_sum_accumulates_in_f64():
    x = np.array([1e8, 1.0, -1e8], dtype=np.float32)
    assert run("reduce_sum", x, axes=None, keep=False) == 1.0
    assert run("reduce_mean", x, axes=None, keep=False) == np.float32(1 / 3)


def test_integer_reductions_wrap_in_their_dtype():
    x = np.array([2**31 - 1, 1, 5], dtype=np.int32)
    assert run("reduce_sum", x, axes=None, keep=False) == -(2**31) + 5
    assert run("reduce_sum", x, axes=None, keep=False).dtype == np.int32
    y = np.array([[3, -4], [5, 6]], dtype=np.int64)
    assert run("reduce_prod", y, axes=(1,), keep=False).tolist() == [-12, 30]
    assert run("reduce_max", y, axes=(0,), keep=True).tolist() == [[5, 6]]


def test_empty_axes_give_identities():
    empty = np.zeros((2, 0), dtype=np.float32)
    attrs = {"axes": (1,), "keep": False}
    assert REGISTRY["reduce_max"].evaluate([empty], attrs)[0].tolist() == [-math.inf] * 2
    assert REGISTRY["reduce_min"].evaluate([empty], attrs)[0].tolist() == [math.inf] * 2
    assert REGISTRY["reduce_sum"].evaluate([empty], attrs)[0].tolist() == [0.0, 0.0]
    assert REGISTRY["reduce_prod"].evaluate([empty], attrs)[0].tolist() == [1.0, 1.0]
    assert np.isnan(REGISTRY["reduce_mean"].evaluate([empty], attrs)[0]).all()
    ints = np.zeros((0,), dtype=np.int32)
    (out,) = REGISTRY["reduce_max"].evaluate([ints], {"axes": None, "keep": False})
    assert out == np.iinfo(np.int32).min and out.dtype == np.int32


def test_nan_propagates_through_max_and_min():
    x = np.array([1.0, math.nan, 3.0])
    assert math.isnan(run("reduce_max", x, axes=None, keep=False))
    assert math.isnan(run("reduce_min", x, axes=(0,), keep=False))


def test_symbolic_shapes():
    prim = REGISTRY["reduce_mean"]
    x = ttype(DType.F32, B, T, 64)
    assert prim.infer([x], {"axes": (0,), "keep": False}) == (ttype(DType.F32, T, 64),)
    assert prim.infer([x], {"axes": (-1,), "keep": True}) == (ttype(DType.F32, B, T, 1),)
    assert prim.infer([x], {"axes": None, "keep": False}) == (ttype(DType.F32),)
    (out,) = prim.infer([x], {"axes": (2,), "keep": False})
    assert prim.flops([x], (out,), {}) == 64 * B * T


def test_reduction_errors():
    x = ttype(DType.F32, B, T)
    for name, operand, attrs, code, where in [
        ("reduce_sum", x, {"axes": (2,), "keep": False}, "E0305", "axes"),
        ("reduce_sum", x, {"axes": (0, -2), "keep": False}, "E0305", "axes"),
        ("reduce_sum", ttype(DType.F32), {"axes": (0,), "keep": False}, "E0305", "axes"),
        ("reduce_mean", ttype(DType.I64, B), {"axes": None, "keep": False}, "E0202", None),
        ("reduce_sum", ttype(DType.BOOL, B), {"axes": None, "keep": False}, "E0202", None),
        ("reduce_max", x, {"axes": None, "keep": 1}, "E0205", "keep"),
    ]:
        with pytest.raises(ShapeError) as info:
            REGISTRY[name].infer([operand], attrs)
        assert (info.value.code, info.value.kwarg) == (code, where)
    with pytest.raises(ShapeError) as info:
        REGISTRY["reduce_sum"].infer([x], {"axes": (0, -2), "keep": False})
    assert "twice" in info.value.message


def test_surface_axis_keyword_normalizes():
    x = ttype(DType.F32, B, T, 4)
    operands, attrs = bind(REGISTRY["reduce_sum"], [x], {"axis": [-1, 0]}, name="sum")
    assert attrs == {"axes": (0, 2), "keep": False}
    assert REGISTRY["reduce_sum"].infer(operands, attrs) == (ttype(DType.F32, T),)


# ---------------------------------------------------------------------------
# argmax, argmin


def test_argmax_argmin_match_loops_and_pick_the_first_tie():
    x = np.array([[3.0, 7.0, 7.0, 1.0], [2.0, 2.0, -5.0, -5.0]], dtype=np.float32)

    def first_index(rows, pick):
        return [row.index(pick(row)) for row in rows]

    rows = x.tolist()
    cols = x.T.tolist()
    assert run("argmax", x, axis=1, keep=False).tolist() == first_index(rows, max)
    assert run("argmin", x, axis=1, keep=False).tolist() == first_index(rows, min)
    assert run("argmax", x, axis=0, keep=False).tolist() == first_index(cols, max)
    assert run("argmin", x, axis=-2, keep=True).tolist() == [first_index(cols, min)]
    assert run("argmax", x, axis=1, keep=False).dtype == np.int64


def test_argmax_with_nan_and_ints():
    x = np.array([1.0, math.nan, 5.0, math.nan])
    assert run("argmax", x, axis=0, keep=False) == 1
    assert run("argmin", x, axis=0, keep=False) == 1
    y = np.array([[4, 9, 9]], dtype=np.int32)
    assert run("argmax", y, axis=-1, keep=False).tolist() == [1]


def test_argmax_types_and_errors():
    prim = REGISTRY["argmax"]
    assert prim.infer([ttype(DType.F32, B, 10)], {"axis": -1, "keep": False}) == (
        ttype(DType.I64, B),
    )
    assert prim.infer([ttype(DType.F32, B, 10)], {"axis": 0, "keep": True}) == (
        ttype(DType.I64, 1, 10),
    )
    for operand, attrs, code in [
        (ttype(DType.F32, B), {"axis": 1, "keep": False}, "E0305"),
        (ttype(DType.F32), {"axis": 0, "keep": False}, "E0305"),
        (ttype(DType.BOOL, B), {"axis": 0, "keep": False}, "E0202"),
        (ttype(DType.F32, B), {"axis": None, "keep": False}, "E0205"),
    ]:
        with pytest.raises(ShapeError) as info:
            prim.infer([operand], attrs)
        assert info.value.code == code
    with pytest.raises(EvalError) as info:
        prim.evaluate([np.zeros((3, 0))], {"axis": 1, "keep": False})
    assert info.value.code == "E0313"
