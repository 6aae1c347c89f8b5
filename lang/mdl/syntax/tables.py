"""grammar.lark -> the parser's tables as plain data (JSON), so a parse needs no Lark at start-up.

Lark takes ~0.1 s to import and set up even from its own cache; `mdlc check` of a valid
file needs neither. `build_tables` asks Lark (once, at build time) for exactly what its LALR
parser uses: the parse table, the per-state contextual lexers (their combined regexes in
Lark's own order, with the keyword retyping Lark calls "unless") and, per rule, how the tree
builder shapes a node (kept children, `_rule` inlining, `[x]` placeholders, `?rule`
expansion). `syntax/fastparse.py` runs those tables. Nothing here is re-derived by hand:
an option the extraction does not recognise raises TableError and the parser keeps using
Lark for everything.

Where the tables come from, first that works: `grammar_tables.json` beside the grammar
(shipped in the package; regenerate with `python -m mdl.syntax.tables` after editing the
grammar, a test checks it is current), then the user cache dir, then a fresh build written
there for next time. Each file names the hash of the grammar it was built from and a
checksum of its body; a stale or corrupt file is ignored, an unwritable cache dir only
means the next process builds again.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

FORMAT = 2
SHIPPED = "grammar_tables.json"


class TableError(Exception):
    """Lark's parser uses something the table runtime does not reproduce."""


_HERE = os.path.dirname(os.path.abspath(__file__))


def grammar_text() -> str:
    with open(os.path.join(_HERE, "grammar.lark"), encoding="utf-8") as f:
        return f.read()


def grammar_key(grammar: str) -> str:
    """Names the tables of one grammar text in one table format."""
    return hashlib.sha256(f"mdl-tables {FORMAT}\n{grammar}".encode()).hexdigest()[:24]


def lark_options() -> dict[str, Any]:
    """The options of mdl's Lark parser that shape its tables and trees (parser.py uses them)."""
    return {
        "parser": "lalr",
        "lexer": "contextual",
        "propagate_positions": True,
        "maybe_placeholders": True,
        "strict": False,
    }


# ------------------------------------------------------------------------------------ loading


def load_tables() -> dict[str, Any] | None:
    """The tables of the current grammar, or None when they cannot be had (then use Lark)."""
    grammar = grammar_text()
    key = grammar_key(grammar)
    shipped = _read(lambda: _read_bytes(os.path.join(_HERE, SHIPPED)), key)
    if shipped is not None:
        return shipped
    path = _cache_file(key)
    if path is not None:
        cached = _read(lambda: _read_bytes(path), key)
        if cached is not None:
            return cached
    try:
        tables = build_tables(grammar)
    except TableError:
        return None
    if path is not None:
        _write_atomic(path, encode(tables))
    return tables


def _read_bytes(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def _read(read: Any, key: str) -> dict[str, Any] | None:
    """Decode a tables file; None if missing, unreadable, corrupt or for another grammar."""
    try:
        data = read()
        header, _, body = data.rstrip(b"\n").partition(b"\n")
        head = json.loads(header)
        if head.get("key") != key or head.get("sha256") != hashlib.sha256(body).hexdigest():
            return None
        tables = json.loads(body)
    except (OSError, ValueError, AttributeError):
        return None
    return tables if isinstance(tables, dict) else None


def encode(tables: dict[str, Any]) -> bytes:
    """Header line (grammar key, body checksum) + the JSON body."""
    body = json.dumps(tables, separators=(",", ":"), sort_keys=True).encode()
    head = {"key": tables["key"], "sha256": hashlib.sha256(body).hexdigest()}
    return json.dumps(head).encode() + b"\n" + body + b"\n"


def _cache_file(key: str) -> str | None:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "mdl", f"grammar-tables-{key}.json")


def _write_atomic(path: str, data: bytes) -> None:
    """Best effort: a read-only or full disk only costs the next process a rebuild."""
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except OSError:
        try:
            os.unlink(tmp)
        except OSError:
            pass


# ------------------------------------------------------------------------------------ building


def build_tables(grammar: str) -> dict[str, Any]:
    """Ask Lark for the tables of `grammar`; TableError if it does anything unexpected."""
    import lark
    from lark import Lark

    from .postlex import Postlexer

    comment_types = ("COMMENT",)
    parser = Lark(
        grammar,
        postlex=Postlexer(),
        lexer_callbacks={name: _ignore for name in comment_types},
        **lark_options(),
    )
    try:
        order = _state_order(parser.parser.parser.parser.parse_table)
        return {
            "key": grammar_key(grammar),
            "lark": lark.__version__,
            **_parse_table(parser, order),
            "rules": _rules(parser),
            **_lexers(parser, set(comment_types), order),
        }
    except (AttributeError, KeyError, TypeError, ValueError, AssertionError) as e:
        raise TableError(f"unexpected Lark internals: {e!r}") from e


def _ignore(token: Any) -> None:
    return None


def _state_order(table: Any) -> list[int]:
    """Lark's states in breadth-first order from the start, symbols sorted by name.

    Lark numbers its states in the order of sets of objects, which differs from run to run;
    this order depends on the grammar alone, so regenerated tables differ only if it did.
    """
    from lark.parsers.lalr_analysis import Shift

    start = table.start_states["start"]
    order, seen = [start], {start}
    for state in order:  # grows while it is walked
        for symbol in sorted(table.states[state]):
            action, arg = table.states[state][symbol]
            if action is Shift and arg not in seen:
                seen.add(arg)
                order.append(arg)
    if len(order) != len(table.states):
        raise TableError("parse states unreachable from the start")
    return order


def _parse_table(parser: Any, order: list[int]) -> dict[str, Any]:
    from lark.parsers.lalr_analysis import Reduce, Shift

    table = parser.parser.parser.parser.parse_table
    rule_index = {rule: i for i, (rule, _) in enumerate(parser._parse_tree_builder.rule_builders)}
    number = {state: i for i, state in enumerate(order)}
    actions = []
    for state in order:
        row = {}
        for symbol, (action, arg) in sorted(table.states[state].items()):
            if action is Shift:
                row[symbol] = number[arg] * 2
            elif action is Reduce:
                row[symbol] = rule_index[arg] * 2 + 1
            else:
                raise TableError(f"unknown action {action}")
        actions.append(row)
    return {
        "start_state": number[table.start_states["start"]],
        "end_state": number[table.end_states["start"]],
        "actions": actions,
    }


def _rules(parser: Any) -> list[list[Any]]:
    """Per rule: [tree name, origin, length, expand single child, kept children, trailing Nones].

    kept children: null (all of them, as they are) or [[index, inline its children, Nones
    before it], ...] -- Lark's ChildFilterLALR, read from the wrappers Lark itself built.
    """
    from lark.parse_tree_builder import (
        ChildFilterLALR,
        ChildFilterLALR_NoPlaceholders,
        ExpandSingleChild,
        PropagatePositions,
    )

    rules = []
    for rule, chain in parser._parse_tree_builder.rule_builders:
        expand1 = False
        keep: list[list[Any]] | None = None
        append_none = 0
        seen_positions = False
        for wrapper in chain:
            if wrapper is ExpandSingleChild:
                expand1 = True
            elif wrapper is PropagatePositions:
                seen_positions = True
            elif getattr(wrapper, "func", None) is ChildFilterLALR:
                to_include, append_none = wrapper.args
                keep = [[i, bool(expand), int(nones)] for i, expand, nones in to_include]
            elif getattr(wrapper, "func", None) is ChildFilterLALR_NoPlaceholders:
                (to_include,) = wrapper.args
                keep = [[i, bool(expand), 0] for i, expand in to_include]
            else:
                raise TableError(f"unknown tree-builder step {wrapper!r} for {rule}")
        if not seen_positions:
            raise TableError("positions are not propagated")
        name = rule.alias or rule.options.template_source or rule.origin.name
        rules.append(
            [str(name), rule.origin.name, len(rule.expansion), expand1, keep, int(append_none)]
        )
    return rules


def _lexers(parser: Any, comment_types: set[str], order: list[int]) -> dict[str, Any]:
    """The contextual lexer: one scanner per distinct set of terminals a state accepts.

    Compiling each scanner's regex costs ~0.5 ms, so the runtime first tries the root
    scanner (all terminals, compiled once) and keeps its match when the state's scanner
    would surely find the same: see `_guards`.
    """
    from lark.lexer import CallChain, UnlessCallback

    contextual = parser.parser.lexer.lexer
    root = contextual.root_lexer.scanner
    root_names = [t.name for t in root.terminals]
    lexers: list[dict[str, Any]] = []
    index_of: dict[int, int] = {}
    state_lexer = []
    for state in order:
        basic = contextual.lexers[state]
        if id(basic) not in index_of:
            index_of[id(basic)] = len(lexers)
            spec = _lexer(basic, comment_types, UnlessCallback, CallChain)
            spec["guards"] = _guards(basic.scanner.terminals, set(root_names))
            lexers.append(spec)
        state_lexer.append(index_of[id(basic)])
    return {
        "root_patterns": _patterns(contextual.root_lexer),
        "lexers": lexers,
        "state_lexer": state_lexer,
        "comment_types": sorted(comment_types),
    }


def _guards(terminals: list[Any], in_root: set[str]) -> dict[str, list[str]] | None:
    """For each terminal T of a state's scanner: the strings that rule out the root's match T.

    Both scanners try their terminals in one order (Lark sorts every terminal set by the
    same key) and take the first that matches. So when the root's first match T is also
    in the state's scanner, every terminal the state tries before T failed in the root
    too, except those the root does not try at all: keywords it folds into a regex
    terminal (`fn` into NAME, `-` into ADD_OP) that the state's scanner keeps because
    it lacks that regex terminal. Those are plain strings; T stands unless one of the
    strings before T starts at the position. None: a terminal the root lacks is not a
    plain string, so always use the state's own scanner.
    """
    guards: dict[str, list[str]] = {}
    before: list[str] = []
    for term in terminals:
        guards[term.name] = list(before)
        if term.name not in in_root:
            if term.pattern.type != "str" or term.pattern.flags:
                return None
            before.append(term.pattern.value)
    return guards


def _patterns(basic: Any) -> list[str]:
    if basic.g_regex_flags or basic.use_bytes or basic.re.__name__ != "re":
        raise TableError("regex flags, bytes or another regex module")
    patterns = []
    for mre in basic.scanner._mres:
        if mre.flags & ~(32 | 256):  # re.UNICODE, re.ASCII-free defaults only
            raise TableError(f"regex flags {mre.flags}")
        patterns.append(mre.pattern)
    return patterns


def _lexer(basic: Any, comment_types: set[str], unless_cls: type, chain_cls: type) -> dict:
    patterns = _patterns(basic)  # builds Lark's scanner, which also fills basic.callback
    unless: dict[str, dict[str, str]] = {}
    for type_, callback in basic.callback.items():
        if isinstance(callback, chain_cls):
            raise TableError(f"callback chain on {type_}")
        if isinstance(callback, unless_cls):
            retype = {}
            for term in callback.scanner.terminals:
                if term.pattern.type != "str" or term.pattern.flags:
                    raise TableError(f"unless terminal {term.name} is not a plain string")
                retype[term.pattern.value] = term.name
            unless[type_] = retype
        elif type_ not in comment_types or type_ not in basic.ignore_types:
            raise TableError(f"callback on {type_}")
    return {
        "patterns": patterns,
        "unless": unless,
        "ignore": sorted(basic.ignore_types),
        "newline": sorted(basic.newline_types),
    }


def main() -> None:
    """Regenerate the shipped tables after an edit of grammar.lark."""
    tables = build_tables(grammar_text())
    target = os.path.join(_HERE, SHIPPED)
    with open(target, "wb") as f:
        f.write(encode(tables))
    print(f"wrote {target} ({len(tables['actions'])} states, {len(tables['lexers'])} lexers)")


if __name__ == "__main__":
    main()
