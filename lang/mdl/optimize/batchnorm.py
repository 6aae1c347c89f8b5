"""Batch-norm folding: (`Graph`, weights) -> (`Graph`, weights) with inference batch norms
(and any other per-channel affine chain) folded into the preceding conv or matmul.

This is not one of the `PASSES`: it needs the weights, so only a compiler that
knows them (the JIT and the AOT builds) can apply it. The graph it returns
reads new parameters, and the weights it returns hold exactly the parameters
of the new graph.

What folds. An *anchor* is a `conv` (channel axis 1) or a `matmul` with a
right operand of rank >= 2 (channel axis last), whose weight operand is
*static* (computable from parameters and constants alone: a parameter, or
`transpose(weight)` as `nn.Dense` writes it) and whose data operand is not.
Its output must feed a chain of single-use element-wise steps `y + c`,
`c + y`, `y - c`, `c - y`, `y * c`, `c * y`, `y / c` whose `c` are static
and per-channel (size 1 on every axis but the channel axis), each step
keeping y's type. That is what `nn.BatchNorm2d` after `nn.Conv2d` (with or
without its bias add) and `nn.BatchNorm1d` after `nn.Dense` elaborate into:
`((y + bias) - running_mean) * (weight * rsqrt(running_var + eps)) + bias`.
The chain folds when it scales (a `*`, `/` or `c - y` step) or has at least
two steps; a lone bias add is left alone.

The chain is the affine map `y * a + b` per channel (composed in f64 from the
reference values of every `c`), so the anchor becomes `conv(x, w * a)` plus a
bias add of `b` (`b.reshape(C, 1, ...)` for a conv, as `nn.Conv2d` writes it).
Chains with a non-finite `a` or `b` (a zero variance without eps) are left
alone, so nan and inf appear where they did.

New parameters, for a weight parameter `conv1.weight` and a chain whose last
step was made by the layer at scope `bn1`:
- `conv1.weight~bn1`: the scaled weight, in the layout of `conv1.weight`
  (for `nn.Dense` the transpose is kept as a node, reading the new parameter);
- `conv1.bias~bn1`: the folded bias, `f32[C]`.
A weight that is not a parameter (or its transpose) is named after the
anchor's scope; a chain made at the anchor's own scope is tagged `folded`;
a path already taken gets a `~2`, `~3`, ... suffix. New parameters sit where
the weight parameter was; parameters only the folded nodes read are dropped
(with their weights); every other parameter stays, in order, unused or not.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from ..dims import Dim
from ..graph import Graph, Node, Parameter, Value
from ..interp import concrete
from ..primitives import REGISTRY
from ..primitives.registry import EvalError
from ..types import DType, TensorType
from .dce import eliminate_dead_code
from .rewrite import Rebuilder, is_concrete, use_counts

_FOLDABLE_DTYPES = (DType.F32, DType.F64)


@dataclass(frozen=True, slots=True)
class _Step:
    op: str  # add, sub, mul or div
    y_left: bool  # y op c (True) or c op y
    c: Value


@dataclass(frozen=True, slots=True)
class _Chain:
    anchor: Node
    axis: int  # the channel axis of the anchor's output
    steps: tuple[_Step, ...]
    nodes: tuple[Node, ...]  # the nodes of the steps, in order


@dataclass(frozen=True, slots=True)
class _Fold:
    chain: _Chain
    weight: np.ndarray  # the scaled weight parameter (layout of `source`)
    bias: np.ndarray  # [C]
    source: Parameter | None  # the weight parameter (or the parameter it transposes)
    perm: tuple[int, ...] | None  # the anchor read transpose(source, perm)


def fold_batchnorm(
    graph: Graph, weights: Mapping[str, np.ndarray]
) -> tuple[Graph, dict[str, np.ndarray]]:
    """Fold per-channel affine chains into their conv/matmul; see the module docstring."""
    missing = [p.path for p in graph.params if p.path not in weights]
    if missing:
        raise ValueError(f"fold_batchnorm: no weights for {', '.join(missing)}")
    static = _StaticValues(graph, weights)
    folds = [f for node in graph.nodes if (f := _plan(node, static)) is not None]
    folded, new_weights = _rebuild(graph, folds)
    return folded, {
        p.path: np.asarray(new_weights.get(p.path, weights.get(p.path))) for p in folded.params
    }


# ---------------------------------------------------------------------------
# finding chains


class _StaticValues:
    """The values computable from parameters and constants alone, evaluated on demand."""

    def __init__(self, graph: Graph, weights: Mapping[str, np.ndarray]):
        self.graph = graph
        self.producer: dict[int, Node] = {}
        self.param: dict[int, Parameter] = {p.value.id: p for p in graph.params}
        self.ids: set[int] = set(self.param)
        self._memo: dict[int, np.ndarray] = {
            p.value.id: np.asarray(weights[p.path]) for p in graph.params
        }
        self.uses = use_counts(graph)
        self.consumers: dict[int, list[Node]] = {}
        self.outputs = {v.id for _, v in graph.outputs}
        for node in graph.nodes:
            for v in node.outputs:
                self.producer[v.id] = node
            for v in node.inputs:
                self.consumers.setdefault(v.id, []).append(node)
            if all(v.id in self.ids for v in node.inputs) and _evaluable(node):
                self.ids.update(v.id for v in node.outputs)

    def __contains__(self, v: Value) -> bool:
        return v.id in self.ids

    def array(self, v: Value) -> np.ndarray:
        """The reference value of a static value; EvalError if its evaluation faults."""
        if v.id in self._memo:
            return self._memo[v.id]
        needed: set[int] = set()
        stack = [v]
        while stack:
            u = stack.pop()
            if u.id in self._memo or id(node := self.producer[u.id]) in needed:
                continue
            needed.add(id(node))
            stack.extend(node.inputs)
        for node in self.graph.nodes:
            if id(node) not in needed:
                continue
            if node.op == "const":
                outs = (node.attrs["value"],)
            else:
                attrs = {k: concrete(a, {}) for k, a in node.attrs.items()}
                with np.errstate(all="ignore"):
                    outs = REGISTRY[node.op].evaluate(
                        [self._memo[i.id] for i in node.inputs], attrs
                    )
            for out, arr in zip(node.outputs, outs, strict=True):
                self._memo[out.id] = arr
        return self._memo[v.id]


def _evaluable(node: Node) -> bool:
    if not all(is_concrete(v.type) for v in node.outputs):
        return False
    try:
        concrete(tuple(node.attrs.values()), {})
    except KeyError:
        return False
    return True


def _anchor_axis(node: Node, static: _StaticValues) -> int | None:
    """The channel axis of a conv or matmul that can absorb a per-channel scale."""
    if node.op not in ("conv", "matmul") or node.outputs[0].type.dtype not in _FOLDABLE_DTYPES:
        return None
    x, w = node.inputs
    if w not in static or x in static:
        return None
    rank = node.outputs[0].type.rank
    match node.op:
        case "conv" if rank >= 3:
            return 1
        case "matmul" if w.type.rank >= 2:
            return rank - 1
    return None


def _per_channel(t: TensorType, rank: int, axis: int) -> bool:
    if t.rank > rank:
        return False
    shape = (1,) * (rank - t.rank) + tuple(int(d) for d in t.shape)
    return all(n == 1 for i, n in enumerate(shape) if i != axis)


def _step(node: Node, y: Value, rank: int, axis: int, static: _StaticValues) -> _Step | None:
    if node.op not in ("add", "sub", "mul", "div") or node.outputs[0].type != y.type:
        return None
    a, b = node.inputs
    y_left = a is y
    c = b if y_left else a
    if c not in static or c.type.dtype is not y.type.dtype or not _per_channel(c.type, rank, axis):
        return None
    if node.op == "div" and not y_left:
        return None
    return _Step(node.op, y_left, c)


def _chain(anchor: Node, static: _StaticValues) -> _Chain | None:
    axis = _anchor_axis(anchor, static)
    if axis is None:
        return None
    y = anchor.outputs[0]
    steps: list[_Step] = []
    nodes: list[Node] = []
    while static.uses.get(y.id, 0) == 1 and y.id not in static.outputs:
        consumer = static.consumers[y.id][0]
        step = _step(consumer, y, y.type.rank, axis, static)
        if step is None:
            break
        steps.append(step)
        nodes.append(consumer)
        y = consumer.outputs[0]
    scales = any(s.op in ("mul", "div") or (s.op == "sub" and not s.y_left) for s in steps)
    if not (scales or len(steps) >= 2):
        return None
    return _Chain(anchor, axis, tuple(steps), tuple(nodes))


def _plan(anchor: Node, static: _StaticValues) -> _Fold | None:
    chain = _chain(anchor, static)
    if chain is None:
        return None
    y = anchor.outputs[0]
    channels = int(y.type.shape[chain.axis])
    try:
        scale, shift = _affine(chain, channels, static)
        w_value = anchor.inputs[1]
        source, perm = _weight_source(w_value, static)
        w = static.array(source.value if source is not None else w_value)
    except EvalError:
        return None
    if not (np.all(np.isfinite(scale)) and np.all(np.isfinite(shift))):
        return None
    # the output channel is axis 0 of a conv weight, the last axis of a matmul's right operand
    w_axis = 0 if anchor.op == "conv" else w_value.type.rank - 1
    if perm is not None:
        w_axis = perm[w_axis]
    shape = [1] * w.ndim
    shape[w_axis] = channels
    dtype = y.type.dtype.numpy
    weight = (w.astype(np.float64) * scale.reshape(shape)).astype(dtype)
    return _Fold(chain, weight, shift.astype(dtype), source, perm)


def _affine(chain: _Chain, channels: int, static: _StaticValues) -> tuple[np.ndarray, np.ndarray]:
    """The chain as y * scale + shift per channel, in f64."""
    scale = np.ones(channels)
    shift = np.zeros(channels)
    for step in chain.steps:
        c = np.broadcast_to(static.array(step.c).astype(np.float64).reshape(-1), (channels,))
        match step.op, step.y_left:
            case "add", _:
                shift = shift + c
            case "sub", True:
                shift = shift - c
            case "sub", False:
                scale, shift = -scale, c - shift
            case "mul", _:
                scale, shift = scale * c, shift * c
            case "div", _:
                scale, shift = scale / c, shift / c
    return scale, shift


def _weight_source(
    w: Value, static: _StaticValues
) -> tuple[Parameter | None, tuple[int, ...] | None]:
    """The parameter holding the weight, and the perm when the anchor reads its transpose."""
    if w.id in static.param:
        return static.param[w.id], None
    node = static.producer.get(w.id)
    if node is not None and node.op == "transpose" and node.inputs[0].id in static.param:
        rank = w.type.rank
        perm = node.attrs.get("perm")
        perm = tuple(reversed(range(rank))) if perm is None else tuple(int(p) % rank for p in perm)
        return static.param[node.inputs[0].id], perm
    return None, None


# ---------------------------------------------------------------------------
# rewriting


def _rebuild(graph: Graph, folds: list[_Fold]) -> tuple[Graph, dict[str, np.ndarray]]:
    rb = Rebuilder(graph)
    by_anchor = {id(f.chain.anchor): f for f in folds}
    dropped = {id(n) for f in folds for n in f.chain.nodes}
    taken = {p.path for p in graph.params}
    new_weights: dict[str, np.ndarray] = {}
    placed: dict[int, list[Parameter]] = {}  # original param index -> new params after it
    index = {p.value.id: i for i, p in enumerate(graph.params)}
    for node in graph.nodes:
        if id(node) in dropped:
            continue
        fold = by_anchor.get(id(node))
        if fold is None:
            rb.keep(node)
            continue
        base, tag = _names(fold)
        w_param = _new_param(rb, _unique(f"{base}.weight~{tag}", taken), fold.weight, node)
        b_param = _new_param(rb, _unique(f"{base}.bias~{tag}", taken), fold.bias, node)
        new_weights[w_param.path] = fold.weight
        new_weights[b_param.path] = fold.bias
        at = index[fold.source.value.id] if fold.source is not None else len(graph.params)
        placed.setdefault(at, []).extend([w_param, b_param])
        _emit_folded(rb, fold, w_param.value, b_param.value)
    folded = eliminate_dead_code(rb.finish())
    read = {v.id for n in folded.nodes for v in n.inputs} | {v.id for _, v in folded.outputs}
    read_before = {v.id for n in graph.nodes for v in n.inputs} | {v.id for _, v in graph.outputs}
    params: list[Parameter] = []
    for i, p in enumerate(graph.params):
        if p.value.id in read or p.value.id not in read_before:
            params.append(p)
        params.extend(placed.get(i, []))
    params.extend(placed.get(len(graph.params), []))
    folded.params = params
    return folded, new_weights


def _names(fold: _Fold) -> tuple[str, str]:
    anchor = fold.chain.anchor
    if fold.source is not None:
        base = fold.source.path.removesuffix(".weight")
    else:
        base = anchor.scope or anchor.op
    tag = fold.chain.nodes[-1].scope
    if not tag or tag == anchor.scope:
        tag = "folded"
    return base, tag


def _unique(path: str, taken: set[str]) -> str:
    candidate, k = path, 2
    while candidate in taken:
        candidate, k = f"{path}~{k}", k + 1
    taken.add(candidate)
    return candidate


def _new_param(rb: Rebuilder, path: str, array: np.ndarray, anchor: Node) -> Parameter:
    dtype = DType.from_numpy(array.dtype)
    assert dtype is not None
    t = TensorType(dtype, tuple(Dim.of(n) for n in array.shape))
    return Parameter(path, rb.graph.new_value(t), False, None, anchor.span)


def _emit_folded(rb: Rebuilder, fold: _Fold, w_param: Value, b_param: Value) -> None:
    anchor = fold.chain.anchor
    x = rb.get(anchor.inputs[0])
    weight = w_param
    if fold.perm is not None:
        node = rb.emit("transpose", [w_param], {"perm": fold.perm}, anchor.scope, anchor.span)
        assert node is not None
        weight = node.outputs[0]
    new = rb.emit(anchor.op, [x, weight], anchor.attrs, anchor.scope, anchor.span)
    assert new is not None and new.outputs[0].type == anchor.outputs[0].type
    y = new.outputs[0]
    bias = b_param
    if anchor.op == "conv":
        shape = (Dim.of(int(y.type.shape[1])),) + (Dim.of(1),) * (y.type.rank - 2)
        node = rb.emit("reshape", [b_param], {"shape": shape}, anchor.scope, anchor.span)
        assert node is not None
        bias = node.outputs[0]
    add = rb.emit("add", [y, bias], {}, anchor.scope, anchor.span)
    assert add is not None
    rb.forward(fold.chain.nodes[-1].outputs[0], add.outputs[0])
