"""Ambiguous name resolution: ``(anr=...)`` ([MS-ADTS] 3.1.1.3.1.3.4), over ldap3.

AD rewrites an aNR clause into a search of its ANR attribute set, the attributes whose
searchFlags carry fANR: an initial substring of each (legacyExchangeDN compared whole), and for a
value with a space the given name and surname the two ways round; a value starting with "="
asks for exact matches. On the fake and Samba (slapd has no ANR: ad_only), and at store level
the ordered keys (`Store.prefix`) that keep ANR an index hit at 200,000 entries.
"""

from __future__ import annotations

import os
import random

import pytest
from ldaptor.ldapfilter import parseFilter

from harness.core.adschema import DEFAULT_SCHEMA
from harness.tenant import TenantSpec, generate
from mockservers.directory.ad_classes import (
    AD_ANR_ATTRIBUTES,
    ATTRIBUTES_FILE,
    anr_names,
    read_ldf,
)
from mockservers.directory.filters import compile_filter
from mockservers.directory.seed import seed_directory
from mockservers.directory.store import MOD_ADD, MOD_DELETE, MOD_REPLACE, Store
from tests.directory.ldap_clients import connect, examined, found, is_samba, ndns
from tests.directory.test_subschema import SAMBA_SCHEMA_FILES

BASE = "DC=contoso,DC=com"
OU = f"OU=ANR Test,OU=Corp,{BASE}"
CONTACT = ["top", "person", "organizationalPerson", "contact"]
LEGACY = "/o=AnrOrg/ou=First Administrative Group/cn=Recipients/cn=zquixote"
ENTRIES = {
    "alpha": (
        CONTACT,
        {
            "givenName": "Zebulon",
            "sn": "Quixote",
            "displayName": "Zebulon Quixote",
            "physicalDeliveryOfficeName": "Building 40",
            "proxyAddresses": ["SMTP:zq@anr.example", "X500:/o=Other/cn=zq"],
            "mailNickname": "zquix",
            "legacyExchangeDN": LEGACY,
        },
    ),
    "bravo": (CONTACT, {"givenName": "Quixote", "sn": "Zebulon", "displayName": "Q Z"}),
    "charlie": (CONTACT, {"givenName": "Zebulon", "sn": "Quimby", "displayName": "Zeb Quimby"}),
    "delta": (CONTACT, {"givenName": "Anneke", "sn": "Van Der Berg", "displayName": "A V"}),
    "echo": (["top", "group"], {"sAMAccountName": "anrgrp-echo", "displayName": "Echo Team"}),
}


def dn(key: str) -> str:
    return f"CN=Anrtest {key.title()},{OU}"


@pytest.fixture(scope="module")
def anr(directory):
    """The directory with ENTRIES added below OU; each test searches there."""
    conn = connect(directory)
    assert conn.add(OU, ["top", "organizationalUnit"]), conn.result
    for key, (classes, attrs) in ENTRIES.items():
        assert conn.add(dn(key), classes, attrs), conn.result
    yield conn
    conn.unbind()


def search(conn, flt: str) -> set[str]:
    conn.search(OU, flt, attributes=["1.1"])
    assert conn.result["result"] == 0, conn.result
    hits = found(conn)
    return {k for k in ENTRIES if ndns([dn(k)]) <= hits} | ({"ou"} if ndns([OU]) <= hits else set())


@pytest.mark.ad_only("ambiguous name resolution")
@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Zebulon", {"alpha", "bravo", "charlie"}),  # givenName, sn
        ("zeb", {"alpha", "bravo", "charlie"}),  # case-insensitive initial substrings
        ("Zeb Q", {"alpha", "bravo", "charlie"}),  # displayName, or the names either way
        ("Building 4", {"alpha"}),  # physicalDeliveryOfficeName
        ("zquix", {"alpha"}),  # mailNickname (Exchange's addition to the set)
        ("SMTP:zq@", {"alpha"}),  # proxyAddresses, the whole value with its prefix
        ("x500:/o=oth", {"alpha"}),
        ("zq@anr.example", set()),  # not the address after the prefix
        ("anrgrp", {"echo"}),  # sAMAccountName
        ("Anrtest Ch", {"charlie"}),  # name, the RDN's value
        ("ANR Te", {"ou"}),  # an OU's name
        ("Echo T", {"echo"}),  # displayName of a group
        ("nobody-here", set()),
        ("", set()),  # an empty value resolves to nothing
        ("=", set()),
    ],
)
def test_anr_is_an_initial_substring_of_each_attribute_of_the_set(anr, value, expected):
    assert search(anr, f"(anr={value})") == expected


@pytest.mark.ad_only("ambiguous name resolution")
@pytest.mark.parametrize(
    ("value", "expected"),
    [
        # givenName=Zebulon* and sn=Quixote*, or the other way round, or a displayName
        ("Zebulon Quixote", {"alpha", "bravo"}),
        ("quixote zebulon", {"alpha", "bravo"}),
        ("Zebulon Quim", {"charlie"}),
        # split at the first space only: sn=Van Der*
        ("Anneke Van Der", {"delta"}),
        ("Van Der Anneke", set()),
    ],
)
def test_a_value_with_a_space_also_matches_given_name_and_surname(anr, value, expected):
    assert search(anr, f"(anr={value})") == expected


@pytest.mark.ad_only("ambiguous name resolution")
@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("=Zebulon", {"alpha", "bravo", "charlie"}),
        ("=zebulo", set()),
        ("=ZEBULON QUIXOTE", {"alpha", "bravo"}),  # displayName, and the names both ways
        ("=Zebulon Quix", set()),
        ("=zquix", {"alpha"}),
        ("=anrgrp-echo", {"echo"}),
    ],
)
def test_a_value_starting_with_equals_matches_exactly(anr, value, expected):
    assert search(anr, f"(anr={value})") == expected


@pytest.mark.ad_only("ambiguous name resolution")
def test_anr_combines_with_the_rest_of_the_filter(anr):
    assert search(anr, "(&(objectClass=contact)(anr=Zebulon))") == {"alpha", "bravo", "charlie"}
    assert search(anr, "(&(anr=Zebulon)(!(anr=Zebulon Quix)))") == {"charlie"}
    assert search(anr, "(|(anr=anrgrp)(anr=Anneke))") == {"delta", "echo"}
    assert search(anr, "(anr=Zebu*)") == {"alpha", "bravo", "charlie"}  # (aNR=V*) is (aNR=V)
    assert search(anr, "(ANR=zquix)") == {"alpha"}  # attribute names are case-insensitive


@pytest.mark.ad_only("ambiguous name resolution")
@pytest.mark.samba_differs("ANR on legacyExchangeDN", branches=True)
def test_legacy_exchange_dn_is_compared_whole(anr, directory):
    assert search(anr, f"(anr={LEGACY})") == {"alpha"}
    assert search(anr, f"(anr={LEGACY.upper()})") == {"alpha"}
    prefix = search(anr, "(anr=/o=AnrOrg/ou=First)")
    # [MS-ADTS] takes legacyExchangeDN out of the set (PLegacy) to compare it whole; Samba's
    # anr module treats it as one more initial substring.
    assert prefix == ({"alpha"} if is_samba(directory) else set())


@pytest.mark.ad_only("ambiguous name resolution")
def test_anr_presence_is_false(anr):
    # [MS-ADTS] 3.1.1.3.1.3.4: (aNR=*) resolves to FALSE (no object holds aNR itself), so its
    # negation is TRUE for every object.
    assert search(anr, "(anr=*)") == set()
    everything = {"ou", *ENTRIES}
    assert search(anr, "(!(anr=*))") == everything


@pytest.mark.fake_only("counts the entries the fake's search examined")
def test_anr_is_answered_from_the_indexes(directory, tenant):
    conn = connect(directory, "reader")
    user = tenant.ad_users[7]
    before = examined(directory)
    assert conn.search(BASE, f"(&(objectCategory=person)(anr={user.display_name}))")
    assert ndns([user.dn]) <= found(conn)
    assert examined(directory) - before <= 10  # an index hit, not a scan of 400 users


@pytest.mark.ad_only("ambiguous name resolution")
@pytest.mark.samba_differs("approximate match")
def test_approximate_anr_is_anr(anr):
    assert search(anr, "(anr~=Zebulon Quix)") == {"alpha", "bravo"}


@pytest.mark.ad_only("ambiguous name resolution")
@pytest.mark.samba_differs("ANR with other substrings", branches=True)
def test_other_substrings_search_each_attribute_of_the_set(anr, directory):
    # [MS-ADTS] 3.1.1.3.1.3.4: "a substring search against the aNR attribute is interpreted by
    # the DC as a substring search against" the set. Samba's anr module rewrites only (anr=V)
    # and (anr=V*); any other substring of aNR, an attribute no object holds, is FALSE.
    samba = is_samba(directory)
    assert search(anr, "(anr=*ebulon)") == (set() if samba else {"alpha", "bravo", "charlie"})
    assert search(anr, "(anr=Zeb*Qui*)") == (set() if samba else {"alpha", "charlie"})
    assert search(anr, "(anr=*@anr.example)") == (set() if samba else {"alpha"})


# --- store level -----------------------------------------------------------------------------


def test_anr_over_a_large_directory_takes_its_candidates_from_the_indexes():
    tenant = generate(TenantSpec(mailboxes=int(os.environ.get("ANR_USERS", "5000")), seed=5))
    store = seed_directory(tenant).store
    for user in tenant.ad_users[:: len(tenant.ad_users) // 5]:
        for value in (user.display_name, user.display_name[:6], "=" + user.display_name):
            flt = compile_filter(parseFilter(f"(anr={value})"), store.schema, store.schema_nc)
            candidates = flt.candidates(store)
            assert candidates is not None, value
            matching = [e for e in store.entries.values() if flt.matches(e)]
            assert {e.ndn for e in matching} <= {e.ndn for e in candidates}
            assert len(candidates) < len(store.entries) / 20, value
            assert user.dn.casefold() in {e.dn.casefold() for e in matching}, value


def brute_prefix(store: Store, attr: str, initial: str) -> set[str]:
    t = DEFAULT_SCHEMA.require(attr)
    out = set()
    for e in store.entries.values():
        for v in e.values(t):
            k = t.key(v)
            if isinstance(k, str) and k.startswith(initial):
                out.add(e.ndn)
    return out


PROBES = ("", "a", "an", "anrtest", "anrtest 1", "renamed", "moved 1", "smtp:an", "x500:", "é")


def assert_prefixes_agree(store: Store) -> None:
    for t in DEFAULT_SCHEMA:
        if t.prefix_indexed:
            for initial in PROBES:
                got = {e.ndn for e in store.prefix(t, initial)}
                assert got == brute_prefix(store, t.name, initial), (t.name, initial)
                assert len(store.prefix(t, initial)) == len(got)  # each entry once


@pytest.mark.parametrize("built_first", [True, False])
def test_the_prefix_index_stays_right_through_add_modify_delete_and_rename(tenant, built_first):
    store = seed_directory(tenant).store
    if built_first:
        assert_prefixes_agree(store)  # makes every ordered index before the writes
    rng = random.Random(3)
    ou = f"OU=Corp,{BASE}"
    added = []
    for i in range(1500):  # enough keys to split chunks of the ordered index
        e = store.add(
            f"CN=Anrtest {i},{ou}",
            [
                ("objectClass", [b"top", b"person", b"organizationalPerson", b"contact"]),
                ("displayName", [f"Anrtest {rng.randrange(400)}".encode()]),
                ("givenName", [rng.choice([b"Ann", b"Anna", b"Jo", "Émile".encode()])]),
                ("proxyAddresses", [f"smtp:an{i}@x.example".encode(), f"X500:/o=a{i}".encode()]),
            ],
        )
        added.append(e.ndn)
    assert_prefixes_agree(store)
    for i, ndn in enumerate(added[::3]):
        store.modify(
            ndn,
            [
                (MOD_REPLACE, "displayName", [f"Moved {i}".encode()]),
                (MOD_DELETE, "proxyAddresses", [f"X500:/o=a{3 * i}".encode()]),
                (MOD_ADD, "proxyAddresses", [f"SMTP:zz{i}@x.example".encode()]),
            ],
        )
    assert_prefixes_agree(store)
    for ndn in added[1::3]:
        store.delete(ndn)
    assert_prefixes_agree(store)
    for i, ndn in enumerate(added[2::3]):
        e = store.rename(ndn, f"CN=Renamed {i}", delete_old=True, new_superior=None)
        assert {v.decode() for v in e.values(DEFAULT_SCHEMA.require("name"))} == {f"Renamed {i}"}
    assert_prefixes_agree(store)


def test_moving_a_subtree_keeps_the_names_of_what_it_holds(tenant):
    store = seed_directory(tenant).store
    store.add(f"OU=Anr Parent,OU=Corp,{BASE}", [("objectClass", [b"top", b"organizationalUnit"])])
    child = f"CN=Anr Child,OU=Anr Parent,OU=Corp,{BASE}"
    store.add(child, [("objectClass", [b"top", b"person", b"organizationalPerson", b"contact"])])
    name = DEFAULT_SCHEMA.require("name")
    assert_prefixes_agree(store)
    store.rename(store.ndn_of(f"OU=Anr Parent,OU=Corp,{BASE}") or "", "OU=Anr Moved", True, None)
    assert {e.dn for e in store.prefix(name, "anr ")} == {
        f"OU=Anr Moved,OU=Corp,{BASE}",
        f"CN=Anr Child,OU=Anr Moved,OU=Corp,{BASE}",
    }
    assert_prefixes_agree(store)


# --- the ANR attribute set -------------------------------------------------------------------


def test_the_anr_set_is_what_the_schema_files_flag_plus_exchanges_alias():
    """`AttributeType.anr` marks the 2016 schema's fANR attributes that the fake knows, and
    mailNickname (Exchange's schema update adds it). The msDS-Phonetic* attributes and
    msDS-AdditionalSamAccountName are in AD's set but not in the fake's schema."""
    known = {t.name for t in DEFAULT_SCHEMA}
    assert {t.name for t in DEFAULT_SCHEMA if t.anr} == (
        (set(AD_ANR_ATTRIBUTES) & known) | {"mailNickname"}
    )
    assert set(AD_ANR_ATTRIBUTES) - known == {
        "msDS-AdditionalSamAccountName",
        "msDS-PhoneticCompanyName",
        "msDS-PhoneticDepartment",
        "msDS-PhoneticDisplayName",
        "msDS-PhoneticFirstName",
        "msDS-PhoneticLastName",
    }
    assert all(t.prefix_indexed for t in DEFAULT_SCHEMA if t.anr)


def test_the_generated_anr_set_matches_microsofts_schema_file():
    if not (SAMBA_SCHEMA_FILES / ATTRIBUTES_FILE).is_file():
        if os.environ.get("CI"):
            pytest.fail(f"{SAMBA_SCHEMA_FILES} is missing: install samba-ad-provision")
        pytest.skip(f"{SAMBA_SCHEMA_FILES} is missing (samba-ad-provision)")
    assert anr_names(read_ldf(SAMBA_SCHEMA_FILES / ATTRIBUTES_FILE)) == list(AD_ANR_ATTRIBUTES)
