"""Common subexpression elimination: `Graph` -> `Graph` where a node equal to an earlier one
(same op, same input values, equal attributes) reuses the earlier node's outputs.

Constants are compared by dtype, shape and bytes, so the many `0.0` and `1e-5`
scalars the stdlib elaborates into become one node each. Operands are not
reordered (`a + b` and `b + a` stay two nodes): the result must be bit-identical,
nan payloads included. Every primitive is pure, so any two equal nodes compute
equal values.
"""

from __future__ import annotations

from ..graph import Graph
from .rewrite import Rebuilder, Unhashable, attrs_key


def eliminate_common_subexpressions(graph: Graph) -> Graph:
    rb = Rebuilder(graph)
    seen: dict[tuple, tuple] = {}
    for node in graph.nodes:
        try:
            key = (node.op, tuple(v.id for v in rb.inputs_of(node)), attrs_key(node.attrs))
        except Unhashable:
            rb.keep(node)
            continue
        earlier = seen.get(key)
        if earlier is not None and tuple(v.type for v in earlier) == tuple(
            v.type for v in node.outputs
        ):
            for old, new in zip(node.outputs, earlier, strict=True):
                rb.forward(old, new)
            continue
        seen[key] = rb.keep(node).outputs
    return rb.finish()
