"""The ONNX graph under construction: mdl values, dims and constants -> named ONNX tensors.

`OnnxBuilder` owns everything the op lowerings (ops_*.py) share: unique tensor names,
the node list, constants (deduplicated; `Constant` nodes, as PyTorch writes them, so an
importer folds them instead of taking them for weights), casts, and the runtime value of
symbolic dims. A dim such as `B` is read from the model input it was bound from
(`Shape(x, start=axis, end=axis + 1)`); a polynomial of dims (`2 * B * T + 3`,
`(T + 1) // 2`) becomes the few integer ops that compute it, each computed once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..dims import Dim, FloorDiv
from ..graph import Graph
from ..types import DType

# onnx.TensorProto.DataType values, fixed by the ONNX standard; spelled as numbers so that
# importing this package (and reporting that `onnx` is missing) does not need onnx
ONNX_DTYPES: dict[DType, int] = {
    DType.F16: 10,
    DType.BF16: 16,
    DType.F32: 1,
    DType.F64: 11,
    DType.I32: 6,
    DType.I64: 7,
    DType.BOOL: 9,
}

HALF = (DType.F16, DType.BF16)
CONSTANT_NODE_BYTES = 1 << 20  # bigger folded constants are initializers


class ExportError(Exception):
    """A node the exporter cannot express in ONNX; becomes a coded diagnostic."""

    def __init__(self, code: str, message: str, help: str | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.help = help


def compute_dtype(dtype: DType) -> DType:
    """The dtype arithmetic runs in: f16 and bf16 are storage types computed in f32, as the
    reference does (and onnxruntime has almost no bf16 kernels)."""
    return DType.F32 if dtype in HALF else dtype


class OnnxBuilder:
    def __init__(self, graph: Graph):
        self.nodes: list[Any] = []  # onnx.NodeProto
        self.initializers: list[Any] = []  # onnx.TensorProto: constants too big for a node
        self.constants: set[str] = set()  # names of every constant tensor (node or initializer)
        self.used: set[str] = set()
        self.scope = ""  # the mdl layer path of the node being lowered, for readable names
        self.warnings: list[str] = []
        self._consts: dict[tuple, str] = {}
        self._dims: dict[Dim, str] = {}
        self._counter = 0
        # symbol -> (tensor, axis) of the first model input that binds it alone on an axis
        self._symbols: dict[str, tuple[str, int]] = {}
        for inp in graph.inputs:
            for axis, d in enumerate(inp.value.type.shape):
                if d.is_symbol and d.name not in self._symbols:
                    self._symbols[d.name] = (inp.name, axis)

    # --- names and nodes -------------------------------------------------------------------

    def reserve(self, name: str) -> None:
        self.used.add(name)

    def fresh(self, stem: str) -> str:
        prefix = f"/{self.scope}/" if self.scope else "/"
        while True:
            self._counter += 1
            name = f"{prefix}{stem}_{self._counter}"
            if name not in self.used:
                self.used.add(name)
                return name

    def node(self, op_type: str, inputs: Sequence[str], n_out: int = 1, **attrs: Any) -> list[str]:
        from onnx import helper

        outs = [self.fresh(op_type) for _ in range(n_out)]
        # PyTorch's style, which importers read layer paths from: /blocks.0.attn/MatMul_12
        name = (
            f"/{self.scope}/{op_type}_{len(self.nodes)}"
            if self.scope
            else f"/{op_type}_{len(self.nodes)}"
        )
        self.nodes.append(helper.make_node(op_type, list(inputs), outs, name=name, **attrs))
        return outs

    def op(self, op_type: str, *inputs: str, **attrs: Any) -> str:
        return self.node(op_type, inputs, 1, **attrs)[0]

    # --- constants -------------------------------------------------------------------------

    def const(self, array: np.ndarray, stem: str = "const") -> str:
        """A constant holding `array`; equal small constants are shared. A `Constant` node
        unless it is big (initializers can go to the external-data file, nodes cannot)."""
        from onnx import helper, numpy_helper

        array = np.asarray(array)
        key = (array.dtype.str, array.shape, array.tobytes()) if array.size <= 64 else None
        if key is not None and key in self._consts:
            return self._consts[key]
        name = self.fresh(stem)
        tensor = numpy_helper.from_array(np.array(array, order="C"), name)
        if array.nbytes > CONSTANT_NODE_BYTES:
            self.initializers.append(tensor)
        else:
            node_name = f"/{self.scope}/Constant_{len(self.nodes)}" if self.scope else (
                f"/Constant_{len(self.nodes)}")  # fmt: skip
            self.nodes.append(helper.make_node("Constant", [], [name], name=node_name,
                                               value=tensor))  # fmt: skip
        self.constants.add(name)
        if key is not None:
            self._consts[key] = name
        return name

    def scalar(self, value: Any, dtype: DType) -> str:
        """A 0-d constant of `dtype` (rounded to it as numpy's astype does)."""
        with np.errstate(all="ignore"):
            return self.const(
                np.asarray(value, dtype=np.float64 if dtype.is_float else None).astype(dtype.numpy)
            )

    def ints(self, values: Sequence[int]) -> str:
        return self.const(np.asarray([int(v) for v in values], dtype=np.int64), "ints")

    def cast(self, name: str, source: DType, to: DType) -> str:
        if source == to:
            return name
        return self.op("Cast", name, to=ONNX_DTYPES[to])

    # --- dims ------------------------------------------------------------------------------

    def dim(self, d: Dim) -> str:
        """A 1-D i64 tensor [value of d] at run time."""
        d = Dim.of(d)
        if d.is_const:
            return self.ints([int(d)])
        found = self._dims.get(d)
        if found is not None:
            return found
        if d.name is not None:  # a symbol alone
            where = self._symbols.get(d.name)
            if where is None:
                raise ExportError(
                    "E1102",
                    f"the dimension `{d.name}` is not the size of any model input axis",
                    help="declare an input with this dimension on one of its axes",
                )
            tensor, axis = where
            name = self.op("Shape", tensor, start=axis, end=axis + 1)
        else:
            name = self._polynomial(d)
        self._dims[d] = name
        return name

    def _polynomial(self, d: Dim) -> str:
        total: str | None = None
        constant = 0
        for mono, coeff in d.terms:
            if not mono:
                constant = coeff
                continue
            term: str | None = None
            for atom, exp in mono:
                factor = self._atom(atom)
                for _ in range(exp):
                    term = factor if term is None else self.op("Mul", term, factor)
            assert term is not None
            if coeff != 1:
                term = self.op("Mul", term, self.ints([coeff]))
            total = term if total is None else self.op("Add", total, term)
        assert total is not None  # a non-constant polynomial has a non-constant term
        if constant:
            total = self.op("Add", total, self.ints([constant]))
        return total

    def _atom(self, atom: str | FloorDiv) -> str:
        if isinstance(atom, str):
            return self.dim(Dim.sym(atom))
        num, den = self.dim(atom.num), self.dim(atom.den)
        return self.floordiv_int(num, den)

    def floordiv_int(self, a: str, b: str) -> str:
        """Python's a // b for i64 tensors with b != 0 (ONNX Div truncates toward zero)."""
        q = self.op("Div", a, b)
        rem = self.op("Sub", a, self.op("Mul", q, b))
        zero = self.ints([0])
        signs_differ = self.op("Xor", self.op("Less", rem, zero), self.op("Less", b, zero))
        adjust = self.op("And", self.op("Not", self.op("Equal", rem, zero)), signs_differ)
        return self.op("Sub", q, self.op("Cast", adjust, to=ONNX_DTYPES[DType.I64]))

    def shape(self, dims: Sequence[Dim], allow_infer: bool = False) -> str:
        """A 1-D i64 shape tensor. `allow_infer`: one symbolic dim may become -1 (Reshape)."""
        dims = [Dim.of(d) for d in dims]
        symbolic = [i for i, d in enumerate(dims) if not d.is_const]
        if not symbolic:
            return self.ints([int(d) for d in dims])
        if allow_infer and len(symbolic) == 1:
            return self.ints([int(d) if d.is_const else -1 for d in dims])
        return self.op("Concat", *(self.dim(d) for d in dims), axis=0)
