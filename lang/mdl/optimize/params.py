"""Weight-only computation folded with the known weights: (graph, weights) -> (graph, weights).

Compilers that know the weights (the JIT and `mdlc build`) precompute every
node whose inputs are all parameters or constants, such as the `weight.T` of
each `Dense`: its result becomes a new parameter (`<scope>/<op>~<n>` path),
so the compiled code never transposes a weight per call. Evaluation uses the
primitive's reference semantics, so results are exactly what the graph would
compute. Parameters nothing reads any more are dropped; run `optimize` after.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from ..dims import Dim
from ..graph import Graph, Parameter
from ..types import DType, TensorType
from .fold import _evaluate
from .rewrite import Rebuilder, use_counts

# results up to 64M elements: a precomputed weight is never bigger than the weights it
# comes from by more than what a broadcast can add
MAX_PRECOMPUTED_ELEMENTS = 1 << 26


def fold_parameters(
    graph: Graph, weights: Mapping[str, np.ndarray]
) -> tuple[Graph, dict[str, np.ndarray]]:
    missing = [p.path for p in graph.params if p.path not in weights]
    if missing:
        raise ValueError(f"no weight for parameter(s) {', '.join(missing)}")
    rb = Rebuilder(graph)
    known: dict[int, np.ndarray] = {p.value.id: np.asarray(weights[p.path]) for p in graph.params}
    taken = {p.path for p in graph.params}
    new_weights: dict[str, np.ndarray] = {}
    new_params: list[Parameter] = []
    for node in graph.nodes:
        ins = rb.inputs_of(node)
        if node.op == "const":
            rb.keep(node)
            known[node.outputs[0].id] = node.attrs["value"]
            continue
        arrays = [known.get(v.id) if rb.const_value(v) is None else rb.const_value(v) for v in ins]
        if any(a is None for a in arrays) or not any(
            v.id in known and rb.const_value(v) is None for v in ins
        ):
            rb.keep(node)  # not weight-only (all-constant nodes are fold_constants' job)
            continue
        outs = _evaluate(node, arrays, MAX_PRECOMPUTED_ELEMENTS)
        if outs is None:
            rb.keep(node)
            continue
        for v, arr in zip(node.outputs, outs, strict=True):
            path = _unique(f"{node.scope or 'model'}/{node.op}~{v.id}", taken)
            dtype = DType.from_numpy(arr.dtype)
            assert dtype is not None
            t = TensorType(dtype, tuple(Dim.of(n) for n in arr.shape))
            p = Parameter(path, rb.graph.new_value(t), False, None, node.span)
            new_params.append(p)
            new_weights[path] = np.array(arr, order="C")  # (ascontiguousarray makes 0-d 1-d)
            known[p.value.id] = new_weights[path]
            rb.forward(v, p.value)
    out = rb.finish()
    out.params = list(out.params) + new_params
    # parameters no node and no output reads any more are dropped
    uses = use_counts(out)
    read_by_outputs = {v.id for _, v in out.outputs}
    out.params = [p for p in out.params if uses.get(p.value.id, 0) or p.value.id in read_by_outputs]
    kept = {p.path for p in out.params}
    result = {k: v for k, v in weights.items() if k in kept}
    result.update({k: v for k, v in new_weights.items() if k in kept})
    return out, result


def _unique(path: str, taken: set[str]) -> str:
    candidate, k = path, 2
    while candidate in taken:
        candidate, k = f"{path}.{k}", k + 1
    taken.add(candidate)
    return candidate
