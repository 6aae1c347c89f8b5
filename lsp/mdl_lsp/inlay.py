"""Inlay hints: the inferred type after each `let` name and after each layer call.

Types are the checker's (the elaborator's side table); a call's hint is left
out when the call is the whole value of a `let`, whose name already shows it.
"""

from __future__ import annotations

from lsprotocol import types as lsp

from mdl.analysis import Analysis, children
from mdl.syntax import ast
from mdl.types import TensorType
from mdl.values import Instance, LayerRef, SequentialSpec

from .diagnostics import line_index


def inlay_hints(a: Analysis, start: int, end: int) -> list[lsp.InlayHint]:
    info = a.info
    if info is None:
        return []
    idx = line_index(a.text)
    out: list[lsp.InlayHint] = []

    def hint(offset: int, text: str) -> None:
        if start <= offset <= end:
            out.append(
                lsp.InlayHint(
                    position=idx.position(offset),
                    label=text,
                    kind=lsp.InlayHintKind.Type,
                    padding_left=False,
                )
            )

    def walk(node, let_value=None) -> None:
        match node:
            case ast.Let():
                for name in node.names:
                    t = a.type_of(name)
                    if isinstance(t, TensorType):
                        hint(name.span.end, f": {t}")
                walk(node.value, node.value if len(node.names) == 1 else None)
                return
            case ast.Call() if node is not let_value and _is_layer_call(a, node):
                t = a.type_of(node)
                if isinstance(t, TensorType):
                    hint(node.span.end, f" -> {t}")
        for child in children(node):
            walk(child)

    for item in info.tree.items:
        if isinstance(item, ast.Decl) and item.span.end >= start and item.span.start <= end:
            walk(item)
    return out


def _is_layer_call(a: Analysis, call: ast.Call) -> bool:
    func = call.func
    target = func.value if isinstance(func, ast.Subscript) else func
    bound = a.bound()
    node = target.attr if isinstance(target, ast.Attribute) else target
    occ = bound.of_node(node) if bound is not None else None
    if occ is None or occ.target is None:
        return False
    d = occ.target
    if d.kind == "layer":
        return True
    value = a.type_of(node)
    if value is None:
        value = a.definition_type(d)
    return isinstance(value, Instance | SequentialSpec) or (
        isinstance(value, LayerRef) and value.decl.kind == "layer"
    )
