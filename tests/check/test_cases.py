"""Golden diagnostic cases: tests/cases/check/*.mdl.

Each case marks the line of every expected diagnostic with an inline
annotation `# error[E0302]`; the test checks that exactly those (line, code)
pairs are reported in that file, and that the rendered output equals the
`.stderr` file beside it (`pytest --bless` rewrites those).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from mdl import driver
from mdl.render import render_human

CASES = Path(__file__).parent.parent / "cases" / "check"
ANNOTATION = re.compile(r"#\s*(error|warning)\[(E\d{4})\]")


def expected_pairs(path: Path) -> set[tuple[int, str]]:
    out = set()
    for n, line in enumerate(path.read_text().splitlines(), 1):
        for m in ANNOTATION.finditer(line):
            out.add((n, m.group(2)))
    return out


@pytest.mark.parametrize("case", sorted(CASES.glob("*.mdl")), ids=lambda p: p.stem)
def test_case(case: Path, bless: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(CASES)
    front = driver.check_file(case.name)
    got = {(d.span.line, d.code) for d in front.diagnostics if d.span and d.span.file == case.name}
    assert got == expected_pairs(case), [str(d) for d in front.diagnostics]
    unlocated = [d for d in front.diagnostics if d.span is None or d.span.file != case.name]
    assert not unlocated, [str(d) for d in unlocated]
    rendered = render_human(front.diagnostics, front.sources)
    golden = case.with_suffix(".stderr")
    if bless:
        golden.write_text(rendered)
    assert golden.exists(), f"run pytest --bless to create {golden.name}"
    assert rendered == golden.read_text()


def test_every_code_in_cases_is_registered() -> None:
    from mdl.codes import CODES

    for case in CASES.glob("*.mdl"):
        for _, code in expected_pairs(case):
            assert code in CODES, (case.name, code)


def test_cases_cover_many_codes() -> None:
    codes = {c for case in CASES.glob("*.mdl") for _, c in expected_pairs(case)}
    assert len(codes) >= 25, sorted(codes)


if os.environ.get("MDL_SHOW"):  # pragma: no cover - debugging aid
    print(sorted(CASES.glob("*.mdl")))


def test_transpose_fix_is_an_edit_that_makes_the_model_check(tmp_path: Path) -> None:
    src = "model M(x: f32[B, 64], w: f32[10, 64]) -> f32[B, 10] {\n    return x @ w\n}\n"
    path = tmp_path / "m.mdl"
    path.write_text(src)
    (d,) = driver.check_file(str(path)).diagnostics
    assert d.code == "E0302" and len(d.fixes) == 1
    fix = d.fixes[0]
    fixed = src[: fix.span.start] + fix.new_text + src[fix.span.end :]
    path.write_text(fixed)
    assert "x @ w.T" in fixed
    assert driver.check_file(str(path)).diagnostics == []


def test_parenthesised_transpose_fix(tmp_path: Path) -> None:
    src = "model M(x: f32[B, 64], w: f32[10, 64]) -> f32[B, 10] {\n    return x @ (w * 2.0)\n}\n"
    path = tmp_path / "m.mdl"
    path.write_text(src)
    (d,) = driver.check_file(str(path)).diagnostics
    fixed = src
    for fix in sorted(d.fixes, key=lambda f: f.span.start, reverse=True):
        fixed = fixed[: fix.span.start] + fix.new_text + fixed[fix.span.end :]
    path.write_text(fixed)
    assert driver.check_file(str(path)).diagnostics == [], fixed
