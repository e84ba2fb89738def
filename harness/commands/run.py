"""`exwb run`: run YAML scenarios, each on its own in-process tenant, and write their reports."""

from __future__ import annotations

import argparse
import multiprocessing
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

from harness.core.errors import UsageError
from harness.report.model import ExpectationRecord, ScenarioResult, StepRecord

DEFAULT_SCENARIO = Path("scenarios/quickstart.yaml")
DEFAULT_RESULTS = Path("results")
# The repository this package was installed from (pip install -e): its scenarios/ folder is
# the fallback when `exwb run` is started elsewhere.
_REPO = Path(__file__).resolve().parent.parent.parent


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "run",
        help="run YAML scenarios and write their reports",
        description="Run each scenario on its own in-process tenant (fake AD and Exchange "
        "Online): its steps in order, its expectations and thresholds; write report.json, "
        "junit.xml, report.md and provisioning.jsonl to DIR/<scenario>/<UTC timestamp>/. "
        "Every file is validated before any runs. Exit 0 when every expectation and threshold "
        "holds, 1 when one fails or a step errs, 2 on an invalid scenario.",
    )
    p.add_argument(
        "scenarios",
        nargs="*",
        type=Path,
        metavar="SCENARIO",
        help=f"scenario files or folders of *.yaml (default {DEFAULT_SCENARIO})",
    )
    p.add_argument(
        "--results",
        type=Path,
        default=DEFAULT_RESULTS,
        metavar="DIR",
        help=f"where each run's folder goes (default {DEFAULT_RESULTS})",
    )
    p.add_argument(
        "--jobs",
        type=_jobs,
        default=1,
        metavar="N",
        help="run up to N scenarios at a time, each in its own process; progress and the "
        "summary stay in scenario order (default 1: one after another, in this process)",
    )
    p.add_argument("--quiet", "-q", action="store_true", help="no progress, only the summary")
    p.set_defaults(run=run)


def _jobs(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return n


def scenario_files(given: list[Path]) -> list[Path]:
    """The files to run: each given file, every *.yaml of each given folder (sorted)."""

    if not given:
        default = DEFAULT_SCENARIO if DEFAULT_SCENARIO.exists() else _REPO / DEFAULT_SCENARIO
        given = [default]
    files: list[Path] = []
    for path in given:
        if path.is_dir():
            found = sorted(path.glob("*.yaml"))
            if not found:
                raise UsageError(f"{path}: no *.yaml scenarios in this folder")
            files += found
        elif path.is_file():
            files.append(path)
        else:
            raise UsageError(f"{path}: no such scenario file or folder")
    return files


def run(args: argparse.Namespace) -> int:
    from harness.report import ReportError, print_summary, write_reports
    from harness.scenario import ScenarioError, load_scenario

    files = scenario_files(args.scenarios)
    try:
        scenarios = [load_scenario(f) for f in files]  # all valid before any runs
    except ScenarioError as e:
        raise UsageError(str(e)) from None
    out = Console(soft_wrap=True)
    err = Console(stderr=True, soft_wrap=True)
    runs: Iterator[ScenarioResult]
    if args.jobs == 1 or len(scenarios) == 1:
        runs = (_run_here(s, args.results, err, args.quiet) for s in scenarios)
    else:
        runs = _run_in_processes(scenarios, args.results, err, args.quiet, args.jobs)
    results = []
    for result in runs:
        try:
            write_reports(result, Path(result["results_dir"]))
        except ReportError as e:
            raise UsageError(str(e)) from None
        results.append(result)
    print_summary(out, results)
    return 0 if all(r["verdict"] == "passed" for r in results) else 1


def claim_run_dir(results: Path, scenario: str) -> Path:
    """A new folder for one run of `scenario` (`harness.report.run_dir`), or `-2`, `-3` ...
    when a run in the same second took it. Created here, and mkdir is atomic, so runs in
    parallel (`exwb run --jobs`, pytest -n) never share a folder."""
    from harness.report import run_dir

    folder = run_dir(results, scenario)
    folder.parent.mkdir(parents=True, exist_ok=True)
    candidate, n = folder, 1
    while True:
        try:
            candidate.mkdir()
            return candidate
        except FileExistsError:
            n += 1
            candidate = folder.with_name(f"{folder.name}-{n}")


def _run_here(scenario: Any, results: Path, err: Console, quiet: bool) -> ScenarioResult:
    """Run `scenario` in this process, its progress live on `err`."""
    from harness.scenario import run_scenario

    folder = claim_run_dir(results, scenario.name)
    with _Progress(err, scenario, disable=quiet) as listener:
        result = run_scenario(scenario, folder, listener)
    result["results_dir"] = str(folder)  # for the summary's verdict line
    return result


def _run_in_processes(
    scenarios: list[Any], results: Path, err: Console, quiet: bool, jobs: int
) -> Iterator[ScenarioResult]:
    """Run the scenarios `jobs` at a time in worker processes; yield their results in scenario
    order, each once its progress lines (recorded by the worker) are shown.

    The folders are claimed here, in scenario order, so a name two scenarios share gets its
    `-2` as in a serial run. Workers are spawned, not forked: this process may hold a running
    reactor thread (an embedding test), which a fork would copy without its thread."""
    folders = [claim_run_dir(results, s.name) for s in scenarios]
    context = multiprocessing.get_context("spawn")
    workers = min(jobs, len(scenarios))
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        futures: list[Future[tuple[ScenarioResult, list[_Step]]]] = [
            pool.submit(_run_in_worker, s.path, folder)
            for s, folder in zip(scenarios, folders, strict=True)
        ]
        try:
            for scenario, future in zip(scenarios, futures, strict=True):
                result, steps = future.result()
                if not quiet:
                    _print_header(err, scenario)
                    for record, expectations in steps:
                        _print_step(err, record, expectations)
                yield result
        finally:
            for future in futures:
                future.cancel()


_Step = tuple[StepRecord, list[ExpectationRecord]]  # a step's record and its expectations


def _run_in_worker(path: Path, folder: Path) -> tuple[ScenarioResult, list[_Step]]:
    """A worker process's job: load and run one scenario; its result and its steps' lines."""
    from harness.scenario import load_scenario, run_scenario

    recorder = _Recorder()
    result = run_scenario(load_scenario(path), folder, recorder)
    result["results_dir"] = str(folder)
    return result, recorder.steps


class _Recorder:
    """A `harness.scenario.Listener` that keeps each finished step for the parent to show."""

    def __init__(self) -> None:
        self.steps: list[_Step] = []

    def generating(self, done: int, total: int) -> None:
        pass

    def step_started(self, step: Any, what: str) -> None:
        pass

    def step_finished(self, record: StepRecord, expectations: list[ExpectationRecord]) -> None:
        self.steps.append((record, expectations))


class _Progress:
    """Live progress on stderr (a `harness.scenario.Listener`): a bar while the tenant is
    generated, a spinner while a step runs, then one line per step."""

    def __init__(self, console: Console, scenario: Any, disable: bool) -> None:
        self.console = console
        self.scenario = scenario
        self.disable = disable
        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            disable=disable,
            transient=True,
        )
        self.task: Any = None

    def __enter__(self) -> _Progress:
        if not self.disable:
            _print_header(self.console, self.scenario)
        self.progress.__enter__()
        self.task = self.progress.add_task("generating the tenant", total=None)
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.__exit__(None, None, None)

    def generating(self, done: int, total: int) -> None:
        self.progress.update(self.task, completed=done, total=total)

    def step_started(self, step: Any, what: str) -> None:
        description = f"step {step.index}/{len(self.scenario.steps)}: {what}"
        self.progress.update(self.task, description=description, completed=0, total=None)

    def step_finished(self, record: StepRecord, expectations: list[ExpectationRecord]) -> None:
        if not self.disable:
            _print_step(self.progress.console, record, expectations)


def _print_header(console: Console, scenario: Any) -> None:
    spec = scenario.tenant
    console.print(
        f"[bold]{scenario.name}[/]: {spec.mailboxes:,} mailboxes, seed {spec.seed}, "
        f"{len(scenario.steps)} steps ({scenario.path})",
        highlight=False,
    )


def _print_step(
    console: Console, record: StepRecord, expectations: list[ExpectationRecord]
) -> None:
    failed = [e for e in expectations if not e["passed"]]
    mark = "[red]x[/]" if failed or record["summary"].startswith("error") else "[green]✓[/]"
    console.print(
        f"  {mark} {record['index']:>2} {record['kind']:<17} {record['seconds']:7.2f} s  "
        f"{_escape(record['summary'])}",
        highlight=False,
    )
    for e in failed:
        console.print(
            f"       [red]failed[/] {_escape(e['name'])} (line {e['line']}): "
            f"{_escape(e['detail'])}",
            highlight=False,
        )


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)
