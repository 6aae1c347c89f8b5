"""Every example model exported with `export_onnx` (random weights): valid under the ONNX
checker and strict shape inference, with the declared input and output names, the
parameters as initializers under their paths and the batch kept symbolic; onnxruntime
at two batch sizes equals the reference (tolerances: onnx_harness.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx_harness import compare, session

from mdl import driver
from mdl.onnx_export import IR_VERSION, OPSET, export_onnx

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples").glob("*.mdl"))


def _inputs(graph, batch: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    out = {}
    for inp in graph.inputs:
        t = inp.value.type
        shape = [batch if d.is_symbol else int(d) for d in t.shape]
        if inp.index_range is not None:
            high = int(inp.index_range[1].evaluate({"B": batch}))
            out[inp.name] = rng.integers(0, high, shape).astype(t.dtype.numpy)
        else:
            out[inp.name] = rng.standard_normal(shape).astype(t.dtype.numpy)
    return out


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_example_exports_and_matches_the_reference(path, tmp_path):
    graph = driver.compile_model(str(path)).graph
    weights = driver.init_weights(graph, seed=1, random=True)
    out = tmp_path / f"{path.stem}.onnx"
    diags = export_onnx(str(path), weights, str(out))
    assert not [d for d in diags if d.is_error], [str(d) for d in diags]

    onnx.checker.check_model(str(out), full_check=True)
    model = onnx.load(str(out))
    onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
    assert model.ir_version == IR_VERSION
    assert [o.version for o in model.opset_import if o.domain == ""] == [OPSET]
    assert [i.name for i in model.graph.input] == [i.name for i in graph.inputs]
    assert [o.name for o in model.graph.output] == graph.output_names
    stored = {t.name: onnx.numpy_helper.to_array(t) for t in model.graph.initializer}
    read = {x for n in model.graph.node for x in n.input}
    for p in graph.params:
        if p.path in read:
            np.testing.assert_array_equal(stored[p.path], weights[p.path])
        else:  # e.g. batch-norm's num_batches_tracked: nothing reads it, so it is left out
            assert p.path not in stored and p.path.endswith("num_batches_tracked"), p.path
    for value in [*model.graph.input, *model.graph.output]:
        first = value.type.tensor_type.shape.dim[0]
        assert first.dim_param == "B", value.name  # every example is batched

    sess = session(model)
    rng = np.random.default_rng(0)
    for batch in (1, 3):
        compare(graph, weights, sess, _inputs(graph, batch, rng))


def test_index_ranges_are_kept_as_metadata(tmp_path):
    path = next(p for p in EXAMPLES if p.stem == "gpt")
    out = tmp_path / "gpt.onnx"
    graph = driver.compile_model(str(path)).graph
    assert not export_onnx(str(path), driver.init_weights(graph), str(out))
    props = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    assert props == {"mdl.index_range.ids": "0..512"}


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_export_import_export_keeps_the_outputs(path, tmp_path):
    """mdl -> ONNX -> mdl (`mdlc import`) -> ONNX again: onnxruntime on the second file
    equals the reference on the first model."""
    from mdl.onnx_import import import_onnx

    graph = driver.compile_model(str(path)).graph
    weights = driver.init_weights(graph, seed=1, random=True)
    first, imported, second = (tmp_path / n for n in ("a.onnx", "b.mdl", "c.onnx"))
    assert not [d for d in export_onnx(str(path), weights, str(first)) if d.is_error]
    diags = import_onnx(str(first), str(imported))
    assert diags == [], [str(d) for d in diags]
    weights_file = str(imported.with_suffix(".safetensors"))
    assert not [d for d in export_onnx(str(imported), weights_file, str(second)) if d.is_error]
    sess = session(onnx.load(str(second)))
    compare(graph, weights, sess, _inputs(graph, 2, np.random.default_rng(4)))
