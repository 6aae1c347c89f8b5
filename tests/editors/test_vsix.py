"""`npm run package` in editors/vscode builds an installable .vsix with @vscode/vsce 3.x,
offline (only the npm registry, for vsce itself). Marked `editors`: it installs vsce's
~250 packages, 20-50 s."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from .support import NPM_TIMEOUT_S, VSCODE, require_tool, run

pytestmark = pytest.mark.editors


def test_npm_run_package_builds_the_vsix(node_modules: Path, tmp_path: Path) -> None:
    npm = require_tool("npm", "install Node.js 20 and npm")
    vsix = tmp_path / "mdl.vsix"
    done = run([npm, "run", "package", "--", "--out", str(vsix)], VSCODE, NPM_TIMEOUT_S)
    assert done.returncode == 0, done.stdout + done.stderr
    with zipfile.ZipFile(vsix) as archive:
        names = set(archive.namelist())
        packaged = json.loads(archive.read("extension/package.json"))
        manifest = archive.read("extension.vsixmanifest").decode()
    assert {
        "extension/package.json",
        "extension/language-configuration.json",
        "extension/syntaxes/mdl.tmLanguage.json",
        "extension/src/extension.js",
        "extension/src/serverCommand.js",
        "extension/node_modules/vscode-languageclient/node.js",
    } <= names
    leaked = [
        n
        for n in names
        if n.startswith(("extension/test/", "extension/packaging/", "extension/scripts/"))
    ]
    assert not leaked
    # Development-only packages stay out; the client's runtime dependencies are in.
    assert not [n for n in names if "/node_modules/vscode-tmgrammar-test/" in n]
    assert (
        packaged["contributes"] == json.loads((VSCODE / "package.json").read_text())["contributes"]
    )
    assert 'Id="mdl"' in manifest and 'Publisher="mdl"' in manifest
