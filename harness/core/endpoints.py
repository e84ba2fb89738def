"""How to reach and authenticate to a running tenant: the endpoints every client reads.

`exwb serve` writes it as a JSON file (mode 0600, it holds passwords); the engine, the scenario
runner, the decommission workflow and the pytest fixtures read it. Fakes and real systems alike
are described by it, so it sits in the ground layer.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path


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
    # The cloud side (empty when only the directory runs).
    graph_url: str = ""
    exo_url: str = ""
    token_url: str = ""
    tenant_id: str = ""
    client_id: str = ""  # read-write app (Exchange.ManageAsApp, User.ReadWrite.All)
    client_secret: str = ""
    readonly_client_id: str = ""  # read-only app (User.Read.All)
    readonly_client_secret: str = ""
    # Entra Connect's sync account (User.Read.All, Directory.Synchronization) and the export
    # endpoint only it may call, the stand-in for Connect's private sync service.
    connect_client_id: str = ""
    connect_client_secret: str = ""
    dirsync_url: str = ""
    # The on-premises estate: hosts API (HTTP Basic as admin_dn / admin_password) and the
    # authoritative DNS server (UDP and TCP on ldap_host:dns_port). Empty / 0 when not running.
    onprem_url: str = ""
    dns_port: int = 0
    # TLS (empty when not served): the CA clients trust (SSL_CERT_FILE, REQUESTS_CA_BUNDLE,
    # NODE_EXTRA_CA_CERTS, LDAPTLS_CACERT), LDAPS on its own port (StartTLS on ldap_url), and
    # the cloud and the hosts API over HTTPS. `authority` is what MSAL and azure-identity are
    # given: the HTTPS origin and the tenant id (discovery documents are served under it).
    ca_file: str = ""
    ldaps_url: str = ""
    ldaps_port: int = 0
    https_graph_url: str = ""
    https_exo_url: str = ""
    https_token_url: str = ""
    authority: str = ""
    onprem_https_url: str = ""
    # PEM files (private key, then certificate) registered on the read-write and the read-only
    # app: client-assertion sign-in instead of a secret.
    client_certificate_file: str = ""
    readonly_client_certificate_file: str = ""
    # The harness clock the services run on: "wall", or "simulated" (`exwb serve --clock
    # simulated`; moved by POST /exwb/clock/advance).
    clock: str = "wall"

    ACCOUNTS = ("admin", "writeback", "reader")

    def account(self, who: str) -> tuple[str, str]:
        """(DN, password) of the directory account `who`: admin, writeback or reader."""
        pairs = {
            "admin": (self.admin_dn, self.admin_password),
            "writeback": (self.bind_dn, self.bind_password),
            "reader": (self.reader_dn, self.reader_password),
        }
        if who not in pairs:
            raise ValueError(f"account must be one of {', '.join(pairs)}, not {who!r}")
        return pairs[who]

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
