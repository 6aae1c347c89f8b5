"""Document symbols (the outline of one file) and workspace symbols (declarations anywhere)."""

from __future__ import annotations

from lsprotocol import types as lsp

from mdl.analysis import Analysis, WorkspaceIndex, decl_signature
from mdl.analysis_bind import Definition
from mdl.syntax import ast

from .diagnostics import line_index

_KIND = {
    "fn": lsp.SymbolKind.Function,
    "layer": lsp.SymbolKind.Class,
    "model": lsp.SymbolKind.Class,
    "module": lsp.SymbolKind.Module,
    "ctparam": lsp.SymbolKind.TypeParameter,
    "input": lsp.SymbolKind.Variable,
    "output": lsp.SymbolKind.Variable,
    "dim": lsp.SymbolKind.TypeParameter,
    "let": lsp.SymbolKind.Variable,
    "loop": lsp.SymbolKind.Variable,
    "param": lsp.SymbolKind.Field,
    "buffer": lsp.SymbolKind.Field,
}
_CHILD_KINDS = ("ctparam", "input", "output", "param", "buffer", "let")


def document_symbols(a: Analysis) -> list[lsp.DocumentSymbol]:
    info, bound = a.info, a.bound()
    if info is None or bound is None:
        return []
    idx = line_index(a.text)
    children: dict[int, list[Definition]] = {}
    for d in bound.definitions:
        if d.kind in _CHILD_KINDS and d.decl is not None and d.path == a.path:
            children.setdefault(id(d.decl), []).append(d)
    out = []
    for item in info.tree.items:
        match item:
            case ast.Decl():
                kids = [
                    lsp.DocumentSymbol(
                        name=d.name,
                        kind=_KIND[d.kind],
                        range=idx.span_range(getattr(d.node, "span", d.span)),
                        selection_range=idx.span_range(d.span),
                        detail=d.kind,
                    )
                    for d in children.get(id(item), [])
                ]
                out.append(
                    lsp.DocumentSymbol(
                        name=item.name.name,
                        kind=_KIND[item.kind],
                        range=idx.span_range(item.span),
                        selection_range=idx.span_range(item.name.span),
                        detail=decl_signature(item, a.text),
                        children=kids,
                    )
                )
            case ast.Import() | ast.FromImport():
                name = ".".join(p.name for p in item.path)
                out.append(
                    lsp.DocumentSymbol(
                        name=name,
                        kind=lsp.SymbolKind.Module,
                        range=idx.span_range(item.span),
                        selection_range=idx.span_range(item.path[-1].span),
                    )
                )
    return out


def workspace_symbols(index: WorkspaceIndex, query: str, uri_of) -> list[lsp.WorkspaceSymbol]:
    out = []
    for d in index.declarations():
        if not _matches(query, d.name):
            continue
        text = index.sources.get(d.span.file, "")
        out.append(
            lsp.WorkspaceSymbol(
                name=d.name,
                kind=_KIND[d.kind],
                location=lsp.Location(
                    uri=uri_of(d.path), range=line_index(text).span_range(d.span)
                ),
                container_name=d.span.file,
            )
        )
    return out


def _matches(query: str, name: str) -> bool:
    """Fuzzy: the query's characters appear in order in the name (case-insensitive)."""
    it = iter(name.lower())
    return all(ch in it for ch in query.lower())
