"""Graph's synchronization API for the writeback job: the application template, jobs, secrets,
schema and provisionOnDemand (microsoft-facts §8.2).

This module holds the API's state and request handling; the job itself (its cycles, state
folder and schedule) is the writeback engine's, which the fakes must not import. The harness
installs it through `Synchronization.factory` (a `JobFactory` making a `JobBackend` per
service principal) and `Synchronization.add` (the job `exwb serve --writeback` already runs).
A tenant served without a factory lists no jobs and answers 501 to creating one.

Where the API is not documented for this job the choices are labelled: one job per service
principal (a second create answers 409), and schema PUTs apply only the scoping filters (the
attribute mappings come from the job's profile).
"""

from __future__ import annotations

import json
import threading
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Protocol

from harness.core import clock
from mockservers.cloud import errors
from mockservers.cloud.hybrid import HybridCloud, ServicePrincipal

APP_TEMPLATE_ID = "3b99513e-0cee-4291-aea8-84356239fb82"  # the writeback's application template
APP_TEMPLATE_NAME = "Exchange Online attribute writeback"  # not documented: the harness's name
JOB_TEMPLATE_ID = "Entra2ADExchangeOnlineAttributeWriteback"
DOMAIN_SECRET = "Domain"
ON_DEMAND_LIMIT = 5  # provisionOnDemand requests per window (documented)
ON_DEMAND_WINDOW = timedelta(seconds=10)
_IDS = uuid.UUID("0b3c5a52-3d2e-4c57-8f0e-6a3f1d2c9e71")  # instantiated objects' id namespace

Json = dict[str, Any]


class JobBackend(Protocol):
    """One writeback job as the API operates it (the harness implements it)."""

    @property
    def id(self) -> str: ...

    def describe(self) -> Json:
        """The job as Graph's synchronizationJob (id, templateId, schedule, status, settings)."""
        ...

    def start(self) -> None: ...

    def pause(self) -> None: ...

    def restart(self, reset_scope: str) -> None:
        """Raises ValueError naming a resetScope value that is not Graph's."""
        ...

    def schema(self) -> Json: ...

    def put_schema(self, body: Json) -> None:
        """Apply a synchronizationSchema's scoping filters; ValueError names a bad value."""
        ...

    def set_domain(self, domain: str) -> None: ...

    def provision_on_demand(self, object_id: str) -> tuple[Json, Json]:
        """(key, value) of the stringKeyStringValuePair provisionOnDemand answers."""
        ...

    def delete(self) -> None: ...


JobFactory = Callable[[ServicePrincipal], JobBackend]


@dataclass(slots=True)
class Synchronization:
    """The API's state: the jobs and secrets of each service principal, the on-demand limit."""

    factory: JobFactory | None = None
    jobs: dict[str, JobBackend] = field(default_factory=dict)  # by service principal id
    secrets: dict[str, dict[str, str]] = field(default_factory=dict)  # by service principal id
    _on_demand: dict[str, deque[Any]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, sp_id: str, job: JobBackend) -> None:
        """Install a job that already exists (the one `exwb serve --writeback` runs)."""
        self.jobs[sp_id] = job

    def job(self, sp_id: str, job_id: str) -> JobBackend:
        job = self.jobs.get(sp_id)
        if job is None or job.id.casefold() != job_id.casefold():
            raise errors.job_not_found(job_id)
        return job

    def charge_on_demand(self, job_id: str) -> None:
        """Count one provisionOnDemand on the harness clock; 429 past 5 in 10 seconds."""
        now = clock.now()
        with self._lock:
            recent = self._on_demand.setdefault(job_id, deque(maxlen=ON_DEMAND_LIMIT))
            while recent and now - recent[0] >= ON_DEMAND_WINDOW:
                recent.popleft()
            if len(recent) >= ON_DEMAND_LIMIT:
                wait = ON_DEMAND_WINDOW - (now - recent[0])
                raise errors.on_demand_throttled(max(1, int(wait.total_seconds() + 0.999)))
            recent.append(now)


# ------------------------------------------------------------------ the application template
def instantiate(hybrid: HybridCloud, template_id: str, body: Any, tenant_id: str) -> Json:
    """POST /applicationTemplates/{id}/instantiate: a new application and its service
    principal (Graph's applicationServicePrincipal). Only the writeback's template exists."""
    if template_id.casefold() != APP_TEMPLATE_ID:
        raise errors.template_not_found(template_id)
    if not isinstance(body, dict):
        raise errors.not_an_object()
    name = body.get("displayName")
    if not isinstance(name, str) or not name.strip():
        raise errors.sync_bad_request("displayName must be a non-empty string.")
    n = len(hybrid.service_principals)
    seed = f"{tenant_id}/{name}/{n}"  # deterministic: the same calls give the same ids
    app_id = str(uuid.uuid5(_IDS, "app/" + seed))
    sp = ServicePrincipal(
        str(uuid.uuid5(_IDS, "sp/" + seed)), app_id, name, tenant_id, [app_id], []
    )
    hybrid.service_principals.append(sp)
    return {
        "application": {
            "id": str(uuid.uuid5(_IDS, "application/" + seed)),
            "appId": app_id,
            "applicationTemplateId": APP_TEMPLATE_ID,
            "displayName": name,
            "signInAudience": "AzureADMyOrg",
        },
        "servicePrincipal": {
            "id": sp.id,
            "appId": app_id,
            "applicationTemplateId": APP_TEMPLATE_ID,
            "appOwnerOrganizationId": tenant_id,
            "displayName": name,
            "servicePrincipalNames": [app_id],
            "servicePrincipalType": "Application",
            "accountEnabled": True,
        },
    }


# ------------------------------------------------------------------ jobs
def create_job(sync: Synchronization, sp: ServicePrincipal, body: Any) -> JobBackend:
    """POST .../synchronization/jobs {templateId}."""
    if not isinstance(body, dict):
        raise errors.not_an_object()
    template = body.get("templateId")
    if not isinstance(template, str) or template.casefold() != JOB_TEMPLATE_ID.casefold():
        raise errors.job_template_invalid(template, JOB_TEMPLATE_ID)
    with sync._lock:  # two creates at once: one job, one 409
        if sp.id in sync.jobs:
            raise errors.job_exists(sync.jobs[sp.id].id)
        if sync.factory is None:
            raise errors.sync_unavailable()
        job = sync.factory(sp)
        sync.jobs[sp.id] = job
    domain = sync.secrets.get(sp.id, {}).get(DOMAIN_SECRET)
    if domain:
        job.set_domain(domain)
    return job


def delete_job(sync: Synchronization, sp_id: str, job_id: str) -> None:
    job = sync.job(sp_id, job_id)
    with sync._lock:
        if sync.jobs.get(sp_id) is not job:
            raise errors.job_not_found(job_id)  # another delete got there first
        del sync.jobs[sp_id]
    job.delete()


def restart_criteria(body: Any) -> str:
    """The resetScope of a restart body ({criteria: {resetScope}}; no body: the default)."""
    if body is None:
        return ""
    if not isinstance(body, dict):
        raise errors.not_an_object()
    criteria = body.get("criteria")
    if criteria is None:
        return ""
    if not isinstance(criteria, dict):
        raise errors.sync_bad_request("criteria must be a synchronizationJobRestartCriteria.")
    scope = criteria.get("resetScope") or ""
    if not isinstance(scope, str):
        raise errors.sync_bad_request(f"criteria.resetScope must be a string, not {scope!r}.")
    return scope


def on_demand_subject(body: Any, rule_id: str) -> str:
    """The user id a provisionOnDemand body names: parameters[0].subjects[0].objectId, as
    `User_<id>` or the bare id (objectTypeName User); the ruleId must be the schema's rule."""
    if not isinstance(body, dict):
        raise errors.not_an_object()
    params = body.get("parameters")
    if not isinstance(params, list) or len(params) != 1 or not isinstance(params[0], dict):
        raise errors.sync_bad_request(
            "parameters must hold one synchronizationJobApplicationParameters object."
        )
    given = params[0].get("ruleId")
    if given is not None and (not isinstance(given, str) or given.casefold() != rule_id.casefold()):
        raise errors.sync_bad_request(
            f"ruleId {given!r} is not a rule of this job's schema (its rule is '{rule_id}')."
        )
    subjects = params[0].get("subjects")
    if not isinstance(subjects, list) or len(subjects) != 1 or not isinstance(subjects[0], dict):
        raise errors.sync_bad_request("parameters[0].subjects must hold one subject.")
    subject = subjects[0]
    kind = subject.get("objectTypeName")
    if not isinstance(kind, str) or kind.casefold() != "user":
        raise errors.sync_bad_request(
            f"objectTypeName {kind!r} is not provisioned by this job: use 'User'."
        )
    object_id = subject.get("objectId")
    if not isinstance(object_id, str) or not object_id.strip():
        raise errors.sync_bad_request("subjects[0].objectId must be a non-empty string.")
    object_id = object_id.strip()
    return object_id[5:] if object_id.casefold().startswith("user_") else object_id


def on_demand_body(key: Json, value: Json, base_url: str) -> Json:
    """The stringKeyStringValuePair: both halves JSON text, as Graph sends them."""
    return {
        "@odata.context": f"{base_url}/v1.0/$metadata#microsoft.graph.stringKeyStringValuePair",
        "key": json.dumps(key, separators=(",", ":")),
        "value": json.dumps(value, separators=(",", ":")),
    }


def put_secrets(sync: Synchronization, sp_id: str, body: Any) -> None:
    """PUT .../synchronization/secrets {value: [{key, value}]}: kept per service principal;
    `Domain` ({"domain": "<fqdn>"} or the bare FQDN) reaches the job's DomainFQDN."""
    if not isinstance(body, dict) or not isinstance(body.get("value"), list):
        raise errors.sync_bad_request('The body must be {"value": [{"key": ..., "value": ...}]}.')
    found: dict[str, str] = {}
    for i, pair in enumerate(body["value"]):
        if not isinstance(pair, dict) or not isinstance(pair.get("key"), str):
            raise errors.sync_bad_request(f"value[{i}] must be a {{key, value}} pair.")
        v = pair.get("value")
        if not isinstance(v, str):
            raise errors.sync_bad_request(f"value[{i}].value must be a string.")
        found[pair["key"]] = v
    if DOMAIN_SECRET in found:
        found[DOMAIN_SECRET] = _domain(found[DOMAIN_SECRET])
    sync.secrets.setdefault(sp_id, {}).update(found)
    job = sync.jobs.get(sp_id)
    if job is not None and DOMAIN_SECRET in found:
        job.set_domain(found[DOMAIN_SECRET])


def _domain(raw: str) -> str:
    text = raw.strip()
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except ValueError:
            data = None
        if not isinstance(data, dict) or not isinstance(data.get("domain"), str):
            raise errors.sync_bad_request(
                'The Domain secret must be {"domain": "<AD domain FQDN>"} or the FQDN.'
            )
        text = data["domain"].strip()
    labels = text.split(".")
    if not text or any(not label or len(label) > 63 for label in labels) or len(text) > 255:
        raise errors.sync_bad_request(f"Domain {text!r} is not a DNS domain name.")
    return text.lower()


def job_body(job: JobBackend, base_url: str, sp_id: str) -> Json:
    return {
        "@odata.context": f"{base_url}/v1.0/$metadata#servicePrincipals('{sp_id}')/"
        "synchronization/jobs/$entity",
        **job.describe(),
    }


def jobs_body(sync: Synchronization, base_url: str, sp_id: str) -> Json:
    job = sync.jobs.get(sp_id)
    return {
        "@odata.context": f"{base_url}/v1.0/$metadata#servicePrincipals('{sp_id}')/"
        "synchronization/jobs",
        "value": [job.describe()] if job is not None else [],
    }
