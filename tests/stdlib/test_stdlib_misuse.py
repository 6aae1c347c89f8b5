"""Misusing a stdlib layer is a diagnostic, not a traceback or a wrong answer.

The stdlib's declared input types and dim arithmetic are what catch these, so
each case pins one declaration: the code of the diagnostic, and where it points.
"""

from __future__ import annotations

import pytest
from harness import write_source

from mdl.api import check

MISUSES = {
    # (wrapper body line, input type, output type) -> expected code, file the error points into
    "dense_in_features": ("nn.Dense[12, 7]", "f32[B, 10]", "f32[B, 7]", "E0314", "case.mdl"),
    "batchnorm_channels": (
        "nn.BatchNorm2d[4]",
        "f32[B, 3, 8, 8]",
        "f32[B, 3, 8, 8]",
        "E0314",
        "case.mdl",
    ),
    "layernorm_width": ("nn.LayerNorm[16]", "f32[B, 8]", "f32[B, 8]", "E0314", "case.mdl"),
    "conv_channels": (
        "nn.Conv2d[3, 8, 3]",
        "f32[B, 4, 8, 8]",
        "f32[B, 8, 6, 6]",
        "E0314",
        "case.mdl",
    ),
    "conv_groups_divide": (
        "nn.Conv2d[6, 4, 3, padding=1, groups=4]",
        "f32[B, 6, 8, 8]",
        "f32[B, 4, 8, 8]",
        "E0306",
        "nn.mdl",
    ),
    "conv_output_size": (
        "nn.Conv2d[3, 3, 3]",
        "f32[B, 3, 8, 8]",
        "f32[B, 3, 8, 8]",
        "E0314",
        "case.mdl",
    ),
    "embedding_float_ids": ("nn.Embedding[20, 8]", "f32[B, 5]", "f32[B, 5, 8]", None, "case.mdl"),
    "heads_divide": (
        "transformer.CausalSelfAttention[16, 3]",
        "f32[B, 6, 16]",
        "f32[B, 6, 16]",
        "E0306",
        "transformer.mdl",
    ),
}


def wrapper(layer: str, in_type: str, out_type: str) -> str:
    module = layer.split(".")[0]
    return (
        f"import {module}\n\n"
        f"model Case(x: {in_type}) -> {out_type} {{\n"
        f"    let m = {layer}\n"
        f"    return m(x)\n"
        f"}}\n"
    )


@pytest.mark.parametrize("name", sorted(MISUSES))
def test_misuse_is_reported(name: str, tmp_path) -> None:
    layer, in_type, out_type, code, where = MISUSES[name]
    diagnostics = check(write_source(tmp_path, wrapper(layer, in_type, out_type)))
    errors = [d for d in diagnostics if d.is_error]
    assert errors, f"{name}: no error reported"
    first = errors[0]
    if code is not None:
        assert first.code == code, [str(d) for d in errors]
    assert first.span is not None and first.span.file.endswith(where), str(first)


def test_heads_that_do_not_divide_are_reported_once(tmp_path) -> None:
    """CausalSelfAttention computes D / H once, so a bad H is one error, not one per use."""
    layer, in_type, out_type, _, _ = MISUSES["heads_divide"]
    diagnostics = check(write_source(tmp_path, wrapper(layer, in_type, out_type)))
    assert [d.code for d in diagnostics if d.is_error] == ["E0306"]
