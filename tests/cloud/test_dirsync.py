"""The directory-synchronization export endpoint (Entra Connect's stand-in) over HTTP."""

from __future__ import annotations

import json

import pytest

from harness.tenant import recipients as rt
from tests.cloud.http_client import call, cmdlet, graph_error, token


def connect_token(ep) -> str:
    r = call(
        "POST",
        ep.token_url,
        form={
            "grant_type": "client_credentials",
            "client_id": ep.connect_client_id,
            "client_secret": ep.connect_client_secret,
            "scope": "https://graph.microsoft.com/.default",
        },
    )
    assert r.status == 200, r.body
    return r.body["access_token"]


def export(ep, tok, objects):
    return call("POST", ep.dirsync_url, token=tok, body={"objects": objects})


def synced(tenant, managed: bool | None = None):
    return [
        m
        for _, m in tenant.synced_pairs()
        if m.recipient_type_details != rt.MAIL_USER
        and (managed is None or m.is_exchange_cloud_managed == managed)
    ]


def snapshot(running):
    store = running.cloud.store
    return running.call(lambda: (store.seq, {m.id: m.to_json() for m in store}))


def delta_link(ep, tok):
    select = "displayName,onPremisesExtensionAttributes,proxyAddresses,exwbExchange"
    r = call(
        "GET", f"{ep.graph_url}/v1.0/users/delta?$select={select}&$deltatoken=latest", token=tok
    )
    assert r.status == 200, r.body
    return r.body["@odata.deltaLink"]


def delta_round(tok, link):
    users = []
    while True:
        r = call("GET", link, token=tok)
        assert r.status == 200, r.body
        users += r.body["value"]
        if "@odata.deltaLink" in r.body:
            return users, r.body["@odata.deltaLink"]
        link = r.body["@odata.nextLink"]


def test_endpoints_name_the_connect_account_and_the_export_url(running):
    ep = running.endpoints
    assert ep.dirsync_url == f"{ep.graph_url}/exwb/dirsync/{ep.tenant_id}/export"
    assert ep.connect_client_id and ep.connect_client_secret
    assert ep.connect_client_id not in (ep.client_id, ep.readonly_client_id)


def test_only_the_connect_account_may_export(running, cloud_tenant):
    ep = running.endpoints
    m = synced(cloud_tenant)[0]
    objects = [{"sourceAnchor": m.immutable_id, "properties": {"displayName": "Denied"}}]
    before = snapshot(running)
    for tok in (token(ep), token(ep, readonly=True)):
        graph_error(export(ep, tok, objects), 403, "Authorization_RequestDenied")
    graph_error(export(ep, None, objects), 401, "InvalidAuthenticationToken")
    assert snapshot(running) == before
    r = export(ep, connect_token(ep), objects)
    assert r.status == 200 and r.body["value"][0]["status"] == 200


def test_the_connect_account_cannot_write_through_exo(running, cloud_tenant):
    ep = running.endpoints
    m = synced(cloud_tenant, managed=True)[0]
    r = cmdlet(ep, connect_token(ep), "Set-Mailbox", Identity=m.id, CustomAttribute1="x")
    graph_error(r, 403, "AccessDenied")
    # It may read Graph, as Connect imports the cloud side with the same account.
    r = call("GET", f"{ep.graph_url}/v1.0/users/{m.id}", token=connect_token(ep))
    assert r.status == 200 and r.body["id"] == m.id


def test_wrong_method_tenant_and_path(running):
    ep = running.endpoints
    tok = connect_token(ep)
    graph_error(call("GET", ep.dirsync_url, token=tok), 405, "Request_BadRequest")
    other = ep.dirsync_url.replace(ep.tenant_id, "00000000-0000-0000-0000-000000000000")
    graph_error(call("POST", other, token=tok, body={"objects": []}), 404, "NotFound")


def many(anchor: str, n: int) -> list[dict]:
    return [{"sourceAnchor": f"{anchor}{i}", "properties": {}} for i in range(n)]


BAD_BODIES = [
    pytest.param(b"{not json", id="not-json"),
    pytest.param(b"[]", id="not-an-object"),
    pytest.param(b'{"objects": {}}', id="objects-not-a-list"),
    pytest.param(b'{"objects": []}', id="empty-batch"),
    pytest.param(json.dumps({"objects": many("a", 101)}).encode(), id="too-many"),
    pytest.param(b'{"objects": [{"sourceAnchor": 5, "properties": {}}]}', id="anchor-not-text"),
    pytest.param(b'{"objects": [{"sourceAnchor": "a"}]}', id="no-properties"),
    pytest.param(b'{"objects": [{"sourceAnchor": "a", "properties": []}]}', id="props-list"),
    pytest.param(
        b'{"objects": [{"sourceAnchor": "a", "properties": {}, "x": 1}]}', id="unknown-key"
    ),
    pytest.param(json.dumps({"objects": [*many("a", 1), *many("a", 1)]}).encode(), id="twice"),
]


@pytest.mark.parametrize("raw", BAD_BODIES)
def test_malformed_batches_are_refused_whole(running, cloud_tenant, raw):
    ep = running.endpoints
    m = synced(cloud_tenant)[0]
    # A valid object in front: a malformed batch must not apply even that one.
    body = json.loads(raw) if raw.startswith(b'{"objects": [{') else None
    if body is not None:
        body["objects"].insert(
            0, {"sourceAnchor": m.immutable_id, "properties": {"displayName": "Not applied"}}
        )
        raw = json.dumps(body).encode()
    before = snapshot(running)
    r = call(
        "POST",
        ep.dirsync_url,
        token=connect_token(ep),
        raw=raw,
        headers={"Content-Type": "application/json"},
    )
    graph_error(r, 400, "BadRequest")
    assert snapshot(running) == before


def test_per_object_errors_leave_the_object_untouched(running, cloud_tenant):
    ep = running.endpoints
    a, b, c, d, e = synced(cloud_tenant, managed=False)[:5]
    taken = next(x for x in b.email_addresses if x.startswith("smtp:"))
    objects = [
        {"sourceAnchor": "bm90IGFuIGFuY2hvcg==", "properties": {"displayName": "Nobody"}},
        # a valid property beside an invalid one: neither is applied
        {
            "sourceAnchor": a.immutable_id,
            "properties": {"displayName": "Changed", "extensionAttribute1": "x" * 1025},
        },
        {
            "sourceAnchor": c.immutable_id,
            "properties": {"proxyAddresses": [*c.email_addresses, taken]},
        },
        {"sourceAnchor": d.immutable_id, "properties": {"department": "Sales"}},
        {"sourceAnchor": e.immutable_id, "properties": {"msExchRecipientTypeDetails": "128"}},
        {"sourceAnchor": b.immutable_id, "properties": {"extensionAttribute2": "applied"}},
    ]
    before = snapshot(running)[1]
    r = export(ep, connect_token(ep), objects)
    assert r.status == 200, r.body
    results = r.body["value"]
    assert [x["sourceAnchor"] for x in results] == [o["sourceAnchor"] for o in objects]
    assert [x["status"] for x in results] == [404, 400, 409, 400, 400, 200]
    codes = [
        "Request_ResourceNotFound",
        "InvalidValue",
        "AttributeValueMustBeUnique",
        "Request_BadRequest",
        "InvalidValue",
    ]
    for result, code in zip(results[:5], codes, strict=True):
        err = result["body"]["error"]
        assert err["code"] == code and err["message"]
        assert {"date", "request-id", "client-request-id"} <= set(err["innerError"])
    assert "extensionAttribute1" in results[1]["body"]["error"]["message"]
    assert results[5]["body"] == {"id": b.id, "changedProperties": ["CustomAttribute2"]}
    after = snapshot(running)[1]
    for m in (a, c, d, e):
        assert after[m.id] == before[m.id]
    assert after[b.id]["CustomAttribute2"] == "applied"


def test_applied_changes_show_in_graph_delta(running, cloud_tenant):
    ep = running.endpoints
    reader = token(ep, readonly=True)
    link = delta_link(ep, reader)
    m = synced(cloud_tenant, managed=False)[0]
    extra = f"smtp:{m.alias}.forward@contoso.com"
    props = {
        "displayName": "Synced From AD",
        "extensionAttribute3": "from AD",
        "proxyAddresses": [*m.email_addresses, extra],
        "msExchExtensionCustomAttribute1": ["a", "b"],
        "msExchRecipientTypeDetails": str(rt.REMOTE_AD_VALUES[rt.SHARED_MAILBOX].type_details),
        "msExchHideFromAddressLists": "TRUE",
    }
    tok = connect_token(ep)
    r = export(ep, tok, [{"sourceAnchor": m.immutable_id, "properties": props}])
    assert r.status == 200 and r.headers["x-ms-resource-unit"] == "1"
    assert r.body["value"][0]["body"]["changedProperties"] == [
        "CustomAttribute3",
        "DisplayName",
        "EmailAddresses",
        "ExtensionCustomAttribute1",
        "HiddenFromAddressListsEnabled",
        "RecipientTypeDetails",
    ]
    users, link = delta_round(reader, link)
    assert [u["id"] for u in users] == [m.id]
    user = users[0]
    assert user["displayName"] == "Synced From AD"
    assert user["onPremisesExtensionAttributes"]["extensionAttribute3"] == "from AD"
    assert extra in user["proxyAddresses"]
    assert user["exwbExchange"]["recipientTypeDetails"] == "SharedMailbox"
    assert user["exwbExchange"]["hiddenFromAddressListsEnabled"] is True
    assert user["exwbExchange"]["extensionCustomAttribute1"] == ["a", "b"]
    # The same values again change nothing, and nothing shows in delta.
    again = export(ep, tok, [{"sourceAnchor": m.immutable_id, "properties": props}])
    assert again.body["value"][0] == {
        "sourceAnchor": m.immutable_id,
        "status": 200,
        "body": {"id": m.id, "changedProperties": []},
    }
    assert delta_round(reader, link)[0] == []


def test_null_clears_and_a_batch_is_charged_per_object(running, cloud_tenant):
    ep = running.endpoints
    ms = [m for m in synced(cloud_tenant) if m.custom_attributes[0]][:3]
    objects = [
        {"sourceAnchor": m.immutable_id, "properties": {"extensionAttribute1": None}} for m in ms
    ]
    r = export(ep, connect_token(ep), objects)
    assert r.status == 200 and r.headers["x-ms-resource-unit"] == "3"
    assert all(x["body"]["changedProperties"] == ["CustomAttribute1"] for x in r.body["value"])
    for m in ms:
        got = cmdlet(ep, token(ep), "Get-Mailbox", Identity=m.id).body["value"][0]
        assert got["CustomAttribute1"] == ""
