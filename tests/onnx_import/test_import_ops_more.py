"""The ops added for the ONNX node suite, one onnx.helper graph each: imported, run on the
reference interpreter and natively, each compared with numpy written here from the ONNX
spec (not with the importer's own formulas)."""

from __future__ import annotations

from pathlib import Path

import ml_dtypes
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import mdl
from mdl.onnx_import import import_onnx

F, D, I64, B, BF16 = (TensorProto.FLOAT, TensorProto.DOUBLE, TensorProto.INT64, TensorProto.BOOL,
                      TensorProto.BFLOAT16)  # fmt: skip
rng = np.random.default_rng(11)
# the ops whose only cases are here (test_import_ops.py checks every op has one somewhere)
COVERED_OPS = {"Attention", "NegativeLogLikelihoodLoss", "SoftmaxCrossEntropyLoss",
               "GatherElements", "CumSum", "Hardmax", "DepthToSpace", "SpaceToDepth", "EyeLike",
               "OneHot", "LpNormalization", "Round", "Shrink"}  # fmt: skip


def model(op: str, inputs: dict[str, tuple[int, list]], outputs: dict[str, tuple[int, list]],
          attrs: dict | None = None, inits: dict[str, np.ndarray] | None = None,
          opset: int = 23) -> onnx.ModelProto:  # fmt: skip
    """One node reading `inputs` then `inits` (names in that order, "" for absent)."""
    names = [*inputs, *(inits or {})]
    node = helper.make_node(op, names, list(outputs), name=f"/{op}", **(attrs or {}))
    graph = helper.make_graph(
        [node], "g",
        [helper.make_tensor_value_info(k, t, s) for k, (t, s) in inputs.items()],
        [helper.make_tensor_value_info(k, t, s) for k, (t, s) in outputs.items()],
        [numpy_helper.from_array(v, k) for k, v in (inits or {}).items()],
    )  # fmt: skip
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 10
    return m


def run(m: onnx.ModelProto, tmp: Path, feeds: dict[str, np.ndarray]) -> dict[str, list]:
    """Import `m`; its outputs on both backends, in ONNX output order."""
    path = tmp / "m.onnx"
    onnx.save(m, path)
    diags = import_onnx(str(path), str(tmp / "m.mdl"))
    assert diags == [], [str(d) for d in diags] + [n for d in diags for n in d.notes]
    out = {}
    for backend in ("ref", "native"):
        loaded = mdl.load(str(tmp / "m.mdl"), str(tmp / "m.safetensors"), backend=backend)
        got = loaded.run(feeds)
        out[backend] = [np.asarray(got[o.name]) for o in m.graph.output]
    return out


def check(m: onnx.ModelProto, tmp: Path, feeds: dict, *expected: np.ndarray,
          rtol: float = 1e-5, atol: float = 1e-6) -> None:  # fmt: skip
    for backend, got in run(m, tmp, feeds).items():
        assert len(got) == len(expected), backend
        for g, e in zip(got, expected, strict=True):
            assert g.dtype == e.dtype and g.shape == e.shape, (backend, g.dtype, g.shape, e.shape)
            np.testing.assert_allclose(g.astype(np.float64), e.astype(np.float64), rtol=rtol,
                                       atol=atol, err_msg=backend)  # fmt: skip


def normal(*shape: int) -> np.ndarray:
    return rng.normal(size=shape).astype(np.float32)


# ---------------------------------------------------------------- attention


def attention_numpy(q, k, v, mask=None, causal=False, scale=None, softcap=0.0, past=0):
    """Scaled dot-product attention on [B, H, S, D] tensors; kv heads repeat for GQA; a
    bool mask keeps True; causal: query i sees keys up to i + past (the cached keys); a
    row that attends to nothing is 0."""
    q, k, v = (a.astype(np.float64) for a in (q, k, v))
    reps = q.shape[1] // k.shape[1]
    k, v = np.repeat(k, reps, axis=1), np.repeat(v, reps, axis=1)
    scale = 1 / np.sqrt(q.shape[-1]) if scale is None else scale
    scores = np.einsum("bhqd,bhkd->bhqk", q, k) * scale
    if softcap:
        scores = softcap * np.tanh(scores / softcap)
    allowed = np.ones(scores.shape[-2:], bool)
    if causal:
        allowed = np.tril(allowed, k=past)
    if mask is not None:
        allowed = allowed & mask
    scores = np.where(allowed, scores, -np.inf)
    peak = scores.max(-1, keepdims=True)
    e = np.exp(scores - np.where(np.isfinite(peak), peak, 0))
    total = e.sum(-1, keepdims=True)
    probs = np.where(total > 0, e / np.where(total > 0, total, 1), 0)
    return np.einsum("bhqk,bhkd->bhqd", probs, v).astype(np.float32)


def test_attention_gqa_causal_with_a_short_bool_mask(tmp_path: Path) -> None:
    q, k, v = normal(2, 4, 3, 8), normal(2, 2, 5, 8), normal(2, 2, 5, 6)
    mask = rng.random((3, 4)) > 0.3
    mask[1] = False  # a row that attends to nothing
    m = model("Attention", {"q": (F, [2, 4, 3, 8]), "k": (F, [2, 2, 5, 8]),
                            "v": (F, [2, 2, 5, 6]), "mask": (B, [3, 4])},
              {"y": (F, [2, 4, 3, 6])}, attrs={"is_causal": 1})  # fmt: skip
    padded = np.concatenate([mask, np.zeros((3, 1), bool)], axis=1)  # padded with "masked"
    want = attention_numpy(q, k, v, padded, causal=True)
    check(m, tmp_path, {"q": q, "k": k, "v": v, "mask": mask}, want)


def test_attention_3d_heads_softcap_scale_and_causal_cache(tmp_path: Path) -> None:
    q, k, v = normal(1, 3, 8), normal(1, 2, 8), normal(1, 2, 8)
    pk, pv = normal(1, 2, 4, 4), normal(1, 2, 4, 4)
    m = model("Attention", {"q": (F, [1, 3, 8]), "k": (F, [1, 2, 8]), "v": (F, [1, 2, 8]),
                            "": (F, []), "pk": (F, [1, 2, 4, 4]), "pv": (F, [1, 2, 4, 4])},
              {"y": (F, [1, 3, 8]), "present_k": (F, [1, 2, 6, 4]),
               "present_v": (F, [1, 2, 6, 4])},
              attrs={"q_num_heads": 2, "kv_num_heads": 2, "softcap": 2.0, "scale": 0.3,
                     "is_causal": 1})  # fmt: skip
    m.graph.input.pop(3)  # the absent mask
    heads = lambda a: a.reshape(1, a.shape[1], 2, 4).transpose(0, 2, 1, 3)  # noqa: E731
    kk = np.concatenate([pk, heads(k)], axis=2)
    vv = np.concatenate([pv, heads(v)], axis=2)
    y = attention_numpy(heads(q), kk, vv, causal=True, scale=0.3, softcap=2.0, past=4)
    want = y.transpose(0, 2, 1, 3).reshape(1, 3, 8)
    check(m, tmp_path, {"q": q, "k": k, "v": v, "pk": pk, "pv": pv}, want, kk, vv)


# ---------------------------------------------------------------- losses and indexing


def nll_numpy(logp, target, weight=None, ignore=None, reduction="mean"):
    n_classes = logp.shape[1]
    w = np.ones(n_classes, np.float64) if weight is None else weight.astype(np.float64)
    loss = np.zeros(target.shape)
    wt = np.zeros(target.shape)
    for idx in np.ndindex(target.shape):
        t = target[idx]
        if ignore is not None and t == ignore:
            continue
        loss[idx] = -logp[(idx[0], t, *idx[1:])] * w[t]
        wt[idx] = w[t]
    if reduction == "none":
        return loss.astype(np.float32)
    if reduction == "sum":
        return np.float32(loss.sum())
    return np.float32(loss.sum() / wt.sum())


def test_nll_loss_weighted_with_an_ignored_class(tmp_path: Path) -> None:
    x, t, w = normal(3, 5, 2), rng.integers(0, 5, (3, 2)), rng.random(5).astype(np.float32)
    t[0, 1] = 4
    m = model("NegativeLogLikelihoodLoss", {"x": (F, [3, 5, 2]), "t": (I64, [3, 2])},
              {"loss": (F, [])}, attrs={"ignore_index": 4}, inits={"w": w})  # fmt: skip
    check(m, tmp_path, {"x": x, "t": t}, nll_numpy(x, t, w, ignore=4))


def test_softmax_cross_entropy_with_log_prob_and_an_outside_ignore_index(tmp_path: Path) -> None:
    x, t = normal(4, 3), rng.integers(0, 3, (4,))
    t[2] = -1
    m = model("SoftmaxCrossEntropyLoss", {"x": (F, [4, 3]), "t": (I64, [4])},
              {"loss": (F, [4]), "log_prob": (F, [4, 3])},
              attrs={"ignore_index": -1, "reduction": "none"})  # fmt: skip
    shifted = x.astype(np.float64) - x.max(1, keepdims=True)
    logp = shifted - np.log(np.exp(shifted).sum(1, keepdims=True))
    check(m, tmp_path, {"x": x, "t": t}, nll_numpy(logp, t, ignore=-1, reduction="none"),
          logp.astype(np.float32))  # fmt: skip


def test_gather_elements_with_negative_indices(tmp_path: Path) -> None:
    x, idx = normal(3, 4), np.array([[0, -1], [2, 1], [-4, 3]], np.int64)
    m = model("GatherElements", {"x": (F, [3, 4]), "i": (I64, [3, 2])}, {"y": (F, [3, 2])},
              attrs={"axis": 1})  # fmt: skip
    want = np.array([[x[r, c % 4] for c in row] for r, row in enumerate(idx)], np.float32)
    check(m, tmp_path, {"x": x, "i": idx}, want)


# ---------------------------------------------------------------- element-wise and scans


def test_cumsum_exclusive_reverse_on_a_middle_axis(tmp_path: Path) -> None:
    x = normal(2, 4, 3)
    m = model("CumSum", {"x": (F, [2, 4, 3])}, {"y": (F, [2, 4, 3])},
              attrs={"exclusive": 1, "reverse": 1}, inits={"axis": np.array(1)})  # fmt: skip
    want = np.zeros_like(x)
    for i in range(4):
        want[:, i] = x[:, i + 1 :].sum(axis=1)
    check(m, tmp_path, {"x": x}, want)


def test_hardmax_picks_the_first_maximum(tmp_path: Path) -> None:
    x = np.array([[1, 3, 3, 0], [2, 2, 1, 1]], np.float32)
    m = model("Hardmax", {"x": (F, [2, 4])}, {"y": (F, [2, 4])}, attrs={"axis": 1})
    check(m, tmp_path, {"x": x}, np.array([[0, 1, 0, 0], [1, 0, 0, 0]], np.float32))


def test_argmax_select_last_index(tmp_path: Path) -> None:
    x = np.array([[1, 3, 3, 0], [2, 2, 1, 2]], np.float32)
    m = model("ArgMax", {"x": (F, [2, 4])}, {"y": (I64, [2])},
              attrs={"axis": 1, "keepdims": 0, "select_last_index": 1})  # fmt: skip
    check(m, tmp_path, {"x": x}, np.array([2, 3], np.int64))


@pytest.mark.parametrize("fmod", [0, 1])
def test_mod_signs(fmod: int, tmp_path: Path) -> None:
    a = np.array([5.5, -5.5, 5.5, -5.5, 3.0], np.float64)
    b = np.array([2.0, 2.0, -2.0, -2.0, 1.5], np.float64)
    m = model("Mod", {"a": (D, [5]), "b": (D, [5])}, {"y": (D, [5])}, attrs={"fmod": fmod},
              opset=28)  # fmt: skip
    # C's fmod keeps the dividend's sign; fmod=0 is Python's %, the divisor's
    want = np.array([1.5, -1.5, 1.5, -1.5, 0.0]) if fmod else np.array([1.5, 0.5, -0.5, -1.5, 0])
    check(m, tmp_path, {"a": a, "b": b}, want)


def test_elu_is_accurate_near_zero(tmp_path: Path) -> None:
    x = np.array([-1e-6, -3e-3, -2.0, 0.5], np.float32)
    m = model("Elu", {"x": (F, [4])}, {"y": (F, [4])}, attrs={"alpha": 0.5})
    want = np.array([0.5 * (-1e-6 + 5e-13), 0.5 * -0.0029955044966269995, 0.5 * -0.8646647167633873,
                     0.5], np.float32)  # fmt: skip
    check(m, tmp_path, {"x": x}, want, rtol=1e-6, atol=0)


def test_bf16_softmax_sums_in_bf16(tmp_path: Path) -> None:
    bf16 = ml_dtypes.bfloat16
    x = rng.normal(size=(3, 6)).astype(bf16)
    m = model("Softmax", {"x": (BF16, [3, 6])}, {"y": (BF16, [3, 6])})
    shifted = (x.astype(np.float32) - x.astype(np.float32).max(1, keepdims=True)).astype(bf16)
    e = np.exp(shifted.astype(np.float32)).astype(bf16)
    total = e[:, :1]
    for i in range(1, 6):  # one bf16 rounding per addition, left to right
        total = (total.astype(np.float32) + e[:, i : i + 1].astype(np.float32)).astype(bf16)
    want = (e.astype(np.float32) / total.astype(np.float32)).astype(bf16)
    check(m, tmp_path, {"x": x}, want, rtol=0, atol=0)


def test_reduce_max_of_bools_is_any(tmp_path: Path) -> None:
    x = np.array([[True, False], [False, False]])
    m = model("ReduceMax", {"x": (B, [2, 2])}, {"y": (B, [2])}, attrs={"keepdims": 0},
              inits={"axes": np.array([1])})  # fmt: skip
    check(m, tmp_path, {"x": x}, np.array([True, False]))


def test_backwards_slice(tmp_path: Path) -> None:
    x = normal(3, 5)
    m = model("Slice", {"x": (F, [3, 5])}, {"y": (F, [3, 2])},
              inits={"s": np.array([-1, 4]), "e": np.array([-100, 0]), "a": np.array([0, 1]),
                     "st": np.array([-1, -3])})  # fmt: skip
    check(m, tmp_path, {"x": x}, x[::-1][:, [4, 1]])


def test_an_old_opset_imports_ops_unchanged_since(tmp_path: Path) -> None:
    a, b = rng.random((2, 3)) > 0.5, rng.random((2, 3)) > 0.5
    m = model("Xor", {"a": (B, [2, 3]), "b": (B, [2, 3])}, {"y": (B, [2, 3])}, opset=7)
    m.ir_version = 3
    check(m, tmp_path, {"a": a, "b": b}, a ^ b)


def test_an_old_opset_with_a_changed_op_is_refused(tmp_path: Path) -> None:
    m = model("Clip", {"x": (F, [3])}, {"y": (F, [3])}, attrs={"min": 0.0}, opset=6)
    m.ir_version = 3
    onnx.save(m, tmp_path / "m.onnx")
    (d,) = import_onnx(str(tmp_path / "m.onnx"), str(tmp_path / "m.mdl"))
    assert d.code == "E1009" and "Clip" in d.message and "opset 6" in d.message


def test_cast_like_of_a_constant_folds_against_a_run_time_tensor(tmp_path: Path) -> None:
    x = normal(2, 3)
    nodes = [
        helper.make_node("Constant", [], ["v"], value=numpy_helper.from_array(np.float32(-1.5))),
        helper.make_node("CastLike", ["v", "x"], ["vx"]),
        helper.make_node("Pad", ["x", "pads", "vx"], ["y"]),
    ]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", D, [2, 3])],
                              [helper.make_tensor_value_info("y", D, [2, 4])],
                              [numpy_helper.from_array(np.array([0, 0, 0, 1]), "pads")])  # fmt: skip
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)])
    x64 = x.astype(np.float64)
    check(m, tmp_path, {"x": x64}, np.concatenate([x64, np.full((2, 1), -1.5)], axis=1))


# ---------------------------------------------------------------- rearranging and constructing


def test_depth_to_space_and_back(tmp_path: Path) -> None:
    x = normal(1, 8, 2, 3)
    m = model("DepthToSpace", {"x": (F, [1, 8, 2, 3])}, {"y": (F, [1, 2, 4, 6])},
              attrs={"blocksize": 2, "mode": "CRD"})  # fmt: skip
    want = np.zeros((1, 2, 4, 6), np.float32)
    for ch, i, j in np.ndindex(2, 4, 6):  # CRD: channel c*4 + (i%2)*2 + (j%2)
        want[0, ch, i, j] = x[0, ch * 4 + (i % 2) * 2 + (j % 2), i // 2, j // 2]
    check(m, tmp_path, {"x": x}, want)
    back = model("SpaceToDepth", {"x": (F, [1, 2, 4, 6])}, {"y": (F, [1, 8, 2, 3])},
                 attrs={"blocksize": 2, "mode": "CRD"})  # fmt: skip
    (tmp_path / "back").mkdir()
    check(back, tmp_path / "back", {"x": want}, x)


def test_eye_like_off_the_diagonal(tmp_path: Path) -> None:
    m = model("EyeLike", {"x": (I64, [3, 4])}, {"y": (D, [3, 4])}, attrs={"k": 1, "dtype": D})
    check(m, tmp_path, {"x": np.zeros((3, 4), np.int64)}, np.eye(3, 4, k=1))


def test_one_hot_with_negative_and_outside_indices(tmp_path: Path) -> None:
    idx = np.array([1, -1, 7], np.int64)
    m = model("OneHot", {"i": (I64, [3]), "v": (F, [2])}, {"y": (F, [4, 3])}, attrs={"axis": 0},
              inits={"depth": np.array(4.0, np.float32)})  # fmt: skip
    m.graph.node[0].input[:] = ["i", "depth", "v"]
    want = np.full((4, 3), -2.0, np.float32)
    want[1, 0] = want[3, 1] = 5.0  # index 7 is outside: all "off"
    check(m, tmp_path, {"i": idx, "v": np.array([-2.0, 5.0], np.float32)}, want)


def test_lp_normalization_and_round_and_shrink(tmp_path: Path) -> None:
    x = np.array([[0.5, -1.5, 2.5, 0.0], [0, 0, 0, 0]], np.float32)
    m = model("LpNormalization", {"x": (F, [2, 4])}, {"y": (F, [2, 4])}, attrs={"p": 1})
    check(m, tmp_path, {"x": x}, np.array([[1, -3, 5, 0], [0, 0, 0, 0]], np.float32) / 9)
    for name, attrs, want in [
        ("Round", {}, [[0, -2, 2, 0], [0, 0, 0, 0]]),  # ties to even
        ("Shrink", {"lambd": 1.0, "bias": 0.5}, [[0, -1, 2, 0], [0, 0, 0, 0]]),
    ]:
        (tmp_path / name).mkdir()
        m = model(name, {"x": (F, [2, 4])}, {"y": (F, [2, 4])}, attrs=attrs)
        check(m, tmp_path / name, {"x": x}, np.array(want, np.float32))


def test_trilu_of_a_filled_float_matrix_is_a_float_mask(tmp_path):
    # ConstantOfShape(-inf) -> Trilu(k=1): the additive causal mask a PyTorch export builds
    fill = helper.make_node("ConstantOfShape", ["shape"], ["full"], name="/Fill",
                            value=numpy_helper.from_array(np.array([-np.inf], np.float32)))  # fmt: skip
    trilu = helper.make_node("Trilu", ["full", "k"], ["mask"], name="/Trilu", upper=1)
    add = helper.make_node("Add", ["x", "mask"], ["y"], name="/Add")
    graph = helper.make_graph(
        [fill, trilu, add], "g",
        [helper.make_tensor_value_info("x", F, [4, 4])],
        [helper.make_tensor_value_info("y", F, [4, 4])],
        [numpy_helper.from_array(np.array([4, 4], np.int64), "shape"),
         numpy_helper.from_array(np.array(1, np.int64), "k")],
    )  # fmt: skip
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    x = rng.standard_normal((4, 4)).astype(np.float32)
    want = x + np.triu(np.full((4, 4), -np.inf, np.float32), 1)
    for got in run(m, tmp_path, {"x": x}).values():
        np.testing.assert_array_equal(got[0], want)
