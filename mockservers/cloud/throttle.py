"""Throttling modelled on Graph's documented identity-and-access limits.

The limits are in docs/microsoft-facts.md §5.2.

A token bucket per app: resource units (RU) refilled per 10 s window and a write quota per
150 s window. Costs follow the documentation: GET of users 2 RU (1 with $select), other GETs
1 RU, a write 1 RU plus one write; each route declares its cost (mockservers/cloud/routes.py).
Exceeding either answers 429 with Retry-After and the x-ms-throttle-* headers. Profiles: "off"
(the default, for speed), "documented" (the large-tenant numbers: 8,000 RU per 10 s, 3,000
writes per 150 s), or custom numbers.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from mockservers.cloud.errors import too_many_requests
from mockservers.http_routes import Cost

_SCOPE = "Tenant_Application/ReadWrite"
DOCUMENTED = (8000.0, 3000.0)  # RU per 10 s, writes per 150 s: a tenant of over 500 users


@dataclass(slots=True)
class _Bucket:
    capacity: float
    per_second: float
    level: float
    stamp: float

    def take(self, amount: float, now: float) -> float:
        """Take `amount`; returns 0, or the seconds to wait before it would be available."""
        self.level = min(self.capacity, self.level + (now - self.stamp) * self.per_second)
        self.stamp = now
        if self.level >= amount:
            self.level -= amount
            return 0.0
        return (amount - self.level) / self.per_second


@dataclass(slots=True)
class Throttle:
    ru_per_10s: float | None = None  # None: throttling off
    writes_per_150s: float | None = None
    tenant_id: str = ""
    clock: Callable[[], float] = time.monotonic
    _buckets: dict[tuple[str, str], _Bucket] = field(default_factory=dict)

    @classmethod
    def profile(cls, name: str, tenant_id: str = "") -> Throttle:
        """ "off", "documented", or "RU/WRITES" custom numbers (e.g. "200/20")."""
        if name == "off":
            return cls(tenant_id=tenant_id)
        if name == "documented":
            return cls(*DOCUMENTED, tenant_id=tenant_id)
        ru, sep, writes = name.partition("/")
        try:
            values = float(ru), float(writes) if sep else float("inf")
        except ValueError:
            raise ValueError(
                f"throttle profile {name!r}: expected off, documented or RU/WRITES"
            ) from None
        if values[0] <= 0 or values[1] <= 0:
            raise ValueError(f"throttle profile {name!r}: numbers must be above 0")
        return cls(*values, tenant_id=tenant_id)

    @property
    def enabled(self) -> bool:
        return self.ru_per_10s is not None

    def charge(self, app_id: str, units: int, write: bool) -> dict[str, str]:
        """Charge one request; returns headers to add, or raises 429."""
        headers = {"x-ms-resource-unit": str(units)}
        if self.ru_per_10s is None:
            return headers
        now = self.clock()
        ru = self._bucket(app_id, "ru", self.ru_per_10s, 10.0, now)
        wait = ru.take(units, now)
        kind = "ResourceUnitLimitExceeded"
        if not wait and write and self.writes_per_150s is not None:
            wait = self._bucket(app_id, "w", self.writes_per_150s, 150.0, now).take(1, now)
            kind = "WriteLimitExceeded"
            if wait:
                ru.level += units  # the request is refused: give its units back
        if wait:
            raise too_many_requests(
                {
                    "Retry-After": str(max(1, math.ceil(wait))),
                    "x-ms-throttle-scope": f"{_SCOPE}/{app_id}/{self.tenant_id}",
                    "x-ms-throttle-information": kind,
                    "x-ms-resource-unit": str(units),
                }
            )
        used = 1 - ru.level / ru.capacity
        if used > 0.8:
            headers["x-ms-throttle-limit-percentage"] = f"{min(1.8, used):.1f}"
        return headers

    def _bucket(self, app: str, kind: str, capacity: float, window: float, now: float) -> _Bucket:
        b = self._buckets.get((app, kind))
        if b is None:
            b = self._buckets[(app, kind)] = _Bucket(capacity, capacity / window, capacity, now)
        return b


def request_cost(cost: Cost, query: Mapping[str, str]) -> tuple[int, bool]:
    """(resource units, is a write) of one request to a route of `cost`, per the documented
    table: a read's units drop by one with $select and by one with $top under 20, to at least 1."""
    if cost.write:
        return cost.units, True
    units = cost.units
    if any(k.lstrip("$").lower() == "select" for k in query):
        units -= 1
    top = next((v for k, v in query.items() if k.lstrip("$").lower() == "top"), None)
    if top is not None and top.isdigit() and int(top) < 20:
        units -= 1
    return max(1, units), False
