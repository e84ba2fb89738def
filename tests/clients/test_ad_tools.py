"""AD-oriented tools as their users run them, against the fake and a Samba AD DC: ldapdomaindump
(its command line, NTLM bind, its JSON output) and msldap's MSLDAPClient (NTLM and simple bind
URLs). Each must see the domain the directory holds: the tenant's users, the well-known groups,
the domain controller's account, the domain's password policy and its two default GPOs.

What each tool reports is compared with what ldap3 reads from the same directory with the
tool's own filter, and with the tenant; on the fake also with its seed (domain.py). Counts come
from the directory, never from numbers written here, so more tenant objects change nothing.
slapd is no AD (no sAMAccountType, no NTLM): these run on the fake and Samba (ad_only).
"""

from __future__ import annotations

import asyncio
import datetime
import json
import subprocess
import sys
import urllib.parse
from pathlib import Path

import pytest
from ldap3 import BASE
from msldap.commons.factory import LDAPConnectionFactory

from harness.core.dn import normalize_dn
from harness.core.sid import SERVER_TRUST_ACCOUNT
from harness.tenant import TenantSpec, generate
from mockservers.directory.domain import (
    DEFAULT_DC_POLICY,
    DEFAULT_DOMAIN_POLICY,
    DOMAIN_POLICY,
)
from tests.directory.ldap_clients import connect, is_samba, paged_entries

TENANT = generate(TenantSpec(mailboxes=60, seed=23))
WELL_KNOWN_GROUPS = {
    "Domain Admins",
    "Domain Users",
    "Enterprise Admins",
    "Administrators",
    "Users",
}
# The policy attributes both tools report, and how ldap3's schema (which ldapdomaindump's
# JSON follows) renders each: an integer, or an interval in 100 ns units as a timedelta.
POLICY_INTEGERS = ("minPwdLength", "pwdHistoryLength", "lockoutThreshold", "pwdProperties")
POLICY_INTERVALS = ("maxPwdAge", "minPwdAge", "lockoutDuration")

pytestmark = pytest.mark.ad_only("security principal identity")


def sams(directory, flt: str) -> set[str]:
    """sAMAccountName of every object matching `flt`, as ldap3 reads them."""
    conn = connect(directory, "reader")
    found = paged_entries(conn, directory.endpoints.base_dn, flt, ["sAMAccountName"])
    return {e["raw_attributes"]["sAMAccountName"][0].decode() for e in found}


def domain_object(directory) -> dict[str, list[bytes]]:
    conn = connect(directory, "reader")
    base = directory.endpoints.base_dn
    names = [*POLICY_INTEGERS, *POLICY_INTERVALS, "ms-DS-MachineAccountQuota", "objectSid"]
    assert conn.search(base, "(objectClass=*)", BASE, attributes=names), conn.result
    return conn.response[0]["raw_attributes"]


def interval(raw: bytes) -> datetime.timedelta:
    """An AD interval (negative 100 ns units) as the positive timedelta ldap3 shows."""
    return datetime.timedelta(microseconds=-int(raw) // 10)


def dc_host(directory) -> str:
    conn = connect(directory, "reader")
    assert conn.search("", "(objectClass=*)", BASE, attributes=["dnsHostName"]), conn.result
    return conn.response[0]["raw_attributes"]["dnsHostName"][0].decode()


def test_the_fake_seeds_the_policy_it_serves(directory):
    if is_samba(directory):
        pytest.skip("the fake's seed only")
    held = domain_object(directory)
    for name in (*POLICY_INTEGERS, *POLICY_INTERVALS, "ms-DS-MachineAccountQuota"):
        assert held[name] == [DOMAIN_POLICY[name].encode()], name


# --- ldapdomaindump ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dump(directory, tmp_path_factory) -> dict[str, list[dict]]:
    """ldapdomaindump's command line with its default NTLM bind, as the admin; its JSON files by
    name (domain_users, domain_groups, ...)."""
    ep = directory.endpoints
    out = tmp_path_factory.mktemp("ldapdomaindump")
    user = f"{ep.netbios_domain}\\Administrator"
    cmd = [sys.executable, "-m", "ldapdomaindump", "-u", user, "-p", ep.admin_password]
    if is_samba(directory):  # its default NTLM bind goes through Sicily, which Samba lacks
        cmd.extend(("--authtype", "SIMPLE"))
    run = subprocess.run(
        [*cmd, "-o", str(out), ep.ldap_url], capture_output=True, text=True, timeout=300
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Domain dump finished" in run.stdout, run.stdout + run.stderr
    return {p.stem: json.loads(p.read_text()) for p in Path(out).glob("*.json")}


def dumped(dump: dict[str, list[dict]], name: str, attribute: str = "sAMAccountName") -> set[str]:
    return {e["attributes"][attribute][0] for e in dump[name] if attribute in e["attributes"]}


@pytest.mark.samba_differs("NTLM through Sicily", branches=True)
def test_ldapdomaindump_lists_the_users(dump, directory, tenant):
    users = dumped(dump, "domain_users")
    assert users == sams(directory, "(&(objectCategory=person)(objectClass=user))")
    assert {u.sam_account_name for u in tenant.ad_users} <= users
    assert {"Administrator", "krbtgt", "Guest"} <= users
    # Each user's primary group is resolved to its name through the groups it dumped.
    by_sam = {e["attributes"]["sAMAccountName"][0]: e for e in dump["domain_users"]}
    first = by_sam[tenant.ad_users[0].sam_account_name]["attributes"]
    assert first["primaryGroupID"] == [513]


@pytest.mark.samba_differs("NTLM through Sicily", branches=True)
def test_ldapdomaindump_lists_the_groups(dump, directory, tenant):
    groups = dumped(dump, "domain_groups")
    assert groups == sams(directory, "(objectClass=group)")
    assert groups >= WELL_KNOWN_GROUPS
    by_sam = {e["attributes"]["sAMAccountName"][0]: e["attributes"] for e in dump["domain_groups"]}
    sid = by_sam["Domain Admins"]["objectSid"][0]
    assert sid == f"{by_sam['Domain Users']['objectSid'][0].rsplit('-', 1)[0]}-512"
    assert by_sam["Users"]["objectSid"] == ["S-1-5-32-545"]
    members = {normalize_dn(m) for m in by_sam["Users"]["member"]}
    assert normalize_dn(f"CN=Domain Users,CN=Users,{tenant.spec.base_dn}") in members


@pytest.mark.samba_differs("NTLM through Sicily", branches=True)
def test_ldapdomaindump_lists_the_computers_with_the_dc(dump, directory):
    computers = dumped(dump, "domain_computers")
    assert computers == sams(directory, "(&(objectClass=computer)(objectClass=user))")
    host = dc_host(directory)
    dcs = [
        e["attributes"]
        for e in dump["domain_computers"]
        if e["attributes"].get("dNSHostName", [""])[0].casefold() == host.casefold()
    ]
    assert len(dcs) == 1, host
    assert dcs[0]["primaryGroupID"] == [516]
    assert dcs[0]["userAccountControl"][0] & SERVER_TRUST_ACCOUNT


@pytest.mark.samba_differs("NTLM through Sicily", branches=True)
def test_ldapdomaindump_reports_the_policy_and_no_trusts(dump, directory):
    (policy,) = dump["domain_policy"]
    held = domain_object(directory)
    for name in POLICY_INTEGERS:
        assert policy["attributes"][name] == [int(held[name][0])], name
    for name in POLICY_INTERVALS:
        assert policy["attributes"][name] == [str(interval(held[name][0]))], name
    assert dump["domain_trusts"] == []


# --- msldap --------------------------------------------------------------------------------------


def msldap_url(directory, bind: str) -> str:
    ep = directory.endpoints
    password = urllib.parse.quote(ep.admin_password, safe="")
    host = f"{ep.ldap_host}:{ep.ldap_port}"
    if bind == "ntlm":
        return f"ldap+ntlm-password://{ep.netbios_domain}\\Administrator:{password}@{host}"
    domain = ep.base_dn.replace("DC=", "").replace(",", ".")
    return f"ldap+simple-password://Administrator%40{domain}:{password}@{host}"


async def msldap_view(url: str) -> dict[str, object]:
    client = LDAPConnectionFactory.from_url(url).get_client()
    _, err = await client.connect()
    assert err is None, err
    try:
        info, err = await client.get_ad_info()
        assert err is None, err
        view: dict[str, object] = {"info": info}
        for key, listing in (
            ("users", client.get_all_users()),
            ("groups", client.get_all_groups()),
            ("machines", client.get_all_machines()),
            ("gpos", client.get_all_gpos()),
        ):
            found = []
            async for item, err in listing:
                assert err is None, err
                found.append(item)
            view[key] = found
        return view
    finally:
        await client.disconnect()


@pytest.mark.parametrize("bind", ["ntlm", "simple"])
def test_msldap_lists_the_domain(directory, tenant, bind):
    if bind == "ntlm" and is_samba(directory):
        # Samba seals NTLM sessions and cuts a large search entry (a group with its members,
        # 3,771 bytes) across SASL buffers (a buffer need not end with a message); msldap
        # (connection.py, __handle_incoming) decodes each buffer as whole LDAP messages and
        # fails. A client limitation: when msldap reassembles, this branch fails: remove it.
        with pytest.raises(AssertionError, match="not subscriptable"):
            asyncio.run(msldap_view(msldap_url(directory, bind)))
        return
    view = asyncio.run(msldap_view(msldap_url(directory, bind)))
    info = view["info"]
    held = domain_object(directory)
    assert info.minPwdLength == int(held["minPwdLength"][0])
    assert info.maxPwdAge == -interval(held["maxPwdAge"][0])
    assert info.lockoutThreshold == int(held["lockoutThreshold"][0])
    assert info.machineAccountQuota == int(held["ms-DS-MachineAccountQuota"][0])
    users = {u.sAMAccountName for u in view["users"]}
    assert users == sams(directory, "(sAMAccountType=805306368)")
    assert {u.sam_account_name for u in tenant.ad_users} <= users
    groups = {g.sAMAccountName for g in view["groups"]}
    assert groups == sams(directory, "(objectClass=group)")
    assert groups >= WELL_KNOWN_GROUPS
    machines = {m.sAMAccountName: m for m in view["machines"]}
    assert set(machines) == sams(directory, "(sAMAccountType=805306369)")
    host = dc_host(directory).casefold()
    dc = [m for m in machines.values() if (m.dNSHostName or "").casefold() == host]
    assert len(dc) == 1 and int(dc[0].userAccountControl) & SERVER_TRUST_ACCOUNT
    gpos = {g.cn.upper(): g.displayName for g in view["gpos"]}
    assert gpos[DEFAULT_DOMAIN_POLICY.upper()] == "Default Domain Policy"
    assert gpos[DEFAULT_DC_POLICY.upper()] == "Default Domain Controllers Policy"
