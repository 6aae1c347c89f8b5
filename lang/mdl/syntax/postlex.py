"""Token stream -> token stream with only the newlines that end statements.

Newlines separate statements, except: inside `(` and `[` (a `{` inside them
makes newlines count again), after a token that cannot end a statement
(an operator, `,`, `=`, `->`, `.`, `:`, `{`), and before a line that starts
with `else` or `.name`. Runs of newlines collapse into one. The bracket stack
also gives "unclosed `(`" errors and a nesting limit.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # Lark's Token or fastparse.Tok; importing Lark costs start-up time
    from lark import Token

MAX_NESTING = 200

_CONTINUES = frozenset(
    "+ - * / // @ % ** == != < <= > >= .. , = -> . : { ( [ and or not in".split()
)
_OPEN = {"(": ")", "[": "]", "{": "}"}
_CLOSE = {")": "(", "]": "[", "}": "{"}
_NEXT_LINE_JOINS = re.compile(r"(?:[ \t\f]*(?:#[^\n]*)?\r?\n)*[ \t\f]*(else\b|\.(?!\.))")


class NestingTooDeep(Exception):
    def __init__(self, token: Token):
        super().__init__("nesting too deep")
        self.token = token


class MismatchedBracket(Exception):
    def __init__(self, token: Token, opener: Token | None):
        super().__init__("mismatched bracket")
        self.token = token
        self.opener = opener


class Postlexer:
    always_accept = ("_NL",)

    def __init__(self) -> None:
        self.text = ""
        self.stack: list[Token] = []
        self.last: Token | None = None  # the last token passed on (not a newline)

    def process(self, stream: Iterator[Token]) -> Iterator[Token]:
        self.stack = []
        self.last = None
        stack = self.stack
        prev: Token | None = None
        for tok in stream:
            if tok.type == "_NL":
                if prev is None or prev.type == "_NL":
                    continue
                if stack and stack[-1].value != "{":
                    continue
                if prev.value in _CONTINUES and prev.type not in ("NAME",):
                    continue
                if _NEXT_LINE_JOINS.match(self.text, tok.end_pos or 0):
                    continue
                prev = tok
                yield tok
                continue
            value = tok.value
            if value in _OPEN and tok.type != "NAME":
                stack.append(tok)
                if len(stack) > MAX_NESTING:
                    raise NestingTooDeep(tok)
            elif value in _CLOSE:
                if stack and stack[-1].value == _CLOSE[value]:
                    stack.pop()
                else:
                    raise MismatchedBracket(tok, stack[-1] if stack else None)
            prev = tok
            self.last = tok
            yield tok
