"""Hostile and broken files: each is rejected with a coded diagnostic, never a traceback,
and nothing is written."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from mdl.onnx_import import import_onnx

from .graphs import F, X, build


def codes_of(model_or_bytes: onnx.ModelProto | bytes, tmp: Path, name: str = "m.onnx") -> list[str]:
    path = tmp / name
    if isinstance(model_or_bytes, bytes):
        path.write_bytes(model_or_bytes)
    else:
        path.write_bytes(model_or_bytes.SerializeToString())
    out = tmp / "out.mdl"
    diags = import_onnx(str(path), str(out))
    assert not out.exists() and not (tmp / "out.safetensors").exists()
    for d in diags:
        assert d.message and "\n" not in d.message
    return [d.code for d in diags]


def external(tmp: Path, location: str, length: int = 16, offset: int = 0) -> onnx.ModelProto:
    model = build("Add", X(("N", 4)), np.zeros(4, np.float32))
    t = model.graph.initializer[0]
    t.ClearField("raw_data")
    t.data_location = TensorProto.EXTERNAL
    for k, v in {"location": location, "offset": str(offset), "length": str(length)}.items():
        entry = t.external_data.add()
        entry.key, entry.value = k, v
    return model


@pytest.mark.parametrize("data", [b"", b"\x00\x01garbage\xff" * 10, b"\x0a\xff\xff\xff\xff\x0f"])
def test_not_a_protobuf(data: bytes, tmp_path: Path) -> None:
    assert codes_of(data, tmp_path) == ["E1001"]


def test_truncated_model(tmp_path: Path) -> None:
    full = build("Relu", X(("N", 4))).SerializeToString()
    assert codes_of(full[: len(full) // 2], tmp_path) == ["E1001"]


def test_missing_file(tmp_path: Path) -> None:
    assert [d.code for d in import_onnx(str(tmp_path / "nope.onnx"), str(tmp_path / "o.mdl"))] == [
        "E0701"]  # fmt: skip


def test_external_data_inside_the_folder_is_read(tmp_path: Path) -> None:
    (tmp_path / "w.bin").write_bytes(np.arange(4, dtype=np.float32).tobytes())
    model = external(tmp_path, "w.bin")
    (tmp_path / "m.onnx").write_bytes(model.SerializeToString())
    assert import_onnx(str(tmp_path / "m.onnx"), str(tmp_path / "out.mdl")) == []


@pytest.mark.parametrize("location", ["../secret.bin", "/etc/passwd", "sub/../../x.bin", ""])
def test_external_data_outside_the_folder(location: str, tmp_path: Path) -> None:
    (tmp_path.parent / "secret.bin").write_bytes(b"\x00" * 16)
    assert codes_of(external(tmp_path, location), tmp_path) == ["E1002"]


def test_external_data_through_a_symlink(tmp_path: Path) -> None:
    outside = tmp_path.parent / "outside.bin"
    outside.write_bytes(b"\x00" * 16)
    os.symlink(outside, tmp_path / "link.bin")
    assert codes_of(external(tmp_path, "link.bin"), tmp_path) == ["E1002"]


def test_external_data_past_the_end_of_its_file(tmp_path: Path) -> None:
    (tmp_path / "w.bin").write_bytes(b"\x00" * 8)
    assert codes_of(external(tmp_path, "w.bin", length=16), tmp_path) == ["E1002"]
    assert codes_of(external(tmp_path, "missing.bin"), tmp_path) == ["E1002"]


@pytest.mark.parametrize("dim", [0, -3, 2**50])
def test_bad_input_dims(dim: int, tmp_path: Path) -> None:
    model = build("Relu", X(("N", 4)))
    model.graph.input[0].type.tensor_type.shape.dim[1].dim_value = dim
    assert codes_of(model, tmp_path) == ["E1003"]


def test_absurd_initializer_shape(tmp_path: Path) -> None:
    model = build("Add", X(("N", 4)), np.zeros(4, np.float32))
    model.graph.initializer[0].dims[:] = [2**30, 2**30, 2**30]
    assert codes_of(model, tmp_path) == ["E1003"]


def test_initializer_size_disagrees_with_shape(tmp_path: Path) -> None:
    model = build("Add", X(("N", 4)), np.zeros(4, np.float32))
    model.graph.initializer[0].raw_data = b"\x00" * 12
    assert codes_of(model, tmp_path) == ["E1004"]
    t = model.graph.initializer[0]
    t.ClearField("raw_data")
    t.float_data[:] = [1.0, 2.0]  # two values for four elements
    assert codes_of(model, tmp_path) == ["E1004"]


def test_deeply_nested_subgraphs(tmp_path: Path) -> None:
    inner = helper.make_graph([helper.make_node("Identity", ["a"], ["b"])], "g0", [], [])
    for depth in range(12):
        branch = helper.make_node("If", ["c"], ["o"], then_branch=inner, else_branch=inner)
        inner = helper.make_graph([branch], f"g{depth + 1}", [], [])
    model = helper.make_model(
        helper.make_graph(
            list(inner.node),
            "top",
            [helper.make_tensor_value_info("c", TensorProto.BOOL, [])],
            [helper.make_tensor_value_info("o", F, [1])],
        ),  # fmt: skip
        opset_imports=[helper.make_opsetid("", 17)],
    )
    assert codes_of(model, tmp_path) == ["E1005"]


def test_old_opset(tmp_path: Path) -> None:
    assert codes_of(build("Relu", X(("N", 4)), opset=12), tmp_path) == ["E1009"]


def test_unsupported_op_names_node_op_and_opset(tmp_path: Path) -> None:
    model = build("Det", X((3, 3)))
    path = tmp_path / "m.onnx"
    onnx.save(model, path)
    (d,) = import_onnx(str(path), str(tmp_path / "o.mdl"))
    assert d.code == "E1006" and "`/Det`" in d.message and "Det" in d.message
    assert "opset 17" in d.message


def test_unsupported_attribute(tmp_path: Path) -> None:
    model = build("Softmax", X(("N", 4)), attrs={"axis": 1, "bogus": 3})
    path = tmp_path / "m.onnx"
    onnx.save(model, path)
    (d,) = import_onnx(str(path), str(tmp_path / "o.mdl"))
    assert d.code == "E1007" and "bogus" in d.message and "Softmax" in d.message


def test_unsupported_attribute_value(tmp_path: Path) -> None:
    model = build("Pad", X(("N", 4)), np.array([0, 1, 0, 1], np.int64), attrs={"mode": "reflect"})
    assert codes_of(model, tmp_path) == ["E1007"]


def test_unsupported_dtype(tmp_path: Path) -> None:
    model = build("Relu", X(("N", 4), TensorProto.UINT8))
    assert codes_of(model, tmp_path) == ["E1008"]


def test_shape_from_tensor_values(tmp_path: Path) -> None:
    model = build("Reshape", X(("N", 4)), X((2,), TensorProto.INT64))
    assert codes_of(model, tmp_path) == ["E1010"]


def test_undefined_value(tmp_path: Path) -> None:
    model = build("Relu", X(("N", 4)))
    model.graph.node[0].input[0] = "nowhere"
    assert codes_of(model, tmp_path) == ["E1011"]


def test_custom_domain(tmp_path: Path) -> None:
    model = build("Relu", X(("N", 4)))
    model.graph.node[0].domain = "com.example"
    model.opset_import.append(helper.make_opsetid("com.example", 1))
    assert codes_of(model, tmp_path) == ["E1006"]


def test_corrupted_real_models_give_coded_errors(tmp_path: Path) -> None:
    """Random byte flips in a real model: each import succeeds or reports an import error;
    none is an internal error or an exception."""
    import random

    from mdl.onnx_import import import_source

    data = (Path(__file__).resolve().parents[1] / "fixtures" / "onnx" / "lenet.onnx").read_bytes()
    rnd = random.Random(3)
    for _ in range(40):
        corrupted = bytearray(data)
        for _ in range(rnd.randint(1, 4)):
            corrupted[rnd.randrange(20_000)] = rnd.randrange(256)
        path = tmp_path / "m.onnx"
        path.write_bytes(bytes(corrupted))
        _, _, diags = import_source(str(path), str(tmp_path / "o.mdl"))
        assert all(d.code.startswith("E1") or d.code == "E0701" for d in diags), diags
