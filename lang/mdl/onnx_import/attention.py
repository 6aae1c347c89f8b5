"""PyTorch's exported causal self-attention -> one `transformer.CausalSelfAttention[D, H]`.

The TorchScript exporter writes `CausalSelfAttention.forward` out as some thirty
nodes: the q/k/v projection (one fused Linear and a Split, or three Linears),
a Reshape to [B, T, H, hd] and a Transpose per head tensor, `q @ k^T`, a scale,
the causal mask (a Trilu of a filled [T, T] matrix, through Where or added),
Softmax, `@ v`, the merge of the heads and the output Linear. The match starts
at the output projection's MatMul, when every node before it has been
converted, and walks back over the ONNX nodes; the intermediate results must
feed nothing but the next step. It fires only when the computation is exactly
the stdlib layer's (stdlib/transformer.mdl): heads of equal size, scale
1/sqrt(hd), the mask hiding exactly the future positions with -inf, biases on
both projections. The statements the nodes were converted to are then dead
(convert.live_statements drops them), as are the projections' `nn.Dense`
instances, whose weights move into the layer's state-dict layout: `qkv` is
nn.Linear's [3D, D] (q, k, v stacked), `proj` is [D, D].
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..dims import Dim
from ..types import DType, TensorType
from .convert import Node
from .ir import InstRef, Known, Path, ex, hole
from .names import scope_of

# A set of matrix positions (row i, column j) by their offset j - i: ("ge", k) is
# j - i >= k, ("le", k) is j - i <= k. The causal mask hides the future, ("ge", 1).
Region = tuple[str, int]
FUTURE: Region = ("ge", 1)
_HEADS_PERM = [0, 2, 1, 3]


def complement(r: Region | None) -> Region | None:
    if r is None:
        return None
    kind, k = r
    return ("le", k - 1) if kind == "ge" else ("ge", k + 1)


@dataclass(frozen=True)
class Projections:
    """The fused q/k/v projection in nn.Linear's layout, and the nodes that computed it."""

    x: str
    weight: np.ndarray  # [3D, D]
    bias: np.ndarray  # [3D]
    nodes: tuple[Node, ...]


class AttentionMatcher:
    """Used by patterns.Patterns, whose queries (weights, scalars, consumers) it shares."""

    def __init__(self, p) -> None:  # p: patterns.Patterns (a cycle to import)
        self.p = p
        self.c = p.c
        self.producer: dict[str, Node] = p.producer

    def node(self, value: str, op: str) -> Node | None:
        n = self.producer.get(value)
        return n if n is not None and n.op == op else None

    def known(self, value: str) -> Known | None:
        """The folded value of `value`; None also when nothing defines it here (the inner
        value of a pattern absorbed earlier): asking the context would be an error."""
        if not value or (value not in self.c.values and value not in self.c.model.initializers):
            return None
        return self.c.known(value)

    def transpose(self, value: str, perm: list[int]) -> Node | None:
        n = self.node(value, "Transpose")
        return n if n is not None and list(n.attrs.get("perm", [])) == perm else None

    def dims(self, value: str) -> tuple[Dim, ...] | None:
        v = self.c.values.get(value)
        t = getattr(v, "type", None)
        return tuple(Dim.of(d) for d in t.shape) if isinstance(t, TensorType) else None

    # ------------------------------------------------------------ the match

    def match(self, proj: Node) -> bool:
        p = self.p
        w_proj = p.weight(proj.inputs[1], 2)
        add = p.only_consumer(proj.outputs[0], "Add")
        if w_proj is None or add is None or w_proj.shape[0] != w_proj.shape[1]:
            return False
        b_proj = p.weight(_other(add, proj.outputs[0]), 1)
        width = w_proj.shape[0]
        if b_proj is None or b_proj.shape != (width,):
            return False
        merge = self.node(proj.inputs[0], "Reshape")
        merged = merge and self.transpose(merge.inputs[0], _HEADS_PERM)
        mix = merged and self.node(merged.inputs[0], "MatMul")
        softmax = mix and self.node(mix.inputs[0], "Softmax")
        if softmax is None or int(softmax.attrs.get("axis", -1)) not in (-1, 3):
            return False
        found = self.scores(softmax.inputs[0])
        if found is None:
            return False
        scaled, covered = found
        qk, scaling, scale = self.scale(scaled)
        if qk is None:
            return False
        # scaled_dot_product_attention scales q and k by sqrt(1 / sqrt(hd)) each instead
        (q, q_scaling, q_factor), (k, k_scaling, k_factor) = map(self.prescaled, qk.inputs[:2])
        scale /= q_factor * k_factor
        scaling += q_scaling + k_scaling
        heads = [self.head(q, _HEADS_PERM), self.head(k, [0, 2, 3, 1], key=True),
                 self.head(mix.inputs[1], _HEADS_PERM)]  # fmt: skip
        if any(h is None for h in heads):
            return False
        parts = [h[0] for h in heads]  # type: ignore[index]
        projections = self.projections(parts, width)
        if projections is None:
            return False
        x_dims = self.dims(projections.x)
        head_dims = {self.dims(h[1].outputs[0]) for h in heads}  # type: ignore[index]
        if x_dims is None or len(x_dims) != 3 or x_dims[2] != Dim.of(width) or len(head_dims) != 1:
            return False
        (hd,) = head_dims
        if hd is None or hd[:2] != x_dims[:2] or not hd[2].is_const or not hd[3].is_const:
            return False
        n_heads, head_dim = int(hd[2]), int(hd[3])
        if n_heads * head_dim != width or not math.isclose(scale, math.sqrt(head_dim),
                                                           rel_tol=1e-6):  # fmt: skip
            return False
        if self.dims(merge.outputs[0]) != x_dims or not self.mask_fits(covered, x_dims[1]):  # type: ignore[union-attr]
            return False
        inner = [*projections.nodes, *(n for h in heads for n in h[1:]), qk, *scaling, *covered.nodes,  # type: ignore[union-attr]
                 softmax, mix, merged, merge]  # fmt: skip
        if not self.closed(inner, proj):
            return False
        return self.emit(proj, add, softmax, projections, w_proj, b_proj, n_heads)

    def scores(self, value: str) -> tuple[str, _Masked] | None:
        """The scaled scores under the causal mask: (their value, the masking nodes)."""
        p = self.p
        n = self.producer.get(value)
        if n is None or len(n.inputs) < 2:
            return None
        if n.op == "Where" and len(n.inputs) == 3:
            cond, a, b = n.inputs
            if p.scalar(a) == -math.inf and self.region(cond) == FUTURE:
                return b, _Masked(cond, (n,))
            if p.scalar(b) == -math.inf and complement(self.region(cond)) == FUTURE:
                return a, _Masked(cond, (n,))
            return None
        if n.op == "Add":
            for s, m in ((n.inputs[0], n.inputs[1]), (n.inputs[1], n.inputs[0])):
                if self.producer.get(s) is not None and self.neg_inf_region(m) == FUTURE:
                    return s, _Masked(m, (n,))
        return None

    def scale(self, value: str) -> tuple[Node | None, list[Node], float]:
        """(the q @ k^T MatMul, the scaling nodes, s) for `qk / s`, `qk * (1 / s)` or an
        unscaled `qk` (s = 1)."""
        n = self.producer.get(value)
        if n is not None and n.op == "MatMul":
            return n, [], 1.0
        if n is None or n.op not in ("Div", "Mul") or len(n.inputs) != 2:
            return None, [], 0.0
        for a, b in [(0, 1)] + ([(1, 0)] if n.op == "Mul" else []):
            k = self.p.scalar(n.inputs[b])
            qk = self.node(n.inputs[a], "MatMul")
            if k is not None and k != 0 and qk is not None:
                return qk, [n], (k if n.op == "Div" else 1.0 / k)
        return None, [], 0.0

    def prescaled(self, value: str) -> tuple[str, list[Node], float]:
        """(x, [the Mul], k) for `x * k` with a scalar k, else (value, [], 1)."""
        n = self.producer.get(value)
        if n is not None and n.op == "Mul" and len(n.inputs) == 2:
            for a, b in ((0, 1), (1, 0)):
                k = self.p.scalar(n.inputs[b])
                if k is not None and k > 0 and self.producer.get(n.inputs[a]) is not None:
                    return n.inputs[a], [n], k
        return value, [], 1.0

    def head(self, value: str, perm: list[int], key: bool = False) -> tuple | None:
        """(the [B, T, D] part, Reshape, Transpose...) for a part split into heads."""
        t = self.transpose(value, perm)
        chain: list[Node] = []
        if t is None and key:  # k.transpose(1, 2) then .transpose(-2, -1), unfused
            last = self.transpose(value, [0, 1, 3, 2])
            first = last and self.transpose(last.inputs[0], _HEADS_PERM)
            if first is None:
                return None
            t, chain = first, [last]  # type: ignore[assignment]
        if t is None:
            return None
        reshape = self.node(t.inputs[0], "Reshape")
        if reshape is None:
            return None
        return (reshape.inputs[0], reshape, t, *chain)

    def projections(self, parts: list[str], width: int) -> Projections | None:
        split = self.producer.get(parts[0])
        if split is not None and split.op == "Split":
            if list(split.outputs) != parts or int(split.attrs.get("axis", 0)) not in (-1, 2):
                return None
            if len(split.inputs) > 1 and split.inputs[1]:
                sizes = self.known(split.inputs[1])
                if sizes is None or sizes.is_symbolic or list(sizes.array) != [width] * 3:
                    return None
            dense = self.dense(split.inputs[0], 3 * width)
            if dense is None:
                return None
            x, w, b, nodes = dense
            return Projections(x, w, b, (*nodes, split))
        found = [self.dense(part, width) for part in parts]
        if any(f is None for f in found) or len({f[0] for f in found}) != 1:  # type: ignore[index]
            return None
        w = np.concatenate([f[1] for f in found])  # type: ignore[index]
        b = np.concatenate([f[2] for f in found])  # type: ignore[index]
        return Projections(found[0][0], w, b, tuple(n for f in found for n in f[3]))  # type: ignore[index]

    def dense(self, value: str, fan_out: int) -> tuple[str, np.ndarray, np.ndarray, tuple] | None:
        """x @ W + b with W [D, fan_out] -> (x, W in [Out, In], b, the two nodes)."""
        add = self.node(value, "Add")
        if add is None:
            return None
        for mm_out, bias_name in ((add.inputs[0], add.inputs[1]), (add.inputs[1], add.inputs[0])):
            mm = self.node(mm_out, "MatMul")
            w = mm and self.p.weight(mm.inputs[1], 2)
            b = mm and self.p.weight(bias_name, 1)
            if w is not None and b is not None and w.shape[1] == fan_out == b.shape[0]:
                return mm.inputs[0], np.ascontiguousarray(w.T), b, (mm, add)  # type: ignore[union-attr]
        return None

    # ------------------------------------------------------------ the mask

    def region(self, value: str) -> Region | None:
        """The positions where `value` (a [T, T] matrix) is non-zero, when it is a region."""
        k = self.known(value)
        if k is not None and not k.is_symbolic:
            return _region_of(k.array != 0)
        n = self.producer.get(value)
        if n is None:
            return None
        match n.op:
            case "Trilu":
                fill = self.fill(n.inputs[0])
                return self.kept(n) if fill is not None and fill != 0 else None
            case "Cast" | "Identity":
                return self.region(n.inputs[0])
            case "Not":
                return complement(self.region(n.inputs[0]))
            case "Equal":
                for a, b in ((n.inputs[0], n.inputs[1]), (n.inputs[1], n.inputs[0])):
                    zero = self.known(b)
                    if zero is not None and not zero.is_symbolic and zero.array.size == 1 \
                            and zero.array.reshape(-1)[0] == 0:  # fmt: skip
                        return complement(self.region(a))
        return None

    def neg_inf_region(self, value: str) -> Region | None:
        """The positions where the additive mask `value` is -inf (0 everywhere else)."""
        k = self.known(value)
        if k is not None and not k.is_symbolic and k.array.dtype.kind == "f":
            arr = k.array
            if not np.all((arr == 0) | (arr == -np.inf)):
                return None
            return _region_of(arr == -np.inf)
        n = self.producer.get(value)
        if n is None:
            return None
        if n.op == "Trilu":
            fill = self.fill(n.inputs[0])
            return self.kept(n) if fill == -math.inf else None
        if n.op == "Where" and len(n.inputs) == 3:
            a, b = self.p.scalar(n.inputs[1]), self.p.scalar(n.inputs[2])
            if (a, b) == (-math.inf, 0.0):
                return self.region(n.inputs[0])
            if (a, b) == (0.0, -math.inf):
                return complement(self.region(n.inputs[0]))
        return None

    def fill(self, value: str) -> float | None:
        """The one value a filled matrix holds (a ConstantOfShape, or a uniform constant)."""
        if value in self.c.filled:
            return float(self.c.filled[value])  # type: ignore[arg-type]
        n = self.producer.get(value)
        if n is not None and n.op == "Expand" and value not in self.c.values:
            return None
        if n is not None and n.op == "Expand" and self.dims(value) is not None:
            return self.fill(n.inputs[0])  # a scalar expanded to [T, T]
        k = self.known(value)
        if k is None or k.is_symbolic or k.array.size == 0:
            return None
        first = k.array.reshape(-1)[0]
        return float(first) if (k.array == first).all() else None

    def kept(self, trilu: Node) -> Region | None:
        k = 0
        if len(trilu.inputs) > 1 and trilu.inputs[1]:
            known = self.known(trilu.inputs[1])
            if known is None or known.is_symbolic or known.array.size != 1:
                return None
            k = int(known.array.reshape(-1)[0])
        return ("ge", k) if int(trilu.attrs.get("upper", 1)) else ("le", k)

    def mask_fits(self, masked: _Masked, steps: Dim) -> bool:
        """The mask is [T, T] (or [1, 1, T, T]) for the sequence length T of x."""
        dims = self.dims(masked.mask)
        if dims is None:
            k = self.known(masked.mask)
            dims = tuple(Dim.of(int(d)) for d in k.array.shape) if k is not None else None
        if dims is None or len(dims) < 2 or len(dims) > 4:
            return False
        return dims[-2:] == (steps, steps) and all(d == Dim.of(1) for d in dims[:-2])

    # ------------------------------------------------------------ the result

    def closed(self, inner: list[Node], proj: Node) -> bool:
        """No result of the pattern's nodes is read outside it (or is a graph output)."""
        allowed = {id(n) for n in inner} | {id(proj)}
        for n in inner:
            for o in n.outputs:
                if not o:
                    continue
                if o in self.p.graph_outputs:
                    return False
                if any(id(u) not in allowed and not self.unread(u)
                       for u in self.p.consumers.get(o, [])):  # fmt: skip
                    return False
        return True

    def unread(self, n: Node) -> bool:
        """`n` needs no run-time value: a Shape (folded at import), or a node whose results
        nothing reads (PyTorch leaves such: scaled_dot_product_attention transposes k
        again from the reshape, and reads shapes of the heads for its scale)."""
        if n.op in ("Shape", "Size"):
            return True
        return all(o not in self.p.graph_outputs and all(self.unread(u) for u in
                   self.p.consumers.get(o, [])) for o in n.outputs)  # fmt: skip

    def emit(self, proj: Node, add: Node, softmax: Node, qkv: Projections, w_proj: np.ndarray,
             b_proj: np.ndarray, n_heads: int) -> bool:  # fmt: skip
        c = self.c
        width = w_proj.shape[0]
        replaced = {o for n in qkv.nodes for o in n.outputs}
        for st in c.stmts:  # the projections' nn.Dense instances go with their statements
            if set(st.outputs) & replaced:
                for r in st.expr.refs:
                    if isinstance(r, InstRef):
                        c.instances[:] = [i for i in c.instances if i.path != r.path]
                        c.taken_paths.discard(r.path)
        path: Path = scope_of(softmax.name) or ("attn",)
        weights = {"qkv.weight": qkv.weight, "qkv.bias": qkv.bias,
                   "proj.weight": np.ascontiguousarray(w_proj.T), "proj.bias": b_proj}  # fmt: skip
        inst = c.instance(path, f"transformer.CausalSelfAttention[{width}, {n_heads}]", weights)
        x_type = c.type_of(qkv.x)
        self.p.absorbed.add(add.index)
        c.emit(add.outputs[0], ex("{}({})", hole(inst), hole(qkv.x)),
               TensorType(DType.F32, x_type.shape), hint="attn")  # fmt: skip
        return True


@dataclass(frozen=True)
class _Masked:
    mask: str
    nodes: tuple[Node, ...]


def _region_of(arr: np.ndarray) -> Region | None:
    """The region a boolean [.., T, T] constant marks, when it is one of the causal ones."""
    if arr.ndim < 2 or arr.shape[-1] != arr.shape[-2] or any(d != 1 for d in arr.shape[:-2]):
        return None
    m = arr.reshape(arr.shape[-2:])
    steps = m.shape[0]
    for r in (FUTURE, complement(FUTURE)):
        kind, k = r  # type: ignore[misc]
        expected = np.triu(np.ones((steps, steps), bool), k) if kind == "ge" else np.tril(
            np.ones((steps, steps), bool), k)  # fmt: skip
        if np.array_equal(m, expected):
            return r
    return None


def _other(n: Node, name: str) -> str:
    return n.inputs[1] if n.inputs[0] == name else n.inputs[0]
