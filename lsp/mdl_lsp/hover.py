"""Hover: an offset in an analysed file -> markdown.

A declaration (fn, layer, model) shows its signature and doc comment; a
primitive its signature and documentation from the registry; a binding or
expression the dtype and symbolic shape the checker found (or the
compile-time value, for a dim, a layer instance, ...).
"""

from __future__ import annotations

import inspect

from mdl.analysis import Analysis, decl_signature, describe_value
from mdl.analysis_bind import Definition, Occurrence

_KIND_WORDS = {
    "ctparam": "compile-time argument",
    "input": "input",
    "output": "output",
    "dim": "dim",
    "let": "let",
    "loop": "loop variable",
    "param": "param",
    "buffer": "buffer",
}
_METHODS = {
    "T": "`x.T`: the tensor with its last two axes swapped",
    "shape": "`x.shape`: the dims of the tensor, a tuple",
    "ndim": "`x.ndim`: the rank of the tensor",
    "dtype": "`x.dtype`: the element type of the tensor",
}


def hover_markdown(a: Analysis, offset: int) -> str | None:
    occ = a.occurrence_at(offset, strict=True)
    if occ is not None:
        text = _occurrence(a, occ)
        if text:
            return text
    found = a.typed_node_at(offset)
    if found is None:
        return None
    _, value = found
    return _code(describe_value(value))


def _code(text: str) -> str:
    return f"```mdl\n{text}\n```"


def _occurrence(a: Analysis, occ: Occurrence) -> str | None:
    if occ.target is not None:
        return _definition(a, occ, occ.target)
    match occ.builtin:
        case "primitive":
            return _primitive(occ.name)
        case "method":
            if occ.name in _METHODS:
                return _METHODS[occ.name]
            return _primitive(occ.name, method=True)
        case "dtype":
            return _code(f"dtype {occ.name}")
        case "type":
            return _code(f"{occ.name}") + "\n\na compile-time kind"
        case "constant":
            return _code(f"{occ.name}") + "\n\na built-in constant"
        case "initializer":
            return _initializer(occ.name)
        case "Sequential":
            return _code("Sequential[Layer, ...]") + "\n\nlayers applied one after another"
    return None


def _definition(a: Analysis, occ: Occurrence, d: Definition) -> str:
    if d.kind in ("fn", "layer", "model"):
        src = a.source_of(d.span.file)
        text = _code(decl_signature(d.node, src))
        if d.node.doc:
            text += "\n\n" + d.node.doc
        if d.path != a.path:
            text += f"\n\n*{d.span.file}*"
        return text
    if d.kind == "module":
        return _code(f"module {d.name}") + f"\n\n*{d.node.path}*"
    value = a.type_of(occ.node)
    if value is None:
        value = a.definition_type(d)
    word = _KIND_WORDS.get(d.kind, d.kind)
    head = f"{word} {d.name}"
    if value is not None:
        head += f": {describe_value(value)}"
    elif d.kind in ("ctparam", "input") and d.decl is not None:
        src = a.source_of(d.span.file)
        if src is not None:
            head += " " + _declared(d, src)
    text = _code(head)
    if (
        d.kind in ("ctparam", "input")
        and d.decl is not None
        and d.decl is not a.decl_at(occ.span.start)
    ):
        text += f"\n\nof `{d.decl.name.name}`"
    return text


def _declared(d: Definition, src: str) -> str:
    """`: bool = true` as written after the parameter's name."""
    node_span = d.node.span
    rest = src[d.span.end : node_span.end].strip()
    return " ".join(rest.split())


def _primitive(name: str, method: bool = False) -> str | None:
    from mdl.primitives.surface import DOCS, SIGNATURES

    if name not in SIGNATURES:
        return None
    sig = SIGNATURES[name]
    text = _code(sig)
    if method:
        text += f"\n\ncalled as a method: `x.{name}(...)` is `{name}(x, ...)`"
    return text + "\n\n" + DOCS[name]


def _initializer(name: str) -> str | None:
    from mdl.initializers import INITIALIZERS

    fn = INITIALIZERS.get(name)
    if fn is None:
        return None
    text = _code(f"{name}{inspect.signature(fn)}")
    doc = inspect.getdoc(fn)
    return text + ("\n\n" + doc if doc else "") + "\n\nan initialiser for `param` and `buffer`"
