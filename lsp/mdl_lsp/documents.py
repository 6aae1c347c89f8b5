"""Open documents and the workspace -> analyses, made off the event loop, latest version first.

Every open document has a text and a version (pygls keeps them). An analysis
(mdl.analysis.analyze) is made in one worker thread, from a snapshot taken on
the event loop: the document's text plus every other open document's unsaved
text (imports see the unsaved versions). One parse cache is shared, so a check
after an edit re-parses only the declarations whose text changed.
After an edit, diagnostics wait for a quiet `debounce` first; then the quick
check (mdl.analysis_quick: changed declarations only) is published, then the
full check's. An edit during the wait or a check makes that work stale, and
stale results are dropped, never published.
"""

from __future__ import annotations

import asyncio
import logging
import os
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from pygls import uris

from mdl.analysis import Analysis, WorkspaceIndex, analyze, workspace_index
from mdl.analysis_quick import quick_check
from mdl.diagnostics import Diagnostic
from mdl.driver import Frontend
from mdl.resolve import Loader, stdlib_dir
from mdl.syntax.parser import ChunkCache

log = logging.getLogger("mdl_lsp")

MAX_WORKSPACE_FILES = 2000
SKIP_DIRS = {"node_modules", "__pycache__", "venv", ".venv", "build", "dist"}


@dataclass
class Snapshot:
    uri: str
    path: str
    version: int | None
    text: str
    overlays: dict[str, str]


class Documents:
    def __init__(self, server) -> None:
        self.server = server
        self.cache = ChunkCache()
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mdl-check")
        self.analyses: dict[str, tuple[int | None, Analysis]] = {}
        self.pending: dict[str, asyncio.Task] = {}
        self.debounce = 0.15  # seconds of quiet after an edit before checking
        self.roots: list[str] = []

    # ------------------------------------------------------------ paths
    def path_of(self, uri: str) -> str:
        path = uris.to_fs_path(uri) if uri.startswith("file:") else None
        if not path:  # an unsaved buffer: imports resolve beside the first workspace folder
            name = uri.rsplit("/", 1)[-1] or "untitled"
            base = self.roots[0] if self.roots else os.getcwd()
            path = os.path.join(base, name if name.endswith(".mdl") else name + ".mdl")
        return str(Path(path).resolve())

    def uri_of(self, path: str) -> str:
        for uri in self.server.workspace.text_documents:
            if self.path_of(uri) == path:
                return uri
        return uris.from_fs_path(path) or path

    def snapshot(self, uri: str) -> Snapshot:
        doc = self.server.workspace.get_text_document(uri)
        return Snapshot(uri, self.path_of(uri), doc.version, doc.source, self.overlays())

    def overlays(self) -> dict[str, str]:
        out = {}
        for uri, doc in self.server.workspace.text_documents.items():
            out[self.path_of(uri)] = doc.source
        return out

    def current_version(self, uri: str) -> int | None:
        doc = self.server.workspace.text_documents.get(uri)
        return doc.version if doc is not None else None

    # ------------------------------------------------------------ analyses
    def run(self, snap: Snapshot) -> Analysis:
        """Check a snapshot (in the worker thread); a crash becomes an E0901 diagnostic."""
        try:
            return analyze(snap.path, snap.text, overlays=snap.overlays, cache=self.cache)
        except Exception as e:  # the front end must not take the server down
            log.error("internal error checking %s:\n%s", snap.path, traceback.format_exc())
            self.server.log_error(f"internal error checking {snap.path}: {e!r}")
            loader = Loader(dict(snap.overlays), None)
            front = Frontend(
                [
                    Diagnostic(
                        "E0901",
                        f"internal compiler error: {type(e).__name__}: {e}",
                        notes=("this is a bug in mdl; please report it",),
                    )
                ],
                {},
            )
            return Analysis(snap.path, snap.text, front, loader)

    def run_quick(self, previous: Analysis, snap: Snapshot) -> Analysis | None:
        """The quick check after an edit (analysis_quick.py); None: only the full check will do."""
        try:
            return quick_check(previous, snap.text, snap.overlays, self.cache)
        except Exception as e:
            self.server.log_error(
                f"internal error in the quick check of {snap.path}: {e!r}\n{traceback.format_exc()}"
            )
            return None  # the full check follows and reports what it finds

    async def analysis(self, uri: str) -> Analysis | None:
        """The analysis of the document's current text (made now if the last one is stale)."""
        if uri not in self.server.workspace.text_documents:
            return None
        version = self.current_version(uri)
        have = self.analyses.get(uri)
        doc = self.server.workspace.get_text_document(uri)
        if have is not None and have[0] == version and have[1].text == doc.source:
            return have[1]  # (a re-opened document may repeat a version number)
        snap = self.snapshot(uri)
        result = await asyncio.get_running_loop().run_in_executor(self.executor, self.run, snap)
        if self.current_version(uri) == snap.version:
            self.analyses[uri] = (snap.version, result)
        return result

    def schedule(self, uri: str, publish: Callable[[str, int | None, Analysis], None]) -> None:
        """Check `uri` after a quiet `debounce`, replacing any check still waiting or running."""
        old = self.pending.pop(uri, None)
        if old is not None:
            old.cancel()
        self.pending[uri] = asyncio.get_running_loop().create_task(self._check(uri, publish))

    async def _check(self, uri: str, publish) -> None:
        try:
            if self.debounce > 0:
                await asyncio.sleep(self.debounce)
            snap = self.snapshot(uri)
            previous = self.analyses.get(uri)
            if previous is not None:
                quick = await self.in_worker(self.run_quick, previous[1], snap)
                if quick is not None and self.current_version(uri) == snap.version:
                    publish(uri, snap.version, quick)
            if self.current_version(uri) != snap.version:
                return  # edited meanwhile: the newer check publishes
            result = await self.in_worker(self.run, snap)
            if self.current_version(uri) != snap.version:
                return
            self.analyses[uri] = (snap.version, result)
            publish(uri, snap.version, result)
            self.recheck_importers(snap.path, uri, publish)
        except asyncio.CancelledError:
            raise
        except Exception as e:
            log.error("internal error publishing %s:\n%s", uri, traceback.format_exc())
            self.server.log_error(f"internal error publishing diagnostics for {uri}: {e!r}")
        finally:
            if self.pending.get(uri) is asyncio.current_task():
                del self.pending[uri]

    def recheck_importers(self, path: str, changed_uri: str, publish) -> None:
        """Other open documents that import the changed one see its new text."""
        for uri, (_, a) in list(self.analyses.items()):
            if uri != changed_uri and path in a.loader.modules and uri not in self.pending:
                self.schedule(uri, publish)

    def close(self, uri: str) -> None:
        task = self.pending.pop(uri, None)
        if task is not None:
            task.cancel()
        self.analyses.pop(uri, None)

    # ------------------------------------------------------------ the workspace
    def workspace_files(self) -> list[str]:
        """Every .mdl file under the workspace folders, plus the open documents."""
        found: list[str] = []
        for root in self.roots:
            for folder, dirs, files in os.walk(root):
                dirs[:] = [d for d in dirs if not d.startswith(".") and d not in SKIP_DIRS]
                found.extend(os.path.join(folder, f) for f in files if f.endswith(".mdl"))
                if len(found) > MAX_WORKSPACE_FILES:
                    break
        paths = {str(Path(p).resolve()) for p in found[:MAX_WORKSPACE_FILES]}
        paths |= {self.path_of(uri) for uri in self.server.workspace.text_documents}
        return sorted(paths)

    async def workspace_index(self) -> WorkspaceIndex:
        """Names of every workspace file and all they import, for references and rename."""
        paths, overlays = self.workspace_files(), self.overlays()
        return await self.in_worker(workspace_index, paths, overlays, self.cache)

    async def in_worker(self, fn, *args):
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)


def is_stdlib(path: str) -> bool:
    try:
        Path(path).resolve().relative_to(stdlib_dir().resolve())
        return True
    except ValueError:
        return False
