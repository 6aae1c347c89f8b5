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
from dataclasses import dataclass, field
from typing import Any

from .diagnostics import Diagnostic, Fix, Label
from .dims import Dim
from .elab_calls import CallsMixin
from .graph import Graph, Input
from .resolve import ImportedDecl, ModuleInfo
from .shapes import MatchError, Variadic, Wildcard, match_shape
from .span import Span
from .syntax import ast
from .types import DType, TensorType
from .values import (
    POISON,
    FnRef,
    Instance,
    LayerRef,
    Method,
    PrimRef,
    RangeVal,
    SequentialSpec,
    Tensor,
    describe,
)

MAX_UNROLL = 100_000

BUILTIN_CONSTANTS: dict[str, Any] = {
    "inf": math.inf,
    "nan": math.nan,
    "pi": math.pi,
    "None": None,
}


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


class _Return(Exception):
    def __init__(self, values: tuple[Any, ...], span: Span):
        self.values = values
        self.span = span


class Elaborator(CallsMixin):
    def __init__(self) -> None:
        self.diags: list[Diagnostic] = []
        self.graph = Graph("")
        self.params: dict[str, Any] = {}  # path -> graph.Parameter
        self.types: dict[Any, Any] = {}  # AST node -> TensorType or compile-time value (first seen)
        self.call_stack: list[ast.Decl] = []
        self.reached: set[ast.Decl] = set()  # declarations the model used
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
            self.check_declared(texpr, v, scope, {}, f"output `{name}`")
            self.graph.outputs.append((name, v.value))

    # ------------------------------------------------------------------ types
    def dtype_of(self, ident: ast.Ident) -> Any:
        d = DType.parse(ident.name)
        if d is None:
            close = difflib.get_close_matches(ident.name, [x.value for x in DType], n=1)
            return self.err(
                "E0116",
                f"unknown dtype `{ident.name}`",
                ident.span,
                help=f"did you mean `{close[0]}`?"
                if close
                else "dtypes are f16, bf16, f32, f64, i32, i64 and bool",
            )
        return d

    def eval_dim(self, d: ast.DimExpr, scope: Scope, bind_free: bool = False) -> Any:
        match d:
            case ast.DimInt():
                return Dim.of(d.value)
            case ast.DimName():
                found, v = scope.lookup(d.name)
                if found:
                    if isinstance(v, bool) or not isinstance(v, int | Dim):
                        return self.err("E0205", f"`{d.name}` is {describe(v)}, not a dim", d.span)
                    return Dim.of(v)
                if bind_free:
                    return Dim.sym(d.name)
                return self.err("E0101", f"unknown dim `{d.name}`", d.span)
            case ast.DimBinary():
                a = self.eval_dim(d.left, scope, bind_free)
                b = self.eval_dim(d.right, scope, bind_free)
                if a is POISON or b is POISON:
                    return POISON
                return self.dim_arith(d.op, a, b, d.span)
            case ast.DimVariadic():
                return self.err("E0011", "`*` dims are only allowed in parameter types", d.span)
        return POISON

    def dim_arith(self, op: str, a: Dim, b: Dim, span: Span) -> Any:
        match op:
            case "+":
                return a + b
            case "-":
                return a - b
            case "*":
                return a * b
            case "//" | "/":
                if b.is_const and int(b) == 0:
                    return self.err("E0210", "division by zero in a dim expression", span)
                if op == "//":
                    return a.floordiv(b)
                q = a.exact_div(b)
                if q is None and self.generic and not (a.is_const and b.is_const):
                    return a.floordiv(b)  # may divide once the arguments are known
                if q is None:
                    return self.err(
                        "E0306",
                        f"`{a}` is not divisible by `{b}`",
                        span,
                        help="use `//` for floor division, or choose dims that divide",
                    )
                return q
        return POISON

    def type_pattern(self, t: ast.TensorTypeExpr, scope: Scope) -> Any:
        """A declared tensor type -> (dtype, shape pattern) with unbound names left as symbols."""
        dtype = self.dtype_of(t.dtype)
        items: list[Any] = []
        for d in t.dims:
            match d:
                case ast.DimVariadic():
                    items.append(Variadic(d.name))
                case ast.DimName(name="_"):
                    items.append(Wildcard())
                case _:
                    dim = self.eval_dim(d, scope, bind_free=True)
                    if dim is POISON:
                        return POISON
                    items.append(dim)
        if dtype is POISON:
            return POISON
        if sum(isinstance(i, Variadic) for i in items) > 1:
            return self.err("E0011", "at most one `*` dim per type", t.span)
        return dtype, items

    def check_declared(
        self,
        texpr: ast.TypeExpr,
        v: Tensor,
        scope: Scope,
        bindings: dict[str, Any],
        what: str,
        at: Span | None = None,
    ) -> dict[str, Any] | None:
        """Match a tensor against its declared type; returns the extended dim bindings.

        `at` is where the tensor comes from (a call's argument); the declaration gets a label.
        """
        if isinstance(texpr, ast.ScalarTypeExpr):
            dtype = self.dtype_of(texpr.name)
            if dtype is POISON:
                return None
            pattern: Any = (dtype, [])
        else:
            pattern = self.type_pattern(texpr, scope)
            if pattern is POISON:
                return None
        dtype, items = pattern
        where = at or texpr.span
        decl_label = (Label(texpr.span, "declared here"),) if at is not None else ()
        if v.type.dtype != dtype:
            self.err(
                "E0201",
                f"{what} has dtype `{v.type.dtype}` but is declared `{dtype}`",
                where,
                label=f"found `{v.type}`",
                labels=decl_label,
                help=f"convert it with `cast(x, {dtype})`",
            )
            return None
        try:
            return match_shape(items, v.type.shape, bindings)
        except MatchError as e:
            self.err(
                "E0314",
                f"{what} does not match its declared type `{_type_text(texpr)}`",
                where,
                label=f"found `{v.type}`: {e.message}",
                labels=decl_label,
            )
            return None

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
                    scope.vars[st.names[0].name] = self.bind_name(value, st.names[0].name, frame)
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
                    scope.vars[n.name] = self.bind_name(v, n.name, frame)
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
            self.exec_block(st.body, frame, inner)

    def bind_name(self, value: Any, name: str, frame: Frame) -> Any:
        """`let name = value`: unbound layer instantiations get their parameter path here."""
        path = f"{frame.path}.{name}" if frame.path else name
        return self.instantiate(value, path)

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
        return v

    def _eval(self, e: ast.Expr, frame: Frame, scope: Scope) -> Any:
        match e:
            case ast.IntLit():
                return Dim.of(e.value)
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
        from .primitives import SURFACE_NAMES

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

    def eval_unary(self, e: ast.Unary, frame: Frame, scope: Scope) -> Any:
        v = self.eval_expr(e.operand, frame, scope)
        if v is POISON:
            return POISON
        if e.op == "not":
            if isinstance(v, bool):
                return not v
            if isinstance(v, Tensor):
                return self.call_primitive("logical_not", [(v, e.operand.span)], {}, e.span)
            return self.err("E0205", f"`not` needs a bool, found {describe(v)}", e.operand.span)
        if isinstance(v, Tensor):
            return self.call_primitive("neg", [(v, e.operand.span)], {}, e.span)
        if isinstance(v, int | float | Dim) and not isinstance(v, bool):
            return -v
        return self.err("E0205", f"cannot negate {describe(v)}", e.operand.span)

    def eval_binary(self, e: ast.Binary, frame: Frame, scope: Scope) -> Any:
        if e.op in ("and", "or"):
            return self.eval_logic(e, frame, scope)
        a = self.eval_expr(e.left, frame, scope)
        b = self.eval_expr(e.right, frame, scope)
        if a is POISON or b is POISON:
            return POISON
        if e.op == "..":
            if not (_is_intlike(a) and _is_intlike(b)):
                return self.err("E0205", "range bounds must be compile-time integers", e.span)
            return RangeVal(Dim.of(a), Dim.of(b))
        if isinstance(a, Tensor) or isinstance(b, Tensor) or e.op == "@":
            from .primitives import OPERATORS

            return self.call_primitive(
                OPERATORS[e.op],
                [(a, e.left.span), (b, e.right.span)],
                {},
                e.span,
                op_span=e.op_span,
            )
        return self.ct_binary(e, a, b)

    def eval_logic(self, e: ast.Binary, frame: Frame, scope: Scope) -> Any:
        a = self.eval_expr(e.left, frame, scope)
        if a is POISON:
            return POISON
        if not isinstance(a, bool):
            return self.err(
                "E0207",
                f"`{e.op}` needs compile-time bools, found {describe(a)}",
                e.left.span,
                help="for bool tensors use `logical_and(a, b)` / `logical_or(a, b)`",
            )
        if (e.op == "and" and not a) or (e.op == "or" and a):
            return a
        b = self.eval_expr(e.right, frame, scope)
        if b is POISON:
            return POISON
        if not isinstance(b, bool):
            return self.err(
                "E0207", f"`{e.op}` needs compile-time bools, found {describe(b)}", e.right.span
            )
        return b

    def ct_binary(self, e: ast.Binary, a: Any, b: Any) -> Any:
        op = e.op
        numeric = (int, float, Dim)
        if op in ("==", "!="):
            eq = _ct_equal(a, b)
            if eq is None and self.generic:
                return POISON  # decided only once the arguments are known
            if eq is None:
                return self.err("E0207", f"cannot decide `{a} {op} {b}` at compile time", e.span)
            return eq if op == "==" else not eq
        if (
            not (isinstance(a, numeric) and isinstance(b, numeric))
            or isinstance(a, bool)
            or isinstance(b, bool)
        ):
            return self.err(
                "E0205", f"`{op}` is not defined for {describe(a)} and {describe(b)}", e.op_span
            )
        if _is_intlike(a) and _is_intlike(b):
            a, b = Dim.of(a), Dim.of(b)
            if op in ("+", "-", "*", "/", "//"):
                return self.dim_arith(op, a, b, e.span)
            if op == "%":
                if not (a.is_const and b.is_const):
                    return self.err("E0204", "`%` needs constant dims", e.span)
                if int(b) == 0:
                    return self.err("E0210", "modulo by zero", e.span)
                return Dim.of(int(a) % int(b))
            if op == "**":
                if not (a.is_const and b.is_const) or int(b) < 0:
                    return self.err(
                        "E0204", "`**` on dims needs constant, non-negative exponents", e.span
                    )
                return Dim.of(int(a) ** int(b))
            if not (a.is_const and b.is_const):
                if self.generic:
                    return POISON
                return self.err("E0207", f"cannot decide `{a} {op} {b}` at compile time", e.span)
        x, y = _to_number(a), _to_number(b)
        if x is None or y is None:
            return self.err("E0204", f"`{a} {op} {b}` needs constant values", e.span)
        try:
            match op:
                case "+":
                    return x + y
                case "-":
                    return x - y
                case "*":
                    return x * y
                case "/":
                    return x / y
                case "//":
                    return x // y
                case "%":
                    return x % y
                case "**":
                    return x**y
                case "<":
                    return x < y
                case "<=":
                    return x <= y
                case ">":
                    return x > y
                case ">=":
                    return x >= y
        except ZeroDivisionError:
            return self.err("E0210", "division by zero in a compile-time expression", e.span)
        except OverflowError:
            return self.err("E0409", "compile-time value overflows", e.span)
        return self.err("E0205", f"unsupported operator `{op}`", e.op_span)

    def eval_listcomp(self, e: ast.ListComp, frame: Frame, scope: Scope) -> Any:
        it = self.eval_expr(e.iterable, frame, scope)
        if it is POISON:
            return POISON
        if isinstance(it, RangeVal):
            if not (_const_int(it.start) and _const_int(it.stop)):
                return self.err(
                    "E0401", "list bounds must be compile-time constants", e.iterable.span
                )
            items: list[Any] = [Dim.of(i) for i in it.items()]
        elif isinstance(it, list | tuple):
            items = list(it)
        else:
            return self.err("E0401", f"cannot iterate over {describe(it)}", e.iterable.span)
        if len(items) > MAX_UNROLL:
            return self.err(
                "E0409", f"list has {len(items)} items (limit {MAX_UNROLL})", e.iterable.span
            )
        out = []
        for item in items:
            inner = Scope(scope)
            inner.vars[e.var.name] = item
            out.append(self.eval_expr(e.element, frame, inner))
        return out

    def eval_if(self, e: ast.IfExpr, frame: Frame, scope: Scope) -> Any:
        cond = self.eval_expr(e.cond, frame, scope)
        if cond is POISON:
            return POISON
        if not isinstance(cond, bool):
            return self.err(
                "E0207",
                f"an `if` condition must be a compile-time bool, found {describe(cond)}",
                e.cond.span,
                help="for a tensor condition use `where(cond, a, b)`",
            )
        branch = e.then if cond else e.orelse
        if isinstance(branch, ast.IfExpr):
            return self.eval_if(branch, frame, scope)
        value = self.exec_block(branch, frame, Scope(scope))
        return value


def _type_text(t: ast.TypeExpr) -> str:
    if isinstance(t, ast.ScalarTypeExpr):
        return t.name.name
    return f"{t.dtype.name}[{', '.join(_dim_text(d) for d in t.dims)}]"


def _dim_text(d: ast.DimExpr) -> str:
    match d:
        case ast.DimInt():
            return str(d.value)
        case ast.DimName():
            return d.name
        case ast.DimVariadic():
            return f"*{d.name}"
        case ast.DimBinary():
            return f"{_dim_text(d.left)} {d.op} {_dim_text(d.right)}"
    return "?"


def _type_or_value(v: Any) -> Any:
    return v.type if isinstance(v, Tensor) else v


def _is_intlike(v: Any) -> bool:
    return isinstance(v, int | Dim) and not isinstance(v, bool)


def _const_int(v: Any) -> bool:
    return (isinstance(v, int) and not isinstance(v, bool)) or (isinstance(v, Dim) and v.is_const)


def _to_number(v: Any) -> Any:
    if isinstance(v, Dim):
        return int(v) if v.is_const else None
    return v


def _ct_equal(a: Any, b: Any) -> bool | None:
    if isinstance(a, Dim) and isinstance(b, Dim):
        if a == b:
            return True
        if a.is_const and b.is_const:
            return False
        return None
    x = _to_number(a) if isinstance(a, Dim) else a
    y = _to_number(b) if isinstance(b, Dim) else b
    if x is None or y is None:
        return None
    if isinstance(x, Tensor) or isinstance(y, Tensor):
        return None
    return x == y


__all__ = ["Elaborator", "Frame", "Scope", "Label", "Method", "PrimRef", "FnRef", "Instance"]
