"""Elaborator semantics: small mdl models run on the reference backend vs numpy.

Each test writes a model to tmp_path, loads it with `mdl.load(backend="ref")`
and compares the outputs with numpy code written independently of the
compiler. Data-movement results (indexing, reshape, gather, concat) must be
exact; arithmetic is compared with rtol = atol = 1e-5 (float32).
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pytest

import mdl
from mdl import driver
from mdl.api import init_weights

TOL = {"rtol": 1e-5, "atol": 1e-5}


def write(tmp_path: Path, src: str, name: str = "m.mdl") -> str:
    path = tmp_path / name
    path.write_text(textwrap.dedent(src).lstrip("\n"), encoding="utf-8")
    return str(path)


def load(tmp_path: Path, src: str, weights=None, defines=None) -> mdl.api.Model:
    return mdl.load(write(tmp_path, src), weights=weights, backend="ref", defines=defines)


def arange_f32(*shape: int) -> np.ndarray:
    return np.arange(int(np.prod(shape)), dtype=np.float32).reshape(shape)


# ---------------------------------------------------------------- indexing
def test_indexing_and_slicing(tmp_path):
    m = load(
        tmp_path,
        """
        model M(x: f32[B, 6, 4]) -> (
            last: f32[B, 4], stepped: f32[B, 3, 4], first_col: f32[B, 6], newaxis: f32[B, 1, 6, 4],
            mixed: f32[B, 2], neg_stop: f32[B, 5, 4], rev_start: f32[B, 2, 4], scalar: f32[B],
        ) {
            return x[:, -1], x[:, 1:6:2], x[..., 0], x[:, None], x[:, -2, ::3], x[:, :-1],
                x[:, -2:], x[:, 3, 2]
        }
        """,
    )
    x = arange_f32(2, 6, 4)
    outs = dict(zip(m.output_names, m(x), strict=True))
    assert m.output_names == [
        "last", "stepped", "first_col", "newaxis", "mixed", "neg_stop", "rev_start", "scalar",
    ]  # fmt: skip
    np.testing.assert_array_equal(outs["last"], x[:, -1])
    np.testing.assert_array_equal(outs["stepped"], x[:, 1:6:2])
    np.testing.assert_array_equal(outs["first_col"], x[..., 0])
    np.testing.assert_array_equal(outs["newaxis"], x[:, None])
    np.testing.assert_array_equal(outs["mixed"], x[:, -2, ::3])
    np.testing.assert_array_equal(outs["neg_stop"], x[:, :-1])
    np.testing.assert_array_equal(outs["rev_start"], x[:, -2:])
    np.testing.assert_array_equal(outs["scalar"], x[:, 3, 2])


def test_slice_stop_beyond_the_end_is_clamped(tmp_path):
    m = load(tmp_path, "model M(x: f32[B, 4]) -> f32[B, 4] { return x[:, 0:100] }\n")
    x = arange_f32(3, 4)
    np.testing.assert_array_equal(m(x), x[:, 0:100])


def test_tensor_index_is_gather(tmp_path):
    m = load(
        tmp_path,
        """
        model M(table: f32[V, D], ids: i64[B, T] in 0..V) -> (rows: f32[B, T, D], cols: f32[V, B, T]) {
            return table[ids], table[:, ids]
        }
        """,
    )
    table = arange_f32(5, 5)
    ids = np.array([[0, 4, 2], [1, 1, 3]], dtype=np.int64)
    rows, cols = m(table, ids)
    np.testing.assert_array_equal(rows, table[ids])
    np.testing.assert_array_equal(cols, np.take(table, ids, axis=1))
    gathered = load(
        tmp_path,
        "model G(x: f32[B, S, D], ids: i64[K]) -> f32[B, K, D] { return gather(x, ids, axis=1) }\n",
    )
    x = arange_f32(2, 6, 3)
    ids = np.array([5, -1, 0, 2], dtype=np.int64)
    np.testing.assert_array_equal(gathered(x, ids), np.take(x, ids, axis=1))


# ---------------------------------------------------------------- layout
def test_transpose_shape_and_reshape_with_input_dims(tmp_path):
    m = load(
        tmp_path,
        """
        model M(x: f32[B, 3, 4]) -> (t: f32[B, 4, 3], flat: f32[B, 12], back: f32[3, B, 4]) {
            let t = x.T
            let flat = x.reshape(x.shape[0], x.shape[1] * x.shape[2])
            let back = x.transpose(1, 0, 2)
            return t, flat, back
        }
        """,
    )
    x = arange_f32(2, 3, 4)
    t, flat, back = m(x)
    np.testing.assert_array_equal(t, np.swapaxes(x, -1, -2))
    np.testing.assert_array_equal(flat, x.reshape(2, 12))
    np.testing.assert_array_equal(back, x.transpose(1, 0, 2))
    # The batch dim stays symbolic: another batch size works with the same model.
    assert m(arange_f32(5, 3, 4))[1].shape == (5, 12)


def test_reshape_with_minus_one(tmp_path):
    m = load(tmp_path, "model M(x: f32[B, 2, 6]) -> f32[B, 3, 4] { return x.reshape(B, 3, -1) }\n")
    x = arange_f32(2, 2, 6)
    np.testing.assert_array_equal(m(x), x.reshape(2, 3, 4))


def test_split_with_unpacking_concat_and_stack(tmp_path):
    m = load(
        tmp_path,
        """
        model M(x: f32[B, 6]) -> (s: f32[3, B, 2], c: f32[B, 6], last: f32[B, 2]) {
            let a, b, c = split(x, 3, axis=1)
            return stack([a, b, c], axis=0), concat([c, a, b], axis=-1), c
        }
        """,
    )
    x = arange_f32(2, 6)
    a, b, c = np.split(x, 3, axis=1)
    s, cat, last = m(x)
    np.testing.assert_array_equal(s, np.stack([a, b, c], axis=0))
    np.testing.assert_array_equal(cat, np.concatenate([c, a, b], axis=-1))
    np.testing.assert_array_equal(last, c)


# ---------------------------------------------------------------- values and dtypes
def test_where_with_minus_inf_causal_mask(tmp_path):
    m = load(
        tmp_path,
        """
        model M(s: f32[T, T]) -> f32[T, T] {
            let i = arange(T)
            return where(i[:, None] >= i[None, :], s, -inf)
        }
        """,
    )
    s = np.random.default_rng(0).standard_normal((4, 4)).astype(np.float32)
    want = np.where(np.tril(np.ones((4, 4), bool)), s, -np.inf).astype(np.float32)
    got = m(s)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, want)


def test_scalars_adopt_the_tensor_dtype(tmp_path):
    m = load(
        tmp_path,
        """
        model M(x: f32[N], n: i64[N], h: f16[N]) -> (a: f32[N], b: i64[N], c: f16[N]) {
            return x * 2 + 1, n * 3 - 1, h * 0.5
        }
        """,
    )
    x = np.array([1.5, -2.0, 3.0], np.float32)
    n = np.array([1, 2, -3], np.int64)
    h = np.array([1.0, 2.0, 4.0], np.float16)
    a, b, c = m(x, n, h)
    assert (a.dtype, b.dtype, c.dtype) == (np.float32, np.int64, np.float16)
    np.testing.assert_allclose(a, x * 2 + 1, **TOL)
    np.testing.assert_array_equal(b, n * 3 - 1)
    np.testing.assert_array_equal(c, h * np.float16(0.5))


def test_integer_ops_like_numpy(tmp_path):
    m = load(
        tmp_path,
        """
        model M(a: i64[N], b: i64[N]) -> (r: i64[N], p: i64[N], s: i64[N], n: i64[N]) {
            return a % b, a * b, a - b, -a
        }
        """,
    )
    a = np.array([7, -7, 7, -7, 0], np.int64)
    b = np.array([2, 2, -2, -2, 3], np.int64)
    r, p, s, n = m(a, b)
    np.testing.assert_array_equal(r, np.mod(a, b))
    np.testing.assert_array_equal(p, a * b)
    np.testing.assert_array_equal(s, a - b)
    np.testing.assert_array_equal(n, -a)


def test_tensor_floor_division(tmp_path):
    m = load(tmp_path, "model M(a: i64[N], b: i64[N]) -> i64[N] { return a // b }\n")
    a = np.array([7, -7, 7, -7, 0], np.int64)
    b = np.array([2, 2, -2, -2, 3], np.int64)
    np.testing.assert_array_equal(m(a, b), a // b)


def test_cast(tmp_path):
    m = load(
        tmp_path,
        "model M(x: f32[N]) -> (i: i64[N], f: f32[N]) { return cast(x, i64), cast(cast(x, i64), f32) }\n",
    )
    x = np.array([1.7, -1.7, 0.2, 3.0], np.float32)
    i, f = m(x)
    assert i.dtype == np.int64
    np.testing.assert_array_equal(i, x.astype(np.int64))
    np.testing.assert_array_equal(f, x.astype(np.int64).astype(np.float32))


def test_compile_time_int_arithmetic_in_dims(tmp_path):
    m = load(
        tmp_path,
        """
        model M[K = 7](x: f32[B, K * 2]) -> f32[B, (K + 1) // 2 * 2] {
            return x[:, 0:K // 2 + K % 3 + 2 ** 2]
        }
        """,
    )
    x = arange_f32(2, 14)
    np.testing.assert_array_equal(m(x), x[:, : 7 // 2 + 7 % 3 + 4])


# ---------------------------------------------------------------- control flow
def test_if_else_if_on_compile_time_values(tmp_path):
    src = """
        fn pick[k](x: f32[N]) -> f32[N] {
            return if k == 0 { x }
            else if k == 1 { x * 2.0 }
            else { x * 3.0 }
        }
        model M[K = 0](x: f32[N]) -> f32[N] { return pick[K](x) + pick[2](x) }
        """
    x = np.array([1.0, -2.0], np.float32)
    for k, factor in [(0, 1.0), (1, 2.0), (5, 3.0)]:
        m = load(tmp_path, src, defines={"K": k})
        np.testing.assert_allclose(m(x), x * factor + x * 3.0, **TOL)


def test_for_over_range_reassigns(tmp_path):
    m = load(
        tmp_path,
        """
        model M[L = 4](x: f32[N]) -> f32[N] {
            let y = x
            for i in 0..L { y = y * 2.0 + i }
            return y
        }
        """,
    )
    x = np.array([1.0, 0.5], np.float32)
    want = x.copy()
    for i in range(4):
        want = want * 2.0 + i
    np.testing.assert_allclose(m(x), want, **TOL)


DENSE_STACK = """
    layer Lin[D](x: f32[B, D]) -> f32[B, D] {
        param w: f32[D, D] = zeros
        param b: f32[D] = zeros
        return x @ w.T + b
    }
    model M[L = 2, D = 3](x: f32[B, D]) -> f32[B, D] {
        let blocks = [Lin[D] for i in 0..L]
        let h = x
        for blk in blocks { h = blk(h) }
        return h
    }
    """


def test_for_over_layer_list_with_comprehension_paths(tmp_path):
    path = write(tmp_path, DENSE_STACK)
    graph = driver.check_file(path).graph
    assert [p.path for p in graph.params] == [
        "blocks.0.w",
        "blocks.0.b",
        "blocks.1.w",
        "blocks.1.b",
    ]
    rng = np.random.default_rng(1)
    weights = {
        p.path: rng.standard_normal(p.value.type.shape).astype(np.float32) for p in graph.params
    }
    m = mdl.load(path, weights=weights, backend="ref")
    x = rng.standard_normal((4, 3)).astype(np.float32)
    want = x
    for i in range(2):
        want = want @ weights[f"blocks.{i}.w"].T + weights[f"blocks.{i}.b"]
    np.testing.assert_allclose(m(x), want, **TOL)


def test_defines_change_the_number_of_params(tmp_path):
    path = write(tmp_path, DENSE_STACK)
    two = init_weights(path)
    three = mdl.api.init_weights(path, defines={"L": 3})
    assert len(two) == 4 and len(three) == 6
    assert "blocks.2.w" in three and "blocks.2.w" not in two
    m = mdl.load(path, weights=three, defines={"L": 3}, backend="ref")
    assert m(np.ones((1, 3), np.float32)).shape == (1, 3)


def test_sequential_paths_and_shared_instance(tmp_path):
    path = write(
        tmp_path,
        """
        layer Scale[D](x: f32[B, D]) -> f32[B, D] {
            param weight: f32[D] = ones
            return x * weight
        }
        model M(x: f32[B, 3]) -> f32[B, 3] {
            let s = Sequential[Scale[3], Scale[3]]
            let shared = Scale[3]
            return shared(shared(s(x)))
        }
        """,
    )
    graph = driver.check_file(path).graph
    assert sorted(p.path for p in graph.params) == ["s.0.weight", "s.1.weight", "shared.weight"]
    w = {
        "s.0.weight": np.array([1.0, 2.0, 3.0], np.float32),
        "s.1.weight": np.array([0.5, 0.5, 2.0], np.float32),
        "shared.weight": np.array([3.0, -1.0, 0.25], np.float32),
    }
    x = np.array([[1.0, 1.0, 1.0], [2.0, -1.0, 4.0]], np.float32)
    want = x * w["s.0.weight"] * w["s.1.weight"] * w["shared.weight"] * w["shared.weight"]
    np.testing.assert_allclose(mdl.load(path, weights=w, backend="ref")(x), want, **TOL)


def test_stdlib_param_names_are_pytorch_style(tmp_path):
    path = write(
        tmp_path,
        """
        import nn
        layer Block[D](x: f32[B, D]) -> f32[B, D] {
            let fc = nn.Dense[D, D]
            let norm = nn.LayerNorm[D]
            return norm(fc(x))
        }
        model M(x: f32[B, 4]) -> f32[B, 2] {
            let layers = [Block[4] for i in 0..2]
            let head = nn.Dense[4, 2, bias=false]
            let h = x
            for l in layers { h = l(h) }
            return head(h)
        }
        """,
    )
    w = init_weights(path, seed=3, random=True)
    assert sorted(w) == sorted(
        [
            f"layers.{i}.{p}"
            for i in range(2)
            for p in ("fc.weight", "fc.bias", "norm.weight", "norm.bias")
        ]
        + ["head.weight"]
    )
    assert w["layers.0.fc.weight"].shape == (4, 4) and w["head.weight"].shape == (2, 4)
    x = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    h = x
    for i in range(2):
        h = h @ w[f"layers.{i}.fc.weight"].T + w[f"layers.{i}.fc.bias"]
        mu = h.mean(-1, keepdims=True)
        var = ((h - mu) ** 2).mean(-1, keepdims=True)
        h = (h - mu) / np.sqrt(var + 1e-5) * w[f"layers.{i}.norm.weight"] + w[
            f"layers.{i}.norm.bias"
        ]
    np.testing.assert_allclose(
        mdl.load(path, weights=w, backend="ref")(x), h @ w["head.weight"].T, rtol=1e-4, atol=1e-5
    )


# ---------------------------------------------------------------- model boundary
def test_named_outputs_in_declared_order_and_inputs_by_name(tmp_path):
    m = load(
        tmp_path,
        """
        model M(a: f32[N], b: f32[N]) -> (diff: f32[N], total: f32[N], first: f32[N]) {
            return a - b, a + b, a
        }
        """,
    )
    assert m.output_names == ["diff", "total", "first"]
    assert m.input_names == ["a", "b"]
    a = np.array([1.0, 2.0], np.float32)
    b = np.array([10.0, 20.0], np.float32)
    by_pos = m(a, b)
    by_name = m(b=b, a=a)
    mixed = m(a, b=b)
    assert isinstance(by_pos, tuple) and len(by_pos) == 3
    for outs in (by_pos, by_name, mixed):
        np.testing.assert_array_equal(outs[0], a - b)
        np.testing.assert_array_equal(outs[1], a + b)
        np.testing.assert_array_equal(outs[2], a)


def test_single_output_is_not_a_tuple(tmp_path):
    m = load(tmp_path, "model M(x: f32[N]) -> f32[N] { return x + x }\n")
    out = m(np.ones(3, np.float32))
    assert isinstance(out, np.ndarray) and out.shape == (3,)


@pytest.mark.parametrize("batch", [1, 7])
def test_embedding_lookup_matches_take(tmp_path, batch):
    path = write(
        tmp_path,
        """
        import nn
        model M(ids: i64[B, T] in 0..10) -> f32[B, T, 4] {
            let emb = nn.Embedding[10, 4]
            return emb(ids)
        }
        """,
    )
    w = init_weights(path, seed=1, random=True)
    ids = np.random.default_rng(batch).integers(0, 10, (batch, 5))
    np.testing.assert_array_equal(
        mdl.load(path, weights=w, backend="ref")(ids), w["emb.weight"][ids]
    )


def test_float_floor_division(tmp_path):
    m = load(tmp_path, "model M(a: f32[N]) -> f32[N] { return a // 2.0 }\n")
    a = np.array([7.5, -7.5, 0.0, 3.0], np.float32)
    np.testing.assert_array_equal(m(a), np.floor(a / 2.0))
