"""The stdlib and example sources parse cleanly and declare the promised names.

The parser alone pins the public surface of stdlib/ and the one-model-per-file
rule of examples/; the checker and the formatter must accept every file as it is.
"""

from __future__ import annotations

import pytest
from harness import EXAMPLES, STDLIB

from mdl.syntax import ast
from mdl.syntax.parser import parse

STDLIB_FILES = sorted(STDLIB.glob("*.mdl"))
EXAMPLE_FILES = sorted(EXAMPLES.glob("*.mdl"))

# kind and compile-time parameters (name, default source text or None) of each public decl
EXPECTED_STDLIB = {
    "nn": {
        "relu": ("fn", []),
        "gelu": ("fn", []),
        "gelu_tanh": ("fn", []),
        "silu": ("fn", []),
        "softmax": ("fn", ["axis"]),
        "log_softmax": ("fn", ["axis"]),
        "Dense": ("layer", ["In", "Out", "bias"]),
        "Conv1d": ("layer", ["In", "Out", "K", "stride", "padding", "dilation", "groups", "bias"]),
        "Conv2d": ("layer", ["In", "Out", "K", "stride", "padding", "dilation", "groups", "bias"]),
        "BatchNorm2d": ("layer", ["C", "eps"]),
        "BatchNorm1d": ("layer", ["C", "eps"]),
        "LayerNorm": ("layer", ["D", "eps"]),
        "RMSNorm": ("layer", ["D", "eps"]),
        "Embedding": ("layer", ["N", "D"]),
        "MaxPool2d": ("layer", ["K", "stride", "padding"]),
        "AvgPool2d": ("layer", ["K", "stride", "padding", "count_include_pad"]),
        "GlobalAvgPool": ("layer", []),
        "Flatten": ("layer", []),
    },
    "transformer": {
        "CausalSelfAttention": ("layer", ["D", "H"]),
        "Mlp": ("layer", ["D", "Hidden"]),
        "GptBlock": ("layer", ["D", "H"]),
    },
    "resnet": {"BasicBlock": ("layer", ["In", "Out", "stride"])},
}

EXPECTED_MODELS = {
    "digits": "Digits",
    "mlp": "Mlp",
    "lenet": "LeNet",
    "resnet20": "ResNet20",
    "gpt": "Gpt",
}


def parse_file(path) -> ast.Module:
    module, diagnostics = parse(path.read_text(encoding="utf-8"), str(path))
    assert diagnostics == [], [str(d) for d in diagnostics]
    return module


def decls(module: ast.Module) -> dict[str, ast.Decl]:
    return {item.name.name: item for item in module.items if isinstance(item, ast.Decl)}


@pytest.mark.parametrize("path", STDLIB_FILES + EXAMPLE_FILES, ids=lambda p: p.name)
def test_source_parses_without_diagnostics(path) -> None:
    module = parse_file(path)
    assert module.items


def test_stdlib_declares_the_public_names() -> None:
    assert {p.stem for p in STDLIB_FILES} == set(EXPECTED_STDLIB)
    for stem, expected in EXPECTED_STDLIB.items():
        found = decls(parse_file(STDLIB / f"{stem}.mdl"))
        assert set(found) == set(expected), stem
        for name, (kind, ctparams) in expected.items():
            decl = found[name]
            assert decl.kind == kind, name
            assert [c.name.name for c in decl.ctparams or ()] == ctparams, name


def test_stdlib_has_no_models() -> None:
    for path in STDLIB_FILES:
        assert all(d.kind != "model" for d in decls(parse_file(path)).values()), path.name


def test_stdlib_decls_are_documented() -> None:
    """Each public declaration carries a comment above it (shown on hover)."""
    for path in STDLIB_FILES:
        for name, decl in decls(parse_file(path)).items():
            assert decl.doc, f"{path.name}: {name} has no doc comment"


def test_each_example_has_exactly_one_model() -> None:
    assert {p.stem for p in EXAMPLE_FILES} == set(EXPECTED_MODELS)
    for path in EXAMPLE_FILES:
        found = decls(parse_file(path))
        models = [name for name, d in found.items() if d.kind == "model"]
        assert models == [EXPECTED_MODELS[path.stem]], path.name
        assert found[models[0]].ret is not None, f"{path.name}: outputs must be declared"


def test_every_example_has_a_sample_input() -> None:
    inputs = {p.stem for p in (EXAMPLES / "inputs").glob("*.npy")}
    assert inputs == set(EXPECTED_MODELS)


@pytest.mark.parametrize("path", STDLIB_FILES + EXAMPLE_FILES, ids=lambda p: p.name)
def test_source_checks_without_diagnostics(path) -> None:
    from mdl.api import check

    diagnostics = check(str(path))
    assert diagnostics == [], [str(d) for d in diagnostics]


@pytest.mark.parametrize("path", STDLIB_FILES + EXAMPLE_FILES, ids=lambda p: p.name)
def test_source_is_canonically_formatted(path) -> None:
    from mdl.format import format_source

    text = path.read_text(encoding="utf-8")
    formatted, diagnostics = format_source(text, str(path))
    assert diagnostics == []
    assert formatted == text, f"run `mdlc fmt {path.name}`"
