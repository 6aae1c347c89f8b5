"""Scopes and frames of the elaborator: where names live while a body is evaluated."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .resolve import ModuleInfo


@dataclass(eq=False)
class Scope:
    parent: Scope | None
    vars: dict[str, Any] = field(default_factory=dict)

    def lookup(self, name: str) -> tuple[bool, Any]:
        s: Scope | None = self
        while s is not None:
            if name in s.vars:
                return True, s.vars[name]
            s = s.parent
        return False, None

    def assign(self, name: str, value: Any) -> bool:
        s: Scope | None = self
        while s is not None:
            if name in s.vars:
                s.vars[name] = value
                return True
            s = s.parent
        return False

    def names(self) -> list[str]:
        out: list[str] = []
        s: Scope | None = self
        while s is not None:
            out.extend(s.vars)
            s = s.parent
        return out


@dataclass(eq=False)
class Frame:
    """Where evaluation happens: the module, the layer instance path, the kind of body."""

    module: ModuleInfo
    path: str  # parameter path prefix: "" at model level, "blocks.0" inside an instance
    kind: str  # model, layer, fn
    anonymous: bool = False  # a layer called without a binding: may not declare params
