"""Document formatting: the text -> one edit to the `mdlc fmt` layout (mdl.format.format_source).

Code that does not parse is left alone (no edits): formatting never guesses.
"""

from __future__ import annotations

from lsprotocol import types as lsp

from mdl.format import format_source

from .diagnostics import line_index


def format_edits(text: str, shown: str) -> list[lsp.TextEdit]:
    formatted, _ = format_source(text, shown)
    if formatted is None or formatted == text:
        return []
    return [lsp.TextEdit(range=line_index(text).whole(), new_text=formatted)]
