"""Parameter initialisers: declared parameters + seed -> initial arrays (PyTorch's defaults).

An `InitSpec` is what a declaration says after `=` (`glorot_uniform`,
`normal(0.02)`, `torch_linear_bias(fan_in=64)`). Each entry of `INITIALIZERS`
takes the shape and the spec's arguments, checks them (`InitError`), and
returns a sampler that draws float64 values from a generator; `plan` adds the
dtype. Formulas follow `torch.nn.init`, so `kaiming_uniform` with its default
`a=sqrt(5)` is the default of PyTorch's Linear and Conv weights and
`torch_linear_bias(fan_in=...)` the default of their biases.

Determinism: each parameter draws from its own generator seeded by
(seed, sha256 of its path), so adding or renaming one parameter never changes
another's values, and the same seed always gives the same arrays.

`initialize(..., random_all=True)` (for `mdlc init --random`) ignores the
declared initialisers of float tensors so that no value is an identity (no
zero biases, no unit scales): paths ending in `running_var` get uniform(0.5,
1.5) (variances must stay positive); tensors of rank >= 2 get normal(0,
1/sqrt(fan_in)) so activations keep their scale; everything else (biases,
norm scales, `running_mean`) gets normal(0, 0.5). Integer and bool tensors
(`num_batches_tracked`, masks) keep their declared initialiser. A spec without
an initialiser is zeros.
"""

from __future__ import annotations

import hashlib
import inspect
import math
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .types import DType

if TYPE_CHECKING:
    from .weights import ParamSpec

Shape = tuple[int, ...]
Sampler = Callable[[np.random.Generator], np.ndarray]


@dataclass(frozen=True, slots=True)
class InitSpec:
    name: str
    args: tuple[float | str, ...] = ()
    kwargs: tuple[tuple[str, float | str], ...] = ()


class InitError(ValueError):
    """Arguments, dtype or shape that an initialiser cannot work with."""


class UnknownInitializer(KeyError):
    def __init__(self, name: str):
        super().__init__(name)
        self.name = name

    def __str__(self) -> str:
        return f"unknown initialiser `{self.name}`"


def fan_in_out(shape: Sequence[int]) -> tuple[int, int]:
    """PyTorch's `_calculate_fan_in_and_fan_out`: [out, in, *kernel] -> (fan_in, fan_out)."""
    if len(shape) < 2:
        raise ValueError(
            "fan in and fan out cannot be computed for a tensor with fewer than 2 dimensions"
        )
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


_LINEAR = ("linear", "identity", "sigmoid", "conv1d", "conv2d", "conv3d",
           "conv_transpose1d", "conv_transpose2d", "conv_transpose3d")  # fmt: skip
NONLINEARITIES = (*_LINEAR, "tanh", "relu", "leaky_relu", "selu")


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """PyTorch's `calculate_gain`."""
    match nonlinearity:
        case _ if nonlinearity in _LINEAR:
            return 1.0
        case "tanh":
            return 5.0 / 3.0
        case "relu":
            return math.sqrt(2.0)
        case "leaky_relu":
            slope = 0.01 if param is None else param
            return math.sqrt(2.0 / (1.0 + slope**2))
        case "selu":
            return 3.0 / 4.0
    raise InitError(f"unknown nonlinearity `{nonlinearity}`")


# --------------------------------------------------------------------------- argument checks


def _number(arg: str, value: object, finite: bool = True) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InitError(f"argument `{arg}` must be a number, not {value!r}")
    if finite and not math.isfinite(value):
        raise InitError(f"argument `{arg}` must be finite, not {value}")
    return float(value)


def _non_negative(arg: str, value: object) -> float:
    number = _number(arg, value)
    if number < 0:
        raise InitError(f"argument `{arg}` must not be negative, not {value}")
    return number


def _choice(arg: str, value: object, options: Sequence[str]) -> str:
    if value not in options:
        shown = ", ".join(f"`{o}`" for o in options)
        raise InitError(f"argument `{arg}` must be one of {shown}, not {value!r}")
    return str(value)


def _fans(shape: Shape) -> tuple[int, int]:
    try:
        return fan_in_out(shape)
    except ValueError:
        raise InitError(
            f"needs a weight of rank 2 or more ([out, in, *kernel]), not rank {len(shape)}"
        ) from None


# --------------------------------------------------------------------------- initialisers


def zeros(shape: Shape) -> Sampler:
    return lambda rng: np.zeros(shape)


def ones(shape: Shape) -> Sampler:
    return lambda rng: np.ones(shape)


def full(shape: Shape, value: float) -> Sampler:
    v = _number("value", value, finite=False)
    return lambda rng: np.full(shape, v)


def normal(shape: Shape, std: float = 1.0, mean: float = 0.0) -> Sampler:
    s, m = _non_negative("std", std), _number("mean", mean)
    return lambda rng: rng.normal(m, s, shape)


def uniform(shape: Shape, low: float = -1.0, high: float = 1.0) -> Sampler:
    lo, hi = _number("low", low), _number("high", high)
    if lo > hi:
        raise InitError(f"needs low <= high, not low={low}, high={high}")
    return lambda rng: rng.uniform(lo, hi, shape)


def _symmetric_uniform(shape: Shape, bound: float) -> Sampler:
    return lambda rng: rng.uniform(-bound, bound, shape)


def _scaled_normal(shape: Shape, std: float) -> Sampler:
    return lambda rng: rng.normal(0.0, std, shape)


def xavier_uniform(shape: Shape, gain: float = 1.0) -> Sampler:
    g = _non_negative("gain", gain)
    fan_in, fan_out = _fans(shape)
    fans = fan_in + fan_out
    return _symmetric_uniform(shape, g * math.sqrt(6.0 / fans) if fans else 0.0)


def xavier_normal(shape: Shape, gain: float = 1.0) -> Sampler:
    g = _non_negative("gain", gain)
    fan_in, fan_out = _fans(shape)
    fans = fan_in + fan_out
    return _scaled_normal(shape, g * math.sqrt(2.0 / fans) if fans else 0.0)


def _kaiming_std(shape: Shape, a: float, mode: str, nonlinearity: str) -> float:
    slope = _number("a", a)
    mode = _choice("mode", mode, ("fan_in", "fan_out"))
    nonlinearity = _choice("nonlinearity", nonlinearity, NONLINEARITIES)
    gain = calculate_gain(nonlinearity, slope)
    fan_in, fan_out = _fans(shape)
    fan = fan_in if mode == "fan_in" else fan_out
    return gain / math.sqrt(fan) if fan else 0.0


def kaiming_uniform(
    shape: Shape, a: float = math.sqrt(5.0), mode: str = "fan_in", nonlinearity: str = "leaky_relu"
) -> Sampler:
    std = _kaiming_std(shape, a, mode, nonlinearity)
    return _symmetric_uniform(shape, math.sqrt(3.0) * std)


def kaiming_normal(
    shape: Shape, a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "relu"
) -> Sampler:
    return _scaled_normal(shape, _kaiming_std(shape, a, mode, nonlinearity))


def torch_linear_bias(shape: Shape, fan_in: float) -> Sampler:
    """uniform(-1/sqrt(fan_in), 1/sqrt(fan_in)): the bias default of Linear and Conv."""
    fan = _non_negative("fan_in", fan_in)
    if fan != int(fan):
        raise InitError(f"argument `fan_in` must be an integer, not {fan_in}")
    return _symmetric_uniform(shape, 1.0 / math.sqrt(fan) if fan > 0 else 0.0)


def trunc_normal(
    shape: Shape, std: float = 1.0, mean: float = 0.0, a: float = -2.0, b: float = 2.0
) -> Sampler:
    """normal(mean, std) truncated to [a, b] (absolute bounds, as `torch.nn.init.trunc_normal_`)."""
    s = _non_negative("std", std)
    m = _number("mean", mean)
    lo, hi = _number("a", a), _number("b", b)
    if lo >= hi:
        raise InitError(f"needs a < b, not a={a}, b={b}")
    if s == 0:
        return lambda rng: np.full(shape, min(max(m, lo), hi))
    alpha, beta = (lo - m) / s, (hi - m) / s
    # Draw from the lower tail side, where the normal CDF keeps its precision.
    flip = alpha > -beta
    if flip:
        alpha, beta = -beta, -alpha
    p_lo, p_hi = _norm_cdf(alpha), _norm_cdf(beta)

    def draw(rng: np.random.Generator) -> np.ndarray:
        z = _norm_ppf(rng.uniform(p_lo, p_hi, shape))
        z = -z if flip else z
        return np.clip(m + s * z, lo, hi)

    return draw


def _norm_cdf(x: float) -> float:
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


# Acklam's rational approximation of the standard normal quantile (relative error < 1.2e-9).
_PPF_A = (-39.69683028665376, 220.9460984245205, -275.9285104469687,
          138.3577518672690, -30.66479806614716, 2.506628277459239)  # fmt: skip
_PPF_B = (-54.47609879822406, 161.5858368580409, -155.6989798598866,
          66.80131188771972, -13.28068155288572, 1.0)  # fmt: skip
_PPF_C = (-0.007784894002430293, -0.3223964580411365, -2.400758277161838,
          -2.549732539343734, 4.374664141464968, 2.938163982698783)  # fmt: skip
_PPF_D = (0.007784695709041462, 0.3224671290700398, 2.445134137142996,
          3.754408661907416, 1.0)  # fmt: skip


def _norm_ppf(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-300, 1.0 - 1e-16)
    tail = np.minimum(p, 1.0 - p)
    q_tail = np.sqrt(-2.0 * np.log(np.maximum(tail, 1e-300)))
    x_tail = np.polyval(_PPF_C, q_tail) / np.polyval(_PPF_D, q_tail)
    x_tail = np.where(p < 0.5, x_tail, -x_tail)
    q = p - 0.5
    r = q * q
    x_mid = np.polyval(_PPF_A, r) * q / np.polyval(_PPF_B, r)
    return np.where(tail < 0.02425, x_tail, x_mid)


INITIALIZERS: dict[str, Callable[..., Sampler]] = {
    "zeros": zeros,
    "ones": ones,
    "full": full,
    "normal": normal,
    "uniform": uniform,
    "xavier_uniform": xavier_uniform,
    "glorot_uniform": xavier_uniform,
    "xavier_normal": xavier_normal,
    "glorot_normal": xavier_normal,
    "kaiming_uniform": kaiming_uniform,
    "kaiming_normal": kaiming_normal,
    "torch_linear_bias": torch_linear_bias,
    "torch_default_bias": torch_linear_bias,
    "trunc_normal": trunc_normal,
}
INITIALIZER_NAMES: frozenset[str] = frozenset(INITIALIZERS)
# Constant initialisers also fill integer and bool tensors; the rest need floats.
_EXACT = frozenset({"zeros", "ones", "full"})
_SIGNATURES = {name: inspect.signature(fn) for name, fn in INITIALIZERS.items()}
ZEROS = InitSpec("zeros")


def plan(
    init: InitSpec, shape: Sequence[int], dtype: DType
) -> Callable[[np.random.Generator], np.ndarray]:
    """Check `init` for a tensor of `shape` and `dtype`; return its sampler.

    Raises `UnknownInitializer` (a KeyError) for an unknown name and `InitError`
    (a ValueError) for bad arguments, dtype or shape.
    """
    if init.name not in INITIALIZERS:
        raise UnknownInitializer(init.name)
    shape = tuple(int(d) for d in shape)
    if not dtype.is_float and init.name not in _EXACT:
        raise InitError(f"`{init.name}` needs a float dtype, not {dtype}")
    kwargs = dict(init.kwargs)
    if len(kwargs) != len(init.kwargs):
        raise InitError(f"`{init.name}` got the same keyword argument twice")
    try:
        bound = _SIGNATURES[init.name].bind(shape, *init.args, **kwargs)
    except TypeError as e:
        raise InitError(f"`{init.name}`: {e}") from None
    try:
        if init.name == "full" and not dtype.is_float:
            _check_exact_fill(bound.arguments["value"], dtype)
        draw = INITIALIZERS[init.name](*bound.args, **bound.kwargs)
    except InitError as e:
        raise InitError(f"`{init.name}` {e}") from None
    np_dtype = dtype.numpy

    def sample(rng: np.random.Generator) -> np.ndarray:
        values = np.broadcast_to(np.asarray(draw(rng)), shape)
        return values.astype(np_dtype, order="C")

    return sample


def _check_exact_fill(value: object, dtype: DType) -> None:
    number = _number("value", value)
    if number != int(number):
        raise InitError(f"cannot fill an integer tensor ({dtype}) with {value}")
    if dtype is DType.BOOL and number not in (0, 1):
        raise InitError(f"cannot fill a bool tensor with {value}: use 0 or 1")
    if dtype is not DType.BOOL:
        info = np.iinfo(dtype.numpy)
        if not info.min <= number <= info.max:
            raise InitError(f"value {value} does not fit in {dtype}")


def validate_init(init: InitSpec, shape: Sequence[int], dtype: DType) -> None:
    """Raise as `plan` would, drawing nothing (for the checker's diagnostics)."""
    plan(init, shape, dtype)


def param_rng(seed: int, path: str) -> np.random.Generator:
    """The generator of one parameter: a function of the seed and the path only."""
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"the seed must be a non-negative integer, not {seed!r}")
    words = struct.unpack("<8I", hashlib.sha256(path.encode("utf-8", "surrogatepass")).digest())
    return np.random.default_rng(np.random.SeedSequence([seed, *words]))


def _random_plan(spec: ParamSpec) -> Callable[[np.random.Generator], np.ndarray]:
    if not spec.dtype.is_float:
        return plan(spec.init or ZEROS, spec.shape, spec.dtype)
    if spec.path.endswith("running_var"):
        return plan(InitSpec("uniform", (0.5, 1.5)), spec.shape, spec.dtype)
    if len(spec.shape) >= 2:
        fan_in = max(fan_in_out(spec.shape)[0], 1)
        return plan(InitSpec("normal", (1.0 / math.sqrt(fan_in),)), spec.shape, spec.dtype)
    return plan(InitSpec("normal", (0.5,)), spec.shape, spec.dtype)


def initialize(
    specs: Sequence[ParamSpec], seed: int, random_all: bool = False
) -> dict[str, np.ndarray]:
    """Initial arrays for `specs`, keyed by path (see the module docstring for `random_all`)."""
    out: dict[str, np.ndarray] = {}
    for spec in specs:
        sampler = (
            _random_plan(spec) if random_all else plan(spec.init or ZEROS, spec.shape, spec.dtype)
        )
        out[spec.path] = sampler(param_rng(seed, spec.path))
    return out
