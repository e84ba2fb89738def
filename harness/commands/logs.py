"""`exwb logs`: download the writeback job's provisioning log as the Entra portal does."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from harness.commands.engine_args import state_dir_argument
from harness.core.errors import UsageError

FORMATS = ("json", "csv")


def _statuses(text: str) -> frozenset[str]:
    from harness.report.provisioning_download import STATUSES

    names = frozenset(p.strip().lower() for p in text.split(",") if p.strip())
    unknown = sorted(names - set(STATUSES))
    if not names or unknown:
        raise argparse.ArgumentTypeError(
            f"{text!r}: each status must be one of {', '.join(STATUSES)} (comma-separated)"
        )
    return names


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "logs",
        help="download the job's provisioning log (JSON, or the portal's three CSV files)",
        description="The provisioning log of a job's state folder, newest first, as the Entra "
        "portal downloads it: JSON (one array of provisioningObjectSummary records) or CSV "
        "(ProvisioningLogs.csv, ProvisioningLogs_ProvisioningSteps.csv and "
        "ProvisioningLogs_ModifiedProperties.csv, joined on the change id). Exit 0, or 2 for "
        "bad input (a missing folder, a log line that is not a record: file:line).",
    )
    state_dir_argument(p)
    p.add_argument("--format", choices=FORMATS, default="json", help="json (default) or csv")
    p.add_argument(
        "--out",
        type=Path,
        metavar="PATH",
        help="json: the file to write (default: standard output); csv: the folder for the "
        "three files (default: the current folder)",
    )
    p.add_argument("--cycle", metavar="ID", help="only the records of this cycle id")
    p.add_argument(
        "--status",
        type=_statuses,
        metavar="S",
        help="only these statuses: success, failure, skipped, warning (comma-separated)",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from harness.engine.log import LogError
    from harness.report import provisioning_download as dl
    from harness.tenant.files import TenantFileError, ensure_writable_dir

    state_dir: Path = args.state_dir
    if not state_dir.is_dir():
        raise UsageError(f"--state-dir {state_dir}: no such folder")
    selection = dl.Selection(args.cycle, args.status or frozenset())
    try:
        if args.format == "json" and args.out is None:
            for chunk in dl.json_chunks(dl.records(state_dir, selection)):
                sys.stdout.write(chunk)
            sys.stdout.flush()
            return 0
        if args.format == "json":
            done = dl.write_json(state_dir, selection, args.out)
        else:
            folder = args.out or Path(".")
            ensure_writable_dir(folder)
            done = dl.write_csv(state_dir, selection, folder)
    except LogError as e:
        raise UsageError(str(e)) from None
    except TenantFileError as e:
        raise UsageError(str(e)) from None
    except OSError as e:
        raise UsageError(f"--out {args.out}: {e.strerror}") from None
    names = ", ".join(str(f.path) for f in done.files)
    print(f"{done.records:,} records: {names}", file=sys.stderr)
    return 0
