"""A module's syntax tree -> every name in it, tied to the definition it means.

This is the editor's name resolution: it reads the tree only (no elaboration),
so it works on files that do not check, and it follows the scoping rules of the
elaborator: compile-time arguments, inputs and the dims their types introduce
are visible in the whole declaration; a `let` from the end of its statement to
the end of its block (a later `let` of the same name shadows it); loop variables
inside their loop. Top-level names come from the loader's module tables, so
imported declarations resolve into the module (or `stdlib/` file) that defines
them. Keyword arguments resolve to the parameter of the declaration called.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .resolve import ImportedDecl, ModuleInfo
from .span import Span
from .syntax import ast

TENSOR_METHODS = ("T", "shape", "ndim", "dtype")
TYPE_NAMES = ("int", "float", "bool", "dim")
KEYWORDS = (
    "fn", "layer", "model", "import", "from", "as", "let", "return", "for", "in", "if",
    "else", "param", "buffer", "and", "or", "not", "true", "false",
)  # fmt: skip


@dataclass(frozen=True, slots=True, eq=False)
class Definition:
    name: str
    kind: str  # module fn layer model ctparam input output dim let loop param buffer
    span: Span  # the defining name (a module: the start of its file)
    path: str  # the file it is in, resolved (a module: the module's file)
    key: tuple  # identifies it across files and analyses
    decl: ast.Decl | None  # the top-level declaration it belongs to (or is)
    node: (
        Any  # Decl, CtParam, Param, NamedOutput, ParamDecl, Ident or DimName; a module's ModuleInfo
    )
    visible: tuple[int, int] = (0, 0)  # offsets where a local can be used


@dataclass(frozen=True, slots=True, eq=False)
class Occurrence:
    span: Span
    name: str
    target: Definition | None
    builtin: str | None  # primitive dtype type constant method initializer kwarg Sequential
    is_definition: bool
    node: Any


@dataclass(eq=False)
class Bound:
    """One module's names: `occurrences` in source order, its local and top-level definitions."""

    info: ModuleInfo
    path: str
    occurrences: list[Occurrence]
    definitions: list[Definition]
    callees: dict[Definition, ast.Decl]  # `let fc = nn.Dense[...]` -> Dense
    _by_node: dict[int, Occurrence] | None = None
    _start_list: list[int] | None = None

    def at(self, offset: int, strict: bool = False) -> Occurrence | None:
        """The name whose text holds the character at `offset`, or (unless `strict`) that ends
        right before it: a cursor just after a name is on it, a hover over `(` is not."""
        i = bisect_right(self._starts(), offset)
        for occ in reversed(self.occurrences[max(0, i - 2) : i]):  # names do not overlap
            if occ.span.start <= offset < occ.span.end:
                return occ
        if strict:
            return None
        for occ in reversed(self.occurrences[max(0, i - 2) : i]):
            if occ.span.end == offset:
                return occ
        return None

    def of_node(self, node: Any) -> Occurrence | None:
        if self._by_node is None:
            self._by_node = {id(o.node): o for o in self.occurrences}
        return self._by_node.get(id(node))

    def _starts(self) -> list[int]:
        if self._start_list is None:
            self._start_list = [o.span.start for o in self.occurrences]
        return self._start_list


class Tables:
    """Top-level definitions of every loaded module, made once per module."""

    def __init__(self, real_paths: dict[str, str], modules: dict[str, ModuleInfo]):
        self.real_paths = real_paths  # shown path -> resolved path (Loader.real_paths)
        self.modules = modules  # resolved path -> module (Loader.modules)
        self._tops: dict[int, dict[str, Definition]] = {}
        self._modules: dict[int, Definition] = {}

    def real(self, info: ModuleInfo) -> str:
        return self.real_paths.get(info.path, info.path)

    def find_module(self, path: tuple[ast.Ident, ...], importer: str) -> ModuleInfo | None:
        """The loaded module an import path names, looked up as the loader does: beside the
        importing file first, then in the standard library."""
        from .resolve import stdlib_dir

        rel = Path(*[p.name for p in path]).with_suffix(".mdl")
        for base in (Path(importer).parent, stdlib_dir()):
            info = self.modules.get(str((base / rel).resolve()))
            if info is not None:
                return info
        return None

    def module_def(self, info: ModuleInfo) -> Definition:
        d = self._modules.get(id(info))
        if d is None:
            start = Span(info.path, 1, 1, 1, 1, 0, 0)
            real = self.real(info)
            d = Definition(info.name, "module", start, real, ("module", real), None, info)
            self._modules[id(info)] = d
        return d

    def tops(self, info: ModuleInfo) -> dict[str, Definition]:
        out = self._tops.get(id(info))
        if out is None:
            real = self.real(info)
            out = {}
            for item in info.tree.items:
                if isinstance(item, ast.Decl) and item.name.name not in out:
                    sp = item.name.span
                    out[item.name.name] = Definition(
                        item.name.name, item.kind, sp, real, (real, sp.start), item, item
                    )
            self._tops[id(info)] = out
        return out

    def global_def(self, info: ModuleInfo, name: str) -> Definition | None:
        value = info.names.get(name)
        match value:
            case ast.Decl():
                return self.tops(info).get(name)
            case ImportedDecl():
                return self.tops(value.module).get(value.decl.name.name)
            case ModuleInfo():
                return self.module_def(value)
        return None


def bind_module(info: ModuleInfo, tables: Tables) -> Bound:
    b = _Binder(info, tables)
    b.module()
    b.occurrences.sort(key=lambda o: o.span.start)
    return Bound(info, tables.real(info), b.occurrences, b.definitions, b.callees)


class _Binder:
    def __init__(self, info: ModuleInfo, tables: Tables):
        from .elaborate import BUILTIN_CONSTANTS
        from .primitives import SURFACE_NAMES
        from .types import DType

        self.info = info
        self.tables = tables
        self.path = tables.real(info)
        self.occurrences: list[Occurrence] = []
        self.definitions: list[Definition] = []
        self.scopes: list[dict[str, Definition]] = []
        self.ends: list[int] = []  # where each scope's names stop being visible
        self.decl: ast.Decl | None = None
        self.callees: dict[Definition, ast.Decl] = {}  # let-bound layers -> their declaration
        self.constants = set(BUILTIN_CONSTANTS)
        self.primitives = SURFACE_NAMES
        self.dtypes = {d.value for d in DType}

    # ------------------------------------------------------------ recording
    def use(self, name: str, span: Span, node: Any, target: Definition | None, builtin=None):
        self.occurrences.append(Occurrence(span, name, target, builtin, False, node))

    def define(self, ident: ast.Ident, kind: str, node: Any, visible_from: int) -> Definition:
        d = Definition(
            ident.name,
            kind,
            ident.span,
            self.path,
            (self.path, ident.span.start),
            self.decl,
            node,
            (visible_from, self.ends[-1]),
        )
        self.scopes[-1][ident.name] = d
        self.definitions.append(d)
        self.occurrences.append(Occurrence(ident.span, ident.name, d, None, True, node))
        return d

    def push(self, end: int) -> None:
        self.scopes.append({})
        self.ends.append(end)

    def pop(self) -> None:
        self.scopes.pop()
        self.ends.pop()

    def lookup(self, name: str) -> Definition | None:
        for scope in reversed(self.scopes):
            if name in scope:
                return scope[name]
        return self.tables.global_def(self.info, name)

    # ------------------------------------------------------------ top level
    def module(self) -> None:
        tops = self.tables.tops(self.info)
        for item in self.info.tree.items:
            match item:
                case ast.Import():
                    self.import_path(item.path)
                    bound = item.alias or item.path[-1]
                    if item.alias is not None:
                        target = self.tables.global_def(self.info, bound.name)
                        self.use(bound.name, bound.span, bound, target)
                case ast.FromImport():
                    mod = self.import_path(item.path)
                    for n in item.names:
                        target = self.tables.global_def(mod, n.name) if mod else None
                        self.use(n.name, n.span, n, target)
                case ast.Decl():
                    d = tops.get(item.name.name)
                    if d is not None and d.node is item:
                        self.occurrences.append(
                            Occurrence(item.name.span, item.name.name, d, None, True, item)
                        )
                        self.definitions.append(d)
                    self.declaration(item)

    def import_path(self, path: tuple[ast.Ident, ...]) -> ModuleInfo | None:
        """`import a.b` names module `b`: its last part points at the module's file."""
        mod = self.info.names.get(path[-1].name)
        if not isinstance(mod, ModuleInfo):
            mod = self.tables.find_module(path, self.path)
        target = self.tables.module_def(mod) if mod is not None else None
        self.use(path[-1].name, path[-1].span, path[-1], target)
        return mod

    def declaration(self, decl: ast.Decl) -> None:
        self.decl = decl
        self.push(decl.span.end)
        start = decl.span.start
        for c in decl.ctparams or ():
            if c.kind is not None:
                self.use(c.kind.name, c.kind.span, c.kind, None, "type")
            if c.default is not None:
                self.expr(c.default)
            self.define(c.name, "ctparam", c, start)
        for p in decl.params:
            self.type_expr(p.type, define_dims=True)
            for e in p.index_range or ():
                self.expr(e)
            if p.default is not None:
                self.expr(p.default)
            self.define(p.name, "input", p, start)
        if isinstance(decl.ret, tuple):
            for o in decl.ret:
                self.type_expr(o.type, define_dims=True)
                self.define(o.name, "output", o, start)
        elif decl.ret is not None:
            self.type_expr(decl.ret, define_dims=True)
        if isinstance(decl.body, ast.Block):
            self.block(decl.body)
        else:
            self.expr(decl.body)
        self.pop()
        self.decl = None

    # ------------------------------------------------------------ types
    def type_expr(self, t: ast.TypeExpr, define_dims: bool = False) -> None:
        match t:
            case ast.TensorTypeExpr():
                self.use(t.dtype.name, t.dtype.span, t.dtype, None, "dtype")
                for d in t.dims:
                    self.dim(d, define_dims)
            case ast.ScalarTypeExpr():
                kind = "dtype" if t.name.name in self.dtypes else "type"
                self.use(t.name.name, t.name.span, t.name, None, kind)

    def dim(self, d: ast.DimExpr, define: bool) -> None:
        match d:
            case ast.DimName() | ast.DimVariadic() if d.name != "_":
                target = self.lookup(d.name)
                if target is None and define:
                    ident = ast.Ident(d.name, _name_span(d))
                    self.define(ident, "dim", d, self.decl.span.start if self.decl else 0)
                else:
                    self.use(d.name, _name_span(d), d, target)
            case ast.DimBinary():
                self.dim(d.left, define)
                self.dim(d.right, define)

    # ------------------------------------------------------------ statements
    def block(self, block: ast.Block) -> None:
        self.push(block.span.end)
        for st in block.stmts:
            self.stmt(st)
        if block.value is not None:
            self.expr(block.value)
        self.pop()

    def stmt(self, st: ast.Stmt) -> None:
        match st:
            case ast.Let():
                self.expr(st.value)
                callee = self.callee(st.value)
                for n in st.names:
                    d = self.define(n, "let", n, st.span.end)
                    if callee is not None and len(st.names) == 1:
                        self.callees[d] = callee
            case ast.Assign():
                self.expr(st.value)
                self.use(st.name.name, st.name.span, st.name, self.lookup(st.name.name))
            case ast.Return():
                for v in st.values:
                    self.expr(v)
            case ast.For():
                self.expr(st.iterable)
                self.push(st.span.end)
                self.define(st.var, "loop", st.var, st.body.span.start)
                self.block(st.body)
                self.pop()
            case ast.ParamDecl():
                self.type_expr(st.type)
                if st.init is not None:
                    self.initializer(st.init)
                self.define(st.name, "buffer" if st.is_buffer else "param", st, st.span.end)
            case ast.ExprStmt():
                self.expr(st.value)

    def initializer(self, e: ast.Expr) -> None:
        """`= normal(std=1.0)` or `= zeros`: initialiser names live in their own namespace."""
        match e:
            case ast.Name():
                self.use(e.id, e.span, e, None, "initializer")
            case ast.Call(func=ast.Name() as f):
                self.use(f.id, f.span, f, None, "initializer")
                for a in e.args:
                    if a.name is not None:
                        self.use(a.name.name, a.name.span, a.name, None, "kwarg")
                    self.expr(a.value)
            case _:
                self.expr(e)

    # ------------------------------------------------------------ expressions
    def expr(self, e: ast.Expr | None) -> None:
        match e:
            case None | ast.IntLit() | ast.FloatLit() | ast.BoolLit():
                return
            case ast.Name():
                self.name(e)
            case ast.Binary():
                self.expr(e.left)
                self.expr(e.right)
            case ast.Unary():
                self.expr(e.operand)
            case ast.Call():
                self.expr(e.func)
                callee = self.callee(e.func)
                for a in e.args:
                    self.arg(a, callee, "input")
            case ast.Subscript():
                self.expr(e.value)
                callee = self.callee(e.value)
                for it in e.items:
                    match it:
                        case ast.Arg():
                            self.arg(it, callee, "ctparam")
                        case ast.SliceItem():
                            for part in (it.start, it.stop, it.step):
                                self.expr(part)
            case ast.Attribute():
                self.attribute(e)
            case ast.TupleLit() | ast.ListLit():
                for x in e.items:
                    self.expr(x)
            case ast.ListComp():
                self.expr(e.iterable)
                self.push(e.span.end)
                self.define(e.var, "loop", e.var, e.span.start)
                self.expr(e.element)
                self.pop()
            case ast.IfExpr():
                self.expr(e.cond)
                self.block(e.then)
                if isinstance(e.orelse, ast.Block):
                    self.block(e.orelse)
                else:
                    self.expr(e.orelse)

    def name(self, e: ast.Name) -> None:
        target = self.lookup(e.id)
        builtin = None
        if target is None:
            if e.id in self.primitives:
                builtin = "primitive"
            elif e.id in self.dtypes:
                builtin = "dtype"
            elif e.id in self.constants:
                builtin = "constant"
            elif e.id == "Sequential":
                builtin = "Sequential"
        self.use(e.id, e.span, e, target, builtin)

    def attribute(self, e: ast.Attribute) -> None:
        self.expr(e.value)
        base = self.lookup(e.value.id) if isinstance(e.value, ast.Name) else None
        if base is not None and base.kind == "module":
            target = self.tables.global_def(base.node, e.attr.name)
            self.use(e.attr.name, e.attr.span, e.attr, target)
            return
        known = e.attr.name in self.primitives or e.attr.name in TENSOR_METHODS
        self.use(e.attr.name, e.attr.span, e.attr, None, "method" if known else None)

    def arg(self, a: ast.Arg, callee: ast.Decl | None, kind: str) -> None:
        if a.name is not None:
            target = None
            if callee is not None:
                target = self.param_def(callee, a.name.name, kind)
            self.use(a.name.name, a.name.span, a.name, target, None if target else "kwarg")
        self.expr(a.value)

    def callee(self, e: ast.Expr) -> ast.Decl | None:
        """The declaration an expression names, seen through `[...]` and `let` bindings."""
        match e:
            case ast.Subscript():
                return self.callee(e.value)
            case ast.Name():
                d = self.lookup(e.id)
                if d is not None and d.kind in ("fn", "layer", "model"):
                    return d.node
                return self.callees.get(d) if d is not None else None
            case ast.Attribute(value=ast.Name()):
                base = self.lookup(e.value.id)
                if base is not None and base.kind == "module":
                    d = self.tables.global_def(base.node, e.attr.name)
                    if d is not None and d.kind in ("fn", "layer", "model"):
                        return d.node
        return None

    def param_def(self, callee: ast.Decl, name: str, kind: str) -> Definition | None:
        """The Definition of a callee's parameter, made the way the callee's own binding makes it."""
        owner = self.owner_of(callee)
        if owner is None:
            return None
        if kind == "ctparam":
            nodes = [(c.name, c) for c in callee.ctparams or ()]
        else:
            nodes = [(p.name, p) for p in callee.params]
        for ident, node in nodes:
            if ident.name == name:
                return Definition(
                    name,
                    kind,
                    ident.span,
                    owner,
                    (owner, ident.span.start),
                    callee,
                    node,
                    (callee.span.start, callee.span.end),
                )
        return None

    def owner_of(self, decl: ast.Decl) -> str | None:
        if decl.span.file == self.info.path:
            return self.path
        real = self.tables.real_paths.get(decl.span.file)
        return real


def _name_span(d: ast.DimName | ast.DimVariadic) -> Span:
    """A variadic `*S` is named by `S`, one character after the span's start."""
    sp = d.span
    if isinstance(d, ast.DimVariadic) and sp.end - sp.start == len(d.name) + 1:
        return Span(sp.file, sp.line, sp.col + 1, sp.end_line, sp.end_col, sp.start + 1, sp.end)
    return sp
