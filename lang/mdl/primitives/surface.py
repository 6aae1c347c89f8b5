"""Surface names: the name a user calls (`sum`, `max`) or the operator written (`+`) ->
the primitive it means, with one-line signatures and docs for hover and completion.

Most names map 1:1 to a primitive. `sum`, `mean` and `prod` are `reduce_*` with
the keyword `axis` (an alias of the attribute `axes`). `max` and `min` depend on
the call: two positional arguments are the element-wise `maximum`/`minimum`
(`max(x, 0.0)`), one is the reduction (`max(x, axis=-1, keep=true)`).
"""

from __future__ import annotations

from . import elementwise, gather, layout, linalg, nn, reduce  # noqa: F401  (fill REGISTRY)
from .bind import signature
from .registry import REGISTRY, Primitive

# Binary and unary operators of the syntax -> primitive names.
OPERATORS: dict[str, str] = {
    "+": "add",
    "-": "sub",
    "*": "mul",
    "/": "div",
    "%": "mod",
    "//": "floordiv",
    "**": "pow",
    "@": "matmul",
    "==": "eq",
    "!=": "ne",
    "<": "lt",
    "<=": "le",
    ">": "gt",
    ">=": "ge",
    "neg": "neg",
}

_SAME_NAME = (
    # element-wise
    "exp", "log", "sqrt", "rsqrt", "tanh", "erf", "sigmoid", "sin", "cos", "abs", "neg",
    "floor", "ceil", "logical_not", "isnan", "logical_and", "logical_or", "pow", "where", "cast",
    # reductions, products, layout and constructors
    "argmax", "argmin", "matmul", "reshape", "transpose", "expand", "concat", "stack", "split",
    "arange", "full",
    # neural-network primitives
    "gather", "pad", "conv", "max_pool", "avg_pool",
)  # fmt: skip

_RENAMED = {"sum": "reduce_sum", "mean": "reduce_mean", "prod": "reduce_prod"}

# name -> (element-wise primitive for two positionals, reduction for one)
_OVERLOADED = {"max": ("maximum", "reduce_max"), "min": ("minimum", "reduce_min")}

SURFACE_NAMES: frozenset[str] = frozenset((*_SAME_NAME, *_RENAMED, *_OVERLOADED))


def resolve(name: str, n_positional: int, kw_names: frozenset[str]) -> Primitive | None:
    """The primitive a call `name(...)` with `n_positional` positional arguments and keyword
    arguments `kw_names` means; None when `name` is no primitive's surface name."""
    if name in _OVERLOADED:
        pairwise, reduction = _OVERLOADED[name]
        return REGISTRY[pairwise if n_positional >= 2 else reduction]
    if name in _RENAMED:
        return REGISTRY[_RENAMED[name]]
    if name in _SAME_NAME:
        return REGISTRY.get(name)
    return None


def _first_sentence(doc: str) -> str:
    return doc.split("; ")[0].split(". ")[0]


def _signature(name: str) -> str:
    if name in _OVERLOADED:
        pairwise, reduction = _OVERLOADED[name]
        return f"{signature(REGISTRY[pairwise], name)} | {signature(REGISTRY[reduction], name)}"
    return signature(REGISTRY[_RENAMED.get(name, name)], name)


def _doc(name: str) -> str:
    if name in _OVERLOADED:
        pairwise, reduction = (REGISTRY[p] for p in _OVERLOADED[name])
        return (
            f"with two tensors: {_first_sentence(pairwise.doc)}; "
            f"with one: {_first_sentence(reduction.doc)}"
        )
    return REGISTRY[_RENAMED.get(name, name)].doc


# One-line signature and doc of every surface name, for hover and completion.
SIGNATURES: dict[str, str] = {name: _signature(name) for name in sorted(SURFACE_NAMES)}
DOCS: dict[str, str] = {name: _doc(name) for name in sorted(SURFACE_NAMES)}
