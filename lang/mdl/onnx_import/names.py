"""ONNX names -> mdl names: module paths from PyTorch node names, identifiers from anything.

PyTorch's TorchScript exporter names each node after the module call it came
from: `/layer2/layer2.0/shortcut/shortcut.0/Conv` is the Conv of module
`layer2.0.shortcut.0`. Each path segment repeats its parent's name for
children of Sequential/ModuleList containers (`layer2` then `layer2.0`), so
the module path is rebuilt segment by segment. Initializers keep state-dict
names (`fc1.weight`) when torch did not rewrite them (`onnx::Conv_203`).
"""

from __future__ import annotations

import keyword
import re

from ..primitives.surface import SURFACE_NAMES
from .ir import Path

MDL_KEYWORDS = frozenset(
    "let if else for in return and or not true false import fn layer model param buffer from as"
    .split()
)  # fmt: skip
# names a generated `let` must not shadow: the code it generates calls them
RESERVED = (
    MDL_KEYWORDS
    | SURFACE_NAMES
    | frozenset("nn f16 bf16 f32 f64 i32 i64 bool inf nan pi None Sequential".split())
)
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def identifier(text: str, fallback: str = "v") -> str:
    """Any text -> a valid mdl identifier (ASCII letters, digits, `_`)."""
    out = re.sub(r"[^A-Za-z0-9_]+", "_", text).strip("_")
    if not out:
        out = fallback
    if out[0].isdigit():
        out = f"{fallback}{out}"
    if out in MDL_KEYWORDS or keyword.iskeyword(out):
        out = f"{out}_"
    return out


def segment(text: str) -> str:
    """A path segment: an identifier, or a list index (digits)."""
    return text if text.isdigit() and (text == "0" or text[0] != "0") else identifier(text)


def scope_of(node_name: str) -> Path:
    """`/blocks/blocks.0/conv1/Conv` -> ("blocks", "0", "conv1"); () for other names."""
    if not node_name.startswith("/"):
        return ()
    pieces = [p for p in node_name.split("/")[1:-1] if p]
    path: list[str] = []
    for piece in pieces:
        if path and piece.startswith(path[-1] + "."):
            piece = piece[len(path[-1]) + 1 :]
        path.extend(segment(s) for s in piece.split(".") if s)
    return tuple(path)


def state_dict_path(name: str) -> Path | None:
    """`blocks.0.ln1.weight` -> its path; None when the name is not a state-dict key."""
    parts = name.split(".")
    if len(parts) < 2 or not all(p.isdigit() or _IDENT.fullmatch(p) for p in parts):
        return None
    if parts[-1].isdigit() or any(p in MDL_KEYWORDS for p in parts):
        return None
    return tuple(parts)


def camel(path: Path) -> str:
    """A layer declaration name from a module path: ("layer2", "0") -> `Layer2`."""
    words = [p for p in path if not p.isdigit()] or ["Block"]
    last = words[-1]
    name = "".join(w[:1].upper() + w[1:] for w in re.split(r"_+", last) if w)
    return identifier(name or "Block", "Layer")


class NameTable:
    """Unique variable names within one scope, never shadowing what generated code calls."""

    def __init__(self, taken: set[str] | None = None):
        self.taken: set[str] = set(taken or ())

    def fresh(self, hint: str) -> str:
        base = identifier(hint)
        if base not in self.taken and base not in RESERVED:
            self.taken.add(base)
            return base
        i = 1
        while f"{base}_{i}" in self.taken or f"{base}_{i}" in RESERVED:
            i += 1
        self.taken.add(f"{base}_{i}")
        return f"{base}_{i}"
