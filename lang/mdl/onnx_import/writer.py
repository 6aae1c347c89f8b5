"""`Converted` -> mdl source text and the weights dict (path -> array).

The statements of each module scope become the body of a generated `layer`
(layers.py decides which scopes can be layers and what crosses their
boundaries); the rest is the model's body. Within a body, a value read once
is written inline into its reader (`nn.relu(fc1(x))`), other values get a
`let` named after what computed them. The text is passed through the
formatter, so the output is what `mdlc fmt` would write.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from ..types import TensorType
from .convert import Converted
from .ir import Expr, InstRef, Path, Stmt
from .names import NameTable, identifier

INLINE_LIMIT = 72  # characters: longer expressions get a `let` of their own
LINE_LIMIT = 88  # characters of one statement's expression
_SIMPLE_CALL = re.compile(r"[\w.\[\]]+\([\w, ]*\)")  # `ln1(x)`, `arange(seq)`: fine as arguments


@dataclass
class Body:
    """One generated body (a layer's or the model's): its statements in order, the values
    it receives, what it returns, and the bindings it declares."""

    inputs: list[str]  # ONNX value names read from outside
    outputs: list[str]  # ONNX value names it returns
    stmts: list[Stmt]
    bindings: list[str] = field(default_factory=list)  # `let fc1 = nn.Dense[...]`, `param w: ...`
    names: NameTable = field(default_factory=NameTable)
    declared: dict[str, str] = field(default_factory=dict)  # param value -> its name here


def type_text(t: TensorType) -> str:
    return f"{t.dtype}[{', '.join(str(d) for d in t.shape)}]"


_KEEP_HINTS = {"positions", "filled", "masked", "part", "mask", "centered", "var"}


def render_body(
    body: Body,
    conv: Converted,
    callee: dict[Path, str],
    input_names: dict[str, str],
    indent: str = "    ",
) -> list[str]:
    """The lines of a body: bindings, `let`s, and the final `return`.

    A value read once is written inline into its reader, except into a layer call (so a
    chain of layers reads as one `let` per layer, as in hand-written models). Names are
    reused by shadowing (`let h = ...` again) once the value they held is dead."""
    uses: Counter[str] = Counter()
    reader: dict[str, Stmt | None] = {}
    for s in body.stmts:
        for r in s.expr.refs:
            if isinstance(r, str):
                uses[r] += 1
                reader[r] = s
    for o in body.outputs:
        uses[o] += 1
        reader[o] = None
    input_names = {**body.declared, **input_names}
    # pass 1: which statements are written inline (measured with provisional names)
    text_of: dict[str, str] = dict(input_names)
    inline: set[int] = set()
    stmt_of = {o: s for s in body.stmts for o in s.outputs}
    for s in body.stmts:
        rendered = fill(s.expr, text_of, callee)
        # a line grown too long gets its longest inlined operand back as a `let`
        while len(rendered) > LINE_LIMIT:
            inlined = [r for r in s.expr.refs if isinstance(r, str) and r in stmt_of
                       and id(stmt_of[r]) in inline]  # fmt: skip
            if not inlined:
                break
            longest = max(inlined, key=lambda r: len(text_of[r]))
            inline.discard(id(stmt_of[longest]))
            text_of[longest] = stmt_of[longest].hint
            rendered = fill(s.expr, text_of, callee)
        o = s.outputs[0]
        if (
            len(s.outputs) == 1
            and uses[o] == 1
            and (s.expr.is_hole or _inlinable(s, reader[o], rendered))
        ):
            inline.add(id(s))
            text_of[o] = rendered
        else:
            for out in s.outputs:
                text_of[out] = s.hint
    # pass 2: the values each written statement reads, through inlined ones, for liveness
    inlined_reads: dict[str, set[str]] = {}
    emitted: list[tuple[Stmt | None, set[str]]] = []
    for s in body.stmts:
        reads: set[str] = set()
        for r in s.expr.refs:
            if isinstance(r, str):
                reads |= inlined_reads.get(r, {r})
        if id(s) in inline:
            inlined_reads[s.outputs[0]] = reads
        else:
            emitted.append((s, reads))
    final: set[str] = set()
    for o in body.outputs:
        final |= inlined_reads.get(o, {o})
    emitted.append((None, final))
    last_use: dict[str, int] = {}
    for k, (_, reads) in enumerate(emitted):
        for r in reads:
            last_use[r] = k
    # pass 3: names and text
    text_of = dict(input_names)
    holder: dict[str, str] = {}  # name -> the value it holds now
    fixed = set(input_names.values())
    lines = [indent + b for b in body.bindings]
    k = 0
    for s in body.stmts:
        rendered = fill(s.expr, text_of, callee)
        if id(s) in inline:
            text_of[s.outputs[0]] = rendered
            continue
        names = []
        for o in s.outputs:
            hint = s.hint if s.hint in _KEEP_HINTS or len(s.outputs) > 1 else "h"
            if not o:
                hint = "unused"
            name = _reusable(hint, holder, last_use, k, fixed, names)
            if name is None:
                name = body.names.fresh(hint)
            holder[name] = o
            text_of[o] = name
            names.append(name)
        lines.append(f"{indent}let {', '.join(names)} = {rendered}")
        k += 1
    results = [text_of[o] for o in body.outputs]
    lines.append(f"{indent}return {', '.join(results)}")
    return lines


def _inlinable(s: Stmt, reader: Stmt | None, rendered: str) -> bool:
    if len(rendered) > INLINE_LIMIT:
        return False
    if reader is None:
        return True  # read only by the `return`
    into_call = any(isinstance(r, InstRef) for r in reader.expr.refs) or reader.hint == "call"
    return not into_call or _SIMPLE_CALL.fullmatch(rendered) is not None


def _reusable(hint: str, holder: dict[str, str], last_use: dict[str, int], k: int,
              fixed: set[str], taken_now: list[str]) -> str | None:  # fmt: skip
    """The name `hint` or `hint_N` already used here whose value is read for the last time
    in statement k (or never again): shadowing it is safe."""
    for name, value in holder.items():
        if name in fixed or name in taken_now:
            continue
        if (name == hint or name.rsplit("_", 1)[0] == hint) and last_use.get(value, -1) <= k:
            return name
    return None


def fill(e: Expr, text_of: dict[str, str], callee: dict[Path, str]) -> str:
    out = e.text
    for i, ref in enumerate(e.refs):
        if isinstance(ref, InstRef):
            value = callee[ref.path]
        else:
            value = text_of[ref]
        if not (value.isidentifier() or _simple(value)):
            value = f"({value})"
        out = out.replace(f"\x01{i}\x02", value)
    return out


def _simple(text: str) -> bool:
    """A call or subscript chain that needs no parentheses as an operand."""
    from .ir import _is_call

    return _is_call(text)


def flat_path(path: Path) -> str:
    return identifier("_".join(path), "p")


def weights_of(conv: Converted, key_of: dict[Path, str]) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for inst in conv.instances:
        for local, arr in inst.weights.items():
            out[f"{key_of[inst.path]}.{local}"] = arr
    for p in conv.params:
        out[key_of[p.path]] = p.array
    return out
