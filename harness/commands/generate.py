"""`exwb generate`: write a generated tenant as LDIF (AD) and JSONL (Exchange Online)."""

from __future__ import annotations

import argparse
import re
import time
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from harness.core.errors import UsageError
from harness.tenant import MAX_MAILBOXES, SpecError, TenantSpec, generate
from harness.tenant.exports import DEFAULT_FORMATS, EXPORT_FORMATS, export_tenant
from harness.tenant.files import TenantFileError, ensure_writable_dir, write_tenant


def count(text: str) -> int:
    """A whole number, allowing 200_000, 200,000 and 200k."""
    m = re.fullmatch(r"\s*(\d[\d_,]*)\s*([kKmM]?)\s*", text)
    if not m:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number")
    n = int(m.group(1).replace("_", "").replace(",", ""))
    return n * {"": 1, "k": 1000, "m": 1_000_000}[m.group(2).lower()]


def knob(text: str) -> tuple[str, Any]:
    """NAME=VALUE, the value read as YAML (so 0.5, [a, b] and {user: 1} work)."""
    name, sep, raw = text.partition("=")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"{text!r} is not NAME=VALUE")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        raise argparse.ArgumentTypeError(f"the value of {name.strip()} is not valid YAML") from None
    return name.strip(), value


def add_tenant_arguments(p: argparse.ArgumentParser) -> None:
    """--mailboxes, --seed, --domain and --knob: every command that builds a tenant takes them."""
    p.add_argument(
        "--mailboxes",
        "-n",
        type=count,
        default=None,
        metavar="N",
        help=f"synced mailboxes, 1 to {MAX_MAILBOXES:,} (default 1000; 200k works)",
    )
    p.add_argument(
        "--seed", "-s", type=count, default=None, metavar="S", help="random seed (default 1)"
    )
    p.add_argument("--domain", default=None, help="primary domain (default contoso.com)")
    p.add_argument(
        "--knob",
        "-k",
        type=knob,
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="set any tenant knob (see exwb generate --list-knobs); repeatable",
    )


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "generate",
        help="generate a tenant and write directory.ldif, cloud.jsonl and tenant.json",
        description="Generate a deterministic tenant (same size, seed and knobs: same bytes) and "
        "write DIR/directory.ldif (the AD domain partition, RFC 2849), DIR/cloud.jsonl (one "
        "Exchange Online recipient per line) and DIR/tenant.json (the manifest).",
    )
    add_tenant_arguments(p)
    p.add_argument(
        "--out", "-o", type=Path, metavar="DIR", help="output directory (created if missing)"
    )
    p.add_argument(
        "--export",
        action="append",
        default=[],
        metavar="FORMAT",
        help="also write the tenant as an administrator's export into DIR/exports/ (ldifde, "
        "csvde, get-aduser, get-mailbox-json, graph-users, ...; 'all' for every readable one; "
        "see docs/own-tenant.md), to try exwb import on; repeatable",
    )
    p.add_argument("--list-knobs", action="store_true", help="list the tenant knobs and exit")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    p.set_defaults(run=run)


def spec_from_args(args: argparse.Namespace) -> TenantSpec:

    values: dict[str, Any] = dict(args.knob)
    for name in ("mailboxes", "seed", "domain"):
        if getattr(args, name) is not None:
            values[name] = getattr(args, name)
    try:
        return TenantSpec.from_mapping(values)
    except SpecError as e:
        flag = f"--{e.knob}" if e.knob in ("mailboxes", "seed", "domain") else f"knob {e.knob}"
        raise UsageError(f"{flag}: {e.message}") from None


def export_names(asked: list[str]) -> tuple[str, ...]:
    """The --export names, checked before anything is generated; 'all' is every readable one."""
    names: list[str] = []
    for a in asked:
        for name in (n.strip() for n in a.split(",")):
            if name == "all":
                names.extend(DEFAULT_FORMATS)
            elif name in EXPORT_FORMATS:
                names.append(name)
            else:
                raise UsageError(
                    f"--export: unknown format {name!r} (known: all, {', '.join(EXPORT_FORMATS)})"
                )
    return tuple(dict.fromkeys(names))


def list_knobs(console: Console) -> int:
    table = Table(title="Tenant knobs (set with --knob NAME=VALUE)")
    table.add_column("knob", style="bold")
    table.add_column("default")
    table.add_column("meaning")
    for name, (text, default) in TenantSpec.knob_help().items():
        table.add_row(
            name, repr(default) if not isinstance(default, str) else default or "''", text
        )
    console.print(table)
    return 0


def run(args: argparse.Namespace) -> int:

    out = Console(soft_wrap=True)
    if args.list_knobs:
        return list_knobs(out)
    if args.out is None:
        raise UsageError("--out DIR is required")
    spec = spec_from_args(args)
    exports = export_names(args.export)
    try:
        ensure_writable_dir(args.out)
    except TenantFileError as e:
        raise UsageError(str(e)) from None

    total = spec.mailboxes + spec.onprem_mailboxes + spec.cloud_only_users + spec.ad_only_users
    progress = Progress(
        TextColumn("{task.description:<12}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        disable=args.quiet,
        transient=False,
    )
    started = time.perf_counter()
    with progress:
        gen_task = progress.add_task("generating", total=total)
        tenant = generate(spec, lambda done, _t: progress.update(gen_task, completed=done))
        generated = time.perf_counter()
        n_objects = 1 + len(tenant.ous) + len(tenant.ad_users) + len(tenant.mailboxes) + 1
        write_task = progress.add_task("writing", total=n_objects)
        try:
            written = write_tenant(tenant, args.out, lambda: progress.advance(write_task))
        except TenantFileError as e:
            raise UsageError(str(e)) from None
        progress.update(write_task, completed=n_objects)
        if exports:
            progress.add_task(f"exports: {', '.join(exports)}", total=None)
            try:
                exported = export_tenant(tenant, args.out / "exports", exports)
            except TenantFileError as e:
                raise UsageError(str(e)) from None
    finished = time.perf_counter()

    synced = sum(1 for m in tenant.mailboxes if m.is_dir_synced)
    managed = sum(1 for m in tenant.mailboxes if m.is_exchange_cloud_managed)
    out.print(
        f"Tenant [bold]{spec.domain}[/] seed {spec.seed}: {len(tenant.ad_users):,} AD users and "
        f"{len(tenant.groups):,} groups in {len(tenant.ous)} OUs, {len(tenant.mailboxes):,} cloud "
        f"recipients ({synced:,} synced, {managed:,} cloud-managed)"
    )
    for _name, w in written.items():
        out.print(f"  {w.path}  {w.bytes:,} bytes  sha256 {w.sha256[:16]}")
    for name, path in exported.items() if exports else ():
        out.print(f"  {path}  ({name})", highlight=False)
    out.print(
        f"generated in {generated - started:.1f} s, written in {finished - generated:.1f} s",
        highlight=False,
    )
    return 0
