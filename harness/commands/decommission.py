"""`exwb decommission`: plan or execute the retirement of the last Exchange Server."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from rich.console import Console

from harness.commands import DEFAULT_STATE, endpoints_argument, read_endpoints
from harness.core.errors import UsageError


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "decommission",
        help="plan or execute the decommission of the last Exchange Server",
        description="Check every precondition of retiring the last Exchange Server in the "
        "tenant of the endpoints file and list the ordered steps (--plan), or run them "
        "(--execute), journaling each so a killed run resumes and a re-run skips what is done. "
        "Paths: soa-uninstall (2026 guide after transferring the source of authority: the "
        "server is uninstalled) and management-tools (the server is shut down, never "
        "uninstalled). Exit 0 when the plan can run (or is done), 1 when blocked or a step "
        "failed, 2 for bad input.",
    )
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument("--plan", action="store_true", help="check and list; change nothing")
    mode.add_argument("--execute", action="store_true", help="run the pending steps")
    endpoints_argument(p)
    p.add_argument(
        "--path",
        choices=("soa-uninstall", "management-tools"),
        default="soa-uninstall",
        help="which documented procedure to follow (default soa-uninstall)",
    )
    p.add_argument(
        "--state-dir",
        type=Path,
        default=DEFAULT_STATE,
        metavar="D",
        help="the writeback engine's state (its job health is a precondition) and where the "
        f"decommission journal is kept (default {DEFAULT_STATE})",
    )
    p.add_argument("--only", metavar="STEP", help="execute just this step (by id)")
    p.add_argument(
        "--results",
        type=Path,
        default=Path("results"),
        metavar="DIR",
        help="write decommission.json and decommission.md under DIR/decommission/<time>",
    )
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(run=run_decommission_command)


def run_decommission_command(args: argparse.Namespace) -> int:
    from harness.decommission import report
    from harness.decommission.estate import Estate, EstateError
    from harness.decommission.journal import JournalError
    from harness.decommission.workflow import Refused, execute, open_journal, plan
    from harness.report import run_dir

    if args.only and not args.execute:
        raise UsageError("--only goes with --execute")
    ep = read_endpoints(args.endpoints_file)
    out = Console(soft_wrap=True)
    try:
        journal = open_journal(args.state_dir, ep.tenant_id, args.path)
        with Estate(ep, args.state_dir) as estate:
            if args.plan:
                outcome = plan(estate, args.path, journal)
            else:

                def progress(step: str, status: str) -> None:
                    if not args.json:
                        out.print(f"  {status:<8} {step}", highlight=False)

                outcome = execute(estate, args.path, journal, args.only, progress)
    except (Refused, JournalError) as e:
        raise UsageError(str(e)) from None
    except EstateError as e:
        out.print(f"exwb decommission: {e}", style="red", highlight=False)
        return 1
    result = outcome.as_dict()
    paths = report.write(result, run_dir(args.results, "decommission"))
    if args.json:
        print(json.dumps({**result, "reports": {k: str(v) for k, v in paths.items()}}, indent=2))
    else:
        print_outcome(out, result, paths)
    if outcome.refused or outcome.error:
        return 1
    if args.plan:
        return 1 if outcome.blocked else 0
    return 0 if outcome.finished or args.only else 1


def print_outcome(out: Console, r: dict[str, Any], paths: dict[str, Path]) -> None:
    """The result for a person, laid out for the console's width (see `print_rows`)."""
    from harness.report.console import print_rows

    verdict = "BLOCKED" if r["blocked"] else ("DONE" if r["finished"] else "CAN RUN")
    style = "red" if r["blocked"] else "green"
    out.print(
        f"decommission {r['mode']} ({r['path']}) of {r['server']} [{r['serverState']}]: "
        f"[{style}]{verdict}[/]",
        soft_wrap=False,
    )
    if r["blockers"]:
        rows = [
            (b["code"], f"{b['title']}: {', '.join(b['examples'][:3])}", b["remedy"])
            for b in r["blockers"]
        ]
        print_rows(out, "blockers", ("code", "found", "remedy"), rows, fixed=1)
    steps = [(str(n), st["id"], st["status"], st["command"]) for n, st in enumerate(r["steps"], 1)]
    print_rows(out, "steps", ("#", "step", "status", "command"), steps, fixed=3)
    if r.get("refused"):
        out.print(f"refused: {r['refused']}", style="red", highlight=False, soft_wrap=False)
    if r.get("error"):
        out.print(
            f"stopped at {r['error']}; run again to resume",
            style="red",
            highlight=False,
            soft_wrap=False,
        )
    for item in r["leftovers"]:
        out.print(
            f"troubleshooting: {item['what']}. {item['remedy']}", highlight=False, soft_wrap=False
        )
    out.print(f"report: {paths['markdown']}", highlight=False)
