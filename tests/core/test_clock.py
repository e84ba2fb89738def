"""The harness's clock: simulated time runs due work in order, never goes backwards."""

from __future__ import annotations

from datetime import timedelta

import pytest

from harness.core import clock
from harness.core.clock import SIMULATED_START, ClockError, SimulatedClock


def test_simulated_time_stands_still_until_advanced() -> None:
    c = SimulatedClock()
    assert c.now() == SIMULATED_START
    c.advance(timedelta(minutes=20))
    assert c.now() == SIMULATED_START + timedelta(minutes=20)


def test_advance_runs_due_calls_in_time_order_at_their_own_time() -> None:
    c = SimulatedClock()
    seen: list[tuple[str, object]] = []
    c.call_at(SIMULATED_START + timedelta(hours=2), lambda: seen.append(("b", c.now())))
    c.call_at(SIMULATED_START + timedelta(hours=1), lambda: seen.append(("a", c.now())))
    late = c.call_at(SIMULATED_START + timedelta(days=2), lambda: seen.append(("late", c.now())))
    ran = c.advance(timedelta(days=1))
    assert ran == 2
    assert seen == [
        ("a", SIMULATED_START + timedelta(hours=1)),
        ("b", SIMULATED_START + timedelta(hours=2)),
    ]
    assert c.now() == SIMULATED_START + timedelta(days=1)
    late.cancel()
    assert c.advance(timedelta(days=5)) == 0


def test_work_scheduled_inside_the_window_runs_in_the_same_advance() -> None:
    c = SimulatedClock()
    times: list[object] = []

    def every_20_minutes() -> None:
        times.append(c.now())
        c.call_at(c.now() + timedelta(minutes=20), every_20_minutes)

    c.call_at(c.now(), every_20_minutes)
    assert c.advance(timedelta(hours=1)) == 4  # at 0, 20, 40 and 60 minutes
    assert times[-1] == SIMULATED_START + timedelta(hours=1)


def test_time_never_goes_backwards() -> None:
    c = SimulatedClock()
    with pytest.raises(ClockError, match="backwards"):
        c.advance(timedelta(seconds=-1))
    with pytest.raises(ClockError, match="backwards"):
        c.advance_to(SIMULATED_START - timedelta(days=1))


def test_install_replaces_the_process_clock() -> None:
    sim = SimulatedClock()
    previous = clock.install(sim)
    try:
        assert clock.now() == SIMULATED_START
        assert clock.now_iso() == "2026-01-05T09:00:00Z"
        assert clock.parse_iso(clock.now_iso()) == SIMULATED_START
    finally:
        clock.install(previous)
    assert not clock.current().simulated
