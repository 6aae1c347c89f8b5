"""`mdlc build` of f16/bf16 models: executables (.npy in and out) and shared libraries give
the JIT's bits, on this CPU and on plain x86-64 (no F16C: f16 conversions are then
libgcc's, linked statically).

.npy files: f16 is `<f2`; numpy has no bfloat16, so np.save writes an
ml_dtypes.bfloat16 array as 2-byte void (`<V2`), and the executable reads bf16 inputs
from 2-byte void arrays and writes bf16 outputs as such.
"""

from __future__ import annotations

import ctypes
import subprocess
import sys
from pathlib import Path

import ml_dtypes
import numpy as np
import pytest

import mdl
from mdl import driver
from mdl.backend import aot

BF16 = np.dtype(ml_dtypes.bfloat16)
SOURCE = """model H(x: f16[B, 5], y: bf16[B, 5]) -> (a: f16[B, 3], b: bf16[B, 5], c: f32[B, 5]) {
    param w: f16[5, 3]
    param v: bf16[5]
    return (x @ w, y * v + cast(x, bf16), cast(x, f32) / 3.0)
}
"""

pytestmark = pytest.mark.skipif(
    sys.platform != "linux" or aot.shutil.which("cc") is None, reason="needs Linux and cc"
)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    d = tmp_path_factory.mktemp("half_aot")
    (d / "h.mdl").write_text(SOURCE)
    graph = driver.compile_model(str(d / "h.mdl")).graph
    weights = driver.init_weights(graph, seed=2, random=True)
    (d / "side").mkdir()

    def build(out: Path, kind: str, cpu: str = "native", **kw) -> Path:
        driver.build_artifact(graph, weights, str(out), emit_kind=kind, cpu=cpu, **kw)
        return out

    return {
        "dir": d,
        "jit": mdl.load(str(d / "h.mdl"), weights=weights, backend="native"),
        "exe": build(d / "h", "exe"),
        "exe_x86_64": build(d / "h_plain", "exe", cpu="x86-64"),
        "build": build,
        "so": build(d / "libh.so", "shared"),
    }


def inputs(batch: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((batch, 5)) * 3).astype(np.float16)
    y = (rng.standard_normal((batch, 5)) * 3).astype(BF16)
    x.reshape(-1)[:4] = [np.nan, np.inf, -0.0, 6e-8]
    y.reshape(-1)[:4] = [np.nan, -np.inf, 1e-40, 3e38]
    return x, y


def run_exe(exe: Path, out: Path, *files: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(exe), "--out", str(out), *map(str, files)], capture_output=True, text=True, timeout=60
    )


def read_output(path: Path) -> np.ndarray:
    array = np.load(path)
    return array.view(BF16) if array.dtype.kind == "V" else array


def assert_same_bits(got: np.ndarray, want: np.ndarray) -> None:
    assert got.dtype == want.dtype and got.shape == want.shape, (got.dtype, want.dtype)
    assert got.tobytes() == want.tobytes()


@pytest.mark.parametrize("exe", ["exe", "exe_x86_64"])
def test_executable_matches_the_jit_bit_for_bit(built, tmp_path, exe):
    check_executable(built, built[exe], tmp_path)


def test_executable_with_sidecar_weights(built, tmp_path):
    exe = built["build"](built["dir"] / "side" / "h", "exe", weights_mode="sidecar")
    check_executable(built, exe, tmp_path)


def check_executable(built, exe: Path, tmp_path: Path) -> None:
    for batch in (1, 6):
        x, y = inputs(batch, batch)
        np.save(tmp_path / "x.npy", x)
        np.save(tmp_path / "y.npy", y)  # written as '<V2'
        done = run_exe(exe, tmp_path / "o", tmp_path / "x.npy", tmp_path / "y.npy")
        assert done.returncode == 0, done.stderr
        assert done.stdout.splitlines() == [
            f"a f16[{batch}, 3]",
            f"b bf16[{batch}, 5]",
            f"c f32[{batch}, 5]",
        ]
        for name, want in zip("abc", built["jit"](x, y), strict=True):
            assert_same_bits(read_output(tmp_path / "o" / f"{name}.npy"), want)


def test_executable_reads_what_np_load_gives_back_and_names_wrong_dtypes(built, tmp_path):
    x, y = inputs(2, 0)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y)
    void = np.load(tmp_path / "y.npy")  # numpy's view of a bf16 file: 2-byte void
    assert void.dtype.kind == "V"
    np.save(tmp_path / "y2.npy", void)  # now '|V2'
    done = run_exe(built["exe"], tmp_path / "o", tmp_path / "x.npy", tmp_path / "y2.npy")
    assert done.returncode == 0, done.stderr
    assert_same_bits(read_output(tmp_path / "o" / "b.npy"), built["jit"](x, y)[1])
    np.save(tmp_path / "x32.npy", x.astype(np.float32))
    done = run_exe(built["exe"], tmp_path / "o", tmp_path / "x32.npy", tmp_path / "y.npy")
    assert done.returncode == 1
    assert "error[E0603]: input `x`" in done.stderr and "expected f16 (<f2)" in done.stderr
    np.save(tmp_path / "y16.npy", y.astype(np.float16))
    done = run_exe(built["exe"], tmp_path / "o", tmp_path / "x.npy", tmp_path / "y16.npy")
    assert done.returncode == 1
    assert "error[E0603]: input `y`" in done.stderr and "expected bf16 (<V2)" in done.stderr


def test_shared_library_takes_and_gives_16_bit_arrays(built):
    lib = ctypes.CDLL(str(built["so"]))
    fn = {n: getattr(lib, f"h_{n}") for n in ("create", "destroy", "run", "input_dtype")}
    fn["create"].argtypes = [ctypes.c_char_p, ctypes.c_int, ctypes.POINTER(ctypes.c_void_p)]
    fn["destroy"].argtypes = [ctypes.c_void_p]
    fn["run"].argtypes = [ctypes.c_void_p] * 6
    assert [fn["input_dtype"](i) for i in (0, 1)] == [6, 7]  # MDL_F16, MDL_BF16
    ctx = ctypes.c_void_p()
    assert fn["create"](None, 2, ctypes.byref(ctx)) == 0
    try:
        x, y = inputs(7, 3)
        dims = [np.array(a.shape, np.int64) for a in (x, y)]
        want = built["jit"](x, y)
        outs = [np.zeros_like(w) for w in want]
        pointers = (ctypes.c_void_p * 2)(x.ctypes.data, y.ctypes.data)
        dim_ptrs = (ctypes.c_void_p * 2)(*[d.ctypes.data for d in dims])
        out_ptrs = (ctypes.c_void_p * 3)(*[o.ctypes.data for o in outs])
        capacity = np.array([o.size for o in outs], np.int64)
        rc = fn["run"](ctx, pointers, dim_ptrs, out_ptrs, capacity.ctypes.data, None)
        assert rc == 0
        for got, w in zip(outs, want, strict=True):
            assert_same_bits(got, w)
    finally:
        fn["destroy"](ctx)
