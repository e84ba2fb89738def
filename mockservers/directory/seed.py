"""Building the fake AD's contents from a generated tenant.

Besides the tenant's domain partition (root, OUs, users), AD always has: the well-known
containers, the accounts the harness hands out (an admin, the writeback gMSA, a read-only
line-of-business account), and the configuration partition with the schema container, the LDAP
query policy and the Exchange organisation (server, database, hybrid configuration).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass

from harness.tenant.dn import (
    escape_rdn_value,
    normalize_dn,
    normalize_rdns,
    parse_dn,
    split_rdn,
)
from harness.tenant.ldif import directory_entries
from harness.tenant.model import Tenant
from harness.tenant.spec import TenantSpec
from mockservers.directory.acl import Role
from mockservers.directory.entry import Values
from mockservers.directory.store import Store

# Values shared by most entries are stored once (a tuple per distinct value set).
_INTERNED = frozenset(
    {
        "objectClass", "objectCategory", "userAccountControl", "msExchRecipientTypeDetails",
        "msExchRecipientDisplayType", "msExchRemoteRecipientType", "msExchHideFromAddressLists",
        "department", "homeMDB",
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
        if parent_ndn and parent_ndn not in self.store.entries and ndn != self.root_ndn:
            raise SeedError(f"the parent of {dn!r} does not exist (parents must come first)")
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

    def system(self, dn: str, classes: tuple[str, ...], **extra: str | list[str]) -> None:
        """An object AD always has; kept as loaded when the data already holds it."""
        if normalize_dn(dn) in self.store.entries:
            return
        attrs: dict[str, Values] = {"objectClass": tuple(c.encode() for c in classes)}
        for name, value in extra.items():
            values = value if isinstance(value, list) else [value]
            attrs[name] = tuple(v.encode("utf-8") for v in values)
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
        classes = ("top", "person", "organizationalPerson", "user")
        if acct.role is Role.WRITEBACK:
            classes = (*classes, "computer", "msDS-GroupManagedServiceAccount")
        cn = acct.dn.split(",", 1)[0][3:]
        load.system(acct.dn, classes, cn=cn, sAMAccountName=acct.sam,
                    userPrincipalName=f"{acct.sam.rstrip('$')}@{spec.domain}",
                    userAccountControl="66048" if acct.role is not Role.WRITEBACK else "4096",
                    objectCategory=f"CN=Person,{schema_nc}")  # fmt: skip
    _configuration(load, spec, config, schema_nc)
    store.add_naming_context(normalize_dn(config))
    store.add_naming_context(normalize_dn(schema_nc))
    store.finish_load()
    return Seeded(store, accounts, spec)


def _configuration(load: _Loader, spec: TenantSpec, config: str, schema_nc: str) -> None:
    s = load.system
    s(config, ("top", "configuration"), cn="Configuration")
    s(schema_nc, ("top", "dMD"), cn="Schema")
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
    exchange = f"CN=Microsoft Exchange,{services}"
    s(exchange, ("top", "container", "msExchConfigurationContainer"), cn="Microsoft Exchange")
    org = spec.exchange_org_dn
    s(org, ("top", "container", "msExchOrganizationContainer"), cn=spec.exchange_org)
    s(f"CN=Administrative Groups,{org}", ("top", "msExchAdminGroupContainer"),
      cn="Administrative Groups")  # fmt: skip
    ag = spec.admin_group_dn
    s(ag, ("top", "msExchAdminGroup"), cn="Exchange Administrative Group (FYDIBOHF23SPDLT)")
    s(f"CN=Servers,{ag}", ("top", "msExchServersContainer"), cn="Servers")
    server_fqdn = f"EX01.{spec.domain}"
    s(f"CN=EX01,CN=Servers,{ag}", ("top", "server", "msExchExchangeServer"), cn="EX01",
      serialNumber="Version 15.2 (Build 1748.10)", msExchCurrentServerRoles="16439",
      networkAddress=[f"ncacn_ip_tcp:{server_fqdn}", "netbios:EX01"])  # fmt: skip
    s(f"CN=Databases,{ag}", ("top", "msExchMDBContainer"), cn="Databases")
    s(spec.mailbox_database_dn, ("top", "msExchPrivateMDB"), cn="Mailbox Database 01")
    hybrid = f"CN=Hybrid Configuration,{org}"
    s(hybrid, ("top", "msExchContainer"), cn="Hybrid Configuration")
    s(f"CN=Hybrid Configuration,{hybrid}", ("top", "msExchCoexistenceRelationship"),
      cn="Hybrid Configuration", msExchCoexistenceOnPremisesSmartHost=f"mail.{spec.domain}",
      msExchCoexistenceDomains=[spec.domain, *spec.extra_domains],
      msExchCoexistenceFeatures="126")  # fmt: skip


# The defaults of AD's Default Query Policy (lDAPAdminLimits).
QUERY_POLICY = {
    "MaxPageSize": 1000,
    "MaxReceiveBuffer": 10485760,
    "MaxQueryDuration": 120,
    "MaxResultSetSize": 262144,
    "MaxValRange": 1500,
    "MaxConnections": 5000,
}
