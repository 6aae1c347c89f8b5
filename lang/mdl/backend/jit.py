"""The in-process JIT: `Graph` + weights -> a native callable (llvmlite MCJIT).

lower -> verify the loop IR -> emit LLVM IR -> verify the module -> O3 for the
host CPU (no fast-math) -> machine code. Calls check every input at the
boundary first (the same checks as the reference interpreter: dtype, rank,
dims, index ranges), then pass pointers to contiguous arrays; temporaries are
allocated per call from the symbolic shapes.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import tempfile
import weakref
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..graph import Graph
from . import loopir as ir
from .call import CallPlan
from .emit import ENTRY, emit
from .lower import lower
from .pool import CREATE, DESTROY, RAN_COUNT, STRICT_SPLIT
from .scratch import RELEASE

_RUN = ctypes.CFUNCTYPE(
    ctypes.c_int32, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p
)
_POOL_CREATE = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_int64)
_POOL_DESTROY = ctypes.CFUNCTYPE(None, ctypes.c_void_p)
_POOL_RAN = ctypes.CFUNCTYPE(ctypes.c_int64, ctypes.c_void_p, ctypes.c_int64)
_POOL_STRICT = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_int64)
_RELEASE = ctypes.CFUNCTYPE(None)


def default_threads() -> int:
    """MDL_NUM_THREADS, else the cores this process may run on."""
    text = os.environ.get("MDL_NUM_THREADS", "").strip()
    if text.isdigit() and int(text) > 0:
        return int(text)
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


_initialized = False


def _llvm() -> Any:
    global _initialized
    import llvmlite.binding as llvm

    if not _initialized:
        llvm.initialize_native_target()
        llvm.initialize_native_asmprinter()
        _initialized = True
    return llvm


def host_target_machine(opt: int = 3) -> Any:
    llvm = _llvm()
    target = llvm.Target.from_default_triple()
    return target.create_target_machine(
        cpu=llvm.get_host_cpu_name(),
        features=llvm.get_host_cpu_features().flatten(),
        opt=opt,
        reloc="pic",
        codemodel="jitdefault",
    )


def host_vector_width() -> int:
    """f32 lanes of this CPU's widest vectors the code generator may use."""
    features = _llvm().get_host_cpu_features()
    return 16 if features.get("avx512f") else 8


def optimize(module_ir: str, tm: Any) -> Any:
    llvm = _llvm()
    mod = llvm.parse_assembly(module_ir)
    mod.verify()
    pto = llvm.create_pipeline_tuning_options(speed_level=3)
    pto.loop_vectorization = True
    pto.slp_vectorization = True
    # unrolling every small loop nest triples compile time for little gain at this stage
    pto.loop_unrolling = False
    pb = llvm.create_pass_builder(tm, pto)
    pb.getModulePassManager().run(mod, pb)
    mod.verify()
    return mod


def cache_dir() -> Path | None:
    """Where compiled code is kept (MDL_CACHE_DIR, else ~/.cache/mdl/jit); None when off."""
    if os.environ.get("MDL_NO_CACHE", "") not in ("", "0"):
        return None
    base = os.environ.get("MDL_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"),
        "mdl",
        "jit",
    )
    try:
        os.makedirs(base, exist_ok=True)
    except OSError:
        return None
    return Path(base) if os.access(base, os.W_OK) else None


def cache_key(llvm_ir: str, tm: Any) -> str:
    """Machine code depends on the IR (which holds the whole model but its weights), the
    target, and the compiler's versions."""
    import llvmlite

    from .. import __version__

    llvm = _llvm()
    text = "\n".join(
        [
            __version__,
            llvmlite.__version__,
            tm.triple,
            llvm.get_host_cpu_name(),
            llvm.get_host_cpu_features().flatten(),
            llvm_ir,
        ]
    )
    return hashlib.sha256(text.encode()).hexdigest()


class NativeModel:
    """A graph compiled to machine code for this host, callable with numpy arrays."""

    def __init__(
        self,
        graph: Graph,
        weights: Mapping[str, np.ndarray],
        cache: bool = True,
        fuse: bool = True,
        threads: int | None = None,
        fast_math: bool = False,
    ):
        self.graph = graph
        self.fast_math = fast_math
        self.program = lower(graph, fuse=fuse)
        ir.verify(self.program)
        llvm = _llvm()
        self.tm = host_target_machine()  # the engine owns it: one per model
        self.llvm_ir = str(
            emit(self.program, llvm.get_process_triple(), host_vector_width(), fast_math)
        )
        folder = cache_dir() if cache else None
        path = folder / f"{cache_key(self.llvm_ir, self.tm)}.o" if folder else None
        cached = path.read_bytes() if path is not None and path.is_file() else None
        self.from_cache = cached is not None
        if cached is not None:
            self.module = llvm.parse_assembly(self.llvm_ir)
        else:
            self.module = optimize(self.llvm_ir, self.tm)
        self.engine = llvm.create_mcjit_compiler(self.module, self.tm)
        if cached is not None:
            self.engine.set_object_cache(getbuffer_func=lambda _module: cached)
        elif path is not None:
            self.engine.set_object_cache(
                notify_func=lambda _module, data: _write_atomic(path, data)
            )
        self.engine.finalize_object()
        self._fn = _RUN(self.engine.get_function_address(ENTRY))
        self.threads = default_threads() if threads is None else max(1, int(threads))
        create = _POOL_CREATE(self.engine.get_function_address(CREATE))
        self._pool = create(self.threads)  # None for one thread: the caller runs everything
        self._ran = _POOL_RAN(self.engine.get_function_address(RAN_COUNT))
        self._strict = _POOL_STRICT(self.engine.get_function_address(STRICT_SPLIT))
        destroy = _POOL_DESTROY(self.engine.get_function_address(DESTROY))
        release = _RELEASE(self.engine.get_function_address(RELEASE))
        # the engine (the code) must outlive the workers and the cached scratch blocks:
        # the finalizer holds all three
        weakref.finalize(self, _stop, destroy, self._pool, release, self.engine)
        self._fixed: dict[str, np.ndarray] = {}
        for buf in self.program.buffers:
            if buf.role == "param":
                self._fixed[buf.name] = np.require(
                    weights[buf.name.removeprefix("param.")],
                    dtype=buf.dtype.numpy,
                    requirements="C",
                )
            elif buf.role == "const":
                self._fixed[buf.name] = np.require(buf.data, requirements="C")
        self._plan = CallPlan(graph, self.program, self._fixed)

    def run(self, inputs: Mapping[str, Any]) -> dict[str, np.ndarray]:
        return self._plan.run(self._fn, inputs, self._pool)

    def tasks_run(self) -> list[int]:
        """Parallel tasks each thread has run so far (thread 0 is the caller)."""
        return [self._ran(self._pool, w) for w in range(self.threads)] if self._pool else []

    def strict_split(self, on: bool = True) -> None:
        """Tests: with `on`, every worker runs its own range of each parallel loop (the caller
        waits rather than run ranges a worker has not claimed yet), so one call shows every
        thread's share in `tasks_run`. Results are the same bits either way."""
        self._strict(self._pool, int(on))


def _stop(destroy: Any, pool: int | None, release: Any, engine: Any) -> None:
    destroy(pool)  # no-op for None (one thread)
    release()


def _write_atomic(path: Path, data: bytes) -> None:
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".o")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except OSError:  # a cache that cannot be written is only slower
        pass
