"""The provisioning log: one JSON line per object per cycle, shaped like Entra's log entries.

Fields: cycleId, activityDateTime, action (Update, Other), status (Success, Failure, Skipped),
sourceId, targetDn, modifiedProperties [{displayName, oldValue, newValue}], provisioningSteps
[{name, status, description}], errorCode and statusReason.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

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
            "activityDateTime": datetime.now(UTC).isoformat(timespec="seconds"),
            "action": self.action,
            "status": self.status,
            "sourceId": self.source_id,
            "targetDn": self.target_dn,
            "modifiedProperties": self.modified,
            "provisioningSteps": self.steps,
            "errorCode": self.error_code,
            "statusReason": self.reason,
        }


class ProvisioningLog:
    """Appends entries for one cycle to `<state_dir>/logs/cycle-<n>.jsonl`."""

    def __init__(self, state_dir: Path, cycle_id: str, number: int, kind: str = "cycle") -> None:
        folder = state_dir / "logs"
        folder.mkdir(parents=True, exist_ok=True)
        # A cycle that crashed before its state was saved left a log under the same number;
        # that log is a record of writes that reached AD, so a retry never overwrites it.
        attempt = 1
        while True:
            suffix = f".{attempt}" if attempt > 1 else ""
            self.path = folder / f"{kind}-{number:06d}{suffix}.jsonl"
            try:
                self._file: IO[str] = self.path.open("x", encoding="utf-8")
                break
            except FileExistsError:
                attempt += 1
        self.cycle_id = cycle_id

    def write(self, e: Entry) -> None:
        self._file.write(json.dumps(e.record(self.cycle_id), ensure_ascii=False) + "\n")

    def close(self) -> None:
        self._file.close()
