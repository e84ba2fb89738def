"""Running fake tenants with their on-premises estate: real sockets, real clients."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from ldap3 import MODIFY_DELETE, NONE, SUBTREE, Connection, Server
from ldap3.utils.conv import escape_filter_chars

from harness.core.endpoints import Endpoints
from harness.decommission.hosts import OnpremHosts
from harness.tenant import Tenant, TenantSpec, generate
from harness.tenant.exchange_org import ExchangeOrg
from mockservers.runtime import RunningTenant

Start = Callable[..., RunningTenant]
SPEC = {"mailboxes": 30, "seed": 5}


@pytest.fixture(scope="module")
def tenant() -> Tenant:
    """The small tenant the root `run` fixture serves for these tests."""
    return generate(TenantSpec(**SPEC))


@pytest.fixture
def start(serve: Callable[[Tenant], RunningTenant]) -> Start:
    """start(**knobs): a fresh small tenant (edited by the test), stopped afterwards."""

    def _start(**knobs: Any) -> RunningTenant:
        return serve(generate(TenantSpec(**{**SPEC, **knobs})))

    return _start


@pytest.fixture
def hosts(run: RunningTenant) -> Iterator[OnpremHosts]:
    with OnpremHosts.from_endpoints(run.endpoints) as client:
        yield client


def admin_ldap(ep: Endpoints) -> Connection:
    conn = Connection(Server(ep.ldap_url, get_info=NONE), ep.admin_dn, ep.admin_password)
    assert conn.bind(), conn.result
    return conn


def clear_mailboxes(ep: Endpoints, database_dn: str) -> list[str]:
    """Disable every mailbox on `database_dn` the way Disable-Mailbox leaves AD (no homeMDB)."""
    conn = admin_ldap(ep)
    try:
        conn.search(
            ep.base_dn, f"(homeMDB={escape_filter_chars(database_dn)})", SUBTREE, attributes=["cn"]
        )
        dns = [e.entry_dn for e in conn.entries]
        for dn in dns:
            assert conn.modify(dn, {"homeMDB": [(MODIFY_DELETE, [])]}), conn.result
        return dns
    finally:
        conn.unbind()


def exists(ep: Endpoints, dn: str) -> bool:
    conn = admin_ldap(ep)
    try:
        conn.search(dn, "(objectClass=*)", "BASE", attributes=["cn"])
        return len(conn.entries) == 1
    finally:
        conn.unbind()


def org_of(run: RunningTenant) -> ExchangeOrg:
    assert run.onprem is not None
    return run.onprem.org
