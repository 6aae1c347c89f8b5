"""`mdlc verify`: native against reference, its comparison rule and its random inputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mdl import driver
from mdl.cli import main
from mdl.cli_verify import compare, random_inputs

ROOT = Path(__file__).resolve().parents[2]


def test_verify_digits_passes(capsys) -> None:
    code = main(
        [
            "verify",
            str(ROOT / "examples/digits.mdl"),
            "--weights",
            str(ROOT / "examples/digits.safetensors"),
        ]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    assert out.splitlines()[0].split() == [
        "output",
        "max",
        "abs",
        "err",
        "max",
        "rel",
        "err",
        "result",
    ]
    assert out.splitlines()[1].split()[-1] == "ok"


def test_verify_reports_bad_weights(capsys, tmp_path: Path) -> None:
    code = main(
        [
            "verify",
            str(ROOT / "examples/digits.mdl"),
            "--weights",
            str(tmp_path / "none.safetensors"),
        ]
    )
    assert code == 1
    assert "E0501" in capsys.readouterr().err


def test_compare_rule() -> None:
    ref = np.array([1.0, 2.0, np.nan, np.inf], np.float32)
    ok = compare(ref + np.float32(1e-6), ref, 1e-4, 1e-5)
    assert ok[2]
    assert not compare(np.array([1.0, 2.0, 0.0, np.inf], np.float32), ref, 1e-4, 1e-5)[
        2
    ]  # NaN lost
    assert not compare(np.array([1.0, 2.1, np.nan, np.inf], np.float32), ref, 1e-4, 1e-5)[2]
    ints = np.array([1, 2, 3])
    assert compare(ints, ints, 0, 0)[2]
    assert not compare(ints + np.array([0, 0, 1]), ints, 1, 1)[2]  # ints are exact
    assert not compare(ref.astype(np.float64), ref, 1e-4, 1e-5)[2]  # dtype must match


def test_random_inputs_respect_index_ranges(tmp_path: Path) -> None:
    src = "model M(ids: i64[B, 5] in 3..7, x: f32[B, 5]) -> f32[B, 5] { return x }\n"
    path = tmp_path / "m.mdl"
    path.write_text(src)
    graph = driver.compile_model(str(path)).graph
    inputs = random_inputs(graph, seed=1, batch=4)
    assert inputs["ids"].shape == (4, 5) and inputs["ids"].dtype == np.int64
    assert inputs["ids"].min() >= 3 and inputs["ids"].max() < 7
    assert inputs["x"].dtype == np.float32
    again = random_inputs(graph, seed=1, batch=4)
    np.testing.assert_array_equal(inputs["x"], again["x"])
