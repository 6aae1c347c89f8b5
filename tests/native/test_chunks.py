"""Per-thread scratch (loopir `Program.chunks`, a conv's padded copy and wide output): carved
by each parallel loop function from a scratch block of the module's cache (scratch.py), outside
the arena; a failed allocation is E0609 with the size, not a crash, in the JIT and an executable."""

from __future__ import annotations

import resource
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import mdl
from mdl import driver
from mdl.backend import aot
from mdl.backend.lower import lower
from mdl.backend.memplan import plan_memory

ROOT = Path(__file__).resolve().parents[2]

# 64 channels, 3x3 of stride 2 over 512 x 512: the padded copy, as 4 phase planes of
# 64 x 257 x 257 f32, is 68 MB (the input 67 MB)
BIG_CONV = """
model Big(x: f32[B, 64, 512, 512]) -> f32[B, 1, 256, 256] {
    param w: f32[1, 64, 3, 3] = ones
    return conv(x, w, padding=1, stride=2)
}
"""


def test_resnet_arena_no_longer_holds_a_matrix_per_image():
    graph = driver.compile_model(str(ROOT / "examples/resnet20.mdl")).graph
    program = lower(graph)
    assert program.chunks and {b.role for b in program.chunks} == {"chunk"}
    plan = plan_memory(program)
    per_image = plan.layout({"B": 2})[1] - plan.layout({"B": 1})[1]
    # activations only: 16 x 32 x 32 f32 = 64 KB per buffer, a few of them live at once
    # (the im2col matrix alone was 576 KB per image)
    assert per_image < 512 * 1024, per_image
    # the largest: a first-stage conv's padded copy and wide output (16 * 34 * 34 + 2 and
    # 16 * 32 * 34 floats, each + 64 to align); an im2col matrix would be 576 KiB
    assert plan.per_thread == (16 * 34 * 34 + 2) * 4 + 64 + 16 * 32 * 34 * 4 + 64


def test_stats_reports_the_scratch_per_thread(capsys):
    from mdl.cli import main

    assert main(["stats", str(ROOT / "examples/resnet20.mdl")]) == 0
    out = capsys.readouterr().out
    assert "native scratch per thread: 140.4 KiB (convolution scratch, outside the arena)" in out


def _limited(limit_bytes: int):
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit_bytes, limit_bytes))

    return apply


@pytest.mark.skipif(
    sys.platform != "linux" or aot.shutil.which("cc") is None, reason="needs Linux and cc"
)
def test_exe_reports_out_of_memory_for_scratch(tmp_path):
    (tmp_path / "big.mdl").write_text(BIG_CONV)
    graph = driver.compile_model(str(tmp_path / "big.mdl")).graph
    exe = tmp_path / "big"
    driver.build_artifact(graph, {"w": np.ones((1, 64, 3, 3), np.float32)}, str(exe))
    x = np.zeros((1, 64, 512, 512), np.float32)
    x[0, :, 0, 0] = 1.0
    np.save(tmp_path / "x.npy", x)

    def run(limit: int | None) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(exe), "--out", str(tmp_path), str(tmp_path / "x.npy")],
            capture_output=True,
            text=True,
            timeout=120,
            env={"MDL_NUM_THREADS": "1"},
            preexec_fn=_limited(limit) if limit else None,
        )

    done = run(120 << 20)  # room for the input, not for the input and the scratch
    assert done.returncode == 1, done.stderr
    # the thread's whole scratch block: the phase planes (4 x 64 x 257 x 257 floats) and the
    # loop's other chunks, each 64-byte aligned, + 64 (scratch.py)
    block = driver.native_memory(graph).per_thread + 64
    assert block > 4 * 64 * 257 * 257 * 4
    assert f"error[E0609]: out of memory: {block} bytes" in done.stderr
    assert not (tmp_path / "output.npy").exists()
    done = run(None)  # with the memory it needs, the same executable runs
    assert done.returncode == 0, done.stderr
    y = np.load(tmp_path / "output.npy")
    # x is 1 at (0, 0) of each channel: of the stride-2 windows only output (0, 0) covers it
    assert y[0, 0, 0, 0] == 64.0 and y[0, 0, 0, 1] == 0.0 and y[0, 0, 1, 1] == 0.0


def _small_conv(tmp_path: Path, seed: int) -> dict[str, np.ndarray]:
    """`c.mdl` in tmp_path (a 3x3 conv with per-thread scratch); its random weights."""
    src = "import nn\n\nmodel C(x: f32[B, 3, 13, 11]) -> f32[B, 8, 13, 11] {\n"
    src += "    let c = nn.Conv2d[3, 8, 3, padding=1]\n    return nn.relu(c(x))\n}\n"
    (tmp_path / "c.mdl").write_text(src)
    graph = driver.compile_model(str(tmp_path / "c.mdl")).graph
    return driver.init_weights(graph, seed=seed, random=True)


def test_scratch_is_per_thread_and_bit_identical(tmp_path):
    # more batch entries than threads: each thread reuses its one matrix
    w = _small_conv(tmp_path, seed=1)
    ref = mdl.load(str(tmp_path / "c.mdl"), weights=w, backend="ref")
    one, two = (
        mdl.load(str(tmp_path / "c.mdl"), weights=w, backend="native", threads=t) for t in (1, 2)
    )
    x = np.random.default_rng(0).standard_normal((300, 3, 13, 11)).astype(np.float32)
    a = one(x)
    assert two(x).tobytes() == a.tobytes()
    two._native.strict_split(True)  # the caller leaves the worker its range: both must run
    assert two(x).tobytes() == a.tobytes()
    assert min(two._native.tasks_run()) > 0
    np.testing.assert_allclose(a, ref(x), rtol=1e-5, atol=1e-6)


def test_scratch_blocks_are_cached_between_runs_and_released():
    """scratch.py: take gives back a cached block before it mallocs, give keeps SLOTS
    blocks and frees the rest, release empties the cache."""
    import ctypes

    import llvmlite.ir as ll

    from mdl.backend import scratch
    from mdl.backend.jit import _llvm, host_target_machine, optimize

    m = ll.Module("scratch_test")
    for name, define in (
        ("take", scratch.define_take),
        ("give", scratch.define_give),
    ):  # the internal functions, behind external wrappers the test can call
        inner = define(m)
        outer = ll.Function(m, inner.function_type, name)
        b = ll.IRBuilder(outer.append_basic_block("entry"))
        result = b.call(inner, list(outer.args))
        b.ret(result) if name == "take" else b.ret_void()
    scratch.define_release(m)
    llvm = _llvm()
    tm = host_target_machine()
    engine = llvm.create_mcjit_compiler(optimize(str(m), tm), tm)
    engine.finalize_object()
    take = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_int64)(engine.get_function_address("take"))
    give = ctypes.CFUNCTYPE(None, ctypes.c_void_p)(engine.get_function_address("give"))
    release = ctypes.CFUNCTYPE(None)(engine.get_function_address(scratch.RELEASE))

    blocks = [take(4096) for _ in range(scratch.SLOTS + 3)]
    assert all(blocks) and len(set(blocks)) == len(blocks)  # none cached yet: all malloc'd
    for k, p in enumerate(blocks):
        ctypes.memset(p, 0x40 + k, 64)
        give(p)  # SLOTS kept, 3 freed
    again = [take(4096) for _ in range(scratch.SLOTS)]
    assert set(again) <= set(blocks) and len(set(again)) == scratch.SLOTS
    for p in again:  # kept, not freed: free would have written its list pointers into them
        k = blocks.index(p)
        assert ctypes.string_at(p, 64) == bytes([0x40 + k]) * 64
    for p in again:
        give(p)
    release()  # frees the SLOTS cached blocks
    fresh = take(4096)
    assert fresh  # a new malloc (its address may be reused, so nothing else to compare)
    give(fresh)
    release()


def test_one_model_called_from_many_threads_shares_the_cache_safely(tmp_path):
    import threading

    w = _small_conv(tmp_path, seed=2)
    rng = np.random.default_rng(1)
    xs = [rng.standard_normal((b, 3, 13, 11)).astype(np.float32) for b in (1, 4, 9, 30)]
    for threads in (1, 2):
        model = mdl.load(str(tmp_path / "c.mdl"), weights=w, backend="native", threads=threads)
        want = [model(x).tobytes() for x in xs]
        errors: list[int] = []

        def work(k: int, model=model, want=want, errors=errors) -> None:
            for i in range(60):
                j = (k + i) % len(xs)
                if model(xs[j]).tobytes() != want[j]:
                    errors.append(j)

        callers = [threading.Thread(target=work, args=(k,)) for k in range(12)]
        for t in callers:
            t.start()
        for t in callers:
            t.join()
        assert errors == []
        del model  # the finalizer stops the pool and frees the cached blocks


CREATE_WITHOUT_MEMORY = r"""
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include "small.h"

/* calloc fails once, after `countdown` more successes (glibc's own is __libc_calloc) */
extern void *__libc_calloc(size_t, size_t);
static int countdown = -1;
void *calloc(size_t n, size_t size) {
    if (countdown == 0) {
        countdown = -1;
        return NULL;
    }
    if (countdown > 0) countdown--;
    return __libc_calloc(n, size);
}

int main(void) {
    small_ctx *ctx = NULL;
    for (int k = 0; k < 4; k++) { /* the context itself, then its tables */
        countdown = k;
        int rc = small_create(NULL, 2, &ctx);
        countdown = -1;
        printf("failed create %d: %d %s %s\n", k, rc, ctx ? "ctx" : "null", small_last_error(NULL));
        if (ctx) small_destroy(ctx);
    }
    if (small_create(NULL, 2, &ctx) != MDL_OK) return 1;
    float x[2 * 3 * 13 * 11] = {0}, y[2 * 8 * 13 * 11];
    int64_t d[4] = {2, 3, 13, 11};
    const int64_t *dims[1] = {d};
    const void *ins[1] = {x};
    void *outs[1] = {y};
    int64_t cap[1] = {2 * 8 * 13 * 11};
    for (int i = 0; i < 3; i++)
        if (small_run(ctx, ins, dims, outs, cap, NULL) != MDL_OK) return 2;
    small_destroy(ctx); /* stops the pool and frees the cached scratch blocks */
    printf("ran and destroyed\n");
    return 0;
}
"""


@pytest.mark.skipif(
    sys.platform != "linux" or aot.shutil.which("cc") is None, reason="needs Linux and cc"
)
def test_create_that_runs_out_of_memory_fails_cleanly_and_destroy_frees_the_cache(tmp_path):
    w = _small_conv(tmp_path, seed=4)
    graph = driver.compile_model(str(tmp_path / "c.mdl")).graph
    lib = tmp_path / "libsmall.so"
    driver.build_artifact(graph, w, str(lib), emit_kind="shared")
    (tmp_path / "main.c").write_text(CREATE_WITHOUT_MEMORY)
    exe = tmp_path / "main"
    done = subprocess.run(
        ["cc", "-O1", "-Wall", "-Werror", "-std=c11", f"-I{tmp_path}", str(tmp_path / "main.c")]
        + [f"-L{tmp_path}", "-lsmall", f"-Wl,-rpath,{tmp_path}", "-o", str(exe)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    done = subprocess.run([str(exe)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    for k in range(4):  # MDL_ERR_NOMEM, no context, whichever allocation failed
        assert lines[k].startswith(f"failed create {k}: 7 null "), lines
        assert "out of memory" in lines[k]
    assert lines[4] == "ran and destroyed"
