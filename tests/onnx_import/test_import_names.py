"""Names: module paths from PyTorch node names, identifiers, and the flat fallback."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from onnx import helper, numpy_helper

from mdl.onnx_import.names import camel, identifier, scope_of, state_dict_path

from .graphs import F, assert_close, finish, run_both


def test_scope_of_torch_node_names() -> None:
    assert scope_of("/blocks/blocks.0/conv1/Conv") == ("blocks", "0", "conv1")
    assert scope_of("/layer2/layer2.0/shortcut/shortcut.0/Conv") == ("layer2", "0", "shortcut", "0")
    assert scope_of("/blocks.1/attn/qkv/MatMul") == ("blocks", "1", "attn", "qkv")
    assert scope_of("/Relu") == ()
    assert scope_of("Constant_12") == ()
    assert scope_of("/weird name!/x/Add") == ("weird_name", "x")


def test_state_dict_paths_and_identifiers() -> None:
    assert state_dict_path("blocks.0.ln1.weight") == ("blocks", "0", "ln1", "weight")
    assert state_dict_path("onnx::Conv_203") is None
    assert state_dict_path("fc.0") is None
    assert identifier("input.1") == "input_1"
    assert identifier("1st") == "v1st"
    assert identifier("let") == "let_"
    assert identifier("") == "v"
    assert camel(("layer2", "0")) == "Layer2"
    assert camel(("blocks", "0", "attn")) == "Attn"


def test_interleaved_scopes_fall_back_to_a_flat_model(tmp_path: Path) -> None:
    # module `a` computes, the root reads it, then `a` reads the root's result again: `a`
    # cannot be one layer call, so every parameter is bound in the model with a flat name
    w = numpy_helper.from_array(np.ones((4, 4), np.float32) * 0.5, "a.l1.weight")
    scale = numpy_helper.from_array(np.arange(4, dtype=np.float32), "a.s")
    nodes = [
        helper.make_node("MatMul", ["x", "a.l1.weight"], ["h"], name="/a/l1/MatMul"),
        helper.make_node("Relu", ["h"], ["r"], name="/Relu"),
        helper.make_node("Mul", ["r", "a.s"], ["y0"], name="/a/Mul"),
    ]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", F, ["N", 4])],
        [helper.make_tensor_value_info("y0", F, ["N", 4])], [w, scale],
    )  # fmt: skip
    text, got, expected = run_both(finish(graph), tmp_path, {"N": 3})
    assert_close(got, expected)
    assert "layer " not in text and "let a_l1 = nn.Dense[4, 4, bias=false]" in text
    assert "param a_s: f32[4]" in text


def test_input_names_that_are_not_identifiers(tmp_path: Path) -> None:
    nodes = [helper.make_node("Relu", ["input.1"], ["output:0"])]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("input.1", F, ["batch size", 4])],
        [helper.make_tensor_value_info("output:0", F, ["batch size", 4])],
    )  # fmt: skip
    text, got, expected = run_both(finish(graph), tmp_path, {"batch size": 2})
    assert "model M(input_1: f32[batch_size, 4]) -> (output_0: f32[batch_size, 4])" in text
    assert "`input.1` is `input_1`" in text
    assert_close(got, expected)


def test_a_state_dict_key_keeps_its_name_against_an_anonymous_initializer(tmp_path: Path) -> None:
    # `onnx::Mul_9` is read first, in the scope `ln`: it must not take `ln.weight`'s path
    mul = helper.make_node("Mul", ["x", "onnx::Mul_9"], ["a"], name="/ln/Mul")
    add = helper.make_node("Add", ["a", "ln.weight"], ["y"], name="/ln/Add")
    graph = helper.make_graph(
        [mul, add], "g", [helper.make_tensor_value_info("x", F, [2, 3])],
        [helper.make_tensor_value_info("y", F, [2, 3])],
        [numpy_helper.from_array(np.arange(3, dtype=np.float32) + 2, "onnx::Mul_9"),
         numpy_helper.from_array(np.full(3, 0.5, np.float32), "ln.weight")],
    )  # fmt: skip
    text, got, want = run_both(finish(graph), tmp_path, {})
    assert "param weight: f32[3]" in text and "x * weight_1 + weight" in text
    assert_close(got, want)
