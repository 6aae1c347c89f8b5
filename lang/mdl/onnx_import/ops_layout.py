"""ONNX layout and construction nodes -> mdl: reshape, transpose, slice, gather, concat, split, ...

Shape operands (Reshape's target, Slice's bounds, ...) must be `Known` after
shapes.py has folded the graph, possibly holding symbolic dims: they are
written into the mdl text (`x.reshape(batch, 16, 4, 8)`). A shape that depends
on tensor values at run time is E1010.
"""

from __future__ import annotations

import numpy as np

from ..dims import Dim, dim_product
from ..types import DType, TensorType
from .convert import DTYPE_OF_ONNX, Ctx, Node, scalar_text
from .ir import Expr, dims_symbols, ex, lit
from .ops import axis_of, broadcast, op, operands

BIG = 2**62  # ONNX writes "to the end" as INT64_MAX (or near it)


def known_list(c: Ctx, name: str, what: str) -> list:
    k = c.known(name)
    if k is None:
        c.fail("E1010", f"the {what} is computed from tensor values at run time",
               help="mdl needs shapes known when compiling (symbolic dims are fine)")  # fmt: skip
    return [Dim.of(int(x)) if isinstance(x, (int, np.integer)) else x for x in k.array.reshape(-1)]


def ints_of(c: Ctx, name: str, what: str) -> list[int]:
    values = known_list(c, name, what)
    if not all(Dim.of(v).is_const for v in values):
        c.fail("E1010", f"the {what} must be constant, not {', '.join(map(str, values))}")
    return [int(v) for v in values]


def dims_expr(dims: list | tuple) -> Expr:
    return lit(", ".join(str(Dim.of(d)) for d in dims), dims_symbols(list(dims)), raw=True)


def reshape_to(c: Ctx, n: Node, x: Expr, t: TensorType, shape: list) -> None:
    shape = [Dim.of(d) for d in shape]
    if tuple(shape) == tuple(t.shape):
        c.emit(n.outputs[0], x, t, "h")
        return
    c.emit(n.outputs[0], ex("{}.reshape({})", x, dims_expr(shape)), TensorType(t.dtype, tuple(shape)),
           "reshape")  # fmt: skip


@op("Reshape", attrs="allowzero")
def _reshape(c: Ctx, n: Node) -> None:
    t = c.type_of(n.inputs[0])
    target = known_list(c, n.inputs[1], "target shape")
    shape: list = []
    for i, d in enumerate(target):
        if d == 0 and not n.attrs.get("allowzero", 0):
            if i >= t.rank:
                c.fail("E1011", f"a 0 in the target shape copies axis {i}, which the input lacks")
            d = t.shape[i]
        shape.append(d)
    unknown = [i for i, d in enumerate(shape) if d == -1]
    if len(unknown) > 1:
        c.fail("E1011", "the target shape has more than one -1")
    if unknown:
        rest = dim_product(d for i, d in enumerate(shape) if i != unknown[0])
        quotient = dim_product(t.shape).exact_div(rest) if rest != 0 else None
        if quotient is None:
            c.fail("E1010", f"cannot infer the -1 in the target shape {shape}")
        shape[unknown[0]] = quotient
    if any(Dim.of(d).is_const and int(d) <= 0 for d in shape):
        c.fail("E1003", f"the target shape {[str(d) for d in shape]} has an empty or negative dim")
    reshape_to(c, n, c.arg(n.inputs[0]), t, shape)


@op("Flatten", attrs="axis")
def _flatten(c: Ctx, n: Node) -> None:
    t = c.type_of(n.inputs[0])
    axis = int(n.attrs.get("axis", 1))
    axis = axis + t.rank if axis < 0 else axis
    shape = [dim_product(t.shape[:axis]), dim_product(t.shape[axis:])]
    reshape_to(c, n, c.arg(n.inputs[0]), t, shape)


@op("Squeeze", "Unsqueeze", attrs="axes")
def _squeeze(c: Ctx, n: Node) -> None:
    t = c.type_of(n.inputs[0])
    if "axes" in n.attrs:
        c.unsupported(f"`axes` is an input of {n.op} from opset 13 on")
    axes = ints_of(c, n.inputs[1], "axes") if len(n.inputs) > 1 and n.inputs[1] else []
    shape = list(t.shape)
    if n.op == "Unsqueeze":
        rank = t.rank + len(axes)
        for a in sorted(axis_of(c, a, rank) for a in axes):
            shape.insert(a, Dim.of(1))
    else:
        drop = {axis_of(c, a, t.rank) for a in axes} or {i for i, d in enumerate(shape) if d == 1}
        if any(shape[a] != 1 for a in drop):
            c.fail("E1011", "Squeeze of an axis whose size is not 1")
        shape = [d for i, d in enumerate(shape) if i not in drop]
    reshape_to(c, n, c.arg(n.inputs[0]), t, shape)


@op("Transpose", attrs="perm")
def _transpose(c: Ctx, n: Node) -> None:
    (x,), (t,) = operands(c, n.inputs)
    perm = [int(p) for p in n.attrs.get("perm", range(t.rank - 1, -1, -1))]
    if sorted(perm) != list(range(t.rank)):
        c.fail("E1011", f"perm {perm} is not a permutation of {t.rank} axes")
    if perm == list(range(t.rank)):
        c.emit(n.outputs[0], x, t, "h")
        return
    shape = tuple(t.shape[p] for p in perm)
    e = ex("{}.T", x) if t.rank == 2 else ex(f"{{}}.transpose({', '.join(map(str, perm))})", x)
    c.emit(n.outputs[0], e, TensorType(t.dtype, shape), "transpose")


@op("Concat", attrs="axis")
def _concat(c: Ctx, n: Node) -> None:
    exprs, types = operands(c, [i for i in n.inputs if i])
    rank = types[0].rank
    axis = axis_of(c, int(n.attrs["axis"]) if "axis" in n.attrs else 0, rank)
    total = Dim.of(0)
    for t in types:
        if t.rank != rank or any(t.shape[i] != types[0].shape[i] for i in range(rank) if i != axis):
            c.fail("E1010", f"Concat of {', '.join(map(str, types))} along axis {axis}")
        total = total + Dim.of(t.shape[axis])
    if len(exprs) == 1:
        c.emit(n.outputs[0], exprs[0], types[0], "h")
        return
    shape = tuple(total if i == axis else d for i, d in enumerate(types[0].shape))
    e = ex(f"concat({', '.join(['{}'] * len(exprs))}, axis={axis})", *exprs)
    c.emit(n.outputs[0], e, TensorType(types[0].dtype, shape), "concat")


@op("Split", attrs="axis num_outputs split")
def _split(c: Ctx, n: Node) -> None:
    t = c.type_of(n.inputs[0])
    axis = axis_of(c, int(n.attrs.get("axis", 0)), t.rank)
    dim = Dim.of(t.shape[axis])
    count = len(n.outputs)
    if "split" in n.attrs:
        c.unsupported("`split` is an input of Split from opset 13 on")
    if len(n.inputs) > 1 and n.inputs[1]:
        sizes: list[Dim] = [Dim.of(s) for s in known_list(c, n.inputs[1], "split sizes")]
    elif "num_outputs" in n.attrs and not dim.is_const and dim.exact_div(count) is None:
        c.fail("E1010", f"cannot split the symbolic dim {dim} into {count} parts")
    else:
        if not dim.is_const:
            part = dim.exact_div(count)
            if part is None:
                c.fail("E1010", f"cannot split the symbolic dim {dim} into {count} equal parts")
            sizes = [part] * count
        else:
            step = -(-int(dim) // count)
            sizes = [Dim.of(min(step, int(dim) - i * step)) for i in range(count)]
    if len(sizes) != count or sum(sizes, Dim.of(0)) != dim:
        c.fail("E1011", f"split sizes {[str(s) for s in sizes]} do not add up to {dim}")
    x = c.arg(n.inputs[0])
    if count == 1:
        c.emit(n.outputs[0], x, t, "h")
        return
    if all(s == sizes[0] for s in sizes):
        e = ex(f"split({{}}, {count}, axis={axis})", x)
    else:
        e = ex(f"split({{}}, [{{}}], axis={axis})", x, dims_expr(sizes))
    types = [TensorType(t.dtype, tuple(s if i == axis else d for i, d in enumerate(t.shape)))
             for s in sizes]  # fmt: skip
    c.emit(n.outputs, e, types, "part")


@op("Slice")
def _slice(c: Ctx, n: Node) -> None:
    t = c.type_of(n.inputs[0])
    starts = known_list(c, n.inputs[1], "slice start")
    ends = known_list(c, n.inputs[2], "slice end")
    axes = ints_of(c, n.inputs[3], "slice axes") if len(n.inputs) > 3 and n.inputs[3] else list(
        range(len(starts)))  # fmt: skip
    steps = (
        ints_of(c, n.inputs[4], "slice steps")
        if len(n.inputs) > 4 and n.inputs[4]
        else [1] * len(starts)
    )
    if not len(starts) == len(ends) == len(axes) == len(steps):
        c.fail("E1011", "Slice's starts, ends, axes and steps differ in length")
    items = [":"] * t.rank
    shape = list(t.shape)
    backwards: list[tuple[int, list[int]]] = []  # (axis, indices) taken with `gather`
    for s, e, a, step in zip(starts, ends, axes, steps, strict=True):
        a = axis_of(c, a, t.rank)
        if step == 0:
            c.fail("E1011", "a slice step of 0")
        if step < 0:
            indices = _backwards(c, s, e, step, Dim.of(t.shape[a]))
            backwards.append((a, indices))
            shape[a] = Dim.of(len(indices))
            continue
        dim = Dim.of(t.shape[a])
        lo, hi = _bound(s, dim, 0), _bound(e, dim, None)
        hi_dim = dim if hi is None else hi
        length = (hi_dim - lo + (step - 1)).floordiv(step) if step > 1 else hi_dim - lo
        if length.is_const and int(length) <= 0:
            c.fail("E1003", f"the slice on axis {a} is empty")
        shape[a] = length
        lo_text = "" if lo == 0 else str(lo)
        hi_text = "" if hi is None else str(hi)
        items[a] = f"{lo_text}:{hi_text}" + (f":{step}" if step != 1 else "")
    while items and items[-1] == ":":
        items.pop()
    x = c.arg(n.inputs[0])
    if not items and not backwards:
        c.emit(n.outputs[0], x, t, "h")
        return
    e = ex(f"{{}}[{', '.join(items)}]", x) if items else x
    e = Expr(e.text, e.refs, e.symbols | dims_symbols(starts + ends))
    for a, indices in backwards:
        name = f"{n.outputs[0]}\x00rows{a}"
        c.set_known(name, np.array(indices, dtype=np.int64), DType.I64)
        e = ex(f"gather({{}}, {{}}, axis={a})", e, c.arg(name))
    c.emit(n.outputs[0], e, TensorType(t.dtype, tuple(shape)), "part")


def _backwards(c: Ctx, start: Dim, end: Dim, step: int, dim: Dim) -> list[int]:
    """The indices a backwards ONNX slice visits: bounds clamped as the spec says."""
    if not (dim.is_const and start.is_const and end.is_const):
        c.unsupported("a backwards slice of a symbolic dim is not supported")
    size, s, e = int(dim), int(start), int(end)
    s = min(max(s + size if s < 0 else s, 0), size - 1)
    e = min(max(e + size if e < 0 else e, -1), size - 1)
    indices = list(range(s, e, step))
    if not indices:
        c.fail("E1003", "the backwards slice is empty")
    return indices


def _bound(b: Dim, dim: Dim, default: int | None) -> Dim | None:
    """An ONNX slice bound, clamped, as a non-negative dim; None for "to the end"."""
    if not b.is_const:
        return b
    v = int(b)
    if v >= BIG // 4:
        return None if default is None else dim
    if v < 0:
        if v <= -BIG // 4:
            return Dim.of(0)
        out = dim + v
        return Dim.of(max(0, int(out))) if out.is_const else out
    if dim.is_const and v > int(dim):
        return None if default is None else dim
    return Dim.of(v)


@op("Gather", attrs="axis")
def _gather(c: Ctx, n: Node) -> None:
    t = c.type_of(n.inputs[0])
    axis = axis_of(c, int(n.attrs.get("axis", 0)), t.rank)
    idx = c.known(n.inputs[1])
    x = c.arg(n.inputs[0])
    if idx is not None and idx.array.ndim == 0 and not idx.is_symbolic:
        i = int(idx.array)
        dim = Dim.of(t.shape[axis])
        if dim.is_const and not -int(dim) <= i < int(dim):
            c.fail("E1011", f"index {i} is out of range for axis {axis} of size {dim}")
        items = [":"] * axis + [str(i)]
        shape = tuple(d for k, d in enumerate(t.shape) if k != axis)
        c.emit(n.outputs[0], ex(f"{{}}[{', '.join(items)}]", x), TensorType(t.dtype, shape), "part")
        return
    ti = c.type_of(n.inputs[1])
    if ti.dtype not in (DType.I32, DType.I64):
        c.fail("E1011", f"Gather indices of dtype {ti.dtype}")
    ids = c.arg(n.inputs[1])
    shape = (*t.shape[:axis], *ti.shape, *t.shape[axis + 1 :])
    e = ex(f"gather({{}}, {{}}{f', axis={axis}' if axis else ''})", x, ids)
    c.emit(n.outputs[0], e, TensorType(t.dtype, shape), "gather")


@op("Expand")
def _expand(c: Ctx, n: Node) -> None:
    t = c.type_of(n.inputs[0])
    target = known_list(c, n.inputs[1], "expanded shape")
    shape = broadcast(c, t.shape, tuple(target))
    x = c.arg(n.inputs[0])
    if shape == tuple(t.shape):
        c.emit(n.outputs[0], x, t, "h")
        return
    c.emit(n.outputs[0], ex("expand({}, {})", x, dims_expr(shape)), TensorType(t.dtype, shape),
           "expand")  # fmt: skip


@op("Tile")
def _tile(c: Ctx, n: Node) -> None:
    t = c.type_of(n.inputs[0])
    reps = ints_of(c, n.inputs[1], "repeats")
    if len(reps) != t.rank or min(reps, default=1) < 1:
        c.fail("E1011", f"Tile repeats {reps} do not fit rank {t.rank}")
    e, shape = c.arg(n.inputs[0]), list(t.shape)
    for axis, r in enumerate(reps):
        if r > 1:
            e = ex(f"concat({', '.join(['{}'] * r)}, axis={axis})", *([e] * r))
            shape[axis] = Dim.of(shape[axis]) * r
    c.emit(n.outputs[0], e, TensorType(t.dtype, tuple(shape)), "tile")


@op("Pad", attrs="mode")
def _pad(c: Ctx, n: Node) -> None:
    t = c.type_of(n.inputs[0])
    if n.attrs.get("mode", "constant") != "constant":
        c.unsupported(f"mode=`{n.attrs['mode']}` is not supported (only `constant`)")
    pads = known_list(c, n.inputs[1], "pads")
    axes = ints_of(c, n.inputs[3], "pad axes") if len(n.inputs) > 3 and n.inputs[3] else list(
        range(t.rank))  # fmt: skip
    if len(pads) != 2 * len(axes):
        c.fail("E1011", f"{len(pads)} pads for {len(axes)} axes")
    full = [Dim.of(0)] * (2 * t.rank)
    for i, a in enumerate(axes):
        a = axis_of(c, a, t.rank)
        full[a], full[t.rank + a] = Dim.of(pads[i]), Dim.of(pads[len(axes) + i])
    if any(p.is_const and int(p) < 0 for p in full):
        c.unsupported("negative pads are not supported (slice instead)")
    value = ""
    if len(n.inputs) > 2 and n.inputs[2]:
        k = c.known(n.inputs[2])
        if k is None:
            c.fail("E1010", "the pad value must be a constant")
        v = k.array.reshape(-1)[0].item()
        if v != 0:
            value = f", value={scalar_text(v, t.dtype)}"
    shape = tuple(Dim.of(d) + full[i] + full[t.rank + i] for i, d in enumerate(t.shape))
    e = ex(f"pad({{}}, [{{}}]{value})", c.arg(n.inputs[0]), dims_expr(full))
    c.emit(n.outputs[0], e, TensorType(t.dtype, shape), "pad")


@op("ConstantOfShape", attrs="value")
def _constant_of_shape(c: Ctx, n: Node) -> None:
    shape = known_list(c, n.inputs[0], "shape")
    arr = n.attrs.get("value", np.zeros(1, dtype=np.float32))
    dtype = DType.from_numpy(arr.dtype)
    if dtype is None:
        c.fail("E1008", f"ConstantOfShape of {arr.dtype} is not supported")
    if any(Dim.of(d).is_const and int(d) <= 0 for d in shape):
        c.fail("E1003", "ConstantOfShape with an empty dim")
    c.filled[n.outputs[0]] = arr.reshape(-1)[0].item()
    value = scalar_text(arr.reshape(-1)[0].item(), dtype)
    e = ex(f"full([{{}}], {value}, dtype={dtype})", dims_expr(shape))
    c.emit(n.outputs[0], e, TensorType(dtype, tuple(Dim.of(d) for d in shape)), "filled")


@op("Range")
def _range(c: Ctx, n: Node) -> None:
    start, limit, delta = (known_list(c, i, "range bound") for i in n.inputs[:3])
    k = c.known(n.inputs[0])
    dtype = k.dtype if k is not None and k.dtype is not None else DType.I64
    if not dtype.is_int:
        c.unsupported("a Range of floats with symbolic bounds is not supported")
    lo, hi, step = start[0], limit[0], delta[0]
    if not Dim.of(step).is_const or int(step) == 0:
        c.fail("E1010", "the Range step must be a non-zero constant")
    step_i = int(step)
    length = (Dim.of(hi) - lo + (step_i - 1 if step_i > 0 else step_i + 1)).floordiv(step_i)
    args = str(hi) if lo == 0 and step_i == 1 else f"{lo}, {hi}"
    if step_i != 1:
        args += f", step={step_i}"
    if dtype is not DType.I64:
        args += f", dtype={dtype}"
    e = lit(f"arange({args})", dims_symbols([lo, hi]))
    c.emit(n.outputs[0], e, TensorType(dtype, (length,)), "positions")


@op("Trilu", attrs="upper")
def _trilu(c: Ctx, n: Node) -> None:
    t = c.type_of(n.inputs[0])
    if t.rank < 2:
        c.fail("E1011", "Trilu needs a tensor of rank 2 or more")
    k = ints_of(c, n.inputs[1], "diagonal")[0] if len(n.inputs) > 1 and n.inputs[1] else 0
    rows, cols = Dim.of(t.shape[-2]), Dim.of(t.shape[-1])
    upper = bool(n.attrs.get("upper", 1))
    # upper keeps col - row >= k, lower keeps col - row <= k
    match (upper, k):
        case (True, 1) | (False, -1):
            compare, offset = (">" if upper else "<"), ""
        case _:
            compare = ">=" if upper else "<="
            offset = f" + {k}" if k > 0 else (f" - {-k}" if k < 0 else "")
    cond = lit(f"arange({cols})[None, :] {compare} arange({rows})[:, None]{offset}",
               dims_symbols([rows, cols]))  # fmt: skip
    src = c.known(n.inputs[0])
    first: object = None
    if src is not None and not src.is_symbolic and src.array.size and t.rank == 2:
        if (src.array == src.array.reshape(-1)[0]).all():
            first = src.array.reshape(-1)[0].item()
    elif n.inputs[0] in c.filled and t.rank == 2:
        first = c.filled[n.inputs[0]]
    zero = scalar_text(0, t.dtype)  # false, 0 or 0.0: the literal of the dtype
    if first is not None:  # a filled matrix: the mask itself, or a `where` of it
        if t.dtype is DType.BOOL and bool(first):
            c.emit(n.outputs[0], cond, t, "mask")
        else:
            value = scalar_text(first, t.dtype)
            c.emit(n.outputs[0], ex(f"where({{}}, {value}, {zero})", cond), t, "mask")
        return
    x = c.arg(n.inputs[0])
    c.emit(n.outputs[0], ex(f"where({{}}, {{}}, {zero})", cond, x), t, "masked")


@op("Cast", "CastLike", attrs="to saturate round_mode")
def _cast(c: Ctx, n: Node) -> None:
    t = c.type_of(n.inputs[0])
    to = n.attrs.get("to") if n.op == "Cast" else None
    dtype = DTYPE_OF_ONNX.get(int(to)) if to is not None else c.type_of(n.inputs[1]).dtype
    if dtype is None:
        c.fail("E1008", f"Cast to ONNX element type {to}, which mdl does not support")
    x = c.arg(n.inputs[0])
    if dtype is t.dtype:
        c.emit(n.outputs[0], x, t, "h")
        return
    c.emit(n.outputs[0], ex(f"cast({{}}, {dtype})", x), TensorType(dtype, t.shape), "cast")


@op("Shape", "Size", attrs="start end")
def _shape_of(c: Ctx, n: Node) -> None:
    raise AssertionError("Shape and Size are always folded")  # shapes.fold_known


__all__ = ["known_list", "ints_of", "reshape_to"]
