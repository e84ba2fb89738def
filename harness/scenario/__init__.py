"""YAML scenarios: load and validate (`load_scenario`), run (`run_scenario`)."""

from harness.scenario.loader import load_scenario
from harness.scenario.reader import ScenarioError
from harness.scenario.runner import Listener, run_scenario

__all__ = ["Listener", "ScenarioError", "load_scenario", "run_scenario"]
