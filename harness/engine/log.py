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

STEPS = ("EntryImport", "EntryMatching", "EntrySynchronizationScoping", "EntryExportUpdate")


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
        self.steps.append({"name": STEPS[index], "status": status, "description": description})


class ProvisioningLog:
    """Appends entries for one cycle to `<state_dir>/logs/cycle-<n>.jsonl`."""

    def __init__(self, state_dir: Path, cycle_id: str, number: int) -> None:
        folder = state_dir / "logs"
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / f"cycle-{number:06d}.jsonl"
        self.cycle_id = cycle_id
        self._file: IO[str] = self.path.open("w", encoding="utf-8")

    def write(self, e: Entry) -> None:
        rec = {
            "cycleId": self.cycle_id,
            "activityDateTime": datetime.now(UTC).isoformat(timespec="seconds"),
            "action": e.action,
            "status": e.status,
            "sourceId": e.source_id,
            "targetDn": e.target_dn,
            "modifiedProperties": e.modified,
            "provisioningSteps": e.steps,
            "errorCode": e.error_code,
            "statusReason": e.reason,
        }
        self._file.write(json.dumps(rec, ensure_ascii=False) + "\n")

    def close(self) -> None:
        self._file.close()
