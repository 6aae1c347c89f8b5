"""Groups of ONNX nodes that are one standard layer -> `nn.Dense`, `nn.Conv2d`, `nn.LayerNorm`, ...

A pattern fires on the node that starts it (a Gemm, a MatMul followed by the
Add of its bias, a Conv, ...) when the weights are initializers only it reads,
and absorbs the nodes it covers. The instance is bound at the module path
PyTorch's names give (`blocks.0.attn.qkv`), so its parameters land in the
weights file under the state-dict keys (`blocks.0.attn.qkv.weight`), with the
layouts the standard layers declare (a MatMul's [In, Out] weight is stored
transposed, as nn.Linear's [Out, In]). Anything that does not fit exactly is
left to the one-node converters. Causal self-attention, a pattern of some thirty
nodes, is matched in attention.py.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from ..dims import Dim
from ..types import DType, TensorType
from .attention import AttentionMatcher
from .convert import Ctx, Node
from .ir import Expr, Known, Path, Tensor, ex, hole
from .names import scope_of, state_dict_path


class Patterns:
    def __init__(self, c: Ctx, nodes: list[Node], graph_outputs: set[str]):
        self.c = c
        self.consumers: dict[str, list[Node]] = defaultdict(list)
        for n in nodes:
            for i in n.inputs:
                if i:
                    self.consumers[i].append(n)
        self.producer: dict[str, Node] = {o: n for n in nodes for o in n.outputs if o}
        self.graph_outputs = graph_outputs
        self.absorbed: set[int] = set()
        self.attention = AttentionMatcher(self)
        # Constant nodes may come after the node that starts a pattern
        self.constants: dict[str, np.ndarray] = {
            n.outputs[0]: n.attrs["value"] for n in nodes
            if n.op == "Constant" and isinstance(n.attrs.get("value"), np.ndarray)
        }  # fmt: skip

    # ------------------------------------------------------------ queries

    def weight(self, name: str, rank: int) -> np.ndarray | None:
        """An f32 initializer of `rank` that exactly one node reads (so a layer can own it)."""
        if not name or name not in self.c.model.initializers or name in self.graph_outputs:
            return None
        if isinstance(self.c.values.get(name), Tensor) or len(self.consumers[name]) != 1:
            return None
        arr = self.c.model.initializers[name]
        return arr if arr.dtype == np.float32 and arr.ndim == rank else None

    def only_consumer(self, value: str, op: str) -> Node | None:
        users = self.consumers.get(value, [])
        if len(users) != 1 or value in self.graph_outputs or users[0].op != op:
            return None
        return users[0]

    def scalar(self, name: str) -> float | None:
        if name in self.constants:
            arr = self.constants[name]
        elif name in self.c.values or name in self.c.model.initializers:
            k = self.c.known(name)
            if k is None or k.is_symbolic:
                return None
            arr = k.array
        else:
            return None
        if arr.size != 1 or arr.dtype != np.float32:
            return None
        return float(arr.reshape(-1)[0])

    def f32_tensor(self, name: str, min_rank: int = 1) -> TensorType | None:
        v = self.c.values.get(name)
        if isinstance(v, Tensor) and v.type.dtype is DType.F32 and v.type.rank >= min_rank:
            return v.type
        return None

    def path(self, node: Node, named: str | None, suffix: str, hint: str) -> Path:
        """Where the instance goes: the state-dict name of its weights, else the node's
        module scope, else a name from the layer kind."""
        sd = state_dict_path(named) if named else None
        if sd is not None and sd[-1] == suffix:
            return sd[:-1]
        return scope_of(node.name) or (hint,)

    def call(self, n: Node, outputs: str, inst: Expr, x: Expr, t: TensorType) -> None:
        self.c.emit(outputs, ex("{}({})", inst, x), t, hint=n.op.lower())

    # ------------------------------------------------------------ matching

    def try_match(self, n: Node) -> bool:
        match n.op:
            case "Gemm":
                return self.dense_gemm(n)
            case "MatMul":  # an attention's output projection, or a Dense
                return self.attention.match(n) or self.dense_matmul(n)
            case "Conv":
                return self.conv(n)
            case "BatchNormalization":
                return self.batch_norm(n)
            case "LayerNormalization" | "RMSNormalization":
                return self.layer_norm(n)
            case "Gather":
                return self.embedding(n)
            case "Div" | "Mul":
                return self.gelu(n)
        return False

    def dense_gemm(self, n: Node) -> bool:
        a = n.attrs
        if set(a) - {"alpha", "beta", "transA", "transB"} or a.get("transA", 0):
            return False
        if float(a.get("alpha", 1.0)) != 1.0 or float(a.get("beta", 1.0)) != 1.0:
            return False
        tx = self.f32_tensor(n.inputs[0], 2)
        w = self.weight(n.inputs[1], 2)
        if tx is None or tx.rank != 2 or w is None:
            return False
        weight = w if a.get("transB", 0) else np.ascontiguousarray(w.T)
        bias_name = n.inputs[2] if len(n.inputs) > 2 else ""
        bias = self.weight(bias_name, 1) if bias_name else None
        if bias_name and (bias is None or bias.shape[0] != weight.shape[0]):
            return False
        return self.dense(n, n.outputs[0], tx, weight, bias, n.inputs[1], bias_name)

    def dense_matmul(self, n: Node) -> bool:
        tx = self.f32_tensor(n.inputs[0], 1)
        w = self.weight(n.inputs[1], 2)
        if tx is None or w is None or Dim.of(tx.shape[-1]) != w.shape[0]:
            return False
        weight = np.ascontiguousarray(w.T)
        out, bias, bias_name = n.outputs[0], None, ""
        add = self.only_consumer(n.outputs[0], "Add")
        if add is not None:
            other = add.inputs[1] if add.inputs[0] == n.outputs[0] else add.inputs[0]
            b = self.weight(other, 1)
            if b is not None and b.shape[0] == weight.shape[0]:
                bias, bias_name, out = b, other, add.outputs[0]
                self.absorbed.add(add.index)
        return self.dense(n, out, tx, weight, bias, n.inputs[1], bias_name)

    def dense(self, n: Node, out: str, tx: TensorType, weight: np.ndarray, bias: np.ndarray | None,
              weight_name: str, bias_name: str) -> bool:  # fmt: skip
        fan_out, fan_in = weight.shape
        path = self.path(n, bias_name or weight_name, "bias" if bias_name else "weight", "dense")
        weights = {"weight": weight} | ({"bias": bias} if bias is not None else {})
        decl = f"nn.Dense[{fan_in}, {fan_out}{'' if bias is not None else ', bias=false'}]"
        inst = self.c.instance(path, decl, weights)
        t = TensorType(DType.F32, (*tx.shape[:-1], Dim.of(fan_out)))
        self.call(n, out, hole(inst), hole(n.inputs[0]), t)
        return True

    def conv(self, n: Node) -> bool:
        from .ops_nn import Geometry, keywords

        if set(n.attrs) - {"auto_pad", "dilations", "group", "kernel_shape", "pads", "strides"}:
            return False
        tx = self.f32_tensor(n.inputs[0], 3)
        if tx is None or tx.rank not in (3, 4):
            return False
        w = self.weight(n.inputs[1], tx.rank)
        if w is None or (tx.rank == 4 and w.shape[2] != w.shape[3]):
            return False
        bias_name = n.inputs[2] if len(n.inputs) > 2 else ""
        bias = self.weight(bias_name, 1) if bias_name else None
        if bias_name and bias is None:
            return False
        groups = int(n.attrs.get("group", 1))
        channels = Dim.of(tx.shape[1])
        if not channels.is_const or int(channels) != w.shape[1] * groups or w.shape[0] % groups:
            return False
        geo = Geometry(self.c, n, tx.shape[2:], [int(k) for k in w.shape[2:]])
        kw = keywords(stride=geo.ints(geo.strides, 1), padding=geo.padding_text(),
                      dilation=geo.ints(geo.dilations, 1),
                      groups=str(groups) if groups != 1 else None,
                      bias="false" if bias is None else None)  # fmt: skip
        kind = "Conv2d" if tx.rank == 4 else "Conv1d"
        decl = f"nn.{kind}[{int(channels)}, {w.shape[0]}, {w.shape[2]}{kw}]"
        path = self.path(n, bias_name or n.inputs[1], "bias" if bias_name else "weight", "conv")
        weights = {"weight": w} | ({"bias": bias} if bias is not None else {})
        inst = self.c.instance(path, decl, weights)
        t = TensorType(DType.F32, (tx.shape[0], Dim.of(w.shape[0]), *geo.out))
        self.call(n, n.outputs[0], hole(inst), hole(n.inputs[0]), t)
        return True

    def batch_norm(self, n: Node) -> bool:
        if set(n.attrs) - {"epsilon", "momentum", "training_mode"} or n.attrs.get("training_mode"):
            return False
        if any(o for o in n.outputs[1:]):
            return False
        tx = self.f32_tensor(n.inputs[0], 2)
        arrays = [self.weight(i, 1) for i in n.inputs[1:5]]
        if tx is None or tx.rank not in (2, 4) or any(a is None for a in arrays):
            return False
        channels = Dim.of(tx.shape[1])
        if not channels.is_const or any(a.shape[0] != int(channels) for a in arrays):  # type: ignore[union-attr]
            return False
        scale, bias, mean, var = arrays
        eps = _eps_keyword(n.attrs.get("epsilon", 1e-5), 1e-5)
        decl = f"nn.BatchNorm{'2d' if tx.rank == 4 else '1d'}[{int(channels)}{eps}]"
        weights = {"weight": scale, "bias": bias, "running_mean": mean, "running_var": var,
                   "num_batches_tracked": np.array(0, dtype=np.int64)}  # fmt: skip
        inst = self.c.instance(self.path(n, n.inputs[1], "weight", "norm"), decl, weights)  # type: ignore[arg-type]
        self.call(n, n.outputs[0], hole(inst), hole(n.inputs[0]), tx)
        return True

    def layer_norm(self, n: Node) -> bool:
        if set(n.attrs) - {"axis", "epsilon", "stash_type"} or any(o for o in n.outputs[1:]):
            return False
        tx = self.f32_tensor(n.inputs[0], 1)
        rms = n.op == "RMSNormalization"
        if tx is None or int(n.attrs.get("axis", -1)) not in (-1, tx.rank - 1):
            return False
        if len(n.inputs) != (2 if rms else 3):
            return False
        scale = self.weight(n.inputs[1], 1)
        bias = None if rms else self.weight(n.inputs[2], 1)
        width = Dim.of(tx.shape[-1])
        if scale is None or (bias is None and not rms) or not width.is_const:
            return False
        if scale.shape[0] != int(width) or (bias is not None and bias.shape[0] != int(width)):
            return False
        eps = n.attrs.get("epsilon", 1e-5)
        if rms:  # nn.RMSNorm's default is PyTorch's 1e-6, ONNX's 1e-5
            decl = f"nn.RMSNorm[{int(width)}{_eps_keyword(eps, 1e-6)}]"
        else:
            decl = f"nn.LayerNorm[{int(width)}{_eps_keyword(eps, 1e-5)}]"
        weights = {"weight": scale} | ({"bias": bias} if bias is not None else {})
        inst = self.c.instance(self.path(n, n.inputs[1], "weight", "norm"), decl, weights)
        self.call(n, n.outputs[0], hole(inst), hole(n.inputs[0]), tx)
        return True

    def embedding(self, n: Node) -> bool:
        if int(n.attrs.get("axis", 0)) != 0 or set(n.attrs) - {"axis"}:
            return False
        table = self.weight(n.inputs[0], 2)
        ids = self.c.values.get(n.inputs[1])
        if table is None or ids is None or isinstance(ids, Known) and ids.is_symbolic:
            return False
        ids_type = self.c.type_of(n.inputs[1])
        if ids_type.dtype is not DType.I64:
            return False
        decl = f"nn.Embedding[{table.shape[0]}, {table.shape[1]}]"
        inst = self.c.instance(self.path(n, n.inputs[0], "weight", "embedding"), decl,
                               {"weight": table})  # fmt: skip
        t = TensorType(DType.F32, (*ids_type.shape, Dim.of(table.shape[1])))
        self.call(n, n.outputs[0], hole(inst), self.c.arg(n.inputs[1]), t)
        return True

    def gelu(self, n: Node) -> bool:
        """x * 0.5 * (1 + erf(x / sqrt 2)), as PyTorch exports nn.GELU() -> `nn.gelu(x)`."""
        if n.op not in ("Div", "Mul") or len(n.inputs) != 2:
            return False
        x = n.inputs[0]
        tx = self.f32_tensor(x)
        k = self.scalar(n.inputs[1])
        target = 2**0.5 if n.op == "Div" else 2**-0.5
        if tx is None or k is None or abs(k - target) > 1e-6:
            return False
        erf = self.only_consumer(n.outputs[0], "Erf")
        add = erf and self.only_consumer(erf.outputs[0], "Add")
        if add is None or self.scalar(_other(add, erf.outputs[0])) != 1.0:  # type: ignore[union-attr]
            return False
        mul = self.only_consumer(add.outputs[0], "Mul")
        if mul is None or _other(mul, add.outputs[0]) != x:
            return False
        half = self.only_consumer(mul.outputs[0], "Mul")
        if half is None or self.scalar(_other(half, mul.outputs[0])) != 0.5:
            return False
        self.absorbed.update({erf.index, add.index, mul.index, half.index})  # type: ignore[union-attr]
        self.c.emit(half.outputs[0], ex("nn.gelu({})", hole(x)), tx, "gelu")
        return True


def _other(n: Node, name: str) -> str:
    return n.inputs[1] if n.inputs[0] == name else n.inputs[0]


def _eps_keyword(eps: float, default: float) -> str:
    from .convert import scalar_text

    if np.float32(eps) == np.float32(default):
        return ""
    return f", eps={scalar_text(eps, DType.F32)}"
