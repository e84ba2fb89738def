"""Client-side helpers for the directory tests (ldap3 connections as each role), for either
backend: the fake AD (`RunningTenant`) or OpenLDAP slapd (`SlapdDirectory`)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ldap3 import NONE, Connection, Server

from harness.core.dn import normalize_dn
from harness.tenant.exchange_org import ExchangeOrg
from mockservers.directory.domain import WELL_KNOWN
from mockservers.runtime import RunningTenant
from tests.support.backends import FAKE, SAMBA, Directory, backend_of


def connect(run: Directory, who: str = "admin") -> Connection:
    ep = run.endpoints
    user, password = ep.account(who)
    conn = Connection(Server(ep.ldap_url, get_info=NONE), user, password, raise_exceptions=False)
    assert conn.bind(), conn.result
    return conn


def plain(run: Directory, who: str = "admin") -> Connection:
    """ldap3 taking the server's answer as it comes: no auto_range (which reads the remaining
    values itself) and no empty attributes (which, with ranges, ldap3 mangles)."""
    user, password = run.endpoints.account(who)
    conn = Connection(
        Server(run.endpoints.ldap_url, get_info=NONE),
        user,
        password,
        auto_range=False,
        return_empty_attributes=False,
    )
    assert conn.bind(), conn.result
    return conn


def system_mailbox_dns(tenant) -> list[str]:
    """Exchange's arbitration and public folder mailboxes: disabled users in CN=Users that the
    directory holds besides the tenant's own users (mockservers/directory/seed.py)."""
    org = ExchangeOrg(tenant.spec)
    names = (*org.arbitration_mailboxes, *org.public_folder_mailboxes)
    return [f"CN={n},CN=Users,{tenant.spec.base_dn}" for n in names]


def is_ad(run: Directory) -> bool:
    """True for the directories with AD's semantics, the fake and Samba; False for slapd (for
    tests marked ad_differs)."""
    return backend_of(run) in (FAKE, SAMBA)


def is_samba(run: Directory) -> bool:
    """True for a Samba AD DC (for tests marked samba_differs(..., branches=True))."""
    return backend_of(run) == SAMBA


def dc_own_users(run: Directory) -> set[str]:
    """The normalised DNs of the users a domain controller creates itself besides the
    harness's admin (Windows AD and the fake: Guest, krbtgt, DefaultAccount; Samba: its own
    set, with its DNS account). Samba's are read from the directory: AD marks them
    isCriticalSystemObject, Samba's DNS account is dns-<host>; the fake's (and slapd's, loaded
    from the fake's seed) are the users of its table of well-known accounts."""
    if not is_samba(run):
        base = run.endpoints.base_dn
        return {
            normalize_dn(f"CN={w.cn},CN=Users,{base}")
            for w in WELL_KNOWN
            if not w.group_type and w.cn != "Administrator"
        }
    conn = connect(run, "reader")
    conn.search(
        run.endpoints.base_dn,
        "(&(objectClass=user)(|(isCriticalSystemObject=TRUE)(sAMAccountName=dns-*))"
        "(!(userAccountControl:1.2.840.113556.1.4.803:=8192)))",  # not the DC's own account
        attributes=["1.1"],
    )
    own = found(conn)
    own.discard(normalize_dn(run.endpoints.admin_dn))  # the harness's admin is one of its three
    return own


def paged_entries(
    conn: Connection, base: str, flt: str, attributes: list[str], page: int = 500, **kw: Any
) -> list[dict[str, Any]]:
    """Every entry a paged search returns, without the continuation references AD and Samba
    add for the partitions below the domain."""
    items = conn.extend.standard.paged_search(
        base, flt, attributes=attributes, paged_size=page, generator=False, **kw
    )
    return [e for e in items if e["type"] == "searchResEntry"]


def ndns(dns: Iterable[str]) -> set[str]:
    """Normalised DNs: slapd spells DNs its own way (``cn=Smith\\2C J,ou=...``), AD as written."""
    return {normalize_dn(dn) for dn in dns}


def found(conn: Connection) -> set[str]:
    """The normalised DNs of the entries the last search returned."""
    return ndns(e["dn"] for e in conn.response or [] if e.get("type") == "searchResEntry")


def examined(run: RunningTenant) -> int:
    """Entries the fake's searches have evaluated (fake only: proves index use)."""
    return run.call(lambda: run.service.store.examined)
