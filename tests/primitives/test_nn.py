"""Tests of conv, max_pool and avg_pool (mdl/primitives/nn.py): shape rules and numpy semantics.

References are written independently here: direct nested loops over the
definitions (explicit sums with bounds checks, no padded arrays) in float64,
then cast, plus hand-computed cases and the committed PyTorch fixtures.
Tolerances: f32 results against the float64 loops cast to f32 use rtol 1e-5,
atol 1e-6; f64 rtol 1e-12, atol 1e-12; f16 and bf16 rtol 1e-2, atol 2e-2;
max_pool is exact; the PyTorch fixtures use rtol 1e-5 and
atol 1e-5 * max(1, |expected|) as their README asks.
"""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import ml_dtypes
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors.numpy import load_file

import mdl.primitives.nn  # noqa: F401  (registers the primitives)
from mdl.dims import Dim
from mdl.primitives.registry import REGISTRY, EvalError, ShapeError
from mdl.types import DType, TensorType

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "torch"
TOL = {np.float32: dict(rtol=1e-5, atol=1e-6), np.float64: dict(rtol=1e-12, atol=1e-12)}


def tt(dtype: DType, *dims: int | str | Dim) -> TensorType:
    return TensorType(dtype, tuple(Dim.of(d) for d in dims))


def attrs_for(name: str, **given) -> dict:
    """The bound attributes: every non-tensor parameter's default, overridden by `given`."""
    attrs = {p.name: p.default for p in REGISTRY[name].params if p.kind != "tensor"}
    attrs.update(given)
    return attrs


def infer(name: str, operands: list[TensorType], **given) -> TensorType:
    (out,) = REGISTRY[name].infer(operands, attrs_for(name, **given))
    return out


def run(name: str, *arrays: np.ndarray, **given) -> np.ndarray:
    """Evaluate, after checking that the shape rule predicts the result's dtype and shape."""
    attrs = attrs_for(name, **given)
    types = [tt(DType.from_numpy(a.dtype), *a.shape) for a in arrays]
    (predicted,) = REGISTRY[name].infer(types, attrs)
    copies = [a.copy() for a in arrays]
    (out,) = REGISTRY[name].evaluate(list(arrays), attrs)
    for a, c in zip(arrays, copies, strict=True):
        np.testing.assert_array_equal(a, c)  # inputs are never mutated
    assert out.dtype == predicted.dtype.numpy
    assert out.shape == tuple(int(d) for d in predicted.shape)
    return out


def expand(value, spatial: int) -> tuple[int, ...]:
    return tuple(value) if isinstance(value, list) else (value,) * spatial


def expand_padding(padding, spatial: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    items = expand(padding, spatial)
    if len(items) == spatial:
        return items, items
    return items[:spatial], items[spatial:]


def out_size(n: int, k: int, s: int, d: int, pb: int, pe: int) -> int:
    # the formula from the PyTorch Conv2d/MaxPool2d documentation
    return (n + pb + pe - d * (k - 1) - 1) // s + 1


# ---------------------------------------------------------------------------
# loop references


def conv_loops(x, w, stride=1, padding=0, dilation=1, groups=1) -> np.ndarray:
    spatial = x.ndim - 2
    stride, dilation = expand(stride, spatial), expand(dilation, spatial)
    pad_begin, pad_end = expand_padding(padding, spatial)
    x64, w64 = x.astype(np.float64), w.astype(np.float64)
    n, _, *size = x.shape
    o, cg, *kernel = w.shape
    outs = [
        out_size(size[i], kernel[i], stride[i], dilation[i], pad_begin[i], pad_end[i])
        for i in range(spatial)
    ]
    result = np.zeros((n, o, *outs))
    for b, oc in itertools.product(range(n), range(o)):
        group = oc // (o // groups)
        for pos in itertools.product(*map(range, outs)):
            total = 0.0
            for ic in range(cg):
                for tap in itertools.product(*map(range, kernel)):
                    src = [
                        pos[i] * stride[i] - pad_begin[i] + tap[i] * dilation[i]
                        for i in range(spatial)
                    ]
                    if all(0 <= src[i] < size[i] for i in range(spatial)):
                        total += x64[(b, group * cg + ic, *src)] * w64[(oc, ic, *tap)]
            result[(b, oc, *pos)] = total
    return result.astype(x.dtype)


def pool_loops(
    x, mode, kernel, stride=None, padding=0, dilation=1, count_include_pad=True
) -> np.ndarray:
    spatial = x.ndim - 2
    kernel = expand(kernel, spatial)
    stride = kernel if stride is None else expand(stride, spatial)
    dilation = expand(dilation, spatial)
    pad_begin, pad_end = expand_padding(padding, spatial)
    n, c, *size = x.shape
    outs = [
        out_size(size[i], kernel[i], stride[i], dilation[i], pad_begin[i], pad_end[i])
        for i in range(spatial)
    ]
    result = np.zeros((n, c, *outs))
    x64 = x.astype(np.float64)
    for b, ch in itertools.product(range(n), range(c)):
        for pos in itertools.product(*map(range, outs)):
            values = []
            for tap in itertools.product(*map(range, kernel)):
                src = [
                    pos[i] * stride[i] - pad_begin[i] + tap[i] * dilation[i] for i in range(spatial)
                ]
                if all(0 <= src[i] < size[i] for i in range(spatial)):
                    values.append(x64[(b, ch, *src)])
            if mode == "max":
                value = max(values) if values else -math.inf
            else:
                value = sum(values) / (math.prod(kernel) if count_include_pad else len(values))
            result[(b, ch, *pos)] = value
    return result.astype(x.dtype)


def assert_close(actual, expected):
    np.testing.assert_allclose(actual, expected, **TOL[expected.dtype.type])


def random(shape, dtype=np.float32, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


# ---------------------------------------------------------------------------
# conv values

CONV_CASES = [
    # (x shape, w shape, attrs)
    ((2, 3, 6, 6), (4, 3, 3, 3), {}),
    ((2, 3, 7, 5), (4, 3, 2, 3), {}),  # odd sizes, non-square kernel
    ((1, 3, 7, 7), (2, 3, 3, 3), {"stride": 2, "padding": 1}),
    ((1, 2, 8, 7), (3, 2, 3, 3), {"stride": [1, 2], "padding": [2, 1], "dilation": [2, 1]}),
    ((1, 2, 6, 5), (2, 2, 3, 2), {"padding": [0, 1, 2, 0]}),  # asymmetric: begins, ends
    ((1, 2, 5, 5), (2, 2, 3, 3), {"padding": [1, 0, 0, 2], "stride": [2, 1]}),
    ((2, 4, 5, 5), (6, 2, 3, 3), {"groups": 2, "padding": 1}),
    ((1, 4, 6, 6), (4, 1, 3, 3), {"groups": 4, "padding": 1}),  # depthwise
    ((1, 3, 5, 6), (6, 1, 3, 3), {"groups": 3, "stride": 2}),  # depthwise, multiplier 2
    ((2, 3, 5, 5), (4, 3, 1, 1), {"stride": 2}),  # 1x1 projection shortcut
    ((2, 3, 9), (4, 3, 3), {}),
    ((2, 3, 10), (4, 3, 3), {"stride": 2, "padding": 1, "dilation": 2}),
    ((1, 4, 7), (2, 2, 2), {"groups": 2, "padding": [1, 0]}),  # 1-D asymmetric
    ((1, 2, 6), (2, 2, 4), {"padding": [3], "stride": [3]}),
]


@pytest.mark.parametrize(("x_shape", "w_shape", "attrs"), CONV_CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_conv_matches_explicit_sums(x_shape, w_shape, attrs, dtype):
    x, w = random(x_shape, dtype, 1), random(w_shape, dtype, 2)
    assert_close(run("conv", x, w, **attrs), conv_loops(x, w, **attrs))


def test_conv_hand_computed():
    x = np.array([[[1, 2, 3, 4]]], np.float32)
    w = np.array([[[1, 0, -1]]], np.float32)  # cross-correlation: no kernel flip
    np.testing.assert_array_equal(run("conv", x, w), [[[-2, -2]]])
    np.testing.assert_array_equal(run("conv", x, w, padding=1), [[[-2, -2, -2, 3]]])
    grid = np.arange(9, dtype=np.float64).reshape(1, 1, 3, 3)
    ones = np.ones((1, 1, 2, 2))
    np.testing.assert_array_equal(run("conv", grid, ones), [[[[8, 12], [20, 24]]]])
    np.testing.assert_array_equal(
        run("conv", grid, ones, stride=2, padding=[0, 0, 1, 1]), [[[[8, 7], [13, 8]]]]
    )


def test_conv_non_contiguous_input_and_half_precision():
    x = random((2, 3, 6, 6), seed=3).transpose(0, 1, 3, 2)
    w = random((4, 3, 3, 3), seed=4)
    assert_close(run("conv", x, w, padding=1), conv_loops(x, w, padding=1))
    for half in (np.float16, ml_dtypes.bfloat16):  # computed in f32, rounded once
        xh, wh = x.astype(half), w.astype(half)
        out = run("conv", xh, wh, padding=1).astype(np.float32)
        expected = conv_loops(xh, wh, padding=1).astype(np.float32)
        np.testing.assert_allclose(out, expected, rtol=1e-2, atol=2e-2)
        pooled = run("avg_pool", xh, kernel=3, padding=1, count_include_pad=False)
        expected = pool_loops(xh, "avg", kernel=3, padding=1, count_include_pad=False)
        np.testing.assert_allclose(
            pooled.astype(np.float32), expected.astype(np.float32), rtol=1e-2, atol=1e-2
        )


def test_conv_empty_batch():
    out = run("conv", np.zeros((0, 3, 5, 5), np.float32), random((2, 3, 3, 3)))
    assert out.shape == (0, 2, 3, 3)


def test_conv_runtime_input_smaller_than_kernel():
    x = np.zeros((1, 1, 2, 8), np.float32)
    with pytest.raises(EvalError) as err:
        REGISTRY["conv"].evaluate([x, np.zeros((1, 1, 3, 3), np.float32)], attrs_for("conv"))
    assert err.value.code == "E0605"


# ---------------------------------------------------------------------------
# pool values

POOL_CASES = [
    ((2, 3, 6, 6), {"kernel": 2}),
    ((1, 2, 7, 7), {"kernel": 3, "stride": 2, "padding": 1}),
    ((1, 2, 7, 6), {"kernel": [2, 3], "stride": [1, 2], "padding": [1, 0]}),
    ((1, 2, 5, 6), {"kernel": 3, "stride": 1, "padding": [0, 1, 1, 0]}),
    ((1, 1, 9, 8), {"kernel": 3, "stride": [2, 3]}),
    ((2, 3, 9), {"kernel": 3, "stride": 1, "padding": 1}),
    ((1, 2, 10), {"kernel": 4, "stride": 3, "padding": [2, 1]}),
]


@pytest.mark.parametrize(("x_shape", "attrs"), POOL_CASES)
def test_max_pool_matches_loops(x_shape, attrs):
    x = random(x_shape, seed=5)
    np.testing.assert_array_equal(run("max_pool", x, **attrs), pool_loops(x, "max", **attrs))


@pytest.mark.parametrize(
    "attrs",
    [
        {"kernel": 2, "stride": 1, "dilation": 2},
        {"kernel": 3, "stride": 2, "padding": 1, "dilation": [2, 1]},
        {"kernel": [2, 2], "stride": 1, "padding": 1, "dilation": 3},
    ],
)
def test_max_pool_dilation(attrs):
    x = random((1, 2, 7, 8), seed=6)
    np.testing.assert_array_equal(run("max_pool", x, **attrs), pool_loops(x, "max", **attrs))


@pytest.mark.parametrize(("x_shape", "attrs"), POOL_CASES)
@pytest.mark.parametrize("include", [True, False])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_avg_pool_matches_loops(x_shape, attrs, include, dtype):
    x = random(x_shape, dtype, seed=7)
    expected = pool_loops(x, "avg", count_include_pad=include, **attrs)
    assert_close(run("avg_pool", x, count_include_pad=include, **attrs), expected)


def test_pools_hand_computed():
    x = np.array([[[1, 3, 2, 5, 4]]], np.float32)
    np.testing.assert_array_equal(run("max_pool", x, kernel=2), [[[3, 5]]])
    neg = np.array([[[-5, -3]]], np.float32)  # padding is -inf, never 0
    np.testing.assert_array_equal(
        run("max_pool", neg, kernel=2, stride=1, padding=1), [[[-5, -3, -3]]]
    )
    y = np.array([[[1, 2, 3]]], np.float64)
    incl = run("avg_pool", y, kernel=3, stride=1, padding=1)
    np.testing.assert_allclose(incl, [[[1, 2, 5 / 3]]], rtol=1e-15)
    excl = run("avg_pool", y, kernel=3, stride=1, padding=1, count_include_pad=False)
    np.testing.assert_allclose(excl, [[[1.5, 2, 2.5]]], rtol=1e-15)


def test_max_pool_propagates_nan_and_window_of_padding_is_minus_inf():
    x = np.array([[[1, np.nan, 2, 0]]], np.float32)
    np.testing.assert_array_equal(run("max_pool", x, kernel=2), [[[np.nan, 2]]])
    # PyTorch allows this window (-1, 2) on an input of size 2 that touches no element
    z = np.zeros((1, 1, 2), np.float32)
    out = run("max_pool", z, kernel=2, stride=1, padding=1, dilation=3)
    np.testing.assert_array_equal(out, [[[-np.inf]]])


# ---------------------------------------------------------------------------
# PyTorch fixtures


def fixture(case: str):
    meta = json.loads((FIXTURES / f"{case}.json").read_text())
    return meta, load_file(str(FIXTURES / f"{case}.safetensors"))


def assert_matches_torch(actual, expected):
    atol = 1e-5 * max(1.0, float(np.abs(expected).max()))
    np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=atol)


@pytest.mark.parametrize(
    ("case", "attrs"),
    [
        ("conv1d", {"stride": 2, "padding": 1}),
        ("conv2d", {"padding": 1}),
        ("conv2d_depthwise", {"padding": 1, "groups": 4}),
        ("conv2d_groups", {"padding": 1, "groups": 3}),
        ("conv2d_strided_dilated", {"stride": 2, "padding": 2, "dilation": 2}),
    ],
)
def test_conv_matches_torch(case, attrs):
    _, t = fixture(case)
    out = run("conv", t["__input__"], t["weight"], **attrs)
    if "bias" in t:  # the primitive has no bias; the stdlib layer adds it
        out = out + t["bias"].reshape(-1, *([1] * (out.ndim - 2)))
    assert_matches_torch(out, t["__output__"])


@pytest.mark.parametrize(
    ("case", "name", "attrs"),
    [
        ("maxpool2d", "max_pool", {"kernel": 2}),
        ("maxpool2d_s", "max_pool", {"kernel": 3, "stride": 2, "padding": 1}),
        ("avgpool2d", "avg_pool", {"kernel": 2}),
        ("avgpool2d_pad", "avg_pool", {"kernel": 3, "stride": 2, "padding": 1}),
        ("global_avg_pool", "avg_pool", {"kernel": 4}),
    ],
)
def test_pools_match_torch(case, name, attrs):
    _, t = fixture(case)
    out = run(name, t["__input__"], **attrs)
    assert_matches_torch(out.reshape(t["__output__"].shape), t["__output__"])


# ---------------------------------------------------------------------------
# shape rules

F32 = DType.F32
N, H, W, C = Dim("N"), Dim("H"), Dim("W"), Dim("C")


def test_conv_shape_symbolic_batch_and_same_padding():
    out = infer("conv", [tt(F32, "N", 3, 32, 32), tt(F32, 16, 3, 3, 3)], padding=1)
    assert out == tt(F32, "N", 16, 32, 32)
    out = infer("conv", [tt(F32, "N", "C", "H", "W"), tt(F32, 8, "C", 3, 3)], padding=1)
    assert out.shape == (N, Dim(8), H, W)


def test_conv_shape_symbolic_stride_is_a_floor_division():
    out = infer("conv", [tt(F32, "N", 3, "H", "W"), tt(F32, 16, 3, 3, 3)], stride=2, padding=1)
    assert out.shape[2] == (H + 2 - 3).floordiv(2) + 1
    assert out.shape[2] == (H + 1).floordiv(2)
    out = infer("conv", [tt(F32, 1, 2, "W"), tt(F32, 4, 2, 5)], stride=3, dilation=2)
    assert out.shape[2] == (W - 9).floordiv(3) + 1


@pytest.mark.parametrize(
    ("name", "kernel_or_w", "attrs"),
    [
        ("conv", (4, 3, 3, 3), {"stride": 2, "padding": [1, 2, 0, 1]}),
        ("conv", (4, 3, 2, 3), {"stride": [3, 1], "dilation": [2, 1]}),
        ("max_pool", None, {"kernel": 3, "stride": 2, "padding": 1, "dilation": 2}),
        ("avg_pool", None, {"kernel": [2, 3], "stride": [2, 1], "padding": [1, 0]}),
    ],
)
def test_symbolic_shape_agrees_with_evaluation(name, kernel_or_w, attrs):
    operands = [tt(F32, "N", 3, "H", "W")] + ([tt(F32, *kernel_or_w)] if kernel_or_w else [])
    out = infer(name, operands, **attrs)
    for h, w in [(9, 9), (10, 7), (13, 8)]:
        arrays = [np.zeros((2, 3, h, w), np.float32)]
        arrays += [np.zeros(kernel_or_w, np.float32)] if kernel_or_w else []
        (value,) = REGISTRY[name].evaluate(arrays, attrs_for(name, **attrs))
        env = {"N": 2, "H": h, "W": w}
        assert value.shape == tuple(d.evaluate(env) for d in out.shape)


def test_pool_shapes():
    assert infer("max_pool", [tt(F32, "N", 16, 32, 32)], kernel=2) == tt(F32, "N", 16, 16, 16)
    out = infer("avg_pool", [tt(F32, "N", 4, "L")], kernel=3, stride=1, padding=1)
    assert out.shape == (N, Dim(4), Dim("L"))
    assert infer("max_pool", [tt(DType.F64, 1, 1, 7, 5)], kernel=[3, 2]).shape == (1, 1, 2, 2)


def test_flops():
    x, w = tt(F32, 8, 16, 32, 32), tt(F32, 32, 16, 3, 3)
    attrs = attrs_for("conv", stride=2, padding=1)
    out = REGISTRY["conv"].infer([x, w], attrs)
    assert REGISTRY["conv"].flops([x, w], out, attrs) == 2 * 8 * 32 * 16 * 16 * 16 * 9
    xd, wd = tt(F32, "N", 6, 8, 8), tt(F32, 12, 1, 3, 3)  # depthwise: 1 input channel per output
    attrs = attrs_for("conv", groups=6, padding=1)
    out = REGISTRY["conv"].infer([xd, wd], attrs)
    assert REGISTRY["conv"].flops([xd, wd], out, attrs) == N * (2 * 12 * 64 * 9)
    xp = tt(F32, "N", 4, 8, 8)
    attrs = attrs_for("avg_pool", kernel=2)
    out = REGISTRY["avg_pool"].infer([xp], attrs)
    assert REGISTRY["avg_pool"].flops([xp], out, attrs) == N * (4 * 16 * 4)


X4 = tt(F32, "N", 6, 8, 8)
W4 = tt(F32, 4, 6, 3, 3)

CONV_ERRORS = [
    # (operands, attrs, code, arg, kwarg)
    ([tt(F32, 8, 8), W4], {}, "E0304", 0, None),
    ([tt(F32, 6, 8, 8), W4], {}, "E0304", 1, None),  # a 1-D input [N, C, L] with a 2-D weight
    ([tt(F32, 1, 6, 8, 8, 8), W4], {}, "E0304", 0, None),
    ([X4, tt(F32, 4, 6, 3)], {}, "E0304", 1, None),
    ([tt(DType.I32, "N", 6, 8, 8), tt(DType.I32, 4, 6, 3, 3)], {}, "E0202", 0, None),
    ([X4, tt(DType.F64, 4, 6, 3, 3)], {}, "E0201", 1, None),
    ([X4, tt(F32, 4, 5, 3, 3)], {}, "E0303", 1, None),
    ([X4, tt(F32, 4, 6, 3, 3)], {"groups": 2}, "E0303", 1, None),
    ([X4, tt(F32, 3, 3, 3, 3)], {"groups": 3}, "E0303", 1, None),
    ([X4, tt(F32, 5, 3, 3, 3)], {"groups": 2}, "E0306", 1, None),
    ([tt(F32, "N", "C", 8, 8), tt(F32, 4, "D", 3, 3)], {}, "E0303", 1, None),
    ([X4, W4], {"groups": 0}, "E0312", None, "groups"),
    ([X4, W4], {"stride": 0}, "E0312", None, "stride"),
    ([X4, W4], {"stride": [1, 2, 1]}, "E0312", None, "stride"),
    ([X4, W4], {"dilation": [1, 0]}, "E0312", None, "dilation"),
    ([X4, W4], {"padding": -1}, "E0312", None, "padding"),
    ([X4, W4], {"padding": [1, 1, 1]}, "E0312", None, "padding"),
    ([X4, W4], {"padding": 1.5}, "E0205", None, "padding"),
    ([X4, W4], {"stride": True}, "E0205", None, "stride"),
    ([X4, W4], {"stride": "2"}, "E0205", None, "stride"),
    ([X4, W4], {"stride": Dim("S")}, "E0312", None, "stride"),
    ([tt(F32, 1, 6, 2, 8), W4], {}, "E0312", 0, None),  # kernel 3 on height 2
    ([tt(F32, 1, 6, 4, 8), W4], {"dilation": 2}, "E0312", 0, None),  # extent 5 on 4
]


def assert_shape_error(name, operands, attrs, code, arg, kwarg):
    with pytest.raises(ShapeError) as err:
        infer(name, operands, **attrs)
    e = err.value
    assert (e.code, e.arg, e.kwarg) == (code, arg, kwarg), e.message
    assert e.message[0].islower() or not e.message[0].isalpha(), e.message
    assert not e.message.endswith("."), e.message


@pytest.mark.parametrize(("operands", "attrs", "code", "arg", "kwarg"), CONV_ERRORS)
def test_conv_shape_errors(operands, attrs, code, arg, kwarg):
    assert_shape_error("conv", operands, attrs, code, arg, kwarg)


def test_conv_channel_error_explains_groups():
    with pytest.raises(ShapeError) as err:
        infer("conv", [X4, tt(F32, 4, 6, 3, 3)], groups=2)
    assert err.value.message == (
        "`conv` input has 6 channels but the weight expects 12 (6 per group x 2 groups)"
    )
    assert err.value.help


def test_conv_geometry_error_names_the_sizes():
    with pytest.raises(ShapeError) as err:
        infer("conv", [tt(F32, 1, 6, 2, 8), W4], padding=[0, 1])
    assert err.value.message == (
        "window of size 3 does not fit in the padded input of size 2 on axis 2"
    )


P4 = tt(F32, "N", 3, 8, 8)

POOL_ERRORS = [
    ("max_pool", [tt(F32, 3, 8)], {"kernel": 2}, "E0304", 0, None),
    ("avg_pool", [tt(DType.I64, 1, 3, 8)], {"kernel": 2}, "E0202", 0, None),
    ("max_pool", [tt(DType.BOOL, 1, 3, 8)], {"kernel": 2}, "E0202", 0, None),
    ("max_pool", [P4], {"kernel": 0}, "E0312", None, "kernel"),
    ("max_pool", [P4], {"kernel": [2, 2, 2]}, "E0312", None, "kernel"),
    ("avg_pool", [P4], {"kernel": 2, "stride": 0}, "E0312", None, "stride"),
    ("max_pool", [P4], {"kernel": 3, "padding": 2}, "E0312", None, "padding"),
    ("avg_pool", [P4], {"kernel": 2, "padding": [0, 0, 0, 2]}, "E0312", None, "padding"),
    ("max_pool", [P4], {"kernel": 9}, "E0312", 0, None),
    ("max_pool", [P4], {"kernel": 3, "dilation": 4}, "E0312", 0, None),
    ("avg_pool", [P4], {"kernel": "3"}, "E0205", None, "kernel"),
    ("avg_pool", [P4], {"kernel": 2, "count_include_pad": 1}, "E0205", None, "count_include_pad"),
]


@pytest.mark.parametrize(("name", "operands", "attrs", "code", "arg", "kwarg"), POOL_ERRORS)
def test_pool_shape_errors(name, operands, attrs, code, arg, kwarg):
    assert_shape_error(name, operands, attrs, code, arg, kwarg)


@settings(max_examples=40, deadline=None)
@given(
    length=st.integers(1, 9),
    kernel=st.integers(1, 4),
    stride=st.integers(1, 3),
    dilation=st.integers(1, 3),
    pads=st.tuples(st.integers(0, 3), st.integers(0, 3)),
    groups=st.sampled_from([1, 2]),
    seed=st.integers(0, 2**16),
)
def test_conv1d_geometry_property(length, kernel, stride, dilation, pads, groups, seed):
    attrs = {"stride": stride, "dilation": dilation, "padding": list(pads), "groups": groups}
    x = random((1, 2, length), seed=seed)
    w = random((2, 2 // groups, kernel), seed=seed + 1)
    fits = length + sum(pads) >= dilation * (kernel - 1) + 1
    if not fits:
        with pytest.raises(ShapeError) as err:
            infer("conv", [tt(F32, 1, 2, length), tt(F32, *w.shape)], **attrs)
        assert err.value.code == "E0312"
        return
    symbolic = infer("conv", [tt(F32, "N", 2, "L"), tt(F32, *w.shape)], **attrs)
    out = run("conv", x, w, **attrs)
    assert out.shape[2] == symbolic.shape[2].evaluate({"L": length})
    assert_close(out, conv_loops(x, w, **attrs))


def test_conv_runs_a_resnet20_stack():
    # the 19 3x3 convolutions of a CIFAR ResNet-20 at batch 8 on 32x32 inputs (speed is in bench/)
    widths = [(3, 16, 1)] + [(16, 16, 1)] * 6 + [(16, 32, 2)] + [(32, 32, 1)] * 5
    widths += [(32, 64, 2)] + [(64, 64, 1)] * 5
    weights = [random((o, i, 3, 3), seed=s) for s, (i, o, _) in enumerate(widths)]
    h = random((8, 3, 32, 32), seed=99)
    for (_, _, stride), w in zip(widths, weights, strict=True):
        (h,) = REGISTRY["conv"].evaluate([h, w], attrs_for("conv", stride=stride, padding=1))
    assert h.shape == (8, 64, 8, 8)
    assert np.isfinite(h).all()
