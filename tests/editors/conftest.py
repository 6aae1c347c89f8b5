"""Fixtures for the editor integration tests: the npm install of editors/vscode, the
mdl-lsp executable, and the `editors` marker (tests that need Neovim)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from .support import NPM_TIMEOUT_S, VSCODE, require_tool, run


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "editors: needs Neovim (apt-get install neovim); -m 'not editors' to leave out"
    )


@pytest.fixture(scope="session")
def node_modules() -> Path:
    """editors/vscode/node_modules, freshly installed from package-lock.json by `npm ci`."""
    npm = require_tool("npm", "install Node.js 20 and npm (apt-get install nodejs npm)")
    done = run([npm, "ci", "--no-audit", "--no-fund"], VSCODE, NPM_TIMEOUT_S)
    assert done.returncode == 0, f"npm ci failed in {VSCODE}:\n{done.stdout}\n{done.stderr}"
    return VSCODE / "node_modules"


@pytest.fixture(scope="session")
def node(node_modules: Path) -> str:
    return require_tool("node", "install Node.js 20 (apt-get install nodejs)")


@pytest.fixture(scope="session")
def mdl_lsp() -> str:
    """The mdl-lsp console script of the environment running the tests (a venv's bin/ comes
    before PATH, so the server tested is the one installed with the package under test)."""
    beside_python = Path(sys.executable).parent / ("mdl-lsp.exe" if os.name == "nt" else "mdl-lsp")
    if beside_python.exists():
        return str(beside_python)
    return require_tool("mdl-lsp", "pip install . installs it with the mdl package")
