"""Parse tree -> AST nodes (syntax/ast.py) with exact spans.

The tree is Lark's (Tree/Token) or fastparse's (Node/Tok), which have the same shape: a token
(a `str` or a `Tok`, `str(tok)` is its text) has positions, a node `data`, `children`, `meta`.
"""

from __future__ import annotations

from typing import Any

from ..diagnostics import Diagnostic
from ..span import SourceFile, Span
from . import ast
from .fastparse import Tok

MAX_DEPTH = 200
_TOKENS = (str, Tok)  # Lark's Token is a str


class TooDeep(Exception):
    def __init__(self, span: Span):
        super().__init__("too deep")
        self.span = span


def _is_node(x: Any) -> bool:
    return x is not None and not isinstance(x, _TOKENS)


def tree_depth(tree: Any) -> tuple[int, Any]:
    """Depth of the parse tree, computed without recursion, and its deepest node."""
    best, deepest = 0, tree
    stack: list[tuple[Any, int]] = [(tree, 1)]
    while stack:
        t, d = stack.pop()
        if d > best:
            best, deepest = d, t
        for c in t.children:
            if _is_node(c):
                stack.append((c, d + 1))
    return best, deepest


def build_items(tree: Any, src: SourceFile, comments: list[ast.Comment]):
    b = _Builder(src, comments)
    items = [b.item(c) for c in tree.children if _is_node(c)]
    return items, b.diags


class _Builder:
    def __init__(self, src: SourceFile, comments: list[ast.Comment]):
        self.src = src
        self.starts = src.line_starts
        self.comments = comments
        self.diags: list[Diagnostic] = []
        self.path = src.path
        # a declaration parsed on its own: Lark counts from its first line and character
        self.line_shift = getattr(src, "line_shift", 0)
        self.offset = getattr(src, "offset", 0)

    # ------------------------------------------------------------ spans
    def sp(self, x: Any) -> Span:
        """Lark's own positions (1-based lines and columns), shifted to the whole file."""
        if isinstance(x, _TOKENS):
            m = x
        else:
            m = x.meta
            if m.empty:
                return self.src.span(0, 0, self.starts)
        shift, off = self.line_shift, self.offset
        return Span(
            self.path,
            m.line + shift,
            m.column,
            m.end_line + shift,
            m.end_column,
            m.start_pos + off,
            m.end_pos + off,
        )

    def ident(self, tok: Any) -> ast.Ident:
        return ast.Ident(str(tok), self.sp(tok))

    # ------------------------------------------------------------ items
    def item(self, t: Any) -> ast.Item:
        match t.data:
            case "import_decl":
                path = tuple(self.ident(n) for n in t.children[0].children)
                alias = self.ident(t.children[1]) if len(t.children) > 1 else None
                return ast.Import(path, alias, self.sp(t))
            case "from_decl":
                path = tuple(self.ident(n) for n in t.children[0].children)
                return ast.FromImport(
                    path, tuple(self.ident(n) for n in t.children[1:]), self.sp(t)
                )
            case "fn_decl" | "layer_decl" | "model_decl":
                return self.decl(t)
        raise AssertionError(f"unknown item {t.data}")

    def decl(self, t: Any) -> ast.Decl:
        kind = t.data.removesuffix("_decl")
        name = self.ident(t.children[0])
        ctparams = None
        params: tuple[ast.Param, ...] = ()
        ret = None
        body = None
        for c in t.children[1:]:
            match c.data:
                case "ctparams":
                    ctparams = tuple(self.ctparam(p) for p in c.children)
                case "params":
                    params = tuple(self.param(p) for p in c.children)
                case "ret_single":
                    ret = self.type_expr(c.children[0])
                case "ret_named":
                    ret = tuple(
                        ast.NamedOutput(
                            self.ident(n.children[0]), self.type_expr(n.children[1]), self.sp(n)
                        )
                        for n in c.children
                    )
                case "fn_body":
                    inner = c.children[0]
                    body = self.block(inner) if inner.data == "block" else self.expr(inner)
                case "block":
                    body = self.block(c)
        assert body is not None
        return ast.Decl(kind, name, ctparams, params, ret, body, self.doc_for(t), self.sp(t))

    def doc_for(self, t: Any) -> str | None:
        line = self.sp(t).line
        lines: list[str] = []
        by_line = {c.span.line: c for c in self.comments if c.span.col == 1}
        n = line - 1
        while n in by_line:
            lines.append(by_line[n].text.lstrip("#").strip())
            n -= 1
        return "\n".join(reversed(lines)) if lines else None

    def ctparam(self, t: Any) -> ast.CtParam:
        name = self.ident(t.children[0])
        kind = None
        default = None
        for c in t.children[1:]:
            if isinstance(c, _TOKENS):
                kind = self.ident(c)
            elif c is not None:
                default = self.expr(c)
        return ast.CtParam(name, kind, default, self.sp(t))

    def param(self, t: Any) -> ast.Param:
        ch = t.children
        name = self.ident(ch[0])
        typ = self.type_expr(ch[1])
        rest = [c for c in ch[2:] if c is not None]
        rng = None
        default = None
        if len(rest) >= 2:
            rng = (self.expr(rest[0]), self.expr(rest[1]))
            rest = rest[2:]
        if rest:
            default = self.expr(rest[0])
        return ast.Param(name, typ, rng, default, self.sp(t))

    # ------------------------------------------------------------ types
    def type_expr(self, t: Any) -> ast.TypeExpr:
        if t.data == "scalar_type":
            return ast.ScalarTypeExpr(self.ident(t.children[0]), self.sp(t))
        dtype = self.ident(t.children[0])
        return ast.TensorTypeExpr(dtype, tuple(self.dim(d) for d in t.children[1:]), self.sp(t))

    def dim(self, t: Any) -> ast.DimExpr:
        match t.data:
            case "dim_variadic":
                return ast.DimVariadic(str(t.children[0]), self.sp(t))
            case "dim_name":
                return ast.DimName(str(t.children[0]), self.sp(t))
            case "dim_int":
                return ast.DimInt(_int(t.children[0]), self.sp(t))
        op = {"dim_add": "+", "dim_sub": "-", "dim_mul": "*", "dim_div": "/", "dim_floordiv": "//"}[
            t.data
        ]
        return ast.DimBinary(op, self.dim(t.children[0]), self.dim(t.children[1]), self.sp(t))

    # ------------------------------------------------------------ statements
    def block(self, t: Any) -> ast.Block:
        stmts: list[ast.Stmt] = []
        value = None
        last = len(t.children) - 1
        for i, c in enumerate(t.children):
            if c.data in _STMTS:
                stmts.append(self.stmt(c))
            elif i == last:
                value = self.expr(c)
            elif c.data == "if_expr":
                e = self.expr(c)
                stmts.append(ast.ExprStmt(e, e.span))
            else:
                e = self.expr(c)
                self.diags.append(
                    Diagnostic(
                        "E0010",
                        "expression result is unused",
                        e.span,
                        label="only the last item of a block may be a bare expression",
                        help="bind it with `let`, or join it to the line above if it continues it",
                    )
                )
        return ast.Block(tuple(stmts), value, self.sp(t))

    def stmt(self, t: Any) -> ast.Stmt:
        ch = t.children
        match t.data:
            case "let_stmt":
                return ast.Let(tuple(self.ident(n) for n in ch[:-1]), self.expr(ch[-1]), self.sp(t))
            case "assign_stmt":
                return ast.Assign(self.ident(ch[0]), self.expr(ch[1]), self.sp(t))
            case "return_stmt":
                return ast.Return(tuple(self.expr(c) for c in ch), self.sp(t))
            case "for_stmt":
                return ast.For(self.ident(ch[0]), self.expr(ch[1]), self.block(ch[2]), self.sp(t))
            case "param_decl" | "buffer_decl":
                init = self.expr(ch[2]) if len(ch) > 2 and ch[2] is not None else None
                return ast.ParamDecl(
                    self.ident(ch[0]),
                    self.type_expr(ch[1]),
                    init,
                    t.data == "buffer_decl",
                    self.sp(t),
                )
        raise AssertionError(f"unknown statement {t.data}")

    # ------------------------------------------------------------ expressions
    def expr(self, t: Any) -> ast.Expr:
        sp = self.sp(t)
        ch = t.children
        match t.data:
            case "name":
                return ast.Name(str(ch[0]), sp)
            case "int_lit":
                return ast.IntLit(_int(ch[0]), sp)
            case "float_lit":
                text = str(ch[0])
                return ast.FloatLit(float(text.replace("_", "")), text, sp)
            case "true_lit":
                return ast.BoolLit(True, sp)
            case "false_lit":
                return ast.BoolLit(False, sp)
            case "binary" | "compare":
                op = ch[1]
                return ast.Binary(str(op), self.expr(ch[0]), self.expr(ch[2]), self.sp(op), sp)
            case "pow_op":
                return ast.Binary("**", self.expr(ch[0]), self.expr(ch[2]), self.sp(ch[1]), sp)
            case "or_op" | "and_op" | "range_op":
                op = {"or_op": "or", "and_op": "and", "range_op": ".."}[t.data]
                left, right = self.expr(ch[0]), self.expr(ch[1])
                return ast.Binary(op, left, right, self._between(left.span, right.span), sp)
            case "neg":
                return ast.Unary("-", self.expr(ch[0]), sp)
            case "not_op":
                return ast.Unary("not", self.expr(ch[0]), sp)
            case "call":
                return ast.Call(self.expr(ch[0]), tuple(self.arg(a) for a in ch[1:]), sp)
            case "subscript":
                return ast.Subscript(self.expr(ch[0]), tuple(self.subitem(a) for a in ch[1:]), sp)
            case "attribute":
                return ast.Attribute(self.expr(ch[0]), self.ident(ch[1]), sp)
            case "tuple_lit":
                return ast.TupleLit(tuple(self.expr(c) for c in ch), sp)
            case "list_lit":
                return ast.ListLit(tuple(self.expr(c) for c in ch), sp)
            case "list_comp":
                return ast.ListComp(self.expr(ch[0]), self.ident(ch[1]), self.expr(ch[2]), sp)
            case "if_expr":
                other = ch[2]
                orelse = self.block(other) if other.data == "block" else self.expr(other)
                return ast.IfExpr(self.expr(ch[0]), self.block(ch[1]), orelse, sp)
        raise AssertionError(f"unknown expression {t.data}")

    def _between(self, left: Span, right: Span) -> Span:
        return self.src.span(left.end, right.start, self.starts)

    def arg(self, t: Any) -> ast.Arg:
        if t.data == "kwarg":
            return ast.Arg(self.ident(t.children[0]), self.expr(t.children[1]), self.sp(t))
        return ast.Arg(None, self.expr(t.children[0]), self.sp(t))

    def subitem(self, t: Any) -> ast.SubItem:
        match t.data:
            case "kwarg":
                return self.arg(t)
            case "ellipsis":
                return ast.EllipsisItem(self.sp(t))
            case "slice_item":
                start, stop, step_tree = t.children
                step = None
                if step_tree is not None and step_tree.children[0] is not None:
                    step = self.expr(step_tree.children[0])
                return ast.SliceItem(
                    self.expr(start) if start is not None else None,
                    self.expr(stop) if stop is not None else None,
                    step,
                    self.sp(t),
                )
        e = self.expr(t)
        return ast.Arg(None, e, e.span)


_STMTS = frozenset(
    {"let_stmt", "assign_stmt", "return_stmt", "for_stmt", "param_decl", "buffer_decl"}
)


def _int(tok: Any) -> int:
    return int(str(tok).replace("_", ""))
