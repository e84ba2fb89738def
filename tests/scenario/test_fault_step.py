"""The `fault` step and the `faults` expectation through the runner: what the report records."""

from __future__ import annotations

from pathlib import Path

from harness.report.markdown import markdown
from harness.scenario import load_scenario, run_scenario
from tests.scenario.conftest import write

SCENARIO = """\
name: fault-step
tenant: {mailboxes: 200, seed: 8}
steps:
  - cycle: {mode: delta, name: initial}
  - edit:
      select: {filter: "IsExchangeCloudManaged -eq $true", sample: 6, name: edited}
      set: {CustomAttribute2: "under fire {index}"}
  - fault: {server: ldap, kind: busy, on: modify, count: 2, name: busy}
  - fault: {server: http, kind: throttle, on: delta, retry_after: 0, count: 3, name: t}
  - fault: {server: http, kind: unavailable, on: delta, after: 100, count: unlimited, name: never}
  - cycle: {mode: delta, name: faulted}
  - fault: {clear: http}
  - expect:
      - faults: {ldap: {busy: 2}, http: {throttle: 3, unavailable: 0}}
      - faults: {ldap: {busy: 3}, name: wrong on purpose}
      - converged: {select: edited}
      - ad: {select: edited, attribute: extensionAttribute2, value: "under fire {index}"}
thresholds:
  retries: {min: 2}
"""


def test_a_fault_step_arms_the_tenants_plan_and_the_report_shows_it(tmp_path: Path) -> None:
    result = run_scenario(load_scenario(write(tmp_path, "s", SCENARIO)), tmp_path / "out")
    assert result["error"] is None, result["error"]
    steps = {s["index"]: s for s in result["steps"]}

    armed = steps[3]["figures"]["armed"]
    assert [armed[k] for k in ("name", "kind", "on", "count")] == ["busy", "busy", "modify", 2]
    assert steps[3]["summary"] == "armed busy: ldap busy on modify, 2 times"
    assert steps[5]["figures"]["stillArmed"] == ["busy", "t", "never"]

    # The faulted cycle: what was injected while it ran, the retries and the waits.
    cycle = steps[6]
    injected = cycle["figures"]["faultsInjected"]
    assert injected == {"http.throttle": 3, "ldap.busy": 2}
    assert "http.unavailable" not in injected
    assert cycle["figures"]["retriesByServer"]["graph"] == 3
    assert cycle["figures"]["retriesByServer"]["ldap"] >= 1
    assert cycle["figures"]["retries"] >= 2
    assert "retries (LDAP" in cycle["summary"] and "faults injected: " in cycle["summary"]
    (report,) = [c for c in result["cycles"] if c["step"] == 6]
    assert report["waitedSeconds"]["ldap"] > 0

    # Spent faults disarm themselves; clearing http took the one left, which never fired.
    cleared = steps[7]["figures"]["cleared"]
    assert [(c["name"], c["injected"], c["seen"]) for c in cleared] == [("never", 0, 4)]
    assert steps[7]["figures"]["stillArmed"] == []

    met = {e["name"]: e for e in result["expectations"]}
    right = met["faults injected: ldap.busy=2, http.throttle=3, http.unavailable=0"]
    assert right["passed"], right
    wrong = met["wrong on purpose"]
    assert not wrong["passed"] and "ldap.busy: 2, expected 3" in wrong["detail"]
    assert result["verdict"] == "failed"  # only because of the one meant to fail
    assert [t["passed"] for t in result["thresholds"]] == [True]
    assert "faults injected: " in markdown(result)
