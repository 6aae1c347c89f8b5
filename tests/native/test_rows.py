"""Row kernels: softmax, log-softmax, layer norm and RMS norm become one kernel each, with no
buffer for their intermediate values, and give the bits of the unfused kernels (the
reference within f32 rtol 1e-5 / atol 1e-6; f16/bf16 within their own rounding)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mdl import driver
from mdl.backend.jit import NativeModel
from mdl.backend.lower import lower
from mdl.backend.rowplan import plan_rows

ROOT = Path(__file__).resolve().parents[2]

BODIES = {
    "softmax": "return nn.softmax(x)",
    "softmax_axis0": "return nn.softmax[axis=0](x)",
    "softmax_axis1": "return nn.softmax[axis=1](x)",
    "log_softmax": "return nn.log_softmax(x)",
    "layer_norm": "let ln = nn.LayerNorm[D]\n    return ln(x)",
    "rms_norm": "let n = nn.RMSNorm[D]\n    return n(x)",
    "scaled_masked_softmax": "return nn.softmax(x * 0.125 + where(x > 1.5, -1e30, 0.0))",
    "min_centered": "return exp(x - min(x, axis=-1, keep=true)) * prod(x, axis=-1, keep=true)",
}


def _model(tmp_path: Path, body: str, dtype: str = "f32", d: int = 37) -> Path:
    path = tmp_path / "m.mdl"
    path.write_text(
        f"import nn\n\nmodel M[D = {d}](x: {dtype}[B, 3, D]) -> {dtype}[B, 3, D] {{\n"
        f"    {body}\n}}\n"
    )
    return path


def _kernels(path: Path) -> list[str]:
    return [k.name for k in lower(driver.compile_model(str(path)).graph).kernels]


def _run_all(path: Path, x: np.ndarray, threads: int = 1):
    graph = driver.compile_model(str(path)).graph
    weights = driver.init_weights(graph, seed=2, random=True)
    fused = NativeModel(graph, weights, cache=False, threads=threads).run({"x": x})["output"]
    plain = NativeModel(graph, weights, cache=False, fuse=False).run({"x": x})["output"]
    ref = driver.run_reference(graph, weights, {"x": x})["output"]
    return fused, plain, ref


@pytest.mark.parametrize("name", sorted(BODIES))
@pytest.mark.parametrize("d", [1, 7, 37])
def test_row_kernels_equal_unfused_bitwise_and_the_reference(tmp_path, name, d):
    path = _model(tmp_path, BODIES[name], d=d)
    rows = [k for k in _kernels(path) if "/rows_" in k or k.startswith("rows_")]
    assert len(rows) == 1, _kernels(path)
    x = np.random.default_rng(d).standard_normal((5, 3, d)).astype(np.float32)
    fused, plain, ref = _run_all(path, x)
    assert fused.tobytes() == plain.tobytes()
    np.testing.assert_allclose(fused, ref, rtol=1e-5, atol=1e-6)


def test_one_kernel_and_no_buffers_for_the_intermediates(tmp_path):
    for name in ("softmax", "layer_norm", "log_softmax"):
        path = _model(tmp_path, BODIES[name])
        program = lower(driver.compile_model(str(path)).graph)
        assert len(program.kernels) == 1, [k.name for k in program.kernels]
        assert [b.role for b in program.buffers if b.role == "temp"] == []


def test_softmax_stashes_exp_and_layer_norm_stashes_nothing(tmp_path):
    def region(name):
        graph = driver.compile_model(str(_model(tmp_path, BODIES[name]))).graph
        (r,) = plan_rows(graph).regions.values()
        return r

    soft = region("softmax")
    assert soft.stash is not None and soft.axes == (2,)
    assert [n.op for n in soft.nodes] == ["reduce_max", "sub", "exp", "reduce_sum", "div"]
    norm = region("layer_norm")
    assert norm.stash is None and norm.axes == (2,)
    assert sum(n.op == "reduce_mean" for n in norm.nodes) == 2


def test_nan_and_inf_rows_as_the_reference(tmp_path):
    path = _model(tmp_path, BODIES["softmax"], d=4)
    x = np.zeros((2, 3, 4), np.float32)
    x[0, 0] = [np.inf, 1.0, 2.0, 3.0]  # inf - inf: nan
    x[0, 1] = [-np.inf] * 4  # every element -inf: nan
    x[0, 2] = [np.nan, 0.0, 0.0, 0.0]
    x[1, 0] = [-np.inf, 0.0, 0.0, 0.0]  # exactly zero weight
    x[1, 1] = [1e30, -1e30, 0.0, 0.0]
    fused, plain, ref = _run_all(path, x)
    assert fused.tobytes() == plain.tobytes()
    np.testing.assert_array_equal(np.isnan(fused), np.isnan(ref))
    np.testing.assert_allclose(fused, ref, rtol=1e-6, atol=0)


@pytest.mark.parametrize("dtype", ["f16", "bf16", "f64"])
def test_other_float_dtypes(tmp_path, dtype):
    body = "let e = exp(x - max(x, axis=-1, keep=true))\n    return e / sum(e, axis=-1, keep=true)"
    path = _model(tmp_path, body, dtype=dtype, d=19)
    graph = driver.compile_model(str(path)).graph
    numpy_dtype = graph.inputs[0].value.type.dtype.numpy
    x = np.random.default_rng(0).standard_normal((4, 3, 19)).astype(numpy_dtype)
    fused, plain, ref = _run_all(path, x)
    assert fused.tobytes() == plain.tobytes()
    if dtype == "f64":  # numpy's f64 exp and pairwise sums differ from ours in the last bit
        np.testing.assert_allclose(fused, ref, rtol=1e-14, atol=0)
    else:  # computed in f32 and rounded once: the reference's bits
        assert fused.tobytes() == ref.tobytes()


def test_two_threads_give_the_same_bits(tmp_path):
    path = _model(tmp_path, BODIES["layer_norm"], d=300)
    x = np.random.default_rng(1).standard_normal((400, 3, 300)).astype(np.float32)
    one, _, _ = _run_all(path, x, threads=1)
    two, _, _ = _run_all(path, x, threads=2)
    assert one.tobytes() == two.tobytes()


def test_regions_stop_where_values_escape_or_axes_differ(tmp_path):
    path = tmp_path / "m.mdl"
    path.write_text("""
model M(x: f32[B, 8]) -> (y: f32[B, 8], m: f32[B, 1], z: f32[B, 8]) {
    let m = max(x, axis=-1, keep=true)   # a model output: stays a buffer
    let y = exp(x - m)
    let s = sum(x, axis=0, keep=true)     # other axis: its own kernel
    let z = x / s - mean(x, axis=-1, keep=true)
    return y, m, z
}
""")
    graph = driver.compile_model(str(path)).graph
    plan = plan_rows(graph)
    ops = sorted(sorted(n.op for n in r.nodes) for r in plan.regions.values())
    assert ops == [["div", "reduce_mean", "sub"]]  # z's row region; y has no reduction left
    x = np.random.default_rng(3).standard_normal((6, 8)).astype(np.float32)
    weights: dict = {}
    fused = NativeModel(graph, weights, cache=False).run({"x": x})
    plain = NativeModel(graph, weights, cache=False, fuse=False).run({"x": x})
    for k in fused:
        assert fused[k].tobytes() == plain[k].tobytes()
