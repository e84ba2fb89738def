"""The served job (`exwb serve --writeback`, harness.commands.served_job) on a SimulatedClock,
in-process over real servers: cycles fall due in order, `exwb status` shows the schedule, and a
cycle never runs on the reactor thread."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from harness.cli import build_parser, main
from harness.commands import served_job
from harness.core import clock
from harness.engine.state import EngineState
from harness.tenant import TenantSpec, generate
from mockservers.runtime import ReactorThread
from tests.engine.test_cycle import ad_values, edit
from tests.support.engine import mailbox_pairs, simulated_time

TENANT = generate(TenantSpec(mailboxes=40, seed=17, cloud_managed_fraction=0.8))


def serve_args(*extra: str):
    """`exwb serve`'s parsed options (only the served job's matter here)."""
    return build_parser().parse_args(["serve", "--writeback", *extra])


def status(capsys, state_dir, *flags: str) -> tuple[int, str]:
    capsys.readouterr()
    code = main(["status", "--state-dir", str(state_dir), *flags])
    return code, capsys.readouterr().out


def test_advancing_two_hours_runs_six_cycles_in_order(run, tmp_path):
    with simulated_time() as sim:
        start = sim.now()
        served = served_job.start(run.endpoints, serve_args("--job-state", str(tmp_path)))
        assert served is not None
        try:
            assert sim.advance(timedelta(0)) == 1  # the initial cycle, due at once
            assert sim.advance(timedelta(hours=2)) == 6  # +20 min ... +120 min
        finally:
            assert served.stop()
        history = EngineState.load(tmp_path).history
        assert [h["startedAt"] for h in history] == [
            clock.iso(start + timedelta(minutes=20 * n)) for n in range(7)
        ]
        assert [h["mode"] for h in history] == ["delta"] * 7
        assert history[0]["objects"] == len(TENANT.mailboxes)  # the initial round reads all
        assert served.schedule.cycles == 7 and not served.schedule.failures
        assert sim.advance(timedelta(hours=1)) == 0  # stopped


def test_an_edit_arrives_with_the_next_cycle_and_status_shows_the_schedule(run, tmp_path, capsys):
    user, mbx = mailbox_pairs(TENANT, True)[0]
    with simulated_time() as sim:
        args = serve_args("--job-state", str(tmp_path), "--interval", "PT30M")
        served = served_job.start(run.endpoints, args)
        assert served is not None
        try:
            sim.advance(timedelta(minutes=10))
            edit(run, mbx, custom_attributes=("served", *mbx.custom_attributes[1:]))
            sim.advance(timedelta(minutes=25))  # the cycle at +30 min writes it
            assert served.schedule.last is not None
            assert served.schedule.last.actions.get("Update", 0) == 1
            assert ad_values(run, user.dn, "extensionAttribute1") == ["served"]
            last_began = EngineState.load(tmp_path).history[-1]["startedAt"]
            code, out = status(capsys, tmp_path, "--json")
            assert code == 0
            job = json.loads(out)
            assert job["schedule"] == {"interval": "PT30M", "state": "Active"}
            assert job["exwb"]["nextRun"] == clock.iso(sim.now() + timedelta(minutes=25))
            assert job["status"]["lastExecution"]["timeBegan"] == last_began
            code, out = status(capsys, tmp_path)
            assert "schedule: every PT30M (Active); next run " + job["exwb"]["nextRun"] in out
            assert f"last cycle began {last_began}" in out
        finally:
            served.stop()


def test_a_cycle_due_on_the_reactor_thread_is_refused_not_deadlocked(run, tmp_path):
    with simulated_time() as sim:
        served = served_job.start(run.endpoints, serve_args("--job-state", str(tmp_path)))
        assert served is not None
        try:
            ReactorThread.call(sim.advance, timedelta(minutes=1))  # advancing on the reactor
            assert served.schedule.cycles == 1 and len(served.schedule.failures) == 1
            assert "reactor thread" in served.schedule.failures[0].error
            assert EngineState.load(tmp_path).history == []  # nothing ran
            sim.advance(timedelta(minutes=20))  # off the reactor thread: it runs
            assert len(EngineState.load(tmp_path).history) == 1
        finally:
            served.stop()


def test_a_paused_job_is_looked_at_each_interval_and_resumes(run, tmp_path, capsys):
    with simulated_time() as sim:
        served = served_job.start(run.endpoints, serve_args("--job-state", str(tmp_path)))
        assert served is not None
        try:
            sim.advance(timedelta(0))
            assert status(capsys, tmp_path, "--pause")[0] == 1
            paused = json.loads(status(capsys, tmp_path, "--json")[1])
            assert paused["exwb"]["nextRun"] is None and paused["schedule"]["state"] == "Paused"
            sim.advance(timedelta(hours=1))
            assert len(EngineState.load(tmp_path).history) == 1  # paused: nothing ran
            assert all("paused" in f.error for f in served.schedule.failures)
            assert status(capsys, tmp_path, "--resume")[0] == 0
            sim.advance(timedelta(minutes=20))
            assert len(EngineState.load(tmp_path).history) == 2
        finally:
            served.stop()


def test_the_job_state_defaults_beside_the_tenant_state_or_to_a_removed_folder(run, tmp_path):
    with simulated_time():
        served = served_job.start(
            run.endpoints, serve_args("--state-dir", str(tmp_path / "tenant"))
        )
        assert served is not None and served.state_dir == tmp_path / "tenant" / "job"
        assert not served.temporary
        served.stop()
        assert (tmp_path / "tenant" / "job" / "state.json").exists()
        served = served_job.start(run.endpoints, serve_args())
        assert served is not None and served.temporary and served.state_dir.is_dir()
        served.stop()
        assert not served.state_dir.exists()
    assert served_job.start(run.endpoints, build_parser().parse_args(["serve"])) is None


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("PT20M", timedelta(minutes=20)),
        ("PT1S", timedelta(seconds=1)),
        ("P1DT6H", timedelta(days=1, hours=6)),
        ("P2W", timedelta(weeks=2)),
        ("pt0.5s", timedelta(seconds=0.5)),
    ],
)
def test_interval_is_an_iso_8601_duration(text, want):
    assert served_job.interval(text) == want


@pytest.mark.parametrize("text", ["20m", "P1M", "PT", "P", "PT0S", "P1Y", "PT-5M"])
def test_a_bad_interval_is_a_usage_error_naming_the_flag(text, capsys):
    with pytest.raises(SystemExit) as e:
        build_parser().parse_args(["serve", "--writeback", "--interval", text])
    assert e.value.code == 2
    assert "argument --interval" in capsys.readouterr().err
