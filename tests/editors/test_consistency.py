"""editors/ agrees with itself and with the compiler: the VS Code manifest's contributions
point at files that exist and say the same things, and the word lists of both highlighters
(keywords, dtypes, constants, primitives, initialisers) are the compiler's. No node needed."""

from __future__ import annotations

import json
import re

import pytest

from mdl.elaborate import BUILTIN_CONSTANTS
from mdl.initializers import INITIALIZER_NAMES
from mdl.primitives.surface import SURFACE_NAMES
from mdl.types import DType

from .support import NVIM_CONFIG, ROOT, VSCODE

MANIFEST = json.loads((VSCODE / "package.json").read_text())
LOCK = json.loads((VSCODE / "package-lock.json").read_text())
GRAMMAR_PATH = VSCODE / "syntaxes" / "mdl.tmLanguage.json"
GRAMMAR = json.loads(GRAMMAR_PATH.read_text())
EXTENSION_JS = (VSCODE / "src" / "extension.js").read_text()
VIM_SYNTAX = (NVIM_CONFIG / "syntax" / "mdl.vim").read_text()


def _hard_keywords() -> set[str]:
    # The NAME terminal of the real grammar refuses exactly the hard keywords.
    lark = (ROOT / "lang" / "mdl" / "syntax" / "grammar.lark").read_text()
    found = re.search(r"^NAME: /\(\?!\(([a-z|]+)\)\\b\)", lark, re.M)
    assert found, "NAME's keyword lookahead not found in grammar.lark"
    return set(found.group(1).split("|"))


def _grammar_rules(node: object):
    """Every rule (dict with match/begin) anywhere in the TextMate grammar."""
    if isinstance(node, dict):
        if "match" in node or "begin" in node:
            yield node
        for value in node.values():
            yield from _grammar_rules(value)
    elif isinstance(node, list):
        for item in node:
            yield from _grammar_rules(item)


def _tm_words(scope: str) -> set[str]:
    """The words of the `(a|b|c)` alternations in the rules that give `scope`."""
    words: set[str] = set()
    for rule in _grammar_rules(GRAMMAR):
        if rule.get("name") == scope:
            for group in re.findall(r"\(([A-Za-z_0-9|]+)\)", rule.get("match", "")):
                words |= set(group.split("|"))
            words |= set(re.findall(r"^\\b([A-Za-z_]\w*)\\b$", rule.get("match", "")))
    return words


def _vim_keywords(group: str) -> set[str]:
    words: set[str] = set()
    for line in VIM_SYNTAX.splitlines():
        parts = line.split()
        if parts[:3] == ["syn", "keyword", group]:
            words |= set(parts[3:])
    return words


DTYPES = {d.value for d in DType}
CONSTANTS = set(BUILTIN_CONSTANTS)


def test_hard_keywords_are_highlighted_as_keywords() -> None:
    tm = set()
    for scope in (
        "keyword.control.conditional.mdl",
        "keyword.control.loop.mdl",
        "keyword.control.return.mdl",
        "keyword.control.import.mdl",
        "storage.type.let.mdl",
        "keyword.operator.logical.mdl",
        "constant.language.boolean.mdl",
    ):
        tm |= _tm_words(scope)
    assert tm == _hard_keywords()
    vim = set()
    for group in ("Conditional", "Repeat", "Statement", "Include", "Let", "Logical", "Boolean"):
        vim |= _vim_keywords("mdl" + group)
    assert vim == _hard_keywords()


@pytest.mark.parametrize(
    ("what", "tm_scope", "vim_group", "compiler"),
    [
        ("dtypes", "support.type.dtype.mdl", "mdlType", DTYPES),
        ("constants", "constant.language.mdl", "mdlConstant", CONSTANTS),
        (
            "primitives",
            "support.function.builtin.mdl",
            "mdlBuiltin",
            SURFACE_NAMES | {"Sequential"},
        ),
    ],
)
def test_predefined_names_match_the_compiler(what, tm_scope, vim_group, compiler) -> None:
    tm = _tm_words(tm_scope)
    if what == "primitives":
        tm |= _tm_words("support.class.builtin.mdl")
    assert tm == compiler, f"{what}: the TextMate grammar differs from the compiler"
    assert _vim_keywords(vim_group) == compiler, f"{what}: syntax/mdl.vim differs from the compiler"


def test_initializers_match_the_compiler() -> None:
    assert _tm_words("support.function.initializer.mdl") == INITIALIZER_NAMES
    vim_rule = next(line for line in VIM_SYNTAX.splitlines() if "mdlInitializer /" in line)
    assert (
        set(re.search(r"\\%\(([\w\\|]+)\\\)", vim_rule).group(1).split("\\|")) == INITIALIZER_NAMES
    )


def test_language_contribution_points_at_real_files() -> None:
    contributes = MANIFEST["contributes"]
    (language,) = contributes["languages"]
    (grammar,) = contributes["grammars"]
    assert language["id"] == grammar["language"] == "mdl"
    assert language["extensions"] == [".mdl"]
    assert grammar["scopeName"] == GRAMMAR["scopeName"] == "source.mdl"
    assert (VSCODE / grammar["path"]).resolve() == GRAMMAR_PATH
    config = json.loads((VSCODE / language["configuration"]).read_text())
    assert config["comments"] == {"lineComment": "#"}
    pairs = {tuple(p) for p in config["brackets"]}
    assert pairs == {("{", "}"), ("[", "]"), ("(", ")")}
    assert {(p["open"], p["close"]) for p in config["autoClosingPairs"]} == pairs
    for rule in config["indentationRules"].values():
        re.compile(rule)
    assert "onLanguage:mdl" in MANIFEST["activationEvents"]


def test_the_client_reads_the_settings_and_commands_it_contributes() -> None:
    assert (VSCODE / MANIFEST["main"]).is_file()
    settings = MANIFEST["contributes"]["configuration"]["properties"]
    assert settings["mdl.server.path"]["default"] == "mdl-lsp"
    for key in settings:
        section, _, rest = key.partition(".")
        assert section == "mdl"
        if key != "mdl.trace.server":  # read by vscode-languageclient itself, for the id "mdl"
            assert f"'{rest}'" in EXTENSION_JS, f"{key} is contributed but never read"
    assert "const CLIENT_ID = 'mdl'" in EXTENSION_JS
    contributed = {c["command"] for c in MANIFEST["contributes"]["commands"]}
    registered = set(re.findall(r"registerCommand\('([\w.]+)'", EXTENSION_JS))
    assert contributed == registered


def test_lock_file_matches_the_manifest() -> None:
    assert LOCK["lockfileVersion"] >= 2
    root = LOCK["packages"][""]
    assert root["dependencies"] == MANIFEST["dependencies"]
    assert root["devDependencies"] == MANIFEST["devDependencies"]
    # The engine the extension declares is the one its LSP client library needs.
    client = LOCK["packages"]["node_modules/vscode-languageclient"]
    assert client["version"] == MANIFEST["dependencies"]["vscode-languageclient"]
    assert client["engines"]["vscode"] == MANIFEST["engines"]["vscode"]
    packaging = json.loads((VSCODE / "packaging" / "package-lock.json").read_text())
    vsce = packaging["packages"]["node_modules/@vscode/vsce"]
    assert vsce["version"].startswith("3.")
    assert vsce["engines"]["node"] == ">= 20"


def test_build_outputs_are_ignored_and_kept_out_of_the_vsix() -> None:
    ignored = (VSCODE / ".gitignore").read_text().split()
    assert {"node_modules/", "packaging/node_modules/", "*.vsix"} <= set(ignored)
    vscodeignore = (VSCODE / ".vscodeignore").read_text().split()
    assert {"test/**", "scripts/**", "packaging/**"} <= set(vscodeignore)
    assert "vsce package" in MANIFEST["scripts"]["package"]
