"""Checked elaboration: a model declaration -> `Graph` plus diagnostics.

This stage is the type and shape checker and the elaborator in one walk:
compile-time arguments are known when a model is instantiated, so evaluating
the body with abstract tensors (a dtype and a symbolic shape each) both checks
every expression and emits the primitive nodes of the graph. Layers are
instantiated and inlined, compile-time loops unrolled, `if`s decided; each
parameter gets the path of the bindings that lead to it. Findings about AST
nodes (their types) go to a side table, never into the tree.

Calls, instantiation and indexing are in elab_calls.py; this file has the
model entry point, statements and expressions.
"""

from __future__ import annotations

import difflib
import math
from typing import Any

from .diagnostics import Diagnostic, Fix, Severity
from .dims import Dim
from .elab_calls import CallsMixin
from .elab_exprs import MAX_UNROLL, ExprsMixin, _const_int
from .elab_scope import Frame, Scope
from .elab_types import TypesMixin
from .graph import Graph, Input
from .primitives import SURFACE_NAMES
from .resolve import ImportedDecl, ModuleInfo
from .span import Span
from .syntax import ast
from .types import DType, TensorType
from .values import (
    POISON,
    FnRef,
    Instance,
    LayerRef,
    PrimRef,
    RangeVal,
    SequentialSpec,
    Tensor,
    describe,
)

BUILTIN_CONSTANTS: dict[str, Any] = {
    "inf": math.inf,
    "nan": math.nan,
    "pi": math.pi,
    "None": None,
}


class _Return(Exception):
    def __init__(self, values: tuple[Any, ...], span: Span):
        self.values = values
        self.span = span


class Elaborator(CallsMixin, TypesMixin, ExprsMixin):
    def __init__(self) -> None:
        self.diags: list[Diagnostic] = []
        self.graph = Graph("")
        self.params: dict[str, Any] = {}  # path -> graph.Parameter
        self.types: dict[Any, Any] = {}  # AST node -> TensorType or compile-time value (first seen)
        self.call_stack: list[ast.Decl] = []
        self.reached: set[ast.Decl] = set()
        self.bindings: list[
            tuple[Any, ast.Ident]
        ] = []  # layer instances bound by `let`  # declarations the model used
        self.scope_path = ""  # the layer instance whose body is being evaluated (node scopes)
        self.anonymous_call: Span | None = None  # the call of a layer that has no binding
        self.anonymous_reported: Span | None = None
        self.generic = False  # checking a declaration no model instantiated

    # ------------------------------------------------------------------ reporting
    def err(self, code: str, message: str, span: Span | None, **kw: Any) -> Any:
        self.diags.append(Diagnostic(code, message, span, **kw))
        return POISON

    # ------------------------------------------------------------------ models
    def elaborate_model(
        self, decl: ast.Decl, module: ModuleInfo, defines: dict[str, Any]
    ) -> Graph | None:
        self.graph = Graph(decl.name.name)
        frame = Frame(module, "", "model")
        scope = Scope(None)
        if not self._bind_model_ctparams(decl, frame, scope, defines):
            return None
        if decl.ret is None:
            self.err(
                "E0411",
                f"model `{decl.name.name}` must declare its outputs",
                decl.name.span,
                help="add `-> f32[...]` after the inputs",
            )
            return None
        for p in decl.params:
            inp = self._model_input(p, frame, scope)
            if inp is POISON:
                return None
        start = len(self.diags)
        result = self.run_body(decl, frame, scope)
        if result is POISON or any(d.is_error for d in self.diags[start:]):
            return None
        self._model_outputs(decl, frame, scope, result)
        self.warn_unused_instances()
        return self.graph

    def _bind_model_ctparams(
        self, decl: ast.Decl, frame: Frame, scope: Scope, defines: dict[str, Any]
    ) -> bool:
        declared = {c.name.name: c for c in decl.ctparams or ()}
        ok = True
        for name in defines:
            if name not in declared:
                close = difflib.get_close_matches(name, list(declared), n=1)
                self.err(
                    "E0406",
                    f"model `{decl.name.name}` has no compile-time argument `{name}`",
                    decl.name.span,
                    help=f"did you mean `{close[0]}`?" if close else None,
                    notes=(f"known: {', '.join(declared) or 'none'}",),
                )
                ok = False
        for c in decl.ctparams or ():
            name = c.name.name
            if name in defines:
                value = defines[name]
                if c.default is not None:
                    default = self.eval_expr(c.default, frame, scope)
                    if isinstance(default, bool) != isinstance(value, bool) or (
                        isinstance(default, int | Dim) and not isinstance(value, int)
                    ):
                        self.err(
                            "E0407",
                            f"`-D {name}={value}` does not match the kind of its default "
                            f"(`{describe(default)}`)",
                            c.span,
                        )
                        ok = False
                        continue
            elif c.default is not None:
                value = self.eval_expr(c.default, frame, scope)
            else:
                self.err(
                    "E0112",
                    f"compile-time argument `{name}` of model `{decl.name.name}` has no value",
                    c.span,
                    help=f"give it a default (`{name} = ...`) or pass `-D {name}=...`",
                )
                ok = False
                continue
            scope.vars[name] = (
                Dim.of(value) if isinstance(value, int) and not isinstance(value, bool) else value
            )
        return ok

    def _model_input(self, p: ast.Param, frame: Frame, scope: Scope) -> Any:
        t = p.type
        if not isinstance(t, ast.TensorTypeExpr):
            return self.err("E0011", "model inputs must be tensors, like `x: f32[B, 64]`", t.span)
        dtype = self.dtype_of(t.dtype)
        dims: list[Dim] = []
        for d in t.dims:
            if isinstance(d, ast.DimVariadic) or (isinstance(d, ast.DimName) and d.name == "_"):
                return self.err(
                    "E0411",
                    "model inputs need a fixed rank: `*` and `_` dims are not allowed",
                    d.span,
                    help="name each dim, e.g. `f32[B, T, 64]`",
                )
            dim = self.eval_dim(d, scope, bind_free=True)
            if dim is POISON:
                return POISON
            dims.append(dim)
            for s in dim.symbols:
                found, _ = scope.lookup(s)
                if not found:
                    scope.vars[s] = Dim.sym(s)
        if dtype is POISON:
            return POISON
        tt = TensorType(dtype, tuple(dims))
        value = self.graph.new_value(tt)
        rng = None
        if p.index_range is not None:
            lo = self.eval_expr(p.index_range[0], frame, scope)
            hi = self.eval_expr(p.index_range[1], frame, scope)
            if not dtype.is_int:
                return self.err(
                    "E0209", f"an index range needs an integer input, not `{dtype}`", p.span
                )
            if not all(isinstance(v, int | Dim) and not isinstance(v, bool) for v in (lo, hi)):
                return self.err("E0209", "index range bounds must be compile-time integers", p.span)
            lo, hi = Dim.of(lo), Dim.of(hi)
            if lo.is_const and hi.is_const and int(lo) >= int(hi):
                return self.err("E0209", f"index range `{lo}..{hi}` is empty", p.span)
            rng = (lo, hi)
        self.graph.inputs.append(Input(p.name.name, value, rng, p.span))
        scope.vars[p.name.name] = Tensor(value)
        self.types[p] = tt
        return Tensor(value)

    def _model_outputs(self, decl: ast.Decl, frame: Frame, scope: Scope, result: Any) -> None:
        if isinstance(decl.ret, tuple):
            names = [o.name.name for o in decl.ret]
            types = [o.type for o in decl.ret]
            values = result if isinstance(result, tuple) else (result,)
            if len(values) != len(names):
                self.err(
                    "E0206",
                    f"model `{decl.name.name}` declares {len(names)} outputs but returns "
                    f"{len(values)}",
                    decl.name.span,
                )
                return
        else:
            names, types, values = ["output"], [decl.ret], (result,)
        for name, texpr, v in zip(names, types, values, strict=True):
            if not isinstance(v, Tensor):
                self.err(
                    "E0206", f"output `{name}` must be a tensor, found {describe(v)}", texpr.span
                )
                continue
            free = {s: Dim.sym(s) for s in self.graph.symbols()}  # the inputs' dims, already bound
            self.check_declared(texpr, v, scope, free, f"output `{name}`")
            self.graph.outputs.append((name, v.value))

    # ------------------------------------------------------------------ bodies
    def run_body(self, decl: ast.Decl, frame: Frame, scope: Scope) -> Any:
        if isinstance(decl.body, ast.Block):
            try:
                value = self.exec_block(decl.body, frame, Scope(scope))
            except _Return as r:
                return r.values[0] if len(r.values) == 1 else r.values
            if value is None:
                return self.err(
                    "E0405",
                    f"`{decl.name.name}` does not return a value",
                    decl.body.span,
                    help="end the body with `return ...`",
                )
            return value
        return self.eval_expr(decl.body, frame, scope)

    def exec_block(self, block: ast.Block, frame: Frame, scope: Scope) -> Any:
        for st in block.stmts:
            self.exec_stmt(st, frame, scope)
        if block.value is not None:
            return self.eval_expr(block.value, frame, scope)
        return None

    def exec_stmt(self, st: ast.Stmt, frame: Frame, scope: Scope) -> None:
        match st:
            case ast.Let():
                value = self.eval_expr(st.value, frame, scope)
                if len(st.names) == 1:
                    scope.vars[st.names[0].name] = self.bind_name(value, st.names[0], frame)
                    self.types.setdefault(st.names[0], _type_or_value(value))
                    return
                if value is POISON:
                    for n in st.names:
                        scope.vars[n.name] = POISON
                    return
                if not isinstance(value, tuple | list) or len(value) != len(st.names):
                    self.err(
                        "E0208",
                        f"cannot unpack {describe(value)} into {len(st.names)} names",
                        st.value.span,
                        label=f"gives {len(value)} values"
                        if isinstance(value, tuple | list)
                        else "",
                    )
                    for n in st.names:
                        scope.vars[n.name] = POISON
                    return
                for n, v in zip(st.names, value, strict=True):
                    scope.vars[n.name] = self.bind_name(v, n, frame)
                    self.types.setdefault(n, _type_or_value(v))
            case ast.Assign():
                value = self.eval_expr(st.value, frame, scope)
                if not scope.assign(st.name.name, value):
                    self.err(
                        "E0107",
                        f"`{st.name.name}` is not declared",
                        st.name.span,
                        help=f"declare it with `let {st.name.name} = ...`",
                    )
            case ast.Return():
                values = tuple(self.eval_expr(v, frame, scope) for v in st.values)
                raise _Return(values, st.span)
            case ast.For():
                self.exec_for(st, frame, scope)
            case ast.ParamDecl():
                self.declare_param(st, frame, scope)
            case ast.ExprStmt():
                self.eval_expr(st.value, frame, scope)

    def exec_for(self, st: ast.For, frame: Frame, scope: Scope) -> None:
        it = self.eval_expr(st.iterable, frame, scope)
        if it is POISON:
            return
        if isinstance(it, RangeVal):
            if not (_const_int(it.start) and _const_int(it.stop)):
                self.err("E0401", "loop bounds must be compile-time constants", st.iterable.span)
                return
            if len(it) > MAX_UNROLL:
                self.err(
                    "E0409", f"loop unrolls {len(it)} times (limit {MAX_UNROLL})", st.iterable.span
                )
                return
            items: list[Any] = [Dim.of(i) for i in it.items()]
        elif isinstance(it, list | tuple):
            items = list(it)
        elif isinstance(it, Instance) and isinstance(it.spec, SequentialSpec):
            items = list(it.children)
        else:
            self.err(
                "E0401",
                f"cannot loop over {describe(it)} at compile time",
                st.iterable.span,
                help="loop over a range `0..L` or a list of layers",
            )
            return
        if len(items) > MAX_UNROLL:
            self.err(
                "E0409", f"loop unrolls {len(items)} times (limit {MAX_UNROLL})", st.iterable.span
            )
            return
        for item in items:
            inner = Scope(scope)
            inner.vars[st.var.name] = item
            self.types.setdefault(st.var, item)
            self.exec_block(st.body, frame, inner)

    def bind_name(self, value: Any, ident: ast.Ident, frame: Frame) -> Any:
        """`let name = value`: unbound layer instantiations get their parameter path here."""
        path = f"{frame.path}.{ident.name}" if frame.path else ident.name
        bound = self.instantiate(value, path)
        if bound is not value and not self.generic:
            self.bindings.append((bound, ident))
        return bound

    def warn_unused_instances(self) -> None:
        """A layer bound with `let` but never called declares no parameters: say so."""
        for inst, ident in self.bindings:
            items = inst if isinstance(inst, list) else [inst]
            if items and not any(i.called for i in items):
                self.diags.append(
                    Diagnostic(
                        "E0412",
                        f"layer instance `{ident.name}` is never called",
                        ident.span,
                        severity=Severity.WARNING,
                        label="bound here",
                        notes=(
                            "its parameters are not part of the model, so a weights file "
                            "that has them is rejected",
                        ),
                        help=f"call it (`{ident.name}(x)`) or remove the binding",
                    )
                )

    def instantiate(self, value: Any, path: str) -> Any:
        match value:
            case LayerRef() if value.decl.kind == "layer":
                return Instance(value, path)
            case SequentialSpec():
                inst = Instance(value, path)
                inst.children = [
                    self.instantiate(c, f"{path}.{i}") for i, c in enumerate(value.children)
                ]
                return inst
            case list() if any(isinstance(v, LayerRef | SequentialSpec) for v in value):
                return [self.instantiate(v, f"{path}.{i}") for i, v in enumerate(value)]
        return value

    # ------------------------------------------------------------------ expressions
    def eval_expr(self, e: ast.Expr, frame: Frame, scope: Scope) -> Any:
        v = self._eval(e, frame, scope)
        if isinstance(v, Tensor) and e not in self.types:
            self.types[e] = v.type
        elif isinstance(e, ast.Name) and v is not POISON and e not in self.types:
            self.types[e] = v  # what a name stands for (a dim, a layer instance), for editors
        return v

    def _eval(self, e: ast.Expr, frame: Frame, scope: Scope) -> Any:
        match e:
            case ast.IntLit():
                return self.in_range(Dim.of(e.value), e.span)
            case ast.FloatLit():
                return e.value
            case ast.BoolLit():
                return e.value
            case ast.Name():
                return self.lookup(e.id, e.span, frame, scope)
            case ast.Unary():
                return self.eval_unary(e, frame, scope)
            case ast.Binary():
                return self.eval_binary(e, frame, scope)
            case ast.Call():
                return self.eval_call(e, frame, scope)
            case ast.Subscript():
                return self.eval_subscript(e, frame, scope)
            case ast.Attribute():
                return self.eval_attribute(e, frame, scope)
            case ast.TupleLit():
                return tuple(self.eval_expr(x, frame, scope) for x in e.items)
            case ast.ListLit():
                return [self.eval_expr(x, frame, scope) for x in e.items]
            case ast.ListComp():
                return self.eval_listcomp(e, frame, scope)
            case ast.IfExpr():
                return self.eval_if(e, frame, scope)
        return self.err("E0901", f"internal error: cannot evaluate {type(e).__name__}", e.span)

    def lookup(self, name: str, span: Span, frame: Frame, scope: Scope) -> Any:
        found, v = scope.lookup(name)
        if found:
            return v
        mod = frame.module
        if name in mod.names:
            return self.global_value(mod.names[name], mod)
        if name in BUILTIN_CONSTANTS:
            return BUILTIN_CONSTANTS[name]
        dt = DType.parse(name)
        if dt is not None:
            return dt
        if name in SURFACE_NAMES:
            return PrimRef(name)
        if name == "Sequential":
            return PrimRef("Sequential")
        qualified = {
            f"{mname}.{n}": n
            for mname, m in mod.names.items()
            if isinstance(m, ModuleInfo)
            for n in m.names
        }
        local = scope.names() + list(mod.names) + sorted(SURFACE_NAMES) + list(BUILTIN_CONSTANTS)
        close = difflib.get_close_matches(name, local, n=1)
        if not close:  # a name from an imported module, used without its module
            short = difflib.get_close_matches(name, sorted(set(qualified.values())), n=1)
            close = [q for q, n in sorted(qualified.items()) if short and n == short[0]][:1]
        fixes = (Fix(span, close[0]),) if close else ()
        return self.err(
            "E0101",
            f"unknown name `{name}`",
            span,
            label="not found in this scope",
            help=f"did you mean `{close[0]}`?" if close else None,
            fixes=fixes,
        )

    def global_value(self, v: Any, mod: ModuleInfo) -> Any:
        if isinstance(v, ImportedDecl):
            return self.global_value(v.decl, v.module)
        if isinstance(v, ast.Decl):
            if v.kind == "fn":
                return FnRef(v, mod)
            return LayerRef(v, mod)
        return v  # a module


def _type_or_value(v: Any) -> Any:
    return v.type if isinstance(v, Tensor) else v
