"""mdl graph + weights -> ONNX model; `export_onnx`: source file + weights -> `.onnx` file.

The graph is exported as elaborated (what the reference interpreter runs), node by
node through the lowerings of ops_*.py. Model inputs and outputs keep their declared
names and order, parameters become initializers under their paths (`blocks.0.attn.qkv.
weight`), symbolic dims stay symbolic (`dim_param`), and every intermediate value gets
its mdl type as value_info, so ONNX shape inference checks the lowering against mdl's
shape rules. Index ranges of integer inputs (`ids: i64[B, T] in 0..V`) have no ONNX
spelling; they are recorded in the model's metadata.

Opset 18 with IR version 8: onnxruntime 1.16 and later run it.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..diagnostics import Diagnostic, Severity
from ..graph import Graph
from ..types import TensorType
from .builder import ONNX_DTYPES, ExportError, OnnxBuilder
from .ops_elementwise import LOWERINGS as ELEMENTWISE
from .ops_nn import LOWERINGS as NN
from .ops_tensor import LOWERINGS as TENSOR

OPSET = 18
IR_VERSION = 8
PRODUCER = "mdl"
LOWERINGS = {**ELEMENTWISE, **TENSOR, **NN}
# protobuf cannot serialize a message of 2 GiB or more: bigger weights go to a side file
EXTERNAL_DATA_BYTES = 1 << 30


def _value_info(name: str, t: TensorType):
    from onnx import helper

    shape = [d.value if d.is_const else str(d) for d in t.shape]
    return helper.make_tensor_value_info(name, ONNX_DTYPES[t.dtype], shape)


def graph_to_onnx(
    graph: Graph, weights: Mapping[str, np.ndarray]
) -> tuple[Any | None, list[Diagnostic]]:
    """(onnx.ModelProto or None, diagnostics): None when some node cannot be exported."""
    from onnx import helper, numpy_helper

    diags: list[Diagnostic] = []
    b = OnnxBuilder(graph)
    tensors: dict[int, str] = {}
    leaves: set[str] = set()  # graph inputs and initializers: never renamed
    for inp in graph.inputs:
        b.reserve(inp.name)
        tensors[inp.value.id] = inp.name
        leaves.add(inp.name)
    for p in graph.params:
        b.reserve(p.path)
        tensors[p.value.id] = p.path
        leaves.add(p.path)
    for name, _ in graph.outputs:
        if name in b.used:
            diags.append(
                Diagnostic(
                    "E1103",
                    f"output `{name}` has the name of an input or a parameter, which ONNX "
                    "cannot tell apart",
                    help=f"rename the output `{name}`",
                )
            )
        b.reserve(name)
    if diags:
        return None, diags

    for node in graph.nodes:
        b.scope = node.scope
        if node.op == "const":
            tensors[node.outputs[0].id] = b.const(node.attrs["value"])
            continue
        lower = LOWERINGS.get(node.op)
        if lower is None:
            diags.append(
                Diagnostic(
                    "E1101",
                    f"the primitive `{node.op}` cannot be exported to ONNX",
                    node.span,
                    notes=("the ONNX exporter has no lowering for it yet",),
                )
            )
            continue
        if any(v.id not in tensors for v in node.inputs):
            continue  # an operand came from a node that could not be exported
        try:
            outs = lower(b, node, [tensors[v.id] for v in node.inputs])
        except ExportError as e:
            diags.append(Diagnostic(e.code, e.message, node.span, help=e.help))
            continue
        except Exception as e:  # a bug in a lowering: reported, not a traceback
            diags.append(
                Diagnostic(
                    "E0901",
                    f"internal compiler error while exporting `{node.op}`: {type(e).__name__}: {e}",
                    node.span,
                    notes=("this is a bug in mdl; please report it with the model source",),
                )
            )
            continue
        for v, name in zip(node.outputs, outs, strict=True):
            tensors[v.id] = name
    if any(d.is_error for d in diags):
        return None, diags

    renames = _name_outputs(b, graph, tensors, leaves)
    for n in b.nodes:
        n.input[:] = [renames.get(x, x) for x in n.input]
        n.output[:] = [renames.get(x, x) for x in n.output]
    inner = {
        renames.get(tensors[v.id], tensors[v.id]): v.type
        for node in graph.nodes
        if node.op != "const"
        for v in node.outputs
    }
    outputs = {name for name, _ in graph.outputs}
    constants = b.constants  # folded values (a constant `arange`)
    # parameters no node reads (batch-norm's `num_batches_tracked`) would only draw
    # onnxruntime's "unused initializer" warnings
    read = {x for n in b.nodes for x in n.input} | outputs
    initializers = [
        numpy_helper.from_array(np.array(weights[p.path], order="C"), p.path)
        for p in graph.params
        if p.path in read
    ]
    onnx_graph = helper.make_graph(
        b.nodes,
        graph.name,
        [_value_info(i.name, i.value.type) for i in graph.inputs],
        [_value_info(name, v.type) for name, v in graph.outputs],
        initializer=initializers + b.initializers,
        value_info=[
            _value_info(n, t) for n, t in inner.items() if n not in outputs and n not in constants
        ],
    )
    model = helper.make_model(
        onnx_graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name=PRODUCER,
        ir_version=IR_VERSION,
    )
    ranges = {
        f"mdl.index_range.{i.name}": f"{i.index_range[0]}..{i.index_range[1]}"
        for i in graph.inputs
        if i.index_range is not None
    }
    if ranges:
        helper.set_model_props(model, ranges)
    for text in dict.fromkeys(b.warnings):
        diags.append(Diagnostic("E1104", text, severity=Severity.WARNING, notes=(_PRECISION_NOTE,)))
    return model, diags


_PRECISION_NOTE = "onnxruntime has no kernel for this dtype; outputs may differ from the reference beyond f64 rounding"


def _name_outputs(
    b: OnnxBuilder, graph: Graph, tensors: dict[int, str], leaves: set[str]
) -> dict[str, str]:
    """Give each graph output its declared name: the tensor computing it is renamed where
    it can be (once, and never an input or initializer), an Identity copies it elsewhere."""
    from onnx import helper

    renames: dict[str, str] = {}
    constants = b.constants
    for name, v in graph.outputs:
        tensor = tensors[v.id]
        if tensor not in leaves and tensor not in constants and tensor not in renames:
            renames[tensor] = name
            continue
        source = renames.get(tensor, tensor)
        b.nodes.append(helper.make_node("Identity", [source], [name], name=f"/{name}/Identity"))
    return renames


def _load(
    path: str, weights: str | Mapping[str, np.ndarray] | None, defines: Mapping[str, Any] | None
) -> tuple[Graph | None, Mapping[str, np.ndarray] | None, list[Diagnostic]]:
    from .. import driver
    from ..diagnostics import MdlError

    try:
        front = driver.compile_model(path, defines)
    except MdlError as e:
        return None, None, list(e.diagnostics)
    graph = front.graph
    assert graph is not None
    diags = [d for d in front.diagnostics if not d.is_error]
    if weights is None:
        return graph, driver.init_weights(graph), diags
    bound, weight_diags = driver.load_weights(graph, weights)
    return graph, bound, diags + list(weight_diags)


def export_onnx(
    path: str,
    weights: str | Mapping[str, np.ndarray] | None,
    out: str,
    defines: Mapping[str, Any] | None = None,
) -> list[Diagnostic]:
    """Compile `path`, bind `weights` (a weights file, a dict of arrays, or None for the
    source's initialisers with seed 0) and write the ONNX model to `out`. Returns the
    diagnostics; `out` is written only when none is an error."""
    try:
        import onnx
    except ImportError:
        return [
            Diagnostic(
                "E1105",
                "exporting to ONNX needs the `onnx` package",
                help="install it with `pip install onnx`",
            )
        ]
    graph, bound, diags = _load(path, weights, defines)
    if graph is None or bound is None or any(d.is_error for d in diags):
        return diags
    model, export_diags = graph_to_onnx(graph, bound)
    diags += export_diags
    if model is None:
        return diags
    return diags + _check_and_write(onnx, model, Path(out))


def _check_and_write(onnx: Any, model: Any, target: Path) -> list[Diagnostic]:
    """Run the ONNX checker (with strict shape inference) and write the model; weights of
    a GiB or more go to `<name>.data` beside it, as protobuf cannot hold them."""
    small = _small(model)
    try:
        if small:
            onnx.checker.check_model(model, full_check=True)
            target.write_bytes(model.SerializeToString())
        else:
            onnx.save_model(
                model,
                str(target),
                save_as_external_data=True,
                location=target.name + ".data",
                size_threshold=1024,
            )
            onnx.checker.check_model(str(target), full_check=True)
    except OSError as e:
        return [
            Diagnostic(
                "E0702",
                f"cannot write `{target}`: {e.strerror or e}",
                help="check that the folder exists and is writable",
            )
        ]
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as e:
        first = (str(e).strip().splitlines() or ["validation failed"])[0]
        return [
            Diagnostic(
                "E0901",
                f"internal compiler error: the exported model fails the ONNX checker: {first}",
                notes=("this is a bug in mdl; please report it with the model source",),
            )
        ]
    return []


def _small(model: Any) -> bool:
    weight_bytes = sum(len(t.raw_data) for t in model.graph.initializer)
    return weight_bytes < EXTERNAL_DATA_BYTES
