"""DirSync (1.2.840.113556.1.4.841, [MS-ADTS] 3.1.1.3.4.1.3), over ldap3's own DirSync support
(`conn.extend.microsoft.dir_sync`) and python-ldap with a raw control.

The first call returns the partition's matching objects; a call with the cookie returns what
changed since, with the changed attributes only, deleted objects as tombstones. It needs the
replication right unless LDAP_DIRSYNC_OBJECT_SECURITY is set. On the fake and Samba; slapd has
no DirSync (ad_only).
"""

from __future__ import annotations

import ldap
import pytest
from ldap.controls import LDAPControl, ResponseControl
from ldap3 import BASE, MODIFY_DELETE, MODIFY_REPLACE
from ldap3.core.exceptions import LDAPExtensionError

from harness.core.dn import normalize_dn
from mockservers.directory.acl import AccessPolicy, Principal, Role
from tests.directory.ldap_clients import connect, is_samba

OU = "OU=Corp,DC=contoso,DC=com"
BASE_DN = "DC=contoso,DC=com"
DIRSYNC = "1.2.840.113556.1.4.841"
CONTACT = ["top", "person", "organizationalPerson", "contact"]
INSUFFICIENT, UNWILLING = 50, 53


def sync(conn, flt: str, cookie=None, attributes=None, object_security=False, base=BASE_DN):
    """Every entry of one DirSync round (all its pages) and the cookie it ends with."""
    ds = conn.extend.microsoft.dir_sync(
        base, flt, attributes=attributes or ["*"], cookie=cookie,
        object_security=object_security,
    )  # fmt: skip
    got = []
    while ds.more_results:
        got += [r for r in ds.loop() if r["type"] == "searchResEntry"]
    return got, ds.cookie


def plain_dn(dn: str) -> str:
    """The DN of an entry ldap3's DirSync returns, without the extended DN's <GUID=...>; part
    (ldap3 sends the extended DN control with every DirSync)."""
    return normalize_dn(dn.rsplit(">;", 1)[-1])


def by_guid(entries, guid: bytes) -> list[dict]:
    return [e for e in entries if e["raw_attributes"].get("objectGUID") == [guid]]


def guid_of(conn, dn: str) -> bytes:
    assert conn.search(dn, "(objectClass=*)", BASE, attributes=["objectGUID"])
    return conn.response[0]["raw_attributes"]["objectGUID"][0]


@pytest.mark.ad_only("DirSync")
def test_dirsync_returns_what_changed_since_the_cookie(fresh_directory):
    conn = connect(fresh_directory)
    dn = f"CN=Sync Contact,{OU}"
    assert conn.add(dn, CONTACT, {"sn": "Contact", "description": "first"}), conn.result
    guid = guid_of(conn, dn)
    flt = "(objectClass=contact)"
    first, cookie = sync(conn, flt)
    (entry,) = by_guid(first, guid)
    raw = entry["raw_attributes"]
    assert raw["sn"] == [b"Contact"] and raw["description"] == [b"first"]
    assert raw["instanceType"] == [b"4"] and raw["parentGUID"] == [guid_of(conn, OU)]
    assert "uSNChanged" not in raw and "whenChanged" not in raw  # not replicated
    # Nothing changed: nothing returned.
    again, cookie = sync(conn, flt, cookie)
    assert by_guid(again, guid) == []
    # One attribute changed: that one, with objectGUID and instanceType, and nothing else.
    assert conn.modify(dn, {"description": [(MODIFY_REPLACE, ["second"])]}), conn.result
    delta, cookie = sync(conn, flt, cookie)
    (entry,) = by_guid(delta, guid)
    raw = entry["raw_attributes"]
    assert raw["description"] == [b"second"] and raw["objectGUID"] == [guid]
    assert "sn" not in raw and "cn" not in raw
    # A removed attribute comes back with no values.
    assert conn.modify(dn, {"description": [(MODIFY_DELETE, [])]}), conn.result
    delta, cookie = sync(conn, flt, cookie)
    (entry,) = by_guid(delta, guid)
    assert "description" in entry["raw_attributes"]
    assert entry["raw_attributes"]["description"] in (None, [])
    # A delete comes back as the tombstone, without the show-deleted control of its own.
    assert conn.delete(dn), conn.result
    delta, cookie = sync(conn, flt, cookie)
    (entry,) = by_guid(delta, guid)
    assert entry["raw_attributes"]["isDeleted"] == [b"TRUE"]
    assert "Deleted Objects" in entry["dn"]


@pytest.mark.ad_only("DirSync")
def test_dirsync_needs_the_replication_right_or_object_security(fresh_directory):
    admin, reader = connect(fresh_directory), connect(fresh_directory, "reader")
    flt = "(objectClass=organizationalUnit)"
    with pytest.raises(LDAPExtensionError):  # ldap3: "error ... in DirSync"
        sync(reader, flt)
    assert reader.result["result"] == INSUFFICIENT
    got, _cookie = sync(reader, flt, object_security=True)  # what the reader may read
    assert any(plain_dn(e["dn"]) == normalize_dn(OU) for e in got)
    # Only a partition's head: below it, no right holds (50); with object security, 53.
    with pytest.raises(LDAPExtensionError):
        sync(admin, flt, base=OU)
    assert admin.result["result"] == INSUFFICIENT
    with pytest.raises(LDAPExtensionError):
        sync(admin, flt, base=OU, object_security=True)
    assert admin.result["result"] == UNWILLING


@pytest.mark.ad_only("DirSync")
def test_writeback_account_has_no_replication_right_by_default(fresh_directory):
    conn = connect(fresh_directory, "writeback")
    with pytest.raises(LDAPExtensionError):
        sync(conn, "(objectClass=organizationalUnit)")
    assert conn.result["result"] == INSUFFICIENT
    if not is_samba(fresh_directory):
        assert conn.result["message"].startswith("00002105: SecErr")  # DRA access denied


def test_the_writeback_replication_right_is_a_setting():
    """Cloud Sync's installer may grant its gMSA the password hash sync rights (Replicating
    Directory Changes): `AccessPolicy.writeback_replicates`, off by default."""
    gmsa = Principal("CN=gmsa", "cn=gmsa", "gmsa$", Role.WRITEBACK)
    assert not AccessPolicy().may_replicate(gmsa)
    assert AccessPolicy(writeback_replicates=True).may_replicate(gmsa)
    reader = Principal("CN=r", "cn=r", "r", Role.READER)
    assert not AccessPolicy(writeback_replicates=True).may_replicate(reader)


def _dirsync_value(flags: int, max_bytes: int, cookie: bytes) -> bytes:
    # DirSyncRequestValue ::= SEQUENCE { Flags INTEGER, MaxBytes INTEGER, Cookie OCTET STRING },
    # written out by hand: the test encodes the request independently of the server's reader.
    def integer(n: int) -> bytes:
        body = n.to_bytes(max(1, (n.bit_length() + 8) // 8), "big", signed=True)
        return bytes((0x02, len(body))) + body

    octets = (
        bytes((0x04, len(cookie))) + cookie
        if len(cookie) < 128
        else (bytes((0x04, 0x81, len(cookie))) + cookie)
    )
    body = integer(flags) + integer(max_bytes) + octets
    return bytes((0x30, len(body))) + body


class _RawResponse(ResponseControl):
    """The DirSync response control as it came (python-ldap has no class for it)."""

    controlType = DIRSYNC

    def decodeControlValue(self, encodedControlValue):
        self.raw = encodedControlValue


def _response(ctrls) -> tuple[int, bytes]:
    (value,) = [c.raw for c in ctrls if c.controlType == DIRSYNC]
    assert value[0] == 0x30
    pos = 2
    more_len = value[pos + 1]
    more = int.from_bytes(value[pos + 2 : pos + 2 + more_len], "big")
    pos += 2 + more_len
    pos += 2 + value[pos + 1]  # the unused INTEGER
    assert value[pos] == 0x04
    size = value[pos + 1]
    start = pos + 2
    if size & 0x80:
        n = size & 0x7F
        size = int.from_bytes(value[start : start + n], "big")
        start += n
    return more, value[start : start + size]


@pytest.mark.ad_only("DirSync")
def test_python_ldap_reads_dirsync_with_a_raw_control(fresh_directory):
    ep = fresh_directory.endpoints
    user, password = ep.account("admin")
    pl = ldap.initialize(ep.ldap_url)
    pl.set_option(ldap.OPT_REFERRALS, 0)
    pl.simple_bind_s(user, password)
    flt = "(objectClass=organizationalUnit)"

    def call(cookie: bytes):
        value = _dirsync_value(0, 1 << 20, cookie)
        ctrl = LDAPControl(DIRSYNC, True, encodedControlValue=value)
        msgid = pl.search_ext(BASE_DN, ldap.SCOPE_SUBTREE, flt, ["*"], serverctrls=[ctrl])
        _type, data, _id, ctrls = pl.result3(msgid, resp_ctrl_classes={DIRSYNC: _RawResponse})
        more, new_cookie = _response(ctrls)
        return [d for d, _a in data if d], more, new_cookie

    first, more, cookie = call(b"")
    while more:  # a server may answer in several pages
        page, more, cookie = call(cookie)
        first += page
    assert normalize_dn(OU) in {normalize_dn(d) for d in first}
    connect(fresh_directory).modify(OU, {"description": [(MODIFY_REPLACE, ["moved on"])]})
    after, _more, _cookie = call(cookie)
    assert [normalize_dn(d) for d in after] == [normalize_dn(OU)]
