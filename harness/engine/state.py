"""The engine's state directory: the delta watermark, escrowed failures and cycle history.

`state.json` is replaced atomically (temporary file, fsync, rename) and only after the exports
it covers were acknowledged, so a crash repeats work but never loses it.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TypedDict

from harness.core import clock

STATE_NAME = "state.json"
HISTORY_KEPT = 50


def utc_now() -> str:
    """Now as the state's timestamps are written: ISO 8601 UTC, to the second."""
    return clock.now().isoformat(timespec="seconds")


class CycleSummary(TypedDict):
    """A cycle report as JSON: the history kept here, the cycles of report.json,
    `exwb cycle --json` (`CycleReport.as_dict` writes it)."""

    cycleId: str
    mode: str  # full, delta, dry-run, on-demand
    profile: str
    startedAt: str  # ISO 8601 UTC on the harness clock; "" in state written before it
    seconds: float
    objects: int
    objectsPerSecond: float | None
    statuses: dict[str, int]  # Success, Failure, Skipped, Warning
    actions: dict[str, int]  # Update, Other
    watermarkMoved: bool
    resynced: bool
    stopped: str | None  # why the cycle stopped before export
    warnings: list[str]
    jobState: str  # Active, Quarantine, Paused (escrows pruned in the initial cycle)
    escrowed: int
    escrowDropped: int  # escrow entries given up this cycle (28 days after the first failure)
    retries: dict[str, int]  # by server: ldap, graph
    waitedSeconds: dict[str, float]
    log: str | None


# Graph's synchronizationJobRestartScope members (microsoft-facts §8.2), and what an empty
# criteria means (the portal's "Restart provisioning").
RESET_SCOPES = (
    "None",
    "ConnectorDataStore",
    "Escrows",
    "Watermark",
    "QuarantineState",
    "Full",
    "ForceDeletes",
)
PORTAL_RESTART = frozenset({"QuarantineState", "Watermark", "Escrows"})


def parse_reset_scope(text: str) -> frozenset[str]:
    """`criteria.resetScope` as a set of RESET_SCOPES names; empty gives PORTAL_RESTART."""
    by_key = {name.lower(): name for name in RESET_SCOPES}
    names = [part.strip() for part in text.split(",") if part.strip()]
    if not names:
        return PORTAL_RESTART
    unknown = [n for n in names if n.lower() not in by_key]
    if unknown:
        raise ValueError(
            f"resetScope {', '.join(map(repr, unknown))} is not one of {', '.join(RESET_SCOPES)}"
        )
    return frozenset(by_key[n.lower()] for n in names) - {"None"}


class StateError(Exception):
    """An unreadable state directory; the message names the file."""


@dataclass(slots=True)
class Escrow:
    """A failed object, retried in the next cycles."""

    code: int
    reason: str
    attempts: int = 1
    first_failed: str = ""  # ISO 8601 UTC
    last_failed: str = ""
    next_attempt: str = ""  # when a cycle retries it (harness.engine.escrow); empty: next cycle


@dataclass(slots=True)
class Quarantine:
    """Why and since when the job is quarantined (Graph's synchronizationQuarantine)."""

    reason: str  # a harness.engine.health.QuarantineReason (the latest)
    since: str  # when this series began (Graph's seriesBegan); it ends when lifted
    detail: str = ""
    attempts: int = 1  # quarantined cycles in a row in this series (Graph's seriesCount + 1)
    last_attempt: str = (
        ""  # when the latest of them ran (currentBegan); the back-off counts from it
    )


@dataclass(slots=True)
class EngineState:
    delta_link: str | None = None
    profile: str | None = None
    cycles: int = 0
    escrow: dict[str, Escrow] = field(default_factory=dict)
    history: list[CycleSummary] = field(default_factory=list)
    paused: bool = False
    quarantine: Quarantine | None = None
    in_scope: int | None = None  # cloud-managed mailboxes counted by the last full round
    successive_failures: int = 0  # cycles in a row that failed outright
    on_demand: int = 0  # provision-on-demand runs so far
    escrows_pruned: bool = False  # the initial cycle met the thresholds (engine/health.py)
    interval: str | None = None  # ISO 8601 schedule a served job runs on; None: the default
    domain: str | None = None  # the AD domain's FQDN (Graph's secret `Domain`, DomainFQDN)
    service_principal: str | None = None  # the id of the principal Graph lists the job under
    # The schema's scoping filters ({includedContainers, includedGroups}; harness.engine.scope)
    scope: dict[str, list[str]] | None = None

    @classmethod
    def load(cls, state_dir: Path) -> EngineState:
        path = state_dir / STATE_NAME
        if not path.exists():
            return cls()
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            escrow = {k: Escrow(**v) for k, v in data.pop("escrow", {}).items()}
            quarantine = data.pop("quarantine", None)
            return cls(
                **data,
                escrow=escrow,
                quarantine=Quarantine(**quarantine) if quarantine else None,
            )
        except (ValueError, TypeError) as e:
            raise StateError(f"{path}: not an engine state file ({e})") from None

    def restart(self, reset_scope: str = "") -> frozenset[str]:
        """Restart the job as Graph's `restart` does with `criteria.resetScope`; returns the
        scopes applied.

        `reset_scope` is Graph's comma-separated synchronizationJobRestartScope (case-blind);
        empty means the portal's "Restart provisioning": `QuarantineState, Watermark, Escrows`.
        `Full` is all of them. `ConnectorDataStore` and `ForceDeletes` are accepted and change
        nothing here: this engine keeps no connector data store (it matches by anchor every
        cycle) and the job never deletes. Raises ValueError naming an unknown scope.
        """
        scopes = parse_reset_scope(reset_scope)
        if "Watermark" in scopes or "Full" in scopes:
            self.delta_link = None
        if "Escrows" in scopes or "Full" in scopes:
            self.escrow.clear()
            self.escrows_pruned = False
        if "QuarantineState" in scopes or "Full" in scopes:
            self.quarantine = None
            self.successive_failures = 0
        return scopes

    def save(self, state_dir: Path) -> None:
        state_dir.mkdir(parents=True, exist_ok=True)
        self.history = self.history[-HISTORY_KEPT:]
        # Saved after every cycle (2,000 in four simulated weeks): dataclasses.asdict deep-copies
        # the history and an indented json.dump runs the pure-Python encoder, ~30 ms a save
        # between them. Shallow field maps and one C-encoded line per top-level key instead.
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["escrow"] = {k: _fields(e) for k, e in self.escrow.items()}
        data["quarantine"] = _fields(self.quarantine) if self.quarantine else None
        text = ",\n".join(f"{json.dumps(k)}: {json.dumps(v)}" for k, v in data.items())
        fd, tmp = tempfile.mkstemp(prefix=".state.", dir=state_dir)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write("{\n" + text + "\n}\n")
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, state_dir / STATE_NAME)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def _fields(obj: Escrow | Quarantine) -> dict[str, object]:
    return {f.name: getattr(obj, f.name) for f in fields(obj)}
