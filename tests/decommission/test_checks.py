"""Each blocker, from survey data: it fires on exactly its own condition and names a remedy.

The end-to-end tests (test_workflow.py) reach the same blockers through tenant knobs and the
wire; these pin the rules themselves, including the edges (a Connect build equal to 2.5.190.0,
an MX on a host that merely contains "outlook").
"""

from __future__ import annotations

import base64

import pytest

from harness.decommission.checks import CHECKS, blockers
from harness.decommission.estate import Survey
from harness.decommission.steps import _oauth_keys, stale_cloud_objects


def clean() -> Survey:
    return Survey(
        servers=[{"Name": "EX01"}],
        last_server="EX01",
        host={"name": "EX01", "state": "Running", "fqdn": "ex01.contoso.com", "ip": "203.0.113.10"},
        sync_host={"name": "SYNC01", "role": "EntraConnectSync", "version": "2.5.190.0"},
        org_config={"PublicFoldersEnabled": "Local"},
        accepted_domains=["contoso.com", "contoso.mail.onmicrosoft.com"],
        dns={
            "contoso.com": {
                "MX": ["0 contoso-com.mail.protection.outlook.com."],
                "autodiscover": ["autodiscover.outlook.com."],
            }
        },
        job={"status": {"code": "Active", "lastExecution": {"state": "Succeeded"}}},
    )


CASES = {
    "NotTheLastServer": lambda s: s.servers.append({"Name": "EX02"}),
    "ServerNotRunning": lambda s: s.host.update(state="ShutDown"),
    "OnPremMailboxes": lambda s: s.mailboxes.append({"Name": "Ann"}),
    "ArbitrationMailboxes": lambda s: s.arbitration.append({"Name": "SystemMailbox{x}"}),
    "PublicFoldersNotMigrated": lambda s: s.org_config.update(PublicFoldersEnabled="Remote"),
    "MxNotExchangeOnline": lambda s: s.dns["contoso.com"].update(MX=["10 mail.contoso.com."]),
    "AutodiscoverNotExchangeOnline": lambda s: s.dns["contoso.com"].update(
        autodiscover=["mail.contoso.com."]
    ),
    "SmtpRelayInUse": lambda s: s.relay.append({"clientIp": "10.0.20.10"}),
    "MailboxesNotCloudManaged": lambda s: s.not_cloud_managed.append({"Name": "Bob"}),
    "GroupsOrContactsWithoutSoa": lambda s: s.contacts.append({"Name": "Partner"}),
    "ConnectBuildTooOld": lambda s: s.sync_host.update(version="2.4.131.0"),
    "WritebackJobUnhealthy": lambda s: s.job["status"].update(code="Quarantine"),
}


def test_a_clean_survey_has_no_blocker() -> None:
    assert blockers(clean(), "soa-uninstall") == []
    assert blockers(clean(), "management-tools") == []


def test_every_check_has_a_case() -> None:
    assert len(CASES) == len(CHECKS)


@pytest.mark.parametrize("code", sorted(CASES))
def test_each_blocker_fires_alone_with_a_remedy(code: str) -> None:
    s = clean()
    CASES[code](s)
    found = blockers(s, "soa-uninstall")
    assert [b.code for b in found] == [code]
    assert found[0].remedy and found[0].count >= 1 and found[0].examples


def test_edges() -> None:
    s = clean()
    s.sync_host["version"] = "2.5.190"  # missing trailing part: equal, not older
    s.dns["contoso.com"]["MX"] = ["0 contoso-com.mail.protection.outlook.com.evil.example."]
    assert [b.code for b in blockers(s, "soa-uninstall")] == ["MxNotExchangeOnline"]
    s = clean()
    s.job = None  # the engine never ran
    assert [b.code for b in blockers(s, "soa-uninstall")] == ["WritebackJobUnhealthy"]
    s = clean()
    s.sync_host = None
    assert [b.code for b in blockers(s, "soa-uninstall")] == ["ConnectBuildTooOld"]


def test_the_oauth_key_is_matched_by_its_thumbprint() -> None:
    s = clean()
    thumb = "AB" * 20
    s.auth_config = {"CurrentCertificateThumbprint": thumb}
    mine = {"keyId": "k1", "customKeyIdentifier": base64.b64encode(bytes.fromhex(thumb)).decode()}
    other = {"keyId": "k2", "customKeyIdentifier": base64.b64encode(b"\x01" * 20).decode()}
    s.exo_principal = {"id": "sp", "keyCredentials": [other, mine]}
    assert _oauth_keys(s) == [mine]
    s.auth_config = None
    assert _oauth_keys(s) == []


def test_stale_cloud_objects_are_those_naming_on_premises() -> None:
    s = clean()
    s.outbound = [
        {"Name": "Outbound to legacy relay", "SmartHosts": ["mail.contoso.com"]},
        {"Name": "Partner TLS", "SmartHosts": ["mx.fabrikam.example"]},
    ]
    s.inbound = [{"Name": "From scanner", "SenderIPAddresses": ["203.0.113.10"]}]
    s.rules = [
        {"Name": "Journal to on-prem", "RouteMessageOutboundConnector": "Outbound to legacy relay"},
        {"Name": "Disclaimer", "ApplyHtmlDisclaimerText": "Confidential"},
        {"Name": "Redirect", "RedirectMessageTo": ["archive@ex01.contoso.com"]},
    ]
    rules, inbound, outbound = stale_cloud_objects(s)
    assert outbound == ["Outbound to legacy relay"]
    assert inbound == ["From scanner"]
    assert sorted(rules) == ["Journal to on-prem", "Redirect"]
