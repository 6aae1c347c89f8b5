"""Source positions: a `Span` names a range of text in one file.

Lines and columns are 1-based; `end_col` is exclusive. Offsets are character
offsets into the decoded text (0-based, end exclusive).
"""

from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Span:
    file: str
    line: int
    col: int
    end_line: int
    end_col: int
    start: int = 0
    end: int = 0

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"

    def to(self, other: Span) -> Span:
        """The span from the start of `self` to the end of `other`."""
        return Span(
            self.file, self.line, self.col, other.end_line, other.end_col, self.start, other.end
        )


class SourceFile:
    """A file's text with a line index, for turning offsets into spans."""

    def __init__(self, path: str, text: str):
        self.path = path
        self.text = text
        self._starts: list[int] | None = None

    @property
    def line_starts(self) -> list[int]:
        if self._starts is None:
            starts = [0]
            starts.extend(m.end() for m in re.finditer("\n", self.text))
            self._starts = starts
        return self._starts

    def line(self, n: int) -> str:
        lines = self.text.split("\n")
        return lines[n - 1].rstrip("\r") if 1 <= n <= len(lines) else ""

    def span(self, start: int, end: int, starts: list[int] | None = None) -> Span:
        starts = starts or self.line_starts
        line = bisect_right(starts, start)
        end_line = bisect_right(starts, max(end, start))
        return Span(
            self.path,
            line,
            start - starts[line - 1] + 1,
            end_line,
            end - starts[end_line - 1] + 1,
            start,
            end,
        )
