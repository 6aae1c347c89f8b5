"""Diagnostics -> text: rustc-style for people, one line each for grep, JSON for tools.

`render_human` draws the source snippet under each diagnostic (carets under
the primary span, `-` under secondary labels, `:::` blocks for labels in
other files, then `= note:` / `= help:` lines). Columns in spans are
characters; on screen a tab is four columns and an East Asian wide character
two, so the line and its underline are measured the same way. A file missing
from `sources` is shown by location only, and its labels become notes.
`render_short` and `render_json` need no source text; `render_json` uses it,
when given, to compute offsets for spans built without them.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from . import codes
from .diagnostics import Diagnostic, Fix, Severity
from .span import SourceFile, Span

TAB = "    "
# Longer quoted source text in a suggestion is cut, so the line stays readable.
QUOTE_LIMIT = 40

_RESET = "\x1b[0m"
_BOLD = "\x1b[1m"
_BLUE = "\x1b[1;34m"
_SEVERITY_COLOR = {
    Severity.ERROR: "\x1b[1;31m",
    Severity.WARNING: "\x1b[1;33m",
    Severity.NOTE: "\x1b[1;32m",
}


# --- measuring text on screen ------------------------------------------------------------


def char_width(ch: str) -> int:
    """Columns one character takes on a terminal (tab: 4, wide: 2, combining: 0)."""
    if ch == "\t":
        return len(TAB)
    category = unicodedata.category(ch)
    if category in ("Mn", "Me", "Cf"):
        return 0
    if unicodedata.east_asian_width(ch) in ("W", "F"):
        return 2
    return 1


def display_width(text: str) -> int:
    return sum(char_width(ch) for ch in text)


def display_text(text: str) -> str:
    """The line as drawn: tabs expanded, control characters shown as U+FFFD.

    Raw control characters (a NUL byte, an escape) would move the terminal's
    cursor and break the alignment of the underline.
    """
    out = []
    for ch in text:
        if ch == "\t":
            out.append(TAB)
        elif unicodedata.category(ch) == "Cc":
            out.append("\ufffd")
        else:
            out.append(ch)
    return "".join(out)


def _screen_col(text: str, index: int) -> int:
    """Screen column (0-based) where character `index` of `text` is drawn.

    Positions past the end of the line (a missing `)` at end of line, end of
    file) count one column per character.
    """
    if index <= len(text):
        return display_width(text[:index])
    return display_width(text) + (index - len(text))


def _source_lines(text: str) -> list[str]:
    return [line.rstrip("\r") for line in text.split("\n")]


def _line_text(lines: list[str], n: int) -> str:
    return lines[n - 1] if 1 <= n <= len(lines) else ""


# --- styling ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Style:
    color: bool

    def paint(self, code: str, text: str) -> str:
        return f"{code}{text}{_RESET}" if self.color and text else text

    def gutter(self, text: str) -> str:
        return self.paint(_BLUE, text)

    def bold(self, text: str) -> str:
        return self.paint(_BOLD, text)

    def severity(self, severity: Severity, text: str) -> str:
        return self.paint(_SEVERITY_COLOR[severity], text)


# --- underlines ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Mark:
    """One underline on one source line; columns are 1-based characters, end exclusive."""

    line: int
    col: int
    end_col: int
    label: str
    primary: bool


def _marks(span: Span, label: str, primary: bool, lines: list[str]) -> list[_Mark]:
    """The underlines for one span: one mark, or first and last line of a multi-line span."""
    line, col = max(1, span.line), max(1, span.col)
    end_line, end_col = span.end_line, span.end_col
    if (end_line, end_col) < (line, col):
        end_line, end_col = line, col
    # A span that stops at column 1 ends with a newline; it ends on the line before.
    if end_line > line and end_col <= 1:
        end_line -= 1
        end_col = len(_line_text(lines, end_line)) + 1
    if end_line == line:
        return [_Mark(line, col, end_col, label, primary)]
    first_text = _line_text(lines, line)
    last_text = _line_text(lines, end_line)
    indent = len(last_text) - len(last_text.lstrip())
    last_start = max(1, min(indent + 1, end_col - 1))
    return [
        _Mark(line, col, max(col, len(first_text) + 1), "", primary),
        _Mark(end_line, last_start, end_col, label, primary),
    ]


def _mark_row(mark: _Mark, text: str, style: _Style, severity: Severity) -> str:
    start = _screen_col(text, mark.col - 1)
    width = max(1, _screen_col(text, mark.end_col - 1) - start)
    if mark.primary:
        row = " " * start + style.severity(severity, "^" * width)
        return row + (" " + style.bold(mark.label) if mark.label else "")
    row = " " * start + style.gutter("-" * width)
    return row + (" " + mark.label if mark.label else "")


# --- the human format ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Layout:
    """Gutter geometry for one diagnostic: `width` digits of line numbers."""

    width: int
    style: _Style

    @property
    def pad(self) -> str:
        return " " * (self.width + 1)

    def empty(self) -> str:
        return self.style.gutter(self.pad + " |")

    def location(self, arrow: str, where: str) -> str:
        return self.style.gutter(f"{self.pad}{arrow} ") + where

    def numbered(self, n: int, text: str) -> str:
        gutter = self.style.gutter(f" {n:>{self.width}} |")
        return gutter + (" " + text if text else "")

    def under(self, row: str) -> str:
        return self.style.gutter(self.pad + " |") + " " + row

    def footnote(self, kind: str, text: str) -> str:
        return self.style.gutter(self.pad + " =") + " " + self.style.bold(kind + ":") + " " + text


def _snippet(
    marks: list[_Mark], lines: list[str], layout: _Layout, severity: Severity
) -> list[str]:
    """The source lines the marks touch, each followed by its underlines."""
    style = layout.style
    out = [layout.empty()]
    by_line: dict[int, list[_Mark]] = {}
    for mark in marks:
        by_line.setdefault(mark.line, []).append(mark)
    previous: int | None = None
    for n in sorted(by_line):
        if previous is not None and n > previous + 1:
            out.append(style.gutter("..."))
        previous = n
        text = _line_text(lines, n)
        out.append(layout.numbered(n, display_text(text)))
        # The primary underline sits right under the line; secondary ones follow by column.
        for mark in sorted(by_line[n], key=lambda m: (not m.primary, m.col, m.end_col)):
            out.append(layout.under(_mark_row(mark, text, style, severity)))
    return out


def _quote(text: str) -> str:
    if "\n" in text:
        text = text.split("\n", 1)[0] + " ..."
    if len(text) > QUOTE_LIMIT:
        text = text[: QUOTE_LIMIT - 4] + " ..."
    return f"`{text}`"


def _slice(span: Span, lines: list[str]) -> str:
    """The text a span covers, from line/column (offsets may be missing)."""
    if span.line == span.end_line:
        return _line_text(lines, span.line)[span.col - 1 : span.end_col - 1]
    parts = [_line_text(lines, span.line)[span.col - 1 :]]
    parts += [_line_text(lines, n) for n in range(span.line + 1, span.end_line)]
    parts.append(_line_text(lines, span.end_line)[: span.end_col - 1])
    return "\n".join(parts)


class _Sources:
    """The `sources` mapping split into lines, once per file and render call."""

    def __init__(self, texts: Mapping[str, str]):
        self.texts = texts
        self._lines: dict[str, list[str]] = {}

    def lines(self, path: str) -> list[str] | None:
        if path not in self._lines:
            text = self.texts.get(path)
            if text is None:
                return None
            self._lines[path] = _source_lines(text)
        return self._lines[path]


def describe_fix(fix: Fix, sources: Mapping[str, str], primary: Span | None = None) -> str:
    """A fix in words: "replace `w` with `w.T`", "insert `,`", "remove `let`"."""
    return _describe_fix(fix, _Sources(sources), primary)


def _describe_fix(fix: Fix, sources: _Sources, primary: Span | None) -> str:
    lines = sources.lines(fix.span.file)
    if lines is None:
        return f"replace the text at {fix.span} with {_quote(fix.new_text)}"
    old = _slice(fix.span, lines)
    if old == "":
        words = f"insert {_quote(fix.new_text)}"
    elif fix.new_text == "":
        words = f"remove {_quote(old)}"
    else:
        words = f"replace {_quote(old)} with {_quote(fix.new_text)}"
    # Fixes on the primary line need no location; the snippet above shows where.
    near_primary = (
        primary is not None and primary.file == fix.span.file and primary.line == fix.span.line
    )
    return words if near_primary else f"{words} at {fix.span}"


def _render_one(d: Diagnostic, sources: _Sources, style: _Style) -> str:
    # Marks per file: the primary span's file first, then others in order of appearance.
    files: dict[str, list[_Mark]] = {}
    orphan_notes: list[str] = []
    if d.span is not None:
        lines = sources.lines(d.span.file)
        if lines is not None:
            files[d.span.file] = _marks(d.span, d.label, True, lines)
        elif d.label:
            orphan_notes.append(d.label)
    for label in d.labels:
        lines = sources.lines(label.span.file)
        if lines is not None:
            marks = _marks(label.span, label.message, False, lines)
            files.setdefault(label.span.file, []).extend(marks)
        else:
            where = str(label.span)
            orphan_notes.append(f"{where}: {label.message}" if label.message else where)

    shown_lines = [m.line for marks in files.values() for m in marks]
    layout = _Layout(len(str(max(shown_lines, default=1))), style)

    header = style.severity(d.severity, f"{d.severity.value}[{d.code}]")
    out = [header + style.bold(f": {d.message}")]
    if d.span is not None:
        out.append(layout.location("-->", str(d.span)))
        if d.span.file in files:
            marks = files.pop(d.span.file)
            out += _snippet(marks, sources.lines(d.span.file) or [], layout, d.severity)
    for path, marks in files.items():
        first = min(marks, key=lambda m: (m.line, m.col))
        if len(out) > 1:
            out.append(layout.empty())
        out.append(layout.location(":::", f"{path}:{first.line}:{first.col}"))
        out += _snippet(marks, sources.lines(path) or [], layout, d.severity)

    footnotes = [("note", note) for note in (*orphan_notes, *d.notes)]
    if d.help:
        footnotes.append(("help", d.help))
    footnotes += [("help", _describe_fix(fix, sources, d.span)) for fix in d.fixes]
    if footnotes:
        if len(out) > 1:
            out.append(layout.empty())
        out += [layout.footnote(kind, text) for kind, text in footnotes]
    return "\n".join(out) + "\n"


def render_human(
    diags: Sequence[Diagnostic], sources: Mapping[str, str], color: bool = False
) -> str:
    """rustc-style text for a terminal; diagnostics separated by a blank line."""
    style, texts = _Style(color), _Sources(sources)
    return "\n".join(_render_one(d, texts, style) for d in diags)


# --- one line each ---------------------------------------------------------------------------


def render_short(diags: Sequence[Diagnostic], sources: Mapping[str, str] | None = None) -> str:
    """`path:line:col: error[E0302]: message`, one line per diagnostic."""
    out = []
    for d in diags:
        where = f"{d.span}: " if d.span is not None else ""
        out.append(f"{where}{d.severity.value}[{d.code}]: {_one_line(d.message)}\n")
    return "".join(out)


def _one_line(text: str) -> str:
    return " ".join(text.split("\n"))


# --- JSON --------------------------------------------------------------------------------------


class _LineIndex:
    """Line start offsets of each file in `sources`, computed once per file."""

    def __init__(self, texts: Mapping[str, str]):
        self.files = {path: SourceFile(path, text) for path, text in texts.items()}

    def position(self, file: str, line: int, col: int, offset: int) -> dict[str, int]:
        src = self.files.get(file)
        # With the text at hand, offsets come from line:col, so spans built without
        # offsets (start == end == 0) still get the right ones.
        if src is not None:
            starts, size = src.line_starts, len(src.text)
            if line > len(starts):
                offset = size
            else:
                offset = min(starts[max(line, 1) - 1] + max(col, 1) - 1, size)
        return {"line": line, "col": col, "offset": offset}

    def range(self, span: Span) -> dict[str, dict[str, int]]:
        return {
            "start": self.position(span.file, span.line, span.col, span.start),
            "end": self.position(span.file, span.end_line, span.end_col, span.end),
        }


def _json_one(d: Diagnostic, index: _LineIndex) -> dict[str, Any]:
    return {
        "code": d.code,
        "severity": d.severity.value,
        "message": d.message,
        "title": codes.title(d.code),
        "file": d.span.file if d.span is not None else None,
        "range": index.range(d.span) if d.span is not None else None,
        "label": d.label,
        "labels": [
            {"file": lb.span.file, "range": index.range(lb.span), "message": lb.message}
            for lb in d.labels
        ],
        "notes": list(d.notes),
        "help": d.help,
        "fixes": [
            {"file": fx.span.file, "range": index.range(fx.span), "new_text": fx.new_text}
            for fx in d.fixes
        ],
    }


def render_json(diags: Sequence[Diagnostic], sources: Mapping[str, str] | None = None) -> str:
    """`{"diagnostics": [...]}`; lines and columns 1-based, offsets 0-based, end exclusive."""
    index = _LineIndex(sources or {})
    doc = {"diagnostics": [_json_one(d, index) for d in diags]}
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


# --- summary -----------------------------------------------------------------------------------


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("s" if n != 1 else "")


def summary_line(diags: Iterable[Diagnostic]) -> str:
    """Counts by severity, like `2 errors, 1 warning`; `no errors` when empty."""
    counts = {severity: 0 for severity in Severity}
    for d in diags:
        counts[d.severity] += 1
    parts = [
        _plural(counts[severity], severity.value)
        for severity in (Severity.ERROR, Severity.WARNING, Severity.NOTE)
        if counts[severity]
    ]
    return ", ".join(parts) or "no errors"
