"""The writeback job's health, shaped like Graph's synchronizationJob (reference 1.3 and 4.3).

`job_status` reads an engine state directory: schedule and status code (Active, Paused,
Quarantine, NotRun), the last execution and the last successful one, the quarantine with its
reason, escrowed failures, and the exwb extras: the profile, its documented mailbox limit and
the warnings every report carries.
"""

from __future__ import annotations

import hashlib
from typing import Any

from harness.engine.cycle import profile_warnings
from harness.engine.rules import Profile
from harness.engine.state import EngineState

TEMPLATE_ID = "Entra2ADExchangeOnlineAttributeWriteback"
INTERVAL = "PT20M"  # the documented schedule of this job
ESCROW_EXAMPLES = 10


def _execution(cycle: dict[str, Any]) -> dict[str, Any]:
    statuses = cycle.get("statuses", {})
    failed = statuses.get("Failure", 0)
    if cycle.get("stopped"):
        state = "Failed"
    elif failed:
        state = "SucceededWithErrors" if statuses.get("Success") else "Failed"
    else:
        state = "Succeeded"
    return {
        "state": state,
        "cycleId": cycle.get("cycleId"),
        "mode": cycle.get("mode"),
        "seconds": cycle.get("seconds"),
        "countEntitled": cycle.get("objects", 0),
        "countExported": cycle.get("actions", {}).get("Update", 0),
        "statuses": statuses,
        "error": cycle.get("stopped"),
    }


def job_status(state: EngineState, profile: Profile, job_key: str) -> dict[str, Any]:
    """The job as `GET .../synchronization/jobs/{id}` would show it, plus exwb's extras."""
    suffix = hashlib.sha256(job_key.encode("utf-8")).hexdigest()[:32]
    if state.paused:
        code = "Paused"
    elif state.quarantine is not None:
        code = "Quarantine"
    elif not state.history:
        code = "NotRun"
    else:
        code = "Active"
    last = state.history[-1] if state.history else None
    succeeded = [c for c in state.history if _execution(c)["state"] == "Succeeded"]
    escrow = sorted(state.escrow.items(), key=lambda kv: kv[1].first_failed)
    q = state.quarantine
    return {
        "id": f"{TEMPLATE_ID}.{suffix[:16]}.{suffix[16:]}",
        "templateId": TEMPLATE_ID,
        "schedule": {"interval": INTERVAL, "state": "Paused" if state.paused else "Active"},
        "status": {
            "code": code,
            "lastExecution": _execution(last) if last else None,
            "lastSuccessfulExecution": _execution(succeeded[-1]) if succeeded else None,
            "quarantine": (
                {"reason": q.reason, "currentBegan": q.since, "error": q.detail} if q else None
            ),
            "countSuccessiveCompleteFailures": state.successive_failures,
            "escrowsPruned": False,
            "synchronizedEntryCountByType": [{"key": "User to user", "value": state.in_scope or 0}],
        },
        "exwb": {
            "profile": state.profile or profile.name,
            "mailboxLimit": profile.mailbox_limit,
            "inScope": state.in_scope,
            "overLimit": bool(state.in_scope and state.in_scope > profile.mailbox_limit),
            "cycles": state.cycles,
            "watermark": state.delta_link is not None,
            "escrowed": len(state.escrow),
            "escrowExamples": [
                {
                    "sourceId": k,
                    "errorCode": e.code,
                    "reason": e.reason,
                    "attempts": e.attempts,
                    "firstFailed": e.first_failed,
                }
                for k, e in escrow[:ESCROW_EXAMPLES]
            ],
            "warnings": profile_warnings(profile, state.in_scope),
        },
    }
