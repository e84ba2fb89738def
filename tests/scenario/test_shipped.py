"""Every scenario shipped in scenarios/ passes: the small ones together, quickstart on its own,
and the CI-sized twin of the scale scenario in scenarios/scale/."""

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


@pytest.mark.shipped
def test_quickstart_passes_in_well_under_a_minute(tmp_path: Path) -> None:
    scenario = load_scenario(SCENARIOS / "quickstart.yaml")
    assert scenario.tenant.mailboxes == 10_000
    result = run_scenario(scenario, tmp_path)
    assert result["verdict"] == "passed", failures(result)


@pytest.mark.shipped
def test_scale_scenarios_are_valid_and_the_ci_sized_one_passes(tmp_path: Path) -> None:
    """scale_200k takes minutes and is documented, not run here; its 20,000-mailbox twin runs."""
    big = load_scenario(SCENARIOS / "scale" / "scale_200k.yaml")
    small = load_scenario(SCENARIOS / "scale" / "scale_20k.yaml")
    assert (big.tenant.mailboxes, small.tenant.mailboxes) == (200_000, 20_000)
    assert [type(s) for s in big.steps] == [type(s) for s in small.steps]
    result = run_scenario(small, tmp_path)
    assert result["verdict"] == "passed", failures(result)
    repair = next(c for c in result["cycles"] if c["mode"] == "full")
    assert repair["actions"]["Update"] >= 18_000
