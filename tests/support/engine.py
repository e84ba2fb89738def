"""What the writeback tests drive cycles with: the engine's credentials for a running tenant,
the cycle log's entries, and `EngineEnv` (a tenant, a read-only LDAP connection, a state folder).

Each engine test module extends `EngineEnv` with its own checks; the parts every one of them
needs (which accounts the engine uses, how a cycle is run, what "converged" means) live here.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ldap3 import Connection

from harness.core import clock
from harness.core.clock import SimulatedClock
from harness.core.endpoints import Endpoints
from harness.engine.cycle import CycleReport, run_cycle
from harness.engine.rules import GA, Profile
from harness.engine.source import CloudCredentials
from harness.engine.target import LdapCredentials
from harness.tenant import AdUser, CloudMailbox, Tenant
from harness.tenant import recipients as rt
from mockservers.runtime import RunningTenant


def writeback_credentials(
    cloud: Endpoints, ad: Endpoints | None = None, *, ldap_url: str | None = None
) -> tuple[CloudCredentials, LdapCredentials]:
    """The engine's accounts: the read-only app on `cloud`, the writeback account on `ad`.

    `ad` defaults to the tenant's own directory (another one: slapd); `ldap_url` sends the LDAP
    traffic elsewhere with the same account (a fault-injecting proxy)."""
    ad = ad or cloud
    reader = CloudCredentials(
        cloud.graph_url, cloud.token_url, cloud.readonly_client_id, cloud.readonly_client_secret
    )
    writer = LdapCredentials(ldap_url or ad.ldap_url, ad.bind_dn, ad.bind_password, ad.base_dn)
    return reader, writer


def mailbox_pairs(tenant: Tenant, managed: bool) -> list[tuple[AdUser, CloudMailbox]]:
    """Synced (AD user, mailbox) pairs of mailboxes (no MailUser), cloud-managed or not."""
    return [
        (u, m)
        for u, m in tenant.synced_pairs()
        if m.is_exchange_cloud_managed == managed and m.recipient_type_details != rt.MAIL_USER
    ]


def log_entries(report: CycleReport) -> list[dict[str, Any]]:
    """The cycle's log, one dict per object the cycle looked at."""
    assert report.log_path is not None
    return [json.loads(x) for x in report.log_path.read_text(encoding="utf-8").splitlines()]


@dataclass
class EngineEnv:
    """A running tenant, the read-only LDAP account's connection and the engine's state dir."""

    run: RunningTenant
    conn: Connection  # the read-only LDAP account
    state: Path

    @property
    def ep(self) -> Endpoints:
        return self.run.endpoints

    def creds(self) -> tuple[CloudCredentials, LdapCredentials]:
        return writeback_credentials(self.ep)

    def cycle(
        self, mode: str = "delta", profile: Profile = GA, state: Path | None = None
    ) -> CycleReport:
        return run_cycle(*self.creds(), profile, state or self.state, mode)

    def converged(self, mode: str = "delta", **kw: Any) -> CycleReport:
        """A cycle that must not fail on any object (the log is the assertion's message)."""
        report = self.cycle(mode, **kw)
        assert report.statuses["Failure"] == 0, log_entries(report)
        return report

    def close(self) -> None:
        self.conn.unbind()


@contextmanager
def simulated_time() -> Iterator[SimulatedClock]:
    """A SimulatedClock installed as the process's clock for the block (then the old one)."""
    sim = SimulatedClock()
    previous = clock.install(sim)
    try:
        yield sim
    finally:
        clock.install(previous)
