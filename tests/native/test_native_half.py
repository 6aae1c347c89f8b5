"""f16 and bf16 in the native backend vs the reference: models -> both backends -> same arrays.

Tolerances, in units of the dtype's spacing (ulp) at the reference's value:
- element-wise arithmetic (+ - * / // % max min sqrt abs neg floor ceil), comparisons,
  `where`, casts in every direction, copies and gathers: bit-identical (NaN matches NaN;
  a copy keeps even a NaN's payload);
- exp log tanh erf sigmoid sin cos rsqrt pow: within 1 ulp (the f32 functions are
  libm's natively and numpy's own in the reference; they may differ in the last f32
  bit, which survives rounding to f16/bf16 only next to a rounding midpoint);
- reductions (sums and means in f64, rounded once): within 1 ulp;
- matmul and conv (f32 in another order than BLAS, rounded once): within 2 ulps plus
  2^-20 of the largest result (cancellation in the f32 sums);
- a whole network: rtol and atol (scaled by the largest value) of 4 ulps of 1.
1 and 2 threads: bit-identical.
"""

from __future__ import annotations

import ml_dtypes
import native_harness as harness
import numpy as np
import pytest

import mdl
from mdl.backend import loopir as ir
from mdl.backend.lower import lower
from mdl.driver import compile_model
from mdl.types import DType

BF16 = np.dtype(ml_dtypes.bfloat16)
NP = {"f16": np.dtype(np.float16), "bf16": BF16}
HALVES = ("f16", "bf16")
OTHERS = ("f32", "f64", "i32", "i64", "bool")

# 20 values: signed zeros, infinities, nan, subnormals, the largest finite f16, integral
# values and halves (for floor, // and %), values that overflow f16 but not bf16
SPECIALS = [
    np.nan, np.inf, -np.inf, 0.0, -0.0, 1.0, -1.0, 0.5, -2.5, 3.0, 7.25, -13.0,
    6e-8, -3e-5, 65504.0, -65504.0, 1e5, 1e-40, 3e38, 0.1,
]  # fmt: skip


def halves(dtype: str, values) -> np.ndarray:
    with np.errstate(over="ignore"):  # 1e5 and 3e38 are inf in f16
        return np.asarray(np.asarray(values, np.float64).astype(NP[dtype]))


def sample(dtype: str, shape: tuple[int, ...], seed: int, scale: float = 4.0) -> np.ndarray:
    """Random values of `dtype`, the special values over the first elements."""
    rng = np.random.default_rng(seed)
    out = (rng.standard_normal(shape) * scale).astype(NP[dtype])
    flat = out.reshape(-1)
    extra = halves(dtype, SPECIALS)[: flat.size]
    flat[: extra.size] = extra
    return out


def models(tmp_path, source: str, weights=None, name: str = "m.mdl"):
    return harness.models(tmp_path, source, weights if weights is not None else {}, name=name)


def ulp(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """The spacing of `dtype` at each |value| (its smallest subnormal near zero)."""
    info = ml_dtypes.finfo(dtype)
    wide = np.abs(np.asarray(values, np.float64))
    _, exponent = np.frexp(np.where(np.isfinite(wide), wide, 1.0))
    spacing = np.ldexp(1.0, exponent - 1 - int(info.nmant))
    return np.maximum(spacing, float(info.smallest_subnormal))


def assert_bits(got: np.ndarray, want: np.ndarray, what: str = "") -> None:
    """Bit-identical, except that any NaN matches any NaN."""
    assert got.dtype == want.dtype and got.shape == want.shape, (what, got.dtype, got.shape)
    if want.dtype.kind == "b" or want.dtype.kind in "iu":
        np.testing.assert_array_equal(got, want, err_msg=what)
        return
    with np.errstate(invalid="ignore"):  # signalling NaNs
        nan_w = np.isnan(want.astype(np.float32))
        nan_g = np.isnan(got.astype(np.float32))
    raw = {2: np.uint16, 4: np.uint32, 8: np.uint64}[want.dtype.itemsize]
    same = (got.view(raw) == want.view(raw)) | (nan_w & nan_g)
    if not same.all():
        bad = np.flatnonzero(~same)[:5]
        raise AssertionError(
            f"{what}: {(~same).sum()} of {same.size} differ, e.g. at {bad}: "
            f"native {got.reshape(-1)[bad]} vs reference {want.reshape(-1)[bad]}"
        )


def assert_ulps(got: np.ndarray, want: np.ndarray, ulps: float, floor: float = 0.0) -> None:
    """|got - want| <= ulps * ulp(want) + floor * max|want|, non-finite values equal."""
    assert got.dtype == want.dtype and got.shape == want.shape, (got.dtype, got.shape)
    g, w = got.astype(np.float64), want.astype(np.float64)
    finite = np.isfinite(w)
    np.testing.assert_array_equal(np.isnan(g), np.isnan(w))
    np.testing.assert_array_equal(g[~finite & ~np.isnan(w)], w[~finite & ~np.isnan(w)])
    scale = float(np.abs(w[finite]).max()) if finite.any() else 0.0
    allowed = ulps * ulp(w, want.dtype) + floor * scale
    with np.errstate(invalid="ignore"):
        diff = np.where(finite, np.abs(g - w), 0.0)
    worst = int(np.argmax(diff - allowed))
    assert (diff <= allowed).all(), (
        f"{(diff > allowed).sum()} elements off by more than {ulps} ulps, worst at "
        f"{worst}: native {g.reshape(-1)[worst]} vs reference {w.reshape(-1)[worst]}"
    )


def outputs(result) -> tuple[np.ndarray, ...]:
    return result if isinstance(result, tuple) else (result,)


# ---------------------------------------------------------------- element-wise
EXACT_BINARY = {
    "add": "a + b", "sub": "a - b", "mul": "a * b", "div": "a / b", "floordiv": "a // b",
    "mod": "a % b", "max": "max(a, b)", "min": "min(a, b)",
}  # fmt: skip
COMPARE = {
    "eq": "a == b", "ne": "a != b", "lt": "a < b", "le": "a <= b", "gt": "a > b", "ge": "a >= b",
}  # fmt: skip


@pytest.mark.parametrize("dtype", HALVES)
def test_binary_ops_on_every_pair_of_special_values(tmp_path, dtype):
    names = [*EXACT_BINARY, *COMPARE]
    exprs = [*EXACT_BINARY.values(), *COMPARE.values()]
    outs = ", ".join(f"{n}: {'bool' if n in COMPARE else dtype}[M, N]" for n in names)
    source = f"model M(a: {dtype}[N], b: {dtype}[M, 1]) -> ({outs}) {{ return {', '.join(exprs)} }}"
    ref, nat = models(tmp_path, source)
    s = halves(dtype, SPECIALS)
    rand = sample(dtype, (13,), 5)
    for a, b in ((s, s.reshape(-1, 1).copy()), (rand, sample(dtype, (3, 1), 6))):
        for name, g, w in zip(names, outputs(nat(a, b)), outputs(ref(a, b)), strict=True):
            assert_bits(g, w, name)


@pytest.mark.parametrize("dtype", HALVES)
def test_exact_unary_ops(tmp_path, dtype):
    ops = ("sqrt", "abs", "neg", "floor", "ceil")
    outs = ", ".join(f"{op}: {dtype}[B, 7]" for op in ops) + ", nan: bool[B, 7]"
    body = ", ".join(f"{op}(x)" for op in ops) + ", isnan(x)"
    ref, nat = models(tmp_path, f"model M(x: {dtype}[B, 7]) -> ({outs}) {{ return {body} }}")
    for x in (sample(dtype, (3, 7), 0), sample(dtype, (1, 7), 1, scale=300.0)):
        for name, g, w in zip([*ops, "isnan"], outputs(nat(x)), outputs(ref(x)), strict=True):
            assert_bits(g, w, name)


@pytest.mark.parametrize("dtype", HALVES)
def test_transcendental_functions_within_one_ulp(tmp_path, dtype):
    ops = ("exp", "log", "tanh", "erf", "sigmoid", "sin", "cos", "rsqrt")
    outs = ", ".join(f"{op}: {dtype}[N]" for op in ops) + f", pow: {dtype}[N]"
    body = ", ".join(f"{op}(x)" for op in ops) + ", x ** y"
    ref, nat = models(
        tmp_path, f"model M(x: {dtype}[N], y: {dtype}[N]) -> ({outs}) {{ return {body} }}"
    )
    x = np.concatenate([halves(dtype, SPECIALS), sample(dtype, (400,), 2, scale=3.0)])
    y = np.concatenate([halves(dtype, SPECIALS[::-1]), sample(dtype, (400,), 3, scale=2.0)])
    for g, w in zip(outputs(nat(x, y)), outputs(ref(x, y)), strict=True):
        assert_ulps(g, w, 1)


@pytest.mark.parametrize("dtype", HALVES)
def test_fused_chains_where_and_broadcast_scalars(tmp_path, dtype):
    # each step rounds to the dtype, fused or not: (x * y) is rounded before + x
    source = (
        f"model M(x: {dtype}[B, 5], y: {dtype}[5], c: bool[B, 1]) -> "
        f"(f: {dtype}[B, 5], w: {dtype}[B, 5], s: {dtype}[B, 5]) {{\n"
        "    let f = (x * y + x) / (y - 3.0) - sqrt(abs(x))\n"
        "    return f, where(c, f, y), x * 0.1 + 1e-3\n"
        "}"
    )
    ref, nat = models(tmp_path, source)
    for batch in (1, 3, 7):
        x, y = sample(dtype, (batch, 5), batch), sample(dtype, (5,), 10 + batch)
        c = np.arange(batch).reshape(batch, 1) % 2 == 0
        for g, w in zip(outputs(nat(x, y, c)), outputs(ref(x, y, c)), strict=True):
            assert_bits(g, w)


@pytest.mark.parametrize("dtype", HALVES)
def test_full_and_arange(tmp_path, dtype):
    source = (
        f"model M(x: {dtype}[B]) -> (a: {dtype}[B], b: {dtype}[B, 3], c: {dtype}[B]) {{\n"
        f"    return arange(B, dtype={dtype}) * 1000.0, full([B, 3], 0.1, dtype={dtype}) + x.reshape(B, 1), "
        f"x + full([B], 1e5, dtype={dtype})\n"
        "}"
    )
    ref, nat = models(tmp_path, source)
    for batch in (1, 5, 70):
        x = sample(dtype, (batch,), batch)
        for g, w in zip(outputs(nat(x)), outputs(ref(x)), strict=True):
            assert_bits(g, w)


# ---------------------------------------------------------------- casts


EDGE_INTS = [
    0, 1, -1, 2049, 65504, 65519, 65520, -65520, 2**24 + 1, 2**31 - 1, -(2**31),
    16777217 * 256 + 1, 2**53 + 1, 2**63 - 1, -(2**63),
]  # fmt: skip


def cast_sources() -> dict[str, np.ndarray]:
    """Per dtype, values whose conversions are easy to get wrong."""
    rng = np.random.default_rng(7)
    f16_mid = np.arange(0, 0x7C00, 3, dtype=np.uint16).view(np.float16).astype(np.float64)
    with np.errstate(over="ignore"):
        upper = np.nextafter(f16_mid.astype(np.float16), np.float16(np.inf)).astype(np.float64)
    bf16_low = np.arange(0, 0x7F80, 7, dtype=np.uint16)
    bf16_mid = (
        bf16_low.view(BF16).astype(np.float64) + (bf16_low + 1).view(BF16).astype(np.float64)
    ) / 2
    # ties of f16 and bf16: round to even, or up with a sticky bit
    mids = np.concatenate([(f16_mid + upper) / 2, bf16_mid])
    wide = [
        1 + 2**-11 + 2**-40,  # f64 -> f16 rounds up directly, to even via f32
        1 + 2**-8 + 2**-30,  # f64 -> bf16 via f32 (ml_dtypes) rounds to even
        65519.99, 65520.0, -65520.0, 2.0**-24, 2.0**-25, 2.0**-25 * (1 + 2**-30), 2.0**-26,
        3.3895313892515355e38, 3.3961e38, 3.4028234663852886e38, 1e39, -1e300, 1e-300,
        2.0**-133, 2.0**-149, 5e-324, 2.0**63, -(2.0**63), 2.0**31, 1e10,
    ]  # fmt: skip
    f64 = np.concatenate(
        [
            SPECIALS,
            wide,
            mids,
            np.nextafter(mids, 0),
            -mids,
            rng.standard_normal(2000) * np.exp(rng.uniform(-30, 30, 2000)),
        ]
    )
    bf16_bits = np.arange(0, 0x10000, 5, dtype=np.uint16)
    ints = np.array(EDGE_INTS, np.int64)
    ints = np.concatenate(
        [ints, rng.integers(-(2**62), 2**62, 500), rng.integers(-70000, 70000, 500)]
    )
    with np.errstate(over="ignore"):
        f32 = f64.astype(np.float32)  # 1e39 overflows to inf
    return {
        "f64": f64,
        "f32": f32,
        "f16": np.arange(0, 0x10000, 3, dtype=np.uint16).view(np.float16),
        "bf16": bf16_bits.view(BF16),
        "i64": ints,
        "i32": np.clip(ints, -(2**31), 2**31 - 1).astype(np.int32),
        "bool": np.array([True, False, True]),
    }


CAST_PAIRS = [
    (s, d)
    for s in HALVES + OTHERS
    for d in HALVES + OTHERS
    if s != d and (s in HALVES or d in HALVES)
]


def test_casts_in_every_direction(tmp_path):
    """One model per source dtype, casting it to every other dtype."""
    data = cast_sources()
    for src in HALVES + OTHERS:
        targets = [d for s, d in CAST_PAIRS if s == src]
        outs = ", ".join(f"to_{d}: {d}[N]" for d in targets)
        body = ", ".join(f"cast(x, {d})" for d in targets)
        source = f"model M(x: {src}[N]) -> ({outs}) {{ return {body} }}"
        ref, nat = models(tmp_path, source, name=f"cast_{src}.mdl")
        x = data[src]
        with np.errstate(all="ignore"):
            want = outputs(ref(x))
        for d, g, w in zip(targets, outputs(nat(x)), want, strict=True):
            assert_bits(g, w, f"{src} -> {d}")


def test_every_f16_and_bf16_value_widens_exactly_and_f32_rounds_to_nearest_even(tmp_path):
    """All 2^16 bit patterns of each through f32 and back; 2^18 random f32 bit patterns
    (every exponent, subnormals, NaNs with payloads) down to each."""
    source = (
        "model M(h: f16[N], b: bf16[N], x: f32[M]) -> "
        "(h32: f32[N], b32: f32[N], hb: f16[N], bb: bf16[N], xh: f16[M], xb: bf16[M]) {\n"
        "    return cast(h, f32), cast(b, f32), cast(cast(h, f32), f16), cast(cast(b, f32), bf16), "
        "cast(x, f16), cast(x, bf16)\n}"
    )
    ref, nat = models(tmp_path, source)
    every = np.arange(0x10000, dtype=np.uint32).astype(np.uint16)
    x = np.random.default_rng(3).integers(0, 2**32, 2**18, dtype=np.uint64).astype(np.uint32)
    args = (every.view(np.float16), every.view(BF16), x.view(np.float32))
    with np.errstate(all="ignore"):
        want = outputs(ref(*args))
    for name, g, w in zip(
        ("h32", "b32", "hb", "bb", "xh", "xb"), outputs(nat(*args)), want, strict=True
    ):
        assert_bits(g, w, name)


def test_copies_keep_nan_payloads_bit_for_bit(tmp_path):
    source = (
        "model M(h: f16[2, 3], b: bf16[2, 3]) -> (ht: f16[3, 2], bt: bf16[3, 2], hc: f16[4, 3]) {\n"
        "    return h.T, b.T, concat([h, h], axis=0)\n}"
    )
    ref, nat = models(tmp_path, source)
    bits = np.array([[0x7C01, 0xFE37, 0x7E00], [0x0001, 0x8000, 0x7BFF]], np.uint16)
    h, b = bits.view(np.float16), bits.view(BF16)
    for g, w in zip(outputs(nat(h, b)), outputs(ref(h, b)), strict=True):
        np.testing.assert_array_equal(g.view(np.uint16), w.view(np.uint16))


# ---------------------------------------------------------------- reductions


@pytest.mark.parametrize("dtype", HALVES)
def test_reductions(tmp_path, dtype):
    source = (
        f"model M(x: {dtype}[B, 13, 7]) -> (s: {dtype}[B, 7], m: {dtype}[B], hi: {dtype}[13], "
        f"lo: {dtype}[B, 1, 7], p: {dtype}[B, 13], am: i64[B, 7], an: i64[B, 13]) {{\n"
        "    return sum(x, axis=1), mean(x, axis=[1, 2]), max(x, axis=[0, 2]), "
        "min(x, axis=1, keep=true), prod(x * 0.25 + 1.0, axis=2), argmax(x, axis=1), "
        "argmin(x, axis=2)\n}"
    )
    ref, nat = models(tmp_path, source)
    plain = (np.random.default_rng(1).standard_normal((5, 13, 7)) * 300).astype(NP[dtype])
    for x in (sample(dtype, (3, 13, 7), 4), plain, sample(dtype, (1, 13, 7), 9)):
        got, want = outputs(nat(x)), outputs(ref(x))
        for k, (g, w) in enumerate(zip(got, want, strict=True)):
            if k in (2, 3, 5, 6):  # max, min, argmax, argmin
                assert_bits(g, w, str(k))
            else:
                assert_ulps(g, w, 1)


# ---------------------------------------------------------------- products


@pytest.mark.parametrize("dtype", HALVES)
def test_matmul_every_form(tmp_path, dtype):
    source = (
        f"model M(a: {dtype}[B, 7, 13], b: {dtype}[13, 5], v: {dtype}[13], u: {dtype}[7]) -> "
        f"(mm: {dtype}[B, 7, 5], mv: {dtype}[B, 7], vm: {dtype}[5], vv: {dtype}, "
        f"bb: {dtype}[B, 7, 7]) {{\n"
        "    return a @ b, a @ v, v @ b, v @ v, a @ a.transpose([0, 2, 1])\n}"
    )
    ref, nat = models(tmp_path, source)
    for batch in (1, 3):
        args = (
            sample(dtype, (batch, 7, 13), batch, scale=2.0),
            sample(dtype, (13, 5), 20, scale=2.0),
            sample(dtype, (13,), 21, scale=2.0),
            sample(dtype, (7,), 22),
        )
        args = tuple(
            np.where(np.isfinite(a.astype(np.float32)), a, 1).astype(a.dtype) for a in args
        )
        for g, w in zip(outputs(nat(*args)), outputs(ref(*args)), strict=True):
            assert_ulps(g, w, 2, floor=2.0**-20)


@pytest.mark.parametrize("dtype", HALVES)
def test_matmul_with_weights_and_large_odd_sizes(tmp_path, dtype):
    source = (
        f"model M(x: {dtype}[B, 67]) -> {dtype}[B, 33] {{\n"
        f"    param w: {dtype}[33, 67]\n    return x @ w.T\n}}"
    )
    rng = np.random.default_rng(0)
    weights = {"w": (rng.standard_normal((33, 67)) * 0.2).astype(NP[dtype])}
    ref, nat = models(tmp_path, source, weights)
    x = (rng.standard_normal((65, 67))).astype(NP[dtype])
    assert_ulps(nat(x), ref(x), 2, floor=2.0**-20)


CONV = """model M(x: {t}[B, 3, 9, 8], w: {t}[4, 3, 3, 3], g: {t}[6, 1, 2, 2], v: {t}[B, 3, 11],
        k: {t}[2, 3, 3], y: {t}[B, 3, H, W]) -> (a: {t}[B, 4, 5, 4], b: {t}[B, 6, 8, 7],
        c: {t}[B, 2, 11], d: {t}[B, 4, _, _], mp: {t}[B, 3, 4, 4], ap: {t}[B, 3, 5, 4]) {{
    let x2 = concat([x, x], axis=1)
    return (conv(x, w, stride=2, padding=1), conv(x2, g, groups=6), conv(v, k, padding=1),
            conv(y, w, padding=[0, 1, 1, 0]), max_pool(x, 2), avg_pool(x, 3, stride=2, padding=1))
}}
"""


@pytest.mark.parametrize("dtype", HALVES)
def test_conv_and_pools(tmp_path, dtype):
    # known sizes go through im2col + GEMM on f32 copies; symbolic H, W through direct loops
    ref, nat = models(tmp_path, CONV.format(t=dtype))
    args = [
        sample(dtype, (2, 3, 9, 8), 1, 1.0),
        sample(dtype, (4, 3, 3, 3), 2, 0.5),
        sample(dtype, (6, 1, 2, 2), 3, 0.5),
        sample(dtype, (2, 3, 11), 4, 1.0),
        sample(dtype, (2, 3, 3), 5, 0.5),
        sample(dtype, (2, 3, 6, 5), 6, 1.0),
    ]
    # finite inputs: nan and inf are the elementwise tests' business
    args = [np.where(np.isfinite(a.astype(np.float32)), a, 0.5).astype(a.dtype) for a in args]
    got, want = outputs(nat(*args)), outputs(ref(*args))
    for k, (g, w) in enumerate(zip(got, want, strict=True)):
        if k == 4:  # max_pool
            assert_bits(g, w, "max_pool")
        elif k == 5:  # avg_pool: f32 sums in the same order, then one division
            assert_ulps(g, w, 1)
        else:
            assert_ulps(g, w, 2, floor=2.0**-20)


# ---------------------------------------------------------------- layout and gather


@pytest.mark.parametrize("dtype", HALVES)
def test_layout_ops_and_gather(tmp_path, dtype):
    source = (
        f"model M(x: {dtype}[B, 4, 3], ids: i64[5] in 0..4) -> (t: {dtype}[3, B, 4], "
        f"r: {dtype}[B, 12], s: {dtype}[B, 2, 3], p: {dtype}[B, 6, 3], g: {dtype}[B, 5, 3], "
        f"e: {dtype}[2, B, 4, 3]) {{\n"
        "    return x.transpose([2, 0, 1]), x.reshape(B, 12), x[:, 1:3], pad(x, [0, 1, 0, 0, 1, 0], 2.5), "
        "x.transpose([1, 0, 2])[ids].transpose([1, 0, 2]), expand(x.reshape(1, B, 4, 3), [2, B, 4, 3])\n}"
    )
    ref, nat = models(tmp_path, source)
    ids = np.array([3, 0, 1, 1, 2])
    for batch in (1, 4):
        x = sample(dtype, (batch, 4, 3), batch)
        for g, w in zip(outputs(nat(x, ids)), outputs(ref(x, ids)), strict=True):
            assert_bits(g, w)


# ---------------------------------------------------------------- a network in f16

NETWORK = """model Net(x: {t}[B, 24]) -> {t}[B, 10] {{
    param w1: {t}[32, 24]
    param b1: {t}[32]
    param gamma: {t}[32]
    param beta: {t}[32]
    param w2: {t}[10, 32]
    let h = x @ w1.T + b1
    let mu = mean(h, axis=-1, keep=true)
    let var = mean((h - mu) * (h - mu), axis=-1, keep=true)
    let n = (h - mu) * rsqrt(var + 1e-5) * gamma + beta
    let g = 0.5 * n * (1.0 + erf(n * 0.7071067811865476))
    let z = g @ w2.T
    let e = exp(z - max(z, axis=-1, keep=true))
    return e / sum(e, axis=-1, keep=true)
}}
"""


@pytest.mark.parametrize("dtype", HALVES)
def test_dense_layer_norm_gelu_softmax_network(tmp_path, dtype):
    # the standard library's layers are f32: the same network written out in f16 / bf16
    rng = np.random.default_rng(5)
    t = NP[dtype]
    weights = {
        "w1": (rng.standard_normal((32, 24)) * 0.2).astype(t),
        "b1": (rng.standard_normal(32) * 0.1).astype(t),
        "gamma": (1 + rng.standard_normal(32) * 0.1).astype(t),
        "beta": (rng.standard_normal(32) * 0.1).astype(t),
        "w2": (rng.standard_normal((10, 32)) * 0.2).astype(t),
    }
    ref, nat = models(tmp_path, NETWORK.format(t=dtype), weights)
    eps = float(ml_dtypes.finfo(t).eps)
    for batch in (1, 9):
        x = rng.standard_normal((batch, 24)).astype(t)
        got, want = nat(x), ref(x)
        assert got.dtype == want.dtype == t
        harness.assert_close(got, want, rtol=4 * eps, atol=4 * eps)


# ---------------------------------------------------------------- threads, loading, checks


@pytest.mark.parametrize("dtype", HALVES)
def test_one_and_two_threads_give_the_same_bits(tmp_path, dtype):
    source = (
        f"model M(x: {dtype}[B, 256], w: {dtype}[256, 256], i: {dtype}[B, 4, 16, 16], "
        f"k: {dtype}[8, 4, 3, 3]) -> (y: {dtype}[B, 256], z: {dtype}[B, 256], c: {dtype}[B, 8, 16, 16]) {{\n"
        "    return x @ w, exp(x) * x + 1.0, conv(i, k, padding=1)\n}"
    )
    path = tmp_path / "t.mdl"
    path.write_text(source)
    one = mdl.load(str(path), weights={}, backend="native", threads=1)
    two = mdl.load(str(path), weights={}, backend="native", threads=2)
    args = (
        sample(dtype, (131, 256), 1, 1.0),
        sample(dtype, (256, 256), 2, 0.1),
        sample(dtype, (131, 4, 16, 16), 3, 1.0),
        sample(dtype, (8, 4, 3, 3), 4, 0.3),
    )
    for a, b in zip(one(*args), two(*args), strict=True):
        np.testing.assert_array_equal(a.view(np.uint16), b.view(np.uint16))


def test_half_models_load_natively_by_default_and_inputs_are_checked(tmp_path):
    import warnings

    (tmp_path / "h.mdl").write_text(
        "model H(x: f16[B, 3]) -> bf16[B, 3] {\n    cast(x * 2.0, bf16)\n}\n"
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = mdl.load(str(tmp_path / "h.mdl"), weights={})
    assert model.backend == "native"
    x = np.array([[1.5, -0.0, np.nan]], np.float16)
    assert_bits(model(x), (x.astype(np.float32) * 2).astype(BF16))
    for wrong in (x.astype(np.float32), x.astype(BF16)):
        with pytest.raises(mdl.MdlError) as e:
            model(wrong)
        assert e.value.diagnostics[0].code == "E0603"


def test_lowered_half_products_compute_in_f32(tmp_path):
    """matmul and conv of f16 read f32 copies (so the GEMM kernel serves them) and round
    once into the output; the loop IR verifies."""
    (tmp_path / "m.mdl").write_text(
        "model M(a: f16[4, 8], b: f16[8, 3], x: bf16[1, 2, 5, 5], w: bf16[3, 2, 3, 3]) -> "
        "(y: f16[4, 3], c: bf16[1, 3, 3, 3]) {\n    return a @ b, conv(x, w)\n}\n"
    )
    program = lower(compile_model(str(tmp_path / "m.mdl")).graph)
    ir.verify(program)
    gemms = [st for k in program.kernels for st in _walk(k.body) if isinstance(st, ir.Gemm)]
    assert len(gemms) == 2
    assert all(program.buffer(g.c).dtype is DType.F32 for g in gemms)


def _walk(stmts):
    for st in stmts:
        yield st
        if isinstance(st, ir.For):
            yield from _walk(st.body)
        elif isinstance(st, ir.If):
            yield from _walk(st.then + st.orelse)
