"""Every primitive exported to ONNX and run in onnxruntime equals the reference interpreter.

Targeted cases for the semantics ONNX spells differently: NaN and infinities through
every unary and binary op (all pairs of special values), integer wrapping, x // 0,
`min // -1`, integer powers, saturating float -> int casts, NaN in max/min/argmax and
max_pool, -inf windows, f16 and bf16 (computed in f32), f64 conv and avg_pool (no
onnxruntime kernel: exported as im2col), and symbolic dims (batch and spatial) in every
shape attribute. Tolerances: onnx_harness.py.
"""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest
from onnx_harness import check_source

from mdl.onnx_export import LOWERINGS
from mdl.primitives import REGISTRY

FLOATS = ("f32", "f64")
INTS = ("i32", "i64")
NP = {"f32": np.float32, "f64": np.float64, "i32": np.int32, "i64": np.int64, "bool": np.bool_}
NP |= {"f16": np.float16, "bf16": ml_dtypes.bfloat16}
HALVES = ("f16", "bf16")
SPECIAL_FLOATS = [
    np.nan, np.inf, -np.inf, 0.0, -0.0, 1.0, -1.0, 0.5, -2.5, 3.0, 7.25, -13.0, 1e-30, 1e30, -88.5,
]  # fmt: skip


def specials(dtype: str) -> np.ndarray:
    if dtype == "bool":
        return np.array([False, True])
    if dtype in FLOATS or dtype in HALVES:
        with np.errstate(all="ignore"):
            return np.array(SPECIAL_FLOATS, dtype=NP[dtype])
    info = np.iinfo(NP[dtype])
    values = [0, 1, -1, 2, -2, 3, -3, 7, -13, 100, -64, info.min, info.max, info.min + 1, 63]
    return np.array(values, dtype=NP[dtype])


def sample(dtype: str, shape: tuple[int, ...], seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if dtype == "bool":
        return rng.random(shape) < 0.5
    if dtype in FLOATS:
        out = (rng.standard_normal(shape) * 4).astype(NP[dtype])
    else:
        out = rng.integers(-50, 50, shape).astype(NP[dtype])
    flat = out.reshape(-1)
    extra = specials(dtype)[: flat.size]
    flat[: extra.size] = extra
    return out


def test_every_primitive_has_a_lowering():
    assert set(REGISTRY) <= set(LOWERINGS), sorted(set(REGISTRY) - set(LOWERINGS))


UNARY = ("exp", "log", "sqrt", "rsqrt", "tanh", "erf", "sigmoid", "sin", "cos", "abs", "neg")
UNARY += ("floor", "ceil")


@pytest.mark.parametrize("dtype", FLOATS)
def test_unary_floats(tmp_path, dtype):
    outs = ", ".join(f"{op}_: {dtype}[B, 5]" for op in UNARY)
    source = (
        f"model M(x: {dtype}[B, 5]) -> ({outs}, nan: bool[B, 5]) "
        f"{{ return {', '.join(f'{op}(x)' for op in UNARY)}, isnan(x) }}"
    )
    wide = sample(dtype, (9, 5), 1) * NP[dtype](30)
    check_source(tmp_path, source, {"x": sample(dtype, (3, 5), 0)}, {"x": wide})


ARITH = {"add": "a + b", "sub": "a - b", "mul": "a * b", "floordiv": "a // b", "mod": "a % b"}
ARITH |= {"pow": "a ** b", "maximum": "max(a, b)", "minimum": "min(a, b)"}
COMPARE = ("a == b", "a != b", "a < b", "a <= b", "a > b", "a >= b")


def _pairs(dtype: str) -> dict[str, np.ndarray]:
    s = specials(dtype)
    return {"a": s, "b": s.reshape(-1, 1).copy()}


@pytest.mark.parametrize("dtype", [*FLOATS, *INTS])
def test_binary_ops_on_all_pairs_of_special_values(tmp_path, dtype):
    """Wrapping ints, x // 0 = x % 0 = 0, min // -1, negative int exponents; numpy's float
    floor division and modulo with signed zeros and infinities."""
    exprs = [*ARITH.values(), *(["a / b"] if dtype in FLOATS else [])]
    outs = [f"o{i}: {dtype}[M, N]" for i in range(len(exprs))]
    outs += [f"c{i}: bool[M, N]" for i in range(len(COMPARE))]
    source = (
        f"model M(a: {dtype}[N], b: {dtype}[M, 1]) -> ({', '.join(outs)}) "
        f"{{ return {', '.join([*exprs, *COMPARE])} }}"
    )
    check_source(tmp_path, source, _pairs(dtype))


def test_bools(tmp_path):
    source = (
        "model M(a: bool[N], b: bool[M, 1], c: bool[M, 1]) -> (e: bool[M, N], n: bool[M, N], "
        "x: bool[M, N], o: bool[M, N], t: bool[N], w: bool[M, N], i: i32[N], f: f32[N]) "
        "{ return a == b, a != b, logical_and(a, b), logical_or(a, b), logical_not(a), "
        "where(c, a, b), cast(a, i32), cast(a, f32) }"
    )
    a = np.array([False, True])
    b = np.array([[False], [True]])
    check_source(tmp_path, source, {"a": a, "b": b, "c": np.array([[True], [False]])})


@pytest.mark.parametrize("source", [*FLOATS, *HALVES, *INTS, "bool"])
def test_casts_saturate_truncate_and_wrap(tmp_path, source):
    targets = [*FLOATS, *HALVES, *INTS, "bool"]
    outs = ", ".join(f"{t}_: {t}[N]" for t in targets)
    model = (
        f"model M(x: {source}[N]) -> ({outs}) "
        f"{{ return {', '.join(f'cast(x, {t})' for t in targets)} }}"
    )
    x = specials(source)
    if source in FLOATS or source in HALVES:  # around the int ranges, where casts saturate
        edges = [2.0**31, -(2.0**31), 2.0**31 - 128, 2.0**63, -(2.0**63), 1e19, -2.7, 2.7]
        with np.errstate(all="ignore"):
            x = np.concatenate([x, np.array(edges, dtype=NP[source])])
    if source in INTS:  # integers that round when they become floats
        x = np.concatenate([x, np.array([2**24 + 1, 2049, -(2**31) + 3, 65519], dtype=NP[source])])
    check_source(tmp_path, model, {"x": x})


def test_where_broadcasts_every_dtype(tmp_path):
    outs = ", ".join(f"{t}_: {t}[M, N]" for t in [*FLOATS, *INTS])
    source = (
        f"model M(c: bool[M, 1], f: f32[N], d: f64[N], i: i32[N], l: i64[N]) -> ({outs}) "
        "{ return where(c, f, 0.5), where(c, d, -d), where(c, i, 7), where(c, 0, l) }"
    )
    inputs = {
        "c": np.array([[True], [False], [True]]),
        "f": specials("f32"),
        "d": specials("f64"),
        "i": specials("i32"),
        "l": specials("i64"),
    }
    check_source(tmp_path, source, inputs)


def test_half_precision_computes_in_f32(tmp_path):
    """f16 in and out; bf16 inside (onnxruntime's Python API has no bf16 arrays)."""
    source = """
model M(x: f16[B, 2, 6, 6], y: f32[B, 2, 6, 6], w: f16[3, 2, 3, 3]) -> (
    e: f16[B, 2, 6, 6], m: f16[B, 6, 6], c: f16[B, 3, 4, 4], p: f16[B, 2, 3, 3],
    a: f16[B, 2, 3, 3], i: i32[B, 2, 6, 6], k: i64[B, 2, 6], g: bool[B, 2, 6, 6],
    h: f32[B, 2, 6, 6], hs: f32[B, 2], hp: f32[B, 2, 8, 6], hx: f32[B, 2, 6, 6],
    hw: f32[B, 2, 6, 6], hc: f32[B, 3, 4, 4], hm: f32[B, 2, 3, 3], hk: i64[B, 2, 6],
) {
    let z = cast(y, bf16)
    let zw = cast(w, bf16)
    return exp(x) * x + x, max(x, axis=1), conv(x, w), max_pool(x, 2), avg_pool(x, 2),
        cast(x, i32), argmax(x, axis=3), x > 0.5,
        cast(z * z - z / 3.0, f32), cast(sum(z, axis=[2, 3]), f32), cast(pad(z, [0, 0, 1, 0, 0, 0, 1, 0]), f32),
        cast(expand(z[:, :, 0:1, :], [-1, 2, 6, 6]), f32), cast(where(z > 0.0, z, 0.0), f32),
        cast(conv(z, zw), f32), cast(max_pool(z, 2), f32), argmin(z, axis=2)
}
"""
    rng = np.random.default_rng(3)
    inputs = {
        "x": rng.standard_normal((2, 2, 6, 6)).astype(np.float16),
        "y": rng.standard_normal((2, 2, 6, 6)).astype(np.float32),
        "w": rng.standard_normal((3, 2, 3, 3)).astype(np.float16),
    }
    inputs["x"][0, 0, 0, :3] = [np.nan, np.inf, -np.inf]
    check_source(tmp_path, source, inputs)


def test_reductions_propagate_nan_and_wrap(tmp_path):
    source = """
model M(x: f32[B, 4, 5], i: i32[B, 4, 5], l: i64[B, 4]) -> (
    s: f32[B, 5], m: f32[B], mx: f32[B, 1, 5], mn: f32[4, 5], p: f64[B, 4],
    am: i64[B, 5], an: i64[B, 1, 5], is: i32[B, 5], ip: i32[B], lp: i64[], ls: i64[B],
    imx: i32[B, 4], all: f32[],
) {
    return sum(x, axis=1), mean(x, axis=[1, -1]), max(x, axis=1, keep=true), min(x, axis=0),
        prod(cast(x, f64), axis=2), argmax(x, axis=1), argmin(x, axis=1, keep=true),
        sum(i, axis=1), prod(i, axis=[1, 2]), prod(l), sum(l, axis=1), max(i, axis=2), sum(x)
}
"""
    rng = np.random.default_rng(5)
    for batch in (1, 3):
        x = rng.standard_normal((batch, 4, 5)).astype(np.float32)
        x[0, 1, 2] = np.nan
        x[0, :, 3] = -np.inf
        x[0, 2, 4] = 7.0
        x[0, 3, 4] = 7.0  # a tie: the first index wins
        big = np.iinfo(np.int32).max
        i = rng.integers(-9, 10, (batch, 4, 5)).astype(np.int32)
        i[0, :, 0] = big  # sums and products that wrap
        wide = np.full((batch, 4), 2**40, dtype=np.int64)
        wide[0, 0] = -3
        check_source(tmp_path, source, {"x": x, "i": i, "l": wide})


@pytest.mark.parametrize("dtype", FLOATS)
def test_conv_and_pools(tmp_path, dtype):
    """f32 through ONNX Conv and AveragePool, f64 through im2col and tap sums; max_pool's
    NaN and all -inf windows in both."""
    source = f"""
model M(x: {dtype}[B, 4, 7, 6], w: {dtype}[6, 2, 3, 2], v: {dtype}[B, 3, 9], k: {dtype}[3, 1, 3]) -> (
    c: {dtype}[B, 6, 4, 5], c1: {dtype}[B, 3, 5], m: {dtype}[B, 4, 4, 4], m1: {dtype}[B, 3, 5],
    a: {dtype}[B, 4, 4, 3], a2: {dtype}[B, 4, 4, 6], a1: {dtype}[B, 3, 5],
) {{
    return conv(x, w, stride=[2, 1], padding=[1, 0, 1, 1], dilation=[1, 2], groups=2),
        conv(v, k, stride=2, padding=1, groups=3),
        max_pool(x, [3, 2], stride=2, padding=1), max_pool(v, 3, stride=2, padding=1, dilation=1),
        avg_pool(x, 3, stride=2, padding=1, count_include_pad=false),
        avg_pool(x, [3, 2], stride=[2, 1], padding=[1, 0, 1, 1]),
        avg_pool(v, 3, stride=2, padding=1, count_include_pad=false)
}}
"""
    rng = np.random.default_rng(7)
    inputs = {
        "x": rng.standard_normal((2, 4, 7, 6)).astype(NP[dtype]),
        "w": rng.standard_normal((6, 2, 3, 2)).astype(NP[dtype]),
        "v": rng.standard_normal((2, 3, 9)).astype(NP[dtype]),
        "k": rng.standard_normal((3, 1, 3)).astype(NP[dtype]),
    }
    inputs["x"][0, 0, 0, 0] = np.nan
    inputs["x"][0, 1, :3, :] = -np.inf
    check_source(
        tmp_path, source, inputs, {k: a[:1] if k in "xv" else a for k, a in inputs.items()}
    )


def test_symbolic_dims_in_shape_attributes(tmp_path):
    """Sizes computed at run time from the inputs: B * T, H // 2, slices and pads."""
    source = """
model M(x: f32[B, T, 6], ids: i64[B, T] in 0..6, img: f32[B, 2, H, W]) -> (
    r: f32[B * T, 6], r2: f32[B, T, 2, 3], t: f32[6, T, B], e: f32[B, T, 6, 4],
    c: f32[B, 2 * T, 6], st: f32[B, 2, T, 6], s1: f32[B, T, 2], s2: f32[B, T, 4],
    sl: f32[B, T - 1, 3], pd: f32[B, T + 3, 6], ar: i64[T], ar2: f32[T + 2], fl: f32[B, T],
    g: f32[B, T, T], mp: f32[B, 2, H // 2, W // 2], cv: f32[B, 1, H - 2, W - 2],
    ap: f32[B, 2, (H - 1) // 2 + 1, (W - 1) // 2 + 1],
) {
    let a, b = split(x, sizes=[2, 4], axis=2)
    return reshape(x, [-1, 6]), reshape(x, [B, T, 2, 3]), transpose(x, [2, 1, 0]),
        expand(reshape(x, [B, T, 6, 1]), [B, T, 6, 4]), concat(x, x, axis=1), stack(x, x, axis=1),
        a, b, x[:, 1:T, 0:6:2], pad(x, [0, 1, 0, 0, 2, 0], value=-1.5), arange(T),
        arange(-2, T, dtype=f32), full([B, T], 0.25), gather(x, ids, axis=2)[:, :, 0, :],
        max_pool(img, 2), conv(img, full([1, 2, 3, 3], 0.5)), avg_pool(img, 3, stride=2, padding=1)
}
"""
    rng = np.random.default_rng(11)
    calls = []
    for batch, t, h, w in ((1, 3, 5, 6), (2, 4, 8, 7)):
        calls.append(
            {
                "x": rng.standard_normal((batch, t, 6)).astype(np.float32),
                "ids": rng.integers(0, 6, (batch, t)).astype(np.int64),
                "img": rng.standard_normal((batch, 2, h, w)).astype(np.float32),
            }
        )
    check_source(tmp_path, source, *calls)


def test_gather_negative_and_i32_indices(tmp_path):
    source = (
        "model M(t: f32[5, 3], i: i32[N], j: i64[2, N]) -> (a: f32[N, 3], b: f32[5, 2, N]) "
        "{ return gather(t, i), gather(t, j, axis=1) }"
    )
    t = np.arange(15, dtype=np.float32).reshape(5, 3)
    check_source(
        tmp_path,
        source,
        {"t": t, "i": np.array([0, -1, 4, -5], np.int32), "j": np.array([[0, -1, 2, -3]] * 2)},
    )


def test_split_into_sections_and_matmul_shapes(tmp_path):
    source = """
model M(x: f32[B, 6, 4], v: f32[4], m: i64[3, 4], n: i32[4, 2]) -> (
    p: f32[B, 2, 4], q: f32[B, 2, 4], r: f32[B, 2, 4], mv: f32[B, 6], vm: f32[B, 4],
    mm: i64[3, 4], ii: i32[B, 6, 2],
) {
    let p, q, r = split(x, 3, axis=1)
    return p, q, r, x @ v, v @ transpose(x[:, 0:4, :], [0, 2, 1]), m * 3, cast(x, i32) @ n
}
"""
    rng = np.random.default_rng(2)
    inputs = {
        "x": rng.standard_normal((2, 6, 4)).astype(np.float32),
        "v": rng.standard_normal(4).astype(np.float32),
        "m": np.array([[2**62, 3, -1, 5]] * 3, dtype=np.int64),
        "n": rng.integers(-5, 5, (4, 2)).astype(np.int32),
    }
    check_source(tmp_path, source, inputs)
