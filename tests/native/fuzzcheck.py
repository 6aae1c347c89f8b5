"""Native vs reference on generated models: `Case` -> `Result` (failures, primitive coverage).

A case is compiled from its mdl source (so the whole front end runs), given random weights
(`init --random`), run by the reference interpreter and by the native JIT, and compared
output by output with native_harness.assert_close. Anything else than equal outputs is a
failure: a front-end error on a generated model, an exception while compiling natively
(an internal compiler error, a loop-IR verify error, E0801, ...), an error while running.

A failure is cut down before it is reported: a model-wide error is pinned on the
sub-graphs that fail alone; a mismatch on the first failing output, with only the
statements it depends on. The reduced case is saved as `<seed>.mdl`, `<seed>.npz` (inputs)
and `<seed>.weights.npz` (`mdlc verify <seed>.mdl --weights <seed>.weights.npz` replays
it). While a case runs, its source waits in `running-<seed>.mdl` in the save folder, so a
crash of the process leaves it behind.
"""

from __future__ import annotations

import traceback
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from graphgen import Case, SubGraph
from native_harness import assert_close

import mdl
from mdl import driver
from mdl.api import Model
from mdl.diagnostics import MdlError
from mdl.graph import Graph
from mdl.primitives import REGISTRY

WEIGHT_SEED = 0
MAX_SLICES = 8  # outputs tried one by one when reducing a model-wide failure


@dataclass(frozen=True)
class Problem:
    kind: str  # front end | reference run | native compile | native run | mismatch
    detail: str
    outputs: tuple[str, ...] = ()  # the mismatching outputs; () when the whole model failed
    call: int = 0  # the index of the inputs in Case.calls


@dataclass(frozen=True)
class Failure:
    seed: int  # the graph seed, or the first one of a model whose failure needs them all
    kind: str
    detail: str
    source: str
    saved: tuple[Path, ...] = ()

    def report(self) -> str:
        where = f"\nsaved: {', '.join(map(str, self.saved))}" if self.saved else ""
        return (
            f"fuzz failure, graph seed {self.seed}: {self.kind}\n{self.detail.rstrip()}\n"
            f"--- model ---\n{self.source}{where}"
        )


@dataclass
class Coverage:
    """Primitive nodes: in the graph as elaborated (what the reference runs), and left in
    the graph native code is generated from, after the optimizations folded constants
    and weight-only computation (with the reference semantics) and dropped dead code."""

    graph: Counter[str] = field(default_factory=Counter)
    native: Counter[str] = field(default_factory=Counter)

    def update(self, other: Coverage) -> None:
        self.graph.update(other.graph)
        self.native.update(other.native)


def _ops(graph: Graph) -> Counter[str]:
    return Counter(n.op for n in graph.nodes if n.op != "const")


def coverage_of(graph: Graph, weights: Mapping[str, np.ndarray]) -> Coverage:
    prepared, _ = driver.prepare_native(graph, weights)
    return Coverage(_ops(graph), _ops(prepared))


@dataclass
class Result:
    failures: list[Failure] = field(default_factory=list)
    coverage: Coverage = field(default_factory=Coverage)
    outputs: int = 0  # outputs compared


def _error_text(e: BaseException) -> str:
    if isinstance(e, MdlError):
        return str(e)
    lines = traceback.format_exception(e)
    return "".join(lines[-12:])


def case_coverage(case: Case, tmp: Path) -> Coverage:
    """The case's primitives, without running it."""
    path = tmp / f"cov-{case.seeds[0]}.mdl"
    path.write_text(case.source)
    graph = driver.compile_model(str(path)).graph
    assert graph is not None
    return coverage_of(graph, driver.init_weights(graph, seed=WEIGHT_SEED, random=True))


def load_native(path: Path, weights: dict[str, np.ndarray]) -> Model:
    return mdl.load(str(path), weights, backend="native")


def compare_output(name: str, native: np.ndarray, reference: np.ndarray) -> None:
    """AssertionError unless `native` equals `reference` within the harness's tolerances."""
    assert_close(native, reference)


def run_case(case: Case, tmp: Path) -> tuple[Coverage, list[Problem], int]:
    """(primitive coverage, problems, outputs compared) for one case."""
    path = tmp / f"case-{case.seeds[0]}.mdl"
    path.write_text(case.source)
    try:
        graph = driver.compile_model(str(path)).graph
        assert graph is not None
    except Exception as e:  # a generated model is valid by construction
        return Coverage(), [Problem("front end", _error_text(e))], 0
    coverage = Coverage(_ops(graph))
    weights = driver.init_weights(graph, seed=WEIGHT_SEED, random=True)
    reference = mdl.load(str(path), weights, backend="ref")
    try:
        native = load_native(path, weights)
        coverage = coverage_of(graph, weights)
    except Exception as e:
        return coverage, [Problem("native compile", _error_text(e))], 0
    compared = 0
    for call, inputs in enumerate(case.calls):
        when = f" (call {call + 1}: other batch sizes)" if call else ""
        try:
            with np.errstate(all="ignore"):
                want = reference.run(inputs)
        except Exception as e:  # inputs are valid by construction, index ranges included
            return coverage, [Problem("reference run", _error_text(e) + when, (), call)], compared
        try:
            got = native.run(inputs)
        except Exception as e:
            return coverage, [Problem("native run", _error_text(e) + when, (), call)], compared
        bad: dict[str, str] = {}
        for name, expected in want.items():
            try:
                compare_output(name, got[name], expected)
            except AssertionError as e:
                bad[name] = f"output `{name}`{when}: {str(e).strip()}"
        compared += len(want)
        if bad:
            problem = Problem("mismatch", "\n".join(bad.values()), tuple(bad), call)
            return coverage, [problem], compared
    return coverage, [], compared


@contextmanager
def in_flight(case: Case, save_dir: Path | None) -> Iterator[None]:
    """Keep the case on disk while it runs: a crash of the process leaves it there."""
    stem = None if save_dir is None else save_dir / f"running-{case.seeds[0]}"
    try:
        if stem is not None:
            stem.parent.mkdir(parents=True, exist_ok=True)
            stem.with_suffix(".mdl").write_text(case.source)
            np.savez(stem.with_suffix(".npz"), **case.inputs)
    except OSError:  # a read-only checkout: run without the safety net
        stem = None
    yield
    if stem is None:
        return
    stem.with_suffix(".mdl").unlink(missing_ok=True)
    stem.with_suffix(".npz").unlink(missing_ok=True)
    try:
        stem.parent.rmdir()  # only when empty: no failure was saved
    except OSError:
        pass


def save(case: Case, problem: Problem, seed: int, save_dir: Path) -> tuple[Path, ...]:
    """`<seed>.mdl` (the problem in comments at the top), `<seed>.npz` (the inputs of the
    failing call), `<seed>.weights.npz`; () when the folder cannot be written."""
    try:
        save_dir.mkdir(parents=True, exist_ok=True)
    except OSError:
        return ()
    source = save_dir / f"{seed}.mdl"
    lines = problem.detail.strip().splitlines()
    # a mismatch says most first; a traceback last
    header = "".join(f"# {line}\n" for line in (lines[:12] if problem.outputs else lines[-8:]))
    source.write_text(f"# fuzz failure ({problem.kind}), graph seed {seed}\n{header}{case.source}")
    inputs = save_dir / f"{seed}.npz"
    np.savez(inputs, **case.calls[min(problem.call, len(case.calls) - 1)])
    saved = [source, inputs]
    try:
        graph = driver.compile_model(str(source)).graph
        assert graph is not None
        weights = driver.init_weights(graph, seed=WEIGHT_SEED, random=True)
        if weights:
            path = save_dir / f"{seed}.weights.npz"
            np.savez(path, **weights)
            saved.append(path)
    except Exception:  # a front-end failure has no graph: the source says it all
        pass
    return tuple(saved)


def _one_output(graph: SubGraph, names: list[str], tmp: Path) -> tuple[Case, Problem] | None:
    """The smallest slice of `graph` computing one of `names` that still fails, if any."""
    slices = sorted((graph.restrict([n]) for n in names), key=lambda g: len(g.stmts))
    for small in slices[:MAX_SLICES]:
        case = Case.of([small])
        _, problems, _ = run_case(case, tmp)
        if problems:
            return case, problems[0]
    return None


def _reduce(case: Case, problem: Problem, tmp: Path) -> list[tuple[Case, Problem, int]]:
    """The smallest cases that still fail: (case, its problem, graph seed)."""
    if problem.outputs:  # a mismatch: the statements the first bad output needs
        graph = case.owner[problem.outputs[0]]
        found = _one_output(graph, [problem.outputs[0]], tmp)
        if found is None:
            single = Case.of([graph])
            _, problems, _ = run_case(single, tmp)
            found = (single, problems[0]) if problems else None
        return [(*found, graph.seed)] if found else [(case, problem, case.seeds[0])]
    # the whole model failed: the graphs that fail alone, then one output of each
    failing: list[tuple[Case, Problem, int]] = []
    for graph in case.graphs:
        single = Case.of([graph])
        _, problems = ((), [problem]) if len(case.graphs) == 1 else run_case(single, tmp)[:2]
        if problems:
            found = _one_output(graph, [n for n, _ in graph.outputs], tmp)
            failing.append((*found, graph.seed) if found else (single, problems[0], graph.seed))
    return failing or [(case, problem, case.seeds[0])]


def check(case: Case, tmp: Path, save_dir: Path | None = None) -> Result:
    """Run one case; reduce and save what fails."""
    with in_flight(case, save_dir):
        coverage, problems, outputs = run_case(case, tmp)
        result = Result(coverage=coverage, outputs=outputs)
        for problem in problems:
            for small, why, seed in _reduce(case, problem, tmp):
                saved = save(small, why, seed, save_dir) if save_dir is not None else ()
                detail = why.detail
                if why.outputs and problem.outputs[1:]:
                    detail += (
                        f"\n(also failing in the full model: {', '.join(problem.outputs[1:])})"
                    )
                result.failures.append(Failure(seed, why.kind, detail, small.source, saved))
    return result


def coverage_table(coverage: Coverage, skipped: Mapping[str, str] | None = None) -> str:
    """Every registered primitive: nodes generated / nodes native code computes."""
    names = sorted(REGISTRY)
    cells = [f"{n:<12}{coverage.graph.get(n, 0):>5}/{coverage.native.get(n, 0):<5}" for n in names]
    rows = ["  ".join(cells[i : i + 4]) for i in range(0, len(cells), 4)]
    skipped = skipped or {}
    missing = [n for n in names if not coverage.native.get(n) and n not in skipped]
    rows.append(f"never reaching native code: {', '.join(missing) if missing else 'none'}")
    rows.extend(f"not generated: {name}: {why}" for name, why in skipped.items())
    head = "primitive coverage (nodes generated / nodes left for native code after folding)"
    return head + "\n" + "\n".join(rows)
