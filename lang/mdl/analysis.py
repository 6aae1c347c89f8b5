"""A file (and its unsaved text) -> what an editor asks about it.

`analyze` checks a file with the compiler's own front end (`driver.check_file`)
and keeps what it learnt: the diagnostics, the loaded modules, the elaborator's
types (AST node -> TensorType or compile-time value) and, on demand, the names
of each module tied to their definitions (analysis_bind.py). On top of that:
the name or expression at an offset, its type, the signature and doc comment
of a declaration, and the definitions and references of a name across the
files of a workspace and into the standard library.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any

from .analysis_bind import Bound, Definition, Occurrence, Tables, bind_module
from .diagnostics import Diagnostic
from .driver import Frontend, check_file
from .resolve import Loader, ModuleInfo
from .span import Span
from .syntax import ast
from .syntax.parser import ChunkCache
from .types import TensorType


@dataclass(eq=False)
class Analysis:
    path: str  # the file, resolved
    text: str
    front: Frontend
    loader: Loader
    loaded: int = 0  # diagnostics[:loaded] came from reading, parsing and imports
    partial: bool = False  # a quick check (analysis_quick.py): no types, no names
    _bound: dict[int, Bound] = field(default_factory=dict)
    _tables: Tables | None = None

    @property
    def diagnostics(self) -> list[Diagnostic]:
        return self.front.diagnostics

    @property
    def info(self) -> ModuleInfo | None:
        return self.loader.modules.get(self.path)

    @property
    def shown(self) -> str:
        """The file's name in spans and diagnostics."""
        info = self.info
        return info.path if info is not None else self.loader.display_path(Path(self.path))

    @property
    def tables(self) -> Tables:
        if self._tables is None:
            self._tables = Tables(self.loader.real_paths, self.loader.modules)
        return self._tables

    def bound(self, info: ModuleInfo | None = None) -> Bound | None:
        """Names of `info` (default: this file) tied to their definitions."""
        info = info or self.info
        if info is None:
            return None
        b = self._bound.get(id(info))
        if b is None:
            b = self._bound[id(info)] = bind_module(info, self.tables)
        return b

    def real_path(self, shown: str) -> str:
        return self.loader.real_paths.get(shown, shown)

    def source_of(self, shown: str) -> str | None:
        return self.loader.sources.get(shown)

    # ------------------------------------------------------------ what is where
    def occurrence_at(self, offset: int, strict: bool = False) -> Occurrence | None:
        b = self.bound()
        return b.at(offset, strict) if b is not None else None

    def decl_at(self, offset: int) -> ast.Decl | None:
        info = self.info
        if info is None:
            return None
        for item in info.tree.items:
            if isinstance(item, ast.Decl) and item.span.start <= offset <= item.span.end:
                return item
        return None

    def nodes_at(self, offset: int) -> list[Any]:
        """The AST nodes that hold the character at `offset`, outermost first."""
        decl = self.decl_at(offset)
        out: list[Any] = []
        node: Any = decl
        while node is not None:
            out.append(node)
            node = _child_at(node, offset)
        return out

    def type_of(self, node: Any) -> Any:
        return self.front.types.get(node)

    def typed_node_at(self, offset: int) -> tuple[Any, Any] | None:
        """The innermost expression at `offset` the checker gave a type or value."""
        for node in reversed(self.nodes_at(offset)):
            v = self.front.types.get(node)
            if v is not None:
                return node, v
        return None

    def definition_type(self, d: Definition) -> Any:
        """What the checker found for a definition (a `let` name, an input, a param)."""
        for candidate in (d.node, getattr(d.node, "name", None)):
            if candidate is not None and candidate in self.front.types:
                return self.front.types[candidate]
        return None

    def visible_at(self, offset: int) -> list[Definition]:
        """Local definitions usable at `offset`, a later one shadowing an earlier one."""
        b = self.bound()
        if b is None:
            return []
        seen: dict[str, Definition] = {}
        for d in b.definitions:
            lo, hi = d.visible
            if d.kind not in ("fn", "layer", "model") and lo <= offset <= hi:
                seen[d.name] = d
        return list(seen.values())


def analyze(
    path: str,
    text: str | None = None,
    *,
    overlays: dict[str, str] | None = None,
    cache: ChunkCache | None = None,
) -> Analysis:
    """Check `path` (with `text` standing for its contents) as `mdlc check` would."""
    real = str(Path(path).resolve())
    loader = Loader(dict(overlays or {}), cache)
    if text is not None:
        loader.overlays[real] = text
    loader.load_file(path)  # check_file finds it loaded; what loading found comes first
    loaded = len(loader.diagnostics)
    front = check_file(path, loader=loader)
    if text is None:
        text = loader.sources.get(loader.display_path(Path(path)), "")
    return Analysis(real, text, front, loader, loaded=loaded)


@dataclass(eq=False)
class WorkspaceIndex:
    """The names of a set of files and of everything they import."""

    bounds: list[Bound]
    sources: dict[str, str]  # shown path -> text

    def bound_of(self, shown: str) -> Bound | None:
        return next((b for b in self.bounds if b.info.path == shown), None)

    def references(self, key: tuple) -> list[tuple[Bound, Occurrence]]:
        """Every occurrence (definition included) of the definition with `key`."""
        out = []
        seen: set[tuple[str, int]] = set()
        for b in self.bounds:
            for occ in b.occurrences:
                if occ.target is not None and occ.target.key == key:
                    where = (b.path, occ.span.start)
                    if where not in seen:
                        seen.add(where)
                        out.append((b, occ))
        return out

    def declarations(self) -> list[Definition]:
        return [d for b in self.bounds for d in b.definitions if d.kind in ("fn", "layer", "model")]


def workspace_index(
    paths: list[str], overlays: dict[str, str] | None = None, cache: ChunkCache | None = None
) -> WorkspaceIndex:
    """Names of every file in `paths` and of all they import, for references and rename."""
    loader = Loader(dict(overlays or {}), cache)
    for p in paths:
        loader.load_file(p)
    tables = Tables(loader.real_paths, loader.modules)
    bounds = [bind_module(info, tables) for info in list(loader.modules.values())]
    return WorkspaceIndex(bounds, dict(loader.sources))


# ---------------------------------------------------------------- describing things
def decl_signature(decl: ast.Decl, source: str | None) -> str:
    """`layer Dense[In, Out, bias: bool = true](x: f32[*B, In]) -> f32[*B, Out]`."""
    if source is None:
        return f"{decl.kind} {decl.name.name}"
    head = source[decl.span.start : decl.body.span.start]
    head = re.sub(r"#[^\n]*", "", head)
    head = re.sub(r"\s*=\s*$", "", head.strip())
    head = re.sub(r"\s+", " ", head).replace("( ", "(").replace(", )", ")").replace(" )", ")")
    return head.replace("[ ", "[").replace(", ]", "]").replace(" ]", "]")


def describe_value(v: Any) -> str:
    """A type or compile-time value as a hover shows it."""
    from .dims import Dim
    from .values import FnRef, Instance, LayerRef, SequentialSpec, describe

    match v:
        case TensorType():
            return str(v)
        case Dim():
            return f"dim = {v}"
        case bool():
            return f"bool = {str(v).lower()}"
        case int() | float():
            return f"{type(v).__name__} = {v}"
        case Instance():
            spec = v.spec
            if isinstance(spec, LayerRef):
                return f"layer instance `{v.path}` of `{_ref_text(spec)}`"
            return f"layer instance `{v.path}` (Sequential of {len(v.children)})"
        case LayerRef() | FnRef():
            return f"{v.decl.kind} `{_ref_text(v)}`"
        case SequentialSpec():
            return f"Sequential of {len(v.children)} layers"
        case tuple() | list() if v and all(isinstance(x, TensorType | Dim | int) for x in v):
            inner = ", ".join(describe_value(x) for x in v)
            return f"({inner})" if isinstance(v, tuple) else f"[{inner}]"
    return describe(v)


def _ref_text(ref: Any) -> str:
    args = ref.ctargs
    if args is None or not (args.positional or args.keywords):
        return ref.decl.name.name
    parts = [_literal(a) for a in args.positional] + [
        f"{k}={_literal(v)}" for k, v in args.keywords
    ]
    return f"{ref.decl.name.name}[{', '.join(parts)}]"


def _literal(v: Any) -> str:
    return str(v).lower() if isinstance(v, bool) else str(v)


def span_contains(span: Span, offset: int) -> bool:
    return span.start <= offset <= span.end


def _child_at(node: Any, offset: int) -> Any:
    """The child node of `node` whose span holds `offset` (the narrowest, for touching spans)."""
    best = None
    for child in children(node):
        sp = getattr(child, "span", None)
        if sp is not None and sp.start <= offset < sp.end:
            if best is None or sp.end - sp.start <= best.span.end - best.span.start:
                best = child
    return best


def children(node: Any):
    if not is_dataclass(node):
        return
    for f in fields(node):
        value = getattr(node, f.name)
        if isinstance(value, tuple):
            for x in value:
                if isinstance(x, tuple):
                    yield from (y for y in x if is_dataclass(y))
                elif is_dataclass(x):
                    yield x
        elif is_dataclass(value) and not isinstance(value, Span):
            yield value
