"""Symbolic dimensions: ints, symbol names and arithmetic on them -> canonical `Dim` values.

A `Dim` is a polynomial with integer coefficients over atoms. An atom is a
symbol name (`B`, a dim bound at run time) or an opaque `FloorDiv(num, den)`
that could not be simplified (`(H + 1) // 2`). The canonical form makes
structural equality meaningful: `2 * B == B * 2`, `B + B == 2 * B`, and a
constant `Dim` equals (and hashes like) the equal int.

Exact division (`D / heads` in the language) is `exact_div`, which only
answers when the quotient is provably an integer polynomial. Floor division
(`(H + 2 * p - k) // s + 1` for conv output sizes) folds what it can prove and
keeps the rest as an atom.

Plain Python, no recursion: floor division by constants flattens nested
atoms, and what nests anyway (division by symbols) is walked with explicit
stacks; `FloorDiv` atoms cache their text, hash and symbols and are interned.
The tuple-level polynomial algebra lives in dims_poly.py.
"""

from __future__ import annotations

import math
import numbers
import operator
import weakref
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from .dims_poly import Monomial, mono_key, mono_mul, poly_divide, poly_text


@dataclass(frozen=True, slots=True, weakref_slot=True)
class FloorDiv:
    """`num // den` (Python floor semantics) kept as an opaque atom of a polynomial.

    Text, hash and symbols are computed once at construction, from the already
    cached values of `num` and `den`, so nothing walks a deep nesting again.
    Atoms are interned (`_floordiv_atom`): equal atoms are one object, so
    comparing two deep nestings stops at the first level by identity.
    """

    num: Dim
    den: Dim
    text: str = field(init=False, repr=False, compare=False)
    symbols: frozenset[str] = field(init=False, repr=False, compare=False)
    _hash: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        text = f"{_operand_text(self.num)} // {_operand_text(self.den)}"
        object.__setattr__(self, "text", text)
        object.__setattr__(self, "symbols", self.num.symbols | self.den.symbols)
        object.__setattr__(self, "_hash", hash(("//", self.num, self.den)))

    def __eq__(self, other: object) -> bool:
        if self is other:
            return True
        if not isinstance(other, FloorDiv):
            return NotImplemented
        return self._hash == other._hash and self.num == other.num and self.den == other.den

    def __hash__(self) -> int:
        return self._hash

    def __str__(self) -> str:
        return self.text

    def __reduce__(self):
        return (_floordiv_atom, (self.num, self.den))


_ATOMS: weakref.WeakValueDictionary[tuple, FloorDiv] = weakref.WeakValueDictionary()


def _floordiv_atom(num: Dim, den: Dim) -> FloorDiv:
    key = (num, den)
    atom = _ATOMS.get(key)
    if atom is None:
        atom = FloorDiv(num, den)
        _ATOMS[key] = atom
    return atom


def _operand_text(d: Dim) -> str:
    text = str(d)
    return f"({text})" if " " in text else text


class Dim:
    """An immutable symbolic dimension in canonical polynomial form."""

    __slots__ = ("_terms", "_hash", "_text", "_symbols")

    def __new__(cls, x: int | str | Dim) -> Dim:
        # `Dim(x)` is a convenience spelling of `Dim.of(x)`.
        return Dim.of(x)

    @classmethod
    def _make(cls, terms: tuple) -> Dim:
        d = object.__new__(cls)
        object.__setattr__(d, "_terms", terms)
        object.__setattr__(d, "_hash", None)
        object.__setattr__(d, "_text", None)
        object.__setattr__(d, "_symbols", None)
        return d

    @classmethod
    def _from_poly(cls, poly: Mapping[Monomial, int]) -> Dim:
        items = [(m, c) for m, c in poly.items() if c]
        if not items:
            return _ZERO
        if len(items) == 1 and not items[0][0]:
            return Dim.const(items[0][1])
        items.sort(key=lambda mc: mono_key(mc[0]))
        return cls._make(tuple(items))

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("Dim is immutable")

    def __reduce__(self):
        return (_from_terms, (self._terms,))

    # ---- construction -------------------------------------------------------

    @staticmethod
    def of(x: int | str | Dim) -> Dim:
        if isinstance(x, Dim):
            return x
        if isinstance(x, bool):
            raise TypeError(f"a dimension cannot be a bool ({x})")
        if isinstance(x, int):
            return Dim.const(x)
        if isinstance(x, str):
            return Dim.sym(x)
        try:
            return Dim.const(operator.index(x))
        except TypeError:
            raise TypeError(f"cannot make a dimension from {type(x).__name__} {x!r}") from None

    @staticmethod
    def sym(name: str) -> Dim:
        if not isinstance(name, str) or not name:
            raise ValueError(f"a dimension symbol needs a non-empty name, got {name!r}")
        return Dim._make(((((name, 1),), 1),))

    @staticmethod
    def const(n: int) -> Dim:
        n = operator.index(n)
        cached = _CONSTANTS.get(n)
        if cached is not None:
            return cached
        return Dim._make((((), n),) if n else ())

    @staticmethod
    def _atom(atom: FloorDiv) -> Dim:
        return Dim._make(((((atom, 1),), 1),))

    # ---- inspection ---------------------------------------------------------

    @property
    def terms(self) -> tuple:
        """The canonical polynomial: ((monomial, coefficient), ...), for code generators.

        A monomial is ((atom, exponent), ...), an atom a symbol name or a `FloorDiv`.
        """
        return self._terms

    @property
    def is_const(self) -> bool:
        t = self._terms
        return not t or (len(t) == 1 and not t[0][0])

    @property
    def value(self) -> int | None:
        t = self._terms
        if not t:
            return 0
        if len(t) == 1 and not t[0][0]:
            return t[0][1]
        return None

    @property
    def is_symbol(self) -> bool:
        t = self._terms
        return (
            len(t) == 1
            and t[0][1] == 1
            and len(t[0][0]) == 1
            and t[0][0][0][1] == 1
            and (isinstance(t[0][0][0][0], str))
        )

    @property
    def name(self) -> str | None:
        """The symbol's name when `is_symbol`, else None."""
        return self._terms[0][0][0][0] if self.is_symbol else None

    @property
    def symbols(self) -> frozenset[str]:
        if self._symbols is None:
            names: set[str] = set()
            for mono, _ in self._terms:
                for atom, _ in mono:
                    if isinstance(atom, str):
                        names.add(atom)
                    else:
                        names |= atom.symbols
            object.__setattr__(self, "_symbols", frozenset(names))
        return self._symbols

    def linear_in(self, name: str) -> tuple[Dim, Dim] | None:
        """(a, b) with self == a * name + b and `name` free in a and b; None if not linear."""
        a: dict[Monomial, int] = {}
        b: dict[Monomial, int] = {}
        for mono, coeff in self._terms:
            exp = 0
            rest = []
            for atom, e in mono:
                if atom == name:
                    exp = e
                elif isinstance(atom, FloorDiv) and name in atom.symbols:
                    return None
                else:
                    rest.append((atom, e))
            if exp == 0:
                b[mono] = coeff
            elif exp == 1:
                a[tuple(rest)] = coeff
            else:
                return None
        return Dim._from_poly(a), Dim._from_poly(b)

    # ---- arithmetic ---------------------------------------------------------

    def __add__(self, other: Dim | int) -> Dim:
        o = _coerce(other)
        if o is None:
            return NotImplemented
        if not o._terms:
            return self
        if not self._terms:
            return o
        a, b = self.value, o.value
        if a is not None and b is not None:
            return Dim.const(a + b)
        poly = dict(self._terms)
        for mono, coeff in o._terms:
            poly[mono] = poly.get(mono, 0) + coeff
        return Dim._from_poly(poly)

    __radd__ = __add__

    def __neg__(self) -> Dim:
        return self._scale(-1)

    def __pos__(self) -> Dim:
        return self

    def __sub__(self, other: Dim | int) -> Dim:
        o = _coerce(other)
        if o is None:
            return NotImplemented
        return self + o._scale(-1)

    def __rsub__(self, other: Dim | int) -> Dim:
        o = _coerce(other)
        if o is None:
            return NotImplemented
        return o + self._scale(-1)

    def __mul__(self, other: Dim | int) -> Dim:
        o = _coerce(other)
        if o is None:
            return NotImplemented
        b = o.value
        if b is not None:
            return self._scale(b)
        a = self.value
        if a is not None:
            return o._scale(a)
        poly: dict[Monomial, int] = {}
        for m1, c1 in self._terms:
            for m2, c2 in o._terms:
                m = mono_mul(m1, m2)
                poly[m] = poly.get(m, 0) + c1 * c2
        return Dim._from_poly(poly)

    __rmul__ = __mul__

    def __pow__(self, exponent: int) -> Dim:
        if isinstance(exponent, bool) or not isinstance(exponent, int):
            return NotImplemented
        if exponent < 0:
            raise ValueError(f"a dimension power needs a non-negative exponent, got {exponent}")
        result, base = _ONE, self
        while exponent:
            if exponent & 1:
                result = result * base
            exponent >>= 1
            if exponent:
                base = base * base
        return result

    def _scale(self, k: int) -> Dim:
        if k == 1:
            return self
        if k == 0 or not self._terms:
            return _ZERO
        a = self.value
        if a is not None:
            return Dim.const(a * k)
        return Dim._make(tuple((m, c * k) for m, c in self._terms))

    def exact_div(self, other: Dim | int) -> Dim | None:
        """The quotient when it is provably an integer polynomial, else None."""
        o = Dim.of(other)
        if not o._terms:
            raise ZeroDivisionError(f"dimension {self} divided by zero")
        if not self._terms:
            return _ZERO
        k = o.value
        if k is not None:
            if any(c % k for _, c in self._terms):
                return None
            return Dim._from_poly({m: c // k for m, c in self._terms})
        if self == o:
            return _ONE
        quotient = poly_divide(self._terms, o._terms)
        return None if quotient is None else Dim._from_poly(quotient)

    def floordiv(self, other: Dim | int) -> Dim:
        """Python floor division: exact when provable, folded for constants, else an atom."""
        o = Dim.of(other)
        exact = self.exact_div(o)  # raises ZeroDivisionError for a zero divisor
        if exact is not None:
            return exact
        a, k = self.value, o.value
        if k is not None:
            return Dim.const(a // k) if a is not None else _floordiv_by_const(self, k)
        return _opaque_floordiv(self, o)

    def __floordiv__(self, other: Dim | int) -> Dim:
        o = _coerce(other)
        return NotImplemented if o is None else self.floordiv(o)

    def __rfloordiv__(self, other: Dim | int) -> Dim:
        o = _coerce(other)
        return NotImplemented if o is None else o.floordiv(self)

    def __mod__(self, other: Dim | int) -> Dim:
        o = _coerce(other)
        return NotImplemented if o is None else self - o * self.floordiv(o)

    def __rmod__(self, other: Dim | int) -> Dim:
        o = _coerce(other)
        return NotImplemented if o is None else o - self * o.floordiv(self)

    # ---- substitution and evaluation ----------------------------------------

    def subst(self, env: Mapping[str, Dim | int]) -> Dim:
        """Replace the symbols bound in `env` (all at once) and fold what becomes constant."""
        if not any(name in env for name in self.symbols):
            return self
        replaced: dict[int, Dim] = {}  # id(FloorDiv atom) -> its substituted value
        for atom in _floordiv_atoms_inner_first(self):
            if any(name in env for name in atom.symbols):
                num = _subst_poly(atom.num, env, replaced)
                replaced[id(atom)] = num.floordiv(_subst_poly(atom.den, env, replaced))
        return _subst_poly(self, env, replaced)

    def evaluate(self, env: Mapping[str, int]) -> int:
        """The concrete value; KeyError on an unbound symbol, ZeroDivisionError on `x // 0`."""
        values: dict[int, int] = {}  # id(FloorDiv atom) -> its value
        for atom in _floordiv_atoms_inner_first(self):
            values[id(atom)] = _eval_poly(atom.num, env, values) // _eval_poly(
                atom.den, env, values
            )
        return _eval_poly(self, env, values)

    def __int__(self) -> int:
        v = self.value
        if v is None:
            raise TypeError(f"dimension {self} is symbolic, not a constant")
        return v

    __index__ = __int__

    def __bool__(self) -> bool:
        # Symbolic dims are not identically zero (zero always folds to the constant 0).
        return bool(self._terms)

    # ---- equality, hashing, text --------------------------------------------

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Dim):
            return self is other or self._terms == other._terms
        if isinstance(other, int):
            return self.value == other
        return NotImplemented

    def __hash__(self) -> int:
        h = self._hash
        if h is None:
            v = self.value
            h = hash(v) if v is not None else hash(self._terms)
            object.__setattr__(self, "_hash", h)
        return h

    def __str__(self) -> str:
        text = self._text
        if text is None:
            text = poly_text(self._terms)
            object.__setattr__(self, "_text", text)
        return text

    def __repr__(self) -> str:
        return f"Dim({self})"


def _floordiv_atoms_inner_first(d: Dim) -> list[FloorDiv]:
    """Every `FloorDiv` atom reachable from d, each after the atoms inside it (no recursion)."""

    def atoms_of(x: Dim) -> list[FloorDiv]:
        return [a for mono, _ in x._terms for a, _ in mono if isinstance(a, FloorDiv)]

    order: list[FloorDiv] = []
    seen: set[int] = set()
    stack = [(atom, False) for atom in atoms_of(d)]
    while stack:
        atom, children_done = stack.pop()
        if children_done:
            order.append(atom)
        elif id(atom) not in seen:
            seen.add(id(atom))
            stack.append((atom, True))
            stack += [(child, False) for child in atoms_of(atom.num) + atoms_of(atom.den)]
    return order


def _subst_poly(d: Dim, env: Mapping[str, Dim | int], replaced: dict[int, Dim]) -> Dim:
    total = _ZERO
    for mono, coeff in d._terms:
        term = Dim.const(coeff)
        for atom, exp in mono:
            if isinstance(atom, str):
                factor = Dim.of(env[atom]) if atom in env else Dim.sym(atom)
            else:
                factor = replaced.get(id(atom))
                if factor is None:
                    factor = Dim._atom(atom)
            term = term * (factor if exp == 1 else factor**exp)
        total = total + term
    return total


def _eval_poly(d: Dim, env: Mapping[str, int], values: dict[int, int]) -> int:
    total = 0
    for mono, coeff in d._terms:
        term = coeff
        for atom, exp in mono:
            v = operator.index(env[atom]) if isinstance(atom, str) else values[id(atom)]
            term *= v**exp
        total += term
    return total


def _from_terms(terms: tuple) -> Dim:
    return Dim._from_poly(dict(terms))


def _coerce(x: object) -> Dim | None:
    """The Dim for an arithmetic operand (Dim or integer, numpy integers included), else None."""
    if isinstance(x, Dim):
        return x
    if isinstance(x, numbers.Integral) and not isinstance(x, bool):
        return Dim.const(int(x))
    return None


def _opaque_floordiv(num: Dim, den: Dim) -> Dim:
    """num // den for a symbolic den, as an atom with common factors and den's sign normalised
    (floor(g*x / (g*y)) == floor(x / y) == floor(-x / -y))."""
    g = math.gcd(*(c for _, c in num._terms), *(c for _, c in den._terms))
    if den._terms[0][1] < 0:
        g = -g
    if g != 1:
        num = Dim._from_poly({m: c // g for m, c in num._terms})
        den = Dim._from_poly({m: c // g for m, c in den._terms})
    return Dim._atom(_floordiv_atom(num, den))


def _floordiv_by_const(num: Dim, k: int) -> Dim:
    """num // k for a symbolic num and a constant k that does not divide it exactly.

    Normalises so that equal values print alike: common factors cancel, terms
    divisible by k and the constant's multiple of k move out of the atom, and a
    floor division by a constant inside is merged (floor(floor(x/a)/k) = floor(x/(a*k))),
    so stacked strided convolutions give `(H + 3) // 4`, not nested atoms.
    """
    outside = _ZERO
    while True:
        if k < 0:
            num, k = -num, -k
        if k == 1:
            return outside + num
        g = math.gcd(k, *(c for _, c in num._terms))
        if g > 1:
            num, k = Dim._from_poly({m: c // g for m, c in num._terms}), k // g
            continue
        pulled: dict[Monomial, int] = {}
        rest: dict[Monomial, int] = {}
        for mono, coeff in num._terms:
            if not mono:
                pulled[mono], rest[mono] = divmod(coeff, k)
            elif coeff % k == 0:
                pulled[mono] = coeff // k
            else:
                rest[mono] = coeff
        outside = outside + Dim._from_poly(pulled)
        num = Dim._from_poly(rest)
        if num.is_const:  # 0 <= num < k here
            return outside
        inner = _single_floordiv_by_const(num)
        if inner is None:
            if math.gcd(k, *(c for _, c in num._terms)) > 1:
                continue
            return outside + Dim._atom(_floordiv_atom(num, Dim.const(k)))
        atom, others = inner
        a = atom.den.value
        # floor(x / a) + P == floor((x + a * P) / a) for any integer P.
        num, k = atom.num + others._scale(a), a * k


def _single_floordiv_by_const(num: Dim) -> tuple[FloorDiv, Dim] | None:
    """(atom, rest) when num == atom + rest, atom a `FloorDiv` by a positive constant that
    appears nowhere else in num; else None."""
    found = None
    for mono, coeff in num._terms:
        if coeff == 1 and len(mono) == 1 and mono[0][1] == 1:
            atom = mono[0][0]
            if isinstance(atom, FloorDiv) and (atom.den.value or 0) > 0:
                found = atom
                break
    if found is None:
        return None
    rest = {}
    for mono, coeff in num._terms:
        if mono == ((found, 1),):
            continue
        if any(a == found for a, _ in mono):
            return None
        rest[mono] = coeff
    return found, Dim._from_poly(rest)


_ZERO = Dim._make(())
_CONSTANTS: dict[int, Dim] = {0: _ZERO}
for _n in range(-16, 1025):
    if _n:
        _CONSTANTS[_n] = Dim._make((((), _n),))
_ONE = _CONSTANTS[1]


def dim_product(dims: Iterable[Dim | int]) -> Dim:
    result = _ONE
    for d in dims:
        result = result * Dim.of(d)
    return result


def as_dim(x: int | str | Dim) -> Dim:
    return Dim.of(x)
