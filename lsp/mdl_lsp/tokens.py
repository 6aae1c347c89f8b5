"""Semantic tokens: every resolved name coloured by what it is, plus comments.

A TextMate grammar colours keywords and literals; what only the analysis knows
is whether `D` is a compile-time argument or a dim, `fc` a layer instance or a
tensor, `sum` a primitive. Encoded relative to the previous token, in UTF-16.
"""

from __future__ import annotations

from lsprotocol import types as lsp

from mdl.analysis import Analysis

from .diagnostics import line_index
from .positions import utf16_len

TOKEN_TYPES = [
    "namespace",
    "function",
    "class",
    "parameter",
    "variable",
    "property",
    "type",
    "typeParameter",
    "method",
    "enumMember",
    "comment",
    "keyword",
]
TOKEN_MODIFIERS = ["declaration", "defaultLibrary", "readonly"]
LEGEND = lsp.SemanticTokensLegend(token_types=TOKEN_TYPES, token_modifiers=TOKEN_MODIFIERS)

_BY_KIND = {
    "module": "namespace",
    "fn": "function",
    "layer": "class",
    "model": "class",
    "ctparam": "typeParameter",
    "dim": "typeParameter",
    "input": "parameter",
    "output": "parameter",
    "let": "variable",
    "loop": "variable",
    "param": "property",
    "buffer": "property",
}
_BY_BUILTIN = {
    "primitive": ("function", 2),
    "method": ("method", 2),
    "dtype": ("type", 2),
    "type": ("type", 2),
    "constant": ("enumMember", 2 | 4),
    "initializer": ("function", 2),
    "kwarg": ("parameter", 0),
    "Sequential": ("class", 2),
}


def semantic_tokens(a: Analysis) -> list[int]:
    bound, info = a.bound(), a.info
    if bound is None or info is None:
        return []
    found: list[tuple[int, int, int, int]] = []  # start, end, type, modifiers
    for occ in bound.occurrences:
        if occ.span.file != info.path:
            continue
        if occ.target is not None:
            kind = _BY_KIND.get(occ.target.kind)
            if kind is None:
                continue
            mods = 1 if occ.is_definition else 0
            found.append((occ.span.start, occ.span.end, TOKEN_TYPES.index(kind), mods))
        elif occ.builtin in _BY_BUILTIN:
            kind, mods = _BY_BUILTIN[occ.builtin]
            found.append((occ.span.start, occ.span.end, TOKEN_TYPES.index(kind), mods))
    comment = TOKEN_TYPES.index("comment")
    for c in info.tree.comments:
        found.append((c.span.start, c.span.end, comment, 0))
    found.sort()
    idx = line_index(a.text)
    data: list[int] = []
    prev_line = prev_char = 0
    last_end = -1
    for start, end, kind, mods in found:
        if start < last_end or "\n" in a.text[start:end]:
            continue  # overlapping or multi-line: LSP tokens are single-line and disjoint
        pos = idx.position(start)
        length = utf16_len(a.text[start:end])
        delta_char = pos.character - prev_char if pos.line == prev_line else pos.character
        data += [pos.line - prev_line, delta_char, length, kind, mods]
        prev_line, prev_char, last_end = pos.line, pos.character, end
    return data
