"""The fake cloud over HTTP: tokens, errors, EXO paging and the link to Graph's delta feed."""

from __future__ import annotations

import time

from tests.cloud.http_client import call, cmdlet, exo_token, graph_error, token


def form(ep, **kw):
    base = {
        "grant_type": "client_credentials",
        "client_id": ep.client_id,
        "client_secret": ep.client_secret,
        "scope": "https://graph.microsoft.com/.default",
    }
    return {**base, **kw}


def test_endpoints_name_every_cloud_url(running):
    ep = running.endpoints
    assert ep.graph_url.startswith("http://127.0.0.1:")
    assert ep.token_url == f"{ep.graph_url}/{ep.tenant_id}/oauth2/v2.0/token"
    assert ep.exo_url == f"{ep.graph_url}/adminapi/beta/{ep.tenant_id}"
    assert ep.client_id and ep.client_secret and ep.readonly_client_id


def test_token_endpoint(running):
    ep = running.endpoints
    r = call("POST", ep.token_url, form=form(ep))
    assert r.status == 200
    assert r.body["token_type"] == "Bearer" and r.body["expires_in"] > 0 and r.body["access_token"]
    assert r.headers["cache-control"] == "no-store"


def oauth_error(r, status, error, aadsts):
    assert r.status == status, r.body
    assert r.body["error"] == error
    assert r.body["error_description"].startswith(aadsts + ":")
    assert r.body["error_codes"] == [int(aadsts[6:])]


def test_token_errors_are_entra_shaped(running):
    ep = running.endpoints
    oauth_error(
        call("POST", ep.token_url, form=form(ep, client_secret="wrong")),
        401,
        "invalid_client",
        "AADSTS7000215",
    )
    oauth_error(
        call("POST", ep.token_url, form=form(ep, client_id="00000000-0000-0000-0000-000000000000")),
        400,
        "unauthorized_client",
        "AADSTS700016",
    )
    oauth_error(
        call("POST", ep.token_url, form=form(ep, grant_type="password")),
        400,
        "unsupported_grant_type",
        "AADSTS70003",
    )
    oauth_error(
        call("POST", ep.token_url, form=form(ep, scope="")), 400, "invalid_request", "AADSTS900144"
    )
    oauth_error(
        call(
            "POST",
            ep.token_url.replace(ep.tenant_id, "11111111-2222-3333-4444-555555555555"),
            form=form(ep),
        ),
        400,
        "invalid_request",
        "AADSTS90002",
    )


def test_every_api_call_needs_a_valid_unexpired_bearer(running):
    ep = running.endpoints
    graph_error(call("GET", f"{ep.graph_url}/v1.0/users"), 401, "InvalidAuthenticationToken")
    graph_error(
        call("GET", f"{ep.graph_url}/v1.0/users", token="made-up"),
        401,
        "InvalidAuthenticationToken",
    )
    r = cmdlet(ep, "", "Get-Mailbox")
    graph_error(r, 401, "InvalidAuthenticationToken")
    running.call(setattr, running.cloud.auth, "lifetime", 1)
    tok = token(ep)
    time.sleep(1.2)
    r = call("GET", f"{ep.graph_url}/v1.0/users", token=tok)
    graph_error(r, 401, "InvalidAuthenticationToken")
    assert "expired" in r.body["error"]["message"]


def test_read_only_app_cannot_write(running, cloud_tenant):
    ep = running.endpoints
    mbx = next(m for m in cloud_tenant.mailboxes if m.is_exchange_cloud_managed)
    r = cmdlet(ep, token(ep, readonly=True), "Set-Mailbox", Identity=mbx.id, CustomAttribute1="x")
    graph_error(r, 403, "AccessDenied")
    r = cmdlet(ep, token(ep, readonly=True), "Get-Mailbox", Identity=mbx.id)
    assert r.status == 200 and r.body["value"][0]["Guid"] == mbx.id


def test_protocol_errors_keep_graphs_shape(running):
    ep = running.endpoints
    graph = token(ep)
    graph_error(call("GET", f"{ep.graph_url}/v1.0/groups", token=graph), 400, "BadRequest")
    graph_error(
        call("DELETE", f"{ep.graph_url}/v1.0/users", token=graph), 405, "Request_BadRequest"
    )
    tok = exo_token(ep)
    graph_error(
        call(
            "POST",
            f"{ep.exo_url}/InvokeCommand",
            token=tok,
            raw=b"{not json",
            headers={"Content-Type": "application/json"},
        ),
        400,
        "BadRequest",
    )
    graph_error(
        call("POST", f"{ep.exo_url}/InvokeCommand", token=tok, body={"nope": 1}), 400, "BadRequest"
    )
    big = (
        b'{"CmdletInput": {"CmdletName": "Get-Mailbox", "Parameters": {"x": "'
        + b"a" * (5 << 20)
        + b'"}}}'
    )
    graph_error(
        call(
            "POST",
            f"{ep.exo_url}/InvokeCommand",
            token=tok,
            raw=big,
            headers={"Content-Type": "application/json"},
        ),
        413,
        "RequestEntityTooLarge",
    )
    # The server is still serving.
    assert call("GET", f"{ep.graph_url}/v1.0/users?$top=1", token=graph).status == 200


def test_exo_results_page_with_next_links(running, cloud_tenant):
    ep = running.endpoints
    tok = exo_token(ep)
    running.call(setattr, __import__("mockservers.cloud.cursors", fromlist=["x"]), "EXO_PAGE", 40)
    r = cmdlet(ep, tok, "Get-Mailbox", ResultSize="Unlimited")
    assert r.status == 200, r.body
    seen = list(r.body["value"])
    assert "$metadata#" in r.body["@odata.context"]
    while "@odata.nextLink" in r.body:
        r = call("GET", r.body["@odata.nextLink"], token=tok)
        assert r.status == 200, r.body
        seen.extend(r.body["value"])
    mailbox_types = {"UserMailbox", "SharedMailbox", "RoomMailbox", "EquipmentMailbox"}
    expected = [m.id for m in cloud_tenant.mailboxes if m.recipient_type_details in mailbox_types]
    assert [x["Guid"] for x in seen] == expected
    running.call(setattr, __import__("mockservers.cloud.cursors", fromlist=["x"]), "EXO_PAGE", 1000)


def test_set_mailbox_shows_up_in_graph_delta(running, cloud_tenant):
    ep = running.endpoints
    tok = token(ep)
    url = f"{ep.graph_url}/v1.0/users/delta?$select=id,onPremisesExtensionAttributes"
    r = call("GET", url, token=tok)
    while "@odata.nextLink" in r.body:
        r = call("GET", r.body["@odata.nextLink"], token=tok)
    delta_link = r.body["@odata.deltaLink"]
    mbx = next(m for m in cloud_tenant.mailboxes if m.is_exchange_cloud_managed)
    r = cmdlet(ep, tok, "Set-Mailbox", Identity=mbx.user_principal_name, CustomAttribute7="Written")
    assert r.status == 200, r.body
    r = call("GET", delta_link, token=tok)
    assert r.status == 200, r.body
    changed = [u for u in r.body["value"] if "@removed" not in u]
    assert [u["id"] for u in changed] == [mbx.id]
    assert changed[0]["onPremisesExtensionAttributes"]["extensionAttribute7"] == "Written"


def test_throttling_answers_429_with_graph_headers(running):
    from mockservers.cloud.throttle import Throttle

    ep = running.endpoints
    running.call(setattr, running.cloud, "throttle", Throttle.profile("6/2", ep.tenant_id))
    tok = token(ep)
    statuses = [
        call("GET", f"{ep.graph_url}/v1.0/users/{ep.tenant_id}", token=tok) for _ in range(5)
    ]
    limited = [r for r in statuses if r.status == 429]
    assert limited, [r.status for r in statuses]
    r = limited[0]
    graph_error(r, 429, "TooManyRequests")
    assert r.reason == "Too Many Requests"  # Twisted's own table would say "Unknown Status"
    assert int(r.headers["retry-after"]) >= 1
    assert r.headers["x-ms-throttle-information"] == "ResourceUnitLimitExceeded"
    assert r.headers["x-ms-throttle-scope"].startswith("Tenant_Application/ReadWrite/")
    assert all("x-ms-resource-unit" in s.headers for s in statuses)


def test_status_lines_carry_the_reason_phrase(running):
    ep = running.endpoints
    tok = token(ep)
    ok = call("GET", f"{ep.graph_url}/v1.0/users?$top=1", token=tok)
    unsigned = call("GET", f"{ep.graph_url}/v1.0/users?$top=1")
    wrong_method = call("DELETE", f"{ep.graph_url}/v1.0/users", token=tok)
    gone = call("GET", f"{ep.graph_url}/v1.0/users/00000000-0000-0000-0000-000000000000", token=tok)
    assert [(r.status, r.reason) for r in (ok, unsigned, wrong_method, gone)] == [
        (200, "OK"),
        (401, "Unauthorized"),
        (405, "Method Not Allowed"),
        (404, "Not Found"),
    ]
