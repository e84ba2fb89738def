"""The writeback job as one object: what Graph's synchronization API, `exwb status`, `exwb cycle`
and the schedule all operate.

A job is its state directory (watermark, escrow, quarantine, history, provisioning logs), the
servers it connects to and its profile. Operations take the job's lock, so a scheduled cycle, a
Graph `start` and a provision-on-demand never run at once, as the service runs one at a time.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Self

from harness.core.endpoints import Endpoints
from harness.engine.cycle import (
    CycleOptions,
    CycleReport,
    OnDemandResult,
    run_cycle,
    run_on_demand,
)
from harness.engine.health import INTERVAL, JobStatus, QuarantineBackoff, job_status, next_run
from harness.engine.rules import Profile
from harness.engine.scope import Scope
from harness.engine.source import CloudCredentials
from harness.engine.state import EngineState
from harness.engine.target import LdapCredentials


class WritebackJob:
    """One writeback job bound to its state directory and servers."""

    def __init__(
        self,
        state_dir: Path,
        cloud: CloudCredentials,
        ldap: LdapCredentials,
        profile: Profile,
        options: CycleOptions | None = None,
        interval: timedelta = INTERVAL,
        backoff: QuarantineBackoff | None = None,
    ) -> None:
        self.state_dir = state_dir
        self.cloud = cloud
        self.ldap = ldap
        self.profile = profile
        self.options = options or CycleOptions()
        self.interval = interval
        self.backoff = backoff or QuarantineBackoff()
        self._lock = threading.RLock()

    @classmethod
    def for_endpoints(
        cls,
        ep: Endpoints,
        state_dir: Path,
        profile: Profile,
        options: CycleOptions | None = None,
        interval: timedelta = INTERVAL,
        backoff: QuarantineBackoff | None = None,
    ) -> Self:
        """The job of a running tenant: it reads Graph as the read-only app and writes AD as
        the writeback account, as `exwb cycle --endpoints-file` does."""
        cloud = CloudCredentials(
            ep.graph_url, ep.token_url, ep.readonly_client_id, ep.readonly_client_secret
        )
        ldap = LdapCredentials(ep.ldap_url, ep.bind_dn, ep.bind_password, ep.base_dn)
        return cls(state_dir, cloud, ldap, profile, options, interval, backoff)

    @contextmanager
    def _state(self, save: bool = True) -> Iterator[EngineState]:
        with self._lock:
            state = EngineState.load(self.state_dir)
            yield state
            if save:
                state.save(self.state_dir)

    @property
    def key(self) -> str:
        """What the job's id is derived from (its resolved state directory)."""
        return str(self.state_dir.resolve())

    def status(self) -> JobStatus:
        with self._state(save=False) as state:
            return job_status(state, self.profile, self.key, self.interval, self.backoff)

    def run(self, mode: str = "delta") -> CycleReport:
        """Run one cycle now (raises CycleError when paused or refused, as run_cycle does)."""
        with self._lock:
            return run_cycle(
                self.cloud, self.ldap, self.profile, self.state_dir, mode, self.options
            )

    def on_demand(self, object_id: str) -> OnDemandResult:
        with self._lock:
            return run_on_demand(
                self.cloud, self.ldap, self.profile, self.state_dir, object_id, self.options
            )

    def start(self) -> None:
        """Graph's `start`: resume a paused job (a running one is unchanged)."""
        with self._state() as state:
            state.paused = False

    def pause(self) -> None:
        with self._state() as state:
            state.paused = True

    def restart(self, reset_scope: str = "") -> frozenset[str]:
        """Graph's `restart` with `criteria.resetScope` (EngineState.restart parses it)."""
        with self._state() as state:
            return state.restart(reset_scope)

    def set_domain(self, domain: str) -> None:
        """Graph's `Domain` secret: the AD domain the job writes (its DomainFQDN setting)."""
        with self._state() as state:
            state.domain = domain

    def set_service_principal(self, sp_id: str) -> None:
        """The principal Graph lists the job under (its provisioning log names it)."""
        with self._state() as state:
            state.service_principal = sp_id

    def scope(self) -> Scope:
        with self._state(save=False) as state:
            return Scope.from_json(state.scope)

    def set_scope(self, scope: Scope) -> bool:
        """Set the scoping filters (Graph's schema); returns whether they changed."""
        with self._state() as state:
            changed = Scope.from_json(state.scope) != scope
            state.scope = scope.to_json()
            return changed

    def next_run(self) -> datetime | None:
        """When the schedule runs the next cycle (health.next_run: the interval after the last
        cycle began, the back-off while quarantined, None while paused or once disabled)."""
        with self._state(save=False) as state:
            return next_run(state, self.interval, self.backoff)
