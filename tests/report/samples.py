"""Result dicts shaped as the scenario runner hands them to the report package."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from harness.engine.log import Entry

HOSTILE = "<&>\"' tab\there \x01\x1b[31mred\x7f"


def cycle(step: int, mode: str, success: int, failure: int, skipped: int, **extra: Any) -> dict:
    objects = success + failure + skipped
    seconds = extra.pop("seconds", 2.5)
    base = {
        "cycleId": f"c-{step}",
        "mode": mode,
        "profile": "ga",
        "seconds": seconds,
        "objects": objects,
        "objectsPerSecond": round(objects / seconds, 1),
        "statuses": {"Success": success, "Failure": failure, "Skipped": skipped, "Warning": 0},
        "actions": {"Update": success, "Other": failure + skipped},
        "watermarkMoved": True,
        "resynced": False,
        "stopped": None,
        "warnings": [],
        "jobState": "Active",
        "escrowed": failure,
        "retries": {"ldap": 0, "graph": 0},
        "log": None,
        "step": step,
    }
    base.update(extra)
    return base


def passed_run(logs: list[Path] | None = None) -> dict[str, Any]:
    """Quickstart: generate, edit, full cycle, expect; every expectation and threshold holds."""
    return {
        "scenario": "quickstart",
        "file": "scenarios/quickstart.yaml",
        "started": "2025-03-01T12:00:00+00:00",
        "seconds": 12.345,
        "verdict": "passed",
        "error": None,
        "tenant": {"mailboxes": 10000, "seed": 1, "domain": "contoso.com"},
        "profile": "ga",
        "steps": [
            {
                "index": 1,
                "kind": "edit",
                "line": 14,
                "seconds": 1.25,
                "summary": "Set-Mailbox CustomAttribute1 on 20 mailboxes",
                "figures": {"edited": 20},
            },
            {
                "index": 2,
                "kind": "cycle",
                "line": 22,
                "seconds": 8.5,
                "summary": "full cycle: 10,000 objects",
                "figures": {"objects": 10000},
            },
            {
                "index": 3,
                "kind": "expect",
                "line": 25,
                "seconds": 0.6,
                "summary": "2 expectations",
                "figures": {},
            },
        ],
        "expectations": [
            {"step": 3, "line": 26, "name": "converged", "passed": True, "detail": "20 of 20"},
            {"step": 3, "line": 28, "name": "ad_values", "passed": True, "detail": "ok"},
        ],
        "thresholds": [
            {"name": "cycle_seconds", "limit": "max 30", "measured": 8.5, "passed": True},
        ],
        "cycles": [cycle(2, "full", 9500, 0, 500, seconds=8.5)],
        "warnings": ["profile ga: tenant is within the 600,000 limit"],
        "provisioning_logs": [str(p) for p in logs or []],
    }


def failed_run() -> dict[str, Any]:
    """A run with a failed expectation (hostile text, pipes, non-ASCII) and a broken threshold."""
    run = passed_run()
    run.update(
        scenario="proxy-addresses",
        file="scenarios/proxy addresses.yaml",
        verdict="failed",
        tenant={"mailboxes": 200, "seed": 7, "knobs": {"non_ascii_fraction": 0.5}},
    )
    run["steps"][0]["summary"] = "Set-Mailbox on Zoë Müller | Ωmega\nsecond line"
    run["expectations"] = [
        {"step": 3, "line": 26, "name": "converged", "passed": True, "detail": "200 of 200"},
        {
            "step": 3,
            "line": 31,
            "name": "ad_values",
            "passed": False,
            "detail": f"proxyAddresses of Zoë Müller: want smtp:a|b@contoso.com, got {HOSTILE}\n"
            "second line of the detail",
        },
        {"step": 3, "line": 35, "name": "status_counts", "passed": False, "detail": "Failure 3"},
    ]
    run["thresholds"] = [
        {"name": "cycle_seconds", "limit": "max 30", "measured": 41.25, "passed": False},
        {"name": "objects_per_second", "limit": "min 100", "measured": 1176.5, "passed": True},
    ]
    run["cycles"] = [
        cycle(2, "full", 190, 3, 7, seconds=41.25, warnings=["target msExchFoo is undocumented"])
    ]
    return run


def error_run() -> dict[str, Any]:
    """A run that stopped with an error at its second step."""
    run = passed_run()
    run.update(
        scenario="faults",
        verdict="error",
        error="step 2 (cycle, line 22): LDAP busy (51) after 5 tries <&>",
        expectations=[],
        thresholds=[],
        cycles=[],
    )
    run["steps"] = run["steps"][:1]
    return run


def provisioning_lines(cycle_id: str, n: int) -> list[str]:
    """`n` provisioning-log lines as the engine writes them (non-ASCII kept as is)."""
    lines = []
    for i in range(n):
        e = Entry(f"id-{i}", "Update", target_dn=f"CN=Zoë Müller {i},OU=Corp,DC=contoso,DC=com")
        e.modified = [{"displayName": "extensionAttribute1", "oldValue": [], "newValue": ["x"]}]
        lines.append(json.dumps(e.record(cycle_id, i), ensure_ascii=False) + "\n")
    return lines


def deep(run: dict[str, Any]) -> dict[str, Any]:
    return copy.deepcopy(run)
