"""Every scenario shipped in scenarios/ passes: the small ones together, quickstart on its own."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.scenario import load_scenario, run_scenario

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"
SMALL_LIMIT = 2_000  # mailboxes: above this a scenario is "big" and not in the quick batch
SHIPPED = sorted(SCENARIOS.glob("*.yaml"))
SMALL = [p for p in SHIPPED if load_scenario(p).tenant.mailboxes <= SMALL_LIMIT]


def failures(result: dict) -> list:
    bad = [e for e in result["expectations"] if not e["passed"]]
    return [result["error"], *bad, *(t for t in result["thresholds"] if not t["passed"])]


def test_each_shipped_scenario_says_what_it_shows() -> None:
    assert len(SHIPPED) >= 8
    for path in SHIPPED:
        first = path.read_text(encoding="utf-8").splitlines()[:3]
        assert all(line.startswith("#") for line in first), f"{path.name}: no comment block"


@pytest.mark.shipped
@pytest.mark.parametrize("path", SMALL, ids=[p.stem for p in SMALL])
def test_small_shipped_scenarios_pass(path: Path, tmp_path: Path) -> None:
    result = run_scenario(load_scenario(path), tmp_path)
    assert result["verdict"] == "passed", failures(result)
    assert result["seconds"] < 20


@pytest.mark.shipped
def test_quickstart_passes_in_well_under_a_minute(tmp_path: Path) -> None:
    scenario = load_scenario(SCENARIOS / "quickstart.yaml")
    assert scenario.tenant.mailboxes == 10_000
    result = run_scenario(scenario, tmp_path)
    assert result["verdict"] == "passed", failures(result)
    assert result["seconds"] < 45
