"""Graph -> cost table: parameters, FLOPs and activation memory per layer instance (`mdlc stats`).

Every node carries the path of the layer instance that made it (`scope`, for
example `blocks.0.attn`) and every parameter its full path
(`blocks.0.attn.qkv.weight`, owned by `blocks.0.attn`). A row stands for one
prefix of those paths (`blocks`, `blocks.0`, `blocks.0.attn`) and sums
everything at or below it, so a parent row is the total of its subtree; the
`(model)` row holds what the model body does outside any layer, and the
total row the whole graph.

Costs:
- parameters: elements and bytes of every parameter; buffers (running
  statistics) are counted apart, since they are not trained;
- FLOPs: each primitive's own `flops` rule (one registry entry per op);
  constants and data movement count zero;
- activations: bytes of every value a node produces (constants excluded),
  the memory an interpreter that keeps every intermediate would need; the
  native backend reuses buffers and needs less.

Shapes may be symbolic (the batch `B`): every free symbol is replaced by one
number (`batch`), and `GraphStats.symbols` names the symbols replaced so the
table can say so.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

MODEL_ROW = "(model)"


@dataclass(frozen=True, slots=True)
class Cost:
    params: int = 0
    param_bytes: int = 0
    buffers: int = 0
    buffer_bytes: int = 0
    flops: int = 0
    activation_bytes: int = 0

    def __add__(self, other: Cost) -> Cost:
        return Cost(
            self.params + other.params,
            self.param_bytes + other.param_bytes,
            self.buffers + other.buffers,
            self.buffer_bytes + other.buffer_bytes,
            self.flops + other.flops,
            self.activation_bytes + other.activation_bytes,
        )


@dataclass(frozen=True, slots=True)
class Row:
    path: str  # "blocks.0.attn"; MODEL_ROW for the model body
    depth: int  # 0 for top-level children of the model
    cost: Cost


@dataclass(frozen=True, slots=True)
class GraphStats:
    model: str
    rows: tuple[Row, ...]  # parents before children, in order of first appearance
    total: Cost
    batch: int
    symbols: tuple[str, ...]  # free symbols that were set to `batch`
    unknown_ops: tuple[str, ...] = ()  # ops without a FLOPs rule (counted as zero)


class _SymbolValues(dict):
    """Every symbol looked up gets `batch`; the names asked for are remembered."""

    def __init__(self, batch: int):
        super().__init__()
        self.batch = batch

    def __missing__(self, name: str) -> int:
        self[name] = self.batch
        return self.batch


def _concrete(value: Any, env: _SymbolValues) -> int:
    """An int or a (possibly symbolic) `Dim` -> int, free symbols bound by `env`."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    evaluate = getattr(value, "evaluate", None)
    if evaluate is not None:
        return int(evaluate(env))
    return int(value)


def _elements(shape: Iterable[Any], env: _SymbolValues) -> int:
    n = 1
    for d in shape:
        n *= _concrete(d, env)
    return n


def _type_bytes(t: Any, env: _SymbolValues) -> tuple[int, int]:
    """(elements, bytes) of a TensorType."""
    n = _elements(t.shape, env)
    return n, n * t.dtype.itemsize


def _prefixes(path: str) -> list[str]:
    parts = path.split(".")
    return [".".join(parts[: i + 1]) for i in range(len(parts))]


def _owner(param_path: str) -> str:
    """The layer instance a parameter belongs to: its path without the last name."""
    return param_path.rpartition(".")[0]


def _registry() -> Mapping[str, Any]:
    from . import primitives

    return primitives.REGISTRY


def graph_stats(graph: Any, batch: int = 1) -> GraphStats:
    """Costs of `graph` per layer-instance path, free symbols set to `batch`."""
    if batch < 1:
        raise ValueError(f"batch must be at least 1, not {batch}")
    env = _SymbolValues(batch)
    registry = _registry()
    own: dict[str, Cost] = {}  # costs booked directly at each scope ("" = model body)
    unknown: dict[str, None] = {}

    def book(scope: str, cost: Cost) -> None:
        own[scope] = own.get(scope, Cost()) + cost

    for node in graph.nodes:
        if node.op == "const":
            book(node.scope, Cost())
            continue
        activation = sum(_type_bytes(v.type, env)[1] for v in node.outputs)
        prim = registry.get(node.op)
        flops = 0
        if prim is None or prim.flops is None:
            unknown.setdefault(node.op)
        else:
            in_types = [v.type for v in node.inputs]
            out_types = tuple(v.type for v in node.outputs)
            flops = _concrete(prim.flops(in_types, out_types, node.attrs), env)
        book(node.scope, Cost(flops=flops, activation_bytes=activation))

    # After the nodes, so that rows come in the order the layers run.
    for p in graph.params:
        n, nbytes = _type_bytes(p.value.type, env)
        cost = Cost(buffers=n, buffer_bytes=nbytes) if p.is_buffer else Cost(n, nbytes)
        book(_owner(p.path), cost)

    return GraphStats(
        model=graph.name,
        rows=tuple(_rows(own)),
        total=sum(own.values(), Cost()),
        batch=batch,
        symbols=tuple(sorted(env)),
        unknown_ops=tuple(unknown),
    )


def _rows(own: Mapping[str, Cost]) -> list[Row]:
    """One row per path prefix, each summing its subtree; the model body first."""
    subtree: dict[str, Cost] = {}
    for scope, cost in own.items():
        for prefix in _prefixes(scope) if scope else []:
            subtree[prefix] = subtree.get(prefix, Cost()) + cost
    rows = []
    if "" in own:
        rows.append(Row(MODEL_ROW, 0, own[""]))
    # Insertion order is the order of first appearance; a parent is always met
    # before its children because _prefixes lists it first.
    rows += [Row(path, path.count("."), cost) for path, cost in subtree.items()]
    return rows


# --- text --------------------------------------------------------------------------------------


def human_count(n: int) -> str:
    """1234 -> `1.23K`, 5_600_000 -> `5.6M`; exact below a thousand."""
    if abs(n) < 1000:
        return str(n)
    value = float(n)
    for unit in ("K", "M", "G", "T", "P"):
        value /= 1000
        if abs(value) < 999.5 or unit == "P":
            return f"{value:.3g}{unit}"
    raise AssertionError("unreachable")


def human_bytes(n: int) -> str:
    """Bytes in binary units: `512 B`, `9.4 KiB`, `1.5 MiB`."""
    if n < 1024:
        return f"{n} B"
    value = float(n)
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        value /= 1024
        if value < 1024 or unit == "TiB":
            return f"{value:.1f} {unit}"
    raise AssertionError("unreachable")


@dataclass(frozen=True, slots=True)
class _Column:
    title: str
    cell: Callable[[Cost], str]


def render_stats(stats: GraphStats, depth: int | None = None) -> str:
    """The table `mdlc stats` prints; `depth` keeps rows up to that many path levels."""
    has_buffers = stats.total.buffers > 0
    columns = [
        _Column("params", lambda c: f"{c.params:,}"),
        _Column("param bytes", lambda c: human_bytes(c.param_bytes)),
    ]
    if has_buffers:
        columns.append(_Column("buffer bytes", lambda c: human_bytes(c.buffer_bytes)))
    columns += [
        _Column("FLOPs", lambda c: human_count(c.flops)),
        _Column("activations", lambda c: human_bytes(c.activation_bytes)),
    ]
    shown = [r for r in stats.rows if depth is None or r.depth < depth]
    names = ["layer"] + ["  " * r.depth + r.path for r in shown] + ["total"]
    cells = [[col.title for col in columns]]
    cells += [[col.cell(r.cost) for col in columns] for r in shown]
    cells.append([col.cell(stats.total) for col in columns])

    name_width = max(len(n) for n in names)
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]

    def line(name: str, row: list[str]) -> str:
        parts = [f"{name:<{name_width}}"] + [f"{c:>{w}}" for c, w in zip(row, widths, strict=True)]
        return "  ".join(parts).rstrip()

    out = [_header(stats)]
    out.append(line(names[0], cells[0]))
    out.append("-" * len(out[-1]))
    out += [line(n, row) for n, row in zip(names[1:-1], cells[1:-1], strict=True)]
    out.append("-" * len(out[2]))
    out.append(line(names[-1], cells[-1]))
    if stats.unknown_ops:
        ops = ", ".join(f"`{op}`" for op in stats.unknown_ops)
        out.append(f"note: no FLOPs rule for {ops}; counted as zero")
    return "\n".join(out) + "\n"


def _header(stats: GraphStats) -> str:
    total = stats.total
    text = f"model {stats.model}: {total.params:,} parameters ({human_bytes(total.param_bytes)})"
    if total.buffers:
        text += f", {total.buffers:,} buffer values ({human_bytes(total.buffer_bytes)})"
    if stats.symbols:
        names = ", ".join(stats.symbols)
        text += f"\nsymbolic dims {names} set to {stats.batch} (change with --batch)"
    return text
