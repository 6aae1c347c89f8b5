"""Completion and signature help: an offset in a (possibly half-typed) file -> items.

The code around the cursor is usually incomplete, so the context (a member
after `name.`, the call or `[...]` the cursor is in and which argument) is
read from the text; names come from the analysis: locals visible at the
cursor, the module's top-level names and imports, primitives, keywords,
dtypes. When the declaration being typed does not parse, its locals are
found in its text instead.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from lsprotocol import types as lsp

from mdl.analysis import Analysis, decl_signature
from mdl.analysis_bind import KEYWORDS, TENSOR_METHODS, TYPE_NAMES
from mdl.resolve import ImportedDecl, ModuleInfo
from mdl.syntax import ast
from mdl.syntax.parser import split_chunks

_KIND = {
    "fn": lsp.CompletionItemKind.Function,
    "layer": lsp.CompletionItemKind.Class,
    "model": lsp.CompletionItemKind.Class,
    "module": lsp.CompletionItemKind.Module,
    "ctparam": lsp.CompletionItemKind.TypeParameter,
    "dim": lsp.CompletionItemKind.TypeParameter,
    "param": lsp.CompletionItemKind.Field,
    "buffer": lsp.CompletionItemKind.Field,
}
_DECL_NAME = re.compile(r"^(fn|layer|model)[ \t]+([A-Za-z_]\w*)", re.M)
_MEMBER = re.compile(r"([A-Za-z_]\w*)\.(\w*)$")
_CALLEE = re.compile(r"([A-Za-z_][\w.]*)\s*$")
_KWARG = re.compile(r"\s*([A-Za-z_]\w*)\s*=(?!=)")
_LOCALS = (
    re.compile(r"\blet\s+([A-Za-z_][\w\s,]*?)\s*="),
    re.compile(r"\bfor\s+([A-Za-z_]\w*)\s+in\b"),
    re.compile(r"\b(?:param|buffer)\s+([A-Za-z_]\w*)"),
    re.compile(r"[\[(,]\s*([A-Za-z_]\w*)\s*[:=,\])]"),
)


@dataclass(frozen=True)
class CallContext:
    bracket: str  # ( or [
    callee: str  # the text before the bracket: `nn.Dense`, `fc`, `x.reshape`
    arg_index: int  # which argument the cursor is in
    keyword: str | None  # the keyword of that argument, if typed
    typed_keywords: tuple[str, ...]


@dataclass(frozen=True)
class Callee:
    label: str
    params: tuple[tuple[str, str, str], ...]  # (name, label, doc)


def call_context(text: str, offset: int) -> CallContext | None:
    """The innermost open `(` or `[` before `offset` in the current statement, if any."""
    start = max(0, text.rfind("\n\n", 0, offset))
    lines = text[start:offset].split("\n")
    code = "\n".join(line.split("#", 1)[0] for line in lines)  # no strings in mdl: `#` is a comment
    depth = 0
    commas: list[int] = []
    for i in range(len(code) - 1, -1, -1):
        ch = code[i]
        if ch in ")]}":
            depth += 1
        elif ch in "([{":
            if depth == 0:
                if ch == "{":
                    return None
                m = _CALLEE.search(code[:i])
                if m is None:
                    return None
                inner = code[i + 1 :]
                pieces = _split_top(inner)
                kws = tuple(k.group(1) for p in pieces[:-1] if (k := _KWARG.match(p)))
                current = _KWARG.match(pieces[-1])
                return CallContext(
                    ch, m.group(1), len(commas), current.group(1) if current else None, kws
                )
            depth -= 1
        elif ch == "," and depth == 0:
            commas.append(i)
    return None


def _split_top(text: str) -> list[str]:
    parts, depth, cur = [], 0, []
    for ch in text:
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return parts


# ---------------------------------------------------------------- what a callee is
def resolve_callee(a: Analysis, offset: int, ctx: CallContext) -> Callee | None:
    parts = ctx.callee.split(".")
    info = a.info
    target = None
    if len(parts) == 1:
        name = parts[0]
        bound = a.bound()
        for d in a.visible_at(offset):
            if d.name == name:
                target = bound.callees.get(d) if bound is not None else None
                break
        else:
            target = _global_decl(info, name) if info is not None else None
        if target is None:
            return _primitive_callee(name, ctx, method=False)
    elif len(parts) == 2 and info is not None:
        mod = info.names.get(parts[0])
        if isinstance(mod, ModuleInfo):
            target = _global_decl(mod, parts[1])
        else:
            return _primitive_callee(parts[1], ctx, method=True)
    if not isinstance(target, ast.Decl):
        return None
    src = a.source_of(target.span.file) or ""
    if ctx.bracket == "[":
        nodes = [(c.name.name, c) for c in target.ctparams or ()]
    else:
        nodes = [(p.name.name, p) for p in target.params]
    params = tuple(
        (name, " ".join(src[n.span.start : n.span.end].split()) or name, "") for name, n in nodes
    )
    return Callee(decl_signature(target, src), params)


def _global_decl(info: ModuleInfo, name: str) -> ast.Decl | None:
    v = info.names.get(name)
    if isinstance(v, ImportedDecl):
        return v.decl
    return v if isinstance(v, ast.Decl) else None


def _primitive_callee(name: str, ctx: CallContext, method: bool) -> Callee | None:
    from mdl.primitives.registry import REQUIRED
    from mdl.primitives.surface import SIGNATURES, resolve

    if ctx.bracket != "(" or name not in SIGNATURES:
        return None
    prim = resolve(name, ctx.arg_index + 1 + int(method), frozenset(ctx.typed_keywords))
    if prim is None:
        return None
    shown = {v: k for k, v in prim.extra.get("aliases", {}).items()}
    params = []
    for p in prim.params[int(method) :]:
        label = shown.get(p.name, p.name)
        if p.default is not REQUIRED:
            label += f"={_literal(p.default)}"
        params.append((shown.get(p.name, p.name), label, p.doc))
    sig = f"{name}({', '.join(p[1] for p in params)})"
    return Callee(sig if method or len(SIGNATURES[name]) > 200 else SIGNATURES[name], tuple(params))


def _literal(v) -> str:
    if isinstance(v, bool):
        return str(v).lower()
    return str(v)


# ---------------------------------------------------------------- completion
def complete(a: Analysis, text: str, offset: int) -> list[lsp.CompletionItem]:
    line_start = text.rfind("\n", 0, offset) + 1
    prefix = text[line_start:offset]
    if "#" in prefix:
        return []
    member = _MEMBER.search(prefix)
    if member is not None and not prefix[: member.start()].rstrip().endswith(("fn", "layer")):
        return _members(a, member.group(1))
    items: list[lsp.CompletionItem] = []
    ctx = call_context(text, offset)
    if ctx is not None:
        callee = resolve_callee(a, offset, ctx)
        if callee is not None:
            for name, label, doc in callee.params:
                if name in ctx.typed_keywords:
                    continue
                items.append(
                    lsp.CompletionItem(
                        label=f"{name}=",
                        kind=lsp.CompletionItemKind.Field,
                        detail=label,
                        documentation=doc or None,
                        sort_text=f"0{name}",
                        insert_text=f"{name}=",
                    )
                )
    items.extend(_names(a, text, offset))
    return items


def _members(a: Analysis, base: str) -> list[lsp.CompletionItem]:
    from mdl.primitives.surface import SIGNATURES

    info = a.info
    mod = info.names.get(base) if info is not None else None
    if isinstance(mod, ModuleInfo):
        out = []
        for name, v in mod.names.items():
            if isinstance(v, ast.Decl):
                src = a.source_of(v.span.file)
                out.append(
                    lsp.CompletionItem(
                        label=name,
                        kind=_KIND[v.kind],
                        detail=decl_signature(v, src),
                        documentation=v.doc,
                    )
                )
        return out
    items = [
        lsp.CompletionItem(label=m, kind=lsp.CompletionItemKind.Property) for m in TENSOR_METHODS
    ]
    items += [
        lsp.CompletionItem(label=n, kind=lsp.CompletionItemKind.Method, detail=sig)
        for n, sig in SIGNATURES.items()
    ]
    return items


def _names(a: Analysis, text: str, offset: int) -> list[lsp.CompletionItem]:
    from mdl.elaborate import BUILTIN_CONSTANTS
    from mdl.primitives.surface import SIGNATURES
    from mdl.types import DType

    items: dict[str, lsp.CompletionItem] = {}

    def add(label: str, kind: lsp.CompletionItemKind, detail: str | None = None, rank: str = "1"):
        if label not in items:
            items[label] = lsp.CompletionItem(
                label=label, kind=kind, detail=detail, sort_text=f"{rank}{label}"
            )

    if a.decl_at(offset) is not None:
        for d in a.visible_at(offset):
            add(d.name, _KIND.get(d.kind, lsp.CompletionItemKind.Variable), d.kind)
    else:
        for name in _locals_in_text(text, offset):
            add(name, lsp.CompletionItemKind.Variable)
    info = a.info
    for name, v in info.names.items() if info is not None else ():
        if isinstance(v, ModuleInfo):
            add(name, lsp.CompletionItemKind.Module, "module")
        else:
            decl = v.decl if isinstance(v, ImportedDecl) else v
            add(name, _KIND[decl.kind], decl_signature(decl, a.source_of(decl.span.file)))
    for m in _DECL_NAME.finditer(text):  # declarations that do not parse now
        add(m.group(2), _KIND[m.group(1)], m.group(1))
    for name, sig in SIGNATURES.items():
        add(name, lsp.CompletionItemKind.Function, sig, "2")
    for name in BUILTIN_CONSTANTS:
        add(name, lsp.CompletionItemKind.Constant, None, "2")
    add("Sequential", lsp.CompletionItemKind.Class, "Sequential[Layer, ...]", "2")
    for d in DType:
        add(d.value, lsp.CompletionItemKind.TypeParameter, "dtype", "3")
    for name in TYPE_NAMES:
        add(name, lsp.CompletionItemKind.TypeParameter, "compile-time kind", "3")
    for kw in KEYWORDS:
        add(kw, lsp.CompletionItemKind.Keyword, None, "3")
    return list(items.values())


def _locals_in_text(text: str, offset: int) -> list[str]:
    """Names bound in the declaration around `offset`, read from its text (it does not parse)."""
    chunk = ""
    for start, _ in split_chunks(text):
        if start <= offset:
            chunk = text[start:offset]
    names: list[str] = []
    for pattern in _LOCALS:
        for m in pattern.finditer(chunk):
            names.extend(n.strip() for n in m.group(1).split(",") if n.strip().isidentifier())
    return [n for n in dict.fromkeys(names) if n not in KEYWORDS]


# ---------------------------------------------------------------- signature help
def signature_help(a: Analysis, text: str, offset: int) -> lsp.SignatureHelp | None:
    ctx = call_context(text, offset)
    if ctx is None:
        return None
    callee = resolve_callee(a, offset, ctx)
    if callee is None:
        return None
    params = [
        lsp.ParameterInformation(label=label, documentation=doc or None)
        for _, label, doc in callee.params
    ]
    active = ctx.arg_index
    if ctx.keyword is not None:
        names = [p[0] for p in callee.params]
        active = names.index(ctx.keyword) if ctx.keyword in names else len(names)
    return lsp.SignatureHelp(
        signatures=[lsp.SignatureInformation(label=callee.label, parameters=params)],
        active_signature=0,
        active_parameter=min(active, max(len(params) - 1, 0)) if params else None,
    )
