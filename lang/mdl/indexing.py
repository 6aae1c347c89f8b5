"""Indexing a tensor (`x[..., 0:4]`, `i[:, None]`, `x[:, -1]`, `table[ids]`) -> primitive nodes.

Basic indexing becomes one `slice` node (when any axis is narrowed) and one
`reshape` node (when integer indices drop axes or `None` inserts them). A
single integer-tensor index with full slices elsewhere becomes `gather`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .dims import Dim
from .elab_scope import Frame, Scope
from .syntax import ast
from .values import POISON, Tensor, describe

if TYPE_CHECKING:
    from .elaborate import Elaborator, Frame, Scope


def index_tensor(el: Elaborator, base: Tensor, e: ast.Subscript, frame: Frame, scope: Scope) -> Any:
    shape = list(base.type.shape)
    rank = len(shape)
    items: list[tuple[str, Any, Any]] = []  # (kind, value, item)
    for item in e.items:
        match item:
            case ast.EllipsisItem():
                items.append(("ellipsis", None, item))
            case ast.SliceItem():
                parts = []
                for part in (item.start, item.stop, item.step):
                    v = el.eval_expr(part, frame, scope) if part is not None else None
                    if v is POISON:
                        return POISON
                    if v is not None and not _intlike(v):
                        return el.err(
                            "E0310",
                            f"slice bounds must be compile-time integers, found {describe(v)}",
                            part.span,
                        )
                    parts.append(Dim.of(v) if v is not None else None)
                items.append(("slice", tuple(parts), item))
            case ast.Arg(name=None):
                v = el.eval_expr(item.value, frame, scope)
                if v is POISON:
                    return POISON
                if v is None:
                    items.append(("new", None, item))
                elif isinstance(v, Tensor):
                    items.append(("tensor", v, item))
                elif _intlike(v):
                    items.append(("index", Dim.of(v), item))
                else:
                    return el.err("E0310", f"cannot index a tensor with {describe(v)}", item.span)
            case _:
                return el.err("E0310", "keyword arguments are not indices", item.span)
    if sum(k == "ellipsis" for k, _, _ in items) > 1:
        return el.err("E0310", "at most one `...` per index", e.span)
    consumed = sum(k in ("slice", "index", "tensor") for k, _, _ in items)
    if consumed > rank:
        return el.err(
            "E0309",
            f"too many indices: {consumed} for a tensor of rank {rank} (`{base.type}`)",
            e.span,
        )
    expanded: list[tuple[str, Any, Any]] = []
    for k, v, item in items:
        if k == "ellipsis":
            expanded.extend(("slice", (None, None, None), item) for _ in range(rank - consumed))
        else:
            expanded.append((k, v, item))
    while sum(k != "new" for k, _, _ in expanded) < rank:
        expanded.append(("slice", (None, None, None), None))

    tensors = [(i, v, item) for i, (k, v, item) in enumerate(expanded) if k == "tensor"]
    if tensors:
        return _gather(el, base, expanded, tensors, e, frame)

    starts, stops, steps, out_shape = [], [], [], []
    narrowed = False
    reshaped = False
    axis = 0
    for k, v, item in expanded:
        if k == "new":
            out_shape.append(Dim.of(1))
            reshaped = True
            continue
        d = shape[axis]
        if k == "index":
            start = _norm_index(el, v, d, item)
            if start is POISON:
                return POISON
            starts.append(start)
            stops.append(start + 1)
            steps.append(1)
            narrowed = True
            reshaped = True
        else:
            lo, hi, step = v
            step_i = 1 if step is None else step
            if not (isinstance(step_i, int) or step_i.is_const) or int(step_i) <= 0:
                return el.err(
                    "E0310", "slice steps must be positive constants", item.span if item else e.span
                )
            step_i = int(step_i)
            lo_n = _norm_bound(lo, d, Dim.of(0))
            hi_n = _norm_bound(hi, d, d)
            if lo_n.is_const and hi_n.is_const and int(hi_n) < int(lo_n):
                hi_n = lo_n
            if not (lo_n == 0 and hi_n == d and step_i == 1):
                narrowed = True
            starts.append(lo_n)
            stops.append(hi_n)
            steps.append(step_i)
            out_shape.append(_slice_len(lo_n, hi_n, step_i))
        axis += 1
    result = base
    if narrowed:
        result = el.emit(
            "slice",
            [base],
            {"starts": tuple(starts), "stops": tuple(stops), "steps": tuple(steps)},
            e.span,
            frame,
        )
        if result is POISON:
            return POISON
    if reshaped:
        result = el.emit("reshape", [result], {"shape": tuple(out_shape)}, e.span, frame)
    return result


def _gather(el: Elaborator, base: Tensor, expanded, tensors, e: ast.Subscript, frame: Frame) -> Any:
    if len(tensors) > 1 or any(k == "new" or k == "index" for k, _, _ in expanded):
        return el.err(
            "E0310",
            "a tensor index can only be combined with full slices `:`",
            e.span,
            help="use `gather(x, ids, axis=k)` and index the result separately",
        )
    axis = tensors[0][0]
    for k, v, _ in expanded:
        if k == "slice" and v != (None, None, None):
            return el.err(
                "E0310", "a tensor index can only be combined with full slices `:`", e.span
            )
    idx = tensors[0][1]
    return el.call_primitive(
        "gather",
        [(base, e.value.span), (idx, tensors[0][2].span)],
        {"axis": (axis, e.span)},
        e.span,
        frame=frame,
    )


def _intlike(v: Any) -> bool:
    return isinstance(v, int | Dim) and not isinstance(v, bool)


def _norm_index(el: Elaborator, i: Dim, d: Dim, item: Any) -> Any:
    if i.is_const and d.is_const:
        n, size = int(i), int(d)
        if not -size <= n < size:
            return el.err(
                "E0309", f"index {n} is out of range for a dimension of size {size}", item.span
            )
        return Dim.of(n % size)
    if i.is_const and int(i) < 0:
        return d + i
    return i


def _norm_bound(b: Dim | None, d: Dim, default: Dim) -> Dim:
    if b is None:
        return default
    if b.is_const and int(b) < 0:
        b = d + b
        if b.is_const and int(b) < 0:
            return Dim.of(0)
    if b.is_const and d.is_const and int(b) > int(d):
        return d
    return b


def _slice_len(lo: Dim, hi: Dim, step: int) -> Dim:
    n = hi - lo
    return n if step == 1 else (n + (step - 1)).floordiv(step)
