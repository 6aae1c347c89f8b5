"""ONNX export: an mdl model (source + weights) -> an ONNX model onnxruntime runs.

`export_onnx(path, weights, out)` is `mdlc export`; `graph_to_onnx(graph, weights)` gives
the `onnx.ModelProto` of an already compiled graph. builder.py holds the shared state
(names, constants, run-time dims); ops_elementwise.py, ops_tensor.py and ops_nn.py lower
each primitive with the reference interpreter's semantics.
"""

from __future__ import annotations

from .export import IR_VERSION, LOWERINGS, OPSET, export_onnx, graph_to_onnx

__all__ = ["IR_VERSION", "LOWERINGS", "OPSET", "export_onnx", "graph_to_onnx"]
