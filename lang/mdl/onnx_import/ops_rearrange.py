"""ONNX nodes that rearrange or construct tensors -> mdl `reshape`/`transpose`, `arange`
comparisons: DepthToSpace, SpaceToDepth, EyeLike, OneHot."""

from __future__ import annotations

from ..dims import Dim
from ..types import DType, TensorType
from .convert import DTYPE_OF_ONNX, Ctx, Node
from .ir import Expr, dims_symbols, ex
from .ops import axis_of, op


def _dims(dims: list) -> str:
    return ", ".join(str(Dim.of(d)) for d in dims)


def _blocks(c: Ctx, n: Node) -> tuple[TensorType, int, str]:
    t = c.type_of(n.inputs[0])
    if t.rank != 4:
        c.fail("E1011", f"{n.op} takes a 4-D tensor, not {t}")
    block = int(n.attrs.get("blocksize", 0))
    if block < 1:
        c.fail("E1011", f"{n.op} needs a blocksize of 1 or more")
    mode = n.attrs.get("mode", "DCR")
    if mode not in ("DCR", "CRD"):
        c.unsupported(f"mode=`{mode}` is not supported")
    return t, block, mode


def _rearranged(c: Ctx, n: Node, t: TensorType, wide: list, perm: tuple, out: list) -> None:
    e = ex(f"{{}}.reshape({_dims(wide)}).transpose({', '.join(map(str, perm))})"
           f".reshape({_dims(out)})", c.arg(n.inputs[0]))  # fmt: skip
    e = Expr(e.text, e.refs, e.symbols | dims_symbols(wide + out))
    c.emit(n.outputs[0], e, TensorType(t.dtype, tuple(Dim.of(d) for d in out)), "moved")


@op("DepthToSpace", attrs="blocksize mode")
def _depth_to_space(c: Ctx, n: Node) -> None:
    t, b, mode = _blocks(c, n)
    batch, channels, h, w = (Dim.of(d) for d in t.shape)
    depth = channels.exact_div(Dim.of(b * b))
    if depth is None:
        c.fail("E1011", f"{channels} channels do not split into blocks of {b}x{b}")
    if mode == "DCR":
        wide, perm = [batch, b, b, depth, h, w], (0, 3, 4, 1, 5, 2)
    else:
        wide, perm = [batch, depth, b, b, h, w], (0, 1, 4, 2, 5, 3)
    _rearranged(c, n, t, wide, perm, [batch, depth, h * b, w * b])


@op("SpaceToDepth", attrs="blocksize mode")
def _space_to_depth(c: Ctx, n: Node) -> None:
    t, b, mode = _blocks(c, n)
    batch, channels, h, w = (Dim.of(d) for d in t.shape)
    rows, cols = h.exact_div(Dim.of(b)), w.exact_div(Dim.of(b))
    if rows is None or cols is None:
        c.fail("E1011", f"{h}x{w} does not split into blocks of {b}x{b}")
    perm = (0, 3, 5, 1, 2, 4) if mode == "DCR" else (0, 1, 3, 5, 2, 4)
    _rearranged(c, n, t, [batch, channels, rows, b, cols, b], perm,
                [batch, channels * (b * b), rows, cols])  # fmt: skip


@op("EyeLike", attrs="dtype k")
def _eye_like(c: Ctx, n: Node) -> None:
    t = c.type_of(n.inputs[0])
    if t.rank != 2:
        c.fail("E1011", f"EyeLike takes a 2-D tensor, not {t}")
    dtype = DTYPE_OF_ONNX.get(int(n.attrs["dtype"])) if "dtype" in n.attrs else t.dtype
    if dtype is None:
        c.fail("E1008", f"EyeLike to ONNX element type {n.attrs['dtype']} is not supported")
    rows, cols = (Dim.of(d) for d in t.shape)
    k = int(n.attrs.get("k", 0))
    shift = f" + {k}" if k > 0 else (f" - {-k}" if k < 0 else "")
    e = Expr(f"cast(arange({rows})[:, None]{shift} == arange({cols})[None, :], {dtype})", (),
             dims_symbols([rows, cols]))  # fmt: skip
    c.emit(n.outputs[0], e, TensorType(dtype, t.shape), "eye")


@op("OneHot", attrs="axis")
def _one_hot(c: Ctx, n: Node) -> None:
    ti, tv = c.type_of(n.inputs[0]), c.type_of(n.inputs[2])
    k = c.known(n.inputs[1])
    if k is None or k.is_symbolic or k.array.size != 1:
        c.fail("E1010", "the OneHot depth must be a constant")
    depth = int(k.array.reshape(-1)[0])
    if depth < 1 or tv.rank != 1 or tv.shape[0] != 2:
        c.fail("E1011", f"OneHot of depth {depth} with values {tv}")
    axis = axis_of(c, int(n.attrs.get("axis", -1)), ti.rank + 1)
    idx = c.arg(n.inputs[0])
    if ti.dtype is DType.BOOL:
        c.fail("E1011", "OneHot indices of dtype bool")
    if ti.dtype is not DType.I64:
        idx = ex("cast({}, i64)", idx)  # floats truncate, as ONNX casts them
    idx = ex(f"where({{}} < 0, {{}} + {depth}, {{}})", idx, idx, idx)
    shape = [Dim.of(d) for d in ti.shape]
    expanded = shape[:axis] + [Dim.of(1)] + shape[axis:]
    positions = ", ".join(str(depth) if i == axis else "1" for i in range(ti.rank + 1))
    hit = ex(f"arange({depth}).reshape({positions}) == {{}}.reshape({_dims(expanded)})", idx)
    hit = Expr(hit.text, hit.refs, hit.symbols | dims_symbols(expanded))
    values = c.arg(n.inputs[2])
    e = ex("where({}, {}[1], {}[0])", hit, values, values)
    out = shape[:axis] + [Dim.of(depth)] + shape[axis:]
    c.emit(n.outputs[0], e, TensorType(tv.dtype, tuple(out)), "one_hot")
