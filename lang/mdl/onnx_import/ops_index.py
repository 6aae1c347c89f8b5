"""ONNX element-indexing and loss nodes -> mdl `gather` on a flattened tensor.

GatherElements, NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss all pick
one element per output position along an axis. mdl's `gather` takes whole
slices, so the picked elements are addressed by their row-major position in
the flattened input: `index * stride[axis] + sum(arange(n_d) * stride[d])`.
The losses follow ONNX's reference: ignored targets weigh 0, and `mean` is
the weighted sum over the sum of the weights.
"""

from __future__ import annotations

from ..dims import Dim, dim_product
from ..types import DType, TensorType
from .convert import Ctx, Node, scalar_text
from .ir import Expr, dims_symbols, ex, hole, lit
from .ops import axis_of, op


def _let(c: Ctx, n: Node, tag: str, e: Expr, t: TensorType, hint: str, out: str = "") -> Expr:
    name = out or f"{n.outputs[0]}\x00{tag}"
    c.emit(name, e, t, hint)
    return hole(name)


def _dims(dims: list | tuple) -> str:
    return ", ".join(str(Dim.of(d)) for d in dims)


def take_along(c: Ctx, n: Node, x: Expr, tx: TensorType, idx: Expr, idx_shape: tuple,
               axis: int, tag: str = "") -> Expr:  # fmt: skip
    """`x` picked at `idx` (non-negative, i64) along `axis`, the other axes following the
    position in `idx` (numpy's take_along_axis): a gather on the flattened `x`."""
    rank = tx.rank
    strides = [dim_product(tx.shape[k + 1 :]) for k in range(rank)]
    terms: list[Expr] = [idx if strides[axis] == 1 else ex(f"{{}} * {strides[axis]}", idx)]
    symbols: set[str] = set(dims_symbols(list(tx.shape)) | dims_symbols(list(idx_shape)))
    for k in range(rank):
        size = Dim.of(idx_shape[k])
        if k == axis or size == 1:
            continue
        shape = [Dim.of(1)] * rank
        shape[k] = size
        term = f"arange({size})" + (f".reshape({_dims(shape)})" if rank > 1 else "")
        if strides[k] != 1:
            term += f" * {strides[k]}"
        terms.append(lit(term, frozenset(symbols)))
    linear = ex(" + ".join(["{}"] * len(terms)), *terms)
    total = dim_product(tx.shape)
    flat = ex(f"{{}}.reshape({total})", x)
    e = ex("gather({}, {})", flat, linear)
    e = Expr(e.text, e.refs, e.symbols | frozenset(symbols) | dims_symbols([total]))
    out_t = TensorType(tx.dtype, tuple(Dim.of(d) for d in idx_shape))
    return _let(c, n, f"picked{tag}", e, out_t, "picked")


def _index_i64(c: Ctx, name: str, size: Dim) -> Expr:
    """Indices as non-negative i64 (ONNX counts negative ones from the end)."""
    t = c.type_of(name)
    if t.dtype not in (DType.I32, DType.I64):
        c.fail("E1011", f"indices of dtype {t.dtype}")
    k = c.known(name)
    if k is not None and not k.is_symbolic and size.is_const:
        arr = k.array.astype("int64")
        arr = arr + (arr < 0) * int(size)
        c.set_known(f"{name}\x00i64", arr, DType.I64)
        return c.arg(f"{name}\x00i64")
    e = c.arg(name)
    if t.dtype is not DType.I64:
        e = ex("cast({}, i64)", e)
    return ex(f"where({{}} < 0, {{}} + {size}, {{}})", e, e, e)


@op("GatherElements", attrs="axis")
def _gather_elements(c: Ctx, n: Node) -> None:
    tx, ti = c.type_of(n.inputs[0]), c.type_of(n.inputs[1])
    if tx.rank != ti.rank or tx.rank == 0:
        c.fail("E1011", f"GatherElements of rank {tx.rank} with indices of rank {ti.rank}")
    axis = axis_of(c, int(n.attrs.get("axis", 0)), tx.rank)
    idx = _index_i64(c, n.inputs[1], Dim.of(tx.shape[axis]))
    picked = take_along(c, n, c.arg(n.inputs[0]), tx, idx, ti.shape, axis)
    c.emit(n.outputs[0], picked, TensorType(tx.dtype, ti.shape), "gathered")


# ---------------------------------------------------------------- losses


@op("NegativeLogLikelihoodLoss", attrs="ignore_index reduction")
def _nll(c: Ctx, n: Node) -> None:
    _loss(c, n, c.arg(n.inputs[0]), c.type_of(n.inputs[0]))


@op("SoftmaxCrossEntropyLoss", attrs="ignore_index reduction")
def _softmax_cross_entropy(c: Ctx, n: Node) -> None:
    t = c.type_of(n.inputs[0])
    if not t.dtype.is_float or t.rank < 2:
        c.fail("E1011", f"SoftmaxCrossEntropyLoss of {t}")
    x = c.arg(n.inputs[0])
    kept = TensorType(t.dtype, (t.shape[0], Dim.of(1), *t.shape[2:]))
    peak = _let(c, n, "peak", ex("max({}, axis=1, keep=true)", x), kept, "peak")
    weights = _let(c, n, "exp", ex("exp({} - {})", x, peak), t, "weights")
    # log of the probabilities, as ONNX's reference computes it (not x - max - log(sum))
    probs = ex("{} / sum({}, axis=1, keep=true)", weights, weights)
    log_out = n.outputs[1] if len(n.outputs) > 1 else ""
    log_prob = _let(c, n, "log_prob", ex("log({})", probs), t, "log_prob", log_out)
    _loss(c, n, log_prob, t)


def _loss(c: Ctx, n: Node, x: Expr, t: TensorType) -> None:
    """-x picked at the targets along axis 1, weighted, reduced."""
    if not t.dtype.is_float or t.rank < 2:
        c.fail("E1011", f"{n.op} of {t}")
    tt = c.type_of(n.inputs[1])
    if tt.rank != t.rank - 1:
        c.fail("E1011", f"{n.op}: targets of rank {tt.rank} for scores of rank {t.rank}")
    reduction = n.attrs.get("reduction", "mean")
    if reduction not in ("mean", "sum", "none"):
        c.unsupported(f"reduction=`{reduction}` is not supported")
    classes = Dim.of(t.shape[1])
    target = c.arg(n.inputs[1])
    if tt.dtype is not DType.I64:
        target = ex("cast({}, i64)", target)
    ignore = n.attrs.get("ignore_index")
    valid: Expr | None = None
    if ignore is not None:
        valid_t = TensorType(DType.BOOL, tt.shape)
        valid = _let(c, n, "valid", ex(f"{{}} != {int(ignore)}", target), valid_t, "valid")
        # an ignored target may lie outside the classes: pick class 0 instead, weighed 0
        target = _let(c, n, "target", ex("where({}, {}, 0)", valid, target),
                      TensorType(DType.I64, tt.shape), "target")  # fmt: skip
    idx_shape = (tt.shape[0], Dim.of(1), *tt.shape[1:])
    idx = ex(f"{{}}.reshape({_dims(idx_shape)})", target)
    idx = Expr(idx.text, idx.refs, idx.symbols | dims_symbols(list(idx_shape)))
    picked = take_along(c, n, x, t, idx, idx_shape, 1)
    loss_t = TensorType(t.dtype, tt.shape)
    loss = ex(f"-{{}}.reshape({_dims(tt.shape)})", picked)
    loss = Expr(loss.text, loss.refs, loss.symbols | dims_symbols(list(tt.shape)))
    weight: Expr | None = None
    if len(n.inputs) > 2 and n.inputs[2]:
        tw = c.type_of(n.inputs[2])
        if tw.rank != 1 or tw.shape[0] != classes:
            c.fail("E1011", f"{n.op}: a weight of shape {tw} for {classes} classes")
        w = c.arg(n.inputs[2])
        weight = ex("gather({}, {})", w, target)
        if valid is not None:
            weight = ex(f"where({{}}, {{}}, {scalar_text(0, t.dtype)})", valid, weight)
        weight = _let(c, n, "weight", weight, loss_t, "weight")
    elif valid is not None:
        weight = _let(c, n, "weight", ex(f"cast({{}}, {t.dtype})", valid), loss_t, "weight")
    if valid is not None:
        loss = ex("where({}, {}, 0.0)", valid, loss)
    if weight is not None:
        loss = ex("{} * {}", weight, loss)
    scalar = TensorType(t.dtype, ())
    match reduction:
        case "none":
            c.emit(n.outputs[0], loss, loss_t, "loss")
        case "sum":
            losses = _let(c, n, "losses", loss, loss_t, "losses")
            c.emit(n.outputs[0], ex("sum({})", losses), scalar, "loss")
        case _:
            losses = _let(c, n, "losses", loss, loss_t, "losses")
            if weight is None:
                c.emit(n.outputs[0], ex("mean({})", losses), scalar, "loss")
            else:
                c.emit(n.outputs[0], ex("sum({}) / sum({})", losses, weight), scalar, "loss")
