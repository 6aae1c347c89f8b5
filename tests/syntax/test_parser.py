"""Parser tests: source text -> AST shapes, exact spans and syntax diagnostics.

Each construct of syntax/grammar.lark is parsed from a small snippet and the
resulting `ast` nodes are checked field by field; error cases check the code,
the position and, where the wording is part of the contract, the message.
"""

from __future__ import annotations

from importlib import resources

import pytest
from lark import Lark

from mdl.syntax import ast
from mdl.syntax.parser import decode_source, parse


def parse_ok(text: str) -> ast.Module:
    module, diags = parse(text, "t.mdl")
    assert diags == [], [str(d) for d in diags]
    return module


def only_decl(text: str) -> ast.Decl:
    module = parse_ok(text)
    assert len(module.items) == 1
    decl = module.items[0]
    assert isinstance(decl, ast.Decl)
    return decl


def fn_expr(expr_text: str) -> ast.Expr:
    """The body expression of `fn f(...) = <expr_text>`."""
    decl = only_decl(f"fn f(x: f32[N]) -> f32[N] = {expr_text}\n")
    assert not isinstance(decl.body, ast.Block)
    return decl.body


def codes(text: str) -> list[str]:
    return [d.code for d in parse(text, "t.mdl")[1]]


def show(e: ast.Expr) -> str:
    """A fully parenthesised rendering, to check precedence and associativity."""
    match e:
        case ast.Name(id=name):
            return name
        case ast.IntLit(value=v):
            return str(v)
        case ast.FloatLit(text=t):
            return t
        case ast.BoolLit(value=v):
            return "true" if v else "false"
        case ast.Binary(op=op, left=left, right=right):
            return f"({show(left)} {op} {show(right)})"
        case ast.Unary(op=op, operand=operand):
            return f"({op} {show(operand)})"
        case ast.Call(func=func, args=args):
            return f"{show(func)}({', '.join(show(a.value) for a in args)})"
        case ast.Attribute(value=value, attr=attr):
            return f"{show(value)}.{attr.name}"
    raise AssertionError(f"show() does not handle {type(e).__name__}")


# ---------------------------------------------------------------- declarations
def test_imports():
    module = parse_ok("import nn\nimport a.b.c as abc\nfrom transformer import GptBlock, Mlp\n")
    imp, imp2, frm = module.items
    assert isinstance(imp, ast.Import) and [i.name for i in imp.path] == ["nn"]
    assert imp.alias is None
    assert [i.name for i in imp2.path] == ["a", "b", "c"] and imp2.alias.name == "abc"
    assert isinstance(frm, ast.FromImport)
    assert [i.name for i in frm.path] == ["transformer"]
    assert [i.name for i in frm.names] == ["GptBlock", "Mlp"]
    assert (frm.span.line, frm.span.col) == (3, 1)


def test_decl_kinds_and_bodies():
    module = parse_ok(
        "fn f(x: f32[N]) -> f32[N] = x\n"
        "layer L(x: f32[N]) -> f32[N] { x }\n"
        "model M(x: f32[N]) -> f32[N] {\n    return x\n}\n"
    )
    kinds = [(d.kind, d.name.name) for d in module.items]
    assert kinds == [("fn", "f"), ("layer", "L"), ("model", "M")]
    f, lay, mod = module.items
    assert isinstance(f.body, ast.Name) and f.ctparams is None
    assert isinstance(lay.body, ast.Block) and isinstance(lay.body.value, ast.Name)
    assert lay.body.stmts == ()
    assert isinstance(mod.body.stmts[0], ast.Return) and mod.body.value is None


def test_ctparams_kinds_and_defaults():
    decl = only_decl(
        "layer L[In, Out: int, bias: bool = true, eps = 1e-5,](x: f32[In]) -> f32[Out] { x }\n"
    )
    ct = decl.ctparams
    assert [c.name.name for c in ct] == ["In", "Out", "bias", "eps"]
    assert [c.kind.name if c.kind else None for c in ct] == [None, "int", "bool", None]
    assert ct[0].default is None and ct[1].default is None
    assert isinstance(ct[2].default, ast.BoolLit) and ct[2].default.value is True
    assert isinstance(ct[3].default, ast.FloatLit) and ct[3].default.value == 1e-5
    assert ct[3].default.text == "1e-5"


def test_empty_ctparams_differs_from_none():
    assert only_decl("layer L[](x: f32[N]) -> f32[N] { x }\n").ctparams == ()
    assert only_decl("layer L(x: f32[N]) -> f32[N] { x }\n").ctparams is None


def test_params_with_index_range_and_default():
    decl = only_decl("fn f(ids: i64[B, T] in 0..V + 1, s: float = 2.0) -> f32 = 1.0\n")
    ids, s = decl.params
    lo, hi = ids.index_range
    assert isinstance(lo, ast.IntLit) and lo.value == 0
    assert show(hi) == "(V + 1)"
    assert ids.default is None
    assert s.index_range is None and isinstance(s.default, ast.FloatLit)
    assert isinstance(s.type, ast.ScalarTypeExpr) and s.type.name.name == "float"


def test_named_outputs():
    decl = only_decl(
        "model M(x: f32[B]) -> (logits: f32[B, 10], probs: f32[B, 10],) { return x, x }\n"
    )
    assert isinstance(decl.ret, tuple)
    assert [o.name.name for o in decl.ret] == ["logits", "probs"]
    assert all(isinstance(o.type, ast.TensorTypeExpr) for o in decl.ret)


def test_single_return_type_and_no_return_type():
    assert isinstance(only_decl("fn f(x: f32[N]) -> f32[N] = x\n").ret, ast.TensorTypeExpr)
    assert only_decl("fn f(x: f32[N]) = x\n").ret is None


# ---------------------------------------------------------------- types
def test_type_dims():
    decl = only_decl("fn f(x: f32[*S, _, N * 2 + 1, (A - B) // 2, C / D, 3]) -> f32[] = x\n")
    dims = decl.params[0].type.dims
    assert isinstance(dims[0], ast.DimVariadic) and dims[0].name == "S"
    assert isinstance(dims[1], ast.DimName) and dims[1].name == "_"
    add = dims[2]
    assert isinstance(add, ast.DimBinary) and add.op == "+"
    assert isinstance(add.left, ast.DimBinary) and add.left.op == "*"
    assert isinstance(add.right, ast.DimInt) and add.right.value == 1
    fdiv = dims[3]
    assert fdiv.op == "//" and fdiv.left.op == "-"
    assert dims[4].op == "/"
    assert isinstance(dims[5], ast.DimInt) and dims[5].value == 3
    ret = decl.ret
    assert isinstance(ret, ast.TensorTypeExpr) and ret.dims == () and ret.dtype.name == "f32"


def test_dim_subtraction_is_left_associative():
    dims = only_decl("fn f(x: f32[A - B - C]) = x\n").params[0].type.dims
    top = dims[0]
    assert top.op == "-" and isinstance(top.left, ast.DimBinary) and top.right.name == "C"


def test_int_literal_underscores():
    assert fn_expr("1_000_000").value == 1_000_000
    assert only_decl("fn f(x: f32[1_024]) = x\n").params[0].type.dims[0].value == 1024


# ---------------------------------------------------------------- statements
def test_statements():
    decl = only_decl(
        "layer L(x: f32[N]) -> f32[N] {\n"
        "    param w: f32[N] = zeros\n"
        "    buffer b: f32[N]\n"
        "    let a, c = split(x, 2)\n"
        "    let y = x\n"
        "    y = y + w\n"
        "    for i in 0..3 { y = y * 2.0 }\n"
        "    return y, a\n"
        "}\n"
    )
    st = decl.body.stmts
    assert [type(s).__name__ for s in st] == [
        "ParamDecl",
        "ParamDecl",
        "Let",
        "Let",
        "Assign",
        "For",
        "Return",
    ]
    assert st[0].is_buffer is False and isinstance(st[0].init, ast.Name)
    assert st[1].is_buffer is True and st[1].init is None
    assert [n.name for n in st[2].names] == ["a", "c"]
    assert st[4].name.name == "y" and show(st[4].value) == "(y + w)"
    assert st[5].var.name == "i" and show(st[5].iterable) == "(0 .. 3)"
    assert isinstance(st[5].body.stmts[0], ast.Assign)
    assert len(st[6].values) == 2


def test_if_else_if_chain_with_else_on_next_line():
    decl = only_decl(
        "fn f[k](x: f32[N]) -> f32[N] {\n"
        "    return if k == 0 { x }\n"
        "    else if k == 1 {\n"
        "        x * 2.0\n"
        "    }\n"
        "    else { x * 3.0 }\n"
        "}\n"
    )
    ret = decl.body.stmts[0]
    e = ret.values[0]
    assert isinstance(e, ast.IfExpr) and show(e.cond) == "(k == 0)"
    assert isinstance(e.orelse, ast.IfExpr)
    assert isinstance(e.orelse.orelse, ast.Block)
    assert show(e.orelse.orelse.value) == "(x * 3.0)"


def test_if_as_statement_becomes_exprstmt():
    decl = only_decl(
        "fn f[k](x: f32[N]) -> f32[N] {\n    let y = x\n    if k { y = x } else { y = x }\n    y\n}\n"
    )
    assert isinstance(decl.body.stmts[1], ast.ExprStmt)
    assert isinstance(decl.body.stmts[1].value, ast.IfExpr)
    assert isinstance(decl.body.value, ast.Name)


def test_bare_expression_not_last_is_e0010():
    assert codes("fn f(x: f32[N]) -> f32[N] {\n    x + 1.0\n    x\n}\n") == ["E0010"]


# ---------------------------------------------------------------- expressions
def test_list_comprehension_and_literals():
    e = fn_expr("[Dense[D, D] for i in 0..L]")
    assert isinstance(e, ast.ListComp) and e.var.name == "i"
    assert isinstance(e.element, ast.Subscript) and show(e.iterable) == "(0 .. L)"
    lst = fn_expr("[1, 2, 3,]")
    assert isinstance(lst, ast.ListLit) and [i.value for i in lst.items] == [1, 2, 3]
    assert fn_expr("[]").items == ()
    assert fn_expr("()").items == ()
    tup = fn_expr("(1,)")
    assert isinstance(tup, ast.TupleLit) and len(tup.items) == 1
    assert isinstance(fn_expr("(1)"), ast.IntLit)
    assert isinstance(fn_expr("true"), ast.BoolLit) and fn_expr("false").value is False


def test_slices_ellipsis_none_and_kwargs_in_subscripts():
    e = fn_expr("x[1:2:3, :, ::2, :-1, ..., None, 5, k=2]")
    assert isinstance(e, ast.Subscript)
    items = e.items
    s0 = items[0]
    assert isinstance(s0, ast.SliceItem)
    assert (s0.start.value, s0.stop.value, s0.step.value) == (1, 2, 3)
    s1 = items[1]
    assert (s1.start, s1.stop, s1.step) == (None, None, None)
    s2 = items[2]
    assert s2.start is None and s2.stop is None and s2.step.value == 2
    s3 = items[3]
    assert s3.start is None and show(s3.stop) == "(- 1)" and s3.step is None
    assert isinstance(items[4], ast.EllipsisItem)
    assert isinstance(items[5], ast.Arg) and items[5].value.id == "None"
    assert items[6].name is None and items[6].value.value == 5
    assert items[7].name.name == "k" and items[7].value.value == 2


def test_slice_with_trailing_empty_step():
    s = fn_expr("x[1::]").items[0]
    assert isinstance(s, ast.SliceItem) and s.start.value == 1 and s.stop is None
    assert s.step is None


def test_kwargs_in_calls():
    e = fn_expr("max(x, axis=-1, keep=true)")
    assert isinstance(e, ast.Call) and e.func.id == "max"
    assert [a.name.name if a.name else None for a in e.args] == [None, "axis", "keep"]


def test_method_chain_across_lines():
    decl = only_decl(
        "fn f(x: f32[A, B]) -> f32[B, A] {\n"
        "    let y = x\n"
        "        .transpose(1, 0)\n"
        "        # a comment between the links\n"
        "        .reshape(B, A)\n"
        "    return y\n"
        "}\n"
    )
    let = decl.body.stmts[0]
    assert show(let.value) == "x.transpose(1, 0).reshape(B, A)"
    assert let.span.line == 2 and let.span.end_line == 5


def test_line_continuation_after_operator_and_inside_brackets():
    decl = only_decl(
        "fn f(x: f32[N]) -> f32[N] {\n    let y = x +\n        x\n    let z = max(\n        y,\n        0.0,\n    )\n    z\n}\n"
    )
    assert show(decl.body.stmts[0].value) == "(x + x)"
    assert show(decl.body.stmts[1].value) == "max(y, 0.0)"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a + b * c", "(a + (b * c))"),
        ("a - b - c", "((a - b) - c)"),
        ("a ** b ** c", "(a ** (b ** c))"),
        ("-a ** 2", "(- (a ** 2))"),
        ("a ** -b", "(a ** (- b))"),
        ("a * b @ c / d // e % f", "(((((a * b) @ c) / d) // e) % f)"),
        ("a + b < c * d", "((a + b) < (c * d))"),
        ("not a == b", "(not (a == b))"),
        ("a or b and c", "(a or (b and c))"),
        ("a and b or c", "((a and b) or c)"),
        ("not not a", "(not (not a))"),
        ("a .. b + 1", "(a .. (b + 1))"),
        ("x.T.shape", "x.T.shape"),
        ("f(a)(b)", "f(a)(b)"),
        ("--a", "(- (- a))"),
        ("(a + b) * c", "((a + b) * c)"),
    ],
)
def test_operator_precedence(text: str, expected: str):
    assert show(fn_expr(text)) == expected


def test_comparison_is_not_chained():
    assert codes("fn f(x: f32[N]) -> f32[N] = a < b < c\n") == ["E0004"]


def test_comments_everywhere_and_doc_comments():
    module = parse_ok(
        "# file header, not a doc: a blank line follows\n"
        "\n"
        "# Adds one.\n"
        "# Twice documented.\n"
        "fn f(  # after paren\n"
        "    x: f32[N],  # after param\n"
        ") -> f32[N] {  # after brace\n"
        "    # inside\n"
        "    let y = x + 1.0  # trailing\n"
        "    # before return\n"
        "    return y\n"
        "}  # after close\n"
        "fn g(x: f32[N]) -> f32[N] = x\n"
    )
    f, g = module.items
    assert f.doc == "Adds one.\nTwice documented."
    assert g.doc is None
    assert len(module.comments) == 10
    assert module.comments[0].text.startswith("# file header")
    assert (module.comments[3].span.line, module.comments[3].span.col) == (5, 8)


# ---------------------------------------------------------------- spans
def test_exact_spans():
    module = parse_ok(
        "import nn\n\nmodel M(x: f32[B, 4]) -> f32[B, 4] {\n    let h = x * 2.0\n    return h\n}\n"
    )
    decl = module.items[1]
    assert (decl.span.line, decl.span.col, decl.span.end_line, decl.span.end_col) == (3, 1, 6, 2)
    assert (decl.name.span.line, decl.name.span.col, decl.name.span.end_col) == (3, 7, 8)
    x = decl.params[0]
    assert (x.span.col, x.span.end_col) == (9, 21)
    assert (x.type.span.col, x.type.span.end_col) == (12, 21)
    let = decl.body.stmts[0]
    assert (let.span.line, let.span.col, let.span.end_col) == (4, 5, 20)
    mul = let.value
    assert (mul.span.col, mul.span.end_col) == (13, 20)
    assert (mul.op_span.col, mul.op_span.end_col) == (15, 16)
    assert (mul.right.span.col, mul.right.span.end_col) == (17, 20)
    ret = decl.body.stmts[1]
    assert (ret.span.line, ret.span.col) == (5, 5)
    assert module.items[0].span.start == 0 and module.items[0].span.end == len("import nn")


def test_span_offsets_match_text():
    text = "fn f(x: f32[N]) -> f32[N] {\n    let yy = max(x, 0.0)\n    return yy\n}\n"
    decl = only_decl(text)
    let = decl.body.stmts[0]
    assert text[let.value.span.start : let.value.span.end] == "max(x, 0.0)"
    assert text[let.names[0].span.start : let.names[0].span.end] == "yy"


def test_crlf_line_endings():
    text = "fn f(x: f32[N]) -> f32[N] {\r\n    let y = x\r\n    return y\r\n}\r\nfn g(x: f32[N]) = x\r\n"
    module = parse_ok(text)
    f, g = module.items
    assert (f.body.stmts[1].span.line, f.body.stmts[1].span.col) == (3, 5)
    assert g.span.line == 5


def test_tabs_as_indentation():
    decl = only_decl("fn f(x: f32[N]) -> f32[N] {\n\tlet y = x\n\treturn y\n}\n")
    assert (decl.body.stmts[0].span.line, decl.body.stmts[0].span.col) == (2, 2)


def test_empty_and_comment_only_files():
    for text in ("", "\n\n\n", "   \n\t\n", "# just a comment\n# and another"):
        module, diags = parse(text, "t.mdl")
        assert diags == [] and module.items == ()
    module, _ = parse("# c1\n# c2\n", "t.mdl")
    assert [c.text for c in module.comments] == ["# c1", "# c2"]


def test_byte_order_mark_is_dropped():
    text, diags = decode_source("\ufefffn f(x: f32[N]) = x\n".encode(), "t.mdl")
    assert diags == [] and text.startswith("fn")


# ---------------------------------------------------------------- syntax errors
def test_expected_colon_found_f32_wording():
    diags = parse("fn g(x f32[N]) -> f32[N] = x\n", "t.mdl")[1]
    assert len(diags) == 1
    d = diags[0]
    assert d.code == "E0004"
    assert d.message == "expected `:`, found `f32`"
    assert (d.span.line, d.span.col, d.span.end_col) == (1, 8, 11)


def test_one_error_per_broken_declaration():
    text = (
        "fn a(x f32[N]) -> f32[N] = x\n"
        "fn ok1(x: f32[N]) -> f32[N] = x\n"
        "fn b(x: f32[N]) -> f32[N] = x +\n"
        "layer C(x: f32[N]) -> f32[N] { let = 3 }\n"
        "model M(x: f32[N]) -> f32[N] { return x }\n"
        "fn d(x: f32[N]) -> f32[N] = x $ x\n"
    )
    module, diags = parse(text, "t.mdl")
    assert [(d.code, d.span.line) for d in diags] == [
        ("E0004", 1),
        ("E0005", 3),
        ("E0004", 4),
        ("E0003", 6),
    ]
    assert [d.name.name for d in module.items] == ["ok1", "M"]


def test_unclosed_bracket_e0007_points_at_opener():
    text = "fn f(x: f32[N]) -> f32[N] {\n    let y = max(x, 0.0\n    return y\n}\n"
    diags = parse(text, "t.mdl")[1]
    assert [d.code for d in diags] == ["E0007"]
    assert (diags[0].span.line, diags[0].span.col) == (2, 16)
    assert diags[0].message == "unclosed `(`"


def test_unclosed_at_end_of_file():
    diags = parse("fn f(x: f32[N]) -> f32[N] = max(x,", "t.mdl")[1]
    assert [d.code for d in diags] == ["E0007"]
    assert diags[0].span.col == 32


def test_mismatched_bracket_e0008():
    diags = parse("fn f(x: f32[N]) -> f32[N] = max(x, 1]\n", "t.mdl")[1]
    assert [d.code for d in diags] == ["E0008"]
    assert (diags[0].span.line, diags[0].span.col) == (1, 37)
    assert "`]`" in diags[0].message
    stray = parse("fn f(x: f32[N]) -> f32[N] = x)\n", "t.mdl")[1]
    assert [d.code for d in stray] == ["E0008"]


def test_strings_and_stray_characters_are_e0003():
    assert codes('fn f(x: f32[N]) -> f32[N] = "x"\n') == ["E0003"]
    assert codes("fn f(x: f32[N]) -> f32[N] = x ? x\n") == ["E0003"]


def test_def_keyword_gets_help():
    diags = parse("fn ok(x: f32[N]) = x\ndef f(x):\n", "t.mdl")[1]
    assert diags and diags[0].code == "E0004"
    assert any(d.help and "`fn`" in d.help for d in diags)


N_HUGE = 100_000


def test_1e5_nested_parens_is_e0006():
    text = "fn f(x: f32[N]) -> f32[N] = " + "(" * N_HUGE + "x" + ")" * N_HUGE + "\n"
    assert codes(text) == ["E0006"]


def test_1e5_nested_brackets_in_types_is_e0006():
    text = "fn f(x: f32[" + "(" * N_HUGE + "N" + ")" * N_HUGE + "]) = x\n"
    assert codes(text) == ["E0006"]


def test_1e5_negation_chain_does_not_recurse():
    text = "fn f(x: f32[N]) -> f32[N] = " + "-" * N_HUGE + "x\n"
    assert codes(text) == ["E0006"]


def test_1e5_addition_chain_does_not_recurse():
    text = "fn f(x: f32[N]) -> f32[N] = x" + " + x" * N_HUGE + "\n"
    assert codes(text) == ["E0006"]


def test_moderate_nesting_is_fine():
    e = fn_expr("(" * 50 + "x" + ")" * 50)
    assert isinstance(e, ast.Name)


def test_nul_byte_e0002_and_rest_still_parsed():
    module, diags = parse("fn f(x: f32[N]) -> f32[N] = x\0\nfn g(x: f32[N]) = x\n", "t.mdl")
    assert [d.code for d in diags] == ["E0002"]
    assert (diags[0].span.line, diags[0].span.col) == (1, 30)
    assert [d.name.name for d in module.items] == ["f", "g"]


def test_bad_utf8_e0001():
    text, diags = decode_source(b"fn f(x: f32[N]) = x\n# caf\xe9\n", "t.mdl")
    assert text is None
    assert [d.code for d in diags] == ["E0001"]
    assert (diags[0].span.line, diags[0].span.col) == (2, 6)
    assert "0xe9" in diags[0].message


def test_unicode_identifier_is_e0003():
    assert codes("fn f(x: f32[N]) -> f32[N] = \u00e9t\u00e9\n") == ["E0003"]


# ---------------------------------------------------------------- the grammar itself
def test_grammar_has_no_lalr_conflicts():
    pytest.importorskip("interegular")
    grammar = resources.files("mdl.syntax").joinpath("grammar.lark").read_text("utf-8")
    # strict=True turns shift/reduce conflicts and terminal collisions into errors.
    Lark(grammar, parser="lalr", lexer="contextual", strict=True)
