"""The on-premises estate: the hosts (Exchange servers, the Entra Connect server) and DNS zones.

A plain model with no HTTP or DNS in it: `api.py` renders it, `dns_server.py` answers queries
from it, `setup.py` uninstalls Exchange from one of its hosts. Everything is derived from the
tenant spec (`Estate.from_spec`) and round-trips through JSON (`to_json` / `from_json`) for
`exwb serve --state-dir`. Every change calls `on_change` once it is applied (persistence).
Not thread-safe: the reactor thread owns it.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from harness.core import clock
from harness.tenant.exchange_org import BUILD_2019_CU14, ExchangeOrg
from harness.tenant.spec import TenantSpec
from mockservers.onprem import errors
from mockservers.onprem.zones import Zone, zone_from_spec

FORMAT: Final = "exwb-onprem/1"
EXCHANGE_ROLE: Final = "ExchangeServer"
SYNC_ROLE: Final = "EntraConnectSync"
EXCHANGE_PRODUCT: Final = "Exchange Server 2019 CU14"


def _dotted(build: str) -> str:
    """'Version 15.2 (Build 1544.4)' (AdminDisplayVersion) as the file version, '15.2.1544.4'."""
    m = re.fullmatch(r"Version (\d+\.\d+) \(Build (\d+\.\d+)\)", build)
    if m is None:
        raise ValueError(f"not an Exchange AdminDisplayVersion: {build!r}")
    return f"{m.group(1)}.{m.group(2)}"


# The build is one fact (harness.tenant.exchange_org); the hosts API spells it as a version.
EXCHANGE_VERSION: Final = _dotted(BUILD_2019_CU14)
CONNECT_PRODUCT: Final = "Microsoft Entra Connect Sync"
HYBRID_AGENT: Final = "Microsoft Hybrid Service"
LEFTOVER_SERVICE: Final = "MSExchangeTransport"  # what spec.uninstall_leftovers leaves behind
RELAY_WINDOW: Final = timedelta(days=30)

# Product tags of services: Setup /m:Uninstall removes the "Exchange Server" ones only.
P_EXCHANGE, P_HYBRID, P_WINDOWS, P_CONNECT = (
    "Exchange Server", "Hybrid Agent", "Windows", "Entra Connect",
)  # fmt: skip

_EXCHANGE_SERVICES: Final = (
    ("MSExchangeADTopology", "Microsoft Exchange Active Directory Topology"),
    ("MSExchangeServiceHost", "Microsoft Exchange Service Host"),
    ("MSExchangeIS", "Microsoft Exchange Information Store"),
    ("MSExchangeTransport", "Microsoft Exchange Transport"),
    ("MSExchangeFrontEndTransport", "Microsoft Exchange Frontend Transport"),
    ("MSExchangeDelivery", "Microsoft Exchange Mailbox Transport Delivery"),
    ("MSExchangeSubmission", "Microsoft Exchange Mailbox Transport Submission"),
    ("MSExchangeMailboxAssistants", "Microsoft Exchange Mailbox Assistants"),
    ("MSExchangeRPC", "Microsoft Exchange RPC Client Access"),
    ("MSExchangeHM", "Microsoft Exchange Health Manager"),
)


# ------------------------------------------------------------------------------ hosts
@dataclass(slots=True)
class Service:
    name: str
    display_name: str
    status: str = "Running"  # Running | Stopped
    start_type: str = "Automatic"  # Automatic | Manual | Disabled
    product: str = P_EXCHANGE

    def to_api(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "displayName": self.display_name,
            "status": self.status,
            "startType": self.start_type,
            "product": self.product,
        }


@dataclass(slots=True)
class Certificate:
    thumbprint: str
    subject: str
    friendly_name: str
    services: str  # Exchange's Services column: "IIS, SMTP", "Federation", ...
    not_after: str
    exchange: bool = True  # one Exchange Setup manages (removed with Exchange)

    def to_api(self) -> dict[str, Any]:
        return {
            "thumbprint": self.thumbprint,
            "subject": self.subject,
            "friendlyName": self.friendly_name,
            "services": self.services,
            "notAfter": self.not_after,
        }


@dataclass(slots=True)
class RelayClientSeen:
    """One client in the SMTP receive protocol log: a device relaying through the server."""

    client_ip: str
    client_hostname: str
    mail_from: str
    connector: str
    messages: int
    last_seen: str  # ISO 8601, UTC

    def to_api(self) -> dict[str, Any]:
        return {
            "clientIp": self.client_ip,
            "clientHostname": self.client_hostname,
            "mailFrom": self.mail_from,
            "connector": self.connector,
            "messages": self.messages,
            "lastSeen": self.last_seen,
        }


@dataclass(slots=True)
class Host:
    name: str
    fqdn: str
    role: str
    product: str
    version: str
    ip_address: str
    powered_on: bool = True
    installed: bool = True  # the role's product (Exchange Server, Entra Connect)
    services: list[Service] = field(default_factory=list)
    certificates: list[Certificate] = field(default_factory=list)
    smtp_receive_log: list[RelayClientSeen] = field(default_factory=list)

    @property
    def state(self) -> str:
        """Running, ShutDown, or Uninstalled (powered on, product removed)."""
        if not self.powered_on:
            return "ShutDown"
        return "Running" if self.installed else "Uninstalled"

    def service(self, name: str) -> Service | None:
        return next((s for s in self.services if s.name.casefold() == name.casefold()), None)

    def certificate(self, thumbprint: str) -> Certificate | None:
        want = thumbprint.replace(" ", "").upper()
        return next((c for c in self.certificates if c.thumbprint == want), None)

    def to_api(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "fqdn": self.fqdn,
            "role": self.role,
            "state": self.state,
            "poweredOn": self.powered_on,
            "installed": self.installed,
            "product": self.product if self.installed else None,
            "version": self.version if self.installed else None,
            "ip": self.ip_address,  # its address on the internal network
            "services": [s.to_api() for s in self.services],
            "certificates": [c.to_api() for c in self.certificates],
        }

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Host:
        d = dict(d)
        d["services"] = [Service(**s) for s in d.get("services", [])]
        d["certificates"] = [Certificate(**c) for c in d.get("certificates", [])]
        d["smtp_receive_log"] = [RelayClientSeen(**r) for r in d.get("smtp_receive_log", [])]
        return cls(**d)


# ------------------------------------------------------------------------------ the estate
@dataclass(slots=True)
class Estate:
    """Every host and zone by case-folded name; see the module docstring."""

    hosts: dict[str, Host]
    zones: dict[str, Zone]
    on_change: Callable[[Estate], None] | None = None

    # -------------------------------------------------------------- building
    @classmethod
    def from_spec(cls, spec: TenantSpec, now: datetime | None = None) -> Estate:
        """The estate `spec` describes; relay log times are relative to `now`."""
        org = ExchangeOrg(spec)
        now = now or clock.now()
        hosts: dict[str, Host] = {}
        for i, server in enumerate(org.servers):
            hosts[server.casefold()] = _exchange_host(org, server, f"10.0.10.{11 + i}", now)
        sync = Host(
            org.sync_server,
            f"{org.sync_server}.{spec.domain}".lower(),
            SYNC_ROLE,
            CONNECT_PRODUCT,
            spec.connect_build,
            "10.0.10.30",
            services=[
                Service("ADSync", "Microsoft Azure AD Sync", product=P_CONNECT),
                Service("W3SVC", "World Wide Web Publishing Service", product=P_WINDOWS),
            ],
        )
        hosts[sync.name.casefold()] = sync
        zones = {}
        for domain in (spec.domain, *spec.extra_domains):
            zones[domain.lower()] = zone_from_spec(org, domain.lower())
        return cls(hosts, zones)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "hosts": [h.to_json() for h in self.hosts.values()],
            "zones": [z.to_json() for z in self.zones.values()],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Estate:
        """The estate `to_json` wrote; raises ValueError on anything else."""
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ValueError(f"not an {FORMAT} document")
        try:
            hosts = [Host.from_json(h) for h in data["hosts"]]
            zones = [Zone.from_json(z) for z in data["zones"]]
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"damaged {FORMAT} document: {e!r}") from None
        return cls({h.name.casefold(): h for h in hosts}, {z.name: z for z in zones})

    def changed(self) -> None:
        if self.on_change is not None:
            self.on_change(self)

    # -------------------------------------------------------------- hosts
    def host(self, name: str) -> Host:
        h = self.hosts.get(name.casefold())
        if h is None:
            raise errors.host_not_found(name)
        return h

    def shutdown(self, name: str) -> Host:
        """Power the host off (idempotent: a host that is off stays off)."""
        h = self.host(name)
        if h.powered_on:
            h.powered_on = False
            for s in h.services:
                if s.status == "Running":
                    s.status = "Stopped"
            self.changed()
        return h

    def start(self, name: str) -> Host:
        """Power the host on; services set to start automatically start (idempotent)."""
        h = self.host(name)
        if not h.powered_on:
            h.powered_on = True
            for s in h.services:
                if s.start_type == "Automatic":
                    s.status = "Running"
            self.changed()
        return h

    def delete_service(self, name: str, service: str) -> None:
        h = self.host(name)
        s = h.service(service)
        if s is None:
            raise errors.service_not_found(service, h.name)
        h.services.remove(s)
        self.changed()

    def delete_certificate(self, name: str, thumbprint: str) -> None:
        h = self.host(name)
        c = h.certificate(thumbprint)
        if c is None:
            raise errors.certificate_not_found(thumbprint, h.name)
        h.certificates.remove(c)
        self.changed()

    def relay_clients(self, name: str, now: datetime | None = None) -> list[RelayClientSeen]:
        """The receive log's clients seen within the last 30 days, most recent first."""
        h = self.host(name)
        since = (now or clock.now()) - RELAY_WINDOW
        seen = [r for r in h.smtp_receive_log if datetime.fromisoformat(r.last_seen) >= since]
        return sorted(seen, key=lambda r: r.last_seen, reverse=True)

    def forget_relay_client(self, name: str, client_ip: str) -> None:
        """The device was repointed: its lines leave the log."""
        h = self.host(name)
        kept = [r for r in h.smtp_receive_log if r.client_ip != client_ip.strip()]
        if len(kept) == len(h.smtp_receive_log):
            raise errors.relay_client_not_found(client_ip, h.name)
        h.smtp_receive_log = kept
        self.changed()

    # -------------------------------------------------------------- DNS
    def zone(self, name: str) -> Zone:
        z = self.zones.get(name.strip().lower().rstrip("."))
        if z is None:
            raise errors.zone_not_found(name)
        return z

    def put_record(self, zone: str, name: str, rtype: str, body: Any) -> tuple[dict, bool]:
        """Create or replace one record set; (its API form, whether it was created)."""
        out = self.zone(zone).put(name, rtype, body)
        self.changed()
        return out

    def delete_record(self, zone: str, name: str, rtype: str) -> None:
        self.zone(zone).delete(name, rtype)
        self.changed()


def _thumbprint(spec: TenantSpec, what: str) -> str:
    return hashlib.sha1(f"exwb:{spec.seed}:{what}".encode()).hexdigest().upper()


def _exchange_host(org: ExchangeOrg, server: str, ip: str, now: datetime) -> Host:
    spec = org.spec
    services = [Service(n, d) for n, d in _EXCHANGE_SERVICES]
    services.append(Service("W3SVC", "World Wide Web Publishing Service", product=P_WINDOWS))
    certificates = [
        Certificate(
            _thumbprint(spec, f"smtp:{server}"),
            f"CN={org.mail_host}",
            f"{org.mail_host} (public)",
            "IIS, SMTP",
            "2027-03-31T23:59:59Z",
        )
    ]
    log: list[RelayClientSeen] = []
    if server == org.last_server:
        # The Hybrid Agent runs next to the last server; the HCW's certificates live here.
        services.append(Service(HYBRID_AGENT, HYBRID_AGENT, product=P_HYBRID))
        certificates += [
            Certificate(
                org.federation_cert_thumbprint,
                "CN=Federation",
                "Exchange Delegated Federation",
                "Federation",
                "2029-06-01T12:00:00Z",
            ),
            Certificate(
                org.oauth_cert_thumbprint,
                "CN=Microsoft Exchange Server Auth Certificate",
                "Microsoft Exchange Server Auth Certificate",
                "SMTP",
                "2029-06-01T12:00:00Z",
            ),
        ]
        for i, client in enumerate(org.relay_clients):
            log.append(
                RelayClientSeen(
                    client.ip,
                    f"{client.name}.{spec.domain}".lower(),
                    client.sender,
                    org.relay_connector,
                    40 + 17 * i,
                    _iso(now - timedelta(days=1 + i % 20, hours=i % 7)),
                )
            )
        if log:
            # A device retired two months ago: its lines are too old to count.
            log.append(
                RelayClientSeen(
                    "10.0.20.250",
                    f"old-fax-01.{spec.domain}".lower(),
                    f"fax@{spec.domain}",
                    org.relay_connector,
                    3,
                    _iso(now - timedelta(days=62)),
                )
            )
    return Host(
        server,
        org.server_fqdn(server),
        EXCHANGE_ROLE,
        EXCHANGE_PRODUCT,
        EXCHANGE_VERSION,
        ip,
        services=services,
        certificates=certificates,
        smtp_receive_log=log,
    )


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).replace(microsecond=0).isoformat()
