"""A stand-in for `mdl.onnx_import.import_onnx` in the node-suite runner's tests: single-node
models of a few float element-wise ops -> mdl source; anything else is reported unsupported
(with a diagnostic, as the real importer does)."""

from __future__ import annotations

from pathlib import Path

import onnx

from mdl.diagnostics import Diagnostic

TEMPLATES = {
    "Abs": "abs({0})", "Neg": "-{0}", "Exp": "exp({0})", "Sqrt": "sqrt({0})",
    "Tanh": "tanh({0})", "Sigmoid": "sigmoid({0})", "Floor": "floor({0})", "Ceil": "ceil({0})",
    "Relu": "max({0}, 0.0)", "Add": "{0} + {1}", "Sub": "{0} - {1}", "Mul": "{0} * {1}",
    "Div": "{0} / {1}",
}  # fmt: skip
FLOAT = onnx.TensorProto.FLOAT


def _type(value: onnx.ValueInfoProto) -> str | None:
    t = value.type.tensor_type
    if t.elem_type != FLOAT or not all(d.HasField("dim_value") for d in t.shape.dim):
        return None
    return f"f32[{', '.join(str(d.dim_value) for d in t.shape.dim)}]"


def supports(model: onnx.ModelProto) -> bool:
    graph = model.graph
    values = [*graph.input, *graph.output]
    return (
        len(graph.node) == 1
        and graph.node[0].op_type in TEMPLATES
        and not graph.initializer
        and all(v.name.isidentifier() and _type(v) for v in values)
    )


def import_onnx(path: str, out_mdl: str) -> list[Diagnostic]:
    model = onnx.load(path)
    if not supports(model):
        op = model.graph.node[0].op_type if model.graph.node else "?"
        return [Diagnostic("E0704", f"the stub importer does not take `{op}`")]
    graph = model.graph
    node = graph.node[0]
    params = ", ".join(f"{v.name}: {_type(v)}" for v in graph.input)
    out = graph.output[0]
    body = TEMPLATES[node.op_type].format(*node.input)
    Path(out_mdl).write_text(
        f"model M({params}) -> ({out.name}: {_type(out)}) {{ return {body} }}\n"
    )
    return []
