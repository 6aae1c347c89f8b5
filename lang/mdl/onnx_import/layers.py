"""Module scopes -> generated `layer` declarations, so parameters keep PyTorch's paths.

A parameter path such as `blocks.0.attn.qkv.weight` exists in mdl only when
the code nests that way: a list `blocks` in the model whose element 0 is an
instance of a layer that binds `attn`, whose body binds `qkv`. So each module
scope that owns parameters becomes a layer whose body holds the statements of
that scope; a scope whose children are all indices (a Sequential or
ModuleList) becomes a list. What crosses a scope's boundary becomes the
layer's inputs and outputs. Layers with the same text are declared once.

A parameter read from several scopes (a constant PyTorch shares between
blocks) is declared in the innermost layer that holds all its readers.

When a scope cannot be a layer (its computation interleaves with its
parent's, or its body needs a dim its inputs do not bind), `plan` returns
None and the writer falls back to one flat model body.
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from ..dims import Dim
from ..types import TensorType
from .convert import Converted
from .ir import Expr, InstRef, Path, Stmt, Tensor
from .names import NameTable, camel
from .writer import Body, render_body, type_text


class NotNested(Exception):
    """The scopes do not nest into layers; the writer falls back to a flat body."""


@dataclass
class Scope:
    path: Path
    kind: str = "transparent"  # "root", "layer", "list", "transparent"
    children: dict[str, Scope] = field(default_factory=dict)
    stmts: list[Stmt] = field(default_factory=list)  # placed here (effective location)
    members: set[str] = field(default_factory=set)  # instances and params bound here
    owns_params: bool = False


@dataclass
class Plan:
    layers: list[str]  # declaration texts, dependencies first
    model_body: Body
    callee: dict[Path, str]
    key_of: dict[Path, str]  # instance/param path -> weights key prefix


def _merge_sparse_lists(conv: Converted) -> dict[Path, Path]:
    """Lists whose parameter-owning elements are not exactly 0..n-1 (a Sequential with
    activations between its layers) cannot be mdl lists: `features.0` becomes `features_0`."""
    owners = [i.path for i in conv.instances] + [p.path for p in conv.params]
    indices: dict[Path, set[int]] = defaultdict(set)
    named_children: dict[Path, set[str]] = defaultdict(set)
    for path in owners:
        for k in range(len(path) - 1):
            seg = path[k + 1]
            (
                indices[path[: k + 1]].add(int(seg))
                if seg.isdigit()
                else named_children[path[: k + 1]].add(seg)
            )
    sparse = {
        q for q, idx in indices.items() if idx != set(range(len(idx))) or named_children.get(q)
    }
    rename: dict[Path, Path] = {}
    for path in owners:
        new: list[str] = []
        for k, seg in enumerate(path):
            if seg.isdigit() and path[:k] in sparse and new:
                new[-1] = f"{new[-1]}_{seg}"
            else:
                new.append(seg)
        rename[path] = tuple(new)
    return rename


def plan(conv: Converted) -> Plan:
    moved: dict[str, Path] = {}
    for _ in range(4):  # moving a parameter can turn a scope into a plain one: settle
        found = _plan(conv, moved)
        if isinstance(found, Plan):
            return found
        moved.update(found)
    raise NotNested("shared parameters do not settle into layers")


def _plan(conv: Converted, moved: dict[str, Path]) -> Plan | dict[str, Path]:
    """The plan, or the parameters to move (value -> new path) before planning again."""
    rename = _merge_sparse_lists(conv)
    if len(set(rename.values())) != len(rename):
        raise NotNested("merged list names collide")
    inst_paths = {i.path: rename[i.path] for i in conv.instances}
    param_at = {p.value: moved.get(p.value, rename[p.path]) for p in conv.params}

    root = Scope((), "root")

    def scope(path: Path) -> Scope:
        s = root
        for seg in path:
            s = s.children.setdefault(seg, Scope((*s.path, seg)))
        return s

    for path in [*inst_paths.values(), *param_at.values()]:
        for k in range(len(path) - 1):
            scope(path[: k + 1]).owns_params = True
        scope(path[:-1]).members.add(path[-1])
    _classify(root)
    for path in inst_paths.values():
        s = root
        for seg in path:
            s = s.children.get(seg)  # type: ignore[assignment]
            if s is None:
                break
        else:
            raise NotNested(f"{'.'.join(path)} is both a layer instance and a module scope")

    def effective(path: Path) -> Scope:
        best, s = root, root
        for seg in path:
            if seg not in s.children:
                break
            s = s.children[seg]
            if s.kind == "layer":
                best = s
        return best

    placed: dict[int, Path] = {}
    for st in conv.stmts:
        insts = [r for r in st.expr.refs if isinstance(r, InstRef)]
        home = effective(inst_paths[insts[0].path][:-1] if insts else st.scope)
        home.stmts.append(st)
        placed[id(st)] = home.path
    to_move = _shared_params(conv, param_at, placed, effective, inst_paths)
    if to_move:
        return to_move
    for path in param_at.values():
        if scope(path[:-1]).kind not in ("layer", "root"):
            raise NotNested(f"parameter {'.'.join(path)} is not inside a layer")
    return _Builder(conv, root, inst_paths, param_at, effective, placed).run()


def _shared_params(conv: Converted, param_at: dict[str, Path], placed: dict[int, Path],
                   effective: Callable[[Path], Scope],
                   inst_paths: dict[Path, Path]) -> dict[str, Path]:  # fmt: skip
    """Parameters read outside the layer that declares them -> a path in the innermost
    layer (or the model) holding every reader."""
    readers: dict[str, list[Path]] = defaultdict(list)
    for st in conv.stmts:
        for r in st.expr.refs:
            if isinstance(r, str) and r in param_at:
                readers[r].append(placed[id(st)])
    taken = {*inst_paths.values(), *param_at.values()}
    out: dict[str, Path] = {}
    for value, homes in readers.items():
        path = param_at[value]
        home = effective(path[:-1]).path
        if all(h[: len(home)] == home for h in homes):
            continue
        common = homes[0]
        for h in homes[1:]:
            k = 0
            while k < min(len(common), len(h)) and common[k] == h[k]:
                k += 1
            common = common[:k]
        target = effective(common).path
        leaf, i = path[-1], 1
        while any(t[: len(target) + 1] == (*target, leaf) for t in taken):
            leaf, i = f"{path[-1]}_{i}", i + 1
        out[value] = (*target, leaf)
        taken.add(out[value])
    return out


def _classify(s: Scope) -> None:
    for child in s.children.values():
        _classify(child)
    if s.kind == "root":
        return
    kids = [*s.children, *s.members]
    if kids and all(k.isdigit() for k in kids):
        s.kind = "list"
    elif s.owns_params:
        s.kind = "layer"


class _Builder:
    def __init__(self, conv: Converted, root: Scope, inst_paths: dict[Path, Path],
                 param_at: dict[str, Path], effective: Callable[[Path], Scope],
                 placed: dict[int, Path]) -> None:  # fmt: skip
        self.conv = conv
        self.root = root
        self.inst_paths = inst_paths
        self.param_at = param_at
        self.effective = effective
        self.decl_by_text: dict[str, str] = {}
        self.decls: list[str] = []
        self.used_names: set[str] = set()
        self.callee: dict[Path, str] = {}
        self.key_of: dict[Path, str] = {}
        self.producer: dict[str, Path] = {}
        for st in conv.stmts:
            for o in st.outputs:
                self.producer[o] = placed[id(st)]
        for value, path in param_at.items():
            self.producer[value] = self.effective(path[:-1]).path
        self.readers: dict[str, list[Path]] = defaultdict(list)
        self.reading: dict[str, list[int]] = defaultdict(list)  # value -> ids of its readers
        for st in conv.stmts:
            for r in st.expr.refs:
                if isinstance(r, str):
                    self.readers[r].append(placed[id(st)])
                    self.reading[r].append(id(st))
        for o in conv.graph.outputs:
            self.readers[o].append(("\x00outside",))
        self.order = {id(st): i for i, st in enumerate(conv.stmts)}
        self.child_calls: dict[Path, list[Stmt]] = {}
        self.inst_order: dict[Path, int] = {}
        self.value_order: dict[str, int] = {}
        for i, st in enumerate(conv.stmts):
            for r in st.expr.refs:
                if isinstance(r, InstRef):
                    self.inst_order.setdefault(r.path, i)
                else:
                    self.value_order.setdefault(r, i)

    def run(self) -> Plan:
        for inst_path, new in self.inst_paths.items():
            self.key_of[inst_path] = ".".join(new)
        for p in self.conv.params:
            self.key_of[p.path] = ".".join(self.param_at[p.value])
        body = self.body(
            self.root, [n for n, _ in self.conv.graph.inputs], list(self.conv.graph.outputs)
        )
        return Plan(self.decls, body, self.callee, self.key_of)

    @staticmethod
    def within(path: Path, scope: Path) -> bool:
        return path[: len(scope)] == scope

    def boundary(self, s: Scope) -> tuple[list[str], list[str]]:
        inputs: list[str] = []
        outputs: list[str] = []
        produced = {v for v, p in self.producer.items() if self.within(p, s.path)}
        for sub in self._all_under(s):
            for st in sub.stmts:
                for r in st.expr.refs:
                    if isinstance(r, str) and r not in produced and r not in inputs:
                        inputs.append(r)
                for o in st.outputs:
                    if o and any(not self.within(p, s.path) for p in self.readers.get(o, [])):
                        outputs.append(o)
        return inputs, outputs

    @staticmethod
    def _all_under(s: Scope) -> list[Scope]:
        """`s` and every scope below it, nested layers included."""
        out, stack = [], [s]
        while stack:
            x = stack.pop()
            out.append(x)
            stack.extend(x.children.values())
        return out

    def body(self, s: Scope, inputs: list[str], outputs: list[str]) -> Body:
        names = NameTable()
        entries: list[tuple[int, str]] = []  # (order of first use, binding)
        declared: dict[str, str] = {}
        items: list[Stmt] = list(s.stmts)
        for seg, child in self._direct(s):
            names.taken.add(seg)
            if child.kind == "list":
                indices = sorted({*child.children, *child.members}, key=int)
                elems = [
                    self.element(child.children.get(i), (*child.path, i), items) for i in indices
                ]
                layer_texts = [e for e in elems if isinstance(e, tuple)]
                base = _singular(camel(child.path))
                distinct = list(dict.fromkeys(t for _, t in layer_texts))
                shown = []
                for e in elems:
                    if isinstance(e, str):
                        shown.append(e)
                    else:
                        own = base if len(distinct) == 1 else f"{base}_{_first(elems, indices, e)}"
                        shown.append(self.declare(e[1], own))
                key = min((self.order.get(k, 0) for k in self.calls_of(child)), default=0)
                if self.chain(child, indices, elems, items, seg):
                    entries.append((key, f"let {seg} = Sequential[{', '.join(shown)}]"))
                else:
                    entries.append((key, f"let {seg} = [{', '.join(shown)}]"))
            elif child.kind == "layer":
                _, text = self.layer(child, items, seg)
                key = min((self.order.get(k, 0) for k in self.calls_of(child)), default=0)
                entries.append((key, f"let {seg} = {self.declare(text, camel(child.path))}"))
        for inst_path, new in self.inst_paths.items():
            if new[:-1] == s.path:
                decl = next(i.decl for i in self.conv.instances if i.path == inst_path)
                entries.append((self.inst_order.get(inst_path, 0), f"let {new[-1]} = {decl}"))
                self.callee[inst_path] = new[-1]
                names.taken.add(new[-1])
        for p in self.conv.params:
            path = self.param_at[p.value]
            if path[:-1] == s.path and self.effective(path[:-1]) is s:
                kw = "buffer" if p.is_buffer else "param"
                t = TensorType(p.dtype, tuple(Dim.of(d) for d in p.array.shape))
                entries.append(
                    (self.value_order.get(p.value, 0), f"{kw} {path[-1]}: {type_text(t)}")
                )
                names.taken.add(path[-1])
                declared[p.value] = path[-1]
        bindings = [text for _, text in sorted(entries, key=lambda e: e[0])]
        return Body(inputs, outputs, self.sort(items), bindings, names, declared)

    def chain(
        self, child: Scope, indices: list[str], elems: list, items: list[Stmt], seg: str
    ) -> bool:
        """A list whose elements are each called once, in order, each on the previous one's
        result (PyTorch's Sequential) becomes a `Sequential` called once; True when done."""
        calls: list[Stmt] = []
        insides: list[set[int]] = []
        for idx, e in zip(indices, elems, strict=True):
            path = (*child.path, idx)
            if isinstance(e, str):
                inst = next(i for i, new in self.inst_paths.items() if new == path)
                found = [st for st in items if InstRef(inst) in st.expr.refs]
                if len(found) != 1 or found[0].expr.text != "\x010\x02(\x011\x02)":
                    return False
                inside = {id(found[0])}
            else:
                found = self.child_calls.get(path, [])
                if len(found) != 1 or len(found[0].expr.refs) != 1:
                    return False
                inside = {
                    id(st) for sub in self._all_under(child.children[idx]) for st in sub.stmts
                }
            if len(found[0].outputs) != 1:
                return False
            calls.append(found[0])
            insides.append(inside)
        graph_outputs = set(self.conv.graph.outputs)
        for k in range(1, len(calls)):
            prev = calls[k - 1].outputs[0]
            value_refs = [r for r in calls[k].expr.refs if isinstance(r, str)]
            if value_refs != [prev] or prev in graph_outputs:
                return False
            if not all(r in insides[k] for r in self.reading[prev]):
                return False
        first_in = [r for r in calls[0].expr.refs if isinstance(r, str)]
        for st in calls:
            items.remove(st)
        call = Stmt(calls[-1].outputs, Expr(f"{seg}(\x010\x02)", tuple(first_in)), child.path[:-1],
                    "call")  # fmt: skip
        self.order[id(call)] = self.order.get(id(calls[0]), 0)
        items.append(call)
        return True

    def calls_of(self, s: Scope) -> list[int]:
        return [id(st) for st in self.child_calls.get(s.path, [])] + [
            id(st) for sub in self._all_under(s) for st in sub.stmts
        ]

    def declare(self, text: str, base: str) -> str:
        """The name of the layer declared with `text` (declaring it on first use)."""
        if text in self.decl_by_text:
            return self.decl_by_text[text]
        name = base
        while name in self.used_names:
            name = _bump(name)
        self.used_names.add(name)
        self.decl_by_text[text] = name
        self.decls.append(f"layer {name}{text}")
        return name

    def _direct(self, s: Scope) -> list[tuple[str, Scope]]:
        """Child scopes whose bindings live in this body (through transparent scopes)."""
        out, stack = [], list(s.children.items())
        while stack:
            seg, child = stack.pop(0)
            if child.kind in ("list", "layer"):
                out.append((seg, child))
            else:
                stack.extend(child.children.items())
        return out

    def element(self, child: Scope | None, path: Path, items: list[Stmt]) -> str | tuple[str, str]:
        inst = next((i for i, new in self.inst_paths.items() if new == path), None)
        list_text = f"{path[-2]}[{path[-1]}]"
        if inst is not None:
            self.callee[inst] = list_text
            return next(i.decl for i in self.conv.instances if i.path == inst)
        if child is None or child.kind != "layer":
            raise NotNested(f"list element {'.'.join(path)} is not a layer")
        return self.layer(child, items, list_text)

    def layer(self, s: Scope, parent_items: list[Stmt], callee_text: str) -> tuple[str, str]:
        """("layer", the declaration's text after its name); adds the call to `parent_items`."""
        inputs, outputs = self.boundary(s)
        if not outputs:
            raise NotNested(f"scope {'.'.join(s.path)} computes nothing its parent reads")
        body = self.body(s, inputs, outputs)
        types = {v: self.type_of(v) for v in [*inputs, *outputs]}
        arg_names = NameTable(set(body.names.taken))
        in_names = {v: arg_names.fresh("x" if i == 0 else f"x{i}") for i, v in enumerate(inputs)}
        body.names.taken |= set(in_names.values())
        bound = set()
        params = []
        for v in inputs:
            t = types[v]
            dims = []
            for d in t.shape:
                if d.is_const:
                    dims.append(str(d))
                elif d.is_symbol and d.name not in bound:
                    bound.add(d.name)
                    dims.append(str(d))
                elif d.is_symbol:
                    dims.append(str(d))
                else:
                    dims.append("_")
            params.append(f"{in_names[v]}: {t.dtype}[{', '.join(dims)}]")
        needed = set()
        for st in body.stmts:
            needed |= st.expr.symbols
        if not needed <= bound:
            raise NotNested(f"scope {'.'.join(s.path)} needs dims {sorted(needed - bound)}")

        def out_dims(t: TensorType) -> str:
            return ", ".join(str(d) if d.is_const or (d.is_symbol and d.name in bound) else "_"
                             for d in t.shape)  # fmt: skip

        if len(outputs) == 1:
            ret = f"{types[outputs[0]].dtype}[{out_dims(types[outputs[0]])}]"
        else:
            ret = "(" + ", ".join(f"y{i}: {types[o].dtype}[{out_dims(types[o])}]"
                                  for i, o in enumerate(outputs)) + ")"  # fmt: skip
        lines = render_body(body, self.conv, self.callee, in_names)
        text = f"({', '.join(params)}) -> {ret} {{\n" + "\n".join(lines) + "\n}"
        call = Expr(f"{callee_text}(" + ", ".join(f"\x01{i}\x02" for i in range(len(inputs))) + ")",
                    tuple(inputs))  # fmt: skip
        parent_items.append(Stmt(tuple(outputs), call, s.path[:-1], "call"))
        inner = [self.order[id(st)] for sub in self._all_under(s) for st in sub.stmts]
        self.order[id(parent_items[-1])] = min(inner, default=0)
        self.child_calls.setdefault(s.path, []).append(parent_items[-1])
        return "layer", text

    def type_of(self, value: str) -> TensorType:
        v = self.conv.values[value]
        if isinstance(v, Tensor):
            return v.type
        raise NotNested(f"value {value} crosses a scope but is a constant")

    def sort(self, items: list[Stmt]) -> list[Stmt]:
        """Statements in an order where every value is computed before it is read."""
        made = {o: k for k, st in enumerate(items) for o in st.outputs}
        deps = [{made[r] for r in st.expr.refs if isinstance(r, str) and r in made} for st in items]
        waiting = [len(d) for d in deps]
        users: dict[int, list[int]] = defaultdict(list)
        for k, d in enumerate(deps):
            for j in d:
                users[j].append(k)
        ready = [(self.order.get(id(st), 0), k) for k, st in enumerate(items) if not waiting[k]]
        heapq.heapify(ready)
        out: list[Stmt] = []
        while ready:
            _, k = heapq.heappop(ready)
            out.append(items[k])
            for u in users[k]:
                waiting[u] -= 1
                if not waiting[u]:
                    heapq.heappush(ready, (self.order.get(id(items[u]), 0), u))
        if len(out) != len(items):
            raise NotNested("a module's computation interleaves with its parent's")
        return out


def _singular(name: str) -> str:
    return name[:-1] if len(name) > 4 and name.endswith("s") and not name.endswith("ss") else name


def _first(elems: list, indices: list[str], e: object) -> str:
    return indices[elems.index(e)]


def _bump(name: str) -> str:
    head = name.rstrip("0123456789")
    digits = name[len(head) :]
    return f"{head}{int(digits) + 1 if digits else 2}"


__all__ = ["NotNested", "Plan", "plan", "render_body"]
