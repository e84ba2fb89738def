"""The provisioning log: one JSON line per object per cycle, shaped like Entra's log entries.

Fields: cycleId, activityDateTime, action (Update, Other), status (Success, Failure, Skipped),
sourceId, targetDn, modifiedProperties [{displayName, oldValue, newValue}], provisioningSteps
[{name, status, description}], errorCode and statusReason.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from harness.core import clock

# (name, provisioningStepType) of the four steps, as provisionOnDemand reports them for the
# EXO-to-AD writeback job (the matching step is named EntryImport there too).
STEPS = (
    ("EntryImport", "Import"),
    ("EntryImport", "Matching"),
    ("EntrySynchronizationScoping", "Scoping"),
    ("EntryExportUpdate", "Export"),
)


@dataclass(slots=True)
class Entry:
    source_id: str
    action: str = "Other"
    status: str = "Success"
    target_dn: str | None = None
    modified: list[dict[str, Any]] = field(default_factory=list)
    steps: list[dict[str, str]] = field(default_factory=list)
    error_code: int | None = None
    reason: str = ""

    def step(self, index: int, status: str, description: str) -> None:
        name, kind = STEPS[index]
        self.steps.append(
            {
                "name": name,
                "provisioningStepType": kind,
                "status": status,
                "description": description,
            }
        )

    def record(self, cycle_id: str) -> dict[str, Any]:
        """The entry as one provisioning-log JSON object."""
        return {
            "cycleId": cycle_id,
            "activityDateTime": clock.now().isoformat(timespec="seconds"),
            "action": self.action,
            "status": self.status,
            "sourceId": self.source_id,
            "targetDn": self.target_dn,
            "modifiedProperties": self.modified,
            "provisioningSteps": self.steps,
            "errorCode": self.error_code,
            "statusReason": self.reason,
        }


def open_next(folder: Path, kind: str) -> tuple[Path, IO[str]]:
    """Create `<folder>/<kind>-<n>.jsonl` with n one above the highest of that kind there.

    The number counts log files, not cycles: a cycle retried after a crash (its state unsaved,
    its log a record of writes that reached AD) gets the next number instead of overwriting, so
    the names sort in the order the logs were written.

    The folder is listed once per process (a served job writes a log every cycle, thousands
    over a month, so listing it each time made every cycle slower than the last); after that
    the process remembers the last number it created and probes upward with an exclusive
    create, which steps past the logs another process (`exwb cycle` on the same state folder)
    or a crashed cycle wrote meanwhile. If the remembered log is gone (the folder was emptied)
    the folder is listed again.
    """
    key = (str(folder.absolute()), kind)
    prefix = f"{kind}-"
    with _last_lock:
        last = _last.get(key)
        if last is None or not (folder / f"{prefix}{last:06d}.jsonl").exists():
            folder.mkdir(parents=True, exist_ok=True)
            last = _highest(folder, prefix)
        n = last + 1
        while True:
            path = folder / f"{prefix}{n:06d}.jsonl"
            try:
                file = path.open("x", encoding="utf-8")
            except FileExistsError:  # another process (or a crashed cycle) took it
                n += 1
                continue
            _last[key] = n
            return path, file


# (absolute folder, kind) -> the number of the last log this process created there.
_last: dict[tuple[str, str], int] = {}
_last_lock = threading.Lock()


def _highest(folder: Path, prefix: str) -> int:
    """The highest n of `<prefix><n>.jsonl` in `folder` (0 if none): one listing."""
    highest = 0
    with os.scandir(folder) as it:
        for e in it:
            number = e.name.removeprefix(prefix).removesuffix(".jsonl")
            if e.name.startswith(prefix) and e.name.endswith(".jsonl") and number.isdigit():
                highest = max(highest, int(number))
    return highest


class ProvisioningLog:
    """Appends the entries of one cycle (or on-demand run) to `<state_dir>/logs/<kind>-<n>.jsonl`
    (`open_next` numbers it)."""

    def __init__(self, state_dir: Path, cycle_id: str, kind: str = "cycle") -> None:
        self.path, self._file = open_next(state_dir / "logs", kind)
        self.cycle_id = cycle_id

    def write(self, e: Entry) -> None:
        self._file.write(json.dumps(e.record(self.cycle_id), ensure_ascii=False) + "\n")

    def close(self) -> None:
        self._file.close()


# --- reading a record: readers go through these, so the record's shape lives here ---


def status(rec: dict[str, Any]) -> str:
    """Success, Failure, Skipped or Warning."""
    return str(rec["status"])


def steps(rec: dict[str, Any]) -> list[dict[str, Any]]:
    return list(rec.get("provisioningSteps") or [])


def action(rec: dict[str, Any]) -> str:
    """Update or Other."""
    return str(rec["action"])


def source_id(rec: dict[str, Any]) -> str:
    return str(rec["sourceId"])


def target_dn(rec: dict[str, Any]) -> str | None:
    dn = rec.get("targetDn")
    return str(dn) if dn is not None else None


def error_code(rec: dict[str, Any]) -> int | None:
    code = rec.get("errorCode")
    return int(code) if code is not None else None


def reason(rec: dict[str, Any]) -> str:
    return str(rec.get("statusReason") or "")


def modified(rec: dict[str, Any]) -> list[dict[str, Any]]:
    return list(rec.get("modifiedProperties") or [])
