"""`exwb preflight`: readiness checks of a tenant folder or a running tenant, before writeback."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.commands.engine_args import connection_arguments, load_settings, profile_option
from harness.core.errors import UsageError

if TYPE_CHECKING:
    from harness.preflight.run import PreflightReport


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "preflight",
        help="check a tenant before its first writeback cycle (IdFix and writeback rules)",
        description="Check a tenant before its first writeback cycle: IdFix's rules on AD "
        "(lengths, invalid characters, address shape and TLD, duplicates naming every "
        "object) and the writeback's (values AD's schema would refuse, mailboxes without "
        "an AD user or joined twice, users outside the writable OUs, address collisions, "
        "the profile's limit and mail mapping, mailboxes that will flip when made "
        "cloud-managed). Reads a tenant folder (exwb generate / exwb import) or a running "
        "directory and Graph (--endpoints-file or the explicit settings). Exit 0 when no "
        "rule finds an error (warnings allowed), 1 when one does, 2 on bad input.",
        conflict_handler="resolve",
    )
    p.add_argument(
        "tenant",
        nargs="?",
        type=Path,
        metavar="DIR",
        help="a tenant folder (directory.ldif, cloud.jsonl, tenant.json)",
    )
    connection_arguments(p)
    # connection_arguments' --json prints to stdout; here every format is a file, so this
    # --json replaces it (the parser resolves the conflict).
    p.add_argument("--json", type=Path, metavar="F", help="write the report as JSON to F")
    p.add_argument("--md", type=Path, metavar="F", help="write the report as Markdown to F")
    p.add_argument("--junit", type=Path, metavar="F", help="write JUnit XML (a case per rule)")
    p.add_argument(
        "--writeback-ou",
        action="append",
        default=[],
        metavar="DN",
        help="an OU the writeback account may write (repeatable; default: tenant.json's "
        "writeback_ous, else OU=Corp,<base DN> as the fake grants)",
    )
    p.add_argument(
        "--examples",
        type=int,
        default=5,
        metavar="N",
        help="examples kept per rule (default 5; every finding is counted)",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from harness.core.ldapresult import LdapError
    from harness.engine.source import SourceError
    from harness.preflight import output
    from harness.preflight.run import run_preflight
    from harness.preflight.snapshot import from_folder, from_live
    from harness.tenant.files import TenantFileError
    from harness.tenant.imports.records import ExportError

    if args.examples < 1:
        raise UsageError("--examples must be at least 1")
    try:
        if args.tenant is not None:
            if args.endpoints_file is not None or args.ldap_url or args.graph_url:
                raise UsageError("give a tenant folder or connection settings, not both")
            snap = from_folder(args.tenant, profile_option(args.profile), args.writeback_ou)
        else:
            cloud, ldap, profile = load_settings(args)
            snap = from_live(cloud, ldap, profile, args.writeback_ou)
    except (ExportError, TenantFileError, SourceError, LdapError) as e:
        raise UsageError(str(e)) from None
    report = run_preflight(snap, args.examples)
    write_reports(report, json=args.json, md=args.md, junit=args.junit)
    output.print_console(Console(soft_wrap=True), report)
    return report.exit_code


def write_reports(
    report: PreflightReport,
    *,
    json: Path | None = None,
    md: Path | None = None,
    junit: Path | None = None,
) -> None:
    """The report in each format given a file; UsageError when one cannot be written."""
    from harness.preflight import output

    writers = ((json, output.json_text), (md, output.markdown), (junit, output.junit_xml))
    write_texts({path: write(report) for path, write in writers if path is not None})


def write_texts(texts: dict[Path, str]) -> None:
    """Each text to its file (parents made); UsageError when one cannot be written."""
    for path, text in texts.items():
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        except OSError as e:
            raise UsageError(f"cannot write {path}: {e.strerror}") from None
