"""Plan and execute the decommission of the last Exchange Server.

`plan` surveys the estate, lists every blocker and every step of the chosen path with its
status; `execute` refuses while anything blocks, then runs the pending steps in order,
verifying each against a fresh survey and journaling it, so a killed run resumes where it
stopped and a re-run skips what is done.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.clients.exo import CmdletError
from harness.decommission.checks import PATHS, Blocker, blockers
from harness.decommission.dns import DnsError
from harness.decommission.estate import Estate, EstateError, Survey, names, prop, survey
from harness.decommission.hosts import HostsError
from harness.decommission.journal import Journal
from harness.decommission.steps import (
    NOT_ON_TOOLS_PATH,
    TOOLS,
    Step,
    StepFailed,
    stale_cloud_objects,
    steps_for,
)

JOURNAL_NAME = "decommission.jsonl"
SERVER_STEPS = ("uninstall-exchange", "shut-down-server")


class Refused(Exception):
    """The request cannot run as asked (blocked, or a step the path forbids)."""


@dataclass(slots=True)
class StepState:
    step: Step
    status: str  # done, pending, failed, skipped (not on this run)
    remaining: list[str] | None
    detail: str = ""
    command: str | None = None  # the command as run (from the journal), once done

    def as_dict(self, s: Survey) -> dict[str, Any]:
        described = self.step.describe(s)
        if self.command:
            described["command"] = self.command
        return {
            **described,
            "status": self.status,
            "remaining": self.remaining,
            "detail": self.detail,
        }


@dataclass(slots=True)
class Outcome:
    """A plan or an execution: blockers, steps with their status, leftovers."""

    path: str
    mode: str  # plan or execute
    blockers: list[Blocker]
    steps: list[StepState]
    survey: Survey
    journal: Path
    executed: list[str] = field(default_factory=list)  # step ids run by this execution
    error: str | None = None
    refused: str | None = None
    leftovers: list[dict[str, str]] = field(default_factory=list)

    @property
    def blocked(self) -> bool:
        return bool(self.blockers)

    @property
    def finished(self) -> bool:
        return all(st.status == "done" for st in self.steps)

    @property
    def server_state(self) -> str:
        return self.survey.server_state

    def as_dict(self) -> dict[str, Any]:
        s = self.survey
        return {
            "path": self.path,
            "mode": self.mode,
            "server": s.last_server,
            "serverState": s.server_state,
            "blocked": self.blocked,
            "canRun": not self.blocked,
            "finished": self.finished,
            "refused": self.refused,
            "error": self.error,
            "blockers": [b.as_dict() for b in self.blockers],
            "steps": [st.as_dict(s) for st in self.steps],
            "executed": self.executed,
            "leftovers": self.leftovers,
            "journal": str(self.journal),
            "inventory": inventory(s),
        }


def inventory(s: Survey) -> dict[str, Any]:
    """What the survey found, in numbers (the report's first table)."""
    return {
        "exchangeServers": names(s.servers),
        "onPremisesMailboxes": len(s.mailboxes),
        "arbitrationMailboxes": len(s.arbitration),
        "publicFolderMailboxes": len(s.public_folder_mailboxes),
        "publicFoldersEnabled": prop(s.org_config, "PublicFoldersEnabled"),
        "mailboxesNotCloudManaged": len(s.not_cloud_managed),
        "groupsWithoutSoa": len(s.groups),
        "contactsWithoutSoa": len(s.contacts),
        "relayClients": len(s.relay),
        "dns": s.dns,
        "connectBuild": prop(s.sync_host, "version"),
        "writebackJob": s.job.get("status", {}).get("code", "NotRun") if s.job else "NotRun",
    }


def open_journal(state_dir: Path, tenant_id: str, path: str) -> Journal:
    return Journal.open(state_dir / JOURNAL_NAME, tenant_id, path)


def _blockers(s: Survey, path: str, journal: Journal) -> list[Blocker]:
    found = blockers(s, path)
    if any(journal.completed(i) for i in SERVER_STEPS):
        # The server step is behind us: its own state (shut down) no longer blocks a resume.
        found = [b for b in found if b.code != "ServerNotRunning"]
    return found


def _state(step: Step, s: Survey, journal: Journal) -> StepState:
    remaining = step.remaining(s)
    if remaining is None:
        done = journal.completed(step.id)
        return StepState(step, "done" if done else "pending", None if done else ["not run yet"])
    if remaining:
        failed = journal.status(step.id) == "failed"
        return StepState(step, "failed" if failed else "pending", remaining)
    return StepState(step, "done", [])


def plan(estate: Estate, path: str, journal: Journal) -> Outcome:
    """Survey, check and list the steps; changes nothing."""
    _check_path(path)
    s = survey(estate)
    out = Outcome(path, "plan", _blockers(s, path, journal), [], s, journal.path)
    out.steps = [_state(step, s, journal) for step in steps_for(path)]
    out.leftovers = leftovers(estate, s, path)
    return out


def execute(
    estate: Estate,
    path: str,
    journal: Journal,
    only: str | None = None,
    progress: Callable[[str, str], None] | None = None,
) -> Outcome:
    """Run the pending steps of `path` in order (or just `only`); stops at the first failure."""
    _check_path(path)
    if only is not None:
        _check_only(path, only)
    s = survey(estate)
    out = Outcome(path, "execute", _blockers(s, path, journal), [], s, journal.path)
    if path == TOOLS and only == "uninstall-exchange":
        out.refused = NOT_ON_TOOLS_PATH
        out.steps = [_state(step, s, journal) for step in steps_for(path)]
        return out
    if out.blockers:
        out.refused = (
            f"{len(out.blockers)} blocker(s): "
            + ", ".join(b.code for b in out.blockers)
            + " (run --plan for the remedies)"
        )
        out.steps = [_state(step, s, journal) for step in steps_for(path)]
        return out
    for step in steps_for(path):
        if only is not None and step.id != only:
            continue
        state = _state(step, s, journal)
        if state.status == "done":
            if not journal.completed(step.id):
                journal.append({"step": step.id, "status": "already-done"})
            continue
        if progress:
            progress(step.id, "started")
        journal.append({"step": step.id, "status": "started", "command": step.command(s)})
        try:
            detail = step.run(estate, s)
            s = survey(estate, full=False)
            left = step.remaining(s)
            if left:
                raise StepFailed(f"verification failed: still {', '.join(left)}")
        except (StepFailed, CmdletError, EstateError, HostsError, DnsError) as e:
            message = _message(e)
            journal.append({"step": step.id, "status": "failed", "error": message})
            out.error = f"{step.id}: {message}"
            if progress:
                progress(step.id, "failed")
            break
        journal.append({"step": step.id, "status": "done", "detail": detail})
        out.executed.append(step.id)
        if progress:
            progress(step.id, "done")
    s = survey(estate)
    out.survey = s
    out.steps = [_state(step, s, journal) for step in steps_for(path)]
    for st in out.steps:
        ev = [r for r in journal.events() if r.get("step") == st.step.id]
        details = [r["detail"] for r in ev if r.get("detail")]
        commands = [r["command"] for r in ev if r.get("command")]
        if details:
            st.detail = str(details[-1])
        if commands and st.status == "done":
            st.command = str(commands[-1])  # what ran, not what the estate now suggests
    out.leftovers = leftovers(estate, s, path)
    return out


def _message(e: Exception) -> str:
    if isinstance(e, CmdletError | HostsError):
        text = f"{e.code}: {e.message}" if e.code else e.message
        details = getattr(e, "details", None) or []
        return text + "".join(f" [{d.get('code')}: {d.get('message')}]" for d in details)
    return str(e)


def _check_path(path: str) -> None:
    if path not in PATHS:
        raise Refused(f"unknown path {path!r}; expected one of {', '.join(PATHS)}")


def _check_only(path: str, only: str) -> None:
    if path == TOOLS and only == "uninstall-exchange":
        return  # refused with the documented reason, as an outcome
    ids = [s.id for s in steps_for(path)]
    if only not in ids:
        raise Refused(f"step {only!r} is not on the {path} path; its steps: {', '.join(ids)}")


# ---------------------------------------------------------------------- troubleshooting
def leftovers(estate: Estate, s: Survey, path: str) -> list[dict[str, str]]:
    """What is still around once the server step is done, with what to do about it."""
    out: list[dict[str, str]] = []
    state = s.server_state
    if state not in ("Uninstalled", "ShutDown"):
        return out
    server = str(s.last_server)
    if state == "Uninstalled":
        for svc in s.host_services:
            if str(prop(svc, "name", "")).startswith("MSExchange"):
                out.append(
                    {
                        "what": f"service {prop(svc, 'name')} is still registered on {server} "
                        f"({prop(svc, 'status')}, {prop(svc, 'startType')})",
                        "remedy": f"Uninstall left it behind: `sc.exe delete {prop(svc, 'name')}` "
                        f"on {server}, then restart the machine (or reformat it).",
                    }
                )
    else:
        out.append(
            {
                "what": f"{server} is shut down with Exchange still installed",
                "remedy": "Keep it off; erase or reformat it rather than uninstalling Exchange. "
                "Exchange RBAC no longer works; manage recipients with the Management Tools. "
                "CleanupActiveDirectoryEMT.ps1 can remove the Exchange containers and groups "
                "later, irreversibly.",
            }
        )
    for domain in [d for d in s.dns if d]:
        try:
            a = estate.resolve(f"mail.{domain}", "A")
            txt = estate.resolve(domain, "TXT")
        except DnsError as e:  # a lookup failure is itself worth reporting, not fatal here
            out.append({"what": f"DNS lookup for {domain} failed: {e}", "remedy": "check DNS"})
            continue
        if a:
            out.append(
                {
                    "what": f"mail.{domain} still resolves to {', '.join(a)} (the former server)",
                    "remedy": "Remove the record, or repoint it if something else uses the name.",
                }
            )
        ips = {str(prop(h, "ip")) for h in [s.host] if h and prop(h, "ip")} | set(a)
        for t in txt:
            if t.startswith(("v=spf1", '"v=spf1')) and any(f"ip4:{ip}" in t for ip in ips):
                out.append(
                    {
                        "what": f"the SPF record of {domain} still allows the former server: {t}",
                        "remedy": "Drop its ip4: entry; keep include:spf.protection.outlook.com.",
                    }
                )
    rules, inbound, outbound = stale_cloud_objects(s)
    for name in rules + inbound + outbound:
        out.append(
            {
                "what": f"Exchange Online object {name} still references on-premises",
                "remedy": "Run the plan's remove-stale-cloud-objects step (or remove it by hand).",
            }
        )
    out.append(
        {
            "what": "the Exchange organisation's objects and schema stay in Active Directory",
            "remedy": "Expected: the schema extensions are permanent. Never delete Exchange "
            "objects with ADSI Edit.",
        }
    )
    return out
