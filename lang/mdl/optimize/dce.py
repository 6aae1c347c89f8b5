"""Dead code elimination: `Graph` -> `Graph` without the nodes no output depends on.

A node with several outputs (`split`) stays whole when any of them is read.
Inputs and parameters stay even when unused: they are the model's interface.
A dropped node can no longer fault at run time (an out-of-range `gather` whose
result nobody reads): like every compiler, we only keep what is observable.
"""

from __future__ import annotations

from ..graph import Graph


def eliminate_dead_code(graph: Graph) -> Graph:
    live = {v.id for _, v in graph.outputs}
    kept = []
    for node in reversed(graph.nodes):
        if any(v.id in live for v in node.outputs):
            kept.append(node)
            live.update(v.id for v in node.inputs)
    kept.reverse()
    return Graph(
        graph.name,
        list(graph.inputs),
        list(graph.params),
        kept,
        list(graph.outputs),
        graph._next_id,
    )
