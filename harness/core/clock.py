"""One clock for the fakes, the engine and the scenarios: wall time, or simulated time.

Every timestamp the harness writes or checks (AD's `whenChanged`, token lifetimes, a delta
token's age, the provisioning log, the job's `lastExecution`, escrow retries) reads `now()`,
the process's installed clock. By default that is the wall clock. `install(SimulatedClock())`
(`exwb serve --clock simulated`, a scenario's `clock: simulated`) replaces it with time that
stands still until `advance` moves it, so a scenario can wait four weeks in a second and get
the same results every run.

Work due at a time (the job's next cycle, an escrow retry) is scheduled with `call_at`. On the
simulated clock, `advance` runs what falls due in time order, setting the clock to each one's
time before it runs, so a cycle due at +20 min sees +20 min even when the clock is advanced by a
week. On the wall clock a daemon thread runs it when it is due.

Durations the harness measures (a cycle's seconds, rate limits' windows, retry back-off) stay on
`time.monotonic`/`perf_counter`: they measure this machine, not the simulated world.
"""

from __future__ import annotations

import heapq
import itertools
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol

# A fixed, recognisable start so that simulated runs are reproducible (a Monday, 09:00 UTC).
SIMULATED_START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


class ClockError(ValueError):
    """A request the clock refuses (moving simulated time backwards, advancing the wall)."""


class Timer(Protocol):
    def cancel(self) -> None: ...


class Clock(Protocol):
    """What the harness asks of a clock."""

    @property
    def simulated(self) -> bool: ...

    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...

    def call_at(self, when: datetime, fn: Callable[[], object]) -> Timer:
        """Run `fn` once at `when` (at once if `when` has passed)."""
        ...


class WallClock:
    """The real time; `call_at` runs on a daemon thread."""

    simulated = False

    def now(self) -> datetime:
        return datetime.now(UTC)

    def call_at(self, when: datetime, fn: Callable[[], object]) -> Timer:
        delay = max(0.0, (when - self.now()).total_seconds())
        t = threading.Timer(delay, fn)
        t.daemon = True
        t.start()
        return t


class _SimulatedTimer:
    __slots__ = ("cancelled",)

    def __init__(self) -> None:
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class SimulatedClock:
    """Time that moves only when `advance` or `advance_to` moves it (never backwards)."""

    simulated = True

    def __init__(self, start: datetime = SIMULATED_START) -> None:
        if start.tzinfo is None:
            raise ClockError("a simulated clock's start needs a timezone (e.g. 2026-01-05T09:00Z)")
        self._now = start.astimezone(UTC)
        self._lock = threading.RLock()
        self._timers: list[tuple[datetime, int, _SimulatedTimer, Callable[[], object]]] = []
        self._order = itertools.count()
        self._advancing = False

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def call_at(self, when: datetime, fn: Callable[[], object]) -> Timer:
        timer = _SimulatedTimer()
        with self._lock:
            heapq.heappush(self._timers, (max(when, self._now), next(self._order), timer, fn))
        return timer

    def next_due(self) -> datetime | None:
        """When the earliest scheduled work falls due, or None."""
        with self._lock:
            while self._timers and self._timers[0][2].cancelled:
                heapq.heappop(self._timers)
            return self._timers[0][0] if self._timers else None

    def advance(self, delta: timedelta) -> int:
        """Move the clock forward by `delta`; returns how many scheduled calls ran."""
        if delta < timedelta(0):
            raise ClockError(f"simulated time cannot go backwards ({delta})")
        return self.advance_to(self.now() + delta)

    def advance_to(self, when: datetime) -> int:
        """Move the clock forward to `when`, running what falls due on the way, in order.

        A call that schedules more work inside the window has it run in the same advance. A
        call that raises stops the advance at its time; the exception propagates.
        """
        with self._lock:
            if when < self._now:
                raise ClockError(
                    f"simulated time cannot go backwards (now {self._now:%Y-%m-%dT%H:%M:%SZ}, "
                    f"asked for {when:%Y-%m-%dT%H:%M:%SZ})"
                )
            if self._advancing:
                raise ClockError("the clock is already advancing (a scheduled call advanced it)")
            self._advancing = True
        ran = 0
        try:
            while True:
                with self._lock:
                    while self._timers and self._timers[0][2].cancelled:
                        heapq.heappop(self._timers)
                    if not self._timers or self._timers[0][0] > when:
                        self._now = when
                        return ran
                    due, _, _, fn = heapq.heappop(self._timers)
                    self._now = max(self._now, due)
                fn()  # outside the lock: the call reads now() and may schedule more work
                ran += 1
        finally:
            with self._lock:
                self._advancing = False


_current: Clock = WallClock()


def install(clock: Clock) -> Clock:
    """Make `clock` the process's clock; returns the one it replaces."""
    global _current
    previous, _current = _current, clock
    return previous


def current() -> Clock:
    return _current


def now() -> datetime:
    """The installed clock's time (timezone-aware UTC)."""
    return _current.now()


def now_iso() -> str:
    """Now as the harness writes timestamps: ISO 8601 UTC to the second, with a `Z`."""
    global _last_iso
    when = now()
    # Formatting is most of the cost and a cycle stamps 200,000 log records within a few
    # seconds: keep the last second's text (one entry, replaced whole: thread-safe).
    second = when.replace(microsecond=0)
    last = _last_iso
    if last[0] == second:
        return last[1]
    text = iso(when)
    _last_iso = (second, text)
    return text


_last_iso: tuple[datetime | None, str] = (None, "")


def iso(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(text: str) -> datetime:
    """An ISO 8601 time as the harness writes it (`Z` or an offset); naive means UTC."""
    when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return when if when.tzinfo else when.replace(tzinfo=UTC)
