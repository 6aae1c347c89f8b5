"""One ONNX node -> mdl statements: element-wise ops, matmul, conv, pooling, normalisation, reductions.

Each converter checks the node's attributes (an attribute or value mdl cannot
express is E1007, an unknown op E1006, both naming node, op and opset) and
emits one mdl expression with the node's result type. Layout ops (reshape,
slice, gather, ...) are in ops_layout.py; nodes computable at import are
folded by shapes.py before they get here.
"""

from __future__ import annotations

from collections.abc import Callable

from ..dims import Dim
from ..types import DType, TensorType
from .convert import Ctx, Node, scalar_text
from .ir import Expr, ex, hole, lit
from .shapes import fold_known

Handler = Callable[[Ctx, Node], None]
OPS: dict[str, tuple[Handler, frozenset[str]]] = {}


def op(*names: str, attrs: str = "") -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        for name in names:
            OPS[name] = (fn, frozenset(attrs.split()))
        return fn

    return register


def supported_ops() -> list[str]:
    return sorted(OPS)


def convert_node(c: Ctx, n: Node) -> None:
    if n.op == "Constant":
        _constant(c, n)
        return
    entry = OPS.get(n.op)
    if entry is None:
        c.fail("E1006", f"op `{n.op}` is not supported",
               help="see docs/onnx.md for the ops mdl imports")  # fmt: skip
    handler, allowed = entry
    for name in n.attrs:
        if name not in allowed:
            c.unsupported(f"attribute `{name}` is not supported")
    if len([o for o in n.outputs if o]) > 1 and n.op not in _MULTI_OUTPUT:
        c.fail("E1011", f"{n.op} has {len(n.outputs)} outputs, where ONNX defines one")
    if not n.outputs or not n.outputs[0]:
        c.fail("E1011", f"{n.op} has no output")
    try:
        if fold_known(c, n):
            return
        handler(c, n)
    except IndexError:  # a node with fewer inputs than its op requires
        c.fail("E1011", f"{n.op} is missing a required input")


_MULTI_OUTPUT = {
    "Split",
    "Dropout",
    "MaxPool",
    "LayerNormalization",
    "BatchNormalization",
    "Attention",
    "SoftmaxCrossEntropyLoss",
}


def _constant(c: Ctx, n: Node) -> None:
    import numpy as np

    if len(n.attrs) != 1:
        c.unsupported("a Constant needs exactly one value attribute")
    (key, value), = n.attrs.items()  # fmt: skip
    match key:
        case "value":
            arr = value
        case "value_float" | "value_int":
            arr = np.array(value, dtype=np.float32 if key == "value_float" else np.int64)
        case "value_floats" | "value_ints":
            arr = np.array(value, dtype=np.float32 if key == "value_floats" else np.int64)
        case _:
            c.unsupported(f"a Constant with `{key}` is not supported")
    dtype = DType.from_numpy(arr.dtype)
    c.set_known(n.outputs[0], arr, dtype)


# ---------------------------------------------------------------- helpers


def broadcast(c: Ctx, *shapes: tuple) -> tuple:
    rank = max(len(s) for s in shapes)
    out: list[Dim] = []
    for axis in range(rank):
        dims = [Dim.of(s[axis - rank + len(s)]) for s in shapes if axis - rank + len(s) >= 0]
        chosen = Dim.of(1)
        for d in dims:
            if d == 1 or d == chosen:
                continue
            if chosen == 1:
                chosen = d
            else:
                c.fail("E1010", f"cannot broadcast dims {chosen} and {d} (mdl needs them provably "
                       "equal)", help="export with these dims static or named alike")  # fmt: skip
        out.append(chosen)
    return tuple(out)


def operands(c: Ctx, names: list[str]) -> tuple[list[Expr], list[TensorType]]:
    """Run-time operands; a one-element constant becomes a number when a tensor operand of
    the same dtype takes part (mdl gives numbers the dtype of their tensor neighbour)."""
    types = [c.type_of(n) for n in names]
    tensor_dtypes = {t.dtype for n, t in zip(names, types, strict=True) if c.known(n) is None}
    max_rank = max((t.rank for n, t in zip(names, types, strict=True) if c.known(n) is None),
                   default=-1)  # fmt: skip
    exprs = []
    for name, t in zip(names, types, strict=True):
        ok = t.dtype in tensor_dtypes and t.dtype is not DType.BOOL
        exprs.append(c.arg(name, literal_rank=max_rank if ok else -1))
    return exprs, types


def axis_of(c: Ctx, axis: int, rank: int) -> int:
    if not -rank <= axis < rank:
        c.fail("E1010", f"axis {axis} is out of range for rank {rank}")
    return axis + rank if axis < 0 else axis


def f32_only(t: TensorType) -> bool:
    return t.dtype is DType.F32


def out_type(c: Ctx, n: Node, shape: tuple, dtype: DType) -> TensorType:
    return TensorType(dtype, tuple(Dim.of(d) for d in shape))


# ---------------------------------------------------------------- element-wise

_UNARY = {
    "Sigmoid": "sigmoid({})", "Tanh": "tanh({})", "Exp": "exp({})", "Log": "log({})",
    "Sqrt": "sqrt({})", "Erf": "erf({})", "Sin": "sin({})", "Cos": "cos({})", "Abs": "abs({})",
    "Neg": "-{}", "Floor": "floor({})", "Ceil": "ceil({})", "Not": "logical_not({})",
    "Reciprocal": "1.0 / {}", "Identity": "{}", "Softsign": "{0} / (1.0 + abs({0}))",
    "Softplus": "log(1.0 + exp({}))", "Tan": "sin({0}) / cos({0})",
    "Sinh": "(exp({0}) - exp(-{0})) / 2.0", "Cosh": "(exp({0}) + exp(-{0})) / 2.0",
    "Asinh": "log({0} + sqrt({0} * {0} + 1.0))", "Acosh": "log({0} + sqrt({0} * {0} - 1.0))",
    "Atanh": "0.5 * log((1.0 + {0}) / (1.0 - {0}))", "Mish": "{0} * tanh(log(1.0 + exp({0})))",
}  # fmt: skip


@op(*_UNARY)
def _unary(c: Ctx, n: Node) -> None:
    (x,), (t,) = operands(c, n.inputs[:1])
    template = _UNARY[n.op]
    if "{0}" in template:
        e = ex(template.replace("{0}", "{}"), *([x] * template.count("{0}")))
    else:
        e = ex(template, x)
    c.emit(n.outputs[0], e, t)


@op("IsNaN")
def _isnan(c: Ctx, n: Node) -> None:
    (x,), (t,) = operands(c, n.inputs[:1])
    c.emit(n.outputs[0], ex("isnan({})", x), TensorType(DType.BOOL, t.shape))


@op("Relu")
def _relu(c: Ctx, n: Node) -> None:
    (x,), (t,) = operands(c, n.inputs)
    c.emit(n.outputs[0], ex("nn.relu({})" if f32_only(t) else "max({}, 0)", x), t)


@op("LeakyRelu", attrs="alpha")
def _leaky_relu(c: Ctx, n: Node) -> None:
    (x,), (t,) = operands(c, n.inputs)
    alpha = scalar_text(n.attrs.get("alpha", 0.01), t.dtype)
    c.emit(n.outputs[0], ex("where({} >= 0.0, {}, {} * {})", x, x, x, alpha), t)


@op("HardSigmoid", attrs="alpha beta")
def _hard_sigmoid(c: Ctx, n: Node) -> None:
    (x,), (t,) = operands(c, n.inputs)
    alpha = scalar_text(n.attrs.get("alpha", 0.2), t.dtype)
    beta = scalar_text(n.attrs.get("beta", 0.5), t.dtype)
    c.emit(n.outputs[0], ex("max(min({} * {} + {}, 1.0), 0.0)", alpha, x, beta), t)


@op("HardSwish")
def _hard_swish(c: Ctx, n: Node) -> None:
    (x,), (t,) = operands(c, n.inputs)
    c.emit(n.outputs[0], ex("{} * max(min({} / 6.0 + 0.5, 1.0), 0.0)", x, x), t)


@op("Gelu", attrs="approximate")
def _gelu(c: Ctx, n: Node) -> None:
    (x,), (t,) = operands(c, n.inputs)
    approx = n.attrs.get("approximate", "none")
    if approx not in ("none", "tanh"):
        c.unsupported(f"approximate=`{approx}` is not supported")
    if f32_only(t):
        c.emit(n.outputs[0], ex("nn.gelu({})" if approx == "none" else "nn.gelu_tanh({})", x), t)
    elif approx == "none":
        c.emit(n.outputs[0], ex("0.5 * {} * (1.0 + erf({} * 0.7071067811865476))", x, x), t)
    else:
        inner = ex("0.7978845608028654 * ({} + 0.044715 * {} * {} * {})", x, x, x, x)
        c.emit(n.outputs[0], ex("0.5 * {} * (1.0 + tanh({}))", x, inner), t)


@op("Swish", "ThresholdedRelu", attrs="alpha")
def _swish(c: Ctx, n: Node) -> None:
    (x,), (t,) = operands(c, n.inputs)
    alpha = scalar_text(n.attrs.get("alpha", 1.0), t.dtype)
    if n.op == "Swish":
        e = ex(f"{{}} * sigmoid({alpha} * {{}})", x, x)
    else:
        e = ex(f"where({{}} > {alpha}, {{}}, 0.0)", x, x)
    c.emit(n.outputs[0], e, t)


@op("PRelu")
def _prelu(c: Ctx, n: Node) -> None:
    (x, slope), (t, ts) = operands(c, n.inputs)
    shape = broadcast(c, t.shape, ts.shape)
    c.emit(
        n.outputs[0],
        ex("where({} >= 0.0, {}, {} * {})", x, x, x, slope),
        TensorType(t.dtype, shape),
    )


@op("IsInf", attrs="detect_negative detect_positive")
def _isinf(c: Ctx, n: Node) -> None:
    (x,), (t,) = operands(c, n.inputs)
    tests = [f"{{}} == {v}" for k, v in (("detect_positive", "inf"), ("detect_negative", "-inf"))
             if n.attrs.get(k, 1)]  # fmt: skip
    if not tests:
        e = ex("{} != {}", x, x)  # neither: false everywhere but NaN; NaN is not inf either
        e = ex("logical_and({}, {} == {})", e, x, x)
    elif len(tests) == 1:
        e = ex(tests[0], x)
    else:
        e = ex(f"logical_or({tests[0]}, {tests[1]})", x, x)
    c.emit(n.outputs[0], e, TensorType(DType.BOOL, t.shape))


@op("Sign")
def _sign(c: Ctx, n: Node) -> None:
    (x,), (t,) = operands(c, n.inputs)
    c.emit(n.outputs[0], ex(f"cast({{}} > 0, {t.dtype}) - cast({{}} < 0, {t.dtype})", x, x), t)


_BINARY = {"Add": "{} + {}", "Sub": "{} - {}", "Mul": "{} * {}", "Equal": "{} == {}",
           "Less": "{} < {}", "LessOrEqual": "{} <= {}", "Greater": "{} > {}",
           "GreaterOrEqual": "{} >= {}", "And": "logical_and({}, {})",
           "Or": "logical_or({}, {})", "Xor": "{} != {}"}  # fmt: skip
_COMPARISONS = {"Equal", "Less", "LessOrEqual", "Greater", "GreaterOrEqual", "And", "Or", "Xor"}


@op(*_BINARY)
def _binary(c: Ctx, n: Node) -> None:
    (a, b), (ta, tb) = operands(c, n.inputs)
    _same_dtype(c, ta, tb)
    dtype = DType.BOOL if n.op in _COMPARISONS else ta.dtype
    c.emit(
        n.outputs[0], ex(_BINARY[n.op], a, b), TensorType(dtype, broadcast(c, ta.shape, tb.shape))
    )


def _same_dtype(c: Ctx, *types: TensorType) -> None:
    if len({t.dtype for t in types}) > 1:
        c.fail(
            "E1011", f"operands have different dtypes ({', '.join(str(t.dtype) for t in types)})"
        )


@op("Div")
def _div(c: Ctx, n: Node) -> None:
    (a, b), (ta, tb) = operands(c, n.inputs)
    _same_dtype(c, ta, tb)
    shape = broadcast(c, ta.shape, tb.shape)
    if ta.dtype.is_float:
        e = ex("{} / {}", a, b)
    else:  # ONNX integer division truncates toward zero, as a float -> int cast does
        e = ex(f"cast(cast({{}}, f64) / cast({{}}, f64), {ta.dtype})", a, b)
    c.emit(n.outputs[0], e, TensorType(ta.dtype, shape))


@op("Mod", attrs="fmod")
def _mod(c: Ctx, n: Node) -> None:
    (a, b), (ta, tb) = operands(c, n.inputs)
    _same_dtype(c, ta, tb)
    fmod = n.attrs.get("fmod", 0) != 0
    if ta.dtype is DType.BOOL:
        c.fail("E1008", "Mod on `bool` is not supported")
    t = TensorType(ta.dtype, broadcast(c, ta.shape, tb.shape))
    if not fmod:
        c.emit(n.outputs[0], ex("{} % {}", a, b), t)
        return
    # C's fmod has the dividend's sign, mdl's % the divisor's: they differ by b where the
    # remainder is non-zero and the signs differ
    r = f"{n.outputs[0]}\x00rem"
    c.emit(r, ex("{} % {}", a, b), t, "rem")
    zero = "0.0" if ta.dtype.is_float else "0"
    fix = ex(
        f"logical_and({{}} != {zero}, ({{}} < {zero}) != ({{}} < {zero}))", hole(r), hole(r), a
    )
    c.emit(n.outputs[0], ex("where({}, {} - {}, {})", fix, hole(r), b, hole(r)), t)


@op("Pow")
def _pow(c: Ctx, n: Node) -> None:
    ta, tb = c.type_of(n.inputs[0]), c.type_of(n.inputs[1])
    base = c.arg(n.inputs[0])
    k = c.known(n.inputs[1])
    if k is not None and k.array.size == 1 and k.array.ndim <= ta.rank and not k.is_symbolic:
        exponent = lit(scalar_text(k.array.reshape(()).item(), ta.dtype))
        if exponent.text == "2.0" and ta.dtype.is_float:
            c.emit(n.outputs[0], ex("{} * {}", base, base), ta)
            return
    else:
        exponent = c.arg(n.inputs[1])
        if tb.dtype is not ta.dtype:
            exponent = ex(f"cast({{}}, {ta.dtype})", exponent)
    c.emit(
        n.outputs[0],
        ex("{} ** {}", base, exponent),
        TensorType(ta.dtype, broadcast(c, ta.shape, tb.shape)),
    )


@op("Max", "Min", "Sum", "Mean")
def _variadic(c: Ctx, n: Node) -> None:
    exprs, types = operands(c, n.inputs)
    _same_dtype(c, *types)
    acc = exprs[0]
    for e in exprs[1:]:
        acc = ex(f"{n.op.lower()[:3]}({{}}, {{}})", acc, e) if n.op in ("Max", "Min") else ex(
            "{} + {}", acc, e)  # fmt: skip
    if n.op == "Mean":
        acc = ex(f"{{}} / {scalar_text(len(exprs), types[0].dtype)}", acc)
    c.emit(n.outputs[0], acc, TensorType(types[0].dtype, broadcast(c, *(t.shape for t in types))))


@op("Where")
def _where(c: Ctx, n: Node) -> None:
    (cond, a, b), (tc, ta, tb) = operands(c, n.inputs)
    _same_dtype(c, ta, tb)
    shape = broadcast(c, tc.shape, ta.shape, tb.shape)
    c.emit(n.outputs[0], ex("where({}, {}, {})", cond, a, b), TensorType(ta.dtype, shape))


@op("Clip")
def _clip(c: Ctx, n: Node) -> None:
    t = c.type_of(n.inputs[0])
    e = c.arg(n.inputs[0])
    for name, fn in zip(n.inputs[1:3], ("max", "min"), strict=False):
        if name:
            bound = c.arg(name, literal_rank=0)
            e = ex(f"{fn}({{}}, {{}})", e, bound)
    c.emit(n.outputs[0], e, t)


@op("Dropout", attrs="seed")
def _dropout(c: Ctx, n: Node) -> None:
    if len(n.inputs) > 2 and n.inputs[2]:
        mode = c.known(n.inputs[2])
        if mode is None or bool(mode.array.reshape(-1)[0]):
            c.unsupported("Dropout in training mode is not supported")
    (x,), (t,) = operands(c, n.inputs[:1])
    c.emit(n.outputs[0], x, t, "h")
    if len(n.outputs) > 1 and n.outputs[1]:  # nothing is dropped at inference
        shape = ", ".join(str(d) for d in t.shape)
        mask = Expr(f"full([{shape}], true)", (), frozenset().union(*(Dim.of(d).symbols
                                                                      for d in t.shape)))  # fmt: skip
        c.emit(n.outputs[1], mask, TensorType(DType.BOOL, t.shape), "mask")


# ---------------------------------------------------------------- reductions

_REDUCE = {"ReduceSum": "sum", "ReduceMean": "mean", "ReduceMax": "max", "ReduceMin": "min",
           "ReduceProd": "prod", "ReduceL1": "sum", "ReduceL2": "sum", "ReduceSumSquare": "sum",
           "ReduceLogSum": "sum", "ReduceLogSumExp": "sum"}  # fmt: skip


@op(*_REDUCE, attrs="axes keepdims noop_with_empty_axes")
def _reduce(c: Ctx, n: Node) -> None:
    t = c.type_of(n.inputs[0])
    x = c.arg(n.inputs[0])
    axes_from_input = n.op == "ReduceSum" or c.opset >= 18
    if axes_from_input and "axes" in n.attrs:
        c.unsupported(f"`axes` is an input of {n.op} from this opset on")
    if axes_from_input and len(n.inputs) > 1 and n.inputs[1]:
        k = c.known(n.inputs[1])
        if k is None or k.is_symbolic:
            c.fail("E1010", "the reduction axes must be constants")
        axes = [int(a) for a in k.array.reshape(-1)]
    else:
        axes = list(n.attrs.get("axes", []))
    if not axes and n.attrs.get("noop_with_empty_axes", 0):
        c.emit(n.outputs[0], x, t, "h")
        return
    axes = sorted({axis_of(c, a, t.rank) for a in axes}) if axes else list(range(t.rank))
    keep = bool(n.attrs.get("keepdims", 1))
    if t.dtype is DType.BOOL and n.op in ("ReduceMax", "ReduceMin"):  # any / all
        x = ex("cast({}, i32)", x)
    match n.op:
        case "ReduceL1":
            x = ex("abs({})", x)
        case "ReduceL2" | "ReduceSumSquare":
            x = ex("{} * {}", x, x)
        case "ReduceLogSumExp":
            x = ex("exp({})", x)
    axis_text = str(axes[0]) if len(axes) == 1 else f"[{', '.join(map(str, axes))}]"
    keep_text = ", keep=true" if keep else ""
    e = ex(f"{_REDUCE[n.op]}({{}}, axis={axis_text}{keep_text})", x)
    if n.op == "ReduceL2":
        e = ex("sqrt({})", e)
    elif n.op in ("ReduceLogSum", "ReduceLogSumExp"):
        e = ex("log({})", e)
    if t.dtype is DType.BOOL and n.op in ("ReduceMax", "ReduceMin"):
        e = ex("cast({}, bool)", e)
    shape = tuple(
        Dim.of(1) if i in axes else d for i, d in enumerate(t.shape) if keep or i not in axes
    )
    c.emit(n.outputs[0], e, TensorType(t.dtype, shape), n.op[6:].lower() or "reduce")


@op("ArgMax", "ArgMin", attrs="axis keepdims select_last_index")
def _argmax(c: Ctx, n: Node) -> None:
    (x,), (t,) = operands(c, n.inputs)
    axis = axis_of(c, int(n.attrs.get("axis", 0)), t.rank)
    keep = bool(n.attrs.get("keepdims", 1))
    last = bool(n.attrs.get("select_last_index", 0))
    if last:  # the first index in the reversed axis, counted from the end
        size = Dim.of(t.shape[axis])
        x = ex(f"gather({{}}, arange({size - 1}, -1, step=-1), axis={axis})", x)
        x = Expr(x.text, x.refs, x.symbols | size.symbols)
    e = ex(f"{n.op.lower()}({{}}, {axis}{', keep=true' if keep else ''})", x)
    if last:
        e = ex(f"{Dim.of(t.shape[axis]) - 1} - {{}}", e)
        e = Expr(e.text, e.refs, e.symbols | Dim.of(t.shape[axis]).symbols)
    shape = tuple(Dim.of(1) if i == axis else d for i, d in enumerate(t.shape) if keep or i != axis)
    c.emit(n.outputs[0], e, TensorType(DType.I64, shape))


# ---------------------------------------------------------------- linear algebra


def matmul_shape(c: Ctx, a: tuple, b: tuple) -> tuple:
    if not a or not b:
        c.fail("E1011", "MatMul of a 0-d tensor")
    a2 = (Dim.of(1), *a) if len(a) == 1 else a
    b2 = (*b, Dim.of(1)) if len(b) == 1 else b
    if a2[-1] != b2[-2]:
        c.fail("E1010", f"MatMul inner dims {a2[-1]} and {b2[-2]} differ")
    out = (*broadcast(c, a2[:-2], b2[:-2]), a2[-2], b2[-1])
    if len(a) == 1:
        out = out[:-2] + out[-1:]
    if len(b) == 1:
        out = out[:-1]
    return out


@op("MatMul")
def _matmul(c: Ctx, n: Node) -> None:
    (a, b), (ta, tb) = operands(c, n.inputs)
    _same_dtype(c, ta, tb)
    c.emit(
        n.outputs[0], ex("{} @ {}", a, b), TensorType(ta.dtype, matmul_shape(c, ta.shape, tb.shape))
    )


@op("Gemm", attrs="alpha beta transA transB")
def _gemm(c: Ctx, n: Node) -> None:
    ta, tb = c.type_of(n.inputs[0]), c.type_of(n.inputs[1])
    a, b = c.arg(n.inputs[0]), c.arg(n.inputs[1])
    if ta.rank != 2 or tb.rank != 2:
        c.fail("E1011", "Gemm needs 2-D operands")
    if n.attrs.get("transA", 0):
        a, ta = ex("{}.T", a), TensorType(ta.dtype, ta.shape[::-1])
    if n.attrs.get("transB", 0):
        b, tb = ex("{}.T", b), TensorType(tb.dtype, tb.shape[::-1])
    e = ex("{} @ {}", a, b)
    alpha, beta = float(n.attrs.get("alpha", 1.0)), float(n.attrs.get("beta", 1.0))
    if alpha != 1.0:
        e = ex(f"{scalar_text(alpha, ta.dtype)} * {{}}", e)
    shape = matmul_shape(c, ta.shape, tb.shape)
    if len(n.inputs) > 2 and n.inputs[2]:
        tc = c.type_of(n.inputs[2])
        bias = c.arg(n.inputs[2], literal_rank=2)
        if beta != 1.0:
            bias = ex(f"{scalar_text(beta, ta.dtype)} * {{}}", bias)
        e = ex("{} + {}", e, bias)
        shape = broadcast(c, shape, tc.shape)
    c.emit(n.outputs[0], e, TensorType(ta.dtype, shape), "gemm")


# conv, pooling and normalisation live in ops_nn.py; layout ops in ops_layout.py
from . import ops_attention, ops_index, ops_layout, ops_math, ops_nn, ops_rearrange  # noqa: E402,F401  (they register with `op`)
