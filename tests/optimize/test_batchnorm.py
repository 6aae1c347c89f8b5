"""Batch-norm folding: `fold_batchnorm(graph, weights)` gives a valid graph and weights whose
reference output matches the original within f32 rtol 1e-4 (atol 1e-5 scaled by the
output's magnitude), with the batch norms gone.

Covered: ResNet-20 with random weights (no identity batch norms), the torch
fixtures of ResNet-tiny and the downsampling BasicBlock against torch's own
output, Dense + BatchNorm1d, Conv2d with and without bias, grouped convs, a
layer called twice, hand-written affine chains (`c - y`, `y / c`), and the
cases that must not fold (a conv output read twice, a weight that is a model
input, a scale along the wrong axis, a batch norm with no conv before it, a
zero variance without eps).
"""

from __future__ import annotations

import numpy as np
import pytest
from opt_harness import EXAMPLES, TORCH_FIXTURES, compile_source, example_inputs, ops, snapshot
from safetensors.numpy import load_file

from mdl.driver import compile_model, init_weights, load_weights, run_reference
from mdl.graph import Graph, verify
from mdl.optimize import fold_batchnorm, optimize

RTOL = 1e-4
ATOL = 1e-5


def assert_close(got: dict, expected: dict) -> None:
    assert list(got) == list(expected)
    for name, want in expected.items():
        assert got[name].dtype == want.dtype and got[name].shape == want.shape
        scale = max(1.0, float(np.abs(want).max(initial=0.0)))
        np.testing.assert_allclose(got[name], want, rtol=RTOL, atol=ATOL * scale, err_msg=name)


def fold_and_check(graph: Graph, weights: dict, inputs: dict) -> tuple[Graph, dict]:
    """Fold (after the plain passes), verify, compare with the unfolded reference; returns both."""
    before, saved = snapshot(graph), {k: v.copy() for k, v in weights.items()}
    folded, new_weights = fold_batchnorm(optimize(graph), weights)
    verify(folded)
    assert snapshot(graph) == before
    assert all(np.array_equal(weights[k], saved[k]) for k in saved)  # weights untouched
    assert [p.path for p in folded.params] == list(new_weights)
    for p in folded.params:
        assert new_weights[p.path].shape == tuple(int(d) for d in p.value.type.shape)
        assert new_weights[p.path].dtype == p.value.type.dtype.numpy
    final = optimize(folded, check=True)
    assert_close(run_reference(final, new_weights, inputs), run_reference(graph, weights, inputs))
    return final, new_weights


def test_resnet20_loses_every_batch_norm() -> None:
    graph = compile_model(str(EXAMPLES / "resnet20.mdl")).graph
    weights = init_weights(graph, seed=0, random=True)
    folded, new_weights = fold_and_check(graph, weights, example_inputs(graph, "resnet20"))
    assert ops(folded).count("conv") == ops(graph).count("conv")
    for op in ("rsqrt", "sub", "mul"):
        assert op not in ops(folded)
    # one bias add per conv, one per residual and the classifier's: nothing else adds
    convs = ops(graph).count("conv")
    assert ops(folded).count("add") == convs + 9 + 1
    paths = [p.path for p in folded.params]
    assert not any(p.endswith(("running_mean", "running_var", "bn1.weight")) for p in paths)
    assert paths[:3] == ["conv1.weight~bn1", "conv1.bias~bn1", "bn1.num_batches_tracked"]
    assert "layer2.0.shortcut.0.weight~layer2.0.shortcut.1" in paths
    assert "layer2.0.shortcut.0.bias~layer2.0.shortcut.1" in paths
    assert paths[-2:] == ["fc.weight", "fc.bias"]
    assert new_weights["fc.weight"] is weights["fc.weight"]
    # the folded weight is the conv weight scaled per output channel
    scale = weights["bn1.weight"] / np.sqrt(weights["bn1.running_var"].astype(np.float64) + 1e-5)
    np.testing.assert_allclose(
        new_weights["conv1.weight~bn1"],
        weights["conv1.weight"] * scale[:, None, None, None],
        rtol=1e-6,
    )


RESNET_TINY = """\
import nn
from resnet import BasicBlock

model ResNetTiny(x: f32[B, 3, 16, 16]) -> f32[B, 10] {
    let conv1 = nn.Conv2d[3, 16, 3, padding=1, bias=false]
    let bn1 = nn.BatchNorm2d[16]
    let layer1 = Sequential[BasicBlock[16, 16]]
    let layer2 = Sequential[BasicBlock[16, 32, stride=2]]
    let layer3 = Sequential[BasicBlock[32, 64, stride=2]]
    let pool = nn.GlobalAvgPool
    let fc = nn.Dense[64, 10]
    return fc(pool(layer3(layer2(layer1(nn.relu(bn1(conv1(x))))))))
}
"""

BLOCK_DOWN = """\
import resnet

model Case(x: f32[B, 8, 8, 8]) -> f32[B, 16, 4, 4] {
    let m = resnet.BasicBlock[8, 16, stride=2]
    return m(x)
}
"""


@pytest.mark.parametrize(
    "fixture, source, prefix",
    [("resnet20_tiny", RESNET_TINY, ""), ("basic_block_down", BLOCK_DOWN, "m.")],
    ids=["resnet20_tiny", "basic_block_down"],
)
def test_torch_fixtures_still_match_torch_after_folding(fixture, source, prefix, tmp_path) -> None:
    tensors = load_file(TORCH_FIXTURES / f"{fixture}.safetensors")
    graph = compile_source(tmp_path, source)
    state = {prefix + k: v for k, v in tensors.items() if not k.startswith("__")}
    weights, diags = load_weights(graph, state)
    assert weights is not None, diags
    folded, new_weights = fold_and_check(graph, weights, {"x": tensors["__input__"]})
    assert "rsqrt" not in ops(folded)
    (out,) = run_reference(folded, new_weights, {"x": tensors["__input__"]}).values()
    assert_close({"y": out}, {"y": tensors["__output__"]})


MIXED = """\
import nn

layer Affine[C](x: f32[N, C, H, W]) -> f32[N, C, H, W] {
    param s: f32[C] = ones
    param t: f32[C] = zeros
    return t.reshape(C, 1, 1) - x / s.reshape(1, C, 1, 1)
}

model M(x: f32[B, 4, 9, 9], v: f32[B, 12]) -> (a: f32[B, 6, 9, 9], g: f32[B, 6, 9, 9],
                                               d: f32[B, 5], h: f32[B, 6, 7, 7], t: f32[B, 6, 9, 9]) {
    let conv = nn.Conv2d[4, 6, 3, padding=1]
    let bn = nn.BatchNorm2d[6]
    let grouped = nn.Conv2d[4, 6, 3, padding=1, groups=2, bias=false]
    let gbn = nn.BatchNorm2d[6]
    let dense = nn.Dense[12, 5]
    let bn1d = nn.BatchNorm1d[5]
    let plain = nn.Conv2d[4, 6, 3, bias=false]
    let affine = Affine[6]
    let twice = nn.Conv2d[4, 6, 3, padding=1]
    let tbn1 = nn.BatchNorm2d[6]
    let tbn2 = nn.BatchNorm2d[6]
    return bn(conv(x)), gbn(grouped(x)), bn1d(dense(v)), affine(plain(x)),
        tbn1(twice(x)) + tbn2(twice(-x))
}
"""


def test_conv_dense_grouped_and_hand_written_chains_fold(tmp_path) -> None:
    graph = compile_source(tmp_path, MIXED)
    weights = init_weights(graph, seed=1, random=True)
    rng = np.random.default_rng(0)
    inputs = {
        "x": rng.standard_normal((3, 4, 9, 9)).astype(np.float32),
        "v": rng.standard_normal((3, 12)).astype(np.float32),
    }
    folded, new_weights = fold_and_check(graph, weights, inputs)
    for op in ("rsqrt", "sub", "mul", "div"):
        assert op not in ops(folded)
    paths = [p.path for p in folded.params]
    for base, tag in [
        ("conv", "bn"),
        ("grouped", "gbn"),
        ("dense", "bn1d"),
        ("plain", "affine"),
        ("twice", "tbn1"),
        ("twice", "tbn2"),
    ]:
        assert f"{base}.weight~{tag}" in paths and f"{base}.bias~{tag}" in paths
    assert not any(p.startswith(("conv.", "twice.", "dense.")) and "~" not in p for p in paths)
    # Dense keeps its layout: the new [Out, In] weight is transposed by a node
    assert new_weights["dense.weight~bn1d"].shape == (5, 12)
    (mm,) = [n for n in folded.nodes if n.op == "matmul"]
    producer = {v.id: n for n in folded.nodes for v in n.outputs}
    assert producer[mm.inputs[1].id].op == "transpose"


NO_FOLD = """\
import nn

layer LastAxisScale[W](x: f32[N, C, H, W]) -> f32[N, C, H, W] {
    param s: f32[W] = ones
    return x * s
}

model M(x: f32[B, 4, 5, 5], k: f32[6, 4, 3, 3]) -> (a: f32[B, 6, 5, 5], raw: f32[B, 6, 5, 5],
                                                    b: f32[B, 6, 5, 5], c: f32[B, 6, 5, 5],
                                                    e: f32[B, 4, 5, 5]) {
    let c1 = nn.Conv2d[4, 6, 3, padding=1]
    let bn = nn.BatchNorm2d[6]
    let bn_k = nn.BatchNorm2d[6]
    let conv_w = nn.Conv2d[4, 6, 3, padding=1]
    let wrong_axis = LastAxisScale[5]
    let bn_x = nn.BatchNorm2d[4]
    let y = c1(x)
    return bn(y), y, bn_k(conv(x, k, padding=1)), wrong_axis(conv_w(x)), bn_x(x)
}
"""


def test_what_must_not_fold_stays(tmp_path) -> None:
    graph = compile_source(tmp_path, NO_FOLD)
    weights = init_weights(graph, seed=2, random=True)
    inputs = {
        "x": np.random.default_rng(1).standard_normal((2, 4, 5, 5)).astype(np.float32),
        "k": np.random.default_rng(2).standard_normal((6, 4, 3, 3)).astype(np.float32),
    }
    plain = optimize(graph)
    folded, new_weights = fold_and_check(graph, weights, inputs)
    assert ops(folded) == ops(plain)
    assert [p.path for p in folded.params] == [p.path for p in plain.params]
    assert all(new_weights[k] is weights[k] for k in new_weights)


def test_zero_variance_without_eps_is_left_to_give_the_same_infinities(tmp_path) -> None:
    graph = compile_source(
        tmp_path,
        "import nn\n\n"
        "model M(x: f32[B, 2, 4, 4]) -> f32[B, 3, 4, 4] {\n"
        "    let conv = nn.Conv2d[2, 3, 1]\n"
        "    let bn = nn.BatchNorm2d[3, eps=0.0]\n"
        "    return bn(conv(x))\n"
        "}\n",
    )
    weights = init_weights(graph, seed=0, random=True)
    weights["bn.running_var"] = np.array([1.0, 0.0, 2.0], np.float32)
    folded, new_weights = fold_batchnorm(graph, weights)
    verify(folded)
    assert "rsqrt" in ops(folded)
    x = np.ones((1, 2, 4, 4), np.float32)
    (want,) = run_reference(graph, weights, {"x": x}).values()
    (got,) = run_reference(folded, new_weights, {"x": x}).values()
    assert not np.all(np.isfinite(want))
    np.testing.assert_array_equal(got, want)


def test_missing_weights_are_named() -> None:
    graph = compile_model(str(EXAMPLES / "lenet.mdl")).graph
    weights = init_weights(graph, seed=0, random=True)
    del weights["fc2.bias"]
    with pytest.raises(ValueError, match="fc2.bias"):
        fold_batchnorm(graph, weights)
