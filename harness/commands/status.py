"""`exwb status`: the writeback job's health, and pausing, resuming or restarting it."""

from __future__ import annotations

import argparse
import json
from typing import Any

from rich.console import Console

from harness.commands.engine_args import profile_option, state_dir_argument
from harness.core.errors import UsageError


def add_parser(sub: Any) -> None:
    st = sub.add_parser(
        "status",
        help="show the writeback job's health (like Graph's synchronizationJob)",
        description="The job's state (Active, Paused, Quarantine, NotRun), its schedule "
        "and next run, its last execution, quarantine reason, escrowed failures and warnings. "
        "--pause, --resume "
        "and --restart change the job as the portal's buttons do. Exit 0 when the job is "
        "Active or has not run, 1 when paused or quarantined.",
    )
    state_dir_argument(st)
    st.add_argument(
        "--profile", default="ga", metavar="P", help="ga (default), preview, or a YAML file"
    )
    st.add_argument("--json", action="store_true", help="print the job as JSON")
    change = st.add_mutually_exclusive_group()
    change.add_argument("--pause", action="store_true", help="pause the job")
    change.add_argument("--resume", action="store_true", help="resume a paused job")
    change.add_argument(
        "--restart",
        action="store_true",
        help="restart provisioning: clear watermark, escrow and quarantine",
    )
    st.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from harness.engine.health import INTERVAL, job_status, parse_iso_duration
    from harness.engine.state import EngineState, StateError

    chosen = profile_option(args.profile)
    try:
        state = EngineState.load(args.state_dir)
    except StateError as e:
        raise UsageError(str(e)) from None
    if args.pause or args.resume or args.restart:
        if args.pause:
            state.paused = True
        elif args.resume:
            state.paused = False
        else:
            state.restart()  # the portal default: QuarantineState, Watermark, Escrows
        state.save(args.state_dir)
    try:  # the schedule a served job runs on (exwb serve --writeback --interval)
        interval = parse_iso_duration(state.interval) if state.interval else INTERVAL
    except ValueError as e:
        raise UsageError(f"{args.state_dir}: interval {e}") from None
    job = job_status(state, chosen, str(args.state_dir.resolve()), interval)
    out = Console(soft_wrap=True)
    if args.json:
        out.print_json(json.dumps(job))
    else:
        st, ex = job["status"], job["exwb"]
        out.print(f"job {job['id']}", highlight=False)
        sched = job["schedule"]
        out.print(f"state: {st['code']}", highlight=False)
        out.print(
            f"schedule: every {sched['interval']} ({sched['state']}); next run "
            f"{ex['nextRun'] or 'none (' + sched['state'].lower() + ')'}",
            highlight=False,
        )
        last = st["lastExecution"]
        if last and last["timeBegan"]:
            out.print(f"last cycle began {last['timeBegan']}", highlight=False)
        if last and ex["lastCycle"]:
            out.print(
                f"last execution: {last['state']}, {ex['lastCycle']['mode']} cycle "
                f"{last['activityIdentifier']}, {last['countEntitled']:,} objects, "
                f"{last['countExported']:,} exported, {ex['lastCycle']['seconds']} s",
                highlight=False,
            )
        if st["quarantine"]:
            q = st["quarantine"]
            out.print(
                f"quarantined since {q['seriesBegan']} ({q['seriesCount']} re-evaluations, the "
                f"last {q['currentBegan']}; next attempt {q['nextAttempt'] or 'none: disabled'})"
                f": {q['reason']}: {q['error']}",
                style="red",
                highlight=False,
            )
        if st["escrowsPruned"]:
            out.print(
                "escrows pruned: the initial cycle reached the quarantine thresholds; the job "
                "is paused until the errors are fixed",
                style="yellow",
                highlight=False,
            )
        out.print(
            f"profile {ex['profile']}: {ex['inScope'] or 0:,} in scope of a documented limit "
            f"of {ex['mailboxLimit']:,}; {ex['escrowed']:,} escrowed",
            highlight=False,
        )
        for held in ex["escrowExamples"]:
            out.print(
                f"  escrowed {held['sourceId']}: LDAP {held['errorCode']} {held['reason']} "
                f"({held['attempts']} attempts since {held['firstFailed']})",
                highlight=False,
            )
        for w in ex["warnings"]:
            out.print(f"warning: {w}", style="yellow", highlight=False)
    return 0 if job["status"]["code"] in ("Active", "NotRun") else 1
