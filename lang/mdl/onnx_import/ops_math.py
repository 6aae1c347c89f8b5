"""ONNX math nodes that need care with precision -> mdl: ELUs and softmax.

ONNX's reference computes ELUs with `expm1`, which mdl lacks: `exp(x) - 1` in
the input's dtype cancels to noise near 0, so it is computed in f64 (with the
series for tiny x) and rounded once. For bf16, ONNX sums (a softmax's
denominator, ReduceSum) in bf16, one rounding per addition; mdl's `sum`
accumulates in f64, a result that can differ by a bf16 ulp, so short bf16 sums
are written as that chain of additions instead (`storage_sum`).
"""

from __future__ import annotations

from ..dims import Dim
from ..types import DType, TensorType
from .convert import Ctx, Node, scalar_text
from .ir import Expr, ex, hole
from .ops import axis_of, f32_only, op, operands

MAX_CHAIN = 64  # longest bf16 sum written as a chain of additions


def let(c: Ctx, n: Node, tag: str, e: Expr, t: TensorType, hint: str) -> Expr:
    name = f"{n.outputs[0]}\x00{tag}"
    c.emit(name, e, t, hint)
    return hole(name)


def expm1(c: Ctx, n: Node, x: Expr, t: TensorType, tag: str = "") -> Expr:
    """`exp(x) - 1` rounded once to x's dtype (accurate near 0, as ONNX's `expm1`)."""
    wide = x if t.dtype is DType.F64 else ex("cast({}, f64)", x)
    v = let(c, n, f"wide{tag}", wide, TensorType(DType.F64, t.shape), "wide")
    e = ex("where(abs({}) < 1e-5, {} + 0.5 * {} * {}, exp({}) - 1.0)", v, v, v, v, v)
    return e if t.dtype is DType.F64 else ex(f"cast({{}}, {t.dtype})", e)


def storage_sum(x: Expr, t: TensorType, axis: int) -> Expr:
    """sum(x, axis, keep=true), accumulated as ONNX's reference does for x's dtype."""
    size = Dim.of(t.shape[axis])
    if t.dtype is not DType.BF16 or not size.is_const or not 1 < int(size) <= MAX_CHAIN:
        return ex(f"sum({{}}, axis={axis}, keep=true)", x)
    lead = ", ".join([":"] * axis)
    lead = lead + ", " if lead else ""
    parts = [ex(f"{{}}[{lead}{i}:{i + 1}]", x) for i in range(int(size))]
    return ex(" + ".join(["{}"] * len(parts)), *parts)


@op("Elu", "Celu", attrs="alpha")
def _elu(c: Ctx, n: Node) -> None:
    (x,), (t,) = operands(c, n.inputs)
    if not t.dtype.is_float:
        c.fail("E1008", f"{n.op} on `{t.dtype}` is not supported")
    alpha = scalar_text(n.attrs.get("alpha", 1.0), t.dtype)
    inner = x if n.op == "Elu" else let(c, n, "scaled", ex(f"{{}} / {alpha}", x), t, "scaled")
    e = ex(f"where({{}} > 0.0, {{}}, {alpha} * {{}})", x, x, expm1(c, n, inner, t))
    c.emit(n.outputs[0], e, t)


@op("Selu", attrs="alpha gamma")
def _selu(c: Ctx, n: Node) -> None:
    (x,), (t,) = operands(c, n.inputs)
    if not t.dtype.is_float:
        c.fail("E1008", f"Selu on `{t.dtype}` is not supported")
    alpha = scalar_text(n.attrs.get("alpha", 1.67326319217681884765625), t.dtype)
    gamma = scalar_text(n.attrs.get("gamma", 1.05070102214813232421875), t.dtype)
    e = ex(f"where({{}} > 0.0, {{}}, {alpha} * {{}}) * {gamma}", x, x, expm1(c, n, x, t))
    c.emit(n.outputs[0], e, t)


@op("Softmax", "LogSoftmax", attrs="axis")
def _softmax(c: Ctx, n: Node) -> None:
    (x,), (t,) = operands(c, n.inputs)
    if not t.dtype.is_float:
        c.fail("E1008", f"{n.op} on `{t.dtype}` is not supported")
    axis = axis_of(c, int(n.attrs.get("axis", -1)), t.rank)
    name = "softmax" if n.op == "Softmax" else "log_softmax"
    if f32_only(t):
        arg = "" if axis == t.rank - 1 else f"[axis={axis}]"
        c.emit(n.outputs[0], ex(f"nn.{name}{arg}({{}})", x), t)
        return
    shifted = ex(f"{{}} - max({{}}, axis={axis}, keep=true)", x, x)
    weights = let(c, n, "exp", ex("exp({})", shifted), t, "weights")
    e = ex("{} / {}", weights, storage_sum(weights, t, axis))
    if n.op == "LogSoftmax":  # as ONNX's reference: the log of the softmax
        e = ex("log({})", e)
    c.emit(n.outputs[0], e, t)


# ---------------------------------------------------------------- scans and one-hots


def _axis_input(c: Ctx, n: Node, t: TensorType) -> int:
    k = c.known(n.inputs[1])
    if k is None or k.is_symbolic or k.array.size != 1:
        c.fail("E1010", f"the {n.op} axis must be a constant")
    return axis_of(c, int(k.array.reshape(-1)[0]), t.rank)


@op("CumSum", attrs="exclusive reverse")
def _cumsum(c: Ctx, n: Node) -> None:
    """A running sum as a matmul with a triangle of ones along the (last-moved) axis."""
    (x,), (t,) = operands(c, n.inputs[:1])
    if t.dtype is DType.BOOL or t.rank == 0:
        c.fail("E1008", f"CumSum on `{t}` is not supported")
    axis = _axis_input(c, n, t)
    size = Dim.of(t.shape[axis])
    # row i of the input adds to column j of the output where j >= i (reversed: j <= i)
    compare = {(0, 0): "<=", (1, 0): "<", (0, 1): ">=", (1, 1): ">"}[
        (int(bool(n.attrs.get("exclusive", 0))), int(bool(n.attrs.get("reverse", 0))))
    ]
    tri = Expr(f"cast(arange({size})[:, None] {compare} arange({size})[None, :], {t.dtype})", (),
               size.symbols)  # fmt: skip
    last = t.rank - 1
    if axis == last:
        c.emit(n.outputs[0], ex("{} @ {}", x, tri), t, "cumsum")
        return
    perm = list(range(t.rank))
    perm[axis], perm[last] = last, axis
    swap = ", ".join(map(str, perm))
    e = ex(f"({{}}.transpose({swap}) @ {{}}).transpose({swap})", x, tri)
    c.emit(n.outputs[0], e, t, "cumsum")


@op("Hardmax", attrs="axis")
def _hardmax(c: Ctx, n: Node) -> None:
    (x,), (t,) = operands(c, n.inputs)
    if t.dtype is DType.BOOL or t.rank == 0:
        c.fail("E1008", f"Hardmax on `{t}` is not supported")
    axis = axis_of(c, int(n.attrs.get("axis", -1)), t.rank)
    size = Dim.of(t.shape[axis])
    shape = ", ".join(str(size) if i == axis else "1" for i in range(t.rank))
    positions = Expr(f"arange({size}).reshape({shape})", (), size.symbols)
    e = ex(f"cast({{}} == argmax({{}}, {axis}, keep=true), {t.dtype})", positions, x)
    c.emit(n.outputs[0], e, t, "hardmax")


@op("LpNormalization", attrs="axis p")
def _lp_normalization(c: Ctx, n: Node) -> None:
    (x,), (t,) = operands(c, n.inputs)
    if not t.dtype.is_float:
        c.fail("E1008", f"LpNormalization on `{t.dtype}` is not supported")
    axis = axis_of(c, int(n.attrs.get("axis", -1)), t.rank)
    p = int(n.attrs.get("p", 2))
    if p not in (1, 2):
        c.fail("E1011", f"LpNormalization with p={p} (ONNX takes 1 or 2)")
    kept = TensorType(t.dtype, tuple(Dim.of(1) if i == axis else d for i, d in enumerate(t.shape)))
    inner = ex("abs({})", x) if p == 1 else ex("{} * {}", x, x)
    norm = ex(f"sum({{}}, axis={axis}, keep=true)", inner)
    norm = let(c, n, "norm", norm if p == 1 else ex("sqrt({})", norm), kept, "norm")
    c.emit(n.outputs[0], ex("where({} == 0.0, 0.0, {} / {})", norm, x, norm), t, "normalized")


@op("Shrink", attrs="bias lambd")
def _shrink(c: Ctx, n: Node) -> None:
    (x,), (t,) = operands(c, n.inputs)
    if not t.dtype.is_float:
        c.fail("E1008", f"Shrink on `{t.dtype}` is not supported")
    lambd = float(n.attrs.get("lambd", 0.5))
    bias = scalar_text(n.attrs.get("bias", 0.0), t.dtype)
    low, high = scalar_text(-lambd, t.dtype), scalar_text(lambd, t.dtype)
    e = ex(f"where({{}} < {low}, {{}} + {bias}, where({{}} > {high}, {{}} - {bias}, 0.0))",
           x, x, x, x)  # fmt: skip
    c.emit(n.outputs[0], e, t, "shrunk")


@op("Round")
def _round(c: Ctx, n: Node) -> None:
    """Half to even: floor(x + 0.5), one less where that lands on an odd number from a tie.
    From 2^23 on every float is an integer (and x + 0.5 would round), so it stays."""
    (x,), (t,) = operands(c, n.inputs)
    if not t.dtype.is_float:
        c.fail("E1008", f"Round on `{t.dtype}` is not supported")
    up = let(c, n, "up", ex("floor({} + 0.5)", x), t, "up")
    tie = ex("logical_and({} - {} == 0.5, {} % 2.0 == 1.0)", up, x, up)
    e = ex("where(abs({}) >= 8388608.0, {}, where({}, {} - 1.0, {}))", x, x, tie, up, up)
    c.emit(n.outputs[0], e, t, "rounded")
