"""Declarations no model reached -> checked generically.

A file without a model (a library such as stdlib/nn.mdl), or a declaration the
model never uses, is still checked: each `fn` and `layer` is elaborated once
into a scratch graph, with its inputs at their declared types (symbolic dims)
and its compile-time arguments at their defaults or, lacking one, at a
representative value (8: divisible by the usual head counts and groups).
Diagnostics found this way say which values were assumed.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from .dims import Dim
from .syntax import ast
from .types import TensorType
from .values import POISON, Tensor

REPRESENTATIVE = 8


def check_unused(el: Any, info: Any, loader: Any) -> None:
    from .elaborate import Frame, Scope
    from .graph import Graph

    reached = el.reached
    for item in info.tree.items:
        if not isinstance(item, ast.Decl) or item.kind == "model" or item in reached:
            continue
        saved = el.graph
        el.graph = Graph(f"<check {item.name.name}>")
        scope = Scope(None)
        assumed: list[str] = []
        frame = Frame(info, "" if item.kind == "fn" else item.name.name, item.kind)
        ok = True
        for c in item.ctparams or ():
            if c.default is not None:
                v = el.eval_expr(c.default, frame, scope)
                scope.vars[c.name.name] = (
                    Dim.of(v) if isinstance(v, int) and not isinstance(v, bool) else v
                )
            elif c.kind is not None and c.kind.name in ("bool", "float"):
                ok = False  # cannot pick a value that stands for all
            else:
                scope.vars[c.name.name] = Dim.of(REPRESENTATIVE)
                assumed.append(f"{c.name.name} = {REPRESENTATIVE}")
        if not ok:
            el.graph = saved
            continue
        for p in item.params:
            if not isinstance(p.type, ast.TensorTypeExpr):
                ok = False
                break
            pattern = el.type_pattern(p.type, scope)
            if pattern is POISON:
                ok = False
                break
            dtype, items = pattern
            dims: list[Dim] = []
            for it in items:
                if isinstance(it, Dim):
                    dims.append(it)
                    for s in it.symbols:
                        scope.vars.setdefault(s, Dim.sym(s))
                elif hasattr(it, "name"):  # a variadic: stand in one symbolic dim
                    dims.append(Dim.sym(f"{it.name}0"))
                else:
                    dims.append(Dim.sym("_"))
            v = el.graph.new_value(TensorType(dtype, tuple(dims)))
            scope.vars[p.name.name] = Tensor(v)
        if ok:
            start = len(el.diags)
            el.generic = True
            el.run_body(item, frame, scope)
            el.generic = False
            if assumed:
                note = (
                    f"checked `{item.name.name}` with {', '.join(assumed)}, as no model in this file "
                    "instantiates it",
                )
                el.diags[start:] = [replace(d, notes=d.notes + note) for d in el.diags[start:]]
        el.graph = saved
