"""`param` and `buffer` declarations in elaboration: paths, shapes, initialisers.

Part of the elaborator (elaborate.py): a mixin of the `Elaborator` class.
"""

from __future__ import annotations

import difflib
import math

from .diagnostics import Label
from .dims import Dim
from .elab_scope import Frame, Scope
from .graph import Parameter
from .initializers import INITIALIZER_NAMES, InitError, InitSpec, validate_init
from .syntax import ast
from .types import TensorType
from .values import POISON, Tensor, describe

MAX_PARAM_ELEMENTS = 2**40


class ParamsMixin:
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
        if all(d.is_const for d in dims) and math.prod(int(d) for d in dims) > MAX_PARAM_ELEMENTS:
            self.err(
                "E0409",
                f"`{st.name.name}` would have {math.prod(int(d) for d in dims)} elements",
                st.type.span,
                notes=(f"a parameter holds at most 2**40 ({MAX_PARAM_ELEMENTS}) elements",),
            )
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
