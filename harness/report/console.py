"""The end-of-run summary on the console: a table per scenario, then one verdict line each.

Laid out for the console's width: 80 columns (a pipe, a CI log) drops the line column and
shortens the headers; a wide terminal shows every column. Each step has one outcome cell (a
cycle's figures, an expect step's count, or the step's summary), so a cycle is shown once, and
identifiers are never folded mid-word: fixed columns do not wrap, the outcome wraps at spaces.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

from rich import box
from rich.console import Console
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from harness.report.model import ExpectationRecord, ScenarioResult, StepCycle, StepRecord
from harness.report.text import cycle_statuses, figure, plural, printable, tally, verdict

STYLE = {"PASSED": "bold green", "FAILED": "bold red", "ERROR": "bold magenta"}
NARROW = 100  # below this many columns the table leaves out the line column


def print_summary(console: Console, results: Sequence[ScenarioResult]) -> None:
    """Print each run's steps table and failures, then one verdict line per run."""
    for result in results:
        console.print(steps_table(result, console.width))
        # Below the table, not its caption: a caption wraps to the table's width.
        console.print(Text(counts_line(result), style="dim"), soft_wrap=False)
        for line in problems(result):
            # Wrapped to the width even on a soft-wrapping console: a CI log does not wrap.
            console.print(line, soft_wrap=False)
        console.print()
    for result in results:
        console.print(verdict_line(result), soft_wrap=False)


def steps_table(result: ScenarioResult, width: int = 160) -> Table:
    """One row per step: its number, kind, line, seconds and outcome."""
    narrow = width < NARROW
    name = printable(str(result.get("scenario") or "scenario"))
    file = result.get("file")
    title = Text(name, style="bold")
    if file:
        title.append(f"  {printable(str(file))}", style="dim")
    table = Table(
        title=title,
        title_justify="left",
        box=box.SIMPLE_HEAD if narrow else box.HEAVY_HEAD,
        width=width if narrow else None,
    )
    table.add_column("#", justify="right", no_wrap=True)
    table.add_column("step", no_wrap=True)
    if not narrow:
        table.add_column("line", justify="right", no_wrap=True)
    table.add_column("s" if narrow else "seconds", justify="right", no_wrap=True)
    table.add_column("outcome", ratio=1)

    expectations = result.get("expectations") or []
    cycles: dict[int, list[StepCycle]] = {}
    for c in result.get("cycles") or []:
        cycles.setdefault(c.get("step"), []).append(c)
    for step in result.get("steps") or []:
        index = step.get("index")
        mine = [e for e in expectations if e.get("step") == index]
        # Text, not str: a step's text may hold "[...]", which rich would read as markup.
        cells = [_text(figure(index)), _text(step.get("kind") or "")]
        if not narrow:
            cells.append(_text(figure(step.get("line"))))
        cells += [_text(figure(step.get("seconds"))), _outcome(step, mine, cycles.get(index, []))]
        table.add_row(*cells)
    return table


def counts_line(result: ScenarioResult) -> str:
    """'3 steps · expectations: 2 met, 0 failed · thresholds: 1 held, 0 exceeded · 12.35 s'."""
    counts = tally(result)
    return (
        f"{len(result.get('steps') or [])} steps · expectations: {counts.expectations_met} met, "
        f"{counts.expectations_failed} failed · thresholds: {counts.thresholds_held} held, "
        f"{counts.thresholds_exceeded} exceeded · {figure(result.get('seconds'))} s"
    )


def _outcome(
    step: StepRecord, expectations: list[ExpectationRecord], cycles: list[StepCycle]
) -> Text:
    # The step's summary repeats what the cycle figures and the expectation count say.
    if cycles:
        faults = (step.get("figures") or {}).get("faultsInjected") or {}
        return Text(cycle_figures(cycles, faults))
    if expectations:
        return _expectation_cell(expectations)
    return _text(step.get("summary") or "")


def cycle_figures(cycles: Sequence[StepCycle], faults: dict[str, int] | None = None) -> str:
    """A step's cycles (on demand: several of one object each) in three short lines:
    'full: 10,000 objects' / '9,990 ok, 0 failed, 10 skipped' / '120 updates, 4,000/s, Active',
    then retries, resync, injected faults and a stop when there were any."""
    statuses: Counter[str] = Counter()
    updates = objects = retries = 0
    seconds = 0.0
    for c in cycles:
        statuses.update(c.get("statuses") or {})
        updates += (c.get("actions") or {}).get("Update", 0)
        objects += c.get("objects") or 0
        seconds += c.get("seconds") or 0.0
        retries += sum((c.get("retries") or {}).values())
    last = cycles[-1]
    mode = last.get("mode") or "cycle"
    rate = last.get("objectsPerSecond") if len(cycles) == 1 else _rate(objects, seconds)
    success, failure, skipped = cycle_statuses(statuses)
    counts = f"{figure(success)} ok, {figure(failure)} failed, {figure(skipped)} skipped"
    if mode == "dry-run":
        counts += " (dry run)"
        work = [f"{plural(updates, 'update')} planned"]
    else:
        work = [plural(updates, "update")]
    if objects:
        work.append(f"{figure(rate)}/s")
    if last.get("jobState"):
        work.append(str(last["jobState"]))
    lines = [f"{mode}: {plural(objects, 'object')}", counts, ", ".join(work)]
    more = []
    if retries:
        more.append(plural(retries, "retry", "retries"))
    if any(c.get("resynced") for c in cycles):
        more.append("resynced")
    if faults:
        more.append("faults " + ", ".join(f"{k} {figure(n)}" for k, n in faults.items()))
    if more:
        lines.append(", ".join(more))
    if last.get("stopped"):
        lines.append(f"stopped: {last['stopped']}")
    return printable("\n".join(lines))


def _rate(objects: int, seconds: float) -> float | None:
    return round(objects / seconds, 1) if objects and seconds else None


def problems(result: ScenarioResult) -> list[Text]:
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


def verdict_line(result: ScenarioResult) -> Text:
    """'PASSED quickstart (12.3 s)  results/quickstart/20250101T120000Z'."""
    outcome = verdict(result)
    line = Text(outcome, style=STYLE[outcome])
    line.append(f" {printable(str(result.get('scenario') or 'scenario'))}")
    line.append(f" ({figure(result.get('seconds'))} s)")
    if result.get("results_dir"):
        line.append(f"  {printable(str(result.get('results_dir')))}", style="dim")
    return line


def longest_word(values: Iterable[str]) -> int:
    """The length of the longest space-separated word in `values`: the least width a wrapped
    column needs so that rich never folds an identifier (a cmdlet, a step id) mid-word."""
    return max((len(w) for v in values for w in v.split()), default=1)


def print_rows(
    console: Console,
    title: str,
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    fixed: int,
) -> None:
    """Rows whose first `fixed` cells are short identifiers and whose others are prose with long
    words in it (cmdlets, GUIDs): a table when every word fits whole in its column, else, at
    80 columns, one line of the identifiers per row with each prose cell indented below it."""
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in headers]
    widths = [max(len(headers[i]), *(len(c) for c in columns[i])) for i in range(fixed)]
    words = [max(len(headers[i]), longest_word(columns[i])) for i in range(fixed, len(headers))]
    # A rich table pads each cell by one space a side and draws a border between columns.
    if sum(widths) + sum(words) + 3 * len(headers) + 1 <= console.width:
        table = Table(title=title, title_justify="left")
        for i, header in enumerate(headers):
            if i < fixed:
                table.add_column(header, no_wrap=True)
            else:
                table.add_column(header, min_width=words[i - fixed])
        for row in rows:
            table.add_row(*(_text(c) for c in row))
        console.print(table)
        return
    console.print(Text(f"{title}:", style="bold"), soft_wrap=False)
    for row in rows:
        ids = "  ".join(c.ljust(w) for c, w in zip(row[:fixed], widths, strict=True))
        console.print(_text(ids.rstrip()), soft_wrap=False)
        for header, cell in zip(headers[fixed:], row[fixed:], strict=True):
            console.print(Padding(_text(f"{header}: {cell}"), (0, 0, 0, 4)), soft_wrap=False)


def _expectation_cell(expectations: list[ExpectationRecord]) -> Text:
    failed = sum(1 for e in expectations if not e.get("passed"))
    cell = Text(f"{len(expectations) - failed} met", style="green")
    if failed:
        cell.append(f", {failed} failed", style="red")
    return cell


def _text(value: object) -> Text:
    return Text(printable(str(value)))
