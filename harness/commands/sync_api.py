"""Graph's synchronization API on the engine's writeback job: what `exwb serve` installs.

`GraphJob` is the `mockservers.cloud.synchronization.JobBackend` of one `WritebackJob` and
its schedule, so the Graph routes, `exwb status`/`exwb cycle` on the job's state folder and the
schedule operate one job state. `attach` installs the job factory on a served tenant: a job
created through Graph (`POST .../synchronization/jobs`) gets a state folder of its own and,
once started, a schedule of its own on the harness clock.

Graph behaviour the harness follows (microsoft-facts §8.2, §4.3): `start` resumes a paused job
and clears a quarantine; `restart` applies `criteria.resetScope` (empty: the portal's
`QuarantineState, Watermark, Escrows`), resumes the job and runs its next cycle at once; a
schema PUT whose scoping filters change restarts the job (Watermark, Escrows, QuarantineState),
as changing scoping filters does. provisionOnDemand answers Skipped with `RedundantExport` when
source and target already match and `NotInScope` when the user is out of scope.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from harness.core import clock
from harness.core.dn import parse_dn
from harness.engine import log as provlog
from harness.engine.cycle import CycleError, OnDemandResult
from harness.engine.health import job_id
from harness.engine.job import WritebackJob
from harness.engine.schedule import Schedule
from harness.engine.scope import Scope, ScopeError
from mockservers.cloud.hybrid import ServicePrincipal
from mockservers.cloud.service import CloudService
from mockservers.cloud.synchronization import Json

_RULE_IDS = uuid.UUID("7d1f6c2e-93b4-4b8a-a0de-2f4e5c6b7a81")
SOURCE_DIRECTORY = "Exchange Online"  # the schema's directory names: not documented
TARGET_DIRECTORY = "Active Directory"
SKIP_REDUNDANT = "RedundantExport"
SKIP_SCOPE = "NotInScope"
SKIP_OTHER = "EntrySynchronizationSkipped"  # not synchronized, or no AD user matches
IN_SYNC = "The state of the user in both the source and target systems already match."


def domain_of(base_dn: str) -> str:
    """The DNS name of an AD domain's naming context (`DC=contoso,DC=com`: contoso.com)."""
    return ".".join(v for rdn in parse_dn(base_dn) for a, v in rdn if a.casefold() == "dc")


class GraphJob:
    """One writeback job as Graph's synchronization API operates it."""

    def __init__(
        self,
        job: WritebackJob,
        schedule: Schedule | None = None,
        on_delete: Callable[[], None] | None = None,
    ) -> None:
        self.job = job
        self.schedule = schedule
        self._on_delete = on_delete

    @property
    def id(self) -> str:
        return job_id(self.job.key)

    @property
    def rule_id(self) -> str:
        return str(uuid.uuid5(_RULE_IDS, self.id))

    def describe(self) -> Json:
        status: dict[str, Any] = dict(self.job.status())
        status.pop("exwb")
        return status

    def _arm(self, at: datetime | None = None) -> None:
        if self.schedule is None:
            self.schedule = Schedule(self.job)
        self.schedule.start(at)

    def start(self) -> None:
        """Resume a paused job and clear its quarantine (Graph's `start`), then run on the
        schedule."""
        self.job.start()
        self.job.restart("QuarantineState")
        self._arm()

    def pause(self) -> None:
        self.job.pause()
        if self.schedule is not None:
            self.schedule.stop()

    def restart(self, reset_scope: str) -> None:
        self.job.restart(reset_scope)  # ValueError names an unknown scope
        self.job.start()
        self._arm(clock.now())

    def set_domain(self, domain: str) -> None:
        self.job.set_domain(domain)

    def schema(self) -> Json:
        scope = self.job.scope()
        key = self.job.profile.match.attribute
        mappings: list[Json] = [
            {
                "source": {
                    "expression": m.expression.text if m.expression else f"[{m.source}]",
                    "name": m.source if m.expression is None else None,
                    "type": "Function" if m.expression else "Attribute",
                    "parameters": [],
                },
                "targetAttributeName": m.target,
                "flowType": "Always",
                "flowBehavior": "FlowWhenChanged",
                "matchingPriority": 0,
                "defaultValue": None,
                "exportMissingReferences": False,
            }
            for m in self.job.profile.mappings
        ]
        return {
            "id": self.id,
            "version": f"Date:{self.job.profile.name}",
            "synchronizationRules": [
                {
                    "id": self.rule_id,
                    "name": "EXO2AD",
                    "editable": True,
                    "priority": 1,
                    "sourceDirectoryName": SOURCE_DIRECTORY,
                    "targetDirectoryName": TARGET_DIRECTORY,
                    "containerFilter": {"includedContainers": list(scope.containers)},
                    "groupFilter": {"includedGroups": list(scope.groups)},
                    "metadata": [{"key": "MatchingAttribute", "value": key}],
                    "objectMappings": [
                        {
                            "name": "Synchronize Exchange Online users to Active Directory",
                            "enabled": True,
                            "flowTypes": "Update",
                            "sourceObjectName": "User",
                            "targetObjectName": "user",
                            "scope": None,
                            "metadata": [],
                            "attributeMappings": mappings,
                        }
                    ],
                }
            ],
            "directories": [
                {"name": SOURCE_DIRECTORY, "objects": []},
                {"name": TARGET_DIRECTORY, "objects": []},
            ],
        }

    def put_schema(self, body: Json) -> None:
        """Apply the body's scoping filters (the first rule's containerFilter, groupFilter);
        a change restarts the job. Mappings are the profile's: a changed mapping is ignored."""
        rules = body.get("synchronizationRules")
        if not isinstance(rules, list) or not rules or not isinstance(rules[0], dict):
            raise ValueError("synchronizationRules must hold the job's rule")
        rule = rules[0]
        containers = _dns(rule.get("containerFilter"), "containerFilter", "includedContainers")
        groups = _dns(rule.get("groupFilter"), "groupFilter", "includedGroups")
        try:
            scope = Scope(tuple(containers), tuple(groups))
        except ScopeError as e:
            raise ValueError(str(e)) from None
        if self.job.set_scope(scope):
            self.restart("")

    def provision_on_demand(self, object_id: str) -> tuple[Json, Json]:
        try:
            result = self.job.on_demand(object_id)
        except CycleError as e:
            return {
                "result": "Failure",
                "details": {"errorCode": "Failed", "errorMessage": str(e)},
            }, {}
        return on_demand_answer(result)

    def delete(self) -> None:
        if self.schedule is not None:
            self.schedule.stop()
        if self._on_delete is not None:
            self._on_delete()


def _dns(filt: Any, name: str, key: str) -> list[str]:
    if filt is None:
        return []
    if not isinstance(filt, dict):
        raise ValueError(f"{name} must be an object")
    values = filt.get(key) or []
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise ValueError(f"{name}.{key} must be a list of distinguished names")
    return [v.strip() for v in values if v.strip()]


def on_demand_answer(result: OnDemandResult) -> tuple[Json, Json]:
    """provisionOnDemand's key (result and details) and value (the steps) of one run."""
    rec = result.entry
    status = result.status
    steps = result.steps
    details: dict[str, Any] = {}
    out_steps = [
        {
            "name": s["name"],
            "type": s["provisioningStepType"],  # the accessors give the portal's spelling
            "status": s["status"],
            "description": s["description"],
            "timestamp": rec.get("activityDateTime"),
            "details": s.get("details") or {},
        }
        for s in steps
    ]
    reason = provlog.reason(rec)
    skip = None
    if status == "Skipped":
        # IsExchangeCloudManaged false or outside the scoping filters; else not synchronized
        # or unmatched
        skip = SKIP_SCOPE if provlog.skip_reason(rec) == SKIP_SCOPE else SKIP_OTHER
    elif status == "Success" and provlog.action(rec) == "Other":
        skip, status, reason = SKIP_REDUNDANT, "Skipped", IN_SYNC
        if out_steps:
            out_steps[-1].update(
                name="EntrySynchronizationSkip",
                type="Export",
                status="Skipped",
                description=IN_SYNC,
            )
    if skip is not None:
        details = {"errorCode": skip, "errorMessage": reason}
        if out_steps:
            out_steps[-1]["details"] = {"SkipReason": skip}
    elif status == "Failure":
        details = {"errorCode": str(provlog.error_code(rec)), "errorMessage": reason}
    value = {
        "action": provlog.action(rec),
        "changeId": rec.get("changeId") or rec.get("id"),
        "startTime": rec.get("activityDateTime"),
        "endTime": rec.get("activityDateTime"),
        "modifiedProperties": provlog.modified(rec),
        "provisioningSteps": out_steps,
        "reportableIdentifier": provlog.source_id(rec),
        "statusInfo": {"status": status, "errorCode": details.get("errorCode")},
        "sourceIdentity": {"id": provlog.source_id(rec), "type": "User"},
        "sourceSystem": {"name": SOURCE_DIRECTORY},
        "targetIdentity": {"id": provlog.target_dn(rec), "type": "user"},
        "targetSystem": {"name": TARGET_DIRECTORY},
    }
    return {"result": status, "details": details}, value


def served_principal(tenant_id: str, base_dn: str) -> ServicePrincipal:
    """The principal `exwb serve --writeback` lists its job under: named after the AD domain,
    with ids derived from the tenant (the same in every run)."""
    seed = f"{tenant_id}/served-writeback"
    app_id = str(uuid.uuid5(uuid.NAMESPACE_URL, "app/" + seed))
    sp_id = str(uuid.uuid5(uuid.NAMESPACE_URL, "sp/" + seed))
    return ServicePrincipal(sp_id, app_id, domain_of(base_dn), tenant_id, [app_id], [])


def attach(
    cloud: CloudService,
    new_job: Callable[[Path], WritebackJob],
    root: Path,
    served: tuple[ServicePrincipal, GraphJob] | None = None,
    created: Callable[[GraphJob], None] | None = None,
) -> None:
    """Install Graph's job API on `cloud`: jobs created through it are `new_job(<root>/<sp
    id>)` (each passed to `created`); `served` is the job `exwb serve --writeback` already
    runs, under its principal."""

    def factory(sp: ServicePrincipal) -> GraphJob:
        folder = root / sp.id
        job = GraphJob(new_job(folder), on_delete=lambda: shutil.rmtree(folder, True))
        job.job.set_service_principal(sp.id)
        if created is not None:
            created(job)
        return job

    cloud.sync.factory = factory
    if served is not None:
        sp, job = served
        if all(p.id != sp.id for p in cloud.store.hybrid.service_principals):
            cloud.store.hybrid.service_principals.append(sp)
        cloud.sync.add(sp.id, job)
