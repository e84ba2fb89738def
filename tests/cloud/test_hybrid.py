"""Exchange Online's hybrid objects over loopback HTTP: the EXO cmdlets (through the harness's
own ExoAdmin client), the Graph service-principal and onPremisesSyncBehavior routes (plain
urllib with a client-credentials token), and the HybridCloud model's knobs and persistence."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import replace
from urllib.parse import quote

import pytest

from harness.clients.exo import CmdletError, ExoAdmin
from harness.tenant import TenantSpec, generate
from harness.tenant.exchange_org import CLOUD_IOC, EXCHANGE_ONLINE_APP_ID, ExchangeOrg
from mockservers.cloud.hybrid import HybridCloud
from mockservers.runtime import RunningTenant, start_tenant
from tests.cloud.http_client import call, graph_error, token, token_request

MESSY = TenantSpec(mailboxes=20, seed=7)  # the org_preset defaults: messy
CLEAN = TenantSpec.from_mapping({"mailboxes": 20, "seed": 7, "org_preset": "clean"})
NOT_FOUND = "ManagementObjectNotFoundException"
ORG = ExchangeOrg(MESSY)


def not_found_text(identity: str) -> str:
    return (
        f"The operation couldn't be performed because object '{identity}' couldn't be found on "
        "'EURPR01A001.PROD.OUTLOOK.COM'."
    )


@pytest.fixture
def running() -> Iterator[RunningTenant]:
    run = start_tenant(generate(MESSY))
    yield run
    run.stop()


@pytest.fixture
def exo(running: RunningTenant) -> Iterator[ExoAdmin]:
    ep = running.endpoints
    with ExoAdmin(ep.exo_url, ep.token_url, ep.client_id, ep.client_secret) as admin:
        yield admin


@pytest.fixture
def reader(running: RunningTenant) -> Iterator[ExoAdmin]:
    ep = running.endpoints
    with ExoAdmin(
        ep.exo_url, ep.token_url, ep.readonly_client_id, ep.readonly_client_secret
    ) as admin:
        yield admin


def refused(exo: ExoAdmin, cmdlet: str, **params) -> CmdletError:
    with pytest.raises(CmdletError) as info:
        exo.invoke(cmdlet, **params)
    return info.value


def names(items: list[dict]) -> list[str]:
    return [i["Name"] for i in items]


def graph(running: RunningTenant, path: str) -> str:
    return f"{running.endpoints.graph_url}/v1.0/{path}"


def exo_sp(running: RunningTenant, tok: str) -> dict:
    url = graph(
        running, "servicePrincipals?$filter=" + quote(f"appId eq '{EXCHANGE_ONLINE_APP_ID}'")
    )
    r = call("GET", url, token=tok)
    assert r.status == 200, r.body
    assert len(r.body["value"]) == 1
    return r.body["value"][0]


# ------------------------------------------------------------------------------ EXO cmdlets
def test_get_cmdlets_list_what_the_hcw_left(exo):
    domains = [MESSY.domain, *MESSY.extra_domains]
    (inbound,) = exo.invoke_all("Get-InboundConnector")
    assert inbound["Identity"] == ORG.inbound_connector
    assert inbound["ConnectorType"] == "OnPremises" and inbound["SenderDomains"] == ["*"]
    assert inbound["TlsSenderCertificateName"] == f"mail.{MESSY.domain}"

    outbound = exo.invoke_all("Get-OutboundConnector")
    hcw = outbound[0]
    assert hcw["Name"] == ORG.outbound_connector and hcw["ConnectorType"] == "OnPremises"
    assert hcw["SmartHosts"] == [ORG.mail_host] and hcw["RecipientDomains"] == domains
    # stale_cloud_objects=2: a legacy relay connector and a rule routing through the HCW's
    assert names(outbound[1:]) == [f"Outbound to {MESSY.domain} relay (legacy)"]
    assert outbound[1]["SmartHosts"] == [ORG.mail_host]

    (relationship,) = exo.invoke_all("Get-OrganizationRelationship")
    assert relationship["Name"] == ORG.cloud_org_relationship
    assert relationship["DomainNames"] == domains
    assert relationship["TargetSharingEpr"] == ORG.target_sharing_epr

    (ioc,) = exo.invoke_all("Get-IntraOrganizationConnector")
    assert ioc["Name"] == CLOUD_IOC and ioc["Enabled"] is True
    assert ioc["TargetAddressDomains"] == domains
    assert ioc["DiscoveryEndpoint"] == f"https://mail.{MESSY.domain}/autodiscover/autodiscover.svc"

    rules = exo.invoke_all("Get-TransportRule")
    assert [r["Priority"] for r in rules] == [0, 1]
    assert rules[0]["Name"] == "External Email Disclaimer"
    assert rules[0]["RouteMessageOutboundConnector"] is None
    assert rules[1]["RouteMessageOutboundConnector"] == ORG.outbound_connector

    (app,) = exo.invoke_all("Get-HybridApplication")
    assert app["AppId"] == ORG.hybrid_app_id

    groups = exo.invoke_all("Get-DistributionGroup")
    synced = {g["Name"]: g["ExternalDirectoryObjectId"] for g in groups if g["IsDirSynced"]}
    assert synced == {g.name: g.id for g in ORG.groups_without_soa}
    assert len([g for g in groups if not g["IsDirSynced"]]) == 2  # already transferred
    contacts = exo.invoke_all("Get-MailContact")
    assert [(c["Name"], c["IsDirSynced"]) for c in contacts] == [
        (c.name, True) for c in ORG.contacts_without_soa
    ]
    assert contacts[0]["ExternalEmailAddress"] == f"SMTP:{ORG.contacts_without_soa[0].address}"
    (config,) = exo.invoke_all("Get-OrganizationConfig")
    assert config["PublicFoldersEnabled"] == "Remote"


def test_get_by_identity_and_unknown_identities(exo):
    (by_name,) = exo.invoke_all("Get-InboundConnector", Identity=ORG.inbound_connector.upper())
    (by_guid,) = exo.invoke_all("Get-InboundConnector", Identity=by_name["Guid"])
    assert by_guid == by_name
    group = ORG.groups_without_soa[0]
    for identity in (group.name, group.address, group.id):
        (g,) = exo.invoke_all("Get-DistributionGroup", Identity=identity)
        assert g["ExternalDirectoryObjectId"] == group.id
    for cmdlet in (
        "Get-InboundConnector",
        "Get-OutboundConnector",
        "Get-OrganizationRelationship",
        "Get-IntraOrganizationConnector",
        "Get-TransportRule",
        "Get-DistributionGroup",
        "Get-MailContact",
    ):
        e = refused(exo, cmdlet, Identity="No Such Object")
        assert (e.status, e.code, e.message) == (400, NOT_FOUND, not_found_text("No Such Object"))
    e = refused(exo, "Get-HybridApplication", AppId="0000")
    assert e.code == NOT_FOUND
    e = refused(exo, "Get-InboundConnector", Bogus=1)
    assert e.code == "ParameterBindingException"


@pytest.mark.parametrize(
    ("get", "remove", "param", "identity"),
    [
        ("Get-InboundConnector", "Remove-InboundConnector", "Identity", ORG.inbound_connector),
        (
            "Get-OrganizationRelationship",
            "Remove-OrganizationRelationship",
            "Identity",
            ORG.cloud_org_relationship,
        ),
        ("Get-TransportRule", "Remove-TransportRule", "Identity", "External Email Disclaimer"),
        ("Get-HybridApplication", "Remove-HybridApplication", "AppId", ORG.hybrid_app_id),
        (
            "Get-OutboundConnector",
            "Remove-OutboundConnector",
            "Identity",
            f"Outbound to {MESSY.domain} relay (legacy)",
        ),
    ],
)
def test_remove_cmdlets_then_not_found(exo, get, remove, param, identity):
    before = exo.invoke_all(get)
    page = exo.invoke(remove, **{param: identity, "Confirm": False})
    assert page["value"] == []
    after = exo.invoke_all(get)
    assert len(after) == len(before) - 1
    assert identity not in [a.get("Name", a.get("AppId")) for a in after]
    e = refused(exo, remove, **{param: identity})
    assert (e.code, e.message) == (NOT_FOUND, not_found_text(identity))
    e = refused(exo, remove)
    assert e.code == "ParameterBindingException" and param in e.message


def test_removing_a_rule_renumbers_the_ones_after_it(exo):
    exo.invoke("Remove-TransportRule", Identity="External Email Disclaimer")
    (rule,) = exo.invoke_all("Get-TransportRule")
    assert rule["Priority"] == 0 and rule["RouteMessageOutboundConnector"]


def test_remove_outbound_connector_refused_while_a_rule_routes_through_it(exo):
    (rule,) = [r for r in exo.invoke_all("Get-TransportRule") if r["RouteMessageOutboundConnector"]]
    e = refused(exo, "Remove-OutboundConnector", Identity=ORG.outbound_connector)
    assert e.status == 400 and e.code == "InvalidOperationException"
    assert f"'{ORG.outbound_connector}'" in e.message and f"'{rule['Name']}'" in e.message
    assert ORG.outbound_connector in names(exo.invoke_all("Get-OutboundConnector"))

    exo.invoke("Remove-TransportRule", Identity=rule["Name"])
    exo.invoke("Remove-OutboundConnector", Identity=ORG.outbound_connector)
    assert ORG.outbound_connector not in names(exo.invoke_all("Get-OutboundConnector"))


def test_set_intra_organization_connector(exo):
    page = exo.invoke("Set-IntraOrganizationConnector", Identity=CLOUD_IOC, Enabled=False)
    assert "@adminapi.warnings" not in page
    (ioc,) = exo.invoke_all("Get-IntraOrganizationConnector", Identity=CLOUD_IOC)
    assert ioc["Enabled"] is False
    again = exo.invoke("Set-IntraOrganizationConnector", Identity=CLOUD_IOC, Enabled=False)
    assert again["@adminapi.warnings"] == [
        f"The command completed successfully but no settings of '{CLOUD_IOC}' have been modified."
    ]
    e = refused(exo, "Set-IntraOrganizationConnector", Identity=CLOUD_IOC, Enabled="maybe")
    assert e.code == "ParameterBindingException" and "System.Boolean" in e.message
    e = refused(exo, "Set-IntraOrganizationConnector", Identity="Nope", Enabled=True)
    assert (e.code, e.message) == (NOT_FOUND, not_found_text("Nope"))
    e = refused(exo, "Set-IntraOrganizationConnector", Enabled=True)
    assert e.code == "ParameterBindingException"


def test_set_organization_config_public_folders(exo):
    exo.invoke("Set-OrganizationConfig", PublicFoldersEnabled="local")
    (config,) = exo.invoke_all("Get-OrganizationConfig")
    assert config["PublicFoldersEnabled"] == "Local"
    e = refused(exo, "Set-OrganizationConfig", PublicFoldersEnabled="Elsewhere")
    assert e.code == "ParameterBindingException"
    assert "Local, Remote, None" in e.message
    (config,) = exo.invoke_all("Get-OrganizationConfig")
    assert config["PublicFoldersEnabled"] == "Local"


def test_read_only_app_cannot_run_hybrid_writes(reader):
    assert reader.invoke_all("Get-OutboundConnector")  # reads are fine
    for cmdlet, params in (
        ("Remove-InboundConnector", {"Identity": ORG.inbound_connector}),
        ("Remove-OutboundConnector", {"Identity": ORG.outbound_connector}),
        ("Remove-OrganizationRelationship", {"Identity": ORG.cloud_org_relationship}),
        ("Set-IntraOrganizationConnector", {"Identity": CLOUD_IOC, "Enabled": False}),
        ("Remove-TransportRule", {"Identity": "External Email Disclaimer"}),
        ("Set-OrganizationConfig", {"PublicFoldersEnabled": "Local"}),
        ("Remove-HybridApplication", {"AppId": ORG.hybrid_app_id}),
    ):
        e = refused(reader, cmdlet, **params)
        assert (e.status, e.code) == (403, "AccessDenied"), cmdlet
    assert len(reader.invoke_all("Get-InboundConnector")) == 1


# ------------------------------------------------------------------------------ Graph
def test_service_principal_reads(running):
    tok = token(running.endpoints)
    sp = exo_sp(running, tok)
    assert sp["displayName"] == "Office 365 Exchange Online"
    hybrid_key = base64.b64encode(bytes.fromhex(ORG.oauth_cert_thumbprint)).decode()
    keys = {k["keyId"]: k for k in sp["keyCredentials"]}
    assert len(keys) == 2
    mine = keys[ORG.oauth_key_id]
    assert mine["customKeyIdentifier"] == hybrid_key and mine["key"] is None
    assert (mine["type"], mine["usage"]) == ("AsymmetricX509Cert", "Verify")
    assert mine["displayName"] == "CN=Microsoft Exchange Server Auth Certificate"

    by_id = call("GET", graph(running, f"servicePrincipals/{sp['id']}"), token=tok)
    by_app = call(
        "GET", graph(running, f"servicePrincipals(appId='{EXCHANGE_ONLINE_APP_ID}')"), token=tok
    )
    assert by_id.status == by_app.status == 200
    assert by_id.body["keyCredentials"] == by_app.body["keyCredentials"] == sp["keyCredentials"]
    selected = call("GET", graph(running, f"servicePrincipals/{sp['id']}?$select=appId"), token=tok)
    assert {k for k in selected.body if not k.startswith("@")} == {"appId"}

    nope = call("GET", graph(running, "servicePrincipals/nope"), token=tok)
    graph_error(nope, 404, "Request_ResourceNotFound")
    bad = graph(running, "servicePrincipals?$filter=" + quote("servicePrincipalType eq 'x'"))
    graph_error(call("GET", bad, token=tok), 400, "Request_UnsupportedQuery")
    bad = graph(running, "servicePrincipals?$filter=" + quote("startswith(appId,'0')"))
    graph_error(call("GET", bad, token=tok), 400, "BadRequest")


def test_key_credentials_patch_removes_exactly_the_hybrid_key(running):
    tok = token(running.endpoints)
    sp = exo_sp(running, tok)
    hybrid_key = base64.b64encode(bytes.fromhex(ORG.oauth_cert_thumbprint)).decode()
    others = [k for k in sp["keyCredentials"] if k["customKeyIdentifier"] != hybrid_key]
    assert len(others) == 1
    url = graph(running, f"servicePrincipals/{sp['id']}")
    r = call("PATCH", url, token=tok, body={"keyCredentials": others})
    assert (r.status, r.body) == (204, None)
    assert exo_sp(running, tok)["keyCredentials"] == others

    # A new certificate (with its key material) can be added by the appId form of the path.
    der = base64.b64encode(b"DER").decode()
    new = {"type": "AsymmetricX509Cert", "usage": "Verify", "key": der, "displayName": "CN=New"}
    by_app = graph(running, f"servicePrincipals(appId='{EXCHANGE_ONLINE_APP_ID}')")
    r = call("PATCH", by_app, token=tok, body={"keyCredentials": [*others, new]})
    assert r.status == 204
    keys = exo_sp(running, tok)["keyCredentials"]
    assert keys[0] == others[0] and keys[1]["displayName"] == "CN=New" and keys[1]["key"] is None

    for body in (
        {"keyCredentials": "all"},
        {"keyCredentials": [{"keyId": "not-a-guid"}]},
        {"keyCredentials": [{"type": "AsymmetricX509Cert", "usage": "Verify"}]},  # no key
        {"keyCredentials": [others[0], others[0]]},
    ):
        graph_error(call("PATCH", url, token=tok, body=body), 400, "Request_BadRequest")
    graph_error(call("PATCH", url, token=tok, body={"bogus": 1}), 400, "Request_BadRequest")
    graph_error(call("PATCH", url, token=tok, body={"appId": "x"}), 400, "Request_BadRequest")
    graph_error(call("PATCH", url, token=tok, raw=b"{not json"), 400, "BadRequest")
    assert len(exo_sp(running, tok)["keyCredentials"]) == 2  # the refusals changed nothing


def test_read_only_and_sync_apps_are_refused(running):
    ep = running.endpoints
    ro = token(ep, readonly=True)
    sp = exo_sp(running, ro)  # the reader may read principals (Application.Read.All)
    url = graph(running, f"servicePrincipals/{sp['id']}")
    r = call("PATCH", url, token=ro, body={"keyCredentials": []})
    graph_error(r, 403, "Authorization_RequestDenied")
    group = ORG.groups_without_soa[0].id
    sync = graph(running, f"groups/{group}/onPremisesSyncBehavior")
    assert call("GET", sync, token=ro).status == 200
    r = call("PATCH", sync, token=ro, body={"isCloudManaged": True})
    graph_error(r, 403, "Authorization_RequestDenied")
    connect = token_request(ep, ep.connect_client_id, ep.connect_client_secret).body["access_token"]
    graph_error(call("GET", url, token=connect), 403, "Authorization_RequestDenied")
    assert len(exo_sp(running, ro)["keyCredentials"]) == 2
    assert call("GET", sync, token=ro).body["isCloudManaged"] is False
    graph_error(call("GET", url), 401, "InvalidAuthenticationToken")


@pytest.mark.parametrize(
    ("entity_set", "cmdlet", "synced"),
    [
        ("groups", "Get-DistributionGroup", ORG.groups_without_soa[0]),
        ("contacts", "Get-MailContact", ORG.contacts_without_soa[0]),
    ],
)
def test_soa_transfer_flips_is_dir_synced(running, exo, entity_set, cmdlet, synced):
    tok = token(running.endpoints)
    url = graph(running, f"{entity_set}/{synced.id}/onPremisesSyncBehavior")
    r = call("GET", url, token=tok)
    assert r.status == 200 and r.body["isCloudManaged"] is False and r.body["id"] == synced.id
    assert r.body["@odata.context"].endswith(
        f"{entity_set}('{synced.id}')/onPremisesSyncBehavior/$entity"
    )

    assert call("PATCH", url, token=tok, body={"isCloudManaged": True}).status == 204
    assert call("GET", url, token=tok).body["isCloudManaged"] is True
    (obj,) = exo.invoke_all(cmdlet, Identity=synced.id)
    assert obj["IsDirSynced"] is False
    others = [o for o in exo.invoke_all(cmdlet) if o["ExternalDirectoryObjectId"] != synced.id]
    assert all(o["IsDirSynced"] for o in others if o["Name"].startswith(("DL-Team", "Partner")))

    graph_error(call("PATCH", url, token=tok, body={"isCloudManaged": "yes"}), 400, "BadRequest")
    graph_error(call("PATCH", url, token=tok, body={"other": 1}), 400, "Request_BadRequest")
    missing = graph(
        running, f"{entity_set}/00000000-0000-0000-0000-000000000000/onPremisesSyncBehavior"
    )
    graph_error(call("GET", missing, token=tok), 404, "Request_ResourceNotFound")
    graph_error(call("DELETE", url, token=tok), 405, "Request_BadRequest")


def test_removing_the_hybrid_application_removes_its_principal(running, exo):
    tok = token(running.endpoints)
    url = graph(running, f"servicePrincipals(appId='{ORG.hybrid_app_id}')")
    assert call("GET", url, token=tok).status == 200
    exo.invoke("Remove-HybridApplication", AppId=ORG.hybrid_app_id)
    graph_error(call("GET", url, token=tok), 404, "Request_ResourceNotFound")
    assert exo_sp(running, tok)  # the Exchange Online principal stays


# ------------------------------------------------------------------------------ model
def test_clean_organisation_over_http():
    run = start_tenant(generate(CLEAN))
    try:
        ep = run.endpoints
        with ExoAdmin(ep.exo_url, ep.token_url, ep.client_id, ep.client_secret) as exo:
            org = ExchangeOrg(CLEAN)
            assert names(exo.invoke_all("Get-OutboundConnector")) == [org.outbound_connector]
            assert names(exo.invoke_all("Get-TransportRule")) == ["External Email Disclaimer"]
            assert all(not g["IsDirSynced"] for g in exo.invoke_all("Get-DistributionGroup"))
            assert exo.invoke_all("Get-MailContact") == []
            (config,) = exo.invoke_all("Get-OrganizationConfig")
            assert config["PublicFoldersEnabled"] == "Local"
            # The HCW's objects are still there for the workflow to remove.
            assert len(exo.invoke_all("Get-InboundConnector")) == 1
    finally:
        run.stop()


def test_a_thousand_groups_need_result_size_unlimited():
    run = start_tenant(generate(replace(MESSY, groups_without_soa=1000)))
    try:
        ep = run.endpoints
        with ExoAdmin(ep.exo_url, ep.token_url, ep.client_id, ep.client_secret) as exo:
            page = exo.invoke("Get-DistributionGroup")
            assert len(page["value"]) == 1000 and "@odata.nextLink" not in page
            assert page["@adminapi.warnings"][0].startswith("By default only the first 1000")
            everything = exo.invoke_all("Get-DistributionGroup", ResultSize="Unlimited")
            assert len(everything) == 1002  # followed a next link
            assert sum(g["IsDirSynced"] for g in everything) == 1000
            e = refused(exo, "Get-DistributionGroup", ResultSize=0)
            assert e.code == "ParameterBindingException"
    finally:
        run.stop()


def test_knobs_shape_the_model():
    assert (
        HybridCloud.from_spec(replace(CLEAN, public_folders="none")).public_folders_enabled
        == "None"
    )
    assert HybridCloud.from_spec(MESSY).public_folders_enabled == "Remote"
    many = HybridCloud.from_spec(replace(MESSY, stale_cloud_objects=7, groups_without_soa=30))
    assert len(many.outbound_connectors) == 1 + 4  # the HCW's and 4 legacy ones
    assert len(many.transport_rules) == 1 + 3
    routed = many.rules_routing_through(ExchangeOrg(MESSY).outbound_connector)
    redirects = [r for r in many.transport_rules if r.redirect_message_to]
    assert len(routed) == 2 and len(redirects) == 1
    assert redirects[0].redirect_message_to[0].endswith(f"@mail.{MESSY.domain}")
    assert len({c.name for c in many.outbound_connectors}) == 5  # names stay unique
    assert sum(g.is_dir_synced for g in many.distribution_groups) == 30
    assert HybridCloud.from_spec(MESSY).to_json() == HybridCloud.from_spec(MESSY).to_json()


def test_json_round_trip_after_changes(running, exo):
    tok = token(running.endpoints)
    exo.invoke("Remove-InboundConnector", Identity=ORG.inbound_connector)
    exo.invoke("Set-OrganizationConfig", PublicFoldersEnabled="Local")
    group = graph(running, f"groups/{ORG.groups_without_soa[1].id}/onPremisesSyncBehavior")
    call("PATCH", group, token=tok, body={"isCloudManaged": True})
    data = running.call(lambda: running.cloud.store.hybrid.to_json())
    text = json.dumps(data)
    again = HybridCloud.from_json(text)
    assert again.to_json() == data == HybridCloud.from_json(data).to_json()
    assert again.inbound_connectors == [] and again.public_folders_enabled == "Local"
    assert not again.recipient_by_id(
        "distribution_groups", ORG.groups_without_soa[1].id
    ).is_dir_synced
    assert data != HybridCloud.from_spec(MESSY).to_json()
    for broken in (
        {},
        {"version": 1, "transport_rules": [{"name": "x"}]},
        {"version": 1, "mail_contacts": 5},
        {"version": 1, "public_folders_enabled": "Sometimes"},
        "[1]",
    ):
        with pytest.raises(ValueError):
            HybridCloud.from_json(broken)


def test_on_change_is_called_after_every_change(running, exo):
    seen: list[dict] = []
    hybrid = running.cloud.store.hybrid
    running.call(setattr, hybrid, "on_change", lambda: seen.append(hybrid.to_json()))
    tok = token(running.endpoints)

    exo.invoke_all("Get-TransportRule")
    exo.invoke("Set-IntraOrganizationConnector", Identity=CLOUD_IOC, Enabled=True)  # no change
    refused(exo, "Remove-OutboundConnector", Identity=ORG.outbound_connector)
    assert seen == []

    exo.invoke("Set-IntraOrganizationConnector", Identity=CLOUD_IOC, Enabled=False)
    assert len(seen) == 1 and seen[0]["intra_organization_connectors"][0]["enabled"] is False
    exo.invoke("Remove-TransportRule", Identity="External Email Disclaimer")
    exo.invoke("Set-OrganizationConfig", PublicFoldersEnabled="None")
    sp = exo_sp(running, tok)
    url = graph(running, f"servicePrincipals/{sp['id']}")
    call("PATCH", url, token=tok, body={"keyCredentials": sp["keyCredentials"][1:]})
    sync = graph(running, f"contacts/{ORG.contacts_without_soa[0].id}/onPremisesSyncBehavior")
    call("PATCH", sync, token=tok, body={"isCloudManaged": True})
    assert len(seen) == 5
    assert seen[-1] == running.call(hybrid.to_json)
    assert seen[-1]["public_folders_enabled"] == "None"
