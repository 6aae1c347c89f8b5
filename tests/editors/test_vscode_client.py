"""The VS Code extension's client code (editors/vscode/src) under node's test runner:
how `mdl.server.path` becomes a command, and src/extension.js with the real
vscode-languageclient in a fake VS Code (test/fakeVscode.js) talking to the real mdl-lsp:
diagnostics for an open document, a hover, a restart, a missing server reported."""

from __future__ import annotations

import os
import re

from .support import VSCODE, run


def test_vscode_client_runs_the_real_server(node: str, mdl_lsp: str) -> None:
    # editors/vscode/test/*.test.js: the setting -> command logic, and src/extension.js with
    # vscode-languageclient in a fake VS Code, talking to this mdl-lsp (diagnostics, hover).
    env = {**os.environ, "MDL_LSP": mdl_lsp}
    done = run([node, "--test", "test/"], VSCODE, 180, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.search(r"^# pass [1-9]", done.stdout, re.M), done.stdout
    assert "# skipped 0" in done.stdout and "# fail 0" in done.stdout, done.stdout
