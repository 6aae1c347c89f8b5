"""Calling a compiled model: boundary checks, the slow path, changing dims, threads."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

import mdl

SOURCE = """
model M(x: f32[B, 4], ids: i64[B] in 0..10) -> (y: f32[B, 4], s: f32[B]) {
    let y = x * 2.0 + 1.0
    return y, sum(y, axis=-1) + cast(ids, f32)
}
"""


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> mdl.api.Model:
    path = Path(tmp_path_factory.mktemp("call")) / "m.mdl"
    path.write_text(SOURCE)
    return mdl.load(str(path), backend="native")


def expected(x: np.ndarray, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y = x * np.float32(2) + np.float32(1)
    return y, y.sum(axis=-1, dtype=np.float64).astype(np.float32) + ids.astype(np.float32)


def test_dims_change_between_calls(model) -> None:
    for b in (3, 1, 7, 3, 0):
        x = np.arange(b * 4, dtype=np.float32).reshape(b, 4)
        ids = np.arange(b, dtype=np.int64) % 10
        y, s = model(x, ids)
        want_y, want_s = expected(x, ids)
        np.testing.assert_array_equal(y, want_y)
        np.testing.assert_allclose(s, want_s, rtol=1e-6)


def test_outputs_are_fresh_arrays(model) -> None:
    x = np.ones((2, 4), np.float32)
    ids = np.zeros(2, np.int64)
    first, _ = model(x, ids)
    second, _ = model(x * 3, ids)
    assert first is not second and first[0, 0] == 3.0 and second[0, 0] == 7.0


def test_non_contiguous_inputs_are_copied(model) -> None:
    big = np.arange(48, dtype=np.float32).reshape(4, 12)
    x = big[:, ::3]
    assert not x.flags.c_contiguous
    ids = np.array([1, 2, 3, 4])
    y, _ = model(x, ids)
    np.testing.assert_array_equal(y, expected(np.ascontiguousarray(x), ids)[0])


@pytest.mark.parametrize(
    "x, ids, code",
    [
        (np.ones((2, 4), np.float64), np.zeros(2, np.int64), "E0603"),
        (np.ones((2, 4, 1), np.float32), np.zeros(2, np.int64), "E0604"),
        (np.ones((2, 5), np.float32), np.zeros(2, np.int64), "E0605"),
        (np.ones((2, 4), np.float32), np.zeros(3, np.int64), "E0605"),
        (np.ones((2, 4), np.float32), np.array([0, 10]), "E0606"),
        (np.ones((2, 4), np.float32), np.array([-1, 0]), "E0606"),
        ([[1.0] * 4] * 2, np.zeros(2, np.int64), "E0608"),
    ],
)
def test_bad_inputs_raise_the_reference_codes(model, x, ids, code) -> None:
    with pytest.raises(mdl.MdlError) as e:
        model(x, ids)
    assert e.value.diagnostics[0].code == code
    y, _ = model(np.ones((2, 4), np.float32), np.zeros(2, np.int64))  # and it still works
    assert y.shape == (2, 4)


def test_missing_and_unexpected_inputs(model) -> None:
    with pytest.raises(mdl.MdlError) as e:
        model(x=np.ones((2, 4), np.float32))
    assert e.value.diagnostics[0].code == "E0601"
    with pytest.raises(mdl.MdlError) as e:
        model(np.ones((2, 4), np.float32), np.zeros(2, np.int64), z=np.ones(1))
    assert e.value.diagnostics[0].code == "E0602"


def test_concurrent_calls_with_different_dims(model) -> None:
    errors: list[str] = []

    def work(b: int) -> None:
        x = np.full((b, 4), b, np.float32)
        ids = np.full(b, b % 10, np.int64)
        want_y, want_s = expected(x, ids)
        for _ in range(300):
            y, s = model(x, ids)
            if not (np.array_equal(y, want_y) and np.allclose(s, want_s)):
                errors.append(f"batch {b}")

    threads = [threading.Thread(target=work, args=(b,)) for b in (1, 2, 5, 9)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_load_is_native_by_default_and_falls_back_for_what_it_cannot_compile(tmp_path, monkeypatch):
    import warnings

    from mdl import driver
    from mdl.backend.lower import UnsupportedOp

    (tmp_path / "m.mdl").write_text("model M(x: f32[B, 3]) -> f32[B, 3] {\n    x * 2.0\n}\n")
    model = mdl.load(str(tmp_path / "m.mdl"), weights={})
    assert model.backend == "native" and model._native is not None
    # every primitive and dtype compiles today: pretend a lowering is missing
    real = driver.compile_native

    def missing(graph, *args, **kwargs):
        import mdl.backend.jit as jit

        def refuse(*a, **k):
            raise UnsupportedOp("mul", graph.nodes[0])

        monkeypatch.setattr(jit, "NativeModel", refuse)
        return real(graph, *args, **kwargs)

    monkeypatch.setattr(driver, "compile_native", missing)
    with pytest.warns(RuntimeWarning, match=r"cannot compile `mul`.*reference interpreter"):
        fallback = mdl.load(str(tmp_path / "m.mdl"), weights={})
    assert fallback.backend == "ref"
    x = np.ones((2, 3), np.float32)
    np.testing.assert_array_equal(fallback(x), x * 2)
    with pytest.raises(mdl.MdlError) as e, warnings.catch_warnings():
        warnings.simplefilter("error")
        mdl.load(str(tmp_path / "m.mdl"), weights={}, backend="native")
    assert e.value.diagnostics[0].code == "E0801"


def test_address_is_the_data_pointer_for_every_kind_of_array():
    import ml_dtypes

    from mdl.backend.call import address

    readonly = np.frombuffer(bytes(16), np.float32)
    arrays = [
        np.ones(5, np.float32),
        np.ones((2, 3), np.int64)[1],  # a row: not the start of its buffer
        readonly,  # no writable buffer: the slow way
        np.zeros(0, np.float32),  # empty: no buffer of one byte
        np.ones(3, ml_dtypes.bfloat16),  # a dtype the buffer protocol cannot export
        np.ones(3, bool),
    ]
    for x in arrays:
        assert address(x) == x.ctypes.data, x.dtype


def test_read_only_inputs_are_read_in_place(model) -> None:
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    ids = np.array([1, 2, 3], np.int64)
    x.flags.writeable = False
    ids.flags.writeable = False
    y, s = model(x, ids)
    want_y, want_s = expected(x, ids)
    np.testing.assert_array_equal(y, want_y)
    np.testing.assert_allclose(s, want_s)
