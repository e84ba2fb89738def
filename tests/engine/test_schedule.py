"""The job on its schedule (harness.engine.schedule) over real servers, on a SimulatedClock."""

from __future__ import annotations

from datetime import timedelta
from itertools import pairwise

from harness.core import clock
from harness.engine.job import WritebackJob
from harness.engine.rules import GA
from harness.engine.schedule import Schedule
from harness.engine.state import EngineState
from tests.engine.test_cycle import TENANT, edit
from tests.support.engine import mailbox_pairs, simulated_time, writeback_credentials


def job(run, state_dir):
    return WritebackJob(state_dir, *writeback_credentials(run.endpoints), GA)


def test_advancing_runs_every_cycle_that_falls_due_each_at_its_own_time(run, tmp_path):
    with simulated_time() as sim:
        start = sim.now()
        schedule = Schedule(job(run, tmp_path))
        schedule.start()
        assert sim.advance(timedelta(hours=2)) == 7  # at 0, 20, ..., 120 minutes
        history = EngineState.load(tmp_path).history
        assert [h["startedAt"] for h in history] == [
            clock.iso(start + timedelta(minutes=20 * n)) for n in range(7)
        ]
        # The first is the initial full round; the no-change deltas after it see nothing.
        assert history[0]["objects"] == len(TENANT.mailboxes)
        assert {h["objects"] for h in history[1:]} == {0}
        schedule.stop()
        assert sim.advance(timedelta(hours=1)) == 0  # stopped: nothing runs


def test_an_edit_is_written_by_the_next_scheduled_cycle(run, tmp_path):
    with simulated_time() as sim:
        schedule = Schedule(job(run, tmp_path))
        schedule.start()
        sim.advance(timedelta(minutes=1))
        _, mbx = mailbox_pairs(TENANT, True)[0]
        edit(run, mbx, custom_attributes=("scheduled", *mbx.custom_attributes[1:]))
        sim.advance(timedelta(minutes=19))
        assert schedule.last is not None and schedule.last.actions.get("Update", 0) == 1
        schedule.stop()


def test_a_paused_job_is_not_scheduled_and_a_refused_cycle_is_recorded(run, tmp_path):
    with simulated_time() as sim:
        j = job(run, tmp_path)
        j.pause()
        schedule = Schedule(j)
        schedule.start()
        assert sim.advance(timedelta(hours=1)) == 0
        schedule.stop()
    with simulated_time() as sim:
        j.start()
        j.ldap = type(j.ldap)("ldap://127.0.0.1:1", j.ldap.bind_dn, j.ldap.password, j.ldap.base_dn)
        schedule = Schedule(j)
        schedule.start()
        assert sim.advance(timedelta(minutes=45)) == 3  # refused, recorded, retried each interval
        assert len(schedule.failures) == 3
        schedule.stop()


def test_a_quarantined_job_backs_off_to_once_a_day_and_is_disabled_after_four_weeks(run, tmp_path):
    with simulated_time() as sim:
        j = job(run, tmp_path)
        j.ldap = type(j.ldap)(j.ldap.url, j.ldap.bind_dn, "not-the-password", j.ldap.base_dn)
        schedule = Schedule(j)
        started: list[object] = []
        fire = schedule._fire

        def spy() -> None:
            started.append(sim.now())
            fire()

        schedule._fire = spy  # type: ignore[method-assign]
        schedule.start()
        sim.advance(timedelta(days=3))
        gaps = [b - a for a, b in pairwise(started)]
        # Refused credentials quarantine at once; each gap doubles from 40 minutes, up to a day.
        assert gaps[:6] == [timedelta(minutes=20 * 2**n) for n in range(1, 7)]
        assert gaps[-1] == timedelta(days=1) and max(gaps) == timedelta(days=1)
        status = j.status()["status"]
        assert status["code"] == "Quarantine"
        q = status["quarantine"]
        assert q is not None and q["reason"] == "EncounteredQuarantineException"
        # Graph's seriesCount: the re-evaluations that left it in effect (not the first one).
        assert q["seriesCount"] == len(started) - 1
        assert q["seriesBegan"] == clock.iso(started[0])
        assert q["currentBegan"] == clock.iso(started[-1])
        assert q["nextAttempt"] == clock.iso(started[-1] + timedelta(days=1))
        # Four weeks after it began the job is disabled: nothing more is scheduled.
        sim.advance(timedelta(days=30))
        assert clock.parse_iso(q["seriesBegan"]) + timedelta(days=28) > started[-1]
        assert j.status()["status"]["quarantine"]["nextAttempt"] is None
        assert j.next_run() is None
        before = len(started)
        sim.advance(timedelta(days=7))
        assert len(started) == before
        schedule.stop()


def test_starting_a_running_schedule_again_keeps_one_chain_of_cycles(run, tmp_path):
    with simulated_time() as sim:
        schedule = Schedule(job(run, tmp_path))
        schedule.start()
        assert sim.advance(timedelta(minutes=30)) == 2  # at 0 and 20 minutes
        schedule.start()  # as Graph's start on a job already running does
        schedule.start()
        assert sim.advance(timedelta(minutes=60)) == 3  # 40, 60, 80: one chain, not three
        assert len(EngineState.load(tmp_path).history) == 5
        schedule.stop()
