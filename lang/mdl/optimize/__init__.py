"""Graph optimizations: `Graph` -> `Graph`, each pass a plain function returning a new graph.

`PASSES` is the pipeline in order; `optimize` runs it until a round changes
nothing. Every pass keeps the model's interface (inputs, parameters in order,
output names) and what the reference interpreter computes: bit-identical for
the layout, algebra, CSE and DCE rewrites, and for constant folding too, since
folding evaluates with the primitives' own reference semantics. Outputs may
end up aliasing an input, a parameter, a constant or each other.

Batch-norm folding needs the weights, so it is not a pass but
`fold_batchnorm(graph, weights) -> (graph, weights)`, for compilers that
know them. See docs/optimize.md.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ..graph import Graph, GraphError, verify
from .algebra import simplify
from .batchnorm import fold_batchnorm
from .cse import eliminate_common_subexpressions
from .dce import eliminate_dead_code
from .fold import MAX_FOLDED_ELEMENTS, fold_constants
from .params import fold_parameters
from .rewrite import same_graph

Pass = Callable[[Graph], Graph]

PASSES: tuple[Pass, ...] = (
    fold_constants,
    simplify,
    eliminate_common_subexpressions,
    eliminate_dead_code,
)

# Each round can only shrink the graph or merge nodes, so this bound is never the
# reason to stop on real models; it guards against two rules undoing each other.
MAX_ROUNDS = 8


def optimize(graph: Graph, passes: Sequence[Pass] = PASSES, check: bool = False) -> Graph:
    """Run `passes` in order, round after round, until a round leaves the graph unchanged.

    `check=True` runs `verify` on the result of every pass (GraphError names the pass).
    """
    for _ in range(MAX_ROUNDS):
        before = graph
        for run_pass in passes:
            result = run_pass(graph)
            if check:
                try:
                    verify(result)
                except GraphError as e:
                    raise GraphError(f"after {run_pass.__name__}: {e}") from None
            graph = result
        if same_graph(before, graph):
            break
    return graph


__all__ = [
    "fold_parameters",
    "MAX_FOLDED_ELEMENTS",
    "PASSES",
    "eliminate_common_subexpressions",
    "eliminate_dead_code",
    "fold_batchnorm",
    "fold_constants",
    "optimize",
    "simplify",
]
