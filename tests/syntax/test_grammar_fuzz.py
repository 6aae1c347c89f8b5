"""Grammar fuzzer: random sources -> `parse` and `driver.check_file` never crash.

Three generators: sentences of grammar.lark (hypothesis' `from_lark`, with every
terminal given an explicit strategy so tokens stay separated), token soups
(random sequences of mdl tokens and stray characters), and random well-typed
element-wise models whose outputs are compared with numpy. A crash is an
exception escaping or an E0901 (internal error) diagnostic.

The number of examples comes from MDL_FUZZ_EXAMPLES (150 by default, `make fuzz`
sets 5000); CI runs are derandomized so they are reproducible.
"""

from __future__ import annotations

import os
import tempfile
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st
from hypothesis.extra.lark import from_lark
from lark import Lark

import mdl
from mdl import driver
from mdl.syntax.parser import parse

EXAMPLES = int(os.environ.get("MDL_FUZZ_EXAMPLES", "150"))
# Long runs explore new inputs; the CI-sized run is the same every time.
FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES,
    derandomize=EXAMPLES <= 1000,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,
)

pytestmark = pytest.mark.fuzz

_WORKDIR = Path(tempfile.mkdtemp(prefix="mdl-fuzz-"))
NAMES = [
    "x", "y", "h", "w", "N", "B", "D", "L", "f32", "i64", "bool", "int", "nn", "Dense",
    "relu", "max", "sum", "reshape", "transpose", "shape", "T", "_", "None", "zeros",
    "Sequential", "arange", "gather", "where", "split", "concat", "stack", "cast", "f",
    "M", "param", "model", "layer", "fn", "as", "from", "buffer",
]  # fmt: skip


def check_source(text: str, name: str = "fuzz.mdl") -> list[str]:
    """Parse the text and run the whole front end on it; return the codes reported."""
    note(f"source:\n{text}")
    _, diags = parse(text, name)
    assert all(d.code != "E0901" for d in diags), [str(d) for d in diags]
    path = _WORKDIR / name
    path.write_text(text, encoding="utf-8")
    front = driver.check_file(str(path))
    found = [d.code for d in front.diagnostics]
    assert "E0901" not in found, [str(d) for d in front.diagnostics]
    return found


# ---------------------------------------------------------------- grammar sentences
def _grammar_strategy() -> st.SearchStrategy[str]:
    grammar = resources.files("mdl.syntax").joinpath("grammar.lark").read_text("utf-8")
    lark = Lark(grammar, parser="lalr", lexer="contextual")
    spaced = {
        "NAME": st.sampled_from(NAMES),
        "INT": st.sampled_from(["0", "1", "2", "3", "8", "64", "1_000", "99999999999999999999"]),
        "FLOAT": st.sampled_from(["0.0", "1.5", "1e-5", "2.5e3"]),
        "COMP_OP": st.sampled_from(["==", "!=", "<=", ">=", "<", ">"]),
        "ADD_OP": st.sampled_from(["+", "-"]),
        "MUL_OP": st.sampled_from(["//", "*", "/", "@", "%"]),
    }
    explicit = {name: s.map(lambda v: v + " ") for name, s in spaced.items()}
    for term in lark.terminals:
        if term.pattern.type == "str":
            explicit[term.name] = st.just(term.pattern.value + " ")
    explicit["_NL"] = st.sampled_from(["\n", "\n    ", "\r\n"])
    # Comments and line continuations would swallow or glue the generated tokens.
    for ignored in ("COMMENT", "__IGNORE_0", "__IGNORE_1"):
        explicit[ignored] = st.just(" ")
    return from_lark(lark, explicit=explicit)


@FUZZ_SETTINGS
@given(_grammar_strategy())
def test_grammar_sentences_never_crash(text: str):
    check_source(text)


# ---------------------------------------------------------------- token soups
SOUP_TOKENS = [
    *NAMES, "fn", "layer", "model", "import", "from", "let", "return", "for", "in", "if",
    "else", "param", "buffer", "and", "or", "not", "true", "false", "(", ")", "[", "]",
    "{", "}", ",", ":", "=", "->", "..", "...", ".", "+", "-", "*", "**", "/", "//", "@",
    "%", "==", "<", ">=", "0", "1", "7", "2.5", "1e9", "-1", "\n", "\n", "\r\n", "\t",
    "# c\n", "\\\n", "'", '"', "$", "?", "\u00e9", "\u2028", "\x0c", "x[:, -1]",
    "f32[B, N]", "i64[B] in 0..4", "nn.Dense[4, 4]", "x.T", "x.shape[0]",
]  # fmt: skip
SEPARATORS = st.sampled_from([" ", "", "\n", "  "])


@st.composite
def token_soups(draw) -> str:
    tokens = draw(st.lists(st.sampled_from(SOUP_TOKENS), max_size=60))
    seps = draw(st.lists(SEPARATORS, min_size=len(tokens), max_size=len(tokens)))
    prefix = draw(
        st.sampled_from(["", "model M(x: f32[B, N]) -> f32[B, N] {\n", "fn f(x: f32[N]) = "])
    )
    return prefix + "".join(t + s for t, s in zip(tokens, seps, strict=True))


@FUZZ_SETTINGS
@given(token_soups())
def test_token_soups_never_crash(text: str):
    check_source(text)


@FUZZ_SETTINGS
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=200))
def test_arbitrary_text_never_crashes(text: str):
    check_source(text)


# ---------------------------------------------------------------- well-typed models
# Each generator returns (mdl source, numpy function of the environment).
INPUTS = ("x", "y")


@st.composite
def elementwise(draw, depth: int = 0):
    """(source, numpy function, whether the value is a tensor rather than a scalar)."""
    leaf = depth >= 4 or draw(st.integers(0, 3)) == 0
    if leaf:
        if draw(st.booleans()):
            name = draw(st.sampled_from(INPUTS))
            return name, lambda env, n=name: env[n], True
        c = draw(st.sampled_from([0.5, 1.0, 2.0, 3.25]))
        return f"{c!r}", lambda env, c=c: np.float32(c), False
    kind = draw(st.sampled_from(["+", "-", "*", "max", "tanh", "neg", "relu", "sum_keep"]))
    a_src, a_fn, a_tensor = draw(elementwise(depth + 1))
    if kind in ("+", "-", "*", "max"):
        b_src, b_fn, b_tensor = draw(elementwise(depth + 1))
        ops = {"+": np.add, "-": np.subtract, "*": np.multiply, "max": np.maximum}
        src = f"max({a_src}, {b_src})" if kind == "max" else f"({a_src} {kind} {b_src})"
        return src, lambda env: ops[kind](a_fn(env), b_fn(env)), a_tensor or b_tensor
    if not a_tensor:
        # Functions of one argument take tensors; lift the scalar with `x`.
        a_src, inner = f"({a_src} + x)", a_fn
        a_fn, a_tensor = (lambda env: inner(env) + env["x"]), True
    match kind:
        case "tanh":
            return f"tanh({a_src})", lambda env: np.tanh(a_fn(env)), True
        case "neg":
            return f"-{a_src}", lambda env: -a_fn(env), True
        case "relu":
            return f"relu({a_src})", lambda env: np.maximum(a_fn(env), 0), True
    return (
        f"sum({a_src}, axis=-1, keep=true)",
        lambda env: np.sum(a_fn(env), axis=-1, keepdims=True),
        True,
    )


@st.composite
def elementwise_models(draw):
    lets = draw(st.lists(elementwise(), min_size=0, max_size=3))
    body, names = [], []
    for i, (src, _, _) in enumerate(lets):
        body.append(f"    let t{i} = {src}")
        names.append(f"t{i}")
    final_src, final_fn, _ = draw(elementwise())
    uses = " + ".join(["x", *names, final_src])
    text = (
        "fn relu(x: f32[*S]) -> f32[*S] = max(x, 0.0)\n\n"
        "model Fuzz(x: f32[B, N], y: f32[B, N]) -> f32[B, N] {\n"
        + "\n".join(body)
        + ("\n" if body else "")
        + f"    return {uses}\n}}\n"
    )

    def reference(env):
        env = dict(env)
        out = env["x"]
        for name, (_, fn, _) in zip(names, lets, strict=True):
            value = fn(env)
            env[name] = value
            out = out + value
        return out + final_fn(env)

    return text, reference


@FUZZ_SETTINGS
@given(elementwise_models(), st.integers(1, 3), st.integers(1, 4))
def test_random_elementwise_models_match_numpy(model, batch, width):
    text, reference = model
    assert check_source(text, "ew.mdl") == []
    m = mdl.load(str(_WORKDIR / "ew.mdl"), backend="ref")
    rng = np.random.default_rng(batch * 10 + width)
    x = rng.standard_normal((batch, width)).astype(np.float32)
    y = rng.standard_normal((batch, width)).astype(np.float32)
    got = m(x, y)
    want = np.broadcast_to(reference({"x": x, "y": y}), (batch, width))
    assert got.shape == (batch, width) and got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
