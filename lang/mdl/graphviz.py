"""Graph -> Graphviz DOT text, and DOT -> SVG through the `dot` program (`mdlc graph`).

Each primitive node is a box labelled with its op and output type; model
inputs, parameters and outputs are drawn in their own shapes and colours;
the nodes and parameters of each layer instance sit in a cluster named by
its path, nested as the paths are (`blocks` > `blocks.0` > `blocks.0.attn`).
The text is deterministic: the same graph always gives the same bytes.
"""

from __future__ import annotations

import itertools
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

_INPUT_STYLE = 'shape=invhouse, style="filled", fillcolor="#cfe2ff"'
_PARAM_STYLE = 'shape=box, style="filled", fillcolor="#eeeeee", fontsize=9'
_BUFFER_STYLE = 'shape=box, style="filled,dashed", fillcolor="#f6f6f6", fontsize=9'
_CONST_STYLE = 'shape=box, style="dotted", fontsize=9'
_OUTPUT_STYLE = 'shape=house, style="filled", fillcolor="#d1e7dd"'
_CLUSTER_STYLE = 'style="rounded", color="#888888", fontcolor="#444444"'
# Constants with at most this many elements show their values in the label.
_SHOWN_CONST_ELEMENTS = 4


class GraphvizError(Exception):
    """`dot` is missing or failed; the message is ready for the user."""


def quote(text: str) -> str:
    """A DOT double-quoted string; `\\n` in the result is a line break in a label."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + escaped.replace("\r", "").replace("\n", "\\n") + '"'


@dataclass(slots=True)
class _Cluster:
    path: str
    lines: list[str] = field(default_factory=list)  # node statements directly inside
    children: dict[str, _Cluster] = field(default_factory=dict)


class _Clusters:
    """The tree of layer-instance paths; statements are filed under their scope."""

    def __init__(self) -> None:
        self.root = _Cluster("")

    def at(self, scope: str) -> _Cluster:
        cluster = self.root
        if not scope:
            return cluster
        parts = scope.split(".")
        for i in range(len(parts)):
            path = ".".join(parts[: i + 1])
            cluster = cluster.children.setdefault(path, _Cluster(path))
        return cluster

    def emit(self) -> Iterator[str]:
        counter = itertools.count()
        yield from ("  " + line for line in self.root.lines)
        for child in self.root.children.values():
            yield from _emit_cluster(child, counter, "  ")


def _emit_cluster(cluster: _Cluster, counter: Iterator[int], indent: str) -> Iterator[str]:
    yield f"{indent}subgraph cluster_{next(counter)} {{"
    inner = indent + "  "
    yield f"{inner}graph [label={quote(cluster.path)}, {_CLUSTER_STYLE}];"
    for line in cluster.lines:
        yield inner + line
    for child in cluster.children.values():
        yield from _emit_cluster(child, counter, inner)
    yield f"{indent}}}"


def _const_label(node: Any) -> str:
    value = node.attrs.get("value")
    text = f"const\n{node.outputs[0].type}"
    if isinstance(value, np.ndarray) and value.size <= _SHOWN_CONST_ELEMENTS:
        text += f"\n{value.tolist()}"
    return text


def to_dot(graph: Any) -> str:
    """The DOT text of `graph` (an `mdl.graph.Graph`)."""
    clusters = _Clusters()
    # value id -> (DOT node id, output index, number of outputs of that node)
    producer: dict[int, tuple[str, int, int]] = {}

    for i, inp in enumerate(graph.inputs):
        node_id = f"in{i}"
        producer[inp.value.id] = (node_id, 0, 1)
        label = f"{inp.name}\n{inp.value.type}"
        if inp.index_range is not None:
            low, high = inp.index_range
            label += f" in {low}..{high}"
        clusters.root.lines.append(f"{node_id} [label={quote(label)}, {_INPUT_STYLE}];")

    for i, p in enumerate(graph.params):
        node_id = f"p{i}"
        producer[p.value.id] = (node_id, 0, 1)
        owner, _, leaf = p.path.rpartition(".")
        style = _BUFFER_STYLE if p.is_buffer else _PARAM_STYLE
        label = f"{leaf}\n{p.value.type}"
        clusters.at(owner).lines.append(f"{node_id} [label={quote(label)}, {style}];")

    edges: list[str] = []
    for i, node in enumerate(graph.nodes):
        node_id = f"n{i}"
        for v in node.inputs:
            edges.append(_edge(producer[v.id], node_id))
        for k, v in enumerate(node.outputs):
            producer[v.id] = (node_id, k, len(node.outputs))
        if node.op == "const":
            statement = f"{node_id} [label={quote(_const_label(node))}, {_CONST_STYLE}];"
        else:
            label = "\n".join([node.op, *(str(v.type) for v in node.outputs)])
            statement = f"{node_id} [label={quote(label)}];"
        clusters.at(node.scope).lines.append(statement)

    for i, (name, v) in enumerate(graph.outputs):
        node_id = f"out{i}"
        label = f"{name}\n{v.type}"
        clusters.root.lines.append(f"{node_id} [label={quote(label)}, {_OUTPUT_STYLE}];")
        edges.append(_edge(producer[v.id], node_id))

    lines = [
        f"digraph {quote(graph.name)} {{",
        "  rankdir=TB;",
        '  node [shape=box, style="rounded", fontname="Helvetica", fontsize=10];',
        '  edge [color="#555555", arrowsize=0.6];',
        *clusters.emit(),
        *edges,
        "}",
    ]
    return "\n".join(lines) + "\n"


def _edge(source: tuple[str, int, int], target: str) -> str:
    node_id, index, outputs = source
    # Which output of a multi-output node (split) feeds the edge is worth a label.
    if outputs > 1:
        return f"  {node_id} -> {target} [label={quote(f'#{index}')}, fontsize=8];"
    return f"  {node_id} -> {target};"


def render(dot_text: str, fmt: str = "svg", timeout: float = 120.0) -> bytes:
    """Run Graphviz `dot -T<fmt>` on the text; GraphvizError when missing or failing."""
    exe = shutil.which("dot")
    if exe is None:
        raise GraphvizError("Graphviz `dot` not found; write a .dot file instead")
    try:
        done = subprocess.run(
            [exe, f"-T{fmt}"],
            input=dot_text.encode("utf-8"),
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        raise GraphvizError(f"Graphviz `dot` failed: {e}") from None
    if done.returncode != 0:
        detail = done.stderr.decode("utf-8", "replace").strip().splitlines()
        reason = detail[0] if detail else f"exit status {done.returncode}"
        raise GraphvizError(f"Graphviz `dot` failed: {reason}")
    return done.stdout
