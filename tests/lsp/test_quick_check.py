"""The quick check after an edit (mdl.analysis_quick) agrees with the full check.

In-process: the quick check is what makes diagnostics fast, so its findings
(moved from the previous check, or found by checking the changed declaration
alone) must be the full check's, at the same places, for edits that stay
inside one declaration.
"""

from __future__ import annotations

from mdl.analysis import analyze
from mdl.analysis_quick import quick_check
from mdl.syntax.parser import ChunkCache

BASE = """import nn

# first
fn one(x: f32[N]) -> f32[N] = x + unknown_a

layer Two[D](x: f32[B, D]) -> f32[B, D] {
    let fc = nn.Dense[D, D]
    return fc(x) * scale
}

fn one(x: f32[N]) -> f32[N] = x

fn three(x: f32[N]) -> f32[N] {
    let y = x * 2.0
    return y + unknown_c
}
"""

EDITS = [
    ("x + unknown_a", "x + unknown_a + x"),  # longer: everything after moves
    ("x + unknown_a", "x"),  # shorter, and the error goes away
    ("return fc(x) * scale", "let z = fc(x)\n\n    return z * scale"),  # lines added
    ("let y = x * 2.0", "let y = x * 2.0 + yy"),  # a new error in the last declaration
    ("fn three(x: f32[N]) -> f32[N] {", "fn three(x: f32[N]) -> f32[N] {\n"),
]


def summary(diags):
    return sorted(
        (d.code, d.message, d.span and (d.span.line, d.span.col, d.span.start),
         tuple((lab.span.line, lab.span.col, lab.message) for lab in d.labels))
        for d in diags
    )  # fmt: skip


def test_quick_findings_are_the_full_findings(tmp_path):
    path = str(tmp_path / "edit.mdl")
    cache = ChunkCache()
    for old, new in EDITS:
        assert old in BASE
        previous = analyze(path, BASE, cache=cache)
        assert {d.code for d in previous.diagnostics} >= {"E0101", "E0104"}
        text = BASE.replace(old, new)
        quick = quick_check(previous, text, None, cache)
        assert quick is not None and quick.partial
        full = analyze(path, text)  # no cache: nothing the quick check did can leak in
        assert summary(quick.diagnostics) == summary(full.diagnostics), (old, new)
        assert summary(analyze(path, text, cache=cache).diagnostics) == summary(full.diagnostics)


def test_no_quick_check_when_a_model_or_an_import_changes(tmp_path):
    path = str(tmp_path / "m.mdl")
    text = "import nn\n\nmodel M(x: f32[B, 4]) -> f32[B, 4] {\n    return nn.relu(x)\n}\n"
    previous = analyze(path, text)
    assert quick_check(previous, text.replace("relu", "gelu"), None, ChunkCache()) is None
    assert (
        quick_check(previous, text.replace("import nn", "import resnet\nimport nn"), None, None)
        is None
    )
