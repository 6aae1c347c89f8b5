"""A checked `OnnxModel` -> `Converted`: the importer's statements, instances and parameters.

Walks the nodes in order (ONNX graphs are topologically sorted), giving each
output a `Known` (folded at import: initializers, constants, shape arithmetic)
or a `Tensor` computed by an mdl statement. `patterns.py` first claims groups
of nodes that are a standard layer (Gemm -> nn.Dense, ...); `ops.py` and
`ops_layout.py` convert the rest one node at a time. Everything a user's file
can get wrong is an `ImportError_` naming the node, op and opset.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, NoReturn

import numpy as np

from ..diagnostics import Diagnostic
from ..dims import Dim
from ..types import DType, TensorType
from ..weights_io import printable
from .ir import Expr, Instance, InstRef, Known, Param, Path, Stmt, Tensor, Value, ex, hole, lit
from .names import identifier, scope_of, segment, state_dict_path
from .reader import ONNX_DTYPES, OPSET_HELP, ImportError_, OnnxModel, check_old_opset, fail

DTYPE_OF_ONNX = {1: DType.F32, 6: DType.I32, 7: DType.I64, 9: DType.BOOL, 10: DType.F16,
                 11: DType.F64, 16: DType.BF16}  # fmt: skip
ONNX_OF_DTYPE = {v: k for k, v in DTYPE_OF_ONNX.items()}
MAX_FOLD_ELEMENTS = 1 << 16  # constant results larger than this stay run-time work


@dataclass
class Node:
    """One ONNX node, its attributes decoded."""

    name: str
    op: str
    inputs: list[str]
    outputs: list[str]
    attrs: dict[str, Any]
    index: int


@dataclass
class Graph:
    """The model's signature: inputs and outputs in order, with their ONNX names."""

    inputs: list[tuple[str, TensorType]] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)


@dataclass
class Converted:
    graph: Graph
    values: dict[str, Value]
    stmts: list[Stmt]
    instances: list[Instance]
    params: list[Param]
    symbols: list[str]


class Ctx:
    """What op converters see: values by name, and ways to emit statements and parameters."""

    def __init__(self, model: OnnxModel):
        self.model = model
        self.opset = model.opset
        self.values: dict[str, Value] = {}
        self.stmts: list[Stmt] = []
        self.instances: list[Instance] = []
        self.params: dict[str, Param] = {}
        self.node: Node | None = None
        self.scope: Path = ()
        self.taken_paths: set[Path] = set()
        # the state-dict keys among the initializers: a parameter named after its scope (an
        # anonymous `onnx::Mul_9` read in `/ln/Mul`) must not take one of them first
        self.reserved: frozenset[Path] = frozenset(
            tuple(segment(q) for q in p)
            for n in model.initializers
            if (p := state_dict_path(n)) is not None
        )
        self.symbols: list[str] = []
        # folded values -> the node that computed them, to compute them at run time instead
        # when a tensor is needed (a causal mask reads better as `arange`s than as a buffer)
        self.recipe: dict[str, Node] = {}
        self.filled: dict[str, object] = {}  # run-time `full(...)` tensors -> their value

    # ------------------------------------------------------------ errors

    def where(self) -> str:
        n = self.node
        if n is None:
            return ""
        label = f"`{printable(n.name, 200)}` " if n.name else f"#{n.index} "
        return f"node {label}({n.op}, opset {self.opset})"

    def fail(self, code: str, message: str, help: str | None = None) -> NoReturn:
        fail(code, f"{self.where()}: {message}" if self.node else message, help=help)

    def unsupported(self, what: str, help: str | None = None) -> NoReturn:
        self.fail("E1007", what, help)

    # ------------------------------------------------------------ reading values

    def value(self, name: str) -> Value:
        if name not in self.values:
            if name in self.model.initializers:
                self.values[name] = known_of(self.model.initializers[name])
            else:
                self.fail("E1011", f"reads `{printable(name, 200)}`, which nothing defines")
        return self.values[name]

    def known(self, name: str) -> Known | None:
        v = self.value(name)
        return v if isinstance(v, Known) else None

    def type_of(self, name: str) -> TensorType:
        v = self.value(name)
        if isinstance(v, Tensor):
            return v.type
        if v.dtype is None:
            self.fail(
                "E1008", f"`{printable(name, 200)}` has an element type mdl has no tensors of"
            )
        return TensorType(v.dtype, tuple(Dim.of(int(d)) for d in v.array.shape))

    def arg(self, name: str, literal_rank: int = -1) -> Expr:
        """`name` as a run-time operand. A one-element constant of rank <= `literal_rank`
        becomes a number (callers allow it only next to a tensor of the same dtype)."""
        v = self.value(name)
        if isinstance(v, Tensor):
            return hole(name)
        if v.dtype is None:
            self.fail(
                "E1008", f"`{printable(name, 200)}` has an element type mdl has no tensors of"
            )
        arr = v.array
        if arr.size == 1 and arr.ndim <= literal_rank and not v.is_symbolic:
            return lit(scalar_text(arr.reshape(()).item(), v.dtype))
        if v.is_symbolic:
            self.fail("E1010", f"uses the shape value `{printable(name, 200)}` as a run-time "
                      "tensor, which mdl cannot express", help="export with static shapes")  # fmt: skip
        if name in self.model.initializers:  # a weight the model was given: keep it one
            return self.param_ref(name, arr, v.dtype, is_buffer=False, hint="weight")
        if name in self.recipe and not (arr == arr.flat[0]).all():
            self.realize(name)
            return hole(name)
        if arr.size and (arr == arr.flat[0]).all() and arr.ndim > 0:
            dims = ", ".join(str(int(d)) for d in arr.shape)
            value = scalar_text(arr.flat[0].item(), v.dtype)
            return lit(f"full([{dims}], {value}, dtype={v.dtype})")
        if arr.ndim == 0 or arr.size == 0:
            if arr.size == 0:
                self.fail("E1003", f"uses the empty constant `{printable(name, 200)}`")
            return lit(f"full([], {scalar_text(arr.item(), v.dtype)}, dtype={v.dtype})")
        return self.param_ref(name, arr, v.dtype, is_buffer=True, hint="const")

    def realize(self, name: str) -> None:
        """Convert the node that computed the folded value `name` as run-time work."""
        from .ops import OPS

        node = self.recipe[name]
        for out in node.outputs:
            self.recipe.pop(out, None)
        saved = self.node, self.scope
        self.node, self.scope = node, scope_of(node.name)
        try:
            OPS[node.op][0](self, node)
        finally:
            self.node, self.scope = saved

    def param_ref(self, name: str, arr: np.ndarray, dtype: DType, is_buffer: bool,
                  hint: str) -> Expr:  # fmt: skip
        """An initializer read as a raw run-time tensor: declared as a param (or buffer)."""
        if name not in self.params:
            own = state_dict_path(name) if name in self.model.initializers else None
            path = self.claim(own) if own else self.claim((*self.scope, hint), self.reserved)
            self.params[name] = Param(name, path, arr, dtype, is_buffer)
            self.values[name] = Tensor(TensorType(dtype, tuple(Dim.of(d) for d in arr.shape)))
        return hole(name)

    # ------------------------------------------------------------ producing values

    def set_known(self, name: str, arr: np.ndarray, dtype: DType | None) -> None:
        self.values[name] = Known(normalize(arr), dtype)

    def emit(self, outputs: list[str] | str, expr: Expr, types: list[TensorType] | TensorType,
             hint: str | None = None) -> None:  # fmt: skip
        outs = [outputs] if isinstance(outputs, str) else list(outputs)
        tys = [types] if isinstance(types, TensorType) else list(types)
        for o, t in zip(outs, tys, strict=True):
            if o:
                self.values[o] = Tensor(t)
        hint = hint or (self.node.op.lower() if self.node else "v")
        self.stmts.append(Stmt(tuple(outs), expr, self.scope, hint))

    def instance(self, path: Path, decl: str, weights: dict[str, np.ndarray]) -> InstRef:
        path = self.claim(path)
        self.instances.append(Instance(path, decl, weights))
        return InstRef(path)

    def claim(self, path: Path, avoid: frozenset[Path] = frozenset()) -> Path:
        """A path no other instance or parameter has, nor is a prefix of (or below) one, and
        not one of `avoid` (kept for the initializers named so)."""
        path = tuple(segment(p) for p in path) or ("p",)
        for p in sorted(self.taken_paths, key=len):
            if len(p) < len(path) and path[: len(p)] == p:  # below a layer: merge the rest
                path = (*p[:-1], identifier("_".join(path[len(p) - 1 :])))
                break
        candidate, i = path, 1
        while self._clashes(candidate) or candidate in avoid:
            candidate = (*path[:-1], f"{path[-1]}_{i}")
            i += 1
        self.taken_paths.add(candidate)
        return candidate

    def _clashes(self, path: Path) -> bool:
        for p in self.taken_paths:
            n = min(len(p), len(path))
            if p[:n] == path[:n]:
                return True
        return False


def known_of(arr: np.ndarray) -> Known:
    dtype = DType.from_numpy(arr.dtype) if arr.dtype != object else DType.I64
    return Known(normalize(arr), dtype)


def normalize(arr: np.ndarray) -> np.ndarray:
    """Object arrays whose entries are all constant become int64 arrays."""
    arr = np.asarray(arr)
    if arr.dtype != object:
        return arr
    flat = [Dim.of(x) if not isinstance(x, (int, np.integer)) else int(x) for x in arr.flat]
    if all(isinstance(x, int) or x.is_const for x in flat):
        return np.array([int(x) for x in flat], dtype=np.int64).reshape(arr.shape)
    out = np.empty(arr.shape, dtype=object)
    for i, x in enumerate(flat):
        out.flat[i] = int(x) if isinstance(x, int) or x.is_const else x
    return out


def scalar_text(v: object, dtype: DType) -> str:
    """A number as an mdl literal that converts back to exactly `v` in `dtype`."""
    if dtype is DType.BOOL:
        return "true" if bool(v) else "false"
    if dtype.is_int:
        return str(int(v))  # type: ignore[call-overload]
    f = float(v)  # type: ignore[arg-type]
    if math.isnan(f):
        return "nan"
    if math.isinf(f):
        return "inf" if f > 0 else "-inf"
    match dtype:
        case DType.F16:
            text = str(np.float16(f))
        case DType.F32 | DType.BF16:
            text = str(np.float32(f))
        case _:
            text = repr(f)
    if "e" not in text and "." not in text:
        text += ".0"
    mantissa, _, exponent = text.partition("e")
    if exponent and "." not in mantissa and not mantissa.lstrip("-").isdigit():
        text = f"{mantissa}.0e{exponent}"
    return text


def attrs_of(node: Any) -> dict[str, Any]:
    import onnx

    out: dict[str, Any] = {}
    for a in node.attribute:
        if a.ref_attr_name:
            fail("E1007", f"node `{node.name}` ({node.op_type}) refers to a function attribute")
        if a.type == onnx.AttributeProto.TENSOR:
            from .reader import tensor_to_array

            out[a.name] = tensor_to_array(a.t, None, f"attribute `{a.name}` of `{node.name}`")
        elif a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS):
            out[a.name] = a  # only for a diagnostic: no supported op takes a subgraph
        else:
            value = onnx.helper.get_attribute_value(a)
            if value is None:
                fail("E1011", f"node `{printable(str(node.name), 200)}` ({node.op_type}): attribute "
                     f"`{printable(str(a.name), 100)}` has no value")  # fmt: skip
            out[a.name] = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
    return out


def input_type(value: Any, symbols: dict[str, str], taken: set[str]) -> TensorType:
    """A graph input's declared type; dim_params become symbols (named as in the file)."""
    t = value.type
    name = printable(value.name, 200)
    if not t.HasField("tensor_type"):
        fail("E1008", f"input `{name}` is not a tensor (sequences and maps are not supported)")
    elem = t.tensor_type.elem_type
    if elem not in DTYPE_OF_ONNX:
        kind = ONNX_DTYPES.get(elem, f"ONNX element type {elem}")
        fail("E1008", f"input `{name}` has element type {kind}, which mdl does not support",
             help="mdl tensors are f16, bf16, f32, f64, i32, i64 or bool")  # fmt: skip
    if not t.tensor_type.HasField("shape"):
        fail("E1010", f"input `{name}` has no declared rank",
             help="give the input a shape when exporting (symbolic dims are fine)")  # fmt: skip
    dims: list[Dim] = []
    for axis, d in enumerate(t.tensor_type.shape.dim):
        if d.HasField("dim_value"):
            dims.append(Dim.of(int(d.dim_value)))
            continue
        raw = d.dim_param or f"{value.name}_{axis}"
        if raw not in symbols:
            sym = identifier(raw, "N")
            while sym in taken:
                sym += "_"
            taken.add(sym)
            symbols[raw] = sym
        dims.append(Dim.sym(symbols[raw]))
    return TensorType(DTYPE_OF_ONNX[elem], tuple(dims))


def convert(model: OnnxModel) -> Converted:
    from .ops import convert_node
    from .patterns import Patterns

    c = Ctx(model)
    g = model.proto.graph  # type: ignore[attr-defined]
    graph = Graph()
    symbols: dict[str, str] = {}
    taken: set[str] = set()
    for value in g.input:
        if value.name in model.initializers:
            continue  # old exporters list initializers as inputs too
        t = input_type(value, symbols, taken)
        c.values[value.name] = Tensor(t)
        graph.inputs.append((value.name, t))
    c.symbols = list(symbols.values())
    nodes = []
    for i, n in enumerate(g.node):
        if n.domain not in ("", "ai.onnx"):
            c.node = Node(n.name, n.op_type, [], [], {}, i)
            c.fail("E1006", f"op `{n.domain}.{n.op_type}` is not supported",
                   help="only the default ONNX domain is imported")  # fmt: skip
        why = check_old_opset(_text(n.op_type), c.opset)
        if why is not None:
            c.node = Node(_text(n.name), _text(n.op_type), [], [], {}, i)
            c.fail("E1009", why, help=OPSET_HELP)
        nodes.append(
            Node(_text(n.name), _text(n.op_type), [_text(x) for x in n.input],
                 [_text(x) for x in n.output], attrs_of(n), i)
        )  # fmt: skip
    patterns = Patterns(c, nodes, {o.name for o in g.output})
    for node in nodes:
        if node.index in patterns.absorbed:
            continue
        c.node = node
        c.scope = scope_of(node.name)
        try:
            if not patterns.try_match(node):
                convert_node(c, node)
        except TypeError:  # an attribute of the wrong kind: a list where an int goes, ...
            c.fail("E1011", "an attribute has a value of the wrong type")
    c.node = None
    for out in g.output:
        if out.name not in c.values:
            fail("E1011", f"output `{printable(out.name, 200)}` is never computed")
        if isinstance(c.values[out.name], Known):  # a constant output: computed in the model
            c.scope = ()
            t = c.type_of(out.name)
            c.emit(out.name, c.arg(out.name), t, "out")
        graph.outputs.append(out.name)
    if not graph.outputs:
        fail("E1011", "the graph has no outputs")
    stmts = live_statements(c.stmts, graph.outputs)
    refs = {r for st in stmts for r in st.expr.refs}
    instances = [i for i in c.instances if InstRef(i.path) in refs]
    params = [p for p in c.params.values() if p.value in refs]
    return Converted(graph, c.values, stmts, instances, params, c.symbols)


def live_statements(stmts: list[Stmt], outputs: list[str]) -> list[Stmt]:
    """The statements the outputs depend on (a folded mask leaves its `full` unread)."""
    needed = set(outputs)
    live: list[Stmt] = []
    for st in reversed(stmts):
        if any(o in needed for o in st.outputs):
            live.append(st)
            needed.update(r for r in st.expr.refs if isinstance(r, str))
    return live[::-1]


def _text(x: object) -> str:
    """Protobuf hands out bytes for strings that are not valid UTF-8."""
    return x.decode("utf-8", "replace") if isinstance(x, bytes) else str(x)


def convert_file(path: str) -> tuple[Converted | None, list[Diagnostic]]:
    from .reader import read_model

    try:
        return convert(read_model(path)), []
    except ImportError_ as e:
        return None, [e.diagnostic]


__all__ = ["Converted", "Ctx", "Node", "convert", "convert_file", "ex", "lit", "hole"]
