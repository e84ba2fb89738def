"""The two backends behind the `directory` fixtures: the same entries, and slapd required in CI."""

from __future__ import annotations

import pytest
from ldap3 import SUBTREE

from harness.core.adschema import DEFAULT_SCHEMA, Syntax
from harness.core.dn import normalize_dn
from mockservers.directory.seed import seed_directory
from mockservers.directory.subschema import subschema_dn
from mockservers.runtime import start_directory
from tests.directory.ldap_clients import connect
from tests.support import backends
from tests.support.backends import require_slapd, start_slapd

# The fake computes them; slapd holds neither (instanceType: where it is 4, the fake's is
# constructed, entry.WRITABLE_INSTANCE).
DERIVED = {"distinguishedname", "name", "instancetype"}
PASSWORDS = {"userpassword"}  # slapd keeps the accounts' passwords in the entries
# What the fake stamps, at random, on an object whose data has none (the directory's own
# objects, and the domain root and OUs, which the generator writes without them).
STAMPS = {"objectguid", "usncreated", "usnchanged", "whencreated", "whenchanged"}
# What the fake stamps on every security principal and slapd holds only where loaded (the
# "security principal identity" difference, test_ldap3_search.py).
IDENTITY = {"objectsid", "samaccounttype", "primarygroupid", "pwdlastset", "accountexpires"}
# The back links the fake makes from the tenant's groups, which slapd does not keep (the
# "linked attributes" difference, test_linked_attributes.py).
BACK_LINKS = {"memberof", "directreports"}


def dump(run, base: str, users: set[str]) -> dict[str, dict[str, list[bytes]]]:
    """Every entry below `base` as the admin reads it: normalised DN -> attribute -> values;
    without the stamps, except on the tenant's `users` (normalised DNs)."""
    conn = connect(run)
    out = {}
    for e in conn.extend.standard.paged_search(
        base, "(objectClass=*)", SUBTREE, attributes=["*"], paged_size=500, generator=True
    ):
        if e["type"] != "searchResEntry":  # AD refers to the partitions below the domain
            continue
        attrs = {}
        for name, values in e["raw_attributes"].items():
            if name.lower() in DERIVED | PASSWORDS | IDENTITY | BACK_LINKS:
                continue
            if name.lower() in STAMPS and normalize_dn(e["dn"]) not in users:
                continue
            t = DEFAULT_SCHEMA.get(name)
            if t is not None and t.syntax is Syntax.DN:
                values = [normalize_dn(v.decode()).encode() for v in values]
            attrs[name.lower()] = sorted(values)
        out[normalize_dn(e["dn"])] = attrs
    return out


def test_both_backends_hold_the_same_entries(tenant, slapd_contents):
    require_slapd()
    fake = start_directory(seed_directory(tenant))
    slapd = start_slapd(slapd_contents(tenant))
    try:
        base = fake.endpoints.base_dn
        users = {normalize_dn(u.dn) for u in tenant.ad_users}
        for partition in (base, f"CN=Configuration,{base}", f"CN=Schema,CN=Configuration,{base}"):
            a, b = dump(fake, partition, users), dump(slapd, partition, users)
            assert len(a) > (len(tenant.ad_users) if partition == base else 2)
            if partition.startswith("CN=Schema"):
                # X.500's dmd, which slapd knows by AD's name, needs these (see backends.py).
                schema = b[normalize_dn(partition)]
                assert schema.pop("dmdname") == [b"Schema"]
                schema["objectclass"].remove(b"extensibleObject")
                # The subschema entry: slapd publishes its own, cn=Subschema (test_subschema.py).
                del a[normalize_dn(subschema_dn(partition))]
            for attrs in b.values():  # OUs holding AD's attributes (see backends.py)
                if b"organizationalUnit" in attrs.get("objectclass", ()):
                    attrs["objectclass"] = [
                        c for c in attrs["objectclass"] if c != b"extensibleObject"
                    ]
            if not partition.startswith("CN=Schema"):
                # The attributes the fake gives a loaded head (seed._naming_context_heads):
                # slapd's head is the LDIF's, as loaded.
                head = a[normalize_dn(partition)]
                for name in list(head):
                    if name not in b[normalize_dn(partition)]:
                        del head[name]
            assert a.keys() == b.keys()
            assert a == b
            if partition == base:
                some = normalize_dn(tenant.ad_users[0].dn)
                assert a[some]["objectguid"] == [tenant.ad_users[0].object_guid]
        # The same accounts, with the same passwords.
        for who in ("admin", "writeback", "reader"):
            assert connect(fake, who).bound and connect(slapd, who).bound
    finally:
        slapd.stop()
        fake.stop()


def test_missing_slapd_skips_locally_and_fails_in_ci(monkeypatch):
    monkeypatch.setattr(backends, "slapd_available", lambda: False)
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="slapd is not installed"):
        require_slapd()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI is set, so this is an error"):
        require_slapd()
