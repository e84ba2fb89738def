"""The store's bookkeeping: indexes, the USN log and LDIF round trips stay consistent."""

from __future__ import annotations

import pytest

from harness.core.adschema import DEFAULT_SCHEMA
from harness.core.dn import normalize_dn
from harness.core.ldapresult import LdapError
from harness.tenant import TenantSpec, generate
from harness.tenant.files import write_tenant
from mockservers.directory.ldif_io import LdifError, dump_ldif, load_ldif
from mockservers.directory.seed import seed_directory
from mockservers.directory.store import MOD_ADD, MOD_DELETE, MOD_REPLACE

SAM = DEFAULT_SCHEMA.get("sAMAccountName")
PROXY = DEFAULT_SCHEMA.get("proxyAddresses")


@pytest.fixture
def seeded():
    t = generate(TenantSpec(mailboxes=120, seed=5, special_cn_fraction=0.2, non_ascii_fraction=0.2))
    return t, seed_directory(t).store


def test_usn_log_follows_every_change_through_compaction(seeded):
    tenant, store = seeded
    users = [store.get(normalize_dn(u.dn)) for u in tenant.ad_users[:50]]
    start = store.highest_usn
    for round_ in range(60):  # 3,000 changes: the log compacts several times
        for e in users:
            store.modify(e.ndn, [(MOD_REPLACE, "extensionAttribute5", [f"r{round_}".encode()])])
    live = store.usn_range(start + 1, None)
    assert sorted(e.ndn for e in live) == sorted(e.ndn for e in users)
    assert store.usn_log_size < 3000  # superseded items were dropped
    last = store.usn_range(store.highest_usn, store.highest_usn)
    assert [e.ndn for e in last] == [users[-1].ndn]


def test_usn_ranges_are_right_in_the_middle_of_a_compaction(seeded):
    """The log compacts a few items per write: at every point of it, a USN range holds
    exactly the entries whose current uSNChanged is in it (against a scan of the store)."""
    tenant, store = seeded
    users = [store.get(normalize_dn(u.dn)) for u in tenant.ad_users[:40]]
    start = store.highest_usn
    mid_compaction = 0
    for round_ in range(120):
        for e in users:
            store.modify(e.ndn, [(MOD_REPLACE, "extensionAttribute6", [f"r{round_}".encode()])])
            mid_compaction += bool(store._old_keys)
        if round_ % 7:
            continue
        for low, high in ((start + 1, None), (None, start), (start + 50, store.highest_usn - 3)):
            want = {
                e.ndn
                for e in store.entries.values()
                if (u := int(e.attrs.get("uSNChanged", (b"0",))[0]))
                and (low is None or u >= low)
                and (high is None or u <= high)
            }
            got = [e.ndn for e in store.usn_range(low, high)]
            assert sorted(got) == sorted(want) and len(got) == len(set(got))
    assert mid_compaction > 0  # the checks above ran while compactions were under way
    assert store.usn_log_size < 3 * 1024 + 2 * len(store.entries)  # 1024: the least it waits


def test_indexes_follow_modify_rename_and_delete(seeded):
    tenant, store = seeded
    user = tenant.ad_users[3]
    e = store.get(normalize_dn(user.dn))
    old = f"smtp:{user.mail}".casefold()
    store.modify(e.ndn, [(MOD_DELETE, "proxyAddresses", [f"smtp:{user.mail}".encode()]),
                         (MOD_ADD, "proxyAddresses", [b"smtp:renamed@contoso.com"])])  # fmt: skip
    assert list(store.lookup(PROXY, old)) == []
    assert list(store.lookup(PROXY, "smtp:renamed@contoso.com")) == [e]
    store.rename(e.ndn, "CN=Moved", False, "OU=Corp,DC=contoso,DC=com")
    assert list(store.lookup(SAM, user.sam_account_name.casefold())) == [e]
    assert e.dn == "CN=Moved,OU=Corp,DC=contoso,DC=com"
    store.delete(e.ndn)
    assert list(store.lookup(SAM, user.sam_account_name.casefold())) == []
    assert store.get(e.ndn) is None


def test_rdn_value_cannot_be_modified_away(seeded):
    tenant, store = seeded
    e = store.get(normalize_dn(tenant.ad_users[0].dn))
    with pytest.raises(LdapError) as err:
        store.modify(e.ndn, [(MOD_REPLACE, "cn", [b"Something Else"])])
    assert err.value.code == 67


def test_ldif_dump_and_load_round_trip(tmp_path, seeded):
    tenant, store = seeded
    store.modify(
        normalize_dn(tenant.ad_users[1].dn),
        [(MOD_REPLACE, "extensionAttribute1", ["Zürich ".encode()])],
    )
    dump_ldif(store, tmp_path / "d.ldif")
    again = load_ldif(tmp_path / "d.ldif").store
    assert {e.ndn: e.attrs for e in store.walk()} == {e.ndn: e.attrs for e in again.walk()}
    assert again.highest_usn == store.highest_usn


def test_generated_ldif_loads_like_the_tenant(tmp_path):
    tenant = generate(
        TenantSpec(mailboxes=80, seed=9, special_cn_fraction=0.3, non_ascii_fraction=0.3)
    )
    write_tenant(tenant, tmp_path)
    from_file = load_ldif(tmp_path / "directory.ldif").store
    direct = seed_directory(tenant).store

    def view(store):
        # OUs get a fresh objectGUID when loaded; everything else must be identical.
        return {
            e.ndn: {
                k: v
                for k, v in e.attrs.items()
                if not (k == "objectGUID" and e.ndn.startswith("ou="))
            }
            for e in store.walk()
            if "ou=corp" in e.ndn
        }

    assert view(from_file) == view(direct)


def test_load_errors_name_file_and_line(tmp_path):
    bad = tmp_path / "x.ldif"
    bad.write_text("dn: DC=contoso,DC=com\nobjectClass: top\n\n continuation without start\n")
    with pytest.raises(LdifError, match=r"x.ldif:4: continuation"):
        load_ldif(bad)
    bad.write_text("dn: DC=contoso,DC=com\nchangetype: add\nobjectClass: top\n")
    with pytest.raises(LdifError, match=r"x.ldif:2: change records"):
        load_ldif(bad)


def test_principals_get_their_account_type_on_load_and_on_add(tmp_path, seeded):
    tenant, store = seeded
    user = store.entries[normalize_dn(tenant.ad_users[0].dn)]
    assert user.attrs["sAMAccountType"] == (b"805306368",)
    assert user.attrs["primaryGroupID"] == (b"513",)
    # A dump keeps them; an object added after reloading it is stamped as AD stamps it.
    dump_ldif(store, tmp_path / "d.ldif")
    again = load_ldif(tmp_path / "d.ldif").store
    base = f"OU=Corp,{tenant.base_dn}"
    person = [b"top", b"person", b"organizationalPerson", b"user"]
    e = again.add(f"CN=New Hire,{base}", [("objectClass", person)])
    assert e.attrs["sAMAccountType"] == (b"805306368",) and e.attrs["primaryGroupID"] == (b"513",)
    pc = again.add(
        f"CN=PC9,{base}",
        [("objectClass", [*person, b"computer"]), ("userAccountControl", [b"4096"])],
    )
    assert pc.attrs["sAMAccountType"] == (b"805306369",) and pc.attrs["primaryGroupID"] == (b"515",)
    group = again.add(
        f"CN=Staff,{base}", [("objectClass", [b"top", b"group"]), ("groupType", [b"-2147483644"])]
    )
    assert group.attrs["sAMAccountType"] == (b"536870912",)  # a domain-local security group
    assert "primaryGroupID" not in group.attrs
    contact = again.add(f"CN=Ext,{base}", [("objectClass", [b"top", b"contact"])])
    assert "sAMAccountType" not in contact.attrs
    with pytest.raises(LdapError):  # the directory's, not the client's
        again.add(f"CN=Typed,{base}", [("objectClass", person), ("sAMAccountType", [b"1"])])
