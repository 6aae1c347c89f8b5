"""Hostile weights files: case table -> small broken files in tests/weights/hostile/.

Each case names what is wrong with its file, the error code the reader must
give, and (for faults in one tensor) the tensor the error must name.
`python tests/weights/make_hostile.py` rewrites the corpus (and removes files
no case makes); test_weights_io.py checks the files on disk still match.
"""

from __future__ import annotations

import io
import json
import struct
import warnings
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.lib import format as npy_format

HOSTILE_DIR = Path(__file__).parent / "hostile"


@dataclass(frozen=True)
class Case:
    filename: str
    code: str
    build: Callable[[], bytes]
    key: str | None = None


# --------------------------------------------------------------------------- safetensors


def st(header: object, data: bytes = b"", length: int | None = None) -> bytes:
    """A safetensors file from a header (dict, or raw JSON text/bytes) and a data buffer."""
    if isinstance(header, bytes):
        raw = header
    elif isinstance(header, str):
        raw = header.encode("utf-8")
    else:
        raw = json.dumps(header).encode("utf-8")
    n = len(raw) if length is None else length
    return struct.pack("<Q", n) + raw + data


def entry(
    dtype: object = "F32", shape: object = (2,), offsets: object = (0, 8)
) -> dict[str, object]:
    return {"dtype": dtype, "shape": _listed(shape), "data_offsets": _listed(offsets)}


def _listed(value: object) -> object:
    return list(value) if isinstance(value, tuple) else value


def one(data: bytes = bytes(8), **fields: object) -> bytes:
    """A file holding the single tensor `w` (F32[2] unless overridden)."""
    return st({"w": entry(**fields)}, data)


def without(field: str) -> bytes:
    e = entry()
    del e[field]
    return st({"w": e}, bytes(8))


def pickle_bytes() -> bytes:
    # protocol-2 pickle of {"w": 1}, written out so no pickle is ever made by running code
    return b"\x80\x02}q\x00X\x01\x00\x00\x00wq\x01K\x01s."


SAFETENSORS_CASES = [
    Case("st_empty_file", "E0502", lambda: b""),
    Case("st_shorter_than_8_bytes", "E0502", lambda: b"\x10\x00\x00"),
    Case("st_header_length_past_eof", "E0502", lambda: st("{}", length=4096)),
    Case("st_header_length_absurd_2_63", "E0502", lambda: st("{}", length=2**63)),
    Case("st_header_length_over_100mb", "E0502", lambda: st("{}", length=100_000_001)),
    Case("st_header_not_utf8", "E0502", lambda: st(b'{"w\xff\xfe": 1}')),
    Case("st_header_utf8_bom", "E0502", lambda: st("\ufeff{}")),
    Case("st_header_not_json", "E0502", lambda: st("dtype F32 please")),
    Case("st_header_truncated_json", "E0502", lambda: st('{"w": {"dtype": "F32", "sha')),
    Case("st_header_is_json_array", "E0502", lambda: st("[1, 2, 3]")),
    Case("st_header_is_json_string", "E0502", lambda: st('"weights"')),
    Case("st_header_is_json_null", "E0502", lambda: st("null")),
    Case("st_header_deeply_nested", "E0502", lambda: st('{"w": ' + "[" * 5000 + "]" * 5000 + "}")),
    Case(
        "st_header_nan_in_shape",
        "E0502",
        lambda: st('{"w": {"dtype": "F32", "shape": [NaN], "data_offsets": [0, 0]}}'),
    ),
    Case(
        "st_duplicate_tensor_name",
        "E0502",
        lambda: st(
            '{"w": {"dtype": "F32", "shape": [0], "data_offsets": [0, 0]}, "w": {"dtype": "F32", "shape": [0], "data_offsets": [0, 0]}}'
        ),
    ),
    Case(
        "st_duplicate_field_in_entry",
        "E0502",
        lambda: st(
            '{"w": {"dtype": "F32", "dtype": "F64", "shape": [0], "data_offsets": [0, 0]}}', b""
        ),
    ),
    Case("st_entry_not_object", "E0502", lambda: st({"w": [0, 8]}, bytes(8)), "w"),
    Case("st_entry_without_dtype", "E0502", lambda: without("dtype"), "w"),
    Case("st_entry_without_shape", "E0502", lambda: without("shape"), "w"),
    Case("st_entry_without_data_offsets", "E0502", lambda: without("data_offsets"), "w"),
    Case("st_dtype_not_string", "E0502", lambda: one(dtype=4), "w"),
    Case("st_dtype_unknown_f128", "E0502", lambda: one(dtype="F128"), "w"),
    Case("st_dtype_lowercase_f32", "E0502", lambda: one(dtype="f32"), "w"),
    Case("st_dtype_u8_unsupported", "E0507", lambda: one(dtype="U8", shape=(8,)), "w"),
    Case("st_dtype_i8_unsupported", "E0507", lambda: one(dtype="I8", shape=(8,)), "w"),
    Case("st_dtype_i16_unsupported", "E0507", lambda: one(dtype="I16", shape=(4,)), "w"),
    Case("st_dtype_f8_e4m3_unsupported", "E0507", lambda: one(dtype="F8_E4M3", shape=(8,)), "w"),
    Case("st_shape_not_list", "E0502", lambda: one(shape=2), "w"),
    Case("st_shape_negative_dim", "E0502", lambda: one(shape=(-2,)), "w"),
    Case("st_shape_float_dim", "E0502", lambda: one(shape=(2.0,)), "w"),
    Case("st_shape_bool_dim", "E0502", lambda: one(shape=(True, 2)), "w"),
    Case("st_shape_string_dim", "E0502", lambda: one(shape=("2",)), "w"),
    Case("st_shape_product_overflows", "E0502", lambda: one(shape=(2**32, 2**32, 2**32)), "w"),
    Case(
        "st_shape_dim_of_5000_digits",
        "E0502",
        lambda: st(
            '{"w": {"dtype": "F32", "shape": [' + "9" * 5000 + '], "data_offsets": [0, 8]}}',
            bytes(8),
        ),
    ),
    Case("st_offsets_one_int", "E0502", lambda: one(offsets=(8,)), "w"),
    Case("st_offsets_three_ints", "E0502", lambda: one(offsets=(0, 4, 8)), "w"),
    Case("st_offsets_not_list", "E0502", lambda: one(offsets="0-8"), "w"),
    Case("st_offsets_negative", "E0502", lambda: one(offsets=(-8, 0)), "w"),
    Case("st_offsets_begin_after_end", "E0502", lambda: one(offsets=(8, 0)), "w"),
    Case("st_offsets_end_past_buffer", "E0502", lambda: one(offsets=(0, 8), data=bytes(6)), "w"),
    Case(
        "st_offsets_end_far_past_buffer",
        "E0502",
        lambda: one(shape=(2**30,), offsets=(0, 2**32)),
        "w",
    ),
    Case("st_size_differs_from_shape", "E0502", lambda: one(shape=(3,)), "w"),
    Case(
        "st_overlapping_tensors",
        "E0502",
        lambda: st({"a": entry(offsets=(0, 8)), "b": entry(offsets=(4, 12))}, bytes(12)),
        "b",
    ),
    Case(
        "st_tensor_inside_another",
        "E0502",
        lambda: st(
            {
                "big": entry(shape=(4,), offsets=(0, 16)),
                "mid": entry(shape=(1,), offsets=(4, 8)),
                "end": entry(shape=(1,), offsets=(12, 16)),
            },
            bytes(16),
        ),
        "mid",
    ),
    Case(
        "st_bool_byte_is_2",
        "E0502",
        lambda: one(dtype="BOOL", shape=(3,), offsets=(0, 3), data=b"\x01\x02\x00"),
        "w",
    ),
    Case("st_metadata_not_object", "E0502", lambda: st({"__metadata__": ["format", "pt"]})),
    Case("st_metadata_value_not_string", "E0502", lambda: st({"__metadata__": {"epochs": 3}})),
    Case(
        "st_name_lone_surrogate",
        "E0502",
        lambda: st('{"w\\ud800": {"dtype": "F32", "shape": [0], "data_offsets": [0, 0]}}'),
    ),
    Case(
        "st_really_a_zip_archive",
        "E0502",
        lambda: zip_of([("w.npy", npy(np.zeros(2, np.float32)))]),
    ),
    Case("st_really_a_pickle", "E0502", pickle_bytes),
]


# --------------------------------------------------------------------------- npz


def npy(arr: np.ndarray, version: tuple[int, int] | None = None) -> bytes:
    out = io.BytesIO()
    npy_format.write_array(out, arr, version=version, allow_pickle=True)
    return out.getvalue()


def zip_of(members: list[tuple[str, bytes]], compression: int = zipfile.ZIP_STORED) -> bytes:
    out = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # duplicate names are one of the faults we make
        with zipfile.ZipFile(out, "w", compression=compression) as archive:
            for name, data in members:
                info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
                info.compress_type = compression
                archive.writestr(info, data)
    return out.getvalue()


def good_zip() -> bytes:
    return zip_of([("w.npy", npy(np.arange(4, dtype=np.float32)))])


def patch_headers(data: bytes, local_offset: int, central_offset: int, value: bytes) -> bytes:
    """Overwrite a field of the (only) local file header and central directory entry."""
    buf = bytearray(data)
    local = buf.index(b"PK\x03\x04")
    central = buf.index(b"PK\x01\x02")
    buf[local + local_offset : local + local_offset + len(value)] = value
    buf[central + central_offset : central + central_offset + len(value)] = value
    return bytes(buf)


def npy_with_header(header: str, data: bytes = b"") -> bytes:
    raw = header.encode("latin1")
    raw += b" " * (-(len(raw) + 11) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(raw)) + raw + data


NPZ_CASES = [
    Case("npz_not_a_zip", "E0502", lambda: b"these are not the weights you are looking for"),
    Case("npz_truncated_zip", "E0502", lambda: good_zip()[:40]),
    Case(
        "npz_zip_without_central_directory",
        "E0502",
        lambda: good_zip()[: good_zip().index(b"PK\x01\x02")],
    ),
    Case("npz_really_a_pickle", "E0508", pickle_bytes),
    Case("npz_really_an_npy", "E0502", lambda: npy(np.zeros(3, np.float32))),
    Case(
        "npz_object_array",
        "E0508",
        lambda: zip_of([("w.npy", npy(np.array([1, "x"], dtype=object)))]),
        "w",
    ),
    Case("npz_member_is_pickle", "E0508", lambda: zip_of([("w.npy", pickle_bytes())]), "w"),
    Case(
        "npz_member_without_npy_suffix",
        "E0502",
        lambda: zip_of([("w.txt", npy(np.zeros(2)))]),
        "w.txt",
    ),
    Case("npz_member_is_directory", "E0502", lambda: zip_of([("w/", b"")]), "w/"),
    Case(
        "npz_member_with_empty_name",
        "E0502",
        lambda: zip_of([("", npy(np.zeros(2)))]),
        "",
    ),
    Case(
        "npz_duplicate_member",
        "E0502",
        lambda: zip_of([("w.npy", npy(np.zeros(2))), ("w.npy", npy(np.ones(2)))]),
        "w",
    ),
    Case(
        "npz_member_bad_magic",
        "E0502",
        lambda: zip_of([("w.npy", b"\x93NUMPX\x01\x00" + bytes(64))]),
        "w",
    ),
    Case(
        "npz_member_header_garbage",
        "E0502",
        lambda: zip_of([("w.npy", npy_with_header("{'descr': <f4, shape: 2}"))]),
        "w",
    ),
    Case(
        "npz_member_header_code_injection",
        "E0502",
        lambda: zip_of(
            [
                (
                    "w.npy",
                    npy_with_header(
                        "{'descr': __import__('os').getcwd(), 'fortran_order': False, 'shape': (2,), }"
                    ),
                )
            ]
        ),
        "w",
    ),
    Case(
        "npz_member_header_missing_shape",
        "E0502",
        lambda: zip_of([("w.npy", npy_with_header("{'descr': '<f4', 'fortran_order': False, }"))]),
        "w",
    ),
    Case(
        "npz_member_truncated_data",
        "E0502",
        lambda: zip_of([("w.npy", npy(np.zeros(4, np.float32))[:-3])]),
        "w",
    ),
    Case(
        "npz_member_trailing_bytes",
        "E0502",
        lambda: zip_of([("w.npy", npy(np.zeros(4, np.float32)) + b"extra")]),
        "w",
    ),
    Case(
        "npz_shape_larger_than_member",
        "E0502",
        lambda: zip_of(
            [
                (
                    "w.npy",
                    npy_with_header(
                        "{'descr': '<f8', 'fortran_order': False, 'shape': (1000000000,), }",
                        bytes(8),
                    ),
                )
            ]
        ),
        "w",
    ),
    Case(
        "npz_shape_product_overflows",
        "E0502",
        lambda: zip_of(
            [
                (
                    "w.npy",
                    npy_with_header(
                        "{'descr': '<f8', 'fortran_order': False, 'shape': (4294967296, 4294967296), }",
                        bytes(8),
                    ),
                )
            ]
        ),
        "w",
    ),
    Case(
        "npz_negative_dimension",
        "E0502",
        lambda: zip_of(
            [
                (
                    "w.npy",
                    npy_with_header(
                        "{'descr': '<f4', 'fortran_order': False, 'shape': (-2,), }", bytes(8)
                    ),
                )
            ]
        ),
        "w",
    ),
    Case(
        "npz_uint8_unsupported",
        "E0507",
        lambda: zip_of([("w.npy", npy(np.zeros(3, np.uint8)))]),
        "w",
    ),
    Case(
        "npz_complex_unsupported",
        "E0507",
        lambda: zip_of([("w.npy", npy(np.zeros(3, np.complex64)))]),
        "w",
    ),
    Case(
        "npz_unicode_strings_unsupported",
        "E0507",
        lambda: zip_of([("w.npy", npy(np.array(["ab", "c"])))]),
        "w",
    ),
    Case(
        "npz_structured_dtype_unsupported",
        "E0507",
        lambda: zip_of([("w.npy", npy(np.zeros(2, [("a", "<f4"), ("b", "<i4")])))]),
        "w",
    ),
    Case(
        "npz_bfloat16_stored_as_void",
        "E0507",
        lambda: zip_of(
            [
                (
                    "w.npy",
                    npy_with_header(
                        "{'descr': '|V2', 'fortran_order': False, 'shape': (2,), }", bytes(4)
                    ),
                )
            ]
        ),
        "w",
    ),
    Case(
        "npz_npy_version_3",
        "E0507",
        lambda: zip_of([("w.npy", npy(np.zeros(2, np.float32), version=(3, 0)))]),
        "w",
    ),
    Case(
        "npz_npy_version_9",
        "E0507",
        lambda: zip_of([("w.npy", b"\x93NUMPY\x09\x00" + npy(np.zeros(2, np.float32))[8:])]),
        "w",
    ),
    Case(
        "npz_bool_byte_is_2",
        "E0502",
        lambda: zip_of(
            [
                (
                    "w.npy",
                    npy_with_header(
                        "{'descr': '|b1', 'fortran_order': False, 'shape': (3,), }", b"\x00\x02\x01"
                    ),
                )
            ]
        ),
        "w",
    ),
    Case(
        "npz_unsupported_compression_method",
        "E0507",
        lambda: patch_headers(good_zip(), 8, 10, struct.pack("<H", 99)),
        "w",
    ),
    Case(
        "npz_encrypted_member",
        "E0507",
        lambda: patch_headers(good_zip(), 6, 8, struct.pack("<H", 1)),
        "w",
    ),
    Case(
        "npz_crc_mismatch",
        "E0502",
        lambda: patch_headers(good_zip(), 14, 16, b"\xde\xad\xbe\xef"),
        "w",
    ),
    Case("npz_corrupt_deflate_stream", "E0502", lambda: corrupt_deflate(), "w"),
]


def corrupt_deflate() -> bytes:
    data = bytearray(
        zip_of([("w.npy", npy(np.arange(256, dtype=np.float32)))], zipfile.ZIP_DEFLATED)
    )
    start = data.index(b"PK\x03\x04") + 30 + len("w.npy")
    data[start : start + 16] = b"\xff" * 16
    return bytes(data)


# --------------------------------------------------------------------------- other


OTHER_CASES = [
    Case("pickled_checkpoint.pt", "E0507", pickle_bytes),
    Case("weights_without_extension", "E0507", lambda: one()),
]


def file_name(case: Case) -> str:
    if case.filename.startswith("st_"):
        return case.filename + ".safetensors"
    if case.filename.startswith("npz_"):
        return case.filename + ".npz"
    return case.filename


CASES = SAFETENSORS_CASES + NPZ_CASES + OTHER_CASES


def main() -> None:
    HOSTILE_DIR.mkdir(exist_ok=True)
    wanted = {file_name(c): c for c in CASES}
    for stale in HOSTILE_DIR.iterdir():
        if stale.name not in wanted:
            stale.unlink()
    for name, case in wanted.items():
        (HOSTILE_DIR / name).write_bytes(case.build())
    print(f"wrote {len(wanted)} hostile files to {HOSTILE_DIR}")


if __name__ == "__main__":
    main()
