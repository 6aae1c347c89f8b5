"""Diagnostics: the one shape every stage reports problems in.

A `Diagnostic` has a code from `codes.CODES`, a severity, a lower-case message
without a final period, a primary span with an optional label, secondary
labels, notes, a help line and mechanical fixes (span + replacement text).
Stages collect diagnostics and go on where they can; `MdlError` carries them
out of the public API.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from .span import Span


class Severity(Enum):
    ERROR = "error"
    WARNING = "warning"
    NOTE = "note"


@dataclass(frozen=True, slots=True)
class Label:
    span: Span
    message: str = ""


@dataclass(frozen=True, slots=True)
class Fix:
    """A mechanical replacement: put `new_text` where `span` is."""

    span: Span
    new_text: str


@dataclass(frozen=True, slots=True)
class Diagnostic:
    code: str
    message: str
    span: Span | None = None
    label: str = ""
    severity: Severity = Severity.ERROR
    labels: tuple[Label, ...] = ()
    notes: tuple[str, ...] = ()
    help: str | None = None
    fixes: tuple[Fix, ...] = ()

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR

    def __str__(self) -> str:
        where = f"{self.span}: " if self.span else ""
        return f"{where}{self.severity.value}[{self.code}]: {self.message}"


@dataclass
class DiagnosticSink:
    """Collects diagnostics from a stage; `has_errors` tells whether to go on."""

    items: list[Diagnostic] = field(default_factory=list)

    def add(self, d: Diagnostic) -> None:
        self.items.append(d)

    def extend(self, ds: list[Diagnostic] | tuple[Diagnostic, ...]) -> None:
        self.items.extend(ds)

    @property
    def has_errors(self) -> bool:
        return any(d.is_error for d in self.items)


class MdlError(Exception):
    """The one exception the public API raises; `diagnostics` says why."""

    def __init__(self, diagnostics: list[Diagnostic] | tuple[Diagnostic, ...]):
        self.diagnostics = tuple(diagnostics)
        first = self.diagnostics[0] if self.diagnostics else None
        super().__init__(str(first) if first else "mdl error")

    def __str__(self) -> str:
        return "\n".join(str(d) for d in self.diagnostics) or "mdl error"
