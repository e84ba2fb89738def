"""The tenant's groups as AD tools read them (ldapdomaindump, msldap: users, groups and
memberships), over ldap3 on the fake, slapd and Samba unless marked.

The directory holds what the tenant holds: its groups by objectClass and objectCategory, each
with its members; memberOf made from member (not on slapd: it keeps no back links); the
in-chain rule through the AGDLP nesting (slapd: an unknown rule). The range retrieval of a
group past 1,500 members is in test_large_group.py, which has a tenant of its own.
"""

from __future__ import annotations

import pytest
from ldap3 import BASE, SUBTREE

from harness.core.dn import normalize_dn
from tests.directory.ldap_clients import connect, is_ad

IN_CHAIN = "1.2.840.113556.1.4.1941"


def found(conn, base: str, flt: str) -> set[str]:
    entries = conn.extend.standard.paged_search(
        base, flt, SUBTREE, attributes=["1.1"], paged_size=500, generator=False
    )
    assert conn.result["result"] == 0, conn.result
    return {normalize_dn(e["dn"]) for e in entries if e["type"] == "searchResEntry"}


def norm(dns) -> set[str]:
    return {normalize_dn(d) for d in dns}


def groups_ou(tenant) -> str:
    return f"OU=Groups,OU=Corp,{tenant.base_dn}"


def by_cn(tenant, cn: str):
    return next(g for g in tenant.groups if g.cn == cn)


def test_the_directory_holds_the_tenant_s_groups(directory, tenant):
    conn = connect(directory, "reader")
    base, want = groups_ou(tenant), norm(g.dn for g in tenant.groups)
    assert want and found(conn, base, "(objectClass=group)") == want
    category = f"CN=Group,CN=Schema,CN=Configuration,{tenant.base_dn}"
    assert found(conn, base, f"(objectCategory={category})") == want
    if is_ad(directory):  # slapd has no objectCategory shorthand
        assert found(conn, base, "(objectCategory=group)") == want
    # Groups are no users: the engine's (objectClass=user) searches do not see them.
    assert not found(conn, base, "(objectClass=user)")
    for kind in (-2147483646, -2147483644, -2147483640, 8):
        of_kind = norm(g.dn for g in tenant.groups if g.group_type == kind)
        assert of_kind and found(conn, base, f"(groupType={kind})") == of_kind


def test_each_group_reads_back_as_generated(directory, tenant):
    conn = connect(directory, "reader")
    wanted = ["cn", "sAMAccountName", "description", "groupType", "member", "mail", "objectGUID"]
    for g in (by_cn(tenant, "GG-Sales"), by_cn(tenant, "DLG-Intranet-Read"), tenant.groups[-1]):
        assert conn.search(g.dn, "(objectClass=*)", BASE, attributes=wanted), conn.result
        attrs = conn.response[0]["raw_attributes"]
        assert attrs["sAMAccountName"] == [g.sam_account_name.encode()]
        assert attrs["description"] == [g.description.encode()]
        assert attrs["groupType"] == [str(g.group_type).encode()]
        assert attrs["objectGUID"] == [g.object_guid]
        assert norm(v.decode() for v in attrs["member"]) == norm(g.members)
        assert attrs.get("mail", []) == ([g.mail.encode()] if g.mail else [])


def test_member_finds_a_user_s_groups(directory, tenant):
    conn = connect(directory, "reader")
    user = next(u for u in tenant.ad_users if sum(u.dn in g.members for g in tenant.groups) >= 2)
    want = norm(g.dn for g in tenant.groups if user.dn in g.members)
    assert found(conn, tenant.base_dn, f"(member={user.dn})") == want


@pytest.mark.ad_only("linked attributes")
def test_member_of_is_made_from_member(directory, tenant):
    conn = connect(directory, "reader")
    sales = by_cn(tenant, "GG-Sales")
    assert found(conn, tenant.base_dn, f"(memberOf={sales.dn})") == norm(sales.members)
    user = next(u for u in tenant.ad_users if u.dn in sales.members)
    assert conn.search(user.dn, "(objectClass=*)", BASE, attributes=["memberOf"]), conn.result
    got = {v.decode() for v in conn.response[0]["raw_attributes"].get("memberOf", ())}
    assert norm(got) == norm(g.dn for g in tenant.groups if user.dn in g.members)


@pytest.mark.ad_differs("in-chain matching rule")
def test_in_chain_follows_the_nesting(directory, tenant):
    conn = connect(directory, "reader")
    top = by_cn(tenant, "DLG-Intranet-Read")
    flt = f"(memberOf:{IN_CHAIN}:={top.dn})"
    if not is_ad(directory):  # slapd: an unknown rule, Undefined, so nothing matches
        assert found(conn, tenant.base_dn, flt) == set()
        return
    # Every object below it: the department groups' accounts and teams, those groups, and
    # USG-Departments; four levels down from a user.
    by_dn = {g.dn: g for g in tenant.groups}
    below: set[str] = set()
    frontier = list(top.members)
    while frontier:
        dn = frontier.pop()
        if dn not in below:
            below.add(dn)
            frontier += by_dn[dn].members if dn in by_dn else ()
    assert found(conn, tenant.base_dn, flt) == norm(below)
    team = by_cn(tenant, "GG-Sales-T01")
    user = team.members[0]
    chain = found(conn, tenant.base_dn, f"(member:{IN_CHAIN}:={user})")
    assert norm([team.dn, top.dn, by_cn(tenant, "USG-Departments").dn]) <= chain
    assert normalize_dn(by_cn(tenant, "GG-Sales").dn) in chain


def test_groups_get_the_sids_the_exports_show(tenant):
    # The store hands out RIDs in load order (users, then groups), as ldifde's export of the
    # same tenant numbers them.
    from harness.tenant.exports import ad_entries
    from mockservers.directory.seed import seed_directory

    store = seed_directory(tenant).store
    exported = {
        dn: dict(attrs)["objectSid"]
        for dn, attrs in ad_entries(tenant)
        if dn != tenant.base_dn and "objectSid" in dict(attrs)
    }
    for g in tenant.groups:
        assert store.entries[normalize_dn(g.dn)].attrs["objectSid"] == exported[g.dn]
