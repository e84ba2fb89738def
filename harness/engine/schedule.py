"""The job on its schedule: a runner that puts the job's next cycle on the harness clock.

`Schedule.start()` arms `clock.current().call_at(job.next_run(), ...)`; when it fires, the cycle
runs (a delta; the first one a full initial round, as run_cycle decides) and the runner re-arms
for the next one from the job's lifecycle (`WritebackJob.next_run`: the interval after the last
cycle began; nothing while paused). A cycle that fails (CycleError: paused, unreachable or
refusing server) is recorded, not fatal to the runner. On a SimulatedClock, advancing a week
runs every cycle that falls due, in order, each seeing its own time; on the wall clock call_at
fires on a daemon thread, and one lock keeps to one cycle at a time.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass
from datetime import datetime

from harness.core import clock
from harness.core.clock import Timer
from harness.core.ldapresult import LdapError
from harness.engine.cycle import CycleError, CycleReport
from harness.engine.job import WritebackJob
from harness.engine.source import SourceError
from harness.engine.state import StateError

ERRORS_KEPT = 50


@dataclass(frozen=True, slots=True)
class ScheduledFailure:
    """A scheduled cycle that could not run."""

    at: str  # ISO 8601 UTC on the harness clock
    error: str


class Schedule:
    """Runs `job` on its schedule until `stop()`."""

    def __init__(self, job: WritebackJob) -> None:
        self.job = job
        self.cycles = 0  # scheduled cycles that ran (a refused one included)
        self.last: CycleReport | None = None
        self.failures: deque[ScheduledFailure] = deque(maxlen=ERRORS_KEPT)
        self._lock = threading.Lock()  # one scheduled cycle at a time
        self._timer: Timer | None = None
        self._stopped = True

    @property
    def running(self) -> bool:
        return not self._stopped

    def start(self, at: datetime | None = None) -> None:
        """Arm the next cycle (at `at`, else when the job's state says); called again (Graph's
        start, a restart), it re-arms instead of adding a second chain of cycles."""
        timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()
        self._stopped = False
        if at is not None:
            self._timer = clock.current().call_at(at, self._fire)
        else:
            self._arm()

    def stop(self) -> None:
        """Cancel the next cycle; a cycle already running finishes (its state is saved)."""
        self._stopped = True
        timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()

    def _arm(self) -> None:
        if self._stopped:
            return
        when = self.job.next_run()
        # Paused: nothing is scheduled; `start()` again (Graph's start) re-arms.
        self._timer = None if when is None else clock.current().call_at(when, self._fire)

    def _fire(self) -> None:
        with self._lock:
            if self._stopped:
                return
            try:
                self.last = self.job.run()
            # What run_cycle raises for a paused job, refused credentials, a server that stays
            # unreachable or an unreadable state: recorded, and retried one interval on.
            except (CycleError, SourceError, LdapError, StateError, OSError) as e:
                self.failures.append(ScheduledFailure(clock.now_iso(), str(e)))
                self._arm_after_failure()
                return
            finally:
                self.cycles += 1
            self._arm()

    def _arm_after_failure(self) -> None:
        """A failed cycle left no startedAt in the history. A quarantined job (refused
        credentials) follows the back-off, and a disabled one is not re-armed; otherwise (an
        unreachable server) the next try is one interval on."""
        if self._stopped:
            return
        now = clock.now()
        when = self.job.next_run()
        if when is None:
            self._timer = None
            return
        if when <= now:
            when = now + self.job.interval
        self._timer = clock.current().call_at(when, self._fire)
