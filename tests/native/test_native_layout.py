"""Native vs reference for the layout ops: slicing, transpose, reshape, expand, concat,
stack, split, pad and gather (with its run-time range check, E0607)."""

from __future__ import annotations

import numpy as np
import pytest
from native_harness import assert_close, assert_native_matches, models

import mdl
from mdl import driver
from mdl.backend import loopir
from mdl.backend.lower import lower

RNG = np.random.default_rng(7)
NUMPY = {"f32": np.float32, "f64": np.float64, "i32": np.int32, "i64": np.int64, "bool": np.bool_}


def f32(*shape: int) -> np.ndarray:
    return RNG.standard_normal(shape).astype(np.float32)


def ints(dtype, low: int, high: int, *shape: int) -> np.ndarray:
    return RNG.integers(low, high, shape).astype(dtype)


def compare_for_batches(tmp_path, source: str, make_inputs, batches=(1, 3, 7)) -> None:
    """One native and one reference model, called with several values of the symbolic dims."""
    ref, nat = models(tmp_path, source)
    for b in batches:
        inputs = make_inputs(b)
        want, got = ref(*inputs), nat(*inputs)
        if not isinstance(want, tuple):
            want, got = (want,), (got,)
        for g, w in zip(got, want, strict=True):
            assert_close(g, w)


SLICES = """
model M(x: f32[B, 7, 5]) -> (a: f32[B, 2, 5], b: f32[B, 7], c: f32[B, 3, 2], d: f32[1, 7, 3],
                             e: f32[B, 1, 7, 5]) {
    let a = x[:, 1:5:2]
    let b = x[..., -1]
    let c = x[:, ::3, 1:4:2]
    let d = x[-1:, :, 2:]
    let e = x[:, None]
    return a, b, c, d, e
}
"""


def test_indexing_and_slicing_with_a_symbolic_batch(tmp_path):
    compare_for_batches(tmp_path, SLICES, lambda b: (f32(b, 7, 5),))


def test_slices_whose_bounds_and_sizes_are_symbolic(tmp_path):
    source = """
model M(x: f32[B, T]) -> (a: f32[B, T - 1], b: f32[B, (T + 1) // 2], c: f32[B, 1]) {
    return x[:, 1:], x[:, ::2], x[:, -1:]
}
"""
    ref, nat = models(tmp_path, source)
    for b, t in [(1, 1 + 1), (2, 3), (3, 8), (5, 13)]:
        x = f32(b, t)
        for g, w in zip(nat(x), ref(x), strict=True):
            assert_close(g, w)


@pytest.mark.parametrize("dtype", ["i32", "i64", "bool", "f64", "f32"])
def test_none_index_on_every_dtype(tmp_path, dtype):
    source = f"""
model M(i: {dtype}[N]) -> (a: {dtype}[N, 1], b: {dtype}[1, N], c: {dtype}[N - 2]) {{
    return i[:, None], i[None, :], i[1:-1]
}}
"""
    x = RNG.integers(0, 2 if dtype == "bool" else 100, 13).astype(NUMPY[dtype])
    assert_native_matches(tmp_path, source, x)


def test_transposes(tmp_path):
    source = """
model M(x: f32[B, 3, 7, 5]) -> (t: f32[B, 3, 5, 7], p: f32[B, 7, 3, 5], r: f32[5, 7, 3, B]) {
    return x.T, transpose(x, 0, 2, 1, 3), transpose(x, 3, 2, 1, 0)
}
"""
    compare_for_batches(tmp_path, source, lambda b: (f32(b, 3, 7, 5),))


def test_attention_head_reshapes(tmp_path):
    source = """
model M[H = 3, D = 12](x: f32[B, T, D]) -> (q: f32[B, H, T, D / H], back: f32[B, T, D],
                                            flat: f32[B, T * D]) {
    let q = x.reshape(B, T, H, D / H).transpose(0, 2, 1, 3)
    let back = q.transpose(0, 2, 1, 3).reshape(B, T, D)
    return q, back, x.reshape(B, -1)
}
"""
    ref, nat = models(tmp_path, source)
    for b, t in [(1, 1), (2, 5), (3, 7)]:
        x = f32(b, t, 12)
        got, want = nat(x), ref(x)
        for g, w in zip(got, want, strict=True):
            assert_close(g, w)
        np.testing.assert_array_equal(got[1], x)


def test_expand(tmp_path):
    source = """
model M(x: f32[B, 1, 5], m: bool[3, 1]) -> (a: f32[B, 7, 5], b: f32[2, B, 4, 5], c: bool[2, 3, 13]) {
    return expand(x, [B, 7, 5]), expand(x, [2, -1, 4, -1]), expand(m, [2, 3, 13])
}
"""
    mask = np.array([[True], [False], [True]])
    compare_for_batches(tmp_path, source, lambda b: (f32(b, 1, 5), mask))


def test_concat_and_stack(tmp_path):
    source = """
model M(a: f32[B, 3, 5], b: f32[B, 7, 5], k: i32[B, 3, 5]) -> (
        c1: f32[B, 10, 5], c3: f32[B, 13, 5], c0: f32[2 * B, 3, 5], cl: i32[B, 3, 10],
        s0: f32[2, B, 3, 5], s1: i32[B, 3, 3, 5], sl: f32[B, 3, 5, 2]) {
    return concat(a, b, axis=1), concat(b, a, a, axis=1), concat(a, a), concat(k, k, axis=-1),
           stack(a, a), stack(k, k, k, axis=1), stack(a, a, axis=-1)
}
"""
    compare_for_batches(
        tmp_path, source, lambda n: (f32(n, 3, 5), f32(n, 7, 5), ints(np.int32, -50, 50, n, 3, 5))
    )


def test_split_with_unpacking(tmp_path):
    source = """
model M(x: f32[B, 7, 9]) -> (a: f32[B, 7, 3], b: f32[B, 7, 3], c: f32[B, 7, 3], d: f32[B, 2, 9],
                             e: f32[B, 5, 9]) {
    let a, b, c = split(x, 3, axis=-1)
    let d, e = split(x, [2, 5], axis=1)
    return a, b, c, d, e
}
"""
    compare_for_batches(tmp_path, source, lambda b: (f32(b, 7, 9),))


def test_split_along_a_symbolic_axis(tmp_path):
    source = """
model M(x: f32[B, 7]) -> (a: f32[B, 2], b: f32[B, 5], top: f32[1, 7], rest: f32[B - 1, 7]) {
    let a, b = split(x, [2, 5], axis=1)
    let top, rest = split(x, [1, B - 1])
    return a, b, top, rest
}
"""
    compare_for_batches(tmp_path, source, lambda b: (f32(b, 7),), batches=(2, 3, 8))


@pytest.mark.parametrize(
    ("dtype", "value"),
    [("f32", "1.5"), ("f64", "-inf"), ("i32", "-3"), ("bool", "1"), ("f32", "0.1")],
)
def test_pad(tmp_path, dtype, value):
    source = f"""
model M(x: {dtype}[B, 7, 5]) -> (p: {dtype}[B, 8, 8], q: {dtype}[B + 3, 7, 5]) {{
    return pad(x, [0, 1, 2, 0, 0, 1], value={value}), pad(x, [1, 0, 0, 2, 0, 0], value={value})
}}
"""

    def make(b):
        x = RNG.standard_normal((b, 7, 5)) * 10
        return (x > 0 if dtype == "bool" else x.astype(NUMPY[dtype]),)

    compare_for_batches(tmp_path, source, make, batches=(1, 4))


def test_pad_keeps_nan_and_inf(tmp_path):
    source = "model M(x: f32[3, 2]) -> f32[5, 3] { return pad(x, [1, 0, 1, 1], value=-2.0) }"
    x = np.array([[np.nan, np.inf], [-np.inf, 0.0], [-0.0, 1e-30]], dtype=np.float32)
    assert_native_matches(tmp_path, source, x)


EMBED = """
import nn
model M[V = 13, D = 5](ids: i64[B, T]) -> f32[B, T, D] {
    let tok = nn.Embedding[V, D]
    return tok(ids)
}
"""


def test_embedding_with_in_range_and_negative_ids(tmp_path):
    ref, nat = models(tmp_path, EMBED)
    for b, t in [(1, 1), (2, 7), (3, 3)]:
        ids = ints(np.int64, -13, 13, b, t)
        ids.flat[0] = -13  # the lowest valid index
        ids.flat[-1] = 12
        assert_close(nat(ids), ref(ids))


@pytest.mark.parametrize("idtype", ["i32", "i64"])
def test_gather_along_an_inner_axis(tmp_path, idtype):
    source = f"""
model M(x: f32[B, 7, 5], ids: {idtype}[3, 2], k: i64[B, 7]) -> (a: f32[B, 3, 2, 5], b: i64[B, 3, 2]) {{
    return gather(x, ids, axis=1), gather(k, ids, axis=-1)
}}
"""
    ids = np.array([[0, -1], [6, 3], [-7, 2]], dtype=np.int32 if idtype == "i32" else np.int64)
    compare_for_batches(
        tmp_path, source, lambda b: (f32(b, 7, 5), ids, ints(np.int64, -99, 99, b, 7))
    )


@pytest.mark.parametrize("bad", [13, -14, 2**40])
def test_gather_out_of_range_is_a_clean_e0607(tmp_path, bad):
    ref, nat = models(tmp_path, EMBED)
    ids = np.array([[1, 2, bad, 99], [0, 1, 2, 3]], dtype=np.int64)
    with pytest.raises(mdl.MdlError) as want:
        ref(ids)
    with pytest.raises(mdl.MdlError) as got:
        nat(ids)
    [diag] = got.value.diagnostics
    assert diag.code == "E0607"
    # the first bad index in row-major order, as the reference reports it
    assert diag.message == want.value.diagnostics[0].message
    assert f"index {bad} out of range for axis 0 of size 13" in diag.message
    # the model still runs afterwards
    ok = np.array([[1, -1]], dtype=np.int64)
    assert_close(nat(ok), ref(ok))


def test_gather_out_of_range_with_i32_ids_on_an_inner_axis(tmp_path):
    source = "model M(x: f32[2, 7], ids: i32[N]) -> f32[2, N] { return gather(x, ids, axis=1) }"
    ref, nat = models(tmp_path, source)
    x, ids = f32(2, 7), np.array([3, -8, 7], dtype=np.int32)
    with pytest.raises(mdl.MdlError) as got:
        nat(x, ids)
    assert got.value.diagnostics[0].code == "E0607"
    assert "index -8 out of range for axis 1 of size 7" in got.value.diagnostics[0].message


def test_lowered_layout_program_verifies(tmp_path):
    path = tmp_path / "m.mdl"
    path.write_text(SLICES)
    program = lower(driver.compile_model(str(path)).graph)
    loopir.verify(program)
    assert {k.name.rsplit("_", 1)[0] for k in program.kernels} == {"slice", "reshape"}
