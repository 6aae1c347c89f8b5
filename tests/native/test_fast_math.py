"""`fast_math`: off by default (no relaxed flag in the emitted IR), opt-in flags without
nnan/ninf (masks of -inf and NaN propagation still hold), results within tolerance of the
reference and still bit-identical on 1 and 2 threads."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import mdl
from mdl import driver
from mdl.backend.emit import emit
from mdl.backend.fastmath import FLAGS
from mdl.backend.lower import lower
from mdl.cli import main

EXAMPLES = Path(__file__).parents[2] / "examples"
RELAXED = ("reassoc", "nsz", "arcp", "contract", "afn", " fast ", "nnan", "ninf")


def _ir(path: Path, fast_math: bool) -> str:
    graph = driver.compile_model(str(path)).graph
    return str(emit(lower(graph), fast_math=fast_math))


def test_default_ir_has_no_relaxed_float_flag():
    text = _ir(EXAMPLES / "gpt.mdl", fast_math=False)
    assert "fadd" in text and "fmul" in text
    for flag in RELAXED:
        assert flag not in text, flag


def test_fast_math_flags_every_float_op_but_never_assumes_no_nan_or_inf():
    text = _ir(EXAMPLES / "gpt.mdl", fast_math=True)
    float_ops = [
        line for line in text.splitlines() if any(f" = {op} " in line for op in ("fadd", "fmul"))
    ]
    assert float_ops
    # but the inline exp and erf (vmath.py), whose range reduction must stay exact
    exact = [line for line in float_ops if "!mdl.exact" in line]
    assert exact and len(exact) < len(float_ops)
    for line in float_ops:
        if line not in exact:
            assert " ".join(FLAGS) in line, line
        else:
            assert not any(flag in line for flag in RELAXED), line
    assert "nnan" not in text and "ninf" not in text and " fast " not in text


def _random_inputs(graph, batch: int, rng) -> list[np.ndarray]:
    from mdl.cli_verify import random_inputs

    return list(random_inputs(graph, int(rng.integers(1 << 30)), batch).values())


@pytest.mark.parametrize("name", ["mlp.mdl", "lenet.mdl", "resnet20.mdl", "gpt.mdl"])
def test_fast_math_examples_match_the_reference_and_each_thread_count(name):
    path = EXAMPLES / name
    graph = driver.compile_model(str(path)).graph
    weights = driver.init_weights(graph, seed=5, random=True)
    ref = mdl.load(str(path), weights=weights, backend="ref")
    one, two = (
        mdl.load(str(path), weights=weights, backend="native", threads=t, fast_math=True)
        for t in (1, 2)
    )
    rng = np.random.default_rng(1)
    for batch in (1, 7):
        xs = _random_inputs(graph, batch, rng)
        want, got, other = (_tuple(m(*xs)) for m in (ref, one, two))
        for w, a, b in zip(want, got, other, strict=True):
            np.testing.assert_allclose(a, w, rtol=1e-4, atol=1e-5)
            assert a.tobytes() == b.tobytes()


def _tuple(out) -> tuple:
    return out if isinstance(out, tuple) else (out,)


def test_fast_math_keeps_inf_masks_and_nan(tmp_path):
    src = (
        "import nn\n\n"
        "model M(x: f32[N, 4], mask: f32[N, 4]) -> f32[N, 4] {\n"
        "    return nn.softmax(x + mask) + x * 0.0\n"
        "}\n"
    )
    (tmp_path / "m.mdl").write_text(src)
    model = mdl.load(str(tmp_path / "m.mdl"), backend="native", fast_math=True)
    x = np.array([[1.0, 2.0, 3.0, 4.0], [1.0, np.nan, 0.0, 0.0]], np.float32)
    mask = np.array([[0.0, 0.0, -np.inf, -np.inf], [0.0] * 4], np.float32)
    y = model(x, mask)
    e = np.exp(np.float32([1.0, 2.0]) - 2.0)
    np.testing.assert_allclose(y[0], [*(e / e.sum()), 0.0, 0.0], rtol=1e-6)
    assert y[0, 2] == 0.0 and y[0, 3] == 0.0  # exp(-inf) is exactly 0 under our flags
    assert np.isnan(y[1]).all()  # a NaN in a row spreads through max, sum and x * 0


def test_cli_build_and_verify_take_fast_math(tmp_path, capsys):
    weights = str(tmp_path / "w.safetensors")
    model = str(EXAMPLES / "mlp.mdl")
    assert main(["init", model, "--random", "-o", weights]) == 0
    out = str(tmp_path / "m.ll")
    assert main(["build", model, "--weights", weights, "--emit", "llvm", "-o", out]) == 0
    assert "reassoc" not in Path(out).read_text()
    args = ["build", model, "--weights", weights, "--emit", "llvm", "-o", out, "--fast-math"]
    assert main(args) == 0
    assert "reassoc" in Path(out).read_text()
    capsys.readouterr()
    assert main(["verify", model, "--weights", weights, "--fast-math"]) == 0
    assert capsys.readouterr().out.splitlines()[1].split()[-1] == "ok"
