"""Everything the decommission workflow reads and changes, reached over the wire.

`Estate` opens the connections an administrator's session would have, from an endpoints file:
the Exchange Management Shell (LDAP to AD as the organisation admin), Exchange Online's admin
API and Graph (the read-write app), the on-premises hosts API and DNS. `survey` reads what the
checks and steps need into a `Survey`, plain data the policy code (checks, steps) inspects
without touching the network.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from harness.clients.exo import CmdletError, ExoAdmin
from harness.clients.http import GRAPH_SCOPE
from harness.decommission.dns import DnsError
from harness.decommission.ems import ExchangeShell
from harness.decommission.hosts import HostsError, OnpremHosts

if TYPE_CHECKING:
    from harness.core.endpoints import Endpoints
    from harness.engine.health import JobStatus

EXO_PRINCIPAL_FILTER = "appId eq '00000002-0000-0ff1-ce00-000000000000'"
Obj = dict[str, Any]


class EstateError(Exception):
    """A part of the estate could not be reached or refused a read; the message says which."""


def prop(obj: Obj | None, name: str, default: Any = None) -> Any:
    """A property of a cmdlet's output object, by PowerShell's case-insensitive name."""
    if not obj:
        return default
    if name in obj:
        return obj[name]
    low = name.casefold()
    return next((v for k, v in obj.items() if k.casefold() == low), default)


def names(objs: list[Obj]) -> list[str]:
    return [str(prop(o, "Name") or prop(o, "Identity") or "?") for o in objs]


class Estate:
    """The sessions of one decommission run; close it (or use `with`) when done."""

    def __init__(self, ep: Endpoints, state_dir: Path) -> None:
        missing = [
            name
            for name in ("ldap_url", "admin_dn", "exo_url", "graph_url", "onprem_url", "dns_port")
            if not getattr(ep, name, None)
        ]
        if missing:
            raise EstateError(
                "the endpoints file has no " + ", ".join(missing) + " (start the fakes with a "
                "current `exwb serve`, which serves the cloud and the on-premises estate)"
            )
        self.ep = ep
        self.state_dir = state_dir
        try:
            self.shell = ExchangeShell.from_endpoints(ep).open()
        except CmdletError as e:
            raise EstateError(f"on-premises Exchange (LDAP {ep.ldap_url}): {e.message}") from None
        self.exo = ExoAdmin(ep.exo_url, ep.token_url, ep.client_id, ep.client_secret)
        self.graph = ExoAdmin(
            ep.graph_url, ep.token_url, ep.client_id, ep.client_secret, scope=GRAPH_SCOPE
        )
        self.hosts = OnpremHosts(ep.onprem_url, ep.admin_dn, ep.admin_password)

    def close(self) -> None:
        for part in (self.shell, self.exo, self.graph, self.hosts):
            close = getattr(part, "close", None)
            if close is not None:
                close()

    def __enter__(self) -> Estate:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ calls
    def onprem(self, cmdlet: str, **params: Any) -> list[Obj]:
        """An on-premises Exchange cmdlet (the emulated Exchange Management Shell)."""
        return self.shell.invoke(cmdlet, **params)

    def cloud(self, cmdlet: str, **params: Any) -> list[Obj]:
        """An Exchange Online cmdlet; every item, following next links."""
        return self.exo.invoke_all(cmdlet, **params)

    def resolve(self, name: str, rtype: str) -> list[str]:
        from harness.decommission.dns import resolve

        return resolve(self.ep.ldap_host or "127.0.0.1", self.ep.dns_port, name, rtype)

    def exo_principal(self) -> Obj | None:
        """The "Office 365 Exchange Online" service principal, keyCredentials included."""
        page = self.graph.request(
            "GET", f"/v1.0/servicePrincipals?$filter={quote(EXO_PRINCIPAL_FILTER)}"
        )
        found = (page or {}).get("value") or []
        return found[0] if found else None

    def set_key_credentials(self, principal_id: str, keys: list[Obj]) -> None:
        self.graph.request(
            "PATCH", f"/v1.0/servicePrincipals/{principal_id}", {"keyCredentials": keys}
        )


# ---------------------------------------------------------------------- survey
@dataclass(slots=True)
class Survey:
    """What the estate looks like now: the inputs of every check and step."""

    servers: list[Obj] = field(default_factory=list)
    last_server: str | None = None
    host: Obj | None = None  # the last server's machine
    sync_host: Obj | None = None  # the Entra Connect Sync machine
    mailboxes: list[Obj] = field(default_factory=list)  # on-premises user mailboxes
    arbitration: list[Obj] = field(default_factory=list)
    public_folder_mailboxes: list[Obj] = field(default_factory=list)
    org_config: Obj = field(default_factory=dict)
    accepted_domains: list[str] = field(default_factory=list)
    dns: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    relay: list[Obj] = field(default_factory=list)
    not_cloud_managed: list[Obj] = field(default_factory=list)
    groups: list[Obj] = field(default_factory=list)  # dir-synced, SOA not transferred
    contacts: list[Obj] = field(default_factory=list)
    job: JobStatus | None = None
    # hybrid objects
    client_access: list[Obj] = field(default_factory=list)
    onprem_ioc: list[Obj] = field(default_factory=list)
    cloud_ioc: list[Obj] = field(default_factory=list)
    inbound: list[Obj] = field(default_factory=list)
    outbound: list[Obj] = field(default_factory=list)
    rules: list[Obj] = field(default_factory=list)
    cloud_relationships: list[Obj] = field(default_factory=list)
    onprem_relationships: list[Obj] = field(default_factory=list)
    send_connectors: list[Obj] = field(default_factory=list)
    receive_connectors: list[Obj] = field(default_factory=list)
    remote_domains: list[Obj] = field(default_factory=list)
    fed_org_id: Obj | None = None
    fed_trusts: list[Obj] = field(default_factory=list)
    auth_config: Obj | None = None
    auth_servers: list[Obj] = field(default_factory=list)
    partner_apps: list[Obj] = field(default_factory=list)
    hybrid_config: list[Obj] = field(default_factory=list)
    hybrid_apps: list[Obj] = field(default_factory=list)
    exo_principal: Obj | None = None

    @property
    def server_state(self) -> str:
        """Running, ShutDown or Uninstalled (the host's own view)."""
        return str(prop(self.host, "state", "Uninstalled" if self.host is None else "Running"))

    @property
    def host_services(self) -> list[Obj]:
        return list(prop(self.host, "services", []) or [])

    @property
    def host_certificates(self) -> list[Obj]:
        return list(prop(self.host, "certificates", []) or [])

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__slots__}


def survey(estate: Estate, *, profile_name: str = "ga", full: bool = True) -> Survey:
    """Read the estate. `full=False` reads only the hybrid objects and hosts (between steps)."""
    s = Survey()
    try:
        s.servers = estate.onprem("Get-ExchangeServer")
        s.last_server = _last_server(s.servers, estate)
        hosts = estate.hosts.hosts()
        s.host = next((h for h in hosts if _eq(prop(h, "name"), s.last_server)), None)
        s.sync_host = next((h for h in hosts if prop(h, "role") == "EntraConnectSync"), None)
        _hybrid(estate, s)
        if full:
            _blocker_inputs(estate, s, profile_name)
    except (CmdletError, HostsError) as e:
        raise EstateError(f"{e.code or e.status}: {e.message}") from None
    except DnsError as e:
        raise EstateError(f"DNS: {e}") from None
    return s


def _eq(a: Any, b: Any) -> bool:
    return isinstance(a, str) and isinstance(b, str) and a.casefold() == b.casefold()


def _last_server(servers: list[Obj], estate: Estate) -> str | None:
    """The server this workflow retires: the one left, or EX01 while others remain."""
    if servers:
        return sorted(names(servers))[0]
    # Uninstalled: the host still knows the machine that held Exchange.
    for h in estate.hosts.hosts():
        if prop(h, "role") == "ExchangeServer":
            return str(prop(h, "name"))
    return None


def _hybrid(estate: Estate, s: Survey) -> None:
    onprem, cloud = estate.onprem, estate.cloud
    s.client_access = onprem("Get-ClientAccessService")
    s.onprem_ioc = onprem("Get-IntraOrganizationConnector")
    s.onprem_relationships = onprem("Get-OrganizationRelationship")
    s.send_connectors = onprem("Get-SendConnector")
    s.receive_connectors = onprem("Get-ReceiveConnector")
    s.remote_domains = onprem("Get-RemoteDomain")
    fed = onprem("Get-FederatedOrganizationIdentifier")
    s.fed_org_id = fed[0] if fed else None
    s.fed_trusts = onprem("Get-FederationTrust")
    auth = onprem("Get-AuthConfig")
    s.auth_config = auth[0] if auth else None
    s.auth_servers = onprem("Get-AuthServer")
    s.partner_apps = onprem("Get-PartnerApplication")
    s.hybrid_config = onprem("Get-HybridConfiguration")
    s.accepted_domains = [
        str(prop(d, "DomainName") or prop(d, "Name")) for d in onprem("Get-AcceptedDomain")
    ]
    s.cloud_ioc = cloud("Get-IntraOrganizationConnector")
    s.inbound = cloud("Get-InboundConnector")
    s.outbound = cloud("Get-OutboundConnector")
    s.rules = cloud("Get-TransportRule")
    s.cloud_relationships = cloud("Get-OrganizationRelationship")
    s.hybrid_apps = cloud("Get-HybridApplication")
    s.exo_principal = estate.exo_principal()


def _blocker_inputs(estate: Estate, s: Survey, profile_name: str) -> None:
    onprem, cloud = estate.onprem, estate.cloud
    s.mailboxes = onprem("Get-Mailbox")
    s.arbitration = onprem("Get-Mailbox", Arbitration=True)
    s.public_folder_mailboxes = onprem("Get-Mailbox", PublicFolder=True)
    config = cloud("Get-OrganizationConfig")
    s.org_config = config[0] if config else {}
    for domain in mail_domains(s.accepted_domains):
        s.dns[domain] = {
            "MX": estate.resolve(domain, "MX"),
            "autodiscover": estate.resolve(f"autodiscover.{domain}", "CNAME"),
        }
    if s.host is not None and s.server_state != "Uninstalled":
        s.relay = estate.hosts.smtp_receive_log(str(prop(s.host, "name")))
    s.not_cloud_managed = cloud(
        "Get-Mailbox",
        Filter="IsDirSynced -eq $true -and IsExchangeCloudManaged -eq $false",
        ResultSize="Unlimited",
    )
    s.groups = [
        g for g in cloud("Get-DistributionGroup", ResultSize="Unlimited") if prop(g, "IsDirSynced")
    ]
    s.contacts = [
        c for c in cloud("Get-MailContact", ResultSize="Unlimited") if prop(c, "IsDirSynced")
    ]
    s.job = job_health(estate.state_dir, profile_name)


def mail_domains(accepted: list[str]) -> list[str]:
    """The accepted domains that take mail from the internet (not the onmicrosoft.com ones)."""
    return [d for d in accepted if d and not d.casefold().endswith(".onmicrosoft.com")]


def job_health(state_dir: Path, profile_name: str = "ga") -> JobStatus | None:
    """The writeback job as `exwb status` shows it; None when the state dir has never run."""
    from harness.engine.health import job_status
    from harness.engine.rules import BUILTIN_PROFILES
    from harness.engine.state import EngineState

    if not (state_dir).exists():
        return None
    profile = BUILTIN_PROFILES.get(profile_name) or BUILTIN_PROFILES["ga"]
    return job_status(EngineState.load(state_dir), profile, str(state_dir.resolve()))
