"""`exwb serve`: run the fake tenant on loopback for the user's own tools."""

from __future__ import annotations

import argparse
import dataclasses
import gc
import sys
import time
from pathlib import Path
from typing import Any

from rich.console import Console

from harness.commands.generate import add_tenant_arguments, spec_from_args
from harness.core.errors import UsageError
from harness.tenant import generate
from mockservers.runtime import LOOPBACK


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "serve",
        help="serve a tenant: fake AD over LDAP, fake Exchange Online / Graph over HTTP, and the "
        "on-premises hosts and DNS",
        description="Start the fake Active Directory (LDAP), the fake Exchange Online / Graph "
        "API (HTTP) holding one generated tenant (or an LDIF file and the cloud.jsonl beside it), "
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
        "after=10,count=5 or http:throttle:retry_after=2 (repeatable; see README, Faults)",
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
    p.add_argument("--quiet", "-q", action="store_true", help="print only errors")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from harness.tenant.files import CLOUD_NAME, TenantFileError, read_cloud_jsonl
    from mockservers import journal
    from mockservers.cloud.server import make_site
    from mockservers.cloud.throttle import Throttle
    from mockservers.directory.ldif_io import LdifError, dump_ldif, load_ldif
    from mockservers.directory.seed import seed_directory
    from mockservers.directory.server import DirectoryFactory
    from mockservers.directory.service import DirectoryService
    from mockservers.faults import FaultError, parse_fault
    from mockservers.onprem.api import build_onprem, listen_onprem
    from mockservers.runtime import build_cloud, cloud_endpoints, endpoints_for, reactor

    out = Console(soft_wrap=True, quiet=args.quiet)
    err = Console(stderr=True, soft_wrap=True)
    for flag, port in (
        ("--ldap-port", args.ldap_port),
        ("--http-port", args.http_port),
        ("--onprem-port", args.onprem_port),
        ("--dns-port", args.dns_port),
    ):
        if not 0 <= port <= 65535:
            raise UsageError(f"{flag} must be between 0 and 65535 (got {port})")
    try:
        Throttle.profile(args.throttle)
    except ValueError as e:
        raise UsageError(f"--throttle: {e}") from None
    try:  # every fault is checked before the (maybe long) generation starts
        faults = [parse_fault(text) for text in args.fault]
    except FaultError as e:
        raise UsageError(f"--fault: {e}") from None
    if args.state_dir and args.ldif and journal.has_state(args.state_dir):
        raise UsageError(
            f"--state-dir {args.state_dir} already holds a tenant: drop --ldif to resume it"
        )
    if args.ldif and (args.mailboxes or args.seed or args.knob or args.domain):
        raise UsageError(
            "--ldif loads a directory as it is: drop --mailboxes/--seed/--knob/--domain"
        )
    if args.compact and not args.state_dir:
        raise UsageError("--compact needs --state-dir")
    started = time.perf_counter()
    generated = 0.0
    durable: Durable | None = None
    if args.state_dir and journal.has_state(args.state_dir):
        durable = Durable.resume(args)
        seeded, mailboxes = durable.seeded, durable.mailboxes
    elif args.ldif:
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
    for spec in faults:
        armed = service.faults.arm_spec(spec)
        err.print(f"armed fault {armed.name}", highlight=False)
    del mailboxes
    onprem = build_onprem(service, seeded.spec)
    if args.state_dir:
        with out.status("making the state durable"):
            try:
                if durable is None:
                    durable = Durable.create(args.state_dir, seeded, cloud)
                durable.attach(service, cloud, compact=args.compact)
                durable.attach_estate(onprem.estate, cloud)
            except journal.StateError as e:
                raise UsageError(str(e)) from None
        for line in durable.notes:
            err.print(f"[yellow]warning:[/] {line}", highlight=False)
        out.print(durable.summary, highlight=False)
    try:
        port = reactor.listenTCP(args.ldap_port, DirectoryFactory(service), 50, args.listen)
        http = reactor.listenTCP(args.http_port, make_site(cloud), 50, args.listen)
        _, onprem_url, dns_port = listen_onprem(
            reactor, onprem, args.listen, args.onprem_port, args.dns_port
        )
    except Exception as e:  # CannotListenError carries the OS reason
        raise UsageError(f"cannot listen on {args.listen}: {e}") from None
    if args.listen != LOOPBACK:
        err.print(
            f"[yellow]warning:[/] listening on {args.listen}: the fake directory and its "
            "credentials are reachable from other hosts"
        )
    endpoints = endpoints_for(seeded, args.listen, port.getHost().port)
    endpoints = cloud_endpoints(endpoints, cloud, args.listen, http.getHost().port)
    endpoints = dataclasses.replace(endpoints, onprem_url=onprem_url, dns_port=dns_port)
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
        hosts = ", ".join(h.name for h in onprem.estate.hosts.values())
        out.print(f"  onprem_url     {endpoints.onprem_url}  (hosts {hosts}; Basic auth as admin)")
        zones = ", ".join(onprem.estate.zones)
        out.print(f"  dns            {args.listen} port {endpoints.dns_port} UDP+TCP  ({zones})")
        if args.endpoints_file:
            out.print(f"  endpoints file {args.endpoints_file}")
        out.print("Ctrl-C or SIGTERM stops the server.")
        sys.stdout.flush()

    reactor.callWhenRunning(announce)
    reactor.run()  # installs SIGINT/SIGTERM handlers that stop the reactor
    if durable is not None:
        durable.close()
    if args.dump_ldif:
        n = dump_ldif(service.store, args.dump_ldif)
        out.print(f"wrote {n:,} entries to {args.dump_ldif}")
    if args.endpoints_file:
        args.endpoints_file.unlink(missing_ok=True)
    return 0


class Durable:
    """The state dir of one `exwb serve --state-dir D` run: snapshot, secrets and journal."""

    def __init__(self, root: Path, spec: dict[str, Any], generation: int) -> None:
        self.root = root
        self.spec = spec
        self.generation = generation
        self.secrets: dict[str, Any] = {}
        self.seeded: Any = None
        self.mailboxes: list[Any] = []
        self.log: list[list[Any]] = []
        self.meta: dict[str, int] = {}
        self.journal: Any = None
        self.notes: list[str] = []
        self.summary = ""
        self.resumed = False

    @classmethod
    def resume(cls, args: argparse.Namespace) -> Durable:
        """Open D, check the spec given (if any) against D's, load the snapshot."""
        from harness.tenant.spec import SpecError, TenantSpec
        from mockservers import journal

        try:
            state = journal.open_state(args.state_dir)
        except journal.StateError as e:
            raise UsageError(str(e)) from None
        try:
            stored = TenantSpec.from_mapping(state.spec)
        except SpecError as e:
            raise UsageError(f"{args.state_dir}/state.json: spec {e.knob}: {e.message}") from None
        if args.mailboxes or args.seed or args.knob or args.domain:
            values: dict[str, Any] = dict(args.knob)
            for name in ("mailboxes", "seed", "domain"):
                if getattr(args, name) is not None:
                    values[name] = getattr(args, name)
            try:
                given = TenantSpec.from_mapping(values, base=stored)
            except SpecError as e:
                raise UsageError(f"--{e.knob}: {e.message}") from None
            diff = journal.spec_differences(stored.as_dict(), given.as_dict())
            if diff:
                raise UsageError(
                    f"--state-dir {args.state_dir} holds a different tenant: "
                    + "; ".join(diff)
                    + " (drop the tenant options to resume it, or use another state dir)"
                )
        d = cls(args.state_dir, state.spec, state.generation)
        d.secrets = state.secrets
        d.resumed = True
        try:
            seeded, d.mailboxes, d.log, d.meta = journal.load_snapshot(state)
        except journal.StateError as e:
            raise UsageError(str(e)) from None
        d.seeded = dataclasses.replace(seeded, spec=stored)  # all knobs, not just the domain
        return d

    @classmethod
    def create(cls, root: Path, seeded: Any, cloud: Any) -> Durable:
        """A fresh D: secrets, snapshot 1 of the tenant as generated, an empty journal."""
        from harness.tenant.files import TenantFileError, ensure_writable_dir
        from mockservers import journal

        try:
            ensure_writable_dir(root)
        except TenantFileError as e:
            raise journal.StateError(str(e)) from None
        d = cls(root, seeded.spec.as_dict(), 1)
        d.seeded = seeded
        d.secrets = journal.new_secrets()
        d.secrets["passwords"] = {a.role.value: a.password for a in seeded.accounts}
        d.secrets["apps"] = [
            {"name": a.name, "client_id": a.client_id, "secret": a.secret}
            for a in cloud.auth.apps.values()
        ]
        journal.write_secrets(root, d.secrets)
        t = time.perf_counter()
        sizes = journal.write_snapshot(root, 1, seeded.store, cloud.store)
        journal.commit_generation(root, d.spec, 1)
        took = time.perf_counter() - t
        d.summary = (
            f"state dir {root}: wrote snapshot 1 in {took:.1f} s "
            f"({sum(sizes.values()) / 1e6:.1f} MB), journaling every write"
        )
        return d

    def attach(self, service: Any, cloud: Any, compact: bool) -> None:
        """Restore what a snapshot does not rebuild, replay the journal, start journaling."""
        from mockservers import journal
        from mockservers.cloud import delta
        from mockservers.cloud.auth import App, Auth

        store = service.store
        if self.resumed:
            store.highest_usn = max(store.highest_usn, int(self.meta.get("highest_usn", 0)))
            journal.restore_cloud_log(cloud.store, self.log, int(self.meta.get("cloud_seq", 0)))
            fresh = Auth.for_tenant(cloud.auth.tenant_id)
            apps = {}
            for a in self.secrets.get("apps", []):
                roles = fresh.app(a["name"]).roles
                apps[a["client_id"]] = App(a["client_id"], a["secret"], a["name"], roles)
            if apps:
                cloud.auth.apps = apps
        # Tokens (deltaLinks, skip tokens) handed out before a restart must still open.
        delta.TOKENS = delta.StateTokens(bytes.fromhex(self.secrets["token_key"]))
        delta._state(cloud.store).nonce = self.secrets["store_nonce"]
        path = journal.journal_path(self.root, self.generation)
        t = time.perf_counter()
        done = journal.replay(path, store, cloud.store)
        if done.warning:
            self.notes.append(done.warning)
        if self.resumed:
            self.summary = (
                f"state dir {self.root}: resumed snapshot {self.generation} and "
                f"{done.records:,} journaled writes in {time.perf_counter() - t:.1f} s"
            )
        if compact and done.records:
            self.generation += 1
            journal.write_snapshot(self.root, self.generation, store, cloud.store)
            journal.commit_generation(self.root, self.spec, self.generation)
            self.summary += f"; compacted into snapshot {self.generation}"
        self.journal = journal.Journal(journal.journal_path(self.root, self.generation))
        store.journal = self.journal
        cloud.store.journal = self.journal

    def attach_estate(self, estate: Any, cloud: Any) -> None:
        """Keep the on-premises estate (onprem.json) and Exchange Online's hybrid objects
        (hybrid.json) in D: loaded on resume, rewritten atomically after each change.

        Their changes are not in the journal: each file is the whole (small) state. A crash
        between an uninstall's journaled AD deletes and the estate's write leaves the host
        shown as installed; running Setup again then finds nothing left in AD to delete.
        """
        from mockservers.cloud.hybrid import HybridCloud
        from mockservers.onprem.estate import Estate

        estate_path = self.root / ONPREM_NAME
        hybrid_path = self.root / HYBRID_NAME
        if self.resumed and estate_path.exists():
            try:
                loaded = Estate.from_json(_read_state_json(estate_path))
            except ValueError as e:
                raise _state_error(estate_path, e) from None
            estate.hosts, estate.zones = loaded.hosts, loaded.zones
        if self.resumed and hybrid_path.exists():
            try:
                cloud.store.hybrid = HybridCloud.from_json(_read_state_json(hybrid_path))
            except ValueError as e:
                raise _state_error(hybrid_path, e) from None

        def save_estate(_estate: Any = None) -> None:
            _write_state_json(estate_path, estate.to_json())

        def save_hybrid() -> None:
            _write_state_json(hybrid_path, cloud.store.hybrid.to_json())

        save_estate()
        save_hybrid()
        estate.on_change = save_estate
        cloud.store.hybrid.on_change = save_hybrid

    def close(self) -> None:
        if self.journal is not None:
            self.journal.close()


ONPREM_NAME = "onprem.json"
HYBRID_NAME = "hybrid.json"


def _state_error(path: Path, e: Exception) -> Exception:
    from mockservers import journal

    return journal.StateError(f"{path}: {e}")


def _read_state_json(path: Path) -> Any:
    import json

    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise _state_error(path, e) from None


def _write_state_json(path: Path, data: Any) -> None:
    """Atomically (temporary file, fsync, rename): a crash leaves the old or the new file."""
    import json

    from harness.tenant.files import write_atomic

    write_atomic(path, [json.dumps(data, ensure_ascii=False, separators=(",", ":"))])
