"""Native element-wise ops vs the reference: mdl source -> both backends -> same arrays.

Every unary and binary op, `where`, `cast`, `full` and `arange`, with odd and
symbolic shapes, broadcasting (0-d scalars included), ints and bools at their
extremes, and NaN/inf inputs. Binary ops run on all pairs of special values
(`a: [N]` against `b: [N, 1]`), so every NaN/inf/zero combination is covered.
"""

from __future__ import annotations

import native_harness as harness  # noqa: E402
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mdl.backend import loopir as ir
from mdl.backend.lower import lower
from mdl.driver import compile_model

FLOATS = ("f32", "f64")
INTS = ("i32", "i64")
NP = {"f32": np.float32, "f64": np.float64, "i32": np.int32, "i64": np.int64, "bool": np.bool_}

# 15 values: signed zeros, infinities, nan, tiny and huge magnitudes, integral and not
SPECIAL_FLOATS = [
    np.nan, np.inf, -np.inf, 0.0, -0.0, 1.0, -1.0, 0.5, -2.5, 3.0, 7.25, -13.0, 1e-30, 1e30, -88.5,
]  # fmt: skip


def special_ints(dtype: str) -> list[int]:
    info = np.iinfo(NP[dtype])
    return [0, 1, -1, 2, -2, 3, -3, 7, -13, 100, -64, info.min, info.max, info.min + 1, 63]


def specials(dtype: str) -> np.ndarray:
    if dtype == "bool":
        return np.array([False, True])
    values = SPECIAL_FLOATS if dtype in FLOATS else special_ints(dtype)
    return np.array(values, dtype=NP[dtype])


def sample(dtype: str, shape: tuple[int, ...], seed: int) -> np.ndarray:
    """Random values of `dtype` with the special values written over the first elements."""
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


def check(tmp_path, source: str, *input_sets: tuple[np.ndarray, ...]) -> None:
    """Load `source` once on both backends and compare on each set of inputs."""
    ref, nat = harness.models(tmp_path, source, weights={})
    for inputs in input_sets:
        want, got = ref(*inputs), nat(*inputs)
        if not isinstance(want, tuple):
            want, got = (want,), (got,)
        assert len(got) == len(want)
        for k, (g, w) in enumerate(zip(got, want, strict=True)):
            try:
                harness.assert_close(g, w)
            except AssertionError as e:
                raise AssertionError(
                    f"output {k} with input shapes {[a.shape for a in inputs]}:\n{e}"
                ) from None


def all_pairs(dtype: str) -> tuple[np.ndarray, np.ndarray]:
    """`a: [N]` and `b: [N, 1]` whose broadcast holds every pair of special values."""
    s = specials(dtype)
    return s, s.reshape(-1, 1).copy()


# ---------------------------------------------------------------- unary
UNARY_FLOAT = (
    "exp",
    "log",
    "sqrt",
    "rsqrt",
    "tanh",
    "erf",
    "sigmoid",
    "sin",
    "cos",
    "abs",
    "neg",
    "floor",
    "ceil",
)


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("op", UNARY_FLOAT)
def test_unary_float(tmp_path, op, dtype):
    source = f"model M(x: {dtype}[B, 7]) -> {dtype}[B, 7] {{ return {op}(x) }}"
    wide = sample(dtype, (13, 7), 1) * NP[dtype](30)  # beyond exp's and tanh's easy range
    check(tmp_path, source, (sample(dtype, (3, 7), 0),), (sample(dtype, (1, 7), 2),), (wide,))


@pytest.mark.parametrize("dtype", FLOATS)
def test_isnan(tmp_path, dtype):
    source = f"model M(x: {dtype}[B, 7]) -> bool[B, 7] {{ return isnan(x) }}"
    check(tmp_path, source, (sample(dtype, (3, 7), 0),))


@pytest.mark.parametrize("dtype", INTS)
def test_abs_neg_ints_wrap(tmp_path, dtype):
    source = (
        f"model M(x: {dtype}[N]) -> (a: {dtype}[N], n: {dtype}[N], m: {dtype}[N]) "
        "{ return abs(x), neg(x), -x }"
    )
    check(tmp_path, source, (specials(dtype),), (sample(dtype, (13,), 3),))


def test_logical_not(tmp_path):
    source = "model M(x: bool[B, 3]) -> bool[B, 3] { return logical_not(x) }"
    check(tmp_path, source, (sample("bool", (7, 3), 0),), (np.array([[True, False, True]]),))


def test_sigmoid_saturates_without_overflow(tmp_path):
    source = "model M(x: f32[N]) -> f32[N] { return sigmoid(x) }"
    x = np.array(
        [-1e4, -100.0, -88.0, -20.0, 0.0, 20.0, 100.0, 1e4, np.inf, -np.inf, np.nan],
        dtype=np.float32,
    )
    check(tmp_path, source, (x,))


# ---------------------------------------------------------------- binary
ARITH = {
    "add": "a + b",
    "sub": "a - b",
    "mul": "a * b",
    "floordiv": "a // b",
    "mod": "a % b",
    "pow": "a ** b",
    "maximum": "max(a, b)",
    "minimum": "min(a, b)",
}
COMPARE = {
    "eq": "a == b",
    "ne": "a != b",
    "lt": "a < b",
    "le": "a <= b",
    "gt": "a > b",
    "ge": "a >= b",
}


def pair_source(dtype: str, expr: str, out: str) -> str:
    return f"model M(a: {dtype}[N], b: {dtype}[M, 1]) -> {out}[M, N] {{ return {expr} }}"


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("op", [*ARITH, "div"])
def test_binary_float_special_pairs(tmp_path, op, dtype):
    expr = ARITH.get(op, "a / b")
    check(tmp_path, pair_source(dtype, expr, dtype), all_pairs(dtype))


@pytest.mark.parametrize("dtype", INTS)
@pytest.mark.parametrize("op", ARITH)
def test_binary_int_special_pairs(tmp_path, op, dtype):
    """Wrapping arithmetic, x // 0 = x % 0 = 0, min // -1, negative exponents."""
    check(tmp_path, pair_source(dtype, ARITH[op], dtype), all_pairs(dtype))


@pytest.mark.parametrize("dtype", [*FLOATS, *INTS])
@pytest.mark.parametrize("op", COMPARE)
def test_comparisons(tmp_path, op, dtype):
    check(tmp_path, pair_source(dtype, COMPARE[op], "bool"), all_pairs(dtype))


@pytest.mark.parametrize("expr", ["a == b", "a != b", "logical_and(a, b)", "logical_or(a, b)"])
def test_bool_binary(tmp_path, expr):
    check(tmp_path, pair_source("bool", expr, "bool"), all_pairs("bool"))


@pytest.mark.parametrize("dtype", ["f32", "i64"])
def test_binary_broadcast_symbolic(tmp_path, dtype):
    """[B, 1, 7] with [3, 1] -> [B, 3, 7], for several B."""
    source = (
        f"model M(a: {dtype}[B, 1, 7], b: {dtype}[3, 1]) -> "
        f"(s: {dtype}[B, 3, 7], m: {dtype}[B, 3, 7], x: {dtype}[B, 3, 7], "
        f"d: {dtype}[B, 3, 7], c: bool[B, 3, 7]) "
        "{ return a - b, b * a, max(b, a), a // b, b < a }"
    )
    b = sample(dtype, (3, 1), 9)
    check(tmp_path, source, *[(sample(dtype, (n, 1, 7), n), b) for n in (1, 3, 13)])


@st.composite
def broadcastable_shapes(draw) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Two shapes of rank 0..3 that broadcast: each aligned pair equal, or one of them 1."""
    out = draw(st.lists(st.sampled_from([1, 2, 3, 5]), min_size=0, max_size=3))
    shapes = []
    for _ in range(2):
        rank = draw(st.integers(0, len(out)))
        tail = out[len(out) - rank :]
        shapes.append(tuple(d if draw(st.booleans()) else 1 for d in tail))
    return shapes[0], shapes[1]


@settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    shapes=broadcastable_shapes(),
    expr=st.sampled_from(["a - b", "b / a", "max(a, b)", "a % b", "a < b"]),
)
def test_broadcast_property(tmp_path_factory, shapes, expr):
    sa, sb = shapes
    out = np.broadcast_shapes(sa, sb)
    dims = ", ".join(map(str, out))
    out_dtype = "bool" if "<" in expr else "f32"
    source = (
        f"model M(a: f32[{', '.join(map(str, sa))}], b: f32[{', '.join(map(str, sb))}]) "
        f"-> {out_dtype}[{dims}] {{ return {expr} }}"
    )
    a = np.asarray(sample("f32", sa, 1))
    b = np.asarray(sample("f32", sb, 2))
    check(tmp_path_factory.mktemp("prop"), source, (a, b))


def test_broadcast_both_sides_and_same_shape(tmp_path):
    source = (
        "model M(a: f32[B, 1], b: f32[1, 7], c: f32[B, 7]) -> f32[B, 7] "
        "{ return (a + b) * c - c / (a + 2.0) }"
    )
    check(
        tmp_path,
        source,
        *[
            (sample("f32", (n, 1), n), sample("f32", (1, 7), 5), sample("f32", (n, 7), 6))
            for n in (1, 7)
        ],
    )


@pytest.mark.parametrize("dtype", FLOATS)
def test_scalar_operands_float(tmp_path, dtype):
    """Numbers are 0-d buffers, on either side of the operator."""
    source = (
        f"model M(x: {dtype}[B, 3]) -> (a: {dtype}[B, 3], b: {dtype}[B, 3], "
        f"c: {dtype}[B, 3], d: {dtype}[B, 3], e: bool[B, 3], f: {dtype}[B, 3]) "
        "{ return x * 2.0, 2.0 - x, x ** 2.0, 0.5 ** x, x >= 1.0, max(x, 0.0) }"
    )
    check(tmp_path, source, (sample(dtype, (7, 3), 0),), (sample(dtype, (1, 3), 1),))


@pytest.mark.parametrize("dtype", INTS)
def test_scalar_operands_int(tmp_path, dtype):
    source = (
        f"model M(x: {dtype}[B, 3]) -> (a: {dtype}[B, 3], b: {dtype}[B, 3], "
        f"c: {dtype}[B, 3], d: {dtype}[B, 3], e: {dtype}[B, 3], f: bool[B, 3]) "
        "{ return x % 3, 7 // x, x ** 3, 2 ** x, min(x, -1), x != 0 }"
    )
    check(tmp_path, source, (sample(dtype, (7, 3), 0),), (sample(dtype, (5, 3), 4),))


def test_scalar_with_scalar_input(tmp_path):
    source = "model M(s: f32[], x: f32[5]) -> (a: f32[5], b: f32[]) { return x + s, s * 3.0 }"
    check(
        tmp_path,
        source,
        (np.array(2.5, np.float32), sample("f32", (5,), 0)),
        (np.array(np.nan, np.float32), sample("f32", (5,), 1)),
    )


# ---------------------------------------------------------------- where
def test_where_three_way_broadcast(tmp_path):
    source = (
        "model M(c: bool[B, 1], a: f32[7], b: f32[B, 7]) -> (w: f32[B, 7], v: f32[B, 1]) "
        "{ return where(c, a, b), where(c, 0.0, -inf) }"
    )
    check(
        tmp_path,
        source,
        *[
            (sample("bool", (n, 1), n), sample("f32", (7,), 1), sample("f32", (n, 7), 2))
            for n in (1, 3, 13)
        ],
    )


@pytest.mark.parametrize("dtype", [*INTS, "bool", "f64"])
def test_where_dtypes(tmp_path, dtype):
    source = (
        f"model M(c: bool[N, 1], a: {dtype}[N], b: {dtype}[]) -> {dtype}[N, N] "
        "{ return where(c, a, b) }"
    )
    check(
        tmp_path,
        source,
        (sample("bool", (5, 1), 0), sample(dtype, (5,), 1), np.array(sample(dtype, (1,), 2)[0])),
    )


def test_where_on_comparison(tmp_path):
    source = "model M(x: f32[B, 7]) -> f32[B, 7] { return where(x > 0.0, sqrt(x), -x * 0.5) }"
    check(tmp_path, source, (sample("f32", (3, 7), 0),), (sample("f32", (13, 7), 1),))


# ---------------------------------------------------------------- cast
@pytest.mark.parametrize("src", [*FLOATS, *INTS, "bool"])
@pytest.mark.parametrize("dst", [*FLOATS, *INTS, "bool"])
def test_cast(tmp_path, src, dst):
    """float -> int truncates and saturates (nan -> 0), int -> int wraps, x -> bool is x != 0."""
    source = f"model M(x: {src}[B, 5]) -> {dst}[B, 5] {{ return cast(x, {dst}) }}"
    values = specials(src)
    if src in FLOATS:  # values just inside and beyond the int ranges
        values = np.concatenate(
            [
                values,
                np.array(
                    [
                        2.0**31,
                        -(2.0**31),
                        2.0**31 - 128,
                        2.0**63,
                        -(2.0**63),
                        3e38,
                        -3e38,
                        0.9,
                        -0.9,
                        1e-45,
                    ],
                    dtype=NP[src],
                ),
            ]
        )
    values = np.resize(values, (len(values) + 4) // 5 * 5).reshape(-1, 5)
    check(tmp_path, source, (values,), (sample(src, (3, 5), 1),))


def test_cast_f64_to_f32_overflows_to_inf(tmp_path):
    source = "model M(x: f64[N]) -> f32[N] { return cast(x, f32) }"
    x = np.array([1e300, -1e300, 3.4028235677973366e38, 1e-300, 0.1, np.nan], dtype=np.float64)
    check(tmp_path, source, (x,))


# ---------------------------------------------------------------- full and arange
def test_full(tmp_path):
    source = (
        "model M(x: f32[B, 3]) -> (a: f32[B, 3], b: i32[3, B], c: bool[B], d: f64[2, 1], "
        "e: f32[B, 3], g: i64[1], h: f32[B]) "
        "{ return x + full([B, 3], 0.1), full([3, B], -7, dtype=i32), full([B], true), "
        "full([2, 1], 0.1, dtype=f64), full([B, 3], 1e40), full([1], 9007199254740993), "
        "full([B], -inf) }"
    )
    check(tmp_path, source, (sample("f32", (1, 3), 0),), (sample("f32", (7, 3), 1),))


def test_arange(tmp_path):
    source = (
        "model M(x: f32[T]) -> (a: i64[T], b: i64[T], c: f32[3], d: i64[3], e: i32[4], "
        "f: f64[T], g: f32[T]) "
        "{ return arange(T), arange(1, T + 1), arange(0, 3, dtype=f32), arange(10, 1, -3), "
        "arange(2, 13, 3, dtype=i32), arange(-3, T - 3, dtype=f64), "
        "x * cast(arange(T), f32) }"
    )
    check(tmp_path, source, *[(sample("f32", (n,), n),) for n in (1, 4, 13)])


def test_arange_symbolic_with_step(tmp_path):
    source = (
        "model M(x: f32[T]) -> (a: i64[(T + 1) // 2], b: i64[(T + 2) // 3]) "
        "{ return arange(0, T, 2), arange(T, 0, -3) }"
    )
    check(tmp_path, source, *[(sample("f32", (n,), n),) for n in (1, 2, 7, 13)])


# ---------------------------------------------------------------- lowered IR
def test_lowered_kernels_are_single_loop_nests(tmp_path):
    """One kernel per node, each one loop nest over the output whose innermost body is a Store."""
    path = tmp_path / "m.mdl"
    path.write_text(
        "model M(x: f32[B, 7], s: f32[]) -> f32[B, 7] "
        "{ return where(x > s, exp(x) * 2.0, cast(arange(7), f32)) }"
    )
    graph = compile_model(str(path)).graph
    program = lower(graph, fuse=False)
    assert len(program.kernels) == 6  # gt, exp, mul, arange, cast, where: consts have none
    fused = lower(graph)
    # gt, exp and mul fuse into `where` (one use, same shape); cast of arange is [7], not [B, 7]
    assert len(fused.kernels) == 3
    for kernel in [*program.kernels, *fused.kernels]:
        body = kernel.body
        while len(body) == 1 and isinstance(body[0], ir.For):
            body = body[0].body
        assert len(body) == 1 and isinstance(body[0], ir.Store), kernel.name
