"""`exwb cycle`: one writeback cycle of the engine (or one object on demand) against a tenant."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from harness.commands.engine_args import (
    connection_arguments,
    count,
    load_settings,
    state_dir_argument,
)
from harness.core.errors import UsageError
from harness.engine import log as provlog
from harness.engine.cycle import MASS_CHANGE_THRESHOLD


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "cycle",
        help="run one writeback cycle (Exchange Online -> AD)",
        description="Run one writeback cycle of the engine against the tenant in "
        "the endpoints file: import changes from Graph, match AD users by anchor, "
        "scope to cloud-managed mailboxes, export the minimal modifies over LDAP as "
        "the writeback service account. --mode dry-run writes nothing and previews the "
        "cycle: per attribute how many objects change, old -> new per object, and the "
        "objects AD would refuse (code and diagnostic) or that are skipped and why. Exit 0 "
        "when every object succeeded (or would), 1 when one failed (or would) or the "
        "mass-change guard stopped (or would stop) the cycle, 2 on bad input.",
    )
    connection_arguments(p)
    p.add_argument(
        "--mode",
        choices=("delta", "full", "dry-run"),
        default="delta",
        help="delta (default; the first one runs as the initial cycle), full, dry-run",
    )
    p.add_argument(
        "--object",
        metavar="ID",
        help="provision one object on demand (its id or UPN): the four steps and their outcome",
    )
    state_dir_argument(p)
    p.add_argument(
        "--report",
        type=Path,
        metavar="DIR",
        help="with --mode dry-run: write the preview to DIR as preview.json, preview.md, "
        "preview.csv (one row per object and attribute, opens in Excel) and preview.html "
        "(one self-contained page: chart by attribute, filterable table)",
    )
    p.add_argument(
        "--allow-mass-change",
        action="store_true",
        help="export even when more objects would change than the mass-change threshold",
    )
    p.add_argument(
        "--mass-change-threshold",
        type=count,
        default=None,
        metavar="N",
        help="harness safety extension, off by default (the real job has no such guard): stop "
        "before export when more than N objects would change (Entra Connect's deletion "
        f"threshold is {MASS_CHANGE_THRESHOLD})",
    )
    p.add_argument(
        "--quarantine-min-failures",
        type=count,
        default=None,
        metavar="N",
        help="escrowed failures before the 40%% rule is evaluated (default: the documented "
        "5,000, scaled to the tenant)",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from harness.engine.cycle import (
        CycleError,
        CycleOptions,
        run_cycle,
        run_on_demand,
    )
    from harness.engine.health import QuarantinePolicy
    from harness.engine.source import SourceError
    from harness.engine.state import StateError
    from harness.engine.target import LdapTargetError

    if args.report is not None and (args.mode != "dry-run" or args.object):
        raise UsageError("--report goes with --mode dry-run (a preview of the cycle)")
    cloud, ldap, profile = load_settings(args)
    policy = None
    if args.quarantine_min_failures is not None:
        policy = QuarantinePolicy(min_failures=args.quarantine_min_failures)
    options = CycleOptions(
        mass_change_threshold=args.mass_change_threshold,
        allow_mass_change=args.allow_mass_change,
        quarantine=policy,
    )
    out = Console(soft_wrap=True)
    try:
        if args.object:
            pod = run_on_demand(cloud, ldap, profile, args.state_dir, args.object, options)
        else:
            report = run_cycle(cloud, ldap, profile, args.state_dir, args.mode, options)
    except CycleError as e:
        out.print(f"exwb cycle: {e}", style="red", highlight=False)
        return 1
    except (SourceError, LdapTargetError, StateError) as e:
        raise UsageError(str(e)) from None
    if args.object:
        return _print_on_demand(out, pod, args.json)
    preview = report.preview.as_dict() if report.preview is not None else None
    if preview is not None and args.report is not None:
        from harness.report.preview_files import write_preview

        write_preview(preview, args.report)
    if args.json:
        extra = {"pending": report.pending} | ({"preview": preview} if preview else {})
        out.print_json(json.dumps({**report.as_dict(), **extra}))
    else:
        table = Table(title=f"{args.mode} cycle, profile {profile.name}")
        # A dry run writes nothing: its updates are the ones it would make.
        updates = "planned updates" if args.mode == "dry-run" else "updates"
        for col in ("objects", "Success", "Failure", "Skipped", updates, "seconds", "objects/s"):
            table.add_column(col, justify="right")
        s = report.statuses
        rate = f"{report.objects / report.seconds:,.0f}" if report.seconds else "-"
        table.add_row(
            f"{report.objects:,}",
            f"{s['Success']:,}",
            f"{s['Failure']:,}",
            f"{s['Skipped']:,}",
            f"{report.actions['Update']:,}",
            f"{report.seconds:.1f}",
            rate,
        )
        out.print(table)
        if preview is not None:
            _print_preview(out, preview)
        if args.report is not None:
            out.print(f"preview written to {args.report}", highlight=False)
        if report.stopped:
            out.print(f"STOPPED: {report.stopped}", style="red", highlight=False)
        for w in report.warnings:
            out.print(f"warning: {w}", style="yellow", highlight=False)
        out.print(
            f"job {report.job_state}; {report.escrowed:,} escrowed; "
            f"provisioning log: {report.log_path}",
            highlight=False,
        )
    would_fail = preview is not None and (
        preview["outcomes"]["failure"] or preview["massChangeGuard"]
    )
    return 1 if report.statuses["Failure"] or report.stopped or would_fail else 0


def _print_preview(out: Console, preview: dict[str, Any]) -> None:
    """The dry run's preview on the console: changes by attribute, then the first objects."""
    by_attr = Table(title="would change, by attribute")
    for col in ("attribute", "would be written", "would fail"):
        by_attr.add_column(col, justify="left" if col == "attribute" else "right")
    for name, c in preview["byAttribute"].items():
        by_attr.add_row(name, f"{c['change']:,}", f"{c['failure']:,}")
    if preview["byAttribute"]:
        out.print(by_attr)
    out.print(f"access: {preview['access']}", highlight=False)
    for problem, n in preview["failures"].items():
        out.print(f"would fail: {n:,} x LDAP {problem}", style="red", highlight=False)
    for reason, n in preview["skipped"].items():
        out.print(f"skipped: {n:,} x {reason}", highlight=False)
    if preview["massChangeGuard"]:
        out.print(f"WOULD STOP: {preview['massChangeGuard']}", style="red", highlight=False)
    shown = 0
    for o in preview["objects"]:
        if o["outcome"] == "skipped":
            continue
        for c in o["changes"]:
            if shown == 50:
                out.print("  ... (--report DIR writes every object)", highlight=False)
                return
            shown += 1
            verb = "would write" if o["outcome"] == "change" else f"would FAIL ({o['errorCode']})"
            change = f"{_brief(c['oldValue'])} -> {_brief(c['newValue'])}"
            out.print(f"  {verb} {c['attribute']} on {o['dn']}: {change}", highlight=False)


def _brief(values: list[str], limit: int = 160) -> str:
    """Values for one console line: a long one is cut (the --report files have it whole)."""
    text = str(values)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text):,} characters)"


def _print_on_demand(out: Console, pod: Any, as_json: bool) -> int:
    if as_json:
        out.print_json(json.dumps(pod.entry))
    else:
        table = Table(title=f"provision on demand: {provlog.source_id(pod.entry)}")
        for col in ("step", "type", "status", "description"):
            table.add_column(col)
        for step in pod.steps:
            table.add_row(
                step["name"], step["provisioningStepType"], step["status"], step["description"]
            )
        out.print(table)
        for m in provlog.modified(pod.entry):
            out.print(f"  {m['displayName']}: {m['oldValue']} -> {m['newValue']}", highlight=False)
        why = provlog.reason(pod.entry) or "done"
        out.print(f"{pod.status}: {why}", highlight=False)
    return 1 if pod.status == "Failure" else 0
