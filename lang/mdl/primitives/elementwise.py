"""Element-wise primitives: operand types -> broadcast result type; numpy arrays -> arrays.

Unary math, binary arithmetic and comparisons with numpy broadcasting, `where`
and `cast`, plus the dtype and broadcasting checks the other core primitive
modules (reduce, linalg, layout) share.

Numerics of the reference: f32 and f64 compute in their own dtype with numpy;
f16 and bf16 are storage types, so they compute in f32 and round once to the
result. Integer arithmetic wraps in two's complement. Floating-point faults
give IEEE results (inf, nan), never errors or warnings.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from ..dims import Dim
from ..shapes import BroadcastError, broadcast_shapes, num_elements, shape_str
from ..types import DType, TensorType
from .bind import fit_number
from .registry import Param, Primitive, ShapeError, register

FLOAT = frozenset(d for d in DType if d.is_float)
INT = frozenset(d for d in DType if d.is_int)
NUMERIC = FLOAT | INT
BOOL = frozenset({DType.BOOL})
ANY = frozenset(DType)

_WANTED = {FLOAT: "a float", INT: "an integer", NUMERIC: "an int or float", BOOL: "a bool"}

# Operator spelling of binary primitives, for messages and labels.
SYMBOLS = {
    "add": "+", "sub": "-", "mul": "*", "div": "/", "mod": "%", "pow": "**", "matmul": "@",
    "eq": "==", "ne": "!=", "lt": "<", "le": "<=", "gt": ">", "ge": ">=",
}  # fmt: skip


def op_text(op: str) -> str:
    """How a message names an op: its operator where it has one."""
    return f"`{SYMBOLS[op]}`" if op in SYMBOLS else f"`{op}`"


def call_text(op: str, operands: list[TensorType]) -> str:
    """`f32[B, 64] + f32[64]` or `maximum(f32[B], f32[])`, for labels."""
    if op in SYMBOLS and len(operands) == 2:
        return f"{operands[0]} {SYMBOLS[op]} {operands[1]}"
    return f"{op}({', '.join(str(t) for t in operands)})"


# ---------------------------------------------------------------------------
# Checks shared by the core primitives


def require_dtype(op: str, t: TensorType, allowed: frozenset[DType], arg: int | None) -> None:
    """E0202 unless `t`'s dtype is in `allowed`, with the conversion that would fix it."""
    if t.dtype in allowed:
        return
    wanted = _WANTED.get(allowed, "a " + " or ".join(sorted(str(d) for d in allowed)))
    if allowed <= BOOL:
        fix = "compare to get a bool, for example `x != 0`"
    elif DType.I64 in allowed and not t.dtype.is_float:
        fix = "convert it with `cast(x, i64)`"
    else:
        fix = "convert it with `cast(x, f32)`"
    raise ShapeError(
        "E0202",
        f"{op_text(op)} expects {wanted} tensor, found `{t.dtype}`",
        arg=arg,
        label=f"{t}",
        help=fix,
    )


def same_dtype(op: str, operands: list[TensorType], args: tuple[int, ...]) -> DType:
    """The common dtype of operands at `args`; E0201 naming the conversion otherwise."""
    first = operands[args[0]]
    for i in args[1:]:
        other = operands[i]
        if other.dtype == first.dtype:
            continue
        # Point at the operand to convert: the non-float one when exactly one is float.
        convert, target = i, first.dtype
        if other.dtype.is_float and not first.dtype.is_float:
            convert, target = args[0], other.dtype
        raise ShapeError(
            "E0201",
            f"mismatched dtypes for {op_text(op)}: `{first.dtype}` and `{other.dtype}`",
            arg=convert,
            label=call_text(op, [operands[j] for j in args]),
            help=f"convert with `cast(x, {target})`",
        )
    return first.dtype


def broadcast(op: str, operands: list[TensorType]) -> tuple[Dim, ...]:
    """numpy broadcasting of the operands' shapes; E0301 at the operand that conflicts."""
    try:
        return broadcast_shapes(*(t.shape for t in operands))
    except BroadcastError as e:
        culprit = next(
            (i for i, t in enumerate(operands) if t.rank >= -e.axis and t.shape[e.axis] == e.right),
            None,
        )
        raise ShapeError(
            "E0301",
            f"shapes cannot be broadcast together in {op_text(op)}",
            arg=culprit,
            label=f"{call_text(op, operands)}: {e.left} != {e.right}",
            notes=(f"{e.message}, counting axes from the end",),
        ) from None


def known_int(op: str, param: str, value: Any) -> int:
    """An int attribute (an int, or a Dim with a known value) -> int; E0205 otherwise."""
    if isinstance(value, Dim) and value.is_const:
        return value.value
    if isinstance(value, int | np.integer) and not isinstance(value, bool):
        return int(value)
    what = "the symbolic dimension" if isinstance(value, Dim) else "the value"
    raise ShapeError(
        "E0205",
        f"`{param}` of `{op}` must be a known integer, found {what} `{value}`",
        kwarg=param,
        label="expected an integer",
    )


def positive_dims(op: str, param: str, dims: Any) -> tuple[Dim, ...]:
    """Dims of a requested shape; E0313 for a dim that is known to be zero or negative."""
    out = tuple(Dim.of(d) for d in dims)
    for d in out:
        if d.is_const and d.value <= 0:
            raise ShapeError(
                "E0313",
                f"`{op}` asks for a dimension of size {d} in {shape_str(out)}",
                kwarg=param,
                label=f"dimension {d}",
                notes=("every dimension is at least 1",),
            )
    return out


def output_elements(
    operands: list[TensorType], outputs: tuple[TensorType, ...], attrs: dict[str, Any]
) -> Dim:
    """Cost of an element-wise op: one operation per output element."""
    return num_elements(outputs[0].shape)


def no_flops(
    operands: list[TensorType], outputs: tuple[TensorType, ...], attrs: dict[str, Any]
) -> Dim:
    """Cost of a data-movement op."""
    return Dim.of(0)


def compute_dtype(dtype: np.dtype) -> np.dtype:
    """The dtype the reference computes in: f32 for the storage floats f16 and bf16."""
    if dtype.kind in "iub" or dtype in (np.float32, np.float64):
        return dtype
    return np.dtype(np.float32)


def as_result(value: Any, dtype: DType) -> np.ndarray:
    """A numpy result (possibly a numpy scalar) -> an array of exactly `dtype`."""
    return np.asarray(value).astype(dtype.numpy, copy=False)


# ---------------------------------------------------------------------------
# Unary


def _sigmoid(x: np.ndarray) -> np.ndarray:
    # exp of a non-positive number never overflows
    z = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + z), z / (1 + z))


# math.erf is correctly rounded to f64 on every libm we care about; scipy is not a dependency.
_erf_f64 = np.vectorize(math.erf, otypes=[np.float64])


def _erf(x: np.ndarray) -> np.ndarray:
    return _erf_f64(x.astype(np.float64))


_UNARY: dict[str, tuple[frozenset[DType], Callable[[np.ndarray], Any], str]] = {
    "exp": (FLOAT, np.exp, "e to the power of x"),
    "log": (FLOAT, np.log, "natural logarithm; log(0) = -inf, log of a negative is nan"),
    "sqrt": (FLOAT, np.sqrt, "square root; nan for negatives"),
    "rsqrt": (FLOAT, lambda x: 1 / np.sqrt(x), "1 / sqrt(x); rsqrt(0) = inf"),
    "tanh": (FLOAT, np.tanh, "hyperbolic tangent"),
    "erf": (FLOAT, _erf, "the error function, computed in f64 and rounded"),
    "sigmoid": (FLOAT, _sigmoid, "1 / (1 + exp(-x)), computed without overflow"),
    "sin": (FLOAT, np.sin, "sine (radians)"),
    "cos": (FLOAT, np.cos, "cosine (radians)"),
    "floor": (FLOAT, np.floor, "largest integral value not above x, as a float"),
    "ceil": (FLOAT, np.ceil, "smallest integral value not below x, as a float"),
    "abs": (NUMERIC, np.abs, "absolute value; for ints abs(min) wraps to min"),
    "neg": (NUMERIC, np.negative, "-x; for ints -min wraps to min"),
    "logical_not": (BOOL, np.logical_not, "boolean not"),
    "isnan": (FLOAT, np.isnan, "true where x is nan"),
}


def _unary(name: str, allowed: frozenset[DType], fn: Callable, doc: str) -> Primitive:
    def infer(operands: list[TensorType], attrs: dict[str, Any]) -> tuple[TensorType, ...]:
        (x,) = operands
        require_dtype(name, x, allowed, 0)
        dtype = DType.BOOL if name == "isnan" else x.dtype
        return (TensorType(dtype, x.shape),)

    def evaluate(arrays: list[np.ndarray], attrs: dict[str, Any]) -> tuple[np.ndarray, ...]:
        (x,) = arrays
        source = DType.from_numpy(x.dtype)
        result = DType.BOOL if name == "isnan" else source
        with np.errstate(all="ignore"):
            return (as_result(fn(x.astype(compute_dtype(x.dtype), copy=False)), result),)

    return Primitive(
        name=name,
        params=(Param("x", "tensor"),),
        infer=infer,
        evaluate=evaluate,
        doc=doc,
        elementwise=True,
        flops=output_elements,
    )


for _name, (_allowed, _fn, _doc) in _UNARY.items():
    register(_unary(_name, _allowed, _fn, _doc))


# ---------------------------------------------------------------------------
# Binary


def _int_pow(base: np.ndarray, exponent: np.ndarray) -> np.ndarray:
    """Integer power, total: a negative exponent truncates 1 / base**-e toward zero
    (1 for base 1, +-1 for base -1, 0 otherwise, including base 0)."""
    negative = exponent < 0
    result = np.power(base, np.where(negative, 0, exponent))
    odd = (exponent % 2) != 0
    reciprocal = np.where(base == 1, 1, np.where(base == -1, np.where(odd, -1, 1), 0))
    return np.where(negative, reciprocal, result)


def _pow(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if a.dtype.kind == "i":
        return _int_pow(a, b)
    # C's pow for every element: given a scalar or broadcast exponent of 0.5 (or 2), numpy
    # takes sqrt (or a square) instead, which differs for -inf and -0.0
    a, b = (np.array(x) for x in np.broadcast_arrays(a, b))
    return np.power(a, b)


_BINARY: dict[str, tuple[frozenset[DType], Callable, bool, str]] = {
    # name: (operand dtypes, numpy function, result is bool, doc)
    "add": (NUMERIC, np.add, False, "a + b"),
    "sub": (NUMERIC, np.subtract, False, "a - b"),
    "mul": (NUMERIC, np.multiply, False, "a * b"),
    "div": (FLOAT, np.divide, False, "a / b for floats (IEEE: x / 0 is +-inf or nan)"),
    "floordiv": (
        NUMERIC,
        np.floor_divide,
        False,
        "a // b rounded toward -inf, as numpy and Python; integer x // 0 is 0",
    ),
    "mod": (
        NUMERIC,
        np.mod,
        False,
        "a % b with the sign of b, as numpy and Python; integer x % 0 is 0",
    ),
    "pow": (
        NUMERIC,
        _pow,
        False,
        "a ** b; for ints a negative exponent truncates toward zero (2 ** -1 = 0)",
    ),
    "maximum": (NUMERIC, np.maximum, False, "element-wise larger of a and b; nan propagates"),
    "minimum": (NUMERIC, np.minimum, False, "element-wise smaller of a and b; nan propagates"),
    "eq": (ANY, np.equal, True, "a == b (nan is unequal to everything)"),
    "ne": (ANY, np.not_equal, True, "a != b"),
    "lt": (NUMERIC, np.less, True, "a < b"),
    "le": (NUMERIC, np.less_equal, True, "a <= b"),
    "gt": (NUMERIC, np.greater, True, "a > b"),
    "ge": (NUMERIC, np.greater_equal, True, "a >= b"),
    "logical_and": (BOOL, np.logical_and, True, "boolean and"),
    "logical_or": (BOOL, np.logical_or, True, "boolean or"),
}


def _binary(name: str, allowed: frozenset[DType], fn: Callable, to_bool: bool, doc: str):
    def infer(operands: list[TensorType], attrs: dict[str, Any]) -> tuple[TensorType, ...]:
        dtype = same_dtype(name, operands, (0, 1))
        require_dtype(name, operands[0], allowed, 0)
        shape = broadcast(name, operands)
        return (TensorType(DType.BOOL if to_bool else dtype, shape),)

    def evaluate(arrays: list[np.ndarray], attrs: dict[str, Any]) -> tuple[np.ndarray, ...]:
        a, b = arrays
        source = DType.from_numpy(a.dtype)
        compute = compute_dtype(a.dtype)
        with np.errstate(all="ignore"):
            value = fn(a.astype(compute, copy=False), b.astype(compute, copy=False))
        return (as_result(value, DType.BOOL if to_bool else source),)

    return Primitive(
        name=name,
        params=(Param("a", "tensor"), Param("b", "tensor")),
        infer=infer,
        evaluate=evaluate,
        doc=doc + "; operands broadcast as in numpy and must have the same dtype",
        elementwise=True,
        flops=output_elements,
    )


for _name, (_allowed, _fn, _to_bool, _doc) in _BINARY.items():
    register(_binary(_name, _allowed, _fn, _to_bool, _doc))


# ---------------------------------------------------------------------------
# where


def _where_infer(operands: list[TensorType], attrs: dict[str, Any]) -> tuple[TensorType, ...]:
    require_dtype("where", operands[0], BOOL, 0)
    dtype = same_dtype("where", operands, (1, 2))
    return (TensorType(dtype, broadcast("where", operands)),)


def _where_eval(arrays: list[np.ndarray], attrs: dict[str, Any]) -> tuple[np.ndarray, ...]:
    cond, a, b = arrays
    return (as_result(np.where(cond, a, b), DType.from_numpy(a.dtype)),)


register(
    Primitive(
        name="where",
        params=(Param("cond", "tensor"), Param("a", "tensor"), Param("b", "tensor")),
        infer=_where_infer,
        evaluate=_where_eval,
        doc="a where cond is true, else b; all three broadcast, a and b have the same dtype",
        elementwise=True,
        flops=output_elements,
    )
)


# ---------------------------------------------------------------------------
# cast


def cast_array(x: np.ndarray, to: DType) -> np.ndarray:
    """Convert as numpy's astype, except that float -> int is total: truncation toward
    zero, saturating at the int's range, nan -> 0 (as LLVM's fptosi.sat)."""
    source = DType.from_numpy(x.dtype)
    with np.errstate(all="ignore"):
        if source.is_float:
            wide = x.astype(np.float64)  # exact for every float dtype
            if to.is_int:
                info = np.iinfo(to.numpy)
                high = wide >= 2.0 ** (info.bits - 1)
                low = wide < -(2.0 ** (info.bits - 1))
                nan = np.isnan(wide)
                out = np.where(high | low | nan, 0.0, np.trunc(wide)).astype(to.numpy)
                out = np.where(high, info.max, np.where(low, info.min, out))
                return as_result(out, to)
            if to is DType.BOOL:
                return as_result(wide != 0, to)
            return as_result(wide, to)
        if to is DType.BF16 and source.is_int:
            # via f64, which holds every i32 exactly and rounds an i64 once before bf16
            return as_result(x.astype(np.float64), to)
        return as_result(x, to)


def _cast_infer(operands: list[TensorType], attrs: dict[str, Any]) -> tuple[TensorType, ...]:
    return (TensorType(_dtype_attr("cast", attrs["dtype"], ANY), operands[0].shape),)


def _cast_eval(arrays: list[np.ndarray], attrs: dict[str, Any]) -> tuple[np.ndarray, ...]:
    return (cast_array(arrays[0], attrs["dtype"]),)


register(
    Primitive(
        name="cast",
        params=(Param("x", "tensor"), Param("dtype", "dtype")),
        infer=_cast_infer,
        evaluate=_cast_eval,
        doc=(
            "convert to `dtype`: float -> int truncates toward zero and saturates, nan -> 0; "
            "int -> int wraps; anything -> bool is x != 0 (nan -> true); bool -> number is 0 or 1"
        ),
        elementwise=True,
        flops=output_elements,
    )
)


# ---------------------------------------------------------------------------
# Constructors: arange and full (element-wise in the output index)


def _dtype_attr(op: str, dtype: Any, allowed: frozenset[DType]) -> DType:
    if not isinstance(dtype, DType):
        raise ShapeError(
            "E0205",
            f"`dtype` of `{op}` must be a dtype such as `f32`, found `{dtype}`",
            kwarg="dtype",
            label="not a dtype",
        )
    if dtype not in allowed:
        raise ShapeError(
            "E0202", f"`{op}` cannot make a `{dtype}` tensor", kwarg="dtype", label=f"{dtype}"
        )
    return dtype


def _arange_bounds(attrs: dict[str, Any]) -> tuple[Dim, Dim, int]:
    start, stop = attrs["start"], attrs["stop"]
    if stop is None:  # arange(n) counts 0..n
        start, stop = 0, start
    step = known_int("arange", "step", attrs["step"])
    if step == 0:
        raise ShapeError("E0409", "`arange` step must not be zero", kwarg="step", label="step of 0")
    return Dim.of(start), Dim.of(stop), step


def _arange_infer(operands: list[TensorType], attrs: dict[str, Any]) -> tuple[TensorType, ...]:
    start, stop, step = _arange_bounds(attrs)
    dtype = _dtype_attr("arange", attrs["dtype"], NUMERIC)
    span = stop - start if step > 0 else start - stop
    length = span if abs(step) == 1 else (span + (abs(step) - 1)).floordiv(abs(step))
    if length.is_const and length.value <= 0:
        raise ShapeError(
            "E0313",
            f"`arange` from {start} to {stop} by {step} is empty",
            label="no values",
            notes=("tensors cannot be empty",),
        )
    return (TensorType(dtype, (length,)),)


def _arange_eval(arrays: list[np.ndarray], attrs: dict[str, Any]) -> tuple[np.ndarray, ...]:
    start, stop, step = (int(v) for v in _arange_bounds(attrs))
    count = max(0, -((start - stop) // step))  # ceil((stop - start) / step)
    values = start + step * np.arange(count, dtype=np.int64)
    return (cast_array(values, attrs["dtype"]),)


def _arange_canonical(ranks: list[int], attrs: dict[str, Any]) -> dict[str, Any]:
    start, stop, step = _arange_bounds(attrs)
    return {**attrs, "start": start, "stop": stop, "step": step}


register(
    Primitive(
        name="arange",
        params=(
            Param("start", "dim", doc="first value (the count, when `stop` is not given)"),
            Param("stop", "dim", None, doc="values stay below it (above it for a negative step)"),
            Param("step", "int", 1, doc="a non-zero int"),
            Param("dtype", "dtype", DType.I64),
        ),
        infer=_arange_infer,
        evaluate=_arange_eval,
        doc="the 1-D tensor start, start + step, ... up to but excluding stop; `arange(n)` "
        "counts 0..n",
        flops=no_flops,
        extra={"canonical": _arange_canonical},
    )
)


def _full_value(attrs: dict[str, Any]) -> tuple[int | float | bool, DType]:
    value = attrs["value"]
    if isinstance(value, Dim) and value.is_const:
        value = value.value
    if not isinstance(value, int | float | bool):
        raise ShapeError(
            "E0205",
            f"`value` of `full` must be a number, found `{value}`",
            kwarg="value",
            label="not a number",
        )
    dtype = attrs["dtype"]
    if dtype is None:
        dtype = (
            DType.BOOL
            if isinstance(value, bool)
            else DType.I64
            if isinstance(value, int)
            else DType.F32
        )
    dtype = _dtype_attr("full", dtype, ANY)
    try:
        return fit_number(value, dtype), dtype
    except ShapeError as e:
        raise ShapeError(e.code, e.message, kwarg="value", label=e.label, help=e.help) from None


def _full_infer(operands: list[TensorType], attrs: dict[str, Any]) -> tuple[TensorType, ...]:
    _, dtype = _full_value(attrs)
    return (TensorType(dtype, positive_dims("full", "shape", attrs["shape"])),)


def _full_eval(arrays: list[np.ndarray], attrs: dict[str, Any]) -> tuple[np.ndarray, ...]:
    value, dtype = _full_value(attrs)
    shape = tuple(int(d) for d in attrs["shape"])
    if dtype.is_float:  # through f64 so that bf16 and f16 round (or overflow) as cast does
        return (cast_array(np.full(shape, value, dtype=np.float64), dtype),)
    return (np.full(shape, value, dtype=dtype.numpy),)


register(
    Primitive(
        name="full",
        params=(
            Param("shape", "dims"),
            Param("value", "any", doc="a number"),
            Param("dtype", "dtype", None, doc="default: bool, i64 or f32 from the value"),
        ),
        infer=_full_infer,
        evaluate=_full_eval,
        doc="a tensor of `shape` with every element `value`",
        flops=no_flops,
        extra={"canonical": lambda ranks, attrs: {**attrs, "dtype": _full_value(attrs)[1]}},
    )
)
