"""Row fusion planning: `Graph` -> the regions lowered as one row kernel each (rows.py).

A region is a softmax, a layer norm, an RMS norm, a log-softmax or anything of their
shape: reductions over the same axes A of one shape F (`keep=true`), element-wise nodes
of shape F ("row values") or of F with the A axes at 1 ("row scalars"), ending in one
element-wise node of shape F, the sink. Every value of the region but the sink is used
only inside it and is no model output, so none needs a buffer: the kernel loops over the
rows (every index of F outside A, in parallel), computes each reduction of the row in a
loop of its own into a scalar, and stores the sink in a last loop. Row values are
recomputed where they are needed, which costs nothing but their arithmetic and gives
the same bits (every element gets the same operations as when stored and reloaded).
The one exception is a costly row value (exp, tanh, ...) needed by a reduction and again
later, the softmax's `e`: it is stashed in the sink's own buffer by the first loop that
computes it and read back from there, at the same index, by the later loops.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..dims import Dim
from ..graph import Graph, Node, Value
from .kernels.elementwise import COMPUTE
from .kernels.reduce import REDUCTIONS, reduced_axes

# row values worth stashing rather than computing twice
_COSTLY = frozenset({"exp", "log", "tanh", "erf", "sigmoid", "sin", "cos", "pow", "sqrt", "rsqrt"})


@dataclass(frozen=True)
class RowRegion:
    sink: Node
    nodes: tuple[Node, ...]  # in graph order, the sink last
    axes: tuple[int, ...]  # the reduced axes of the sink's shape
    stash: Value | None  # a row value kept in the sink's buffer between loops


@dataclass(frozen=True)
class RowPlan:
    regions: dict[int, RowRegion]  # id(sink node) -> its region
    inner: frozenset[int]  # ids of the values computed inside a region (not the sinks')

    def region_of(self, node: Node) -> RowRegion | None:
        return self.regions.get(id(node))


def _shape(v: Value) -> tuple[Dim, ...]:
    return tuple(Dim.of(d) for d in v.type.shape)


def plan_rows(graph: Graph) -> RowPlan:
    producer: dict[int, Node] = {}
    uses: dict[int, list[Node]] = {}
    for node in graph.nodes:
        for v in node.outputs:
            producer[v.id] = node
        for v in node.inputs:
            uses.setdefault(v.id, []).append(node)
    outputs = {v.id for _, v in graph.outputs}
    claimed: set[int] = set()
    regions: dict[int, RowRegion] = {}
    order = {id(n): i for i, n in enumerate(graph.nodes)}
    for sink in reversed(graph.nodes):
        if id(sink) in claimed or not _is_row_node(sink) or not sink.outputs[0].type.shape:
            continue
        region = _grow(sink, producer, uses, outputs, claimed, order)
        if region is None:
            continue
        regions[id(sink)] = region
        claimed.update(id(n) for n in region.nodes)
    inner = frozenset(n.outputs[0].id for r in regions.values() for n in r.nodes if n is not r.sink)
    return RowPlan(regions, inner)


def _is_row_node(node: Node) -> bool:
    return node.op in COMPUTE and len(node.outputs) == 1


def _grow(sink, producer, uses, outputs, claimed, order) -> RowRegion | None:
    full = _shape(sink.outputs[0])
    rank = len(full)
    members: dict[int, Node] = {id(sink): sink}
    frontier = [sink]
    while frontier:
        node = frontier.pop()
        for v in node.inputs:
            p = producer.get(v.id)
            if p is None or id(p) in members or id(p) in claimed or v.id in outputs:
                continue
            if len(p.outputs) != 1:
                continue
            shape = _shape(v)
            if p.op in REDUCTIONS:
                ok = p.attrs.get("keep", False) and _shape(p.inputs[0]) == full
            else:
                ok = _is_row_node(p) and len(shape) == rank and _keeps_or_ones(shape, full)
            if ok:
                members[id(p)] = p
                frontier.append(p)
    reductions = [n for n in members.values() if n.op in REDUCTIONS]
    if not reductions:
        return None
    # the reduction nearest the sink decides the axes; the others must agree
    axes = reduced_axes(max(reductions, key=lambda n: order[id(n)]), rank)
    if not axes:
        return None
    row_scalar = tuple(Dim.of(1) if a in axes else d for a, d in enumerate(full))
    changed = True
    while changed:
        changed = False
        for key, n in list(members.items()):
            if n is sink:
                continue
            v = n.outputs[0]
            escapes = any(id(u) not in members for u in uses.get(v.id, []))
            if n.op in REDUCTIONS:
                fits = reduced_axes(n, rank) == axes
            else:
                fits = _shape(v) in (full, row_scalar)
            if escapes or not fits:
                del members[key]
                changed = True
    if not any(n.op in REDUCTIONS for n in members.values()):
        return None
    nodes = tuple(sorted(members.values(), key=lambda n: order[id(n)]))
    return RowRegion(sink, nodes, axes, _stash(nodes, sink, full, members))


def _keeps_or_ones(shape: tuple[Dim, ...], full: tuple[Dim, ...]) -> bool:
    return all(d == f or d == Dim.of(1) for d, f in zip(shape, full, strict=True))


def _stash(nodes, sink, full, members) -> Value | None:
    """The first costly row value read both by a reduction and by a later loop."""
    inside = {n.outputs[0].id: n for n in nodes}
    for n in nodes:
        v = n.outputs[0]
        if n is sink or n.op in REDUCTIONS or _shape(v) != full:
            continue
        if v.type.dtype is not sink.outputs[0].type.dtype or not _costly(n, inside):
            continue
        readers = [u for u in nodes if v in u.inputs]
        if len(readers) >= 2 and any(u.op in REDUCTIONS for u in readers):
            return v
    return None


def _costly(node: Node, inside: dict[int, Node]) -> bool:
    if node.op in _COSTLY:
        return True
    return any(
        _costly(inside[v.id], inside)
        for v in node.inputs
        if v.id in inside and inside[v.id].op not in REDUCTIONS
    )
