"""`exwb import`: an administrator's own AD and Exchange Online exports as a tenant folder."""

from __future__ import annotations

import argparse
import contextlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console

from harness.core.errors import UsageError
from harness.tenant.imports.build import KINDS, import_tenant
from harness.tenant.imports.records import ExportError
from harness.tenant.imports.report import REPORT_MD

if TYPE_CHECKING:
    from harness.preflight.during_import import ImportPreflight

PREFLIGHT_MD = "preflight.md"  # what `exwb import --preflight` writes into the folder
PREFLIGHT_JSON = "preflight.json"


def side_format(text: str) -> tuple[str, str]:
    """KIND=FMT, e.g. ad=csvde, exo=exo-csv, graph=mguser-json."""
    kind, sep, fmt = text.partition("=")
    kind, fmt = kind.strip().lower(), fmt.strip()
    if not sep or kind not in KINDS or not fmt:
        raise argparse.ArgumentTypeError(f"{text!r} is not KIND=FORMAT with KIND {'/'.join(KINDS)}")
    return kind, fmt


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "import",
        help="import your own AD and Exchange Online exports as a tenant folder",
        description="Read AD exports (ldifde/ldapsearch LDIF, csvde or Get-ADUser CSV), a "
        "Get-Mailbox export (JSON or CSV) and optionally Graph users, join them, and write "
        "DIR/directory.ldif, DIR/cloud.jsonl, DIR/tenant.json and DIR/import-report.md/.json. "
        "Formats are detected by content; nothing is written to DIR unless the import succeeds.",
    )
    p.add_argument(
        "--ad",
        type=Path,
        action="append",
        required=True,
        metavar="FILE",
        help="an AD export (repeatable: one per domain or OU)",
    )
    p.add_argument(
        "--exo",
        type=Path,
        metavar="FILE",
        help="the Get-Mailbox / Get-EXOMailbox export",
    )
    p.add_argument(
        "--graph",
        type=Path,
        metavar="FILE",
        help="Graph users (saved /v1.0/users pages or Get-MgUser JSON)",
    )
    p.add_argument(
        "--out",
        "-o",
        type=Path,
        required=True,
        metavar="DIR",
        help="the tenant folder to write (must not exist, or be empty)",
    )
    p.add_argument(
        "--pseudonymise",
        type=Path,
        metavar="KEYFILE",
        help="pseudonymise names, addresses, GUIDs and OUs with this key (HMAC)",
    )
    p.add_argument(
        "--policy",
        type=Path,
        metavar="FILE",
        help="per-attribute policy for free text (keep, pseudonymise, drop)",
    )
    p.add_argument(
        "--format",
        type=side_format,
        action="append",
        default=[],
        metavar="KIND=FMT",
        dest="formats",
        help="override detection: ad=ldif|csvde|adcsv, exo=exo-json|exo-csv, "
        "graph=graph-json|mguser-json",
    )
    p.add_argument(
        "--domain", metavar="DNS-NAME", help="the AD domain to import when the exports hold several"
    )
    p.add_argument(
        "--writeback-ou",
        action="append",
        default=[],
        metavar="DN",
        dest="writeback_ous",
        help="an OU the writeback account may write (repeatable; default: the OUs "
        "holding the cloud-managed users, reported as an assumption)",
    )
    p.add_argument(
        "--preflight",
        action="store_true",
        help="pre-flight the tenant as it is written (what exwb preflight DIR reports, "
        f"without reading the folder back): DIR/{PREFLIGHT_MD} and DIR/{PREFLIGHT_JSON}, "
        "exit 1 when a rule finds an error",
    )
    p.add_argument(
        "--profile",
        default="ga",
        metavar="P",
        help="the pre-flight's profile: ga (default), preview, or a custom profile YAML file",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.exo is None:
        raise UsageError(
            "an AD export alone is not a tenant: give the mailboxes with --exo FILE (hint: "
            "Get-Mailbox -ResultSize Unlimited | ConvertTo-Json -Depth 4 > mailboxes.json)"
        )
    if args.policy is not None and args.pseudonymise is None:
        raise UsageError("--policy needs --pseudonymise KEYFILE")
    out = Console(soft_wrap=True, highlight=False)
    preflight = None
    if args.preflight:
        from harness.commands.engine_args import profile_option
        from harness.preflight.during_import import ImportPreflight

        # The folder's writable OUs are the ones tenant.json lists, as exwb preflight DIR
        # reads them: --writeback-ou has already been mapped into them by the import.
        preflight = ImportPreflight(profile_option(args.profile), args.out, out)
    with preflight if preflight is not None else contextlib.nullcontext():
        return _import(args, out, preflight)


def _import(args: argparse.Namespace, out: Console, preflight: ImportPreflight | None) -> int:
    try:
        result = import_tenant(
            args.ad,
            args.exo,
            args.graph,
            args.out,
            pseudonymise=args.pseudonymise,
            formats=dict(args.formats),
            domain=args.domain,
            writeback_ous=args.writeback_ous,
            policy=args.policy,
            sink=preflight,
        )
    except ExportError as e:
        raise UsageError(str(e)) from None
    rep = result.report
    counts, joins = rep["counts"], rep["joins"]
    out.print(
        f"Imported [bold]{rep['domain']}[/] into {result.out}: {counts['ad_users']:,} AD users, "
        f"{counts['organizational_units']:,} OUs, {counts['cloud_recipients']:,} cloud "
        f"recipients ({counts['synced']:,} synced, {counts['cloud_managed']:,} cloud-managed)"
    )
    rules = ", ".join(f"{rule} {n:,}" for rule, n in joins["rules"].items())
    out.print(
        f"  joined: {rules}; cloud-only {joins['cloud_only']:,}; no AD user "
        f"{joins['unmatched_mailboxes']['count']:,}; several AD users "
        f"{joins['one_mailbox_several_ad_users']['count']:,}; AD users with several mailboxes "
        f"{joins['one_ad_user_several_mailboxes']['count']:,}"
    )
    unknown = rep["ad"]["unknown_attributes"]
    if unknown:
        out.print(f"  left out {len(unknown)} attributes the fake's schema does not know")
    if rep["pseudonymisation"] is not None:
        out.print("  pseudonymised")
    for warning in rep["warnings"]:
        out.print(f"  [yellow]warning:[/] {warning}")
    out.print(f"  report: {result.out / REPORT_MD}")
    if preflight is None:
        return 0
    from harness.commands.preflight import write_texts

    done = preflight.result()
    folder = result.out
    write_texts({folder / PREFLIGHT_JSON: done.json, folder / PREFLIGHT_MD: done.markdown})
    out.file.write(done.console)
    out.print(f"  pre-flight: {folder / PREFLIGHT_MD}")
    return done.exit_code
