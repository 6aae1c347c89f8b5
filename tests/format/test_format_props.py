"""Property tests for `mdlc fmt`: random programs keep their tree and comments, fmt is idempotent.

Programs are generated as text with every sub-expression in parentheses (so the
tree is unambiguous and the formatter must work out which parentheses to keep),
and with `BREAK` marks where the grammar lets a line continue; each mark becomes
nothing, a newline, or a comment and a newline.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_format import comment_texts, parse_clean, shape_of

from mdl.format import format_source
from mdl.syntax.parser import parse

BREAK = "\x00"
SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])

names = st.sampled_from(["a", "b", "x", "foo", "w_1", "Dense", "inf", "param", "model"])
ints = st.sampled_from(["0", "1", "7", "42", "1_000", "007"])
floats = st.sampled_from(["0.5", "1.0", "1e-5", "2.5E+3", "1_0.0_1", "3e10"])
leaves = st.one_of(names, ints, floats, st.sampled_from(["true", "false"]))
binary_ops = st.sampled_from("+ - * / // @ % ** == != < <= > >= and or ..".split())


def listed(items: list[str]) -> str:
    """Items joined with `,`, a break mark after the opener and after each comma."""
    trailing = "," if items else ""
    return BREAK + f",{BREAK} ".join(items) + trailing + BREAK


def extend(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    kwarg = st.tuples(st.sampled_from(["axis", "keep", "k"]), children).map(
        lambda t: f"{t[0]}={t[1]}"
    )
    arg = st.one_of(children, kwarg)
    opt = st.one_of(st.just(""), children)
    slice_ = st.tuples(opt, opt, st.one_of(st.just(""), opt.map(lambda s: ":" + s)))
    sub_item = st.one_of(arg, st.just("..."), slice_.map(lambda t: f"{t[0]}:{t[1]}{t[2]}"))
    small = st.lists(arg, max_size=3)
    return st.one_of(
        st.tuples(children, binary_ops, children).map(lambda t: f"({t[0]}) {t[1]}{BREAK} ({t[2]})"),
        children.map(lambda c: f"-({c})"),
        children.map(lambda c: f"not ({c})"),
        st.tuples(names, small).map(lambda t: f"{t[0]}({listed(t[1])})"),
        st.tuples(children, small).map(lambda t: f"({t[0]})({listed(t[1])})"),
        st.tuples(children, st.lists(sub_item, min_size=1, max_size=3)).map(
            lambda t: f"({t[0]})[{listed(t[1])}]"
        ),
        st.tuples(children, st.sampled_from(["T", "reshape", "e5"])).map(
            lambda t: f"({t[0]}){BREAK}.{t[1]}"
        ),
        st.lists(children, max_size=3).map(lambda xs: f"[{listed(xs)}]"),
        st.lists(children, min_size=2, max_size=3).map(lambda xs: f"({listed(xs)})"),
        children.map(lambda c: f"({BREAK}{c},{BREAK})"),
        st.just("()"),
        st.tuples(children, children).map(lambda t: f"[({t[0]}) for i in ({t[1]})]"),
        st.tuples(children, children, children).map(
            lambda t: f"(if ({t[0]}) {{{BREAK}({t[1]}){BREAK}}}{BREAK} else {{ ({t[2]}){BREAK}}})"
        ),
    )


exprs = st.recursive(leaves, extend, max_leaves=12)
comment_texts_st = st.text(alphabet="abc ()[]{}#,=:-", max_size=12).map(lambda s: "#" + s)


@st.composite
def statements(draw, depth: int = 0) -> list[str]:
    """Lines of a block body; the last may be a bare expression."""
    out: list[str] = []
    for _ in range(draw(st.integers(0, 4))):
        kind = draw(st.sampled_from(["let", "lets", "assign", "param", "for", "if"] if depth < 2
                                    else ["let", "assign", "param"]))  # fmt: skip
        e = draw(exprs)
        if kind == "let":
            out.append(f"let v = {e}")
        elif kind == "lets":
            out.append(f"let v, w = {e}")
        elif kind == "assign":
            out.append(f"v = {e}")
        elif kind == "param":
            kw = draw(st.sampled_from(["param", "buffer"]))
            out.append(f"{kw} p: f32[B, 3 * (D + 1), D // 2] = {e}")
        elif kind == "for":
            body = draw(statements(depth + 1))
            out.append(f"for i in {e} {{\n" + "\n".join(body) + "\n}")
        else:
            then, orelse = draw(statements(depth + 1)), draw(statements(depth + 1))
            out.append(
                f"if {e} {{\n" + "\n".join(then) + "\n} else {\n" + "\n".join(orelse) + "\n}"
            )
    if draw(st.booleans()):
        out.append(
            f"return {draw(exprs)}, {draw(exprs)}" if draw(st.booleans()) else f"({draw(exprs)})"
        )
    return out


@st.composite
def declarations(draw) -> str:
    kind = draw(st.sampled_from(["fn", "fn=", "layer", "model", "import"]))
    if kind == "import":
        return draw(st.sampled_from(["import nn", "import a.b as c", "from nn import Dense, relu"]))
    params = listed(
        ["x: f32[B, *S]", f"y: i64[B] in 0..({draw(exprs)})", f"z: f32[] = {draw(exprs)}"]
    )
    ct = draw(st.sampled_from(["", "[]", f"[K, s = {draw(exprs)}, flag: bool]"]))
    ret = draw(st.sampled_from(["", " -> f32[B]", f" -> ({listed(['o: f32[B]', 'p: f32[]'])})"]))
    head = f"{kind.rstrip('=')} d{ct}({params}){ret}"
    if kind == "fn=":
        return f"{head} = {draw(exprs)}"
    return head + " {\n" + "\n".join(draw(statements())) + "\n}"


@st.composite
def programs(draw) -> str:
    """A program with break marks resolved and comments sprinkled over it."""
    text = "\n".join(draw(st.lists(declarations(), min_size=1, max_size=3)))
    pieces = text.split(BREAK)
    out = [pieces[0]]
    for piece in pieces[1:]:
        choice = draw(st.sampled_from(["", "", "\n", "comment"]))
        out.append(f"  {draw(comment_texts_st)}\n" if choice == "comment" else choice)
        out.append(piece)
    lines = []
    for line in "".join(out).split("\n"):
        position = draw(st.sampled_from(["none", "none", "above", "after", "blank"]))
        if position == "above":
            lines.append(draw(comment_texts_st))
        elif position == "blank":
            lines.append("")
        tail = f"  {draw(comment_texts_st)}" if position == "after" and line.strip() else ""
        lines.append(line + tail)
    return "\n".join(lines) + draw(st.sampled_from(["", "\n", "\n# end\n"]))


def check_round_trip(source: str) -> str:
    before = parse_clean(source)
    out, diags = format_source(source)
    assert out is not None, [str(d) for d in diags]
    after = parse_clean(out)
    assert shape_of(after) == shape_of(before)
    assert comment_texts(after) == comment_texts(before)
    assert format_source(out)[0] == out
    return out


def grouping_parens(text: str) -> list[tuple[int, int]]:
    """(open, close) of each `( .. )` that only groups: not a call, not a tuple."""
    pairs, stack = [], []
    for i, ch in enumerate(text):
        if ch in "([{":
            stack.append((i, ch, [False]))
        elif ch in ")]}":
            start, opener, comma = stack.pop()
            before = text[:start].rstrip()
            is_call = before[-1:].isalnum() or before[-1:] in ")]_"
            if opener == "(" and not is_call and not comma[0] and i > start + 1:
                pairs.append((start, i))
        elif ch == "," and stack:
            stack[-1][2][0] = True
    return pairs


@SETTINGS
@given(exprs.map(lambda e: e.replace(BREAK, "")))
def test_expressions_keep_their_tree_with_only_needed_parentheses(expr: str):
    out = check_round_trip(f"fn f() = {expr}\n")
    if ".." in out:
        return  # range operands keep parentheses for the eye
    tree = shape_of(parse_clean(out))
    for start, end in grouping_parens(out):
        fewer = out[:start] + " " + out[start + 1 : end] + " " + out[end + 1 :]
        module, diags = parse(fewer)
        redundant = not any(d.is_error for d in diags) and shape_of(module) == tree
        assert not redundant, f"needless parentheses at {start} in {out!r}"


@SETTINGS
@given(programs())
def test_programs_keep_tree_and_comments_and_are_idempotent(source: str):
    out = check_round_trip(source)
    assert out.endswith("\n") and not out.endswith("\n\n")
    assert all(line == line.rstrip() for line in out.split("\n"))
