"""The repository keeps its own rules: lint clean, small modules, every code explained."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MAX_MODULE_LINES = 600


@pytest.mark.skipif(
    shutil.which("ruff") is None and sys.prefix == sys.base_prefix,
    reason="ruff comes with the test extras",
)
def test_ruff_lint_is_clean() -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "ruff",
            "check",
            "lang",
            "lsp",
            "tests",
            "tools",
            "examples",
            "bench",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_modules_stay_small() -> None:
    big = []
    for path in sorted([*(ROOT / "lang").rglob("*.py"), *(ROOT / "lsp").rglob("*.py")]):
        n = path.read_text().count("\n")
        if n > MAX_MODULE_LINES:
            big.append(f"{path.relative_to(ROOT)}: {n} lines")
    assert not big, "split these by responsibility: " + ", ".join(big)


def test_every_emitted_code_is_registered_and_explained() -> None:
    import re

    from mdl.codes import CODES
    from mdl.explain import explanation

    emitted = set()
    for path in (ROOT / "lang" / "mdl").rglob("*.py"):
        if path.name != "codes.py":
            emitted |= set(re.findall(r'"(E\d{4})"', path.read_text()))
    assert emitted, "no codes found"
    for code in sorted(emitted):
        assert code in CODES, f"{code} is emitted but not registered"
        assert explanation(code), f"{code} has no explanation"


def test_every_registered_code_is_emitted_somewhere() -> None:
    import re

    from mdl.codes import CODES

    emitted = set()
    for path in (ROOT / "lang" / "mdl").rglob("*.py"):
        if path.name != "codes.py":
            emitted |= set(re.findall(r'"(E\d{4})"', path.read_text()))
    assert not set(CODES) - emitted, f"registered but never emitted: {sorted(set(CODES) - emitted)}"
