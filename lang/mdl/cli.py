"""Command line -> exit code: the `mdlc` program's argument parser and entry point.

`main(argv)` parses the arguments and `run_command` hands them to one
function per command in `cli_commands.py`. Exit codes are a contract: 0 ok,
1 diagnostics or bad input, 2 usage error; whatever a command lets escape is
turned into one of them, so a user never sees a Python traceback (an
unexpected exception becomes an E0901 internal-error diagnostic, with the
traceback only when MDL_BACKTRACE is set). Nothing heavy (numpy, lark, the
driver) is imported here, so `mdlc --help` and a usage error answer at once.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import IO

from . import __version__
from .diagnostics import Diagnostic, MdlError

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2

_DESCRIPTION = "mdl compiler: check, format, run and inspect .mdl models."
_EPILOG = """\
exit status: 0 ok, 1 diagnostics or bad input, 2 usage error.
`mdlc COMMAND --help` describes one command; `mdlc explain E0302` explains an error code.
Colour: on a terminal unless NO_COLOR is set."""


def _define(text: str) -> tuple[str, int | float | bool]:
    """`-D NAME=VALUE` -> (name, value), parsed by the driver as `mdl.load(defines=...)` does."""
    from .driver import parse_define

    try:
        return parse_define(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _positive_int(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, not `{text}`") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected a number of at least 1, not {n}")
    return n


def _seed(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, not `{text}`") from None
    if n < 0:
        raise argparse.ArgumentTypeError(f"the seed must not be negative, not {n}")
    return n


def _add_defines(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "-D",
        dest="defines",
        action="append",
        type=_define,
        default=[],
        metavar="NAME=VALUE",
        help="override a compile-time argument of the model (repeatable; the last one wins)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mdlc",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"mdlc {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        return commands.add_parser(
            name, help=help_text, description=help_text[:1].upper() + help_text[1:] + "."
        )

    p = command("check", "check source files and print their diagnostics")
    p.add_argument("files", nargs="+", metavar="FILE", help=".mdl source files")
    p.add_argument(
        "--format",
        choices=("human", "short", "json"),
        default="human",
        help="human: rustc-style on stderr (default); short: one line each on stderr; "
        "json: one document on stdout",
    )
    _add_defines(p)

    p = command("fmt", "format source files in place (canonical layout, comments kept)")
    p.add_argument("files", nargs="+", metavar="FILE", help=".mdl source files")
    p.add_argument(
        "--check",
        action="store_true",
        help="change nothing; list the files that would change and exit 1 if any would",
    )

    p = command("init", "write initial weights from the source's initialisers")
    p.add_argument("file", metavar="FILE", help="the model's .mdl source")
    p.add_argument(
        "-o",
        "--output",
        metavar="W.safetensors",
        help="weights file to write (.safetensors or .npz; default: FILE's stem + .safetensors)",
    )
    p.add_argument("--seed", type=_seed, default=0, metavar="N", help="random seed (default 0)")
    p.add_argument(
        "--random",
        action="store_true",
        help="random values for every float tensor, ignoring constant initialisers "
        "(no zero biases or unit scales; for testing)",
    )
    _add_defines(p)

    p = command("run", "run a model on .npy inputs and summarise its outputs")
    p.add_argument("file", metavar="FILE", help="the model's .mdl source")
    p.add_argument("--weights", required=True, metavar="W", help=".safetensors or .npz weights")
    p.add_argument(
        "--input",
        dest="inputs",
        action="append",
        default=[],
        metavar="[NAME=]x.npy",
        help="an input array; without NAME= inputs are taken in declared order (repeatable)",
    )
    p.add_argument(
        "--backend",
        choices=("ref", "native"),
        default="ref",
        help="ref: the numpy reference interpreter (default); native: compiled code",
    )
    p.add_argument("-o", "--output", metavar="out.npz", help="save the outputs under their names")
    p.add_argument(
        "--fast-math",
        action="store_true",
        help="native code may reorder float arithmetic (faster; results differ from the "
        "reference in the last bits; NaN and Inf still honoured)",
    )
    _add_defines(p)

    p = command("build", "compile a model to an executable, shared library, object or IR")
    p.add_argument("file", metavar="FILE", help="the model's .mdl source")
    p.add_argument("--weights", required=True, metavar="W", help=".safetensors or .npz weights")
    p.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="OUT",
        help="file to write (shared/object also write PREFIX.h beside it, PREFIX from OUT's "
        "name: build/libdigits.so -> digits.h)",
    )
    p.add_argument(
        "--emit",
        choices=("exe", "shared", "object", "llvm", "asm", "header"),
        default="exe",
        help="exe: `./OUT [--out DIR] INPUT.npy...` (default); shared: library + header; "
        "object: relocatable .o with the same API; llvm: .ll; asm: .s; header: the C header",
    )
    p.add_argument(
        "--cpu",
        metavar="NAME",
        help="target CPU (default x86-64-v3, portable; `native`: this machine, as the JIT)",
    )
    p.add_argument(
        "--weights-mode",
        choices=("embed", "sidecar"),
        default="embed",
        help="embed: weights inside the artifact (default); sidecar: PREFIX.weights.safetensors "
        "beside it, memory-mapped and checked by SHA-256 when a context is created",
    )
    p.add_argument(
        "--fast-math",
        action="store_true",
        help="native code may reorder float arithmetic (faster; results differ from the "
        "reference in the last bits; NaN and Inf still honoured)",
    )
    _add_defines(p)

    p = command("import", "convert an ONNX model to readable .mdl source + .safetensors weights")
    p.add_argument("model", metavar="MODEL.onnx", help="the ONNX file (opset 13 or newer)")
    p.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="OUT.mdl",
        help="the source to write; the weights go to OUT.safetensors beside it",
    )

    p = command("export", "write a model and its weights as an ONNX file")
    p.add_argument("file", metavar="FILE", help="the model's .mdl source")
    p.add_argument("--weights", required=True, metavar="W", help=".safetensors or .npz weights")
    p.add_argument("-o", "--output", required=True, metavar="MODEL.onnx", help="file to write")
    _add_defines(p)

    p = command("verify", "compare the native backend with the reference on random inputs")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--weights", required=True, metavar="W")
    p.add_argument("--seed", type=int, default=0, help="seed of the random inputs (default 0)")
    p.add_argument("--batch", type=int, default=2, help="value of symbolic dims (default 2)")
    p.add_argument("--rtol", type=float, default=1e-4, help="relative tolerance (default 1e-4)")
    p.add_argument("--atol", type=float, default=1e-5, help="absolute tolerance (default 1e-5)")
    p.add_argument(
        "--fast-math",
        action="store_true",
        help="native code may reorder float arithmetic (faster; results differ from the "
        "reference in the last bits; NaN and Inf still honoured)",
    )
    _add_defines(p)

    p = command("stats", "parameters, FLOPs and activation memory per layer instance")
    p.add_argument("file", metavar="FILE", help="the model's .mdl source")
    p.add_argument(
        "--batch",
        type=_positive_int,
        default=1,
        metavar="N",
        help="value for every symbolic dim such as B (default 1)",
    )
    p.add_argument(
        "--depth",
        type=_positive_int,
        default=None,
        metavar="N",
        help="show layer paths up to N levels deep (default: all)",
    )
    _add_defines(p)

    p = command("graph", "draw the model's dataflow graph (Graphviz DOT or SVG)")
    p.add_argument("file", metavar="FILE", help="the model's .mdl source")
    p.add_argument(
        "-o",
        "--output",
        metavar="g.dot|g.svg",
        help="file to write; .svg needs Graphviz `dot` (default: DOT text on stdout)",
    )
    _add_defines(p)

    p = command("explain", "explain an error code")
    p.add_argument("code", metavar="CODE", help="an error code such as E0302")

    return parser


class UsageError(Exception):
    """A command-line value the command cannot use: exit 2 with a one-line message."""


class Console:
    """Where a command writes: results to `out`, diagnostics and progress to `err`."""

    def __init__(self, out: IO[str], err: IO[str], env: Mapping[str, str]):
        self.out = out
        self.err = err
        self.err_is_tty = _isatty(err)
        # https://no-color.org: any non-empty NO_COLOR turns colour off.
        self.color = self.err_is_tty and not env.get("NO_COLOR")
        self.sources: dict[str, str] = {}  # source texts for rendering diagnostics

    def report(
        self,
        diags: Sequence[Diagnostic],
        sources: Mapping[str, str] | None = None,
        fmt: str = "human",
    ) -> None:
        from .render import render_human, render_short

        if not diags:
            return
        known = {**self.sources, **(sources or {})}
        if fmt == "short":
            self.err.write(render_short(diags, known))
        else:
            self.err.write(render_human(diags, known, color=self.color) + "\n")
        self.err.flush()

    @contextmanager
    def status(self, text: str) -> Iterator[None]:
        """A transient status line for a long step, shown only on a terminal."""
        if not self.err_is_tty:
            yield
            return
        self.err.write(f"\r\x1b[K{text}...")
        self.err.flush()
        try:
            yield
        finally:
            self.err.write("\r\x1b[K")
            self.err.flush()


def _isatty(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def run_command(args: argparse.Namespace, console: Console | None = None) -> int:
    console = console or Console(sys.stdout, sys.stderr, os.environ)
    if args.command in _NO_BLAS_COMMANDS:
        _import_numpy_single_threaded()
    from . import cli_commands

    handler = getattr(cli_commands, f"cmd_{args.command}")
    try:
        return handler(args, console)
    except UsageError as e:
        console.err.write(f"mdlc {args.command}: error: {e}\n")
        return EXIT_USAGE
    except MdlError as e:
        console.report(e.diagnostics)
        return EXIT_ERROR
    except KeyboardInterrupt:
        console.err.write("\ninterrupted\n")
        return 130
    except BrokenPipeError:
        _silence_stdout()
        return EXIT_ERROR
    except Exception as e:
        return _internal_error(e, args.command, console)


# Commands that use numpy only for small constants: OpenBLAS need not start its threads.
_NO_BLAS_COMMANDS = frozenset({"check"})
_BLAS_THREADS = "OPENBLAS_NUM_THREADS"


def _import_numpy_single_threaded() -> None:
    """Import numpy with one BLAS thread (OpenBLAS reads the variable once, as it loads).

    Starting a thread per core costs `mdlc check` ~0.05 s of CPU and more on a busy
    machine. The environment is restored at once; a user's own setting is kept.
    """
    if "numpy" in sys.modules or _BLAS_THREADS in os.environ:
        return
    os.environ[_BLAS_THREADS] = "1"
    try:
        import numpy  # noqa: F401
    except ImportError:
        pass
    finally:
        del os.environ[_BLAS_THREADS]


def _internal_error(e: Exception, command: str, console: Console) -> int:
    notes = [f"while running `mdlc {command}`" if command else "while reading the command line"]
    if os.environ.get("MDL_BACKTRACE"):
        import traceback

        console.err.write(traceback.format_exc())
    else:
        notes.append("set MDL_BACKTRACE=1 to print the Python traceback")
    detail = str(e).strip().splitlines()
    message = f"internal compiler error (please report): {type(e).__name__}"
    if detail:
        message += f": {detail[0]}"
    console.report([Diagnostic("E0901", message, notes=tuple(notes))])
    return EXIT_ERROR


def _silence_stdout() -> None:
    """The reader of stdout went away (`| head`): stop Python complaining at exit."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass


def _exit_code(code: object) -> int:
    """SystemExit.code -> int, as the interpreter would turn it into a process status."""
    if code is None:
        return EXIT_OK
    if isinstance(code, int):
        return code
    return EXIT_ERROR


def main(argv: Sequence[str] | None = None) -> int:
    """Run `mdlc` with `argv` (default: the process arguments); returns the exit code."""
    # One short run allocates many objects that live to its end (syntax trees, graphs): the
    # default collector would scan them ~100 times during `mdlc check` of 1,000 lines, ~15%
    # of its time. Collect young objects every 100,000 allocations instead of every 700
    # (restored after, for callers in a longer-lived process).
    thresholds = gc.get_threshold()
    gc.set_threshold(100_000, 10, 10)
    try:
        return _main(argv)
    finally:
        gc.set_threshold(*thresholds)


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help, --version and usage errors: argparse already printed
        return _exit_code(e.code)
    except Exception as e:  # a value parser (-D) failed in an unexpected way
        return _internal_error(e, "", Console(sys.stdout, sys.stderr, os.environ))
    args.defines = dict(args.defines) if hasattr(args, "defines") else {}
    return run_command(args)


if __name__ == "__main__":
    # Under `python -m mdl.cli` this file runs as `__main__`, a second copy of the
    # module: call the package's own copy, whose UsageError the commands raise.
    from mdl.cli import main as package_main

    sys.exit(package_main())
