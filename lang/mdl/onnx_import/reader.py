"""An .onnx file -> a checked `OnnxModel` (graph, opset, initializers as numpy arrays).

Nothing in the file is trusted. Every fault a hostile or broken file can have
is a coded diagnostic, never a traceback: bytes that are not a model protobuf
(E1001), external data that leaves the model's folder, is a symlink or lies
about its extent (E1002), dims that are negative, zero where mdl needs a size,
or absurdly large (E1003), initializers whose data disagrees with their shape
(E1004), subgraphs nested too deeply or graphs too large (E1005), opsets we do
not read (E1009: below opset 13 only ops whose definition has not changed since). External data is read here, by us, from a regular file
inside the model's folder, never through onnx's own loader.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from typing import NoReturn

import numpy as np

from ..diagnostics import Diagnostic
from ..weights_io import printable

MAX_FILE_BYTES = 2**31  # protobuf's own limit for one message
MAX_ELEMENTS = 2**40  # the compiler's limit for one parameter
MAX_DIM = 2**40
MAX_NESTING = 8  # subgraph attributes (If/Loop/Scan bodies) inside each other
MAX_NODES = 200_000
MIN_OPSET = 13

# ONNX element type -> numpy dtype, for the types mdl has (see types.DType).
ONNX_DTYPES: dict[int, str] = {1: "float32", 6: "int32", 7: "int64", 9: "bool", 10: "float16",
                               11: "float64", 16: "bfloat16"}  # fmt: skip
# element types we can read as constants (shape arithmetic) but not run
READABLE_ONLY: dict[int, str] = {2: "uint8", 3: "int8", 4: "uint16", 5: "int16", 12: "uint32",
                                 13: "uint64"}  # fmt: skip


class ImportError_(Exception):
    """A problem found while importing; carries the diagnostic to report."""

    def __init__(self, diagnostic: Diagnostic):
        self.diagnostic = diagnostic
        super().__init__(diagnostic.message)


def fail(code: str, message: str, help: str | None = None, notes: tuple[str, ...] = ()) -> NoReturn:
    raise ImportError_(Diagnostic(code, printable(message), help=help, notes=notes))


@dataclass(frozen=True, slots=True)
class OnnxModel:
    proto: object  # onnx.ModelProto (external data already resolved into `initializers`)
    opset: int
    initializers: dict[str, np.ndarray]
    path: str


def read_model(path: str) -> OnnxModel:
    """Load and check `path`; raises ImportError_ with the first fault found."""
    import onnx
    from google.protobuf.message import DecodeError

    try:
        info = os.stat(path)
    except OSError as e:
        fail("E0701", f"cannot read `{path}`: {e.strerror or e}")
    if not stat.S_ISREG(info.st_mode):
        fail("E0701", f"`{path}` is not a regular file")
    if info.st_size > MAX_FILE_BYTES:
        fail("E1001", f"`{path}` is {info.st_size} bytes, over the 2 GiB a protobuf can hold")
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        fail("E0701", f"cannot read `{path}`: {e.strerror or e}")
    try:
        proto = onnx.ModelProto()
        proto.ParseFromString(data)
    except (DecodeError, RuntimeError, ValueError) as e:
        fail("E1001", f"`{path}` is not an ONNX model: {str(e) or 'malformed protobuf'}",
             help="the file may be truncated, or not an .onnx file")  # fmt: skip
    if not proto.HasField("graph") or (not proto.graph.node and not proto.graph.output):
        fail("E1001", f"`{path}` holds no ONNX graph",
             help="the file may be empty or another protobuf message")  # fmt: skip
    opset = _default_opset(proto)
    _check_nesting(proto.graph)
    if len(proto.graph.node) > MAX_NODES:
        fail("E1005", f"the graph has {len(proto.graph.node)} nodes, over the limit of {MAX_NODES}")
    folder = os.path.dirname(os.path.abspath(path))
    initializers: dict[str, np.ndarray] = {}
    for t in proto.graph.initializer:
        if t.name in initializers:
            fail("E1011", f"initializer `{t.name}` is defined twice")
        initializers[t.name] = tensor_to_array(t, folder, f"initializer `{t.name}`")
    for value in [*proto.graph.input, *proto.graph.output, *proto.graph.value_info]:
        _check_value_dims(value)
    return OnnxModel(proto, opset, initializers, path)


def _default_opset(proto: object) -> int:
    import onnx.defs

    versions = {o.domain: o.version for o in proto.opset_import}  # type: ignore[attr-defined]
    opset = versions.get("", versions.get("ai.onnx"))
    newest = onnx.defs.onnx_opset_version()
    if opset is None:
        fail("E1009", "the model imports no version of the default ONNX opset")
    if opset < 1 or opset > newest:
        fail("E1009", f"opset {opset} is not supported: mdl imports opsets {MIN_OPSET} to {newest}",
             help=OPSET_HELP)  # fmt: skip
    return int(opset)


OPSET_HELP = "convert the model with `onnx.version_converter.convert_version(model, 17)`"


def check_old_opset(op: str, opset: int) -> str | None:
    """Below MIN_OPSET a node is read only when its op's definition in force at `opset` is the
    one in force at MIN_OPSET (`And` has not changed since opset 7): then it means what the
    converters expect. None when it can be read, else why not."""
    import onnx.defs

    if opset >= MIN_OPSET:
        return None
    try:
        old = onnx.defs.get_schema(op, opset).since_version
        current = onnx.defs.get_schema(op, MIN_OPSET).since_version
    except onnx.defs.SchemaError:
        return f"op `{op}` has no definition in opset {opset} or {MIN_OPSET}"
    if old != current:
        return (f"`{op}` changed in opset {current}; mdl imports opsets {MIN_OPSET} and newer"
                " (older ones only for ops unchanged since)")  # fmt: skip
    return None


def _check_nesting(graph: object) -> None:
    """Subgraphs (If/Loop/Scan bodies) nested deeper than MAX_NESTING are refused; walked
    with an explicit stack, so a hostile depth cannot exhaust Python's."""
    stack = [(graph, 0)]
    seen = 0
    while stack:
        g, depth = stack.pop()
        if depth > MAX_NESTING:
            fail("E1005", f"subgraphs are nested {depth} deep, over the limit of {MAX_NESTING}")
        for node in g.node:  # type: ignore[attr-defined]
            seen += 1
            if seen > MAX_NODES:
                fail("E1005", f"the model has over {MAX_NODES} nodes, counting subgraphs")
            for a in node.attribute:
                if a.type == 5:  # GRAPH
                    stack.append((a.g, depth + 1))
                elif a.type == 10:  # GRAPHS
                    stack.extend((sub, depth + 1) for sub in a.graphs)


def _check_value_dims(value: object) -> None:
    t = value.type  # type: ignore[attr-defined]
    if not t.HasField("tensor_type") or not t.tensor_type.HasField("shape"):
        return
    for axis, d in enumerate(t.tensor_type.shape.dim):
        if d.HasField("dim_value") and not 0 < d.dim_value <= MAX_DIM:
            name = value.name  # type: ignore[attr-defined]
            fail("E1003", f"`{name}` has dim {d.dim_value} on axis {axis}",
                 help=f"dims must be between 1 and {MAX_DIM}")  # fmt: skip


def check_shape(dims: list[int] | tuple[int, ...], what: str) -> tuple[int, ...]:
    """Initializer and constant shapes: no negative or absurd dims, a sane element count
    (a 0 dim is legal ONNX for an empty constant)."""
    count = 1
    for axis, d in enumerate(dims):
        if not 0 <= d <= MAX_DIM:
            fail("E1003", f"{what} has dim {d} on axis {axis}",
                 help=f"dims must be between 0 and {MAX_DIM}")  # fmt: skip
        count *= d
        if count > MAX_ELEMENTS:
            fail("E1003", f"{what} has {count} or more elements, over the limit of {MAX_ELEMENTS}")
    return tuple(int(d) for d in dims)


def tensor_to_array(t: object, folder: str | None, what: str) -> np.ndarray:
    """A TensorProto -> a fresh numpy array, checking its data against its shape."""
    import ml_dtypes  # noqa: F401  (registers bfloat16 with numpy)

    shape = check_shape(list(t.dims), what)  # type: ignore[attr-defined]
    elem = t.data_type  # type: ignore[attr-defined]
    name = ONNX_DTYPES.get(elem) or READABLE_ONLY.get(elem)
    if name is None:
        fail("E1008", f"{what} has ONNX element type {elem}, which mdl does not support",
             help="mdl tensors are f16, bf16, f32, f64, i32, i64 or bool")  # fmt: skip
    dtype = np.dtype(ml_dtypes.bfloat16) if name == "bfloat16" else np.dtype(name)
    count = int(np.prod(shape, dtype=object)) if shape else 1
    if t.data_location == 1:  # type: ignore[attr-defined]  # EXTERNAL
        raw = _read_external(t, folder, what, count * dtype.itemsize)
    elif t.HasField("raw_data"):  # type: ignore[attr-defined]
        raw = t.raw_data  # type: ignore[attr-defined]
    else:
        return _typed_field(t, elem, dtype, shape, count, what)
    if len(raw) != count * dtype.itemsize:
        fail("E1004", f"{what} has {len(raw)} bytes of data, but its shape {list(shape)} "
             f"needs {count * dtype.itemsize}")  # fmt: skip
    arr = np.frombuffer(raw, dtype=dtype.newbyteorder("<")).reshape(shape)
    return arr.astype(dtype, copy=True)


def _typed_field(t: object, elem: int, dtype: np.dtype, shape: tuple[int, ...], count: int,
                 what: str) -> np.ndarray:  # fmt: skip
    match elem:
        case 1:
            values = t.float_data  # type: ignore[attr-defined]
        case 11:
            values = t.double_data  # type: ignore[attr-defined]
        case 7:
            values = t.int64_data  # type: ignore[attr-defined]
        case 12 | 13:
            values = t.uint64_data  # type: ignore[attr-defined]
        case _:  # int32, bool, f16 and bf16 bit patterns, small ints: all in int32_data
            values = t.int32_data  # type: ignore[attr-defined]
    if len(values) != count:
        fail("E1004", f"{what} holds {len(values)} values, but its shape {list(shape)} "
             f"needs {count}")  # fmt: skip
    if elem in (10, 16):  # 16-bit floats travel as their bit patterns
        bits = np.asarray(values, dtype=np.int64).astype(np.uint16)
        return bits.view(dtype).reshape(shape).copy()
    return np.asarray(values).astype(dtype).reshape(shape)


def _read_external(t: object, folder: str | None, what: str, expected: int) -> bytes:
    entries = {e.key: e.value for e in t.external_data}  # type: ignore[attr-defined]
    location = entries.get("location", "")
    if folder is None:
        fail("E1002", f"{what} refers to external data, which is not allowed here")
    if not location or os.path.isabs(location) or "\x00" in location:
        fail("E1002", f"{what} has external data at `{location}`: not a relative path",
             help="external data must be a file in the model's folder")  # fmt: skip
    target = os.path.normpath(os.path.join(folder, location))
    if os.path.commonpath([folder, target]) != folder:
        fail("E1002", f"{what} has external data at `{location}`, outside the model's folder",
             help="external data must be a file in the model's folder")  # fmt: skip
    # every component below the folder must be a real directory or file, never a link
    part = folder
    for piece in os.path.relpath(target, folder).split(os.sep):
        part = os.path.join(part, piece)
        if os.path.islink(part):
            fail("E1002", f"{what} has external data through the symlink `{location}`",
                 help="copy the data file into the model's folder")  # fmt: skip
    try:
        offset = int(entries.get("offset", "0"))
        length = int(entries["length"]) if "length" in entries else expected
    except ValueError:
        fail("E1002", f"{what} has a non-numeric external data offset or length")
    if offset < 0 or length < 0:
        fail("E1002", f"{what} has a negative external data offset or length")
    try:
        info = os.stat(target)
        if not stat.S_ISREG(info.st_mode):
            fail("E1002", f"{what} has external data at `{location}`, which is not a regular file")
        if offset + length > info.st_size:
            fail("E1002", f"{what} reads bytes {offset}..{offset + length} of `{location}`, "
                 f"which has {info.st_size}")  # fmt: skip
        with open(target, "rb") as f:
            f.seek(offset)
            return f.read(length)
    except OSError as e:
        fail("E1002", f"{what}: cannot read external data `{location}`: {e.strerror or e}")
    raise AssertionError("unreachable")
