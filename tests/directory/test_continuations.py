"""Continuation references (RFC 4511 4.5.3, [MS-ADTS] 3.1.1.4.7): a one-level or subtree search
that reaches a naming context it does not enter ends with a SearchResultReference to it.

From the domain root that is the configuration partition, from the configuration the schema;
a one-level reference names scope base. The domain-scope control and the search options'
domain-scope flag ask for none; the phantom-root flag searches those naming contexts instead.
With ldap3 (references in `response`), python-ldap (`(None, [url])` items) and ldapsearch. On the
fake and Samba; slapd keeps the partitions as separate databases and refers to none
(ad_differs).
"""

from __future__ import annotations

import subprocess

import ldap
import pytest
from ldap.controls import LDAPControl
from ldap3 import BASE, LEVEL, SUBTREE

from harness.core import ber
from harness.core.dn import normalize_dn
from tests.directory.ldap_clients import connect, found, is_ad, paged_entries

BASE_DN = "DC=contoso,DC=com"
CONFIG = f"CN=Configuration,{BASE_DN}"
SCHEMA = f"CN=Schema,{CONFIG}"
TO_CONFIG = f"ldap://contoso.com/{CONFIG}"
TO_SCHEMA = f"ldap://contoso.com/{SCHEMA}"
DOMAIN_SCOPE = "1.2.840.113556.1.4.1339"
SEARCH_OPTIONS = "1.2.840.113556.1.4.1340"


def references(conn) -> list[list[str]]:
    """The URLs of each continuation reference the last ldap3 search returned."""
    return [e["uri"] for e in conn.response or [] if e["type"] == "searchResRef"]


def search_options(flags: int) -> tuple[str, bool, bytes]:
    return SEARCH_OPTIONS, False, ber.sequence(ber.integer(flags))


@pytest.mark.ad_differs("continuation references")
def test_a_subtree_search_of_the_domain_refers_to_the_configuration(directory):
    conn = connect(directory, "reader")
    assert conn.search(BASE_DN, "(objectClass=domain)", SUBTREE, attributes=["1.1"])
    assert found(conn) == {normalize_dn(BASE_DN)}
    assert references(conn) == ([[TO_CONFIG]] if is_ad(directory) else [])
    # From the configuration: the schema. Below the domain root, nothing is referred to.
    conn.search(CONFIG, "(objectClass=dMD)", SUBTREE, attributes=["1.1"])
    assert conn.result["result"] == 0
    assert found(conn) == set()  # the schema container is a partition of its own
    assert references(conn) == ([[TO_SCHEMA]] if is_ad(directory) else [])
    assert conn.search(f"OU=Corp,{BASE_DN}", "(objectClass=*)", SUBTREE, attributes=["1.1"])
    assert references(conn) == []
    assert conn.search(BASE_DN, "(objectClass=*)", BASE, attributes=["1.1"])
    assert references(conn) == []


@pytest.mark.ad_differs("continuation references")
def test_a_one_level_search_refers_to_the_child_partition_with_scope_base(directory):
    conn = connect(directory, "reader")
    assert conn.search(BASE_DN, "(objectClass=*)", LEVEL, attributes=["1.1"])
    assert normalize_dn(CONFIG) not in found(conn)  # not an entry of the domain's
    assert references(conn) == ([[f"{TO_CONFIG}??base"]] if is_ad(directory) else [])
    # Even when no entry matches, the reference says where else to look.
    conn.search(BASE_DN, "(cn=Configuration)", LEVEL, attributes=["1.1"])
    assert conn.result["result"] == 0
    assert found(conn) == set()
    assert references(conn) == ([[f"{TO_CONFIG}??base"]] if is_ad(directory) else [])


@pytest.mark.ad_differs("continuation references")
def test_a_paged_search_refers_once(directory):
    conn = connect(directory, "reader")
    items = conn.extend.standard.paged_search(
        BASE_DN, "(objectClass=organizationalUnit)", SUBTREE, attributes=["1.1"],
        paged_size=3, generator=False,
    )  # fmt: skip
    kinds = [e["type"] for e in items]
    assert kinds.count("searchResEntry") == len(
        paged_entries(conn, BASE_DN, "(objectClass=organizationalUnit)", ["1.1"], page=3)
    )
    if is_ad(directory):  # with the first page (where AD sends it is not documented)
        assert [e["uri"] for e in items if e["type"] == "searchResRef"] == [[TO_CONFIG]]
    else:
        assert "searchResRef" not in kinds


def test_the_domain_scope_control_and_flag_ask_for_no_references(directory):
    conn = connect(directory, "reader")
    for control in ((DOMAIN_SCOPE, False, None), search_options(1)):
        assert conn.search(
            BASE_DN, "(objectClass=domain)", SUBTREE, attributes=["1.1"], controls=[control]
        )
        assert found(conn) == {normalize_dn(BASE_DN)}
        assert references(conn) == []


@pytest.mark.ad_differs("continuation references")
def test_a_phantom_root_search_enters_the_partitions_below(directory):
    conn = connect(directory, "reader")
    conn.search(
        BASE_DN, "(objectClass=dMD)", SUBTREE, attributes=["1.1"], controls=[search_options(2)]
    )
    assert conn.result["result"] == 0
    assert references(conn) == []
    assert found(conn) == ({normalize_dn(SCHEMA)} if is_ad(directory) else set())


@pytest.mark.ad_differs("continuation references")
def test_python_ldap_returns_references_as_items_and_chases_none(directory):
    ep = directory.endpoints
    for referrals in (0, None):  # as AD clients set it, and libldap's default
        conn = ldap.initialize(ep.ldap_url)
        if referrals is not None:
            conn.set_option(ldap.OPT_REFERRALS, referrals)
        conn.set_option(ldap.OPT_NETWORK_TIMEOUT, 5)  # a chase to contoso.com must not hang
        conn.simple_bind_s(ep.reader_dn, ep.reader_password)
        got = conn.search_ext_s(BASE_DN, ldap.SCOPE_SUBTREE, "(objectClass=domain)", ["1.1"])
        assert [normalize_dn(dn) for dn, _ in got if dn] == [normalize_dn(BASE_DN)]
        refs = [urls for dn, urls in got if dn is None]
        assert refs == ([[TO_CONFIG]] if is_ad(directory) else [])
        # Asking for no references, with the raw control.
        got = conn.search_ext_s(
            BASE_DN, ldap.SCOPE_SUBTREE, "(objectClass=domain)", ["1.1"],
            serverctrls=[LDAPControl(DOMAIN_SCOPE, False)],
        )  # fmt: skip
        assert [normalize_dn(dn) for dn, _ in got] == [normalize_dn(BASE_DN)]


@pytest.mark.ad_differs("continuation references")
def test_ldapsearch_counts_the_reference(directory):
    ep = directory.endpoints
    out = subprocess.run(
        ["ldapsearch", "-x", "-H", ep.ldap_url, "-D", ep.reader_dn, "-w", ep.reader_password,
         "-b", BASE_DN, "-s", "sub", "-o", "nettimeout=5", "(objectClass=domain)", "1.1"],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout  # fmt: skip
    assert "# numEntries: 1" in out
    if is_ad(directory):
        assert f"ref: {TO_CONFIG}" in out and "# numReferences: 1" in out
    else:
        assert "ref:" not in out


@pytest.mark.fake_only("the fake's continuation_references setting")
def test_the_references_can_be_turned_off(fresh_directory):
    run = fresh_directory
    run.call(setattr, run.service.limits, "continuation_references", False)
    conn = connect(run, "reader")
    assert conn.search(BASE_DN, "(objectClass=domain)", SUBTREE, attributes=["1.1"])
    assert found(conn) == {normalize_dn(BASE_DN)}
    assert references(conn) == []
