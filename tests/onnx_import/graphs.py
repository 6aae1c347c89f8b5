"""Small ONNX graphs built with onnx.helper, and a runner comparing mdl with onnxruntime."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

import mdl
from mdl.onnx_import import import_onnx

F, I64, I32, B = TensorProto.FLOAT, TensorProto.INT64, TensorProto.INT32, TensorProto.BOOL
NUMPY = {F: np.float32, I64: np.int64, I32: np.int32, B: np.bool_, TensorProto.DOUBLE: np.float64}


@dataclass(frozen=True)
class X:
    """A graph input: its shape may name symbolic dims ("N")."""

    shape: tuple
    dtype: int = F
    low: float | None = None  # floats: uniform in [low, high) when given, else normal
    high: float = 3.0


def build(op: str, *args: X | np.ndarray | None, attrs: dict | None = None, outputs: int = 1,
          opset: int = 17, out_dtype: int | None = None) -> onnx.ModelProto:  # fmt: skip
    """A one-node model: X args are graph inputs x0, x1, ...; arrays are initializers; None
    leaves an optional input out."""
    inputs, inits, names = [], [], []
    for i, a in enumerate(args):
        if a is None:
            names.append("")
        elif isinstance(a, X):
            doc = "" if a.low is None else f"{a.low},{a.high}"
            inputs.append(helper.make_tensor_value_info(f"x{i}", a.dtype, list(a.shape), doc))
            names.append(f"x{i}")
        else:
            inits.append(numpy_helper.from_array(np.asarray(a), f"c{i}"))
            names.append(f"c{i}")
    outs = [f"y{i}" for i in range(outputs)]
    node = helper.make_node(op, names, outs, name=f"/{op}", **(attrs or {}))
    graph = helper.make_graph([node], "g", inputs, [helper.make_empty_tensor_value_info(o)
                                                    for o in outs], inits)  # fmt: skip
    return finish(graph, opset)


def finish(graph: onnx.GraphProto, opset: int = 17) -> onnx.ModelProto:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8 if opset <= 17 else 10
    model = onnx.shape_inference.infer_shapes(model)
    del model.graph.output[:]
    model.graph.output.extend(
        [v for v in model.graph.value_info if v.name.startswith("y")] or graph.output
    )
    return model


def feeds(model: onnx.ModelProto, sizes: dict[str, int], seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    out = {}
    for v in model.graph.input:
        dims = [d.dim_value or sizes[d.dim_param] for d in v.type.tensor_type.shape.dim]
        dtype = NUMPY[v.type.tensor_type.elem_type]
        if dtype == np.bool_:
            out[v.name] = rng.random(dims) > 0.5
        elif np.issubdtype(dtype, np.integer):
            out[v.name] = rng.integers(0, 4, dims).astype(dtype)
        elif v.doc_string:
            low, high = map(float, v.doc_string.split(","))
            out[v.name] = rng.uniform(low, high, dims).astype(dtype)
        else:
            out[v.name] = rng.normal(size=dims).astype(dtype)
    return out


def run_both(model: onnx.ModelProto, tmp: Path, sizes: dict[str, int], backend: str = "ref",
             data: dict[str, np.ndarray] | None = None) -> tuple[str, list, list]:  # fmt: skip
    """Import `model`, run it in mdl and onnxruntime on the same inputs; (mdl text, mdl
    outputs, onnxruntime outputs)."""
    import onnxruntime as ort

    onnx_path = tmp / "m.onnx"
    onnx.save(model, onnx_path)
    diags = import_onnx(str(onnx_path), str(tmp / "m.mdl"))
    assert diags == [], [str(d) for d in diags] + [n for d in diags for n in d.notes]
    data = data if data is not None else feeds(model, sizes)
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    expected = session.run(None, data)
    m = mdl.load(str(tmp / "m.mdl"), weights=str(tmp / "m.safetensors"), backend=backend)
    names = [identifier_of(v.name) for v in model.graph.input]
    got = m(**dict(zip(names, data.values(), strict=True)))
    got = list(got) if isinstance(got, tuple) else [got]
    return (tmp / "m.mdl").read_text(), got, expected


def identifier_of(name: str) -> str:
    from mdl.onnx_import.names import identifier

    return identifier(name, "x")


def assert_close(got: list, expected: list) -> None:
    assert len(got) == len(expected)
    for g, e in zip(got, expected, strict=True):
        assert g.shape == e.shape, (g.shape, e.shape)
        if e.dtype.kind == "f":
            np.testing.assert_allclose(g, e, rtol=1e-4, atol=1e-5)
        else:
            np.testing.assert_array_equal(g, e)
