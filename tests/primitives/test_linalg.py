"""matmul: numpy `@` shape rules (1-D operands, broadcast batches), errors, reference values.

Expectations are explicit loops with math.fsum (exact), independent of np.matmul.
Tolerances: f64 within 1e-12 relative, f32 within 1e-5 relative (BLAS accumulates
in f32 in an unspecified order), f16 within 1e-3 relative; integers exact.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from mdl.dims import Dim
from mdl.primitives import REGISTRY, ShapeError
from mdl.types import DType, TensorType

B, T = Dim.of("B"), Dim.of("T")
MATMUL = REGISTRY["matmul"]


def ttype(dtype: DType, *dims) -> TensorType:
    return TensorType(dtype, tuple(Dim.of(d) for d in dims))


def type_of(a: np.ndarray) -> TensorType:
    return TensorType(DType.from_numpy(a.dtype), tuple(Dim.of(n) for n in a.shape))


def run(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    (typ,) = MATMUL.infer([type_of(a), type_of(b)], {})
    (out,) = MATMUL.evaluate([a, b], {})
    assert isinstance(out, np.ndarray) and type_of(out) == typ
    return out


def loop_matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """2-D product by explicit loops with exact sums."""
    rows, inner = a.shape
    cols = b.shape[1]
    out = np.empty((rows, cols))
    for i, j in itertools.product(range(rows), range(cols)):
        out[i, j] = math.fsum(float(a[i, k]) * float(b[k, j]) for k in range(inner))
    return out


RNG = np.random.default_rng(7)


@pytest.mark.parametrize(("dtype", "rtol"), [(np.float64, 1e-12), (np.float32, 1e-5)])
def test_two_dimensional(dtype, rtol):
    a = RNG.standard_normal((3, 5)).astype(dtype)
    b = RNG.standard_normal((5, 4)).astype(dtype)
    out = run(a, b)
    assert out.dtype == dtype
    np.testing.assert_allclose(out, loop_matmul(a, b), rtol=rtol, atol=rtol)


def test_vectors_drop_their_axis():
    a = RNG.standard_normal((3, 5))
    v = RNG.standard_normal(5)
    w = RNG.standard_normal(3)
    np.testing.assert_allclose(run(a, v), loop_matmul(a, v[:, None])[:, 0], rtol=1e-12)
    np.testing.assert_allclose(run(w, a), loop_matmul(w[None, :], a)[0], rtol=1e-12)
    dot = run(v, v)
    assert dot.shape == () and dot == pytest.approx(math.fsum(v * v), rel=1e-12)


def test_batches_broadcast():
    a = RNG.standard_normal((2, 1, 3, 4))
    b = RNG.standard_normal((5, 4, 2))
    out = run(a, b)
    assert out.shape == (2, 5, 3, 2)
    for i, j in itertools.product(range(2), range(5)):
        np.testing.assert_allclose(out[i, j], loop_matmul(a[i, 0], b[j]), rtol=1e-12)
    batched_vector = run(a, RNG.standard_normal(4))
    assert batched_vector.shape == (2, 1, 3)


def test_integer_and_storage_float_products():
    a = np.array([[2**30, 2**30]], dtype=np.int32)
    b = np.array([[2], [2]], dtype=np.int32)
    assert run(a, b).tolist() == [[0]]  # 2**32 wraps to 0 in i32
    h = RNG.standard_normal((4, 6)).astype(np.float16)
    k = RNG.standard_normal((6, 3)).astype(np.float16)
    out = run(h, k)
    assert out.dtype == np.float16
    np.testing.assert_allclose(out, loop_matmul(h, k), rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ((B, 64), (64, 10), (B, 10)),
        ((B, 4, T, 16), (B, 4, 16, T), (B, 4, T, T)),
        ((B, T, 64), (64,), (B, T)),
        ((64,), (3, 64, 8), (3, 8)),
        ((64,), (64,), ()),
        ((1, T, 8), (B, 8, 2), (B, T, 2)),
    ],
)
def test_symbolic_shapes(a, b, expected):
    out = MATMUL.infer([ttype(DType.F32, *a), ttype(DType.F32, *b)], {})
    assert out == (ttype(DType.F32, *expected),)


def test_flops():
    operands = [ttype(DType.F32, 3, B, 64), ttype(DType.F32, 64, 10)]
    outputs = MATMUL.infer(operands, {})
    assert MATMUL.flops(operands, outputs, {}) == 2 * 3 * 10 * 64 * B
    vectors = [ttype(DType.F32, 7), ttype(DType.F32, 7)]
    assert MATMUL.flops(vectors, MATMUL.infer(vectors, {}), {}) == 14


def error(a: TensorType, b: TensorType) -> ShapeError:
    with pytest.raises(ShapeError) as info:
        MATMUL.infer([a, b], {})
    return info.value


def test_inner_dimension_mismatch():
    e = error(ttype(DType.F32, B, 64), ttype(DType.F32, 32, 10))
    assert e.code == "E0302"
    assert e.message == "inner dimensions of a matrix product differ"
    assert e.label == "f32[B, 64] @ f32[32, 10]: 64 != 32"
    assert e.help is None
    e = error(ttype(DType.F32, B, 64), ttype(DType.F32, 10, 64))
    assert e.help == "transpose the right operand with `.T`"
    e = error(ttype(DType.F32, 64, 3), ttype(DType.F32, 64, 10))
    assert e.help == "transpose the left operand with `.T`"
    e = error(ttype(DType.F32, 5), ttype(DType.F32, 4))
    assert e.code == "E0302" and e.label == "f32[5] @ f32[4]: 5 != 4"
    assert error(ttype(DType.F32, B, T), ttype(DType.F32, B, 3)).code == "E0302"


def test_other_errors():
    e = error(ttype(DType.F32, 2, 3, 4), ttype(DType.F32, 5, 4, 2))
    assert e.code == "E0301" and "2 != 5" in e.label
    e = error(ttype(DType.F32), ttype(DType.F32, 3))
    assert (e.code, e.arg) == ("E0304", 0)
    assert e.help == "use `*` to multiply by a scalar"
    e = error(ttype(DType.F32, 2, 3), ttype(DType.F64, 3))
    assert (e.code, e.arg) == ("E0201", 1)
    e = error(ttype(DType.BOOL, 2, 3), ttype(DType.BOOL, 3))
    assert e.code == "E0202"
