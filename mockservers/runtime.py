"""Assembling a tenant's fake services and serving them, in-process or in the foreground.

One assembly for every way a tenant is served: `build_services` wires the directory, the cloud
(with its throttle), the on-premises estate and one fault plan; `TenantServices.make_durable`
adds the state directory (`mockservers.state`); `listen` opens their ports and gives the
endpoints. A tenant folder (generated or imported) is loaded by `load_tenant_folder`, with the
OUs its writeback account may write. `exwb serve` calls them with the reactor in the main
thread; `start_tenant` and `start_tenant_folder` (the scenario runner, the pytest plugin,
tests) from the process's one reactor thread.

Twisted's reactor runs once per process. Endpoints are one dataclass, written as JSON with
mode 0600 only once the servers accept connections.
"""

from __future__ import annotations

import gc
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from twisted.internet import reactor as _reactor
from twisted.internet.threads import blockingCallFromThread

from harness.core.dn import InvalidDN, normalize_dn
from harness.core.endpoints import Endpoints
from harness.tenant.exchange_org import tenant_id_for
from harness.tenant.files import CLOUD_NAME, FOLDER_HINT, LDIF_NAME, MANIFEST_NAME
from harness.tenant.model import CloudMailbox, Tenant
from harness.tenant.spec import SpecError, TenantSpec
from mockservers.cloud.auth import Auth
from mockservers.cloud.entra import token_endpoint
from mockservers.cloud.routes import exo_base
from mockservers.cloud.server import CloudService, make_site
from mockservers.cloud.store import CloudStore, OrganizationConfig
from mockservers.cloud.throttle import Throttle
from mockservers.directory.acl import Role
from mockservers.directory.seed import Seeded, seed_directory
from mockservers.directory.server import DirectoryFactory
from mockservers.directory.service import DirectoryService
from mockservers.faults import FaultPlan, FaultSpec
from mockservers.onprem.api import OnpremService, build_onprem, listen_onprem
from mockservers.pki import Pki, twisted_options
from mockservers.state import Durable

reactor: Any = _reactor
LOOPBACK = "127.0.0.1"


def build_cloud(
    mailboxes: list[CloudMailbox],
    spec: TenantSpec,
    throttle: str = "off",
    faults: FaultPlan | None = None,
) -> CloudService:
    """The cloud side of a tenant; `faults` is the plan to share with its directory."""
    tenant_id = tenant_id_for(spec)
    store = CloudStore(
        mailboxes, OrganizationConfig(spec.onmicrosoft_domain, spec.onmicrosoft_domain)
    )
    from mockservers.cloud.hybrid import HybridCloud  # local: this function's only user

    store.hybrid = HybridCloud.from_spec(spec)  # also sets OrganizationConfig.PublicFoldersEnabled
    auth = Auth.for_tenant(tenant_id)
    auth.domains = frozenset(
        d.casefold() for d in (spec.onmicrosoft_domain, spec.domain, *spec.extra_domains)
    )
    cloud = CloudService(store, auth, Throttle.profile(throttle, tenant_id))
    if faults is not None:
        cloud.faults = faults
    return cloud


def cloud_endpoints(endpoints: Endpoints, cloud: CloudService, host: str, port: int) -> Endpoints:
    """`endpoints` with the cloud's URLs and app credentials filled in."""
    cloud.base_url = f"http://{host}:{port}"
    rw, ro = cloud.auth.app("exwb-admin"), cloud.auth.app("exwb-reader")
    connect = cloud.auth.app("exwb-connect")
    return replace(
        endpoints,
        graph_url=cloud.base_url,
        exo_url=exo_base(cloud.base_url, cloud.tenant_id),
        token_url=token_endpoint(cloud.base_url, cloud.tenant_id),
        tenant_id=cloud.tenant_id,
        client_id=rw.client_id,
        client_secret=rw.secret,
        readonly_client_id=ro.client_id,
        readonly_client_secret=ro.secret,
        connect_client_id=connect.client_id,
        connect_client_secret=connect.secret,
        dirsync_url=f"{cloud.base_url}/exwb/dirsync/{cloud.tenant_id}/export",
    )


def endpoints_for(seeded: Seeded, host: str, port: int) -> Endpoints:
    spec = seeded.spec
    admin = seeded.account(Role.ADMIN)
    svc = seeded.account(Role.WRITEBACK)
    reader = seeded.account(Role.READER)
    return Endpoints(
        ldap_url=f"ldap://{host}:{port}",
        ldap_host=host,
        ldap_port=port,
        base_dn=spec.base_dn,
        configuration_dn=f"CN=Configuration,{spec.base_dn}",
        bind_dn=svc.dn,
        bind_upn=f"{svc.sam.rstrip('$')}@{spec.domain}",
        bind_password=svc.password,
        admin_dn=admin.dn,
        admin_password=admin.password,
        reader_dn=reader.dn,
        reader_password=reader.password,
        netbios_domain=spec.netbios_name,
    )


@dataclass(slots=True)
class TenantServices:
    """One tenant's services, wired together (one fault plan) but not yet listening."""

    seeded: Seeded
    service: DirectoryService
    cloud: CloudService
    onprem: OnpremService
    armed: list[str]  # names of the faults armed at build time
    durable: Durable | None = None

    @property
    def faults(self) -> FaultPlan:
        return self.service.faults

    def make_durable(self, root: Path, resumed: Durable | None, compact: bool = False) -> Durable:
        """Keep the tenant in the state dir `root`: a fresh snapshot there unless `resumed` (D
        as loaded, whose snapshot these services were built from); journal every write."""
        durable = resumed or Durable.create(root, self.seeded, self.cloud)
        durable.attach(self.service, self.cloud, compact=compact)
        durable.attach_estate(self.onprem.estate, self.cloud)
        self.durable = durable
        return durable


def build_services(
    seeded: Seeded,
    mailboxes: list[CloudMailbox],
    throttle: str = "off",
    faults: Sequence[FaultSpec] = (),
    writable_ous: tuple[str, ...] | None = None,
) -> TenantServices:
    """The fake AD holding `seeded`, the cloud holding `mailboxes` and the on-premises estate
    of `seeded.spec`, sharing one fault plan with `faults` armed. `writable_ous`: where the
    writeback account may write (default: the generated tenant's OU=Corp)."""
    service = DirectoryService.from_seed(seeded, writable_ous)
    cloud = build_cloud(mailboxes, seeded.spec, throttle, faults=service.faults)
    armed = [service.faults.arm_spec(spec).name for spec in faults]
    onprem = build_onprem(service, seeded.spec)
    return TenantServices(seeded, service, cloud, onprem, armed)


@dataclass(frozen=True, slots=True)
class Ports:
    """The ports to listen on; 0 is a free one, chosen by the OS."""

    ldap: int = 0
    http: int = 0
    onprem: int = 0
    dns: int = 0
    ldaps: int = 0
    https: int = 0
    onprem_https: int = 0


def listen(
    services: TenantServices, host: str = LOOPBACK, ports: Ports = Ports(), tls: bool = True
) -> tuple[list[Any], Endpoints]:
    """Open the LDAP, HTTP, hosts-API and DNS ports of `services` and, with `tls`, LDAPS and
    HTTPS with the cloud's PKI (`Auth.keys`); (listening ports, endpoints). Call it in the
    reactor's thread, or before the reactor runs. On failure nothing stays open."""
    pki = services.cloud.auth.keys
    options = twisted_options(pki) if tls else None
    factory = DirectoryFactory(services.service)
    factory.tls = options  # StartTLS on the plain port
    site = make_site(services.cloud)
    opened: list[Any] = []
    try:
        ldap = _opened(opened, reactor.listenTCP(ports.ldap, factory, 50, host))
        http = _opened(opened, reactor.listenTCP(ports.http, site, 50, host))
        if options is not None:
            ldaps = _opened(opened, reactor.listenSSL(ports.ldaps, factory, options, 50, host))
            https = _opened(opened, reactor.listenSSL(ports.https, site, options, 50, host))
        onprem = listen_onprem(
            reactor, services.onprem, host, ports.onprem, ports.dns, options, ports.onprem_https
        )
    except BaseException:
        for port in opened:
            port.stopListening()
        raise
    endpoints = endpoints_for(services.seeded, host, ldap.getHost().port)
    endpoints = cloud_endpoints(endpoints, services.cloud, host, http.getHost().port)
    endpoints = replace(endpoints, onprem_url=onprem.url, dns_port=onprem.dns_port)
    if options is not None:
        endpoints = tls_endpoints(
            endpoints, services.cloud, pki, host, ldaps.getHost().port, https.getHost().port
        )
        endpoints = replace(endpoints, onprem_https_url=onprem.https_url)
    return [*opened, *onprem.ports], endpoints


def _opened(opened: list[Any], port: Any) -> Any:
    opened.append(port)
    return port


def tls_endpoints(
    endpoints: Endpoints, cloud: CloudService, pki: Pki, host: str, ldaps: int, https: int
) -> Endpoints:
    """`endpoints` with the TLS side filled in: the CA, LDAPS and the cloud over HTTPS."""
    origin = f"https://{_url_host(host)}:{https}"
    return replace(
        endpoints,
        ca_file=str(pki.ca_file),
        ldaps_url=f"ldaps://{_url_host(host)}:{ldaps}",
        ldaps_port=ldaps,
        https_graph_url=origin,
        https_exo_url=exo_base(origin, cloud.tenant_id),
        https_token_url=token_endpoint(origin, cloud.tenant_id),
        authority=f"{origin}/{cloud.tenant_id}",
        client_certificate_file=cloud.auth.certificate_file("exwb-admin"),
        readonly_client_certificate_file=cloud.auth.certificate_file("exwb-reader"),
    )


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


class ReactorThread:
    """The process's reactor, running in a daemon thread."""

    _lock = threading.Lock()
    _thread: threading.Thread | None = None

    @classmethod
    def ensure(cls) -> None:
        with cls._lock:
            if cls._thread is None:
                cls._thread = threading.Thread(
                    target=reactor.run,
                    kwargs={"installSignalHandlers": False},
                    name="twisted-reactor",
                    daemon=True,
                )
                cls._thread.start()

    @staticmethod
    def call(fn: Callable[..., Any], *args: Any, **kw: Any) -> Any:
        return blockingCallFromThread(reactor, fn, *args, **kw)


@dataclass(slots=True)
class RunningTenant:
    """A directory (and optionally the cloud) on loopback, served by the reactor thread."""

    service: DirectoryService
    endpoints: Endpoints
    _ports: list[Any]
    cloud: CloudService | None = None
    onprem: OnpremService | None = None

    @property
    def faults(self) -> FaultPlan:
        """The tenant's fault plan, obeyed by both servers (thread-safe: arm it from anywhere)."""
        return self.service.faults

    def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run `fn` in the reactor thread (the stores are not thread-safe); return its result."""
        return ReactorThread.call(fn, *args)

    def stop(self) -> None:
        for port in self._ports:
            ReactorThread.call(port.stopListening)


def start_directory(seeded: Seeded, host: str = LOOPBACK, port: int = 0) -> RunningTenant:
    """Serve `seeded` over LDAP from the shared reactor thread (tests, embedded runs)."""
    service = DirectoryService.from_seed(seeded)
    ReactorThread.ensure()
    listening = ReactorThread.call(reactor.listenTCP, port, DirectoryFactory(service), 50, host)
    actual = listening.getHost().port
    return RunningTenant(service, endpoints_for(seeded, host, actual), [listening])


def start_tenant(tenant: Tenant, host: str = LOOPBACK, throttle: str = "off") -> RunningTenant:
    """Serve a whole tenant: the fake AD over LDAP, the fake cloud over HTTP and the
    on-premises estate (hosts API over HTTP, DNS over UDP and TCP)."""
    return _start(build_services(seed_directory(tenant), tenant.mailboxes, throttle), host)


def start_tenant_folder(folder: TenantFolder, host: str = LOOPBACK) -> RunningTenant:
    """Serve a tenant folder (`load_tenant_folder`) as `start_tenant` serves a generated one."""
    services = build_services(folder.seeded, folder.mailboxes, writable_ous=folder.writable_ous)
    return _start(services, host)


def _start(services: TenantServices, host: str) -> RunningTenant:
    ReactorThread.ensure()
    ports, endpoints = ReactorThread.call(listen, services, host)
    return RunningTenant(services.service, endpoints, ports, services.cloud, services.onprem)


class TenantFolderError(ValueError):
    """A tenant folder that cannot be served; one line naming the file (and line)."""


@dataclass(slots=True)
class TenantFolder:
    """A tenant folder as `exwb generate` or `exwb import` wrote it, loaded for serving."""

    path: Path
    seeded: Seeded
    mailboxes: list[CloudMailbox]
    writable_ous: tuple[str, ...] | None  # tenant.json's writeback_ous; None: the default
    imported: bool  # tenant.json says "source": "import"


def read_tenant_manifest(folder: Path) -> dict[str, Any]:
    """`folder`/tenant.json, checked for what serving needs (format, base_dn, writeback_ous)."""
    from harness.tenant.files import TenantFileError, read_manifest

    try:
        return read_manifest(folder)
    except TenantFileError as e:
        raise TenantFolderError(str(e)) from None


def load_tenant_folder(folder: Path) -> TenantFolder:
    """Load `folder`'s directory.ldif and cloud.jsonl, with the writeback account's OUs from
    its tenant.json; raises TenantFolderError. A generated tenant's manifest also gives the
    whole spec (hybrid knobs included), as a resumed state directory does."""
    from harness.tenant.files import TenantFileError, read_cloud_jsonl
    from mockservers.directory.ldif_io import LdifError, load_ldif

    manifest = read_tenant_manifest(folder)
    ldif, cloud = folder / LDIF_NAME, folder / CLOUD_NAME
    for required in (ldif, cloud):
        if not required.is_file():
            raise TenantFolderError(f"{required}: no such file (hint: {FOLDER_HINT})")
    # Hundreds of thousands of acyclic objects: cyclic GC passes during the load cost time and
    # free nothing (as in the generator).
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        seeded = load_ldif(ldif)
        mailboxes = read_cloud_jsonl(cloud)
    except (LdifError, TenantFileError) as e:
        raise TenantFolderError(str(e)) from None
    finally:
        if gc_was_enabled:
            gc.enable()
    where = folder / MANIFEST_NAME
    base = manifest["base_dn"]
    try:
        same_base = normalize_dn(base) == normalize_dn(seeded.spec.base_dn)
    except InvalidDN as e:
        raise TenantFolderError(f"{where}: base_dn {base!r}: {e}") from None
    if not same_base:
        raise TenantFolderError(
            f"{where}: base_dn {base!r} is not the domain root of {ldif} ({seeded.spec.base_dn})"
        )
    if isinstance(manifest.get("spec"), dict) and manifest.get("source") != "import":
        try:
            spec = TenantSpec.from_mapping(manifest["spec"])
        except SpecError as e:
            raise TenantFolderError(f"{where}: spec.{e.knob}: {e.message}") from None
        if spec.base_dn != seeded.spec.base_dn:
            raise TenantFolderError(f"{where}: spec.domain {spec.domain!r} is not {ldif}'s")
        seeded = replace(seeded, spec=spec)
    ous = manifest.get("writeback_ous")
    writable = tuple(ous) if ous is not None else None
    for ou in writable or ():
        if seeded.store.get(normalize_dn(ou)) is None:
            raise TenantFolderError(
                f"{where}: writeback_ous: {ou!r} is not an entry of {ldif} (hint: name OUs "
                "the export holds)"
            )
    return TenantFolder(folder, seeded, mailboxes, writable, manifest.get("source") == "import")


class ServeFailed(RuntimeError):
    """`exwb serve` exited or stalled before writing its endpoints file."""


def spawn_serve(endpoints_file: Path, *args: str, timeout: float = 600.0) -> subprocess.Popen[str]:
    """Start `exwb serve` as a child process and return once it accepts connections.

    The endpoints file appears only when both servers listen, so its existence is the signal.
    Output is piped; the caller reads or discards it and stops the child (SIGTERM exits 0).
    """
    cmd = [sys.executable, "-m", "harness", "serve", "--endpoints-file", str(endpoints_file), *args]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + timeout
    while not endpoints_file.exists():
        if proc.poll() is not None:
            _, err = proc.communicate()  # stderr is a pipe (above), so `err` is its text
            raise ServeFailed(f"exwb serve exited {proc.returncode}: {err}")
        if time.monotonic() > deadline:
            proc.kill()
            raise ServeFailed(f"exwb serve wrote no endpoints file within {timeout:.0f} s")
        time.sleep(0.05)
    return proc
