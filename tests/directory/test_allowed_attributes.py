"""allowedAttributesEffective on the fake AD (MS-ADTS 3.1.1.4.5.x), read with ldap3.

The constructed attribute lists what the bound principal may write on the object; the dry-run
preview reads it to predict 50 insufficientAccessRights without writing. It must agree with
what a modify is really allowed to do (acl.py `check_modify`).
"""

from __future__ import annotations

import pytest
from ldap3 import BASE, MODIFY_REPLACE

from harness.core.adschema import DEFAULT_SCHEMA
from harness.tenant.writeback import GA_ATTRIBUTES
from tests.directory.ldap_clients import connect

pytestmark = pytest.mark.shared_tenant

AAE = "allowedAttributesEffective"


def _allowed(conn, dn: str) -> list[str]:
    """The attribute's values ([] when the entry came without it: ldap3 fills requested
    attributes in)."""
    assert conn.search(dn, "(objectClass=*)", BASE, attributes=[AAE, "cn"]), conn.result
    raw = conn.response[0]["raw_attributes"]
    return [v.decode() for k, vs in raw.items() if k.casefold() == AAE.casefold() for v in vs]


@pytest.fixture(scope="module")
def user_dn(tenant) -> str:
    return next(u.dn for u, _ in tenant.synced_pairs())  # below OU=Corp: writable


@pytest.fixture(scope="module")
def outside_dn(tenant, shared_run) -> str:
    """A user the admin moved out of the writable OUs (to OU=Service Accounts)."""
    u = list(tenant.synced_pairs())[-1][0]
    admin = connect(shared_run)
    new_rdn = u.dn.split(",", 1)[0]
    target = f"OU=Service Accounts,{tenant.spec.base_dn}"
    assert admin.modify_dn(u.dn, new_rdn, new_superior=target), admin.result
    return f"{new_rdn},{target}"


def test_returned_only_when_asked_for_by_name(run, user_dn):
    conn = connect(run, "admin")
    for attrs in (None, ["*"], ["+"], ["*", "+"], ["cn"]):
        conn.search(user_dn, "(objectClass=*)", BASE, attributes=attrs or ["*"])
        names = {k.casefold() for k in conn.response[0]["raw_attributes"]}
        assert AAE.casefold() not in names, attrs
    assert _allowed(conn, user_dn)


def test_admin_may_write_every_attribute_a_client_may_write(run, user_dn):
    got = _allowed(connect(run, "admin"), user_dn)
    writable = [t.name for t in DEFAULT_SCHEMA if not t.system_only]
    assert set(got) == set(writable) - {"name", "distinguishedName"}
    assert "objectGUID" not in got and "whenChanged" not in got


def test_writeback_gets_the_writeback_attributes_inside_the_writable_ous(run, user_dn):
    got = _allowed(connect(run, "writeback"), user_dn)
    assert set(got) == set(GA_ATTRIBUTES)
    assert "sAMAccountName" not in got  # not a writeback attribute


def test_writeback_gets_nothing_outside_the_writable_ous(run, outside_dn):
    assert _allowed(connect(run, "writeback"), outside_dn) == []
    assert _allowed(connect(run, "admin"), outside_dn)  # the object is there


def test_reader_may_write_nothing(run, user_dn):
    assert _allowed(connect(run, "reader"), user_dn) == []


def test_it_agrees_with_what_a_modify_is_allowed(run, user_dn, outside_dn):
    """What the attribute lists, the writeback account can write; what it omits, it cannot."""
    conn = connect(run, "writeback")
    assert "extensionAttribute3" in _allowed(conn, user_dn)
    assert conn.modify(user_dn, {"extensionAttribute3": [(MODIFY_REPLACE, ["aae"])]}), conn.result
    assert not conn.modify(outside_dn, {"extensionAttribute3": [(MODIFY_REPLACE, ["aae"])]})
    assert conn.result["result"] == 50
    assert not conn.modify(user_dn, {"sAMAccountName": [(MODIFY_REPLACE, ["aae"])]})
    assert conn.result["result"] == 50


def test_the_root_dse_says_it_is_active_directory(run):
    conn = connect(run, "reader")
    conn.search("", "(objectClass=*)", BASE, attributes=["supportedCapabilities"])
    caps = [v.decode() for v in conn.response[0]["raw_attributes"]["supportedCapabilities"]]
    assert "1.2.840.113556.1.4.800" in caps  # LDAP_CAP_ACTIVE_DIRECTORY_OID
