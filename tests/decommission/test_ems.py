"""The emulated Exchange Management Shell against a running directory, over LDAP.

Every test runs on the fake AD and on OpenLDAP slapd holding the same entries (tests/conftest.py):
the shell speaks plain LDAP, so a real directory server must serve it too. Each write test gets
a directory of its own; what a cmdlet wrote is checked through the shell's own Get-* cmdlets
and, where the attribute matters, with ldap3 (an independent client).
"""

from __future__ import annotations

import pytest
from ldap3 import BASE, NONE, Connection, Server

from harness.clients.exo import CmdletError
from harness.core.dn import normalize_dn
from harness.decommission.ems import ExchangeShell, cmdlets
from harness.tenant import TenantSpec, generate
from harness.tenant.exchange_org import (
    AUTODISCOVER_SCP_KEYWORD,
    BUILD_2019_CU14,
    CLOUD_IOC,
    EXCHANGE_ONLINE_APP_ID,
    FEDERATION_TRUST,
    ONPREM_IOC,
    ExchangeOrg,
)

SPEC = TenantSpec(mailboxes=50, seed=3, exchange_servers=2)
ORG = ExchangeOrg(SPEC)
DC = f"DC01.{SPEC.domain}"


@pytest.fixture(scope="module")
def tenant():
    return generate(SPEC)


@pytest.fixture
def fresh(fresh_directory):
    """A directory of the test's own, for tests that write (fake AD or slapd: tests/conftest.py)."""
    return fresh_directory


def shell(run, who: str = "admin") -> ExchangeShell:
    ep = run.endpoints
    return ExchangeShell(ep.ldap_url, *ep.account(who), SPEC)


def attribute(run, dn: str, name: str) -> list[str]:
    """`name`'s values on `dn`, read with ldap3 as the reader."""
    ep = run.endpoints
    conn = Connection(Server(ep.ldap_url, get_info=NONE), ep.reader_dn, ep.reader_password)
    assert conn.bind()
    assert conn.search(dn, "(objectClass=*)", BASE, attributes=[name])
    values = conn.response[0]["raw_attributes"].get(name, [])
    conn.unbind()
    return [v.decode() for v in values]


def refused(code: str, fn, *args, **kw) -> CmdletError:
    with pytest.raises(CmdletError) as err:
        fn(*args, **kw)
    assert err.value.code == code, err.value
    return err.value


def not_found_text(identity: str) -> str:
    return (
        f"The operation couldn't be performed because object '{identity}' couldn't be found "
        f"on '{DC}'."
    )


# ---------------------------------------------------------------------------- reads


def test_the_org_reads_as_exchange_shows_it(directory):
    with shell(directory) as sh:
        servers = sh.invoke("Get-ExchangeServer")
        assert [s["Name"] for s in servers] == ["EX01", "EX02"]
        assert {s["AdminDisplayVersion"] for s in servers} == {BUILD_2019_CU14}
        assert servers[0]["Fqdn"] == ORG.server_fqdn("EX01")
        # slapd spells attribute types in DNs its own way ("DN spelling in results").
        assert normalize_dn(servers[0]["DistinguishedName"]) == normalize_dn(ORG.server_dn("EX01"))

        cas = {c["Identity"]: c for c in sh.invoke("get-clientaccessservice")}
        uri = f"https://autodiscover.{SPEC.domain}/Autodiscover/Autodiscover.xml"
        assert cas["EX01"]["AutoDiscoverServiceInternalUri"] == uri

        (send,) = sh.invoke("Get-SendConnector")
        assert send["Identity"] == ORG.send_connector
        assert send["SmartHosts"] == [ORG.exo_mx]
        assert send["AddressSpaces"] == [f"SMTP:{SPEC.routing_domain};1"]

        receive = {r["Identity"]: r for r in sh.invoke("Get-ReceiveConnector")}
        frontend = receive[f"EX01\\{ORG.receive_connector}"]
        assert frontend["TlsDomainCapabilities"] == [
            "mail.protection.outlook.com:AcceptCloudServicesMail"
        ]
        assert receive["EX02\\Default Frontend EX02"]["TlsDomainCapabilities"] == []
        relay = receive[f"EX01\\{ORG.relay_connector}"]
        assert relay["RemoteIPRanges"] == [c.ip for c in ORG.relay_clients]
        ex02 = sh.invoke("Get-ReceiveConnector", Server="EX02")
        assert sorted(r["Identity"] for r in ex02) == [
            "EX02\\Client Frontend EX02",
            "EX02\\Default Frontend EX02",
        ]

        (rel,) = sh.invoke("Get-OrganizationRelationship")
        assert rel["Name"] == ORG.onprem_org_relationship and rel["Enabled"] is True
        assert rel["DomainNames"] == [SPEC.routing_domain]
        assert rel["TargetSharingEpr"] == ORG.target_sharing_epr

        (ioc,) = sh.invoke("Get-IntraOrganizationConnector")
        assert ioc["Identity"] == ONPREM_IOC and ioc["Enabled"] is True

        remote = {r["Name"]: r for r in sh.invoke("Get-RemoteDomain")}
        coexistence, tenant_domain = ORG.hybrid_remote_domains
        assert set(remote) == {"Default", coexistence, tenant_domain}
        assert remote[coexistence]["TargetDeliveryDomain"] is True
        assert remote[coexistence]["DomainName"] == SPEC.routing_domain
        assert remote[tenant_domain]["TargetDeliveryDomain"] is False
        assert remote["Default"]["DomainName"] == "*"

        accepted = {a["DomainName"]: a for a in sh.invoke("Get-AcceptedDomain")}
        assert set(accepted) == set(ORG.accepted_domains)
        assert accepted[SPEC.domain]["Default"] is True
        assert {a["DomainType"] for a in accepted.values()} == {"Authoritative"}

        (foi,) = sh.invoke("Get-FederatedOrganizationIdentifier")
        assert foi["Enabled"] is True and foi["DelegationTrustLink"] == FEDERATION_TRUST
        (trust,) = sh.invoke("Get-FederationTrust")
        assert trust["Name"] == FEDERATION_TRUST
        assert trust["OrgPrivCertificate"] == ORG.federation_cert_thumbprint

        (auth,) = sh.invoke("Get-AuthConfig")
        assert auth["CurrentCertificateThumbprint"] == ORG.oauth_cert_thumbprint
        servers = {s["Name"]: s for s in sh.invoke("Get-AuthServer")}
        assert {n.split(" - ")[0] for n in servers} == {"ACS", "EvoSts"}
        assert all(s["Enabled"] for s in servers.values())
        (app,) = sh.invoke("Get-PartnerApplication")
        assert app["Name"] == "Exchange Online" and app["Enabled"] is True
        assert app["ApplicationIdentifier"] == EXCHANGE_ONLINE_APP_ID

        (hybrid,) = sh.invoke("Get-HybridConfiguration")
        assert hybrid["OnPremisesSmartHost"] == ORG.mail_host
        assert hybrid["TransportServers"] == ["EX01"]


def test_mailboxes_by_kind(directory, tenant):
    with shell(directory) as sh:
        users = sh.invoke("Get-Mailbox")
        arbitration = sh.invoke("Get-Mailbox", Arbitration=True)
        public = sh.invoke("Get-Mailbox", PublicFolder=True)
    onprem = {u.dn for u in tenant.ad_users if u.home_mdb}
    assert {normalize_dn(m["DistinguishedName"]) for m in users} == {
        normalize_dn(d) for d in onprem
    }
    assert {m["RecipientTypeDetails"] for m in users} == {"UserMailbox"}
    assert [m["Name"] for m in arbitration] == sorted(ORG.arbitration_mailboxes, key=str.casefold)
    assert {m["RecipientTypeDetails"] for m in arbitration} == {"ArbitrationMailbox"}
    assert {m["Database"] for m in arbitration} == {"Mailbox Database 01"}
    assert {m["ServerName"] for m in arbitration} == {"ex01"}
    assert [m["Name"] for m in public] == ["PFMailbox1"]
    assert public[0]["RecipientTypeDetails"] == "PublicFolderMailbox"
    assert public[0]["Identity"] == f"{SPEC.domain}/Users/PFMailbox1"


def test_identities_and_errors(directory):
    with shell(directory) as sh:
        # Name, DN, e-mail address and canonical name all identify a recipient.
        name = ORG.arbitration_mailboxes[0]
        for identity in (
            name,
            f"CN={name},CN=Users,{SPEC.base_dn}",
            f"{name}@{SPEC.domain}".upper(),
            f"{SPEC.domain}/Users/{name}",
        ):
            got = sh.invoke("Get-Mailbox", Identity=identity, Arbitration=True)
            assert [m["Name"] for m in got] == [name]
        # An arbitration mailbox is not a user mailbox: without the switch it is not found.
        err = refused("ManagementObjectNotFoundException", sh.invoke, "Get-Mailbox", Identity=name)
        assert err.message == not_found_text(name)
        err = refused(
            "ManagementObjectNotFoundException", sh.invoke, "Get-SendConnector", Identity="Nope"
        )
        assert err.message == not_found_text("Nope")
        assert sh.invoke("get-exchangeserver", identity="ex02")[0]["Name"] == "EX02"
        err = refused("CommandNotFoundException", sh.invoke, "Get-Nothing")
        assert "'Get-Nothing' is not recognized" in err.message
        err = refused("ParameterBindingException", sh.invoke, "Get-Mailbox", Colour="red")
        assert "'Colour'" in err.message
        refused("ParameterBindingException", sh.invoke, "Remove-SendConnector")
        refused(
            "ParameterBindingException",
            sh.invoke,
            "Set-AuthServer",
            Identity="x",
            Enabled="maybe",
        )
    assert "Remove-FederationTrust" in cmdlets() and "Disable-Mailbox" in cmdlets()


# ---------------------------------------------------------------------------- writes


def test_remove_federation_trust_waits_for_what_uses_it(fresh):
    with shell(fresh) as sh:
        err = refused("InvalidOperationException", sh.invoke, "Remove-FederationTrust")
        assert err.message.startswith(
            f"Federation trust '{FEDERATION_TRUST}' can't be removed because it's in use by "
            "the following organization(s): "
        )
        assert ORG.onprem_org_relationship in err.message and ORG.name in err.message

        sh.invoke("Remove-OrganizationRelationship", Identity=ORG.onprem_org_relationship)
        assert sh.invoke("Get-OrganizationRelationship") == []
        err = refused(
            "InvalidOperationException",
            sh.invoke,
            "Remove-FederationTrust",
            Identity=FEDERATION_TRUST,
        )
        assert ORG.onprem_org_relationship not in err.message and ORG.name in err.message

        sh.invoke("Set-FederatedOrganizationIdentifier", Enabled=False)
        (foi,) = sh.invoke("Get-FederatedOrganizationIdentifier")
        assert foi["Enabled"] is False and foi["DelegationTrustLink"] is None
        assert attribute(fresh, foi["DistinguishedName"], "msExchFedDelegationTrust") == []

        sh.invoke("Remove-FederationTrust", Identity=FEDERATION_TRUST)
        assert sh.invoke("Get-FederationTrust") == []
        # Already gone: Exchange's not-found error, which a workflow reads as done.
        err = refused(
            "ManagementObjectNotFoundException",
            sh.invoke,
            "Remove-FederationTrust",
            Identity=FEDERATION_TRUST,
        )
        assert err.message == not_found_text(FEDERATION_TRUST)
        refused(
            "ManagementObjectNotFoundException",
            sh.invoke,
            "Remove-OrganizationRelationship",
            Identity=ORG.onprem_org_relationship,
        )


def test_enabling_the_identifier_needs_a_trust(fresh):
    with shell(fresh) as sh:
        sh.invoke("Set-FederatedOrganizationIdentifier", Enabled="$false")
        refused(
            "InvalidOperationException",
            sh.invoke,
            "Set-FederatedOrganizationIdentifier",
            Enabled=True,
        )
        sh.invoke(
            "Set-FederatedOrganizationIdentifier",
            Enabled=True,
            DelegationFederationTrust=FEDERATION_TRUST,
        )
        (foi,) = sh.invoke("Get-FederatedOrganizationIdentifier")
        assert foi["Enabled"] is True and foi["DelegationTrustLink"] == FEDERATION_TRUST


def test_disable_mailbox_keeps_the_last_arbitration_mailbox(fresh):
    with shell(fresh) as sh:
        names = [m["Name"] for m in sh.invoke("Get-Mailbox", Arbitration=True)]
        assert len(names) == 3
        refused(
            "ManagementObjectNotFoundException", sh.invoke, "Disable-Mailbox", Identity=names[0]
        )
        for name in names[:-1]:
            assert sh.invoke("Disable-Mailbox", Identity=name, Arbitration=True) == []
        err = refused(
            "RecipientTaskException",
            sh.invoke,
            "Disable-Mailbox",
            Identity=names[-1],
            Arbitration=True,
        )
        assert "last arbitration mailbox in the organization" in err.message
        assert "DisableLastArbitrationMailboxAllowed" in err.message
        sh.invoke(
            "Disable-Mailbox",
            Identity=names[-1],
            Arbitration=True,
            DisableLastArbitrationMailboxAllowed=True,
        )
        assert sh.invoke("Get-Mailbox", Arbitration=True) == []
        refused(
            "ManagementObjectNotFoundException",
            sh.invoke,
            "Disable-Mailbox",
            Identity=names[0],
            Arbitration=True,
        )
        sh.invoke("Disable-Mailbox", Identity="PFMailbox1", PublicFolder=True)
        assert sh.invoke("Get-Mailbox", PublicFolder=True) == []
    # The accounts stay; only their mailbox attributes are gone.
    dn = f"CN={names[0]},CN=Users,{SPEC.base_dn}"
    assert attribute(fresh, dn, "homeMDB") == []
    assert attribute(fresh, dn, "msExchRecipientTypeDetails") == []
    assert attribute(fresh, dn, "sAMAccountName") != []


def test_disable_a_user_mailbox(fresh):
    with shell(fresh) as sh:
        before = sh.invoke("Get-Mailbox")
        sh.invoke("Disable-Mailbox", Identity=before[0]["PrimarySmtpAddress"])
        after = sh.invoke("Get-Mailbox")
    assert [m["Name"] for m in after] == [m["Name"] for m in before[1:]]
    assert attribute(fresh, before[0]["DistinguishedName"], "proxyAddresses") == []


def test_transport_and_client_access_changes(fresh):
    with shell(fresh) as sh:
        sh.invoke("Set-ClientAccessService", Identity="EX01", AutoDiscoverServiceInternalUri=None)
        cas = {c["Identity"]: c for c in sh.invoke("Get-ClientAccessService")}
        assert cas["EX01"]["AutoDiscoverServiceInternalUri"] is None
        assert cas["EX02"]["AutoDiscoverServiceInternalUri"] is not None
        scp = f"CN=EX01,CN=Autodiscover,CN=Protocols,{ORG.server_dn('EX01')}"
        assert attribute(fresh, scp, "serviceBindingInformation") == []
        assert AUTODISCOVER_SCP_KEYWORD in attribute(fresh, scp, "keywords")

        identity = f"EX01\\{ORG.receive_connector}"
        sh.invoke("Set-ReceiveConnector", Identity=identity, TlsDomainCapabilities=None)
        (rc,) = sh.invoke("Get-ReceiveConnector", Identity=identity)
        assert rc["TlsDomainCapabilities"] == []
        sh.invoke("Set-ReceiveConnector", Identity=identity, TlsDomainCapabilities=None)  # again

        sh.invoke("Remove-SendConnector", Identity=ORG.send_connector)
        assert sh.invoke("Get-SendConnector") == []
        err = refused(
            "ManagementObjectNotFoundException",
            sh.invoke,
            "Remove-SendConnector",
            Identity=ORG.send_connector,
        )
        assert err.message == not_found_text(ORG.send_connector)


def test_remote_domains(fresh):
    coexistence, tenant_domain = ORG.hybrid_remote_domains
    with shell(fresh) as sh:
        sh.invoke("Remove-RemoteDomain", Identity=coexistence)
        refused(
            "ManagementObjectNotFoundException", sh.invoke, "Get-RemoteDomain", Identity=coexistence
        )
        (new,) = sh.invoke("New-RemoteDomain", Name=coexistence, DomainName=SPEC.routing_domain)
        assert new["TargetDeliveryDomain"] is False and new["AutoReplyEnabled"] is True
        refused(
            "DuplicateRemoteDomainException",
            sh.invoke,
            "New-RemoteDomain",
            Name="Another",
            DomainName=SPEC.routing_domain,
        )
        sh.invoke("Set-RemoteDomain", Identity=coexistence, TargetDeliveryDomain=True)
        (got,) = sh.invoke("Get-RemoteDomain", Identity=SPEC.routing_domain)
        assert got["TargetDeliveryDomain"] is True and got["Name"] == coexistence
        assert attribute(fresh, got["DistinguishedName"], "msExchRoutingAcceptMessageType") == [
            str(30 | 256)
        ]
        sh.invoke("Remove-RemoteDomain", Identity=tenant_domain)
        refused("InvalidOperationException", sh.invoke, "Remove-RemoteDomain", Identity="Default")
        assert {r["Name"] for r in sh.invoke("Get-RemoteDomain")} == {"Default", coexistence}


def test_oauth_and_hybrid_switches(fresh):
    with shell(fresh) as sh:
        sh.invoke("Set-IntraOrganizationConnector", Identity=ONPREM_IOC, Enabled=False)
        assert sh.invoke("Get-IntraOrganizationConnector")[0]["Enabled"] is False
        refused(
            "ManagementObjectNotFoundException",
            sh.invoke,
            "Set-IntraOrganizationConnector",
            Identity=CLOUD_IOC,  # that one lives in Exchange Online
            Enabled=False,
        )
        for server in sh.invoke("Get-AuthServer"):
            sh.invoke("Set-AuthServer", Identity=server["Identity"], Enabled=False)
        assert [s["Enabled"] for s in sh.invoke("Get-AuthServer")] == [False, False]
        sh.invoke("Set-PartnerApplication", Identity="Exchange Online", Enabled=False)
        (app,) = sh.invoke("Get-PartnerApplication", Identity=EXCHANGE_ONLINE_APP_ID)
        assert app["Enabled"] is False and app["UseAuthServer"] is True  # only bit 0 changed
        assert attribute(fresh, app["DistinguishedName"], "msExchAuthFlags") == ["2"]

        sh.invoke("Remove-HybridConfiguration")
        assert sh.invoke("Get-HybridConfiguration") == []
        err = refused("ManagementObjectNotFoundException", sh.invoke, "Remove-HybridConfiguration")
        assert err.message == not_found_text("Hybrid Configuration")
        # What the workflow must keep: accepted domains and the auth configuration.
        assert len(sh.invoke("Get-AcceptedDomain")) == len(ORG.accepted_domains)
        assert sh.invoke("Get-AuthConfig")[0]["CurrentCertificateThumbprint"]


# ---------------------------------------------------------------------------- access


@pytest.mark.parametrize("who", ["reader", "writeback"])
def test_other_accounts_read_but_cannot_write(fresh, who):
    with shell(fresh, who) as sh:
        assert sh.invoke("Get-SendConnector")[0]["Name"] == ORG.send_connector
        for cmdlet, params in (
            ("Remove-SendConnector", {"Identity": ORG.send_connector}),
            ("Set-IntraOrganizationConnector", {"Identity": ONPREM_IOC, "Enabled": False}),
            ("Disable-Mailbox", {"Identity": "PFMailbox1", "PublicFolder": True}),
            ("New-RemoteDomain", {"Name": "x", "DomainName": "x.example"}),
        ):
            err = refused("ADOperationException", sh.invoke, cmdlet, **params)
            assert err.message.startswith(f"Active Directory operation failed on {DC}.")
            assert "Insufficient access rights" in err.message
    with shell(fresh) as sh:  # nothing changed
        assert len(sh.invoke("Get-SendConnector")) == 1
        assert sh.invoke("Get-IntraOrganizationConnector")[0]["Enabled"] is True
        assert len(sh.invoke("Get-Mailbox", PublicFolder=True)) == 1


@pytest.mark.fake_only("quotes AD's own SecErr line, which slapd does not send")
def test_a_refusal_quotes_the_directory(directory):
    with shell(directory, "reader") as sh:
        err = refused(
            "ADOperationException", sh.invoke, "Remove-SendConnector", Identity=ORG.send_connector
        )
    assert err.message.endswith(
        "Active directory response: 00002098: SecErr: DSID-03150F93, problem 4003 "
        "(INSUFF_ACCESS_RIGHTS), data 0"
    )


def test_wrong_password_is_refused(directory):
    ep = directory.endpoints
    sh = ExchangeShell(ep.ldap_url, ep.admin_dn, "not-the-password", ep.base_dn)
    err = refused("ADInvalidCredentialsException", sh.open)
    assert ep.admin_dn in err.message
    with pytest.raises(RuntimeError):
        sh.invoke("Get-ExchangeServer")  # never opened
