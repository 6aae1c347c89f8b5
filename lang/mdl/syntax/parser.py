"""Source text -> `ast.Module` plus syntax diagnostics.

The file is split at top-level declarations (a line starting in column 0 with
`fn`, `layer`, `model`, `import` or `from`) and each declaration is parsed on
its own, so one syntax error does not hide the others and an editor can reuse
the declarations an edit did not touch. Positions stay exact: each chunk is
parsed after a blanked copy of the text before it.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import fields, is_dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

from lark import Lark, Token
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from ..diagnostics import Diagnostic, Label
from ..span import SourceFile, Span
from . import ast
from .build import MAX_DEPTH, TooDeep, build_items, tree_depth
from .postlex import MismatchedBracket, NestingTooDeep, Postlexer

MAX_SOURCE_BYTES = 16 * 1024 * 1024
_DECL_START = re.compile(r"^(?:fn|layer|model|import|from)[ \t]", re.M)

_TERMINAL_WORDS = {
    "NAME": "identifier",
    "INT": "integer",
    "FLOAT": "number",
    "_NL": "newline",
    "COMP_OP": "comparison",
    "ADD_OP": "`+` or `-`",
    "MUL_OP": "`*`, `/`, `@` or `%`",
    "POW": "`**`",
    "$END": "end of file",
}


def _cache_path(grammar: str) -> str | bool:
    """Where Lark keeps its analysed grammar (it takes ~0.6 s to build), per grammar and lark version."""
    import hashlib
    import os
    import tempfile

    import lark

    key = hashlib.sha256(f"{lark.__version__}\n{grammar}".encode()).hexdigest()[:16]
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    folder = os.path.join(base, "mdl")
    try:
        os.makedirs(folder, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=folder, delete=True)
        probe.close()
    except OSError:
        return False  # a read-only home: build the grammar each time
    return os.path.join(folder, f"grammar-{key}.lark-cache")


class _Parser:
    def __init__(self) -> None:
        grammar = resources.files("mdl.syntax").joinpath("grammar.lark").read_text("utf-8")
        self.postlexer = Postlexer()
        self.comments: list[Token] = []
        self.lark = Lark(
            grammar,
            parser="lalr",
            lexer="contextual",
            postlex=self.postlexer,
            propagate_positions=True,
            maybe_placeholders=True,
            lexer_callbacks={"COMMENT": self.comments.append},
            strict=False,
            cache=_cache_path(grammar),
        )
        self.words = dict(_TERMINAL_WORDS)
        for term in self.lark.terminals:
            if term.pattern.type == "str":
                self.words.setdefault(term.name, f"`{term.pattern.value}`")

    def parse(self, text: str):
        self.postlexer.text = text
        self.comments.clear()
        tree = self.lark.parse(text)
        return tree, list(self.comments)


@lru_cache(maxsize=1)
def _parser() -> _Parser:
    return _Parser()


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
    p = _parser()
    src: Any = _ChunkSource(whole, offset, chunk)
    try:
        tree, comment_tokens = p.parse(chunk)
    except NestingTooDeep as e:
        sp = _token_span(src, e.token)
        return (
            [],
            [],
            [
                Diagnostic(
                    "E0006",
                    f"brackets nested more than {200} deep",
                    sp,
                    label="too deep here",
                    help="split the expression with `let` bindings",
                )
            ],
        )
    except MismatchedBracket as e:
        return [], [], [_mismatched(src, e)]
    except UnexpectedInput as e:
        return [], [], [_syntax_error(src, len(chunk), p, e)]
    comments = [ast.Comment(t.value, _token_span(src, t)) for t in comment_tokens]
    depth, deepest = tree_depth(tree)
    if depth > MAX_DEPTH:
        sp = _meta_span(src, deepest)
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


def _token_span(src: SourceFile, tok: Token) -> Span:
    start = tok.start_pos or 0
    return src.span(start, tok.end_pos if tok.end_pos is not None else start)


def _meta_span(src: SourceFile, tree) -> Span:
    meta = getattr(tree, "meta", None)
    if meta is None or meta.empty:
        return src.span(0, 0)
    return src.span(meta.start_pos, meta.end_pos)


def _describe(tok: Token) -> str:
    if tok.type == "$END":
        return "end of file"
    if tok.type == "_NL":
        return "newline"
    return f"`{tok.value}`"


_OPERATOR_WORDS = frozenset(
    {
        "`(`",
        "`[`",
        "`.`",
        "`..`",
        "`**`",
        "`+` or `-`",
        "`*`, `/`, `@` or `%`",
        "comparison",
        "`and`",
        "`or`",
    }
)


def _expected_words(p: _Parser, names: set[str]) -> str:
    names = {n for n in names if n not in ("COMMENT",)}
    words = {p.words.get(n, n.lower()) for n in names}
    head: list[str] = []
    if {"NAME", "INT", "FLOAT"} <= names and len(names) > 6:
        head.append("an expression")
        words = {w for w in words if w in ("`)`", "`]`", "`}`", "newline", "`,`")}
    operators = words & _OPERATOR_WORDS
    if len(operators) >= 3:
        head.append("an operator")
        words -= operators
    items = head + sorted(words)
    if len(items) == 1:
        return items[0]
    if len(items) > 8:
        items = items[:8] + ["..."]
    return ", ".join(items[:-1]) + " or " + items[-1]


def _syntax_error(src: SourceFile, end: int, p: _Parser, e: UnexpectedInput) -> Diagnostic:
    stack = p.postlexer.stack
    if isinstance(e, UnexpectedCharacters):
        pos = e.pos_in_stream or 0
        ch = src.text[pos] if pos < len(src.text) else ""
        sp = src.span(pos, pos + 1)
        if ch in "\"'":
            return Diagnostic(
                "E0003", f"unexpected character `{ch}`", sp, label="strings are not part of mdl"
            )
        if ch == "\t" or ch.isspace():
            return Diagnostic("E0003", f"unexpected whitespace character U+{ord(ch):04X}", sp)
        shown = ch if ch.isprintable() else f"U+{ord(ch):04X}"
        return Diagnostic("E0003", f"unexpected character `{shown}`", sp)
    if isinstance(e, UnexpectedToken):
        tok = e.token
        try:
            expected = set(e.interactive_parser.accepts())
        except Exception:  # accepts() replays the parser; fall back to Lark's estimate
            expected = set(e.expected)
        if tok.type == "$END":
            return _unexpected_eof(src, end, stack, expected, p)
        sp = _token_span(src, tok)
        if stack and stack[-1].value in "([" and stack[-1].line < (tok.line or 0):
            opener = stack[-1]
            return Diagnostic(
                "E0007",
                f"unclosed `{opener.value}`",
                _token_span(src, opener),
                label=f"`{opener.value}` opened here is never closed",
                labels=(Label(sp, f"expected `{_CLOSERS[opener.value]}` before this"),),
            )
        if tok.type == "_NL":
            sp = src.span(tok.start_pos, tok.start_pos)
        message = f"expected {_expected_words(p, expected)}, found {_describe(tok)}"
        notes: tuple[str, ...] = ()
        help_ = None
        if tok.type == "NAME" and tok.value in ("def", "function", "func", "class"):
            help_ = "declare functions with `fn`, layers with `layer` and models with `model`"
        if tok.type == "EQUAL" and "COMP_OP" in expected:
            help_ = "compare with `==`"
        return Diagnostic(
            "E0004", message, sp, label=f"unexpected {_describe(tok)}", notes=notes, help=help_
        )
    if isinstance(e, UnexpectedEOF):
        return _unexpected_eof(src, end, stack, set(e.expected), p)
    sp = src.span(0, 0)
    return Diagnostic("E0004", "syntax error", sp)


_CLOSERS = {"(": ")", "[": "]", "{": "}"}


def _unexpected_eof(
    src: Any, end: int, stack: list[Token], expected: set[str], p: _Parser
) -> Diagnostic:
    last = p.postlexer.last
    at = last.end_pos if last is not None and last.end_pos is not None else 0
    sp = src.span(at, at)
    # declarations are parsed one at a time: the text may go on after this one
    whole = src._src.text if isinstance(src, _ChunkSource) else src.text
    offset = src._offset if isinstance(src, _ChunkSource) else 0
    at_file_end = not whole[offset + end :].strip()
    what = "file" if at_file_end else "declaration"
    if stack:
        opener = stack[-1]
        osp = _token_span(src, opener)
        return Diagnostic(
            "E0007",
            f"unclosed `{opener.value}`",
            osp,
            label=f"`{opener.value}` opened here is never closed",
            labels=(Label(sp, f"the {what} ends here"),),
        )
    notes = (
        ()
        if at_file_end
        else (
            "a line starting in column 1 with `fn`, `layer`, `model`, `import` or `from` "
            "begins the next declaration",
        )
    )
    return Diagnostic(
        "E0005",
        f"unexpected end of {what}, expected {_expected_words(p, expected)}",
        sp,
        label=f"expected {_expected_words(p, expected)} after this",
        notes=notes,
    )


def _mismatched(src: SourceFile, e: MismatchedBracket) -> Diagnostic:
    sp = _token_span(src, e.token)
    if e.opener is None:
        return Diagnostic(
            "E0008", f"unexpected closing `{e.token.value}`", sp, label="no bracket is open here"
        )
    osp = _token_span(src, e.opener)
    return Diagnostic(
        "E0008",
        f"mismatched closing `{e.token.value}`",
        sp,
        label=f"does not close `{e.opener.value}`",
        labels=(Label(osp, f"`{e.opener.value}` opened here"),),
    )


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
