"""The escrow retry schedule (harness.engine.escrow): +6 h, +12 h, +24 h, then daily; 28 days."""

from __future__ import annotations

from datetime import timedelta

from harness.core import clock
from harness.core.clock import SIMULATED_START
from harness.engine import escrow
from harness.engine.state import Escrow


def test_retries_follow_the_documented_offsets_then_daily():
    got = [escrow.next_attempt(SIMULATED_START, n) - SIMULATED_START for n in range(1, 6)]
    assert got == [timedelta(hours=h) for h in (6, 12, 24, 48, 72)]


def test_due_returns_only_entries_whose_attempt_has_come_earliest_first():
    def at(hours: int) -> Escrow:
        return Escrow(
            50, "denied", next_attempt=clock.iso(SIMULATED_START + timedelta(hours=hours))
        )

    entries = {f"u{h}": at(h) for h in (30, 6, 12, 24)}
    now = SIMULATED_START + timedelta(hours=12)
    assert escrow.due(entries, now) == ["u6", "u12"]
    assert escrow.due(entries, now, skip={"u6"}) == ["u12"]  # the delta brought it already
    assert escrow.due({"old": Escrow(50, "denied")}, now) == ["old"]  # an older state: next cycle


def test_an_entry_expires_28_days_after_its_first_failure():
    e = Escrow(50, "denied", first_failed=clock.iso(SIMULATED_START))
    assert not escrow.expired(e, SIMULATED_START + timedelta(days=27, hours=23))
    assert escrow.expired(e, SIMULATED_START + timedelta(days=28))
