"""Source text -> `ast.Module` plus syntax diagnostics.

The file is split at top-level declarations (a line starting in column 0 with
`fn`, `layer`, `model`, `import` or `from`) and each declaration is parsed on
its own, so one syntax error does not hide the others and an editor can reuse
the declarations an edit did not touch. Positions stay exact: each chunk is
parsed after a blanked copy of the text before it.

A declaration is parsed by fastparse.py from Lark's prebuilt tables (no Lark at
start-up); one that does not parse is parsed again by Lark itself (lark_path.py),
whose error state gives the diagnostic.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import fields, is_dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from ..diagnostics import Diagnostic
from ..span import SourceFile, Span
from . import ast
from .build import MAX_DEPTH, TooDeep, build_items, tree_depth
from .lark_path import lark_parse_chunk, meta_span, token_span

if TYPE_CHECKING:
    from .fastparse import FastParser

MAX_SOURCE_BYTES = 16 * 1024 * 1024
_DECL_START = re.compile(r"^(?:fn|layer|model|import|from)[ \t]", re.M)


@lru_cache(maxsize=1)
def _fast_parser() -> FastParser | None:
    from .fastparse import FastParser
    from .tables import load_tables

    tables = load_tables()
    return FastParser(tables) if tables is not None else None


def decode_source(data: bytes, path: str) -> tuple[str | None, list[Diagnostic]]:
    """Bytes -> text, or a diagnostic for input that is not mdl source at all."""
    if len(data) > MAX_SOURCE_BYTES:
        return None, [
            Diagnostic(
                "E0012",
                f"source file is larger than {MAX_SOURCE_BYTES} bytes",
                Span(path, 1, 1, 1, 1),
            )
        ]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        src = SourceFile(path, data[: e.start].decode("utf-8", "replace"))
        sp = src.span(len(src.text), len(src.text))
        return None, [
            Diagnostic(
                "E0001",
                f"invalid UTF-8 byte 0x{data[e.start]:02x} at byte offset {e.start}",
                sp,
                help="save the file as UTF-8",
            )
        ]
    if text.startswith("\ufeff"):
        text = text[1:]
    return text, []


def split_chunks(text: str) -> list[tuple[int, str]]:
    """(offset, text) of each top-level declaration; the first may hold only comments."""
    starts = [_with_leading_comments(text, m.start()) for m in _DECL_START.finditer(text)]
    if not starts or starts[0] != 0:
        starts.insert(0, 0)
    bounds = starts + [len(text)]
    return [(bounds[i], text[bounds[i] : bounds[i + 1]]) for i in range(len(starts))]


def _with_leading_comments(text: str, start: int) -> int:
    """Move a declaration's start up over the comment lines directly above it."""
    while start > 0:
        prev = text.rfind("\n", 0, start - 1) + 1
        if not text[prev:start].startswith("#"):
            break
        start = prev
    return start


def parse(
    text: str, path: str = "<input>", cache: ChunkCache | None = None
) -> tuple[ast.Module, list[Diagnostic]]:
    """`cache` (editors) reuses the declarations an edit did not touch; see ChunkCache."""
    src = SourceFile(path, text)
    diags: list[Diagnostic] = []
    nul = text.find("\0")
    if nul >= 0:
        diags.append(
            Diagnostic(
                "E0002",
                "source file contains a NUL byte",
                src.span(nul, nul + 1),
                help="remove the NUL byte; mdl source is plain text",
            )
        )
        text = text.replace("\0", " ")
        src = SourceFile(path, text)
    items: list[ast.Item] = []
    comments: list[ast.Comment] = []
    for offset, chunk in split_chunks(text):
        if not chunk.strip():
            continue
        if cache is None:
            chunk_items, chunk_comments, chunk_diags = parse_chunk(src, offset, chunk)
        else:
            chunk_items, chunk_comments, chunk_diags = cache.parse_chunk(src, offset, chunk)
        items.extend(chunk_items)
        comments.extend(chunk_comments)
        diags.extend(chunk_diags)
    whole = src.span(0, len(text))
    return ast.Module(path, tuple(items), tuple(comments), whole), diags


class _ChunkSource:
    """One declaration's text, making spans in the whole file (offsets shifted).

    Declarations start at the beginning of a line, so columns need no shift.
    """

    def __init__(self, src: SourceFile, offset: int, chunk: str):
        self.path = src.path
        self.text = chunk
        self._src = src
        self._offset = offset
        self.offset = offset
        self.line_shift = bisect_right(src.line_starts, offset) - 1  # lines before the chunk

    @property
    def line_starts(self) -> list[int]:
        return self._src.line_starts

    def span(self, start: int, end: int, starts: list[int] | None = None) -> Span:
        return self._src.span(start + self._offset, end + self._offset, starts)


def parse_chunk(whole: SourceFile, offset: int, chunk: str):
    src: Any = _ChunkSource(whole, offset, chunk)
    fast = _fast_parser()
    parsed = fast.parse(chunk) if fast is not None else None
    if parsed is None:
        return lark_parse_chunk(src, chunk, _build_chunk)
    return _build_chunk(src, *parsed)


def _build_chunk(src: Any, tree: Any, comment_tokens: list[Any], depth_bound: int | None = None):
    """`depth_bound`: at least the tree's depth (fastparse counts the nodes it made)."""
    comments = [ast.Comment(t.value, token_span(src, t)) for t in comment_tokens]
    shallow = depth_bound is not None and depth_bound <= MAX_DEPTH  # no need to measure
    depth, deepest = (0, tree) if shallow else tree_depth(tree)
    if depth > MAX_DEPTH:
        sp = meta_span(src, deepest)
        return (
            [],
            comments,
            [
                Diagnostic(
                    "E0006",
                    f"expression nested more than {MAX_DEPTH} deep",
                    sp,
                    help="split the expression with `let` bindings",
                )
            ],
        )
    try:
        items, diags = build_items(tree, src, comments)
    except TooDeep as e:
        return [], comments, [Diagnostic("E0006", "expression nested too deep", e.span)]
    return items, comments, diags


class ChunkCache:
    """Parsed declarations keyed by their text, for an editor that re-parses after each edit.

    A declaration whose text is unchanged is not parsed again: its nodes and diagnostics are
    reused, with their spans moved to where the declaration now starts (declarations begin at
    the start of a line, so only lines and offsets move). The one thing a declaration's parse
    takes from outside its text, whether only blank text follows it, is part of the key.
    """

    def __init__(self, max_entries: int = 4096):
        self.max_entries = max_entries
        self._entries: dict[tuple[str, str, bool], tuple[int, int, tuple]] = {}

    def unshifted(self) -> _Unshifted:
        """A view that returns unchanged declarations where they were last parsed, not moved:
        for a quick look that relocates what it reports itself (mdl.analysis_quick)."""
        return _Unshifted(self)

    def parse_chunk(self, whole: SourceFile, offset: int, chunk: str, shift: bool = True):
        at_end = not whole.text[offset + len(chunk) :].strip()
        key = (whole.path, chunk, at_end)
        line_shift = bisect_right(whole.line_starts, offset) - 1
        hit = self._entries.get(key)
        if hit is not None and not shift:
            return hit[2]
        self._entries.pop(key, None)
        if hit is None:
            result = parse_chunk(whole, offset, chunk)
        else:
            old_offset, old_shift, result = hit
            if (old_offset, old_shift) != (offset, line_shift):
                result = shifted(result, line_shift - old_shift, offset - old_offset)
        self._entries[key] = (offset, line_shift, result)  # most recently used last
        while len(self._entries) > self.max_entries:
            del self._entries[next(iter(self._entries))]
        return result


class _Unshifted:
    def __init__(self, cache: ChunkCache):
        self.cache = cache

    def parse_chunk(self, whole: SourceFile, offset: int, chunk: str):
        return self.cache.parse_chunk(whole, offset, chunk, shift=False)


def shifted(obj: Any, lines: int, chars: int) -> Any:
    """A copy of `obj` (nodes, diagnostics, lists of them) with every span moved."""

    def move(o: Any) -> Any:
        t = type(o)
        if t is Span:
            return Span(
                o.file,
                o.line + lines,
                o.col,
                o.end_line + lines,
                o.end_col,
                o.start + chars,
                o.end + chars,
            )
        if t is tuple:
            return tuple([move(x) for x in o])
        if t is list:
            return [move(x) for x in o]
        names = _FIELDS.get(t, _UNKNOWN)
        if names is _UNKNOWN:
            names = _FIELDS[t] = tuple(f.name for f in fields(t)) if is_dataclass(t) else None
        if names is None:
            return o  # text, numbers, enums
        return t(*[move(getattr(o, n)) for n in names])

    return move(obj)


_UNKNOWN: Any = object()
_FIELDS: dict[type, tuple[str, ...] | None] = {str: None, int: None, float: None, bool: None}
