"""Starting the fake servers on loopback, in-process (a reactor thread) or in the foreground.

Twisted's reactor runs once per process. Tests and embedded runs share one reactor thread
(`reactor_thread()`); `exwb serve` runs the reactor in the main thread. Endpoints are one
dataclass, written as JSON with mode 0600 only once the servers accept connections.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from twisted.internet import reactor as _reactor
from twisted.internet.threads import blockingCallFromThread

from mockservers.directory.acl import Role
from mockservers.directory.seed import Seeded
from mockservers.directory.server import DirectoryFactory
from mockservers.directory.service import DirectoryService

reactor: Any = _reactor
LOOPBACK = "127.0.0.1"


@dataclass(frozen=True, slots=True)
class Endpoints:
    """How to reach and authenticate to the running fakes (also the endpoints JSON file)."""

    ldap_url: str
    ldap_host: str
    ldap_port: int
    base_dn: str
    configuration_dn: str
    bind_dn: str  # the writeback service account
    bind_upn: str
    bind_password: str
    admin_dn: str
    admin_password: str
    reader_dn: str
    reader_password: str
    netbios_domain: str

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2) + "\n"

    def write(self, path: Path) -> None:
        """Write atomically with mode 0600: the file holds passwords."""
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(self.to_json())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    @classmethod
    def read(cls, path: Path) -> Endpoints:
        return cls(**json.loads(path.read_text(encoding="utf-8")))


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
class RunningDirectory:
    """A directory listening on loopback, served by the reactor thread."""

    service: DirectoryService
    endpoints: Endpoints
    _port: Any

    def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run `fn` in the reactor thread (the store is not thread-safe) and return its result."""
        return ReactorThread.call(fn, *args)

    def stop(self) -> None:
        ReactorThread.call(self._port.stopListening)


def start_directory(seeded: Seeded, host: str = LOOPBACK, port: int = 0) -> RunningDirectory:
    """Serve `seeded` over LDAP from the shared reactor thread (tests, embedded runs)."""
    service = DirectoryService.from_seed(seeded)
    ReactorThread.ensure()
    listening = ReactorThread.call(reactor.listenTCP, port, DirectoryFactory(service), 50, host)
    actual = listening.getHost().port
    return RunningDirectory(service, endpoints_for(seeded, host, actual), listening)
