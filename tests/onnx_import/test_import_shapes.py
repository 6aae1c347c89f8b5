"""Shape-computation subgraphs (Shape, Gather, Unsqueeze, Concat, Slice, Reshape, Expand,
ConstantOfShape, Range, Trilu, Where, Equal, Cast on shapes) fold into symbolic dims."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from onnx import helper, numpy_helper

from .graphs import I64, F, assert_close, finish, run_both


def const(name: str, value: object, dtype: type = np.int64) -> object:
    return helper.make_node("Constant", [], [name],
                            value=numpy_helper.from_array(np.array(value, dtype=dtype), name))  # fmt: skip


def node(op: str, inputs: list[str], output: str, **attrs: object) -> object:
    return helper.make_node(op, inputs, [output], name=f"/m/{output}", **attrs)


def graph(nodes: list, inputs: list, outputs: list[str]) -> object:
    vi = [helper.make_tensor_value_info(n, t, s) for n, t, s in inputs]
    return finish(helper.make_graph(nodes, "g", vi, [helper.make_empty_tensor_value_info(o)
                                                      for o in outputs]))  # fmt: skip


def run_at(model: object, tmp: Path, sizes: list[dict[str, int]]) -> str:
    text = ""
    for i, s in enumerate(sizes):
        sub = tmp / str(i)
        sub.mkdir()
        text, got, expected = run_both(model, sub, s)
        assert_close(got, expected)
    return text


def test_reshape_target_from_shape_ops(tmp_path: Path) -> None:
    nodes = [
        node("Shape", ["x"], "s"), const("i0", 0), node("Gather", ["s", "i0"], "n", axis=0),
        const("ax", [0]), node("Unsqueeze", ["n", "ax"], "n1"), const("rest", [3, 4]),
        node("Concat", ["n1", "rest"], "target", axis=0),
        node("Reshape", ["x", "target"], "y0"),
    ]  # fmt: skip
    model = graph(nodes, [("x", F, ["N", 12])], ["y0"])
    text = run_at(model, tmp_path, [{"N": 2}, {"N": 5}])
    assert "reshape(N, 3, 4)" in text and "model M(x: f32[N, 12]) -> (y0: f32[N, 3, 4])" in text


def test_heads_split_with_symbolic_arithmetic(tmp_path: Path) -> None:
    nodes = [
        node("Shape", ["x"], "s"), const("i", [0, 1]), node("Gather", ["s", "i"], "bt", axis=0),
        const("two", [2]), const("three", [3]), node("Slice", ["s", "two", "three"], "d"),
        const("heads", [2]), node("Div", ["d", "heads"], "hd"),
        node("Concat", ["bt", "heads", "hd"], "target", axis=0),
        node("Reshape", ["x", "target"], "r"),
        node("Transpose", ["r"], "y0", perm=[0, 2, 1, 3]),
    ]  # fmt: skip
    model = graph(nodes, [("x", F, ["N", "T", 8])], ["y0"])
    text = run_at(model, tmp_path, [{"N": 2, "T": 3}, {"N": 1, "T": 6}])
    assert "reshape(N, T, 2, 4)" in text


def test_causal_mask_from_range_trilu_where(tmp_path: Path) -> None:
    nodes = [
        node("Shape", ["x"], "s"), const("one", 1), node("Gather", ["s", "one"], "t", axis=0),
        node("Cast", ["t"], "t64", to=I64), const("zero", 0), const("step", 1),
        node("Range", ["zero", "t64", "step"], "pos"),
        const("ax", [0]), node("Unsqueeze", ["t", "ax"], "t1"),
        node("Concat", ["t1", "t1"], "tt", axis=0),
        helper.make_node("ConstantOfShape", ["tt"], ["ones"], name="/m/ones",
                         value=helper.make_tensor("v", 9, [1], [True])),
        node("Trilu", ["ones", "one"], "upper", upper=1),
        node("Cast", ["upper"], "future", to=9),
        const("ninf", -np.inf, np.float32),
        node("MatMul", ["x", "xt"], "scores"), node("Transpose", ["x"], "xt", perm=[0, 2, 1]),
        node("Where", ["future", "ninf", "scores"], "y0"),
        node("Cast", ["pos"], "posf", to=F),
        node("Add", ["x", "posf3"], "y1"), const("ax2", [0, 2]),
        node("Unsqueeze", ["posf", "ax2"], "posf3"),
    ]  # fmt: skip
    order = ["s", "one", "t", "t64", "zero", "step", "pos", "ax", "t1", "tt", "ones", "upper",
             "future", "ninf", "xt", "scores", "y0", "posf", "ax2", "posf3", "y1"]  # fmt: skip
    nodes.sort(key=lambda n: order.index(n.output[0]))
    model = graph(nodes, [("x", F, ["N", "T", 3])], ["y0", "y1"])
    text = run_at(model, tmp_path, [{"N": 2, "T": 4}, {"N": 3, "T": 7}])
    assert "arange(T)[None, :] > arange(T)[:, None]" in text
    assert "y0: f32[N, T, T], y1: f32[N, T, 3]" in text


def test_expand_with_equal_where_on_shapes(tmp_path: Path) -> None:
    # torch writes `x.expand(-1, 4)` as Where(Equal(shape, -1), ones, shape)
    nodes = [
        node("Shape", ["x"], "s"), const("i0", [0]), node("Gather", ["s", "i0"], "n", axis=0),
        const("rest", [-1, 4]), const("minus", -1),
        node("Concat", ["n", "rest"], "want", axis=0),
        node("Equal", ["want", "minus"], "is_keep"),
        helper.make_node("ConstantOfShape", ["three"], ["ones"], name="/m/ones",
                         value=helper.make_tensor("v", 7, [1], [1])),
        const("three", [3]),
        node("Where", ["is_keep", "ones", "want"], "target"),
        node("Expand", ["x", "target"], "y0"),
    ]  # fmt: skip
    order = ["s", "i0", "n", "rest", "minus", "want", "is_keep", "three", "ones", "target", "y0"]
    nodes.sort(key=lambda n: order.index(n.output[0]))
    model = graph(nodes, [("x", F, ["N", 1, 1])], ["y0"])
    text = run_at(model, tmp_path, [{"N": 2}, {"N": 3}])
    assert "expand(x, N, 1, 4)" in text


def test_size_and_constant_of_shape(tmp_path: Path) -> None:
    nodes = [
        node("Size", ["x"], "count"), const("ax", [0]),
        node("Unsqueeze", ["count", "ax"], "c1"),
        helper.make_node("ConstantOfShape", ["c1"], ["z"], name="/m/z",
                         value=helper.make_tensor("v", 1, [1], [0.25])),
        node("Reshape", ["x", "c1"], "flat"), node("Add", ["flat", "z"], "y0"),
    ]  # fmt: skip
    model = graph(nodes, [("x", F, ["N", 3])], ["y0"])
    text = run_at(model, tmp_path, [{"N": 2}, {"N": 4}])
    assert "full([3 * N], 0.25, dtype=f32)" in text
