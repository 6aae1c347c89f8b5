"""Character offsets and spans <-> LSP positions and ranges (UTF-16 code units by default).

mdl spans count characters (code points); LSP counts UTF-16 code units unless
client and server agree on another encoding at initialisation, so a character
outside the Basic Multilingual Plane is two units (and `é` two in UTF-8).
"""

from __future__ import annotations

from bisect import bisect_right

from lsprotocol import types as lsp

from mdl.span import Span


class LineIndex:
    def __init__(self, text: str):
        self.text = text
        self.starts = [0]
        for i, ch in enumerate(text):
            if ch == "\n":
                self.starts.append(i + 1)

    def _line_text(self, line: int) -> str:
        start = self.starts[line]
        end = self.starts[line + 1] - 1 if line + 1 < len(self.starts) else len(self.text)
        return self.text[start:end]

    def position(self, offset: int) -> lsp.Position:
        offset = max(0, min(offset, len(self.text)))
        line = bisect_right(self.starts, offset) - 1
        before = self.text[self.starts[line] : offset]
        return lsp.Position(line=line, character=utf16_len(before))

    def offset(self, pos: lsp.Position) -> int:
        if pos.line >= len(self.starts):
            return len(self.text)
        line_text = self._line_text(pos.line)
        units = 0
        for i, ch in enumerate(line_text):
            if units >= pos.character:
                return self.starts[pos.line] + i
            units += char_units(ch)
        return self.starts[pos.line] + len(line_text.rstrip("\r"))

    def range(self, start: int, end: int) -> lsp.Range:
        return lsp.Range(start=self.position(start), end=self.position(max(start, end)))

    def span_range(self, span: Span | None) -> lsp.Range:
        if span is None:
            return lsp.Range(
                start=lsp.Position(line=0, character=0), end=lsp.Position(line=0, character=0)
            )
        return self.range(span.start, span.end)

    def whole(self) -> lsp.Range:
        return self.range(0, len(self.text))


ENCODING = {"units": "utf-16"}  # what the client and server agreed on (set at initialisation)


def char_units(ch: str) -> int:
    match ENCODING["units"]:
        case "utf-8":
            return len(ch.encode("utf-8"))
        case "utf-32":
            return 1
    return 2 if ord(ch) > 0xFFFF else 1


def utf16_len(text: str) -> int:
    """The length of `text` in the agreed units (UTF-16 code units by default)."""
    if text.isascii():
        return len(text)
    return sum(char_units(ch) for ch in text)
