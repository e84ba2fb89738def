"""The end-of-run summary on the console: a table per scenario, then one verdict line each."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from harness.report.text import cycle_statuses, figure, printable, tally, verdict

STYLE = {"PASSED": "bold green", "FAILED": "bold red", "ERROR": "bold magenta"}


def print_summary(console: Console, results: list[dict[str, Any]]) -> None:
    """Print each run's steps table and failures, then one verdict line per run."""
    for result in results:
        console.print(steps_table(result))
        for line in problems(result):
            console.print(line)
        console.print()
    for result in results:
        console.print(verdict_line(result))


def steps_table(result: dict[str, Any]) -> Table:
    """One row per step: its expectations met/failed and, for a cycle, the cycle's figures."""
    name = printable(str(result.get("scenario") or "scenario"))
    file = result.get("file")
    title = Text(name, style="bold")
    if file:
        title.append(f"  {printable(str(file))}", style="dim")
    counts = tally(result)
    caption = (
        f"{len(result.get('steps') or [])} steps · expectations: {counts.expectations_met} met, "
        f"{counts.expectations_failed} failed · thresholds: {counts.thresholds_held} held, "
        f"{counts.thresholds_exceeded} exceeded · {figure(result.get('seconds'))} s"
    )
    table = Table(title=title, caption=caption, title_justify="left", caption_justify="left")
    table.add_column("#", justify="right")
    table.add_column("step")
    table.add_column("line", justify="right")
    table.add_column("seconds", justify="right")
    table.add_column("expectations")
    table.add_column("cycle")
    table.add_column("summary", overflow="fold")

    expectations = result.get("expectations") or []
    cycles: dict[Any, list[dict[str, Any]]] = {}
    for c in result.get("cycles") or []:
        cycles.setdefault(c.get("step"), []).append(c)
    for step in result.get("steps") or []:
        index = step.get("index")
        mine = [e for e in expectations if e.get("step") == index]
        # Text, not str: a step's text may hold "[...]", which rich would read as markup.
        table.add_row(
            _text(figure(index)),
            _text(step.get("kind") or ""),
            _text(figure(step.get("line"))),
            _text(figure(step.get("seconds"))),
            _expectation_cell(mine),
            Text("\n".join(cycle_figures(c) for c in cycles.get(index, []))),
            _text(step.get("summary") or ""),
        )
    return table


def cycle_figures(cycle: dict[str, Any]) -> str:
    """Three short lines: 'full: 10,000 objects' / '9,990 ok, 0 failed, 10 skipped' /
    '120 updates, 4,000/s, Active' (short, so the table fits a narrow terminal)."""
    success, failure, skipped = cycle_statuses(cycle)
    last = [
        f"{figure((cycle.get('actions') or {}).get('Update', 0))} updates",
        f"{figure(cycle.get('objectsPerSecond'))}/s",
    ]
    if cycle.get("jobState"):
        last.append(str(cycle["jobState"]))
    if cycle.get("stopped"):
        last.append(f"stopped: {cycle['stopped']}")
    lines = [
        f"{cycle.get('mode') or 'cycle'}: {figure(cycle.get('objects'))} objects",
        f"{figure(success)} ok, {figure(failure)} failed, {figure(skipped)} skipped",
        ", ".join(last),
    ]
    return printable("\n".join(lines))


def problems(result: dict[str, Any]) -> list[Text]:
    """The run's error, failed expectations and exceeded thresholds with their details, in red."""
    lines: list[Text] = []
    if verdict(result) == "ERROR" or result.get("error"):
        error = printable(str(result.get("error") or "the scenario did not run to its end"))
        lines.append(Text(f"error: {error}", style="red"))
    for e in result.get("expectations") or []:
        if not e.get("passed"):
            where = f"step {e.get('step')} line {e.get('line')}: {e.get('name')}"
            detail = e.get("detail") or "expectation not met"
            lines.append(Text(printable(f"FAILED {where}: {detail}"), style="red"))
    for t in result.get("thresholds") or []:
        if not t.get("passed"):
            text = (
                f"EXCEEDED threshold {t.get('name')}: measured {figure(t.get('measured'))}, "
                f"limit {t.get('limit')}"
            )
            lines.append(Text(printable(text), style="red"))
    return lines


def verdict_line(result: dict[str, Any]) -> Text:
    """'PASSED quickstart (12.3 s)  results/quickstart/20250101T120000Z'."""
    outcome = verdict(result)
    line = Text(outcome, style=STYLE[outcome])
    line.append(f" {printable(str(result.get('scenario') or 'scenario'))}")
    line.append(f" ({figure(result.get('seconds'))} s)")
    if result.get("results_dir"):
        line.append(f"  {printable(str(result['results_dir']))}", style="dim")
    return line


def _expectation_cell(expectations: list[dict[str, Any]]) -> Text:
    if not expectations:
        return Text("")
    failed = sum(1 for e in expectations if not e.get("passed"))
    cell = Text(f"{len(expectations) - failed} met", style="green")
    if failed:
        cell.append(f", {failed} failed", style="red")
    return cell


def _text(value: Any) -> Text:
    return Text(printable(str(value)))
