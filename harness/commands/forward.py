"""`exwb forward`: one Entra Connect forward-sync cycle (AD -> cloud) against a running tenant."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from harness.commands import DEFAULT_STATE, endpoints_argument, read_endpoints
from harness.core.errors import UsageError


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "forward",
        help="run one forward-sync cycle (Entra Connect model, AD -> cloud)",
        description="Run one Entra Connect Sync cycle against the tenant in the endpoints "
        "file: read every AD user with a source anchor (as the read-only account) and the "
        "cloud through Graph, and export what differs as Connect's sync account: identity "
        "attributes for every synced user, Exchange attributes only for mailboxes that are "
        "not cloud-managed, or for all of them with a build below 2.5.190.0 (which reverts "
        "cloud edits).",
    )
    endpoints_argument(p)
    p.add_argument(
        "--connect-build",
        metavar="V",
        help="the Entra Connect build to model (default 2.5.190.0, the first that honours "
        "IsExchangeCloudManaged)",
    )
    p.add_argument(
        "--state-dir",
        type=Path,
        default=DEFAULT_STATE,
        metavar="D",
        help=f"where logs/forward-NNNNNN.jsonl goes (default {DEFAULT_STATE})",
    )
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(run=run_forward_command)


def run_forward_command(args: argparse.Namespace) -> int:
    from harness.engine.forward import (
        DEFAULT_BUILD,
        ForwardError,
        connect_credentials,
        parse_build,
        run_forward,
    )
    from harness.engine.source import SourceError

    # The engine is imported here, not at the top: every exwb command would pay for it.
    build = DEFAULT_BUILD if args.connect_build is None else args.connect_build
    try:
        parse_build(build)
    except ValueError as e:
        raise UsageError(f"--connect-build: {e}") from None
    ep = read_endpoints(args.endpoints_file)
    try:
        cloud, ldap, export_url = connect_credentials(ep)
    except ValueError as e:
        raise UsageError(f"{args.endpoints_file}: {e}") from None
    try:
        report = run_forward(cloud, ldap, export_url, args.state_dir, build)
    except (ForwardError, SourceError) as e:
        raise UsageError(str(e)) from None
    except OSError as e:
        raise UsageError(f"--state-dir {args.state_dir}: {e}") from None
    out = Console(soft_wrap=True)
    if args.json:
        out.print_json(json.dumps(report.as_dict()))
    else:
        rule = "honours" if report.honours_cloud_management else "ignores"
        table = Table(title=f"forward sync, Connect {report.build} ({rule} IsExchangeCloudManaged)")
        for col in ("AD users", "exported", "unchanged", "failed", "reverted", "withheld", "s"):
            table.add_column(col, justify="right")
        table.add_row(
            f"{report.ad_users:,}",
            f"{report.exported:,}",
            f"{report.unchanged:,}",
            f"{report.failed:,}",
            f"{report.reverted:,}",
            f"{report.withheld:,}",
            f"{report.seconds:.1f}",
        )
        out.print(table)
        for attr, n in sorted(report.attributes.items()):
            out.print(f"  {attr}: {n:,} object(s)", highlight=False)
        for reason, n in report.skipped.items():
            out.print(f"  skipped, {reason}: {n:,}", highlight=False)
        out.print(f"log: {report.log_path}", highlight=False)
    return 1 if report.failed else 0
