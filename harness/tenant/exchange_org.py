"""The names, ids and DNs of a tenant's Exchange hybrid organisation, derived from its spec.

Both fake servers and the decommission workflow build on this one description, so the
on-premises objects (configuration partition, host, DNS) and the cloud objects the Hybrid
Configuration Wizard created name each other consistently: the HCW's `<id>` appears in
"Inbound from <id>" in Exchange Online and "Outbound to Office 365 - <id>" on-premises. Every
value is a pure function of the spec (same seed, same names).
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from functools import cached_property
from typing import Final

from harness.tenant.spec import TenantSpec

EXCHANGE_ONLINE_APP_ID: Final = "00000002-0000-0ff1-ce00-000000000000"
"""appId of the first-party "Office 365 Exchange Online" service principal."""
FEDERATION_TRUST: Final = "Microsoft Federation Gateway"
ADMIN_GROUP: Final = "Exchange Administrative Group (FYDIBOHF23SPDLT)"
ROUTING_GROUP: Final = "Exchange Routing Group (DWBGZMFD01QNBJR)"
ONPREM_IOC: Final = "ExchangeHybridOnPremisesToOnline"
CLOUD_IOC: Final = "ExchangeHybridOnlineToOnPremises"
AUTODISCOVER_SCP_KEYWORD: Final = "77378F46-2C66-4aa9-A6A6-3E7A48B19596"
EXO_AUTODISCOVER: Final = "autodiscover.outlook.com"
ONPREM_PUBLIC_IP: Final = "203.0.113.10"  # TEST-NET-3: the server's published address
BUILD_2019_CU14: Final = "Version 15.2 (Build 1544.4)"

# The arbitration and system mailboxes Exchange Setup creates, in the order it creates them.
ARBITRATION_MAILBOXES: Final = (
    "SystemMailbox{1f05a927-3be2-4fb9-aa03-b59fe3b56f4c}",
    "SystemMailbox{bb558c35-97f1-4cb9-8ff7-d53741dc928c}",
    "SystemMailbox{e0dc1c29-89c3-4034-b678-e6c29d823ed9}",
    "Migration.8f3e7716-2011-43e4-96b1-aba62d229136",
    "FederatedEmail.4c1f4d8b-8179-4148-93bf-00a95fa1e042",
    "SystemMailbox{D0E409A0-AF9B-4720-92FE-AAC869B0D201}",
    "SystemMailbox{2CE34405-31BE-455D-89D7-A7C7DA7A0DAA}",
    "DiscoverySearchMailbox{D919BA05-46A6-415f-80AD-7E09334BB852}",
)

# Devices and applications that relay mail through the server (name, address, sender).
_RELAY_KINDS: Final = (
    ("scanner", "scan"), ("erp", "erp-noreply"), ("monitoring", "alerts"), ("hr-app", "hr"),
    ("printer", "print"), ("crm", "crm-noreply"), ("backup", "backup-reports"),
)  # fmt: skip


def tenant_id_for(spec: TenantSpec) -> str:
    """A stable tenant GUID per onmicrosoft.com name, as a real tenant's id is stable."""
    return str(uuid.uuid5(uuid.NAMESPACE_DNS, spec.onmicrosoft_domain))


@dataclass(frozen=True, slots=True)
class RelayClient:
    name: str
    ip: str
    sender: str  # the MAIL FROM it uses


@dataclass(frozen=True, slots=True)
class SyncedObject:
    """A dir-synced distribution group or mail contact whose SOA has not been transferred."""

    id: str
    name: str
    address: str


@dataclass(frozen=True)
class ExchangeOrg:
    """Every derived name of one tenant's hybrid organisation; see the module docstring."""

    spec: TenantSpec

    # ------------------------------------------------------------------ ids
    def _uuid(self, what: str) -> str:
        return str(
            uuid.uuid5(uuid.NAMESPACE_URL, f"exwb:{self.spec.seed}:{self.spec.domain}:{what}")
        )

    def _thumbprint(self, what: str) -> str:
        return hashlib.sha1(f"exwb:{self.spec.seed}:{what}".encode()).hexdigest().upper()

    @cached_property
    def hcw_id(self) -> str:
        """The id the Hybrid Configuration Wizard put in the names of what it created."""
        return self._uuid("hcw")

    @cached_property
    def hybrid_app_id(self) -> str:
        """appId of the Hybrid Agent's application (Modern Hybrid)."""
        return self._uuid("hybrid-agent")

    @cached_property
    def federation_cert_thumbprint(self) -> str:
        return self._thumbprint("federation")

    @cached_property
    def oauth_cert_thumbprint(self) -> str:
        """(Get-AuthConfig).CurrentCertificateThumbprint: its key is on the EXO principal."""
        return self._thumbprint("oauth")

    @cached_property
    def oauth_key_id(self) -> str:
        return self._uuid("oauth-key")

    @property
    def tenant_id(self) -> str:
        return tenant_id_for(self.spec)

    # ------------------------------------------------------------------ names
    @property
    def name(self) -> str:
        return self.spec.exchange_org

    @property
    def servers(self) -> tuple[str, ...]:
        """EX01 is the last one to go; the others come first when there are more."""
        return tuple(f"EX{i:02d}" for i in range(1, self.spec.exchange_servers + 1))

    @property
    def last_server(self) -> str:
        return "EX01"

    def server_fqdn(self, server: str) -> str:
        return f"{server}.{self.spec.domain}".lower()

    @property
    def sync_server(self) -> str:
        """The host running Entra Connect Sync."""
        return "SYNC01"

    @property
    def mail_host(self) -> str:
        """The published name of the server (MX target, smart host, OWA)."""
        return f"mail.{self.spec.domain}"

    @property
    def exo_mx(self) -> str:
        """Exchange Online's MX target for the primary domain."""
        return f"{self.spec.domain.replace('.', '-')}.mail.protection.outlook.com"

    def exo_mx_for(self, domain: str) -> str:
        return f"{domain.replace('.', '-')}.mail.protection.outlook.com"

    @property
    def accepted_domains(self) -> tuple[str, ...]:
        return (self.spec.domain, *self.spec.extra_domains, self.spec.routing_domain)

    @property
    def inbound_connector(self) -> str:
        return f"Inbound from {self.hcw_id}"

    @property
    def outbound_connector(self) -> str:
        return f"Outbound to {self.hcw_id}"

    @property
    def send_connector(self) -> str:
        return f"Outbound to Office 365 - {self.hcw_id}"

    @property
    def receive_connector(self) -> str:
        """The receive connector whose TlsDomainCapabilities the HCW set."""
        return f"Default Frontend {self.last_server}"

    @property
    def relay_connector(self) -> str:
        return f"Relay {self.last_server}"

    @property
    def cloud_org_relationship(self) -> str:
        return f"O365 to On-Premises - {self.hcw_id}"

    @property
    def onprem_org_relationship(self) -> str:
        return f"On-premises to O365 - {self.hcw_id}"

    @property
    def hybrid_remote_domains(self) -> tuple[str, ...]:
        """The remote domains the HCW made: the coexistence domain first."""
        return (
            f"Hybrid Domain - {self.spec.routing_domain}",
            f"Hybrid Domain - {self.spec.onmicrosoft_domain}",
        )

    @property
    def target_sharing_epr(self) -> str:
        return f"https://{self.hybrid_app_id}.resource.mailboxmigration.his.msappproxy.net/EWS/Exchange.asmx"

    @property
    def arbitration_mailboxes(self) -> tuple[str, ...]:
        return ARBITRATION_MAILBOXES[: self.spec.arbitration_mailboxes]

    @property
    def public_folder_mailboxes(self) -> tuple[str, ...]:
        return ("PFMailbox1",) if self.spec.public_folders == "remote" else ()

    @property
    def relay_clients(self) -> tuple[RelayClient, ...]:
        out = []
        for i in range(self.spec.smtp_relay_clients):
            kind, local = _RELAY_KINDS[i % len(_RELAY_KINDS)]
            n = i // len(_RELAY_KINDS) + 1
            out.append(
                RelayClient(f"{kind}-{n:02d}", f"10.0.20.{10 + i}", f"{local}@{self.spec.domain}")
            )
        return tuple(out)

    @property
    def groups_without_soa(self) -> tuple[SyncedObject, ...]:
        return tuple(
            SyncedObject(
                self._uuid(f"group-{i}"), f"DL-Team-{i:03d}", f"dl-team-{i:03d}@{self.spec.domain}"
            )
            for i in range(1, self.spec.groups_without_soa + 1)
        )

    @property
    def transferred_groups(self) -> tuple[SyncedObject, ...]:
        """Dir-synced distribution groups whose SOA is already in Exchange Online
        (`distribution_groups_per_1000`, at least two when above 0): still in AD, no longer
        mastered there."""
        rate = self.spec.distribution_groups_per_1000
        n = max(2, round(self.spec.mailboxes * rate / 1000)) if rate else 0
        return tuple(
            SyncedObject(
                self._uuid(f"transferred-group-{i}"),
                f"DL-Cloud-{i:03d}",
                f"dl-cloud-{i:03d}@{self.spec.domain}",
            )
            for i in range(1, n + 1)
        )

    @property
    def contacts_without_soa(self) -> tuple[SyncedObject, ...]:
        return tuple(
            SyncedObject(
                self._uuid(f"contact-{i}"),
                f"Partner Contact {i:03d}",
                f"partner{i:03d}@fabrikam.example",
            )
            for i in range(1, self.spec.contacts_without_soa + 1)
        )

    # ------------------------------------------------------------------ DNs
    @property
    def org_dn(self) -> str:
        return self.spec.exchange_org_dn

    @property
    def admin_group_dn(self) -> str:
        return self.spec.admin_group_dn

    def server_dn(self, server: str) -> str:
        return f"CN={server},CN=Servers,{self.admin_group_dn}"

    def database_dn(self, server: str) -> str:
        """The mailbox database on `server` (EX01's is the spec's homeMDB of on-prem users)."""
        if server == self.last_server:
            return self.spec.mailbox_database_dn
        return f"CN=Mailbox Database {server[2:]},CN=Databases,{self.admin_group_dn}"
