"""Scenarios with time: `clock:`, `wait`, `job` steps and the job, escrow and cycles
expectations. Loader errors name file:line; the runner installs the simulated clock for the run
and puts the previous one back; expectations about time can fail."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from harness.core import clock
from harness.core.clock import SIMULATED_START
from harness.scenario import ScenarioError, load_scenario, run_scenario
from harness.scenario import model as m
from tests.scenario.conftest import write

HEAD = "name: timed\ntenant: {mailboxes: 60, seed: 3}\n"
SIM = HEAD + "clock: simulated\n"  # three lines before the steps


def case(name: str, head: str, text: str, line: int, fragment: str) -> tuple:
    return (name, head + textwrap.dedent(text).lstrip("\n"), line, fragment)


CORPUS = [
    case(
        "wait-on-the-wall-clock",
        HEAD,
        "steps:\n  - wait: {minutes: 20}\n",
        4,
        "wait needs a simulated clock",
    ),
    case("wait-empty", SIM, "steps:\n  - wait: {}\n", 5, "wait needs days, hours or minutes"),
    case("wait-weeks", SIM, "steps:\n  - wait: {weeks: 1}\n", 5, "unknown key 'weeks' in wait"),
    case("wait-zero", SIM, "steps:\n  - wait: {minutes: 0, hours: 0}\n", 5, "wait is zero"),
    case(
        "wait-negative", SIM, "steps:\n  - wait: {hours: -6}\n", 5, "wait.hours must be at least 0"
    ),
    case("wait-text", SIM, "steps:\n  - wait: 20 minutes\n", 5, "wait must be a mapping"),
    case(
        "clock-unknown", HEAD, "clock: lunar\nsteps: [cycle: delta]\n", 3, "unknown clock 'lunar'"
    ),
    case(
        "clock-wall-with-start",
        HEAD,
        "clock: {kind: wall, start: 2026-01-05T09:00:00Z}\nsteps: [cycle: delta]\n",
        3,
        "only a simulated clock has a start",
    ),
    case(
        "clock-start-naive",
        HEAD,
        "clock:\n  kind: simulated\n  start: 2026-01-05T09:00:00\nsteps: [cycle: delta]\n",
        5,
        "has no timezone",
    ),
    case(
        "clock-start-not-a-time",
        HEAD,
        "clock: {kind: simulated, start: next monday}\nsteps: [cycle: delta]\n",
        3,
        "is not an ISO 8601 time",
    ),
    case("job-unknown-action", SIM, "steps:\n  - job: pasue\n", 5, "did you mean 'pause'?"),
    case(
        "job-unknown-scope",
        SIM,
        'steps:\n  - job: {restart: "Escrows, Everything"}\n',
        5,
        "'Everything' is not one of",
    ),
    case(
        "job-two-things", SIM, "steps:\n  - job: {pause: true, start: true}\n", 5, "does one thing"
    ),
    case(
        "job-unknown-credential",
        SIM,
        "steps:\n  - job: {stale_credentials: password}\n",
        5,
        "unknown credential 'password'",
    ),
    case(
        "next-attempt-not-relative",
        SIM,
        """
        steps:
          - cycle: delta
          - expect:
              - job: {nextAttempt: "+6x"}
        """,
        7,
        "is not a relative time",
    ),
    case(
        "next-attempt-on-the-wall-clock",
        HEAD,
        """
        steps:
          - cycle: delta
          - expect:
              - job: {nextAttempt: "+6h"}
        """,
        6,
        "only a simulated clock makes repeatable",
    ),
    case(
        "escrow-before-any-cycle",
        SIM,
        """
        steps:
          - expect:
              - escrow: {object: {sample: 1}, attempts: 1}
        """,
        6,
        "no cycle ran before it",
    ),
    case(
        "escrow-absent-with-attempts",
        SIM,
        """
        steps:
          - cycle: delta
          - expect:
              - escrow: {object: {sample: 1}, absent: true, attempts: 1}
        """,
        7,
        "an absent escrow entry has no attempts",
    ),
    case(
        "escrow-checks-nothing",
        SIM,
        """
        steps:
          - cycle: delta
          - expect:
              - escrow: {object: {sample: 1}}
        """,
        7,
        "escrow checks nothing",
    ),
    case(
        "escrow-unknown-selection",
        SIM,
        """
        steps:
          - cycle: delta
          - expect:
              - escrow: {object: moved, attempts: 1}
        """,
        7,
        "no selection named 'moved'",
    ),
    case(
        "cycles-before-any-wait",
        SIM,
        """
        steps:
          - cycle: delta
          - expect:
              - cycles: 1
        """,
        7,
        "no wait came before it",
    ),
    case(
        "cycles-without-ran",
        SIM,
        """
        steps:
          - wait: {minutes: 20}
          - expect:
              - cycles: {failed: 0}
        """,
        7,
        "cycles needs 'ran'",
    ),
    case(
        "ad-move-without-to",
        SIM,
        "steps:\n  - ad_move: {select: {sample: 1}}\n",
        5,
        "ad_move needs 'to'",
    ),
]


@pytest.mark.parametrize(
    ("text", "line", "fragment"), [c[1:] for c in CORPUS], ids=[c[0] for c in CORPUS]
)
def test_a_broken_timed_scenario_names_file_and_line(
    tmp_path: Path, text: str, line: int, fragment: str
) -> None:
    path = write(tmp_path, "broken", text)
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    message = str(info.value)
    assert message.startswith(f"{path}:{line}: "), message
    assert fragment in message, message


VALID = SIM.replace("clock: simulated", "clock: {kind: simulated, start: 2026-02-02T06:00:00Z}")
VALID += """\
steps:
  - cycle: {mode: full}
  - job: pause
  - job: {restart: "escrows, Watermark"}
  - job: restart
  - job: {stale_credentials: account}
  - job: {update_credentials: account}
  - job: start
  - wait: {days: 1, hours: 2, minutes: 30}
  - expect:
      - cycles: {ran: {min: 1}, failed: 0}
      - job: {state: Active, nextAttempt: "+1d2h"}
      - job: {nextAttempt: null}
      - job: {nextAttempt: 2026-02-03T08:50:00Z}
      - escrow: {object: {sample: 2, name: two}, attempts: 1, nextAttempt: "+6h"}
      - escrow: {object: two, absent: true}
"""


def test_a_timed_scenario_becomes_the_model(tmp_path: Path) -> None:
    s = load_scenario(write(tmp_path, "valid", VALID))
    assert s.clock == m.ClockSettings("simulated", datetime(2026, 2, 2, 6, tzinfo=UTC))
    jobs = [st for st in s.steps if isinstance(st, m.JobControl)]
    assert [(j.action, j.reset_scope, j.stale, j.update) for j in jobs] == [
        ("pause", "", None, None),
        ("restart", "escrows, Watermark", None, None),
        ("restart", "", None, None),
        (None, "", "account", None),
        (None, "", None, "account"),
        ("start", "", None, None),
    ]
    (wait,) = [st for st in s.steps if isinstance(st, m.Wait)]
    assert wait.span == timedelta(days=1, hours=2, minutes=30)
    assert wait.text == "1 day 2 hours 30 minutes"
    cycles, job, never, at, escrow, absent = s.expectations()
    assert isinstance(cycles, m.CyclesRan) and cycles.count == m.Count(minimum=1)
    assert isinstance(job, m.JobState) and job.next_attempt == m.When(
        "+1d2h", offset=timedelta(days=1, hours=2)
    )
    assert isinstance(never, m.JobState) and never.next_attempt is not None
    assert never.next_attempt.never
    assert isinstance(at, m.JobState) and at.next_attempt is not None
    assert at.next_attempt.at == datetime(2026, 2, 3, 8, 50, tzinfo=UTC)
    assert isinstance(escrow, m.EscrowState) and escrow.attempts == m.Count(exactly=1)
    assert isinstance(absent, m.EscrowState) and absent.absent


def test_the_default_clock_is_the_wall(tmp_path: Path) -> None:
    s = load_scenario(write(tmp_path, "wall", HEAD + "steps: [cycle: delta]\n"))
    assert not s.clock.simulated


RUN = (
    SIM
    + """\
steps:
  - wait: {minutes: 40}
  - expect:
      - cycles: 3
      - cycles: 4
      - job: {state: Active, nextAttempt: "+20m"}
      - job: {nextAttempt: "+40m"}
  - job: pause
  - wait: {days: 2}
  - expect:
      - cycles: 0
      - job: {state: Paused, nextAttempt: null}
"""
)


def test_the_schedule_runs_during_waits_on_the_simulated_clock_and_the_clock_is_restored(
    tmp_path: Path,
) -> None:
    before = clock.current()
    result = run_scenario(load_scenario(write(tmp_path, "run", RUN)), tmp_path / "out")
    assert clock.current() is before  # the wall clock again
    assert result["error"] is None
    passed = [(e["name"], e["passed"]) for e in result["expectations"]]
    assert [p for _, p in passed] == [True, False, True, False, True, True], passed
    failed = [e["detail"] for e in result["expectations"] if not e["passed"]]
    assert failed[0].startswith("3 cycle(s) ran (want 4)")
    assert "next attempt 2026-01-05T10:00:00Z (want 2026-01-05T10:20:00Z" in failed[1]
    wait = result["steps"][0]
    assert wait["figures"]["cycles"] == 3 and wait["figures"]["now"] == "2026-01-05T09:40:00Z"
    started = [r["startedAt"] for r in wait["figures"]["results"]]
    start = SIMULATED_START
    assert started == [clock.iso(start + timedelta(minutes=n)) for n in (0, 20, 40)]
    assert result["steps"][3]["figures"]["cycles"] == 0  # paused: the schedule runs nothing


def test_a_step_error_still_restores_the_clock(tmp_path: Path) -> None:
    before = clock.current()
    text = SIM + "steps:\n  - ad_move: {select: {sample: 1}, to: 'OU=Nowhere,DC=contoso,DC=com'}\n"
    result = run_scenario(load_scenario(write(tmp_path, "bad", text)), tmp_path / "out")
    assert result["verdict"] == "error" and "OU=Nowhere" in str(result["error"])
    assert clock.current() is before


LIFECYCLE = sorted((Path(__file__).resolve().parents[2] / "scenarios").glob("lifecycle_*.yaml"))


def test_the_lifecycle_scenarios_are_small_and_timed() -> None:
    """They run in tests/scenario/test_shipped.py with every small shipped scenario."""
    names = {p.stem for p in LIFECYCLE}
    assert names == {
        "lifecycle_acl_escrow",
        "lifecycle_credential_quarantine",
        "lifecycle_restart",
        "lifecycle_schedule",
        "lifecycle_stale_delta",
    }
    for path in LIFECYCLE:
        s = load_scenario(path)
        assert s.clock.simulated and 50 <= s.tenant.mailboxes <= 200, path.name
        assert any(isinstance(st, m.Wait) for st in s.steps), path.name
