"""Golden tests for render.py: the exact text of each diagnostic format."""

from __future__ import annotations

import json
import re

from mdl.codes import CODES
from mdl.diagnostics import Diagnostic, Fix, Label, Severity
from mdl.render import (
    char_width,
    display_width,
    render_human,
    render_json,
    render_short,
    summary_line,
)
from mdl.span import SourceFile, Span

DIGITS = (
    "import nn\n"
    "\n"
    "model Digits(x: f32[B, 64]) -> f32[B, 10] {\n"
    "    let w = nn.Dense[32, 10]\n"
    "    let fc2 = nn.Dense[32, 10]\n"
    "    return nn.softmax(fc2(x @ w))\n"
    "}\n"
)
DIGITS_PATH = "examples/digits.mdl"


def lines(*rows: str) -> str:
    return "\n".join(rows) + "\n"


def span_of(src: SourceFile, needle: str, occurrence: int = 0) -> Span:
    start = -1
    for _ in range(occurrence + 1):
        start = src.text.index(needle, start + 1)
    return src.span(start, start + len(needle))


def matmul_error(**extra) -> Diagnostic:
    src = SourceFile(DIGITS_PATH, DIGITS)
    return Diagnostic(
        "E0302",
        "inner dimensions of a matrix product differ",
        span_of(src, "x @ w"),
        "f32[B, 64] @ f32[32, 10]: 64 != 32",
        **extra,
    )


# --- the human format ------------------------------------------------------------------------


def test_simple_span_with_note_and_help():
    d = matmul_error(notes=("`w` is f32[32, 10]",), help="transpose `w` with `w.T`")
    assert render_human([d], {DIGITS_PATH: DIGITS}) == lines(
        "error[E0302]: inner dimensions of a matrix product differ",
        "  --> examples/digits.mdl:6:27",
        "   |",
        " 6 |     return nn.softmax(fc2(x @ w))",
        "   |                           ^^^^^ f32[B, 64] @ f32[32, 10]: 64 != 32",
        "   |",
        "   = note: `w` is f32[32, 10]",
        "   = help: transpose `w` with `w.T`",
    )


def test_span_without_label_and_without_notes():
    src = SourceFile(DIGITS_PATH, DIGITS)
    d = Diagnostic("E0101", "unknown name `nn`", span_of(src, "nn", 1))
    assert render_human([d], {DIGITS_PATH: DIGITS}) == lines(
        "error[E0101]: unknown name `nn`",
        "  --> examples/digits.mdl:4:13",
        "   |",
        " 4 |     let w = nn.Dense[32, 10]",
        "   |             ^^",
    )


MULTI = (
    "model M(x: f32[B, 4]) -> f32[B, 4] {\n"
    "    let y = where(x > 0.0,\n"
    "                  x,\n"
    "                  2)\n"
    "    return y\n"
    "}\n"
)


def test_multi_line_span_shows_first_and_last_line():
    src = SourceFile("m.mdl", MULTI)
    start = MULTI.index("where")
    end = MULTI.index("2)") + 2
    d = Diagnostic("E0201", "mismatched dtypes", src.span(start, end), "f32 and i64")
    assert render_human([d], {"m.mdl": MULTI}) == lines(
        "error[E0201]: mismatched dtypes",
        "  --> m.mdl:2:13",
        "   |",
        " 2 |     let y = where(x > 0.0,",
        "   |             ^^^^^^^^^^^^^^",
        "...",
        " 4 |                   2)",
        "   |                   ^^ f32 and i64",
    )


def test_two_line_span_has_no_ellipsis():
    src = SourceFile("m.mdl", MULTI)
    start = MULTI.index("x,")
    end = MULTI.index("2)") + 1
    d = Diagnostic("E0201", "mismatched dtypes", src.span(start, end), "here")
    assert render_human([d], {"m.mdl": MULTI}) == lines(
        "error[E0201]: mismatched dtypes",
        "  --> m.mdl:3:19",
        "   |",
        " 3 |                   x,",
        "   |                   ^^",
        " 4 |                   2)",
        "   |                   ^ here",
    )


def test_span_ending_after_a_newline_ends_on_the_line_before():
    src = SourceFile("m.mdl", MULTI)
    start = MULTI.index("x,")
    end = MULTI.index("                  2)")  # column 1 of line 4
    d = Diagnostic("E0201", "mismatched dtypes", src.span(start, end), "here")
    assert src.span(start, end).end_line == 4
    assert render_human([d], {"m.mdl": MULTI}) == lines(
        "error[E0201]: mismatched dtypes",
        "  --> m.mdl:3:19",
        "   |",
        " 3 |                   x,",
        "   |                   ^^ here",
    )


def test_tabs_expand_the_same_in_line_and_carets():
    text = "fn f(x: f32[B, 4]) -> f32[B, 4] {\n\treturn x @\tw\n}\n"
    src = SourceFile("t.mdl", text)
    start = text.index("x @")
    d = Diagnostic("E0302", "inner dimensions differ", src.span(start, start + 5), "here")
    assert render_human([d], {"t.mdl": text}) == lines(
        "error[E0302]: inner dimensions differ",
        "  --> t.mdl:2:9",
        "   |",
        " 2 |     return x @    w",
        "   |            ^^^^^^^^ here",
    )


def test_wide_characters_take_two_columns():
    text = "fn f(x: f32[B, 4]) -> f32[B, 4] = x ＠ w  # 全角\n"
    src = SourceFile("w.mdl", text)
    at = text.index("＠")
    d = Diagnostic(
        "E0003",
        "unexpected character `＠`",
        src.span(at, at + 1),
        "full-width at sign",
        labels=(Label(span_of(src, "全角"), "a comment"),),
    )
    assert render_human([d], {"w.mdl": text}) == lines(
        "error[E0003]: unexpected character `＠`",
        "  --> w.mdl:1:37",
        "   |",
        " 1 | fn f(x: f32[B, 4]) -> f32[B, 4] = x ＠ w  # 全角",
        "   |                                     ^^ full-width at sign",
        "   |                                             ---- a comment",
    )
    widths = [char_width(ch) for ch in ("＠", "全", "a", "\u0301")]
    assert widths == [2, 2, 1, 0]
    assert display_width("a\t全") == 1 + 4 + 2


def test_control_characters_are_shown_as_replacement_characters():
    text = "let\x00x = 1\n"
    src = SourceFile("n.mdl", text)
    d = Diagnostic("E0002", "source file contains a NUL byte", src.span(3, 4))
    out = render_human([d], {"n.mdl": text})
    assert "\x00" not in out
    assert " 1 | let\ufffdx = 1\n   |    ^\n" in out


def test_zero_width_span_gets_one_caret():
    text = "fn double(x: f32[*S]) -> f32[*S] = x *"
    src = SourceFile("e.mdl", text)
    d = Diagnostic("E0005", "unexpected end of file", src.span(len(text), len(text)))
    assert render_human([d], {"e.mdl": text}) == lines(
        "error[E0005]: unexpected end of file",
        "  --> e.mdl:1:39",
        "   |",
        " 1 | fn double(x: f32[*S]) -> f32[*S] = x *",
        "   |                                       ^",
    )


def test_span_at_end_of_file_after_final_newline():
    text = "model M(x: f32[B, 4]) -> f32[B, 4] {\n    return x\n"
    src = SourceFile("e.mdl", text)
    brace = text.index("{")
    d = Diagnostic(
        "E0007",
        "unclosed `{`",
        src.span(brace, brace + 1),
        "opened here",
        labels=(Label(src.span(len(text), len(text)), "file ends here"),),
    )
    assert render_human([d], {"e.mdl": text}) == lines(
        "error[E0007]: unclosed `{`",
        "  --> e.mdl:1:36",
        "   |",
        " 1 | model M(x: f32[B, 4]) -> f32[B, 4] {",
        "   |                                    ^ opened here",
        "...",
        " 3 |",
        "   | - file ends here",
    )


def test_span_past_the_last_line_still_renders():
    d = Diagnostic("E0005", "unexpected end of file", Span("e.mdl", 12, 3, 12, 3), "here")
    assert render_human([d], {"e.mdl": "x\n"}) == lines(
        "error[E0005]: unexpected end of file",
        "   --> e.mdl:12:3",
        "    |",
        " 12 |",
        "    |   ^ here",
    )


def test_missing_source_renders_location_and_labels_as_notes():
    d = matmul_error(
        labels=(Label(Span("stdlib/nn.mdl", 9, 5, 9, 20), "declared here"),),
        notes=("a note",),
    )
    assert render_human([d], {}) == lines(
        "error[E0302]: inner dimensions of a matrix product differ",
        "  --> examples/digits.mdl:6:27",
        "   |",
        "   = note: f32[B, 64] @ f32[32, 10]: 64 != 32",
        "   = note: stdlib/nn.mdl:9:5: declared here",
        "   = note: a note",
    )


def test_missing_source_without_notes_is_header_and_location():
    d = Diagnostic("E0101", "unknown name `y`", Span("gone.mdl", 3, 5, 3, 6))
    assert render_human([d], {}) == lines(
        "error[E0101]: unknown name `y`",
        "  --> gone.mdl:3:5",
    )


def test_secondary_labels_in_the_same_file_sorted_by_line():
    src = SourceFile(DIGITS_PATH, DIGITS)
    d = matmul_error(
        labels=(
            Label(src.span(DIGITS.index("x @"), DIGITS.index("x @") + 1), "f32[B, 64]"),
            Label(span_of(src, "nn.Dense[32, 10]"), "`w` is f32[32, 10]"),
            Label(span_of(src, "x: f32[B, 64]"), "declared here"),
        )
    )
    assert render_human([d], {DIGITS_PATH: DIGITS}) == lines(
        "error[E0302]: inner dimensions of a matrix product differ",
        "  --> examples/digits.mdl:6:27",
        "   |",
        " 3 | model Digits(x: f32[B, 64]) -> f32[B, 10] {",
        "   |              ------------- declared here",
        " 4 |     let w = nn.Dense[32, 10]",
        "   |             ---------------- `w` is f32[32, 10]",
        "...",
        " 6 |     return nn.softmax(fc2(x @ w))",
        "   |                           ^^^^^ f32[B, 64] @ f32[32, 10]: 64 != 32",
        "   |                           - f32[B, 64]",
    )


def test_secondary_label_in_another_file_gets_its_own_block():
    nn_text = "# nn\n" + "\n" * 8 + "layer Dense[In, Out](x: f32[*B, In]) -> f32[*B, Out] {\n"
    nn = SourceFile("stdlib/nn.mdl", nn_text)
    d = matmul_error(labels=(Label(span_of(nn, "In]"), "`In` is 32"),))
    out = render_human([d], {DIGITS_PATH: DIGITS, "stdlib/nn.mdl": nn_text})
    assert out == lines(
        "error[E0302]: inner dimensions of a matrix product differ",
        "   --> examples/digits.mdl:6:27",
        "    |",
        "  6 |     return nn.softmax(fc2(x @ w))",
        "    |                           ^^^^^ f32[B, 64] @ f32[32, 10]: 64 != 32",
        "    |",
        "   ::: stdlib/nn.mdl:10:33",
        "    |",
        " 10 | layer Dense[In, Out](x: f32[*B, In]) -> f32[*B, Out] {",
        "    |                                 --- `In` is 32",
    )


def test_fixes_render_as_help_lines():
    src = SourceFile(DIGITS_PATH, DIGITS)
    w = span_of(src, "w)")
    w = Span(w.file, w.line, w.col, w.end_line, w.end_col - 1, w.start, w.end - 1)
    let = span_of(src, "let ", 1)
    d = matmul_error(
        help="transpose `w`",
        fixes=(
            Fix(w, "w.T"),
            Fix(Span(w.file, w.line, w.col, w.line, w.col, w.start, w.start), "("),
            Fix(let, ""),
            Fix(Span("other.mdl", 2, 1, 2, 4), "new"),
        ),
    )
    out = render_human([d], {DIGITS_PATH: DIGITS})
    assert out.endswith(
        lines(
            "   |",
            "   = help: transpose `w`",
            "   = help: replace `w` with `w.T`",
            "   = help: insert `(`",
            "   = help: remove `let ` at examples/digits.mdl:5:5",
            "   = help: replace the text at other.mdl:2:1 with `new`",
        )
    )


def test_diagnostic_without_span_prints_header_notes_and_help():
    d = Diagnostic(
        "E0504",
        "unexpected weight `hidden.weight`",
        notes=("in weights file `w.safetensors`",),
        help="did you mean `fc1.weight`?",
    )
    assert render_human([d], {}) == lines(
        "error[E0504]: unexpected weight `hidden.weight`",
        "   = note: in weights file `w.safetensors`",
        "   = help: did you mean `fc1.weight`?",
    )


def test_several_diagnostics_are_separated_by_a_blank_line():
    first = matmul_error()
    second = Diagnostic(
        "E0412",
        "unused layer instance `w` has parameters",
        Span(DIGITS_PATH, 4, 9, 4, 10),
        severity=Severity.WARNING,
    )
    third = Diagnostic("E0901", "internal error, please report")
    out = render_human([first, second, third], {DIGITS_PATH: DIGITS})
    assert out == (
        lines(
            "error[E0302]: inner dimensions of a matrix product differ",
            "  --> examples/digits.mdl:6:27",
            "   |",
            " 6 |     return nn.softmax(fc2(x @ w))",
            "   |                           ^^^^^ f32[B, 64] @ f32[32, 10]: 64 != 32",
        )
        + "\n"
        + lines(
            "warning[E0412]: unused layer instance `w` has parameters",
            "  --> examples/digits.mdl:4:9",
            "   |",
            " 4 |     let w = nn.Dense[32, 10]",
            "   |         ^",
        )
        + "\n"
        + lines("error[E0901]: internal error, please report")
    )
    assert render_human([], {}) == ""


def test_color_paints_severity_and_gutter_and_nothing_else():
    warning = Diagnostic(
        "E0412", "unused", Span(DIGITS_PATH, 4, 9, 4, 10), severity=Severity.WARNING
    )
    plain = render_human([matmul_error(), warning], {DIGITS_PATH: DIGITS})
    colored = render_human([matmul_error(), warning], {DIGITS_PATH: DIGITS}, color=True)
    assert "\x1b[1;31merror[E0302]\x1b[0m" in colored
    assert "\x1b[1;33mwarning[E0412]\x1b[0m" in colored
    assert "\x1b[1;34m 6 |\x1b[0m" in colored
    assert "\x1b[1;31m^^^^^\x1b[0m" in colored
    assert re.sub(r"\x1b\[[0-9;]*m", "", colored) == plain
    assert "\x1b" not in plain


# --- one line each -----------------------------------------------------------------------------


def test_short_format():
    warning = Diagnostic(
        "E0412", "unused layer", Span("a.mdl", 4, 9, 4, 10), severity=Severity.WARNING
    )
    spanless = Diagnostic("E0504", "unexpected weight `x`\nsecond line")
    assert render_short([matmul_error(), warning, spanless]) == lines(
        "examples/digits.mdl:6:27: error[E0302]: inner dimensions of a matrix product differ",
        "a.mdl:4:9: warning[E0412]: unused layer",
        "error[E0504]: unexpected weight `x` second line",
    )
    assert render_short([]) == ""


# --- JSON --------------------------------------------------------------------------------------


def test_json_fields_and_order():
    src = SourceFile(DIGITS_PATH, DIGITS)
    w = span_of(src, "w)")
    d = matmul_error(
        labels=(Label(span_of(src, "nn.Dense[32, 10]"), "`w` is f32[32, 10]"),),
        notes=("ë is kept as is",),
        help="transpose `w`",
        fixes=(Fix(Span(w.file, w.line, w.col, w.line, w.col + 1, w.start, w.start + 1), "w.T"),),
    )
    text = render_json([d], {DIGITS_PATH: DIGITS})
    assert "ë is kept as is" in text  # ensure_ascii=False
    doc = json.loads(text)
    (item,) = doc["diagnostics"]
    assert list(item) == [
        "code",
        "severity",
        "message",
        "title",
        "file",
        "range",
        "label",
        "labels",
        "notes",
        "help",
        "fixes",
    ]
    start = DIGITS.index("x @ w")
    assert item["code"] == "E0302"
    assert item["severity"] == "error"
    assert item["title"] == CODES["E0302"]
    assert item["file"] == DIGITS_PATH
    assert item["range"] == {
        "start": {"line": 6, "col": 27, "offset": start},
        "end": {"line": 6, "col": 32, "offset": start + 5},
    }
    assert item["label"] == "f32[B, 64] @ f32[32, 10]: 64 != 32"
    assert item["labels"][0]["message"] == "`w` is f32[32, 10]"
    assert item["labels"][0]["range"]["start"] == {
        "line": 4,
        "col": 13,
        "offset": DIGITS.index("nn.Dense"),
    }
    assert item["notes"] == ["ë is kept as is"]
    assert item["help"] == "transpose `w`"
    assert item["fixes"] == [
        {
            "file": DIGITS_PATH,
            "range": {
                "start": {"line": 6, "col": 31, "offset": start + 4},
                "end": {"line": 6, "col": 32, "offset": start + 5},
            },
            "new_text": "w.T",
        }
    ]


def test_json_offsets_from_source_when_span_has_none():
    bare = Span(DIGITS_PATH, 6, 27, 6, 32)  # built without offsets
    d = Diagnostic("E0302", "inner", bare)
    with_source = json.loads(render_json([d], {DIGITS_PATH: DIGITS}))["diagnostics"][0]
    without = json.loads(render_json([d]))["diagnostics"][0]
    start = DIGITS.index("x @ w")
    assert with_source["range"]["start"]["offset"] == start
    assert with_source["range"]["end"]["offset"] == start + 5
    assert without["range"]["start"]["offset"] == 0


def test_json_spanless_and_warning():
    d = Diagnostic("E0412", "unused", severity=Severity.WARNING)
    (item,) = json.loads(render_json([d]))["diagnostics"]
    assert item["file"] is None and item["range"] is None and item["help"] is None
    assert item["severity"] == "warning"
    assert item["labels"] == [] and item["fixes"] == [] and item["notes"] == []
    assert json.loads(render_json([])) == {"diagnostics": []}


# --- summary -----------------------------------------------------------------------------------


def test_summary_line():
    err = Diagnostic("E0101", "x")
    warn = Diagnostic("E0412", "y", severity=Severity.WARNING)
    assert summary_line([err, err, warn]) == "2 errors, 1 warning"
    assert summary_line([err]) == "1 error"
    assert summary_line([warn, warn]) == "2 warnings"
    assert summary_line([]) == "no errors"
