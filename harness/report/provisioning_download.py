"""The provisioning log downloaded as the Entra portal gives it (microsoft-facts §8.3): JSON (one
array of provisioningObjectSummary records), or CSV as three files joined on the change id:
`ProvisioningLogs.csv` (one row per record), `ProvisioningLogs_ProvisioningSteps.csv` (one row
per step) and `ProvisioningLogs_ModifiedProperties.csv` (one row per modified property).

The portal's CSV column headers are not documented; these name the record's properties in
words (an exwb choice). CSV files are written as preview.csv is: UTF-8 with a byte-order mark,
CRLF, RFC 4180 quoting, a cell Excel would run as a formula made text (`preview_csv.cell`).
Records come newest first, as the portal lists them, and are streamed: one record is held at a
time. A line that is not a record raises `harness.engine.log.LogError` naming file:line.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.engine import log as provlog
from harness.report.preview_csv import cell
from harness.tenant.files import WrittenFile, write_atomic

LOGS = "ProvisioningLogs.csv"
STEPS = "ProvisioningLogs_ProvisioningSteps.csv"
MODIFIED = "ProvisioningLogs_ModifiedProperties.csv"
STATUSES = ("success", "failure", "skipped", "warning")
_BOM = "\ufeff"

Row = Callable[[dict[str, Any]], Iterable[list[Any]]]


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":")) if value else ""
    return str(value)


def _log_row(rec: dict[str, Any]) -> Iterable[list[Any]]:
    error = provlog.error_info(rec) or {}
    src, tgt = rec.get("sourceIdentity") or {}, rec.get("targetIdentity") or {}
    by = rec.get("initiatedBy") or {}
    sp = rec.get("servicePrincipal") or {}
    yield [
        rec.get("activityDateTime"),
        rec.get("id"),
        rec.get("changeId"),
        rec.get("cycleId"),
        rec.get("jobId"),
        provlog.action(rec),
        provlog.status(rec),
        error.get("errorCode"),
        provlog.reason(rec),
        error.get("errorCategory"),
        error.get("recommendedAction"),
        src.get("id"),
        src.get("displayName"),
        src.get("identityType"),
        tgt.get("id"),
        tgt.get("displayName"),
        tgt.get("identityType"),
        (rec.get("sourceSystem") or {}).get("displayName"),
        (rec.get("targetSystem") or {}).get("displayName"),
        sp.get("id"),
        sp.get("displayName"),
        by.get("initiatorType"),
        by.get("displayName"),
        rec.get("durationInMilliseconds"),
        rec.get("tenantId"),
    ]


LOG_COLUMNS = (
    "Date (UTC)", "Id", "Change ID", "Cycle ID", "Job ID", "Action", "Status", "Error Code",
    "Status Reason", "Error Category", "Recommended Action", "Source Identity ID",
    "Source Identity Name", "Source Identity Type", "Target Identity ID", "Target Identity Name",
    "Target Identity Type", "Source System", "Target System", "Service Principal ID",
    "Service Principal Name", "Initiated By Type", "Initiated By", "Duration (ms)", "Tenant ID",
)  # fmt: skip
STEP_COLUMNS = ("Change ID", "Step", "Name", "Type", "Status", "Description", "Details")
MODIFIED_COLUMNS = ("Change ID", "Property", "Old Value", "New Value")


def _step_rows(rec: dict[str, Any]) -> Iterable[list[Any]]:
    for n, s in enumerate(provlog.steps(rec), 1):
        yield [
            rec.get("changeId"),
            n,
            s.get("name"),
            s.get("provisioningStepType"),
            s.get("status"),
            s.get("description"),
            s.get("details"),
        ]


def _modified_rows(rec: dict[str, Any]) -> Iterable[list[Any]]:
    for m in rec.get("modifiedProperties") or []:
        yield [rec.get("changeId"), m.get("displayName"), m.get("oldValue"), m.get("newValue")]


@dataclass(frozen=True, slots=True)
class Selection:
    """Which records to download: all, or those of one cycle and of some statuses."""

    cycle: str | None = None
    statuses: frozenset[str] = field(default_factory=frozenset)  # Graph's spelling: failure

    def wants(self, rec: dict[str, Any]) -> bool:
        if self.cycle is not None and rec.get("cycleId") != self.cycle:
            return False
        return not self.statuses or provlog.status(rec).lower() in self.statuses


def records(state_dir: Path, selection: Selection) -> Iterator[dict[str, Any]]:
    """The state folder's records, newest first, that `selection` wants."""
    for path in reversed(provlog.log_files(state_dir)):
        for _, rec in provlog.read_newest_first(path):
            if selection.wants(rec):
                yield rec


def json_chunks(recs: Iterable[dict[str, Any]]) -> Iterator[str]:
    """One JSON array, a record per line, streamed."""
    first = True
    for rec in recs:
        yield ("[\n" if first else ",\n") + json.dumps(rec, ensure_ascii=False)
        first = False
    yield "[]\n" if first else "\n]\n"


def _csv_chunks(
    columns: tuple[str, ...], rows: Row, recs: Iterable[dict[str, Any]]
) -> Iterator[str]:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(columns)
    yield _BOM + buf.getvalue()
    for rec in recs:
        buf.seek(0)
        buf.truncate()
        for row in rows(rec):
            w.writerow([cell(_text(v)) for v in row])
        yield buf.getvalue()


@dataclass(frozen=True, slots=True)
class Download:
    files: list[WrittenFile]
    records: int


def write_json(state_dir: Path, selection: Selection, out: Path) -> Download:
    counted = _Counter(records(state_dir, selection))
    written = write_atomic(out, json_chunks(counted))
    return Download([written], counted.n)


def write_csv(state_dir: Path, selection: Selection, folder: Path) -> Download:
    """The three CSV files in `folder`; each a pass over the logs, so nothing is held."""
    files, n = [], 0
    for name, columns, rows in (
        (LOGS, LOG_COLUMNS, _log_row),
        (STEPS, STEP_COLUMNS, _step_rows),
        (MODIFIED, MODIFIED_COLUMNS, _modified_rows),
    ):
        counted = _Counter(records(state_dir, selection))
        files.append(write_atomic(folder / name, _csv_chunks(columns, rows, counted)))
        n = counted.n
    return Download(files, n)


class _Counter:
    """Counts what passes through."""

    def __init__(self, items: Iterable[dict[str, Any]]) -> None:
        self.items = items
        self.n = 0

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for item in self.items:
            self.n += 1
            yield item
