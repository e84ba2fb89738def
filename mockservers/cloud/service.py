"""The fake cloud's state as its HTTP layer serves it: the store, tokens, throttle, faults and
the EXO paging cursors of one tenant."""

from __future__ import annotations

from dataclasses import dataclass, field

from mockservers.cloud.auth import Auth
from mockservers.cloud.cursors import ExoCursors
from mockservers.cloud.provisioning import RecordSource
from mockservers.cloud.store import CloudStore
from mockservers.cloud.synchronization import Synchronization
from mockservers.cloud.throttle import Throttle
from mockservers.faults import FaultPlan
from mockservers.requestlog import RequestLog


@dataclass(slots=True)
class CloudService:
    store: CloudStore
    auth: Auth
    throttle: Throttle
    base_url: str = ""
    faults: FaultPlan = field(default_factory=FaultPlan)  # shared with the tenant's directory
    cursors: ExoCursors = field(default_factory=ExoCursors)
    log: RequestLog | None = None  # exwb serve --log / -v
    sync: Synchronization = field(default_factory=Synchronization)  # Graph's jobs API
    provisioning: RecordSource | None = None  # the job's provisioning log (exwb serve --writeback)

    @property
    def tenant_id(self) -> str:
        return self.auth.tenant_id
