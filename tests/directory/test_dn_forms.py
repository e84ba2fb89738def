"""AD's alternative DN forms and the extended DN control, over ldap3 ([MS-ADTS] 3.1.1.3.1.2.4,
3.1.1.3.4.1.5).

A request may name an object as `<GUID=...>` or `<SID=...>` wherever it takes a DN; with
LDAP_SERVER_EXTENDED_DN_OID a search returns every DN as `<GUID=...>;<SID=...>;dn`. On the fake
and Samba; slapd has neither (ad_only).
"""

from __future__ import annotations

import uuid

import pytest
from ldap3 import BASE, MODIFY_ADD, MODIFY_REPLACE
from ldap3.protocol.formatters.formatters import format_sid

from harness.core.dn import normalize_dn
from tests.directory.ldap_clients import connect, is_samba
from tests.directory.test_ldap3_modify import lone_user, read, remote_user

OU = "OU=Corp,DC=contoso,DC=com"
GROUP = ["top", "group"]
EXTENDED_DN = "1.2.840.113556.1.4.529"
FLAG_1 = b"\x30\x03\x02\x01\x01"  # ExtendedDNRequestValue ::= SEQUENCE { Flag INTEGER } = 1
NO_SUCH_OBJECT, INVALID_DN, OTHER = 32, 34, 80


def ids(conn, dn: str) -> tuple[bytes, bytes | None]:
    got = read(conn, dn, "objectGUID", "objectSid")
    return got["objectGUID"][0], (got.get("objectSid") or [None])[0]


def user_ids(conn, tenant, n: int = 1) -> tuple[str, bytes, bytes]:
    """A tenant user's DN, objectGUID and objectSid (in no group of the tenant's)."""
    user = lone_user(tenant, n).dn
    guid, sid = ids(conn, user)
    assert sid is not None
    return user, guid, sid


def base_dn(conn, base: str, controls=None) -> str | None:
    """The DN the server returns for a base search of `base`; None if it refuses."""
    conn.search(base, "(objectClass=*)", BASE, attributes=["cn"], controls=controls)
    if conn.result["result"] != 0:
        return None
    return conn.response[0]["dn"]


@pytest.mark.ad_only("alternative DN forms")
def test_guid_and_sid_name_an_object_as_a_search_base(directory, tenant):
    conn = connect(directory)
    user, guid, sid = user_ids(conn, tenant)
    forms = [
        f"<GUID={guid.hex()}>",  # the hex of the binary form
        f"<GUID={uuid.UUID(bytes_le=guid)}>",  # the dashed string
        f"<SID={format_sid(sid)}>",
        f"<SID={sid.hex()}>",
    ]
    for form in forms:
        got = base_dn(conn, form)
        assert got is not None and normalize_dn(got) == normalize_dn(user), (form, conn.result)


@pytest.mark.ad_only("alternative DN forms")
def test_an_unknown_or_malformed_guid(directory):
    conn = connect(directory)
    assert base_dn(conn, f"<GUID={uuid.uuid4()}>") is None
    assert conn.result["result"] == NO_SUCH_OBJECT, conn.result
    assert base_dn(conn, "<GUID=not-a-guid>") is None
    assert conn.result["result"] == INVALID_DN, conn.result


@pytest.mark.ad_only("alternative DN forms")
def test_writes_name_objects_and_values_by_guid_and_sid(fresh_directory, tenant):
    conn = connect(fresh_directory)
    a, b = (remote_user(tenant, n).dn for n in (1, 2))
    a_guid, a_sid = ids(conn, a)
    b_guid, _ = ids(conn, b)
    assert a_sid is not None
    # The object of a modify, and a DN value given as <SID=...>.
    assert conn.modify(
        f"<GUID={uuid.UUID(bytes_le=a_guid)}>", {"description": [(MODIFY_REPLACE, ["by guid"])]}
    ), conn.result
    assert read(conn, a, "description")["description"] == [b"by guid"]
    group = f"CN=Forms Group,{OU}"
    assert conn.add(group, GROUP, {"member": [f"<SID={format_sid(a_sid)}>"]}), conn.result
    assert conn.modify(group, {"member": [(MODIFY_ADD, [f"<GUID={b_guid.hex()}>"])]}), conn.result
    members = {normalize_dn(v.decode()) for v in read(conn, group, "member")["member"]}
    assert members == {normalize_dn(a), normalize_dn(b)}  # stored as DNs
    # A value naming no object is refused as a missing DN value is.
    assert not conn.modify(group, {"member": [(MODIFY_ADD, [f"<GUID={uuid.uuid4()}>"])]})
    assert conn.result["result"] == NO_SUCH_OBJECT, conn.result
    # A delete's object.
    g_guid, _ = ids(conn, group)
    assert conn.delete(f"<GUID={g_guid.hex()}>"), conn.result
    assert base_dn(conn, group) is None
    assert conn.result["result"] == NO_SUCH_OBJECT


@pytest.mark.ad_only("alternative DN forms")
def test_a_filter_names_a_dn_value_by_guid_or_sid(fresh_directory, tenant):
    conn = connect(fresh_directory)
    user, guid, sid = user_ids(conn, tenant)
    group = f"CN=Filter Forms Group,{OU}"
    assert conn.add(group, GROUP, {"member": [user]}), conn.result
    forms = [f"<GUID={guid.hex()}>", f"<GUID={uuid.UUID(bytes_le=guid)}>",
             f"<SID={format_sid(sid)}>", f"<SID={sid.hex()}>"]  # fmt: skip
    for form in forms:
        # An equality on a DN-valued attribute, distinguishedName and the in-chain rule.
        for flt, want in (
            (f"(&(objectClass=group)(member={form}))", group),
            (f"(distinguishedName={form})", user),
            (f"(member:1.2.840.113556.1.4.1941:={form})", group),
        ):
            assert conn.search(OU, flt, attributes=["1.1"]), (flt, conn.result)
            assert {normalize_dn(e["dn"]) for e in conn.response} == {normalize_dn(want)}, flt
    # One naming no object, or malformed, matches nothing, as a DN naming none does.
    for form in (f"<GUID={uuid.uuid4()}>", "<GUID=zz>", "<SID=S-1-x>"):
        conn.search(OU, f"(member={form})", attributes=["1.1"])
        assert conn.result["result"] == 0 and conn.response == [], form


@pytest.mark.ad_only("alternative DN forms")
@pytest.mark.samba_differs("a new superior by GUID", branches=True)
def test_a_rename_names_its_new_superior_by_guid(fresh_directory):
    conn = connect(fresh_directory)
    sub, group = f"OU=Forms Sub,{OU}", f"CN=Forms Moved,{OU}"
    assert conn.add(sub, ["top", "organizationalUnit"]), conn.result
    assert conn.add(group, GROUP), conn.result
    sub_guid, _ = ids(conn, sub)
    moved = conn.modify_dn(group, "CN=Forms Moved", new_superior=f"<GUID={sub_guid.hex()}>")
    if is_samba(fresh_directory):
        assert not moved and conn.result["result"] == OTHER, conn.result
    else:
        assert moved, conn.result
        assert base_dn(conn, f"CN=Forms Moved,{sub}") is not None


@pytest.mark.ad_only("extended DN control")
def test_extended_dn_control_gives_guid_and_sid_with_every_dn(fresh_directory, tenant):
    conn = connect(fresh_directory)
    user, guid, sid = user_ids(conn, tenant)
    group = f"CN=Extended Group,{OU}"
    assert conn.add(group, GROUP, {"member": [user]}), conn.result
    g_guid, g_sid = ids(conn, group)
    assert g_sid is not None
    got = base_dn(conn, user, [(EXTENDED_DN, False, None)])  # no value: flag 0, hex
    assert got is not None, conn.result
    head, _, dn = got.rpartition(";")
    assert normalize_dn(dn) == normalize_dn(user)
    assert head.lower() == f"<guid={guid.hex()}>;<sid={sid.hex()}>"
    # Flag 1: the dashed GUID and the S-1-5-... SID, in DN-valued attributes too.
    conn.search(
        user,
        "(objectClass=*)",
        BASE,
        attributes=["memberOf"],
        controls=[(EXTENDED_DN, False, FLAG_1)],
    )
    assert conn.result["result"] == 0, conn.result
    entry = conn.response[0]
    assert entry["dn"].startswith(f"<GUID={uuid.UUID(bytes_le=guid)}>;<SID={format_sid(sid)}>;")
    (member_of,) = entry["raw_attributes"]["memberOf"]
    head, _, dn = member_of.decode().rpartition(";")
    assert head == f"<GUID={uuid.UUID(bytes_le=g_guid)}>;<SID={format_sid(g_sid)}>"
    assert normalize_dn(dn) == normalize_dn(group)
    # An OU has no objectSid: only its GUID.
    ou_guid, _ = ids(conn, OU)
    got = base_dn(conn, OU, [(EXTENDED_DN, False, FLAG_1)])
    assert got is not None
    assert got.startswith(f"<GUID={uuid.UUID(bytes_le=ou_guid)}>;OU=") and "<SID=" not in got
    # Without the control, plain DNs.
    assert normalize_dn(base_dn(conn, user) or "") == normalize_dn(user)


# --- <WKGUID=guid,dn> ----------------------------------------------------------------------------

WELL_KNOWN_CONTAINERS = {  # [MS-ADTS] 6.1.1.4: GUID_USERS_CONTAINER_W and the others
    "A9D1CA15768811D1ADED00C04FD8D5CD": "CN=Users",
    "AA312825768811D1ADED00C04FD8D5CD": "CN=Computers",
    "AB1D30F3768811D1ADED00C04FD8D5CD": "CN=System",
    "A361B2FFFFD211D1AA4B00C04FD7D83A": "OU=Domain Controllers",
    "22B70C67D56E4EFB91E9300FCA3DC1AA": "CN=ForeignSecurityPrincipals",
}
MSA_GUID = "1EB93889E40C45DF9F0C64D23BBB6237"  # listed in otherWellKnownObjects
DELETED_OBJECTS_GUID = "18E2EA80684F11D2B9AA00C04F79F805"


@pytest.mark.ad_only("alternative DN forms")
def test_wkguid_names_the_well_known_containers(directory):
    conn = connect(directory)
    base = directory.endpoints.base_dn
    for guid, rdn in {**WELL_KNOWN_CONTAINERS, MSA_GUID: "CN=Managed Service Accounts"}.items():
        for spelling in (guid, guid.lower()):
            got = base_dn(conn, f"<WKGUID={spelling},{base}>")
            assert got is not None, (spelling, conn.result)
            assert normalize_dn(got) == normalize_dn(f"{rdn},{base}")


@pytest.mark.ad_only("alternative DN forms")
def test_the_domain_lists_its_well_known_objects(directory):
    conn = connect(directory)
    base = directory.endpoints.base_dn
    head = read(conn, base, "wellKnownObjects", "otherWellKnownObjects")
    listed = {}
    for v in head["wellKnownObjects"] + head.get("otherWellKnownObjects", []):
        kind, size, guid, dn = v.decode().split(":", 3)
        assert (kind, size) == ("B", "32")
        listed[guid.upper()] = normalize_dn(dn)
        if guid.upper() != DELETED_OBJECTS_GUID:  # seen only with the show-deleted control
            assert base_dn(conn, dn) is not None, dn  # each names an object that exists
    for guid, rdn in WELL_KNOWN_CONTAINERS.items():
        assert listed[guid] == normalize_dn(f"{rdn},{base}")
    # Deleted Objects is listed too, though it is a deleted object itself ([MS-ADTS] 6.1.1.4).
    assert listed[DELETED_OBJECTS_GUID] == normalize_dn(f"CN=Deleted Objects,{base}")


@pytest.mark.ad_only("alternative DN forms")
def test_wkguid_names_deleted_objects_with_the_show_deleted_control(directory):
    conn = connect(directory)
    base = directory.endpoints.base_dn
    show_deleted = [("1.2.840.113556.1.4.417", True, None)]
    got = base_dn(conn, f"<WKGUID={DELETED_OBJECTS_GUID},{base}>", show_deleted)
    assert got is not None, conn.result
    assert normalize_dn(got) == normalize_dn(f"CN=Deleted Objects,{base}")


@pytest.mark.ad_only("alternative DN forms")
def test_an_unknown_or_malformed_wkguid(directory):
    conn = connect(directory)
    base = directory.endpoints.base_dn
    assert base_dn(conn, f"<WKGUID={uuid.uuid4().hex},{base}>") is None
    assert conn.result["result"] == NO_SUCH_OBJECT, conn.result
    # A well-known GUID of an object that `dn` does not list: Users is not listed by itself.
    assert base_dn(conn, f"<WKGUID=A9D1CA15768811D1ADED00C04FD8D5CD,CN=Users,{base}>") is None
    assert conn.result["result"] == NO_SUCH_OBJECT, conn.result
    assert base_dn(conn, f"<WKGUID=A9D1CA15768811D1ADED00C04FD8D5CD,CN=Nowhere,{base}>") is None
    assert conn.result["result"] == NO_SUCH_OBJECT, conn.result
