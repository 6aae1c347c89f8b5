"""Real models exported by PyTorch (tests/fixtures/onnx, made by tools/make_onnx_fixtures.py)
-> imported mdl: the golden source, a clean check and format, weights under PyTorch's
names, and native outputs equal to torch's at two batch sizes.

`pytest --bless` rewrites the golden `tests/fixtures/onnx/<case>.mdl` files.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import mdl
from mdl.driver import check_file
from mdl.format import format_source
from mdl.onnx_import import import_onnx
from mdl.weights_io import read_safetensors

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "onnx"
CASES = ["mlp", "lenet", "resnet20", "gpt"]

# state-dict keys that must survive the import (the meaningful names of the issue)
EXPECTED_KEYS = {
    "mlp": {"fc1.weight", "fc1.bias", "fc3.bias"},
    "lenet": {"features_0.weight", "features_3.bias", "classifier_4.weight"},
    "resnet20": {
        "conv1.weight",
        "layer1.0.conv1.weight",
        "layer2.0.shortcut.0.weight",
        "layer3.2.conv2.bias",
        "fc.weight",
    },  # fmt: skip
    "gpt": {
        "tok.weight",
        "pos.weight",
        "blocks.0.attn.qkv.weight",
        "blocks.1.mlp.proj.bias",
        "blocks.1.ln2.weight",
        "ln_f.bias",
        "head.weight",
    },  # fmt: skip
}


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("onnx_import")
    paths = {}
    for case in CASES:
        target = out / f"{case}.mdl"
        diags = import_onnx(str(FIXTURES / f"{case}.onnx"), str(target))
        assert diags == [], [str(d) for d in diags]
        paths[case] = target
    return paths


@pytest.mark.parametrize("case", CASES)
def test_golden_source(case: str, imported: dict[str, Path], bless: bool) -> None:
    text = imported[case].read_text()
    golden = FIXTURES / f"{case}.mdl"
    if bless:
        golden.write_text(text)
    assert text == golden.read_text(), (
        f"run `pytest --bless` if the change to {case}.mdl is intended"
    )


@pytest.mark.parametrize("case", CASES)
def test_checks_and_formats_clean(case: str, imported: dict[str, Path]) -> None:
    path = imported[case]
    front = check_file(str(path), require_model=True)
    assert front.diagnostics == [] and front.graph is not None
    text = path.read_text()
    formatted, diags = format_source(text, str(path))
    assert formatted == text and diags == []


@pytest.mark.parametrize("case", CASES)
def test_weights_keep_pytorch_names(case: str, imported: dict[str, Path]) -> None:
    weights = read_safetensors(str(imported[case].with_suffix(".safetensors")))
    assert EXPECTED_KEYS[case] <= set(weights)
    if case == "gpt":  # the anonymous MatMul initializer is stored as nn.Linear's [Out, In]
        assert weights["blocks.0.attn.qkv.weight"].shape == (96, 32)


@pytest.mark.parametrize("case", CASES)
def test_native_matches_torch(case: str, imported: dict[str, Path]) -> None:
    path = imported[case]
    model = mdl.load(str(path), weights=str(path.with_suffix(".safetensors")), backend="native")
    io = np.load(FIXTURES / f"{case}.npz")
    inputs = sorted(k for k in io.files if k.startswith("in."))
    assert len(inputs) == 2  # two batch sizes
    for key in inputs:
        _, name, batch = key.split(".")
        (out_key,) = [k for k in io.files if k.startswith("out.") and k.endswith(f".{batch}")]
        assert model.input_names == [name] and model.output_names == [out_key.split(".")[1]]
        got = model(io[key])
        expected = io[out_key]
        assert got.shape == expected.shape
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)
        # the outputs clearly depend on the input: rows differ far beyond the tolerance
        assert expected.std(axis=0).mean() > 1e-2


def test_dynamic_dims_stay_symbolic(imported: dict[str, Path]) -> None:
    gpt = imported["gpt"].read_text()
    assert "model Gpt(ids: i64[batch, seq]) -> (logits: f32[batch, seq, 64])" in gpt
    assert "pos(arange(seq))" in gpt  # folded from Shape/Gather/Range nodes
    assert "nn.gelu(" in gpt and "nn.LayerNorm[32]" in gpt and "Sequential[Block, Block]" in gpt


def test_gpt_attention_is_the_stdlib_layer(imported: dict[str, Path]) -> None:
    """The ~60 nodes of each exported attention (fused qkv + Split, heads, scale, Trilu
    causal mask, Softmax, merge, projection) become one stdlib layer, weights in its layout."""
    gpt = imported["gpt"].read_text()
    assert "import transformer" in gpt
    assert "let attn = transformer.CausalSelfAttention[32, 4]" in gpt
    assert "softmax" not in gpt and "split(" not in gpt and "where(" not in gpt
    weights = read_safetensors(str(imported["gpt"].with_suffix(".safetensors")))
    shapes = {k: v.shape for k, v in weights.items() if k.startswith("blocks.1.attn.")}
    assert shapes == {
        "blocks.1.attn.qkv.weight": (96, 32),
        "blocks.1.attn.qkv.bias": (96,),
        "blocks.1.attn.proj.weight": (32, 32),
        "blocks.1.attn.proj.bias": (32,),
    }


def test_fixtures_are_small() -> None:
    total = sum(p.stat().st_size for p in FIXTURES.iterdir() if p.suffix in (".onnx", ".npz"))
    assert total < 3 * 1024 * 1024
