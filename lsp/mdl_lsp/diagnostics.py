"""mdl diagnostics -> LSP diagnostics (codes, UTF-16 ranges, related information) and quick fixes.

A diagnostic in another file (an imported module that does not parse) is
shown on the import that brings it in, with its real place as related
information. Labels and notes become related information; the `help:` line is
part of the message; every `Fix` becomes a quick-fix code action.
"""

from __future__ import annotations

from functools import lru_cache

from lsprotocol import types as lsp

from mdl.analysis import Analysis
from mdl.diagnostics import Diagnostic, Severity
from mdl.render import describe_fix
from mdl.syntax import ast

from .positions import LineIndex

SEVERITY = {
    Severity.ERROR: lsp.DiagnosticSeverity.Error,
    Severity.WARNING: lsp.DiagnosticSeverity.Warning,
    Severity.NOTE: lsp.DiagnosticSeverity.Information,
}


@lru_cache(maxsize=32)
def line_index(text: str) -> LineIndex:
    return LineIndex(text)


class Converter:
    """Spans of one analysis -> LSP locations (files as URIs, positions in UTF-16)."""

    def __init__(self, analysis: Analysis, uri_of):
        self.a = analysis
        self.uri_of = uri_of  # resolved path -> uri

    def index(self, shown: str) -> LineIndex | None:
        text = self.a.source_of(shown)
        if text is None and shown == self.a.shown:
            text = self.a.text
        return line_index(text) if text is not None else None

    def range(self, span) -> lsp.Range:
        idx = self.index(span.file) if span is not None else None
        if idx is None:
            return LineIndex("").span_range(None)
        return idx.span_range(span)

    def location(self, span) -> lsp.Location:
        return lsp.Location(uri=self.uri_of(self.a.real_path(span.file)), range=self.range(span))


def to_lsp(analysis: Analysis, uri_of) -> list[lsp.Diagnostic]:
    conv = Converter(analysis, uri_of)
    return [_one(d, analysis, conv) for d in analysis.diagnostics]


def _one(d: Diagnostic, a: Analysis, conv: Converter) -> lsp.Diagnostic:
    related: list[lsp.DiagnosticRelatedInformation] = []
    here = d.span is not None and d.span.file == a.shown
    if d.span is not None and not here and conv.index(d.span.file) is not None:
        related.append(
            lsp.DiagnosticRelatedInformation(conv.location(d.span), d.label or d.message)
        )
    for label in d.labels:
        if conv.index(label.span.file) is not None:
            related.append(
                lsp.DiagnosticRelatedInformation(conv.location(label.span), label.message)
            )
    if here:
        for note in d.notes:
            related.append(lsp.DiagnosticRelatedInformation(conv.location(d.span), f"note: {note}"))
    message = d.message
    if d.label and here:
        message += f" ({d.label})"
    for note in d.notes if not here else ():
        message += f"\nnote: {note}"
    if d.help:
        message += f"\nhelp: {d.help}"
    rng = conv.range(d.span) if here else _import_range(d, a, conv)
    return lsp.Diagnostic(
        range=rng,
        message=message,
        severity=SEVERITY[d.severity],
        code=d.code,
        source="mdl",
        related_information=related or None,
    )


def _import_range(d: Diagnostic, a: Analysis, conv: Converter) -> lsp.Range:
    """Where a diagnostic about another file shows: the import of that file, else the top."""
    info = a.info
    if d.span is not None and info is not None:
        stem = d.span.file.replace("\\", "/").rsplit("/", 1)[-1].removesuffix(".mdl")
        for item in info.tree.items:
            if isinstance(item, ast.Import | ast.FromImport) and item.path[-1].name == stem:
                return conv.range(item.span)
    return conv.range(None)


def code_actions(analysis: Analysis, rng: lsp.Range, uri_of) -> list[lsp.CodeAction]:
    """A quick fix for every fix of a diagnostic that touches `rng`."""
    conv = Converter(analysis, uri_of)
    out = []
    for d in analysis.diagnostics:
        if not d.fixes or d.span is None or d.span.file != analysis.shown:
            continue
        drange = conv.range(d.span)
        if not _overlaps(drange, rng):
            continue
        lsp_diag = _one(d, analysis, conv)
        for fix in d.fixes:
            edit = lsp.TextEdit(range=conv.range(fix.span), new_text=fix.new_text)
            title = describe_fix(fix, analysis.loader.sources, d.span)
            out.append(
                lsp.CodeAction(
                    title=title[0].upper() + title[1:],
                    kind=lsp.CodeActionKind.QuickFix,
                    diagnostics=[lsp_diag],
                    is_preferred=len(d.fixes) == 1,
                    edit=lsp.WorkspaceEdit(
                        changes={uri_of(analysis.real_path(fix.span.file)): [edit]}
                    ),
                )
            )
    return out


def _key(p: lsp.Position) -> tuple[int, int]:
    return (p.line, p.character)


def _overlaps(a: lsp.Range, b: lsp.Range) -> bool:
    return _key(a.start) <= _key(b.end) and _key(b.start) <= _key(a.end)
