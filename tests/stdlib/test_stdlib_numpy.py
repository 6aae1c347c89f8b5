"""Every stdlib fn and layer on the reference interpreter vs numpy_ref.py.

Each case writes a wrapper model (harness.py) that imports the stdlib, loads it
with `mdl.load(..., backend="ref")` and random weights, runs it on a random
float32 input and compares with the float64 numpy reference.
Tolerance: rtol 1e-5, atol 1e-6 * max(1, max |expected|) -- float32 rounding
of sums of a few dozen terms; the references agree with torch to that level.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import numpy_ref as ref
import pytest
from harness import (
    as_f64,
    assert_close,
    attention_spec,
    block_spec,
    bn_spec,
    conv_spec,
    dense_spec,
    fn_source,
    gpt_block_spec,
    layer_source,
    ln_spec,
    mlp_spec,
    prefixed,
    random_params,
    widen,
    write_source,
)

import mdl

RTOL = 1e-5
ATOL = 1e-6


@dataclass(frozen=True)
class Case:
    id: str
    source: str
    x: np.ndarray
    reference: Callable[[np.ndarray, dict[str, np.ndarray]], np.ndarray]
    spec: dict[str, tuple[int, ...]] = field(default_factory=dict)


def _rng(name: str) -> np.random.Generator:
    # One stream per case, so adding a case does not change the others' data.
    return np.random.default_rng(list(name.encode()))


def _normal(name: str, *shape: int, scale: float = 1.0) -> np.ndarray:
    return (scale * _rng(name).standard_normal(shape)).astype(np.float32)


def fn_case(
    name: str, call: str, shape: tuple[int, ...], reference: Callable, scale: float = 3.0
) -> Case:
    x = _normal(name, *shape, scale=scale)
    return Case(name, fn_source(call, shape, shape), x, lambda x, p: reference(x))


def layer_case(
    name: str,
    layer: str,
    x: np.ndarray,
    spec: dict[str, tuple[int, ...]],
    reference: Callable,
    *,
    imports: str = "import nn",
    in_type: str | None = None,
) -> Case:
    out_shape = reference(widen(x), as_f64(random_params(spec, _rng(name)))).shape
    source = layer_source(layer, x.shape, out_shape, imports=imports, in_type=in_type)
    return Case(name, source, x, reference, spec)


def _cases() -> list[Case]:
    r = ref
    x4 = _normal("x4", 2, 4, 11)
    img = _normal("img", 2, 3, 9, 9)
    cases = [
        fn_case("relu", "nn.relu(x)", (3, 4, 5), r.relu),
        fn_case("gelu", "nn.gelu(x)", (3, 4, 5), r.gelu),
        fn_case("gelu_tanh", "nn.gelu_tanh(x)", (3, 4, 5), r.gelu_tanh),
        fn_case("silu", "nn.silu(x)", (3, 4, 5), r.silu),
        fn_case("softmax", "nn.softmax(x)", (3, 10), r.softmax),
        fn_case("softmax_axis1", "nn.softmax[axis=1](x)", (2, 5, 3), lambda x: r.softmax(x, 1)),
        # Logits in the hundreds: exp would overflow without the max shift.
        fn_case("softmax_large", "nn.softmax(x)", (4, 6), r.softmax, scale=300.0),
        fn_case("log_softmax", "nn.log_softmax(x)", (3, 10), r.log_softmax),
        fn_case(
            "log_softmax_axis0", "nn.log_softmax[axis=0](x)", (4, 3), lambda x: r.log_softmax(x, 0)
        ),
        fn_case("log_softmax_large", "nn.log_softmax(x)", (4, 6), r.log_softmax, scale=300.0),
        layer_case("dense", "nn.Dense[12, 7]", _normal("d", 3, 12), dense_spec(12, 7), r.dense),
        layer_case(
            "dense_nobias",
            "nn.Dense[12, 7, bias=false]",
            _normal("dn", 3, 12),
            dense_spec(12, 7, bias=False),
            r.dense,
        ),
        layer_case("dense_3d", "nn.Dense[8, 5]", _normal("d3", 2, 3, 8), dense_spec(8, 5), r.dense),
        layer_case(
            "conv1d",
            "nn.Conv1d[4, 6, 3, stride=2, padding=1]",
            x4,
            conv_spec(6, 4, (3,)),
            lambda x, p: r.conv_layer(x, p, stride=2, padding=1),
        ),
        layer_case(
            "conv1d_dilated_groups",
            "nn.Conv1d[4, 6, 3, dilation=2, groups=2, bias=false]",
            x4,
            conv_spec(6, 2, (3,), bias=False),
            lambda x, p: r.conv_layer(x, p, dilation=2, groups=2),
        ),
        layer_case(
            "conv2d",
            "nn.Conv2d[3, 5, 3, padding=1]",
            img,
            conv_spec(5, 3, (3, 3)),
            lambda x, p: r.conv_layer(x, p, padding=1),
        ),
        layer_case(
            "conv2d_strided_dilated",
            "nn.Conv2d[3, 4, 3, stride=2, padding=2, dilation=2]",
            img,
            conv_spec(4, 3, (3, 3)),
            lambda x, p: r.conv_layer(x, p, stride=2, padding=2, dilation=2),
        ),
        layer_case(
            "conv2d_groups",
            "nn.Conv2d[6, 9, 3, padding=1, groups=3, bias=false]",
            _normal("cg", 1, 6, 7, 7),
            conv_spec(9, 2, (3, 3), bias=False),
            lambda x, p: r.conv_layer(x, p, padding=1, groups=3),
        ),
        layer_case(
            "conv2d_1x1",
            "nn.Conv2d[3, 8, 1, stride=2]",
            img,
            conv_spec(8, 3, (1, 1)),
            lambda x, p: r.conv_layer(x, p, stride=2),
        ),
        layer_case(
            "batchnorm2d", "nn.BatchNorm2d[5]", _normal("bn", 2, 5, 4, 3), bn_spec(5), r.batch_norm
        ),
        layer_case(
            "batchnorm2d_eps",
            "nn.BatchNorm2d[5, eps=0.1]",
            _normal("bne", 2, 5, 4, 3),
            bn_spec(5),
            lambda x, p: r.batch_norm(x, p, eps=0.1),
        ),
        layer_case(
            "batchnorm1d", "nn.BatchNorm1d[5]", _normal("bn1", 4, 5), bn_spec(5), r.batch_norm
        ),
        layer_case(
            "layernorm", "nn.LayerNorm[16]", _normal("ln", 2, 3, 16), ln_spec(16, ""), r.layer_norm
        ),
        layer_case(
            "layernorm_eps",
            "nn.LayerNorm[8, eps=0.5]",
            _normal("lne", 4, 8),
            ln_spec(8, ""),
            lambda x, p: r.layer_norm(x, p, eps=0.5),
        ),
        layer_case(
            "rmsnorm", "nn.RMSNorm[16]", _normal("rms", 2, 3, 16), {"weight": (16,)}, r.rms_norm
        ),
        layer_case(
            "rmsnorm_eps",
            "nn.RMSNorm[8, eps=0.5]",
            _normal("rmse", 4, 8),
            {"weight": (8,)},
            lambda x, p: r.rms_norm(x, p, eps=0.5),
        ),
        layer_case(
            "embedding",
            "nn.Embedding[20, 8]",
            _rng("emb").integers(0, 20, (2, 5)),
            {"weight": (20, 8)},
            r.embedding,
            in_type="i64[B, 5] in 0..20",
        ),
        layer_case(
            "maxpool2d",
            "nn.MaxPool2d[2]",
            _normal("mp", 2, 3, 8, 8),
            {},
            lambda x, p: r.max_pool2d(x, 2),
        ),
        layer_case(
            "maxpool2d_s",
            "nn.MaxPool2d[3, stride=2, padding=1]",
            _normal("mps", 1, 2, 9, 9),
            {},
            lambda x, p: r.max_pool2d(x, 3, 2, 1),
        ),
        layer_case(
            "avgpool2d",
            "nn.AvgPool2d[2]",
            _normal("ap", 2, 3, 8, 8),
            {},
            lambda x, p: r.avg_pool2d(x, 2),
        ),
        layer_case(
            "avgpool2d_pad",
            "nn.AvgPool2d[3, stride=2, padding=1]",
            _normal("app", 1, 2, 9, 9),
            {},
            lambda x, p: r.avg_pool2d(x, 3, 2, 1),
        ),
        layer_case(
            "avgpool2d_exclude_pad",
            "nn.AvgPool2d[3, stride=2, padding=1, count_include_pad=false]",
            _normal("ape", 1, 2, 9, 9),
            {},
            lambda x, p: r.avg_pool2d(x, 3, 2, 1, count_include_pad=False),
        ),
        layer_case(
            "global_avg_pool",
            "nn.GlobalAvgPool",
            _normal("gap", 2, 5, 4, 3),
            {},
            lambda x, p: r.global_avg_pool(x),
        ),
        layer_case(
            "flatten", "nn.Flatten", _normal("fl", 2, 3, 4, 4), {}, lambda x, p: r.flatten(x)
        ),
        layer_case(
            "flatten_3d", "nn.Flatten", _normal("fl3", 2, 3, 5), {}, lambda x, p: r.flatten(x)
        ),
        layer_case(
            "attention",
            "transformer.CausalSelfAttention[16, 4]",
            _normal("att", 2, 6, 16),
            attention_spec(16),
            lambda x, p: r.causal_self_attention(x, p, 4),
            imports="import transformer",
        ),
        layer_case(
            "attention_one_head",
            "transformer.CausalSelfAttention[8, 1]",
            _normal("att1", 1, 5, 8),
            attention_spec(8),
            lambda x, p: r.causal_self_attention(x, p, 1),
            imports="import transformer",
        ),
        layer_case(
            "mlp",
            "transformer.Mlp[8, 32]",
            _normal("mlp", 2, 3, 8),
            mlp_spec(8, 32),
            r.mlp,
            imports="import transformer",
        ),
        layer_case(
            "gpt_block",
            "transformer.GptBlock[16, 4]",
            _normal("gb", 2, 6, 16),
            gpt_block_spec(16),
            lambda x, p: r.gpt_block(x, p, 4),
            imports="import transformer",
        ),
        layer_case(
            "basic_block_same",
            "resnet.BasicBlock[8, 8]",
            _normal("bbs", 2, 8, 6, 6),
            block_spec(8, 8, shortcut=False),
            r.basic_block,
            imports="import resnet",
        ),
        layer_case(
            "basic_block_down",
            "resnet.BasicBlock[8, 16, stride=2]",
            _normal("bbd", 2, 8, 6, 6),
            block_spec(8, 16, shortcut=True),
            lambda x, p: r.basic_block(x, p, 2),
            imports="import resnet",
        ),
        # Channels change at stride 1: the projection is still needed.
        layer_case(
            "basic_block_widen",
            "resnet.BasicBlock[4, 8]",
            _normal("bbw", 1, 4, 5, 5),
            block_spec(4, 8, shortcut=True),
            r.basic_block,
            imports="import resnet",
        ),
    ]
    return cases


CASES = _cases()


def test_case_ids_are_unique() -> None:
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_stdlib_matches_numpy(case: Case, tmp_path) -> None:
    params = random_params(case.spec, _rng(case.id))
    model = mdl.load(write_source(tmp_path, case.source), weights=prefixed(params), backend="ref")
    actual = model(case.x)
    expected = case.reference(widen(case.x), as_f64(params))
    assert np.isfinite(expected).all()
    assert_close(actual, expected, RTOL, ATOL)
