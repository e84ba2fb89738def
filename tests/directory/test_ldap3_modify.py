"""Modify, add, delete and modifyDN over TCP with ldap3: AD's result codes and the ACL.

Every test runs on the fake AD, on OpenLDAP slapd and on a Samba AD DC (see tests/conftest.py),
each on a directory of its own; the markers name where AD and slapd differ on purpose, and where
Samba answers otherwise.
"""

from __future__ import annotations

import pytest
from ldap3 import BASE, MODIFY_ADD, MODIFY_DELETE, MODIFY_REPLACE

from harness.core.dn import normalize_dn
from tests.directory.ldap_clients import connect, found, is_ad, is_samba, ndns


def read(conn, dn, *attrs):
    assert conn.search(dn, "(objectClass=*)", BASE, attributes=list(attrs) or ["*"])
    return conn.response[0]["raw_attributes"]


def usn(conn, dn) -> int:
    return int(read(conn, dn, "uSNChanged")["uSNChanged"][0])


def remote_user(tenant, n=0):
    return [
        u
        for u in tenant.ad_users
        if u.target_address and u.dn.endswith("OU=Corp,DC=contoso,DC=com")
    ][n]


def lone_user(tenant, n=0):
    """The n-th remote user that no group of the tenant names: its memberOf starts empty."""
    named = {m for g in tenant.groups for m in g.members}
    remote = (
        u
        for u in tenant.ad_users
        if u.target_address and u.dn.endswith("OU=Corp,DC=contoso,DC=com")
    )
    return [u for u in remote if u.dn not in named][n]


def test_writeback_account_writes_its_attributes(fresh_directory, tenant):
    conn = connect(fresh_directory, "writeback")
    user = remote_user(tenant)
    assert conn.modify(
        user.dn,
        {
            "extensionAttribute1": [(MODIFY_REPLACE, ["Cost centre 42"])],
            "proxyAddresses": [(MODIFY_ADD, [f"smtp:extra.{user.mail_nickname}@contoso.com"])],
            "msExchExtensionCustomAttribute1": [(MODIFY_REPLACE, ["a", "b"])],
        },
    ), conn.result
    got = read(
        conn, user.dn, "extensionAttribute1", "proxyAddresses", "msExchExtensionCustomAttribute1"
    )
    assert got["extensionAttribute1"] == [b"Cost centre 42"]
    assert f"smtp:extra.{user.mail_nickname}@contoso.com".encode() in got["proxyAddresses"]
    assert set(got["proxyAddresses"]) > {a.encode() for a in user.proxy_addresses}
    assert sorted(got["msExchExtensionCustomAttribute1"]) == [b"a", b"b"]
    # The new address is findable at once: the index followed the write.
    conn.search(
        "DC=contoso,DC=com", f"(proxyAddresses=smtp:extra.{user.mail_nickname}@contoso.com)"
    )
    assert found(conn) == ndns([user.dn])


def change_marks(run, conn, dn) -> tuple[bytes, ...]:
    """What a directory changes on every write: AD's uSNChanged and whenChanged, slapd's
    entryCSN and modifyTimestamp."""
    names = ("uSNChanged", "whenChanged") if is_ad(run) else ("entryCSN", "modifyTimestamp")
    got = read(conn, dn, *names)
    return tuple(got[n][0] for n in names)


@pytest.mark.ad_differs("USN and whenChanged maintenance")
def test_a_write_bumps_usn_and_when_changed(fresh_directory, tenant):
    conn = connect(fresh_directory, "writeback")
    user = remote_user(tenant)
    before = read(conn, user.dn, "uSNChanged", "whenChanged")
    marks = change_marks(fresh_directory, conn, user.dn)
    assert conn.modify(user.dn, {"extensionAttribute1": [(MODIFY_REPLACE, ["Cost centre 42"])]})
    after = change_marks(fresh_directory, conn, user.dn)
    assert after[0] != marks[0] and after[1] >= marks[1]
    got = read(conn, user.dn, "uSNChanged", "whenChanged")
    if is_ad(fresh_directory):
        assert int(got["uSNChanged"][0]) > int(before["uSNChanged"][0])
        assert got["whenChanged"][0].decode() > user.when_changed
    else:  # slapd leaves AD's attributes as loaded
        assert got == before


@pytest.mark.ad_differs("AD diagnostic messages")
@pytest.mark.samba_differs("diagnostic texts", branches=True)
def test_writeback_account_is_denied_everything_else(fresh_directory, tenant):
    conn = connect(fresh_directory, "writeback")
    user = remote_user(tenant)
    assert not conn.modify(user.dn, {"displayName": [(MODIFY_REPLACE, ["Nope"])]})
    assert conn.result["result"] == 50
    if is_samba(fresh_directory):
        assert conn.result["message"].startswith("00002098: ")
    elif is_ad(fresh_directory):
        assert "INSUFF_ACCESS_RIGHTS" in conn.result["message"]
    # A writeback attribute together with a forbidden one: nothing is written.
    assert not conn.modify(
        user.dn,
        {"extensionAttribute2": [(MODIFY_REPLACE, ["x"])], "department": [(MODIFY_REPLACE, ["y"])]},
    )
    assert conn.result["result"] == 50
    assert b"x" not in read(conn, user.dn).get("extensionAttribute2", [])
    service = next(u for u in tenant.ad_users if "OU=Service Accounts" in u.dn)
    assert not conn.modify(service.dn, {"extensionAttribute1": [(MODIFY_REPLACE, ["x"])]})
    assert conn.result["result"] == 50
    assert not conn.delete(user.dn) and conn.result["result"] == 50
    assert (
        not conn.add("CN=New,OU=Corp,DC=contoso,DC=com", ["top", "user"])
        and conn.result["result"] == 50
    )


def test_reader_cannot_write(fresh_directory, tenant):
    conn = connect(fresh_directory, "reader")
    assert not conn.modify(
        remote_user(tenant).dn, {"extensionAttribute1": [(MODIFY_REPLACE, ["x"])]}
    )
    assert conn.result["result"] == 50


def test_modify_result_codes(fresh_directory, tenant):
    conn = connect(fresh_directory)
    user = remote_user(tenant, 1)
    primary = f"SMTP:{user.mail}"
    cases = [
        ({"proxyAddresses": [(MODIFY_ADD, [primary])]}, 20),
        ({"proxyAddresses": [(MODIFY_DELETE, ["smtp:not-there@contoso.com"])]}, 16),
        ({"extensionAttribute15": [(MODIFY_DELETE, [])]}, 16),
        ({"msExchHideFromAddressLists": [(MODIFY_REPLACE, ["maybe"])]}, 21),  # not a boolean
    ]
    for change, code in cases:
        assert not conn.modify(user.dn, change), change
        assert conn.result["result"] == code, (change, conn.result)
    assert not conn.modify(
        "CN=Ghost,OU=Corp,DC=contoso,DC=com", {"extensionAttribute1": [(MODIFY_REPLACE, ["x"])]}
    )
    assert conn.result["result"] == 32


@pytest.mark.ad_differs("unknown attribute on write")
@pytest.mark.samba_differs("value checks on modify", branches=True)
def test_values_are_checked_against_the_schema(fresh_directory, tenant):
    conn = connect(fresh_directory)
    user = remote_user(tenant, 1)
    cases = [
        # proxyAddresses is a case-insensitive Unicode string (2.5.5.12)
        ({"proxyAddresses": [(MODIFY_ADD, [f"smtp:{user.mail}"])]}, 20, 0),
        # An attribute the schema lacks: AD's noSuchAttribute (Samba's tests, written to pass
        # on Windows); slapd's undefinedAttributeType.
        ({"noSuchAttribute": [(MODIFY_REPLACE, ["x"])]}, 16 if is_ad(fresh_directory) else 17, 16),
        ({"userAccountControl": [(MODIFY_REPLACE, ["lots"])]}, 21, 0),  # not an integer
    ]
    for change, code, samba in cases:
        conn.modify(user.dn, change)
        want = samba if is_samba(fresh_directory) else code
        assert conn.result["result"] == want, (change, conn.result)


@pytest.mark.samba_differs("matched DN")
def test_a_missing_object_names_the_matched_dn(fresh_directory):
    conn = connect(fresh_directory)
    ou = "OU=Corp,DC=contoso,DC=com"
    assert not conn.modify(f"CN=Ghost,{ou}", {"extensionAttribute1": [(MODIFY_REPLACE, ["x"])]})
    assert conn.result["result"] == 32
    assert normalize_dn(conn.result["dn"]) == normalize_dn(ou)
    assert not conn.add(f"CN=x,OU=Nowhere,{ou}", ["top", "user"])
    assert conn.result["result"] == 32
    assert normalize_dn(conn.result["dn"]) == normalize_dn(ou)


@pytest.mark.ad_differs("single-valued and size constraints")
@pytest.mark.samba_differs("single-valued and size constraints", branches=True)
def test_single_value_and_range_upper(fresh_directory, tenant):
    conn = connect(fresh_directory)
    user = remote_user(tenant, 1)
    cases = [
        # A second value of a single-valued attribute: attributeOrValueExists ([MS-ADTS] leaves
        # it open; Samba's tests, written to pass on Windows, expect 20).
        ({"mail": [(MODIFY_ADD, ["second@contoso.com"])]}, 20, 20),
        ({"mail": [(MODIFY_REPLACE, ["a@contoso.com", "b@contoso.com"])]}, 20, 20),
        ({"cn": [(MODIFY_ADD, ["Second CN"])]}, 67, 67),  # [MS-ADTS] 3.1.1.3.1.2.1: notAllowedOnRDN
        # Over rangeUpper (1024): constraintViolation; Samba's own test says 19 "per Windows"
        # and lists its 21 as a known failure.
        ({"extensionAttribute3": [(MODIFY_REPLACE, ["x" * 1025])]}, 19, 21),
    ]
    for change, ad, samba in cases:
        # slapd's standard schema makes mail and cn multi-valued and enforces no sizes.
        want = (samba if is_samba(fresh_directory) else ad) if is_ad(fresh_directory) else 0
        conn.modify(user.dn, change)
        assert conn.result["result"] == want, (change, conn.result)
    # An add with two values for a single-valued attribute: constraintViolation.
    conn.add(
        "CN=Two Mails,OU=Corp,DC=contoso,DC=com",
        ["top", "contact"],
        {"mail": ["a@x.com", "b@x.com"]},
    )
    assert conn.result["result"] == (19 if is_ad(fresh_directory) else 0), conn.result


@pytest.mark.ad_differs("system-only attributes")
def test_system_only_attributes(fresh_directory, tenant):
    conn = connect(fresh_directory)
    user = remote_user(tenant, 1)
    for change in (
        {"uSNChanged": [(MODIFY_REPLACE, ["1"])]},
        {"whenChanged": [(MODIFY_REPLACE, ["20200101000000.0Z"])]},
        {"objectGUID": [(MODIFY_REPLACE, [bytes(16)])]},
    ):
        # AD: constraintViolation, the directory maintains them; slapd: user attributes (the
        # project's slapd schema lets slapadd load them).
        conn.modify(user.dn, change)
        assert conn.result["result"] == (19 if is_ad(fresh_directory) else 0), conn.result


@pytest.mark.ad_differs("removing the RDN value")
def test_the_rdn_value_stays(fresh_directory, tenant):
    conn = connect(fresh_directory)
    user = remote_user(tenant, 1)
    assert not conn.modify(user.dn, {"cn": [(MODIFY_REPLACE, ["Someone Else"])]})
    # AD: notAllowedOnRDN; slapd: namingViolation.
    assert conn.result["result"] == (67 if is_ad(fresh_directory) else 64)
    assert read(conn, user.dn, "cn")["cn"] == [user.cn.encode()]


def test_modify_is_atomic(fresh_directory, tenant):
    conn = connect(fresh_directory)
    user = remote_user(tenant, 2)
    before = read(conn, user.dn)
    assert not conn.modify(
        user.dn,
        {
            "extensionAttribute1": [(MODIFY_REPLACE, ["changed"])],
            "proxyAddresses": [(MODIFY_ADD, [user.proxy_addresses[0]])],  # exists: 20
        },
    )
    assert conn.result["result"] == 20
    assert read(conn, user.dn) == before


@pytest.mark.ad_differs("USN and whenChanged maintenance")
def test_equal_write_changes_nothing(fresh_directory, tenant):
    conn = connect(fresh_directory)
    user = remote_user(tenant, 3)
    before = change_marks(fresh_directory, conn, user.dn)
    assert conn.modify(user.dn, {"mail": [(MODIFY_REPLACE, [user.mail])]})
    after = change_marks(fresh_directory, conn, user.dn)
    if is_ad(fresh_directory):  # AD records no change
        assert after == before
    else:  # slapd records one (a new entryCSN) even though no value changed
        assert after[0] != before[0]


@pytest.mark.ad_only("USN and whenChanged maintenance")
def test_usn_is_domain_wide_and_increasing(fresh_directory, tenant):
    conn = connect(fresh_directory)
    a, b = remote_user(tenant, 4), remote_user(tenant, 5)
    conn.modify(a.dn, {"extensionAttribute9": [(MODIFY_REPLACE, ["1"])]})
    conn.modify(b.dn, {"extensionAttribute9": [(MODIFY_REPLACE, ["2"])]})
    assert usn(conn, b.dn) == usn(conn, a.dn) + 1
    conn.search("", "(objectClass=*)", BASE, attributes=["highestCommittedUSN"])
    assert int(conn.response[0]["raw_attributes"]["highestCommittedUSN"][0]) == usn(conn, b.dn)
    conn.search("DC=contoso,DC=com", f"(uSNChanged>={usn(conn, a.dn)})", attributes=["cn"])
    assert found(conn) == ndns([a.dn, b.dn])


def test_admin_adds_renames_and_deletes(fresh_directory):
    conn = connect(fresh_directory)
    ou = "OU=Lab,OU=Corp,DC=contoso,DC=com"
    assert conn.add(ou, ["top", "organizationalUnit"]), conn.result
    dn = f"CN=Test\\, User,{ou}"
    assert conn.add(
        dn,
        ["top", "person", "organizationalPerson", "user"],
        {"sAMAccountName": "tuser", "mail": "t.user@contoso.com"},
    ), conn.result
    got = read(conn, dn)
    assert got["cn"] == [b"Test, User"] and got["sAMAccountName"] == [b"tuser"]
    assert not conn.add(dn, ["top", "user"]) and conn.result["result"] == 68
    assert not conn.add(f"CN=x,OU=Nowhere,{ou}", ["top", "user"]) and conn.result["result"] == 32
    assert not conn.delete(ou) and conn.result["result"] == 66
    # Rename and move: the entry stays findable by its indexed values.
    assert conn.modify_dn(dn, "CN=Renamed User", new_superior="OU=Corp,DC=contoso,DC=com"), (
        conn.result
    )
    new_dn = "CN=Renamed User,OU=Corp,DC=contoso,DC=com"
    conn.search("DC=contoso,DC=com", "(sAMAccountName=tuser)", attributes=["cn", "mail"])
    assert found(conn) == ndns([new_dn])
    assert conn.entries[0].cn.value == "Renamed User"
    assert conn.entries[0].mail.value == "t.user@contoso.com"
    assert conn.delete(ou), conn.result
    assert conn.delete(new_dn), conn.result
    assert not conn.search(new_dn, "(objectClass=*)", BASE) and conn.result["result"] == 32


@pytest.mark.ad_differs("objects stamped on add")
def test_new_objects_get_a_guid_and_a_category(fresh_directory):
    conn = connect(fresh_directory)
    dn = "CN=Stamped,OU=Corp,DC=contoso,DC=com"
    assert conn.add(dn, ["top", "person", "organizationalPerson", "user"]), conn.result
    got = read(conn, dn)
    if is_ad(fresh_directory):  # the directory stamps both
        assert len(got["objectGUID"][0]) == 16
        assert got["objectCategory"] == [b"CN=Person,CN=Schema,CN=Configuration,DC=contoso,DC=com"]
    else:  # slapd stores what was sent; entryUUID is its own identifier
        assert "objectGUID" not in got and "objectCategory" not in got
        assert read(conn, dn, "entryUUID")["entryUUID"]
    # Moving keeps the identity.
    ident = "objectGUID" if is_ad(fresh_directory) else "entryUUID"
    before = read(conn, dn, ident)[ident]
    assert conn.modify_dn(dn, "CN=Stamped", new_superior="CN=Users,DC=contoso,DC=com")
    assert read(conn, "CN=Stamped,CN=Users,DC=contoso,DC=com", ident)[ident] == before


@pytest.mark.ad_only("security principal identity")
def test_new_principals_get_a_sid_and_an_account_type(fresh_directory):
    conn = connect(fresh_directory)
    base = "OU=Corp,DC=contoso,DC=com"
    made = {
        "CN=SID User": (["top", "person", "organizationalPerson", "user"], {}, b"805306368"),
        "CN=SID Group": (
            ["top", "group"],
            {"groupType": "-2147483646", "sAMAccountName": "sid-group"},  # global security
            b"268435456",
        ),
        "CN=SID Contact": (["top", "person", "organizationalPerson", "contact"], {}, None),
    }
    sids = set()
    for rdn, (classes, attrs, sam_type) in made.items():
        assert conn.add(f"{rdn},{base}", classes, attrs), (rdn, conn.result)
        got = read(conn, f"{rdn},{base}", "objectSid", "sAMAccountType")
        if sam_type is None:  # a contact is not a security principal
            assert not got.get("objectSid") and not got.get("sAMAccountType")
            continue
        assert got["sAMAccountType"] == [sam_type]
        sids.add(got["objectSid"][0])
    assert len(sids) == 2
    # The directory keeps them: a client cannot set the account type.
    conn.modify(f"CN=SID User,{base}", {"sAMAccountType": [(MODIFY_REPLACE, ["805306369"])]})
    assert conn.result["result"] in (19, 50, 53), conn.result


@pytest.mark.ad_differs("unknown objectClass on add")
def test_unknown_object_class_is_refused(fresh_directory):
    conn = connect(fresh_directory)
    assert not conn.add("CN=y,OU=Corp,DC=contoso,DC=com", ["top", "spaceship"])
    # AD: noSuchAttribute (Samba's tests, written to pass on Windows); slapd:
    # invalidAttributeSyntax (no such class).
    assert conn.result["result"] == (16 if is_ad(fresh_directory) else 21)


def test_moving_an_ou_moves_its_children(fresh_directory, tenant):
    conn = connect(fresh_directory)
    user = next(u for u in tenant.ad_users if ",OU=London," in u.dn)
    old_ou = "OU=London,OU=Users,OU=Corp,DC=contoso,DC=com"
    assert conn.modify_dn(old_ou, "OU=Londres"), conn.result
    new_dn = user.dn.replace("OU=London,", "OU=Londres,")
    assert conn.search(new_dn, "(objectClass=*)", BASE)
    conn.search("DC=contoso,DC=com", f"(sAMAccountName={user.sam_account_name})")
    assert found(conn) == ndns([new_dn])
    assert not conn.search(user.dn, "(objectClass=*)", BASE)
    assert conn.result["result"] == 32


def test_compare(fresh_directory, tenant):
    conn = connect(fresh_directory, "reader")
    user = remote_user(tenant)
    assert conn.compare(user.dn, "mail", user.mail.upper()) is True
    assert conn.compare(user.dn, "mail", "other@contoso.com") is False
