"""Paths and helpers shared by the editor integration tests."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
VSCODE = ROOT / "editors" / "vscode"
NVIM_CONFIG = ROOT / "editors" / "nvim"
MDL_SOURCES = sorted([*(ROOT / "examples").glob("*.mdl"), *(ROOT / "stdlib").glob("*.mdl")])
NPM_TIMEOUT_S = 300


def require_tool(name: str, how_to_get: str) -> str:
    """The path of `name`, or a test failure that says how to install it: these tests are
    the only check of the editor integrations, so a missing tool must not pass silently."""
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"`{name}` is not installed, so editors/ cannot be tested: {how_to_get}")
    return found


def run(args: list[str], cwd: Path, timeout: float, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=timeout, **kwargs)
