"""Layout documents -> text: a Wadler-style pretty printer for `mdlc fmt`.

format.py turns the AST into a `Doc` tree; `render` picks, group by group and
outermost first, whether each group fits flat on the rest of its line or must
break. Every `Line` the printer may break is a place where the mdl grammar
lets a statement continue (after `(`, `[`, `,`, an operator or `{`, before
`)`, `]`, `}` or `.name`), so a layout choice never changes the parse.

A group that holds a hard line break (a comment, a multi-line block) is broken
whatever its width, and so is every group around it: that makes the result a
function of the tree alone, which is what keeps `fmt(fmt(x)) == fmt(x)`.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections import defaultdict
from dataclasses import dataclass

from .syntax import ast

INDENT = 4


@dataclass(frozen=True, slots=True)
class Text:
    text: str
    forced: bool = False


@dataclass(frozen=True, slots=True)
class Line:
    """A break: `flat` is printed when the enclosing group fits, else a newline."""

    flat: str = " "
    hard: bool = False

    @property
    def forced(self) -> bool:
        return self.hard


@dataclass(frozen=True, slots=True)
class Concat:
    parts: tuple[Doc, ...]
    forced: bool


@dataclass(frozen=True, slots=True)
class Indent:
    body: Doc
    forced: bool


@dataclass(frozen=True, slots=True)
class Group:
    body: Doc
    forced: bool


@dataclass(frozen=True, slots=True)
class IfBreak:
    """`broken` when the enclosing group breaks, else `flat` (a trailing comma)."""

    broken: str
    flat: str = ""
    forced: bool = False


@dataclass(frozen=True, slots=True)
class LineSuffix:
    """Text held back until the end of the line: a trailing comment."""

    text: str
    forced: bool = True  # a comment ends its line, so the group around it breaks


Doc = Text | Line | Concat | Indent | Group | IfBreak | LineSuffix

LINE = Line(" ")
SOFT = Line("")
HARD = Line("", hard=True)
EMPTY = Text("")


def concat(*parts: Doc | str) -> Doc:
    docs = tuple(Text(p) if isinstance(p, str) else p for p in parts)
    return Concat(docs, any(d.forced for d in docs))


def indent(*parts: Doc | str) -> Doc:
    body = concat(*parts)
    return Indent(body, body.forced)


def group(*parts: Doc | str) -> Doc:
    body = concat(*parts)
    return Group(body, body.forced)


def join(sep: Doc | str, docs: list[Doc]) -> Doc:
    parts: list[Doc | str] = []
    for i, d in enumerate(docs):
        if i:
            parts.append(sep)
        parts.append(d)
    return concat(*parts)


_FLAT, _BREAK = False, True


def render(doc: Doc, width: int = 100) -> str:
    """Lay out `doc` in `width` columns; lines carry no trailing whitespace."""
    out: list[str] = []
    column = 0
    suffixes: list[str] = []
    stack: list[tuple[int, bool, Doc]] = [(0, _BREAK, doc)]
    while stack:
        ind, mode, d = stack.pop()
        match d:
            case Text(text=text):
                out.append(text)
                column += len(text)
            case Concat(parts=parts):
                stack.extend((ind, mode, p) for p in reversed(parts))
            case Indent(body=body):
                stack.append((ind + INDENT, mode, body))
            case Group(body=body, forced=forced):
                if mode == _FLAT and not forced:
                    stack.append((ind, _FLAT, body))
                else:
                    flat = not forced and _fits(body, stack, width - column)
                    stack.append((ind, _FLAT if flat else _BREAK, body))
            case IfBreak(broken=broken, flat=flat):
                text = broken if mode == _BREAK else flat
                out.append(text)
                column += len(text)
            case LineSuffix(text=text):
                suffixes.append(text)
            case Line(flat=flat, hard=hard):
                if mode == _FLAT and not hard:
                    out.append(flat)
                    column += len(flat)
                elif suffixes:
                    stack.append((ind, mode, d))
                    stack.extend((ind, mode, Text(s)) for s in reversed(suffixes))
                    suffixes.clear()
                else:
                    out.append("\n" + " " * ind)
                    column = ind
    out.extend(suffixes)
    return "\n".join(line.rstrip() for line in "".join(out).split("\n"))


def _fits(body: Doc, rest: list[tuple[int, bool, Doc]], room: int) -> bool:
    """Does `body`, flat, plus what follows it up to the next line break fit in `room`?"""
    todo: list[tuple[bool, Doc]] = [(_FLAT, body)]
    next_rest = len(rest)
    while room >= 0:
        if not todo:
            if next_rest == 0:
                return True
            next_rest -= 1
            _, mode, d = rest[next_rest]
            todo.append((mode, d))
            continue
        mode, d = todo.pop()
        match d:
            case Text(text=text):
                room -= len(text)
            case Concat(parts=parts):
                todo.extend((mode, p) for p in reversed(parts))
            case Indent(body=inner):
                todo.append((mode, inner))
            case Group(body=inner, forced=forced):
                todo.append((_BREAK if forced else mode, inner))
            case IfBreak(broken=broken, flat=flat):
                room -= len(broken if mode == _BREAK else flat)
            case Line(flat=flat, hard=hard):
                if mode == _BREAK or hard:
                    return True
                room -= len(flat)
            case LineSuffix():
                pass
    return False


# ---------------------------------------------------------------- comments
@dataclass
class CommentMap:
    """Where each comment goes, keyed by node (or (node, tag) for a node's brackets).

    `leading`: own-line comments above an item, with "a blank line was above it";
    `trailing`: the comment at the end of an item's last line; `opening`: the
    comment after an open bracket or `{`; `dangling`: own-line comments before a
    closer, or at the end of the file; `hoisted`: comments from spots that have
    no line of their own (inside a type, after `=`), moved above the statement.
    """

    leading: dict[object, list[tuple[str, bool]]]
    trailing: dict[object, str]
    opening: dict[object, str]
    dangling: dict[object, list[tuple[str, bool]]]
    hoisted: dict[object, list[str]]


def attach_comments(module: ast.Module, source: str) -> CommentMap:
    return _Attacher(source, module.comments).run(module)


_BRACKETS = re.compile(r"[()\[\]{}]")


class _Attacher:
    """Walks the tree once, handing each comment to the innermost spot that can hold it."""

    def __init__(self, source: str, comments: tuple[ast.Comment, ...]):
        self.source = source
        self.lines = source.split("\n")
        self.line_starts = [0, *(m.end() for m in re.finditer("\n", source))]
        # the text with comments blanked out, so bracket matching sees code only
        chars = list(source)
        for c in comments:
            chars[c.span.start : c.span.end] = " " * (c.span.end - c.span.start)
        self.code = "".join(chars)
        self.comments = sorted(comments, key=lambda c: c.span.start)
        self.map = CommentMap(defaultdict(list), {}, {}, defaultdict(list), defaultdict(list))

    def run(self, module: ast.Module) -> CommentMap:
        self.sequence(module, list(module.items), self.comments, None, None)
        return self.map

    def blank_before(self, line: int) -> bool:
        return line >= 2 and not self.lines[line - 2].strip()

    def sequence(self, key, items, comments, open_line, hoist) -> None:
        """Comments among `items` (statements, or the items between brackets).

        A comment on the line where an item ends trails it; one on the line of
        the opening bracket follows the bracket; any other one sits on its own
        line above the next item, or before the closer. `hoist` is None where
        each item is a statement that takes the comments found inside it.
        """
        starts = [it.span.start for it in items]
        inside: dict[int, list[ast.Comment]] = defaultdict(list)
        for c in comments:
            i = bisect_right(starts, c.span.start) - 1
            if i >= 0 and c.span.start < items[i].span.end:
                inside[i].append(c)
                continue
            prev = items[i] if i >= 0 else None
            after = items[i + 1] if i + 1 < len(items) else None
            text = c.text.rstrip()
            if prev is not None and c.span.line == prev.span.end_line:
                self.map.trailing[prev] = text
            elif prev is None and c.span.line == open_line:
                self.map.opening[key] = text
            elif after is not None:
                self.map.leading[after].append((text, self.blank_before(c.span.line)))
            else:
                self.map.dangling[key].append((text, self.blank_before(c.span.line)))
        for i, cs in inside.items():
            self.node(items[i], cs, items[i] if hoist is None else hoist)

    def node(self, n, comments, hoist) -> None:
        """Comments inside node `n`: to a child that holds them, else above `hoist`."""
        if isinstance(n, ast.Block):
            items = [*n.stmts, *([n.value] if n.value is not None else [])]
            self.sequence(n, items, comments, n.span.line, None)
            return
        children, brackets = self.parts(n)
        for c in comments:
            pos = c.span.start
            child = next((ch for ch in children if ch.span.start <= pos < ch.span.end), None)
            if child is not None:
                self.node(child, [c], hoist)
                continue
            region = next((b for b in brackets if b[2] < pos < b[3]), None)
            if region is not None:
                key, items, open_at, _ = region
                self.sequence(key, items, [c], self.line_of(open_at), hoist)
                continue
            self.map.hoisted[hoist].append(c.text.rstrip())

    def parts(self, n) -> tuple[list, list[tuple[object, list, int, int]]]:
        """The child nodes of `n` that can hold comments, and its bracketed item lists."""
        match n:
            case ast.Decl():
                return [n.body], self.decl_brackets(n)
            case ast.Let() | ast.Assign() | ast.ExprStmt():
                return [n.value], []
            case ast.Return():
                return list(n.values), []
            case ast.For():
                return [n.iterable, n.body], []
            case ast.ParamDecl():
                return [x for x in (n.init,) if x is not None], []
            case ast.Binary():
                return [n.left, n.right], []
            case ast.Unary():
                return [n.operand], []
            case ast.Attribute():
                return [n.value], []
            case ast.Call():
                return [n.func], [self.closed_by(n.span.end - 1, (n, "("), list(n.args))]
            case ast.Subscript():
                return [n.value], [self.closed_by(n.span.end - 1, (n, "["), list(n.items))]
            case ast.ListLit() | ast.TupleLit():
                return [], [self.closed_by(n.span.end - 1, n, list(n.items))]
            case ast.ListComp():
                return [n.element, n.iterable], []
            case ast.IfExpr():
                return [n.cond, n.then, n.orelse], []
            case ast.Arg() | ast.CtParam():
                value = n.value if isinstance(n, ast.Arg) else n.default
                return [x for x in (value,) if x is not None], []
            case ast.SliceItem():
                return [x for x in (n.start, n.stop, n.step) if x is not None], []
            case ast.Param():
                return [x for x in (*(n.index_range or ()), n.default) if x is not None], []
        return [], []

    def line_of(self, offset: int) -> int:
        return bisect_right(self.line_starts, offset)

    def closed_by(self, close: int, key, items) -> tuple[object, list, int, int]:
        depth = 0
        for pos in range(close, -1, -1):
            ch = self.code[pos]
            if ch in ")]}":
                depth += 1
            elif ch in "([{":
                depth -= 1
                if depth == 0:
                    return key, items, pos, close
        raise AssertionError("unbalanced brackets in parsed code")

    def decl_brackets(self, d: ast.Decl) -> list[tuple[object, list, int, int]]:
        """The `[..]`, `(..)` and `-> (..)` lists of a declaration header."""
        found = []
        pos = d.name.span.end
        wanted = []
        if d.ctparams is not None:
            wanted.append(("[", (d, "ct"), list(d.ctparams)))
        wanted.append(("(", (d, "params"), list(d.params)))
        if isinstance(d.ret, tuple):
            wanted.append(("(", (d, "ret"), list(d.ret)))
        for opener, key, items in wanted:
            open_at = self.code.index(opener, pos)
            close = self.matching(open_at)
            found.append((key, items, open_at, close))
            pos = close + 1
        return found

    def matching(self, open_at: int) -> int:
        depth = 0
        for m in _BRACKETS.finditer(self.code, open_at):
            depth += 1 if m.group() in "([{" else -1
            if depth == 0:
                return m.start()
        raise AssertionError("unbalanced brackets in parsed code")
