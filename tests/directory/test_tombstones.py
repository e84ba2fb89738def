"""Tombstones ([MS-ADTS] 3.1.1.5.5, Recycle Bin off) and the show-deleted control
(1.2.840.113556.1.4.417, 3.1.1.3.4.1.14), over ldap3 and python-ldap.

A delete moves the object into its partition's Deleted Objects container under a mangled RDN,
keeps only the attributes AD keeps, and hides it from every search without the control. On the
fake and Samba; slapd deletes outright (ad_only). The durable state (dump and reload, journal
replay) restores tombstones as they were: fake only, at the store.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import ldap
import pytest
from ldap.controls import LDAPControl
from ldap3 import BASE, LEVEL, MODIFY_REPLACE, SUBTREE

from harness.core.dn import normalize_dn
from harness.tenant import TenantSpec, generate
from mockservers.directory.ldif_io import dump_ldif, load_ldif
from mockservers.directory.seed import seed_directory
from mockservers.directory.store import MOD_REPLACE
from mockservers.journal import Journal
from mockservers.state import replay
from tests.directory.ldap_clients import connect, is_samba

OU = "OU=Corp,DC=contoso,DC=com"
BASE_DN = "DC=contoso,DC=com"
DELETED = f"CN=Deleted Objects,{BASE_DN}"
SHOW_DELETED = "1.2.840.113556.1.4.417"
USER = ["top", "person", "organizationalPerson", "user"]
NO_SUCH_OBJECT, UNWILLING = 32, 53


def show_deleted():
    from ldap3.protocol.microsoft import show_deleted_control

    return [show_deleted_control(criticality=True)]


def add_user(conn, name: str, **extra) -> str:
    dn = f"CN={name},{OU}"
    attrs = {"sAMAccountName": name.replace(" ", "")[:20], "description": "to be deleted"}
    attrs.update(extra)
    assert conn.add(dn, USER, attrs), conn.result
    return dn


def guid_of(conn, dn: str) -> bytes:
    assert conn.search(dn, "(objectClass=*)", BASE, attributes=["objectGUID"])
    return conn.response[0]["raw_attributes"]["objectGUID"][0]


def tombstone(conn, guid: bytes) -> dict:
    text = str(uuid.UUID(bytes_le=guid))
    assert conn.search(f"<GUID={text}>", "(objectClass=*)", BASE, attributes=["*"],
                       controls=show_deleted()), conn.result  # fmt: skip
    (entry,) = [r for r in conn.response if r["type"] == "searchResEntry"]
    return entry


@pytest.mark.ad_only("tombstones")
def test_a_delete_leaves_a_tombstone_in_deleted_objects(fresh_directory):
    conn = connect(fresh_directory)
    dn = add_user(conn, "Tomb Stone", userPrincipalName="tomb.stone@contoso.com")
    guid = guid_of(conn, dn)
    assert conn.delete(dn), conn.result
    entry = tombstone(conn, guid)
    raw = entry["raw_attributes"]
    text = str(uuid.UUID(bytes_le=guid))
    # The mangled RDN: the old value, a line feed (\0A in the DN), DEL: and the GUID.
    assert entry["dn"].lower() == f"cn=tomb stone\\0adel:{text},{DELETED}".lower()
    assert raw["cn"] == [f"Tomb Stone\nDEL:{text}".encode()]
    assert raw["name"] == raw["cn"]
    assert raw["isDeleted"] == [b"TRUE"]
    assert normalize_dn(raw["lastKnownParent"][0].decode()) == normalize_dn(OU)
    assert "msDS-LastKnownRDN" not in raw  # the Recycle Bin's, not a tombstone's
    # Kept: the identity; gone: what the object said about itself, and its category.
    assert raw["objectGUID"] == [guid] and raw["objectSid"] and raw["sAMAccountName"]
    for gone in ("description", "userPrincipalName", "objectCategory", "sAMAccountType"):
        assert gone not in raw, gone
    assert conn.delete(dn) is False and conn.result["result"] == NO_SUCH_OBJECT


@pytest.mark.ad_only("tombstones")
@pytest.mark.samba_differs("a tombstone by its DN", branches=True)
def test_without_show_deleted_a_tombstone_is_found_by_no_search(fresh_directory):
    conn = connect(fresh_directory)
    dn = add_user(conn, "Hidden Tomb")
    guid = guid_of(conn, dn)
    assert conn.delete(dn), conn.result
    tomb_dn = tombstone(conn, guid)["dn"]
    samba = is_samba(fresh_directory)
    for base in (dn, tomb_dn, DELETED):  # the container is a deleted object itself
        found = conn.search(base, "(objectClass=*)", BASE, attributes=["1.1"])
        assert not found, base
        # Samba: success with no entries for the deleted objects' own DNs.
        want = 0 if samba and base != dn else NO_SUCH_OBJECT
        assert conn.result["result"] == want, (base, conn.result)
    flt = "(&(isDeleted=TRUE)(cn=Hidden Tomb*))"
    conn.search(BASE_DN, flt, SUBTREE, attributes=["1.1"])
    assert [r for r in conn.response if r["type"] == "searchResEntry"] == []
    # With the control: the container and the tombstone, by subtree, one level and filter.
    conn.search(BASE_DN, flt, SUBTREE, attributes=["1.1"], controls=show_deleted())
    assert [normalize_dn(r["dn"]) for r in conn.response if r["type"] == "searchResEntry"] == [
        normalize_dn(tomb_dn)
    ]
    conn.search(DELETED, "(objectClass=*)", BASE, attributes=["isDeleted", "systemFlags"],
                controls=show_deleted())  # fmt: skip
    container = conn.response[0]["raw_attributes"]
    assert container["isDeleted"] == [b"TRUE"]
    assert int(container["systemFlags"][0]) & 0x80000000  # FLAG_DISALLOW_DELETE
    conn.search(DELETED, "(objectClass=user)", LEVEL, attributes=["1.1"], controls=show_deleted())
    assert normalize_dn(tomb_dn) in {
        normalize_dn(r["dn"]) for r in conn.response if r["type"] == "searchResEntry"
    }


@pytest.mark.ad_only("tombstones")
def test_a_tombstone_frees_its_account_names(fresh_directory):
    conn = connect(fresh_directory)
    upn = "reused.name@contoso.com"
    dn = add_user(conn, "Reused Name", userPrincipalName=upn)
    assert conn.delete(dn), conn.result
    # The tombstone keeps sAMAccountName, but uniqueness counts live objects only.
    add_user(conn, "Reused Name", userPrincipalName=upn)
    conn.search(BASE_DN, "(sAMAccountName=ReusedName)", SUBTREE, attributes=["1.1"])
    assert [normalize_dn(r["dn"]) for r in conn.response if r["type"] == "searchResEntry"] == [
        normalize_dn(dn)
    ]


@pytest.mark.ad_only("tombstones")
@pytest.mark.samba_differs("a tombstone by its DN", branches=True)
def test_a_tombstone_is_not_modified(fresh_directory):
    conn = connect(fresh_directory)
    dn = add_user(conn, "Fixed Tomb")
    guid = guid_of(conn, dn)
    assert conn.delete(dn), conn.result
    tomb_dn = tombstone(conn, guid)["dn"]
    change = {"description": [(MODIFY_REPLACE, ["changed"])]}
    plain = conn.modify(tomb_dn, change)
    plain_code = conn.result["result"]
    shown = conn.modify(tomb_dn, change, controls=show_deleted())
    if is_samba(fresh_directory):
        assert plain and shown, conn.result  # Samba writes the tombstone, with or without
        return
    assert not plain and plain_code == NO_SUCH_OBJECT  # invisible without the control
    assert not shown and conn.result["result"] == UNWILLING, conn.result
    assert "00002077" in conn.result["message"]


@pytest.mark.ad_only("tombstones")
def test_a_deleted_member_leaves_its_groups(fresh_directory):
    conn = connect(fresh_directory)
    dn = add_user(conn, "Leaving Member")
    group = f"CN=Left Group,{OU}"
    assert conn.add(group, ["top", "group"], {"member": [dn]}), conn.result
    guid = guid_of(conn, dn)
    assert conn.delete(dn), conn.result
    conn.search(group, "(objectClass=*)", BASE, attributes=["member"])
    assert conn.response[0]["raw_attributes"].get("member", []) == []
    assert "memberOf" not in tombstone(conn, guid)["raw_attributes"]


@pytest.mark.ad_only("tombstones")
def test_python_ldap_sees_tombstones_with_a_raw_control(fresh_directory):
    ep = fresh_directory.endpoints
    conn = connect(fresh_directory)
    dn = add_user(conn, "Raw Tomb")
    assert conn.delete(dn), conn.result
    user, password = ep.account("admin")
    pl = ldap.initialize(ep.ldap_url)
    pl.set_option(ldap.OPT_REFERRALS, 0)
    pl.simple_bind_s(user, password)
    flt = "(cn=Raw Tomb*)"
    got = pl.search_ext_s(BASE_DN, ldap.SCOPE_SUBTREE, flt, ["isDeleted"])
    assert [d for d, _a in got if d] == []  # (referrals to the other partitions aside)
    ctrl = LDAPControl(SHOW_DELETED, True, None)
    got = pl.search_ext_s(BASE_DN, ldap.SCOPE_SUBTREE, flt, ["isDeleted"], serverctrls=[ctrl])
    got = [(d, a) for d, a in got if d]
    assert len(got) == 1 and got[0][1]["isDeleted"] == [b"TRUE"]
    assert "Deleted Objects" in got[0][0]


# --- durable state: fake only, at the store -------------------------------------------------


@pytest.fixture(scope="module")
def small():
    return generate(TenantSpec(mailboxes=30, seed=5))


def test_tombstones_survive_a_dump_and_a_reload(small, tmp_path: Path):
    store = seed_directory(small).store
    user = small.ad_users[1]
    tomb = store.delete(normalize_dn(user.dn))
    dump_ldif(store, tmp_path / "d.ldif")
    again = load_ldif(tmp_path / "d.ldif").store
    back = again.get_deleted(tomb.ndn)
    assert back is not None and back.dn == tomb.dn and back.attrs == tomb.attrs
    assert again.get(normalize_dn(user.dn)) is None
    assert again.deleted_by_guid(tomb.attrs["objectGUID"][0]) is back
    assert "sAMAccountType" not in back.attrs  # the loader does not stamp a tombstone


def test_a_journal_replay_makes_the_same_tombstones(small, tmp_path: Path):
    dump = tmp_path / "base.ldif"
    dump_ldif(seed_directory(small).store, dump)
    live = load_ldif(dump).store
    live.journal = Journal(tmp_path / "j.jsonl", sync=False)
    users = [normalize_dn(u.dn) for u in small.ad_users[2:5]]
    live.modify(users[0], [(MOD_REPLACE, "description", [b"before"])])
    tombs = [live.delete(n) for n in users]
    live.journal.close()
    replayed = load_ldif(dump).store
    replay(tmp_path / "j.jsonl", replayed, _NoCloud())
    assert replayed.highest_usn == live.highest_usn
    for t in tombs:
        back = replayed.get_deleted(t.ndn)
        assert back is not None and back.dn == t.dn and back.attrs == t.attrs


class _NoCloud:
    """The replay's cloud side: this journal holds directory records only."""
