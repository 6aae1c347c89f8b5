"""Elaboration of calls, instantiation, attributes and indexing (part of elaborate.py).

Calls to primitives go through the registry's binder and shape rule and emit
one node; calls to `fn`s and layer instances evaluate their bodies inline with
their arguments matched against the declared types.
"""

from __future__ import annotations

import difflib
from typing import Any

import numpy as np

from .diagnostics import Label
from .dims import Dim
from .elab_scope import Frame, Scope
from .graph import Parameter
from .initializers import INITIALIZER_NAMES, InitError, InitSpec, validate_init
from .primitives.registry import REGISTRY, Scalar, ShapeError
from .span import Span
from .syntax import ast
from .types import DType, TensorType
from .values import (
    POISON,
    CtArgs,
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

MAX_CALL_DEPTH = 64
_FOLDABLE = frozenset(
    {
        "exp",
        "log",
        "sqrt",
        "rsqrt",
        "tanh",
        "erf",
        "sigmoid",
        "sin",
        "cos",
        "abs",
        "floor",
        "ceil",
        "neg",
        "add",
        "sub",
        "mul",
        "div",
        "pow",
        "maximum",
        "minimum",
    }
)


class CallsMixin:
    # ------------------------------------------------------------------ attributes
    def eval_attribute(self, e: ast.Attribute, frame: Frame, scope: Scope) -> Any:
        from .resolve import ModuleInfo, unknown_member

        base = self.eval_expr(e.value, frame, scope)
        name = e.attr.name
        if base is POISON:
            return POISON
        if isinstance(base, ModuleInfo):
            if name not in base.names:
                self.diags.append(unknown_member(base, e.attr))
                return POISON
            return self.global_value(base.names[name], base)
        if isinstance(base, Tensor):
            t = base.type
            if name == "T":
                if t.rank < 2:
                    return self.err(
                        "E0304", f"`.T` needs a tensor of rank 2 or more, found `{t}`", e.span
                    )
                perm = list(range(t.rank))
                perm[-1], perm[-2] = perm[-2], perm[-1]
                return self.emit("transpose", [base], {"perm": tuple(perm)}, e.span, frame)
            if name == "shape":
                return tuple(t.shape)
            if name == "ndim":
                return Dim.of(t.rank)
            if name == "dtype":
                return t.dtype
            from .primitives import SURFACE_NAMES

            if name in SURFACE_NAMES:
                return Method(name, base)
            close = difflib.get_close_matches(
                name, sorted(SURFACE_NAMES) + ["T", "shape", "dtype"], n=1
            )
            return self.err(
                "E0106",
                f"tensors have no attribute `{name}`",
                e.attr.span,
                help=f"did you mean `{close[0]}`?" if close else None,
            )
        if isinstance(base, Instance) and isinstance(base.spec, SequentialSpec):
            if name.isdigit() and int(name) < len(base.children):
                return base.children[int(name)]
        return self.err("E0106", f"{describe(base)} has no attribute `{name}`", e.attr.span)

    # ------------------------------------------------------------------ subscripts
    def eval_subscript(self, e: ast.Subscript, frame: Frame, scope: Scope) -> Any:
        base = self.eval_expr(e.value, frame, scope)
        if base is POISON:
            return POISON
        if isinstance(base, FnRef | LayerRef) or (
            isinstance(base, PrimRef) and base.name == "Sequential"
        ):
            return self.instantiation(base, e, frame, scope)
        if isinstance(base, Tensor):
            from .indexing import index_tensor

            return index_tensor(self, base, e, frame, scope)
        if isinstance(base, tuple | list):
            if len(e.items) != 1 or not isinstance(e.items[0], ast.Arg) or e.items[0].name:
                return self.err("E0310", "a tuple or list takes one integer index", e.span)
            i = self.eval_expr(e.items[0].value, frame, scope)
            if isinstance(i, Dim) and i.is_const:
                i = int(i)
            if not isinstance(i, int) or isinstance(i, bool):
                return self.err(
                    "E0205", f"index must be a compile-time int, found {describe(i)}", e.span
                )
            if not -len(base) <= i < len(base):
                return self.err("E0309", f"index {i} out of range for {len(base)} items", e.span)
            return base[i]
        return self.err("E0205", f"{describe(base)} cannot be indexed", e.value.span)

    def instantiation(self, base: Any, e: ast.Subscript, frame: Frame, scope: Scope) -> Any:
        pos: list[Any] = []
        kws: list[tuple[str, Any]] = []
        for item in e.items:
            if not isinstance(item, ast.Arg):
                return self.err("E0310", "slices are not compile-time arguments", item.span)
            v = self.eval_expr(item.value, frame, scope)
            if v is POISON:
                return POISON
            if item.name is None:
                pos.append(v)
            else:
                kws.append((item.name.name, v))
        if isinstance(base, PrimRef):
            if kws:
                return self.err("E0111", "`Sequential` takes only layers", e.span)
            for v, item in zip(pos, e.items, strict=True):
                if not isinstance(v, LayerRef | SequentialSpec):
                    return self.err(
                        "E0205", f"`Sequential` takes layers, found {describe(v)}", item.span
                    )
            return SequentialSpec(tuple(pos))
        if base.ctargs is not None:
            return self.err(
                "E0113", f"`{base.decl.name.name}` already has compile-time arguments", e.span
            )
        if base.decl.kind == "model":
            return self.err(
                "E0410", "a model cannot be instantiated inside another declaration", e.span
            )
        args = CtArgs(tuple(pos), tuple(kws), e.span)
        return type(base)(base.decl, base.module, args)

    # ------------------------------------------------------------------ calls
    def eval_call(self, e: ast.Call, frame: Frame, scope: Scope) -> Any:
        func = self.eval_expr(e.func, frame, scope)
        if func is POISON:
            return POISON
        args: list[tuple[Any, Span]] = []
        kwargs: dict[str, tuple[Any, Span]] = {}
        for a in e.args:
            v = self.eval_expr(a.value, frame, scope)
            if a.name is None:
                if kwargs:
                    return self.err("E0004", "positional argument after keyword arguments", a.span)
                args.append((v, a.span))
            elif a.name.name in kwargs:
                return self.err("E0114", f"argument `{a.name.name}` given twice", a.span)
            else:
                kwargs[a.name.name] = (v, a.span)
        if any(v is POISON for v, _ in args) or any(v is POISON for v, _ in kwargs.values()):
            return POISON
        match func:
            case PrimRef(name="Sequential"):
                return self.err(
                    "E0115",
                    "`Sequential` is instantiated with brackets: `Sequential[A, B]`",
                    e.func.span,
                )
            case PrimRef():
                return self.call_primitive(func.name, args, kwargs, e.span, frame=frame)
            case Method():
                return self.call_primitive(
                    func.name, [(func.receiver, e.func.span), *args], kwargs, e.span, frame=frame
                )
            case FnRef():
                return self.call_decl(func, None, args, kwargs, e, frame)
            case Instance():
                return self.call_instance(func, args, kwargs, e, frame)
            case LayerRef() if func.decl.kind == "layer":
                return self.call_decl(func, "", args, kwargs, e, frame)
            case SequentialSpec():
                return self.err(
                    "E0410", "bind the `Sequential` with `let` before calling it", e.func.span
                )
        return self.err("E0115", f"{describe(func)} is not callable", e.func.span)

    def call_instance(self, inst: Instance, args, kwargs, e: ast.Call, frame: Frame) -> Any:
        if isinstance(inst.spec, SequentialSpec):
            if len(args) != 1 or kwargs:
                return self.err("E0113", "a `Sequential` takes exactly one input", e.span)
            value, span = args[0]
            for child in inst.children:
                value = self.call_instance(child, [(value, span)], {}, e, frame)
                if value is POISON:
                    return POISON
            return value
        return self.call_decl(inst.spec, inst.path, args, kwargs, e, frame)

    def call_decl(
        self, ref: FnRef | LayerRef, path: str | None, args, kwargs, e: ast.Call, frame: Frame
    ) -> Any:
        """Evaluate a fn (path None) or a layer instance body with its arguments bound."""
        from .elaborate import Frame as FrameT
        from .elaborate import Scope as ScopeT
        from .elaborate import _Return

        decl = ref.decl
        if len(self.call_stack) >= MAX_CALL_DEPTH:
            return self.err(
                "E0408",
                f"calls nested more than {MAX_CALL_DEPTH} deep (recursive `{decl.name.name}`?)",
                e.span,
            )
        if (
            decl in self.call_stack
            and decl.kind == "fn"
            and path is None
            and len(self.call_stack) > 8
        ):
            return self.err("E0117", f"`{decl.name.name}` calls itself", e.span)
        callee_frame = FrameT(ref.module, path or "", decl.kind, anonymous=(path == ""))
        scope = ScopeT(None)
        if not self.bind_ctparams(decl, ref.ctargs, scope, callee_frame, e):
            return POISON
        bindings: dict[str, Any] = {}
        bound = self.bind_args(decl, args, kwargs, e)
        if bound is None:
            return POISON
        for p, (v, arg_span) in zip(decl.params, bound, strict=True):
            if v is POISON:
                return POISON
            if not isinstance(v, Tensor):
                return self.err(
                    "E0203",
                    f"argument `{p.name.name}` of `{decl.name.name}` must be a tensor, "
                    f"found {describe(v)}",
                    arg_span,
                )
            newb = self.check_declared(
                p.type, v, scope, bindings, f"argument `{p.name.name}`", at=arg_span
            )
            if newb is None:
                return POISON
            bindings = newb
            scope.vars[p.name.name] = v
        for name, val in bindings.items():
            if isinstance(val, Dim) and not scope.lookup(name)[0]:
                scope.vars[name] = val
        self.call_stack.append(decl)
        self.reached.add(decl)
        saved_path = self.scope_path
        if path:
            self.scope_path = path
        saved_anon = self.anonymous_call
        if path == "":
            self.anonymous_call = e.span
        start = len(self.diags)
        try:
            result = self.run_body(decl, callee_frame, scope)
        except _Return as r:  # pragma: no cover - run_body handles returns
            result = r.values[0]
        finally:
            self.call_stack.pop()
            self.scope_path = saved_path
            self.anonymous_call = saved_anon
        self._note_instantiation(start, e.span, decl)
        if result is POISON or any(d.is_error for d in self.diags[start:]):
            return POISON
        if decl.ret is not None and not isinstance(decl.ret, tuple):
            if not isinstance(result, Tensor):
                return self.err(
                    "E0206",
                    f"`{decl.name.name}` returns {describe(result)}, not a tensor",
                    decl.ret.span,
                )
            ok = self.check_declared(
                decl.ret, result, scope, bindings, f"the result of `{decl.name.name}`"
            )
            if ok is None:
                return POISON
        return result

    def bind_ctparams(
        self, decl: ast.Decl, ctargs: CtArgs | None, scope: Scope, frame: Frame, e: ast.Call
    ) -> bool:
        params = list(decl.ctparams or ())
        pos = list(ctargs.positional) if ctargs else []
        kws = dict(ctargs.keywords) if ctargs else {}
        where = ctargs.span if ctargs and ctargs.span else e.span
        if len(pos) > len(params):
            self.err(
                "E0113",
                f"`{decl.name.name}` takes {len(params)} compile-time arguments, {len(pos)} given",
                where,
            )
            return False
        names = [c.name.name for c in params]
        for k in kws:
            if k not in names:
                close = difflib.get_close_matches(k, names, n=1)
                self.err(
                    "E0111",
                    f"`{decl.name.name}` has no compile-time argument `{k}`",
                    where,
                    help=f"did you mean `{close[0]}`?" if close else None,
                )
                return False
        from .elaborate import Scope as ScopeT

        defaults_scope = ScopeT(None)
        for i, c in enumerate(params):
            name = c.name.name
            if i < len(pos):
                if name in kws:
                    self.err("E0114", f"compile-time argument `{name}` given twice", where)
                    return False
                v = pos[i]
            elif name in kws:
                v = kws[name]
            elif c.default is not None:
                v = self.eval_expr(c.default, frame, defaults_scope)
            else:
                self.err(
                    "E0112",
                    f"missing compile-time argument `{name}` of `{decl.name.name}`",
                    where,
                    labels=(Label(c.span, "declared here"),),
                )
                return False
            if isinstance(v, int) and not isinstance(v, bool):
                v = Dim.of(v)
            if c.kind is not None and not _kind_ok(c.kind.name, v):
                self.err(
                    "E0205",
                    f"compile-time argument `{name}` must be {c.kind.name}, found {describe(v)}",
                    where,
                    labels=(Label(c.span, "declared here"),),
                )
                return False
            scope.vars[name] = v
            defaults_scope.vars[name] = v
        return True

    def bind_args(self, decl: ast.Decl, args, kwargs, e: ast.Call) -> list[Any] | None:
        params = decl.params
        if len(args) > len(params):
            self.err(
                "E0113", f"`{decl.name.name}` takes {len(params)} inputs, {len(args)} given", e.span
            )
            return None
        out: list[Any] = []
        names = [p.name.name for p in params]
        for k, (_, sp) in kwargs.items():
            if k not in names:
                close = difflib.get_close_matches(k, names, n=1)
                self.err(
                    "E0111",
                    f"`{decl.name.name}` has no input `{k}`",
                    sp,
                    help=f"did you mean `{close[0]}`?" if close else None,
                )
                return None
        for i, p in enumerate(params):
            if i < len(args):
                if p.name.name in kwargs:
                    self.err("E0114", f"input `{p.name.name}` given twice", e.span)
                    return None
                out.append(args[i])
            elif p.name.name in kwargs:
                out.append(kwargs[p.name.name])
            else:
                self.err(
                    "E0112",
                    f"missing input `{p.name.name}` of `{decl.name.name}`",
                    e.span,
                    labels=(Label(p.span, "declared here"),),
                )
                return None
        return out

    def _note_instantiation(self, start: int, call_span: Span, decl: ast.Decl) -> None:
        """Errors found inside a callee's body also point at the call that instantiated it."""
        from dataclasses import replace

        for i in range(start, len(self.diags)):
            d = self.diags[i]
            if (
                d.span is not None
                and d.span.file != call_span.file
                and not any(lab.span.file == call_span.file for lab in d.labels)
            ):
                self.diags[i] = replace(
                    d, labels=d.labels + (Label(call_span, f"in this use of `{decl.name.name}`"),)
                )

    # ------------------------------------------------------------------ parameters
    def declare_param(self, st: ast.ParamDecl, frame: Frame, scope: Scope) -> None:
        what = "buffer" if st.is_buffer else "param"
        if frame.kind == "fn":
            self.err(
                "E0403",
                f"`{what}` is only allowed in a layer or model",
                st.span,
                help="make this a `layer`",
            )
            scope.vars[st.name.name] = POISON
            return
        if frame.anonymous:
            if self.anonymous_reported is self.anonymous_call:
                scope.vars[st.name.name] = POISON
                return
            self.anonymous_reported = self.anonymous_call
            self.err(
                "E0410",
                f"this layer instance has parameters (`{st.name.name}`) but no name",
                self.anonymous_call or st.span,
                label="called without a `let` binding",
                labels=(Label(st.span, "parameter declared here"),),
                help="bind the layer with `let name = Layer[...]` and call `name(x)`",
            )
            scope.vars[st.name.name] = POISON
            return
        t = st.type
        if isinstance(t, ast.ScalarTypeExpr):
            dtype, dims = self.dtype_of(t.name), []
        else:
            dtype = self.dtype_of(t.dtype)
            dims = [self.eval_dim(d, scope) for d in t.dims]
        if dtype is POISON or any(d is POISON for d in dims):
            scope.vars[st.name.name] = POISON
            return
        for d, dexpr in zip(dims, getattr(t, "dims", ()), strict=False):
            if not d.is_const and self.generic:
                continue
            if not d.is_const:
                self.err(
                    "E0313",
                    f"parameter shapes must be known at compile time; `{d}` is not",
                    dexpr.span,
                )
                scope.vars[st.name.name] = POISON
                return
            if int(d) < 0:
                self.err("E0313", f"parameter dimension `{d}` is negative", dexpr.span)
                scope.vars[st.name.name] = POISON
                return
        init = self.init_spec(st.init, frame, scope) if st.init is not None else InitSpec("zeros")
        if init is not None and not self.generic:
            try:
                validate_init(init, [int(d) for d in dims], dtype)
            except (InitError, KeyError) as ie:
                self.err(
                    "E0402",
                    f"initialiser `{init.name}` cannot initialise `{st.name.name}`: "
                    f"{ie.args[0] if ie.args else ie}",
                    st.init.span if st.init else st.span,
                )
        path = f"{frame.path}.{st.name.name}" if frame.path else st.name.name
        tt = TensorType(dtype, tuple(dims))
        existing = self.params.get(path)
        if existing is not None:
            if existing.value.type != tt:
                self.err(
                    "E0104", f"parameter `{path}` declared twice with different types", st.span
                )
            scope.vars[st.name.name] = Tensor(existing.value)
            return
        value = self.graph.new_value(tt)
        p = Parameter(path, value, st.is_buffer, init, st.span)
        self.params[path] = p
        self.graph.params.append(p)
        scope.vars[st.name.name] = Tensor(value)
        self.types[st] = tt

    def init_spec(self, e: ast.Expr, frame: Frame, scope: Scope) -> InitSpec | None:
        if isinstance(e, ast.Name):
            name, args = e.id, ()
        elif isinstance(e, ast.Call) and isinstance(e.func, ast.Name):
            name, args = e.func.id, e.args
        else:
            self.err(
                "E0402",
                "an initialiser is a name like `zeros` or a call like `normal(std=0.02)`",
                e.span,
            )
            return None
        if name not in INITIALIZER_NAMES:
            close = difflib.get_close_matches(name, sorted(INITIALIZER_NAMES), n=1)
            self.err(
                "E0402",
                f"unknown initialiser `{name}`",
                e.span,
                help=f"did you mean `{close[0]}`?"
                if close
                else f"known: {', '.join(sorted(INITIALIZER_NAMES))}",
            )
            return None
        pos: list[float] = []
        kws: list[tuple[str, float]] = []
        for a in args:
            v = self.eval_expr(a.value, frame, scope)
            if v is POISON:
                return None  # already reported
            if isinstance(v, Dim) and v.is_const:
                v = int(v)
            if isinstance(v, bool):
                v = float(v)
            if not isinstance(v, int | float):
                self.err(
                    "E0204",
                    f"initialiser arguments must be compile-time numbers, found {describe(v)}",
                    a.span,
                )
                return None
            if a.name is None:
                pos.append(float(v))
            else:
                kws.append((a.name.name, float(v)))
        return InitSpec(name, tuple(pos), tuple(kws))

    # ------------------------------------------------------------------ primitives
    def call_primitive(
        self,
        name: str,
        args: list[tuple[Any, Span]],
        kwargs: dict[str, tuple[Any, Span]],
        span: Span,
        frame: Frame | None = None,
        op_span: Span | None = None,
    ) -> Any:
        from .primitives import bind, resolve, settle_scalars

        prim = resolve(name, len(args), frozenset(kwargs)) or REGISTRY.get(name)
        if prim is None:
            return self.err("E0115", f"`{name}` cannot be called like this", span)
        typed: dict[int, Tensor] = {}
        pos_in: list[Any] = []
        for v, _ in args:
            pos_in.append(self._to_bind(v, typed))
        kw_in = {k: self._to_bind(v, typed) for k, (v, _) in kwargs.items()}
        try:
            operands, attrs = bind(prim, pos_in, kw_in, name=name)
        except ShapeError as se:
            return self._shape_error(se, args, kwargs, span)
        if prim.name in _FOLDABLE and operands and all(isinstance(o, Scalar) for o in operands):
            return self._fold(prim, operands, attrs, span)
        try:
            settled = settle_scalars(operands)
        except ShapeError as se:
            return self._shape_error(se, args, kwargs, span)
        values: list[Any] = []
        for o, t in zip(operands, settled, strict=True):
            if isinstance(o, Scalar):
                arr = np.asarray(o.value).astype(t.dtype.numpy)
                values.append(Tensor(self.graph.const(arr, span, self.scope_path)))
            else:
                values.append(typed[id(o)])
        return self.emit(
            prim.name, values, attrs, span, frame, args=args, kwargs=kwargs, op_span=op_span
        )

    def _to_bind(self, v: Any, typed: dict[int, Tensor]) -> Any:
        if isinstance(v, Tensor):
            t = TensorType(v.type.dtype, v.type.shape)  # a fresh object, so that identity maps back
            typed[id(t)] = v
            return t
        if isinstance(v, Dim) and v.is_const:
            return int(v)
        if isinstance(v, list | tuple):
            return type(v)(self._to_bind(x, typed) for x in v)
        return v

    def _fold(self, prim: Any, operands: list[Scalar], attrs: dict[str, Any], span: Span) -> Any:
        arrays = [np.asarray(o.value, dtype=np.float64) for o in operands]
        with np.errstate(all="ignore"):
            (out,) = prim.evaluate(arrays, attrs)
        value = float(out)
        if (
            all(isinstance(o.value, int) and not isinstance(o.value, bool) for o in operands)
            and prim.name in ("add", "sub", "mul", "neg", "abs", "maximum", "minimum")
            and value.is_integer()
        ):
            return Dim.of(int(value))
        return value

    def emit(
        self,
        op: str,
        values: list[Tensor],
        attrs: dict[str, Any],
        span: Span,
        frame: Frame | None = None,
        args=None,
        kwargs=None,
        op_span: Span | None = None,
    ) -> Any:
        prim = REGISTRY[op]
        try:
            outs = prim.infer([v.type for v in values], attrs)
        except ShapeError as se:
            if args is not None:
                from .primitives import relocate

                se = relocate(se, prim, len(args), (kwargs or {}).keys())
            return self._shape_error(se, args or [], kwargs or {}, span, op_span)
        node = self.graph.add_node(
            op, [v.value for v in values], tuple(outs), attrs, self.scope_path, span
        )
        res = [Tensor(v) for v in node.outputs]
        return res[0] if len(res) == 1 else tuple(res)

    def _shape_error(
        self, se: ShapeError, args, kwargs, span: Span, op_span: Span | None = None
    ) -> Any:
        where = span
        if se.arg is not None and se.arg < len(args):
            where = args[se.arg][1]
        elif se.kwarg is not None and se.kwarg in kwargs:
            where = kwargs[se.kwarg][1]
        labels = ()
        if where is not span and op_span is None:
            labels = ()
        return self.err(
            se.code,
            se.message,
            where,
            label=se.label,
            notes=tuple(se.notes),
            help=se.help,
            labels=labels,
        )


def _kind_ok(kind: str, v: Any) -> bool:
    match kind:
        case "int" | "dim":
            return isinstance(v, Dim)
        case "float":
            return isinstance(v, float | Dim) and not isinstance(v, bool)
        case "bool":
            return isinstance(v, bool)
    return True


def _with_label(d, span: Span, message: str):
    from dataclasses import replace

    return replace(d, labels=d.labels + (Label(span, message),))


__all__ = ["CallsMixin", "RangeVal", "DType"]
