"""Shared pieces of the `mdlc` tests: small models written to a temp folder and an in-process runner.

The models use primitives only (no stdlib import), so these tests exercise the
command line, not the standard library.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from mdl.cli import main

# Two dense layers; `h` is the hidden activation, so the model has two named outputs.
TINY = """\
layer Dense[In, Out](x: f32[B, In]) -> f32[B, Out] {
    param weight: f32[Out, In] = normal(0.5)
    param bias: f32[Out] = zeros
    return x @ weight.T + bias
}

model Tiny[H = 8](x: f32[B, 4]) -> (y: f32[B, 2], h: f32[B, H]) {
    let fc1 = Dense[4, H]
    let fc2 = Dense[H, 2]
    let h = max(fc1(x), 0.0)
    return fc2(h), h
}
"""

# Nested layer instances in a list, with a buffer: paths blocks.0.fc.weight, blocks.1.norm.scale.
DEEP = """\
layer Dense[In, Out](x: f32[B, In]) -> f32[B, Out] {
    param weight: f32[Out, In] = normal(0.02)
    param bias: f32[Out] = zeros
    return x @ weight.T + bias
}

layer Scale[D](x: f32[B, D]) -> f32[B, D] {
    buffer scale: f32[D] = ones
    return x * scale
}

layer Block[D](x: f32[B, D]) -> f32[B, D] {
    let fc = Dense[D, D]
    let norm = Scale[D]
    return norm(fc(x))
}

model Deep[L = 2](x: f32[B, 4]) -> f32[B, 4] {
    let blocks = [Block[4] for i in 0..L]
    let y = x
    for blk in blocks { y = blk(y) }
    return y
}
"""

# `x @ w` with 4 != 3: E0302 on line 3.
BROKEN = """\
model Broken(x: f32[B, 4]) -> f32[B, 2] {
    let w = x[:, 0:3]
    return x @ w
}
"""

# A layer and no model.
LIBRARY = """\
layer Twice[D](x: f32[B, D]) -> f32[B, D] {
    return x * 2.0
}
"""


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str


@pytest.fixture
def mdlc(capsys: pytest.CaptureFixture[str]) -> Callable[..., Result]:
    """Run `mdlc ARGS...` in this process; returns the exit code and what it printed."""

    def run(*argv: str) -> Result:
        capsys.readouterr()
        code = main([str(a) for a in argv])
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


@pytest.fixture
def write(tmp_path: Path) -> Callable[[str, str], Path]:
    def write_file(name: str, text: str) -> Path:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path

    return write_file


@pytest.fixture
def tiny(write: Callable[[str, str], Path]) -> Path:
    return write("tiny.mdl", TINY)


@pytest.fixture
def deep(write: Callable[[str, str], Path]) -> Path:
    return write("deep.mdl", DEEP)


@pytest.fixture
def broken(write: Callable[[str, str], Path]) -> Path:
    return write("broken.mdl", BROKEN)


@pytest.fixture
def library(write: Callable[[str, str], Path]) -> Path:
    return write("library.mdl", LIBRARY)
