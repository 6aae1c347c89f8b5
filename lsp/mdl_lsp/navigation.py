"""Go to definition, find references and rename, across the workspace and into stdlib/.

Names are resolved by mdl.analysis_bind, which ties each name to a definition
with a key that is the same in every file's analysis; references are all
occurrences with that key in the files of the workspace and all they import.
"""

from __future__ import annotations

import re

from lsprotocol import types as lsp

from mdl.analysis import Analysis, WorkspaceIndex
from mdl.analysis_bind import KEYWORDS, Definition

from .diagnostics import line_index
from .documents import is_stdlib

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


class RenameError(Exception):
    pass


def definition_at(a: Analysis, offset: int) -> Definition | None:
    occ = a.occurrence_at(offset)
    return occ.target if occ is not None else None


def definition_location(a: Analysis, d: Definition, uri_of) -> lsp.Location | None:
    shown = d.node.path if d.kind == "module" else d.span.file
    text = a.source_of(shown)
    if text is None:
        return None
    return lsp.Location(uri=uri_of(d.path), range=line_index(text).span_range(d.span))


def reference_locations(
    index: WorkspaceIndex, d: Definition, uri_of, include_declaration: bool
) -> list[lsp.Location]:
    out = []
    for b, occ in index.references(d.key):
        if occ.is_definition and not include_declaration:
            continue
        text = index.sources.get(b.info.path, "")
        out.append(lsp.Location(uri=uri_of(b.path), range=line_index(text).span_range(occ.span)))
    return out


def check_renamable(d: Definition | None) -> Definition:
    if d is None:
        raise RenameError("there is no name here that can be renamed")
    if d.kind == "module":
        raise RenameError("a module is named by its file; rename the file instead")
    if is_stdlib(d.path):
        raise RenameError(f"`{d.name}` is defined in the standard library, which is read-only")
    return d


def rename_edits(index: WorkspaceIndex, d: Definition, new_name: str, uri_of) -> lsp.WorkspaceEdit:
    if not _IDENT.match(new_name) or new_name in KEYWORDS:
        raise RenameError(f"`{new_name}` is not a valid name")
    changes: dict[str, list[lsp.TextEdit]] = {}
    for b, occ in index.references(d.key):
        if is_stdlib(b.path):
            raise RenameError(f"`{d.name}` is used in the standard library, which is read-only")
        text = index.sources.get(b.info.path, "")
        rng = line_index(text).span_range(occ.span)
        changes.setdefault(uri_of(b.path), []).append(lsp.TextEdit(range=rng, new_text=new_name))
    return lsp.WorkspaceEdit(changes=changes)
