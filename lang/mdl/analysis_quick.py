"""A previous analysis + the text after an edit -> diagnostics fast, before the full check.

After an edit inside one declaration of a big file, the whole-file check (the
model elaborated with every layer it instantiates) takes a while. The quick
check parses the file through the shared parse cache (only changed
declarations are parsed again), checks each changed `fn` and `layer` on its
own as `mdlc` checks a declaration no model reaches (generic.py), and keeps
the previous check's findings for the unchanged declarations, moved to where
they now are. An editor shows these at once and the full check's when it
finishes; a finding the edit causes elsewhere (a model that now calls a
changed layer wrongly) waits for the full check. When a model or an import
changed there is no quick check (None): only the full check can say.
"""

from __future__ import annotations

from dataclasses import fields, is_dataclass, replace

from .analysis import Analysis
from .diagnostics import Diagnostic
from .driver import Frontend
from .resolve import Loader
from .span import Span
from .syntax import ast
from .syntax.parser import ChunkCache, shifted, split_chunks


def quick_check(
    previous: Analysis,
    text: str,
    overlays: dict[str, str] | None = None,
    cache: ChunkCache | None = None,
) -> Analysis | None:
    if previous.partial or previous.info is None:
        return None
    old_pool: dict[str, list[int]] = {}
    for offset, chunk in split_chunks(previous.text):
        old_pool.setdefault(chunk, []).append(offset)
    moved: list[tuple[int, int, int]] = []  # (old start, old end, new start) of unchanged chunks
    changed: list[tuple[int, int]] = []  # new ranges of changed chunks
    for offset, chunk in split_chunks(text):
        if old_pool.get(chunk):
            old = old_pool[chunk].pop(0)
            moved.append((old, old + len(chunk), offset))
        elif chunk.strip():
            changed.append((offset, offset + len(chunk)))
    # unchanged declarations come back from the cache where they were: reported spans in
    # them are moved below, which is cheaper than moving every node of the file
    loader = Loader(dict(overlays or {}), cache.unshifted() if cache is not None else None)
    loader.overlays[previous.path] = text
    info = loader.load_file(previous.path)
    if info is None:
        return None
    # a declaration the cache handed back unchanged is the very object the previous check saw
    seen = {id(item) for item in previous.info.tree.items}
    edited = [item for item in info.tree.items if id(item) not in seen]
    if any(not isinstance(d, ast.Decl) or d.kind == "model" for d in edited):
        return None  # imports and models: only the full check knows their consequences
    place = _Relocator(previous, moved, changed, text, info, edited)
    diags = [place.diagnostic(d) for d in loader.diagnostics]
    loaded = len(diags)
    diags += _moved(previous, moved, text)
    diags += [place.diagnostic(d) for d in _check_alone(edited, info, loader)]
    front = Frontend(diags, loader.sources, module=info)
    return Analysis(previous.path, text, front, loader, loaded=loaded, partial=True)


def _moved(previous: Analysis, moved: list[tuple[int, int, int]], text: str) -> list[Diagnostic]:
    """The previous check's findings in unchanged declarations, at their new places."""
    shown = previous.shown
    old_text = previous.text
    out = []
    for d in previous.diagnostics[previous.loaded :]:
        if d.span is None or d.span.file != shown:
            out.append(d)
            continue
        for lo, hi, new in moved:
            if lo <= d.span.start < hi and all(
                lab.span.file != shown or lo <= lab.span.start < hi for lab in d.labels
            ):
                lines = text.count("\n", 0, new) - old_text.count("\n", 0, lo)
                out.append(shifted(d, lines, new - lo) if (lines, new - lo) != (0, 0) else d)
                break
    return out


class _Relocator:
    """Spans from unchanged declarations are where those were in the previous text: move them.

    What came from the new text (the edited declarations, a fresh parse) is already in
    place. Which is which is known by identity where possible: the cache hands back the
    previous check's own node and diagnostic objects for unchanged declarations.
    """

    def __init__(self, previous: Analysis, moved, changed, text: str, info, edited):
        self.shown = previous.shown
        self.old_text = previous.text
        self.text = text
        self.moved = moved
        self.changed = changed
        self.stale_diags = {id(d) for d in previous.diagnostics[: previous.loaded]}
        self.fresh = _span_ids(edited)
        self.edited = {id(e) for e in edited}
        self._info = info
        self._stale: set[int] | None = None

    def stale(self, sp) -> bool:
        if id(sp) in self.fresh:
            return False
        if self._stale is None:
            unchanged = [i for i in self._info.tree.items if id(i) not in self.edited]
            self._stale = _span_ids(unchanged)
        if id(sp) in self._stale:
            return True
        return not any(lo <= sp.start < hi for lo, hi in self.changed)

    def span(self, sp, stale: bool | None):
        if sp is None or sp.file != self.shown:
            return sp
        if not (self.stale(sp) if stale is None else stale):
            return sp
        for lo, hi, new in self.moved:
            if lo <= sp.start < hi:
                lines = self.text.count("\n", 0, new) - self.old_text.count("\n", 0, lo)
                return shifted(sp, lines, new - lo)
        return sp

    def diagnostic(self, d: Diagnostic) -> Diagnostic:
        stale = True if id(d) in self.stale_diags else None
        return replace(
            d,
            span=self.span(d.span, stale),
            labels=tuple(replace(lab, span=self.span(lab.span, stale)) for lab in d.labels),
            fixes=tuple(replace(f, span=self.span(f.span, stale)) for f in d.fixes),
        )


def _span_ids(nodes) -> set[int]:
    """Identities of every span object in `nodes` and below."""
    out: set[int] = set()
    stack = list(nodes)
    while stack:
        node = stack.pop()
        if isinstance(node, tuple):
            stack.extend(node)
            continue
        names = _NODE_FIELDS.get(type(node))
        if names is None:
            if not is_dataclass(node):
                continue
            names = _NODE_FIELDS[type(node)] = tuple(f.name for f in fields(node))
        for n in names:
            v = getattr(node, n)
            if isinstance(v, Span):
                out.add(id(v))
            elif v is not None and not isinstance(v, str | int | float):
                stack.append(v)
    return out


_NODE_FIELDS: dict[type, tuple[str, ...]] = {}


def _check_alone(edited: list[ast.Decl], info, loader: Loader) -> list[Diagnostic]:
    """Each edited fn and layer checked on its own, as if no model reached it."""
    if not edited:
        return []
    from .elaborate import Elaborator
    from .generic import check_unused

    el = Elaborator()
    el.reached = {d for d in info.tree.items if isinstance(d, ast.Decl) and d not in edited}
    check_unused(el, info, loader)
    return el.diags
