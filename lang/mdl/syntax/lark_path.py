"""Declaration text -> Lark's parse tree, or the syntax diagnostic Lark's error state gives.

The slow path of parser.py: Lark itself parses a declaration that fastparse.py rejected,
so every syntax error is described from Lark's own view of the parse (what it expected,
the open brackets of the postlexer). Lark is imported and set up on first use only.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Any

from ..diagnostics import Diagnostic, Label
from ..span import SourceFile, Span
from .postlex import MismatchedBracket, NestingTooDeep, Postlexer

if TYPE_CHECKING:
    from lark import Token
    from lark.exceptions import UnexpectedInput

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

    import lark

    key = hashlib.sha256(f"{lark.__version__}\n{grammar}".encode()).hexdigest()[:16]
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    folder = os.path.join(base, "mdl")
    try:
        os.makedirs(folder, exist_ok=True)
        probe = os.path.join(folder, f".probe-{os.getpid()}")
        with open(probe, "wb"):
            pass
        os.unlink(probe)
    except OSError:
        return False  # a read-only home: build the grammar each time
    return os.path.join(folder, f"grammar-{key}.lark-cache")


class _Parser:
    """Lark's parser of mdl: for declarations fastparse rejects, and its error state."""

    def __init__(self) -> None:
        from lark import Lark

        from .tables import grammar_text, lark_options

        grammar = grammar_text()
        self.postlexer = Postlexer()
        self.comments: list[Token] = []
        self.lark = Lark(
            grammar,
            postlex=self.postlexer,
            lexer_callbacks={"COMMENT": self.comments.append},
            cache=_cache_path(grammar),
            **lark_options(),
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


def lark_parse_chunk(src: Any, chunk: str, build: Any):
    """`build(src, tree, comment_tokens)` makes the items of a tree Lark parsed."""
    from lark.exceptions import UnexpectedInput

    p = _parser()
    try:
        tree, comment_tokens = p.parse(chunk)
    except NestingTooDeep as e:
        sp = token_span(src, e.token)
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
    return build(src, tree, comment_tokens)


def token_span(src: SourceFile, tok: Token) -> Span:
    start = tok.start_pos or 0
    return src.span(start, tok.end_pos if tok.end_pos is not None else start)


def meta_span(src: SourceFile, tree) -> Span:
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
    from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedToken

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
        sp = token_span(src, tok)
        if stack and stack[-1].value in "([" and stack[-1].line < (tok.line or 0):
            opener = stack[-1]
            return Diagnostic(
                "E0007",
                f"unclosed `{opener.value}`",
                token_span(src, opener),
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
    whole = getattr(src, "_src", src).text  # a parser._ChunkSource: the whole file's text
    offset = getattr(src, "_offset", 0)
    at_file_end = not whole[offset + end :].strip()
    what = "file" if at_file_end else "declaration"
    if stack:
        opener = stack[-1]
        osp = token_span(src, opener)
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
    sp = token_span(src, e.token)
    if e.opener is None:
        return Diagnostic(
            "E0008", f"unexpected closing `{e.token.value}`", sp, label="no bracket is open here"
        )
    osp = token_span(src, e.opener)
    return Diagnostic(
        "E0008",
        f"mismatched closing `{e.token.value}`",
        sp,
        label=f"does not close `{e.opener.value}`",
        labels=(Label(osp, f"`{e.opener.value}` opened here"),),
    )
