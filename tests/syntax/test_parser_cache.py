"""fastparse (prebuilt tables, no Lark) against Lark itself, and how the tables are found.

For every declaration fastparse accepts, its tree must equal Lark's node for node:
names, children, token types and values, every position Lark's meta carries (also the
"container" positions of nodes that a `?rule` passed through), and the comments; a
declaration Lark rejects must be rejected too (so its diagnostic comes from Lark).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.lark import from_lark
from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedInput

from mdl.syntax import lark_path
from mdl.syntax import parser as mdl_parser
from mdl.syntax import tables as mdl_tables
from mdl.syntax.build import tree_depth
from mdl.syntax.fastparse import FastParser, Node, Tok
from mdl.syntax.parser import split_chunks
from mdl.syntax.postlex import MismatchedBracket, NestingTooDeep

ROOT = Path(__file__).resolve().parents[2]
SOURCES = sorted(
    p
    for folder in ("tests", "examples", "stdlib")
    for p in (ROOT / folder).rglob("*.mdl")
    if "node_modules" not in p.parts
)
POSITIONS = ("line", "column", "start_pos", "end_line", "end_column", "end_pos")


def _shape(x, lark: bool):
    """A node or token as comparable data, children as their count (see _flatten)."""
    if x is None:
        return None
    if isinstance(x, str | Tok):
        return ("tok", type(x) is (Token if lark else Tok), x.type, str(x), *_pos(x, ""))
    m = x.meta
    pos = () if m.empty else _pos(m, "")
    cont = _pos(m, "container_" if lark else "c_")
    return (type(x) is (Tree if lark else Node), x.data, m.empty, pos, cont, len(x.children))


def _pos(x, prefix: str) -> tuple:
    return tuple(getattr(x, prefix + a, None) for a in POSITIONS)


def _flatten(tree, lark: bool) -> list:
    """Every node and token in depth-first order (no recursion: hostile trees are deep)."""
    out, stack = [], [tree]
    while stack:
        x = stack.pop()
        out.append(_shape(x, lark))
        if x is not None and not isinstance(x, str | Tok):
            stack.extend(reversed(x.children))
    return out


@pytest.fixture(scope="module")
def lark_parser():
    return lark_path._parser()


@pytest.fixture(scope="module")
def fast_parser():
    fast = mdl_parser._fast_parser()
    assert fast is not None
    return fast


def _compare(lark_parser, fast_parser, chunk: str) -> bool:
    """Assert both parsers agree on `chunk`; True if it parses."""
    fast = fast_parser.parse(chunk)
    try:
        tree, comments = lark_parser.parse(chunk)
    except (UnexpectedInput, NestingTooDeep, MismatchedBracket):
        assert fast is None, chunk
        return False
    assert fast is not None, chunk
    fast_tree, fast_comments, depth_bound = fast
    assert isinstance(tree, Tree)
    assert tree_depth(tree)[0] <= depth_bound
    assert _flatten(fast_tree, False) == _flatten(tree, True), chunk
    assert [_shape(c, False) for c in fast_comments] == [_shape(c, True) for c in comments]
    return True


def test_shipped_tables_are_those_of_the_grammar():
    """After an edit of grammar.lark (or of tables.py) run `python -m mdl.syntax.tables`."""
    data = (ROOT / "lang/mdl/syntax" / mdl_tables.SHIPPED).read_bytes()
    key = mdl_tables.grammar_key(mdl_tables.grammar_text())
    shipped = mdl_tables._read(lambda: data, key)
    assert shipped is not None, "stale or corrupt tables"
    fresh = mdl_tables.build_tables(mdl_tables.grammar_text())
    # the same tables built with another Lark version are fine
    assert {**shipped, "lark": None} == {**fresh, "lark": None}


def test_every_source_in_the_repository_parses_the_same(lark_parser, fast_parser):
    parsed = failed = 0
    for path in SOURCES:
        text = path.read_text("utf-8", errors="replace").replace("\0", " ")
        for _, chunk in split_chunks(text):
            if chunk.strip():
                if _compare(lark_parser, fast_parser, chunk):
                    parsed += 1
                else:
                    failed += 1
    assert len(SOURCES) > 100 and parsed > 500 and failed > 20  # both paths are exercised


def test_modules_and_diagnostics_equal_those_of_lark_alone(monkeypatch):
    """End to end (build.py on both kinds of tree): `parse` with and without fastparse."""
    texts = [p.read_text("utf-8", errors="replace") for p in SOURCES[::3]]
    fast = [repr(mdl_parser.parse(t, "f.mdl")) for t in texts]
    monkeypatch.setattr(mdl_parser, "_fast_parser", lambda: None)
    assert [repr(mdl_parser.parse(t, "f.mdl")) for t in texts] == fast


def _own_match(lexer, text: str, pos: int):
    for regex in lexer.regexes():
        m = regex.match(text, pos)
        if m:
            return m.group(0), m.lastgroup
    return None


def test_each_state_scanner_matches_like_its_own_regex(fast_parser):
    """The root scanner shortcut (tables._guards) against every state's own scanner."""
    root = fast_parser.root_scanner()
    lexers = list({id(lx): lx for lx in fast_parser.state_lexer}.values())
    text = "\n".join(p.read_text("utf-8", errors="replace") for p in SOURCES[::7])
    text += " fn layer model import from as - + -> ** // 1_0.5e3 ... .. \\\n # c\n"
    positions = range(0, len(text), 3)
    checked = 0
    for lexer in lexers:
        for pos in positions:
            m = lexer.match(root, text, pos)
            assert (m and (m.group(0), m.lastgroup)) == _own_match(lexer, text, pos), text[
                pos : pos + 20
            ]
            checked += 1
    assert len(lexers) > 50 and checked > 100_000


TOY_GRAMMAR = r"""
start: X A | X T | R T
X: "x"
A: "a"
R: /a(?!c)|b/
T.-1: /[a-z]/
COMMENT: /#[^\n]*/
%ignore COMMENT
%ignore " "
"""


def test_a_keyword_the_root_scanner_folds_away_still_wins_in_its_state():
    """After `x`, A (`a`) comes before T; the root scanner has no A (R matches `a`), and at
    `ac` its R fails, so the root says T: the guard must hand `ac` to the state's own A."""
    fast = FastParser(mdl_tables.build_tables(TOY_GRAMMAR))
    root = fast.root_scanner()
    after_x = [lx for lx in fast.state_lexer if "A" in lx.guards and "T" in lx.guards]
    assert after_x and all(lx.guards["T"] == ("a",) for lx in after_x)
    for lexer in after_x:
        for text in ("ac", "a", "b", "c"):
            m = lexer.match(root, text, 0)
            assert (m and (m.group(0), m.lastgroup)) == _own_match(lexer, text, 0)
        assert lexer.match(root, "ac", 0).lastgroup == "A"


EDGE_CASES = [
    "fn f(x: f32[N]) = (x)\n",
    "fn f(x: f32[N]) = ((x + 1.0)) * 2.0 # trailing\n",
    "# doc\n# more\nlayer L[D, act: fn = relu](x: f32[B, D]) -> f32[B, D] {\n  param w: f32[D]\n"
    "  return x[:, ::2, ...] + w[1:] \\\n   * 2.0\n}\n",
    "model M(x: f32[B, 3]) -> (y: f32[B], z: f32[B]) {\n  let a, b = split(x)\n"
    "  for i in 0..3 { a = a + 1 }\n  return if a > 0 { a } else if b { b } else { -a }, b\n}",
    "from nn import Dense, relu\r\nimport nn.layers as L\r\n",
    "fn f(x: f32[N]) = [x for i in 0..4]\n",
    "fn f() = ()\n",
    "fn f(x: f32[(N + 1) // 2 * M - 1, *S]) = x.T.shape[0]\n",
    "fn f(x: f32[N] in 0.0..1.0 = 0.5) = not x == 1 and x or true\n",
    "fn f(x: f32[N]) = x\n    .sum()\n    .mean()\n",
    "fn f(x: f32[N]) = x(",  # errors: both reject
    "fn f(x: f32[N]) = x)",
    "model M { let fn = 1 }",
    "fn f(x: f32[N]) = 'a'",
]


@pytest.mark.parametrize("text", EDGE_CASES)
def test_edge_cases_parse_the_same(lark_parser, fast_parser, text):
    _compare(lark_parser, fast_parser, text)


def _sentences() -> st.SearchStrategy[str]:
    grammar = mdl_tables.grammar_text()
    names = ["x", "N", "f32", "nn", "param", "model", "layer", "fn", "as", "from", "buffer"]
    explicit = {
        "NAME": st.sampled_from(names),
        "INT": st.sampled_from(["0", "3", "1_000"]),
        "FLOAT": st.sampled_from(["0.0", "1e-5", "2.5e3"]),
        "COMP_OP": st.sampled_from(["==", "<=", ">"]),
        "ADD_OP": st.sampled_from(["+", "-"]),
        "MUL_OP": st.sampled_from(["//", "*", "@"]),
    }
    explicit = {n: s.map(lambda v: v + " ") for n, s in explicit.items()}
    lark = Lark(grammar, parser="lalr", lexer="contextual")
    for term in lark.terminals:
        if term.pattern.type == "str":
            explicit[term.name] = st.just(term.pattern.value + " ")
    explicit["_NL"] = st.sampled_from(["\n", "\n  ", "\r\n", "\n# c\n"])
    for ignored in ("COMMENT", "__IGNORE_0", "__IGNORE_1"):
        explicit[ignored] = st.just(" ")
    return from_lark(lark, explicit=explicit)


SOUP = [
    "fn", "layer", "model", "let", "return", "for", "in", "if", "else", "param", "and",
    "not", "true", "x", "N", "f32", "(", ")", "[", "]", "{", "}", ",", ":", "=", "->", "..",
    "...", ".", "+", "-", "*", "**", "//", "==", "0", "2.5", "\n", "\r\n", "# c\n", "\\\n",
    "f32[B, N]", "x[:, -1]",
]  # fmt: skip
QUICK = settings(
    max_examples=100,
    derandomize=True,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,
)


@QUICK
@given(_sentences())
def test_grammar_sentences_parse_the_same(text):
    lark_parser, fast_parser = lark_path._parser(), mdl_parser._fast_parser()
    for _, chunk in split_chunks(text):
        if chunk.strip():
            _compare(lark_parser, fast_parser, chunk)


@QUICK
@given(
    st.sampled_from(["", "fn f(x: f32[N]) = ", "model M(x: f32[B]) -> f32[B] {\n"]),
    st.lists(st.sampled_from(SOUP), max_size=40),
    st.lists(st.sampled_from([" ", "", "\n"]), min_size=40, max_size=40),
)
def test_token_soups_parse_the_same(prefix, tokens, seps):
    text = prefix + "".join(t + s for t, s in zip(tokens, seps, strict=False))
    lark_parser, fast_parser = lark_path._parser(), mdl_parser._fast_parser()
    for _, chunk in split_chunks(text):
        if chunk.strip():
            _compare(lark_parser, fast_parser, chunk)


# ------------------------------------------------------------------ where tables come from


@pytest.fixture
def no_shipped(monkeypatch, tmp_path):
    """Pretend the package ships no tables and the user cache dir is tmp_path."""
    monkeypatch.setattr(mdl_tables, "SHIPPED", "missing-tables.json")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    return tmp_path


def test_without_shipped_tables_they_are_built_and_cached(no_shipped):
    tables = mdl_tables.load_tables()
    assert tables is not None and tables["key"] == mdl_tables.grammar_key(mdl_tables.grammar_text())
    (cached,) = (no_shipped / "mdl").glob("grammar-tables-*.json")
    assert mdl_tables.load_tables() == tables  # now read back from the cache
    assert FastParser(tables).parse("fn f(x: f32[N]) = x\n") is not None


def test_a_corrupt_cache_file_is_rebuilt(no_shipped):
    mdl_tables.load_tables()
    (cached,) = (no_shipped / "mdl").glob("grammar-tables-*.json")
    data = cached.read_bytes()
    cached.write_bytes(data[: len(data) // 2] + b"x" + data[len(data) // 2 + 1 :])
    assert (
        mdl_tables._read(cached.read_bytes, mdl_tables.grammar_key(mdl_tables.grammar_text()))
        is None
    )
    tables = mdl_tables.load_tables()
    assert tables is not None
    assert mdl_tables._read(cached.read_bytes, tables["key"]) == tables  # written again


def test_tables_of_another_grammar_are_ignored(no_shipped):
    other = mdl_tables.build_tables(mdl_tables.grammar_text() + "\n// edited\n")
    key = mdl_tables.grammar_key(mdl_tables.grammar_text())
    path = no_shipped / "mdl" / f"grammar-tables-{key}.json"
    path.parent.mkdir()
    path.write_bytes(mdl_tables.encode(other))
    assert mdl_tables._read(path.read_bytes, key) is None
    assert mdl_tables.load_tables()["key"] == key


def test_an_unwritable_cache_dir_still_parses(no_shipped):
    blocker = no_shipped / "mdl"
    blocker.write_text("a file where the cache folder should be")
    tables = mdl_tables.load_tables()
    assert tables is not None
    assert FastParser(tables).parse("fn f(x: f32[N]) = x\n") is not None


def test_a_check_of_a_valid_file_never_imports_lark(tmp_path):
    import subprocess
    import sys

    src = tmp_path / "ok.mdl"
    src.write_text("import nn\n\nfn f(x: f32[N]) -> f32[N] = nn.relu(x)\n")
    code = (
        "import sys\nfrom mdl.cli import main\nrc = main(['check', sys.argv[1]])\n"
        "print(rc, 'lark' in sys.modules, 'llvmlite' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(src)], capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == ["0", "False", "False"]
