"""The running tenant as a scenario's steps see it: an EXO admin session, LDAP accounts, the
engine's state directory, saved selections and the cycles run so far.

Everything goes over the wire as a real administrator's tools would: Get-Mailbox and
Set-Mailbox through the EXO admin API, LDAP searches and modifies with the engine's own client.
Nothing here reaches into the fakes' stores. The one exception is the tenant's fault plan
(the `fault` step), which is test machinery, not tenant state: real servers have no such knob.
"""

from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.clients.exo import CmdletError, ExoAdmin
from harness.core.dn import normalize_dn
from harness.core.endpoints import Endpoints
from harness.engine.cycle import CycleOptions, CycleReport
from harness.engine.forward import ForwardReport
from harness.engine.health import QuarantinePolicy
from harness.engine.job import WritebackJob
from harness.engine.ldapwire import LdapConnection, LdapError, equal
from harness.engine.source import CloudCredentials
from harness.engine.target import LdapCredentials, LdapTarget
from harness.scenario import model as m
from harness.tenant.model import anchor_of
from mockservers.faults import FaultPlan

ANCHOR = "mS-DS-ConsistencyGuid"


class StepError(Exception):
    """A step that could not do its work; the scenario stops with this message."""


@dataclass(slots=True)
class Target:
    """One selected object: a mailbox and, once looked up over LDAP, its AD user's DN."""

    id: str
    upn: str
    alias: str
    mail: str | None
    anchor: str | None
    dir_synced: bool
    dn: str | None = None

    @classmethod
    def from_recipient(cls, rec: dict[str, Any]) -> Target:
        return cls(
            str(rec["ExternalDirectoryObjectId"]),
            str(rec["UserPrincipalName"]),
            str(rec["Alias"]),
            rec.get("PrimarySmtpAddress"),
            rec.get("onPremisesImmutableId"),
            bool(rec.get("IsDirSynced")),
        )

    def fields(self, index: int, domain: str) -> dict[str, str | None]:
        """Template values for this object at 1-based position `index` of its selection."""
        return {
            "index": str(index),
            "id": self.id,
            "upn": self.upn,
            "alias": self.alias,
            "mail": self.mail,
            "domain": domain,
            "dn": self.dn,
        }


@dataclass(slots=True)
class CycleRecord:
    """A cycle step: its reports (one per object when on demand) and provisioning logs."""

    step: int
    name: str | None
    mode: str
    reports: list[CycleReport] = field(default_factory=list)
    logs: list[Path] = field(default_factory=list)


class ScenarioJob(WritebackJob):
    """The scenario's writeback job. Cycle steps run with its credentials on its state
    directory (with their own per-step options), the schedule of a `wait` runs it, `job` steps
    operate it: one job, so the schedule counts its next run from a cycle step too. It keeps
    the reports of the cycles `run` ran (`ran`; the `wait` step clears and reads them)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.ran: list[CycleReport] = []

    def run(self, mode: str = "delta") -> CycleReport:
        report = super().run(mode)
        self.ran.append(report)
        return report


STALE = "stale-after-rotation"  # what the job presents once its stored credential is stale


@dataclass(slots=True)
class WaitRecord:
    """A wait step: what simulated span passed and how many scheduled cycles ran in it."""

    step: int
    span: str
    cycles: int
    failed: int


@dataclass(slots=True)
class Snapshot:
    """AD users and the cloud's cloud-managed anchors when the scenario began."""

    users: dict[str, tuple[str | None, dict[str, tuple[str, ...]]]]  # DN key -> (anchor, values)
    managed: set[str]  # anchors of cloud-managed mailboxes


class World:
    def __init__(
        self,
        scenario: m.Scenario,
        endpoints: Endpoints,
        state_dir: Path,
        faults: FaultPlan | None = None,
    ) -> None:
        ep = endpoints
        self.faults = faults  # the running tenant's fault plan (None: not in-process)
        self.scenario = scenario
        self.endpoints = ep
        self.state_dir = state_dir
        self.domain = scenario.tenant.domain
        self.profile = scenario.engine.profile
        self.exo = ExoAdmin(ep.exo_url, ep.token_url, ep.client_id, ep.client_secret)
        # The engine reads the cloud with the read-only app and writes as its service account.
        self.cloud_reader = CloudCredentials(
            ep.graph_url, ep.token_url, ep.readonly_client_id, ep.readonly_client_secret
        )
        self.accounts = {
            "writeback": LdapCredentials(ep.ldap_url, ep.bind_dn, ep.bind_password, ep.base_dn),
            "reader": LdapCredentials(ep.ldap_url, ep.reader_dn, ep.reader_password, ep.base_dn),
            "admin": LdapCredentials(ep.ldap_url, ep.admin_dn, ep.admin_password, ep.base_dn),
        }
        self.selections: dict[str, list[Target]] = {}
        self.cycles: list[CycleRecord] = []
        self.forwards: list[ForwardReport] = []
        self.decommissions: list[dict[str, Any]] = []  # each decommission step's outcome
        self.ad_edited: set[str] = set()  # DN keys of AD users a step modified
        self.flipped: set[str] = set()  # mailbox ids whose IsExchangeCloudManaged a step set
        self.snapshot: Snapshot | None = None
        self.warnings: list[str] = []
        self.waits: list[WaitRecord] = []
        # The one writeback job: cycle steps, the schedule (wait) and job steps all operate it.
        self.job = ScenarioJob(
            state_dir,
            self.cloud_reader,
            self.accounts["writeback"],
            self.profile,
            self.options(),
        )

    def stale_credentials(self, which: str, stale: bool) -> None:
        """The job's stored credential for `which` (app or account) goes stale, as after a
        rotation the job was not told of, or is brought up to date (the administrator enters
        the current one)."""
        if which == "app":
            secret = STALE if stale else self.cloud_reader.client_secret
            self.job.cloud = dataclasses.replace(self.job.cloud, client_secret=secret)
        else:
            password = STALE if stale else self.accounts["writeback"].password
            self.job.ldap = dataclasses.replace(self.job.ldap, password=password)

    def close(self) -> None:
        self.exo.close()

    @property
    def reader(self) -> LdapCredentials:
        return self.accounts["reader"]

    def plan(self) -> FaultPlan:
        """The tenant's fault plan; a StepError when the tenant was not started in-process."""
        if self.faults is None:
            raise StepError("faults need the tenant's fault plan (an in-process tenant)")
        return self.faults

    def injected(self) -> dict[str, int]:
        """Faults injected so far by "server.kind" (empty without a plan)."""
        return self.faults.injected() if self.faults is not None else {}

    def warn(self, text: str) -> None:
        if text not in self.warnings:
            self.warnings.append(text)

    def options(self, step: m.Cycle | None = None) -> CycleOptions:
        eng = self.scenario.engine
        threshold = eng.mass_change_threshold
        allow = eng.allow_mass_change
        if step is not None and step.mass_change_threshold is not None:
            threshold = step.mass_change_threshold
        if step is not None and step.allow_mass_change is not None:
            allow = step.allow_mass_change
        policy = None
        if eng.quarantine_min_failures is not None:
            policy = QuarantinePolicy(min_failures=eng.quarantine_min_failures)
        return CycleOptions(threshold, allow, policy)

    def cycle(self, name: str | None) -> CycleRecord:
        """The last cycle run, or the one named `name` ("last" is the last)."""
        if name in (None, "last"):
            if not self.cycles:
                raise StepError("no cycle has run yet")
            return self.cycles[-1]
        for record in self.cycles:
            if record.name == name:
                return record
        raise StepError(f"cycle {name!r} has not run (a step before it failed?)")

    # --- selections ---

    def select(self, sel: m.Selector, step: int, ad: bool = False) -> list[Target]:
        """The objects `sel` picks; with `ad`, only synced mailboxes, each with its AD user's DN."""
        if sel.ref is not None:
            targets = self.selections[sel.ref]
        elif sel.ids or sel.upns:
            targets = [self._one(identity) for identity in (*sel.ids, *sel.upns)]
        else:
            params: dict[str, Any] = {"ResultSize": "Unlimited"}
            if sel.filter is not None:
                params["Filter"] = sel.filter
            pool = [Target.from_recipient(r) for r in self._get("Get-Mailbox", **params)]
            if ad:
                pool = [t for t in pool if t.dir_synced and t.anchor]
            targets = pool
            if sel.sample is not None:
                if sel.sample > len(pool):
                    where = f" matching {sel.filter!r}" if sel.filter else ""
                    raise StepError(
                        f"sample {sel.sample} of {len(pool)} mailbox(es){where}: not enough"
                    )
                # Seeded by the tenant's seed and the place in the scenario: the same scenario
                # picks the same mailboxes on every run.
                rng = random.Random(f"{self.scenario.tenant.seed}/{step}/{sel.line}")
                picked = set(rng.sample(range(len(pool)), sel.sample))
                targets = [t for i, t in enumerate(pool) if i in picked]
        if not targets:
            raise StepError(f"the selection ({sel.describe()}) matched no mailbox")
        if sel.name is not None:
            self.selections[sel.name] = targets
        if ad:
            self.with_dns(targets)
        return targets

    def _get(self, cmdlet: str, **params: Any) -> list[dict[str, Any]]:
        try:
            return self.exo.invoke_all(cmdlet, **params)
        except CmdletError as e:
            raise StepError(f"{cmdlet}: {e}") from None

    def _one(self, identity: str) -> Target:
        try:
            (rec,) = self.exo.invoke("Get-Recipient", Identity=identity)["value"]
        except CmdletError as e:
            raise StepError(f"Get-Recipient {identity}: {e}") from None
        return Target.from_recipient(rec)

    def with_dns(self, targets: list[Target]) -> None:
        """Find each target's AD user by source anchor (an indexed LDAP search)."""
        missing = [t for t in targets if t.dn is None]
        if not missing:
            return
        homeless = [t.upn for t in missing if not (t.dir_synced and t.anchor)]
        if homeless:
            raise StepError(f"not synchronized from AD (cloud-only): {', '.join(homeless[:5])}")
        try:
            with LdapTarget(self.reader, []) as target:
                found = target.find_many(t.anchor for t in missing if t.anchor)
        except LdapError as e:
            raise StepError(f"finding AD users: {e}") from None
        for t in missing:
            obj = found.get(t.anchor or "")
            if obj is None:
                raise StepError(f"{t.upn}: no AD user holds its anchor {t.anchor}")
            t.dn = obj.dn

    # --- AD and cloud reads for expectations ---

    def ad_users(self) -> dict[str, tuple[str | None, dict[str, tuple[str, ...]]]]:
        """Every AD user: DN key -> (anchor, values of the profile's targets and uSNChanged)."""
        attrs = [*self.profile.targets, "uSNChanged"]
        wanted = {a.casefold(): a for a in attrs}
        out: dict[str, tuple[str | None, dict[str, tuple[str, ...]]]] = {}
        creds = self.reader
        try:
            with LdapConnection(creds.url) as conn:
                conn.bind(creds.bind_dn, creds.password)
                for dn, raw in conn.search(
                    creds.base_dn, "sub", equal("objectClass", "user"), [*attrs, ANCHOR]
                ):
                    values: dict[str, tuple[str, ...]] = dict.fromkeys(attrs, ())
                    anchor = None
                    for name, vals in raw.items():
                        key = name.split(";", 1)[0].casefold()
                        if key == ANCHOR.casefold():
                            anchor = anchor_of(vals[0]) if vals else None
                        elif key in wanted:
                            values[wanted[key]] = tuple(v.decode("utf-8") for v in vals)
                    out[normalize_dn(dn)] = (anchor, values)
        except LdapError as e:
            raise StepError(f"reading AD as the reader: {e}") from None
        return out

    def recipients(self) -> list[dict[str, Any]]:
        """Every cloud recipient (Get-Recipient -ResultSize Unlimited)."""
        return self._get("Get-Recipient", ResultSize="Unlimited")

    def take_snapshot(self) -> None:
        managed = {
            str(r["onPremisesImmutableId"])
            for r in self.recipients()
            if r.get("IsExchangeCloudManaged") and r.get("onPremisesImmutableId")
        }
        self.snapshot = Snapshot(self.ad_users(), managed)
