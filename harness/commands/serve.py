"""`exwb serve`: run the fake tenant on loopback for the user's own tools."""

from __future__ import annotations

import argparse
import gc
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from rich.console import Console

from harness.commands import served_job
from harness.commands.generate import add_tenant_arguments, spec_from_args
from harness.core.endpoints import Endpoints
from harness.core.errors import UsageError
from harness.tenant import generate
from harness.tenant.model import CloudMailbox
from mockservers.directory.seed import Seeded
from mockservers.faults import FaultSpec
from mockservers.pki import Pki
from mockservers.requestlog import RequestLog
from mockservers.runtime import LOOPBACK, TenantServices
from mockservers.state import Durable


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "serve",
        help="serve a tenant: fake AD over LDAP, fake Exchange Online / Graph over HTTP, and the "
        "on-premises hosts and DNS",
        description="Start the fake Active Directory (LDAP), the fake Exchange Online / Graph "
        "API (HTTP) holding one generated tenant (or a tenant folder, or an LDIF file and the "
        "cloud.jsonl beside it), "
        "and the on-premises estate (the hosts API over HTTP and an authoritative DNS server over "
        "UDP and TCP) on loopback, print their endpoints and credentials, write them as JSON "
        "(mode 0600) once all accept connections, and serve until SIGINT or SIGTERM.",
    )
    add_tenant_arguments(p)
    p.add_argument(
        "--ldif",
        type=Path,
        metavar="FILE",
        help="load the directory from this LDIF instead of generating a tenant",
    )
    p.add_argument(
        "--tenant",
        type=Path,
        metavar="DIR",
        help="serve a tenant folder (directory.ldif, cloud.jsonl, tenant.json) as exwb import or "
        "exwb generate wrote it; the writeback account may write in its tenant.json's "
        "writeback_ous",
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
        "--onprem-port",
        type=int,
        default=0,
        metavar="P",
        help="on-premises hosts API port (default: a free port, printed)",
    )
    p.add_argument(
        "--dns-port",
        type=int,
        default=0,
        metavar="P",
        help="DNS port, UDP and TCP (default: a free port, printed)",
    )
    p.add_argument(
        "--ldaps-port",
        type=int,
        default=0,
        metavar="P",
        help="LDAPS port (default: a free port, printed); StartTLS works on the LDAP port too",
    )
    p.add_argument(
        "--https-port",
        type=int,
        default=0,
        metavar="P",
        help="Graph / EXO admin API / token endpoint over HTTPS (default: a free port, printed)",
    )
    p.add_argument(
        "--onprem-https-port",
        type=int,
        default=0,
        metavar="P",
        help="on-premises hosts API over HTTPS (default: a free port, printed)",
    )
    p.add_argument(
        "--tls-cert",
        type=Path,
        metavar="PEM",
        help="serve TLS with this certificate (chain) instead of one from the local CA; clients "
        "are told to trust this file (needs --tls-key)",
    )
    p.add_argument(
        "--tls-key",
        type=Path,
        metavar="PEM",
        help="the unencrypted private key of --tls-cert",
    )
    p.add_argument(
        "--throttle",
        default="off",
        metavar="PROFILE",
        help="Graph throttling: off (default), documented, or RU/WRITES per 10 s / 150 s",
    )
    p.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="SPEC",
        help="arm a fault at start, server:kind[:key=value,...], e.g. ldap:busy:on=modify,"
        "after=10,count=5 or http:throttle:retry_after=2 (repeatable; see "
        "docs/faults-and-state.md)",
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
    p.add_argument(
        "--state-dir",
        type=Path,
        metavar="D",
        help="keep the tenant in D: the first start writes a snapshot there, every acknowledged "
        "write is journaled (fsync before the reply), a restart with D resumes that state",
    )
    p.add_argument(
        "--compact",
        action="store_true",
        help="with --state-dir: fold the journal into a new snapshot on start",
    )
    p.add_argument(
        "--log",
        type=Path,
        metavar="FILE",
        help="append every request (LDAP operations, Graph, EXO, tokens, hosts API) to FILE as "
        "JSON lines: who asked what and how it ended; no secrets, no bodies",
    )
    p.add_argument(
        "--verbose",
        "-v",
        action="store_true",
        help="print every request to stderr as one JSON line, as --log writes them (refused "
        "and undecodable ones with the reason)",
    )
    p.add_argument("--quiet", "-q", action="store_true", help="print only errors")
    # --- the harness clock (harness.core.clock) ---
    p.add_argument(
        "--clock",
        choices=("wall", "simulated"),
        default="wall",
        help="the tenant's time: the wall clock (default), or simulated time that stands still "
        "until POST /exwb/clock/advance moves it (a harness extension)",
    )
    p.add_argument(
        "--clock-start",
        metavar="ISO",
        help="with --clock simulated: the time it starts at, e.g. 2026-01-05T09:00:00Z "
        "(default: that)",
    )
    served_job.add_arguments(p)  # --writeback, --interval, --job-state, --job-profile
    p.set_defaults(run=run)


def _install_clock(args: argparse.Namespace) -> str:
    """Install the clock --clock names, before anything stamps a time; its kind."""
    from harness.core import clock

    if args.clock_start and args.clock != "simulated":
        raise UsageError("--clock-start needs --clock simulated")
    if args.clock == "simulated":
        try:
            start = clock.parse_iso(args.clock_start) if args.clock_start else None
            clock.install(clock.SimulatedClock(start) if start else clock.SimulatedClock())
        except ValueError as e:  # ClockError is one
            raise UsageError(f"--clock-start: {e}") from None
    return str(args.clock)


def run(args: argparse.Namespace) -> int:
    from mockservers.runtime import Ports, build_services, listen, reactor
    from mockservers.state import StateError

    faults = _checked(args)
    clock_kind = _install_clock(args)
    out = Console(soft_wrap=True, quiet=args.quiet)
    err = Console(stderr=True, soft_wrap=True)
    started = time.perf_counter()
    source = _source(args, out)
    gc.collect()
    gc.freeze()  # the loaded directory is long-lived: keep the GC from rescanning it
    tenant = build_services(
        source.seeded, source.mailboxes, args.throttle, faults, source.writable_ous
    )
    source.mailboxes = []  # the cloud store holds what it needs
    for name in tenant.armed:
        err.print(f"armed fault {name}", highlight=False)
    if args.state_dir:
        with out.status("making the state durable"):
            try:
                durable = tenant.make_durable(args.state_dir, source.durable, args.compact)
            except StateError as e:
                raise UsageError(str(e)) from None
        for line in durable.notes:
            err.print(f"[yellow]warning:[/] {line}", highlight=False)
        out.print(durable.summary, highlight=False)
    tenant.cloud.auth.pki = _pki(args)
    request_log = _request_log(args)
    if request_log is not None:
        tenant.cloud.log = tenant.onprem.log = tenant.service.log = request_log
    ports = Ports(
        args.ldap_port,
        args.http_port,
        args.onprem_port,
        args.dns_port,
        args.ldaps_port,
        args.https_port,
        args.onprem_https_port,
    )
    try:
        _, endpoints = listen(tenant, args.listen, ports)
        endpoints = replace(endpoints, clock=clock_kind)
    except Exception as e:  # CannotListenError carries the OS reason
        raise UsageError(f"cannot listen on {args.listen}: {e}") from None
    if args.listen != LOOPBACK:
        err.print(
            f"[yellow]warning:[/] listening on {args.listen}: the fake directory and its "
            "credentials are reachable from other hosts"
        )
    loaded = time.perf_counter() - started

    def announce() -> None:
        if args.endpoints_file:
            try:
                endpoints.write(args.endpoints_file)
            except OSError as e:
                err.print(f"exwb serve: error: cannot write {args.endpoints_file}: {e.strerror}")
                reactor.stop()
                return
        _print_ready(out, args, tenant, endpoints, loaded, source.generated)
        # --writeback: the job on its schedule and its logs; Graph's synchronization API
        served_job.start(endpoints, args, out, tenant.cloud)

    reactor.callWhenRunning(announce)
    reactor.run()  # installs SIGINT/SIGTERM handlers that stop the reactor
    _shut_down(out, args, tenant)
    return 0


def _request_log(args: argparse.Namespace) -> RequestLog | None:
    from mockservers.requestlog import RequestLog

    if not (args.log or args.verbose):
        return None
    try:
        return RequestLog(args.log, sys.stderr if args.verbose else None)
    except OSError as e:
        raise UsageError(f"--log {args.log}: {e.strerror}") from None


def _pki(args: argparse.Namespace) -> Pki:
    """The CA, server certificate, signing key and app certificates: kept in the state dir (a
    CA the user trusts stays the same across restarts), else in a folder removed on exit."""
    from mockservers.pki import PkiError, load_or_create, temporary, with_own_certificate

    folder = args.state_dir / "pki" if args.state_dir else None
    try:
        pki = load_or_create(folder, [args.listen]) if folder else temporary([args.listen])
        if args.tls_cert:
            pki = with_own_certificate(pki, args.tls_cert, args.tls_key)
    except PkiError as e:
        raise UsageError(str(e)) from None
    except OSError as e:
        where = e.filename or folder or "a temporary folder"
        raise UsageError(f"cannot keep certificates in {where}: {e.strerror}") from None
    return pki


def _checked(args: argparse.Namespace) -> list[FaultSpec]:
    """Every option checked before the (maybe long) generation starts; the faults to arm."""
    from mockservers.cloud.throttle import Throttle
    from mockservers.faults import FaultError, parse_fault
    from mockservers.state import has_state

    for flag, port in (
        ("--ldap-port", args.ldap_port),
        ("--http-port", args.http_port),
        ("--onprem-port", args.onprem_port),
        ("--dns-port", args.dns_port),
        ("--ldaps-port", args.ldaps_port),
        ("--https-port", args.https_port),
        ("--onprem-https-port", args.onprem_https_port),
    ):
        if not 0 <= port <= 65535:
            raise UsageError(f"{flag} must be between 0 and 65535 (got {port})")
    try:
        Throttle.profile(args.throttle)
    except ValueError as e:
        raise UsageError(f"--throttle: {e}") from None
    try:
        faults = [parse_fault(text) for text in args.fault]
    except FaultError as e:
        raise UsageError(f"--fault: {e}") from None
    if args.state_dir and args.ldif and has_state(args.state_dir):
        raise UsageError(
            f"--state-dir {args.state_dir} already holds a tenant: drop --ldif to resume it"
        )
    if args.ldif and _tenant_options(args):
        raise UsageError(
            "--ldif loads a directory as it is: drop --mailboxes/--seed/--knob/--domain"
        )
    if args.tenant and (args.ldif or _tenant_options(args)):
        raise UsageError(
            "--tenant serves a tenant folder as it is: drop --ldif/--mailboxes/--seed/--knob/"
            "--domain"
        )
    if bool(args.tls_cert) != bool(args.tls_key):
        raise UsageError("--tls-cert and --tls-key go together")
    if args.compact and not args.state_dir:
        raise UsageError("--compact needs --state-dir")
    return faults


def _tenant_options(args: argparse.Namespace) -> dict[str, Any]:
    """The tenant options given on the command line (knobs, mailboxes, seed, domain)."""
    if not (args.mailboxes or args.seed or args.knob or args.domain):
        return {}
    values: dict[str, Any] = dict(args.knob)
    for name in ("mailboxes", "seed", "domain"):
        if getattr(args, name) is not None:
            values[name] = getattr(args, name)
    return values


@dataclass(slots=True)
class _Source:
    """What to serve: the directory and the recipients, from D, an LDIF file or generated."""

    seeded: Seeded
    mailboxes: list[CloudMailbox]
    durable: Durable | None = None  # D as resumed
    generated: float = 0.0  # seconds spent generating
    writable_ous: tuple[str, ...] | None = None  # where the writeback account may write


def _source(args: argparse.Namespace, out: Console) -> _Source:
    from harness.tenant.files import CLOUD_NAME, TenantFileError, read_cloud_jsonl
    from harness.tenant.spec import SpecError
    from mockservers.directory.ldif_io import LdifError, load_ldif
    from mockservers.directory.seed import seed_directory
    from mockservers.runtime import TenantFolderError, load_tenant_folder, read_tenant_manifest
    from mockservers.state import SpecMismatch, StateError, has_state

    writable: tuple[str, ...] | None = None
    if args.tenant and args.state_dir and has_state(args.state_dir):
        # D holds the directory and the cloud; the folder still says where writeback may write.
        try:
            ous = read_tenant_manifest(args.tenant).get("writeback_ous")
        except TenantFolderError as e:
            raise UsageError(str(e)) from None
        writable = tuple(ous) if ous is not None else None
    if args.state_dir and has_state(args.state_dir):
        try:
            durable = Durable.resume(args.state_dir, _tenant_options(args))
        except SpecError as e:
            raise UsageError(f"--{e.knob}: {e.message}") from None
        except SpecMismatch as e:
            raise UsageError(
                f"--state-dir {e} (drop the tenant options to resume it, or use another state dir)"
            ) from None
        except StateError as e:
            raise UsageError(str(e)) from None
        return _Source(durable.seeded, durable.mailboxes, durable, writable_ous=writable)
    if args.tenant:
        with out.status(f"loading the tenant folder {args.tenant}"):
            try:
                folder = load_tenant_folder(args.tenant)
            except TenantFolderError as e:
                raise UsageError(str(e)) from None
        return _Source(folder.seeded, folder.mailboxes, writable_ous=folder.writable_ous)
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
        return _Source(seeded, mailboxes)
    started = time.perf_counter()
    spec = spec_from_args(args)
    with out.status(f"generating {spec.mailboxes:,} mailboxes"):
        generated = generate(spec)
    took = time.perf_counter() - started
    with out.status("loading the directory"):
        seeded = seed_directory(generated)
    return _Source(seeded, generated.mailboxes, generated=took)


def _print_ready(
    out: Console,
    args: argparse.Namespace,
    tenant: TenantServices,
    endpoints: Endpoints,
    loaded: float,
    generated: float,
) -> None:
    out.print(
        f"fake tenant ready in {loaded:.1f} s (generated in {generated:.1f} s, loaded in "
        f"{loaded - generated:.1f} s): {len(tenant.service.store.entries):,} entries",
        highlight=False,
    )
    out.print(f"  ldap_url       {endpoints.ldap_url}  (StartTLS)")
    out.print(f"  ldaps_url      {endpoints.ldaps_url}")
    out.print(
        f"  ca_file        {endpoints.ca_file}  (trust it: SSL_CERT_FILE, NODE_EXTRA_CA_CERTS)"
    )
    out.print(f"  base_dn        {endpoints.base_dn}")
    out.print(f"  bind_dn        {endpoints.bind_dn}  (writeback service account)")
    out.print(f"  bind_password  {endpoints.bind_password}")
    out.print(f"  admin_dn       {endpoints.admin_dn}")
    out.print(f"  admin_password {endpoints.admin_password}")
    out.print(f"  graph_url      {endpoints.graph_url}  ({len(tenant.cloud.store):,} recipients)")
    out.print(f"  https          {endpoints.https_graph_url}  (Graph, EXO and tokens over TLS)")
    out.print(f"  authority      {endpoints.authority}  (MSAL / azure-identity)")
    out.print(f"  token_url      {endpoints.token_url}")
    out.print(f"  client_id      {endpoints.client_id}  (read-write app)")
    out.print(f"  client_secret  {endpoints.client_secret}")
    estate = tenant.onprem.estate
    hosts = ", ".join(h.name for h in estate.hosts.values())
    out.print(f"  onprem_url     {endpoints.onprem_url}  (hosts {hosts}; Basic auth as admin)")
    zones = ", ".join(estate.zones)
    out.print(f"  dns            {args.listen} port {endpoints.dns_port} UDP+TCP  ({zones})")
    if args.endpoints_file:
        out.print(f"  endpoints file {args.endpoints_file}")
    out.print("Ctrl-C or SIGTERM stops the server.")
    sys.stdout.flush()


def _shut_down(out: Console, args: argparse.Namespace, tenant: TenantServices) -> None:
    from mockservers.directory.ldif_io import dump_ldif

    if tenant.durable is not None:
        tenant.durable.close()
    if args.dump_ldif:
        n = dump_ldif(tenant.service.store, args.dump_ldif)
        out.print(f"wrote {n:,} entries to {args.dump_ldif}")
    if args.endpoints_file:
        args.endpoints_file.unlink(missing_ok=True)
