"""The job's documented lifecycle over time (Graph's synchronizationStatus and
synchronizationQuarantine; microsoft-facts §4.3, §8.2), on a SimulatedClock over real servers:
escrows pruned in the initial cycle, a quarantine series, any success lifting it, and the job
disabled after four weeks in quarantine."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest

from harness.core import clock
from harness.engine import log as provlog
from harness.engine.cycle import CycleOptions, run_cycle
from harness.engine.health import QuarantineBackoff, QuarantinePolicy, job_status
from harness.engine.job import WritebackJob
from harness.engine.rules import GA, load_profile
from harness.engine.schedule import Schedule
from harness.engine.state import EngineState
from harness.tenant import TenantSpec, generate
from tests.support.engine import log_entries, mailbox_pairs, simulated_time, writeback_credentials

TENANT = generate(TenantSpec(mailboxes=60, seed=23, cloud_managed_fraction=0.8))


@pytest.fixture
def denied(tmp_path):
    """A profile whose extra target the writeback account may not write (LDAP 50)."""
    path = tmp_path / "denied.yaml"
    path.write_text(
        "based_on: ga\nname: denied\nmappings:\n"
        "  - target: msExchHideFromAddressLists\n"
        "    expression: '\"TRUE\"'\n",
        encoding="utf-8",
    )
    return load_profile(path)


def in_scope_failing() -> int:
    return len([m for _, m in mailbox_pairs(TENANT, True) if not m.hidden_from_address_lists])


def test_the_initial_cycle_prunes_escrows_and_pauses_instead_of_quarantining(run, tmp_path, denied):
    with simulated_time():
        report = run_cycle(*writeback_credentials(run.endpoints), denied, tmp_path)
        assert report.statuses["Failure"] == in_scope_failing() >= 10  # the threshold's floor
        assert {
            provlog.error_code(e) for e in log_entries(report) if provlog.status(e) == "Failure"
        } == {50}
        assert report.job_state == "Paused" and report.escrowed == 0
        assert any("escrows pruned" in w for w in report.warnings)
        state = EngineState.load(tmp_path)
        assert state.escrow == {} and state.quarantine is None and state.paused
        status = job_status(state, denied, "k")["status"]
        assert status["escrowsPruned"] is True and status["code"] == "Paused"
        # A restart that resets the escrows starts over: the flag goes with them.
        state.restart("Escrows")
        assert job_status(state, denied, "k")["status"]["escrowsPruned"] is False


def test_failures_below_the_threshold_in_the_initial_cycle_stay_escrowed(run, tmp_path, denied):
    with simulated_time():
        lenient = CycleOptions(quarantine=QuarantinePolicy(min_failures=10_000))
        cloud, ldap = writeback_credentials(run.endpoints)
        report = run_cycle(cloud, ldap, denied, tmp_path, "delta", lenient)
        assert report.job_state == "Active" and report.escrowed == in_scope_failing()
        state = EngineState.load(tmp_path)
        assert not state.escrows_pruned and not state.paused


def test_a_quarantine_series_counts_re_evaluations_and_any_success_lifts_it(run, tmp_path):
    with simulated_time() as sim:
        job = WritebackJob(tmp_path, *writeback_credentials(run.endpoints), GA)
        good = job.ldap
        job.ldap = dataclasses.replace(good, password="not-the-password")
        schedule = Schedule(job)
        schedule.start()
        began = sim.now()
        sim.advance(timedelta(hours=6))  # refused at 0, 40, 120, 280 min (back-off)
        q = job.status()["status"]["quarantine"]
        assert q is not None and q["seriesBegan"] == clock.iso(began)
        assert q["currentBegan"] == clock.iso(began + timedelta(minutes=280))
        assert q["seriesCount"] == 3
        assert q["nextAttempt"] == clock.iso(began + timedelta(minutes=280 + 320))
        job.ldap = good  # the credentials are fixed: the next attempt succeeds
        sim.advance(timedelta(hours=4))
        status = job.status()["status"]
        assert status["code"] == "Active" and status["quarantine"] is None
        assert status["lastExecution"]["timeBegan"] == clock.iso(began + timedelta(minutes=600))
        schedule.stop()


@pytest.mark.parametrize("disabled_code", ["Quarantine", "Paused"])
def test_four_weeks_in_quarantine_disable_the_job(run, tmp_path, disabled_code):
    with simulated_time() as sim:
        backoff = QuarantineBackoff(disabled_code=disabled_code)
        job = WritebackJob(tmp_path, *writeback_credentials(run.endpoints), GA, backoff=backoff)
        job.ldap = dataclasses.replace(job.ldap, password="not-the-password")
        schedule = Schedule(job)
        schedule.start()
        began = sim.now()
        sim.advance(timedelta(days=27))
        before = job.status()
        assert before["schedule"]["state"] == "Active" and not before["exwb"]["disabled"]
        assert before["status"]["code"] == "Quarantine"
        sim.advance(timedelta(days=2))
        after = job.status()
        assert after["schedule"]["state"] == "Disabled" and after["exwb"]["disabled"]
        assert after["status"]["code"] == disabled_code
        q = after["status"]["quarantine"]
        assert q is not None and q["nextAttempt"] is None and q["seriesBegan"] == clock.iso(began)
        assert after["exwb"]["nextRun"] is None and job.next_run() is None
        # The last attempt fell within the four weeks; none after them.
        assert clock.parse_iso(q["currentBegan"]) - began < timedelta(days=28)
        ran = schedule.cycles
        sim.advance(timedelta(days=7))
        assert schedule.cycles == ran
        schedule.stop()
        # Graph's restart with QuarantineState re-enables it.
        job.restart("QuarantineState")
        assert job.status()["schedule"]["state"] == "Active" and job.next_run() is not None
