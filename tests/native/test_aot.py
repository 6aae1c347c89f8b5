"""`mdlc build`: executables, shared libraries + headers, objects, IR and assembly.

Artifacts are built once per module for `--cpu native`, so that their outputs
must equal the JIT's bit for bit; the determinism test builds the portable
default twice in fresh processes with the cache off.
"""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import mdl
from mdl import driver
from mdl.backend import aot
from mdl.backend.aot_c import dim_c
from mdl.dims import Dim
from mdl.weights import write_safetensors

ROOT = Path(__file__).resolve().parents[2]
DIGITS = ROOT / "examples" / "digits.mdl"
DIGITS_W = ROOT / "examples" / "digits.safetensors"
DIGITS_X = ROOT / "examples" / "inputs" / "digits.npy"
DEMO = ROOT / "examples" / "c" / "digits_demo.c"

TAGGER = """\
import nn

model Tagger[V = 11, D = 5](ids: i64[B, T] in 0..V, w: f32[T]) -> (emb: f32[B, T, D], total: f32[B, D], hits: i64[B]) {
    let tok = nn.Embedding[V, D]
    let e = tok(ids)
    return (e, sum(e * w.reshape(T, 1), axis=1), sum(ids, axis=1))
}
"""

GATHER = """\
import nn

model G(ids: i64[N]) -> f32[N, 3] {
    let e = nn.Embedding[4, 3]
    return e(ids)
}
"""

CONV = """\
import nn

model Conv(x: f32[B, 2, H, W]) -> f32[B, 4, _, _] {
    let conv = nn.Conv2d[2, 3, 3, padding=1]
    let bn = nn.BatchNorm2d[3]
    let down = nn.Conv2d[3, 4, 3, stride=2, padding=1]
    return down(nn.relu(bn(conv(x))))
}
"""

pytestmark = pytest.mark.skipif(
    sys.platform != "linux" or aot.shutil.which("cc") is None, reason="needs Linux and cc"
)


def mdlc(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "MDL_NO_CACHE": "1", "NO_COLOR": "1"}
    return subprocess.run(
        [sys.executable, "-m", "mdl.cli", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=300,
    )


def build(graph, weights, out: Path, kind: str, **kw) -> Path:
    driver.build_artifact(graph, weights, str(out), emit_kind=kind, cpu="native", **kw)
    return out


@pytest.fixture(scope="module")
def art(tmp_path_factory):
    """Every artifact the tests use, built once."""
    d = tmp_path_factory.mktemp("aot")
    digits = driver.compile_model(str(DIGITS)).graph
    digits_w, _ = driver.load_weights(digits, str(DIGITS_W))
    (d / "tagger.mdl").write_text(TAGGER)
    tagger = driver.compile_model(str(d / "tagger.mdl")).graph
    tagger_w = driver.init_weights(tagger, seed=3, random=True)
    write_safetensors(str(d / "tagger.safetensors"), tagger_w)
    (d / "gather.mdl").write_text(GATHER)
    gather = driver.compile_model(str(d / "gather.mdl")).graph
    (d / "conv.mdl").write_text(CONV)
    conv = driver.compile_model(str(d / "conv.mdl")).graph
    conv_w = driver.init_weights(conv, seed=5, random=True)
    for sub in ("side", "side_so", "obj"):
        (d / sub).mkdir()
    return {
        "dir": d,
        "digits_exe": build(digits, digits_w, d / "digits", "exe"),
        "digits_so": build(digits, digits_w, d / "libdigits.so", "shared"),
        "digits_o": build(digits, digits_w, d / "obj" / "digits.o", "object"),
        "tagger_exe": build(tagger, tagger_w, d / "tagger", "exe"),
        "tagger_so": build(tagger, tagger_w, d / "libtagger.so", "shared"),
        "tagger_side": build(
            tagger, tagger_w, d / "side" / "tagger", "exe", weights_mode="sidecar"
        ),
        "tagger_side_so": build(
            tagger, tagger_w, d / "side_so" / "libtagside.so", "shared", weights_mode="sidecar"
        ),
        "gather_exe": build(gather, driver.init_weights(gather), d / "gather", "exe"),
        "conv_exe": build(conv, conv_w, d / "conv", "exe"),
        "conv_jit": mdl.load(str(d / "conv.mdl"), weights=conv_w, backend="native"),
        "digits_jit": mdl.load(str(DIGITS), weights=str(DIGITS_W), backend="native"),
        "tagger_jit": mdl.load(
            str(d / "tagger.mdl"), weights=str(d / "tagger.safetensors"), backend="native"
        ),
    }


def run_exe(exe: Path, *inputs: Path, out: Path | None = None) -> subprocess.CompletedProcess:
    args = [str(exe), *(["--out", str(out)] if out else []), *map(str, inputs)]
    return subprocess.run(args, capture_output=True, text=True, timeout=60)


def tagger_inputs(batch: int = 3, t: int = 4, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, 11, (batch, t)).astype(np.int64)
    return ids, rng.standard_normal(t).astype(np.float32)


def assert_same_bits(a: np.ndarray, b: np.ndarray) -> None:
    assert a.dtype == b.dtype and a.shape == b.shape
    assert a.tobytes() == b.tobytes()


# ---------------------------------------------------------------- executable


def test_exe_digits_matches_jit_bit_for_bit(art, tmp_path):
    done = run_exe(art["digits_exe"], DIGITS_X, out=tmp_path / "o")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "output f32[2, 10]\n"
    want = art["digits_jit"](np.load(DIGITS_X))
    assert_same_bits(np.load(tmp_path / "o" / "output.npy"), want)


@pytest.mark.parametrize("version", [(2, 0), (3, 0)])
def test_exe_reads_npy_format_2_and_3(art, tmp_path, version):
    x = np.load(DIGITS_X)
    with open(tmp_path / "x.npy", "wb") as f:
        np.lib.format.write_array(f, x, version=version)
    done = run_exe(art["digits_exe"], tmp_path / "x.npy", out=tmp_path)
    assert done.returncode == 0, done.stderr
    assert_same_bits(np.load(tmp_path / "output.npy"), art["digits_jit"](x))


def test_exe_tagger_matches_jit_with_symbolic_dims(art, tmp_path):
    for batch, t in ((3, 4), (1, 7), (5, 1)):
        ids, w = tagger_inputs(batch, t, seed=batch)
        np.save(tmp_path / "ids.npy", ids)
        np.save(tmp_path / "w.npy", w)
        out = tmp_path / f"o{batch}"
        done = run_exe(art["tagger_exe"], tmp_path / "ids.npy", tmp_path / "w.npy", out=out)
        assert done.returncode == 0, done.stderr
        assert done.stdout.splitlines() == [
            f"emb f32[{batch}, {t}, 5]",
            f"total f32[{batch}, 5]",
            f"hits i64[{batch}]",
        ]
        for name, want in zip(("emb", "total", "hits"), art["tagger_jit"](ids, w), strict=True):
            assert_same_bits(np.load(out / f"{name}.npy"), want)


def test_exe_conv_with_folded_batchnorm_and_floor_division_dims(art, tmp_path):
    rng = np.random.default_rng(1)
    for shape in ((2, 2, 7, 10), (1, 2, 1, 4)):
        x = rng.standard_normal(shape).astype(np.float32)
        np.save(tmp_path / "x.npy", x)
        done = run_exe(art["conv_exe"], tmp_path / "x.npy", out=tmp_path)
        assert done.returncode == 0, done.stderr
        want = art["conv_jit"](x)
        assert done.stdout == f"output f32[{', '.join(map(str, want.shape))}]\n"
        assert_same_bits(np.load(tmp_path / "output.npy"), want)


def _bad_digits(tmp_path: Path, case: str) -> Path:
    x = np.load(DIGITS_X)
    path = tmp_path / f"{case}.npy"
    match case:
        case "dtype":
            np.save(path, x.astype(np.float64))
        case "rank":
            np.save(path, x[0])
        case "dim":
            np.save(path, x[:, :63])
        case "fortran":
            np.save(path, np.asfortranarray(x.reshape(2, 64)))
        case "truncated":
            np.save(path, x)
            path.write_bytes(path.read_bytes()[:-10])
        case "text":
            path.write_text("not numpy\n")
    return path


@pytest.mark.parametrize(
    ("case", "words"),
    [
        ("dtype", ["E0603", "`x`", "float64", "f32"]),
        ("rank", ["E0604", "`x`", "rank 1", "expected rank 2"]),
        ("dim", ["E0605", "`x`", "size 63", "axis 1", "expected 64"]),
        ("fortran", ["E0608", "`x`", "Fortran"]),
        ("truncated", ["E0608", "`x`", "truncated"]),
        ("text", ["E0608", "`x`", "not a .npy file"]),
    ],
)
def test_exe_rejects_bad_inputs_with_one_line(art, tmp_path, case, words):
    done = run_exe(art["digits_exe"], _bad_digits(tmp_path, case), out=tmp_path / "o")
    assert done.returncode == 1
    assert done.stdout == ""
    assert len(done.stderr.splitlines()) == 1, done.stderr
    for word in words:
        assert word in done.stderr, (word, done.stderr)
    assert not (tmp_path / "o").exists()


def test_exe_rejects_out_of_range_ids(art, tmp_path):
    ids, w = tagger_inputs()
    ids[2, 1] = 11
    np.save(tmp_path / "ids.npy", ids)
    np.save(tmp_path / "w.npy", w)
    done = run_exe(art["tagger_exe"], tmp_path / "ids.npy", tmp_path / "w.npy")
    assert done.returncode == 1
    assert done.stderr.strip().endswith(
        "error[E0606]: input `ids` has value 11 at [2, 1], outside its declared range 0..11"
    )
    np.save(tmp_path / "w.npy", np.zeros(5, np.float32))  # T bound to 4 by `ids`
    done = run_exe(art["tagger_exe"], tmp_path / "ids.npy", tmp_path / "w.npy")
    assert done.returncode == 1
    assert "input `w` has size 5 on axis 0, expected T = 4" in done.stderr


@pytest.mark.parametrize(
    ("args", "word"),
    [
        ([], "expected 1 input file, got 0"),
        (["--bogus", "x.npy"], "unknown option `--bogus`"),
        (["a.npy", "b.npy"], "got 2"),
        (["--out"], "--out needs a folder"),
    ],
)
def test_exe_usage_errors_exit_2(art, args, word):
    done = subprocess.run([str(art["digits_exe"]), *args], capture_output=True, text=True)
    assert done.returncode == 2
    assert word in done.stderr
    assert "usage:" in done.stderr


def test_exe_help(art):
    done = subprocess.run([str(art["digits_exe"]), "--help"], capture_output=True, text=True)
    assert done.returncode == 0
    assert "x: f32[B, 64]" in done.stdout


def test_exe_reports_run_time_errors_of_the_model(art, tmp_path):
    np.save(tmp_path / "ids.npy", np.array([0, 9, 1]))
    done = run_exe(art["gather_exe"], tmp_path / "ids.npy")
    assert done.returncode == 1
    assert done.stderr.endswith("error[E0607]: index 9 out of range for axis 0 of size 4\n")
    assert len(done.stderr.splitlines()) == 1
    np.save(tmp_path / "ids.npy", np.array([3, 0]))
    assert run_exe(art["gather_exe"], tmp_path / "ids.npy", out=tmp_path).returncode == 0


# ---------------------------------------------------------------- sidecar weights


def test_sidecar_weights_are_checked(art, tmp_path):
    exe = art["tagger_side"]
    sidecar = exe.parent / "tagger.weights.safetensors"
    assert sidecar.is_file()
    assert exe.stat().st_size < art["tagger_exe"].stat().st_size + 4096
    ids, w = tagger_inputs()
    np.save(tmp_path / "ids.npy", ids)
    np.save(tmp_path / "w.npy", w)
    done = run_exe(exe, tmp_path / "ids.npy", tmp_path / "w.npy", out=tmp_path / "o")
    assert done.returncode == 0, done.stderr
    assert_same_bits(np.load(tmp_path / "o" / "emb.npy"), art["tagger_jit"](ids, w)[0])
    original = sidecar.read_bytes()
    try:
        tampered = bytearray(original)
        tampered[-3] ^= 0x40
        sidecar.write_bytes(bytes(tampered))
        done = run_exe(exe, tmp_path / "ids.npy", tmp_path / "w.npy")
        assert done.returncode == 1
        assert len(done.stderr.splitlines()) == 1
        assert (
            "error[E0502]" in done.stderr
            and "not the ones this model was built with" in done.stderr
        )
        sidecar.unlink()
        done = run_exe(exe, tmp_path / "ids.npy", tmp_path / "w.npy")
        assert done.returncode == 1 and "error[E0501]: cannot open weights" in done.stderr
    finally:
        sidecar.write_bytes(original)


def test_shared_library_sidecar_create(art, tmp_path):
    lib = ctypes.CDLL(str(art["tagger_side_so"]))
    create, last_error = lib.tagside_create, lib.tagside_last_error
    create.argtypes = [ctypes.c_char_p, ctypes.c_int, ctypes.POINTER(ctypes.c_void_p)]
    last_error.restype = ctypes.c_char_p
    last_error.argtypes = [ctypes.c_void_p]
    lib.tagside_destroy.argtypes = [ctypes.c_void_p]
    ctx = ctypes.c_void_p()
    assert create(None, 2, ctypes.byref(ctx)) == 0, last_error(None)  # found beside the library
    lib.tagside_destroy(ctx)
    sidecar = art["tagger_side_so"].parent / "tagside.weights.safetensors"
    copy = tmp_path / "w.safetensors"
    copy.write_bytes(sidecar.read_bytes())
    assert create(str(copy).encode(), 0, ctypes.byref(ctx)) == 0
    lib.tagside_destroy(ctx)
    data = bytearray(copy.read_bytes())
    data[200] ^= 1
    copy.write_bytes(bytes(data))
    assert create(str(copy).encode(), 0, ctypes.byref(ctx)) == 6 and ctx.value is None
    assert last_error(None).decode().startswith(f"E0502: weights `{copy}` are not the ones")
    assert create(str(copy).encode() + b".missing", 0, ctypes.byref(ctx)) == 6
    assert b"E0501: cannot open weights" in last_error(None)
    assert create(None, -1, ctypes.byref(ctx)) == 1 and b"threads" in last_error(None)
    embedded = ctypes.CDLL(str(art["tagger_so"]))
    embedded.tagger_create.argtypes = create.argtypes
    assert embedded.tagger_create(str(copy).encode(), 0, ctypes.byref(ctx)) == 1


# ---------------------------------------------------------------- shared library


class Library:
    """The context API of a shared library through ctypes."""

    def __init__(self, path: Path, prefix: str, jit, threads: int = 1):
        self.lib = ctypes.CDLL(str(path))
        self.p = prefix
        self.jit = jit
        fn = self.fn
        fn("create").argtypes = [ctypes.c_char_p, ctypes.c_int, ctypes.POINTER(ctypes.c_void_p)]
        fn("last_error").restype = ctypes.c_char_p
        fn("last_error").argtypes = [ctypes.c_void_p]
        fn("destroy").argtypes = [ctypes.c_void_p]
        fn("run").argtypes = [ctypes.c_void_p] * 6
        fn("output_dims").argtypes = [ctypes.c_void_p] * 3
        self.ctx = ctypes.c_void_p()
        assert fn("create")(None, threads, ctypes.byref(self.ctx)) == 0

    def fn(self, name: str):
        return getattr(self.lib, f"{self.p}_{name}")

    def error(self) -> str:
        return self.fn("last_error")(self.ctx).decode()

    def run(self, inputs, dims=None, capacity=None, outputs=None, raw_inputs=None):
        graph = self.jit.graph
        dims = dims or [list(x.shape) for x in inputs]
        dim_arrays = [np.array(d or [0], dtype=np.int64) for d in dims]
        in_dims = (ctypes.c_void_p * len(inputs))(*[a.ctypes.data for a in dim_arrays])
        ptrs = raw_inputs or [x.ctypes.data for x in inputs]
        in_ptrs = (ctypes.c_void_p * len(inputs))(*ptrs)
        n = len(graph.outputs)
        out_dims = [np.zeros(max(1, len(v.type.shape)), np.int64) for _, v in graph.outputs]
        od = (ctypes.c_void_p * n)(*[a.ctypes.data for a in out_dims])
        rc = self.fn("output_dims")(self.ctx, in_dims, od)
        if rc:
            return rc, None
        if outputs is None:
            outputs = [
                np.zeros(d[: len(v.type.shape)], v.type.dtype.numpy)
                for d, (_, v) in zip(out_dims, graph.outputs, strict=True)
            ]
        cap = np.array(capacity or [o.size for o in outputs], dtype=np.int64)
        out_ptrs = (ctypes.c_void_p * n)(*[o.ctypes.data for o in outputs])
        rc = self.fn("run")(self.ctx, in_ptrs, in_dims, out_ptrs, cap.ctypes.data, None)
        return rc, outputs


@pytest.fixture(scope="module")
def tagger_lib(art):
    lib = Library(art["tagger_so"], "tagger", art["tagger_jit"])
    yield lib
    lib.fn("destroy")(lib.ctx)


def test_shared_library_matches_jit(art, tagger_lib):
    for batch, t in ((2, 3), (4, 9), (1, 1)):
        ids, w = tagger_inputs(batch, t, seed=t)
        rc, outs = tagger_lib.run([ids, w])
        assert rc == 0, tagger_lib.error()
        for got, want in zip(outs, art["tagger_jit"](ids, w), strict=True):
            assert_same_bits(got, want)
    digits = Library(art["digits_so"], "digits", art["digits_jit"])
    x = np.load(DIGITS_X)
    rc, outs = digits.run([x])
    assert rc == 0
    assert_same_bits(outs[0], art["digits_jit"](x))
    digits.fn("destroy")(digits.ctx)


def test_shared_library_threads_give_the_same_bits(art):
    x = np.random.default_rng(5).standard_normal((400, 64)).astype(np.float32)
    want = art["digits_jit"](x)
    for threads in (1, 2, 0):  # 0: every core
        lib = Library(art["digits_so"], "digits", art["digits_jit"], threads=threads)
        for _ in range(3):
            rc, outs = lib.run([x])
            assert rc == 0, lib.error()
            assert_same_bits(outs[0], want)
        lib.fn("destroy")(lib.ctx)


def test_shared_library_checks_every_argument(tagger_lib):
    ids, w = tagger_inputs(2, 3)
    rc, _ = tagger_lib.run([ids, w], dims=[[2, 3], [4]])
    assert rc == 2 and "input `w` has size 4 on axis 0, expected T = 3" in tagger_lib.error()
    rc, _ = tagger_lib.run([ids, w], dims=[[2, -3], [3]])
    assert rc == 2 and "axis 1" in tagger_lib.error()
    bad = ids.copy()
    bad[1, 2] = -1
    rc, _ = tagger_lib.run([bad, w])
    assert rc == 3
    assert tagger_lib.error() == (
        "E0606: input `ids` has value -1 at [1, 2], outside its declared range 0..11"
    )
    outs = [np.zeros((2, 3, 5), np.float32), np.zeros((2, 5), np.float32), np.zeros(2, np.int64)]
    rc, _ = tagger_lib.run([ids, w], outputs=outs, capacity=[30, 9, 2])
    assert rc == 4 and "output `total` needs 10 elements ([2, 5]), its buffer holds 9" in (
        tagger_lib.error()
    )
    rc, _ = tagger_lib.run([ids, w], raw_inputs=[ids.ctypes.data, 0])
    assert rc == 1 and "input `w` (f32[T]) is NULL" in tagger_lib.error()
    rc, _ = tagger_lib.run([ids, w], raw_inputs=[ids.ctypes.data + 1, w.ctypes.data])
    assert rc == 1 and "input `ids` is misaligned" in tagger_lib.error()
    rc, _ = tagger_lib.run([ids, w], outputs=[outs[0], outs[0], outs[2]], capacity=[30, 10, 2])
    assert rc == 1 and "output `total` overlaps output `emb`" in tagger_lib.error()
    rc, _ = tagger_lib.run([ids, w])
    assert rc == 0 and tagger_lib.error() == ""


def test_c_example_runs_two_contexts_in_two_threads(art, tmp_path):
    d = art["dir"]
    exe = tmp_path / "demo"
    cc = ["cc", "-O2", "-Wall", "-Werror", "-std=c11", f"-I{d}", str(DEMO)]
    done = subprocess.run(
        [*cc, f"-L{d}", "-ldigits", f"-Wl,-rpath,{d}", "-lpthread", "-o", str(exe)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    # the same program statically linked with the relocatable object (and its own header)
    static = tmp_path / "demo_static"
    obj = art["digits_o"]
    done = subprocess.run(
        ["cc", "-O2", "-std=c11", f"-I{obj.parent}", str(DEMO), str(obj), "-o", str(static)]
        + ["-lm", "-lpthread"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    outputs = []
    for program in (exe, static):
        done = subprocess.run([str(program)], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr
        outputs.append(done.stdout)
    assert outputs[0] == outputs[1]
    lines = outputs[0].splitlines()
    assert "thread 0: batch 3, 200 runs, identical" in lines
    assert "thread 1: batch 5, 200 runs, identical" in lines
    assert lines[-1].startswith("bad input: status 2: E0605: input `x` has size 63 on axis 1")
    for tid, batch in ((0, 3), (1, 5)):
        i = np.arange(batch)[:, None]
        j = np.arange(64)[None, :]
        x = (((tid + 1) * (i + 3) * (j + 7) + i * i) % 17).astype(np.float32) / np.float32(16)
        want = art["digits_jit"](x)
        rows = [ln.split() for ln in lines if ln.startswith(f"{tid} ")]
        got = np.array([[np.float32(v) for v in r[2:]] for r in rows], dtype=np.float32)
        assert_same_bits(got, want)


# ---------------------------------------------------------------- the other emits


def test_object_llvm_asm_and_header(art, tmp_path):
    nm = subprocess.run(["nm", str(art["digits_o"])], capture_output=True, text=True).stdout
    assert " T digits_run" in nm and " T digits_create" in nm
    assert " T main" not in nm
    graph = driver.compile_model(str(DIGITS)).graph
    weights, _ = driver.load_weights(graph, str(DIGITS_W))
    driver.build_artifact(graph, weights, str(tmp_path / "digits.ll"), emit_kind="llvm")
    driver.build_artifact(graph, weights, str(tmp_path / "digits.s"), emit_kind="asm")
    driver.build_artifact(graph, weights, str(tmp_path / "digits.h"), emit_kind="header")
    text = (tmp_path / "digits.ll").read_text()
    assert "define" in text and "@digits_mdl_entry" in text
    aot._llvm().parse_assembly(text).verify()
    assert "digits_mdl_entry:" in (tmp_path / "digits.s").read_text()
    assert (tmp_path / "digits.h").read_bytes() == (art["dir"] / "digits.h").read_bytes()


def test_artifacts_need_only_libc_libm_pthread(art):
    for path in (art["digits_exe"], art["digits_so"], art["tagger_so"]):
        dyn = subprocess.run(["readelf", "-d", str(path)], capture_output=True, text=True).stdout
        needed = {ln.split("[")[1].rstrip("]") for ln in dyn.splitlines() if "(NEEDED)" in ln}
        # ld-linux is glibc's own (thread-local storage of the create error)
        allowed = {"libc.so.6", "libm.so.6", "libpthread.so.0", "ld-linux-x86-64.so.2"}
        assert needed <= allowed, needed
        undefined = subprocess.run(
            ["nm", "-D", "--undefined-only", str(path)], capture_output=True, text=True
        ).stdout.split()
        names = [w for w in undefined if w not in ("U", "w")]
        # every symbol the artifact needs comes from glibc (a few weak hooks aside)
        weak = {"__gmon_start__", "_ITM_deregisterTMCloneTable", "_ITM_registerTMCloneTable"}
        foreign = [n for n in names if "@GLIBC_" not in n and n not in weak]
        assert not foreign, foreign
        if "digits" in path.name:  # softmax's f32 exp is inline code (vmath.py), not libm's
            assert not any(n.startswith(("expf@", "exp@")) for n in names), names
    for path in (art["digits_so"], art["tagger_so"]):
        exported = subprocess.run(
            ["nm", "-D", "--defined-only", str(path)], capture_output=True, text=True
        ).stdout.splitlines()
        names = [ln.split()[-1] for ln in exported if ln.strip()]
        assert names and all(n.startswith(path.name[3:-3] + "_") for n in names), names


_BUILD_TWICE = """
import sys
from mdl import driver
g = driver.compile_model(sys.argv[1]).graph
w, _ = driver.load_weights(g, sys.argv[2])
driver.build_artifact(g, w, sys.argv[3] + "/digits", emit_kind="exe")
driver.build_artifact(g, w, sys.argv[3] + "/libdigits.so", emit_kind="shared")
driver.build_artifact(g, w, sys.argv[3] + "/side/libdigits.so", emit_kind="shared", weights_mode="sidecar")
"""


def test_builds_are_byte_identical(tmp_path):
    env = {**os.environ, "MDL_NO_CACHE": "1"}
    for k in (1, 2):
        (tmp_path / str(k) / "side").mkdir(parents=True)
        done = subprocess.run(
            [
                sys.executable,
                "-c",
                _BUILD_TWICE,
                str(DIGITS),
                str(DIGITS_W),
                str(tmp_path / str(k)),
            ],
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp_path / str(k),
        )
        assert done.returncode == 0, done.stderr
    for name in (
        "digits",
        "libdigits.so",
        "digits.h",
        "side/libdigits.so",
        "side/digits.h",
        "side/digits.weights.safetensors",
    ):
        assert (tmp_path / "1" / name).read_bytes() == (tmp_path / "2" / name).read_bytes(), name


# ---------------------------------------------------------------- the command and helpers


def test_mdlc_build_command(tmp_path):
    out = tmp_path / "libdigits.so"
    done = mdlc("build", DIGITS, "--weights", DIGITS_W, "-o", out, "--emit", "shared")
    assert done.returncode == 0, done.stderr
    assert out.is_file() and (tmp_path / "digits.h").is_file()
    assert f"wrote {out} (shared)" in done.stderr
    done = mdlc("build", DIGITS, "--weights", DIGITS_W, "-o", tmp_path / "x", "--cpu", "nonsense")
    assert done.returncode == 2 and "unknown CPU `nonsense`" in done.stderr
    done = mdlc("build", DIGITS, "--weights", DIGITS_W, "-o", tmp_path)
    assert done.returncode == 2 and "is a folder" in done.stderr
    done = mdlc("build", DIGITS, "--weights", tmp_path / "none.safetensors", "-o", tmp_path / "x")
    assert done.returncode == 1 and "E0501" in done.stderr


def test_dim_formulas_in_c_floor_like_python(tmp_path):
    b, h = Dim.sym("B"), Dim.sym("H")
    dims = [(h + 2 - 3) // 2 + 1, (b * h - 7) // b, 3 * b * b - h, (h - 10) // 3 * b + 4, Dim.of(5)]
    syms = {"B": 0, "H": 1}
    envs = [(3, -5), (2, 7), (7, 0), (1, -1)]
    lines = [
        "#include <stdio.h>",
        '#include "mdl_rt.h"',
        "int main(void) {",
        "    int o_ = 0, *o = &o_;",
    ]
    for bv, hv in envs:
        lines.append(f"    {{ const int64_t s[2] = {{{bv}, {hv}}};")
        for d in dims:
            lines.append(f'      printf("%lld\\n", (long long)({dim_c(d, syms)}));')
        lines.append("    }")
    lines += ["    return o_;", "}"]
    (tmp_path / "t.c").write_text("\n".join(lines) + "\n")
    exe = tmp_path / "t"
    done = subprocess.run(
        ["cc", "-std=gnu11", f"-I{aot.RUNTIME}", str(tmp_path / "t.c"), "-o", str(exe)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    got = subprocess.run([str(exe)], capture_output=True, text=True).stdout.split()
    want = [str(d.evaluate({"B": bv, "H": hv})) for bv, hv in envs for d in dims]
    assert got == want
