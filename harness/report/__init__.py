"""The files a scenario run leaves behind, and its console summary.

`write_reports` turns the runner's `ScenarioResult` (harness.report.model) into report.json,
junit.xml, report.md and provisioning.jsonl in one directory; `print_summary` prints the
end-of-run tables.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from harness import __version__
from harness.report.console import print_summary
from harness.report.junit import junit_xml
from harness.report.markdown import markdown
from harness.report.model import ScenarioResult
from harness.report.text import jsonable
from harness.tenant.files import TenantFileError, ensure_writable_dir, write_atomic

__all__ = [
    "JSON_NAME",
    "JUNIT_NAME",
    "MARKDOWN_NAME",
    "PROVISIONING_NAME",
    "ReportError",
    "ScenarioResult",
    "junit_xml",
    "markdown",
    "print_summary",
    "run_dir",
    "write_reports",
]

JSON_NAME = "report.json"
JUNIT_NAME = "junit.xml"
MARKDOWN_NAME = "report.md"
PROVISIONING_NAME = "provisioning.jsonl"
GENERATED_BY = f"exwb-harness {__version__}"

# Lines are copied in batches: a 200,000-object cycle logs ~100 MB, too much to hold at once and
# too many lines to hand over one by one.
_CHUNK = 1 << 20


class ReportError(Exception):
    """A report file cannot be written; the message names it."""


def write_reports(result: ScenarioResult, out_dir: Path) -> dict[str, Path]:
    """Write the run's four report files into `out_dir` (created if missing).

    Returns their paths by kind: "json", "junit", "markdown", "provisioning". Each file is
    written to a temporary name and renamed into place. Provisioning logs that cannot be read
    are noted in the reports' warnings; `result` itself is left unchanged.
    """
    out_dir = Path(out_dir)
    paths = {
        "json": out_dir / JSON_NAME,
        "junit": out_dir / JUNIT_NAME,
        "markdown": out_dir / MARKDOWN_NAME,
        "provisioning": out_dir / PROVISIONING_NAME,
    }
    try:
        ensure_writable_dir(out_dir)
        problems: list[str] = []
        logs = [Path(p) for p in result.get("provisioning_logs") or []]
        write_atomic(paths["provisioning"], concatenated(logs, problems))

        report = jsonable({"generatedBy": GENERATED_BY, **result})
        report["generatedBy"] = GENERATED_BY
        report["warnings"] = [*(report.get("warnings") or []), *problems]
        text = json.dumps(report, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
        write_atomic(paths["json"], [text])
        write_atomic(paths["junit"], [junit_xml(report)])
        write_atomic(paths["markdown"], [markdown(report, PROVISIONING_NAME)])
    except TenantFileError as e:
        raise ReportError(str(e)) from None
    return paths


def concatenated(logs: list[Path], problems: list[str]) -> Iterator[str]:
    """The lines of every log in order, each unchanged; a log that cannot be read (missing,
    not UTF-8) is skipped, or cut where it breaks, with a note appended to `problems`."""
    for log in logs:
        try:
            f = log.open("rb")
        except FileNotFoundError:
            problems.append(f"provisioning log {log} is missing; left out of {PROVISIONING_NAME}")
            continue
        except OSError as e:
            problems.append(f"provisioning log {log} cannot be read ({e.strerror}); left out")
            continue
        batch: list[str] = []
        size = 0
        lineno = 0
        try:
            with f:
                # Binary lines keep their endings exactly (CRLF stays CRLF).
                for raw in f:
                    lineno += 1
                    line = raw.decode("utf-8")
                    if not line.endswith("\n"):
                        line += "\n"  # else the next log's first line would join this one
                    batch.append(line)
                    size += len(line)
                    if size >= _CHUNK:
                        yield "".join(batch)
                        batch, size = [], 0
        except UnicodeDecodeError:
            problems.append(
                f"provisioning log {log} line {lineno} is not UTF-8; the log is cut there"
            )
        except OSError as e:
            problems.append(f"provisioning log {log} failed at line {lineno + 1} ({e.strerror})")
        if batch:
            yield "".join(batch)


def run_dir(results: Path, scenario: str, started: datetime | None = None) -> Path:
    """`results/<scenario>/<UTC timestamp>` for a run, e.g. results/quickstart/20250101T120000Z:
    no colons, so the path is valid on Windows too; not created here."""
    # Wall time, not the harness clock: the folder names this machine's run, and a simulated
    # clock starts every run at the same instant (runs would share a name).
    when = (started or datetime.now(UTC)).astimezone(UTC)
    name = re.sub(r"[^\w.-]+", "_", scenario).strip("._") or "scenario"
    return Path(results) / name / when.strftime("%Y%m%dT%H%M%SZ")
