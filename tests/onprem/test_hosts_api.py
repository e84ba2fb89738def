"""The on-premises hosts API over loopback with its client (harness/decommission/hosts.py)."""

from __future__ import annotations

import base64
import http.client
import json
from urllib.parse import urlsplit

import pytest
from ldap3 import BASE

from harness.decommission.hosts import HostsError, OnpremHosts
from mockservers.onprem.estate import (
    CONNECT_PRODUCT,
    EXCHANGE_PRODUCT,
    EXCHANGE_VERSION,
    HYBRID_AGENT,
)
from tests.onprem.conftest import admin_ldap, clear_mailboxes, exists, org_of


def _raw(url: str, method: str, path: str, auth: str | None, body: bytes | None = None):
    u = urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    headers = {"Authorization": auth} if auth else {}
    conn.request(method, path, body, headers)
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp, json.loads(data) if data else None


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


# ------------------------------------------------------------------------------ auth
def test_credentials_are_checked_and_only_the_admin_gets_in(run):
    ep = run.endpoints
    resp, body = _raw(ep.onprem_url, "GET", "/hosts", None)
    assert resp.status == 401
    assert resp.getheader("WWW-Authenticate", "").startswith("Basic realm=")
    assert body["error"]["code"] == "Unauthorized"
    resp, body = _raw(ep.onprem_url, "GET", "/hosts", _basic(ep.admin_dn, "wrong"))
    assert resp.status == 401
    assert "WWW-Authenticate" in resp.headers
    resp, _ = _raw(ep.onprem_url, "GET", "/hosts", "Basic !!!notbase64")
    assert resp.status == 401
    for dn, pw in ((ep.reader_dn, ep.reader_password), (ep.bind_dn, ep.bind_password)):
        resp, body = _raw(ep.onprem_url, "GET", "/hosts", _basic(dn, pw))
        assert resp.status == 403, dn
        assert body["error"]["code"] == "Forbidden"
    with pytest.raises(HostsError) as e:
        OnpremHosts(ep.onprem_url, ep.reader_dn, ep.reader_password).hosts()
    assert e.value.status == 403
    for user in (ep.admin_dn, "Administrator", f"{ep.netbios_domain}\\Administrator"):
        with OnpremHosts(ep.onprem_url, user, ep.admin_password) as c:
            assert {h["name"] for h in c.hosts()} == {"EX01", "SYNC01"}


def test_unknown_routes_and_methods_get_json_errors(run):
    ep = run.endpoints
    auth = _basic(ep.admin_dn, ep.admin_password)
    resp, body = _raw(ep.onprem_url, "GET", "/nothing/here", auth)
    assert resp.status == 404 and body["error"]["code"] == "NotFound"
    resp, body = _raw(ep.onprem_url, "DELETE", "/hosts/EX01", auth)
    assert resp.status == 405 and resp.getheader("Allow") == "GET"
    resp, body = _raw(ep.onprem_url, "POST", "/hosts/EX01/setup", auth, b"{not json")
    assert resp.status == 400 and body["error"]["code"] == "BadRequest"
    resp, body = _raw(ep.onprem_url, "GET", "/hosts/EX99", auth)
    assert resp.status == 404 and body["error"]["code"] == "HostNotFound"


# ------------------------------------------------------------------------------ hosts
def test_hosts_are_derived_from_the_spec(start):
    run = start(exchange_servers=2, connect_build="2.4.131.0")
    org = org_of(run)
    with OnpremHosts.from_endpoints(run.endpoints) as c:
        hosts = {h["name"]: h for h in c.hosts()}
        assert list(hosts) == ["EX01", "EX02", "SYNC01"]
        ex01, ex02, sync = hosts["EX01"], hosts["EX02"], hosts["SYNC01"]
        assert c.host("ex01") == ex01  # names are case-insensitive
    assert ex01["state"] == "Running" and ex01["role"] == "ExchangeServer"
    assert (ex01["product"], ex01["version"]) == (EXCHANGE_PRODUCT, EXCHANGE_VERSION)
    assert ex01["fqdn"] == org.server_fqdn("EX01")
    names = {s["name"] for s in ex01["services"]}
    assert {"MSExchangeTransport", "MSExchangeFrontEndTransport", "MSExchangeIS"} <= names
    assert {"MSExchangeADTopology", "MSExchangeServiceHost", "W3SVC", HYBRID_AGENT} <= names
    assert HYBRID_AGENT not in {s["name"] for s in ex02["services"]}
    certs = {c["thumbprint"]: c["subject"] for c in ex01["certificates"]}
    assert certs[org.federation_cert_thumbprint] == "CN=Federation"
    assert certs[org.oauth_cert_thumbprint] == "CN=Microsoft Exchange Server Auth Certificate"
    assert f"CN={org.mail_host}" in certs.values()
    assert sync["role"] == "EntraConnectSync"
    assert (sync["product"], sync["version"]) == (CONNECT_PRODUCT, "2.4.131.0")


def test_shutdown_and_start_are_idempotent(hosts):
    off = hosts.shutdown("EX01")
    assert off["state"] == "ShutDown" and not off["poweredOn"]
    assert all(s["status"] == "Stopped" for s in off["services"])
    assert hosts.shutdown("EX01") == off
    on = hosts.start("EX01")
    assert on["state"] == "Running"
    assert all(s["status"] == "Running" for s in on["services"])
    assert hosts.start("EX01") == on


def test_a_service_and_a_certificate_can_be_removed_once(run, hosts):
    org = org_of(run)
    hosts.delete_service("EX01", HYBRID_AGENT)  # a name with spaces, URL-encoded
    assert HYBRID_AGENT not in {s["name"] for s in hosts.services("EX01")}
    with pytest.raises(HostsError) as e:
        hosts.delete_service("EX01", HYBRID_AGENT)
    assert (e.value.status, e.value.code) == (404, "ServiceNotFound")
    hosts.delete_certificate("EX01", org.federation_cert_thumbprint.lower())
    left = {c["thumbprint"] for c in hosts.certificates("EX01")}
    assert org.federation_cert_thumbprint not in left
    assert org.oauth_cert_thumbprint in left
    with pytest.raises(HostsError) as e:
        hosts.delete_certificate("EX01", org.federation_cert_thumbprint)
    assert (e.value.status, e.value.code) == (404, "CertificateNotFound")


def test_the_smtp_receive_log_lists_recent_relay_clients(start):
    run = start(smtp_relay_clients=3)
    org = org_of(run)
    with OnpremHosts.from_endpoints(run.endpoints) as c:
        seen = c.smtp_receive_log("EX01")
        # The retired device seen two months ago is too old to count.
        assert sorted(r["clientIp"] for r in seen) == sorted(r.ip for r in org.relay_clients)
        first = next(r for r in seen if r["clientIp"] == org.relay_clients[0].ip)
        assert first["mailFrom"] == org.relay_clients[0].sender
        assert first["connector"] == org.relay_connector
        assert first["messages"] > 0 and first["clientHostname"] and first["lastSeen"]
        c.forget_relay_client("EX01", org.relay_clients[0].ip)
        assert org.relay_clients[0].ip not in {r["clientIp"] for r in c.smtp_receive_log("EX01")}
        with pytest.raises(HostsError) as e:
            c.forget_relay_client("EX01", org.relay_clients[0].ip)
        assert (e.value.status, e.value.code) == (404, "RelayClientNotFound")
        assert c.smtp_receive_log("SYNC01") == []
    quiet = start(smtp_relay_clients=0)
    with OnpremHosts.from_endpoints(quiet.endpoints) as c:
        assert c.smtp_receive_log("EX01") == []


# ------------------------------------------------------------------------------ Setup
def test_setup_refuses_while_mailboxes_remain_and_the_host_is_off(run, hosts):
    org = org_of(run)
    with pytest.raises(HostsError) as e:
        hosts.setup("EX01")
    assert (e.value.status, e.value.code) == (409, "SetupPrerequisiteCheckFailed")
    assert [d["code"] for d in e.value.details] == ["MailboxDatabaseNotEmpty"]
    assert "-Arbitration -DisableLastArbitrationMailboxAllowed" in e.value.message
    assert "Mailbox Database 01" in e.value.message
    hosts.shutdown("EX01")
    with pytest.raises(HostsError) as e:
        hosts.setup("EX01")
    assert [d["code"] for d in e.value.details] == ["HostNotRunning", "MailboxDatabaseNotEmpty"]
    assert exists(run.endpoints, org.server_dn("EX01"))  # nothing was removed
    assert hosts.host("EX01")["installed"]


@pytest.mark.parametrize("leftovers", [True, False])
def test_uninstall_removes_the_server_from_ad_and_the_host(start, leftovers):
    run = start(uninstall_leftovers=leftovers)
    ep, org = run.endpoints, org_of(run)
    server_dn, db_dn = org.server_dn("EX01"), org.database_dn("EX01")
    # Children under the server, whatever the seed holds: Setup removes the whole subtree.
    conn = admin_ldap(ep)
    protocols = f"CN=Test Protocols,{server_dn}"
    assert conn.add(protocols, ["top", "container"]), conn.result
    assert conn.add(f"CN=Test Leaf,{protocols}", ["top", "container"]), conn.result
    conn.unbind()
    cleared = clear_mailboxes(ep, db_dn)
    assert cleared  # the spec puts on-premises mailboxes on EX01's database
    with OnpremHosts.from_endpoints(ep) as c:
        done = c.setup("EX01")
        assert done["result"] == "Succeeded"
        removed = done["removedObjects"]
        assert removed.index(f"CN=Test Leaf,{protocols}") < removed.index(protocols)
        assert removed.index(protocols) < removed.index(server_dn)
        assert db_dn in removed
        host = c.host("EX01")
        assert host["state"] == "Uninstalled" and not host["installed"]
        assert host["product"] is None and host["certificates"] == []
        exchange = {s["name"]: s for s in host["services"] if s["product"] == "Exchange Server"}
        if leftovers:
            assert list(exchange) == ["MSExchangeTransport"]
            left = exchange["MSExchangeTransport"]
            assert (left["status"], left["startType"]) == ("Stopped", "Disabled")
        else:
            assert exchange == {}
        assert {"W3SVC", HYBRID_AGENT} <= {s["name"] for s in host["services"]}
        with pytest.raises(HostsError) as e:
            c.setup("EX01")  # a second run: nothing to uninstall
        assert (e.value.status, e.value.code) == (409, "ExchangeNotInstalled")
        with pytest.raises(HostsError) as e:
            c.setup("SYNC01")
        assert (e.value.status, e.value.code) == (409, "ExchangeNotInstalled")
    for dn in (server_dn, protocols, db_dn):
        assert not exists(ep, dn), dn
    conn = admin_ldap(ep)
    conn.search(f"CN=Servers,{org.admin_group_dn}", "(objectClass=*)", BASE)
    assert len(conn.entries) == 1  # the Servers container stays
    conn.unbind()


def test_setup_needs_a_known_mode(hosts):
    ep_error = None
    with pytest.raises(HostsError) as e:
        hosts.setup("EX01", mode="Install")
    ep_error = e.value
    assert (ep_error.status, ep_error.code) == (400, "BadRequest")
    assert "Uninstall" in ep_error.message
