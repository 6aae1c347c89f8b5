"""Files and imports -> modules with their top-level names.

`Loader` reads a file, parses it, and follows its imports: a module path
`a.b` is looked up as `a/b.mdl` beside the importing file first, then in the
standard library. Each module gets a table of its top-level names (its own
declarations and what it imports); name lookups inside declarations happen
during elaboration, against these tables.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path

from .diagnostics import Diagnostic, Label
from .span import Span
from .syntax import ast
from .syntax.parser import ChunkCache, decode_source, parse

MAX_FILE_BYTES = 16 * 1024 * 1024


@dataclass(eq=False)
class ModuleInfo:
    path: str
    name: str
    tree: ast.Module
    names: dict[str, object] = field(default_factory=dict)  # name -> Decl | ModuleInfo


def stdlib_dir() -> Path:
    """The standard library: inside the installed package, or the source tree's stdlib/."""
    # the package's folder, as importlib.resources.files("mdl") names it (that import is slow)
    packaged = Path(__file__).parent / "stdlib"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[2] / "stdlib"


class Loader:
    def __init__(
        self, overlays: dict[str, str] | None = None, parse_cache: ChunkCache | None = None
    ) -> None:
        # editors: `overlays` maps a resolved path to unsaved text that stands for the file;
        # `parse_cache` reuses the declarations unchanged since the last load
        self.overlays = overlays or {}
        self.parse_cache = parse_cache
        self.modules: dict[str, ModuleInfo] = {}
        self.sources: dict[str, str] = {}
        self.diagnostics: list[Diagnostic] = []
        self._loading: list[str] = []
        self.real_paths: dict[str, str] = {}  # shown path -> file on disk (for editors)

    def display_path(self, path: Path) -> str:
        """How diagnostics name a file: relative to the working folder, `<stdlib>/nn.mdl` for the stdlib."""
        real = path.resolve()
        try:
            return f"<stdlib>/{real.relative_to(stdlib_dir().resolve())}"
        except ValueError:
            pass
        try:
            return str(path.resolve().relative_to(Path.cwd().resolve()))
        except ValueError:
            return str(path)

    def load_file(self, path: str | Path, name: str | None = None) -> ModuleInfo | None:
        p = Path(path)
        key = str(p.resolve())
        if key in self.modules:
            return self.modules[key]
        shown = self.display_path(p)
        if key in self.overlays:
            return self.load_text(self.overlays[key], shown, key, name or p.stem)
        try:
            if p.stat().st_size > MAX_FILE_BYTES:
                self.diagnostics.append(
                    Diagnostic("E0012", f"`{shown}` is larger than {MAX_FILE_BYTES} bytes")
                )
                return None
            data = p.read_bytes()
        except (OSError, ValueError) as e:
            reason = getattr(e, "strerror", None) or str(e)
            self.diagnostics.append(Diagnostic("E0701", f"cannot read `{shown}`: {reason}"))
            return None
        text, diags = decode_source(data, shown)
        self.diagnostics.extend(diags)
        if text is None:
            return None
        return self.load_text(text, shown, key, name or p.stem)

    def load_text(self, text: str, shown: str, key: str, name: str) -> ModuleInfo:
        self.sources[shown] = text
        self.real_paths[shown] = key
        tree, diags = parse(text, shown, self.parse_cache)
        self.diagnostics.extend(diags)
        info = ModuleInfo(shown, name, tree)
        self.modules[key] = info
        self._loading.append(key)
        try:
            self._bind_names(info, Path(key).parent)
        finally:
            self._loading.pop()
        return info

    def _bind_names(self, info: ModuleInfo, folder: Path) -> None:
        first: dict[str, Span] = {}

        def define(name: str, span: Span, value: object) -> None:
            if name in first:
                self.diagnostics.append(
                    Diagnostic(
                        "E0104",
                        f"`{name}` is defined more than once",
                        span,
                        label="defined again here",
                        labels=(Label(first[name], "first defined here"),),
                    )
                )
                return
            first[name] = span
            info.names[name] = value

        for item in info.tree.items:
            match item:
                case ast.Decl():
                    define(item.name.name, item.name.span, item)
                    self._check_param_names(item)
                case ast.Import():
                    mod = self._import(item.path, folder, item.span)
                    if mod is not None:
                        # `import a.b` binds `b`: modules are flat namespaces
                        bound = item.alias or item.path[-1]
                        define(bound.name, bound.span, mod)
                case ast.FromImport():
                    mod = self._import(item.path, folder, item.span)
                    if mod is None:
                        continue
                    for n in item.names:
                        if n.name in mod.names and isinstance(mod.names[n.name], ast.Decl):
                            define(n.name, n.span, ImportedDecl(mod.names[n.name], mod))
                        elif n.name in mod.names:
                            define(n.name, n.span, mod.names[n.name])
                        else:
                            self.diagnostics.append(unknown_member(mod, n))

    def _check_param_names(self, decl: ast.Decl) -> None:
        """Compile-time parameters and inputs of one declaration share one namespace."""
        seen: dict[str, Span] = {}
        names = [c.name for c in decl.ctparams or ()] + [p.name for p in decl.params]
        if isinstance(decl.ret, tuple):
            names += [o.name for o in decl.ret]
        for ident in names:
            if ident.name in seen:
                self.diagnostics.append(
                    Diagnostic(
                        "E0110",
                        f"`{ident.name}` is declared twice in the signature of `{decl.name.name}`",
                        ident.span,
                        label="declared again here",
                        labels=(Label(seen[ident.name], "first declared here"),),
                    )
                )
            else:
                seen[ident.name] = ident.span

    def _import(self, path: tuple[ast.Ident, ...], folder: Path, span: Span) -> ModuleInfo | None:
        rel = Path(*[p.name for p in path]).with_suffix(".mdl")
        dotted = ".".join(p.name for p in path)
        for base in (folder, stdlib_dir()):
            candidate = base / rel
            if candidate.is_file():
                key = str(candidate.resolve())
                if key in self._loading:
                    self.diagnostics.append(
                        Diagnostic(
                            "E0105",
                            f"import cycle: `{dotted}` imports itself through its imports",
                            span,
                        )
                    )
                    return None
                return self.load_file(candidate, path[-1].name)
        known = sorted(p.stem for p in stdlib_dir().glob("*.mdl"))
        close = difflib.get_close_matches(dotted, known, n=1)
        return self._fail(
            Diagnostic(
                "E0102",
                f"unknown module `{dotted}`",
                path[0].span.to(path[-1].span),
                label="not found",
                notes=(f"looked for `{rel}` beside this file and in the standard library",),
                help=f"did you mean `{close[0]}`?" if close else None,
            )
        )

    def _fail(self, d: Diagnostic) -> None:
        self.diagnostics.append(d)
        return None


@dataclass(frozen=True, eq=False)
class ImportedDecl:
    decl: ast.Decl
    module: ModuleInfo


def unknown_member(mod: ModuleInfo, n: ast.Ident) -> Diagnostic:
    close = difflib.get_close_matches(n.name, list(mod.names), n=1)
    return Diagnostic(
        "E0103",
        f"module `{mod.name}` has no `{n.name}`",
        n.span,
        help=f"did you mean `{close[0]}`?" if close else None,
    )
