"""Fit the polynomial coefficients of the native f32 `erf` and `tanh` (lang/mdl/backend/vmath.py).

    python tools/fit_vmath.py

prints the two coefficient tables as f32 hex literals, ready to paste. Weighted least
squares on 20,000 Chebyshev-distributed points (close to minimax at these degrees), in
f64, against `math.erf`/`math.erfc` (correctly rounded f64 on glibc):

- |x| < BREAK: erf(x) = x + x * R(x^2), R(s) = erf(t)/t - 1 with t = sqrt(s), degree 6
  (the constant term is fitted in f64 and only then rounded: rounding 2/sqrt(pi) to f32
  first would cost 0.5 ulp on every small x);
- BREAK <= |x| <= 4: erfc(t) = exp(-t^2) * Q(u), u = 1/(1 + t), degree 8 (in t itself
  the fit is ill-conditioned and needs degree 13);
- tanh, |x| < TANH_BREAK: tanh(x) = x + x * T(x^2), T(s) = s P(s) with P(s) = (tanh(t)/t - 1)/s
  of degree 5: the constant term is exactly 0, so that tanh(-0) = -0. Above,
  1 - 2 / (exp(2|x|) + 1).

The tests measure the result, not the fit: tests/native/test_vmath.py.
"""

from __future__ import annotations

import math

import numpy as np

BREAK = 0.875
TANH_BREAK = 0.625
TANH_DEGREE = 5
SMALL_DEGREE = 6
LARGE_DEGREE = 8
POINTS = 20_000


def _fit(f, lo: float, hi: float, degree: int, var) -> np.ndarray:
    k = np.arange(POINTS)
    t = (lo + hi) / 2 + (hi - lo) / 2 * np.cos(np.pi * (k + 0.5) / POINTS)
    y = f(t)
    v = np.vander(var(t), degree + 1, increasing=True)
    w = 1 / np.abs(y)  # relative error
    c, *_ = np.linalg.lstsq(v * w[:, None], y * w, rcond=None)
    return c


def coefficients() -> tuple[list[float], list[float], list[float]]:
    erf = np.vectorize(math.erf)
    erfc = np.vectorize(math.erfc)
    small = _fit(lambda t: erf(t) / t - 1, 1e-4, BREAK, SMALL_DEGREE, lambda t: t * t)
    large = _fit(lambda t: erfc(t) * np.exp(t * t), BREAK, 4.0, LARGE_DEGREE, lambda t: 1 / (1 + t))
    tanh = [
        0.0,
        *_fit(
            lambda t: (np.tanh(t) / t - 1) / (t * t), 1e-3, TANH_BREAK, TANH_DEGREE, lambda t: t * t
        ),
    ]
    to_f32 = lambda c: [float(np.float32(x)) for x in c]  # noqa: E731
    return to_f32(small), to_f32(large), to_f32(tanh)


if __name__ == "__main__":
    small, large, tanh = coefficients()
    for name, table in (("ERF_SMALL", small), ("ERF_LARGE", large), ("TANH_SMALL", tanh)):
        print(f"{name} = (")
        for c in table:
            print(f'    float.fromhex("{c.hex()}"),')
        print(")")
