"""`exwb run`: run YAML scenarios, each on its own in-process tenant, and write their reports."""

from __future__ import annotations

import argparse
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
from harness.report.model import ExpectationRecord, StepRecord

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
    p.add_argument("--quiet", "-q", action="store_true", help="no progress, only the summary")
    p.set_defaults(run=run)


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
    from harness.report import ReportError, print_summary, run_dir, write_reports
    from harness.scenario import ScenarioError, load_scenario, run_scenario

    files = scenario_files(args.scenarios)
    try:
        scenarios = [load_scenario(f) for f in files]  # all valid before any runs
    except ScenarioError as e:
        raise UsageError(str(e)) from None
    out = Console(soft_wrap=True)
    err = Console(stderr=True, soft_wrap=True)
    results = []
    for scenario in scenarios:
        folder = _fresh(run_dir(args.results, scenario.name))
        with _Progress(err, scenario, disable=args.quiet) as listener:
            result = run_scenario(scenario, folder, listener)
        result["results_dir"] = str(folder)  # for the summary's verdict line
        try:
            write_reports(result, folder)
        except ReportError as e:
            raise UsageError(str(e)) from None
        results.append(result)
    print_summary(out, results)
    return 0 if all(r["verdict"] == "passed" for r in results) else 1


def _fresh(folder: Path) -> Path:
    """`folder`, or `folder-2`, `-3` ... when a run in the same second already took it."""
    candidate, n = folder, 1
    while candidate.exists():
        n += 1
        candidate = folder.with_name(f"{folder.name}-{n}")
    return candidate


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
            spec = self.scenario.tenant
            self.console.print(
                f"[bold]{self.scenario.name}[/]: {spec.mailboxes:,} mailboxes, seed {spec.seed}, "
                f"{len(self.scenario.steps)} steps ({self.scenario.path})",
                highlight=False,
            )
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
        if self.disable:
            return
        failed = [e for e in expectations if not e["passed"]]
        mark = "[red]x[/]" if failed or record["summary"].startswith("error") else "[green]✓[/]"
        self.progress.console.print(
            f"  {mark} {record['index']:>2} {record['kind']:<17} {record['seconds']:7.2f} s  "
            f"{_escape(record['summary'])}",
            highlight=False,
        )
        for e in failed:
            self.progress.console.print(
                f"       [red]failed[/] {_escape(e['name'])} (line {e['line']}): "
                f"{_escape(e['detail'])}",
                highlight=False,
            )


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)
