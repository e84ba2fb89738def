"""Building the fake AD's contents from a generated tenant.

Besides the tenant's domain partition (root, OUs, users), AD always has: the well-known
containers, the accounts the harness hands out (an admin, the writeback gMSA, a read-only
line-of-business account), and the configuration partition with the schema container, the LDAP
query policy and the Exchange organisation of `ExchangeOrg(spec)`: each server with its
protocols (Autodiscover SCP, receive connectors) and mailbox database, the HCW's send
connector, hybrid configuration, federation trust, federated organisation identifier and
organisation relationship, the intra-organisation connector, remote and accepted domains and
the OAuth configuration (auth servers, the Exchange Online partner application). The domain
partition gets Setup's arbitration mailboxes and the public folder mailboxes (disabled users in
CN=Users) and the computer accounts of the Exchange servers and the Entra Connect host.

A directory loaded from a dump (its configuration partition included) keeps the organisation it
holds: only a tenant's own data gets a fresh one.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

from harness.core.dn import (
    escape_rdn_value,
    normalize_dn,
    normalize_rdns,
    parse_dn,
    split_rdn,
)
from harness.core.gcpause import paused
from harness.core.sid import DomainSid
from harness.tenant.exchange_org import (
    ADMIN_GROUP,
    AUTODISCOVER_SCP_KEYWORD,
    BUILD_2019_CU14,
    EXCHANGE_ONLINE_APP_ID,
    FEDERATION_TRUST,
    ONPREM_IOC,
    ROUTING_GROUP,
    ExchangeOrg,
    tenant_id_for,
)
from harness.tenant.ldif import directory_entries
from harness.tenant.model import Tenant
from harness.tenant.spec import TenantSpec
from mockservers.directory.acl import Role
from mockservers.directory.domain import (
    CONFIG_WELL_KNOWN_GUIDS,
    NC_HEAD_BELOW_NC,
    WELL_KNOWN_GUIDS,
    administrator,
    configuration_objects,
    domain_attributes,
    domain_objects,
    well_known_values,
)
from mockservers.directory.entry import Values
from mockservers.directory.store import Store
from mockservers.directory.subschema import SUBSCHEMA_CLASS, subschema_dn
from mockservers.directory.tombstones import DELETED_OBJECTS, container_attributes, container_ndn

# Values shared by most entries are stored once (a tuple per distinct value set).
_INTERNED = frozenset(
    {
        "objectClass", "objectCategory", "userAccountControl", "msExchRecipientTypeDetails",
        "msExchRecipientDisplayType", "msExchRemoteRecipientType", "msExchHideFromAddressLists",
        "department", "homeMDB", "givenName", "sn", "extensionAttribute2",
        "extensionAttribute3", "extensionAttribute4", "extensionAttribute5",
        "msExchExtensionCustomAttribute1", "msExchExtensionCustomAttribute2",
        "msExchExtensionCustomAttribute3", "msExchExtensionCustomAttribute4",
        "msExchExtensionCustomAttribute5", "accountExpires",
    }
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Account:
    """A principal the harness hands out, with its password."""

    dn: str
    sam: str
    password: str
    role: Role


@dataclass(frozen=True, slots=True)
class Seeded:
    store: Store
    accounts: tuple[Account, ...]
    spec: TenantSpec

    def account(self, role: Role) -> Account:
        return next(a for a in self.accounts if a.role is role)


class SeedError(ValueError):
    """Directory contents that cannot be loaded; the message names the entry."""


class _Loader:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.interned: dict[tuple[str, Values], Values] = {}
        self.usn = 4000  # the objects a dcpromo creates come first
        self.parents: dict[str, str] = {}  # parent DN as written -> ndn
        self.root_ndn = ""  # the domain partition's root: the one entry without a parent
        self.domain_sid: DomainSid | None = None

    def add(self, dn: str, attrs: dict[str, Values]) -> None:
        for name in _INTERNED.intersection(attrs):
            key = (name, attrs[name])
            attrs[name] = self.interned.setdefault(key, attrs[name])
        head, parent_dn = split_rdn(dn)
        parent_ndn = self.parents.get(parent_dn)
        if parent_ndn is None:
            parent_ndn = normalize_dn(parent_dn) if parent_dn else ""
            self.parents[parent_dn] = parent_ndn
        # Only the first RDN needs normalising: the parent's key is known (4x faster at 200k).
        if not parent_ndn:
            ndn = normalize_dn(dn)
        elif "\\" in head or "+" in head:
            ndn = f"{normalize_rdns(parse_dn(head))},{parent_ndn}"
        else:  # nothing escaped: the value is plain text
            attr, _, value = head.partition("=")
            ndn = (
                f"{attr.strip().lower()}={escape_rdn_value(value.strip().casefold())},{parent_ndn}"
            )
        if ndn in self.store.entries:
            raise SeedError(f"entry {dn!r} appears twice")
        if (
            parent_ndn
            and parent_ndn not in self.store.entries
            and self.store.get_deleted(parent_ndn) is None  # a tombstone's container
            and ndn != self.root_ndn
        ):
            raise SeedError(f"the parent of {dn!r} does not exist (parents must come first)")
        if ndn == self.root_ndn and "objectSid" not in attrs and self.domain_sid is not None:
            attrs["objectSid"] = (self.domain_sid.binary(),)  # the domain object's own SID
        self.store.stamp_principal(attrs, loading=True)
        self.store.insert(dn, ndn, parent_ndn, attrs)

    def stamp(self, attrs: dict[str, Values]) -> None:
        """Give a directory-made object a GUID, timestamps and a USN where it has none."""
        if "uSNChanged" in attrs:
            return
        self.usn += 1
        usn = (str(self.usn).encode(),)
        attrs.setdefault("objectGUID", (secrets.token_bytes(16),))
        attrs.setdefault("whenCreated", (b"20150601120000.0Z",))
        attrs.setdefault("whenChanged", (b"20150601120000.0Z",))
        attrs.setdefault("uSNCreated", usn)
        attrs["uSNChanged"] = usn

    def system(self, dn: str, classes: tuple[str, ...], **extra: str | bytes | list[str]) -> None:
        """An object AD always has; kept as loaded when the data already holds it."""
        if normalize_dn(dn) in self.store.entries:
            return
        attrs: dict[str, Values] = {"objectClass": tuple(c.encode() for c in classes)}
        for name, value in extra.items():
            values = value if isinstance(value, list) else [value]
            attrs[name] = tuple(v if isinstance(v, bytes) else v.encode("utf-8") for v in values)
        self.stamp(attrs)
        self.add(dn, attrs)


Loaded = Iterator[tuple[str, dict[str, Values]]]


def seed_directory(tenant: Tenant, passwords: dict[Role, str] | None = None) -> Seeded:
    """A store holding `tenant` plus AD's fixed objects, and the accounts to bind with."""

    def entries() -> Loaded:
        for dn, attrs in directory_entries(tenant):
            yield (
                dn,
                {
                    n: tuple([v if v.__class__ is bytes else v.encode() for v in vals])  # type: ignore[union-attr]
                    for n, vals in attrs
                },
            )

    return seed_entries(tenant.spec, entries(), passwords)


# A load makes millions of acyclic objects (values, tuples, entries): the cyclic collector's
# full passes over them cost more than the load itself at 200,000 users with their groups.
@paused()
def seed_entries(
    spec: TenantSpec, entries: Loaded, passwords: dict[Role, str] | None = None
) -> Seeded:
    """Load `entries` (parents first, canonical attribute names), then add whatever of AD's
    fixed objects, harness accounts and configuration partition the data does not hold."""
    store = Store()
    base = spec.base_dn
    config = f"CN=Configuration,{base}"
    schema_nc = f"CN=Schema,{config}"
    store.schema_nc = schema_nc
    load = _Loader(store)
    load.root_ndn = normalize_dn(base)
    load.domain_sid = DomainSid.of(base)
    store.set_domain_sid(load.domain_sid)
    for dn, attrs in entries:
        load.stamp(attrs)
        load.add(dn, attrs)
    if normalize_dn(base) not in store.entries:
        raise SeedError(f"the data has no domain root {base!r}")

    for cn in ("Users", "Computers", "Managed Service Accounts"):
        load.system(f"CN={cn},{base}", ("top", "container"), cn=cn)
    pw = passwords or {}
    accounts = (
        Account(f"CN=Administrator,CN=Users,{base}", "Administrator",
                pw.get(Role.ADMIN) or secrets.token_urlsafe(18), Role.ADMIN),
        Account(f"CN=provAgentgMSA,CN=Managed Service Accounts,{base}", "provAgentgMSA$",
                pw.get(Role.WRITEBACK) or secrets.token_urlsafe(18), Role.WRITEBACK),
        Account(f"CN=svc-lob-reader,CN=Users,{base}", "svc-lob-reader",
                pw.get(Role.READER) or secrets.token_urlsafe(18), Role.READER),
    )  # fmt: skip
    for acct in accounts:
        classes: tuple[str, ...] = ("top", "person", "organizationalPerson", "user")
        if acct.role is Role.WRITEBACK:
            classes = (*classes, "computer", "msDS-GroupManagedServiceAccount")
        cn = acct.dn.split(",", 1)[0][3:]
        # The admin is the domain's own Administrator (RID 500, `domain.administrator`).
        extra = administrator(base) if acct.role is Role.ADMIN else {}
        load.system(acct.dn, classes, cn=cn, sAMAccountName=acct.sam,
                    userPrincipalName=f"{acct.sam.rstrip('$')}@{spec.domain}",
                    userAccountControl="66048" if acct.role is not Role.WRITEBACK else "4096",
                    objectCategory=f"CN=Person,{schema_nc}", **extra)  # fmt: skip
    domain_objects(load.system, base, spec.domain, schema_nc)
    # A dump of a running directory (`exwb serve --state-dir` snapshots, `--ldif` of a dump)
    # holds its configuration partition: its Exchange organisation is kept as it was, so what a
    # decommission removed does not come back. Only a tenant's own data gets a fresh one.
    fresh = normalize_dn(config) not in store.entries
    _configuration(load, spec, config, schema_nc, exchange=fresh)
    configuration_objects(load.system, base, spec.domain, schema_nc)
    if fresh:
        _exchange_recipients(load, ExchangeOrg(spec), schema_nc)
    store.add_naming_context(normalize_dn(config))
    store.add_naming_context(normalize_dn(schema_nc))
    # Each partition's Deleted Objects container, where deletes leave tombstones (tombstones.py).
    for nc in (base, config):
        if store.get_deleted(container_ndn(normalize_dn(nc))) is None:
            attrs = container_attributes()
            load.stamp(attrs)
            load.add(f"CN={DELETED_OBJECTS},{nc}", attrs)
    _naming_context_heads(store, base, config, schema_nc)
    store.finish_load()
    return Seeded(store, accounts, spec)


def _naming_context_heads(store: Store, base: str, config: str, schema_nc: str) -> None:
    """The attributes of the three partitions' heads that the loaded data lacks: the domain
    object's policy (`domain.domain_attributes`), each head's instanceType, and the
    well-known objects each lists, of those the store now holds."""

    def exists(ndn: str) -> bool:
        # Deleted Objects is a tombstone-side container, held apart from the live entries.
        return ndn in store.entries or store.get_deleted(ndn) is not None

    domain = dict(domain_attributes(base, schema_nc))
    domain_wk = well_known_values(WELL_KNOWN_GUIDS, base, exists)
    config_wk = well_known_values(CONFIG_WELL_KNOWN_GUIDS, config, exists)
    heads: tuple[tuple[str, dict[str, Values]], ...] = (
        (base, {**{n: (v,) for n, v in domain.items()}, **domain_wk}),
        (config, {"instanceType": (NC_HEAD_BELOW_NC,), **config_wk}),
        (schema_nc, {"instanceType": (NC_HEAD_BELOW_NC,)}),
    )
    for head, attrs in heads:
        store.add_missing(normalize_dn(head), attrs)


def _configuration(
    load: _Loader, spec: TenantSpec, config: str, schema_nc: str, exchange: bool = True
) -> None:
    s = load.system
    s(config, ("top", "configuration"), cn="Configuration")
    s(schema_nc, ("top", "dMD"), cn="Schema")
    # The subschema entry; its schema attributes are constructed by the server (subschema.py).
    s(subschema_dn(schema_nc), ("top", SUBSCHEMA_CLASS), cn="Aggregate")
    for cls in ("Person", "Group", "Organizational-Unit", "Container", "Computer"):
        s(f"CN={cls},{schema_nc}", ("top", "classSchema"), cn=cls)
    services = f"CN=Services,{config}"
    s(services, ("top", "container"), cn="Services")
    nt = f"CN=Windows NT,{services}"
    s(nt, ("top", "container"), cn="Windows NT")
    s(f"CN=Directory Service,{nt}", ("top", "container"), cn="Directory Service")
    policies = f"CN=Query-Policies,CN=Directory Service,{nt}"
    s(policies, ("top", "container"), cn="Query-Policies")
    s(f"CN=Default Query Policy,{policies}", ("top", "queryPolicy"), cn="Default Query Policy",
      lDAPAdminLimits=[f"{k}={v}" for k, v in QUERY_POLICY.items()])  # fmt: skip
    s(f"CN=Microsoft Exchange,{services}", ("top", "container", "msExchConfigurationContainer"),
      cn="Microsoft Exchange")  # fmt: skip
    if exchange:
        _exchange_organization(load, ExchangeOrg(spec))


def _exchange_organization(load: _Loader, org: ExchangeOrg) -> None:
    """The Exchange organisation in the configuration partition, as Exchange Setup and the
    Hybrid Configuration Wizard leave it (see harness/tenant/exchange_org.py for the names)."""
    s = load.system
    spec = org.spec
    o = org.org_dn
    s(o, ("top", "container", "msExchOrganizationContainer"), cn=org.name)
    s(f"CN=Administrative Groups,{o}", ("top", "msExchAdminGroupContainer"),
      cn="Administrative Groups")  # fmt: skip
    ag = org.admin_group_dn
    s(ag, ("top", "msExchAdminGroup"), cn=ADMIN_GROUP)
    s(f"CN=Servers,{ag}", ("top", "msExchServersContainer"), cn="Servers")
    s(f"CN=Databases,{ag}", ("top", "msExchMDBContainer"), cn="Databases")
    for server in org.servers:
        _exchange_server(load, org, server)
    rgs = f"CN=Routing Groups,{ag}"
    s(rgs, ("top", "msExchRoutingGroupContainer"), cn="Routing Groups")
    rg = f"CN={ROUTING_GROUP},{rgs}"
    s(rg, ("top", "msExchRoutingGroup"), cn=ROUTING_GROUP)
    connections = f"CN=Connections,{rg}"
    s(connections, ("top", "msExchConnectors"), cn="Connections")
    s(f"CN={escape_rdn_value(org.send_connector)},{connections}",
      ("top", "msExchRoutingSMTPConnector"), cn=org.send_connector,
      routingList=f"SMTP:{spec.routing_domain};1", msExchSmtpSmartHost=org.exo_mx,
      msExchSmtpSmartHostType="0", msExchSmtpOutboundSecurityFlag="64",
      msExchSmtpSendTlsDomain="mail.protection.outlook.com",
      msExchSourceBridgeheadServersDN=[org.server_dn(x) for x in org.servers])  # fmt: skip

    hybrid = f"CN=Hybrid Configuration,{o}"
    s(hybrid, ("top", "msExchContainer"), cn="Hybrid Configuration")
    s(f"CN=Hybrid Configuration,{hybrid}", ("top", "msExchCoexistenceRelationship"),
      cn="Hybrid Configuration", msExchCoexistenceOnPremisesSmartHost=org.mail_host,
      msExchCoexistenceDomains=[spec.domain, *spec.extra_domains],
      msExchCoexistenceTransportServers=[org.server_dn(org.last_server)],
      msExchCoexistenceSecureMailCertificateThumbprint=org.federation_cert_thumbprint,
      msExchCoexistenceFeatures="126")  # fmt: skip

    # Federation: the trust with the Microsoft Federation Gateway, the organisation identifier
    # that delegates to it, and the organisation relationship below that identifier.
    trusts = f"CN=Federation Trusts,{o}"
    s(trusts, ("top", "msExchContainer"), cn="Federation Trusts")
    trust_dn = f"CN={FEDERATION_TRUST},{trusts}"
    s(trust_dn, ("top", "msExchFedTrust"), cn=FEDERATION_TRUST,
      msExchFedOrgPrivCertificate=org.federation_cert_thumbprint,
      msExchFedApplicationURI=f"FYDIBOHF25SPDLT.{spec.domain}",
      msExchFedTokenIssuerURI="urn:federation:MicrosoftOnline",
      msExchFedMetadataEPR="https://nexus.microsoftonline-p.com/FederationMetadata/2006-12/"
      "FederationMetadata.xml")  # fmt: skip
    fed = f"CN=Federation,{o}"
    s(fed, ("top", "msExchFedOrgId"), cn="Federation", msExchFedIsEnabled="TRUE",
      msExchFedDelegationTrust=trust_dn,
      msExchFedAccountNamespace=f"FYDIBOHF25SPDLT.{spec.domain}")  # fmt: skip
    s(f"CN={escape_rdn_value(org.onprem_org_relationship)},{fed}",
      ("top", "msExchFedSharingRelationship"), cn=org.onprem_org_relationship,
      msExchFedIsEnabled="TRUE", msExchFedDomainNames=[spec.routing_domain],
      msExchFedTargetApplicationURI="outlook.com",
      msExchFedTargetAutodiscoverEPR="https://autodiscover-s.outlook.com/autodiscover/"
      "autodiscover.svc/WSSecurity",
      msExchFedTargetSharingEPR=org.target_sharing_epr,
      msExchFedEnabledActions=["MSExchange.SharingCalendarFreeBusyEnabled",
                               "MSExchange.MailboxMove", "MSExchange.DeliveryReportEnabled",
                               "MSExchange.MailTipsAccessEnabled"])  # fmt: skip
    iocs = f"CN=Intra Organization Connectors,{o}"
    s(iocs, ("top", "msExchContainer"), cn="Intra Organization Connectors")
    s(f"CN={ONPREM_IOC},{iocs}", ("top", "msExchIntraOrganizationConnector"), cn=ONPREM_IOC,
      msExchFedIsEnabled="TRUE", msExchFedDomainNames=[spec.routing_domain],
      msExchFedTargetAutodiscoverEPR="https://autodiscover-s.outlook.com/autodiscover/"
      "autodiscover.svc")  # fmt: skip

    globals_ = f"CN=Global Settings,{o}"
    s(globals_, ("top", "msExchContainer"), cn="Global Settings")
    formats = f"CN=Internet Message Formats,{globals_}"
    s(formats, ("top", "msExchContainer"), cn="Internet Message Formats")
    s(f"CN=Default,{formats}", ("top", "msExchDomainContentConfig"), cn="Default",
      domainName="*", msExchRoutingAcceptMessageType=str(REMOTE_DOMAIN_DEFAULT_FLAGS))  # fmt: skip
    for i, name in enumerate(org.hybrid_remote_domains):
        domain = name.removeprefix("Hybrid Domain - ")
        flags = REMOTE_DOMAIN_DEFAULT_FLAGS | (TARGET_DELIVERY_DOMAIN if i == 0 else 0)
        s(f"CN={escape_rdn_value(name)},{formats}", ("top", "msExchDomainContentConfig"),
          cn=name, domainName=domain, msExchRoutingAcceptMessageType=str(flags))  # fmt: skip
    transport = f"CN=Transport Settings,{o}"
    s(transport, ("top", "msExchContainer"), cn="Transport Settings")
    accepted = f"CN=Accepted Domains,{transport}"
    s(accepted, ("top", "msExchContainer"), cn="Accepted Domains")
    for domain in org.accepted_domains:
        flags = ACCEPTED_DOMAIN_DEFAULT if domain == spec.domain else 0  # all Authoritative
        s(
            f"CN={escape_rdn_value(domain)},{accepted}",
            ("top", "msExchAcceptedDomain"),
            cn=domain,
            msExchAcceptedDomainName=domain,
            msExchAcceptedDomainFlags=str(flags),
        )

    auth = f"CN=Auth Configuration,{o}"
    s(
        auth,
        ("top", "msExchAuthAuthConfig"),
        cn="Auth Configuration",
        msExchAuthCertificateThumbprint=org.oauth_cert_thumbprint,
    )
    servers = f"CN=Auth Servers,{auth}"
    s(servers, ("top", "msExchContainer"), cn="Auth Servers")
    tenant_id = tenant_id_for(spec)
    # msExchAuthAuthServerType: Exchange's AuthServerType enum (1 MicrosoftACS, 5 AzureAD).
    for name, issuer, url, kind in (
        (f"ACS - {spec.onmicrosoft_domain}", f"00000001-0000-0000-c000-000000000000@{tenant_id}",
         f"https://accounts.accesscontrol.windows.net/{tenant_id}/metadata/json/1", "1"),
        (f"EvoSts - {tenant_id}", f"https://sts.windows.net/{tenant_id}/",
         f"https://login.windows.net/{spec.onmicrosoft_domain}/federationmetadata/2007-06/"
         "federationmetadata.xml", "5"),
    ):  # fmt: skip
        s(f"CN={escape_rdn_value(name)},{servers}", ("top", "msExchAuthAuthServer"), cn=name,
          msExchAuthIssuerName=issuer, msExchAuthMetadataUrl=url, msExchAuthRealm=tenant_id,
          msExchAuthAuthServerType=kind, msExchAuthFlags="1")  # fmt: skip
    partners = f"CN=Partner Applications,{auth}"
    s(partners, ("top", "msExchContainer"), cn="Partner Applications")
    s(f"CN=Exchange Online,{partners}", ("top", "msExchAuthPartnerApplication"),
      cn="Exchange Online", msExchAuthApplicationIdentifier=EXCHANGE_ONLINE_APP_ID,
      msExchAuthFlags="3")  # enabled, use the auth server  # fmt: skip


def _exchange_server(load: _Loader, org: ExchangeOrg, server: str) -> None:
    """One Exchange 2019 Mailbox server: its object, protocols, connectors and database."""
    s = load.system
    spec = org.spec
    dn = org.server_dn(server)
    fqdn = org.server_fqdn(server)
    s(dn, ("top", "server", "msExchExchangeServer"), cn=server, serialNumber=BUILD_2019_CU14,
      msExchCurrentServerRoles="16439",  # Mailbox + Client Access (2016 and later)
      networkAddress=[f"ncacn_ip_tcp:{fqdn}", f"netbios:{server}"],
      msExchServerSite=f"CN=Default-First-Site-Name,CN=Sites,{_config_of(spec)}")  # fmt: skip
    protocols = f"CN=Protocols,{dn}"
    s(protocols, ("top", "container"), cn="Protocols")
    autodiscover = f"CN=Autodiscover,{protocols}"
    s(autodiscover, ("top", "container"), cn="Autodiscover")
    s(f"CN={server},{autodiscover}", ("top", "serviceConnectionPoint"),
      cn=server, keywords=[AUTODISCOVER_SCP_KEYWORD, "Site=Default-First-Site-Name"],
      serviceBindingInformation=f"https://autodiscover.{spec.domain}/Autodiscover/"
      "Autodiscover.xml", serviceDNSName=fqdn,
      serviceClassName="ms-Exchange-AutoDiscover-Service")  # fmt: skip
    smtp = f"CN=SMTP,{protocols}"
    s(smtp, ("top", "container"), cn="SMTP")
    receive = f"CN=SMTP Receive Connectors,{smtp}"
    s(receive, ("top", "container"), cn="SMTP Receive Connectors")
    anywhere = ["0.0.0.0-255.255.255.255", "::-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"]
    extra: dict[str, str | list[str]] = {}
    if server == org.last_server:
        extra["msExchSmtpReceiveTlsDomainCapabilities"] = (
            "mail.protection.outlook.com:AcceptCloudServicesMail"
        )
    s(f"CN=Default Frontend {server},{receive}", ("top", "msExchSmtpReceiveConnector"),
      cn=f"Default Frontend {server}", msExchSmtpReceiveBindings=["0.0.0.0:25", "[::]:25"],
      msExchSmtpReceiveRemoteIPRanges=anywhere, msExchSmtpReceiveFqdn=fqdn,
      msExchSmtpReceiveRole="32", **extra)  # fmt: skip
    s(f"CN=Client Frontend {server},{receive}", ("top", "msExchSmtpReceiveConnector"),
      cn=f"Client Frontend {server}", msExchSmtpReceiveBindings=["0.0.0.0:587", "[::]:587"],
      msExchSmtpReceiveRemoteIPRanges=anywhere, msExchSmtpReceiveFqdn=fqdn,
      msExchSmtpReceiveRole="32")  # fmt: skip
    if server == org.last_server and org.relay_clients:
        s(f"CN={org.relay_connector},{receive}", ("top", "msExchSmtpReceiveConnector"),
          cn=org.relay_connector, msExchSmtpReceiveBindings=["0.0.0.0:25"],
          msExchSmtpReceiveRemoteIPRanges=[c.ip for c in org.relay_clients],
          msExchSmtpReceiveFqdn=org.mail_host, msExchSmtpReceiveRole="32")  # fmt: skip
    db = org.database_dn(server)
    s(db, ("top", "msExchPrivateMDB"), cn=db.split(",", 1)[0][3:],
      msExchOwningServer=dn)  # fmt: skip


def _exchange_recipients(load: _Loader, org: ExchangeOrg, schema_nc: str) -> None:
    """Setup's arbitration and system mailboxes, public folder mailboxes (disabled accounts in
    CN=Users), and the computer accounts of the Exchange servers and the Entra Connect host."""
    spec = org.spec
    base = spec.base_dn
    db = org.database_dn(org.last_server)
    legacy_server = (
        f"/o={org.name}/ou={ADMIN_GROUP}/cn=Configuration/cn=Servers/cn={org.last_server}"
    )
    kinds = [(n, ARBITRATION if not n.startswith("Discovery") else DISCOVERY)
             for n in org.arbitration_mailboxes]  # fmt: skip
    kinds += [(n, PUBLIC_FOLDER) for n in org.public_folder_mailboxes]
    for name, kind in kinds:
        address = f"{name}@{spec.domain}"
        digest = hashlib.sha1(f"{spec.seed}:{name}".encode()).hexdigest()
        sam = "SM_" + digest[:17] if kind != PUBLIC_FOLDER else name
        load.system(f"CN={name},CN=Users,{base}", ("top", "person", "organizationalPerson", "user"),
                    cn=name, displayName=_SYSTEM_DISPLAY_NAMES.get(name.split("{")[0], name),
                    sAMAccountName=sam, userPrincipalName=address, mail=address,
                    mailNickname=name, proxyAddresses=f"SMTP:{address}",
                    userAccountControl="514",  # disabled: nobody signs in to these
                    homeMDB=db, msExchHomeServerName=legacy_server,
                    msExchRecipientTypeDetails=str(kind),
                    legacyExchangeDN=f"/o={org.name}/ou={ADMIN_GROUP}/cn=Recipients/cn={name}",
                    objectCategory=f"CN=Person,{schema_nc}")  # fmt: skip
    for host, os_name, version in [
        *((x, "Windows Server 2019 Datacenter", "10.0 (17763)") for x in org.servers),
        (org.sync_server, "Windows Server 2022 Datacenter", "10.0 (20348)"),
    ]:
        fqdn = org.server_fqdn(host)
        load.system(f"CN={host},CN=Computers,{base}",
                    ("top", "person", "organizationalPerson", "user", "computer"), cn=host,
                    sAMAccountName=f"{host}$", dNSHostName=fqdn, userAccountControl="4096",
                    operatingSystem=os_name, operatingSystemVersion=version,
                    servicePrincipalName=[f"HOST/{fqdn}", f"HOST/{host}"],
                    objectCategory=f"CN=Computer,{schema_nc}")  # fmt: skip


def _config_of(spec: TenantSpec) -> str:
    return f"CN=Configuration,{spec.base_dn}"


# msExchRecipientTypeDetails of Exchange's system mailboxes.
ARBITRATION: Final = 8388608  # ArbitrationMailbox
DISCOVERY: Final = 536870912  # DiscoveryMailbox
PUBLIC_FOLDER: Final = 68719476736  # PublicFolderMailbox
# msExchRoutingAcceptMessageType of a remote domain: Exchange's default (30: auto replies,
# auto forwards, delivery reports and NDRs allowed); TargetDeliveryDomain is bit 256.
REMOTE_DOMAIN_DEFAULT_FLAGS: Final = 30
TARGET_DELIVERY_DOMAIN: Final = 256
ACCEPTED_DOMAIN_DEFAULT: Final = 4  # msExchAcceptedDomainFlags: the default domain
_SYSTEM_DISPLAY_NAMES: Final = {
    "SystemMailbox": "Microsoft Exchange",
    "Migration.8f3e7716-2011-43e4-96b1-aba62d229136": "Microsoft Exchange Migration",
    "FederatedEmail.4c1f4d8b-8179-4148-93bf-00a95fa1e042": "Microsoft Exchange Federation Mailbox",
    "DiscoverySearchMailbox": "Discovery Search Mailbox",
    "PFMailbox1": "PFMailbox1",
}


# The defaults of AD's Default Query Policy (lDAPAdminLimits).
QUERY_POLICY = {
    "MaxPageSize": 1000,
    "MaxReceiveBuffer": 10485760,
    "MaxQueryDuration": 120,
    "MaxResultSetSize": 262144,
    "MaxValRange": 1500,
    "MaxConnections": 5000,
    "MaxNotificationPerConn": 5,
}
