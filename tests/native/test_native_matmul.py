"""Native matmul (numpy `@`: 1-D operands, broadcast batch axes) against the reference interpreter."""

from __future__ import annotations

import numpy as np
import pytest
from native_harness import assert_close, assert_native_matches, models

NUMPY = {"f32": np.float32, "f64": np.float64, "i32": np.int32, "i64": np.int64}

# (left shape, right shape, result shape): vectors, odd sizes, broadcast batches
SHAPES = [
    ((1, 1), (1, 1), (1, 1)),
    ((3, 7), (7, 13), (3, 13)),
    ((13, 65), (65, 3), (13, 3)),
    ((7,), (7, 13), (13,)),
    ((3, 7), (7,), (3,)),
    ((13,), (13,), ()),
    ((2, 3, 7), (7, 5), (2, 3, 5)),
    ((7,), (2, 7, 3), (2, 3)),
    ((2, 3, 7), (7,), (2, 3)),
    ((3, 1, 4, 5), (1, 2, 5, 6), (3, 2, 4, 6)),
    ((4, 5), (3, 5, 1), (3, 4, 1)),
]


def data(shape: tuple[int, ...], dtype: str, rng: np.random.Generator) -> np.ndarray:
    if dtype.startswith("i"):
        return rng.integers(-9, 10, size=shape).astype(NUMPY[dtype])
    return rng.standard_normal(shape).astype(NUMPY[dtype])


def type_of(dtype: str, shape: tuple[int, ...]) -> str:
    return f"{dtype}[{', '.join(map(str, shape))}]"


@pytest.mark.parametrize("dtype", list(NUMPY))
def test_shapes_and_dtypes(tmp_path, dtype):
    # one model with every case keeps JIT time down
    inputs = ", ".join(
        f"a{k}: {type_of(dtype, a)}, b{k}: {type_of(dtype, b)}"
        for k, (a, b, _) in enumerate(SHAPES)
    )
    outs = ", ".join(f"y{k}: {type_of(dtype, y)}" for k, (_, _, y) in enumerate(SHAPES))
    values = ", ".join(f"a{k} @ b{k}" for k in range(len(SHAPES)))
    source = f"model M({inputs}) -> ({outs}) {{\n    return ({values})\n}}\n"
    rng = np.random.default_rng(3)
    arrays = [data(shape, dtype, rng) for a, b, _ in SHAPES for shape in (a, b)]
    assert_native_matches(tmp_path, source, *arrays)


def test_dense_layer_weights_and_transpose(tmp_path):
    source = (
        "model M(x: f32[B, 13]) -> (y: f32[B, 7], z: f32[B, 65], g: f32[13, 13]) {\n"
        "    param w: f32[13, 7] = normal(1.0)\n"
        "    param v: f32[65, 13] = normal(1.0)\n"
        "    return (x @ w, x @ v.T, x.T @ x)\n"
        "}\n"
    )
    ref, nat = models(tmp_path, source)
    rng = np.random.default_rng(1)
    for batch in (1, 3, 65):
        x = data((batch, 13), "f32", rng)
        for got, want in zip(nat(x), ref(x), strict=True):
            assert_close(got, want)


def test_attention_shaped_batches_with_symbolic_dims(tmp_path):
    source = (
        "model M(q: f32[B, 2, T, 5], k: f32[B, 2, T, 5], v: f32[B, 2, T, 5])"
        " -> (s: f32[B, 2, T, T], o: f32[B, 2, T, 5]) {\n"
        "    let s = q @ k.T\n"
        "    return (s, s @ v)\n"
        "}\n"
    )
    ref, nat = models(tmp_path, source)
    rng = np.random.default_rng(2)
    for batch, length in [(1, 1), (3, 7), (2, 13)]:
        q, k, v = (data((batch, 2, length, 5), "f32", rng) for _ in range(3))
        for got, want in zip(nat(q, k, v), ref(q, k, v), strict=True):
            assert_close(got, want)


def test_symbolic_inner_and_outer_dims(tmp_path):
    source = (
        "model M(a: f32[N, K], b: f32[K, M], u: f32[K]) -> (y: f32[N, M], w: f32[M],"
        " e: f32[N, M], d: f32[]) {\n"
        "    return (a @ b, u @ b, a[:, 1:] @ b[1:, :], u[1:] @ u[1:])\n"
        "}\n"
    )
    ref, nat = models(tmp_path, source)
    rng = np.random.default_rng(4)
    # k = 1 leaves the sliced products an empty inner axis: zeros, as numpy
    for n, k, m in [(1, 1, 1), (3, 65, 7), (13, 1, 3), (7, 13, 65)]:
        args = (data((n, k), "f32", rng), data((k, m), "f32", rng), data((k,), "f32", rng))
        for got, want in zip(nat(*args), ref(*args), strict=True):
            assert_close(got, want)


@pytest.mark.parametrize("dtype", ["i32", "i64"])
def test_integer_products_wrap_exactly(tmp_path, dtype):
    info = np.iinfo(NUMPY[dtype])
    rng = np.random.default_rng(5)
    a = rng.integers(info.max // 4, info.max, size=(3, 7), dtype=NUMPY[dtype])
    b = rng.integers(info.min, info.max, size=(7, 5), dtype=NUMPY[dtype])
    source = (
        f"model M(a: {dtype}[3, 7], b: {dtype}[7, 5]) -> {dtype}[3, 5] {{\n    return a @ b\n}}\n"
    )
    assert_native_matches(tmp_path, source, a, b)


@pytest.mark.parametrize("dtype", ["f32", "f64"])
def test_nan_and_infinity_propagate(tmp_path, dtype):
    rng = np.random.default_rng(6)
    a = data((5, 7), dtype, rng)
    b = data((7, 3), dtype, rng)
    a[0, 2] = np.nan  # a nan row
    a[1, 4] = np.inf  # inf times a mix of signs: +-inf, or nan with inf - inf
    b[4, 0] = 0.0  # inf * 0 is nan
    a[2, :] = np.inf  # rows of inf meet columns of both signs
    b[:, 2] = np.abs(b[:, 2])  # a column where inf stays inf
    source = (
        f"model M(a: {dtype}[5, 7], b: {dtype}[7, 3]) -> {dtype}[5, 3] {{\n    return a @ b\n}}\n"
    )
    ref, nat = models(tmp_path, source)
    got, want = nat(a, b), ref(a, b)
    assert np.isnan(want).any() and np.isinf(want).any()  # the case tests what it says
    assert_close(got, want)


def test_rows_times_one_matrix_is_one_product(tmp_path):
    # [B, T, D] @ [D, N]: one GEMM of B*T rows, not one per batch entry; same bits as the
    # per-entry products (each element the same k-ordered chain) and the reference's values
    import mdl as _mdl
    from mdl import driver as _driver
    from mdl.backend import loopir
    from mdl.backend.lower import lower as _lower

    (tmp_path / "m.mdl").write_text(
        "model M(x: f32[B, 5, 7], w: f32[7, 33]) -> f32[B, 5, 33] {\n    return x @ w\n}\n"
    )
    program = _lower(_driver.compile_model(str(tmp_path / "m.mdl")).graph)
    (kernel,) = program.kernels
    assert [type(s) for s in kernel.body] == [loopir.Gemm]
    rng = np.random.default_rng(4)
    x = rng.standard_normal((3, 5, 7)).astype(np.float32)
    w = rng.standard_normal((7, 33)).astype(np.float32)
    got = _mdl.load(str(tmp_path / "m.mdl"), backend="native")(x, w)
    per_entry = np.stack(
        [_mdl.load(str(tmp_path / "m.mdl"), backend="native")(x[i : i + 1], w)[0] for i in range(3)]
    )
    assert got.tobytes() == per_entry.tobytes()
    np.testing.assert_allclose(got, x @ w, rtol=1e-5, atol=1e-5)
