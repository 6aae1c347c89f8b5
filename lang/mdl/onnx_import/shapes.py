"""Fold what an ONNX graph computes from constants and shapes -> `Known` values, at import.

PyTorch's exporter writes shape arithmetic out as nodes: `Shape -> Gather ->
Unsqueeze -> Concat -> Reshape` to say `x.reshape(batch, steps, 4, 8)`. Here
those nodes run on `Known` arrays whose int entries may be symbolic `Dim`s
(`batch`), so a dynamic-batch model stays dynamic and the reshape is written
with named dims. Nodes whose inputs are all numeric constants are evaluated
with onnx's reference implementation, under a size limit, so a hostile file
cannot make the importer allocate gigabytes.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..dims import Dim
from ..types import DType
from .convert import DTYPE_OF_ONNX, MAX_FOLD_ELEMENTS, Ctx, Node, normalize
from .ir import Known, Tensor

# ops whose output is no larger than their inputs (or a small multiple): safe to evaluate
_SAFE_NUMERIC = frozenset(
    """Abs Add And Cast CastLike Ceil Concat Div Equal Exp Flatten Floor Gather Greater
    GreaterOrEqual Identity Less LessOrEqual Log Max Min Mod Mul Neg Not Or ReduceMax ReduceMean
    ReduceMin ReduceProd ReduceSum Reshape Shape Sign Size Slice Sqrt Squeeze Sub Transpose
    Unsqueeze Where Xor Reciprocal Pow Sin Cos Tanh Sigmoid Relu Split Trilu Range
    ConstantOfShape Expand Tile""".split()
)


def fold_known(c: Ctx, n: Node) -> bool:
    """Compute `n` at import when its inputs allow; True when its outputs are now set."""
    if n.op == "Shape":
        return _shape(c, n)
    if n.op == "Size":
        src = c.value(n.inputs[0])
        dims = _dims_of(c, n.inputs[0], src)
        total: Any = 1
        for d in dims:
            total = Dim.of(total) * Dim.of(d)
        c.set_known(n.outputs[0], _obj([total]).reshape(()), DType.I64)
        return True
    if n.op == "CastLike" and _cast_like(c, n):
        return True
    present = [i for i in n.inputs if i]
    knowns = [c.known(i) for i in present]
    if not present or any(k is None for k in knowns):
        return False
    if any(k.is_symbolic for k in knowns):  # type: ignore[union-attr]
        return _symbolic(c, n)
    if n.op not in _SAFE_NUMERIC or not _small_enough(c, n):
        return False
    weights = c.model.initializers
    if any(i in weights and weights[i].dtype.kind == "f" and weights[i].size > 1 for i in present):
        return False  # a weight stays a parameter: computing with it is run-time work
    if not _numeric(c, n):
        return False
    for out in n.outputs:
        if out:
            c.recipe[out] = n
    return True


def _cast_like(c: Ctx, n: Node) -> bool:
    """CastLike of a constant reads only the element type of its second input, which may be
    a run-time tensor (`CastLike(-inf, mask)` in an attention mask's padding)."""
    k = c.known(n.inputs[0])
    if k is None or k.is_symbolic or k.dtype is None or len(n.inputs) < 2 or not n.inputs[1]:
        return False
    target = c.type_of(n.inputs[1]).dtype
    if k.array.size > MAX_FOLD_ELEMENTS or (target.is_int and k.dtype.is_float):
        return False  # float -> int rounding and saturation are left to the run-time cast
    c.set_known(n.outputs[0], k.array.astype(target.numpy), target)
    return True


def _dims_of(c: Ctx, name: str, v: Known | Tensor) -> list[Any]:
    if isinstance(v, Tensor):
        return list(v.type.shape)
    return [int(d) for d in v.array.shape]


def _obj(items: list[Any]) -> np.ndarray:
    out = np.empty(len(items), dtype=object)
    for i, x in enumerate(items):
        out[i] = x
    return out


def _shape(c: Ctx, n: Node) -> bool:
    dims = _dims_of(c, n.inputs[0], c.value(n.inputs[0]))
    rank = len(dims)
    start = int(n.attrs.get("start", 0))
    end = n.attrs.get("end")
    start = max(0, min(rank, start + rank if start < 0 else start))
    stop = rank if end is None else int(end)
    stop = max(0, min(rank, stop + rank if stop < 0 else stop))
    c.set_known(n.outputs[0], _obj([Dim.of(d) for d in dims[start:stop]]), DType.I64)
    return True


def _small_enough(c: Ctx, n: Node) -> bool:
    """Bound the output size before evaluating: the ops that grow their input get checked."""
    ins = [c.known(i) for i in n.inputs if i]
    total = sum(int(k.array.size) for k in ins if k is not None)
    if total > MAX_FOLD_ELEMENTS:
        return False
    match n.op:
        case "ConstantOfShape" | "Expand":
            shape = ins[-1].array if n.op == "Expand" else ins[0].array  # type: ignore[union-attr]
            if shape.size and (shape < 0).any():
                return False
            out = int(np.prod(shape.astype(object))) if shape.size else 1
            if n.op == "Expand":
                out = max(out, int(ins[0].array.size))  # type: ignore[union-attr]
            return out <= MAX_FOLD_ELEMENTS
        case "Tile":
            reps = ins[1].array  # type: ignore[union-attr]
            if (reps < 0).any():
                return False
            return int(ins[0].array.size) * int(np.prod(reps.astype(object))) <= MAX_FOLD_ELEMENTS  # type: ignore[union-attr]
        case "Range":
            start, limit, delta = (float(k.array.reshape(-1)[0]) for k in ins)  # type: ignore[union-attr]
            return delta != 0 and (limit - start) / delta <= MAX_FOLD_ELEMENTS
    return True


def _numeric(c: Ctx, n: Node) -> bool:
    """Evaluate one node with onnx's reference implementation."""
    import onnx
    from onnx import helper
    from onnx.reference import ReferenceEvaluator

    from .convert import ONNX_OF_DTYPE

    feeds: dict[str, np.ndarray] = {}
    inputs = []
    for i, name in enumerate(n.inputs):
        if not name:
            continue
        k = c.known(name)
        assert k is not None
        if k.dtype is None:
            return False
        key = f"in{i}"
        feeds[key] = k.array
        inputs.append(helper.make_tensor_value_info(key, ONNX_OF_DTYPE[k.dtype], k.array.shape))
    names = [f"in{i}" if name else "" for i, name in enumerate(n.inputs)]
    outs = [f"out{i}" for i in range(len(n.outputs))]
    attrs = {k: v for k, v in n.attrs.items() if not isinstance(v, onnx.AttributeProto)}
    if any(isinstance(v, np.ndarray) for v in attrs.values()):
        attrs = {k: (onnx.numpy_helper.from_array(v) if isinstance(v, np.ndarray) else v)
                 for k, v in attrs.items()}  # fmt: skip
    node = helper.make_node(n.op, names, outs, **attrs)
    graph = helper.make_graph(
        [node], "fold", inputs, [helper.make_empty_tensor_value_info(o) for o in outs]
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", c.opset)])
    try:
        results = ReferenceEvaluator(model).run(None, feeds)
    except Exception:  # noqa: BLE001  (an invalid node: converted at run time, reported there)
        return False
    for name, arr in zip(n.outputs, results, strict=True):
        if not name:
            continue
        arr = np.asarray(arr)
        dtype = DType.from_numpy(arr.dtype)
        if dtype is None or arr.size > MAX_FOLD_ELEMENTS:
            return False
        c.set_known(name, arr, dtype)
    return True


# ---------------------------------------------------------------- symbolic folding


def _ints(c: Ctx, name: str) -> list[int] | None:
    k = c.known(name) if name else None
    if k is None or k.is_symbolic:
        return None
    return [int(x) for x in k.array.reshape(-1)]


def _symbolic(c: Ctx, n: Node) -> bool:
    """Shape arithmetic on arrays holding `Dim`s; False when the op is not one of them."""
    arrs = [c.known(i).array if i else None for i in n.inputs]  # type: ignore[union-attr]
    first = c.known(n.inputs[0])
    assert first is not None
    out = n.outputs[0]
    match n.op:
        case "Identity":
            c.set_known(out, arrs[0], first.dtype)  # type: ignore[arg-type]
        case "Cast" | "CastLike":
            to = n.attrs.get("to") if n.op == "Cast" else None
            if n.op == "CastLike":
                to = _onnx_type(c.known(n.inputs[1]))
            dtype = DTYPE_OF_ONNX.get(int(to)) if to is not None else None
            if dtype is None or not dtype.is_int:
                return False  # symbolic dims become floats or bools only at run time
            c.set_known(out, arrs[0], dtype)  # type: ignore[arg-type]
        case "Gather":
            idx = c.known(n.inputs[1])
            if idx is None or idx.is_symbolic:
                return False
            axis = int(n.attrs.get("axis", 0))
            c.set_known(out, np.take(arrs[0], idx.array.astype(np.int64), axis=axis), first.dtype)  # type: ignore[arg-type]
        case "Unsqueeze" | "Squeeze" | "Reshape" | "Flatten":
            return _reshape_like(c, n, first)
        case "Concat":
            axis = int(n.attrs.get("axis", 0))
            parts = [a.astype(object) for a in arrs if a is not None]
            c.set_known(out, np.concatenate(parts, axis=axis), first.dtype)
        case "Slice":
            return _slice(c, n, first)
        case "Add" | "Sub" | "Mul":
            fn = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply}[n.op]
            res = fn(_dims(arrs[0]), _dims(arrs[1]))
            c.set_known(out, res, first.dtype)
        case "Div":
            a, b = np.broadcast_arrays(_dims(arrs[0]), _dims(arrs[1]))
            res = np.empty(a.shape, dtype=object)
            for i in np.ndindex(a.shape):
                den = b[i]
                if not den.is_const or den.value == 0:
                    return False
                q = a[i].exact_div(den)
                res[i] = q if q is not None else a[i].floordiv(den)  # dims are >= 0: trunc = floor
            c.set_known(out, res, first.dtype)
        case "Equal":
            a, b = np.broadcast_arrays(_dims(arrs[0]), _dims(arrs[1]))
            res = np.empty(a.shape, dtype=bool)
            for i in np.ndindex(a.shape):
                verdict = _equal(a[i], b[i])
                if verdict is None:
                    return False
                res[i] = verdict
            c.set_known(out, res, DType.BOOL)
        case "Where":
            cond = c.known(n.inputs[0])
            if cond is None or cond.is_symbolic:
                return False
            res = np.where(cond.array.astype(bool), _dims(arrs[1]), _dims(arrs[2]))
            c.set_known(out, res, c.known(n.inputs[1]).dtype)  # type: ignore[union-attr]
        case _:
            return False
    return True


def _onnx_type(k: Known | None) -> int | None:
    from .convert import ONNX_OF_DTYPE

    return ONNX_OF_DTYPE.get(k.dtype) if k is not None and k.dtype is not None else None


def _dims(arr: np.ndarray | None) -> np.ndarray:
    assert arr is not None
    out = np.empty(arr.shape, dtype=object)
    for i in np.ndindex(arr.shape):
        out[i] = Dim.of(int(arr[i]) if isinstance(arr[i], (int, np.integer)) else arr[i])
    return out


def _equal(a: Dim, b: Dim) -> bool | None:
    if a == b:
        return True
    if a.is_const and b.is_const:
        return False
    # a symbolic dim is at least 1, so it never equals zero or a negative marker like -1
    for sym, k in ((a, b), (b, a)):
        if not sym.is_const and k.is_const and k.value is not None and k.value <= 0:
            if all(coeff > 0 for _, coeff in sym.terms):
                return False
    return None


def _reshape_like(c: Ctx, n: Node, first: Known) -> bool:
    arr = first.array
    match n.op:
        case "Unsqueeze" | "Squeeze":
            axes = _ints(c, n.inputs[1]) if len(n.inputs) > 1 and n.inputs[1] else None
            if axes is None:
                axes = list(n.attrs.get("axes", []))
            if n.op == "Unsqueeze":
                rank = arr.ndim + len(axes)
                shape = list(arr.shape)
                for ax in sorted(a + rank if a < 0 else a for a in axes):
                    shape.insert(ax, 1)
            else:
                squeeze = {a + arr.ndim if a < 0 else a for a in axes} if axes else {
                    i for i, d in enumerate(arr.shape) if d == 1}  # fmt: skip
                shape = [d for i, d in enumerate(arr.shape) if i not in squeeze]
        case "Flatten":
            axis = int(n.attrs.get("axis", 1))
            axis = axis + arr.ndim if axis < 0 else axis
            shape = [int(np.prod(arr.shape[:axis])), int(np.prod(arr.shape[axis:]))]
        case _:  # Reshape
            target = _ints(c, n.inputs[1])
            if target is None:
                return False
            shape = [arr.shape[i] if d == 0 and not n.attrs.get("allowzero") else d
                     for i, d in enumerate(target)]  # fmt: skip
    c.set_known(n.outputs[0], arr.reshape(shape), first.dtype)
    return True


def _slice(c: Ctx, n: Node, first: Known) -> bool:
    starts, ends = _ints(c, n.inputs[1]), _ints(c, n.inputs[2])
    if starts is None or ends is None:
        return False
    axes = _ints(c, n.inputs[3]) if len(n.inputs) > 3 and n.inputs[3] else list(range(len(starts)))
    steps = _ints(c, n.inputs[4]) if len(n.inputs) > 4 and n.inputs[4] else [1] * len(starts)
    if axes is None or steps is None or 0 in steps:
        return False
    index = [slice(None)] * first.array.ndim
    for s, e, a, st in zip(starts, ends, axes, steps, strict=True):
        index[a + first.array.ndim if a < 0 else a] = slice(s, e, st)
    c.set_known(n.outputs[0], first.array[tuple(index)], first.dtype)
    return True


__all__ = ["fold_known", "normalize"]
