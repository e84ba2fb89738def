"""One writeback cycle, cloud -> AD: Import, Match, Scope, Export per object.

Modes: `full` (every user; repairs drift), `delta` (changes since the stored watermark; without
one it runs as the initial full cycle) and `dry-run` (computes the exports, writes nothing and
keeps the watermark). Out-of-scope objects are Skipped and never written. Per-object failures are
logged, escrowed and retried next cycle; they do not stop the cycle. The watermark is saved only
after every export of the round was acknowledged.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.engine.log import Entry, ProvisioningLog
from harness.engine.rules import MappingError, Profile
from harness.engine.source import CloudCredentials, GraphSource
from harness.engine.state import EngineState, Escrow
from harness.engine.target import AdObject, LdapCredentials, LdapTarget, plan

MODES = ("full", "delta", "dry-run")


@dataclass(slots=True)
class CycleReport:
    cycle_id: str
    mode: str
    profile: str
    seconds: float = 0.0
    statuses: Counter = field(default_factory=Counter)
    actions: Counter = field(default_factory=Counter)
    pending: list[dict[str, Any]] = field(default_factory=list)  # dry-run: what would be written
    log_path: Path | None = None
    watermark_moved: bool = False
    resynced: bool = False

    @property
    def objects(self) -> int:
        return sum(self.statuses.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "cycleId": self.cycle_id,
            "mode": self.mode,
            "profile": self.profile,
            "seconds": round(self.seconds, 2),
            "objects": self.objects,
            "objectsPerSecond": round(self.objects / self.seconds, 1) if self.seconds else None,
            "statuses": dict(self.statuses),
            "actions": dict(self.actions),
            "watermarkMoved": self.watermark_moved,
            "resynced": self.resynced,
            "log": str(self.log_path) if self.log_path else None,
        }


def run_cycle(
    cloud: CloudCredentials,
    ldap: LdapCredentials,
    profile: Profile,
    state_dir: Path,
    mode: str = "delta",
) -> CycleReport:
    """Run one cycle and return its report; state and the provisioning log go to `state_dir`."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}")
    started = time.perf_counter()
    state = EngineState.load(state_dir)
    if state.profile not in (None, profile.name):
        state.delta_link = None  # a changed mapping restarts the job, as Cloud Sync does
    number = state.cycles + 1
    report = CycleReport(str(uuid.uuid4()), mode, profile.name)
    log = ProvisioningLog(state_dir, report.cycle_id, number)
    report.log_path = log.path
    dry = mode == "dry-run"
    attrs = [*profile.targets]
    with GraphSource(cloud) as source, LdapTarget(ldap, attrs) as target:
        link = None if mode == "full" else state.delta_link
        index = target.index() if link is None else None  # a full round matches from one read
        seen: set[str] = set()
        for page in source.pages(link):
            for record in page.records:
                seen.add(record["id"])
                _process(record, profile, target, index, state, log, report, dry)
            for removed in page.removed:
                _skip(log, report, removed, "deleted in the cloud: writeback never deletes")
        for user_id in [k for k in state.escrow if k not in seen]:
            record = source.user(user_id)  # escrowed: retried even though the round skipped it
            if record is None:
                state.escrow.pop(user_id)
            else:
                _process(record, profile, target, index, state, log, report, dry)
        report.resynced = source.resynced
        if not dry:
            state.delta_link = source.next_delta_link
            state.profile = profile.name
            state.cycles = number
            report.watermark_moved = True
    log.close()
    report.seconds = time.perf_counter() - started
    if not dry:
        state.history.append(report.as_dict())
        state.save(state_dir)
    return report


def _process(
    record: dict[str, Any],
    profile: Profile,
    target: LdapTarget,
    index: dict[str, AdObject] | None,
    state: EngineState,
    log: ProvisioningLog,
    report: CycleReport,
    dry: bool,
) -> None:
    e = Entry(record["id"])
    e.step(0, "Success", "read from Exchange Online")
    anchor = record.get("onPremisesImmutableId")
    if not record.get("IsDirSynced") or not anchor:
        return _finish(log, report, state, e, "Skipped", "not synchronized from on-premises")
    obj = index.get(anchor) if index is not None else target.find(anchor)
    if obj is None:
        e.step(1, "Skipped", f"no AD user with mS-DS-ConsistencyGuid {anchor}")
        return _finish(log, report, state, e, "Skipped", "no matching AD user")
    e.target_dn = obj.dn
    e.step(1, "Success", f"matched {obj.dn}")
    if not record.get("IsExchangeCloudManaged"):
        e.step(2, "Skipped", "IsExchangeCloudManaged is false: AD is the source of authority")
        return _finish(log, report, state, e, "Skipped", "out of scope")
    e.step(2, "Success", "in scope")
    try:
        changes = plan(obj.values, profile.desired(record))
    except (MappingError, ValueError) as err:
        e.step(3, "Failure", str(err))
        e.error_code, e.action = 0, "Update"
        return _finish(log, report, state, e, "Failure", str(err))
    if not changes:
        e.step(3, "Skipped", "source and target already match")
        return _finish(log, report, state, e, "Success", "")
    e.action = "Update"
    e.modified = _modified(obj, changes)
    if dry:
        report.pending.extend({"dn": obj.dn, **m} for m in e.modified)
        e.step(3, "Skipped", "dry run: not exported")
        return _finish(log, report, state, e, "Skipped", "dry run")
    result = target.apply(obj.dn, changes)
    if not result.ok:
        e.error_code = result.code
        e.step(3, "Failure", f"LDAP {result.code}: {result.message}")
        return _finish(log, report, state, e, "Failure", result.message)
    if index is not None:
        index[anchor] = AdObject(obj.dn, {**obj.values, **profile.desired(record)})
    e.step(3, "Success", f"{len(changes)} change(s) written")
    _finish(log, report, state, e, "Success", "")


def _modified(obj: AdObject, changes: list[tuple[str, str, tuple[str, ...]]]) -> list[dict]:
    out: dict[str, dict[str, Any]] = {}
    for op, attr, values in changes:
        m = out.setdefault(
            attr,
            {
                "displayName": attr,
                "oldValue": list(obj.values.get(attr, ())),
                "newValue": list(obj.values.get(attr, ())),
            },
        )
        if op == "replace":
            m["newValue"] = list(values)
        elif op == "add":
            m["newValue"] += [v for v in values if v not in m["newValue"]]
        else:
            m["newValue"] = [v for v in m["newValue"] if v not in values]
    return list(out.values())


def _skip(log: ProvisioningLog, report: CycleReport, source_id: str, reason: str) -> None:
    e = Entry(source_id, status="Skipped", reason=reason)
    log.write(e)
    report.statuses["Skipped"] += 1
    report.actions["Other"] += 1


def _finish(
    log: ProvisioningLog,
    report: CycleReport,
    state: EngineState,
    e: Entry,
    status: str,
    reason: str,
) -> None:
    e.status, e.reason = status, reason
    log.write(e)
    report.statuses[status] += 1
    report.actions[e.action] += 1
    if status == "Failure":
        previous = state.escrow.get(e.source_id)
        attempts = previous.attempts + 1 if previous else 1
        state.escrow[e.source_id] = Escrow(e.error_code or 0, reason, attempts)
    elif status != "Skipped" or reason != "dry run":
        state.escrow.pop(e.source_id, None)
