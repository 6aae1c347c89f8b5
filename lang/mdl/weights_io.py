"""Safetensors files: bytes <-> dict of named arrays, plus what all weights readers share.

Nothing in a weights file is trusted. The safetensors parser is our own so that
every structural fault (lengths, JSON, dtypes, shapes, offsets, overlaps) is a
`WeightsError` with a code from `codes.py` naming the tensor and the byte range,
never a Python traceback. Arrays handed out are fresh, native-byte-order,
C-contiguous copies that alias no buffer of the file. Bytes of the data buffer
that no tensor covers are allowed (the reference reader rejects them; we only
reject overlaps).

The writer is deterministic: the same tensors (and metadata) give byte-identical
files, laid out as the reference implementation does (data ordered by dtype then
name, header JSON compact and space-padded to a multiple of 8 bytes), so they are
byte-identical to what the `safetensors` package writes.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import Mapping
from typing import NoReturn

import numpy as np

from .diagnostics import Diagnostic
from .types import DType

MAX_HEADER_BYTES = 100_000_000
MAX_ELEMENTS = 2**40

# safetensors dtype names; the writer orders tensors by this rank (the reference
# implementation sorts by its dtype enum, descending, then by name).
_ST_DTYPES: dict[str, DType] = {
    "I64": DType.I64,
    "F64": DType.F64,
    "F32": DType.F32,
    "I32": DType.I32,
    "BF16": DType.BF16,
    "F16": DType.F16,
    "BOOL": DType.BOOL,
}
_ST_NAME = {d: name for name, d in _ST_DTYPES.items()}
_ST_RANK = {d: i for i, d in enumerate(_ST_DTYPES.values())}
# Real safetensors dtypes this compiler has no type for (E0507, not E0502).
_ST_UNSUPPORTED = frozenset(
    "U8 I8 I16 U16 U32 U64 C64 F8_E5M2 F8_E4M3 F8_E8M0 F4 F6_E2M3 F6_E3M2".split()
)
_SUPPORTED_TEXT = "F16, BF16, F32, F64, I32, I64, BOOL"


class WeightsError(Exception):
    """A weights file that cannot be read or written; `code` is from `codes.py`."""

    def __init__(
        self, code: str, message: str, path: str, key: str | None = None, help: str | None = None
    ):
        self.code = code
        self.message = printable(message)
        self.path = path
        self.key = key
        self.help = help
        super().__init__(f"{path}: error[{code}]: {self.message}")

    def to_diagnostic(self) -> Diagnostic:
        return Diagnostic(
            code=self.code,
            message=self.message,
            notes=(f"in weights file `{self.path}`",),
            help=self.help,
        )


def printable(text: str, limit: int = 1000) -> str:
    """`text` safe for a one-line message: names from a file may hold terminal escapes,
    newlines or lone surrogates (escaped here) and be megabytes long (cut here)."""
    out = []
    for ch in text:
        if ch.isprintable():
            out.append(ch)
        elif ord(ch) <= 0xFF:
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(f"\\u{ord(ch):04x}")
    shown = "".join(out)
    return shown if len(shown) <= limit else shown[:limit] + "..."


def _read_bytes(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise WeightsError("E0501", f"cannot read weights file: {e.strerror or e}", path) from None


def source_bytes(
    data: bytes | bytearray | memoryview | str | os.PathLike[str],
) -> tuple[memoryview, str]:
    if isinstance(data, (bytes, bytearray, memoryview)):
        return memoryview(data).cast("B"), "<bytes>"
    where = os.fspath(data)
    return memoryview(_read_bytes(where)), where


# --------------------------------------------------------------------------- safetensors


def read_safetensors(
    data: bytes | bytearray | memoryview | str | os.PathLike[str],
) -> dict[str, np.ndarray]:
    """Parse a safetensors file (path or its bytes) into fresh arrays, in file order."""
    return load_safetensors(data)[0]


def load_safetensors(
    data: bytes | bytearray | memoryview | str | os.PathLike[str],
) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Like `read_safetensors`, also returning the header's `__metadata__` (str -> str)."""
    buf, where = source_bytes(data)
    return _parse_safetensors(buf, where)


class _DuplicateKey(Exception):
    def __init__(self, key: str):
        self.key = key


def _unique_pairs(pairs: list[tuple[str, object]]) -> dict[str, object]:
    obj: dict[str, object] = {}
    for k, v in pairs:
        if k in obj:
            raise _DuplicateKey(k)
        obj[k] = v
    return obj


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"`{name}` is not valid JSON")


def _parse_header(buf: memoryview, where: str) -> tuple[dict[str, object], int]:
    def fail(msg: str, key: str | None = None) -> NoReturn:
        raise WeightsError("E0502", msg + _sniff(buf), where, key)

    if len(buf) < 8:
        fail(f"file is {len(buf)} bytes long, too short for the 8-byte header length")
    n = int.from_bytes(buf[:8], "little")
    if n > MAX_HEADER_BYTES:
        fail(f"header length {n} is absurd (more than {MAX_HEADER_BYTES} bytes)")
    if 8 + n > len(buf):
        fail(f"header length {n} runs past the end of the file ({len(buf)} bytes)")
    raw = bytes(buf[8 : 8 + n])
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        fail(f"header is not valid UTF-8 (file byte {8 + e.start})")
    try:
        header = json.loads(text, object_pairs_hook=_unique_pairs, parse_constant=_reject_constant)
    except _DuplicateKey as e:
        fail(f"header has the key `{e.key}` twice")
    except json.JSONDecodeError as e:
        fail(f"header is not valid JSON: {e.msg} (line {e.lineno}, column {e.colno})")
    except (ValueError, RecursionError) as e:
        fail(f"header is not valid JSON: {e}")
    if not isinstance(header, dict):
        fail(f"header is a JSON {_json_kind(header)}, not an object")
    return header, 8 + n


def _sniff(buf: memoryview) -> str:
    """A hint for a file that failed to parse as safetensors but is something else."""
    head = bytes(buf[:8])
    if head.startswith(b"PK\x03\x04"):
        return " (the file is a zip archive: a PyTorch checkpoint or an .npz file?)"
    if head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        return " (the file looks like a Python pickle: a PyTorch checkpoint?)"
    if head.startswith(b"\x93NUMPY"):
        return " (the file is an .npy array)"
    return ""


def _json_kind(value: object) -> str:
    match value:
        case bool():
            return "boolean"
        case int() | float():
            return "number"
        case str():
            return "string"
        case list():
            return "array"
        case None:
            return "null"
        case dict():
            return "object"
    return type(value).__name__


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def element_count(shape: tuple[int, ...]) -> int | None:
    """Product of `shape`, or None past MAX_ELEMENTS (checked as we go: no huge ints)."""
    if any(d == 0 for d in shape):
        return 0
    count = 1
    for d in shape:
        count *= d
        if count > MAX_ELEMENTS:
            return None
    return count


def _parse_safetensors(buf: memoryview, where: str) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    header, start = _parse_header(buf, where)
    buffer_len = len(buf) - start

    def fail(msg: str, key: str | None = None, code: str = "E0502") -> NoReturn:
        raise WeightsError(code, msg, where, key)

    metadata = header.pop("__metadata__", None)
    if metadata is None:
        metadata = {}
    if not isinstance(metadata, dict):
        fail(f"`__metadata__` is a JSON {_json_kind(metadata)}, not an object of strings")
    for mk, mv in metadata.items():
        if not isinstance(mv, str):
            fail(f"`__metadata__` value for `{mk}` is a JSON {_json_kind(mv)}, not a string")

    plans: list[tuple[str, DType, tuple[int, ...], int, int]] = []
    for key, entry in header.items():
        if any(0xD800 <= ord(ch) <= 0xDFFF for ch in key):
            fail(f"tensor name `{key}` is not valid Unicode")
        if not isinstance(entry, dict):
            fail(f"entry for tensor `{key}` is a JSON {_json_kind(entry)}, not an object", key)
        for field in ("dtype", "shape", "data_offsets"):
            if field not in entry:
                fail(f"tensor `{key}` has no `{field}`", key)
        st_dtype = entry["dtype"]
        if not isinstance(st_dtype, str):
            fail(f"tensor `{key}` has a dtype that is not a string", key)
        if st_dtype in _ST_UNSUPPORTED:
            fail(
                f"tensor `{key}` has unsupported dtype {st_dtype} (supported: {_SUPPORTED_TEXT})",
                key,
                "E0507",
            )
        dtype = _ST_DTYPES.get(st_dtype)
        if dtype is None:
            fail(f"tensor `{key}` has unknown dtype `{st_dtype[:40]}`", key)
        raw_shape = entry["shape"]
        if not isinstance(raw_shape, list) or not all(_is_count(d) for d in raw_shape):
            fail(f"tensor `{key}` has a shape that is not a list of non-negative integers", key)
        shape = tuple(raw_shape)
        count = element_count(shape)
        if count is None:
            fail(f"tensor `{key}` has too many elements (more than 2**40)", key)
        offsets = entry["data_offsets"]
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(map(_is_count, offsets))):
            fail(f"tensor `{key}` has data_offsets that are not two non-negative integers", key)
        begin, end = offsets
        span = f"data_offsets [{begin}, {end}]"
        if begin > end:
            fail(f"tensor `{key}` has {span} that begin after they end", key)
        if end > buffer_len:
            fail(
                f"tensor `{key}` has {span} past the end of the {buffer_len}-byte data buffer "
                f"(file bytes {start + begin}..{start + end} of {len(buf)})",
                key,
            )
        nbytes = count * dtype.itemsize
        if end - begin != nbytes:
            fail(
                f"tensor `{key}` is {st_dtype}{list(shape)}, which needs {nbytes} bytes, "
                f"but its {span} hold {end - begin}",
                key,
            )
        plans.append((key, dtype, shape, begin, end))

    _check_overlaps(plans, where)
    tensors = {
        key: _array(buf, start + begin, dtype, shape, key, where)
        for key, dtype, shape, begin, end in plans
    }
    return tensors, dict(metadata)


def _check_overlaps(plans: list[tuple[str, DType, tuple[int, ...], int, int]], where: str) -> None:
    ranges = sorted((begin, end, key) for key, _, _, begin, end in plans if end > begin)
    reach: tuple[int, int, str] | None = None  # the range reaching furthest so far
    for begin, end, key in ranges:
        if reach is not None and begin < reach[1]:
            raise WeightsError(
                "E0502",
                f"tensors `{reach[2]}` (data bytes {reach[0]}..{reach[1]}) and `{key}` "
                f"(data bytes {begin}..{end}) overlap",
                where,
                key,
            )
        if reach is None or end > reach[1]:
            reach = (begin, end, key)


def _array(
    buf: memoryview, offset: int, dtype: DType, shape: tuple[int, ...], key: str, where: str
) -> np.ndarray:
    np_dtype = dtype.numpy
    count = element_count(shape) or 0
    if count == 0:
        return np.zeros(shape, dtype=np_dtype)
    raw = np.frombuffer(buf, dtype=np.uint8, count=count * np_dtype.itemsize, offset=offset)
    if dtype is DType.BOOL:
        check_bools(raw, key, where)
    arr = raw.copy().view(np_dtype)
    if sys.byteorder == "big" and np_dtype.itemsize > 1:
        arr = arr.byteswap()  # safetensors data is little-endian
    return arr.reshape(shape)


def check_bools(raw: np.ndarray, key: str, where: str) -> None:
    bad = np.flatnonzero(raw > 1)
    if bad.size:
        raise WeightsError(
            "E0502",
            f"bool tensor `{key}` holds byte {int(raw[bad[0]])} at element {int(bad[0])} "
            "(bools must be 0 or 1)",
            where,
            key,
        )


def _le_bytes(arr: np.ndarray) -> bytes:
    arr = np.asarray(arr, order="C")
    if sys.byteorder == "big" and arr.dtype.itemsize > 1:
        arr = arr.byteswap()
    return arr.tobytes()


def checked_tensors(
    tensors: Mapping[str, np.ndarray], where: str
) -> dict[str, tuple[DType, np.ndarray]]:
    """Each value as (DType, native-order C-contiguous array); unsupported dtypes are E0507."""
    out: dict[str, tuple[DType, np.ndarray]] = {}
    for key, value in tensors.items():
        if not isinstance(key, str):
            raise TypeError(f"tensor names must be strings, not {type(key).__name__}")
        if key == "__metadata__":
            raise ValueError("`__metadata__` is reserved and cannot name a tensor")
        arr = np.asarray(value)
        native = arr.dtype.newbyteorder("=") if arr.dtype.byteorder in "<>" else arr.dtype
        dtype = DType.from_numpy(native)
        if dtype is None:
            raise WeightsError(
                "E0507", f"tensor `{key}` has unsupported dtype {arr.dtype}", where, key
            )
        out[key] = (dtype, np.asarray(arr, dtype=dtype.numpy, order="C"))
    return out


def dump_safetensors(
    tensors: Mapping[str, np.ndarray], metadata: Mapping[str, str] | None = None
) -> bytes:
    """The bytes of a safetensors file holding `tensors` (deterministic)."""
    checked = checked_tensors(tensors, "<bytes>")
    order = sorted(checked, key=lambda k: (_ST_RANK[checked[k][0]], k))
    header: dict[str, object] = {}
    if metadata is not None:
        for mk, mv in metadata.items():
            if not isinstance(mk, str) or not isinstance(mv, str):
                raise TypeError("safetensors metadata must map strings to strings")
        header["__metadata__"] = {k: metadata[k] for k in sorted(metadata)}
    chunks: list[bytes] = []
    offset = 0
    for key in order:
        dtype, arr = checked[key]
        data = _le_bytes(arr)
        header[key] = {
            "dtype": _ST_NAME[dtype],
            "shape": list(arr.shape),
            "data_offsets": [offset, offset + len(data)],
        }
        chunks.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    text += b" " * (-len(text) % 8)
    return b"".join([len(text).to_bytes(8, "little"), text, *chunks])


def write_safetensors(
    path: str | os.PathLike[str],
    tensors: Mapping[str, np.ndarray],
    metadata: Mapping[str, str] | None = None,
) -> None:
    where = os.fspath(path)
    try:
        data = dump_safetensors(tensors, metadata)
    except WeightsError as e:
        raise WeightsError(e.code, e.message, where, e.key) from None
    atomic_write(where, data)


def atomic_write(path: str, data: bytes) -> None:
    """Write via a temporary file and rename, so a failed write leaves no half file."""
    folder = os.path.dirname(os.path.abspath(path))
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".weights", dir=folder)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; a weights file is an ordinary file
        os.replace(tmp, path)
        tmp = None
    except OSError as e:
        raise WeightsError("E0702", f"cannot write weights file: {e.strerror or e}", path) from None
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
