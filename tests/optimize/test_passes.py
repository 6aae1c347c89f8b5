"""The graph passes (fold, simplify, CSE, DCE) and `optimize`: every rewrite keeps the
reference interpreter's output bit for bit, keeps the graph valid (`verify` after
each pass) and never mutates its input graph.

Covered: every example model and the torch fixture models (random or fixture
weights), targeted small models for each rule (including the rules that must
NOT fire: `x + 0.0`, lossy cast round trips, broadcasting identities,
symbolic or oversized folds, faulting folds), and random chains of layout and
identity ops built directly with the graph API.
"""

from __future__ import annotations

import numpy as np
import pytest
from opt_harness import (
    EXAMPLE_NAMES,
    TORCH_FIXTURES,
    assert_outputs,
    assert_same_outputs,
    bits_equal,
    compile_source,
    example_inputs,
    ops,
    snapshot,
    special_floats,
)
from safetensors.numpy import load_file

from mdl.diagnostics import MdlError
from mdl.dims import Dim
from mdl.driver import init_weights, load_weights, run_reference
from mdl.graph import Graph, verify
from mdl.optimize import (
    PASSES,
    eliminate_common_subexpressions,
    eliminate_dead_code,
    fold_constants,
    optimize,
)
from mdl.optimize.rewrite import attrs_key
from mdl.primitives import REGISTRY
from mdl.types import DType, TensorType

# ---------------------------------------------------------------------------
# whole models


@pytest.fixture(scope="module", params=EXAMPLE_NAMES)
def example(request):
    from opt_harness import EXAMPLES

    from mdl.driver import compile_model

    graph = compile_model(str(EXAMPLES / f"{request.param}.mdl")).graph
    weights = init_weights(graph, seed=0, random=True)
    inputs = example_inputs(graph, request.param)
    return graph, weights, inputs, run_reference(graph, weights, inputs)


def test_optimize_keeps_every_example_bit_identical(example) -> None:
    graph, weights, inputs, expected = example
    before = snapshot(graph)
    optimized = optimize(graph, check=True)
    assert snapshot(graph) == before
    assert optimized is not graph
    assert len(optimized.nodes) <= len(graph.nodes)
    assert [i.name for i in optimized.inputs] == [i.name for i in graph.inputs]
    assert [p.path for p in optimized.params] == [p.path for p in graph.params]
    assert optimized.output_names == graph.output_names
    assert_outputs(optimized, weights, inputs, expected)
    # a second run finds nothing left to do
    again = optimize(optimized, check=True)
    assert ops(again) == ops(optimized)


@pytest.mark.parametrize("run_pass", PASSES, ids=lambda p: p.__name__)
def test_each_pass_alone_on_every_example(example, run_pass) -> None:
    graph, weights, inputs, expected = example
    before = snapshot(graph)
    result = run_pass(graph)
    verify(result)
    assert snapshot(graph) == before
    assert_outputs(result, weights, inputs, expected)


def test_examples_shrink_where_expected(example) -> None:
    """The rewrites the examples offer are taken (counts come from the graphs, not constants)."""
    graph = example[0]
    optimized = optimize(graph)
    consts = [n.attrs["value"] for n in optimized.nodes if n.op == "const"]
    keys = {attrs_key({"value": c}) for c in consts}
    assert len(keys) == len(consts)  # no two equal constants survive
    assert "arange" not in ops(optimized)  # arange(T) is known at compile time
    if graph.name == "Gpt":
        # one causal mask for all blocks, computed at compile time
        masks = [n for n in optimized.nodes if n.op == "const" and n.attrs["value"].dtype == bool]
        assert len(masks) == 1
        assert "ge" not in ops(optimized)


TORCH_CASES = {
    "dense": ("nn.Dense[12, 7]", "import nn"),
    "conv2d_groups": ("nn.Conv2d[6, 9, 3, padding=1, groups=3, bias=false]", "import nn"),
    "batchnorm2d": ("nn.BatchNorm2d[5]", "import nn"),
    "layernorm": ("nn.LayerNorm[16]", "import nn"),
    "basic_block_down": ("resnet.BasicBlock[8, 16, stride=2]", "import resnet"),
    "attention": ("transformer.CausalSelfAttention[16, 4]", "import transformer"),
    "gpt_block": ("transformer.GptBlock[16, 4]", "import transformer"),
}


def _dims(shape: tuple[int, ...]) -> str:
    return ", ".join(["B", *map(str, shape[1:])])


@pytest.mark.parametrize("fixture", sorted(TORCH_CASES))
def test_optimize_on_torch_fixture_models(fixture, tmp_path) -> None:
    layer, imports = TORCH_CASES[fixture]
    tensors = load_file(TORCH_FIXTURES / f"{fixture}.safetensors")
    x, y = tensors["__input__"], tensors["__output__"]
    source = (
        f"{imports}\n\nmodel Case(x: f32[{_dims(x.shape)}]) -> f32[{_dims(y.shape)}] {{\n"
        f"    let m = {layer}\n    return m(x)\n}}\n"
    )
    graph = compile_source(tmp_path, source)
    state = {f"m.{k}": v for k, v in tensors.items() if not k.startswith("__")}
    weights, diags = load_weights(graph, state)
    assert weights is not None, diags
    optimized = optimize(graph, check=True)
    assert_same_outputs(graph, optimized, weights, {"x": x})


# ---------------------------------------------------------------------------
# constant folding


def test_fold_evaluates_constant_subgraphs_with_the_reference(tmp_path) -> None:
    graph = compile_source(
        tmp_path,
        "model M(x: f32[B, 4]) -> f32[B, 4] {\n"
        "    let c = exp(full([4], 0.5)) * cast(arange(4), f32)\n"
        "    return x * c\n"
        "}\n",
    )
    folded = optimize(graph, check=True)
    assert ops(folded) == ["const", "mul"]
    (c,) = [n.attrs["value"] for n in folded.nodes if n.op == "const"]
    expected = np.exp(np.full(4, 0.5, np.float32)) * np.arange(4, dtype=np.float32)
    assert bits_equal(c, expected.astype(np.float32))
    x = special_floats(np.random.default_rng(0), (3, 4))
    assert_same_outputs(graph, folded, {}, {"x": x})


def test_fold_leaves_symbolic_and_oversized_results(tmp_path) -> None:
    graph = compile_source(
        tmp_path,
        "model M(x: f32[B, 4]) -> (a: f32[B, 4], b: f32[2048, 1024]) {\n"
        "    return x + full([B, 4], 1.0), full([2048, 1024], 2.0)\n"
        "}\n",
    )
    folded = fold_constants(graph)
    assert ops(folded).count("full") == 2  # [B, 4] is symbolic; 2M elements is past the limit
    small_limit = fold_constants(graph, max_elements=4096)
    assert ops(small_limit).count("full") == 2
    big_limit = fold_constants(graph, max_elements=1 << 21)
    assert ops(big_limit).count("full") == 1
    x = np.ones((2, 4), np.float32)
    assert_same_outputs(graph, big_limit, {}, {"x": x})


def test_fold_leaves_a_faulting_node_to_run_time(tmp_path) -> None:
    graph = compile_source(
        tmp_path,
        "model M(x: f32[B, 3]) -> f32[B, 3] {\n"
        "    let row = gather(full([4, 3], 1.0), full([1], 7, dtype=i64), axis=0)\n"
        "    return x + row\n"
        "}\n",
    )
    folded = optimize(graph, check=True)
    assert "gather" in ops(folded)
    x = np.ones((2, 3), np.float32)
    for g in (graph, folded):
        with pytest.raises(MdlError) as err:
            run_reference(g, {}, {"x": x})
        assert err.value.diagnostics[0].span is not None


# ---------------------------------------------------------------------------
# CSE and DCE


def test_cse_merges_equal_nodes_and_constants(tmp_path) -> None:
    graph = compile_source(
        tmp_path,
        "model M(x: f32[B, 4], y: f32[B, 4]) -> f32[B, 4] {\n"
        "    return exp(x) * 2.0 + exp(x) * 2.0 + exp(y) + (y + x) + (x + y)\n"
        "}\n",
    )
    result = eliminate_common_subexpressions(graph)
    verify(result)
    assert ops(result).count("exp") == 2  # exp(x) once, exp(y) once
    assert ops(result).count("const") == 1
    assert ops(result).count("mul") == 1
    # operands are not reordered: y + x and x + y stay two nodes
    assert ops(result).count("add") == ops(graph).count("add")
    rng = np.random.default_rng(1)
    inputs = {"x": special_floats(rng, (2, 4)), "y": special_floats(rng, (2, 4))}
    assert_same_outputs(graph, result, {}, inputs)


def test_cse_keeps_zero_and_minus_zero_apart(tmp_path) -> None:
    graph = compile_source(
        tmp_path,
        "model M(x: f32[B, 4]) -> (a: f32[B, 4], b: f32[B, 4]) {\n"
        "    return max(x, 0.0), max(x, -0.0)\n"
        "}\n",
    )
    result = optimize(graph, check=True)
    assert ops(result).count("maximum") == 2
    assert attrs_key({"v": 0.0}) != attrs_key({"v": -0.0})
    assert attrs_key({"v": np.float32("nan")}) == attrs_key({"v": np.float32("nan")})
    assert attrs_key({"v": 1}) != attrs_key({"v": True})
    x = np.array([[-0.0, 0.0, -1.0, np.nan]], np.float32)
    assert_same_outputs(graph, result, {}, {"x": x})


def test_dce_drops_unread_nodes_but_keeps_the_interface(tmp_path) -> None:
    graph = compile_source(
        tmp_path,
        "import nn\n\n"
        "model M(x: f32[B, 4], unused: f32[B]) -> f32[B, 2] {\n"
        "    let d = nn.Dense[4, 4]\n"
        "    let dead = exp(d(x))\n"
        "    let a, b = split(x, 2, axis=1)\n"
        "    return a * 3.0\n"
        "}\n",
    )
    result = eliminate_dead_code(graph)
    verify(result)
    assert ops(result) == ["split", "const", "mul"]  # split stays whole for its first output
    assert [p.path for p in result.params] == ["d.weight", "d.bias"]
    assert [i.name for i in result.inputs] == ["x", "unused"]
    weights = init_weights(graph, seed=0, random=True)
    inputs = {"x": np.ones((2, 4), np.float32), "unused": np.zeros(2, np.float32)}
    assert_same_outputs(graph, result, weights, inputs)


# ---------------------------------------------------------------------------
# algebraic rewrites: what fires


ALGEBRA_FIRES = """\
model M(x: f32[B, 4, 6], i: i32[B, 4, 6], m: bool[B, 4, 6], h: f16[B, 4, 6]) -> (
    t1: f32[B, 4, 6], t2: f32[6, 4, B], r: f32[B, 24], c: i32[B, 4, 6], h2: f16[B, 4, 6],
    ar: f32[B, 4, 6], ii: i32[B, 4, 6], w: f32[B, 4, 6], n: f32[B, 4, 6], b: bool[B, 4, 6],
) {
    let t1 = x.transpose(0, 2, 1).transpose(0, 2, 1)
    let t2 = x.transpose(1, 0, 2).transpose(2, 0, 1)
    let r = x.reshape(B, 4, 6).reshape(B, 2, 12).reshape(B, 24)
    let c = cast(cast(cast(i, i32), i64), i32)
    let h2 = cast(cast(h, f32), f16)
    let ar = (x * 1.0) / 1.0 + -0.0 - 0.0
    let ii = 1 * (0 + i - 0)
    let w = where(m, x, x) * full([4, 6], 1.0)
    let n = -(-x)
    let b = cast(cast(m, i32), bool)
    return t1, t2, r, c, h2, ar, ii, w, n, b
}
"""


def _algebra_inputs(rng) -> dict[str, np.ndarray]:
    x = special_floats(rng, (2, 4, 6))
    return {
        "x": x,
        "i": rng.integers(-(2**31), 2**31 - 1, (2, 4, 6), dtype=np.int32),
        "m": rng.random((2, 4, 6)) < 0.5,
        "h": x.astype(np.float16),
    }


def test_algebra_rules_fire(tmp_path) -> None:
    graph = compile_source(tmp_path, ALGEBRA_FIRES)
    result = optimize(graph, check=True)
    # only the one transpose whose composed perm is not the identity and one reshape remain
    assert sorted(ops(result)) == ["reshape", "transpose"]
    (t,) = [n for n in result.nodes if n.op == "transpose"]
    assert tuple(t.attrs["perm"]) == (2, 1, 0)
    assert t.inputs[0] is graph.inputs[0].value
    (r,) = [n for n in result.nodes if n.op == "reshape"]
    assert r.inputs[0] is graph.inputs[0].value
    outputs = dict(result.outputs)
    for name, source in [("t1", "x"), ("c", "i"), ("h2", "h"), ("ar", "x"), ("ii", "i")]:
        assert outputs[name] is next(i.value for i in graph.inputs if i.name == source), name
    for seed in range(3):
        assert_same_outputs(graph, result, {}, _algebra_inputs(np.random.default_rng(seed)))


# ---------------------------------------------------------------------------
# algebraic rewrites: what must not fire


ALGEBRA_STAYS = """\
model M(x: f32[B, 4], v: f32[4], i: i32[B, 4], m: bool[B, 4]) -> (
    a: f32[B, 4], s: f32[B, 4], l: f32[B, 4], big: f32[3, 4], bi: f32[B, 4], w: f32[B, 4],
    p: f32[B, 4], t: f32[4, B],
) {
    let a = x + 0.0          # -0.0 + 0.0 is +0.0
    let s = x - -0.0         # -0.0 - -0.0 is +0.0
    let l = cast(cast(x, f16), f32)          # lossy round trip
    let big = v * full([3, 4], 1.0)          # broadcasts v to a bigger shape
    let bi = cast(cast(x, i32), f32)
    let w = where(m, x, -x)
    let p = x * 2.0 / 2.0
    let t = x.transpose(1, 0)
    return a, s, l, big, bi, w, p, t
}
"""


def test_algebra_rules_do_not_fire_where_results_would_change(tmp_path) -> None:
    graph = compile_source(tmp_path, ALGEBRA_STAYS)
    result = optimize(graph, check=True)
    assert sorted(ops(result)) == sorted(
        ["const"] * 3  # 0.0, -0.0 and 2.0 (the ones are folded into `big`'s const)
        + ["add", "sub", "cast", "cast", "cast", "cast", "const", "mul"]
        + ["neg", "where", "mul", "div", "transpose"]
    )
    rng = np.random.default_rng(3)
    inputs = {
        "x": special_floats(rng, (2, 4)) * np.float32(1e5),
        "v": rng.standard_normal(4).astype(np.float32),
        "i": rng.integers(-5, 5, (2, 4), dtype=np.int32),
        "m": rng.random((2, 4)) < 0.5,
    }
    expected = assert_same_outputs(graph, result, {}, inputs)
    assert np.signbit(expected["a"][0, 0]) == np.False_  # what `x + 0.0` does to -0.0


# ---------------------------------------------------------------------------
# random chains of layout and identity ops, built with the graph API


def _add(g: Graph, op: str, inputs: list, attrs: dict):
    types = REGISTRY[op].infer([v.type for v in inputs], attrs)
    return g.add_node(op, inputs, tuple(types), attrs).outputs[0]


def _random_chain(rng: np.random.Generator) -> Graph:
    from mdl.graph import Input

    g = Graph("Chain")
    shape = (Dim.sym("B"), Dim.of(3), Dim.of(4))
    x = g.new_value(TensorType(DType.F32, shape))
    g.inputs.append(Input("x", x))
    v = x
    for _ in range(int(rng.integers(2, 9))):
        rank = v.type.rank
        match int(rng.integers(0, 6)):
            case 0:
                v = _add(
                    g, "transpose", [v], {"perm": tuple(int(p) for p in rng.permutation(rank))}
                )
            case 1:
                known = int(np.prod([int(d) for d in v.type.shape if d.is_const]))
                v = _add(g, "reshape", [v], {"shape": (Dim.sym("B"), Dim.of(known))})
            case 2:
                v = _add(g, "reshape", [v], {"shape": tuple(v.type.shape)})
            case 3:
                one = g.const(np.ones((1,) * int(rng.integers(0, rank)), np.float32))
                v = _add(g, "mul", [one, v] if rng.random() < 0.5 else [v, one], {})
            case 4:
                zero = g.const(np.array(-0.0, np.float32))
                v = _add(g, "add", [v, zero], {})
            case 5:
                v = _add(g, "cast", [v], {"dtype": DType.F32})
    g.outputs.append(("y", v))
    verify(g)
    return g


def test_random_layout_chains_stay_bit_identical() -> None:
    rng = np.random.default_rng(7)
    x = special_floats(rng, (2, 3, 4))
    for _ in range(60):
        graph = _random_chain(rng)
        result = optimize(graph, check=True)
        assert len(result.nodes) <= len(graph.nodes)
        assert "mul" not in ops(result) and "cast" not in ops(result)
        producer = {v.id: n for n in result.nodes for v in n.outputs}
        for node in result.nodes:
            source = producer.get(node.inputs[0].id) if node.inputs else None
            if node.op in ("transpose", "reshape"):
                assert source is None or source.op != node.op, "two in a row"
            if node.op == "transpose":
                assert tuple(node.attrs["perm"]) != tuple(range(len(node.attrs["perm"])))
            if node.op == "reshape":
                assert node.inputs[0].type != node.outputs[0].type
        assert_same_outputs(graph, result, {}, {"x": x})
