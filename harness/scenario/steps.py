"""Running the steps that act: cloud edits, AD edits, the cloud-managed flag, cycles, forward,
decommission, faults (each kind's runner is named in `harness.scenario.registry`).

Each returns an `Outcome`: a one-line summary, figures for the report, and the step's own
expectations (a step with ``expect_error`` expects every object to be refused). A failure the
scenario did not expect raises `StepError`.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.clients.exo import CmdletError, modified_nothing
from harness.core import clock
from harness.core.ber import APP_MODDN_REQUEST, APP_MODDN_RESPONSE, boolean, octets, tlv
from harness.core.clock import SimulatedClock
from harness.core.dn import normalize_dn
from harness.engine import log as provlog
from harness.engine.cycle import CycleError, CycleReport, run_cycle, run_on_demand
from harness.engine.forward import ForwardError, connect_credentials, run_forward
from harness.engine.ldapwire import LdapConnection, LdapError
from harness.engine.schedule import Schedule
from harness.engine.source import SourceError
from harness.engine.state import StateError
from harness.engine.target import LdapTarget
from harness.report.model import ExpectationRecord
from harness.scenario import model as m
from harness.scenario.templates import Template, TemplateError
from harness.scenario.world import CycleRecord, StepError, Target, WaitRecord, World
from mockservers.faults import FaultError, since

EXAMPLES = 3
_SERVER_NAMES = {"ldap": "LDAP", "graph": "Graph"}


@dataclass(slots=True)
class Outcome:
    summary: str
    figures: dict[str, Any] = field(default_factory=dict)
    expectations: list[ExpectationRecord] = field(default_factory=list)


def render(value: Any, fields: dict[str, str | None]) -> Any:
    """A parameter value with its templates filled in (lists and Add/Remove tables too)."""
    if isinstance(value, Template):
        return value.render(fields)
    if isinstance(value, list):
        return [render(v, fields) for v in value]
    if isinstance(value, dict):
        return {k: render(v, fields) for k, v in value.items()}
    return value


# --- cloud edits ------------------------------------------------------------------------------


def edit(world: World, step: m.Edit) -> Outcome:
    targets = world.select(step.select, step.index)
    return _set_mailbox(
        world, step, targets, lambda t, i: _rendered(step.parameters, _fields(world, t, i))
    )


def set_cloud_managed(world: World, step: m.SetCloudManaged) -> Outcome:
    targets = world.select(step.select, step.index)
    outcome = _set_mailbox(
        world, step, targets, lambda t, i: {"IsExchangeCloudManaged": step.value}
    )
    world.flipped.update(t.id for t in targets)
    return outcome


def _set_mailbox(
    world: World,
    step: m.Edit | m.SetCloudManaged,
    targets: list[Target],
    parameters: Callable[[Target, int], dict[str, Any]],
) -> Outcome:
    started = time.perf_counter()
    changed = unchanged = 0
    refused: list[tuple[Target, str, str]] = []
    for i, t in enumerate(targets, 1):
        try:
            body = world.exo.invoke("Set-Mailbox", Identity=t.id, **parameters(t, i))
        except CmdletError as e:
            if step.refused is None:
                raise StepError(f"Set-Mailbox {t.upn} was refused: {e}") from None
            refused.append((t, e.code, e.message))
            continue
        if modified_nothing(body):
            unchanged += 1
        else:
            changed += 1
    seconds = time.perf_counter() - started
    figures = {
        "selected": len(targets),
        "changed": changed,
        "unchanged": unchanged,
        "refused": len(refused),
        "seconds": round(seconds, 3),
    }
    summary = f"Set-Mailbox on {len(targets):,} mailbox(es): {changed:,} changed"
    if unchanged:
        summary += f", {unchanged:,} unchanged"
    if refused:
        summary += f", {len(refused):,} refused ({refused[0][1]})"
    return Outcome(summary, figures, _refusal(step, targets, refused))


def _refusal(
    step: m.Edit | m.SetCloudManaged | m.AdEdit,
    targets: list[Target],
    refused: list[tuple[Target, Any, str]],
) -> list[ExpectationRecord]:
    """The step's expect_error as an expectation record: every object refused with the code."""
    if step.refused is None:
        return []
    code = step.refused.code
    wrong = [(t, c, msg) for t, c, msg in refused if c != code]
    refused_ids = {t.id for t, _, _ in refused}
    accepted = [t for t in targets if t.id not in refused_ids]
    what = f"LDAP {code}" if isinstance(code, int) else code
    if not wrong and not accepted:
        detail = f"all {len(targets):,} refused with {what}: {refused[0][2][:200]}"
    else:
        parts = []
        if accepted:
            shown = ", ".join(t.upn for t in accepted[:EXAMPLES])
            parts.append(f"{len(accepted):,} of {len(targets):,} accepted ({shown})")
        if wrong:
            t, c, msg = wrong[0]
            parts.append(f"{len(wrong):,} refused otherwise, e.g. {t.upn}: {c}: {msg[:200]}")
        detail = "; ".join(parts)
    return [
        {
            "step": step.index,
            "line": step.refused.line,
            "name": f"{step.kind} refused with {what}",
            "passed": not wrong and not accepted,
            "detail": detail,
        }
    ]


def _fields(world: World, t: Target, index: int) -> dict[str, str | None]:
    return t.fields(index, world.domain)


def _rendered(value: Any, fields: dict[str, str | None]) -> Any:
    try:
        return render(value, fields)
    except TemplateError as e:
        raise StepError(str(e)) from None


# --- AD edits ---------------------------------------------------------------------------------


def ad_edit(world: World, step: m.AdEdit) -> Outcome:
    targets = world.select(step.select, step.index, ad=True)
    started = time.perf_counter()
    written = 0
    refused: list[tuple[Target, int, str]] = []
    try:
        with LdapTarget(world.accounts[step.bind], []) as target:
            for i, t in enumerate(targets, 1):
                assert t.dn is not None
                fields = _fields(world, t, i)
                try:
                    changes = [
                        (op, attr, tuple(v.render(fields) for v in values))
                        for op, attr, values in step.changes
                    ]
                except TemplateError as e:
                    raise StepError(str(e)) from None
                result = target.apply(t.dn, changes)
                if result.ok:
                    written += 1
                    world.ad_edited.add(normalize_dn(t.dn))
                elif step.refused is None:
                    raise StepError(
                        f"LDAP modify of {t.dn} as {step.bind} was refused: "
                        f"LDAP {result.code}: {result.message.strip()}"
                    )
                else:
                    refused.append((t, result.code, result.message.strip()))
    except LdapError as e:
        raise StepError(f"LDAP as {step.bind}: {e}") from None
    seconds = time.perf_counter() - started
    attrs = sorted({attr for _, attr, _ in step.changes})
    summary = f"LDAP modify of {len(targets):,} AD user(s) as {step.bind} ({', '.join(attrs)}): "
    summary += f"{written:,} written" + (f", {len(refused):,} refused" if refused else "")
    figures = {
        "selected": len(targets),
        "written": written,
        "refused": len(refused),
        "seconds": round(seconds, 3),
    }
    return Outcome(summary, figures, _refusal(step, targets, refused))


# --- cycles -----------------------------------------------------------------------------------


def _logs(world: World) -> set[Path]:
    folder = world.state_dir / "logs"
    return set(folder.glob("*.jsonl")) if folder.is_dir() else set()


def cycle(world: World, step: m.Cycle) -> Outcome:
    record = CycleRecord(step.index, step.name, step.mode)
    injected_before = world.injected()
    profile, opts = world.profile, world.options(step)
    job = world.job  # the one job: its state directory and the credentials it holds
    try:
        if step.mode == "on-demand":
            assert step.select is not None
            for t in world.select(step.select, step.index):
                before = _logs(world)
                pod = run_on_demand(job.cloud, job.ldap, profile, world.state_dir, t.id, opts)
                new = sorted(_logs(world) - before)
                report = CycleReport(
                    str(pod.entry.get("cycleId", "")),
                    "on-demand",
                    profile.name,
                    seconds=pod.seconds,
                    statuses=Counter({pod.status: 1}),
                    actions=Counter({str(pod.entry.get("action", "Other")): 1}),
                    log_path=new[0] if new else None,
                )
                record.reports.append(report)
                record.logs += new
        else:
            report = run_cycle(job.cloud, job.ldap, profile, world.state_dir, step.mode, opts)
            record.reports.append(report)
            if report.log_path is not None:
                record.logs.append(report.log_path)
    except CycleError as e:
        raise StepError(f"{step.mode} cycle could not run: {e}") from None
    except (SourceError, LdapError, StateError) as e:
        raise StepError(f"{step.mode} cycle failed: {e}") from None
    world.cycles.append(record)
    faults = since(injected_before, world.injected())
    return _cycle_outcome(world, step, record.reports, record.logs, faults)


def _cycle_outcome(
    world: World,
    step: m.Cycle | m.Wait,
    reports: list[CycleReport],
    logs: list[Path],
    faults: dict[str, int],
) -> Outcome:
    statuses: Counter[str] = Counter()
    actions: Counter[str] = Counter()
    for r in reports:
        statuses.update(r.statuses)
        actions.update(r.actions)
    seconds = sum(r.seconds for r in reports)
    objects = sum(statuses.values())
    last = reports[-1] if reports else None
    retries: Counter[str] = Counter()
    waited = 0.0  # seconds the engine slept before retries (backoff, Retry-After)
    for r in reports:
        retries.update(r.retries)
        waited += sum(r.waited.values())
    figures: dict[str, Any] = {
        "objects": objects,
        "success": statuses["Success"],
        "failure": statuses["Failure"],
        "skipped": statuses["Skipped"],
        "updates": actions["Update"],
        "seconds": round(seconds, 3),
        "objectsPerSecond": round(objects / seconds, 1) if seconds and objects else None,
        "retries": sum(retries.values()),
        "retriesByServer": dict(retries),
        "waitedSeconds": round(waited, 3),
        "resynced": any(r.resynced for r in reports),
        "faultsInjected": faults,  # by the fault plan while this cycle ran
        "stopped": last.stopped if last else None,
        "jobState": last.job_state if last else None,
        "escrowed": last.escrowed if last else 0,
        "pending": sum(len(r.pending) for r in reports),
    }
    mode = step.mode if isinstance(step, m.Cycle) else "scheduled"
    summary = (
        f"{mode} cycle(s): {objects:,} object(s), {statuses['Success']:,} success, "
        f"{statuses['Failure']:,} failed, {statuses['Skipped']:,} skipped, "
        f"{actions['Update']:,} updated, {seconds:.2f} s"
    )
    if mode == "dry-run":
        summary += f"; {figures['pending']:,} pending write(s)"
    if figures["retries"]:
        by = ", ".join(f"{_SERVER_NAMES.get(k, k)} {n:,}" for k, n in retries.items() if n)
        summary += f"; {figures['retries']:,} retries ({by}), waited "
        summary += f"{figures['waitedSeconds']:.1f} s"
    if figures["resynced"]:
        summary += "; delta token expired: resynced with a full round"
    if faults:
        summary += "; faults injected: " + ", ".join(f"{k} {n:,}" for k, n in faults.items())
    if last is not None and last.stopped:
        summary += "; STOPPED by the mass-change guard"
    for r in reports:
        for w in r.warnings:
            world.warn(w)
    if statuses["Failure"]:
        world.warn(
            f"step {step.index} ({mode} cycle): {statuses['Failure']:,} object(s) failed; "
            f"first: {_first_failure(logs)}"
        )
    return Outcome(summary, figures)


def _first_failure(logs: list[Path]) -> str:
    for path in logs:
        for entry in provlog.read(path):
            if provlog.status(entry) == "Failure":
                code = provlog.error_code(entry)
                who = provlog.target_dn(entry) or provlog.source_id(entry)
                return f"{who}: LDAP {code}: " + provlog.reason(entry).strip()[:200]
    return "(not in the log)"


# --- time and the job -------------------------------------------------------------------------

RESULTS_SHOWN = 20  # per-cycle results a wait step's figures list (the rest are in the totals)


def wait(world: World, step: m.Wait) -> Outcome:
    """Advance the simulated clock by the step's span with the job's schedule armed on it: the
    cycles that fall due run in order, each at its own time (harness.engine.schedule).

    The schedule is armed for the wait only: between waits simulated time stands still, so
    nothing could fall due, and each wait re-reads the job's next run from its state (a cycle
    step, a pause or a restart in between counts)."""
    sim = clock.current()
    if not isinstance(sim, SimulatedClock):
        raise StepError("wait needs the scenario's simulated clock (clock: simulated)")
    job = world.job
    job.options = world.options()
    job.ran.clear()
    injected_before = world.injected()
    schedule = Schedule(job)
    schedule.start()
    try:
        sim.advance(step.span)
    finally:
        schedule.stop()
    reports = list(job.ran)
    record = CycleRecord(step.index, None, "scheduled", reports)
    record.logs = [r.log_path for r in reports if r.log_path is not None]
    world.cycles.append(record)
    failed = len(schedule.failures)
    world.waits.append(WaitRecord(step.index, step.text, schedule.cycles, failed))
    outcome = _cycle_outcome(
        world, step, reports, record.logs, since(injected_before, world.injected())
    )
    results = [
        {
            "startedAt": r.started_at,
            "mode": r.mode,
            "resynced": r.resynced,
            "objects": sum(r.statuses.values()),
            "failure": r.statuses["Failure"],
            "jobState": r.job_state,
        }
        for r in reports[:RESULTS_SHOWN]
    ]
    errors = [{"at": f.at, "error": f.error} for f in list(schedule.failures)[:RESULTS_SHOWN]]
    outcome.figures = {
        "cycles": schedule.cycles,
        "failed": failed,
        "now": clock.now_iso(),
        **outcome.figures,
        "results": results,
        "errors": errors,
    }
    head = f"waited {step.text} (now {clock.now_iso()}): {schedule.cycles:,} scheduled cycle(s)"
    if failed:
        head += f", {failed:,} could not run ({schedule.failures[-1].error[:120]})"
    outcome.summary = head + ("; " + outcome.summary if reports else "")
    return outcome


def job_control(world: World, step: m.JobControl) -> Outcome:
    """Pause, start or restart the job as Graph's synchronization API does, or change the
    credential it holds."""
    job = world.job
    if step.action == "pause":
        job.pause()
        summary = "job paused"
    elif step.action == "start":
        job.start()
        summary = "job started"
    elif step.action == "restart":
        scopes = job.restart(step.reset_scope)
        summary = f"job restarted, resetScope {', '.join(sorted(scopes)) or 'None'}"
    elif step.stale is not None:
        world.stale_credentials(step.stale, True)
        summary = f"the job's {_CREDENTIAL_WORDS[step.stale]} is stale (rotated without it)"
    else:
        assert step.update is not None
        world.stale_credentials(step.update, False)
        summary = f"the job's {_CREDENTIAL_WORDS[step.update]} is updated to the current one"
    status = job.status()
    nxt = job.next_run()
    figures = {
        "state": status["status"]["code"],
        "escrowed": status["exwb"]["escrowed"],
        "nextRun": clock.iso(nxt) if nxt is not None else None,
    }
    return Outcome(f"{summary}; job {figures['state']}, next run {figures['nextRun']}", figures)


_CREDENTIAL_WORDS = {"app": "read-only app secret", "account": "writeback account password"}


class _AdminConnection(LdapConnection):
    """The engine's LDAP client plus ModifyDN, which only an administrator's tools send."""

    def modify_dn(self, dn: str, new_rdn: str, new_superior: str) -> None:
        """ModifyDNRequest ::= [APPLICATION 12] SEQUENCE { entry, newrdn, deleteoldrdn,
        newSuperior [0] } (RFC 4511 4.9); raises LdapError with the server's code."""
        body = (
            octets(dn.encode("utf-8"))
            + octets(new_rdn.encode("utf-8"))
            + boolean(True)
            + tlv(0x80, new_superior.encode("utf-8"))
        )
        self._one(tlv(APP_MODDN_REQUEST, body), APP_MODDN_RESPONSE, "a modify DN")


def _rdn(dn: str) -> str:
    """The first RDN of `dn` as written (up to the first comma not escaped by a backslash)."""
    escaped = False
    for i, ch in enumerate(dn):
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == ",":
            return dn[:i]
    return dn


def ad_move(world: World, step: m.AdMove) -> Outcome:
    targets = world.select(step.select, step.index, ad=True)
    admin = world.accounts["admin"]
    moved = 0
    try:
        conn = _AdminConnection(admin.url)
        with conn:
            conn.bind(admin.bind_dn, admin.password)
            for i, t in enumerate(targets, 1):
                assert t.dn is not None
                try:
                    parent = step.to.render(_fields(world, t, i))
                except TemplateError as e:
                    raise StepError(str(e)) from None
                rdn = _rdn(t.dn)
                try:
                    conn.modify_dn(t.dn, rdn, parent)
                except LdapError as e:
                    raise StepError(f"moving {t.dn} under {parent}: {e}") from None
                world.ad_edited.add(normalize_dn(t.dn))
                t.dn = f"{rdn},{parent}"
                world.ad_edited.add(normalize_dn(t.dn))
                moved += 1
    except LdapError as e:
        raise StepError(f"LDAP as admin: {e}") from None
    return Outcome(
        f"moved {moved:,} AD user(s) under {step.to.text}",
        {"selected": len(targets), "moved": moved},
    )


# --- forward sync -----------------------------------------------------------------------------


def forward(world: World, step: m.Forward) -> Outcome:
    try:
        cloud, ldap, export_url = connect_credentials(world.endpoints)
        report = run_forward(cloud, ldap, export_url, world.state_dir, step.connect_build)
    except (ValueError, ForwardError, SourceError) as e:
        raise StepError(f"forward sync failed: {e}") from None
    world.forwards.append(report)
    figures = report.as_dict()
    rule = "honours" if report.honours_cloud_management else "ignores"
    summary = (
        f"forward sync, Connect {report.build} ({rule} IsExchangeCloudManaged): "
        f"{report.exported:,} exported, {report.unchanged:,} unchanged, {report.failed:,} failed, "
        f"{report.reverted:,} cloud-managed reverted, {report.withheld:,} withheld"
    )
    if report.reverted:
        world.warn(
            f"step {step.index}: Connect build {report.build} predates 2.5.190.0 and ignores "
            f"IsExchangeCloudManaged: it pushed AD's Exchange attributes over {report.reverted:,} "
            "cloud-managed mailbox(es), reverting edits made in Exchange Online (upgrade Entra "
            "Connect to 2.5.190.0 or later before moving the source of authority)"
        )
    if report.failed:
        world.warn(f"step {step.index}: the sync service refused {report.failed:,} object(s)")
    return Outcome(summary, figures)


# --- decommission -----------------------------------------------------------------------------


def decommission(world: World, step: m.Decommission) -> Outcome:
    """`exwb decommission --plan|--execute` against the scenario's tenant; the journal lives
    in the scenario's engine state directory, beside the job whose health it checks."""
    from harness.decommission import report
    from harness.decommission.estate import Estate, EstateError
    from harness.decommission.journal import JournalError
    from harness.decommission.workflow import Refused, execute, open_journal, plan

    ep = world.endpoints
    try:
        journal = open_journal(world.state_dir, ep.tenant_id, step.path)
        with Estate(ep, world.state_dir) as estate:
            if step.action == "plan":
                outcome = plan(estate, step.path, journal)
            else:
                outcome = execute(estate, step.path, journal, step.only)
    except (Refused, JournalError, EstateError) as e:
        raise StepError(f"decommission {step.action}: {e}") from None
    result = outcome.as_dict()
    world.decommissions.append(result)
    out_dir = world.state_dir.parent / f"decommission-step{step.index}"
    paths = report.write(result, out_dir)
    done = sum(1 for st in result["steps"] if st["status"] == "done")
    summary = (
        f"decommission {step.action} ({step.path}): "
        + (
            f"BLOCKED by {', '.join(b['code'] for b in result['blockers'])}; "
            if result["blocked"]
            else ""
        )
        + f"{done}/{len(result['steps'])} steps done, server {result['serverState']}"
        + (f"; stopped at {result['error']}" if result["error"] else "")
    )
    if result["error"]:
        world.warn(f"step {step.index}: decommission stopped at {result['error']}")
    figures = {
        "blocked": result["blocked"],
        "blockers": [b["code"] for b in result["blockers"]],
        "executed": result["executed"],
        "serverState": result["serverState"],
        "finished": result["finished"],
        "report": str(paths["markdown"]),
    }
    return Outcome(summary, figures)


# --- faults -----------------------------------------------------------------------------------


def fault(world: World, step: m.Fault) -> Outcome:
    """Arm a fault in the tenant's plan, or clear some; the servers obey it from their next
    request (the plan is thread-safe, so this runs in the scenario's thread)."""
    plan = world.plan()
    if step.spec is None:
        assert step.clear is not None
        gone = plan.clear(step.clear)
        summary = f"cleared {len(gone)} fault(s) ({step.clear})"
        if gone:
            summary += ": " + "; ".join(f"{f.name}, {f.injected:,} injected" for f in gone)
        figures: dict[str, Any] = {"cleared": [f.as_dict() for f in gone]}
    else:
        try:
            armed = plan.arm_spec(step.spec)
        except FaultError as e:
            raise StepError(f"cannot arm the fault: {e}") from None
        summary = f"armed {armed.name}: {armed.spec.describe()}"
        figures = {"armed": armed.as_dict()}
    figures["stillArmed"] = [f["name"] for f in plan.armed()]
    figures["injected"] = plan.injected()
    return Outcome(summary, figures)
