"""The Exchange organisation in the fake AD: what the spec's knobs put there, on both backends,
in `exwb serve`'s directory (messy defaults and the clean preset), and across a dump and reload.
"""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest
from ldap3 import BASE, LEVEL, NONE, SUBTREE, Connection, Server

from harness.core.dn import normalize_dn
from harness.tenant import TenantSpec, generate
from harness.tenant.exchange_org import (
    AUTODISCOVER_SCP_KEYWORD,
    FEDERATION_TRUST,
    ONPREM_IOC,
    ExchangeOrg,
)
from mockservers.directory.ldif_io import dump_ldif, load_ldif
from mockservers.directory.seed import ARBITRATION, DISCOVERY, PUBLIC_FOLDER, seed_directory
from tests.directory.ldap_clients import connect

RECEIVE = "CN=SMTP Receive Connectors,CN=SMTP,CN=Protocols,{server}"


def dns_of(conn: Connection) -> set[str]:
    return {normalize_dn(e.entry_dn) for e in conn.entries}


def org_objects(conn: Connection, base_dn: str, object_class: str, attrs=("cn",)) -> list:
    conn.search(
        f"CN=Configuration,{base_dn}", f"(objectClass={object_class})", SUBTREE, attributes=attrs
    )
    assert conn.result["result"] == 0, conn.result
    return list(conn.entries)


# ------------------------------------------------------------- both backends (the messy default)


def test_both_backends_hold_the_organisation(directory, tenant):
    """slapd loads the same organisation from the fake's seed (tests/support/backends.py)."""
    org = ExchangeOrg(tenant.spec)
    conn = connect(directory, "reader")
    base = tenant.spec.base_dn
    (trust,) = org_objects(conn, base, "msExchFedTrust", ["msExchFedOrgPrivCertificate"])
    assert trust.msExchFedOrgPrivCertificate.value == org.federation_cert_thumbprint
    (foi,) = org_objects(
        conn, base, "msExchFedOrgId", ["msExchFedIsEnabled", "msExchFedDelegationTrust"]
    )
    assert foi.msExchFedIsEnabled.value is True or foi.msExchFedIsEnabled.value == "TRUE"
    assert normalize_dn(foi.msExchFedDelegationTrust.value) == normalize_dn(trust.entry_dn)
    (rel,) = org_objects(conn, base, "msExchFedSharingRelationship", ["msExchFedTargetSharingEPR"])
    assert rel.msExchFedTargetSharingEPR.value == org.target_sharing_epr
    (send,) = org_objects(conn, base, "msExchRoutingSMTPConnector")
    assert send.cn.value == org.send_connector
    names = {e.cn.value for e in org_objects(conn, base, "msExchSmtpReceiveConnector")}
    assert names == {"Default Frontend EX01", "Client Frontend EX01", org.relay_connector}
    accepted = org_objects(conn, base, "msExchAcceptedDomain", ["msExchAcceptedDomainName"])
    assert {e.msExchAcceptedDomainName.value for e in accepted} == set(org.accepted_domains)
    (ioc,) = org_objects(conn, base, "msExchIntraOrganizationConnector")
    assert ioc.cn.value == ONPREM_IOC
    conn.search(
        f"CN=Users,{base}",
        "(&(objectClass=user)(homeMDB=*))",
        LEVEL,
        attributes=["cn", "msExchRecipientTypeDetails", "userAccountControl"],
    )
    kinds = {e.cn.value: int(e.msExchRecipientTypeDetails.value) for e in conn.entries}
    assert kinds == {
        **dict.fromkeys(org.arbitration_mailboxes, ARBITRATION),
        "PFMailbox1": PUBLIC_FOLDER,
    }
    assert {int(e.userAccountControl.value) & 2 for e in conn.entries} == {2}  # disabled
    conn.search(f"CN=Computers,{base}", "(objectClass=computer)", LEVEL, attributes=["cn"])
    assert {e.cn.value for e in conn.entries} == {"EX01", "SYNC01"}


# ------------------------------------------------------------------------------- the knobs


def _store(**knobs):
    spec = TenantSpec(mailboxes=20, seed=2, **knobs)
    return spec, seed_directory(generate(spec)).store


def test_every_server_has_its_own_objects():
    spec, store = _store(exchange_servers=3, arbitration_mailboxes=8, smtp_relay_clients=9)
    org = ExchangeOrg(spec)
    for server in org.servers:
        dn = org.server_dn(server)
        assert store.get(normalize_dn(dn)) is not None
        scp = store.get(normalize_dn(f"CN={server},CN=Autodiscover,CN=Protocols,{dn}"))
        assert AUTODISCOVER_SCP_KEYWORD.encode() in scp.attrs["keywords"]
        db = store.get(normalize_dn(org.database_dn(server)))
        assert normalize_dn(db.attrs["msExchOwningServer"][0].decode()) == normalize_dn(dn)
        frontend = store.get(
            normalize_dn(f"CN=Default Frontend {server},{RECEIVE}".format(server=dn))
        )
        tls = frontend.attrs.get("msExchSmtpReceiveTlsDomainCapabilities", ())
        assert bool(tls) == (server == org.last_server)  # the HCW set it on EX01 only
        assert store.get(normalize_dn(f"CN={server},CN=Computers,{spec.base_dn}")) is not None
    relay = store.get(
        normalize_dn(f"CN={org.relay_connector},{RECEIVE}".format(server=org.server_dn("EX01")))
    )
    ips = [v.decode() for v in relay.attrs["msExchSmtpReceiveRemoteIPRanges"]]
    assert ips == [c.ip for c in org.relay_clients] and len(ips) == 9
    discovery = store.get(
        normalize_dn(f"CN={org.arbitration_mailboxes[-1]},CN=Users,{spec.base_dn}")
    )
    assert int(discovery.attrs["msExchRecipientTypeDetails"][0]) == DISCOVERY


def test_knobs_at_zero_leave_their_objects_out():
    spec, store = _store(smtp_relay_clients=0, arbitration_mailboxes=0, public_folders="none")
    org = ExchangeOrg(spec)
    server = org.server_dn("EX01")
    assert (
        store.get(normalize_dn(f"CN={org.relay_connector},{RECEIVE}".format(server=server))) is None
    )
    users = [
        e for e in store.entries.values() if e.parent == normalize_dn(f"CN=Users,{spec.base_dn}")
    ]
    assert not [e for e in users if "homeMDB" in e.attrs]


def test_a_dump_keeps_its_own_organisation(tmp_path):
    """A snapshot (`exwb serve --state-dir`) reloads as it was: what was removed stays removed,
    nothing of another seed's organisation is added."""
    spec, store = _store()
    org = ExchangeOrg(spec)
    rel = normalize_dn(f"CN={org.onprem_org_relationship},CN=Federation,{org.org_dn}")
    store.delete(rel)
    dump_ldif(store, tmp_path / "d.ldif")
    again = load_ldif(tmp_path / "d.ldif").store  # load_ldif knows the domain, not the seed
    assert again.get(rel) is None
    assert set(again.entries) == set(store.entries)


# ------------------------------------------------------------------------ exwb serve


def _serve_org(tmp_path: Path, *knobs: str) -> dict:
    """What `exwb serve`'s directory holds of the organisation, read over LDAP as the admin."""
    from mockservers.runtime import spawn_serve

    path = tmp_path / "endpoints.json"
    args = ["--mailboxes", "40", "--seed", "6"]
    for k in knobs:
        args += ["--knob", k]
    proc = spawn_serve(path, *args, timeout=180)
    try:
        ep = json.loads(path.read_text())
        conn = Connection(
            Server(ep["ldap_url"], get_info=NONE), ep["admin_dn"], ep["admin_password"]
        )
        assert conn.bind()
        base = ep["base_dn"]
        seen: dict = {}
        conn.search(
            f"CN=Users,{base}",
            "(homeMDB=*)",
            LEVEL,
            attributes=["cn", "msExchRecipientTypeDetails"],
        )
        seen["system mailboxes"] = sorted(
            (int(e.msExchRecipientTypeDetails.value), e.cn.value) for e in conn.entries
        )
        seen["receive"] = sorted(
            e.cn.value for e in org_objects(conn, base, "msExchSmtpReceiveConnector")
        )
        seen["servers"] = sorted(
            e.cn.value for e in org_objects(conn, base, "msExchExchangeServer")
        )
        seen["trusts"] = [e.cn.value for e in org_objects(conn, base, "msExchFedTrust")]
        seen["hybrid"] = len(org_objects(conn, base, "msExchCoexistenceRelationship"))
        conn.search(f"CN=Computers,{base}", "(objectClass=computer)", LEVEL, attributes=["cn"])
        seen["computers"] = sorted(e.cn.value for e in conn.entries)
        frontend = f"CN=Default Frontend EX01,{RECEIVE}"
        conn.search(
            frontend.format(server=f"CN=EX01,CN=Servers,{_admin_group(base)}"),
            "(objectClass=*)",
            BASE,
            attributes=["msExchSmtpReceiveTlsDomainCapabilities"],
        )
        seen["tls"] = conn.entries[0].msExchSmtpReceiveTlsDomainCapabilities.values
        conn.unbind()
        return seen
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        assert "Traceback" not in err


def _admin_group(base: str) -> str:
    org = f"CN=Contoso,CN=Microsoft Exchange,CN=Services,CN=Configuration,{base}"
    return f"CN=Exchange Administrative Group (FYDIBOHF23SPDLT),CN=Administrative Groups,{org}"


def test_serve_messy_default(tmp_path):
    org = ExchangeOrg(TenantSpec(mailboxes=40, seed=6))
    seen = _serve_org(tmp_path)
    assert seen["system mailboxes"] == sorted(
        [(ARBITRATION, n) for n in org.arbitration_mailboxes] + [(PUBLIC_FOLDER, "PFMailbox1")]
    )
    assert len(seen["system mailboxes"]) == 4  # 3 arbitration mailboxes, 1 public folder one
    assert seen["receive"] == ["Client Frontend EX01", "Default Frontend EX01", "Relay EX01"]
    assert seen["servers"] == ["EX01"]
    assert seen["trusts"] == [FEDERATION_TRUST] and seen["hybrid"] == 1
    assert seen["computers"] == ["EX01", "SYNC01"]
    assert seen["tls"] == ["mail.protection.outlook.com:AcceptCloudServicesMail"]


def test_serve_clean_preset(tmp_path):
    seen = _serve_org(tmp_path, "org_preset=clean")
    assert seen["system mailboxes"] == []  # no arbitration mailboxes, public folders migrated
    assert seen["receive"] == ["Client Frontend EX01", "Default Frontend EX01"]  # no relay
    # The hybrid objects are still there: retiring the server removes them.
    assert seen["servers"] == ["EX01"]
    assert seen["trusts"] == [FEDERATION_TRUST] and seen["hybrid"] == 1
    assert seen["computers"] == ["EX01", "SYNC01"]


@pytest.mark.parametrize("knob", ["exchange_servers=2", "smtp_relay_clients=0"])
def test_serve_single_knobs(tmp_path, knob):
    seen = _serve_org(tmp_path, knob)
    if knob.startswith("exchange_servers"):
        assert seen["servers"] == ["EX01", "EX02"]
        assert seen["computers"] == ["EX01", "EX02", "SYNC01"]
        assert "Default Frontend EX02" in seen["receive"]
    else:
        assert "Relay EX01" not in seen["receive"]
        assert len(seen["system mailboxes"]) == 4  # other knobs keep their defaults
