"""Work the servers do while no client is asking anything.

The fake AD, the fake cloud and the on-premises API share the process's one reactor thread, so
work that is not a client's answer (making the indexes AD keeps for ANR, which takes seconds at
200,000 entries) runs in short slices, and only once no request of any of them has arrived for
a while: a client then waits at most one slice.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

__all__ = ["IdleWork", "touch"]

_last_request = [float("-inf")]  # monotonic time of the process's latest request


def touch() -> None:
    """A request arrived (called by each protocol as it reads one)."""
    _last_request[0] = time.monotonic()


class IdleWork:
    """Run `steps` (each a short piece of work) on `reactor` in slices of up to `budget`
    seconds, every `tick` seconds, while no request has arrived for `quiet` seconds."""

    def __init__(
        self,
        steps: Iterator[None],
        reactor: Any,
        quiet: float = 1.0,
        budget: float = 0.01,
        tick: float = 0.1,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.steps, self.reactor = steps, reactor
        self.quiet, self.budget, self.tick, self.clock = quiet, budget, tick, clock
        self.done = False
        self._call: Any = None

    def start(self) -> None:
        if not self.done and self._call is None:
            self._call = self.reactor.callLater(self.tick, self._run)

    def stop(self) -> None:
        """Stop between slices; `start` goes on where it stopped."""
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None

    def _run(self) -> None:
        self._call = None
        now = self.clock()
        if now - _last_request[0] >= self.quiet:
            end = now + self.budget
            for _ in self.steps:
                if self.clock() >= end:
                    break
            else:
                self.done = True
                return
        self._call = self.reactor.callLater(self.tick, self._run)
