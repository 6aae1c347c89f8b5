"""The mdl language server: LSP over stdio (pygls 2) -> the features in this package.

Each handler here is thin: it finds the analysis of the document's current
text (documents.py) and hands it to the module of its feature. Every handler
is guarded: an internal error is logged (window/logMessage and stderr) and
answered with an empty result, so no request can take the server down.
The server uses the compiler's front end only; it never imports llvmlite.
"""

from __future__ import annotations

import functools
import logging
import sys
import traceback
from importlib import metadata

from lsprotocol import types as lsp
from pygls.exceptions import JsonRpcInvalidRequest
from pygls.lsp.server import LanguageServer
from pygls.uris import to_fs_path

from . import completion, diagnostics, hover, inlay, navigation, symbols, tokens
from .diagnostics import line_index
from .documents import Documents
from .formatting import format_edits
from .positions import ENCODING

log = logging.getLogger("mdl_lsp")


def _version() -> str:
    try:
        return metadata.version("mdl")
    except metadata.PackageNotFoundError:
        return "0"


class MdlServer(LanguageServer):
    def __init__(self) -> None:
        super().__init__("mdl-lsp", _version())
        self.docs = Documents(self)

    def log_error(self, message: str) -> None:
        log.error("%s", message)
        try:
            self.window_log_message(
                lsp.LogMessageParams(type=lsp.MessageType.Error, message=message)
            )
        except Exception:  # no client connected (tests of the modules alone)
            pass

    def publish(self, uri: str, version: int | None, analysis) -> None:
        items = diagnostics.to_lsp(analysis, self.docs.uri_of)
        self.text_document_publish_diagnostics(
            lsp.PublishDiagnosticsParams(uri=uri, diagnostics=items, version=version)
        )


def guarded(empty):
    """Answer `empty` (and log) instead of failing when a handler raises."""

    def wrap(fn):
        @functools.wraps(fn)
        async def handler(ls: MdlServer, params):
            try:
                return await fn(ls, params)
            except navigation.RenameError as e:
                raise JsonRpcInvalidRequest(str(e)) from None
            except Exception as e:
                ls.log_error(f"internal error in {fn.__name__}: {e!r}\n{traceback.format_exc()}")
                return empty

        return handler

    return wrap


server = MdlServer()


async def _at(ls: MdlServer, uri: str, pos: lsp.Position):
    """(analysis, text, offset) of a position in an open document, or None."""
    a = await ls.docs.analysis(uri)
    if a is None:
        return None
    return a, a.text, line_index(a.text).offset(pos)


# ---------------------------------------------------------------- lifecycle and sync
@server.feature(lsp.INITIALIZE)
def initialize(ls: MdlServer, params: lsp.InitializeParams) -> None:
    options = params.initialization_options or {}
    if isinstance(options, dict) and isinstance(options.get("debounceMs"), int | float):
        ls.docs.debounce = max(0.0, float(options["debounceMs"]) / 1000)
    roots = [f.uri for f in params.workspace_folders or ()]
    if not roots and params.root_uri:
        roots = [params.root_uri]
    ls.docs.roots = [p for p in (to_fs_path(r) for r in roots) if p]
    encoding = ls.workspace.position_encoding or "utf-16"
    ENCODING["units"] = str(getattr(encoding, "value", encoding))


@server.feature(lsp.TEXT_DOCUMENT_DID_OPEN)
async def did_open(ls: MdlServer, params: lsp.DidOpenTextDocumentParams) -> None:
    ls.docs.schedule(params.text_document.uri, ls.publish)


@server.feature(lsp.TEXT_DOCUMENT_DID_CHANGE)
async def did_change(ls: MdlServer, params: lsp.DidChangeTextDocumentParams) -> None:
    ls.docs.schedule(params.text_document.uri, ls.publish)


@server.feature(lsp.TEXT_DOCUMENT_DID_CLOSE)
async def did_close(ls: MdlServer, params: lsp.DidCloseTextDocumentParams) -> None:
    uri = params.text_document.uri
    ls.docs.close(uri)
    ls.text_document_publish_diagnostics(lsp.PublishDiagnosticsParams(uri=uri, diagnostics=[]))


# ---------------------------------------------------------------- features
@server.feature(lsp.TEXT_DOCUMENT_HOVER)
@guarded(None)
async def on_hover(ls: MdlServer, params: lsp.HoverParams):
    at = await _at(ls, params.text_document.uri, params.position)
    if at is None:
        return None
    text = hover.hover_markdown(at[0], at[2])
    if text is None:
        return None
    return lsp.Hover(contents=lsp.MarkupContent(kind=lsp.MarkupKind.Markdown, value=text))


@server.feature(lsp.TEXT_DOCUMENT_DEFINITION)
@guarded(None)
async def on_definition(ls: MdlServer, params: lsp.DefinitionParams):
    at = await _at(ls, params.text_document.uri, params.position)
    if at is None:
        return None
    d = navigation.definition_at(at[0], at[2])
    return navigation.definition_location(at[0], d, ls.docs.uri_of) if d is not None else None


@server.feature(lsp.TEXT_DOCUMENT_REFERENCES)
@guarded([])
async def on_references(ls: MdlServer, params: lsp.ReferenceParams):
    at = await _at(ls, params.text_document.uri, params.position)
    d = navigation.definition_at(at[0], at[2]) if at is not None else None
    if d is None:
        return []
    index = await ls.docs.workspace_index()
    return navigation.reference_locations(
        index, d, ls.docs.uri_of, params.context.include_declaration
    )


@server.feature(lsp.TEXT_DOCUMENT_PREPARE_RENAME)
@guarded(None)
async def on_prepare_rename(ls: MdlServer, params: lsp.PrepareRenameParams):
    at = await _at(ls, params.text_document.uri, params.position)
    if at is None:
        return None
    occ = at[0].occurrence_at(at[2])
    try:
        navigation.check_renamable(occ.target if occ is not None else None)
    except navigation.RenameError:
        return None
    return line_index(at[1]).span_range(occ.span)


@server.feature(lsp.TEXT_DOCUMENT_RENAME)
@guarded(None)
async def on_rename(ls: MdlServer, params: lsp.RenameParams):
    at = await _at(ls, params.text_document.uri, params.position)
    if at is None:
        return None
    d = navigation.check_renamable(navigation.definition_at(at[0], at[2]))
    index = await ls.docs.workspace_index()
    return navigation.rename_edits(index, d, params.new_name, ls.docs.uri_of)


@server.feature(
    lsp.TEXT_DOCUMENT_COMPLETION,
    lsp.CompletionOptions(trigger_characters=[".", "(", "[", ","]),
)
@guarded([])
async def on_completion(ls: MdlServer, params: lsp.CompletionParams):
    at = await _at(ls, params.text_document.uri, params.position)
    if at is None:
        return []
    return completion.complete(*at)


@server.feature(
    lsp.TEXT_DOCUMENT_SIGNATURE_HELP,
    lsp.SignatureHelpOptions(trigger_characters=["(", "[", ","], retrigger_characters=[","]),
)
@guarded(None)
async def on_signature_help(ls: MdlServer, params: lsp.SignatureHelpParams):
    at = await _at(ls, params.text_document.uri, params.position)
    if at is None:
        return None
    return completion.signature_help(*at)


@server.feature(lsp.TEXT_DOCUMENT_DOCUMENT_SYMBOL)
@guarded([])
async def on_document_symbol(ls: MdlServer, params: lsp.DocumentSymbolParams):
    a = await ls.docs.analysis(params.text_document.uri)
    return symbols.document_symbols(a) if a is not None else []


@server.feature(lsp.WORKSPACE_SYMBOL)
@guarded([])
async def on_workspace_symbol(ls: MdlServer, params: lsp.WorkspaceSymbolParams):
    index = await ls.docs.workspace_index()
    return symbols.workspace_symbols(index, params.query, ls.docs.uri_of)


@server.feature(lsp.TEXT_DOCUMENT_FORMATTING)
@guarded([])
async def on_formatting(ls: MdlServer, params: lsp.DocumentFormattingParams):
    uri = params.text_document.uri
    doc = ls.workspace.get_text_document(uri)
    a = await ls.docs.analysis(uri)
    return format_edits(doc.source, a.shown if a is not None else uri)


@server.feature(lsp.TEXT_DOCUMENT_SEMANTIC_TOKENS_FULL, tokens.LEGEND)
@guarded(lsp.SemanticTokens(data=[]))
async def on_semantic_tokens(ls: MdlServer, params: lsp.SemanticTokensParams):
    a = await ls.docs.analysis(params.text_document.uri)
    return lsp.SemanticTokens(data=tokens.semantic_tokens(a) if a is not None else [])


@server.feature(lsp.TEXT_DOCUMENT_INLAY_HINT)
@guarded([])
async def on_inlay_hint(ls: MdlServer, params: lsp.InlayHintParams):
    a = await ls.docs.analysis(params.text_document.uri)
    if a is None:
        return []
    idx = line_index(a.text)
    return inlay.inlay_hints(a, idx.offset(params.range.start), idx.offset(params.range.end))


@server.feature(
    lsp.TEXT_DOCUMENT_CODE_ACTION,
    lsp.CodeActionOptions(code_action_kinds=[lsp.CodeActionKind.QuickFix]),
)
@guarded([])
async def on_code_action(ls: MdlServer, params: lsp.CodeActionParams):
    a = await ls.docs.analysis(params.text_document.uri)
    if a is None:
        return []
    return diagnostics.code_actions(a, params.range, ls.docs.uri_of)


def main() -> None:
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING, format="mdl-lsp: %(message)s")
    server.start_io()


if __name__ == "__main__":
    main()
