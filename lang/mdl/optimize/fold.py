"""Constant folding: `Graph` -> `Graph` with every node computable at compile time replaced
by a `const`.

A node folds when all its inputs are constants (or it has none, as `arange`
and `full`), its attributes and output types are free of symbolic dims, and
its outputs are not too big to embed (`max_elements`). It is evaluated with
the primitive's own reference `evaluate`, so the interpreter gives exactly
the same bits before and after. A node whose evaluation faults (`EvalError`,
such as a `gather` index out of range) is left alone: the fault belongs to
run time, with its span.
"""

from __future__ import annotations

import numpy as np

from ..graph import Graph, Node
from ..interp import concrete
from ..primitives import REGISTRY
from ..primitives.registry import EvalError
from .rewrite import Rebuilder, is_concrete, num_elements

# 1M elements (4 MiB of f32): bigger results stay computed at run time rather than embedded.
MAX_FOLDED_ELEMENTS = 1 << 20


def fold_constants(graph: Graph, max_elements: int = MAX_FOLDED_ELEMENTS) -> Graph:
    rb = Rebuilder(graph)
    for node in graph.nodes:
        if node.op == "const":
            rb.keep(node)
            continue
        arrays = [rb.const_value(v) for v in rb.inputs_of(node)]
        outs = None
        if all(a is not None for a in arrays):
            outs = _evaluate(node, arrays, max_elements)
        if outs is None:
            rb.keep(node)
            continue
        for v, arr in zip(node.outputs, outs, strict=True):
            rb.forward(v, rb.const(arr, node.scope, node.span))
    return rb.finish()


def _evaluate(node: Node, arrays: list, max_elements: int) -> tuple[np.ndarray, ...] | None:
    if not all(is_concrete(v.type) for v in node.outputs):
        return None
    if sum(num_elements(v.type) for v in node.outputs) > max_elements:
        return None
    try:
        attrs = {k: concrete(a, {}) for k, a in node.attrs.items()}
    except KeyError:  # an attribute with a symbolic dim
        return None
    try:
        with np.errstate(all="ignore"):
            outs = REGISTRY[node.op].evaluate(arrays, attrs)
    except EvalError:
        return None
    for v, arr in zip(node.outputs, outs, strict=True):
        want = tuple(int(d) for d in v.type.shape)
        if arr.shape != want or arr.dtype != v.type.dtype.numpy:
            raise AssertionError(f"`{node.op}` evaluated to {arr.dtype}{arr.shape}, type {v.type}")
    return tuple(outs)
