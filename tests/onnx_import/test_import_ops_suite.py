"""The node-suite runner's baking of compile-time inputs (tools/onnx_suite.py): only the
listed (op, input) slots become initializers, once per distinct value, and the baked
model then imports and matches."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from onnx import TensorProto, helper

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))

import onnx_suite  # noqa: E402

F, I64 = TensorProto.FLOAT, TensorProto.INT64


@dataclass
class Case:
    name: str
    model: object
    data_sets: list = field(default_factory=list)
    rtol: float | None = None
    atol: float | None = None


def reshape_model() -> object:
    node = helper.make_node("Reshape", ["x", "shape"], ["y"])
    relu = helper.make_node("Relu", ["x"], ["r"])
    graph = helper.make_graph(
        [node, relu], "g",
        [helper.make_tensor_value_info("x", F, [2, 6]),
         helper.make_tensor_value_info("shape", I64, [2])],
        [helper.make_tensor_value_info("y", F, None), helper.make_tensor_value_info("r", F, None)],
    )  # fmt: skip
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_only_compile_time_slots_are_baked() -> None:
    model = reshape_model()
    assert onnx_suite.baked_inputs(model) == [1]  # the shape, not the data (read by Relu too)
    baked = onnx_suite.bake(model, [1], [np.array([3, 4])])
    assert [v.name for v in baked.graph.input] == ["x"]
    assert [t.name for t in baked.graph.initializer] == ["shape"]
    assert [v.name for v in model.graph.input] == ["x", "shape"]  # the case is left alone


def test_a_baked_case_runs_once_per_distinct_value(tmp_path: Path) -> None:
    x = np.arange(12, dtype=np.float32).reshape(2, 6) - 6
    sets = [([x, np.array([3, 4])], [x.reshape(3, 4), np.maximum(x, 0)]),
            ([x, np.array([4, 3])], [x.reshape(4, 3), np.maximum(x, 0)])]  # fmt: skip
    result = onnx_suite.run_case(Case("test_reshape_twice", reshape_model(), sets),
                                 onnx_suite._default_importer(), tmp_path)  # fmt: skip
    assert result.baked == ("shape",)
    assert {b: o.status for b, o in result.outcomes.items()} == {"ref": "passed",
                                                                 "native": "passed"}  # fmt: skip
    wrong = [([x, np.array([3, 4])], [x.reshape(4, 3), np.maximum(x, 0)])]
    (tmp_path / "2").mkdir()
    result = onnx_suite.run_case(Case("test_reshape_wrong", reshape_model(), wrong),
                                 onnx_suite._default_importer(), tmp_path / "2")  # fmt: skip
    assert result.outcomes["native"].status == "failed"


def test_the_report_says_what_was_baked() -> None:
    r = onnx_suite.CaseResult("test_a", "Reshape", True, {"native": onnx_suite.Outcome("passed")},
                              baked=("shape",))  # fmt: skip
    text = onnx_suite.report([r], ("native",))
    assert "Inputs baked into initializers: 1 cases (Reshape 1)" in text
    assert "Reshape 1" in text.split("Only these")[1]


def test_an_input_also_read_as_a_tensor_is_not_baked() -> None:
    nodes = [helper.make_node("Constant", [], ["a"], value_float=2.0),
             helper.make_node("CastLike", ["a", "x"], ["ax"]),
             helper.make_node("Mul", ["x", "ax"], ["y"])]  # fmt: skip
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", F, [3])],
                              [helper.make_tensor_value_info("y", F, [3])])  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)])
    assert onnx_suite.baked_inputs(model) == []
