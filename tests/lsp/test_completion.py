"""Completion (scope, members, keywords, primitives, keyword arguments) and signature help."""

from __future__ import annotations

import pytest
from lsprotocol import types as lsp

from .conftest import ROOT, make_client_fixture, open_doc, position_of, server_errors

pytestmark = pytest.mark.asyncio(loop_scope="module")
client = make_client_fixture()

MLP = (ROOT / "examples" / "mlp.mdl").read_text()


async def complete(client, path, text, needle, delta):
    uri = open_doc(client, path, text)
    result = await client.text_document_completion_async(
        lsp.CompletionParams(
            text_document=lsp.TextDocumentIdentifier(uri=uri),
            position=position_of(text, needle, delta),
        )
    )
    items = result.items if isinstance(result, lsp.CompletionList) else result
    return {i.label: i for i in items}


async def signature(client, path, text, needle, delta):
    uri = open_doc(client, path, text)
    return await client.text_document_signature_help_async(
        lsp.SignatureHelpParams(
            text_document=lsp.TextDocumentIdentifier(uri=uri),
            position=position_of(text, needle, delta),
        )
    )


async def test_members_after_a_module(client, tmp_path):
    text = MLP.replace("nn.relu(fc1(x))", "nn.")
    items = await complete(client, tmp_path / "m.mdl", text, "nn.\n", 3)
    assert {"Dense", "Conv2d", "LayerNorm", "relu", "softmax"} <= set(items)
    assert "layer Dense[In, Out" in items["Dense"].detail
    assert "let" not in items


async def test_names_in_scope_keywords_and_primitives(client, tmp_path):
    text = MLP.replace("return nn.softmax(fc3(h))", "return ")
    items = await complete(client, tmp_path / "m.mdl", text, "return \n", 7)
    assert {"fc1", "fc2", "fc3", "h", "x", "B"} <= set(items)  # locals, input, its dim
    assert {"nn", "Mlp"} <= set(items)
    assert {"sum", "matmul", "where", "let", "return", "f32", "Sequential"} <= set(items)
    # a name is not offered before its `let`
    early = await complete(client, tmp_path / "m.mdl", MLP, "let fc2", 4)
    assert "fc1" in early and "fc3" not in early


async def test_keyword_arguments_of_the_callee(client, tmp_path):
    text = MLP.replace("nn.Dense[256, 10]", "nn.Dense[256, 10, ]")
    items = await complete(client, tmp_path / "m.mdl", text, "10, ]", 4)
    assert {"In=", "Out=", "bias="} <= set(items)
    assert items["bias="].sort_text < items["fc1"].sort_text
    text = MLP.replace("nn.softmax(fc3(h))", "sum(h, )")
    items = await complete(client, tmp_path / "m.mdl", text, "h, )", 3)
    assert {"axis=", "keep="} <= set(items)


async def test_completion_while_the_declaration_does_not_parse(client, tmp_path):
    text = MLP.replace("    return nn.softmax(fc3(h))\n", "    let y = fc3(\n")
    items = await complete(client, tmp_path / "m.mdl", text, "fc3(\n", 4)
    assert {"fc1", "h", "x", "nn"} <= set(items)


async def test_signature_help_for_a_layer_and_a_primitive(client, tmp_path):
    text = MLP.replace("nn.Dense[256, 10]", "nn.Dense[256, 10, bias=")
    help_ = await signature(client, tmp_path / "m.mdl", text, "bias=", 5)
    [sig] = help_.signatures
    assert sig.label.startswith("layer Dense[In, Out, bias: bool = true]")
    assert [p.label for p in sig.parameters] == ["In", "Out", "bias: bool = true"]
    assert help_.active_parameter == 2

    text = MLP.replace("nn.softmax(fc3(h))", "sum(h, axis=1, )")
    help_ = await signature(client, tmp_path / "m.mdl", text, "1, )", 3)
    assert help_.signatures[0].label.startswith("sum(x, axis=None, keep=false)")
    assert help_.signatures[0].parameters[help_.active_parameter].label == "keep=false"
    assert server_errors(client) == []
