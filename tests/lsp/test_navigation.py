"""Go to definition, find references and rename: locals, across files and into stdlib/."""

from __future__ import annotations

import pytest
from lsprotocol import types as lsp
from pytest_lsp import LanguageClient

from mdl.resolve import stdlib_dir

from .conftest import ROOT, make_client_fixture, open_doc, position_of, server_errors

pytestmark = pytest.mark.asyncio(loop_scope="module")
client = make_client_fixture()

MLP = ROOT / "examples" / "mlp.mdl"
GPT = ROOT / "examples" / "gpt.mdl"
NN = stdlib_dir() / "nn.mdl"

LIB = """# Two dense layers.
layer Block[D](x: f32[B, D]) -> f32[B, D] {
    let fc = Dense2[D]
    return fc(x)
}

layer Dense2[D, scale: float = 1.0](x: f32[B, D]) -> f32[B, D] {
    param w: f32[D, D] = zeros
    return x @ w * scale
}
"""
APP = """from lib import Block, Dense2

model App(x: f32[N, 8]) -> f32[N, 8] {
    let b = Block[8]
    let d = Dense2[8, scale=2.0]
    let h = b(x)
    return d(h) + h
}
"""


def where(uri_text, needle, delta=0):
    uri, text = uri_text
    return lsp.TextDocumentPositionParams(
        text_document=lsp.TextDocumentIdentifier(uri=uri), position=position_of(text, needle, delta)
    )


async def definition(client: LanguageClient, at) -> lsp.Location:
    result = await client.text_document_definition_async(
        lsp.DefinitionParams(text_document=at.text_document, position=at.position)
    )
    return result[0] if isinstance(result, list) else result


async def test_definition_into_stdlib(client):
    doc = (open_doc(client, MLP), MLP.read_text())
    loc = await definition(client, where(doc, "Dense[784", 1))
    assert loc.uri == NN.resolve().as_uri()
    assert loc.range.start == position_of(NN.read_text(), "Dense[In")
    loc = await definition(client, where(doc, "nn.relu", 0))  # the module: its file
    assert loc.uri == NN.resolve().as_uri()


async def test_definition_of_locals_and_imports(client):
    doc = (open_doc(client, GPT), GPT.read_text())
    loc = await definition(client, where(doc, "blocks {", 0))
    assert loc.uri == doc[0] and loc.range.start == position_of(doc[1], "blocks =")
    loc = await definition(client, where(doc, "GptBlock[D", 1))
    assert loc.uri.endswith("stdlib/transformer.mdl")
    # a keyword argument goes to the parameter of the layer it is passed to
    loc = await definition(client, where(doc, "bias=false", 1))
    assert loc.uri == NN.resolve().as_uri()
    assert loc.range.start == position_of(NN.read_text(), "bias: bool")


def workspace(tmp_path, client):
    (tmp_path / "lib.mdl").write_text(LIB)
    (tmp_path / "app.mdl").write_text(APP)
    lib = (open_doc(client, tmp_path / "lib.mdl"), LIB)
    app = (open_doc(client, tmp_path / "app.mdl"), APP)
    return lib, app


async def test_references_across_files(client, tmp_path):
    lib, app = workspace(tmp_path, client)
    at = where(app, "Dense2[8", 1)
    refs = await client.text_document_references_async(
        lsp.ReferenceParams(
            text_document=at.text_document,
            position=at.position,
            context=lsp.ReferenceContext(include_declaration=True),
        )
    )
    got = sorted((r.uri.rsplit("/", 1)[-1], r.range.start.line) for r in refs)
    assert got == [("app.mdl", 0), ("app.mdl", 4), ("lib.mdl", 2), ("lib.mdl", 6)]


async def test_rename_a_layer_across_files(client, tmp_path):
    lib, app = workspace(tmp_path, client)
    at = where(lib, "Dense2[D, scale", 1)
    edit = await client.text_document_rename_async(
        lsp.RenameParams(text_document=at.text_document, position=at.position, new_name="Linear")
    )
    lines = {
        uri.rsplit("/", 1)[-1]: sorted(e.range.start.line for e in edits)
        for uri, edits in edit.changes.items()
    }
    assert lines == {"lib.mdl": [2, 6], "app.mdl": [0, 4]}
    assert all(e.new_text == "Linear" for edits in edit.changes.values() for e in edits)


async def test_rename_a_compile_time_argument_renames_keyword_arguments(client, tmp_path):
    lib, app = workspace(tmp_path, client)
    at = where(lib, "scale: float", 0)
    edit = await client.text_document_rename_async(
        lsp.RenameParams(text_document=at.text_document, position=at.position, new_name="gain")
    )
    got = {
        uri.rsplit("/", 1)[-1]: sorted((e.range.start.line, e.range.start.character) for e in edits)
        for uri, edits in edit.changes.items()
    }
    assert got == {
        "lib.mdl": [(6, 16), (8, 19)],
        "app.mdl": [(4, 22)],
    }


async def test_rename_a_local_leaves_shadowed_and_other_names(client, tmp_path):
    text = "fn f(x: f32[N]) -> f32[N] {\n    let y = x * 2.0\n    let z = y + x\n    return z\n}\n"
    doc = (open_doc(client, tmp_path / "local.mdl", text), text)
    at = where(doc, "y + x")
    edit = await client.text_document_rename_async(
        lsp.RenameParams(text_document=at.text_document, position=at.position, new_name="twice")
    )
    [edits] = edit.changes.values()
    assert sorted((e.range.start.line, e.range.start.character) for e in edits) == [(1, 8), (2, 12)]


async def test_stdlib_and_modules_cannot_be_renamed(client):
    doc = (open_doc(client, MLP), MLP.read_text())
    at = where(doc, "Dense[784", 1)
    prepared = await client.text_document_prepare_rename_async(
        lsp.PrepareRenameParams(text_document=at.text_document, position=at.position)
    )
    assert prepared is None
    with pytest.raises(Exception, match="standard library"):
        await client.text_document_rename_async(
            lsp.RenameParams(text_document=at.text_document, position=at.position, new_name="X")
        )
    at = where(doc, "h = nn.relu(fc1")
    prepared = await client.text_document_prepare_rename_async(
        lsp.PrepareRenameParams(text_document=at.text_document, position=at.position)
    )
    assert prepared is not None and prepared.start == at.position
    with pytest.raises(Exception, match="not a valid name"):
        await client.text_document_rename_async(
            lsp.RenameParams(text_document=at.text_document, position=at.position, new_name="let")
        )
    assert server_errors(client) == []
