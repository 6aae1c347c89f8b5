"""The numpy references themselves: hand-computed values, and agreement with torch.

numpy_ref.py is the oracle for test_stdlib_numpy.py, so it is checked here on
its own: small cases worked out by hand, every torch fixture (rtol 1e-4,
atol 1e-5 * scale, as in test_stdlib_torch.py), and the claim that plain
float32 arithmetic meets the tolerance the stdlib tests demand. The state-dict
layouts in harness.py are checked against the fixtures' sidecars.
"""

from __future__ import annotations

import json
import math

import numpy as np
import numpy_ref as ref
import pytest
from harness import (
    TORCH_FIXTURES,
    as_f64,
    assert_close,
    attention_spec,
    block_spec,
    cifar_resnet_spec,
    gpt_block_spec,
    gpt_spec,
    random_params,
    widen,
)
from safetensors.numpy import load_file

# ---------------------------------------------------------------- hand-computed values


def test_activations_by_hand() -> None:
    x = np.array([-2.0, 0.0, 1.0])
    np.testing.assert_array_equal(ref.relu(x), [0.0, 0.0, 1.0])
    # sigmoid(0) = 1/2, sigmoid(ln 3) = 3/4, sigmoid(-ln 3) = 1/4
    np.testing.assert_allclose(
        ref.sigmoid(np.array([0.0, math.log(3), -math.log(3)])), [0.5, 0.75, 0.25]
    )
    np.testing.assert_allclose(ref.silu(np.array([math.log(3)])), [0.75 * math.log(3)])
    # gelu(x) = x * Phi(x): Phi(0) = 1/2 and Phi(1) = 0.8413447460685429
    np.testing.assert_allclose(
        ref.gelu(np.array([0.0, 1.0, -1.0])), [0.0, 0.8413447460685429, -0.15865525393145707]
    )
    # tanh form at x = 1: 0.5 * (1 + tanh(sqrt(2/pi) * 1.044715))
    expected = 0.5 * (1 + math.tanh(math.sqrt(2 / math.pi) * 1.044715))
    np.testing.assert_allclose(ref.gelu_tanh(np.array([1.0])), [expected])


def test_softmax_by_hand() -> None:
    # exp(ln 1), exp(ln 3) -> 1/4, 3/4; a constant shift changes nothing
    x = np.array([[0.0, math.log(3)], [1000.0, 1000.0 + math.log(3)]])
    np.testing.assert_allclose(ref.softmax(x), [[0.25, 0.75], [0.25, 0.75]])
    np.testing.assert_allclose(ref.log_softmax(x), np.log([[0.25, 0.75], [0.25, 0.75]]))
    np.testing.assert_allclose(
        ref.softmax(np.array([[0.0], [math.log(3)]]), axis=0), [[0.25], [0.75]]
    )


def test_dense_by_hand() -> None:
    p = {
        "weight": np.array([[1.0, 2.0], [0.0, -1.0], [3.0, 0.5]]),
        "bias": np.array([1.0, 0.0, -1.0]),
    }
    np.testing.assert_allclose(ref.dense(np.array([[2.0, 1.0]]), p), [[5.0, -1.0, 5.5]])
    np.testing.assert_allclose(
        ref.dense(np.array([[2.0, 1.0]]), {"weight": p["weight"]}), [[4.0, -1.0, 6.5]]
    )


def test_conv1d_by_hand() -> None:
    x = np.arange(1.0, 6.0).reshape(1, 1, 5)  # 1 2 3 4 5
    w = np.array([[[1.0, 0.0, -1.0]]])
    # valid: 1-3, 2-4, 3-5
    np.testing.assert_allclose(ref.conv(x, w), [[[-2.0, -2.0, -2.0]]])
    # padding 1, stride 2, bias 10: taps over (0 1 2), (2 3 4), (4 5 0)
    np.testing.assert_allclose(
        ref.conv(x, w, np.array([10.0]), stride=2, padding=1), [[[8.0, 8.0, 14.0]]]
    )
    # dilation 2: 1-5
    np.testing.assert_allclose(ref.conv(x, w, dilation=2), [[[-4.0]]])


def test_conv2d_groups_by_hand() -> None:
    x = np.stack([np.full((2, 2), 1.0), np.full((2, 2), 10.0)])[None]  # [1, 2, 2, 2]
    w = np.array([[[[1.0]]], [[[2.0]]]])  # depthwise 1x1: channel c scaled by c + 1
    np.testing.assert_allclose(
        ref.conv(x, w, groups=2), [[np.full((2, 2), 1.0), np.full((2, 2), 20.0)]]
    )
    w_full = np.ones((1, 2, 2, 2))  # one output summing everything
    np.testing.assert_allclose(ref.conv(x, w_full), [[[[44.0]]]])


def test_norms_by_hand() -> None:
    x = np.array([[1.0, 3.0]])  # mean 2, biased variance 1
    p = {"weight": np.array([2.0, 2.0]), "bias": np.array([0.5, 0.5])}
    np.testing.assert_allclose(ref.layer_norm(x, p, eps=0.0), [[-1.5, 2.5]])
    # rms = sqrt((1 + 9) / 2) = sqrt(5)
    np.testing.assert_allclose(
        ref.rms_norm(x, {"weight": np.array([1.0, 1.0])}, eps=0.0), x / math.sqrt(5)
    )
    bn = {
        "weight": np.array([2.0]),
        "bias": np.array([1.0]),
        "running_mean": np.array([1.0]),
        "running_var": np.array([4.0]),
    }
    np.testing.assert_allclose(
        ref.batch_norm(np.array([[[[5.0]]]]), bn, eps=0.0), [[[[5.0]]]]
    )  # (5-1)/2*2+1


def test_pools_by_hand() -> None:
    x = np.arange(16.0).reshape(1, 1, 4, 4)
    np.testing.assert_array_equal(ref.max_pool2d(x, 2), [[[[5.0, 7.0], [13.0, 15.0]]]])
    np.testing.assert_array_equal(ref.avg_pool2d(x, 2), [[[[2.5, 4.5], [10.5, 12.5]]]])
    # 3x3, stride 2, pad 1: the corner window holds 0 1 4 5 plus five padded cells
    np.testing.assert_allclose(ref.avg_pool2d(x, 3, 2, 1)[0, 0, 0, 0], 10.0 / 9.0)
    np.testing.assert_allclose(ref.avg_pool2d(x, 3, 2, 1, count_include_pad=False)[0, 0, 0, 0], 2.5)
    assert ref.max_pool2d(-x - 1, 3, 2, 1)[0, 0, 0, 0] == -1.0  # padding never wins
    np.testing.assert_allclose(ref.global_avg_pool(x), [[7.5]])
    assert ref.flatten(np.zeros((2, 3, 4, 5))).shape == (2, 60)


def test_embedding_by_hand() -> None:
    table = {"weight": np.arange(6.0).reshape(3, 2)}
    np.testing.assert_array_equal(
        ref.embedding(np.array([[2, 0]]), table), [[[4.0, 5.0], [0.0, 1.0]]]
    )


def test_attention_is_causal() -> None:
    """Changing the last position leaves every earlier output unchanged."""
    rng = np.random.default_rng(0)
    p = as_f64(random_params(attention_spec(8), rng))
    x = rng.standard_normal((1, 5, 8))
    changed = x.copy()
    changed[0, -1] += 1.0
    a, b = ref.causal_self_attention(x, p, 2), ref.causal_self_attention(changed, p, 2)
    np.testing.assert_allclose(a[0, :-1], b[0, :-1])
    assert not np.allclose(a[0, -1], b[0, -1])
    # the first position attends only to itself: proj(v_0)
    v0 = ref.dense(x[:, :1], {"weight": p["qkv.weight"][16:], "bias": p["qkv.bias"][16:]})
    first = ref.dense(v0, {"weight": p["proj.weight"], "bias": p["proj.bias"]})
    np.testing.assert_allclose(a[:, :1], first)


# ---------------------------------------------------------------- against torch

TORCH_REFERENCES = {
    "dense": ref.dense,
    "dense_nobias": ref.dense,
    "conv1d": lambda x, p: ref.conv_layer(x, p, stride=2, padding=1),
    "conv2d": lambda x, p: ref.conv_layer(x, p, padding=1),
    "conv2d_strided_dilated": lambda x, p: ref.conv_layer(x, p, stride=2, padding=2, dilation=2),
    "conv2d_groups": lambda x, p: ref.conv_layer(x, p, padding=1, groups=3),
    "conv2d_depthwise": lambda x, p: ref.conv_layer(x, p, padding=1, groups=4),
    "batchnorm2d": ref.batch_norm,
    "layernorm": ref.layer_norm,
    "rmsnorm": ref.rms_norm,
    "embedding": ref.embedding,
    "maxpool2d": lambda x, p: ref.max_pool2d(x, 2),
    "maxpool2d_s": lambda x, p: ref.max_pool2d(x, 3, 2, 1),
    "avgpool2d": lambda x, p: ref.avg_pool2d(x, 2),
    "avgpool2d_pad": lambda x, p: ref.avg_pool2d(x, 3, 2, 1),
    "global_avg_pool": lambda x, p: ref.global_avg_pool(x),
    "flatten": lambda x, p: ref.flatten(x),
    "relu": lambda x, p: ref.relu(x),
    "gelu_erf": lambda x, p: ref.gelu(x),
    "gelu_tanh": lambda x, p: ref.gelu_tanh(x),
    "silu": lambda x, p: ref.silu(x),
    "sigmoid": lambda x, p: ref.sigmoid(x),
    "softmax": lambda x, p: ref.softmax(x),
    "log_softmax": lambda x, p: ref.log_softmax(x),
    "basic_block_same": ref.basic_block,
    "basic_block_down": lambda x, p: ref.basic_block(x, p, 2),
    "attention": lambda x, p: ref.causal_self_attention(x, p, 4),
    "gpt_block": lambda x, p: ref.gpt_block(x, p, 4),
    "gpt": lambda x, p: ref.gpt(x, p, heads=4, layers=2),
    "resnet20_tiny": lambda x, p: ref.cifar_resnet(x, p, blocks_per_stage=1),
}


def test_every_fixture_has_a_reference() -> None:
    assert {p.stem for p in TORCH_FIXTURES.glob("*.safetensors")} == set(TORCH_REFERENCES)


@pytest.mark.parametrize("name", sorted(TORCH_REFERENCES))
def test_reference_matches_torch(name: str) -> None:
    tensors = load_file(TORCH_FIXTURES / f"{name}.safetensors")
    x, expected = tensors.pop("__input__"), tensors.pop("__output__")
    actual = TORCH_REFERENCES[name](widen(x), as_f64(tensors)).astype(np.float32)
    assert_close(actual, expected, rtol=1e-4, atol=1e-5)


SPECS = {
    "basic_block_same": block_spec(8, 8, shortcut=False),
    "basic_block_down": block_spec(8, 16, shortcut=True),
    "attention": attention_spec(16),
    "gpt_block": gpt_block_spec(16),
    "gpt": gpt_spec(vocab=32, context=8, d=16, layers=2),
    "resnet20_tiny": cifar_resnet_spec(blocks_per_stage=1),
}


@pytest.mark.parametrize("name", sorted(SPECS))
def test_layouts_match_torch_state_dicts(name: str) -> None:
    sidecar = json.loads((TORCH_FIXTURES / f"{name}.json").read_text())
    torch_layout = {e["key"]: tuple(e["shape"]) for e in sidecar["state_dict"]}
    assert SPECS[name] == torch_layout


# ---------------------------------------------------------------- the tolerance is attainable


@pytest.mark.parametrize("name", sorted(TORCH_REFERENCES))
def test_float32_arithmetic_meets_the_stdlib_tolerance(name: str) -> None:
    """The same formulas in float32 stay within test_stdlib_numpy's rtol 1e-5, atol 1e-6 * scale.

    Uses the fixtures' (unscaled, so demanding) weights and inputs.
    """
    tensors = load_file(TORCH_FIXTURES / f"{name}.safetensors")
    x = tensors.pop("__input__")
    tensors.pop("__output__")
    f32 = TORCH_REFERENCES[name](x, tensors)
    f64 = TORCH_REFERENCES[name](widen(x), as_f64(tensors))
    assert_close(f32, f64, rtol=1e-5, atol=1e-6)
