"""Causal self-attention graphs built with onnx.helper (the node shapes PyTorch's exporter
writes) -> `transformer.CausalSelfAttention` exactly when the computation is the stdlib
layer's, else the primitive form; either way the import equals onnxruntime."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from .graphs import F, assert_close, finish, run_both

D, H, T = 16, 4, 5
HD = D // H
MAPPED = f"transformer.CausalSelfAttention[{D}, {H}]"


@dataclass(frozen=True)
class Attn:
    """What the exported attention does; the defaults are the stdlib layer exactly."""

    fused: bool = True  # one qkv Linear and a Split, else three Linears
    bias: bool = True
    # "div" by sqrt(hd), "mul" by 1/sqrt(hd), "wrong" divides by hd; "sdpa" multiplies q and
    # k by sqrt(1/sqrt(hd)) each (scaled_dot_product_attention), "sdpa_q" only q
    scale: str = "div"
    mask: str = "where"  # where | where_past | additive | sdpa | none | diagonal | finite
    key_transposes: int = 1  # k^T as one Transpose, or two
    dynamic_steps: bool = False  # T from Shape nodes (ConstantOfShape of a run-time shape)


def _attention_model(a: Attn, seed: int = 0) -> onnx.ModelProto:
    rng = np.random.default_rng(seed)
    nodes: list = []
    inits: list = []

    def const(name: str, value: np.ndarray) -> str:
        nodes.append(helper.make_node("Constant", [], [name], name=f"/attn/{name}",
                                      value=numpy_helper.from_array(np.asarray(value))))  # fmt: skip
        return name

    def init(name: str, value: np.ndarray) -> str:
        inits.append(numpy_helper.from_array(value.astype(np.float32), name))
        return name

    def node(op: str, inputs: list[str], name: str, scope: str = "attn", **attrs) -> str:
        out = f"/{scope}/{name}_output_0"
        nodes.append(helper.make_node(op, inputs, [out], name=f"/{scope}/{name}", **attrs))
        return out

    def linear(x: str, fan_out: int, scope: str, key: str) -> str:
        w = init(f"onnx::MatMul_{key}", rng.normal(size=(D, fan_out)) / math.sqrt(D))
        h = node("MatMul", [x, w], "MatMul", scope)
        if not a.bias:
            return h
        return node("Add", [init(f"{scope.replace('/', '.')}.bias", 0.3 * rng.normal(size=fan_out)),
                            h], "Add", scope)  # fmt: skip

    x = "x"
    if a.fused:
        qkv = linear(x, 3 * D, "attn/qkv", "1")
        sizes = const("sizes", np.array([D, D, D], np.int64))
        parts = ["q2", "k2", "v2"]
        nodes.append(helper.make_node("Split", [qkv, sizes], parts, name="/attn/Split", axis=-1))
    else:
        parts = [linear(x, D, f"attn/{p}", str(i)) for i, p in enumerate("qkv")]
    heads = const("heads", np.array([0, 0, H, HD], np.int64))
    q = node(
        "Transpose", [node("Reshape", [parts[0], heads], "Reshape_q")], "Tq", perm=[0, 2, 1, 3]
    )
    v = node(
        "Transpose", [node("Reshape", [parts[2], heads], "Reshape_v")], "Tv", perm=[0, 2, 1, 3]
    )
    k = node("Reshape", [parts[1], heads], "Reshape_k")
    if a.key_transposes == 1:
        k = node("Transpose", [k], "Tk", perm=[0, 2, 3, 1])
    else:
        k = node("Transpose", [node("Transpose", [k], "Tk1", perm=[0, 2, 1, 3])], "Tk2",
                 perm=[0, 1, 3, 2])  # fmt: skip
    if a.scale.startswith("sdpa"):
        root = const("root", np.array(math.sqrt(1 / math.sqrt(HD)), np.float32))
        # read by nothing, or only for its shape, as in torch's export
        node("Gather", [node("Shape", [q], "Shape_q"), const("last", np.array(-1))], "HeadDim")
        node("Transpose", [k], "Unused", perm=[0, 1, 3, 2])
        q = node("Mul", [q, root], "Mul_q")
        k = node("Mul", [k, root], "Mul_k") if a.scale == "sdpa" else k
    qk = node("MatMul", [q, k], "MatMul_qk")
    match a.scale:
        case "sdpa" | "sdpa_q":
            s = qk
        case "div":
            s = node("Div", [qk, const("scale", np.array(math.sqrt(HD), np.float32))], "Div")
        case "mul":
            s = node("Mul", [qk, const("scale", np.array(1 / math.sqrt(HD), np.float32))], "Mul")
        case _:
            s = node("Div", [qk, const("scale", np.array(HD, np.float32))], "Div")
    if a.dynamic_steps:
        steps = node("Gather", [node("Shape", [x], "Shape"), const("one", np.array(1))], "Gather")
        t = node("Unsqueeze", [steps, const("axes", np.array([0]))], "Unsqueeze")
        square = node("Concat", [t, t], "Concat", axis=0)
    else:
        square = const("square", np.array([T, T], np.int64))
    neg = -1e9 if a.mask == "finite" else -np.inf
    ones = node("ConstantOfShape", [square], "Ones", value=helper.make_tensor("v", TensorProto.BOOL,
                [1], [True]))  # fmt: skip
    k1 = const("k1", np.array(0 if a.mask == "diagonal" else 1, np.int64))
    match a.mask:
        case "where" | "diagonal" | "finite":
            future = node("Trilu", [ones, k1], "Trilu", upper=1)
            s = node("Where", [future, const("neg", np.array(neg, np.float32)), s], "Where")
        case "where_past":
            past = node("Trilu", [ones, const("k0", np.array(0, np.int64))], "Trilu", upper=0)
            s = node("Where", [past, s, const("neg", np.array(neg, np.float32))], "Where")
        case "additive":
            filled = node("ConstantOfShape", [square], "NegInf",
                          value=helper.make_tensor("v", F, [1], [-np.inf]))  # fmt: skip
            s = node("Add", [s, node("Trilu", [filled, k1], "Trilu", upper=1)], "AddMask")
        case "sdpa":  # torch: Where(tril(expand(1)) == 0, -inf, 0) added
            ones = node("Expand", [const("one_f", np.array(1.0, np.float32)), square], "Expand")
            lower = node("Trilu", [ones], "Trilu", upper=0)
            hidden = node("Equal", [lower, const("zero_f", np.array(0.0, np.float32))], "Equal")
            neg_inf = const("neg", np.array(-np.inf, np.float32))
            additive = node("Where", [hidden, neg_inf, const("zero", np.array(0.0, np.float32))],
                            "WhereMask")  # fmt: skip
            s = node("Add", [s, additive], "AddMask")
    probs = node("Softmax", [s], "Softmax", axis=-1)
    mixed = node("Transpose", [node("MatMul", [probs, v], "MatMul_v")], "Tm", perm=[0, 2, 1, 3])
    merged = node("Reshape", [mixed, const("merged", np.array([0, 0, D], np.int64))], "Merge")
    w = init("onnx::MatMul_9", rng.normal(size=(D, D)) / math.sqrt(D))
    y = node("MatMul", [merged, w], "MatMul", "attn/proj")
    if a.bias:
        y = node("Add", [init("attn.proj.bias", 0.3 * rng.normal(size=D)), y], "Add", "attn/proj")
    nodes[-1].output[0] = "y0"
    steps_dim = "T" if a.dynamic_steps else T
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", F, ["N", steps_dim, D])],
        [helper.make_tensor_value_info("y0", F, ["N", steps_dim, D])], inits,
    )  # fmt: skip
    return finish(graph)


def _import(a: Attn, tmp_path: Path, backend: str = "native") -> str:
    text, got, expected = run_both(_attention_model(a), tmp_path, {"N": 3, "T": 4}, backend)
    assert_close(got, expected)
    return text


@pytest.mark.parametrize(
    "attn",
    [
        Attn(),
        Attn(fused=False),
        Attn(scale="mul"),
        Attn(mask="where_past"),
        Attn(mask="additive"),
        Attn(key_transposes=2),
        Attn(dynamic_steps=True),
        Attn(scale="sdpa", mask="sdpa", dynamic_steps=True),
        Attn(scale="sdpa", mask="sdpa"),
    ],
    ids=[
        "fused",
        "separate",
        "mul",
        "where_past",
        "additive",
        "two_transposes",
        "dynamic",
        "sdpa_dynamic",
        "sdpa_static",
    ],  # fmt: skip
)
def test_the_exact_pattern_becomes_the_stdlib_layer(attn: Attn, tmp_path: Path) -> None:
    text = _import(attn, tmp_path)
    assert f"let attn = {MAPPED}" in text and "import transformer" in text
    assert "softmax" not in text and "@" not in text


@pytest.mark.parametrize(
    "attn",
    [
        Attn(mask="none"),
        Attn(scale="wrong"),
        Attn(bias=False),
        Attn(mask="diagonal"),
        Attn(mask="finite"),
        Attn(fused=False, bias=False),
        Attn(scale="sdpa_q", mask="sdpa", dynamic_steps=True),
    ],
    ids=[
        "no_mask",
        "other_scale",
        "no_bias",
        "mask_hides_diagonal",
        "finite_mask",
        "no_bias3",
        "sdpa_only_q_scaled",
    ],  # fmt: skip
)
def test_a_near_miss_stays_primitive(attn: Attn, tmp_path: Path) -> None:
    text = _import(attn, tmp_path, backend="ref")
    assert "CausalSelfAttention" not in text and "transformer" not in text
    assert "nn.softmax(" in text


def test_weights_move_into_the_layer_layout(tmp_path: Path) -> None:
    """Separate q/k/v projections are stacked into `qkv` as nn.Linear's [3D, D]."""
    from mdl.weights_io import read_safetensors

    model = _attention_model(Attn(fused=False))
    _import(Attn(fused=False), tmp_path)
    weights = read_safetensors(str(tmp_path / "m.safetensors"))
    assert set(weights) == {"attn.qkv.weight", "attn.qkv.bias", "attn.proj.weight",
                            "attn.proj.bias"}  # fmt: skip
    stored = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    q_weight = stored["onnx::MatMul_0"]  # [In, Out] in the MatMul
    np.testing.assert_array_equal(weights["attn.qkv.weight"][:D], q_weight.T)
    np.testing.assert_array_equal(weights["attn.qkv.bias"][2 * D :], stored["attn.v.bias"])
    np.testing.assert_array_equal(weights["attn.proj.weight"], stored["onnx::MatMul_9"].T)


def test_an_intermediate_read_elsewhere_keeps_the_primitive_form(tmp_path: Path) -> None:
    """The attention probabilities are also a graph output: one layer cannot give them."""
    model = _attention_model(Attn())
    probs = next(n for n in model.graph.node if n.op_type == "Softmax").output[0]
    model.graph.output.append(helper.make_tensor_value_info(probs, F, None))
    model = onnx.shape_inference.infer_shapes(model)
    text, got, expected = run_both(model, tmp_path, {"N": 2})
    assert_close(got, expected)
    assert "CausalSelfAttention" not in text
