"""Initialisers: PyTorch's fans and gains, distribution statistics on large tensors,
argument checks, determinism per (seed, path), and `random_all`."""

from __future__ import annotations

import math

import ml_dtypes
import numpy as np
import pytest

from mdl.initializers import (
    INITIALIZER_NAMES,
    INITIALIZERS,
    InitError,
    InitSpec,
    calculate_gain,
    fan_in_out,
    initialize,
    param_rng,
    plan,
    validate_init,
)
from mdl.types import DType
from mdl.weights import ParamSpec, bind_weights, read_weights, write_safetensors

F32 = DType.F32


def draw(name: str, shape, *args, dtype=F32, seed: int = 0, **kwargs) -> np.ndarray:
    init = InitSpec(name, tuple(args), tuple(kwargs.items()))
    return plan(init, shape, dtype)(np.random.default_rng(seed)).astype(np.float64)


def test_fans_are_computed_like_pytorch():
    assert fan_in_out((32, 64)) == (64, 32)  # Linear(64 -> 32): weight [out, in]
    assert fan_in_out((16, 3, 5, 7)) == (3 * 35, 16 * 35)  # Conv2d(3 -> 16, 5x7)
    assert fan_in_out((8, 4, 3)) == (12, 24)  # Conv1d
    assert fan_in_out((8, 0, 3)) == (0, 24)
    for shape in ((), (5,)):
        with pytest.raises(ValueError):
            fan_in_out(shape)


def test_gains_match_pytorch():
    assert calculate_gain("linear") == 1.0 and calculate_gain("conv2d") == 1.0
    assert calculate_gain("sigmoid") == 1.0
    assert calculate_gain("tanh") == pytest.approx(5 / 3)
    assert calculate_gain("relu") == pytest.approx(math.sqrt(2))
    assert calculate_gain("leaky_relu") == pytest.approx(math.sqrt(2 / (1 + 0.01**2)))
    assert calculate_gain("leaky_relu", math.sqrt(5)) == pytest.approx(math.sqrt(1 / 3))
    assert calculate_gain("selu") == pytest.approx(0.75)
    with pytest.raises(InitError):
        calculate_gain("swish")


def assert_uniform(x: np.ndarray, low: float, high: float) -> None:
    assert x.min() >= low and x.max() <= high
    width = high - low
    assert x.min() < low + 0.01 * width and x.max() > high - 0.01 * width
    assert x.mean() == pytest.approx((low + high) / 2, abs=0.01 * width)
    assert x.std() == pytest.approx(width / math.sqrt(12), rel=0.02)


def assert_normal(x: np.ndarray, mean: float, std: float) -> None:
    assert x.mean() == pytest.approx(mean, abs=0.02 * std)
    assert x.std() == pytest.approx(std, rel=0.02)
    assert np.mean(np.abs(x - mean) < std) == pytest.approx(0.6827, abs=0.01)


def test_pytorch_linear_defaults():
    # nn.Linear(256, 128): weight kaiming_uniform(a=sqrt(5)) -> U(-1/sqrt(256), 1/sqrt(256))
    weight = draw("kaiming_uniform", (128, 256))
    assert_uniform(weight, -1 / 16, 1 / 16)
    bias = draw("torch_linear_bias", (100_000,), fan_in=256)
    assert_uniform(bias, -1 / 16, 1 / 16)
    assert draw("torch_default_bias", (4,), fan_in=0).tolist() == [0.0] * 4


def test_pytorch_conv_default():
    weight = draw("kaiming_uniform", (64, 32, 3, 3))  # fan_in = 288
    bound = 1 / math.sqrt(288)
    assert_uniform(weight, -bound, bound)


def test_kaiming_normal_modes():
    assert_normal(draw("kaiming_normal", (400, 500)), 0.0, math.sqrt(2 / 500))
    assert_normal(draw("kaiming_normal", (400, 500), mode="fan_out"), 0.0, math.sqrt(2 / 400))
    tanh = draw("kaiming_normal", (400, 500), nonlinearity="tanh")
    assert_normal(tanh, 0.0, (5 / 3) / math.sqrt(500))


def test_kaiming_uniform_relu_bound():
    x = draw("kaiming_uniform", (300, 600), a=0.0, nonlinearity="relu")
    bound = math.sqrt(2) * math.sqrt(3 / 600)
    assert_uniform(x, -bound, bound)


@pytest.mark.parametrize("name", ["xavier_uniform", "glorot_uniform"])
def test_xavier_uniform(name):
    bound = math.sqrt(6 / (300 + 500))
    assert_uniform(draw(name, (300, 500)), -bound, bound)
    assert_uniform(draw(name, (300, 500), 2.0), -2 * bound, 2 * bound)


@pytest.mark.parametrize("name", ["xavier_normal", "glorot_normal"])
def test_xavier_normal(name):
    assert_normal(draw(name, (16, 8, 40, 40)), 0.0, math.sqrt(2 / ((8 + 16) * 1600)))


def test_constant_and_simple_initialisers():
    assert draw("zeros", (3, 2)).tolist() == [[0.0] * 2] * 3
    assert draw("ones", (2,)).tolist() == [1.0, 1.0]
    assert draw("full", (2,), -0.25).tolist() == [-0.25, -0.25]
    assert_normal(draw("normal", (200_000,)), 0.0, 1.0)
    assert_normal(draw("normal", (200_000,), 0.02), 0.0, 0.02)
    assert_normal(draw("normal", (200_000,), std=3.0, mean=5.0), 5.0, 3.0)
    assert_uniform(draw("uniform", (200_000,)), -1.0, 1.0)
    assert_uniform(draw("uniform", (200_000,), 2.0, 3.0), 2.0, 3.0)


def truncated_moments(alpha: float, beta: float) -> tuple[float, float]:
    """Mean and std of a standard normal truncated to [alpha, beta]."""

    def pdf(x: float) -> float:
        return math.exp(-x * x / 2) / math.sqrt(2 * math.pi)

    def cdf(x: float) -> float:
        return 0.5 * math.erfc(-x / math.sqrt(2))

    z = cdf(beta) - cdf(alpha)
    mean = (pdf(alpha) - pdf(beta)) / z
    var = 1 + (alpha * pdf(alpha) - beta * pdf(beta)) / z - mean**2
    return mean, math.sqrt(var)


@pytest.mark.parametrize(
    ("std", "mean", "a", "b"),
    [
        (1.0, 0.0, -2.0, 2.0),
        (0.02, 0.0, -2.0, 2.0),
        (1.0, 0.0, -1.0, 0.5),
        (1.0, 0.0, 3.0, 4.0),
        (2.0, 1.0, -9.0, -7.0),
        (0.5, 0.0, -0.1, 0.1),
    ],  # fmt: skip
)
def test_trunc_normal_matches_the_truncated_distribution(std, mean, a, b):
    x = draw("trunc_normal", (200_000,), std, mean, a, b)
    assert x.min() >= a and x.max() <= b
    m, s = truncated_moments((a - mean) / std, (b - mean) / std)
    assert x.mean() == pytest.approx(mean + std * m, abs=0.02 * std * s + 1e-9)
    assert x.std() == pytest.approx(std * s, rel=0.03)


def test_dtypes_are_cast():
    spec = InitSpec("normal", (0.1,))
    for dtype in (DType.F16, DType.BF16, DType.F32, DType.F64):
        x = plan(spec, (3, 4), dtype)(np.random.default_rng(0))
        assert x.dtype == dtype.numpy and x.shape == (3, 4) and x.flags.c_contiguous
    assert plan(spec, (2,), DType.BF16)(np.random.default_rng(0)).dtype == ml_dtypes.bfloat16
    assert plan(InitSpec("zeros"), (), DType.I64)(None).tolist() == 0
    assert plan(InitSpec("full", (3,)), (2,), DType.I32)(None).tolist() == [3, 3]
    assert plan(InitSpec("ones"), (2,), DType.BOOL)(None).tolist() == [True, True]


@pytest.mark.parametrize(
    ("init", "shape", "dtype"),
    [
        (InitSpec("normal", (-1.0,)), (2,), F32),
        (InitSpec("normal", (float("nan"),)), (2,), F32),
        (InitSpec("normal", ("wide",)), (2,), F32),
        (InitSpec("normal", (True,)), (2,), F32),
        (InitSpec("normal", (1.0, 0.0, 3.0)), (2,), F32),
        (InitSpec("normal", (), (("sigma", 1.0),)), (2,), F32),
        (InitSpec("normal", (1.0,), (("std", 1.0),)), (2,), F32),
        (InitSpec("normal", (), (("std", 1.0), ("std", 2.0))), (2,), F32),
        (InitSpec("uniform", (1.0, -1.0)), (2,), F32),
        (InitSpec("full"), (2,), F32),
        (InitSpec("glorot_uniform"), (10,), F32),
        (InitSpec("kaiming_normal", (), (("mode", "fan_both"),)), (4, 4), F32),
        (InitSpec("kaiming_normal", (), (("nonlinearity", "swish"),)), (4, 4), F32),
        (InitSpec("torch_linear_bias"), (4,), F32),
        (InitSpec("torch_linear_bias", (), (("fan_in", 2.5),)), (4,), F32),
        (InitSpec("trunc_normal", (1.0, 0.0, 2.0, -2.0)), (4,), F32),
        (InitSpec("normal"), (2,), DType.I64),
        (InitSpec("full", (2.5,)), (2,), DType.I64),
        (InitSpec("full", (2.0,)), (2,), DType.BOOL),
        (InitSpec("full", (2.0**40,)), (2,), DType.I32),
    ],
)
def test_bad_arguments_are_init_errors(init, shape, dtype):
    with pytest.raises(InitError) as err:
        validate_init(init, shape, dtype)
    assert f"`{init.name}" in str(err.value)


def test_unknown_initialiser_is_a_key_error():
    assert {"zeros", "glorot_uniform", "kaiming_uniform", "trunc_normal"} <= INITIALIZER_NAMES
    assert INITIALIZER_NAMES == frozenset(INITIALIZERS)
    with pytest.raises(KeyError) as err:
        validate_init(InitSpec("he_normal"), (2, 2), F32)
    assert str(err.value) == "unknown initialiser `he_normal`"
    with pytest.raises(KeyError):
        initialize([ParamSpec("w", F32, (2,), init=InitSpec("he_normal"))], seed=0)


# --------------------------------------------------------------------------- initialize


def model_specs() -> list[ParamSpec]:
    return [
        ParamSpec("fc1.weight", F32, (32, 64), init=InitSpec("kaiming_uniform")),
        ParamSpec(
            "fc1.bias", F32, (32,), init=InitSpec("torch_linear_bias", (), (("fan_in", 64),))
        ),
        ParamSpec("ln.weight", F32, (32,), init=InitSpec("ones")),
        ParamSpec("ln.bias", F32, (32,), init=InitSpec("zeros")),
        ParamSpec("bn.running_mean", F32, (32,), is_buffer=True, init=InitSpec("zeros")),
        ParamSpec("bn.running_var", F32, (32,), is_buffer=True, init=InitSpec("ones")),
        ParamSpec("bn.num_batches_tracked", DType.I64, (), is_buffer=True, init=InitSpec("zeros")),
        ParamSpec("emb.weight", DType.BF16, (50, 16), init=InitSpec("normal")),
        ParamSpec("no_init", F32, (3,)),
    ]


def test_initialize_gives_declared_dtypes_and_shapes():
    values = initialize(model_specs(), seed=1)
    assert list(values) == [s.path for s in model_specs()]
    for spec in model_specs():
        assert values[spec.path].dtype == spec.dtype.numpy
        assert values[spec.path].shape == spec.shape
        assert values[spec.path].flags.c_contiguous
    assert np.all(values["ln.weight"] == 1) and np.all(values["ln.bias"] == 0)
    assert np.all(values["no_init"] == 0)  # no initialiser means zeros
    assert np.abs(values["fc1.weight"]).max() <= 1 / 8


def test_initialize_is_deterministic_per_seed_and_path():
    a = initialize(model_specs(), seed=7)
    b = initialize(model_specs(), seed=7)
    c = initialize(model_specs(), seed=8)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
    assert not np.array_equal(a["fc1.weight"], c["fc1.weight"])


def test_adding_or_reordering_parameters_changes_no_other_values():
    base = initialize(model_specs(), seed=3)
    extra = ParamSpec("fc0.weight", F32, (32, 64), init=InitSpec("kaiming_uniform"))
    grown = initialize([extra, *reversed(model_specs())], seed=3)
    for key, value in base.items():
        np.testing.assert_array_equal(grown[key], value)
    # same declaration under another path draws other values
    assert not np.array_equal(grown["fc0.weight"], grown["fc1.weight"])


def test_param_rng_depends_only_on_seed_and_path():
    assert param_rng(5, "a.b").random() == param_rng(5, "a.b").random()
    assert param_rng(5, "a.b").random() != param_rng(5, "a.c").random()
    assert param_rng(2**70, "a").random() == param_rng(2**70, "a").random()
    for bad in (-1, 1.5, True):
        with pytest.raises(ValueError):
            param_rng(bad, "a")


def test_random_all_defeats_identities_and_keeps_variances_positive():
    values = initialize(model_specs(), seed=0, random_all=True)
    assert not np.any(values["ln.weight"] == 1) and not np.any(values["ln.bias"] == 0)
    assert values["bn.running_mean"].std() > 0.1
    var = values["bn.running_var"]
    assert var.min() >= 0.5 and var.max() <= 1.5 and len(np.unique(var)) == var.size
    assert values["bn.num_batches_tracked"].dtype == np.int64
    assert int(values["bn.num_batches_tracked"]) == 0  # integer buffers keep their init
    # rank >= 2: normal(0, 1/sqrt(fan_in)); rank < 2: normal(0, 0.5)
    assert values["fc1.weight"].std() == pytest.approx(1 / 8, rel=0.1)
    assert values["fc1.bias"].std() == pytest.approx(0.5, rel=0.35)
    again = initialize(model_specs(), seed=0, random_all=True)
    assert all(np.array_equal(values[k], again[k]) for k in values)


def test_init_write_read_bind_round_trip(tmp_path):
    # what `mdlc init` then `mdlc run` do
    values = initialize(model_specs(), seed=0)
    path = tmp_path / "model.safetensors"
    write_safetensors(path, values)
    bound, diags = bind_weights(model_specs(), read_weights(path), str(path))
    assert diags == []
    for key, value in values.items():
        np.testing.assert_array_equal(bound[key], value)
    first = path.read_bytes()
    write_safetensors(path, initialize(model_specs(), seed=0))
    assert path.read_bytes() == first
