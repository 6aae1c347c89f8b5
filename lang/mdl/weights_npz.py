"""Weights in .npz archives: bytes of a zip of .npy members <-> dict of named arrays.

`np.load` is not used: it would unpickle given the chance and its errors are
whatever numpy raises. We walk the zip ourselves, read each member's .npy header
with numpy's header parser, check dtype, shape and size before reading any data,
and turn every fault into a `WeightsError` (E0502 malformed, E0507 unsupported,
E0508 pickled). Keys are member names without `.npy` (`/` allowed). The writer
is deterministic (sorted members, fixed timestamps, no compression).
"""

from __future__ import annotations

import io
import os
import re
import struct
import zipfile
import zlib
from collections.abc import Mapping
from typing import NoReturn

import numpy as np
from numpy.lib import format as npy_format

from .types import DType
from .weights_io import (
    WeightsError,
    atomic_write,
    check_bools,
    checked_tensors,
    element_count,
    source_bytes,
)

# Any of these escaping the zip or npy readers means the archive is malformed.
_ZIP_FAULTS = (
    zipfile.BadZipFile,
    zlib.error,
    EOFError,
    OSError,
    ValueError,
    struct.error,
    TypeError,
)


def read_npz(
    data: bytes | bytearray | memoryview | str | os.PathLike[str],
) -> dict[str, np.ndarray]:
    """Read an .npz archive (path or bytes) without ever unpickling anything."""
    buf, where = source_bytes(data)
    head = bytes(buf[:6])
    if not head.startswith(b"PK"):
        if head == b"\x93NUMPY":
            raise WeightsError("E0502", "file is a single .npy array, not an .npz archive", where)
        if head[:1] == b"\x80":
            raise WeightsError("E0508", "file is a Python pickle, not an .npz archive", where)
        raise WeightsError("E0502", "file is not a zip archive", where)
    try:
        archive = zipfile.ZipFile(io.BytesIO(buf))
    except (*_ZIP_FAULTS, NotImplementedError) as e:
        raise WeightsError("E0502", f"malformed zip archive: {e}", where) from None
    tensors: dict[str, np.ndarray] = {}
    with archive:
        for info in archive.infolist():
            name = info.filename
            if not name.endswith(".npy"):  # directories end in `/`
                raise WeightsError(
                    "E0502", f"archive member `{name}` is not an .npy array", where, name
                )
            key = name[: -len(".npy")]
            if key in tensors:
                raise WeightsError("E0502", f"archive holds `{name}` twice", where, key)
            if info.flag_bits & 0x1:
                raise WeightsError("E0507", f"archive member `{name}` is encrypted", where, key)
            try:
                with archive.open(info) as member:
                    tensors[key] = _read_npy(member, info.file_size, key, where)
            except NotImplementedError as e:
                raise WeightsError("E0507", f"archive member `{name}`: {e}", where, key) from None
            except _ZIP_FAULTS as e:
                raise WeightsError(
                    "E0502", f"archive member `{name}` is malformed: {e}", where, key
                ) from None
    return tensors


def _read_npy(member: io.BufferedIOBase, size: int, key: str, where: str) -> np.ndarray:
    def fail(code: str, msg: str) -> NoReturn:
        raise WeightsError(code, f"array `{key}` {msg}", where, key)

    head = member.read(6)
    if head != b"\x93NUMPY":
        if head[:1] == b"\x80":
            fail("E0508", "is a Python pickle, not an .npy array")
        fail("E0502", "does not start with the .npy magic bytes")
    version = member.read(2)
    if len(version) < 2:
        fail("E0502", "is truncated inside its .npy header")
    major, minor = version
    try:
        match (major, minor):
            case (1, 0):
                shape, fortran, dtype = npy_format.read_array_header_1_0(member)
            case (2, 0):
                shape, fortran, dtype = npy_format.read_array_header_2_0(member)
            case _:
                fail("E0507", f"uses .npy format version {major}.{minor} (supported: 1.0, 2.0)")
    except (ValueError, TypeError, SyntaxError) as e:
        # numpy's messages may quote objects with their addresses: keep them reproducible
        detail = re.sub(r" at 0x[0-9a-fA-F]+", "", str(e)).strip()
        fail("E0502", f"has a malformed .npy header: {detail}")
    if any(isinstance(d, bool) or d < 0 for d in shape):
        fail("E0502", f"has a shape with a negative dimension: {shape}")
    if dtype.hasobject:
        fail("E0508", "holds Python objects, which would need unpickling")
    native = dtype.newbyteorder("=") if dtype.byteorder in "<>" else dtype
    mdl_dtype = DType.from_numpy(native)
    if mdl_dtype is None:
        hint = " (npz cannot hold bf16: use .safetensors)" if dtype.str == "|V2" else ""
        fail("E0507", f"has unsupported dtype {dtype.str}{hint}")
    count = element_count(tuple(shape))
    if count is None:
        fail("E0502", "has too many elements (more than 2**40)")
    nbytes = count * dtype.itemsize
    if nbytes > size:  # checked before reading so a lying header cannot make us allocate
        fail(
            "E0502",
            f"is truncated: its shape needs {nbytes} bytes of data, the member holds {size}",
        )
    data = member.read(nbytes)
    if len(data) < nbytes:
        fail("E0502", f"is truncated: its shape needs {nbytes} bytes of data, found {len(data)}")
    if member.read(1):
        fail("E0502", f"has bytes after its {nbytes} bytes of data")
    raw = np.frombuffer(data, dtype=np.uint8)
    if mdl_dtype is DType.BOOL:
        check_bools(raw, key, where)
    arr = raw.view(dtype).reshape(shape, order="F" if fortran else "C")
    return np.array(arr, dtype=mdl_dtype.numpy, order="C", copy=True)


def dump_npz(tensors: Mapping[str, np.ndarray]) -> bytes:
    """The bytes of an uncompressed .npz archive (deterministic: sorted, fixed timestamps)."""
    checked = checked_tensors(tensors, "<bytes>")
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as archive:
        for key in sorted(checked):
            dtype, arr = checked[key]
            if dtype is DType.BF16:
                raise WeightsError(
                    "E0507",
                    f"tensor `{key}` is bf16, which npz cannot hold: use .safetensors",
                    "<bytes>",
                    key,
                )
            member = io.BytesIO()
            npy_format.write_array(member, arr, allow_pickle=False)
            info = zipfile.ZipInfo(key + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.create_system = 3
            info.external_attr = 0o644 << 16
            archive.writestr(info, member.getvalue())
    return out.getvalue()


def write_npz(path: str | os.PathLike[str], tensors: Mapping[str, np.ndarray]) -> None:
    where = os.fspath(path)
    try:
        data = dump_npz(tensors)
    except WeightsError as e:
        raise WeightsError(e.code, e.message, where, e.key) from None
    atomic_write(where, data)
