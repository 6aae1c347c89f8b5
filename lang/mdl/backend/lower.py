"""Lowering: `Graph` -> loop-IR `Program`: one kernel per graph node, or per fused group.

Every graph value gets a dense row-major buffer: inputs, parameters and
outputs are the caller's; constants are embedded; the rest are temporaries
the runtime allocates. Each node's lowering comes from kernels/ (one function
per op). Fusion, decided here from the graph: element-wise chains into their
consumer's loop (`fusion_plan`), softmax/norm-shaped regions into one row kernel
(rowplan.py), then bias/activation tails into their GEMM (epilogue.py).
"""

from __future__ import annotations

import itertools

from ..dims import Dim
from ..graph import Graph, Node, Value
from ..types import DType
from . import loopir as ir
from .collapse import collapse_parallel
from .epilogue import fuse_epilogues
from .kernels import LOWERINGS, load_all
from .kernels.rows import lower_rows
from .rowplan import RowPlan, plan_rows


class UnsupportedOp(Exception):
    def __init__(self, op: str, node: Node):
        super().__init__(op)
        self.op = op
        self.node = node


class UnsupportedDtype(Exception):
    def __init__(self, dtype):
        super().__init__(str(dtype))
        self.dtype = dtype


# f16 and bf16 are stored in 16 bits and computed in f32 registers (emit_half.py)
_NATIVE_DTYPES = frozenset(
    {DType.F16, DType.BF16, DType.F32, DType.F64, DType.I32, DType.I64, DType.BOOL}
)


class LowerCtx:
    """What a lowering may use: buffer names, shapes, fresh names, error messages."""

    def __init__(self, program: ir.Program, names: dict[int, str], fused: dict[int, Node]):
        self.program = program
        self._names = names
        self._counter = itertools.count()
        self.fused = fused  # value id -> the element-wise node computing it inside its consumer

    def buf(self, v: Value) -> str:
        return self._names[v.id]

    def shape(self, v: Value) -> tuple[Dim, ...]:
        return tuple(Dim.of(d) for d in v.type.shape)

    def fresh(self, prefix: str = "t") -> str:
        return f"{prefix}{next(self._counter)}"

    def temp(self, dtype: DType, shape: tuple[Dim, ...], prefix: str = "scratch") -> str:
        """A scratch buffer of the lowering's own (for example im2col columns)."""
        name = f"{prefix}.{next(self._counter)}"
        self.program.buffers.append(ir.Buffer(name, dtype, tuple(Dim.of(d) for d in shape), "temp"))
        return name

    def chunk(self, dtype: DType, shape: tuple[Dim, ...], prefix: str = "chunk") -> str:
        """Scratch of a parallel loop's body, one per thread (loopir.Program.chunks)."""
        name = f"{prefix}.{next(self._counter)}"
        self.program.chunks.append(ir.Buffer(name, dtype, tuple(Dim.of(d) for d in shape), "chunk"))
        if self.program.oom_error < 0:
            self.program.oom_error = self.error(
                "out of memory: {0} bytes of scratch for a parallel loop", "E0609"
            )
        return name

    def constant(self, data, prefix: str = "table") -> str:
        """A constant buffer of the lowering's own (an offset table), holding `data`."""
        name = f"{prefix}.{next(self._counter)}"
        shape = tuple(Dim.of(int(d)) for d in data.shape)
        self.program.buffers.append(
            ir.Buffer(name, DType.from_numpy(data.dtype), shape, "const", data)
        )
        return name

    def error(self, message: str, code: str = "E0607") -> int:
        """Register a run-time error message; `{0}`, `{1}` stand for the `Fail` values."""
        self.program.errors.append(f"{code}: {message}")
        return len(self.program.errors) - 1


def fusion_plan(graph: Graph, rows: RowPlan | None = None) -> dict[int, Node]:
    """Element-wise nodes to compute inside their consumer instead of into a buffer.

    A node fuses when its one output has exactly one use, by an element-wise node of the
    same output shape (so no element is computed twice), and is not a model output.
    The fused value is converted to its dtype exactly as a store would, so fusion never
    changes a result. Values inside a row region (`rows`) and the regions' sinks are left
    to the row kernels.
    """
    from .kernels.elementwise import COMPUTE

    uses: dict[int, list[Node]] = {}
    for node in graph.nodes:
        for v in node.inputs:
            uses.setdefault(v.id, []).append(node)
    outputs = {v.id for _, v in graph.outputs}
    fused: dict[int, Node] = {}
    for node in graph.nodes:
        if node.op not in COMPUTE or len(node.outputs) != 1:
            continue
        if rows is not None and (node.outputs[0].id in rows.inner or rows.region_of(node)):
            continue
        v = node.outputs[0]
        users = uses.get(v.id, [])
        if v.id in outputs or len(users) != 1 or users[0].op not in COMPUTE:
            continue
        if tuple(users[0].outputs[0].type.shape) != tuple(v.type.shape):
            continue
        if users[0].inputs.count(v) != 1:
            continue
        fused[v.id] = node
    return fused


def lower(graph: Graph, fuse: bool = True) -> ir.Program:
    load_all()
    for v in [i.value for i in graph.inputs] + [p.value for p in graph.params]:
        if v.type.dtype not in _NATIVE_DTYPES:
            raise UnsupportedDtype(v.type.dtype)
    p = ir.Program(graph.name, symbols=graph.symbols())
    names: dict[int, str] = {}
    outputs = {v.id: name for name, v in graph.outputs}

    def add(v: Value, name: str, role: str, data=None) -> None:
        names[v.id] = name
        p.buffers.append(
            ir.Buffer(name, v.type.dtype, tuple(Dim.of(d) for d in v.type.shape), role, data)
        )

    for inp in graph.inputs:
        add(inp.value, f"in.{inp.name}", "input")
    for prm in graph.params:
        add(prm.value, f"param.{prm.path}", "param")
    rows = plan_rows(graph) if fuse else RowPlan({}, frozenset())
    fused = fusion_plan(graph, rows) if fuse else {}
    ctx = LowerCtx(p, names, fused)
    for i, node in enumerate(graph.nodes):
        if node.outputs and node.outputs[0].id in fused:
            continue  # computed inside its consumer's loop
        if node.outputs and node.outputs[0].id in rows.inner:
            continue  # computed inside its region's row kernel
        for v in node.outputs:
            if v.type.dtype not in _NATIVE_DTYPES:
                raise UnsupportedDtype(v.type.dtype)
            if node.op == "const":  # an output that is a constant gets a copy kernel below
                add(v, f"const.{v.id}", "const", node.attrs["value"])
            elif v.id in outputs and v.id not in names:
                add(v, f"out.{outputs[v.id]}", "output")
            else:
                add(v, f"tmp.{v.id}", "temp")
        if node.op == "const":
            continue
        region = rows.region_of(node)
        fn = LOWERINGS.get(node.op)
        if region is not None:
            body = tuple(lower_rows(ctx, region))
        elif fn is None:
            raise UnsupportedOp(node.op, node)
        else:
            body = tuple(fn(ctx, node))
        kind = "rows" if region is not None else node.op
        where = f"{node.scope}/{kind}_{i}" if node.scope else f"{kind}_{i}"
        p.kernels.append(ir.Kernel(where, body))
    # an output that is directly an input, a parameter or a constant: copy it
    for name, v in graph.outputs:
        if names[v.id] != f"out.{name}":
            src = p.buffer(names[v.id])
            dst = f"out.{name}"
            p.buffers.append(ir.Buffer(dst, src.dtype, src.shape, "output"))
            body = ir.loop_nest(
                src.shape,
                "i",
                lambda ix, s=src, d=dst: [
                    ir.Store(
                        d,
                        ir.flat_index(s.shape, ix),
                        ir.Load(s.name, ir.flat_index(s.shape, ix), s.dtype),
                    )
                ],
            )
            p.kernels.append(ir.Kernel(f"copy_{name}", body))
    if fuse:
        fuse_epilogues(p)  # bias / activation / residual tails into their product's kernel
        collapse_parallel(p)  # a batch of one still splits across threads
    ir.verify(p)
    return p
