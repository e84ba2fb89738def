"""Searching the fake AD over TCP with ldap3, as line-of-business apps and the engine do."""

from __future__ import annotations

import base64

import pytest
from ldap3 import BASE, LEVEL, NONE, SUBTREE, Connection, Server
from ldap3.utils.conv import escape_bytes

from tests.directory.ldap_clients import connect, examined

PEOPLE = "(&(objectCategory=person)(objectClass=user))"


def test_root_dse_is_anonymous_and_describes_the_directory(directory):
    conn = Connection(Server(directory.endpoints.ldap_url, get_info=NONE))
    assert conn.bind()  # anonymous
    assert conn.search("", "(objectClass=*)", BASE, attributes=["*"])
    dse = {k: [v.decode() for v in vs] for k, vs in conn.response[0]["raw_attributes"].items()}
    base = directory.endpoints.base_dn
    assert dse["defaultNamingContext"] == [base]
    assert set(dse["namingContexts"]) == {
        base,
        f"CN=Configuration,{base}",
        f"CN=Schema,CN=Configuration,{base}",
    }
    assert dse["configurationNamingContext"] == [f"CN=Configuration,{base}"]
    assert dse["supportedControl"] == ["1.2.840.113556.1.4.319"]  # only what is implemented
    assert dse["supportedLDAPVersion"] == ["3"]
    assert int(dse["highestCommittedUSN"][0]) > 0
    assert dse["dnsHostName"][0].endswith(".contoso.com")
    assert dse["isSynchronized"] == ["TRUE"]


def test_anonymous_cannot_search_the_domain(directory):
    conn = Connection(Server(directory.endpoints.ldap_url, get_info=NONE))
    conn.bind()
    assert not conn.search(directory.endpoints.base_dn, "(objectClass=user)")
    assert conn.result["result"] == 1
    assert conn.result["message"].startswith("000004DC: LdapErr")
    assert "successful bind must be completed" in conn.result["message"]


def test_paged_search_returns_every_user(directory, tenant):
    conn = connect(directory, "reader")
    entries = list(
        conn.extend.standard.paged_search(
            directory.endpoints.base_dn,
            PEOPLE,
            attributes=["sAMAccountName", "mail"],
            paged_size=150,
            generator=True,
        )
    )
    sams = {e["raw_attributes"]["sAMAccountName"][0].decode() for e in entries}
    assert {u.sam_account_name for u in tenant.ad_users} <= sams
    assert len(entries) == len(tenant.ad_users) + 3  # the harness's three accounts


def test_page_size_is_capped_by_max_page_size(fresh_directory):
    fresh_directory.call(setattr, fresh_directory.service.limits, "max_page_size", 50)
    conn = connect(fresh_directory, "reader")
    conn.search(fresh_directory.endpoints.base_dn, PEOPLE, attributes=["cn"], paged_size=500)
    assert len(conn.entries) == 50
    cookie = conn.result["controls"]["1.2.840.113556.1.4.319"]["value"]["cookie"]
    assert cookie
    # Without the paged control AD returns MaxPageSize entries and sizeLimitExceeded.
    conn.search(fresh_directory.endpoints.base_dn, PEOPLE, attributes=["cn"])
    assert len(conn.entries) == 50
    assert conn.result["result"] == 4


def test_size_limit(directory):
    conn = connect(directory)
    conn.search(directory.endpoints.base_dn, PEOPLE, attributes=["cn"], size_limit=7)
    assert len(conn.entries) == 7 and conn.result["result"] == 4


def test_proxy_address_lookup_is_case_insensitive_and_indexed(directory, tenant):
    conn = connect(directory, "reader")
    user = tenant.ad_users[10]
    before = examined(directory)
    conn.search(
        directory.endpoints.base_dn,
        f"(proxyAddresses=smtp:{user.mail.upper()})",
        attributes=["distinguishedName"],
    )
    assert [e.entry_dn for e in conn.entries] == [user.dn]
    assert examined(directory) - before <= 2  # an index hit, not a scan of 400 users


def test_binary_anchor_lookup(directory, tenant):
    conn = connect(directory, "writeback")
    user = tenant.ad_users[20]
    flt = f"(mS-DS-ConsistencyGuid={escape_bytes(user.consistency_guid)})"
    conn.search(
        directory.endpoints.base_dn, flt, attributes=["objectGUID", "mS-DS-ConsistencyGuid"]
    )
    assert [e.entry_dn for e in conn.entries] == [user.dn]
    raw = conn.response[0]["raw_attributes"]["mS-DS-ConsistencyGuid"][0]
    assert base64.b64encode(raw).decode() == user.anchor
    conn.search(directory.endpoints.base_dn, f"(objectGUID={escape_bytes(user.object_guid)})")
    assert [e.entry_dn for e in conn.entries] == [user.dn]


def test_bitwise_filters_on_user_account_control(directory, tenant):
    conn = connect(directory, "reader")
    base = directory.endpoints.base_dn
    disabled = {u.dn for u in tenant.ad_users if u.user_account_control & 2}
    list_ = conn.extend.standard.paged_search(
        base,
        "(&(objectCategory=person)(userAccountControl:1.2.840.113556.1.4.803:=2))",
        attributes=["cn"],
        paged_size=500,
        generator=False,
    )
    assert {e["dn"] for e in list_} == disabled
    conn.search(
        base,
        "(userAccountControl:1.2.840.113556.1.4.804:=65536)",
        attributes=["cn"],
        paged_size=500,
    )
    assert {e.entry_dn for e in conn.entries} >= {
        u.dn for u in tenant.ad_users if u.user_account_control & 0x10000
    }


def test_in_chain_rule_is_refused_clearly(directory):
    conn = connect(directory, "reader")
    conn.search(
        directory.endpoints.base_dn, "(memberOf:1.2.840.113556.1.4.1941:=CN=x,DC=contoso,DC=com)"
    )
    assert conn.result["result"] == 53


def test_usn_range_is_answered_from_the_index(directory, tenant):
    conn = connect(directory, "reader")
    top = max(u.usn_changed for u in tenant.ad_users)
    before = examined(directory)
    conn.search(directory.endpoints.base_dn, f"(uSNChanged>={top - 4})", attributes=["uSNChanged"])
    assert len(conn.entries) == 5
    assert examined(directory) - before <= 10
    assert all(int(e.uSNChanged.value) >= top - 4 for e in conn.entries)


def test_scopes_and_partitions(directory, tenant):
    conn = connect(directory, "reader")
    base = directory.endpoints.base_dn
    user = tenant.ad_users[0]
    conn.search(user.dn, "(objectClass=*)", BASE, attributes=["cn"])
    assert [e.entry_dn for e in conn.entries] == [user.dn]
    ou = user.dn.split(",", 1)[1]
    conn.search(ou, "(objectClass=user)", LEVEL, attributes=["cn"], paged_size=1000)
    assert user.dn in {e.entry_dn for e in conn.entries}
    # The configuration partition is not part of a domain subtree search, as in AD.
    conn.search(base, "(objectClass=msExchExchangeServer)", SUBTREE)
    assert conn.entries == []
    conn.search(
        f"CN=Configuration,{base}",
        "(objectClass=msExchExchangeServer)",
        SUBTREE,
        attributes=["serialNumber"],
    )
    assert [e.entry_dn.split(",")[0] for e in conn.entries] == ["CN=EX01"]


def test_attribute_selection(directory, tenant):
    conn = connect(directory, "reader")
    user = tenant.ad_users[1]
    conn.search(user.dn, "(objectClass=*)", BASE, attributes=["1.1"])
    assert conn.response[0]["raw_attributes"] == {}
    conn.search(user.dn, "(objectClass=*)", BASE, attributes=["MAIL", "proxyaddresses"])
    got = conn.response[0]["raw_attributes"]
    assert set(got) == {"mail", "proxyAddresses"}  # canonical names, whatever case was asked
    conn.search(user.dn, "(objectClass=*)", BASE, attributes=["*"])
    got = conn.response[0]["raw_attributes"]
    assert got["distinguishedName"] == [user.dn.encode()]
    assert "createTimeStamp" not in got
    conn.search(user.dn, "(objectClass=*)", BASE, attributes=["+"])
    assert "createTimeStamp" in conn.response[0]["raw_attributes"]
    conn.search(user.dn, "(objectClass=*)", BASE, attributes=["mail"], types_only=True)
    assert conn.response[0]["raw_attributes"]["mail"] in ([], None)  # the type, no values


def test_special_and_non_ascii_dns_round_trip(directory, tenant):
    conn = connect(directory, "reader")
    odd = [u for u in tenant.ad_users if "\\" in u.dn or not u.dn.isascii()][:20]
    assert odd
    for user in odd:
        assert conn.search(user.dn, "(objectClass=*)", BASE, attributes=["cn", "displayName"])
        assert conn.entries[0].entry_dn == user.dn
        assert conn.entries[0].cn.value == user.cn


def test_missing_base_gives_matched_dn(directory):
    conn = connect(directory, "reader")
    base = directory.endpoints.base_dn
    conn.search(f"CN=Nobody,OU=Corp,{base}", "(objectClass=*)", BASE)
    assert conn.result["result"] == 32
    assert conn.result["dn"] == f"OU=Corp,{base}"
    assert conn.result["message"].startswith("0000208D: NameErr")


def test_who_am_i_and_bind_forms(directory):
    ep = directory.endpoints
    server = Server(ep.ldap_url, get_info=NONE)
    for name in (ep.bind_dn, ep.bind_upn, f"{ep.netbios_domain}\\provAgentgMSA$"):
        conn = Connection(server, name, ep.bind_password)
        assert conn.bind(), (name, conn.result)
        assert conn.extend.standard.who_am_i() == "u:CONTOSO\\provAgentgMSA$"


@pytest.mark.parametrize("who", ["admin", "nobody"])
def test_bad_credentials_look_the_same(directory, who):
    ep = directory.endpoints
    name = ep.admin_dn if who == "admin" else f"CN=Nobody,CN=Users,{ep.base_dn}"
    conn = Connection(Server(ep.ldap_url, get_info=NONE), name, "wrong-password")
    assert not conn.bind()
    assert conn.result["result"] == 49
    assert conn.result["message"] == (
        "80090308: LdapErr: DSID-0C090569, comment: AcceptSecurityContext error, data 52e, v4563"
    )
