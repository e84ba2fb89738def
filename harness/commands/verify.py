"""`exwb verify`: the round-trip parity report, AD against Exchange Online."""

from __future__ import annotations

import argparse
import json
from typing import Any

from rich.console import Console
from rich.table import Table

from harness.commands.engine_args import connection_arguments, load_settings
from harness.core.errors import UsageError


def add_parser(sub: Any) -> None:
    v = sub.add_parser(
        "verify",
        help="report whether AD matches the cloud for every in-scope mailbox",
        description="Round-trip parity report: per attribute, matches and mismatches "
        "between what the profile wants from Exchange Online and what AD holds, for "
        "every cloud-managed mailbox. Exit 0 when they agree, 1 when not.",
    )
    connection_arguments(v)
    v.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from harness.engine.source import SourceError
    from harness.engine.target import LdapTargetError
    from harness.engine.verify import verify

    cloud, ldap, profile = load_settings(args)
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
