"""Shared machinery of the graph passes: old `Graph` -> new `Graph`, node by node.

A pass walks the old graph's nodes in order and, for each, keeps it, drops it
or replaces its outputs by other values (`forward`). The `Rebuilder` applies
the replacements to every later use, so a pass never patches a node: nodes
whose inputs did not change are shared with the old graph (they are frozen),
the others are rebuilt. Inputs, parameters (in order) and output names are
kept; value ids of kept nodes stay as they were, new values continue the old
graph's numbering.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..dims import Dim
from ..graph import Graph, Node, Value
from ..primitives import REGISTRY
from ..primitives.registry import ShapeError
from ..span import Span
from ..types import DType, TensorType


class Rebuilder:
    """Builds a new graph from `old`; `get` maps an old value to its replacement."""

    def __init__(self, old: Graph):
        self.old = old
        self.graph = Graph(old.name, list(old.inputs), list(old.params), [], [], old._next_id)
        self._subst: dict[int, Value] = {}
        self.producer: dict[int, Node] = {}  # value id -> node of the new graph

    def get(self, v: Value) -> Value:
        return self._subst.get(v.id, v)

    def inputs_of(self, node: Node) -> tuple[Value, ...]:
        return tuple(self.get(v) for v in node.inputs)

    def forward(self, old: Value, new: Value) -> None:
        """Every later use of `old` reads `new` instead (the types must be equal)."""
        assert old.type == new.type, (old, new)
        self._subst[old.id] = new

    def keep(self, node: Node) -> Node:
        """Append `node`, rebuilt only if one of its inputs was replaced."""
        inputs = self.inputs_of(node)
        if any(a is not b for a, b in zip(inputs, node.inputs, strict=True)):
            node = Node(node.op, inputs, node.outputs, node.attrs, node.scope, node.span)
        self._append(node)
        return node

    def emit(
        self,
        op: str,
        inputs: Sequence[Value],
        attrs: dict[str, Any],
        scope: str = "",
        span: Span | None = None,
    ) -> Node | None:
        """A new node whose output types the primitive's rule gives; None if the rule rejects it."""
        try:
            out_types = tuple(REGISTRY[op].infer([v.type for v in inputs], attrs))
        except ShapeError:
            return None
        node = Node(
            op, tuple(inputs), tuple(self.graph.new_value(t) for t in out_types), attrs, scope, span
        )
        self._append(node)
        return node

    def replace(self, node: Node, op: str, inputs: Sequence[Value], attrs: dict[str, Any]) -> bool:
        """Compute `node`'s outputs with another op; refused (False) unless the types are equal."""
        try:
            out_types = tuple(REGISTRY[op].infer([v.type for v in inputs], attrs))
        except ShapeError:
            return False
        if out_types != tuple(v.type for v in node.outputs):
            return False
        new = self.emit(op, inputs, attrs, node.scope, node.span)
        assert new is not None
        for old_v, new_v in zip(node.outputs, new.outputs, strict=True):
            self.forward(old_v, new_v)
        return True

    def const(self, array: np.ndarray, scope: str = "", span: Span | None = None) -> Value:
        v = self.graph.const(array, span, scope)
        self.producer[v.id] = self.graph.nodes[-1]
        return v

    def const_value(self, v: Value) -> np.ndarray | None:
        """The array of a value of the new graph made by a `const` node, else None."""
        node = self.producer.get(v.id)
        return node.attrs["value"] if node is not None and node.op == "const" else None

    def finish(self) -> Graph:
        self.graph.outputs = [(name, self.get(v)) for name, v in self.old.outputs]
        return self.graph

    def _append(self, node: Node) -> None:
        self.graph.nodes.append(node)
        for v in node.outputs:
            self.producer[v.id] = node


def use_counts(graph: Graph) -> dict[int, int]:
    """How many times each value is read: as a node input (per operand) or as an output."""
    counts: dict[int, int] = {}
    for node in graph.nodes:
        for v in node.inputs:
            counts[v.id] = counts.get(v.id, 0) + 1
    for _, v in graph.outputs:
        counts[v.id] = counts.get(v.id, 0) + 1
    return counts


def is_concrete(t: TensorType) -> bool:
    return all(Dim.of(d).is_const for d in t.shape)


def num_elements(t: TensorType) -> int:
    n = 1
    for d in t.shape:
        n *= int(d)
    return n


def same_graph(a: Graph, b: Graph) -> bool:
    """True when b is a itself or a pass left it unchanged (the same node objects)."""
    return (
        len(a.nodes) == len(b.nodes)
        and all(x is y for x, y in zip(a.nodes, b.nodes, strict=True))
        and [(n, v.id) for n, v in a.outputs] == [(n, v.id) for n, v in b.outputs]
        and [p.path for p in a.params] == [p.path for p in b.params]
    )


class Unhashable(Exception):
    """An attribute value the passes do not know how to compare."""


def attrs_key(attrs: dict[str, Any]) -> tuple:
    """A hashable key equal for equal attributes; floats and arrays compare by their bits
    (so 0.0 and -0.0 differ and a nan equals itself). Raises Unhashable."""
    return tuple((k, _freeze(attrs[k])) for k in sorted(attrs))


def _freeze(x: Any) -> Any:
    match x:
        case bool() | int() | str() | None:
            return (type(x).__name__, x)
        case float():
            return ("float", struct.pack("<d", x))
        case Dim():
            return ("dim", x)
        case DType():
            return ("dtype", x.value)
        case np.ndarray() | np.generic():
            arr = np.asarray(x)
            return ("array", str(arr.dtype), arr.shape, arr.tobytes())
        case tuple() | list():
            return (type(x).__name__, tuple(_freeze(i) for i in x))
        case dict():
            return ("dict", attrs_key(x))
    try:
        hash(x)
    except TypeError:
        raise Unhashable(type(x).__name__) from None
    return (type(x).__name__, x)
