"""Element-wise primitives -> ONNX nodes with the reference's semantics.

Where ONNX (or onnxruntime) differs from mdl, the lowering spells mdl's rule out:
floor division and modulo follow numpy on floats (`npy_divmod`) and Python on ints
(x // 0 = x % 0 = 0, no trap on `min // -1`); float -> int casts truncate, saturate and
send NaN to 0; integer power wraps (onnxruntime computes it in double); f16 and bf16
compute in f32 and round once, as the reference does.

Each lowering: (builder, node, input tensor names) -> output tensor names.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..graph import Node
from ..primitives import REGISTRY
from ..types import DType
from .builder import ONNX_DTYPES, OnnxBuilder, compute_dtype

Lowering = Callable[[OnnxBuilder, Node, list[str]], list[str]]

UNARY = {
    "exp": "Exp", "log": "Log", "sqrt": "Sqrt", "tanh": "Tanh", "erf": "Erf",
    "sigmoid": "Sigmoid", "sin": "Sin", "cos": "Cos", "floor": "Floor", "ceil": "Ceil",
    "abs": "Abs", "neg": "Neg", "isnan": "IsNaN",
}  # fmt: skip
ARITHMETIC = {"add": "Add", "sub": "Sub", "mul": "Mul", "div": "Div"}
COMPARISON = {
    "eq": "Equal", "lt": "Less", "le": "LessOrEqual", "gt": "Greater", "ge": "GreaterOrEqual",
}  # fmt: skip


def _lift(b: OnnxBuilder, names: list[str], dtype: DType) -> tuple[list[str], DType]:
    """Operands converted to the dtype the reference computes in."""
    compute = compute_dtype(dtype)
    return [b.cast(n, dtype, compute) for n in names], compute


def _unary(b: OnnxBuilder, node: Node, ins: list[str]) -> list[str]:
    dtype = node.inputs[0].type.dtype
    out = node.outputs[0].type.dtype
    (x,), compute = _lift(b, ins, dtype)
    match node.op:
        case "rsqrt":
            y = b.op("Div", b.scalar(1, compute), b.op("Sqrt", x))
        case "logical_not":
            y = b.op("Not", x)
        case "erf" if compute is DType.F64:
            # onnxruntime has no f64 Erf: computed in f32, so good to f32 precision only
            b.warnings.append("`erf` of an f64 tensor is computed in f32")
            y = b.cast(b.op("Erf", b.cast(x, compute, DType.F32)), DType.F32, compute)
        case _:
            y = b.op(UNARY[node.op], x)
    return [b.cast(y, compute if out is not DType.BOOL else out, out)]


def _binary(b: OnnxBuilder, node: Node, ins: list[str]) -> list[str]:
    dtype = node.inputs[0].type.dtype
    out = node.outputs[0].type.dtype
    (x, y), compute = _lift(b, ins, dtype)
    op = node.op
    if op in ARITHMETIC:
        z = b.op(ARITHMETIC[op], x, y)
    elif op in COMPARISON:
        z = b.op(COMPARISON[op], x, y)
    elif op == "ne":
        z = b.op("Not", b.op("Equal", x, y))
    elif op in ("logical_and", "logical_or"):
        z = b.op("And" if op == "logical_and" else "Or", x, y)
    elif op in ("maximum", "minimum"):
        z = b.op("Max" if op == "maximum" else "Min", x, y)  # both propagate NaN
    elif op in ("floordiv", "mod"):
        if compute.is_float:
            z = float_divmod(b, x, y, compute)[0 if op == "floordiv" else 1]
        else:
            z = int_divmod(b, x, y, compute)[0 if op == "floordiv" else 1]
    elif op == "pow":
        z = b.op("Pow", x, y) if compute.is_float else int_pow(b, x, y, compute)
    else:  # pragma: no cover - the table in export.py lists exactly these ops
        raise AssertionError(op)
    return [b.cast(z, compute if out is not DType.BOOL else out, out)]


def _sign_negative(b: OnnxBuilder, x: str, dtype: DType) -> str:
    """True where x < 0 or x is -0 (a zero's sign shows in 1 / zero)."""
    zero = b.scalar(0, dtype)
    reciprocal = b.op("Div", b.scalar(1, dtype), x)
    return b.op("Or", b.op("Less", x, zero), b.op("Less", reciprocal, zero))


def _zero_with_sign_of(b: OnnxBuilder, value: str, where: str, like: str, dtype: DType) -> str:
    """`value`, with a zero carrying the sign of `like` wherever `where` holds.

    onnxruntime's Where turns a -0 picked from its first branch into +0, so the zero is
    put in with Where and its sign with a multiplication by -1."""
    zero = b.scalar(0, dtype)
    cleared = b.op("Where", where, zero, value)
    flip = b.op("And", where, _sign_negative(b, like, dtype))
    return b.op("Mul", cleared, b.op("Where", flip, b.scalar(-1, dtype), b.scalar(1, dtype)))


def float_divmod(b: OnnxBuilder, x: str, y: str, dtype: DType) -> tuple[str, str]:
    """numpy's npy_divmod (floor division, modulo with the divisor's sign); x // 0 is x / 0
    and x % 0 is nan, as numpy. A value that may be -0 only ever sits in Where's second
    branch, which onnxruntime keeps as is."""
    zero, one = b.scalar(0, dtype), b.scalar(1, dtype)
    fmod = b.op("Mod", x, y, fmod=1)
    div = b.op("Div", b.op("Sub", x, fmod), y)
    adjust = b.op(
        "And",
        b.op("Not", b.op("Equal", fmod, zero)),
        b.op("Xor", b.op("Less", y, zero), b.op("Less", fmod, zero)),
    )
    mod = b.op("Where", adjust, b.op("Add", fmod, y), fmod)
    div = b.op("Where", adjust, b.op("Sub", div, one), div)
    mod = _zero_with_sign_of(b, mod, b.op("Equal", mod, zero), y, dtype)
    floor = b.op("Floor", div)
    floor = b.op(
        "Where",
        b.op("Greater", b.op("Sub", div, floor), b.scalar(0.5, dtype)),
        b.op("Add", floor, one),
        floor,
    )
    quotient = b.op("Div", x, y)
    floor = _zero_with_sign_of(b, floor, b.op("Equal", div, zero), quotient, dtype)
    by_zero = b.op("Equal", y, zero)
    return b.op("Where", by_zero, quotient, floor), b.op("Where", by_zero, fmod, mod)


def int_divmod(b: OnnxBuilder, x: str, y: str, dtype: DType) -> tuple[str, str]:
    """Python's // and % on ints with x // 0 = x % 0 = 0; `min // -1` wraps instead of
    trapping (ONNX Div and Mod never see a divisor of 0 or -1)."""
    zero, one, minus_one = (b.scalar(v, dtype) for v in (0, 1, -1))
    is_zero = b.op("Equal", y, zero)
    is_minus_one = b.op("Equal", y, minus_one)
    unsafe = b.op("Or", is_zero, is_minus_one)
    safe = b.op("Where", unsafe, one, y)
    q = b.op("Div", x, safe)
    r = b.op("Sub", x, b.op("Mul", q, safe))
    adjust = b.op(
        "And",
        b.op("Not", b.op("Equal", r, zero)),
        b.op("Xor", b.op("Less", r, zero), b.op("Less", y, zero)),
    )
    q = b.op("Where", adjust, b.op("Sub", q, one), q)
    r = b.op("Where", adjust, b.op("Add", r, y), r)
    q = b.op("Where", is_zero, zero, b.op("Where", is_minus_one, b.op("Sub", zero, x), q))
    r = b.op("Where", unsafe, zero, r)
    return q, r


def int_pow(b: OnnxBuilder, base: str, exponent: str, dtype: DType) -> str:
    """Wrapping integer power by squaring, unrolled over the exponent's bits; a negative
    exponent truncates 1 / base ** -e toward zero, as the reference's `_int_pow`."""
    bits = 8 * dtype.itemsize - 1
    zero, one, minus_one = (b.scalar(v, dtype) for v in (0, 1, -1))
    negative = b.op("Less", exponent, zero)
    e = b.op("Where", negative, zero, exponent)
    acc, square = one, base
    for k in range(bits):
        bit = b.op("Not", b.op("Equal", b.op("BitwiseAnd", e, b.scalar(1 << k, dtype)), zero))
        acc = b.op("Where", bit, b.op("Mul", acc, square), acc)
        if k + 1 < bits:
            square = b.op("Mul", square, square)
    odd = b.op("Not", b.op("Equal", b.op("BitwiseAnd", exponent, one), zero))
    reciprocal = b.op(
        "Where",
        b.op("Equal", base, one),
        one,
        b.op("Where", b.op("Equal", base, minus_one), b.op("Where", odd, minus_one, one), zero),
    )
    return b.op("Where", negative, reciprocal, acc)


def _where(b: OnnxBuilder, node: Node, ins: list[str]) -> list[str]:
    cond, x, y = ins
    dtype = node.outputs[0].type.dtype
    if dtype is DType.BOOL:  # onnxruntime's Where has no bool kernel
        picked = b.op("And", cond, x)
        return [b.op("Or", picked, b.op("And", b.op("Not", cond), y))]
    if dtype is DType.BF16:  # nor a bf16 one; the round trip through f32 is exact
        x32, y32 = (b.cast(v, dtype, DType.F32) for v in (x, y))
        return [b.cast(b.op("Where", cond, x32, y32), DType.F32, dtype)]
    return [b.op("Where", cond, x, y)]


def cast(b: OnnxBuilder, x: str, source: DType, to: DType) -> str:
    """mdl's `cast`: float -> int truncates toward zero, saturates and sends NaN to 0
    (ONNX leaves out-of-range casts undefined); anything -> bool is x != 0."""
    if source == to:
        return x  # the same tensor, no node
    if source.is_float and to.is_int:
        compute = compute_dtype(source)
        x = b.cast(x, source, compute)
        info = np.iinfo(to.numpy)
        limit = 2.0 ** (info.bits - 1)  # a power of two: exact in every float dtype
        high = b.op("GreaterOrEqual", x, b.scalar(limit, compute))
        low = b.op("Less", x, b.scalar(-limit, compute))
        outside = b.op("Or", b.op("Or", high, low), b.op("IsNaN", x))
        inside = b.op("Where", outside, b.scalar(0, compute), x)
        value = b.op("Cast", inside, to=ONNX_DTYPES[to])
        saturated = b.op("Where", low, b.scalar(info.min, to), value)
        return b.op("Where", high, b.scalar(info.max, to), saturated)
    if to is DType.BOOL:
        compute = compute_dtype(source) if source.is_float else source
        x = b.cast(x, source, compute)
        return b.op("Not", b.op("Equal", x, b.scalar(0, compute)))
    if source.is_int and to is DType.BF16:  # as the reference: through f64, rounded once
        return b.cast(b.cast(x, source, DType.F64), DType.F64, to)
    return b.cast(x, source, to)


def _cast(b: OnnxBuilder, node: Node, ins: list[str]) -> list[str]:
    return [cast(b, ins[0], node.inputs[0].type.dtype, node.outputs[0].type.dtype)]


def _arange(b: OnnxBuilder, node: Node, ins: list[str]) -> list[str]:
    out = node.outputs[0].type
    attrs = node.attrs
    start, stop = attrs["start"], attrs["stop"]
    if stop is None:
        start, stop = 0, start
    if out.shape[0].is_const and not any(
        getattr(v, "symbols", None) for v in (attrs["start"], attrs["stop"])
    ):
        (folded,) = REGISTRY["arange"].evaluate([], attrs)
        return [b.const(folded, "arange")]
    scalar = b.ints([])  # the shape [] of a 0-d tensor
    begin, end = (b.op("Reshape", b.dim(d), scalar) for d in (start, stop))
    step = b.scalar(int(attrs["step"]), DType.I64)
    values = b.op("Range", begin, end, step)
    return [cast(b, values, DType.I64, out.dtype) if out.dtype is not DType.I64 else values]


def _full(b: OnnxBuilder, node: Node, ins: list[str]) -> list[str]:
    out = node.outputs[0].type
    (one,) = REGISTRY["full"].evaluate([], {**node.attrs, "shape": (1,)})
    from onnx import numpy_helper

    # opset 18's ConstantOfShape has no bf16: made in f32, then rounded (exactly)
    stored = DType.F32 if out.dtype is DType.BF16 else out.dtype
    value = numpy_helper.from_array(np.asarray(one).reshape(1).astype(stored.numpy))
    made = b.op("ConstantOfShape", b.shape(out.shape), value=value)
    return [b.cast(made, stored, out.dtype)]


LOWERINGS: dict[str, Lowering] = {
    **{op: _unary for op in (*UNARY, "rsqrt", "logical_not")},
    **{
        op: _binary
        for op in (
            *ARITHMETIC,
            *COMPARISON,
            "ne",
            "logical_and",
            "logical_or",
            "maximum",
            "minimum",
            "floordiv",
            "mod",
            "pow",
        )
    },  # fmt: skip
    "where": _where,
    "cast": _cast,
    "arange": _arange,
    "full": _full,
}
