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

from dataclasses import dataclass

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
