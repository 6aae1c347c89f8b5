"""Shape rules shared by the checker and the primitives: shapes of `Dim`s -> results or errors.

- `broadcast_shapes`: numpy broadcasting over symbolic shapes, accepting only
  shapes that are provably compatible.
- `match_shape`: a declared shape (`f32[*S, 3 * D, _]`) against an actual
  shape -> bindings of its symbols; `substitute` goes back the other way.
- small helpers: `normalize_axis`, `shape_str`, `num_elements`.

Declared shapes and actual shapes have separate symbol namespaces: the
pattern `[B, N]` may be matched against the caller's `(N, 4)`. Bindings map
pattern names to the caller's dims, and substitution is simultaneous, so the
two never mix.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .dims import Dim, as_dim, dim_product


@dataclass(frozen=True, slots=True)
class Variadic:
    """`*S` in a declared shape: any number of dims (bound to a tuple)."""

    name: str

    def __str__(self) -> str:
        return f"*{self.name}"


@dataclass(frozen=True, slots=True)
class Wildcard:
    """`_` in a declared shape: any single dim, not bound."""

    def __str__(self) -> str:
        return "_"


ShapeItem = Dim | Variadic | Wildcard
Shape = tuple[Dim, ...]
Bindings = dict[str, Dim | tuple[Dim, ...]]


def shape_str(shape: Sequence[ShapeItem | int]) -> str:
    return "[" + ", ".join(str(d) for d in shape) + "]"


def num_elements(shape: Sequence[Dim | int]) -> Dim:
    return dim_product(shape)


def normalize_axis(axis: int, rank: int) -> int:
    """`axis` counted from the front (negative axes count from the end)."""
    if -rank <= axis < rank:
        return axis + rank if axis < 0 else axis
    if rank == 0:
        raise IndexError(f"axis {axis} is out of range: a scalar (rank 0) has no axes")
    raise IndexError(
        f"axis {axis} is out of range for rank {rank} (valid axes are {-rank} to {rank - 1})"
    )


# ---- broadcasting -----------------------------------------------------------


class BroadcastError(Exception):
    """Two dims at the same (negative, from the end) axis that cannot broadcast."""

    def __init__(self, axis: int, left: Dim, right: Dim, message: str | None = None):
        self.axis = axis
        self.left = left
        self.right = right
        self.message = message or (
            f"dimension {left} (axis {axis}) cannot be broadcast with {right}"
        )
        super().__init__(self.message)


def broadcast_shapes(*shapes: Sequence[Dim | int]) -> Shape:
    """numpy broadcasting, right-aligned; a symbolic dim counts as "not statically 1"."""
    dims_of = [tuple(as_dim(d) for d in s) for s in shapes]
    rank = max((len(s) for s in dims_of), default=0)
    result: list[Dim] = []
    for axis in range(-rank, 0):
        out: Dim | None = None
        for s in dims_of:
            if -axis > len(s):
                continue
            d = s[axis]
            if d == 1:
                continue
            if out is None:
                out = d
            elif d != out:
                raise BroadcastError(axis, out, d)
        result.append(out if out is not None else as_dim(1))
    return tuple(result)


# ---- matching declared shapes -----------------------------------------------


class MatchError(Exception):
    """An actual shape does not fit a declared one.

    `axis` is the offending axis of the actual shape (None: the rank differs);
    `expected` and `got` are short texts for labels ("64" / "32", "rank 3" / "rank 2").
    """

    def __init__(self, message: str, axis: int | None = None, expected: str = "", got: str = ""):
        self.message = message
        self.axis = axis
        self.expected = expected
        self.got = got
        super().__init__(message)


def _pattern_item(item: ShapeItem | int) -> ShapeItem:
    return item if isinstance(item, (Variadic, Wildcard)) else as_dim(item)


def _dim_env(bindings: Mapping[str, Dim | tuple[Dim, ...]], names: frozenset[str]) -> dict:
    """The Dim bindings of `names`; a name bound to a tuple (a variadic) cannot be a dim."""
    env = {}
    for name in names:
        if name in bindings:
            value = bindings[name]
            if isinstance(value, tuple):
                raise MatchError(
                    f"{name} is bound to the dims {shape_str(value)} (*{name}), not to one dim"
                )
            env[name] = value
    return env


def _rank_error(expected: str, got: int, note: str = "") -> MatchError:
    return MatchError(
        f"expected rank {expected}{note}, got rank {got}", None, f"rank {expected}", f"rank {got}"
    )


def match_shape(
    pattern: Sequence[ShapeItem | int],
    actual: Sequence[Dim | int],
    bindings: Mapping[str, Dim | tuple[Dim, ...]],
) -> Bindings:
    """Match a declared shape against an actual one; returns `bindings` extended (a new dict)."""
    items = [_pattern_item(p) for p in pattern]
    dims = tuple(as_dim(d) for d in actual)
    out: Bindings = dict(bindings)
    variadics = [i for i, p in enumerate(items) if isinstance(p, Variadic)]
    if len(variadics) > 1:
        names = ", ".join(str(items[i]) for i in variadics)
        raise MatchError(f"a shape can have at most one variadic dimension, found {names}")

    fixed = len(items) - len(variadics)
    if not variadics:
        if len(dims) != fixed:
            raise _rank_error(str(fixed), len(dims))
        pairs = list(zip(range(fixed), items, dims, strict=True))
    else:
        v = variadics[0]
        var = items[v]
        bound = out.get(var.name)
        if bound is not None and not isinstance(bound, tuple):
            raise MatchError(f"*{var.name} is bound to the dim {bound}, not to a list of dims")
        if bound is not None and len(dims) != fixed + len(bound):
            raise _rank_error(
                str(fixed + len(bound)), len(dims), f" (*{var.name} = {shape_str(bound)})"
            )
        if len(dims) < fixed:
            raise _rank_error(f"at least {fixed}", len(dims))
        n_var = len(dims) - fixed
        middle = dims[v : v + n_var]
        if bound is None:
            out[var.name] = middle
        else:
            for i, (want, got) in enumerate(zip(bound, middle, strict=True)):
                if want != got:
                    raise MatchError(
                        f"axis {v + i}: expected {want} (from *{var.name} = {shape_str(bound)}), "
                        f"got {got}",
                        v + i,
                        str(want),
                        str(got),
                    )
        pairs = [(i, items[i], dims[i]) for i in range(v)]
        pairs += [(i + n_var - 1, items[i], dims[i + n_var - 1]) for i in range(v + 1, len(items))]

    pending = [(axis, p, d) for axis, p, d in pairs if isinstance(p, Dim)]
    _match_dims(pending, out)
    return out


def _match_dims(pending: list[tuple[int, Dim, Dim]], out: Bindings) -> None:
    """Bind and check pattern dims: direct bindings and comparisons first, then linear solves."""
    while pending:
        progress = True
        while progress and pending:
            progress = False
            still = []
            for axis, pat, got in pending:
                unbound = pat.symbols - out.keys()
                if not unbound:
                    _compare(axis, pat, got, out)
                    progress = True
                elif pat.is_symbol:
                    out[pat.name] = got
                    progress = True
                else:
                    still.append((axis, pat, got))
            pending = still
        if not pending:
            return
        for index, (axis, pat, got) in enumerate(pending):
            unbound = pat.symbols - out.keys()
            if len(unbound) == 1 and pat.linear_in(next(iter(unbound))) is not None:
                _solve_linear(axis, pat, got, next(iter(unbound)), out)
                del pending[index]
                break
        else:
            axis, pat, got = pending[0]
            names = ", ".join(sorted(pat.symbols - out.keys()))
            raise MatchError(f"cannot infer {names} from {pat} = {got}", axis, str(pat), str(got))


def _compare(axis: int, pat: Dim, got: Dim, out: Bindings) -> None:
    want = pat.subst(_dim_env(out, pat.symbols))
    if want != got:
        shown = f"{pat} = {want}" if str(pat) != str(want) else str(want)
        raise MatchError(f"axis {axis}: expected {shown}, got {got}", axis, str(want), str(got))


def _solve_linear(axis: int, pat: Dim, got: Dim, name: str, out: Bindings) -> None:
    # Split before substituting: the bound values may use the caller's symbol `name` too.
    a, b = pat.linear_in(name)
    env = _dim_env(out, a.symbols | b.symbols)
    a, b = a.subst(env), b.subst(env)
    x = (got - b).exact_div(a) if a != 0 else None
    if x is None:
        raise MatchError(f"cannot infer {name} from {pat} = {got}", axis, str(pat), str(got))
    if x.value is not None and x.value < 0:
        raise MatchError(
            f"cannot infer {name} from {pat} = {got}: {name} would be {x}", axis, str(pat), str(got)
        )
    out[name] = x


def substitute(pattern: Sequence[ShapeItem | int], bindings: Mapping[str, Dim | tuple]) -> Shape:
    """The shape a declared shape stands for under `bindings` (unbound dim symbols stay)."""
    result: list[Dim] = []
    for item in pattern:
        match item:
            case Variadic(name=name):
                value = bindings.get(name)
                if not isinstance(value, tuple):
                    raise ValueError(
                        f"cannot substitute *{name}: it is not bound to a list of dims"
                    )
                result.extend(as_dim(d) for d in value)
            case Wildcard():
                raise ValueError("cannot substitute `_`: it stands for an unknown dimension")
            case _:
                d = as_dim(item)
                try:
                    env = _dim_env(bindings, d.symbols)
                except MatchError as e:
                    raise ValueError(e.message) from None
                result.append(d.subst(env))
    return tuple(result)
