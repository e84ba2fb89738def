"""A no-change cycle does the same work on the job's third day as on its first (issue 17:
2,000 cycles over 28 days multiply it). Counted, never timed: the folders listed, the state
file's size, the tokens the fake Entra keeps."""

from __future__ import annotations

import os
from datetime import timedelta

import pytest

from harness.cli import build_parser
from harness.commands import served_job
from harness.engine.state import HISTORY_KEPT, STATE_NAME, EngineState
from harness.tenant import TenantSpec, generate
from tests.support.engine import simulated_time

TENANT = generate(TenantSpec(mailboxes=20, seed=29, cloud_managed_fraction=0.8))


def test_what_a_no_change_cycle_costs_does_not_grow_with_the_cycles_run(
    run, tmp_path, monkeypatch: pytest.MonkeyPatch
):
    listed: list[str] = []
    scandir = os.scandir

    def counting(path: str | os.PathLike[str] = ".") -> object:
        listed.append(os.fspath(path))
        return scandir(path)

    monkeypatch.setattr(os, "scandir", counting)
    assert run.cloud is not None
    auth = run.cloud.auth
    args = build_parser().parse_args(["serve", "--writeback", "--job-state", str(tmp_path)])
    with simulated_time() as sim:
        served = served_job.start(run.endpoints, args)
        assert served is not None
        try:
            sim.advance(timedelta(days=1))  # the initial cycle and 72 no-change ones
            first_day = (listed.count(str(tmp_path / "logs")), (tmp_path / STATE_NAME).stat())
            sim.advance(timedelta(days=2))
        finally:
            assert served.stop()
    assert served.schedule.cycles == 1 + 3 * 72 and not served.schedule.failures
    assert len(list((tmp_path / "logs").iterdir())) == served.schedule.cycles
    # The logs folder was listed for the first log only, not once a cycle.
    assert first_day[0] == 1 and listed.count(str(tmp_path / "logs")) == 1
    # The state keeps the last HISTORY_KEPT cycles: its file stays the size it had on day one.
    assert len(EngineState.load(tmp_path).history) == HISTORY_KEPT
    assert (tmp_path / STATE_NAME).stat().st_size <= first_day[1].st_size * 1.05
    # One token a cycle, 20 minutes apart, an hour's lifetime: those alive, not all 217.
    assert len(auth._verified) <= 4
