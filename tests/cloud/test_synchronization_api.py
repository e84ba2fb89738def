"""Graph's synchronization API on a served tenant, driven as a user's automation drives the real
job: Microsoft's msgraph-sdk against `exwb serve --writeback --clock simulated` (the job's
cycles run only when the clock moves, so every answer below is deterministic)."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from kiota_abstractions.api_error import APIError
from msgraph import GraphServiceClient
from msgraph.generated.application_templates.item.instantiate.instantiate_post_request_body import (
    InstantiatePostRequestBody,
)
from msgraph.generated.models.synchronization_job import SynchronizationJob
from msgraph.generated.models.synchronization_job_application_parameters import (
    SynchronizationJobApplicationParameters,
)
from msgraph.generated.models.synchronization_job_restart_criteria import (
    SynchronizationJobRestartCriteria,
)
from msgraph.generated.models.synchronization_job_restart_scope import (
    SynchronizationJobRestartScope,
)
from msgraph.generated.models.synchronization_job_subject import SynchronizationJobSubject
from msgraph.generated.models.synchronization_secret import SynchronizationSecret
from msgraph.generated.models.synchronization_secret_key_string_value_pair import (
    SynchronizationSecretKeyStringValuePair,
)
from msgraph.generated.service_principals.item.synchronization.jobs.item.provision_on_demand.provision_on_demand_post_request_body import (  # noqa: E501
    ProvisionOnDemandPostRequestBody,
)
from msgraph.generated.service_principals.item.synchronization.jobs.item.restart.restart_post_request_body import (  # noqa: E501
    RestartPostRequestBody,
)
from msgraph.generated.service_principals.item.synchronization.secrets.secrets_put_request_body import (  # noqa: E501
    SecretsPutRequestBody,
)

from harness.core.endpoints import Endpoints
from harness.tenant import TenantSpec, generate
from mockservers.runtime import spawn_serve
from tests.cloud.http_client import call, token
from tests.cloud.test_msgraph_sdk import client_for
from tests.engine.exo_client import ExoAdmin
from tests.support.engine import mailbox_pairs
from tests.test_served_job import ad_value

SPEC = TenantSpec(mailboxes=40, seed=5)  # what `exwb serve -n 40 --seed 5` generates
TEMPLATE = "3b99513e-0cee-4291-aea8-84356239fb82"
JOB_ID = re.compile(r"Entra2ADExchangeOnlineAttributeWriteback\.[0-9a-f]{32}\.[0-9a-f-]{36}")


class Served:
    def __init__(self, ep: Endpoints, job_dir: Path) -> None:
        self.ep = ep
        self.job_dir = job_dir
        self.client = client_for(ep, token(ep))
        self.reader = client_for(ep, token(ep, readonly=True))

    def advance(self, **by: int) -> dict[str, Any]:
        r = call("POST", f"{self.ep.graph_url}/exwb/clock/advance", token=token(self.ep), body=by)
        assert r.status == 200, r.body
        return r.body

    def sp_id(self) -> str:
        r = call("GET", f"{self.ep.graph_url}/v1.0/servicePrincipals", token=token(self.ep))
        return next(s["id"] for s in r.body["value"] if s["displayName"] == "contoso.com")


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> Iterator[Served]:
    tmp = tmp_path_factory.mktemp("syncapi")
    path, job_dir = tmp / "endpoints.json", tmp / "job"
    proc = spawn_serve(
        path,
        *("-n", "40", "--seed", "5", "--writeback", "--job-state", str(job_dir)),
        *("--clock", "simulated", "--clock-start", "2026-01-05T09:00:00Z"),
        timeout=120,
    )
    try:
        yield Served(Endpoints(**json.loads(path.read_text())), job_dir)
    finally:
        proc.terminate()
        proc.wait(timeout=60)


_LOOP = asyncio.new_event_loop()  # one loop: the SDK's HTTP client keeps its connections


def run(coro: Any) -> Any:
    return _LOOP.run_until_complete(coro)


def jobs(client: GraphServiceClient, sp: str) -> Any:
    return client.service_principals.by_service_principal_id(sp).synchronization.jobs


def on_demand(served: Served, sp: str, job_id: str, rule: str, user_id: str) -> dict[str, Any]:
    body = ProvisionOnDemandPostRequestBody(
        parameters=[
            SynchronizationJobApplicationParameters(
                rule_id=rule,
                subjects=[
                    SynchronizationJobSubject(object_id=f"User_{user_id}", object_type_name="User")
                ],
            )
        ]
    )
    pair = run(
        jobs(served.client, sp).by_synchronization_job_id(job_id).provision_on_demand.post(body)
    )
    return {"key": json.loads(pair.key), "value": json.loads(pair.value)}


def test_the_served_job_is_listed_and_read_as_graph_shapes_it(served):
    sp = served.sp_id()
    listed = run(jobs(served.reader, sp).get())  # the read-only app: Synchronization.Read.All
    (job,) = listed.value
    assert (
        JOB_ID.fullmatch(job.id) and job.template_id == "Entra2ADExchangeOnlineAttributeWriteback"
    )
    assert job.schedule.state.value == "Active"
    served.advance(minutes=1)  # the initial cycle was due at once
    job = run(jobs(served.client, sp).by_synchronization_job_id(job.id).get())
    assert job.status.code.value == "Active"
    assert job.status.last_execution.state.value == "Succeeded"
    assert job.status.last_execution.activity_identifier
    settings = {s.name: s.value for s in job.synchronization_job_settings}
    assert settings == {"DomainFQDN": "contoso.com"}
    assert job.status.synchronized_entry_count_by_type[0].key == "User to user"


def test_pause_start_and_restart_operate_the_job_exwb_status_reads(served):
    sp = served.sp_id()
    job_id = run(jobs(served.client, sp).get()).value[0].id
    item = jobs(served.client, sp).by_synchronization_job_id(job_id)
    run(item.pause.post())
    assert run(item.get()).status.code.value == "Paused"
    state = json.loads((served.job_dir / "state.json").read_text())
    assert state["paused"] is True  # the same state folder `exwb status` reads
    run(item.start.post())
    assert run(item.get()).status.code.value in ("Active", "NotRun")
    criteria = SynchronizationJobRestartCriteria(
        reset_scope=SynchronizationJobRestartScope.Watermark
    )
    run(item.restart.post(RestartPostRequestBody(criteria=criteria)))
    assert json.loads((served.job_dir / "state.json").read_text())["delta_link"] is None
    ran = served.advance(minutes=1)
    assert ran["ran"] >= 1  # the restart ran the next (initial) cycle at once
    assert json.loads((served.job_dir / "state.json").read_text())["delta_link"]


def test_a_restart_scope_graph_does_not_know_is_refused_naming_it(served):
    sp = served.sp_id()
    job_id = run(jobs(served.client, sp).get()).value[0].id
    url = f"{served.ep.graph_url}/v1.0/servicePrincipals/{sp}/synchronization/jobs/{job_id}"
    r = call(
        "POST",
        url + "/restart",
        token=token(served.ep),
        body={"criteria": {"resetScope": "Escrows, Everything"}},
    )
    assert r.status == 400 and "'Everything'" in r.body["error"]["message"]
    r = call("POST", url + "/pause", token=token(served.ep, readonly=True))
    assert r.status == 403  # the read-only app cannot operate the job
    r = call("GET", url.replace(job_id, "Nope.0.0"), token=token(served.ep))
    assert r.status == 404


def test_provision_on_demand_writes_then_answers_redundant_export(served):
    sp = served.sp_id()
    job_id = run(jobs(served.client, sp).get()).value[0].id
    schema = run(jobs(served.client, sp).by_synchronization_job_id(job_id).schema.get())
    rule = schema.synchronization_rules[0].id
    user, mbx = mailbox_pairs(generate(SPEC), True)[0]
    served.advance(minutes=1)  # a fresh on-demand window
    ExoAdmin(served.ep).set_mailbox(mbx.id, CustomAttribute9="on demand")
    first = on_demand(served, sp, job_id, rule, mbx.id)
    assert first["key"]["result"] == "Success", first
    assert ad_value(served.ep, user.dn, "extensionAttribute9") == ["on demand"]
    assert [s["type"] for s in first["value"]["provisioningSteps"]] == [
        "Import",
        "Matching",
        "Scoping",
        "Export",
    ]
    again = on_demand(served, sp, job_id, rule, mbx.id)
    assert again["key"] == {
        "result": "Skipped",
        "details": {
            "errorCode": "RedundantExport",
            "errorMessage": "The state of the user in both the source and target systems "
            "already match.",
        },
    }
    assert again["value"]["provisioningSteps"][-1]["details"] == {"SkipReason": "RedundantExport"}


def test_provision_on_demand_is_limited_to_five_requests_per_ten_seconds(served):
    sp = served.sp_id()
    job_id = run(jobs(served.client, sp).get()).value[0].id
    rule = run(jobs(served.client, sp).by_synchronization_job_id(job_id).schema.get())
    rule_id = rule.synchronization_rules[0].id
    _, mbx = mailbox_pairs(generate(SPEC), True)[1]
    served.advance(minutes=1)
    for _ in range(5):
        on_demand(served, sp, job_id, rule_id, mbx.id)
    url = f"{served.ep.graph_url}/v1.0/servicePrincipals/{sp}/synchronization/jobs/{job_id}"
    body = {
        "parameters": [
            {"ruleId": rule_id, "subjects": [{"objectId": mbx.id, "objectTypeName": "User"}]}
        ]
    }
    r = call("POST", url + "/provisionOnDemand", token=token(served.ep), body=body)
    assert r.status == 429 and r.headers["retry-after"] == "10"
    served.advance(minutes=1)  # the window passes on the harness clock
    assert call("POST", url + "/provisionOnDemand", token=token(served.ep), body=body).status == 200


def test_a_container_filter_in_the_schema_leaves_other_users_not_in_scope(served):
    sp = served.sp_id()
    job_id = run(jobs(served.client, sp).get()).value[0].id
    item = jobs(served.client, sp).by_synchronization_job_id(job_id)
    schema = run(item.schema.get())
    rule = schema.synchronization_rules[0]
    user, mbx = mailbox_pairs(generate(SPEC), True)[2]
    elsewhere = "OU=Nowhere," + served.ep.base_dn
    rule.container_filter.included_containers = [elsewhere]
    run(item.schema.patch(schema))
    assert run(item.schema.get()).synchronization_rules[0].container_filter.included_containers == [
        elsewhere
    ]
    served.advance(minutes=1)
    ExoAdmin(served.ep).set_mailbox(mbx.id, CustomAttribute10="filtered out")
    out = on_demand(served, sp, job_id, rule.id, mbx.id)
    assert out["key"]["result"] == "Skipped" and out["key"]["details"]["errorCode"] == "NotInScope"
    assert ad_value(served.ep, user.dn, "extensionAttribute10") == []
    parent = user.dn.split(",", 1)[1]
    rule.container_filter.included_containers = [parent]
    run(item.schema.patch(schema))
    served.advance(minutes=1)
    # The changed filter restarted the job: its initial cycle brought the edit in scope.
    assert ad_value(served.ep, user.dn, "extensionAttribute10") == ["filtered out"]
    back = on_demand(served, sp, job_id, rule.id, mbx.id)
    assert back["key"]["details"]["errorCode"] == "RedundantExport", back
    rule.container_filter.included_containers = []
    run(item.schema.patch(schema))


def test_a_bad_scoping_filter_is_refused_naming_the_value(served):
    sp = served.sp_id()
    job_id = run(jobs(served.client, sp).get()).value[0].id
    url = f"{served.ep.graph_url}/v1.0/servicePrincipals/{sp}/synchronization/jobs/{job_id}/schema"
    body = {"synchronizationRules": [{"containerFilter": {"includedContainers": ["not a dn"]}}]}
    r = call("PUT", url, token=token(served.ep), body=body)
    assert r.status == 400 and "'not a dn'" in r.body["error"]["message"]


def test_a_job_set_up_from_the_template_runs_on_its_own_schedule(served):
    body = InstantiatePostRequestBody(display_name="fabrikam.com")
    made = run(
        served.client.application_templates.by_application_template_id(TEMPLATE).instantiate.post(
            body
        )
    )
    sp = made.service_principal.id
    job = run(
        jobs(served.client, sp).post(
            SynchronizationJob(template_id="Entra2ADExchangeOnlineAttributeWriteback")
        )
    )
    assert JOB_ID.fullmatch(job.id) and job.status.code.value == "NotRun"
    secret = SynchronizationSecretKeyStringValuePair(
        key=SynchronizationSecret.Domain, value='{"domain":"fabrikam.com"}'
    )
    secrets = served.client.service_principals.by_service_principal_id(sp).synchronization.secrets
    run(secrets.put(SecretsPutRequestBody(value=[secret])))
    item = jobs(served.client, sp).by_synchronization_job_id(job.id)
    assert {s.name: s.value for s in run(item.get()).synchronization_job_settings} == {
        "DomainFQDN": "fabrikam.com"
    }
    served.advance(minutes=30)
    assert run(item.get()).status.code.value == "NotRun"  # created, not started: it waits
    run(item.start.post())
    served.advance(minutes=1)
    started = run(item.get())
    assert started.status.code.value == "Active"
    assert started.status.last_execution.state.value == "Succeeded"
    query = urlencode({"$filter": f"jobId eq '{job.id}'", "$top": "5"})
    logs = call(
        "GET", f"{served.ep.graph_url}/v1.0/auditLogs/provisioning?{query}", token=token(served.ep)
    )
    assert logs.status == 200 and len(logs.body["value"]) == 5, logs.body
    assert {r["servicePrincipal"]["id"] for r in logs.body["value"]} == {sp}
    with pytest.raises(APIError) as refused:  # one job per service principal
        run(
            jobs(served.client, sp).post(
                SynchronizationJob(template_id="Entra2ADExchangeOnlineAttributeWriteback")
            )
        )
    assert refused.value.response_status_code == 409
    run(item.delete())
    assert run(jobs(served.client, sp).get()).value == []


def test_a_tenant_without_the_engine_lists_no_jobs_and_refuses_to_create_one(running):
    ep = running.endpoints
    g, tok = f"{ep.graph_url}/v1.0", token(ep)
    r = call("POST", f"{g}/applicationTemplates/{TEMPLATE}/instantiate", token=tok, body={})
    assert r.status == 400 and "displayName" in r.body["error"]["message"]
    r = call("POST", f"{g}/applicationTemplates/0000/instantiate", token=tok, body={})
    assert r.status == 404
    body = {"displayName": "contoso.com"}
    r = call("POST", f"{g}/applicationTemplates/{TEMPLATE}/instantiate", token=tok, body=body)
    assert r.status == 201, r.body
    sp = r.body["servicePrincipal"]["id"]
    assert call("GET", f"{g}/servicePrincipals/{sp}", token=tok).status == 200
    r = call("GET", f"{g}/servicePrincipals/{sp}/synchronization/jobs", token=tok)
    assert r.status == 200 and r.body["value"] == []
    create = {"templateId": "Entra2ADExchangeOnlineAttributeWriteback"}
    r = call("POST", f"{g}/servicePrincipals/{sp}/synchronization/jobs", token=tok, body=create)
    assert r.status == 501 and r.body["error"]["code"] == "NotImplemented"
    r = call("POST", f"{g}/servicePrincipals/{sp}/synchronization/jobs", token=tok, body={})
    assert r.status == 400 and "templateId" in r.body["error"]["message"]
    r = call("GET", f"{g}/servicePrincipals/nope/synchronization/jobs", token=tok)
    assert r.status == 404
    ro = token(ep, readonly=True)
    r = call("POST", f"{g}/applicationTemplates/{TEMPLATE}/instantiate", token=ro, body=body)
    assert r.status == 403
