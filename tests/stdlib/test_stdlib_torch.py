"""The stdlib against PyTorch: each fixture in tests/fixtures/torch/ run through mdl.

A fixture holds a torch module's state dict, the input it ran on (`__input__`)
and its eval-mode output (`__output__`). The wrapper model binds the matching
stdlib layer as `m`, so fixture key `weight` is loaded as `m.weight`; loading is
strict, so a stdlib parameter that is missing, extra or shaped differently fails.
The gpt fixture runs examples/gpt.mdl itself, with its sizes overridden.
Tolerance: rtol 1e-4, atol 1e-5 * max(1, max |expected|) (see fixtures README).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pytest
from harness import (
    EXAMPLES,
    TORCH_FIXTURES,
    assert_close,
    fn_source,
    layer_source,
    prefixed,
    write_source,
)
from safetensors.numpy import load_file

import mdl

RTOL = 1e-4
ATOL = 1e-5
RESERVED = ("__input__", "__output__")


@dataclass(frozen=True)
class TorchCase:
    fixture: str
    layer: str = ""  # a layer expression bound as `m`, or
    call: str = ""  # an expression of `x` using stdlib fns
    imports: str = "import nn"


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

CASES = [
    TorchCase("dense", "nn.Dense[12, 7]"),
    TorchCase("dense_nobias", "nn.Dense[12, 7, bias=false]"),
    TorchCase("conv1d", "nn.Conv1d[4, 6, 3, stride=2, padding=1]"),
    TorchCase("conv2d", "nn.Conv2d[3, 8, 3, padding=1]"),
    TorchCase("conv2d_strided_dilated", "nn.Conv2d[4, 6, 3, stride=2, padding=2, dilation=2]"),
    TorchCase("conv2d_groups", "nn.Conv2d[6, 9, 3, padding=1, groups=3, bias=false]"),
    TorchCase("conv2d_depthwise", "nn.Conv2d[4, 4, 3, padding=1, groups=4]"),
    TorchCase("batchnorm2d", "nn.BatchNorm2d[5]"),
    TorchCase("layernorm", "nn.LayerNorm[16]"),
    TorchCase("rmsnorm", "nn.RMSNorm[16, eps=1e-6]"),
    TorchCase("embedding", "nn.Embedding[20, 8]"),
    TorchCase("maxpool2d", "nn.MaxPool2d[2]"),
    TorchCase("maxpool2d_s", "nn.MaxPool2d[3, stride=2, padding=1]"),
    TorchCase("avgpool2d", "nn.AvgPool2d[2]"),
    TorchCase("avgpool2d_pad", "nn.AvgPool2d[3, stride=2, padding=1]"),
    TorchCase("global_avg_pool", "nn.GlobalAvgPool"),
    TorchCase("flatten", "nn.Flatten"),
    TorchCase("relu", call="nn.relu(x)"),
    TorchCase("gelu_erf", call="nn.gelu(x)"),
    TorchCase("gelu_tanh", call="nn.gelu_tanh(x)"),
    TorchCase("silu", call="nn.silu(x)"),
    TorchCase("sigmoid", call="sigmoid(x)"),  # a primitive, not redefined by nn
    TorchCase("softmax", call="nn.softmax(x)"),
    TorchCase("log_softmax", call="nn.log_softmax(x)"),
    TorchCase("basic_block_same", "resnet.BasicBlock[8, 8]", imports="import resnet"),
    TorchCase("basic_block_down", "resnet.BasicBlock[8, 16, stride=2]", imports="import resnet"),
    TorchCase("attention", "transformer.CausalSelfAttention[16, 4]", imports="import transformer"),
    TorchCase("gpt_block", "transformer.GptBlock[16, 4]", imports="import transformer"),
]


def load_fixture(name: str) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    tensors = load_file(TORCH_FIXTURES / f"{name}.safetensors")
    state = {k: v for k, v in tensors.items() if k not in RESERVED}
    return state, tensors["__input__"], tensors["__output__"]


def wrapper_source(
    case: TorchCase, state: dict[str, np.ndarray], x: np.ndarray, y: np.ndarray
) -> str:
    if case.call:
        return fn_source(case.call, x.shape, y.shape)
    in_type = None
    if x.dtype == np.int64:  # token ids index the embedding table's rows
        rows = len(state["weight"])
        in_type = f"i64[B, {', '.join(map(str, x.shape[1:]))}] in 0..{rows}"
    return layer_source(case.layer, x.shape, y.shape, imports=case.imports, in_type=in_type)


def test_every_fixture_has_a_case() -> None:
    fixtures = {p.stem for p in TORCH_FIXTURES.glob("*.safetensors")}
    covered = {c.fixture for c in CASES} | {"gpt", "resnet20_tiny"}
    assert fixtures == covered


def test_fixture_sidecars_list_the_state_dict() -> None:
    """The .json sidecars (which name the keys) agree with the tensors we load."""
    for case in CASES:
        state, _, _ = load_fixture(case.fixture)
        sidecar = json.loads((TORCH_FIXTURES / f"{case.fixture}.json").read_text())
        assert {e["key"] for e in sidecar["state_dict"]} == set(state)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.fixture)
def test_stdlib_matches_torch(case: TorchCase, tmp_path) -> None:
    state, x, expected = load_fixture(case.fixture)
    source = wrapper_source(case, state, x, expected)
    model = mdl.load(write_source(tmp_path, source), weights=prefixed(state), backend="ref")
    assert_close(model(x), expected, RTOL, ATOL)


def test_resnet_tiny_matches_torch(tmp_path) -> None:
    state, x, expected = load_fixture("resnet20_tiny")
    model = mdl.load(write_source(tmp_path, RESNET_TINY), weights=state, backend="ref")
    assert_close(model(x), expected, RTOL, ATOL)


def test_gpt_example_matches_torch() -> None:
    """examples/gpt.mdl at the fixture's sizes loads torch's Gpt state dict as is."""
    state, ids, expected = load_fixture("gpt")
    defines = {"V": 32, "T": 8, "D": 16, "H": 4, "L": 2}
    model = mdl.load(str(EXAMPLES / "gpt.mdl"), weights=state, backend="ref", defines=defines)
    assert_close(model(ids), expected, RTOL, ATOL)
