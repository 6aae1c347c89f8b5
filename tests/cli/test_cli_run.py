"""`mdlc init` and `mdlc run`: weights files, .npy inputs, output summaries and .npz outputs."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from mdl.cli_commands import summarize


def _tiny_reference(weights: dict[str, np.ndarray], x: np.ndarray) -> dict[str, np.ndarray]:
    """The Tiny model of conftest.py written out in numpy."""
    h = np.maximum(x @ weights["fc1.weight"].T + weights["fc1.bias"], 0.0)
    return {"y": h @ weights["fc2.weight"].T + weights["fc2.bias"], "h": h}


@pytest.fixture
def x_npy(tmp_path):
    x = np.linspace(-1.0, 1.0, 12, dtype=np.float32).reshape(3, 4)
    path = tmp_path / "x.npy"
    np.save(path, x)
    return path, x


@pytest.fixture
def tiny_weights(mdlc, tiny):
    r = mdlc("init", tiny, "--random")
    assert r.code == 0, r.err
    return tiny.with_suffix(".safetensors")


# --- init ----------------------------------------------------------------------------------


def test_init_writes_beside_the_source_and_counts_parameters(mdlc, tiny):
    r = mdlc("init", tiny)
    assert r.code == 0, r.err
    out = tiny.with_suffix(".safetensors")
    weights = load_file(str(out))
    assert {k: v.shape for k, v in weights.items()} == {
        "fc1.weight": (8, 4),
        "fc1.bias": (8,),
        "fc2.weight": (2, 8),
        "fc2.bias": (2,),
    }
    assert all(v.dtype == np.float32 for v in weights.values())
    count = sum(v.size for v in weights.values())
    assert r.out.startswith(f"wrote {count:,} parameters in 4 tensors")
    assert str(out) in r.out
    assert not weights["fc1.bias"].any()  # declared `zeros`
    assert weights["fc1.weight"].std() > 0.1  # declared normal(0.5)


def test_init_is_deterministic_per_seed(mdlc, tiny, tmp_path):
    paths = [tmp_path / f"w{i}.safetensors" for i in range(3)]
    for path, seed in zip(paths, (7, 7, 8), strict=True):
        assert mdlc("init", tiny, "-o", path, "--seed", seed).code == 0
    assert paths[0].read_bytes() == paths[1].read_bytes()
    assert paths[0].read_bytes() != paths[2].read_bytes()


def test_init_random_fills_zero_initialisers(mdlc, tiny, tmp_path):
    out = tmp_path / "r.safetensors"
    assert mdlc("init", tiny, "--random", "-o", out).code == 0
    assert load_file(str(out))["fc1.bias"].any()


def test_init_npz_and_defines(mdlc, tiny, tmp_path):
    out = tmp_path / "w.npz"
    assert mdlc("init", tiny, "-o", out, "-D", "H=16").code == 0
    with np.load(out) as archive:
        assert archive["fc1.weight"].shape == (16, 4)


def test_init_output_extension_is_checked(mdlc, tiny, tmp_path):
    r = mdlc("init", tiny, "-o", tmp_path / "w.pt")
    assert r.code == 2
    assert "must end in `.safetensors` or `.npz`" in r.err


def test_init_reports_source_errors(mdlc, broken):
    r = mdlc("init", broken)
    assert r.code == 1
    assert "E0302" in r.err
    assert not broken.with_suffix(".safetensors").exists()


def test_init_needs_a_model(mdlc, library):
    r = mdlc("init", library)
    assert r.code == 1
    assert "error[E0109]: no model in" in r.err


def test_init_unwritable_output(mdlc, tiny, tmp_path):
    r = mdlc("init", tiny, "-o", tmp_path / "no" / "such" / "dir" / "w.safetensors")
    assert r.code == 1
    assert "E0702" in r.err


# --- run -----------------------------------------------------------------------------------


def _summary_line(name: str, array: np.ndarray) -> str:
    return (
        f"f32[{', '.join(map(str, array.shape))}]  min {array.min():.6g}  "
        f"max {array.max():.6g}  mean {array.astype(np.float64).mean():.6g}"
    )


def test_run_prints_each_output(mdlc, tiny, tiny_weights, x_npy):
    path, x = x_npy
    r = mdlc("run", tiny, "--weights", tiny_weights, "--input", path)
    assert r.code == 0, r.err
    expected = _tiny_reference(load_file(str(tiny_weights)), x)
    lines = r.out.splitlines()
    assert [line.split()[0] for line in lines] == ["y", "h"]
    for line, name in zip(lines, ("y", "h"), strict=True):
        assert line.split(None, 1)[1].strip() == _summary_line(name, expected[name])


def test_run_saves_outputs_by_name(mdlc, tiny, tiny_weights, x_npy, tmp_path):
    path, x = x_npy
    outs = [tmp_path / "a.npz", tmp_path / "b.npz"]
    for out in outs:
        r = mdlc("run", tiny, "--weights", tiny_weights, "--input", f"x={path}", "-o", out)
        assert r.code == 0, r.err
    assert outs[0].read_bytes() == outs[1].read_bytes()  # deterministic
    expected = _tiny_reference(load_file(str(tiny_weights)), x)
    with np.load(outs[0], allow_pickle=False) as saved:
        assert sorted(saved.files) == ["h", "y"]
        for name in ("y", "h"):
            np.testing.assert_allclose(saved[name], expected[name], rtol=1e-5, atol=1e-6)


def test_run_with_defines(mdlc, tiny, tmp_path, x_npy):
    path, _ = x_npy
    weights = tmp_path / "w16.safetensors"
    assert mdlc("init", tiny, "-o", weights, "-D", "H=16").code == 0
    r = mdlc("run", tiny, "--weights", weights, "--input", path, "-D", "H=16")
    assert r.code == 0, r.err
    assert "h  f32[3, 16]" in r.out
    # Without the define the weights no longer fit the declarations.
    r = mdlc("run", tiny, "--weights", weights, "--input", path)
    assert r.code == 1
    assert "E0505" in r.err


def test_native_backend_prints_what_the_reference_prints(mdlc, tiny, tiny_weights, x_npy):
    native = mdlc(
        "run", tiny, "--weights", tiny_weights, "--input", x_npy[0], "--backend", "native"
    )
    ref = mdlc("run", tiny, "--weights", tiny_weights, "--input", x_npy[0], "--backend", "ref")
    assert native.code == 0 and ref.code == 0, native.err
    assert native.out == ref.out


def test_output_extension_is_checked(mdlc, tiny, tiny_weights, x_npy, tmp_path):
    r = mdlc("run", tiny, "--weights", tiny_weights, "--input", x_npy[0], "-o", tmp_path / "o.npy")
    assert r.code == 2
    assert "must end in `.npz`" in r.err


def test_weights_of_the_wrong_shape_are_E0505(mdlc, tiny, tiny_weights, x_npy, tmp_path):
    weights = load_file(str(tiny_weights))
    weights["fc1.weight"] = np.ascontiguousarray(weights["fc1.weight"].T)
    bad = tmp_path / "bad.safetensors"
    save_file(weights, str(bad))
    r = mdlc("run", tiny, "--weights", bad, "--input", x_npy[0])
    assert r.code == 1
    assert "error[E0505]: wrong shape for weight `fc1.weight`" in r.err
    assert f"--> {tiny}:2:5" in r.err  # points at the declaration
    assert r.out == ""


def test_missing_weights_file(mdlc, tiny, x_npy, tmp_path):
    r = mdlc("run", tiny, "--weights", tmp_path / "none.safetensors", "--input", x_npy[0])
    assert r.code == 1
    assert "E0501" in r.err


def test_missing_input_is_E0601(mdlc, tiny, tiny_weights):
    r = mdlc("run", tiny, "--weights", tiny_weights)
    assert r.code == 1
    assert "error[E0601]: missing input `x`" in r.err
    assert "--input x=FILE.npy" in r.err


def test_unknown_input_name_is_E0602(mdlc, tiny, tiny_weights, x_npy):
    r = mdlc("run", tiny, "--weights", tiny_weights, "--input", f"z={x_npy[0]}")
    assert r.code == 1
    assert "error[E0602]: unexpected input `z`" in r.err


def test_too_many_inputs_is_E0602(mdlc, tiny, tiny_weights, x_npy):
    r = mdlc("run", tiny, "--weights", tiny_weights, "--input", x_npy[0], "--input", x_npy[0])
    assert r.code == 1
    assert "error[E0602]: too many inputs" in r.err


def test_input_given_twice_is_a_usage_error(mdlc, tiny, tiny_weights, x_npy):
    path = x_npy[0]
    r = mdlc("run", tiny, "--weights", tiny_weights, "--input", f"x={path}", "--input", f"x={path}")
    assert r.code == 2
    assert "given twice" in r.err


def test_missing_input_file_is_E0701(mdlc, tiny, tiny_weights, tmp_path):
    r = mdlc("run", tiny, "--weights", tiny_weights, "--input", tmp_path / "none.npy")
    assert r.code == 1
    assert "E0701" in r.err


def test_object_array_npy_is_refused(mdlc, tiny, tiny_weights, tmp_path):
    path = tmp_path / "objects.npy"
    np.save(path, np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    r = mdlc("run", tiny, "--weights", tiny_weights, "--input", path)
    assert r.code == 1
    assert "error[E0608]: input `x`" in r.err
    assert "pickled Python objects" in r.err


def test_pickle_file_is_refused(mdlc, tiny, tiny_weights, tmp_path):
    path = tmp_path / "x.npy"
    path.write_bytes(pickle.dumps(np.zeros((3, 4), np.float32)))
    r = mdlc("run", tiny, "--weights", tiny_weights, "--input", path)
    assert r.code == 1
    assert "E0608" in r.err and "pickled" in r.err


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"not an array at all", "is not a .npy file"),
        (b"\x93NUMPY\x01\x00garbage", "not a valid .npy file"),
    ],
)
def test_garbage_input_is_E0608(mdlc, tiny, tiny_weights, tmp_path, content, words):
    path = tmp_path / "x.npy"
    path.write_bytes(content)
    r = mdlc("run", tiny, "--weights", tiny_weights, "--input", path)
    assert r.code == 1
    assert "E0608" in r.err and words in r.err
    assert "Traceback" not in r.err


def test_npz_given_as_an_input(mdlc, tiny, tiny_weights, tmp_path):
    path = tmp_path / "x.npz"
    np.savez(path, x=np.zeros((3, 4), np.float32))
    r = mdlc("run", tiny, "--weights", tiny_weights, "--input", path)
    assert r.code == 1
    assert "is an .npz archive" in r.err


def test_input_of_the_wrong_dtype(mdlc, tiny, tiny_weights, tmp_path):
    path = tmp_path / "x64.npy"
    np.save(path, np.zeros((3, 4), np.float64))
    r = mdlc("run", tiny, "--weights", tiny_weights, "--input", path)
    assert r.code == 1
    assert "E0603" in r.err
    assert "Traceback" not in r.err


# --- the summary ---------------------------------------------------------------------------


def test_summary_of_special_arrays():
    assert summarize(np.zeros((0, 3), np.float32)) == "f32[0, 3]  (empty)"
    assert summarize(np.array([True, False, True])) == "bool[3]  true 2 of 3"
    text = summarize(np.array([1.0, np.nan, np.inf, 3.0], np.float32))
    assert text == "f32[4]  min 1  max 3  mean 2  non-finite 2 (1 nan)"
    assert summarize(np.array(5, np.int64)) == "i64[]  min 5  max 5  mean 5"
