"""`exwb serve`: run the fake tenant on loopback for the user's own tools."""

from __future__ import annotations

import argparse
import gc
import sys
import time
from pathlib import Path
from typing import Any

from rich.console import Console

from harness.commands.generate import add_tenant_arguments, spec_from_args
from harness.tenant import generate
from mockservers.runtime import LOOPBACK


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "serve",
        help="serve a tenant: fake AD over LDAP and fake Exchange Online / Graph over HTTP",
        description="Start the fake Active Directory (LDAP) and the fake Exchange Online / Graph "
        "API (HTTP) holding one generated tenant (or an LDIF file and the cloud.jsonl beside it) "
        "on loopback, print their endpoints and credentials, write them as JSON (mode 0600) once "
        "both accept connections, and serve until SIGINT or SIGTERM.",
    )
    add_tenant_arguments(p)
    p.add_argument(
        "--ldif",
        type=Path,
        metavar="FILE",
        help="load the directory from this LDIF instead of generating a tenant",
    )
    p.add_argument(
        "--ldap-port",
        type=int,
        default=0,
        metavar="P",
        help="LDAP port (default: a free port, printed)",
    )
    p.add_argument(
        "--http-port",
        type=int,
        default=0,
        metavar="P",
        help="Graph / EXO admin API port (default: a free port, printed)",
    )
    p.add_argument(
        "--throttle",
        default="off",
        metavar="PROFILE",
        help="Graph throttling: off (default), documented, or RU/WRITES per 10 s / 150 s",
    )
    p.add_argument(
        "--listen",
        default=LOOPBACK,
        metavar="ADDR",
        help="address to listen on (default 127.0.0.1; anything else is exposed)",
    )
    p.add_argument(
        "--endpoints-file",
        type=Path,
        metavar="F",
        help="write endpoints and credentials here as JSON (mode 0600)",
    )
    p.add_argument(
        "--dump-ldif",
        type=Path,
        metavar="FILE",
        help="on shutdown, write the directory's final state to this LDIF file",
    )
    p.add_argument("--quiet", "-q", action="store_true", help="print only errors")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from harness.cli import UsageError
    from harness.tenant.files import CLOUD_NAME, TenantFileError, read_cloud_jsonl
    from mockservers.cloud.server import make_site
    from mockservers.cloud.throttle import Throttle
    from mockservers.directory.ldif_io import LdifError, dump_ldif, load_ldif
    from mockservers.directory.seed import seed_directory
    from mockservers.directory.server import DirectoryFactory
    from mockservers.directory.service import DirectoryService
    from mockservers.runtime import build_cloud, cloud_endpoints, endpoints_for, reactor

    out = Console(soft_wrap=True, quiet=args.quiet)
    err = Console(stderr=True, soft_wrap=True)
    for flag, port in (("--ldap-port", args.ldap_port), ("--http-port", args.http_port)):
        if not 0 <= port <= 65535:
            raise UsageError(f"{flag} must be between 0 and 65535 (got {port})")
    try:
        Throttle.profile(args.throttle)
    except ValueError as e:
        raise UsageError(f"--throttle: {e}") from None
    if args.ldif and (args.mailboxes or args.seed or args.knob or args.domain):
        raise UsageError(
            "--ldif loads a directory as it is: drop --mailboxes/--seed/--knob/--domain"
        )
    started = time.perf_counter()
    generated = 0.0
    if args.ldif:
        try:
            seeded = load_ldif(args.ldif)
        except LdifError as e:
            raise UsageError(str(e)) from None
        beside = args.ldif.with_name(CLOUD_NAME)
        try:
            mailboxes = read_cloud_jsonl(beside) if beside.exists() else []
        except TenantFileError as e:
            raise UsageError(str(e)) from None
    else:
        spec = spec_from_args(args)
        with out.status(f"generating {spec.mailboxes:,} mailboxes"):
            tenant = generate(spec)
        generated = time.perf_counter() - started
        with out.status("loading the directory"):
            seeded = seed_directory(tenant)
        mailboxes = tenant.mailboxes
        del tenant
    gc.collect()
    gc.freeze()  # the loaded directory is long-lived: keep the GC from rescanning it
    service = DirectoryService.from_seed(seeded)
    cloud = build_cloud(mailboxes, seeded.spec, args.throttle, faults=service.faults)
    del mailboxes
    try:
        port = reactor.listenTCP(args.ldap_port, DirectoryFactory(service), 50, args.listen)
        http = reactor.listenTCP(args.http_port, make_site(cloud), 50, args.listen)
    except Exception as e:  # CannotListenError carries the OS reason
        raise UsageError(f"cannot listen on {args.listen}: {e}") from None
    if args.listen != LOOPBACK:
        err.print(
            f"[yellow]warning:[/] listening on {args.listen}: the fake directory and its "
            "credentials are reachable from other hosts"
        )
    endpoints = endpoints_for(seeded, args.listen, port.getHost().port)
    endpoints = cloud_endpoints(endpoints, cloud, args.listen, http.getHost().port)
    loaded = time.perf_counter() - started

    def announce() -> None:
        if args.endpoints_file:
            try:
                endpoints.write(args.endpoints_file)
            except OSError as e:
                err.print(f"exwb serve: error: cannot write {args.endpoints_file}: {e.strerror}")
                reactor.stop()
                return
        out.print(
            f"fake tenant ready in {loaded:.1f} s (generated in {generated:.1f} s, loaded in "
            f"{loaded - generated:.1f} s): {len(service.store.entries):,} entries",
            highlight=False,
        )
        out.print(f"  ldap_url       {endpoints.ldap_url}")
        out.print(f"  base_dn        {endpoints.base_dn}")
        out.print(f"  bind_dn        {endpoints.bind_dn}  (writeback service account)")
        out.print(f"  bind_password  {endpoints.bind_password}")
        out.print(f"  admin_dn       {endpoints.admin_dn}")
        out.print(f"  admin_password {endpoints.admin_password}")
        out.print(f"  graph_url      {endpoints.graph_url}  ({len(cloud.store):,} recipients)")
        out.print(f"  token_url      {endpoints.token_url}")
        out.print(f"  client_id      {endpoints.client_id}  (read-write app)")
        out.print(f"  client_secret  {endpoints.client_secret}")
        if args.endpoints_file:
            out.print(f"  endpoints file {args.endpoints_file}")
        out.print("Ctrl-C or SIGTERM stops the server.")
        sys.stdout.flush()

    reactor.callWhenRunning(announce)
    reactor.run()  # installs SIGINT/SIGTERM handlers that stop the reactor
    if args.dump_ldif:
        n = dump_ldif(service.store, args.dump_ldif)
        out.print(f"wrote {n:,} entries to {args.dump_ldif}")
    if args.endpoints_file:
        args.endpoints_file.unlink(missing_ok=True)
    return 0
