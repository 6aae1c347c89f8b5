"""Native-vs-reference comparison for tests: the reference interpreter is the spec.

Tolerances: floats rtol 1e-4, atol 1e-5 (scaled by the largest reference
magnitude when it is above 1); ints and bools exact; NaN and inf where the
reference has them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

import mdl
from mdl import driver

RTOL = 1e-4
ATOL = 1e-5


def models(
    tmp_path: Path,
    source: str,
    weights: dict[str, np.ndarray] | None = None,
    seed: int = 0,
    name: str = "m.mdl",
) -> tuple[Any, Any]:
    """(reference model, native model) for `source`, with random weights when none are given."""
    path = tmp_path / name
    path.write_text(source)
    if weights is None:
        front = driver.compile_model(str(path))
        weights = driver.init_weights(front.graph, seed=seed, random=True)
    ref = mdl.load(str(path), weights=weights, backend="ref")
    nat = mdl.load(str(path), weights=weights, backend="native")
    return ref, nat


def assert_close(
    native: np.ndarray, reference: np.ndarray, rtol: float = RTOL, atol: float = ATOL
) -> None:
    assert native.dtype == reference.dtype, (native.dtype, reference.dtype)
    assert native.shape == reference.shape, (native.shape, reference.shape)
    if reference.dtype.kind in "biu":
        np.testing.assert_array_equal(native, reference)
        return
    ref64 = reference.astype(np.float64)
    finite = np.isfinite(ref64)
    scale = max(1.0, float(np.abs(ref64[finite]).max())) if finite.any() else 1.0
    np.testing.assert_allclose(
        native.astype(np.float64), ref64, rtol=rtol, atol=atol * scale, equal_nan=True
    )


def assert_native_matches(
    tmp_path: Path,
    source: str,
    *inputs: np.ndarray,
    weights: dict[str, np.ndarray] | None = None,
    rtol: float = RTOL,
    atol: float = ATOL,
) -> None:
    ref, nat = models(tmp_path, source, weights)
    want = ref(*inputs)
    got = nat(*inputs)
    if not isinstance(want, tuple):
        want, got = (want,), (got,)
    for g, w in zip(got, want, strict=True):
        assert_close(g, w, rtol, atol)
