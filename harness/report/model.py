"""The result of a scenario run: the contract between the scenario runner and the reporters.

TypedDicts, not dataclasses: the result is written to report.json as it is (the keys are the
JSON's), and the reporters read it back from there too.
"""

from __future__ import annotations

from typing import Any, Literal, NotRequired, TypedDict

from harness.engine.state import CycleSummary

Verdict = Literal["passed", "failed", "error"]


class StepRecord(TypedDict):
    """One step as it ran."""

    index: int
    kind: str
    line: int
    seconds: float
    summary: str  # one line for people; "error: ..." when the step could not do its work
    figures: dict[str, Any]  # the step's measured figures, by name


class ExpectationRecord(TypedDict):
    step: int
    line: int
    name: str
    passed: bool
    detail: str


class ThresholdRecord(TypedDict):
    name: str
    limit: str  # as the scenario wrote it, e.g. "max 30"
    measured: float | None  # None: nothing to measure it on
    passed: bool


class StepCycle(CycleSummary):
    """A cycle report with the index of the step that ran it."""

    step: int


class ScenarioResult(TypedDict):
    scenario: str
    file: str
    started: str  # ISO 8601 UTC
    seconds: float
    verdict: Verdict
    error: str | None
    tenant: dict[str, Any]  # size, seed and knobs, then what the generator made
    profile: str
    steps: list[StepRecord]
    expectations: list[ExpectationRecord]
    thresholds: list[ThresholdRecord]
    cycles: list[StepCycle]
    warnings: list[str]
    provisioning_logs: list[str]
    results_dir: NotRequired[str]  # set by `exwb run` for the summary's verdict line
    generatedBy: NotRequired[str]  # set in report.json
