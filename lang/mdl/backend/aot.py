"""Ahead-of-time artifacts: `Graph` + weights -> executable, shared library + header,
object, LLVM IR or assembly (`mdlc build`).

The model's code is the JIT's (lower -> emit -> the same `optimize` pipeline)
compiled for a named CPU (x86-64-v3 unless told otherwise; `native` is this
host, which gives the JIT's exact code) as position-independent code. The
weights go into a second LLVM object (one 64-byte aligned constant byte
array) or, with `weights_mode="sidecar"`, into a .safetensors file written
beside the artifact, memory-mapped at create time and checked against its
SHA-256. Metadata, shape formulas and the C runtime (runtime/) are compiled
by the system C compiler with the LLVM objects: the artifacts need libc,
libm and pthreads only. Builds are deterministic: fixed file names in a
private folder, no build id, nothing time-dependent.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..diagnostics import Diagnostic, MdlError
from ..graph import Graph
from . import loopir as ir
from .aot_c import (
    BLOB_SUFFIX,
    ENTRY_SUFFIX,
    POOL_CREATE_SUFFIX,
    POOL_DESTROY_SUFFIX,
    SCRATCH_RELEASE_SUFFIX,
    WeightsInfo,
    header_source,
    model_source,
    prefix_for,
)
from .emit import ENTRY, emit
from .jit import _llvm, host_vector_width, optimize
from .lower import UnsupportedDtype, UnsupportedOp, lower
from .pool import CREATE, DESTROY, RAN_COUNT, STRICT_SPLIT
from .scratch import RELEASE

EMITS = ("exe", "shared", "object", "llvm", "asm", "header")
WEIGHTS_MODES = ("embed", "sidecar")
RUNTIME = Path(__file__).parent / "runtime"
RUNTIME_FILES = ("mdl_rt.h", "mdl_rt.c", "mdl_sha256.c", "mdl_npy.c", "mdl_main.c")
_ALIGN = 64
_KNOWN_X86 = frozenset({"x86-64", "x86-64-v2", "x86-64-v3", "x86-64-v4"})
# CPUs with AVX-512F (the emitter's GEMM then uses 16 f32 lanes); any other gets 8, which
# is right for AVX2 and still correct, only slower, for an AVX-512 CPU missing here
_AVX512 = frozenset(
    "x86-64-v4 skylake-avx512 cascadelake cooperlake cannonlake icelake-client icelake-server "
    "tigerlake rocketlake sapphirerapids emeraldrapids graniterapids graniterapids-d "
    "diamondrapids znver4 znver5 knl knm".split()
)
_checked_cpus: dict[str, bool] = {}


class UnknownCpu(ValueError):
    """`--cpu` names a processor LLVM does not know (it would abort the process)."""


@dataclass(frozen=True)
class Artifact:
    path: str
    kind: str  # exe, shared, object, llvm, asm, header, weights


def default_cpu() -> str:
    return "x86-64-v3" if _llvm().get_process_triple().startswith("x86_64") else "generic"


def target_machine(cpu: str) -> Any:
    """PIC target machine for `cpu` (`native`: this host's name and features), O3."""
    llvm = _llvm()
    target = llvm.Target.from_triple(llvm.get_process_triple())
    if cpu == "native":
        name, features = llvm.get_host_cpu_name(), llvm.get_host_cpu_features().flatten()
    else:
        _check_cpu(cpu)
        name, features = cpu, ""
    return target.create_target_machine(cpu=name, features=features, opt=3, reloc="pic")


def vector_width(cpu: str) -> int:
    """f32 lanes of the target's widest vectors, as the JIT decides it for the host."""
    if cpu == "native":
        return host_vector_width()
    return 16 if cpu in _AVX512 else 8


def _check_cpu(cpu: str) -> None:
    """LLVM aborts the process on code generation for an unknown CPU: try it in a child first."""
    if cpu in _KNOWN_X86 and _llvm().get_process_triple().startswith("x86_64"):
        return
    if cpu not in _checked_cpus:
        probe = (
            "import llvmlite.binding as l, sys\n"
            "l.initialize_native_target(); l.initialize_native_asmprinter()\n"
            "tm = l.Target.from_triple(l.get_process_triple()).create_target_machine("
            "cpu=sys.argv[1], reloc='pic')\n"
            "tm.emit_object(l.parse_assembly('define i32 @f(i32 %x) {\\n ret i32 %x\\n}'))\n"
        )
        done = subprocess.run(
            [sys.executable, "-c", probe, cpu], capture_output=True, text=True, timeout=120
        )
        _checked_cpus[cpu] = done.returncode == 0 and "not a recognized" not in done.stderr
    if not _checked_cpus[cpu]:
        raise UnknownCpu(cpu)


def build(
    graph: Graph,
    weights: Mapping[str, np.ndarray],
    out: str,
    *,
    emit_kind: str = "exe",
    cpu: str | None = None,
    weights_mode: str = "embed",
    source_name: str = "",
    fast_math: bool = False,
) -> list[Artifact]:
    """Write the artifact(s) for `graph` to `out`; returns what was written, main artifact first.

    Raises MdlError (E0801 unsupported by the native backend, E0702 cannot write or
    link) and UnknownCpu.
    """
    from .. import __version__

    if emit_kind not in EMITS or weights_mode not in WEIGHTS_MODES:
        raise ValueError(f"emit {emit_kind!r}, weights mode {weights_mode!r}")
    program = _lower(graph)
    prefix = prefix_for(out, graph.name)
    folder = os.path.dirname(out)
    sidecar = weights_mode == "sidecar" and emit_kind in ("exe", "shared", "object", "header")
    blob, sidecar_bytes, info = _weights_layout(program, weights, prefix, sidecar)
    if emit_kind == "header":
        _write(out, header_source(graph, info, prefix, source_name, __version__).encode())
        return [Artifact(out, "header")]
    tm = target_machine(cpu or default_cpu())
    ir_text = str(
        emit(
            program,
            _llvm().get_process_triple(),
            vector_width(cpu or default_cpu()),
            fast_math=fast_math,
        )
    )
    module = optimize(ir_text, tm)
    for name, suffix in (
        (ENTRY, ENTRY_SUFFIX),
        (CREATE, POOL_CREATE_SUFFIX),
        (DESTROY, POOL_DESTROY_SUFFIX),
        (RELEASE, SCRATCH_RELEASE_SUFFIX),
        (RAN_COUNT, "_mdl_pool_ran"),
        (STRICT_SPLIT, "_mdl_pool_strict"),
    ):
        fn = module.get_function(name)
        fn.name = f"{prefix}{suffix}"
        fn.visibility = "hidden"
    if emit_kind == "llvm":
        _write(out, str(module).encode())
        return [Artifact(out, "llvm")]
    if emit_kind == "asm":
        _write(out, tm.emit_assembly(module).encode())
        return [Artifact(out, "asm")]
    objects = {"model_llvm.o": tm.emit_object(module)}
    if blob:
        objects["weights.o"] = tm.emit_object(_blob_module(blob, f"{prefix}{BLOB_SUFFIX}"))
    header = header_source(graph, info, prefix, source_name, __version__)
    source = model_source(program, graph, info, prefix, emit_kind)
    data = _compile(emit_kind, prefix, source, header, objects)
    written = [Artifact(out, emit_kind)]
    _write(out, data, executable=emit_kind in ("exe", "shared"))
    if emit_kind != "exe":
        header_path = os.path.join(folder, f"{prefix}.h")
        _write(header_path, header.encode())
        written.append(Artifact(header_path, "header"))
    if sidecar:
        path = os.path.join(folder, info.sidecar_name)
        _write(path, sidecar_bytes)
        written.append(Artifact(path, "weights"))
    return written


def sidecar_name(out: str, graph: Graph) -> str:
    """The file a sidecar build reads its weights from, beside the artifact."""
    return f"{prefix_for(out, graph.name)}.weights.safetensors"


def _lower(graph: Graph) -> ir.Program:
    try:
        program = lower(graph)
    except UnsupportedOp as e:
        raise MdlError(
            [
                Diagnostic(
                    "E0801",
                    f"the native backend cannot compile `{e.op}` yet",
                    e.node.span,
                    help="run this model with the reference interpreter (`mdlc run`)",
                )
            ]
        ) from None
    except UnsupportedDtype as e:
        raise MdlError(
            [Diagnostic("E0801", f"the native backend does not support `{e.dtype}` yet")]
        ) from None
    ir.verify(program)
    return program


# ---------------------------------------------------------------- weights


def _tensor_bytes(buf: ir.Buffer, weights: Mapping[str, np.ndarray]) -> bytes:
    array = weights[buf.name.removeprefix("param.")] if buf.role == "param" else buf.data
    want = np.dtype(buf.dtype.numpy).newbyteorder("<")
    return np.ascontiguousarray(np.asarray(array), dtype=want).tobytes()


def _weights_layout(
    program: ir.Program, weights: Mapping[str, np.ndarray], prefix: str, sidecar: bool
) -> tuple[bytes, bytes, WeightsInfo]:
    """(embedded blob, sidecar file, offsets): constants always embedded, parameters too
    unless `sidecar`; every tensor 64-byte aligned in the blob."""
    offsets: dict[str, int] = {}
    blob = bytearray()
    params: list[tuple[ir.Buffer, bytes]] = []
    for buf in program.buffers:
        if buf.role not in ("param", "const"):
            continue
        data = _tensor_bytes(buf, weights)
        if buf.role == "param" and sidecar:
            params.append((buf, data))
            continue
        blob += bytes(-len(blob) % _ALIGN)
        offsets[buf.name] = len(blob)
        blob += data
    if not sidecar:
        return bytes(blob), b"", WeightsInfo(offsets, len(blob))
    file, where = _safetensors(params)
    offsets.update(where)
    name = f"{prefix}.weights.safetensors"
    info = WeightsInfo(offsets, len(blob), name, len(file), hashlib.sha256(file).hexdigest())
    return bytes(blob), file, info


_ST_DTYPES = {
    "f32": "F32",
    "f64": "F64",
    "f16": "F16",
    "bf16": "BF16",
    "i32": "I32",
    "i64": "I64",
    "bool": "BOOL",
}


def _safetensors(params: list[tuple[ir.Buffer, bytes]]) -> tuple[bytes, dict[str, int]]:
    """A .safetensors file of the parameters (widest dtypes first, so that every tensor is
    naturally aligned once the header pads the data to 64 bytes); file offsets by buffer."""
    ordered = sorted(params, key=lambda p: -np.dtype(p[0].dtype.numpy).itemsize)
    header: dict[str, Any] = {"__metadata__": {"format": "mdl"}}
    start = 0
    for buf, data in ordered:
        header[buf.name.removeprefix("param.")] = {
            "dtype": _ST_DTYPES[str(buf.dtype)],
            "shape": [int(d) for d in buf.shape],
            "data_offsets": [start, start + len(data)],
        }
        start += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-(8 + len(text)) % _ALIGN)
    body = b"".join(data for _, data in ordered)
    base = 8 + len(text)
    where: dict[str, int] = {}
    for buf, _ in ordered:
        where[buf.name] = base + header[buf.name.removeprefix("param.")]["data_offsets"][0]
    return len(text).to_bytes(8, "little") + text + body, where


def _blob_module(blob: bytes, symbol: str) -> Any:
    import llvmlite.ir as ll

    llvm = _llvm()
    m = ll.Module(name="weights")
    m.triple = llvm.get_process_triple()
    ty = ll.ArrayType(ll.IntType(8), len(blob))
    g = ll.GlobalVariable(m, ty, symbol)
    g.global_constant = True
    g.initializer = ll.Constant(ty, bytearray(blob))
    g.align = _ALIGN
    mod = llvm.parse_assembly(str(m))
    mod.get_global_variable(symbol).visibility = "hidden"
    return mod


# ---------------------------------------------------------------- C compiler


def _cc() -> list[str]:
    cc = os.environ.get("CC", "cc").split()
    if not cc or shutil.which(cc[0]) is None:
        raise MdlError(
            [
                Diagnostic(
                    "E0702",
                    f"cannot link the artifact: no C compiler `{cc[0] if cc else 'cc'}` found",
                    help="install gcc or clang, or name one with the CC environment variable",
                )
            ]
        )
    return cc


def _compile(
    kind: str, prefix: str, source: str, header: str, objects: Mapping[str, bytes]
) -> bytes:
    """Compile model.c with the runtime and link it with the LLVM objects in a private
    folder (fixed file names, so the result does not depend on the folder)."""
    cc = _cc()
    with tempfile.TemporaryDirectory(prefix="mdl-build-") as tmp:
        for name in RUNTIME_FILES:
            shutil.copyfile(RUNTIME / name, os.path.join(tmp, name))
        Path(tmp, "model.c").write_text(source)
        Path(tmp, f"{prefix}.h").write_text(header)
        for name, data in objects.items():
            Path(tmp, name).write_bytes(data)
        flags = ["-O2", "-fPIC", "-std=gnu11", f"-ffile-prefix-map={tmp}=.", "-frandom-seed=mdl"]
        _run([*cc, *flags, "-c", "model.c", "-o", "model_c.o"], tmp)
        objs = ["model_c.o", *objects]
        link = ["-Wl,--build-id=none", "-lm", "-lpthread"]
        match kind:
            case "exe":
                _run([*cc, *objs, "-o", "artifact", *link], tmp)
            case "shared":
                soname = f"-Wl,-soname,lib{prefix}.so"
                _run([*cc, "-shared", *objs, "-o", "artifact", soname, *link], tmp)
            case _:
                _run([*cc, "-r", "-nostdlib", *objs, "-o", "artifact", "-Wl,--build-id=none"], tmp)
        return Path(tmp, "artifact").read_bytes()


def _run(cmd: list[str], cwd: str) -> None:
    try:
        done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=600)
    except OSError as e:
        raise MdlError(
            [
                Diagnostic(
                    "E0803",
                    f"cannot run `{cmd[0]}`: {e}",
                    help="artifacts are linked with the system C compiler `cc`",
                )
            ]
        ) from None
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).strip().splitlines()[-12:]
        raise MdlError(
            [
                Diagnostic(
                    "E0803",
                    f"`{cmd[0]}` failed building the artifact (exit {done.returncode})",
                    notes=tuple(detail),
                )
            ]
        )


def _write(path: str, data: bytes, executable: bool = False) -> None:
    """Replace `path` atomically (a temporary file beside it, then a rename)."""
    target = os.path.realpath(path)
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=".mdlc-", suffix=".tmp", dir=os.path.dirname(target))
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, (0o777 if executable else 0o666) & ~umask)
        os.replace(tmp, target)
        tmp = None
    except OSError as e:
        raise MdlError(
            [Diagnostic("E0702", f"cannot write `{path}`: {(e.strerror or str(e)).lower()}")]
        ) from None
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass
