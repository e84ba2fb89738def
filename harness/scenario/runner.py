"""Running one scenario: its own in-process tenant, the steps in order, then the thresholds.

`run_scenario` returns a `harness.report.model.ScenarioResult`, the contract with the reporters.

A failed expectation is recorded and the steps go on; a step that cannot do its work (say a
Set-Mailbox the scenario did not expect to be refused) stops the scenario with verdict "error".
"""

from __future__ import annotations

import resource
import time
import traceback
from pathlib import Path
from typing import Any, Protocol

from harness.core import clock
from harness.core.clock import SIMULATED_START, SimulatedClock
from harness.report.model import ExpectationRecord, ScenarioResult, StepRecord, ThresholdRecord
from harness.scenario import model as m
from harness.scenario.registry import check, run_step
from harness.scenario.steps import Outcome
from harness.scenario.world import CycleRecord, StepError, World
from harness.tenant import generate
from mockservers.runtime import (
    RunningTenant,
    TenantFolderError,
    load_tenant_folder,
    start_tenant,
    start_tenant_folder,
)


class Listener(Protocol):
    """Progress callbacks (`exwb run` shows them with rich)."""

    def generating(self, done: int, total: int) -> None:
        """Tenant generation progress."""

    def step_started(self, step: m.Step, what: str) -> None:
        """A step begins; `what` describes it."""

    def step_finished(self, record: StepRecord, expectations: list[ExpectationRecord]) -> None:
        """A step ended: its record and the expectations it evaluated."""


class Silent:
    """A Listener that shows nothing."""

    def generating(self, done: int, total: int) -> None:
        pass

    def step_started(self, step: m.Step, what: str) -> None:
        pass

    def step_finished(self, record: StepRecord, expectations: list[ExpectationRecord]) -> None:
        pass


def run_scenario(
    scenario: m.Scenario, out_dir: Path, listener: Listener | None = None
) -> ScenarioResult:
    """Run `scenario` against a fresh tenant (generated, or served from its `tenant.from`
    folder); the engine's state goes to `out_dir/engine-state`."""
    events: Listener = listener or Silent()
    started_at = clock.now()
    started = time.perf_counter()
    out_dir.mkdir(parents=True, exist_ok=True)
    state_dir = out_dir / "engine-state"
    result: ScenarioResult = {
        "scenario": scenario.name,
        "file": str(scenario.path),
        "started": started_at.isoformat(timespec="seconds"),
        "seconds": 0.0,
        "verdict": "passed",
        "error": None,
        "tenant": {k: _plain(getattr(scenario.tenant, k)) for k in ("mailboxes", "seed")},
        "profile": scenario.engine.profile.name,
        "steps": [],
        "expectations": [],
        "thresholds": [],
        "cycles": [],
        "warnings": [],
        "provisioning_logs": [],
    }
    for knob in scenario.tenant_keys:
        result["tenant"][knob] = _plain(getattr(scenario.tenant, knob))
    world: World | None = None
    # A simulated clock is the process's clock for the run (both fakes run in-process and read
    # it, as the engine does), installed before the tenant is generated so that every
    # timestamp of the run is on it; the previous clock comes back whatever happens.
    previous = None
    if scenario.clock.simulated:
        previous = clock.install(SimulatedClock(scenario.clock.start or SIMULATED_START))
    try:
        running = _start(scenario, result, events)
        try:
            world = World(scenario, running.endpoints, state_dir, running.faults)
            if scenario.needs_snapshot:
                world.take_snapshot()
            for step in scenario.steps:
                _run_one(world, step, result, events)
        finally:
            if world is not None:
                world.close()
            running.stop()
    except StepError as e:
        result["verdict"] = "error"
        result["error"] = str(e)
    except Exception as e:  # a bug or a server gone wrong: keep the run's record and the trace
        trace = out_dir / "traceback.txt"
        trace.write_text(traceback.format_exc(), encoding="utf-8")
        result["verdict"] = "error"
        result["error"] = f"{type(e).__name__}: {e} (traceback in {trace})"
    finally:
        if previous is not None:
            clock.install(previous)
    seconds = time.perf_counter() - started
    if world is not None:
        result["warnings"] = list(world.warnings)
        for record in world.cycles:
            for report in record.reports:
                result["cycles"].append({**report.as_dict(), "step": record.step})
            result["provisioning_logs"] += [str(p) for p in record.logs]
        result["thresholds"] = _thresholds(scenario, world.cycles, seconds)
    result["seconds"] = round(seconds, 3)
    if result["verdict"] == "passed":
        failed = any(not e["passed"] for e in result["expectations"]) or any(
            not t["passed"] for t in result["thresholds"]
        )
        result["verdict"] = "failed" if failed else "passed"
    return result


def _start(scenario: m.Scenario, result: ScenarioResult, events: Listener) -> RunningTenant:
    """Generate and serve the scenario's tenant, or serve its folder; note its figures."""
    t0 = time.perf_counter()
    if scenario.tenant_from is not None:
        try:
            folder = load_tenant_folder(scenario.tenant_from)
        except TenantFolderError as e:  # changed since the scenario was loaded
            raise StepError(f"tenant.from: {e}") from None
        loaded = time.perf_counter()
        running = start_tenant_folder(folder)
        result["tenant"].update(
            {
                "from": str(scenario.tenant_from),
                "directory_entries": len(running.service.store.entries),
                "recipients": len(folder.mailboxes),
                "cloud_managed": sum(mb.is_exchange_cloud_managed for mb in folder.mailboxes),
                "load_seconds": round(loaded - t0, 3),
                "start_seconds": round(time.perf_counter() - loaded, 3),
            }
        )
        return running
    tenant = generate(scenario.tenant, events.generating)
    generated = time.perf_counter()
    running = start_tenant(tenant)
    result["tenant"].update(
        {
            "ad_users": len(tenant.ad_users),
            "recipients": len(tenant.mailboxes),
            "cloud_managed": sum(mb.is_exchange_cloud_managed for mb in tenant.mailboxes),
            "generate_seconds": round(generated - t0, 3),
            "start_seconds": round(time.perf_counter() - generated, 3),
        }
    )
    return running  # the fakes hold what they need; the model goes with this frame


def _run_one(world: World, step: m.Step, result: ScenarioResult, events: Listener) -> None:
    events.step_started(step, step.describe())
    started = time.perf_counter()
    record: StepRecord = {
        "index": step.index,
        "kind": step.kind,
        "line": step.line,
        "seconds": 0.0,
        "summary": "",
        "figures": {},
    }
    result["steps"].append(record)
    try:
        outcome = _expect(world, step) if isinstance(step, m.Expect) else run_step(world, step)
    except StepError as e:
        record["seconds"] = round(time.perf_counter() - started, 3)
        record["summary"] = f"error: {e}"
        events.step_finished(record, [])
        raise StepError(f"step {step.index} ({step.kind}, line {step.line}): {e}") from None
    record["seconds"] = round(time.perf_counter() - started, 3)
    record["summary"] = outcome.summary
    record["figures"] = outcome.figures
    result["expectations"] += outcome.expectations
    events.step_finished(record, outcome.expectations)


def _expect(world: World, step: m.Expect) -> Outcome:
    records: list[ExpectationRecord] = []
    for e in step.expectations:
        passed, detail = check(world, step, e)
        records.append(
            {"step": step.index, "line": e.line, "name": e.name, "passed": passed, "detail": detail}
        )
    met = sum(r["passed"] for r in records)
    failed = [r["name"] for r in records if not r["passed"]]
    summary = f"{met} of {len(records)} expectation(s) met"
    if failed:
        summary += f"; failed: {', '.join(failed)}"
    return Outcome(summary, {"met": met, "failed": len(failed)}, records)


# --- thresholds -------------------------------------------------------------------------------


def peak_rss_mib() -> float:
    """The process's peak resident memory so far (Linux reports KiB)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _thresholds(
    scenario: m.Scenario, cycles: list[CycleRecord], seconds: float
) -> list[ThresholdRecord]:
    out: list[ThresholdRecord] = []
    for t in scenario.thresholds:
        measured = _measure(t, cycles, seconds)
        passed = measured is not None and (
            measured <= t.limit if t.bound == "max" else measured >= t.limit
        )
        out.append({"name": t.name, "limit": t.text, "measured": measured, "passed": passed})
    return out


def _measure(t: m.Threshold, cycles: list[CycleRecord], seconds: float) -> float | None:
    reports = [r for c in cycles for r in c.reports]
    if t.name == "peak_rss_mib":
        return peak_rss_mib()
    if t.name == "scenario_seconds":
        return round(seconds, 3)
    if t.name == "retries":
        return float(sum(sum(r.retries.values()) for r in reports))
    if t.name == "failures":
        return float(sum(r.statuses["Failure"] for r in reports))
    # Per-cycle figures: the worst cycle against the bound. On-demand runs are one object each
    # and say nothing about throughput, so they do not count.
    chosen = [c for c in cycles if c.mode != "on-demand"]
    if t.cycle == "last":
        chosen = chosen[-1:]
    elif t.cycle is not None:
        chosen = [c for c in chosen if c.name == t.cycle]
    figures = []
    for c in chosen:
        for r in c.reports:
            if t.name == "cycle_seconds":
                figures.append(r.seconds)
            elif r.objects and r.seconds:
                figures.append(r.objects / r.seconds)
    if not figures:
        return None
    worst = max(figures) if t.bound == "max" else min(figures)
    return round(worst, 3)


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return list(value)
    if hasattr(value, "items"):
        return {str(k): v for k, v in value.items()}
    return value
