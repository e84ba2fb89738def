"""`exwb cycle` and `exwb verify`: the writeback engine against a running tenant."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

DEFAULT_STATE = Path("results/engine-state")


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--endpoints-file",
        type=Path,
        required=True,
        metavar="F",
        help="the endpoints JSON written by exwb serve",
    )
    p.add_argument(
        "--profile",
        default="ga",
        metavar="P",
        help="ga (default), preview, or a custom profile YAML file",
    )
    p.add_argument("--json", action="store_true", help="print the report as JSON")


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "cycle",
        help="run one writeback cycle (Exchange Online -> AD)",
        description="Run one writeback cycle of the engine against the tenant in "
        "the endpoints file: import changes from Graph, match AD users by anchor, "
        "scope to cloud-managed mailboxes, export the minimal modifies over LDAP as "
        "the writeback service account.",
    )
    _common(p)
    p.add_argument(
        "--mode",
        choices=("delta", "full", "dry-run"),
        default="delta",
        help="delta (default; the first one runs as the initial cycle), full, dry-run",
    )
    p.add_argument(
        "--state-dir",
        type=Path,
        default=DEFAULT_STATE,
        metavar="D",
        help=f"watermark, escrow and provisioning logs (default {DEFAULT_STATE})",
    )
    p.set_defaults(run=run_cycle_command)
    v = sub.add_parser(
        "verify",
        help="report whether AD matches the cloud for every in-scope mailbox",
        description="Round-trip parity report: per attribute, matches and mismatches "
        "between what the profile wants from Exchange Online and what AD holds, for "
        "every cloud-managed mailbox. Exit 0 when they agree, 1 when not.",
    )
    _common(v)
    v.set_defaults(run=run_verify_command)


def _load(args: argparse.Namespace):
    from harness.cli import UsageError
    from harness.engine.rules import BUILTIN_PROFILES, ProfileError, load_profile
    from harness.engine.source import CloudCredentials
    from harness.engine.target import LdapCredentials
    from mockservers.runtime import Endpoints

    try:
        ep = Endpoints.read(args.endpoints_file)
    except (OSError, ValueError, TypeError) as e:
        raise UsageError(f"--endpoints-file {args.endpoints_file}: {e}") from None
    if not ep.graph_url:
        raise UsageError(f"{args.endpoints_file}: no graph_url (is the cloud side running?)")
    if args.profile in BUILTIN_PROFILES:
        profile = BUILTIN_PROFILES[args.profile]
    else:
        try:
            profile = load_profile(Path(args.profile))
        except (ProfileError, OSError) as e:
            raise UsageError(str(e)) from None
    cloud = CloudCredentials(
        ep.graph_url, ep.token_url, ep.readonly_client_id, ep.readonly_client_secret
    )
    ldap = LdapCredentials(ep.ldap_url, ep.bind_dn, ep.bind_password, ep.base_dn)
    return cloud, ldap, profile


def run_cycle_command(args: argparse.Namespace) -> int:
    from harness.cli import UsageError
    from harness.engine.cycle import run_cycle
    from harness.engine.source import SourceError
    from harness.engine.state import StateError
    from harness.engine.target import LdapTargetError

    cloud, ldap, profile = _load(args)
    try:
        report = run_cycle(cloud, ldap, profile, args.state_dir, args.mode)
    except (SourceError, LdapTargetError, StateError) as e:
        raise UsageError(str(e)) from None
    out = Console(soft_wrap=True)
    if args.json:
        out.print_json(json.dumps({**report.as_dict(), "pending": report.pending}))
    else:
        table = Table(title=f"{args.mode} cycle, profile {profile.name}")
        for col in ("objects", "Success", "Failure", "Skipped", "updates", "seconds", "objects/s"):
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
        for p in report.pending[:50]:
            change = f"{p['oldValue']} -> {p['newValue']}"
            out.print(f"  would write {p['displayName']} on {p['dn']}: {change}", highlight=False)
        out.print(f"provisioning log: {report.log_path}", highlight=False)
    return 1 if report.statuses["Failure"] else 0


def run_verify_command(args: argparse.Namespace) -> int:
    from harness.cli import UsageError
    from harness.engine.source import SourceError
    from harness.engine.target import LdapTargetError
    from harness.engine.verify import verify

    cloud, ldap, profile = _load(args)
    try:
        parity = verify(cloud, ldap, profile)
    except (SourceError, LdapTargetError) as e:
        raise UsageError(str(e)) from None
    out = Console(soft_wrap=True)
    if args.json:
        out.print_json(
            json.dumps(
                {
                    "inScope": parity.in_scope,
                    "unmatched": parity.unmatched,
                    "matches": parity.matches,
                    "mismatches": parity.mismatches,
                    "examples": parity.examples,
                    "clean": parity.clean,
                }
            )
        )
    else:
        table = Table(
            title=f"parity of {parity.in_scope:,} cloud-managed mailboxes, profile {profile.name}"
        )
        for col in ("attribute", "match", "mismatch"):
            table.add_column(col, justify="right" if col != "attribute" else "left")
        for attr in profile.targets:
            table.add_row(attr, f"{parity.matches[attr]:,}", f"{parity.mismatches[attr]:,}")
        out.print(table)
        for attr, shown in parity.examples.items():
            for ex in shown:
                out.print(
                    f"  {attr} on {ex['dn']}: AD {ex['ad']} != cloud {ex['cloud']}", highlight=False
                )
        if parity.unmatched:
            out.print(
                f"{len(parity.unmatched)} in-scope mailbox(es) without an AD user", highlight=False
            )
        out.print("clean" if parity.clean else "NOT clean")
    return 0 if parity.clean else 1
