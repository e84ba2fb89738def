"""The runner end to end on small tenants: every step kind and expectation, verdicts, exit codes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from harness.engine import log as provlog
from harness.scenario import load_scenario, run_scenario
from tests.scenario.conftest import exwb_run, reports, write

SCENARIO = """\
name: runner
tenant: {mailboxes: 200, seed: 3}
engine: {quarantine_min_failures: 100}
steps:
  - cycle: {mode: delta, name: initial}
  - edit:
      select:
        filter: "IsExchangeCloudManaged -eq $true -and RecipientTypeDetails -eq 'UserMailbox'"
        sample: 5
        name: edited
      set:
        CustomAttribute1: "runner-{index}"
        ExtensionCustomAttribute1: {Add: ["tag-{index}"]}
  - cycle: {mode: dry-run, name: preview}
  - expect:
      - log: {cycle: preview, statuses: {Skipped: 5}}
      - ad: {select: edited, attribute: extensionAttribute1, lacks: ["runner-{index}"]}
  - cycle: {mode: on-demand, select: edited, name: pod}
  - expect:
      - log: {cycle: pod, objects: 5, statuses: {Success: 5}, actions: {Update: 5}}
      - ad: {select: edited, attribute: extensionAttribute1, value: "runner-{index}"}
      - ad: {select: edited, attribute: msExchExtensionCustomAttribute1, contains: ["tag-{index}"]}
      - ldap_search: {filter: "(extensionAttribute1=runner-*)", entries: 5}
      - ldap_search:
          filter: >-
            (&(extensionAttribute1=runner-*)
            (userAccountControl:1.2.840.113556.1.4.803:=512))
          entries: 5
      - ldap_search:
          select: edited
          filter: "(&(objectClass=user)(extensionAttribute1=runner-{index}))"
          entries: 1
  - ad_edit:
      select: edited
      replace: {department: "the writeback account may not"}
      bind: writeback
      expect_error: 50
  - edit:
      select: {filter: "IsExchangeCloudManaged -eq $true", sample: 1, name: too-long}
      set:
        EmailAddresses: {Add: ["smtp:{x*1150}@{domain}"]}
  - cycle: {mode: delta, name: failing}
  - expect:
      - error_codes: {cycle: failing, present: [19], absent: [50]}
      - log: {cycle: failing, statuses: {Failure: 1, Success: 5}}
      - job: {state: Active, escrowed: 1}
      - converged: {select: edited}
      - out_of_scope_untouched: true
  - set_cloud_managed: {select: edited, value: false}
  - forward: {}
  - expect:
      - forward: {exported: 0, withheld: 1, reverted: 0}
      - cloud: {select: edited, property: IsExchangeCloudManaged, value: false}
thresholds:
  cycle_seconds: {max: 60}
  failures: {max: 1}
  retries: {max: 10}
"""

RESULT_KEYS = {
    "scenario", "file", "started", "seconds", "verdict", "error", "tenant", "profile", "steps",
    "expectations", "thresholds", "cycles", "warnings", "provisioning_logs",
}  # fmt: skip


def failures(result: dict[str, Any]) -> str:
    bad = [e for e in result["expectations"] if not e["passed"]]
    bad += [t for t in result["thresholds"] if not t["passed"]]
    return json.dumps({"error": result["error"], "failed": bad}, indent=1)


@pytest.fixture(scope="module")
def result(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("runner")
    return run_scenario(load_scenario(write(folder, "runner", SCENARIO)), folder / "out")


def test_every_step_and_expectation_kind_passes(result: dict[str, Any]) -> None:
    assert result["verdict"] == "passed", failures(result)
    assert set(result) == RESULT_KEYS
    assert [s["kind"] for s in result["steps"]] == [
        "cycle", "edit", "cycle", "expect", "cycle", "expect", "ad_edit", "edit", "cycle",
        "expect", "set_cloud_managed", "forward", "expect",
    ]  # fmt: skip
    assert all(
        set(s) == {"index", "kind", "line", "seconds", "summary", "figures"}
        for s in result["steps"]
    )
    assert all(
        set(e) == {"step", "line", "name", "passed", "detail"} for e in result["expectations"]
    )
    assert len(result["expectations"]) == 16  # 15 in expect steps + the ad_edit's refusal
    refusal = next(e for e in result["expectations"] if e["step"] == 7)
    assert refusal["name"] == "ad_edit refused with LDAP 50" and refusal["line"] == 37


def test_the_result_records_cycles_logs_tenant_and_thresholds(result: dict[str, Any]) -> None:
    assert result["tenant"]["mailboxes"] == 200 and result["tenant"]["seed"] == 3
    assert result["profile"] == "ga"
    modes = [(c["mode"], c["step"]) for c in result["cycles"]]
    assert modes == [("delta", 1), ("dry-run", 3)] + [("on-demand", 5)] * 5 + [("delta", 9)]
    assert len(result["provisioning_logs"]) == 8
    assert all(Path(p).is_file() for p in result["provisioning_logs"])
    assert [(t["name"], t["limit"], t["passed"]) for t in result["thresholds"]] == [
        ("cycle_seconds", "max 60", True), ("failures", "max 1", True), ("retries", "max 10", True),
    ]  # fmt: skip
    assert result["thresholds"][1]["measured"] == 1
    assert any("1 object(s) failed" in w and "LDAP 19" in w for w in result["warnings"])
    assert result["started"].endswith("+00:00")


def test_the_edit_step_reports_its_figures(result: dict[str, Any]) -> None:
    edit = result["steps"][1]
    assert edit["figures"]["selected"] == 5 and edit["figures"]["changed"] == 5
    assert edit["summary"] == "Set-Mailbox on 5 mailbox(es): 5 changed"
    assert result["steps"][6]["summary"].endswith("0 written, 5 refused")


WRONG = """\
name: wrong
tenant: {mailboxes: 200, seed: 5}
steps:
  - cycle: delta
  - edit:
      select: {filter: "IsExchangeCloudManaged -eq $true", sample: 2, name: edited}
      set: {CustomAttribute3: "right {index}"}
  - cycle: {mode: delta, name: edits}
  - expect:
      - ad: {select: edited, attribute: extensionAttribute3, value: "wrong {index}"}
      - log: {cycle: edits, actions: {Update: 2}}
  - expect:
      - converged: true
thresholds:
  cycle_seconds: {max: 0}
"""


def test_a_wrong_expectation_fails_with_exit_1_and_says_which(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, "wrong", WRONG)
    code, out, err = exwb_run(capsys, str(path), "--results", str(tmp_path / "results"))
    assert code == 1, out + err
    assert "FAILED step 4 line 10: ad extensionAttribute3 (edited)" in out
    assert "want ['wrong 1']" in out
    assert "EXCEEDED threshold cycle_seconds" in out
    (report,) = reports(tmp_path / "results")
    assert report["verdict"] == "failed"
    passed = [(e["line"], e["passed"]) for e in report["expectations"]]
    assert passed == [(10, False), (11, True), (13, True)]  # the steps went on after the failure
    assert report["thresholds"][0]["passed"] is False


STEP_ERROR = """\
name: step-error
tenant: {mailboxes: 200, seed: 5, cloud_managed_fraction: 0.5}
steps:
  - cycle: delta
  - edit:
      select: {filter: "IsExchangeCloudManaged -eq $false -and IsDirSynced -eq $true", sample: 1}
      set: {CustomAttribute3: "refused"}
  - cycle: delta
"""


def test_an_unexpected_refusal_stops_the_scenario_as_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, "step-error", STEP_ERROR)
    code, out, _ = exwb_run(capsys, str(path), "--results", str(tmp_path / "results"))
    assert code == 1
    (report,) = reports(tmp_path / "results")
    assert report["verdict"] == "error"
    assert report["error"].startswith("step 2 (edit, line 5): Set-Mailbox ")
    assert "TaskInvalidOperationException" in report["error"]
    assert [s["kind"] for s in report["steps"]] == ["cycle", "edit"]  # step 3 never ran
    assert "ERROR step-error" in out


def test_an_expected_refusal_that_does_not_come_fails_the_expectation(tmp_path: Path) -> None:
    text = STEP_ERROR.replace("$false", "$true").replace(
        'set: {CustomAttribute3: "refused"}',
        'set: {CustomAttribute3: "accepted"}\n      expect_error: TaskInvalidOperationException',
    )
    result = run_scenario(load_scenario(write(tmp_path, "s", text)), tmp_path / "out")
    assert result["verdict"] == "failed"
    (e,) = result["expectations"]
    assert e["name"] == "edit refused with TaskInvalidOperationException" and not e["passed"]
    assert "1 of 1 accepted" in e["detail"]


def test_sampling_is_the_same_on_every_run(tmp_path: Path) -> None:
    text = WRONG.replace("cycle_seconds: {max: 0}", "cycle_seconds: {max: 60}")
    scenario = load_scenario(write(tmp_path, "s", text))
    picked = []
    for run in ("a", "b"):
        result = run_scenario(scenario, tmp_path / run)
        log = Path(result["cycles"][1]["log"]).read_text().splitlines()
        picked.append(sorted(provlog.source_id(json.loads(line)) for line in log))
    assert picked[0] == picked[1] and len(picked[0]) == 2
