"""The decommission journal: one JSON line per step event, fsync-ed before the workflow goes on.

A run killed midway leaves a journal whose last `started` record has no `done`; the next run
reads it, re-checks that step against the live estate (each step can tell whether its work is
already done) and carries on from there. The header line names the tenant and the path, so a
journal is never resumed against another tenant or along the other path.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

FORMAT = "exwb-decommission/1"


class JournalError(Exception):
    """The journal cannot be used; the message names the file (and line)."""


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(slots=True)
class Journal:
    """An append-only record of step events; `status(step)` is the step's last event."""

    path: Path
    tenant_id: str
    route: str
    records: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def open(cls, path: Path, tenant_id: str, route: str) -> Journal:
        """Load `path` (or start it): refuses a journal of another tenant or path."""
        j = cls(path, tenant_id, route)
        if not path.exists():
            return j
        raw = path.read_bytes()
        cut = raw.rfind(b"\n") + 1
        if cut < len(raw):  # a record cut short by a kill: drop it, as the serve journal does
            with path.open("r+b") as f:
                f.truncate(cut)
        for n, line in enumerate(raw[:cut].decode("utf-8", "replace").splitlines(), 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except ValueError:
                raise JournalError(f"{path}:{n}: not a JSON record") from None
            if not isinstance(rec, dict):
                raise JournalError(f"{path}:{n}: not a JSON object")
            j.records.append(rec)
        if j.records:
            head = j.records[0]
            if head.get("format") != FORMAT:
                raise JournalError(f"{path}:1: not an {FORMAT} journal")
            if head.get("tenantId") != tenant_id:
                raise JournalError(
                    f"{path}: the journal belongs to tenant {head.get('tenantId')}, not "
                    f"{tenant_id}: give another --state-dir"
                )
            if head.get("path") != route:
                raise JournalError(
                    f"{path}: a {head.get('path')} decommission was started here; carry it on "
                    f"with --path {head.get('path')} (or give another --state-dir)"
                )
        return j

    def append(self, rec: dict[str, Any]) -> None:
        if not self.records:
            head = {"format": FORMAT, "tenantId": self.tenant_id, "path": self.route, "at": now()}
            self._write(head)
        self._write({"at": now(), **rec})

    def _write(self, rec: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = (json.dumps(rec, ensure_ascii=False, sort_keys=True) + "\n").encode("utf-8")
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        self.records.append(rec)

    def status(self, step: str) -> str | None:
        """The last event of `step`: started, done, already-done, failed; None if never run."""
        for rec in reversed(self.records):
            if rec.get("step") == step:
                return str(rec.get("status"))
        return None

    def completed(self, step: str) -> bool:
        return self.status(step) in ("done", "already-done")

    def events(self) -> list[dict[str, Any]]:
        return [r for r in self.records if "step" in r]
