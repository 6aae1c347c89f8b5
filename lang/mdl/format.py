"""Source text -> canonical source text: the formatter behind `mdlc fmt`.

The tree is rebuilt from the AST (so layout is canonical), with every comment
put back where format_layout.attach_comments says it belongs and literals
written as the user wrote them. format_layout.render chooses the line breaks.
`format_source` refuses code with syntax errors, and checks its own output:
it must parse to the same tree with the same comments, or it is not returned.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import fields

from .diagnostics import Diagnostic
from .format_layout import (
    EMPTY,
    HARD,
    LINE,
    SOFT,
    CommentMap,
    Doc,
    IfBreak,
    LineSuffix,
    Text,
    attach_comments,
    concat,
    group,
    indent,
    render,
)
from .syntax import ast
from .syntax.parser import parse

WIDTH = 100

# Binding strength (grammar.lark), loosest first; an operand binding looser
# than its position asks for is wrapped in parentheses.
_IF, _OR, _AND, _NOT, _COMPARE, _RANGE, _SUM, _PRODUCT, _NEG, _POW, _POSTFIX = range(11)
_BINARY_LEVEL = {
    "or": _OR, "and": _AND, "..": _RANGE, "+": _SUM, "-": _SUM,
    "*": _PRODUCT, "/": _PRODUCT, "//": _PRODUCT, "@": _PRODUCT, "%": _PRODUCT, "**": _POW,
    **{op: _COMPARE for op in ("==", "!=", "<", "<=", ">", ">=")},
}  # fmt: skip
# level -> (weakest left operand, weakest right operand) the grammar accepts
_OPERANDS = {
    _OR: (_OR, _AND), _AND: (_AND, _NOT), _COMPARE: (_RANGE, _RANGE), _RANGE: (_SUM, _SUM),
    _SUM: (_SUM, _PRODUCT), _PRODUCT: (_PRODUCT, _NEG), _POW: (_POSTFIX, _NEG),
}  # fmt: skip
_LEFT_ASSOC = {_OR, _AND, _SUM, _PRODUCT}


def format_source(text: str, path: str = "<input>") -> tuple[str | None, list[Diagnostic]]:
    """Formatted text, or None (with the diagnostics) when `text` does not parse cleanly."""
    module, diags = parse(text, path)
    if any(d.is_error for d in diags):
        return None, diags
    out = format_module(module, text)
    again, again_diags = parse(out, path)
    if any(d.is_error for d in again_diags) or not _same_program(module, again):
        return None, [*diags, Diagnostic(
            "E0901", "internal error: the formatted code differs from the source, please report",
            module.span, help="the file was left unchanged")]  # fmt: skip
    return out, diags


def format_module(module: ast.Module, source: str) -> str:
    """The canonical text of `module`, which was parsed from `source`."""
    if not module.items and not module.comments:
        return ""
    doc = _Printer(source, attach_comments(module, source)).module(module)
    return render(doc, WIDTH).strip("\n") + "\n"


class _Printer:
    def __init__(self, source: str, comments: CommentMap):
        self.source = source
        self.lines = source.split("\n")
        self.cm = comments

    # ------------------------------------------------------------ comments
    def blank_before(self, node) -> bool:
        line = node.span.line
        return line >= 2 and not self.lines[line - 2].strip()

    def lead(self, node) -> tuple[bool, list[Doc | str]]:
        """The comment lines above `node`; and whether a blank line preceded them."""
        entries = list(self.cm.leading.get(node, ()))
        node_blank = self.blank_before(node)
        hoisted = self.cm.hoisted.get(node, [])
        if hoisted:
            entries += [(hoisted[0], node_blank), *((h, False) for h in hoisted[1:])]
            node_blank = False
        parts: list[Doc | str] = []
        for k, (text, blank) in enumerate(entries):
            parts += [HARD, text, HARD] if k and blank else [text, HARD]
        if entries and node_blank:
            parts.append(HARD)
        return (entries[0][1] if entries else node_blank), parts

    def trail(self, key) -> Doc:
        text = self.cm.trailing.get(key)
        return LineSuffix("  " + text) if text else EMPTY

    def opening(self, key) -> Doc:
        text = self.cm.opening.get(key)
        return LineSuffix("  " + text) if text else EMPTY

    def dangling(self, key, after_items: bool) -> list[Doc | str]:
        parts: list[Doc | str] = []
        for k, (text, blank) in enumerate(self.cm.dangling.get(key, ())):
            parts += [HARD, HARD, text] if blank and (k or after_items) else [HARD, text]
        return parts

    # ------------------------------------------------------------ items
    def module(self, m: ast.Module) -> Doc:
        parts: list[Doc | str] = []
        prev = None
        for item in m.items:
            _, lead = self.lead(item)
            if prev is not None:
                grouped = isinstance(item, _IMPORTS) and isinstance(prev, _IMPORTS)
                parts += [HARD] if grouped else [HARD, HARD]
            parts += [*lead, self.item(item), self.trail(item)]
            prev = item
        tail = self.dangling(m, bool(m.items))
        return concat(*parts, *(tail if m.items else tail[1:]))

    def item(self, it: ast.Item) -> Doc:
        match it:
            case ast.Import(path=path, alias=alias):
                return Text(f"import {_dotted(path)}" + (f" as {alias.name}" if alias else ""))
            case ast.FromImport(path=path, names=names):
                return Text(f"from {_dotted(path)} import " + ", ".join(n.name for n in names))
        return self.decl(it)

    def decl(self, d: ast.Decl) -> Doc:
        head: list[Doc | str] = [f"{d.kind} {d.name.name}"]
        if d.ctparams is not None:
            ct = [(p, self.ctparam(p)) for p in d.ctparams]
            head.append(self.bracket((d, "ct"), "[", "]", ct))
        head.append(self.bracket((d, "params"), "(", ")", [(p, self.param(p)) for p in d.params]))
        if isinstance(d.ret, tuple):
            outs = [(o, concat(f"{o.name.name}: ", self.type(o.type))) for o in d.ret]
            head += [" -> ", self.bracket((d, "ret"), "(", ")", outs)]
        elif d.ret is not None:
            head += [" -> ", self.type(d.ret)]
        if isinstance(d.body, ast.Block):
            return concat(*head, " ", self.block(d.body, inline_ok=False))
        if isinstance(d.body, ast.IfExpr):
            return concat(*head, " = ", self.expr(d.body))
        return concat(*head, " =", group(indent(LINE, self.expr(d.body, top=True))))

    def ctparam(self, p: ast.CtParam) -> Doc:
        if p.default is None:
            return Text(p.name.name + (f": {p.kind.name}" if p.kind else ""))
        kind = f": {p.kind.name}" if p.kind else ""
        return concat(f"{p.name.name}{kind} = ", self.expr(p.default))

    def param(self, p: ast.Param) -> Doc:
        parts: list[Doc | str] = [f"{p.name.name}: ", self.type(p.type)]
        if p.index_range is not None:
            low, high = p.index_range
            parts += [" in ", self.expr(low, _NEG), "..", self.expr(high, _NEG)]
        if p.default is not None:
            parts += [" = ", self.expr(p.default)]
        return concat(*parts)

    # ------------------------------------------------------------ types
    def type(self, t: ast.TypeExpr) -> Doc:
        if isinstance(t, ast.ScalarTypeExpr):
            return Text(t.name.name)
        return Text(f"{t.dtype.name}[" + ", ".join(self.dim(d) for d in t.dims) + "]")

    def dim(self, d: ast.DimExpr, weakest: int = 0) -> str:
        match d:
            case ast.DimName(name=name):
                return name
            case ast.DimVariadic(name=name):
                return "*" + name
            case ast.DimInt(value=value):
                return self.literal(d, value)
            case ast.DimBinary(op=op, left=left, right=right):
                level = 0 if op in "+-" else 1
                text = f"{self.dim(left, level)} {op} {self.dim(right, level + 1)}"
                return f"({text})" if level < weakest else text
        raise AssertionError(f"unknown dim {d!r}")

    def literal(self, node, value: int) -> str:
        """An integer as written (`1_000`), when the source text still says so."""
        text = self.source[node.span.start : node.span.end]
        digits = text.replace("_", "")
        return text if digits.isdigit() and int(digits) == value else str(value)

    # ------------------------------------------------------------ statements
    def block(self, b: ast.Block, inline_ok: bool) -> Doc:
        items: list = [*b.stmts, *([b.value] if b.value is not None else [])]
        if inline_ok and len(items) == 1 and b.span.line == b.span.end_line:
            # kept on one line only when the user wrote it so and it fits
            return group("{", indent(LINE, self.stmt(items[0])), LINE, "}")
        tail = self.dangling(b, bool(items))
        if not items and not tail and b not in self.cm.opening:
            return Text("{}")
        body: list[Doc | str] = []
        for k, item in enumerate(items):
            blank, lead = self.lead(item)
            body += [HARD, HARD] if k and blank else [HARD]
            body += [*lead, self.stmt(item), self.trail(item)]
        return concat("{", self.opening(b), indent(*body, *tail), HARD, "}")

    def stmt(self, s) -> Doc:
        """A block item; a bare expression that would start with `param` is parenthesized."""
        match s:
            case ast.Let(names=names, value=value):
                return concat("let " + ", ".join(n.name for n in names), self.assigned(value))
            case ast.Assign(name=name, value=value):
                return concat(name.name, self.assigned(value))
            case ast.Return(values=values):
                if len(values) == 1:
                    return concat("return ", self.expr(values[0]))
                rest = [concat(",", LINE, self.expr(v)) for v in values[1:]]
                return group("return ", self.expr(values[0]), indent(*rest))
            case ast.For(var=var, iterable=iterable, body=body):
                return concat(
                    f"for {var.name} in ", self.expr(iterable), " ", self.block(body, True)
                )
            case ast.ParamDecl(name=name, type=typ, init=init, is_buffer=is_buffer):
                kind = "buffer" if is_buffer else "param"
                parts: list[Doc | str] = [f"{kind} {name.name}: ", self.type(typ)]
                if init is not None:
                    parts += [" = ", self.expr(init)]
                return concat(*parts)
            case ast.ExprStmt(value=value):
                return self.expr(value)
        if _leftmost_name(s) in ("param", "buffer"):  # else it would read as a declaration
            return concat("(", self.expr(s), ")")
        return self.expr(s)

    def assigned(self, value: ast.Expr) -> Doc:
        """` = value`; a long operator chain moves to the next line before it breaks."""
        if isinstance(value, ast.Binary):
            return concat(" =", group(indent(LINE, self.expr(value, top=True))))
        return concat(" = ", self.expr(value))

    # ------------------------------------------------------------ expressions
    def expr(self, e: ast.Expr, weakest: int = _IF, top: bool = False) -> Doc:
        """`e`, in parentheses if it binds looser than `weakest`.

        `top`: `e` starts its own indented line, so an operator chain need
        not indent its continuation lines further.
        """
        doc = self.bare(e, top)
        return concat("(", doc, ")") if _level(e) < weakest else doc

    def bare(self, e: ast.Expr, top: bool) -> Doc:
        match e:
            case ast.Name(id=name):
                return Text(name)
            case ast.IntLit(value=value):
                return Text(self.literal(e, value))
            case ast.FloatLit(text=text):
                return Text(text)
            case ast.BoolLit(value=value):
                return Text("true" if value else "false")
            case ast.Binary():
                return self.chain(e, top)
            case ast.Unary(op="-", operand=operand):
                double = isinstance(operand, ast.Unary) and operand.op == "-"
                return concat("- " if double else "-", self.expr(operand, _NEG))
            case ast.Unary(operand=operand):
                return concat("not ", self.expr(operand, _NOT))
            case ast.Call() | ast.Subscript() | ast.Attribute():
                return self.postfix(e)
            case ast.TupleLit(items=items):
                docs = [(x, self.expr(x)) for x in items]
                return self.bracket(e, "(", ")", docs, always_comma=len(items) == 1)
            case ast.ListLit(items=items):
                return self.bracket(e, "[", "]", [(x, self.expr(x)) for x in items])
            case ast.ListComp(element=element, var=var, iterable=iterable):
                loop = concat(f"for {var.name} in ", self.expr(iterable))
                return group("[", indent(SOFT, self.expr(element), LINE, loop), SOFT, "]")
            case ast.IfExpr():
                return self.if_expr(e)
        raise AssertionError(f"unknown expression {e!r}")

    def chain(self, e: ast.Binary, top: bool) -> Doc:
        """`a + b - c`: operands of one level, broken after the operators if too long."""
        level = _BINARY_LEVEL[e.op]
        left_weakest, right_weakest = _OPERANDS[level]
        rest: list[tuple[str, ast.Expr]] = []
        node: ast.Expr = e
        while (isinstance(node, ast.Binary) and _BINARY_LEVEL[node.op] == level
               and (node is e or level in _LEFT_ASSOC)):  # fmt: skip
            rest.append((node.op, node.right))
            node = node.left
        if level == _RANGE:  # `0..L`; operands with operators get parentheses, for the eye
            return concat(self.expr(node, _NEG), "..", self.expr(e.right, _NEG))
        first = self.expr(node, left_weakest)
        tail: list[Doc | str] = []
        for op, operand in reversed(rest):
            tail += [f" {op}", LINE, self.expr(operand, right_weakest)]
        return group(first, *tail) if top else group(first, indent(*tail))

    def postfix(self, e: ast.Expr) -> Doc:
        """Calls, subscripts and `.name`s; a chain of method calls breaks before each `.`."""
        segments: list[ast.Expr] = []
        node = e
        while isinstance(node, ast.Call | ast.Subscript | ast.Attribute):
            segments.append(node)
            node = node.func if isinstance(node, ast.Call) else node.value
        segments.reverse()
        head: list[Doc | str] = [self.expr(node, _POSTFIX)]
        links: list[list[ast.Expr]] = []
        for seg in segments:
            if isinstance(seg, ast.Attribute):
                links.append([seg])
            elif links:
                links[-1].append(seg)
            else:
                head.append(self.segment(seg))
        calls = sum(1 for link in links if any(isinstance(s, ast.Call) for s in link))
        if calls < 2:
            return concat(*head, *(self.segment(s) for link in links for s in link))
        if len(head) == 1 and isinstance(node, ast.Name) and len(node.id) <= 4:
            head += [self.segment(s) for s in links.pop(0)]  # `q.reshape(..)` stays joined
        broken = [concat(SOFT, *(self.segment(s) for s in link)) for link in links]
        return group(*head, indent(*broken))

    def segment(self, seg: ast.Expr) -> Doc:
        match seg:
            case ast.Attribute(attr=attr):
                return Text("." + attr.name)
            case ast.Call(args=args):
                return self.bracket((seg, "("), "(", ")", [(a, self.sub_item(a)) for a in args])
            case ast.Subscript(items=items):
                return self.bracket((seg, "["), "[", "]", [(x, self.sub_item(x)) for x in items])
        raise AssertionError(f"not a postfix segment {seg!r}")

    def sub_item(self, x: ast.SubItem) -> Doc:
        match x:
            case ast.Arg(name=None, value=value):
                return self.expr(value)
            case ast.Arg(name=name, value=value):
                return concat(f"{name.name}=", self.expr(value))
            case ast.EllipsisItem():
                return Text("...")
            case ast.SliceItem(start=start, stop=stop, step=step):
                parts: list[Doc | str] = []
                if start is not None:
                    parts.append(self.expr(start))
                parts.append(":")
                if stop is not None:
                    parts.append(self.expr(stop))
                if step is not None:
                    parts += [":", self.expr(step)]
                return concat(*parts)
        raise AssertionError(f"unknown subscript item {x!r}")

    def if_expr(self, e: ast.IfExpr) -> Doc:
        orelse = self.if_expr(e.orelse) if isinstance(e.orelse, ast.IfExpr) else None
        return concat("if ", self.expr(e.cond, _OR), " ", self.block(e.then, True), " else ",
                      orelse or self.block(e.orelse, True))  # fmt: skip

    def bracket(self, key, open_: str, close: str, items: list[tuple[object, Doc]],
                always_comma: bool = False) -> Doc:  # fmt: skip
        """`(a, b)` on one line, or one item per line with a trailing comma."""
        tail = self.dangling(key, bool(items))
        if not items and not tail and key not in self.cm.opening:
            return Text(open_ + close)
        body: list[Doc | str] = []
        for k, (node, doc) in enumerate(items):
            body.append(LINE if k else SOFT)
            for text, _ in self.cm.leading.get(node, ()):
                body += [text, HARD]
            last = k == len(items) - 1
            comma = IfBreak(",") if last and not always_comma else Text(",")
            body += [doc, comma, self.trail(node)]
        return group(open_, self.opening(key), indent(*body, *tail), SOFT, close)


_IMPORTS = (ast.Import, ast.FromImport)


def _dotted(path: tuple[ast.Ident, ...]) -> str:
    return ".".join(p.name for p in path)


def _leftmost_name(e: ast.Expr) -> str | None:
    while True:
        match e:
            case ast.Binary(left=inner) | ast.Call(func=inner) | ast.Subscript(value=inner):
                e = inner
            case ast.Attribute(value=inner):
                e = inner
            case ast.Name(id=name):
                return name
            case _:
                return None


def _level(e: ast.Expr) -> int:
    match e:
        case ast.IfExpr():
            return _IF
        case ast.Binary(op=op):
            return _BINARY_LEVEL[op]
        case ast.Unary(op="not"):
            return _NOT
        case ast.Unary():
            return _NEG
    return _POSTFIX


# ---------------------------------------------------------------- self-check
_IGNORED = {"span", "op_span", "doc", "file", "comments"}


def _same_program(a: ast.Module, b: ast.Module) -> bool:
    texts = Counter(c.text.rstrip() for c in a.comments)
    return texts == Counter(c.text.rstrip() for c in b.comments) and _same(a, b)


def _same(a: object, b: object) -> bool:
    """Structural equality of two trees, ignoring positions and doc comments."""
    if isinstance(a, tuple) and isinstance(b, tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if type(a) is not type(b):
        return False
    if not hasattr(a, "__dataclass_fields__"):
        return a == b
    return all(_same(getattr(a, f.name), getattr(b, f.name))
               for f in fields(a) if f.name not in _IGNORED)  # fmt: skip
