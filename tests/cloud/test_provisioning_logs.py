"""GET /v1.0/auditLogs/provisioning: the writeback job's log through Graph, as msgraph-sdk and
httpx read it from the fake over loopback, after real cycles wrote it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from kiota_abstractions.base_request_configuration import RequestConfiguration
from msgraph.generated.audit_logs.provisioning.provisioning_request_builder import (
    ProvisioningRequestBuilder,
)
from msgraph.generated.models.provisioning_result import ProvisioningResult
from msgraph.generated.models.provisioning_step_type import ProvisioningStepType

from harness.engine import log as provlog
from harness.engine import logsource
from harness.engine.cycle import run_cycle
from harness.engine.health import job_id
from harness.engine.rules import GA
from mockservers.runtime import start_tenant
from tests.cloud.http_client import cmdlet, token, token_request
from tests.cloud.test_msgraph_sdk import client_for
from tests.support.engine import writeback_credentials

URL = "/v1.0/auditLogs/provisioning"


@pytest.fixture(scope="module")
def served(cloud_tenant, tmp_path_factory):
    """A tenant whose job ran a full cycle and a delta one with two edits; its log served."""
    run = start_tenant(cloud_tenant)
    state = tmp_path_factory.mktemp("job")
    creds = writeback_credentials(run.endpoints)
    run_cycle(*creds, GA, state, "full")
    ep, tok = run.endpoints, token(run.endpoints)
    for mbx in [m for m in cloud_tenant.mailboxes if m.is_exchange_cloud_managed][:2]:
        assert (
            cmdlet(ep, tok, "Set-Mailbox", Identity=mbx.id, CustomAttribute4="logs").status == 200
        )
    run_cycle(*creds, GA, state, "delta")
    assert run.cloud is not None
    run.cloud.provisioning = logsource.FileSource([state])
    yield run, state
    run.stop()


def newest_first(state: Path) -> list[dict]:
    """Every record of the state folder, newest first, read from the files themselves."""
    out = []
    for path in provlog.log_files(state):
        out += list(provlog.read(path))
    return out[::-1]


def get(run, params: dict[str, str] | None = None, tok: str | None = None) -> httpx.Response:
    ep = run.endpoints
    headers = {"Authorization": f"Bearer {tok or token(ep, readonly=True)}"}
    return httpx.get(f"{ep.graph_url}{URL}", params=params, headers=headers, timeout=60)


def test_sdk_lists_failures_and_successes_with_a_filter(served):
    run, state = served
    client = client_for(run.endpoints, token(run.endpoints, readonly=True))
    want = [r for r in newest_first(state) if provlog.status(r) == "Success"]

    async def scenario() -> list:
        params = ProvisioningRequestBuilder.ProvisioningRequestBuilderGetQueryParameters(
            filter="provisioningStatusInfo/status eq 'success'", top=100
        )
        page = await client.audit_logs.provisioning.get(
            RequestConfiguration(query_parameters=params)
        )
        got = list(page.value)
        while page.odata_next_link:
            page = await client.audit_logs.provisioning.with_url(page.odata_next_link).get()
            got += page.value
        return got

    got = asyncio.run(scenario())
    assert [g.change_id for g in got] == [r["changeId"] for r in want] and len(got) > 100
    first = got[0]
    assert first.provisioning_status_info.status == ProvisioningResult.Success
    assert first.job_id == job_id(str(state.resolve()))
    assert first.source_identity.id == provlog.source_id(want[0])
    # The SDK reads "import" as None (its enum member is Import_); the others come through.
    assert first.provisioning_steps[1].provisioning_step_type == ProvisioningStepType.Matching
    assert first.provisioning_steps[0].status == ProvisioningResult.Success
    updated = next(g for g in got if g.provisioning_action.value == "update")
    assert updated.modified_properties and updated.target_identity.id.startswith("CN=")


def test_filters_on_job_cycle_action_and_time(served):
    run, state = served
    records = newest_first(state)
    delta = records[0]["cycleId"]
    r = get(run, {"$filter": f"cycleId eq '{delta}' and provisioningAction eq 'update'"})
    assert r.status_code == 200, r.text
    assert [x["changeId"] for x in r.json()["value"]] == [
        x["changeId"] for x in records if x["cycleId"] == delta and provlog.action(x) == "Update"
    ]
    assert r.json()["value"]
    job = records[0]["jobId"]
    assert len(get(run, {"$filter": f"jobId eq '{job}'"}).json()["value"]) == len(records)
    assert get(run, {"$filter": "jobId eq 'other'"}).json() == {
        "@odata.context": f"{run.endpoints.graph_url}/v1.0/$metadata#auditLogs/provisioning",
        "value": [],
    }
    when = records[0]["activityDateTime"]
    later = get(run, {"$filter": f"activityDateTime ge {when}"}).json()["value"]
    assert later and all(x["activityDateTime"] >= when for x in later)
    name = records[0]["sourceIdentity"]["id"][:8]
    found = get(run, {"$filter": f"contains(sourceIdentity/id,'{name}')"}).json()["value"]
    assert found and all(name in x["sourceIdentity"]["id"] for x in found)


def test_pages_follow_next_links_newest_first_and_resume_after_new_records(served, cloud_tenant):
    run, state = served
    records = newest_first(state)
    first = get(run, {"$top": "7"}).json()
    assert [x["id"] for x in first["value"]] == [x["id"] for x in records[:7]]
    link = first["@odata.nextLink"]
    assert "$skiptoken=" in link and "$top=7" in link
    # A cycle writing meanwhile does not shift the pages already begun.
    ep, tok = run.endpoints, token(run.endpoints)
    mbx = [m for m in cloud_tenant.mailboxes if m.is_exchange_cloud_managed][2]
    assert cmdlet(ep, tok, "Set-Mailbox", Identity=mbx.id, CustomAttribute4="later").status == 200
    run_cycle(*writeback_credentials(run.endpoints), GA, state, "delta")
    tok = token(run.endpoints, readonly=True)
    second = httpx.get(link, headers={"Authorization": f"Bearer {tok}"}, timeout=60).json()
    assert [x["id"] for x in second["value"]] == [x["id"] for x in records[7:14]]
    assert len(newest_first(state)) > len(records)  # the new records are there, on page one
    assert get(run, {"$top": "1"}).json()["value"][0]["id"] == newest_first(state)[0]["id"]


def test_bad_options_are_refused_in_graphs_shape(served):
    run, _ = served
    for params, code in (
        ({"$top": "0"}, "Request_BadRequest"),
        ({"$top": "1001"}, "Request_BadRequest"),
        ({"$top": "ten"}, "Request_BadRequest"),
        ({"$skiptoken": "not-a-token!"}, "Request_BadRequest"),
        ({"$filter": "nosuch eq 'x'"}, "Request_BadRequest"),
        ({"$filter": "jobId eq"}, "BadRequest"),
        ({"$filter": "activityDateTime ge yesterday"}, "BadRequest"),
        ({"$orderby": "activityDateTime asc"}, "Request_UnsupportedQuery"),
        ({"$search": "x"}, "Request_BadRequest"),
    ):
        r = get(run, params)
        assert r.status_code == 400, (params, r.text)
        error = r.json()["error"]
        assert error["code"] == code and error["message"] and "request-id" in error["innerError"]


def test_only_apps_with_auditlog_read_all_read_it(served):
    run, _ = served
    ep = run.endpoints
    assert get(run, tok=token(ep)).status_code == 200  # the admin's app
    connect = token_request(ep, ep.connect_client_id, ep.connect_client_secret).body
    r = get(run, tok=connect["access_token"])
    assert r.status_code == 403 and r.json()["error"]["code"] == "Authorization_RequestDenied"


def test_a_tenant_without_a_job_has_an_empty_log(running):
    r = get(running)
    assert r.status_code == 200 and r.json()["value"] == []
