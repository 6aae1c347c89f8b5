"""The graph IR: a model elaborated into SSA dataflow over primitives.

Checked, instantiated model -> `Graph`. Model inputs and parameters (and
buffers) are named graph inputs; every other value is the output of exactly
one `Node`, whose `op` names an entry of the primitive registry (plus the
built-in `const`). Symbolic dims (the batch `B`) stay symbolic in the types;
the interpreter and the backends bind them from the actual inputs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .initializers import InitSpec
from .span import Span
from .types import DType, TensorType


@dataclass(frozen=True, slots=True, eq=False)
class Value:
    id: int
    type: TensorType

    def __repr__(self) -> str:
        return f"%{self.id}:{self.type}"


@dataclass(frozen=True, slots=True, eq=False)
class Node:
    op: str
    inputs: tuple[Value, ...]
    outputs: tuple[Value, ...]
    attrs: dict[str, Any]
    scope: str = ""  # path of the layer instance that made it ("blocks.0.attn"); "" at model level
    span: Span | None = None


@dataclass(frozen=True, slots=True, eq=False)
class Input:
    name: str
    value: Value
    index_range: tuple[Any, Any] | None = (
        None  # (low, high) as Dims: valid values are low <= v < high
    )
    span: Span | None = None


@dataclass(frozen=True, slots=True, eq=False)
class Parameter:
    path: str
    value: Value
    is_buffer: bool
    init: InitSpec | None
    span: Span | None = None


@dataclass(eq=False)
class Graph:
    name: str
    inputs: list[Input] = field(default_factory=list)
    params: list[Parameter] = field(default_factory=list)
    nodes: list[Node] = field(default_factory=list)
    outputs: list[tuple[str, Value]] = field(default_factory=list)
    _next_id: int = 0

    def new_value(self, t: TensorType) -> Value:
        v = Value(self._next_id, t)
        self._next_id += 1
        return v

    def add_node(
        self,
        op: str,
        inputs: list[Value],
        out_types: tuple[TensorType, ...],
        attrs: dict[str, Any],
        scope: str = "",
        span: Span | None = None,
    ) -> Node:
        outs = tuple(self.new_value(t) for t in out_types)
        node = Node(op, tuple(inputs), outs, attrs, scope, span)
        self.nodes.append(node)
        return node

    def const(self, array: np.ndarray, span: Span | None = None, scope: str = "") -> Value:
        dtype = DType.from_numpy(array.dtype)
        assert dtype is not None, array.dtype
        arr = np.array(array, order="C", copy=True)  # ascontiguousarray would make 0-d arrays 1-d
        arr.setflags(write=False)
        t = TensorType(dtype, tuple(_dim(n) for n in arr.shape))
        return self.add_node("const", [], (t,), {"value": arr}, scope, span).outputs[0]

    @property
    def output_names(self) -> list[str]:
        return [n for n, _ in self.outputs]

    def symbols(self) -> list[str]:
        """The free dims of the model (bound from its inputs at run time), in input order."""
        seen: dict[str, None] = {}
        for inp in self.inputs:
            for d in inp.value.type.shape:
                for s in sorted(d.symbols):
                    seen.setdefault(s)
        return list(seen)


def _dim(n: int):
    from .dims import Dim

    return Dim.of(int(n))


class GraphError(Exception):
    """The graph breaks an invariant: an internal compiler error."""


def verify(g: Graph) -> None:
    """Check SSA form, op existence and types; raises GraphError."""
    from .primitives import REGISTRY

    defined: set[int] = set()
    for inp in g.inputs:
        _define(defined, inp.value, f"input {inp.name}")
    paths: set[str] = set()
    for p in g.params:
        if p.path in paths:
            raise GraphError(f"parameter {p.path} declared twice")
        paths.add(p.path)
        _define(defined, p.value, f"parameter {p.path}")
    for i, node in enumerate(g.nodes):
        for v in node.inputs:
            if v.id not in defined:
                raise GraphError(f"node {i} ({node.op}) uses %{v.id} before its definition")
        if node.op == "const":
            arr = node.attrs.get("value")
            if not isinstance(arr, np.ndarray) or node.inputs:
                raise GraphError(f"node {i}: malformed const")
        else:
            prim = REGISTRY.get(node.op)
            if prim is None:
                raise GraphError(f"node {i}: unknown op {node.op}")
            expected = prim.infer([v.type for v in node.inputs], node.attrs)
            got = tuple(v.type for v in node.outputs)
            if tuple(expected) != got:
                raise GraphError(
                    f"node {i} ({node.op}): outputs {got} but the rule gives {expected}"
                )
        for v in node.outputs:
            _define(defined, v, f"node {i}")
    names: set[str] = set()
    for name, v in g.outputs:
        if v.id not in defined:
            raise GraphError(f"output {name} is not defined")
        if name in names:
            raise GraphError(f"output {name} named twice")
        names.add(name)


def _define(defined: set[int], v: Value, what: str) -> None:
    if v.id in defined:
        raise GraphError(f"%{v.id} ({what}) defined twice")
    defined.add(v.id)
