"""Declaration text -> parse tree (Node/Tok), the tree Lark would build, without importing Lark.

Runs the tables of syntax/tables.py: Lark's contextual lexer (per parser state, the same
combined regex, keyword retyping and line counting), the postlexer of syntax/postlex.py, the
LALR(1) loop, and Lark's tree shaping with `propagate_positions` (a node spans from its first
to its last child, counting tokens the tree drops; a `?rule` or `(expr)` that passes a child
through widens only that child's "container" span, which its parent then uses).

Each token is first matched with the root scanner (all terminals, one regex); a state's
own scanner is compiled and asked only where its answer could differ (tables._guards), so a
run compiles 2-3 regexes instead of ~30.

Only the path of a valid declaration is here: on any error `parse` returns None and
parser.py lets Lark parse the declaration again, so every syntax diagnostic still comes
from Lark's own error state. tests/syntax/test_parser_cache*.py compare both trees.
"""

from __future__ import annotations

import re
from typing import Any

from .postlex import Postlexer


class Tok:
    """A token: what Lark's Token carries (`type`, `value`, positions); `str(tok)` is its text."""

    __slots__ = (
        "type",
        "value",
        "start_pos",
        "line",
        "column",
        "end_line",
        "end_column",
        "end_pos",
    )

    def __init__(self, type_, value, start_pos, line, column, end_line, end_column, end_pos):
        self.type = type_
        self.value = value
        self.start_pos = start_pos
        self.line = line
        self.column = column
        self.end_line = end_line
        self.end_column = end_column
        self.end_pos = end_pos

    def __str__(self) -> str:
        return self.value

    def __repr__(self) -> str:
        return f"Tok({self.type!r}, {self.value!r})"


class Node:
    """A parse-tree node: `data`, `children` and Lark's meta fields (`meta` is the node)."""

    __slots__ = (
        "data",
        "children",
        "empty",
        "line",
        "column",
        "start_pos",
        "end_line",
        "end_column",
        "end_pos",
        "c_line",
        "c_column",
        "c_start_pos",
        "c_end_line",
        "c_end_column",
        "c_end_pos",
    )

    def __init__(self, data: str, children: list) -> None:
        self.data = data
        self.children = children
        self.empty = True

    @property
    def meta(self) -> Node:
        return self

    def __repr__(self) -> str:
        return f"Node({self.data!r}, {self.children!r})"


class _Rule:
    __slots__ = ("name", "origin", "size", "expand1", "keep", "append_none", "passes_child")

    def __init__(self, name, origin, size, expand1, keep, append_none) -> None:
        self.name = name
        self.origin = origin
        self.size = size
        self.expand1 = expand1
        self.keep = [tuple(k) for k in keep] if keep is not None else None
        self.append_none = append_none
        # `?rule: child` hands its one child on unchanged: a token as it is, a node with
        # positions keeps them (its container is its own), one without gets none
        self.passes_child = size == 1 and expand1 and keep in (None, [[0, False, 0]])
        self.passes_child = self.passes_child and not append_none


class _Lexer:
    __slots__ = ("patterns", "compiled", "unless", "ignore", "newline", "guards")

    def __init__(self, spec: dict[str, Any]) -> None:
        self.patterns = spec["patterns"]
        self.compiled: list[re.Pattern[str]] | None = None  # compiled on first use, as Lark does
        self.unless = spec["unless"]
        self.ignore = frozenset(spec["ignore"])
        self.newline = frozenset(spec["newline"])
        # terminal -> strings that overrule the root scanner's match (tables._guards)
        guards = spec["guards"]
        self.guards: dict[str, tuple[str, ...]] = (
            {name: tuple(g) for name, g in guards.items()} if guards is not None else {}
        )

    def regexes(self) -> list[re.Pattern[str]]:
        if self.compiled is None:
            self.compiled = [re.compile(p) for p in self.patterns]
        return self.compiled

    def match(self, root: list[re.Pattern[str]], text: str, pos: int) -> re.Match[str] | None:
        """What this state's scanner matches at `pos`, asking the root scanner first."""
        for regex in root:
            m = regex.match(text, pos)
            if m:
                break
        guard = self.guards.get(m.lastgroup) if m else None  # type: ignore[arg-type]
        if guard is None or (guard and any(text.startswith(s, pos) for s in guard)):
            for regex in self.compiled or self.regexes():
                m = regex.match(text, pos)
                if m:
                    return m
            return None
        return m


class FastParser:
    def __init__(self, tables: dict[str, Any]) -> None:
        self.start_state: int = tables["start_state"]
        self.end_state: int = tables["end_state"]
        self.actions: list[dict[str, int]] = tables["actions"]
        self.rules = [_Rule(*r) for r in tables["rules"]]
        lexers = [_Lexer(spec) for spec in tables["lexers"]]
        self.state_lexer = [lexers[i] for i in tables["state_lexer"]]
        self.comment_types = frozenset(tables["comment_types"])
        self.root_patterns: list[str] = tables["root_patterns"]
        self.root: list[re.Pattern[str]] | None = None

    def parse(self, text: str) -> tuple[Node, list[Tok], int] | None:
        """(tree, comment tokens, a bound on the tree's depth), or None if the text does not
        parse (or anything else fails)."""
        comments: list[Tok] = []
        reductions = [0]
        try:
            return self._parse(text, comments, reductions), comments, reductions[0]
        except Exception:  # the caller asks Lark, which reports the error exactly
            return None

    def _parse(self, text: str, comments: list[Tok], reductions: list[int]) -> Node:
        """`reductions[0]`: how many reductions may have made a node (at least the depth)."""
        states = [self.start_state]
        values: list[Any] = []
        actions = self.actions
        rules = self.rules
        postlexer = Postlexer()  # per parse: nothing shared between two parses
        postlexer.text = text
        for tok in postlexer.process(self._lex(text, states, comments)):
            ttype = tok.type
            while True:
                code = actions[states[-1]][ttype]  # KeyError: a syntax error, Lark reports it
                if not code & 1:
                    states.append(code >> 1)
                    values.append(tok)
                    break
                rule = rules[code >> 1]
                if rule.passes_child:
                    states[-1] = actions[states[-2]][rule.origin] >> 1
                    continue
                size = rule.size
                if size:
                    children = values[-size:]
                    del states[-size:]
                    del values[-size:]
                else:
                    children = []
                states.append(actions[states[-1]][rule.origin] >> 1)
                values.append(_reduce(rule, children))
                reductions[0] += 1
        end_state = self.end_state
        while True:
            code = actions[states[-1]]["$END"]
            if not code & 1:
                raise ValueError("shift of $END")
            rule = rules[code >> 1]
            size = rule.size
            if size:
                children = values[-size:]
                del states[-size:]
                del values[-size:]
            else:
                children = []
            states.append(actions[states[-1]][rule.origin] >> 1)
            values.append(_reduce(rule, children))
            reductions[0] += 1
            if states[-1] == end_state:
                return values[-1]

    def root_scanner(self) -> list[re.Pattern[str]]:
        if self.root is None:
            self.root = [re.compile(p) for p in self.root_patterns]
        return self.root

    def _lex(self, text: str, states: list[int], comments: list[Tok]):
        """Lark's ContextualLexer + LineCounter: the lexer of the parser's current state."""
        state_lexer = self.state_lexer
        comment_types = self.comment_types
        root = self.root or self.root_scanner()
        pos = 0
        line = 1
        line_start = 0
        end = len(text)
        while pos < end:
            lexer = state_lexer[states[-1]]
            m = lexer.match(root, text, pos)
            if m is None:
                raise ValueError("no token matches")  # Lark raises UnexpectedCharacters
            value = m.group(0)
            ttype = m.lastgroup
            column = pos - line_start + 1
            start = pos
            start_line = line
            if ttype in lexer.newline:
                n = value.count("\n")
                if n:
                    line += n
                    line_start = pos + value.rindex("\n") + 1
            pos += len(value)
            ignored = ttype in lexer.ignore
            if ignored and ttype not in comment_types:
                continue
            tok = Tok(ttype, value, start, start_line, column, line, pos - line_start + 1, pos)
            if ignored:
                comments.append(tok)
                continue
            retype = lexer.unless.get(ttype)
            if retype is not None:
                tok.type = retype.get(value, ttype)
            yield tok


def _reduce(rule: _Rule, children: list) -> Any:
    """Lark's ChildFilterLALR, ExpandSingleChild and PropagatePositions for one reduction."""
    keep = rule.keep
    if keep is None:
        kept = children
    else:
        kept = []
        for i, inline, nones in keep:
            if nones:
                kept += [None] * nones
            if inline:
                if kept:
                    kept += children[i].children
                else:
                    kept = children[i].children
            else:
                kept.append(children[i])
        if rule.append_none:
            kept += [None] * rule.append_none
    if rule.expand1 and len(kept) == 1:
        res = kept[0]
        if type(res) is not Node:
            return res
    else:
        res = Node(rule.name, kept)
    # positions: from the first and the last child that has any (tokens the tree drops count)
    for first in children:
        kind = type(first)
        if kind is Tok:
            line, column, start = first.line, first.column, first.start_pos
            break
        if kind is Node and not first.empty:
            line, column, start = first.c_line, first.c_column, first.c_start_pos
            break
    else:
        return res
    for i in range(len(children) - 1, -1, -1):
        last = children[i]
        kind = type(last)
        if kind is Tok:
            end_line, end_column, end = last.end_line, last.end_column, last.end_pos
            break
        if kind is Node and not last.empty:
            end_line, end_column, end = last.c_end_line, last.c_end_column, last.c_end_pos
            break
    if res.empty:
        res.line, res.column, res.start_pos = line, column, start
        res.end_line, res.end_column, res.end_pos = end_line, end_column, end
        res.empty = False
    res.c_line, res.c_column, res.c_start_pos = line, column, start
    res.c_end_line, res.c_end_column, res.c_end_pos = end_line, end_column, end
    return res
