"""Exchange Online's side of an Exchange hybrid organisation: what the HCW left in the tenant.

`HybridCloud.from_spec(spec)` builds it from the names `ExchangeOrg(spec)` derives, so the
on-premises fakes and this one agree: the HCW's inbound and outbound connectors, the cloud
organisation relationship, the OAuth intra-organisation connector, the Hybrid Agent's
application, transport rules (an ordinary one, plus `spec.stale_cloud_objects` stale connectors
and rules that still point at the on-premises server), the dir-synced distribution groups and
mail contacts whose source of authority has not been transferred (plus two already transferred),
the "Office 365 Exchange Online" service principal with the hybrid OAuth key among its
keyCredentials, and OrganizationConfig's PublicFoldersEnabled.

State only: `exo.py` and `graph.py` bind parameters and render errors; here lookups raise
`HybridNotFound` and refused removals `HybridInUse`. Every change calls `on_change()` (no
arguments) afterwards, so `exwb serve --state-dir` can write `to_json()` atomically; a restart
rebuilds the same state with `HybridCloud.from_json(data)`.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Final

from harness.tenant.exchange_org import (
    CLOUD_IOC,
    EXCHANGE_ONLINE_APP_ID,
    ExchangeOrg,
    tenant_id_for,
)
from harness.tenant.spec import TenantSpec

JSON_VERSION: Final = 1
MICROSOFT_TENANT: Final = "f8cdef31-a31e-4b4a-93e4-5f571e91255a"  # owner of first-party apps
EXCHANGE_ONLINE_SP_NAME: Final = "Office 365 Exchange Online"
OAUTH_KEY_NAME: Final = "CN=Microsoft Exchange Server Auth Certificate"
PUBLIC_FOLDERS_ENABLED: Final = ("Local", "Remote", "None")
_PUBLIC_FOLDERS: Final = {"remote": "Remote", "migrated": "Local", "none": "None"}
_ROUTE_RULES: Final = ("Route partner mail via on-premises", "Route app mail via on-premises")
_REDIRECT_RULES: Final = ("Redirect scan-to-mail to on-premises", "Redirect helpdesk on-premises")
_KEY_DATES: Final = ("2024-03-01T00:00:00Z", "2029-03-01T00:00:00Z")


class HybridNotFound(LookupError):
    """No object of that kind has that identity."""

    def __init__(self, kind: str, identity: str) -> None:
        super().__init__(f"{kind} {identity!r} not found")
        self.kind = kind
        self.identity = identity


class HybridInUse(Exception):
    """A removal refused because other objects still reference the object (`users` names them)."""

    def __init__(self, name: str, users: list[str]) -> None:
        super().__init__(f"{name!r} is in use by {', '.join(users)}")
        self.name = name
        self.users = users


# ---------------------------------------------------------------------- objects
@dataclass(slots=True)
class InboundConnector:
    name: str
    guid: str
    tls_sender_certificate_name: str
    sender_domains: list[str] = field(default_factory=lambda: ["*"])
    connector_type: str = "OnPremises"
    connector_source: str = "HybridWizard"
    enabled: bool = True

    def to_ps(self) -> dict[str, Any]:
        return {
            "Identity": self.name,
            "Name": self.name,
            "Guid": self.guid,
            "Enabled": self.enabled,
            "ConnectorType": self.connector_type,
            "ConnectorSource": self.connector_source,
            "SenderDomains": list(self.sender_domains),
            "SenderIPAddresses": [],
            "RequireTls": True,
            "RestrictDomainsToCertificate": False,
            "TlsSenderCertificateName": self.tls_sender_certificate_name,
            "CloudServicesMailEnabled": True,
            "TreatMessagesAsInternal": False,
        }


@dataclass(slots=True)
class OutboundConnector:
    name: str
    guid: str
    smart_hosts: list[str]
    recipient_domains: list[str]
    tls_domain: str
    connector_type: str = "OnPremises"
    connector_source: str = "HybridWizard"
    is_transport_rule_scoped: bool = False
    enabled: bool = True
    comment: str = ""

    def to_ps(self) -> dict[str, Any]:
        return {
            "Identity": self.name,
            "Name": self.name,
            "Guid": self.guid,
            "Enabled": self.enabled,
            "ConnectorType": self.connector_type,
            "ConnectorSource": self.connector_source,
            "SmartHosts": list(self.smart_hosts),
            "RecipientDomains": list(self.recipient_domains),
            "UseMXRecord": False,
            "TlsSettings": "DomainValidation",
            "TlsDomain": self.tls_domain,
            "IsTransportRuleScoped": self.is_transport_rule_scoped,
            "RouteAllMessagesViaOnPremises": False,
            "CloudServicesMailEnabled": True,
            "AllAcceptedDomains": False,
            "Comment": self.comment,
        }


@dataclass(slots=True)
class OrganizationRelationship:
    name: str
    guid: str
    domain_names: list[str]
    target_sharing_epr: str
    target_application_uri: str
    target_autodiscover_epr: str
    target_owa_url: str
    enabled: bool = True

    def to_ps(self) -> dict[str, Any]:
        return {
            "Identity": self.name,
            "Name": self.name,
            "Guid": self.guid,
            "Enabled": self.enabled,
            "DomainNames": list(self.domain_names),
            "FreeBusyAccessEnabled": True,
            "FreeBusyAccessLevel": "LimitedDetails",
            "MailboxMoveEnabled": True,
            "MailboxMoveCapability": "RemoteInbound",
            "DeliveryReportEnabled": True,
            "MailTipsAccessEnabled": True,
            "MailTipsAccessLevel": "All",
            "ArchiveAccessEnabled": True,
            "PhotosEnabled": True,
            "TargetApplicationUri": self.target_application_uri,
            "TargetAutodiscoverEpr": self.target_autodiscover_epr,
            "TargetSharingEpr": self.target_sharing_epr,
            "TargetOwaURL": self.target_owa_url,
        }


@dataclass(slots=True)
class IntraOrganizationConnector:
    name: str
    guid: str
    target_address_domains: list[str]
    discovery_endpoint: str
    target_sharing_epr: str
    enabled: bool = True

    def to_ps(self) -> dict[str, Any]:
        return {
            "Identity": self.name,
            "Name": self.name,
            "Guid": self.guid,
            "Enabled": self.enabled,
            "TargetAddressDomains": list(self.target_address_domains),
            "DiscoveryEndpoint": self.discovery_endpoint,
            "TargetSharingEpr": self.target_sharing_epr,
        }


@dataclass(slots=True)
class TransportRule:
    name: str
    guid: str
    priority: int
    description: str
    route_message_outbound_connector: str | None = None
    redirect_message_to: list[str] | None = None
    apply_html_disclaimer_text: str | None = None
    from_scope: str | None = None
    sent_to_scope: str | None = None
    recipient_domain_is: list[str] | None = None
    state: str = "Enabled"
    comments: str = ""

    def to_ps(self) -> dict[str, Any]:
        return {
            "Identity": self.name,
            "Name": self.name,
            "Guid": self.guid,
            "Priority": self.priority,
            "State": self.state,
            "Mode": "Enforce",
            "Description": self.description,
            "Comments": self.comments,
            "FromScope": self.from_scope,
            "SentToScope": self.sent_to_scope,
            "RecipientDomainIs": _copy(self.recipient_domain_is),
            "RouteMessageOutboundConnector": self.route_message_outbound_connector,
            "RedirectMessageTo": _copy(self.redirect_message_to),
            "ApplyHtmlDisclaimerText": self.apply_html_disclaimer_text,
            "ApplyHtmlDisclaimerLocation": "Append" if self.apply_html_disclaimer_text else None,
        }


@dataclass(slots=True)
class HybridApplication:
    """The Hybrid Agent's application (Modern Hybrid), as HybridManagement.psm1 lists it."""

    app_id: str
    display_name: str
    external_url: str
    internal_url: str
    connector_group: str = "Hybrid Agent Group"

    @property
    def name(self) -> str:
        return self.app_id

    def to_ps(self) -> dict[str, Any]:
        return {
            "Identity": self.app_id,
            "AppId": self.app_id,
            "DisplayName": self.display_name,
            "ExternalUrl": self.external_url,
            "InternalUrl": self.internal_url,
            "ConnectorGroup": self.connector_group,
        }


@dataclass(slots=True)
class SyncedRecipient:
    """A distribution group or mail contact; `id` is its Entra object id (Graph's id)."""

    id: str
    guid: str
    name: str
    alias: str
    address: str
    is_dir_synced: bool

    def to_ps(self, kind: str) -> dict[str, Any]:
        common = {
            "Identity": self.name,
            "Name": self.name,
            "DisplayName": self.name,
            "Alias": self.alias,
            "Guid": self.guid,
            "ExternalDirectoryObjectId": self.id,
            "IsDirSynced": self.is_dir_synced,
            "PrimarySmtpAddress": self.address,
            "EmailAddresses": [f"SMTP:{self.address}"],
        }
        if kind == "mail_contacts":
            return {
                **common,
                "RecipientType": "MailContact",
                "RecipientTypeDetails": "MailContact",
                "ExternalEmailAddress": f"SMTP:{self.address}",
            }
        return {
            **common,
            "RecipientType": "MailUniversalDistributionGroup",
            "RecipientTypeDetails": "MailUniversalDistributionGroup",
            "GroupType": "Universal",
        }


@dataclass(slots=True)
class ServicePrincipal:
    """An Entra service principal; `key_credentials` in Graph's shape (key always null)."""

    id: str
    app_id: str
    display_name: str
    app_owner_organization_id: str
    service_principal_names: list[str]
    key_credentials: list[dict[str, Any]]

    @property
    def name(self) -> str:
        return self.display_name


# Attribute of HybridCloud -> its object class and a name for errors.
KINDS: Final[dict[str, type]] = {
    "inbound_connectors": InboundConnector,
    "outbound_connectors": OutboundConnector,
    "organization_relationships": OrganizationRelationship,
    "intra_organization_connectors": IntraOrganizationConnector,
    "transport_rules": TransportRule,
    "hybrid_applications": HybridApplication,
    "distribution_groups": SyncedRecipient,
    "mail_contacts": SyncedRecipient,
    "service_principals": ServicePrincipal,
}


# ---------------------------------------------------------------------- the model
@dataclass(eq=False)
class HybridCloud:
    """Exchange Online's hybrid objects; see the module docstring."""

    inbound_connectors: list[InboundConnector] = field(default_factory=list)
    outbound_connectors: list[OutboundConnector] = field(default_factory=list)
    organization_relationships: list[OrganizationRelationship] = field(default_factory=list)
    intra_organization_connectors: list[IntraOrganizationConnector] = field(default_factory=list)
    transport_rules: list[TransportRule] = field(default_factory=list)
    hybrid_applications: list[HybridApplication] = field(default_factory=list)
    distribution_groups: list[SyncedRecipient] = field(default_factory=list)
    mail_contacts: list[SyncedRecipient] = field(default_factory=list)
    service_principals: list[ServicePrincipal] = field(default_factory=list)
    public_folders_enabled: str = "Local"
    # Called with no arguments after every change (persistence); not part of the state.
    on_change: Callable[[], None] | None = field(default=None, repr=False)

    # ------------------------------------------------------------------ building
    @classmethod
    def from_spec(cls, spec: TenantSpec) -> HybridCloud:
        """The objects the HCW and the admins left in the tenant described by `spec`."""
        org = ExchangeOrg(spec)
        ids = _Ids(spec)
        domains = [spec.domain, *spec.extra_domains]  # the on-premises (federated) domains
        mail = org.mail_host
        hybrid = cls(public_folders_enabled=_PUBLIC_FOLDERS[spec.public_folders])
        hybrid.inbound_connectors.append(
            InboundConnector(org.inbound_connector, ids.guid("inbound"), mail)
        )
        hybrid.outbound_connectors.append(
            OutboundConnector(org.outbound_connector, ids.guid("outbound"), [mail], domains, mail)
        )
        hybrid.organization_relationships.append(
            OrganizationRelationship(
                org.cloud_org_relationship,
                ids.guid("org-relationship"),
                list(domains),
                org.target_sharing_epr,
                f"FYDIBOHF25SPDLT.{spec.domain}",
                f"https://autodiscover.{spec.domain}/autodiscover/autodiscover.svc/WSSecurity",
                f"https://{mail}/owa",
            )
        )
        hybrid.intra_organization_connectors.append(
            IntraOrganizationConnector(
                CLOUD_IOC,
                ids.guid("ioc"),
                list(domains),
                f"https://{mail}/autodiscover/autodiscover.svc",
                org.target_sharing_epr,
            )
        )
        hybrid.hybrid_applications.append(
            HybridApplication(
                org.hybrid_app_id,
                f"Exchange Hybrid Agent - {org.hcw_id}",
                f"https://{org.hybrid_app_id}.resource.mailboxmigration.his.msappproxy.net/",
                f"https://{org.server_fqdn(org.last_server)}/",
            )
        )
        hybrid.transport_rules.append(
            TransportRule(
                "External Email Disclaimer",
                ids.guid("rule-disclaimer"),
                0,
                "If the message is sent to 'Outside the organization' and is sent by 'Inside "
                "the organization', append a disclaimer.",
                apply_html_disclaimer_text="<p>This message is confidential and intended only "
                "for its recipients.</p>",
                from_scope="InOrganization",
                sent_to_scope="NotInOrganization",
            )
        )
        hybrid._add_stale(spec, org, ids, domains)
        hybrid.distribution_groups = [
            SyncedRecipient(g.id, ids.guid(g.id), g.name, _local(g.address), g.address, True)
            for g in org.groups_without_soa
        ] + [
            # SOA already transferred: cloud-managed (the AD groups of the same names remain).
            SyncedRecipient(g.id, ids.guid(g.id), g.name, _local(g.address), g.address, False)
            for g in org.transferred_groups
        ]
        hybrid.mail_contacts = [
            SyncedRecipient(c.id, ids.guid(c.id), c.name, f"partner{i:03d}", c.address, True)
            for i, c in enumerate(org.contacts_without_soa, 1)
        ]
        hybrid.service_principals = [
            ServicePrincipal(
                ids.object_id("sp-exchange-online"),
                EXCHANGE_ONLINE_APP_ID,
                EXCHANGE_ONLINE_SP_NAME,
                MICROSOFT_TENANT,
                [EXCHANGE_ONLINE_APP_ID, "https://outlook.office365.com/"],
                [
                    _key_credential(org.oauth_key_id, org.oauth_cert_thumbprint, OAUTH_KEY_NAME),
                    # An unrelated key that a cleanup must leave in place.
                    _key_credential(
                        ids.object_id("sp-other-key"),
                        hashlib.sha1(f"exwb:{spec.seed}:other-key".encode()).hexdigest(),
                        "CN=Exchange Online Partner Signing",
                    ),
                ],
            ),
            ServicePrincipal(
                ids.object_id("sp-hybrid-agent"),
                org.hybrid_app_id,
                f"Exchange Hybrid Agent - {org.hcw_id}",
                tenant_id_for(spec),
                [org.hybrid_app_id],
                [],
            ),
        ]
        return hybrid

    def _add_stale(self, spec: TenantSpec, org: ExchangeOrg, ids: _Ids, domains: list[str]) -> None:
        """Stale objects alternate: a legacy outbound connector, then a transport rule (which
        alternates between routing through the HCW connector and redirecting on-premises)."""
        connectors = rules = 0
        for i in range(spec.stale_cloud_objects):
            if i % 2 == 0:
                domain = domains[connectors % len(domains)]
                n = connectors // len(domains)
                name = f"Outbound to {domain} relay (legacy)" + (f" {n + 1}" if n else "")
                self.outbound_connectors.append(
                    OutboundConnector(
                        name,
                        ids.guid(f"stale-connector-{connectors}"),
                        [org.mail_host],
                        [],
                        org.mail_host,
                        connector_source="AdminUI",
                        is_transport_rule_scoped=True,
                        comment="Scan-to-mail relay through the on-premises server.",
                    )
                )
                connectors += 1
                continue
            route = rules % 2 == 0
            bases = _ROUTE_RULES if route else _REDIRECT_RULES
            j = rules // 2
            name = bases[j % len(bases)] + (f" ({j // len(bases) + 1})" if j >= len(bases) else "")
            guid = ids.guid(f"stale-rule-{rules}")
            priority = len(self.transport_rules)
            if route:
                rule = TransportRule(
                    name,
                    guid,
                    priority,
                    "If the message is sent to a recipient whose domain is 'fabrikam.example', "
                    f"use the following connector: '{org.outbound_connector}'.",
                    route_message_outbound_connector=org.outbound_connector,
                    recipient_domain_is=["fabrikam.example"],
                )
            else:
                target = f"scanner@{org.mail_host}"
                rule = TransportRule(
                    name,
                    guid,
                    priority,
                    f"If the message is sent to 'scan@{spec.domain}', redirect the message to "
                    f"'{target}'.",
                    redirect_message_to=[target],
                )
            self.transport_rules.append(rule)
            rules += 1

    # ------------------------------------------------------------------ persistence
    def to_json(self) -> dict[str, Any]:
        """The whole state as plain JSON data (a deep copy)."""
        data: dict[str, Any] = {"version": JSON_VERSION}
        for kind in KINDS:
            data[kind] = [asdict(o) for o in getattr(self, kind)]
        data["public_folders_enabled"] = self.public_folders_enabled
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | str) -> HybridCloud:
        """Rebuild from `to_json()` output (a dict, or its JSON text); ValueError if malformed."""
        raw = json.loads(data) if isinstance(data, str) else data
        if not isinstance(raw, Mapping) or raw.get("version") != JSON_VERSION:
            raise ValueError(f"hybrid cloud state: expected a version {JSON_VERSION} object")
        public_folders = raw.get("public_folders_enabled", "Local")
        if public_folders not in PUBLIC_FOLDERS_ENABLED:
            raise ValueError(f"hybrid cloud state: bad public_folders_enabled {public_folders!r}")
        out = cls(public_folders_enabled=public_folders)
        for kind, type_ in KINDS.items():
            try:
                items = [type_(**copy.deepcopy(dict(d))) for d in raw.get(kind, [])]
            except (TypeError, ValueError) as e:  # a missing, unknown or non-object entry
                raise ValueError(f"hybrid cloud state: bad {kind} entry: {e}") from None
            setattr(out, kind, items)
        return out

    # ------------------------------------------------------------------ reads
    def all(self, kind: str) -> list[Any]:
        """The objects of one kind (a copy of the list, in order)."""
        return list(getattr(self, kind))

    def find(self, kind: str, identity: str) -> Any:
        """An object by name, GUID or (recipients) alias, address or object id; case-insensitive.

        Raises HybridNotFound."""
        key = identity.strip().casefold()
        for o in self._objects(kind):
            if key in _identities(o):
                return o
        raise HybridNotFound(kind, identity)

    def rules_routing_through(self, connector: str) -> list[TransportRule]:
        key = connector.casefold()
        return [
            r
            for r in self.transport_rules
            if (r.route_message_outbound_connector or "").casefold() == key
        ]

    # ------------------------------------------------------------------ changes
    def remove(self, kind: str, identity: str) -> Any:
        """Remove one object; an outbound connector a transport rule routes through is refused
        (HybridInUse). Removing a transport rule renumbers the priorities after it."""
        o = self.find(kind, identity)
        if kind == "outbound_connectors":
            users = self.rules_routing_through(o.name)
            if users:
                raise HybridInUse(o.name, [r.name for r in users])
        getattr(self, kind).remove(o)
        if kind == "transport_rules":
            for i, r in enumerate(self.transport_rules):
                r.priority = i
        if kind == "hybrid_applications":
            # The application's service principal goes with it.
            self.service_principals = [
                sp for sp in self.service_principals if sp.app_id.casefold() != o.app_id.casefold()
            ]
        self._changed()
        return o

    def set_enabled(self, kind: str, identity: str, enabled: bool) -> bool:
        """Enable or disable one object; False when it already was."""
        o = self.find(kind, identity)
        if o.enabled == enabled:
            return False
        o.enabled = enabled
        self._changed()
        return True

    def set_public_folders_enabled(self, value: str) -> bool:
        if value not in PUBLIC_FOLDERS_ENABLED:
            raise ValueError(f"PublicFoldersEnabled must be one of {PUBLIC_FOLDERS_ENABLED}")
        if value == self.public_folders_enabled:
            return False
        self.public_folders_enabled = value
        self._changed()
        return True

    def set_cloud_managed(self, kind: str, object_id: str, cloud_managed: bool) -> bool:
        """The SOA transfer of a group or contact (by object id): IsDirSynced = not managed."""
        o = self.recipient_by_id(kind, object_id)
        if o.is_dir_synced == (not cloud_managed):
            return False
        o.is_dir_synced = not cloud_managed
        self._changed()
        return True

    def recipient_by_id(self, kind: str, object_id: str) -> SyncedRecipient:
        key = object_id.strip().casefold()
        for o in self._objects(kind):
            if o.id.casefold() == key:
                return o
        raise HybridNotFound(kind, object_id)

    def service_principal(self, key: str, *, by_app_id: bool = False) -> ServicePrincipal:
        k = key.strip().casefold()
        for sp in self.service_principals:
            if (sp.app_id if by_app_id else sp.id).casefold() == k:
                return sp
        raise HybridNotFound("service_principals", key)

    def set_key_credentials(self, sp_id: str, credentials: list[dict[str, Any]]) -> bool:
        """Replace a principal's keyCredentials (validated by the caller)."""
        sp = self.service_principal(sp_id)
        if sp.key_credentials == credentials:
            return False
        sp.key_credentials = copy.deepcopy(credentials)
        self._changed()
        return True

    # ------------------------------------------------------------------ helpers
    def _objects(self, kind: str) -> Iterator[Any]:
        if kind not in KINDS:
            raise KeyError(kind)
        return iter(getattr(self, kind))

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()


# ---------------------------------------------------------------------- helpers
class _Ids:
    """Stable GUIDs per spec, in a namespace of their own (ExchangeOrg's ids stay distinct)."""

    def __init__(self, spec: TenantSpec) -> None:
        self.prefix = f"exwb:{spec.seed}:{spec.domain}:cloud"

    def guid(self, what: str) -> str:
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{self.prefix}:guid:{what}"))

    def object_id(self, what: str) -> str:
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{self.prefix}:object:{what}"))


def _key_credential(key_id: str, thumbprint: str, display_name: str) -> dict[str, Any]:
    """A certificate key as Graph lists it: customKeyIdentifier is the thumbprint's bytes."""
    return {
        "customKeyIdentifier": thumbprint_identifier(thumbprint),
        "displayName": display_name,
        "endDateTime": _KEY_DATES[1],
        "key": None,
        "keyId": key_id,
        "startDateTime": _KEY_DATES[0],
        "type": "AsymmetricX509Cert",
        "usage": "Verify",
    }


def thumbprint_identifier(thumbprint: str) -> str:
    """customKeyIdentifier of the certificate with this (hex) thumbprint."""
    return base64.b64encode(bytes.fromhex(thumbprint)).decode("ascii")


def _identities(o: Any) -> set[str]:
    keys = {o.name.casefold(), getattr(o, "guid", o.name).casefold()}
    if isinstance(o, SyncedRecipient):
        keys |= {o.id.casefold(), o.alias.casefold(), o.address.casefold()}
    return keys


def _local(address: str) -> str:
    return address.partition("@")[0]


def _copy(values: list[str] | None) -> list[str] | None:
    return None if values is None else list(values)
