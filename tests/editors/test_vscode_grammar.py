"""The VS Code TextMate grammar, run by the engine VS Code uses (vscode-textmate): the
hand-written assertions in editors/vscode/test/grammar/, then properties every real file
(examples/, stdlib/) must have. Needs node and npm; `npm ci` takes a few seconds."""

from __future__ import annotations

import json
import re
from collections import defaultdict
from pathlib import Path

import pytest

from mdl.primitives.surface import SURFACE_NAMES

from .support import MDL_SOURCES, ROOT, VSCODE, run

HARD_KEYWORDS = {"let", "if", "else", "for", "in", "return", "and", "or", "not", "true", "false", "import"}  # fmt: skip
KEYWORD_SCOPES = ("keyword.", "storage.type.", "constant.language.")


def test_grammar_assertions_pass(node_modules: Path) -> None:
    cli = node_modules / ".bin" / "vscode-tmgrammar-test"
    done = run([str(cli), "--compact", "test/grammar/*.test.mdl"], VSCODE, 120)
    assert done.returncode == 0, done.stdout + done.stderr
    # Each file reports on its own line; an empty glob would pass vacuously.
    cases = sorted(p.name for p in (VSCODE / "test" / "grammar").glob("*.test.mdl"))
    assert len(cases) >= 3
    for case in cases:
        assert case in done.stdout, done.stdout


@pytest.fixture(scope="module")
def tokens(node: str) -> dict[str, list[dict]]:
    """examples/*.mdl and stdlib/*.mdl tokenized: file name -> tokens (and an `end` record)."""
    files = [str(p.relative_to(ROOT)) for p in MDL_SOURCES]
    done = run([node, str(VSCODE / "scripts" / "tokenize.js"), *files], ROOT, 120)
    assert done.returncode == 0, done.stderr
    by_file: dict[str, list[dict]] = defaultdict(list)
    for line in done.stdout.splitlines():
        record = json.loads(line)
        by_file[record["file"]].append(record)
    assert sorted(by_file) == sorted(files)
    return by_file


def _code_tokens(records: list[dict]) -> list[dict]:
    return [
        r
        for r in records
        if "text" in r
        and r["text"].strip()
        and not any(s.startswith("comment.") for s in r["scopes"])
    ]


def test_real_files_have_no_invalid_tokens(tokens: dict[str, list[dict]]) -> None:
    bad = [
        f"{r['file']}:{r['line']}:{r['column']} {r['text']!r}"
        for records in tokens.values()
        for r in records
        if any(s.startswith("invalid.") for s in r.get("scopes", []))
    ]
    assert not bad


def test_real_files_close_every_region(tokens: dict[str, list[dict]]) -> None:
    # A region left open (an unfinished declaration header, bracket) would colour the
    # rest of the file wrongly.
    ends = {file: records[-1]["end"] for file, records in tokens.items()}
    assert all(end == ["source.mdl"] for end in ends.values()), ends


def test_real_files_highlight_every_keyword(tokens: dict[str, list[dict]]) -> None:
    missed = []
    seen = set()
    for records in tokens.values():
        for r in _code_tokens(records):
            for word in re.findall(r"[A-Za-z_]\w*", r["text"]):
                if word in HARD_KEYWORDS:
                    seen.add(word)
                    if not r["scopes"][-1].startswith(KEYWORD_SCOPES):
                        missed.append(f"{r['file']}:{r['line']}:{r['column']} {word} {r['scopes']}")
    assert not missed
    # The real files use most keywords, so this checks something.
    assert seen >= {"let", "if", "else", "for", "in", "return", "or", "false", "import"}


def test_real_files_scope_declarations_and_calls(tokens: dict[str, list[dict]]) -> None:
    declared, builtin_calls = [], []
    for records in tokens.values():
        code = _code_tokens(records)
        for i, r in enumerate(code):
            before = code[i - 1]["text"] if i > 0 else ""
            after = code[i + 1] if i + 1 < len(code) else None
            if r["column"] == 1 and r["text"] in ("fn", "layer", "model"):
                assert r["scopes"][-1].startswith("storage.type."), r
                assert after is not None and after["scopes"][-1].startswith("entity.name."), after
                declared.append(after["text"])
            is_call = after is not None and after["text"].lstrip().startswith("(")
            if r["text"] in SURFACE_NAMES and is_call and before != ".":
                assert r["scopes"][-1] == "support.function.builtin.mdl", r
                builtin_calls.append(r["text"])
    assert {"relu", "Dense", "GptBlock", "Digits"} <= set(declared)
    assert {"max", "exp", "sum", "where", "conv"} <= set(builtin_calls)
