"""The writeback job's health: its quarantine policy and the status Graph would show.

`after_cycle` and `refused_credentials` set or clear `state.quarantine` (docs/microsoft-facts.md
§4.3); `job_status` reads an engine state directory shaped like Graph's synchronizationJob
(docs/microsoft-facts.md §1.3): schedule and status code (Active, Paused, Quarantine, NotRun),
the last execution and the last successful one, the quarantine with its reason, escrowed
failures, and the exwb extras: the profile, its documented mailbox limit and the warnings every
report carries.
"""

from __future__ import annotations

import hashlib
import math
import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TypedDict

from harness.core import clock
from harness.engine.rules import Profile
from harness.engine.state import CycleSummary, EngineState, Quarantine

TEMPLATE_ID = "Entra2ADExchangeOnlineAttributeWriteback"
_JOB_NAMESPACE = uuid.UUID("5f2b8e0c-6f53-4a57-9a63-5e8d0a1c2b47")  # exwb's: ids are stable
INTERVAL = timedelta(minutes=20)  # the job's documented schedule (microsoft-facts §1.3)
ESCROW_EXAMPLES = 10
PREVIEW_SIZE = 200_000  # the tenant size the documented escrow thresholds are scaled from


class QuarantineReason(StrEnum):
    """Graph's synchronizationQuarantine reasons the engine raises."""

    CREDENTIALS = "EncounteredQuarantineException"
    ESCROW = "EncounteredEscrowProportionThreshold"
    MASS_CHANGE = "MassChangeThresholdExceeded"


@dataclass(frozen=True, slots=True)
class QuarantinePolicy:
    """The documented escrow thresholds (docs/microsoft-facts.md §4.3).

    Evaluation starts at `min_failures`; the job is quarantined when more than `proportion` of a
    cycle's objects fail or more than `max_failures` are escrowed, and always at `absolute`.
    """

    min_failures: int = 5_000
    proportion: float = 0.40
    max_failures: int = 40_000
    absolute: int = 60_000

    @classmethod
    def scaled(cls, objects: int) -> QuarantinePolicy:
        """The documented numbers scaled down for a tenant of `objects` (never below 10)."""
        f = min(1.0, objects / PREVIEW_SIZE)
        base = cls()
        return cls(
            max(10, math.ceil(base.min_failures * f)),
            base.proportion,
            max(10, math.ceil(base.max_failures * f)),
            max(10, math.ceil(base.absolute * f)),
        )

    def breached(self, failures: int, events: int, escrowed: int) -> str | None:
        """Why these figures quarantine the job, or None."""
        if escrowed >= self.absolute:
            return f"{escrowed:,} escrowed failures reach the absolute limit of {self.absolute:,}"
        if escrowed < self.min_failures:
            return None
        if events and failures / events > self.proportion:
            return (
                f"{failures:,} of {events:,} objects failed (more than "
                f"{self.proportion:.0%}) with {escrowed:,} escrowed"
            )
        if escrowed > self.max_failures:
            return f"{escrowed:,} escrowed failures exceed {self.max_failures:,}"
        return None


def _enter(state: EngineState, reason: QuarantineReason, detail: str) -> None:
    # Graph's synchronizationQuarantine: a series starts when the quarantine is first imposed
    # and ends only when it is lifted (`seriesBegan`, kept in `since`); each cycle that leaves
    # it in effect is one more evaluation (`seriesCount`, `currentBegan`), also when the reason
    # changes. The back-off grows with the evaluations.
    now = clock.now_iso()
    q = state.quarantine
    if q is None:
        state.quarantine = Quarantine(reason.value, now, detail, 1, now)
    else:
        q.reason = reason.value
        q.attempts += 1
        q.last_attempt = now
        q.detail = detail


@dataclass(frozen=True, slots=True)
class QuarantineBackoff:
    """How a quarantined job's cycles slow down, and when it is disabled.

    Documented (microsoft-facts §4.3): cycles "slow down gradually to once per day", and the
    job is disabled after 4 weeks in quarantine. The curve is not documented: by default the
    gap doubles from the schedule's interval with each quarantined cycle, up to `ceiling`
    (an assumption, listed in harness/core/extensions.py).
    """

    factor: float = 2.0
    ceiling: timedelta = timedelta(days=1)
    disable_after: timedelta = timedelta(days=28)
    # How a disabled job shows in Graph's synchronizationStatus.code, which has no "disabled"
    # value (NotConfigured, NotRun, Active, Paused, Quarantine): not documented. By default it
    # stays Quarantine with its quarantine kept (nextAttempt null), and the schedule's state,
    # whose documented values include Disabled, says Disabled. "Paused" is the other choice.
    disabled_code: str = "Quarantine"

    def delay(self, attempts: int, interval: timedelta) -> timedelta:
        """The gap after the `attempts`-th quarantined cycle in a row."""
        # Cap the exponent: past the ceiling the product only grows.
        grown = interval * min(self.factor ** max(attempts, 0), 2.0**32)
        return min(grown, self.ceiling)

    def next_attempt(self, q: Quarantine, interval: timedelta) -> datetime | None:
        """When the quarantined job next runs; None once it is disabled."""
        began = clock.parse_iso(q.since)
        last = clock.parse_iso(q.last_attempt or q.since)
        when = last + self.delay(q.attempts, interval)
        return None if when - began >= self.disable_after else when


def disabled(state: EngineState, interval: timedelta, backoff: QuarantineBackoff) -> bool:
    """Four weeks in quarantine disable the job (microsoft-facts §4.3)."""
    q = state.quarantine
    return q is not None and backoff.next_attempt(q, interval) is None


def next_run(
    state: EngineState, interval: timedelta, backoff: QuarantineBackoff
) -> datetime | None:
    """When the schedule runs the job's next cycle: at once if it never ran, then one interval
    after the last cycle began; while quarantined, the back-off from the last quarantined
    attempt; None while paused or once disabled (4 weeks in quarantine)."""
    if state.paused:
        return None
    if state.quarantine is not None:
        return backoff.next_attempt(state.quarantine, interval)
    last = state.history[-1].get("startedAt") if state.history else None
    return clock.parse_iso(last) + interval if last else clock.now()


def refused_credentials(state: EngineState, error: str) -> None:
    """A server refused the job's credentials: quarantine, and count a failed cycle."""
    _enter(state, QuarantineReason.CREDENTIALS, error)
    state.successive_failures += 1


def after_cycle(
    state: EngineState,
    failures: int,
    objects: int,
    stopped: str | None,
    policy: QuarantinePolicy | None = None,
    initial: bool = False,
) -> str | None:
    """Quarantine or release the job after a cycle; returns why it is quarantined, or None.

    A cycle the mass-change guard stopped quarantines; otherwise the escrow thresholds decide
    (`policy`, by default the documented numbers scaled to the tenant), and any cycle within
    them leaves quarantine. In the `initial` cycle, reaching the thresholds prunes the escrows
    instead (Graph's synchronizationStatus.escrowsPruned: "instead of going into quarantine,
    the synchronization process clears the job's errors and continues until the initial
    synchronization is completed. When [it] is completed, the job will pause"): the escrow is
    cleared, `escrows_pruned` set and the job paused, and None is returned.
    """
    state.successive_failures = 0
    size = state.in_scope if state.in_scope is not None else objects
    policy = policy or QuarantinePolicy.scaled(max(size, objects))
    why = policy.breached(failures, objects, len(state.escrow))
    reason = QuarantineReason.ESCROW
    if initial:
        state.escrows_pruned = False  # a new initial synchronization decides afresh
    if stopped is not None:
        why, reason = stopped, QuarantineReason.MASS_CHANGE
    elif why is not None and initial:
        state.escrow.clear()
        state.escrows_pruned = True
        state.paused = True
        state.quarantine = None
        return None
    if why is None:
        state.quarantine = None
    else:
        _enter(state, reason, why)
    return why


def profile_warnings(profile: Profile, in_scope: int | None) -> list[str]:
    """What every report must flag about a profile and tenant (undocumented targets, limit)."""
    out = [
        f"{m.target} is outside the documented writeback set (the real service does not write "
        "it back)"
        for m in profile.undocumented
    ]
    if in_scope is not None and in_scope > profile.mailbox_limit:
        out.append(
            f"{in_scope:,} cloud-managed mailboxes exceed the {profile.name} profile's "
            f"documented limit of {profile.mailbox_limit:,}"
        )
    return out


# --- job status: the JSON of `exwb status --json` --------------------------------------------


class SyncError(TypedDict):
    """Graph's synchronizationError."""

    code: str
    message: str
    tenantActionable: bool


class Execution(TypedDict):
    """One cycle as Graph's synchronizationTaskExecution (lastExecution) shows it."""

    activityIdentifier: str | None  # the cycle's id (its provisioning-log entries' cycleId)
    countEntitled: int  # objects the cycle evaluated
    countEscrowed: int  # failed, held for retry
    countExported: int  # objects written to AD
    countImported: int
    error: SyncError | None
    state: str  # Succeeded, Failed, EntryLevelErrors
    timeBegan: str | None  # on the harness clock
    timeEnded: str | None


class LastCycle(TypedDict):
    """What exwb adds about the last cycle."""

    mode: str | None  # full, delta, on-demand
    seconds: float | None
    statuses: dict[str, int]


class Schedule(TypedDict):
    """Graph's synchronizationSchedule: `interval` (ISO 8601), `state` (Active, Disabled,
    Paused); its `expiration` is not modelled (a job without an end)."""

    interval: str
    state: str


class QuarantineStatus(TypedDict):
    """Graph's synchronizationQuarantine (`error` a text, not a synchronizationError)."""

    reason: str
    seriesBegan: str  # first imposed in this series (a series ends when it is lifted)
    currentBegan: str  # last evaluated and imposed
    seriesCount: int  # evaluations in this series that left it in effect
    nextAttempt: str | None  # None: disabled after 4 weeks in quarantine
    error: str


class EntryCount(TypedDict):
    key: str
    value: int


class Status(TypedDict):
    code: str  # Active, Paused, Quarantine, NotRun
    lastExecution: Execution | None
    lastSuccessfulExecution: Execution | None
    quarantine: QuarantineStatus | None
    countSuccessiveCompleteFailures: int
    escrowsPruned: bool
    synchronizedEntryCountByType: list[EntryCount]


class EscrowExample(TypedDict):
    sourceId: str
    errorCode: int
    reason: str
    attempts: int
    firstFailed: str


class Extras(TypedDict):
    """What exwb adds to Graph's shape."""

    profile: str
    mailboxLimit: int
    inScope: int | None
    overLimit: bool
    cycles: int
    watermark: bool
    escrowed: int
    escrowExamples: list[EscrowExample]
    warnings: list[str]
    nextRun: str | None  # when the schedule runs the next cycle (None: paused or disabled)
    disabled: bool  # four weeks in quarantine
    lastCycle: LastCycle | None


class Setting(TypedDict):
    name: str
    value: str


class JobStatus(TypedDict):
    id: str
    templateId: str
    schedule: Schedule
    status: Status
    synchronizationJobSettings: list[Setting]  # DomainFQDN once the Domain secret is set
    exwb: Extras


def _iso_or_none(when: datetime | None) -> str | None:
    return clock.iso(when) if when is not None else None


def execution_state(cycle: CycleSummary) -> str:
    """Graph's synchronizationTaskExecution.state of a cycle: Succeeded, Failed (stopped, or
    nothing succeeded), EntryLevelErrors (some objects failed)."""
    statuses = cycle.get("statuses", {})
    if cycle.get("stopped"):
        return "Failed"
    if statuses.get("Failure", 0):
        return "EntryLevelErrors" if statuses.get("Success") else "Failed"
    return "Succeeded"


def _execution(cycle: CycleSummary) -> Execution:
    # .get: a state file written by an older exwb may lack a key.
    statuses = cycle.get("statuses", {})
    began = cycle.get("startedAt") or None
    ended = None
    if began and cycle.get("seconds") is not None:
        ended = clock.iso(clock.parse_iso(began) + timedelta(seconds=cycle.get("seconds") or 0))
    stopped = cycle.get("stopped")
    return {
        "activityIdentifier": cycle.get("cycleId"),
        "countEntitled": cycle.get("objects", 0),
        "countEscrowed": statuses.get("Failure", 0),
        "countExported": cycle.get("actions", {}).get("Update", 0),
        "countImported": cycle.get("objects", 0),
        "error": (
            {"code": "CycleStopped", "message": stopped, "tenantActionable": True}
            if stopped
            else None
        ),
        "state": execution_state(cycle),
        "timeBegan": began,
        "timeEnded": ended,
    }


def job_id(key: str) -> str:
    """The job's Graph id, `Entra2ADExchangeOnlineAttributeWriteback.<32 hex>.<guid>` (the shape
    microsoft-facts §8.2 shows; what the parts stand for is not documented), derived from `key`
    (the job's resolved state directory) so that it is the same in every run."""
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]
    return f"{TEMPLATE_ID}.{digest}.{uuid.uuid5(_JOB_NAMESPACE, key)}"


def iso_duration(span: timedelta) -> str:
    """A span as ISO 8601 (`PT20M`, `P1DT6H`, `PT1S`), as synchronizationSchedule.interval
    gives it; whole seconds."""
    seconds = int(span.total_seconds())
    days, seconds = divmod(seconds, 24 * 3600)
    hours, seconds = divmod(seconds, 3600)
    minutes, seconds = divmod(seconds, 60)
    time = "".join(f"{n}{unit}" for n, unit in ((hours, "H"), (minutes, "M"), (seconds, "S")) if n)
    if not days and not time:
        time = "0M"
    return "P" + f"{days}D" * bool(days) + ("T" + time if time else "")


_DURATION = re.compile(
    r"P(?:(?P<weeks>\d+)W)?(?:(?P<days>\d+)D)?"
    r"(?:T(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?"
)


def parse_iso_duration(text: str) -> timedelta:
    """`iso_duration`'s inverse: an ISO 8601 duration in weeks, days, hours, minutes and
    seconds (`PT20M`, `P1D`, `PT1.5S`). Years and months have no fixed length: refused.
    Raises ValueError."""
    m = _DURATION.fullmatch(text.strip().upper())
    if not m or not any(m.groupdict().values()) or text.strip().upper().endswith("T"):
        raise ValueError(
            f"{text!r} is not an ISO 8601 duration in weeks, days, hours, minutes and seconds "
            "(e.g. PT20M, PT1H, P1D)"
        )
    return timedelta(**{k: float(v) for k, v in m.groupdict().items() if v})


def job_status(
    state: EngineState,
    profile: Profile,
    job_key: str,
    interval: timedelta = INTERVAL,
    backoff: QuarantineBackoff | None = None,
) -> JobStatus:
    """The job as `GET .../synchronization/jobs/{id}` would show it, plus exwb's extras."""
    backoff = backoff or QuarantineBackoff()
    off = disabled(state, interval, backoff)
    if state.paused:
        code = "Paused"
    elif off:
        code = backoff.disabled_code
    elif state.quarantine is not None:
        code = "Quarantine"
    elif not state.history:
        code = "NotRun"
    else:
        code = "Active"
    last = state.history[-1] if state.history else None
    succeeded = [c for c in state.history if execution_state(c) == "Succeeded"]
    escrow = sorted(state.escrow.items(), key=lambda kv: kv[1].first_failed)
    q = state.quarantine
    return {
        "id": job_id(job_key),
        "templateId": TEMPLATE_ID,
        "schedule": {
            "interval": iso_duration(interval),
            "state": "Paused" if state.paused else "Disabled" if off else "Active",
        },
        "status": {
            "code": code,
            "lastExecution": _execution(last) if last else None,
            "lastSuccessfulExecution": _execution(succeeded[-1]) if succeeded else None,
            "quarantine": (
                {
                    "reason": q.reason,
                    "seriesBegan": q.since,
                    "currentBegan": q.last_attempt or q.since,
                    "seriesCount": q.attempts - 1,  # the first imposition is no re-evaluation
                    "nextAttempt": _iso_or_none(backoff.next_attempt(q, interval)),
                    "error": q.detail,
                }
                if q
                else None
            ),
            "countSuccessiveCompleteFailures": state.successive_failures,
            "escrowsPruned": state.escrows_pruned,
            "synchronizedEntryCountByType": [{"key": "User to user", "value": state.in_scope or 0}],
        },
        "synchronizationJobSettings": (
            [{"name": "DomainFQDN", "value": state.domain}] if state.domain else []
        ),
        "exwb": {
            "profile": state.profile or profile.name,
            "mailboxLimit": profile.mailbox_limit,
            "inScope": state.in_scope,
            "overLimit": bool(state.in_scope and state.in_scope > profile.mailbox_limit),
            "cycles": state.cycles,
            "watermark": state.delta_link is not None,
            "escrowed": len(state.escrow),
            "escrowExamples": [
                {
                    "sourceId": k,
                    "errorCode": e.code,
                    "reason": e.reason,
                    "attempts": e.attempts,
                    "firstFailed": e.first_failed,
                }
                for k, e in escrow[:ESCROW_EXAMPLES]
            ],
            "warnings": profile_warnings(profile, state.in_scope),
            "nextRun": _iso_or_none(next_run(state, interval, backoff)),
            "disabled": off,
            "lastCycle": (
                {
                    "mode": last.get("mode"),
                    "seconds": last.get("seconds"),
                    "statuses": last.get("statuses", {}),
                }
                if last
                else None
            ),
        },
    }
