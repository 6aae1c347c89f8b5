"""Weights files: round trips, cross-checks with the `safetensors` package, determinism,
and the hostile corpus (every broken file gives its own error code)."""

from __future__ import annotations

import io
import json
import os
import struct
import zipfile

import ml_dtypes
import numpy as np
import pytest
import safetensors
import safetensors.numpy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from make_hostile import CASES, HOSTILE_DIR, file_name

from mdl.codes import CODES
from mdl.weights import (
    WeightsError,
    dump_npz,
    dump_safetensors,
    load_safetensors,
    read_npz,
    read_safetensors,
    read_weights,
    write_npz,
    write_safetensors,
)


def sample_tensors() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "fc1.weight": rng.standard_normal((4, 3)).astype(np.float32),
        "fc1.bias": rng.standard_normal(4).astype(np.float32),
        "emb.weight": rng.standard_normal((5, 2)).astype(np.float16),
        "head.weight": rng.standard_normal((2, 3)).astype(ml_dtypes.bfloat16),
        "ln.weight": rng.standard_normal(3),  # f64
        "bn1.num_batches_tracked": np.array(7, dtype=np.int64),
        "pos.ids": np.arange(6, dtype=np.int32).reshape(2, 3),
        "big.ids": np.array([-(2**62), 2**62], dtype=np.int64),
        "mask": np.array([[True, False, True]]),
        "scale": np.array(0.5, dtype=np.float32),
        "empty": np.zeros((0, 3), dtype=np.float32),
        "blocks.0.attn.qkv.weight": rng.standard_normal((6, 2)).astype(np.float32),
        "naïve ünïcode": np.ones(2, dtype=np.float32),
    }


def assert_same(got: dict[str, np.ndarray], want: dict[str, np.ndarray]) -> None:
    assert set(got) == set(want)
    for key, arr in want.items():
        assert got[key].dtype == arr.dtype, key
        assert got[key].shape == arr.shape, key
        np.testing.assert_array_equal(got[key].astype(np.float64), arr.astype(np.float64))


# --------------------------------------------------------------------------- safetensors


def test_safetensors_round_trip_all_dtypes(tmp_path):
    tensors = sample_tensors()
    path = tmp_path / "w.safetensors"
    write_safetensors(path, tensors, metadata={"format": "pt"})
    got, metadata = load_safetensors(path)
    assert_same(got, tensors)
    assert metadata == {"format": "pt"}
    assert got["bn1.num_batches_tracked"].shape == ()
    assert got["head.weight"].dtype == np.dtype(ml_dtypes.bfloat16)


def test_read_arrays_are_fresh_contiguous_copies():
    data = bytearray(dump_safetensors({"w": np.arange(5, dtype=np.float32)}))
    got = read_safetensors(data)["w"]
    data[-4:] = b"\xff\xff\xff\xff"  # mutating the source must not reach the array
    np.testing.assert_array_equal(got, np.arange(5, dtype=np.float32))
    assert not np.shares_memory(got, np.frombuffer(data, dtype=np.uint8))
    assert got.flags.c_contiguous and got.flags.aligned and got.flags.writeable


def test_our_files_are_byte_identical_to_the_reference_writer():
    tensors = sample_tensors()
    assert dump_safetensors(tensors) == safetensors.numpy.save(tensors)
    assert dump_safetensors(tensors, {"format": "np"}) == safetensors.numpy.save(
        tensors, metadata={"format": "np"}
    )


def test_reference_reader_reads_our_files():
    tensors = sample_tensors()
    raw = dump_safetensors(tensors)
    parsed = {name: info for name, info in safetensors.deserialize(raw)}
    assert set(parsed) == set(tensors)
    for key, arr in tensors.items():
        assert parsed[key]["shape"] == list(arr.shape)
        assert bytes(parsed[key]["data"]) == arr.astype(arr.dtype.newbyteorder("<")).tobytes()
    no_bf16 = {k: v for k, v in tensors.items() if k != "head.weight"}
    assert_same(safetensors.numpy.load(dump_safetensors(no_bf16)), no_bf16)


def test_we_read_reference_files(tmp_path):
    tensors = sample_tensors()
    path = tmp_path / "ref.safetensors"
    safetensors.numpy.save_file(tensors, str(path), metadata={"epoch": "3"})
    got, metadata = load_safetensors(path)
    assert_same(got, tensors)
    assert metadata == {"epoch": "3"}


def test_writes_are_deterministic_and_rewrites_byte_identical(tmp_path):
    tensors = sample_tensors()
    shuffled = dict(reversed(list(tensors.items())))
    a, b = tmp_path / "a.safetensors", tmp_path / "b.safetensors"
    write_safetensors(a, tensors, {"x": "1", "a": "2"})
    write_safetensors(b, shuffled, {"a": "2", "x": "1"})
    assert a.read_bytes() == b.read_bytes()
    got, metadata = load_safetensors(a)
    assert dump_safetensors(got, metadata) == a.read_bytes()


def test_header_is_padded_with_spaces_to_8_bytes():
    raw = dump_safetensors({"abc": np.zeros(1, np.float32)})
    n = struct.unpack("<Q", raw[:8])[0]
    assert n % 8 == 0
    assert raw[8 : 8 + n].rstrip(b" ").endswith(b"}")


def test_big_endian_and_strided_inputs_are_written_as_values():
    values = np.arange(12, dtype=np.float32).reshape(3, 4)
    got = read_safetensors(
        dump_safetensors({"be": values.astype(">f4"), "t": values.T, "s": values[:, ::2]})
    )
    np.testing.assert_array_equal(got["be"], values)
    np.testing.assert_array_equal(got["t"], values.T)
    np.testing.assert_array_equal(got["s"], values[:, ::2])
    assert got["be"].dtype == np.float32


def test_uncovered_bytes_in_the_buffer_are_allowed():
    header = b'{"w":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}'
    raw = struct.pack("<Q", len(header)) + header + b"junk" + struct.pack("<f", 2.5) + b"tail"
    assert read_safetensors(raw)["w"].tolist() == [2.5]


def test_empty_file_of_no_tensors_round_trips():
    assert read_safetensors(dump_safetensors({})) == {}


def test_write_rejects_unsupported_dtypes_and_leaves_no_file(tmp_path):
    path = tmp_path / "w.safetensors"
    with pytest.raises(WeightsError) as err:
        write_safetensors(path, {"u": np.zeros(2, np.uint8)})
    assert err.value.code == "E0507" and err.value.key == "u"
    assert not path.exists()


def test_write_into_missing_folder_is_e0702(tmp_path):
    with pytest.raises(WeightsError) as err:
        write_safetensors(tmp_path / "no" / "such" / "w.safetensors", {"w": np.zeros(1)})
    assert err.value.code == "E0702"
    assert os.listdir(tmp_path) == []


def test_missing_file_and_folder_are_e0501(tmp_path):
    for path in (tmp_path / "absent.safetensors", tmp_path):
        with pytest.raises(WeightsError) as err:
            read_safetensors(path)
        assert err.value.code == "E0501"
    with pytest.raises(WeightsError) as err:
        read_weights(tmp_path / "absent.npz")
    assert err.value.code == "E0501"


def test_read_weights_dispatches_on_extension(tmp_path):
    tensors = {"a/b": np.ones(2, np.float32)}
    write_safetensors(tmp_path / "W.SafeTensors", tensors)
    write_npz(tmp_path / "w.NPZ", tensors)
    assert_same(read_weights(tmp_path / "W.SafeTensors"), tensors)
    assert_same(read_weights(str(tmp_path / "w.NPZ")), tensors)
    with pytest.raises(WeightsError) as err:
        read_weights(tmp_path / "model.pth")
    assert err.value.code == "E0507" and "safetensors" in (err.value.help or "")


def test_error_becomes_a_diagnostic():
    with pytest.raises(WeightsError) as err:
        read_safetensors(b"\x01")
    diag = err.value.to_diagnostic()
    assert diag.code == "E0502" and diag.code in CODES
    assert any("<bytes>" in note for note in diag.notes)
    assert "E0502" in str(err.value)


# --------------------------------------------------------------------------- npz


def test_npz_round_trip_and_numpy_reads_it(tmp_path):
    tensors = {k: v for k, v in sample_tensors().items() if v.dtype != ml_dtypes.bfloat16}
    tensors["nested/name.with.dots"] = np.ones((2, 2), np.float32)
    path = tmp_path / "w.npz"
    write_npz(path, tensors)
    assert_same(read_npz(path), tensors)
    with np.load(path, allow_pickle=False) as loaded:
        assert_same({k: loaded[k] for k in loaded.files}, tensors)


@pytest.mark.parametrize("save", [np.savez, np.savez_compressed])
def test_we_read_numpy_npz_files(tmp_path, save):
    values = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    path = tmp_path / "w.npz"
    save(path, **{"fortran": np.asfortranarray(values), "big": values.astype(">f8"),
                  "scalar": np.int64(3), "flags": np.array([True, False])})  # fmt: skip
    got = read_npz(path)
    np.testing.assert_array_equal(got["fortran"], values)
    assert got["fortran"].flags.c_contiguous
    np.testing.assert_array_equal(got["big"], values)
    assert got["big"].dtype == np.float64 and got["scalar"].shape == ()
    assert got["flags"].tolist() == [True, False]


def test_npz_writes_are_deterministic(tmp_path):
    tensors = {k: v for k, v in sample_tensors().items() if v.dtype != ml_dtypes.bfloat16}
    shuffled = dict(reversed(list(tensors.items())))
    assert dump_npz(tensors) == dump_npz(shuffled)
    with zipfile.ZipFile(io.BytesIO(dump_npz(tensors))) as archive:
        assert archive.namelist() == sorted(k + ".npy" for k in tensors)
        assert {info.date_time for info in archive.infolist()} == {(1980, 1, 1, 0, 0, 0)}


def test_npz_cannot_hold_bf16(tmp_path):
    with pytest.raises(WeightsError) as err:
        write_npz(tmp_path / "w.npz", {"h": np.ones(2, ml_dtypes.bfloat16)})
    assert err.value.code == "E0507" and "safetensors" in err.value.message


def test_npz_with_pickled_object_array_is_e0508(tmp_path):
    path = tmp_path / "w.npz"
    np.savez(path, w=np.array([{"evil": 1}], dtype=object))
    with pytest.raises(WeightsError) as err:
        read_weights(path)
    assert err.value.code == "E0508" and err.value.key == "w"


# --------------------------------------------------------------------------- hostile corpus


def test_corpus_is_large_and_in_sync_with_its_generator():
    on_disk = {p.name for p in HOSTILE_DIR.iterdir()}
    assert on_disk == {file_name(c) for c in CASES}
    assert len(CASES) >= 40
    assert len({c.filename for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.filename)
def test_hostile_file_gives_its_error(case):
    path = HOSTILE_DIR / file_name(case)
    assert path.read_bytes() == case.build(), "rerun tests/weights/make_hostile.py"
    with pytest.raises(WeightsError) as err:
        read_weights(path)
    assert err.value.code == case.code, err.value.message
    assert err.value.key == case.key
    assert err.value.message and err.value.path == str(path)
    if case.key is not None:
        assert f"`{case.key}" in err.value.message


# --------------------------------------------------------------------------- fuzzing

VALID_ST = dump_safetensors(
    {"a": np.arange(3, dtype=np.float32), "b": np.array([True, False]), "c": np.array(1, np.int64)}
)
VALID_NPZ = dump_npz({"a": np.arange(3, dtype=np.float32), "b": np.array([True, False])})


def only_weights_errors(read, data: bytes) -> None:
    try:
        result = read(data)
    except WeightsError as e:
        assert e.code in {"E0502", "E0507", "E0508"}, e
        return
    for arr in result.values():
        assert isinstance(arr, np.ndarray) and arr.flags.c_contiguous


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_mutated_files_never_crash_the_readers(data):
    for read, valid in ((read_safetensors, VALID_ST), (read_npz, VALID_NPZ)):
        raw = bytearray(valid)
        for _ in range(data.draw(st.integers(1, 4))):
            i = data.draw(st.integers(0, len(raw) - 1))
            raw[i] = data.draw(st.integers(0, 255))
        cut = data.draw(st.integers(0, len(raw)))
        only_weights_errors(read, bytes(raw))
        only_weights_errors(read, bytes(raw[:cut]))


def test_every_truncation_is_an_error():
    for read, valid in ((read_safetensors, VALID_ST), (read_npz, VALID_NPZ)):
        for cut in range(len(valid)):
            with pytest.raises(WeightsError):
                read(valid[:cut])


def test_names_from_files_cannot_inject_terminal_escapes_or_lines():
    header = b'{"\\u001b[2J\\nx":{"dtype":"F99","shape":[],"data_offsets":[0,0]}}'
    with pytest.raises(WeightsError) as err:
        read_safetensors(struct.pack("<Q", len(header)) + header)
    assert err.value.key == "\x1b[2J\nx"
    assert "`\\x1b[2J\\x0ax`" in err.value.message
    assert err.value.message.isprintable()


def test_huge_names_are_cut_in_messages():
    name = "n" * 100_000
    header = json.dumps({name: {"dtype": "F99", "shape": [], "data_offsets": [0, 0]}}).encode()
    with pytest.raises(WeightsError) as err:
        read_safetensors(struct.pack("<Q", len(header)) + header)
    assert err.value.key == name and len(err.value.message) < 1100
