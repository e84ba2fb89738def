"""A tenant's group past 1,500 members, read as AD serves it: in ranges of MaxValRange values
(`member;range=0-1499`, then `member;range=1500-*`, [MS-ADTS] 3.1.1.3.1.3.3), which ldap3
follows by itself. The module's tenant is the smallest that has one: 1,520 user mailboxes and
`all_staff_group` (about 1,600 entries, 8 s for Samba to load).
"""

from __future__ import annotations

import pytest
from ldap3 import BASE, Connection

from harness.core.dn import normalize_dn
from harness.tenant import TenantSpec, generate
from tests.directory.ldap_clients import connect, is_samba, plain

TENANT = generate(
    TenantSpec(mailboxes=1520, seed=23, mailbox_mix={"user": 1}, all_staff_group=True)
)
STAFF = next(g for g in TENANT.groups if g.cn == "GG-All-Staff")


@pytest.fixture(scope="module")
def tenant():
    """This module's TENANT, not the directory tests' shared one."""
    return TENANT


def read(conn: Connection, attr: str) -> dict[str, list[bytes]]:
    assert conn.search(STAFF.dn, "(objectClass=*)", BASE, attributes=[attr]), conn.result
    return {k: list(v) for k, v in conn.response[0]["raw_attributes"].items()}


def norm(values) -> list[str]:
    return [normalize_dn(v.decode() if isinstance(v, bytes) else v) for v in values]


def test_the_tenant_has_a_group_past_1500():
    assert len(STAFF.members) > 1500


def test_ldap3_reads_every_member(directory):
    # ldap3's default follows the ranges (auto_range); slapd and Samba send them all at once.
    got = read(connect(directory, "reader"), "member")
    assert sorted(norm(got["member"])) == sorted(norm(STAFF.members))


@pytest.mark.ad_only("range retrieval")
@pytest.mark.samba_differs("MaxValRange", branches=True)
def test_the_members_come_in_ranges_of_1500(directory):
    conn = plain(directory, "reader")
    if is_samba(directory):  # Samba has no MaxValRange: every value at once
        assert len(read(conn, "member")["member"]) == len(STAFF.members)
        return
    first = read(conn, "member")
    assert list(first) == ["member;range=0-1499"] and len(first["member;range=0-1499"]) == 1500
    assert read(conn, "member;range=0-1499") == first
    rest = read(conn, "member;range=1500-*")
    assert list(rest) == ["member;range=1500-*"]
    assert len(rest["member;range=1500-*"]) == len(STAFF.members) - 1500
    both = [*first["member;range=0-1499"], *rest["member;range=1500-*"]]
    assert sorted(norm(both)) == sorted(norm(STAFF.members))
