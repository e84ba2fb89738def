"""Modify, add, delete and modifyDN over TCP with ldap3: AD's result codes and the ACL."""

from __future__ import annotations

from ldap3 import BASE, MODIFY_ADD, MODIFY_DELETE, MODIFY_REPLACE

from tests.directory.ldap_clients import connect


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


def test_writeback_account_writes_its_attributes(fresh_directory, tenant):
    conn = connect(fresh_directory, "writeback")
    user = remote_user(tenant)
    before = usn(conn, user.dn)
    assert conn.modify(
        user.dn,
        {
            "extensionAttribute1": [(MODIFY_REPLACE, ["Cost centre 42"])],
            "proxyAddresses": [(MODIFY_ADD, [f"smtp:extra.{user.mail_nickname}@contoso.com"])],
            "msExchExtensionCustomAttribute1": [(MODIFY_REPLACE, ["a", "b"])],
        },
    ), conn.result
    got = read(
        conn,
        user.dn,
        "extensionAttribute1",
        "proxyAddresses",
        "uSNChanged",
        "msExchExtensionCustomAttribute1",
        "whenChanged",
    )
    assert got["extensionAttribute1"] == [b"Cost centre 42"]
    assert f"smtp:extra.{user.mail_nickname}@contoso.com".encode() in got["proxyAddresses"]
    assert sorted(got["msExchExtensionCustomAttribute1"]) == [b"a", b"b"]
    assert int(got["uSNChanged"][0]) > before
    assert got["whenChanged"][0].decode() > user.when_changed
    # The new address is findable at once: the index followed the write.
    conn.search(
        "DC=contoso,DC=com", f"(proxyAddresses=smtp:extra.{user.mail_nickname}@contoso.com)"
    )
    assert [e.entry_dn for e in conn.entries] == [user.dn]


def test_writeback_account_is_denied_everything_else(fresh_directory, tenant):
    conn = connect(fresh_directory, "writeback")
    user = remote_user(tenant)
    assert not conn.modify(user.dn, {"displayName": [(MODIFY_REPLACE, ["Nope"])]})
    assert conn.result["result"] == 50
    assert "INSUFF_ACCESS_RIGHTS" in conn.result["message"]
    # A writeback attribute together with a forbidden one: nothing is written.
    assert not conn.modify(
        user.dn,
        {"extensionAttribute2": [(MODIFY_REPLACE, ["x"])], "department": [(MODIFY_REPLACE, ["y"])]},
    )
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


def test_modify_result_codes_follow_ad(fresh_directory, tenant):
    conn = connect(fresh_directory)
    user = remote_user(tenant, 1)
    primary = f"SMTP:{user.mail}"
    cases = [
        ({"proxyAddresses": [(MODIFY_ADD, [primary.lower()])]}, 20),  # case-insensitive duplicate
        ({"proxyAddresses": [(MODIFY_DELETE, ["smtp:not-there@contoso.com"])]}, 16),
        ({"extensionAttribute15": [(MODIFY_DELETE, [])]}, 16),
        ({"mail": [(MODIFY_ADD, ["second@contoso.com"])]}, 19),  # single-valued
        ({"extensionAttribute3": [(MODIFY_REPLACE, ["x" * 1025])]}, 19),  # over rangeUpper
        ({"noSuchAttribute": [(MODIFY_REPLACE, ["x"])]}, 17),
        ({"userAccountControl": [(MODIFY_REPLACE, ["lots"])]}, 21),
        ({"uSNChanged": [(MODIFY_REPLACE, ["1"])]}, 19),  # system-only
    ]
    for change, code in cases:
        assert not conn.modify(user.dn, change), change
        assert conn.result["result"] == code, (change, conn.result)
    assert not conn.modify(
        "CN=Ghost,OU=Corp,DC=contoso,DC=com", {"extensionAttribute1": [(MODIFY_REPLACE, ["x"])]}
    )
    assert conn.result["result"] == 32 and conn.result["dn"] == "OU=Corp,DC=contoso,DC=com"


def test_modify_is_atomic(fresh_directory, tenant):
    conn = connect(fresh_directory)
    user = remote_user(tenant, 2)
    before = read(conn, user.dn)
    assert not conn.modify(
        user.dn,
        {
            "extensionAttribute1": [(MODIFY_REPLACE, ["changed"])],
            "mail": [(MODIFY_ADD, ["second@contoso.com"])],
        },
    )
    assert read(conn, user.dn) == before


def test_equal_write_changes_nothing(fresh_directory, tenant):
    conn = connect(fresh_directory)
    user = remote_user(tenant, 3)
    before = usn(conn, user.dn)
    assert conn.modify(user.dn, {"mail": [(MODIFY_REPLACE, [user.mail])]})
    assert usn(conn, user.dn) == before


def test_usn_is_domain_wide_and_increasing(fresh_directory, tenant):
    conn = connect(fresh_directory)
    a, b = remote_user(tenant, 4), remote_user(tenant, 5)
    conn.modify(a.dn, {"extensionAttribute9": [(MODIFY_REPLACE, ["1"])]})
    conn.modify(b.dn, {"extensionAttribute9": [(MODIFY_REPLACE, ["2"])]})
    assert usn(conn, b.dn) == usn(conn, a.dn) + 1
    conn.search("", "(objectClass=*)", BASE, attributes=["highestCommittedUSN"])
    assert int(conn.response[0]["raw_attributes"]["highestCommittedUSN"][0]) == usn(conn, b.dn)
    conn.search("DC=contoso,DC=com", f"(uSNChanged>={usn(conn, a.dn)})", attributes=["cn"])
    assert {e.entry_dn for e in conn.entries} == {a.dn, b.dn}


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
    assert len(got["objectGUID"][0]) == 16
    assert got["objectCategory"] == [b"CN=Person,CN=Schema,CN=Configuration,DC=contoso,DC=com"]
    assert got["cn"] == [b"Test, User"]
    assert not conn.add(dn, ["top", "user"]) and conn.result["result"] == 68
    assert not conn.add(f"CN=x,OU=Nowhere,{ou}", ["top", "user"]) and conn.result["result"] == 32
    assert not conn.add(f"CN=y,{ou}", ["top", "spaceship"]) and conn.result["result"] == 65
    assert not conn.delete(ou) and conn.result["result"] == 66
    # Rename and move: the entry keeps its GUID and stays findable by its indexed values.
    assert conn.modify_dn(dn, "CN=Renamed User", new_superior="OU=Corp,DC=contoso,DC=com"), (
        conn.result
    )
    new_dn = "CN=Renamed User,OU=Corp,DC=contoso,DC=com"
    conn.search("DC=contoso,DC=com", "(sAMAccountName=tuser)", attributes=["cn", "objectGUID"])
    assert [e.entry_dn for e in conn.entries] == [new_dn]
    assert conn.entries[0].cn.value == "Renamed User"
    assert conn.response[0]["raw_attributes"]["objectGUID"] == got["objectGUID"]
    assert conn.delete(ou), conn.result
    assert conn.delete(new_dn), conn.result
    assert not conn.search(new_dn, "(objectClass=*)", BASE) and conn.result["result"] == 32


def test_moving_an_ou_moves_its_children(fresh_directory, tenant):
    conn = connect(fresh_directory)
    user = next(u for u in tenant.ad_users if ",OU=London," in u.dn)
    old_ou = "OU=London,OU=Users,OU=Corp,DC=contoso,DC=com"
    assert conn.modify_dn(old_ou, "OU=Londres"), conn.result
    new_dn = user.dn.replace("OU=London,", "OU=Londres,")
    assert conn.search(new_dn, "(objectClass=*)", BASE)
    conn.search("DC=contoso,DC=com", f"(sAMAccountName={user.sam_account_name})")
    assert [e.entry_dn for e in conn.entries] == [new_dn]
    assert not conn.search(user.dn, "(objectClass=*)", BASE)


def test_compare(fresh_directory, tenant):
    conn = connect(fresh_directory, "reader")
    user = remote_user(tenant)
    assert conn.compare(user.dn, "mail", user.mail.upper()) is True
    assert conn.compare(user.dn, "mail", "other@contoso.com") is False
