"""explain.py, the errors/*.md explanations, and their docs/errors mirror."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from importlib import resources
from pathlib import Path

import pytest

from mdl.codes import CODES
from mdl.explain import explanation, normalize_code, unknown_code_diagnostic
from mdl.syntax.parser import parse

REPO = Path(__file__).resolve().parents[2]
SYNC = REPO / "tools" / "sync_error_docs.py"
FENCE = re.compile(r"^```(\w+)\n(.*?)^```$", re.M | re.S)


@pytest.mark.parametrize("code", sorted(CODES))
def test_every_code_has_an_explanation(code):
    text = explanation(code)
    assert text is not None, f"lang/mdl/errors/{code}.md is missing"
    assert text.startswith(f"# {code}: {CODES[code]}\n\n")
    assert "\n## Example of erroneous code\n" in text
    assert "\n## How to fix it\n" in text
    blocks = FENCE.findall(text)
    assert blocks, "needs a fenced example"
    assert all(lang in ("mdl", "console", "python") for lang, _ in blocks)
    example = text.index("## Example of erroneous code")
    fix = text.index("## How to fix it")
    assert any(example < m.start() < fix for m in FENCE.finditer(text))
    assert 10 <= text.count("\n") <= 45


def test_no_explanation_for_codes_that_do_not_exist():
    folder = resources.files("mdl").joinpath("errors")
    names = {entry.name for entry in folder.iterdir() if entry.name.endswith(".md")}
    assert names == {f"{code}.md" for code in CODES}


@pytest.mark.parametrize("code", sorted(CODES))
def test_corrected_examples_parse(code):
    """The code under "How to fix it" is valid syntax (elided bodies `...` excepted)."""
    text = explanation(code)
    fix = text.index("## How to fix it")
    for m in FENCE.finditer(text):
        lang, body = m.groups()
        if lang != "mdl" or m.start() < fix or "..." in body:
            continue
        _, diags = parse(body, f"{code}.md")
        assert diags == [], [str(d) for d in diags]


def test_normalize_code():
    assert normalize_code("E0302") == "E0302"
    assert normalize_code("e302") == "E0302"
    assert normalize_code("0302") == "E0302"
    assert normalize_code("302") == "E0302"
    assert normalize_code(" E0001 ") == "E0001"
    assert normalize_code("E00302") == "E0302"
    assert normalize_code("E9999") is None  # well-formed but not in the registry
    assert normalize_code("E0000") is None
    assert normalize_code("X0302") is None
    assert normalize_code("E03O2") is None
    assert normalize_code("") is None


def test_explanation_accepts_loose_codes_and_rejects_unknown_ones():
    assert explanation("e302") == explanation("E0302")
    assert explanation("E9999") is None
    assert explanation("../codes") is None


def test_unknown_code_diagnostic():
    d = unknown_code_diagnostic(" E9999 ")
    assert d.code == "E0703" and d.code in CODES
    assert d.message == "no error code `E9999`"
    assert d.help and "E0302" in d.help


def test_docs_mirror_is_in_sync():
    result = subprocess.run(
        [sys.executable, str(SYNC), "--check"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr


def test_sync_check_detects_and_sync_repairs_a_stale_mirror(tmp_path):
    shutil.copytree(REPO / "lang" / "mdl" / "errors", tmp_path / "lang" / "mdl" / "errors")
    shutil.copytree(REPO / "docs" / "errors", tmp_path / "docs" / "errors")
    package_file = tmp_path / "lang" / "mdl" / "errors" / "E0302.md"
    package_file.write_text(package_file.read_text() + "\nOne more line.\n")
    (tmp_path / "docs" / "errors" / "E0999.md").write_text("# stray\n")

    def run(*flags: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, str(SYNC), "--root", str(tmp_path), *flags]
        return subprocess.run(command, capture_output=True, text=True, timeout=60)

    stale = run("--check")
    assert stale.returncode == 1
    assert "docs/errors/E0302.md" in stale.stderr and "docs/errors/E0999.md" in stale.stderr
    assert run().returncode == 0
    assert run("--check").returncode == 0
    mirrored = (tmp_path / "docs" / "errors" / "E0302.md").read_text()
    assert mirrored.endswith("\nOne more line.\n")
    assert not (tmp_path / "docs" / "errors" / "E0999.md").exists()
