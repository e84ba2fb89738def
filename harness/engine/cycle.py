"""One writeback cycle, cloud -> AD: Import, Match, Scope, Export per object.

Modes: `full` (every user; repairs drift), `delta` (changes since the stored watermark; without
one it runs as the initial full cycle) and `dry-run` (computes the exports, writes nothing and
keeps the watermark: its report carries a `Preview` of what the cycle would write and what AD
would refuse, engine/preview.py); `run_on_demand` runs the four steps for one object, as
provisionOnDemand.

A cycle first imports, matches, scopes and plans every object, then exports. Out-of-scope
objects are Skipped and never written. The mass-change guard, a harness safety extension that is
off unless a threshold is set, stops a cycle before its first export when more objects would
change than the threshold allows. Exports are pipelined; per-object
failures are logged, escrowed and retried on the schedule of engine/escrow.py (+6 h, +12 h,
+24 h, then daily; dropped after 28 days), and do not stop the cycle. The watermark is
saved only after every export of the round was acknowledged. After each cycle the job's health
is evaluated against the escrow thresholds (the quarantine policy is in engine/health.py).
"""

from __future__ import annotations

import json
import queue
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

from harness.core import clock
from harness.core.gcpause import paused
from harness.engine import escrow as escrow_schedule
from harness.engine import log as provlog
from harness.engine.health import (
    QuarantinePolicy,
    QuarantineReason,
    after_cycle,
    job_id,
    profile_warnings,
    refused_credentials,
)
from harness.engine.ldapwire import any_of, equal
from harness.engine.log import Entry, LogContext, ProvisioningLog
from harness.engine.preview import AccessReader, FactsByDn, Preview, predict
from harness.engine.rules import MappingError, Profile
from harness.engine.scope import Members, Scope
from harness.engine.source import CloudCredentials, GraphSource, SourceAuthError
from harness.engine.state import CycleSummary, EngineState, Escrow
from harness.engine.target import (
    FIND_BATCH,
    WINDOW,
    AdObject,
    Change,
    LdapCredentials,
    LdapError,
    LdapTarget,
    plan,
)

MODES = ("full", "delta", "dry-run")
# The mass-change guard is the harness's own: the real job has no such threshold (Cloud Sync's
# accidental-deletion threshold counts deletions, and writeback never deletes). It is off unless
# a threshold is given; this is the number the docs suggest, Entra Connect's documented export
# deletion threshold.
MASS_CHANGE_THRESHOLD = 500
FLUSH_EVERY = 2000  # planned exports written per batch when nothing holds them back
CONFLICT_CODES = frozenset({16, 20})  # noSuchAttribute, attributeOrValueExists: re-read, re-plan


class CycleError(Exception):
    """A cycle that could not run (paused job, unreachable or refusing server)."""


class Skip(StrEnum):
    """Why an object was Skipped; the value is the reason its log entry carries
    (the deciding step's details.Reason; `token` its details.SkipReason)."""

    NOT_SYNCED = "not synchronized from on-premises"
    NO_MATCH = "no matching AD user"
    OUT_OF_SCOPE = "out of scope"
    NOT_IN_SCOPE = "outside the job's scoping filters"
    DRY_RUN = "dry run"
    DELETED = "deleted in the cloud: writeback never deletes"
    MASS_CHANGE = "mass-change threshold exceeded"
    ESCROW_EXPIRED = "escrow expired: failing for 28 days, no longer retried"

    @property
    def token(self) -> str:
        """The SkipReason the log's step details give: Graph's NotInScope for out of scope
        (microsoft-facts §8.2); the others are exwb's names, the real ones undocumented."""
        return _SKIP_TOKENS[self]

    @property
    def clears_escrow(self) -> bool:
        """A dry run wrote nothing, so an escrowed failure of the object still stands."""
        return self is not Skip.DRY_RUN


_SKIP_TOKENS = {
    Skip.NOT_SYNCED: "NotSynchronized",
    Skip.NO_MATCH: "NoMatchingTarget",
    Skip.OUT_OF_SCOPE: "NotInScope",
    Skip.NOT_IN_SCOPE: "NotInScope",
    Skip.DRY_RUN: "DryRun",
    Skip.DELETED: "DeletedInSource",
    Skip.MASS_CHANGE: "MassChangeThreshold",
    Skip.ESCROW_EXPIRED: "EscrowExpired",
}


@dataclass(frozen=True, slots=True)
class CycleOptions:
    mass_change_threshold: int | None = None  # None (the default): no guard, as the real job
    allow_mass_change: bool = False
    quarantine: QuarantinePolicy | None = None  # None: the documented numbers, scaled
    window: int = WINDOW  # LDAP modifies in flight


@dataclass(slots=True)
class CycleReport:
    cycle_id: str
    mode: str
    profile: str
    started_at: str = ""  # ISO 8601 UTC on the harness clock (harness.core.clock)
    seconds: float = 0.0
    statuses: Counter = field(default_factory=Counter)
    actions: Counter = field(default_factory=Counter)
    pending: list[dict[str, Any]] = field(default_factory=list)  # dry-run: what would be written
    preview: Preview | None = None  # dry-run: the whole first-cycle preview
    log_path: Path | None = None
    watermark_moved: bool = False
    resynced: bool = False
    stopped: str | None = None  # why the cycle stopped before export (mass-change guard)
    warnings: list[str] = field(default_factory=list)
    job_state: str = "Active"
    escrowed: int = 0
    escrow_dropped: int = 0  # entries given up this cycle, 28 days after the first failure
    retries: dict[str, int] = field(default_factory=dict)
    waited: dict[str, float] = field(default_factory=dict)  # seconds spent waiting to retry

    @property
    def objects(self) -> int:
        return sum(self.statuses.values())

    def as_dict(self) -> CycleSummary:
        return {
            "cycleId": self.cycle_id,
            "mode": self.mode,
            "profile": self.profile,
            "startedAt": self.started_at,
            "seconds": round(self.seconds, 3),
            "objects": self.objects,
            "objectsPerSecond": round(self.objects / self.seconds, 1) if self.seconds else None,
            "statuses": dict(self.statuses),
            "actions": dict(self.actions),
            "watermarkMoved": self.watermark_moved,
            "resynced": self.resynced,
            "stopped": self.stopped,
            "warnings": self.warnings,
            "jobState": self.job_state,
            "escrowed": self.escrowed,
            "escrowDropped": self.escrow_dropped,
            "retries": self.retries,
            "waitedSeconds": self.waited,
            "log": str(self.log_path) if self.log_path else None,
        }


@dataclass(slots=True)
class _Export:
    entry: Entry
    obj: AdObject
    changes: list[Change]


class _Run:
    """The per-cycle machinery shared by cycles and on-demand runs."""

    def __init__(
        self,
        profile: Profile,
        source: GraphSource,
        target: LdapTarget,
        state: EngineState,
        log: ProvisioningLog,
        report: CycleReport,
        dry: bool,
    ) -> None:
        self.profile = profile
        self.source = source
        self.target = target
        self.state = state
        self.log = log
        self.report = report
        self.dry = dry
        self.in_scope = 0
        self.lock = threading.Lock()
        self.preview = Preview(profile.name) if dry else None
        report.preview = self.preview
        self.scope = Scope.from_json(state.scope)
        self._members: Members | None = None

    def members(self) -> Members:
        """The included groups' direct members, read from AD once per cycle (memberOf)."""
        if self._members is None:
            flt = any_of(*(equal("memberOf", g) for g in self.scope.groups))
            self._members = Members(dn for dn, _ in self.target.search_raw(flt, ["1.1"]))
        return self._members

    def out_of_scope(self, dn: str) -> str | None:
        """Why the job's scoping filters leave the AD user `dn` out, or None."""
        if not self.scope.below(dn):
            return "not below any of the containerFilter's includedContainers"
        if self.scope.groups and dn not in self.members():
            return "not a direct member of any of the groupFilter's includedGroups"
        return None

    # --- import, match, scope, plan ---

    def evaluate(self, record: dict[str, Any], obj: AdObject | None) -> _Export | None:
        """Steps 1-3 and the plan; returns the export to make, or None when finished."""
        e = Entry(record["id"])
        e.source_name = str(record.get("DisplayName") or record.get("UserPrincipalName") or "")
        e.step(0, "Success", "read from Exchange Online")
        if self.preview is not None and (upn := record.get("UserPrincipalName")):
            self.preview.upns[e.source_id] = str(upn)  # when the source selected it
        rule = self.profile.match
        anchor = rule.cloud_key(record)
        if not record.get("IsDirSynced") or not anchor:
            e.step(1, "Skipped", "not synchronized from on-premises: nothing to match")
            self.skip(e, Skip.NOT_SYNCED)
            return None
        if obj is None:
            e.step(1, "Skipped", f"no AD user with {rule.describe(anchor)}")
            self.skip(e, Skip.NO_MATCH)
            return None
        e.target_dn = obj.dn
        dupes = self.target.duplicate_anchors.get(anchor)
        if dupes:
            e.step(1, "Failure", f"anchor {anchor} is held by {obj.dn} and {'; '.join(dupes)}")
            e.error_code, e.error_name = 0, "DuplicateTargetEntries"
            self.finish(e, "Failure", "source anchor held by more than one AD object")
            return None
        e.step(1, "Success", f"matched {obj.dn}")
        if not record.get("IsExchangeCloudManaged"):
            e.step(2, "Skipped", "IsExchangeCloudManaged is false: AD is the source of authority")
            self.skip(e, Skip.OUT_OF_SCOPE)
            return None
        if not self.scope.everyone and (why := self.out_of_scope(obj.dn)):
            e.step(2, "Skipped", f"NotInScope: {obj.dn} is {why}")
            self.skip(e, Skip.NOT_IN_SCOPE)
            return None
        self.in_scope += 1
        e.step(2, "Success", "in scope: synchronized and IsExchangeCloudManaged")
        try:
            changes = plan(obj.values, self.profile.desired(record))
        except (MappingError, ValueError) as err:
            e.step(3, "Failure", str(err))
            e.error_code, e.action = 0, "Update"
            self.finish(e, "Failure", str(err))
            return None
        if not changes:
            e.step(3, "Skipped", "source and target already match")
            self.finish(e, "Success", "")
            return None
        e.action = "Update"
        e.modified = _modified(obj, changes)
        return _Export(e, obj, changes)  # a dry run predicts its outcome instead (`predict`)

    # --- dry run ---

    def predict(self, held: list[_Export], guard: int | None) -> None:
        """Finish a dry run's planned exports with what AD would answer to each (preview.py):
        allowedAttributesEffective is read for the targets in batches, as the writeback
        account, before any object is predicted."""
        preview = self.preview
        assert preview is not None
        reader = AccessReader(self.target)
        read = {}
        for i in range(0, len(held), FIND_BATCH):
            read.update(reader.read([x.obj for x in held[i : i + FIND_BATCH]]))
        facts = FactsByDn(read)
        preview.access_checked = reader.exposed
        if reader.exposed:
            preview.access = "checked with allowedAttributesEffective as the writeback account"
        if guard is not None and len(held) > guard:
            preview.guard = (
                f"the mass-change guard would stop this cycle: {len(held):,} objects would "
                f"change, more than the threshold of {guard:,}; nothing would be exported "
                "without --allow-mass-change"
            )
        for x in held:
            fact = facts.get(x.obj.dn)
            # Exposed by the directory but absent on this object: no rights there at all.
            access = (fact.allowed or frozenset()) if reader.exposed else None
            refusal = predict(x.changes, access)
            preview.planned(x.entry, fact.upn, refusal)
            self.report.pending.extend({"dn": x.obj.dn, **m} for m in x.entry.modified)
            if refusal is None:
                x.entry.step(3, "Skipped", "dry run: not exported")
            else:
                x.entry.step(3, "Skipped", f"dry run: AD would answer LDAP {refusal.code}")
            self.skip(x.entry, Skip.DRY_RUN)

    # --- export ---

    def export(self, exports: list[_Export], target: LdapTarget | None = None) -> list[_Export]:
        """Write `exports` pipelined and finish each entry as AD answers it; returns the ones
        that met a conflict (16, 20) for `replan`, which must run on the cycle's own thread."""
        by_key = dict(enumerate(exports))
        conflicts: list[_Export] = []
        writes = ((i, x.obj.dn, x.changes) for i, x in by_key.items())
        for key, result in (target or self.target).apply_many(writes):
            x = by_key[key]
            if result.ok:
                x.entry.step(3, "Success", f"{len(x.changes)} change(s) written")
                self.finish(x.entry, "Success", "")
            elif result.code in CONFLICT_CODES:
                conflicts.append(x)  # a resent write met its own first attempt, or AD changed
            else:
                self.fail(x, result.code, result.message)
        return conflicts

    def replan(self, x: _Export) -> None:
        try:
            record = self.source.user(x.entry.source_id)
            current = self.target.read(x.obj.dn)
            changes = plan(current.values, self.profile.desired(record)) if record else []
        except (LdapError, MappingError, ValueError) as err:
            return self.fail(x, getattr(err, "code", 0), str(err))
        result = self.target.apply(x.obj.dn, changes)
        if not result.ok:
            return self.fail(x, result.code, result.message)
        x.entry.modified = _modified(current, changes) if changes else x.entry.modified
        x.entry.step(3, "Success", f"re-read and re-planned: {len(changes)} change(s) written")
        self.finish(x.entry, "Success", "")

    def fail(self, x: _Export, code: int, message: str) -> None:
        x.entry.error_code = code
        x.entry.step(3, "Failure", f"LDAP {code}: {message}")
        self.finish(x.entry, "Failure", message)

    def skip(self, e: Entry, why: Skip) -> None:
        e.skip_reason = why.token
        self.finish(e, "Skipped", why.value, clears_escrow=why.clears_escrow)

    def finish(self, e: Entry, status: str, reason: str, clears_escrow: bool = True) -> None:
        with self.lock:  # the exporter thread finishes entries too
            self._finish(e, status, reason, clears_escrow)

    def _finish(self, e: Entry, status: str, reason: str, clears_escrow: bool) -> None:
        e.status, e.reason = status, reason
        self.log.write(e)
        if self.preview is not None and reason != Skip.DRY_RUN.value:
            self.preview.finished(e)
        self.report.statuses[status] += 1
        self.report.actions[e.action] += 1
        if status == "Failure":
            previous = self.state.escrow.get(e.source_id)
            now = clock.now_iso()
            attempts = previous.attempts + 1 if previous else 1
            first = previous.first_failed if previous and previous.first_failed else now
            self.state.escrow[e.source_id] = Escrow(
                e.error_code or 0,
                reason,
                attempts,
                first,
                now,
                clock.iso(escrow_schedule.next_attempt(clock.parse_iso(first), attempts)),
            )
        elif clears_escrow:
            self.state.escrow.pop(e.source_id, None)


def _retry_due(run: _Run, seen: set[str]) -> list[dict[str, Any]]:
    """The escrowed objects the round did not bring whose next attempt is due, read again from
    the source; entries failing for 28 days are dropped and logged (harness.engine.escrow)."""
    now = clock.now()
    retry = []
    for user_id in escrow_schedule.due(run.state.escrow, now, seen):
        if escrow_schedule.expired(run.state.escrow[user_id], now):
            run.skip(Entry(user_id), Skip.ESCROW_EXPIRED)  # the skip clears the entry
            run.report.escrow_dropped += 1
            continue
        record = run.source.user(user_id)  # escrowed: retried though the round skipped it
        if record is None:
            run.state.escrow.pop(user_id)
        else:
            retry.append(record)
    return retry


def run_cycle(
    cloud: CloudCredentials,
    ldap: LdapCredentials,
    profile: Profile,
    state_dir: Path,
    mode: str = "delta",
    options: CycleOptions | None = None,
) -> CycleReport:
    """Run one cycle and return its report; state and the provisioning log go to `state_dir`.

    Raises CycleError when the job is paused or a server refuses the credentials (the job is
    then quarantined), and the target's or source's error when a server stays unreachable.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}")
    opts = options or CycleOptions()
    started = time.perf_counter()
    state = EngineState.load(state_dir)
    if state.paused:
        raise CycleError(f"the job in {state_dir} is paused: `exwb status --resume` first")
    if state.profile not in (None, profile.name):
        state.delta_link = None  # a changed mapping restarts the job, as Cloud Sync does
    number = state.cycles + 1
    report = CycleReport(str(uuid.uuid4()), mode, profile.name, clock.now_iso())
    dry = mode == "dry-run"
    initial = not dry and state.delta_link is None  # the initial synchronization (escrowsPruned)
    with paused(), _Connections(cloud, ldap, profile, state, state_dir, opts) as (source, target):
        log = ProvisioningLog(state_dir, report.cycle_id, context=_context(cloud, state, state_dir))
        report.log_path = log.path
        run = _Run(profile, source, target, state, log, report, dry)
        try:
            full = mode == "full" or state.delta_link is None
            _cycle(run, None if mode == "full" else state.delta_link, opts)
        finally:
            log.close()
        report.resynced = source.resynced
        report.retries = {
            "ldap": target.stats["retries"],
            "graph": int(source.stats.get("retries", 0)),
        }
        report.waited = {
            "ldap": round(target.waited, 3),
            "graph": round(float(source.stats.get("waited_seconds", 0.0)), 3),
        }
        if full and not dry:
            state.in_scope = run.in_scope
        if not dry and report.stopped is None:
            state.delta_link = source.next_delta_link
            state.profile = profile.name
            report.watermark_moved = True
    if not dry:
        state.cycles = number
    _health(state, report, profile, opts, initial)
    report.seconds = time.perf_counter() - started
    if not dry:
        state.history.append(report.as_dict())
        state.save(state_dir)
    return report


def _cycle(run: _Run, link: str | None, opts: CycleOptions) -> None:
    target, report = run.target, run.report
    key = run.profile.match.cloud_key
    index = target.index() if link is None else None  # a full round matches from one read
    guard = opts.mass_change_threshold if not opts.allow_mass_change else None
    # Without a guard to hold exports back, a second connection writes each batch while this
    # thread reads and plans the next one.
    exporter = _Exporter(run) if guard is None and not run.dry else None
    held: list[_Export] = []
    seen: set[str] = set()

    def take(records: list[dict[str, Any]]) -> None:
        if index is not None:
            found = index
        else:
            found = target.find_many({a for r in records if r["IsDirSynced"] and (a := key(r))})
        for record in records:
            x = run.evaluate(record, found.get(key(record) or ""))
            if x is not None:
                held.append(x)
        if exporter is not None and len(held) >= FLUSH_EVERY:
            exporter.put(held[:])
            held.clear()

    try:
        for page in run.source.pages(link):
            seen.update(r["id"] for r in page.records)
            take(page.records)
            for removed in page.removed:
                e = Entry(removed)
                e.step(0, "Success", "deleted in Exchange Online")
                run.skip(e, Skip.DELETED)
        take(_retry_due(run, seen))
    finally:
        conflicts = exporter.close() if exporter is not None else []
    if run.dry:
        run.predict(held, guard)
        return
    if guard is not None and len(held) > guard:
        report.stopped = (
            f"mass-change guard: {len(held):,} objects would change, more than the threshold "
            f"of {guard:,}; nothing was exported (run with --allow-mass-change to export them)"
        )
        for x in held:
            x.entry.step(3, "Skipped", "held by the mass-change guard")
            run.skip(x.entry, Skip.MASS_CHANGE)
        return
    if held:
        conflicts += run.export(held)
    for x in conflicts:
        run.replan(x)


class _Exporter:
    """Writes batches of exports on a thread and an LDAP connection of its own."""

    def __init__(self, run: _Run) -> None:
        self.run = run
        t = run.target
        self.target = LdapTarget(
            t.creds, t.attributes, window=t.window, backoff=t.backoff, match=t.match
        )
        self.queue: queue.Queue[list[_Export] | None] = queue.Queue(maxsize=2)
        self.conflicts: list[_Export] = []
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._work, name="exwb-exporter", daemon=True)
        self.thread.start()

    def put(self, batch: list[_Export]) -> None:
        if self.error is not None:
            raise self.error
        self.queue.put(batch)

    def _work(self) -> None:
        while (batch := self.queue.get()) is not None:
            if self.error is not None:
                continue  # drain: the cycle stops at the next put or at close
            try:
                self.conflicts += self.run.export(batch, self.target)
            except BaseException as e:  # re-raised on the cycle's thread
                self.error = e

    def close(self) -> list[_Export]:
        """Wait for every batch; merge the connection's counters; raise what failed."""
        self.queue.put(None)
        self.thread.join()
        self.target.close()
        for k, v in self.target.stats.items():
            self.run.target.stats[k] += v
        self.run.target.waited += self.target.waited
        if self.error is not None:
            raise self.error
        return self.conflicts


class _Connections:
    """Open the source and the target; a refused credential quarantines the job."""

    def __init__(
        self,
        cloud: CloudCredentials,
        ldap: LdapCredentials,
        profile: Profile,
        state: EngineState,
        state_dir: Path,
        opts: CycleOptions,
    ) -> None:
        self.args = cloud, ldap, profile, state, state_dir, opts
        self.opened: list[Any] = []

    def __enter__(self) -> tuple[GraphSource, LdapTarget]:
        cloud, ldap, profile, state, state_dir, opts = self.args
        try:
            source = GraphSource(cloud, read_ahead=True)
            self.opened.append(source)
            source.authenticate()  # wrong credentials quarantine before any work
            target = LdapTarget(ldap, [*profile.targets], window=opts.window, match=profile.match)
            self.opened.append(target)
        except (SourceAuthError, LdapError) as e:
            self.__exit__()
            auth = isinstance(e, SourceAuthError) or getattr(e, "code", 0) in (49, 50)
            if not auth:
                raise
            refused_credentials(state, str(e))
            state.save(state_dir)
            raise CycleError(
                f"{e}; the job is quarantined ({QuarantineReason.CREDENTIALS})"
            ) from None
        return source, target

    def __exit__(self, *exc: object) -> None:
        for thing in reversed(self.opened):
            thing.close()
        self.opened.clear()


def _health(
    state: EngineState, report: CycleReport, profile: Profile, opts: CycleOptions, initial: bool
) -> None:
    """Update the job's quarantine after a cycle and put its warnings in the report."""
    failures = report.statuses["Failure"]
    escrowed = len(state.escrow)
    why = after_cycle(state, failures, report.objects, report.stopped, opts.quarantine, initial)
    report.job_state = "Paused" if state.paused else "Quarantine" if state.quarantine else "Active"
    report.escrowed = len(state.escrow)
    report.warnings = profile_warnings(profile, state.in_scope)
    if state.quarantine:
        report.warnings.append(f"job quarantined: {state.quarantine.reason}: {why}")
    elif initial and state.escrows_pruned:
        report.warnings.append(
            f"escrows pruned: {escrowed:,} failures in the initial cycle reached the quarantine "
            "thresholds; their escrow was cleared and the job paused until the errors are "
            "fixed (exwb status --resume)"
        )


# --- on demand ---------------------------------------------------------------------------


@dataclass(slots=True)
class OnDemandResult:
    """What provisionOnDemand returns: the four steps, their outcome and modified properties."""

    entry: dict[str, Any]
    seconds: float

    @property
    def status(self) -> str:
        return provlog.status(self.entry)

    @property
    def steps(self) -> list[dict[str, Any]]:
        return provlog.steps(self.entry)


def run_on_demand(
    cloud: CloudCredentials,
    ldap: LdapCredentials,
    profile: Profile,
    state_dir: Path,
    object_id: str,
    options: CycleOptions | None = None,
) -> OnDemandResult:
    """Provision one object now (its id or UPN): Import, Match, Scope, Export.

    Runs whether the job is paused or not, as the portal's "Provision on demand" does; does not
    move the watermark. A success clears the object's escrow entry.
    """
    opts = options or CycleOptions()
    started = time.perf_counter()
    state = EngineState.load(state_dir)
    report = CycleReport(str(uuid.uuid4()), "on-demand", profile.name, clock.now_iso())
    with _Connections(cloud, ldap, profile, state, state_dir, opts) as (source, target):
        state.on_demand += 1
        ctx = _context(cloud, state, state_dir, on_demand=True)
        log = ProvisioningLog(state_dir, report.cycle_id, kind="ondemand", context=ctx)
        run = _Run(profile, source, target, state, log, report, dry=False)
        try:
            record = source.user(object_id)
            if record is None:
                e = Entry(object_id)
                e.step(0, "Failure", f"no user {object_id} in Exchange Online")
                e.error_code, e.error_name = 404, "EntryNotFound"
                run.finish(e, "Failure", "not found in the source")
                state.escrow.pop(object_id, None)  # nothing to retry
            else:
                anchor = profile.match.cloud_key(record) or ""
                obj = target.find_many([anchor]).get(anchor) if record["IsDirSynced"] else None
                x = run.evaluate(record, obj)
                if x is not None:
                    for conflict in run.export([x]):
                        run.replan(conflict)
        finally:
            log.close()
    state.save(state_dir)
    entries = _read_last(log.path)
    return OnDemandResult(entries, time.perf_counter() - started)


def _context(
    cloud: CloudCredentials, state: EngineState, state_dir: Path, on_demand: bool = False
) -> LogContext:
    """Who writes this run's log records: the job (its Graph id from the state directory, as
    `exwb status` shows it), the tenant of the engine's token endpoint, the job's service
    principal (the one Graph's synchronization API lists it under, else an id derived from the
    job's; named after the AD domain, as the template's instantiation names it), and the
    initiator: the provisioning service for a cycle, the calling app for an on-demand run (an
    exwb choice: who Graph names for provisionOnDemand is not documented)."""
    job = job_id(str(state_dir.resolve()))
    sp = state.service_principal or str(
        uuid.uuid5(uuid.NAMESPACE_URL, f"exwb:servicePrincipal:{job}")
    )
    ctx = LogContext(
        job_id=job,
        tenant_id=LogContext.tenant_of(cloud.token_url),
        service_principal_id=sp,
        service_principal_name=state.domain or "Exchange Online attribute writeback",
    )
    if on_demand:
        ctx = replace(
            ctx,
            initiator_type="application",
            initiator_id=cloud.client_id,
            initiator_name="provision on demand",
        )
    return ctx


def _read_last(path: Path) -> dict[str, Any]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return json.loads(lines[-1])


def _modified(obj: AdObject, changes: list[Change]) -> list[dict[str, Any]]:
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
