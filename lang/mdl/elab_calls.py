"""Elaboration of calls, instantiation, attributes and indexing (part of elaborate.py).

Calls to primitives go through the registry's binder and shape rule and emit
one node; calls to `fn`s and layer instances evaluate their bodies inline with
their arguments matched against the declared types.
"""

from __future__ import annotations

import difflib
from typing import Any

from .diagnostics import Label
from .dims import Dim
from .elab_params import ParamsMixin
from .elab_prims import PrimsMixin
from .elab_scope import Frame, Scope
from .span import Span
from .syntax import ast
from .values import (
    POISON,
    CtArgs,
    FnRef,
    Instance,
    LayerRef,
    Method,
    PrimRef,
    SequentialSpec,
    Tensor,
    describe,
)

MAX_CALL_DEPTH = 64


class CallsMixin(ParamsMixin, PrimsMixin):
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
        inst.called = True
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
        # the declared result type is matched with the dims bound by the inputs, as names:
        # reading them from the body's scope too would substitute them twice
        signature_scope = ScopeT(None)
        signature_scope.vars = {k: v for k, v in scope.vars.items() if k not in bindings}
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
            result = self.run_body(decl, callee_frame, scope)  # handles `return` itself
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
                decl.ret, result, signature_scope, bindings, f"the result of `{decl.name.name}`"
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
