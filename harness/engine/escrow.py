"""When an escrowed (failed) object is retried, and when its escrow entry is given up.

The provisioning service documents the schedule (microsoft-facts.md §4.3): a failed object is
retried 6, 12 and 24 hours after its first failure, then every 24 hours, and its escrow entry is
dropped 28 days after the first failure. A cycle retries only the escrowed objects whose next
attempt is due. An object whose source changed meanwhile comes back in the delta and is
processed as any change is, whatever its next attempt says: the change is a new event
(unconfirmed for the service; it is what its documentation of delta processing implies).
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta

from harness.core import clock
from harness.engine.state import Escrow

RETRY_AFTER = (timedelta(hours=6), timedelta(hours=12), timedelta(hours=24))
RETRY_EVERY = timedelta(hours=24)
DROP_AFTER = timedelta(days=28)


def next_attempt(first_failed: datetime, attempts: int) -> datetime:
    """The time of the retry after `attempts` failures, counted from the first failure."""
    if attempts <= len(RETRY_AFTER):
        return first_failed + RETRY_AFTER[attempts - 1]
    return first_failed + RETRY_AFTER[-1] + RETRY_EVERY * (attempts - len(RETRY_AFTER))


def expired(entry: Escrow, now: datetime) -> bool:
    """28 days after the first failure the entry is dropped (the object is no longer retried)."""
    return bool(entry.first_failed) and now - clock.parse_iso(entry.first_failed) >= DROP_AFTER


def due(escrow: Mapping[str, Escrow], now: datetime, skip: Iterable[str] = ()) -> list[str]:
    """The escrowed objects whose next attempt is due at `now`, earliest first.

    The entries are ordered by next attempt (a heap built once per call, as the state is loaded
    once per cycle); only the due ones are popped, so a no-change cycle does no per-object
    work beyond that ordering and never asks the source for objects not due."""
    stamp = clock.iso(now)
    heap = [(e.next_attempt or "", k) for k, e in escrow.items()]
    heapq.heapify(heap)
    seen = set(skip)
    out: list[str] = []
    while heap and heap[0][0] <= stamp:
        _, key = heapq.heappop(heap)
        if key not in seen:
            out.append(key)
    return out
