"""A scenario as data: the tenant, engine settings, steps, expectations and thresholds.

`harness.scenario.loader` builds these from YAML (validating everything first), the runner
executes them. Every step and expectation keeps the YAML line it came from, for reports. Each
class's `kind` is the YAML key it is written under; `harness.scenario.registry` pairs it with
its keys, parser, runner and description.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

from harness.engine.forward import DEFAULT_BUILD
from harness.engine.rules import Profile
from harness.scenario.templates import Template
from harness.tenant.spec import TenantSpec
from mockservers.faults import FaultSpec

CYCLE_MODES = ("delta", "full", "dry-run", "on-demand")
BIND_ACCOUNTS = ("admin", "writeback", "reader")
LDAP_OPS = ("replace", "add", "delete")
JOB_STATES = ("Active", "Paused", "Quarantine", "NotRun")
CLOCK_KINDS = ("wall", "simulated")
JOB_ACTIONS = ("pause", "start", "restart")
CREDENTIALS = ("app", "account")  # the read-only app's secret, the writeback account's password
LOG_STATUSES = ("Success", "Failure", "Skipped")
LOG_ACTIONS = ("Update", "Other")


# --- selections -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Selector:
    """Which objects a step or expectation acts on.

    Mailboxes come from Get-Mailbox (`filter`: an OPATH filter; `sample`: N of them, drawn with
    a seeded generator) or are named (`ids`, `upns`); `ref` reuses the objects an earlier step
    selected and saved under `name`.
    """

    line: int
    filter: str | None = None
    sample: int | None = None
    ids: tuple[str, ...] = ()
    upns: tuple[str, ...] = ()
    ref: str | None = None
    name: str | None = None

    def describe(self) -> str:
        if self.ref is not None:
            return self.ref
        parts = []
        if self.sample is not None:
            parts.append(f"sample {self.sample}")
        if self.filter is not None:
            parts.append(f"where {self.filter}")
        if self.ids:
            parts.append(f"{len(self.ids)} id(s)")
        if self.upns:
            parts.append(f"{len(self.upns)} UPN(s)")
        return " ".join(parts) or "all mailboxes"


# --- counts -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Count:
    """An exact count (`exactly`) or a range (`minimum`, `maximum`)."""

    exactly: int | None = None
    minimum: int | None = None
    maximum: int | None = None

    def holds(self, n: int) -> bool:
        if self.exactly is not None:
            return n == self.exactly
        low = self.minimum is None or n >= self.minimum
        return low and (self.maximum is None or n <= self.maximum)

    def __str__(self) -> str:
        if self.exactly is not None:
            return str(self.exactly)
        parts = []
        if self.minimum is not None:
            parts.append(f">= {self.minimum}")
        if self.maximum is not None:
            parts.append(f"<= {self.maximum}")
        return " and ".join(parts)


# --- expectations -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Expectation:
    kind: ClassVar[str] = ""
    line: int
    name: str  # short name for reports (given, or made from the parameters)


@dataclass(frozen=True, slots=True)
class Converged(Expectation):
    """AD equals the cloud on the profile's attributes (a selection, or every in-scope one)."""

    kind: ClassVar[str] = "converged"
    select: Selector | None = None


@dataclass(frozen=True, slots=True)
class ParityClean(Expectation):
    """`exwb verify`'s parity report is clean: no mismatch, no in-scope mailbox without a user."""

    kind: ClassVar[str] = "parity_clean"


@dataclass(frozen=True, slots=True)
class Values(Expectation):
    """Values of one attribute on a selection: AD over LDAP (`ad`) or Exchange (`cloud`)."""

    kind: ClassVar[str] = "ad"
    select: Selector = field(default_factory=lambda: Selector(0))
    attribute: str = ""
    values: tuple[Template, ...] | None = None  # exactly these (order ignored)
    contains: tuple[Template, ...] = ()
    lacks: tuple[Template, ...] = ()


@dataclass(frozen=True, slots=True)
class CloudValues(Values):
    kind: ClassVar[str] = "cloud"


@dataclass(frozen=True, slots=True)
class LdapSearch(Expectation):
    """A search as a line-of-business app runs it (bound as the reader): `entries` results.

    With `select`, the search runs once per selected object (templates filled in) and, when it
    expects one entry, that entry must be the object's own AD user."""

    kind: ClassVar[str] = "ldap_search"
    filter: Template = field(default_factory=lambda: Template(""))
    base: Template | None = None
    scope: str = "sub"
    entries: Count = field(default_factory=Count)
    select: Selector | None = None


@dataclass(frozen=True, slots=True)
class LogCounts(Expectation):
    """Counts by provisioning-log status and action of a cycle (the last one, or by name)."""

    kind: ClassVar[str] = "log"
    cycle: str | None = None
    statuses: dict[str, Count] = field(default_factory=dict)
    actions: dict[str, Count] = field(default_factory=dict)
    objects: Count | None = None


@dataclass(frozen=True, slots=True)
class ErrorCodes(Expectation):
    """LDAP result codes present in (and absent from) a cycle's provisioning log."""

    kind: ClassVar[str] = "error_codes"
    cycle: str | None = None
    present: tuple[int, ...] = ()
    absent: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class OutOfScopeUntouched(Expectation):
    """AD users outside the writeback scope are unchanged since the scenario began."""

    kind: ClassVar[str] = "out_of_scope_untouched"


@dataclass(frozen=True, slots=True)
class JobState(Expectation):
    """The writeback job's state, as `exwb status` shows it."""

    kind: ClassVar[str] = "job"
    state: str | None = None
    reason: str | None = None
    escrowed: Count | None = None
    next_attempt: When | None = None


@dataclass(frozen=True, slots=True)
class When:
    """A time an expectation names: absolute (`at`), relative to the scenario clock's time
    when it is checked (`offset`, e.g. "+6h"), or `never` (null: nothing scheduled)."""

    text: str
    at: datetime | None = None
    offset: timedelta | None = None

    @property
    def never(self) -> bool:
        return self.at is None and self.offset is None

    def resolve(self, now: datetime) -> datetime | None:
        if self.at is not None:
            return self.at
        return None if self.offset is None else now + self.offset


@dataclass(frozen=True, slots=True)
class EscrowState(Expectation):
    """Each selected object's escrow entry: its failed attempts and its next retry."""

    kind: ClassVar[str] = "escrow"
    select: Selector = field(default_factory=lambda: Selector(0))
    attempts: Count | None = None
    next_attempt: When | None = None
    absent: bool = False  # no entry at all (never failed, or retried with success)


@dataclass(frozen=True, slots=True)
class CyclesRan(Expectation):
    """How many scheduled cycles ran during the last `wait` step (refused ones included)."""

    kind: ClassVar[str] = "cycles"
    count: Count = field(default_factory=Count)
    failed: Count | None = None  # of them, cycles that could not run (CycleError and the like)


@dataclass(frozen=True, slots=True)
class FaultCounts(Expectation):
    """Faults the servers injected so far (the tenant's fault plan), by "server.kind"."""

    kind: ClassVar[str] = "faults"
    counts: dict[str, Count] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ForwardCounts(Expectation):
    """Counts of the last forward-sync cycle (exported, reverted, withheld, failed)."""

    kind: ClassVar[str] = "forward"
    counts: dict[str, Count] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class DecommissionState(Expectation):
    """The last decommission step's outcome: blocked or not, which blockers, the server."""

    kind: ClassVar[str] = "decommission"
    blocked: bool | None = None
    blockers: tuple[str, ...] | None = None  # exactly these codes (order ignored)
    server: str | None = None  # Running, ShutDown or Uninstalled
    finished: bool | None = None
    refused: bool | None = None
    leftovers: Count | None = None


DECOMMISSION_PATHS = ("soa-uninstall", "management-tools")
DECOMMISSION_ACTIONS = ("plan", "execute")
SERVER_STATES = ("Running", "ShutDown", "Uninstalled")
BLOCKER_CODES = (
    "NotTheLastServer", "ServerNotRunning", "OnPremMailboxes", "ArbitrationMailboxes",
    "PublicFoldersNotMigrated", "MxNotExchangeOnline", "AutodiscoverNotExchangeOnline",
    "SmtpRelayInUse", "MailboxesNotCloudManaged", "GroupsOrContactsWithoutSoa",
    "ConnectBuildTooOld", "WritebackJobUnhealthy",
)  # fmt: skip

FORWARD_COUNTS = {
    "exported": "exported",
    "unchanged": "unchanged",
    "failed": "failed",
    "reverted": "revertedCloudManaged",
    "withheld": "withheldCloudManaged",
}


# --- steps ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Step:
    kind: ClassVar[str] = ""
    index: int  # 1-based position in the scenario
    line: int

    def describe(self) -> str:
        """What the step is about to do, for progress lines."""
        return self.kind


@dataclass(frozen=True, slots=True)
class Refusal:
    """A step that must be refused: every object fails with `code` (an Exchange exception name
    or an LDAP result code). Recorded as an expectation of the step."""

    line: int
    code: str | int


@dataclass(frozen=True, slots=True)
class Edit(Step):
    """Set-Mailbox on each selected mailbox, through the EXO admin API."""

    kind: ClassVar[str] = "edit"
    select: Selector = field(default_factory=lambda: Selector(0))
    parameters: dict[str, Any] = field(default_factory=dict)  # values may hold Templates
    refused: Refusal | None = None

    def describe(self) -> str:
        return f"{self.kind} ({self.select.describe()})"


@dataclass(frozen=True, slots=True)
class SetCloudManaged(Step):
    """Set-Mailbox -IsExchangeCloudManaged on each selected mailbox."""

    kind: ClassVar[str] = "set_cloud_managed"
    select: Selector = field(default_factory=lambda: Selector(0))
    value: bool = True
    refused: Refusal | None = None

    def describe(self) -> str:
        return f"{self.kind} ({self.select.describe()})"


@dataclass(frozen=True, slots=True)
class AdEdit(Step):
    """One LDAP modify per selected AD user, as an on-premises account (admin by default)."""

    kind: ClassVar[str] = "ad_edit"
    select: Selector = field(default_factory=lambda: Selector(0))
    changes: tuple[tuple[str, str, tuple[Template, ...]], ...] = ()  # (op, attribute, values)
    bind: str = "admin"
    refused: Refusal | None = None

    def describe(self) -> str:
        return f"{self.kind} ({self.select.describe()})"


@dataclass(frozen=True, slots=True)
class Cycle(Step):
    """One writeback cycle, or provision on demand of each selected object."""

    kind: ClassVar[str] = "cycle"
    mode: str = "delta"
    name: str | None = None
    select: Selector | None = None  # on-demand only
    mass_change_threshold: int | None = None  # None: the engine setting
    allow_mass_change: bool | None = None

    def describe(self) -> str:
        return f"{self.mode} cycle" + (f" {self.name}" if self.name else "")


@dataclass(frozen=True, slots=True)
class Forward(Step):
    """One Entra Connect forward-sync cycle (AD -> cloud) with a given Connect build."""

    kind: ClassVar[str] = "forward"
    connect_build: str = DEFAULT_BUILD

    def describe(self) -> str:
        return f"forward sync (Connect {self.connect_build})"


@dataclass(frozen=True, slots=True)
class Fault(Step):
    """Arm a fault in the tenant's fault plan (both servers obey it), or clear faults."""

    kind: ClassVar[str] = "fault"
    spec: FaultSpec | None = None  # what to arm (checked); None when clearing
    clear: str | None = None  # "all", "ldap", "http" or the name of an armed fault

    def describe(self) -> str:
        return f"fault: {self.spec.describe()}" if self.spec else f"fault: clear {self.clear}"


@dataclass(frozen=True, slots=True)
class Decommission(Step):
    """Plan or execute the decommission of the last Exchange Server (`exwb decommission`)."""

    kind: ClassVar[str] = "decommission"
    action: str = "plan"
    path: str = "soa-uninstall"
    only: str | None = None

    def describe(self) -> str:
        only = f" {self.only}" if self.only else ""
        return f"decommission {self.action} ({self.path}){only}"


@dataclass(frozen=True, slots=True)
class AdMove(Step):
    """Move each selected AD user under another parent (an LDAP modify DN, as the admin)."""

    kind: ClassVar[str] = "ad_move"
    select: Selector = field(default_factory=lambda: Selector(0))
    to: Template = field(default_factory=lambda: Template(""))

    def describe(self) -> str:
        return f"{self.kind} ({self.select.describe()}) to {self.to.text}"


@dataclass(frozen=True, slots=True)
class Wait(Step):
    """Let simulated time pass; the job runs the cycles that fall due on its schedule."""

    kind: ClassVar[str] = "wait"
    span: timedelta = timedelta(0)
    text: str = ""

    def describe(self) -> str:
        return f"wait {self.text}"


@dataclass(frozen=True, slots=True)
class JobControl(Step):
    """Operate the job as a user does: pause, start, restart with a reset scope; or make its
    stored credential stale (a rotation it was not told of) and update it."""

    kind: ClassVar[str] = "job"
    action: str | None = None  # pause, start, restart
    reset_scope: str = ""  # restart: Graph's criteria.resetScope ("" is the portal's restart)
    stale: str | None = None  # app or account: its credential, as the job holds it, is stale
    update: str | None = None  # app or account: the administrator gives the job the current one

    def describe(self) -> str:
        if self.action == "restart":
            return (
                f"job restart ({self.reset_scope or 'portal: QuarantineState, Watermark, Escrows'})"
            )
        if self.action is not None:
            return f"job {self.action}"
        return (
            f"job credentials: {self.stale or self.update} {'stale' if self.stale else 'updated'}"
        )


@dataclass(frozen=True, slots=True)
class Expect(Step):
    kind: ClassVar[str] = "expect"
    expectations: tuple[Expectation, ...] = ()

    def describe(self) -> str:
        return f"expect ({len(self.expectations)})"


# --- thresholds and the scenario ---------------------------------------------------------------

THRESHOLDS = {
    "cycle_seconds": "seconds of each writeback cycle (the slowest)",
    "objects_per_second": "objects per second of each writeback cycle (the slowest)",
    "peak_rss_mib": "peak resident memory of the process, MiB",
    "retries": "LDAP and Graph retries of the engine, all cycles",
    "failures": "objects logged Failure, all cycles",
    "scenario_seconds": "wall time of the whole scenario",
}
PER_CYCLE = frozenset({"cycle_seconds", "objects_per_second"})


@dataclass(frozen=True, slots=True)
class Threshold:
    line: int
    name: str
    bound: str  # "min" or "max"
    limit: float
    cycle: str | None = None  # a named cycle (per-cycle figures only)

    @property
    def text(self) -> str:
        limit = int(self.limit) if self.limit == int(self.limit) else self.limit
        return f"{self.bound} {limit}" + (f" (cycle {self.cycle})" if self.cycle else "")


@dataclass(frozen=True, slots=True)
class EngineSettings:
    profile: Profile
    mass_change_threshold: int | None = None  # None (the default): no guard, as the real job
    allow_mass_change: bool = False
    quarantine_min_failures: int | None = None


@dataclass(frozen=True, slots=True)
class ClockSettings:
    """`clock:`: wall time (the default) or a simulated clock starting at `start`."""

    kind: str = "wall"
    start: datetime | None = None  # None: harness.core.clock.SIMULATED_START

    @property
    def simulated(self) -> bool:
        return self.kind == "simulated"


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    path: Path
    description: str
    tenant: TenantSpec
    tenant_keys: tuple[str, ...]  # the knobs the file set, for the report
    engine: EngineSettings
    steps: tuple[Step, ...]
    thresholds: tuple[Threshold, ...] = ()
    tenant_from: Path | None = None  # `tenant: {from: DIR}`: serve this folder, generate nothing
    clock: ClockSettings = field(default_factory=ClockSettings)

    def expectations(self) -> list[Expectation]:
        return [e for s in self.steps if isinstance(s, Expect) for e in s.expectations]

    @property
    def needs_snapshot(self) -> bool:
        """Whether the runner must snapshot AD at the start (out_of_scope_untouched)."""
        return any(isinstance(e, OutOfScopeUntouched) for e in self.expectations())
