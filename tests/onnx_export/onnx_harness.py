"""Export-vs-reference helpers for the ONNX export tests: mdl source -> (graph, weights,
onnxruntime session) and output comparison.

Tolerances (the same as the native backend's): floats rtol 1e-4 and atol 1e-5 scaled by
the largest finite reference magnitude when it is above 1; ints and bools exact; NaN and
infinities where the reference has them.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import ml_dtypes
import numpy as np
import onnx
import onnxruntime as ort

from mdl import driver
from mdl.graph import Graph
from mdl.onnx_export import graph_to_onnx

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "native"))

from native_harness import assert_close  # noqa: E402

ort.set_default_logger_severity(4)  # a failing run is reported by the test, not on stderr


def compile_source(tmp_path: Path, source: str, name: str = "m.mdl") -> Graph:
    path = tmp_path / name
    path.write_text(source)
    graph = driver.compile_model(str(path)).graph
    assert graph is not None
    return graph


def export(graph: Graph, weights: dict[str, np.ndarray]) -> onnx.ModelProto:
    """The exported model, checked by the ONNX checker and strict shape inference."""
    model, diags = graph_to_onnx(graph, weights)
    assert model is not None, [str(d) for d in diags]
    assert not any(d.is_error for d in diags), diags
    onnx.checker.check_model(model, full_check=True)
    onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
    return model


def _bf16_as_f32(model: onnx.ModelProto) -> onnx.ModelProto:
    """The model with its bf16 inputs and outputs taken and given as f32 (exact), since
    onnxruntime's Python API has no bf16 arrays."""
    model = onnx.ModelProto.FromString(model.SerializeToString())
    graph = model.graph
    bf16, f32 = onnx.TensorProto.BFLOAT16, onnx.TensorProto.FLOAT
    renames: dict[str, str] = {}
    casts_in, casts_out = [], []
    for value in graph.input:
        if value.type.tensor_type.elem_type == bf16:
            renames[value.name] = f"{value.name}/bf16"
            value.type.tensor_type.elem_type = f32
            casts_in.append(
                onnx.helper.make_node("Cast", [value.name], [renames[value.name]], to=bf16)
            )
    for value in graph.output:
        if value.type.tensor_type.elem_type == bf16:
            renames[value.name] = f"{value.name}/bf16"
            value.type.tensor_type.elem_type = f32
            casts_out.append(
                onnx.helper.make_node("Cast", [renames[value.name]], [value.name], to=f32)
            )
    for node in graph.node:
        node.input[:] = [renames.get(n, n) for n in node.input]
        node.output[:] = [renames.get(n, n) for n in node.output]
    nodes = [*casts_in, *graph.node, *casts_out]
    del graph.node[:]
    graph.node.extend(nodes)
    return model


def session(model: onnx.ModelProto) -> ort.InferenceSession:
    model = _bf16_as_f32(model)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(
        model.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )


def run_onnx(sess: ort.InferenceSession, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    names = [o.name for o in sess.get_outputs()]
    bf16 = np.dtype(ml_dtypes.bfloat16)
    feeds = {k: v.astype(np.float32) if v.dtype == bf16 else v for k, v in inputs.items()}
    return dict(zip(names, sess.run(None, feeds), strict=True))


def check_source(
    tmp_path: Path,
    source: str,
    *input_sets: dict[str, np.ndarray],
    weights: dict[str, np.ndarray] | None = None,
) -> onnx.ModelProto:
    """Export `source` and compare onnxruntime with the reference on every input set."""
    graph = compile_source(tmp_path, source)
    if weights is None:
        weights = driver.init_weights(graph, seed=0, random=True)
    model = export(graph, weights)
    sess = session(model)
    for inputs in input_sets:
        compare(graph, weights, sess, inputs)
    return model


def compare(
    graph: Graph, weights: dict[str, np.ndarray], sess: Any, inputs: dict[str, np.ndarray]
) -> None:
    with np.errstate(all="ignore"):
        want = driver.run_reference(graph, weights, inputs)
    got = run_onnx(sess, inputs)
    assert list(got) == graph.output_names
    for name, expected in want.items():
        if expected.dtype == ml_dtypes.bfloat16:
            got[name] = got[name].astype(ml_dtypes.bfloat16)  # exact: bf16 values sent as f32
        try:
            assert_close(got[name], expected)
        except AssertionError as e:
            shapes = {k: v.shape for k, v in inputs.items()}
            raise AssertionError(f"output `{name}` with inputs {shapes}:\n{e}") from None
