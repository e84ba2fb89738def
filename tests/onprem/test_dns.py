"""The estate's DNS server: real queries over UDP and TCP (our client and dig), zone edits."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess

import pytest

from harness.decommission.dns import DnsError, DnsTimeout, resolve
from harness.decommission.hosts import HostsError, OnpremHosts
from harness.tenant.exchange_org import ONPREM_PUBLIC_IP
from tests.onprem.conftest import org_of

DIG = shutil.which("dig")


def _q(run, name: str, rtype: str, tcp: bool = False) -> list[str]:
    return resolve(run.endpoints.ldap_host, run.endpoints.dns_port, name, rtype, tcp=tcp)


@pytest.mark.parametrize("tcp", [False, True], ids=["udp", "tcp"])
def test_onprem_records_answer_over_both_transports(run, tcp):
    assert _q(run, "contoso.com", "MX", tcp) == ["10 mail.contoso.com."]
    assert _q(run, "contoso.de", "MX", tcp) == ["10 mail.contoso.com."]
    assert _q(run, "autodiscover.contoso.com", "CNAME", tcp) == ["mail.contoso.com."]
    assert _q(run, "autodiscover.contoso.co.uk", "CNAME", tcp) == ["mail.contoso.com."]
    assert _q(run, "mail.contoso.com", "A", tcp) == [ONPREM_PUBLIC_IP]
    assert _q(run, "MAIL.Contoso.COM.", "A", tcp) == [ONPREM_PUBLIC_IP]
    spf = _q(run, "contoso.com", "TXT", tcp)
    assert len(spf) == 1 and spf[0].startswith("v=spf1 ip4:")
    assert _q(run, "nothere.contoso.com", "A", tcp) == []  # NXDOMAIN
    assert _q(run, "mail.contoso.com", "MX", tcp) == []  # the name exists, no MX


def test_cloud_records_point_at_exchange_online(start):
    run = start(dns_mx="cloud", dns_autodiscover="cloud")
    org = org_of(run)
    for zone in ("contoso.com", "contoso.co.uk", "contoso.de"):
        assert _q(run, zone, "MX") == [f"0 {org.exo_mx_for(zone)}."]
        assert _q(run, f"autodiscover.{zone}", "CNAME") == ["autodiscover.outlook.com."]
    assert _q(run, "contoso.com", "TXT") == ["v=spf1 include:spf.protection.outlook.com -all"]


def test_a_name_outside_our_zones_is_refused(run):
    with pytest.raises(DnsError) as e:
        _q(run, "example.org", "A")
    assert e.value.rcode == 5  # REFUSED: authoritative only, no recursion


def test_zone_edits_are_answered_at_once(run, hosts):
    org = org_of(run)
    before = hosts.zone("contoso.com")["serial"]
    target = f"0 {org.exo_mx_for('contoso.com')}."
    rec = hosts.put_record("contoso.com", "@", "MX", [target])
    assert rec == {
        "name": "@",
        "fqdn": "contoso.com.",
        "type": "MX",
        "ttl": 3600,
        "values": [target],
    }
    assert _q(run, "contoso.com", "MX") == [target]
    assert _q(run, "contoso.com", "MX", tcp=True) == [target]
    hosts.put_record(
        "contoso.com", "autodiscover.contoso.com.", "CNAME", ["autodiscover.outlook.com"]
    )
    assert _q(run, "autodiscover.contoso.com", "CNAME") == ["autodiscover.outlook.com."]
    hosts.put_record("contoso.com", "legacy", "A", ["198.51.100.7"], ttl=60)
    assert _q(run, "legacy.contoso.com", "A") == ["198.51.100.7"]
    hosts.delete_record("contoso.com", "legacy", "A")
    assert _q(run, "legacy.contoso.com", "A") == []
    after = hosts.zone("contoso.com")["serial"]
    assert after == before + 4
    soa = _q(run, "contoso.com", "SOA")
    assert soa[0].split()[2] == str(after)
    assert hosts.record("contoso.com", "@", "mx")["values"] == [target]


@pytest.mark.parametrize(
    ("name", "rtype", "body_values", "status", "code"),
    [
        ("@", "MX", ["mail.contoso.com."], 400, "BadRequest"),  # no preference
        ("mail", "A", ["300.1.1.1"], 400, "BadRequest"),
        ("x", "CNAME", ["a.example.", "b.example."], 400, "BadRequest"),
        ("x", "SOA", ["whatever"], 400, "BadRequest"),
        ("bad_name!", "A", ["10.0.0.1"], 400, "BadRequest"),
        ("mail", "CNAME", ["elsewhere.example."], 409, "CnameConflict"),
        ("autodiscover", "A", ["10.0.0.1"], 409, "CnameConflict"),
    ],
)
def test_bad_record_edits_are_refused_with_the_reason(
    hosts, name, rtype, body_values, status, code
):
    with pytest.raises(HostsError) as e:
        hosts.put_record("contoso.com", name, rtype, body_values)
    assert (e.value.status, e.value.code) == (status, code), e.value.message


def test_unknown_zones_and_records(hosts):
    with pytest.raises(HostsError) as e:
        hosts.zone("fabrikam.com")
    assert (e.value.status, e.value.code) == (404, "ZoneNotFound")
    with pytest.raises(HostsError) as e:
        hosts.delete_record("contoso.com", "nothing", "A")
    assert (e.value.status, e.value.code) == (404, "RecordNotFound")
    assert {z["name"] for z in hosts.zones()} == {"contoso.com", "contoso.co.uk", "contoso.de"}


def test_a_silent_server_is_a_timeout_and_a_closed_port_an_error():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        with pytest.raises(DnsTimeout):
            resolve("127.0.0.1", silent.getsockname()[1], "contoso.com", "MX", timeout=0.3)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        free = s.getsockname()[1]
    with pytest.raises(DnsError):
        resolve("127.0.0.1", free, "contoso.com", "MX", timeout=1.0, tcp=True)
    with pytest.raises(ValueError):
        resolve("127.0.0.1", free, "contoso.com", "NOPE")


# CI installs dig (.ci/run); elsewhere a machine without it skips, as with slapd.
@pytest.mark.skipif(DIG is None and not os.environ.get("CI"), reason="dig is not installed")
@pytest.mark.parametrize("tcp", [False, True], ids=["udp", "tcp"])
def test_dig_gets_authoritative_answers(run, tcp):
    ep = run.endpoints

    def dig(*q: str) -> str:
        args = [DIG, f"@{ep.ldap_host}", "-p", str(ep.dns_port), "+time=3", "+tries=1", *q]
        if tcp:
            args.append("+tcp")
        return subprocess.run(args, capture_output=True, text=True, timeout=30, check=True).stdout

    def short(*q: str) -> list[str]:
        return dig("+short", *q).split()

    assert short("contoso.com", "MX") == ["10", "mail.contoso.com."]
    assert short("autodiscover.contoso.com", "CNAME") == ["mail.contoso.com."]
    assert short("mail.contoso.com", "A") == [ONPREM_PUBLIC_IP]
    full = dig("contoso.com", "MX")
    assert "status: NOERROR" in full and " aa" in full.split("flags:")[1].split(";")[0]
    assert "status: NXDOMAIN" in dig("nothere.contoso.com", "A")
    with OnpremHosts.from_endpoints(ep) as c:
        c.put_record("contoso.com", "@", "MX", ["0 contoso-com.mail.protection.outlook.com."])
    assert short("contoso.com", "MX") == ["0", "contoso-com.mail.protection.outlook.com."]
