"""Integer polynomials as plain tuples -> canonical order, products, exact quotients, text.

The arithmetic core under `dims.Dim`, kept free of the `Dim` class. An atom is
a symbol name (str) or an opaque atom with a `text` attribute (`dims.FloorDiv`);
a monomial is a tuple of (atom, exponent >= 1) sorted by `atom_key`, () being
the constant monomial; a polynomial is a tuple of (monomial, nonzero
coefficient) sorted by `mono_key`: higher degree first, then by atom names,
constant last. That order is also the graded-lex monomial order that makes
long division terminate.
"""

from __future__ import annotations

Monomial = tuple  # tuple[tuple[str | FloorDiv, int], ...]

# Long division steps before giving up; the quotient of real shape
# expressions has a handful of terms.
MAX_DIVISION_STEPS = 256


def atom_key(atom) -> tuple[int, str]:
    # Symbols sort before floor-division atoms, each group by its text.
    return (0, atom) if isinstance(atom, str) else (1, atom.text)


def mono_key(mono: Monomial) -> tuple:
    expanded = tuple(atom_key(atom) for atom, exp in mono for _ in range(exp))
    return (-len(expanded), expanded)


def mono_mul(a: Monomial, b: Monomial) -> Monomial:
    if not a:
        return b
    if not b:
        return a
    exps = dict(a)
    for atom, exp in b:
        exps[atom] = exps.get(atom, 0) + exp
    return tuple(sorted(exps.items(), key=lambda item: atom_key(item[0])))


def mono_div(a: Monomial, b: Monomial) -> Monomial | None:
    """a / b when b's atoms all appear in a with at least b's exponents, else None."""
    exps = dict(a)
    for atom, exp in b:
        have = exps.get(atom, 0)
        if have < exp:
            return None
        exps[atom] = have - exp
    return tuple((atom, exps[atom]) for atom, _ in a if exps[atom])


def poly_divide(num: tuple, den: tuple) -> dict[Monomial, int] | None:
    """Exact multivariate long division (graded lex order); None when a remainder is left."""
    remainder = dict(num)
    lead_mono, lead_coeff = den[0]
    quotient: dict[Monomial, int] = {}
    for _ in range(MAX_DIVISION_STEPS):
        if not remainder:
            return quotient
        mono = min(remainder, key=mono_key)
        coeff = remainder[mono]
        q_mono = mono_div(mono, lead_mono)
        if q_mono is None or coeff % lead_coeff:
            return None
        q_coeff = coeff // lead_coeff
        quotient[q_mono] = q_coeff
        for d_mono, d_coeff in den:
            m = mono_mul(q_mono, d_mono)
            left = remainder.get(m, 0) - q_coeff * d_coeff
            if left:
                remainder[m] = left
            else:
                remainder.pop(m, None)
    return None


def term_text(mono: Monomial, coeff: int) -> str:
    if not mono:
        return str(coeff)
    factors = [atom for atom, exp in mono for _ in range(exp)]
    alone = len(factors) == 1 and coeff == 1
    texts = [
        atom if isinstance(atom, str) else (atom.text if alone else f"({atom.text})")
        for atom in factors
    ]
    body = " * ".join(texts)
    if coeff == 1:
        return body
    if coeff == -1:
        return "-" + body
    return f"{coeff} * {body}"


def poly_text(terms: tuple) -> str:
    if not terms:
        return "0"
    parts = [term_text(*terms[0])]
    for mono, coeff in terms[1:]:
        if coeff < 0:
            parts.append(" - " + term_text(mono, -coeff))
        else:
            parts.append(" + " + term_text(mono, coeff))
    return "".join(parts)
