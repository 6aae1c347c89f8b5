"""The reference interpreter: `Graph` + weights + input arrays -> output arrays.

This is the executable specification of mdl: every node is evaluated by its
primitive's numpy `evaluate`, exactly as elaborated (no optimisation), after
the inputs are checked against the declared types (dtype, rank, dims, index
ranges). Symbolic dims are bound from the inputs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from .diagnostics import Diagnostic, MdlError
from .dims import Dim
from .graph import Graph, Value
from .primitives import REGISTRY
from .primitives.registry import EvalError


def _fail(code: str, message: str, span=None, help: str | None = None) -> MdlError:
    return MdlError([Diagnostic(code, message, span, help=help)])


def bind_inputs(
    graph: Graph, inputs: Mapping[str, Any]
) -> tuple[dict[int, np.ndarray], dict[str, int]]:
    """Check the inputs against the declared types; returns values by id and the dim environment."""
    names = [i.name for i in graph.inputs]
    for k in inputs:
        if k not in names:
            raise _fail(
                "E0602",
                f"model `{graph.name}` has no input `{k}`",
                help=f"its inputs are: {', '.join(names)}",
            )
    env: dict[str, int] = {}
    values: dict[int, np.ndarray] = {}
    for inp in graph.inputs:
        if inp.name not in inputs:
            raise _fail("E0601", f"missing input `{inp.name}` ({inp.value.type})")
        x = inputs[inp.name]
        if not isinstance(x, np.ndarray) or x.dtype.hasobject:
            raise _fail(
                "E0608", f"input `{inp.name}` must be a numpy array, got {type(x).__name__}"
            )
        t = inp.value.type
        want = t.dtype.numpy
        if x.dtype != want:
            raise _fail(
                "E0603",
                f"input `{inp.name}` has dtype {x.dtype}, expected {t.dtype} ({want})",
                help=f"convert it with `x.astype(np.{want})`",
            )
        if x.ndim != t.rank:
            raise _fail(
                "E0604",
                f"input `{inp.name}` has rank {x.ndim} (shape {list(x.shape)}), "
                f"expected rank {t.rank} ({t})",
            )
        for axis, (d, n) in enumerate(zip(t.shape, x.shape, strict=True)):
            if d.is_symbol and d.name not in env:
                env[d.name] = int(n)
                continue
            try:
                want_n = d.evaluate(env)
            except KeyError:
                raise _fail(
                    "E0605", f"input `{inp.name}`: cannot bind dim `{d}` on axis {axis}"
                ) from None
            if want_n != n:
                raise _fail(
                    "E0605",
                    f"input `{inp.name}` has size {n} on axis {axis}, expected {d} = {want_n}"
                    if not d.is_const
                    else f"input `{inp.name}` has size {n} on axis {axis}, expected {want_n} ({t})",
                )
        if inp.index_range is not None and x.size:
            lo, hi = (int(b.evaluate(env)) for b in inp.index_range)
            bad = np.flatnonzero((x < lo) | (x >= hi))
            if bad.size:
                pos = np.unravel_index(bad[0], x.shape)
                raise _fail(
                    "E0606",
                    f"input `{inp.name}` has value {x[pos]} at {list(map(int, pos))}, "
                    f"outside its declared range {lo}..{hi}",
                )
        values[inp.value.id] = x if x.flags.c_contiguous else np.array(x, order="C")
    for d in env.values():
        if d < 0:
            raise _fail("E0605", "negative dimension")
    return values, env


def concrete(attr: Any, env: Mapping[str, int]) -> Any:
    """An attribute with every `Dim` replaced by its value under `env`."""
    if isinstance(attr, Dim):
        return attr.evaluate(env)
    if isinstance(attr, tuple):
        return tuple(concrete(a, env) for a in attr)
    if isinstance(attr, list):
        return [concrete(a, env) for a in attr]
    return attr


def run(
    graph: Graph, weights: Mapping[str, np.ndarray], inputs: Mapping[str, Any]
) -> dict[str, np.ndarray]:
    values, env = bind_inputs(graph, inputs)
    for p in graph.params:
        values[p.value.id] = weights[p.path]
    for node in graph.nodes:
        if node.op == "const":
            values[node.outputs[0].id] = node.attrs["value"]
            continue
        prim = REGISTRY[node.op]
        attrs = {k: concrete(v, env) for k, v in node.attrs.items()}
        args = [values[v.id] for v in node.inputs]
        try:
            with np.errstate(all="ignore"):
                outs = prim.evaluate(args, attrs)
        except EvalError as e:
            raise MdlError([Diagnostic(e.code, e.message, node.span)]) from None
        for v, arr in zip(node.outputs, outs, strict=True):
            _check_output(node.op, v, arr, env, node.span)
            values[v.id] = arr
    return {name: values[v.id] for name, v in graph.outputs}


def _check_output(op: str, v: Value, arr: np.ndarray, env: Mapping[str, int], span) -> None:
    want = tuple(Dim.of(d).evaluate(env) for d in v.type.shape)
    if arr.shape != want or arr.dtype != v.type.dtype.numpy:
        raise MdlError(
            [
                Diagnostic(
                    "E0901",
                    f"internal error: `{op}` produced {arr.dtype}{list(arr.shape)} where its type says "
                    f"{v.type} = {list(want)}",
                    span,
                    notes=("this is a bug in mdl; please report it with the model source",),
                )
            ]
        )
