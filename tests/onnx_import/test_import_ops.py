"""Every supported ONNX op, one onnx.helper graph each: imported, run on the reference
interpreter (a sample also natively) and compared with onnxruntime."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from .graphs import I32, I64, B, F, X, assert_close, build, run_both

rng = np.random.default_rng(7)


def w(*shape: int) -> np.ndarray:
    return rng.normal(size=shape).astype(np.float32)


def i64(*values: int) -> np.ndarray:
    return np.array(values, dtype=np.int64)


N4 = X(("N", 4))
IMG = X(("N", 3, 8, 8))
SEQ = X(("N", 5, 6))

CASES = {
    # element-wise
    **{
        op: build(op, N4)
        for op in [
            "Relu",
            "Sigmoid",
            "Tanh",
            "Exp",
            "Erf",
            "Abs",
            "Neg",
            "Floor",
            "Ceil",
            "Sin",
            "Cos",
            "Tan",
            "Reciprocal",
            "Identity",
            "Softsign",
            "Softplus",
            "HardSwish",
            "Sign",
            "Sinh",
            "Cosh",
            "Asinh",
            "ThresholdedRelu",
        ]
    },  # fmt: skip
    "Log": build("Log", X(("N", 4), low=0.1)),
    "Sqrt": build("Sqrt", X(("N", 4), low=0.1)),
    "LeakyRelu": build("LeakyRelu", N4, attrs={"alpha": 0.2}),
    "Elu": build("Elu", N4, attrs={"alpha": 0.7}),
    "Celu": build("Celu", N4, attrs={"alpha": 0.7}),
    "Selu": build("Selu", N4),
    "HardSigmoid": build("HardSigmoid", N4, attrs={"alpha": 0.3, "beta": 0.4}),
    "Gelu": build("Gelu", N4, opset=20),
    "Gelu-tanh": build("Gelu", N4, attrs={"approximate": "tanh"}, opset=20),
    "Not": build("Not", X(("N", 4), B)),
    "Acosh": build("Acosh", X(("N", 4), low=1.1)),
    "Mish": build("Mish", N4, opset=18),
    "Atanh": build("Atanh", X(("N", 4), low=-0.9, high=0.9)),
    "Swish": build("Swish", N4, attrs={"alpha": 0.5}, opset=24),
    "PRelu": build("PRelu", X(("N", 3, 2)), w(3, 1)),
    "IsInf": build("IsInf", N4, attrs={"detect_negative": 0}),
    "IsNaN": build("IsNaN", N4),
    "Clip": build("Clip", N4, np.array(-0.5, np.float32), np.array(0.75, np.float32)),
    "Clip-min": build("Clip", N4, np.array(-0.5, np.float32)),
    "Softmax": build("Softmax", SEQ, attrs={"axis": 1}),
    "LogSoftmax": build("LogSoftmax", SEQ),
    "Add": build("Add", X(("N", 1, 6)), X((5, 6))),
    "Sub-const": build("Sub", N4, np.array([0.5], np.float32)),
    "Mul-vec": build("Mul", N4, w(4)),
    "Div": build("Div", N4, X(("N", 4), low=0.5)),
    "Div-int": build("Div", X(("N", 4), I64), np.array(3, np.int64)),
    "Pow-2": build("Pow", N4, np.array(2.0, np.float32)),
    "Pow-3": build("Pow", N4, np.array(3.0, np.float32)),
    "Max": build("Max", N4, X(("N", 4)), w(4)),
    "Min": build("Min", N4, X(("N", 4))),
    "Sum": build("Sum", N4, X(("N", 4)), X(("N", 4))),
    "Mean": build("Mean", N4, X(("N", 4))),
    "Mod": build("Mod", X(("N", 4), I64), np.array(3, np.int64)),
    **{
        op: build(op, N4, X(("N", 4)))
        for op in ["Equal", "Less", "LessOrEqual", "Greater", "GreaterOrEqual"]
    },  # fmt: skip
    **{op: build(op, X(("N", 4), B), X(("N", 4), B)) for op in ["And", "Or", "Xor"]},
    "Where": build("Where", X(("N", 4), B), N4, X((4,))),
    "Cast": build("Cast", N4, attrs={"to": I32}),
    "Cast-bool": build("Cast", X(("N", 4), I64), attrs={"to": B}),
    "Dropout": build("Dropout", N4),
    # linear algebra
    "MatMul": build("MatMul", SEQ, X((6, 3))),
    "MatMul-dense": build("MatMul", SEQ, w(6, 3)),
    "Gemm-dense": build("Gemm", N4, w(5, 4), w(5), attrs={"transB": 1}),
    "Gemm-general": build(
        "Gemm", X((4, "N")), X((4, 3)), w(3), attrs={"transA": 1, "alpha": 0.5, "beta": 2.0}
    ),  # fmt: skip
    # convolution and pooling
    "Conv-layer": build("Conv", IMG, w(4, 3, 3, 3), w(4), attrs={"pads": [1, 1, 1, 1]}),
    "Conv-strided": build(
        "Conv", IMG, w(6, 1, 3, 3), attrs={"group": 3, "strides": [2, 2], "dilations": [1, 2]}
    ),  # fmt: skip
    "Conv-asym": build("Conv", IMG, w(2, 3, 2, 3), attrs={"pads": [0, 1, 1, 0]}),
    "Conv-1d": build("Conv", X(("N", 3, 9)), w(2, 3, 3), w(2), attrs={"auto_pad": "SAME_UPPER"}),
    "MaxPool": build(
        "MaxPool", IMG, attrs={"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]}
    ),  # fmt: skip
    "AveragePool": build(
        "AveragePool", IMG, attrs={"kernel_shape": [2, 2], "pads": [1, 1, 1, 1], "strides": [2, 2]}
    ),  # fmt: skip
    "AveragePool-incl": build(
        "AveragePool",
        IMG,
        attrs={"kernel_shape": [3, 3], "pads": [1, 1, 1, 1], "count_include_pad": 1},
    ),  # fmt: skip
    "GlobalAveragePool": build("GlobalAveragePool", IMG),
    "GlobalMaxPool": build("GlobalMaxPool", IMG),
    # normalisation
    "BatchNorm-layer": build(
        "BatchNormalization", IMG, w(3), w(3), w(3), np.abs(w(3)) + 0.5
    ),  # fmt: skip
    "BatchNorm-3d": build(
        "BatchNormalization",
        X(("N", 3, 5)),
        w(3),
        w(3),
        w(3),
        np.abs(w(3)) + 0.5,
        attrs={"epsilon": 1e-3},
    ),  # fmt: skip
    "LayerNorm-layer": build("LayerNormalization", SEQ, w(6), w(6)),
    "LayerNorm-axis": build("LayerNormalization", SEQ, w(5, 6), attrs={"axis": 1}),
    "InstanceNorm": build("InstanceNormalization", IMG, w(3), w(3)),
    "LayerNorm-stats": build("LayerNormalization", SEQ, w(6), attrs={"axis": 2}, outputs=3),
    "RMSNorm-layer": build("RMSNormalization", SEQ, w(6), opset=23),
    "RMSNorm-axis": build("RMSNormalization", SEQ, w(5, 6), attrs={"axis": 1}, opset=23),
    # reductions
    "ReduceSum": build("ReduceSum", SEQ, i64(1), attrs={"keepdims": 0}),
    "ReduceMean-13": build("ReduceMean", SEQ, attrs={"axes": [-1]}, opset=13),
    "ReduceMax-18": build("ReduceMax", SEQ, i64(1, 2), opset=18),
    "ReduceMin": build("ReduceMin", SEQ, attrs={"axes": [2], "keepdims": 0}),
    "ReduceProd": build("ReduceProd", SEQ, attrs={"axes": [1]}),
    "ReduceL1": build("ReduceL1", SEQ, attrs={"axes": [2]}),
    "ReduceL2": build("ReduceL2", SEQ, attrs={"axes": [2]}),
    "ReduceSumSquare": build("ReduceSumSquare", SEQ, attrs={"axes": [2]}),
    "ReduceLogSumExp": build("ReduceLogSumExp", SEQ, attrs={"axes": [2]}),
    "ReduceLogSum": build("ReduceLogSum", X(("N", 5, 6), low=0.1), attrs={"axes": [2]}),
    "ArgMax": build("ArgMax", SEQ, attrs={"axis": 2}),
    "ArgMin": build("ArgMin", SEQ, attrs={"axis": 1, "keepdims": 0}),
    # layout
    "Reshape": build("Reshape", SEQ, i64(0, -1)),
    "Flatten": build("Flatten", IMG, attrs={"axis": 2}),
    "Squeeze": build("Squeeze", X(("N", 1, 4)), i64(1)),
    "Unsqueeze": build("Unsqueeze", N4, i64(0, -1)),
    "Transpose": build("Transpose", SEQ, attrs={"perm": [2, 0, 1]}),
    "Concat": build("Concat", SEQ, X(("N", 2, 6)), attrs={"axis": 1}),
    "Split": build("Split", SEQ, i64(2, 4), attrs={"axis": 2}, outputs=2),
    "Split-equal": build("Split", SEQ, attrs={"axis": -1}, outputs=3),
    "Split-18": build("Split", SEQ, attrs={"axis": 2, "num_outputs": 3}, outputs=3, opset=18),
    "Slice": build("Slice", SEQ, i64(1, 0), i64(4, -1), i64(1, 2), i64(2, 1)),
    "Slice-end": build("Slice", SEQ, i64(-2), i64(2**63 - 1), i64(1)),
    "Gather-index": build("Gather", SEQ, np.array(-1, np.int64), attrs={"axis": 1}),
    "Gather-tensor": build("Gather", SEQ, X((2, 3), I64), attrs={"axis": 2}),
    "Gather-embedding": build("Gather", w(10, 3), X(("N", 4), I64)),
    "Expand": build("Expand", X(("N", 1)), i64(1, 3)),
    "Tile": build("Tile", SEQ, i64(1, 2, 1)),
    "Pad": build("Pad", SEQ, i64(0, 1, 2, 0, 0, 1), np.array(0.5, np.float32)),
    "Trilu": build("Trilu", SEQ, np.array(1, np.int64), attrs={"upper": 0}),
    "Range": build("Range", np.array(2, np.int64), np.array(9, np.int64), np.array(3, np.int64)),
}
NATIVE = {"Conv-layer", "Conv-strided", "MaxPool", "LayerNorm-layer", "Gemm-dense", "Split",
          "Gather-embedding", "Trilu", "Softmax", "ReduceSum"}  # fmt: skip


@pytest.mark.parametrize("name", sorted(CASES))
def test_op_matches_onnxruntime(name: str, tmp_path: Path) -> None:
    _, got, expected = run_both(CASES[name], tmp_path, {"N": 3})
    assert_close(got, expected)


@pytest.mark.parametrize("name", sorted(NATIVE))
def test_op_native(name: str, tmp_path: Path) -> None:
    _, got, expected = run_both(CASES[name], tmp_path, {"N": 2}, backend="native")
    assert_close(got, expected)


def test_patterns_use_the_standard_layers(tmp_path: Path) -> None:
    expectations = {
        "Gemm-dense": "nn.Dense[4, 5]",
        "MatMul-dense": "nn.Dense[6, 3, bias=false]",
        "Conv-layer": "nn.Conv2d[3, 4, 3, padding=1]",
        "BatchNorm-layer": "nn.BatchNorm2d[3]",
        "LayerNorm-layer": "nn.LayerNorm[6]",
        "Gather-embedding": "nn.Embedding[10, 3]",
        "Conv-asym": "conv(",  # a non-square kernel is not a Conv2d
        "LayerNorm-axis": "rsqrt(",  # over two axes: arithmetic, not nn.LayerNorm
        "RMSNorm-layer": "nn.RMSNorm[6, eps=1e-05]",
    }
    for name, fragment in expectations.items():
        text, _, _ = run_both(CASES[name], tmp_path, {"N": 2})
        assert fragment in text, (name, text)


def test_erf_gelu_becomes_nn_gelu(tmp_path: Path) -> None:
    from onnx import helper

    from .graphs import finish

    c = {k: helper.make_node("Constant", [], [k], value=helper.make_tensor(k, F, [], [v]))
         for k, v in {"s2": 2**0.5, "one": 1.0, "half": 0.5}.items()}  # fmt: skip
    nodes = [
        helper.make_node("Div", ["x", "s2"], ["d"], name="/mlp/Div"), c["s2"],
        helper.make_node("Erf", ["d"], ["e"]), c["one"],
        helper.make_node("Add", ["e", "one"], ["a"]),
        helper.make_node("Mul", ["x", "a"], ["m"]), c["half"],
        helper.make_node("Mul", ["m", "half"], ["y0"]),
    ]  # fmt: skip
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", F, ["N", 4])],
                              [helper.make_tensor_value_info("y0", F, ["N", 4])])  # fmt: skip
    text, got, expected = run_both(finish(graph), tmp_path, {"N": 3})
    assert "nn.gelu(x)" in text and "erf" not in text
    assert_close(got, expected)


def test_every_registered_op_has_a_case() -> None:
    from mdl.onnx_import.ops import supported_ops

    from .test_import_ops_more import COVERED_OPS

    covered = {CASES[k].graph.node[0].op_type for k in CASES} | COVERED_OPS
    # the shape ops are covered by test_import_shapes.py
    assert set(supported_ops()) - covered <= {"Shape", "Size", "CastLike", "ConstantOfShape"}


_ = (I32, I64)
