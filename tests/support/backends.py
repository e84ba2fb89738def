"""The directories the directory and engine tests run on: the fake AD, OpenLDAP slapd and a
Samba AD DC.

Both hold the same entries. The fake is seeded from a tenant as `exwb serve` seeds it; slapd
loads the tenant's directory.ldif (written by `write_tenant`, as a user would) plus every entry
the fake adds on its own (the CN=Users, CN=Computers and CN=Managed Service Accounts
containers, the admin, writeback and reader accounts, the domain's fixed objects of
mockservers/directory/domain.py, the configuration partition), taken from
the fake's own seed so that the two cannot drift apart. The configuration and schema partitions
are databases of their own in slapd, as they are naming contexts of their own in AD.

Accounts and access line up: the admin is slapd's rootdn (its entry exists, as in AD); the
writeback gMSA may read everything and write only the GA writeback attributes of users under
OU=Corp; the reader may read everything; anonymous clients may read the rootDSE only.
`SlapdDirectory` offers what the tests use of the fake's `RunningTenant`: `endpoints` (the
same `Endpoints`, same passwords) and `stop()`.

Samba (mockservers/reference_samba.py) is prepared once per tenant from the same entries (the
LDIF's and the fake's seed, less what a DC creates itself) and each directory is a copy of it on
a loopback address of its own. Its writeback account is delegated by ACEs on OU=Corp; its
passwords are its own (AD's complexity rule), carried in `SambaDirectory.endpoints`.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

import pytest

from harness.core.adschema import DEFAULT_SCHEMA, Syntax
from harness.core.dn import normalize_dn
from harness.core.endpoints import Endpoints
from harness.tenant.files import LDIF_NAME, write_tenant
from harness.tenant.ldif import directory_entries
from harness.tenant.model import Tenant
from mockservers.directory.acl import Role
from mockservers.directory.seed import seed_directory
from mockservers.directory.subschema import subschema_dn
from mockservers.reference_samba import (
    PreparedSamba,
    SambaInfo,
    prepare_tenant,
    running_samba,
    samba_available,
)
from mockservers.runtime import RunningTenant, endpoints_for
from tests.support.slapd import (
    MAX_PAGE_SIZE,
    Entry,
    SlapdInfo,
    running_slapd,
    slapd_available,
    ssha,
)

FAKE: Final = "fake"
SLAPD: Final = "slapd"
SAMBA: Final = "samba"
BACKENDS: Final = (FAKE, SLAPD, SAMBA)
SLAPD_MISSING: Final = "OpenLDAP slapd is not installed (apt-get install slapd ldap-utils)"
SAMBA_MISSING: Final = (
    "Samba AD DC is not installed (apt-get install samba samba-ad-dc samba-ad-provision"
    " samba-dsdb-modules ldb-tools)"
)

# Where AD (and so the fake) and slapd differ on purpose. Tests name one of these in their
# ad_only / ad_differs marker (tests/conftest.py refuses any other), and the README's "Fake AD vs
# OpenLDAP slapd" table has one row for each (tests/directory/test_backend_differences.py).
DIFFERENCES: Final = frozenset(
    {
        "AD diagnostic messages",
        "anonymous search result code",
        "rootDSE contents",
        "page size above MaxPageSize",
        "client size limit under paging",
        "security principal identity",
        "objectCategory shorthand",
        "in-chain matching rule",
        "dn-attributes matching",
        "standard matching rules in extensible filters",
        "approximate match",
        "integer assertions with leading zeros",
        "substrings on DN and binary attributes",
        "distinguishedName attribute",
        "DN spelling in results",
        "bind name forms",
        "single-valued and size constraints",
        "system-only attributes",
        "removing the RDN value",
        "USN and whenChanged maintenance",
        "objects stamped on add",
        "unknown objectClass on add",
        "wire errors",
        "the published schema",
        "class content and naming rules",
        "unique account names",
        "DN references",
        "unknown attribute on write",
        "linked attributes",
        "range retrieval",
        "alternative DN forms",
        "extended DN control",
        "ambiguous name resolution",
        "server-side sort",
        "tombstones",
        "DirSync",
        "change notification",
        "continuation references",
    }
)

# Where Samba answers otherwise than the fake. Tests name one of these in a samba_differs
# marker, and the README's "Fake AD vs Samba AD DC" table has one row for each, saying which
# side Windows AD takes and the source (tests/directory/test_backend_differences.py).
SAMBA_DIFFERENCES: Final = frozenset(
    {
        "page size above MaxPageSize",
        "client size limit",
        "undefined filter terms",
        "approximate match",
        "integer assertions with leading zeros",
        "dn-attributes matching",
        "standard matching rules in extensible filters",
        "diagnostic texts",
        "rootDSE contents",
        "matched DN",
        "WhoAmI",
        "all operational attributes (+)",
        "types only",
        "USNs of loaded objects",
        "DN spelling in results",
        "value checks on modify",
        "single-valued and size constraints",
        "wire errors",
        "user to inetOrgPerson",
        "the first naming check",
        "removing an account's required attribute",
        "a DN value naming no object",
        "a value range past the last value",
        "MaxValRange",
        "tokenGroups of a group",
        "NTLM through Sicily",
        "ANR on legacyExchangeDN",
        "ANR with other substrings",
        "a new superior by GUID",
        "the sort result control and reverse order",
        "a tombstone by its DN",
        "deleted and moved objects in notifications",
        "the search past MaxNotificationPerConn",
    }
)


def _require(available: bool, missing: str) -> None:
    if available:
        return
    if os.environ.get("CI"):
        pytest.fail(f"{missing}; CI is set, so this is an error, not a skip", pytrace=False)
    pytest.skip(missing)


def require_slapd() -> None:
    """Skip when slapd is absent; under CI (the CI variable set) fail instead.

    CI must exercise the slapd half of the suite: a silent skip would hide a broken image.
    """
    _require(slapd_available(), SLAPD_MISSING)


def require_samba() -> None:
    """Skip when the Samba AD DC is absent (or not runnable: its LDAP ports need root); under
    CI, fail instead."""
    _require(samba_available() and os.geteuid() == 0, SAMBA_MISSING + " (and run as root)")


@dataclass(frozen=True, slots=True)
class SlapdContent:
    """A tenant prepared for slapd: its LDIF, the fake's extra entries and their passwords."""

    ldif: Path
    base_dn: str
    domain_entries: list[Entry]
    partitions: dict[str, list[Entry]]  # suffix -> entries, most specific suffix first
    passwords: dict[Role, str]
    endpoints: Endpoints  # with a placeholder URL; `SlapdDirectory` fills in the real one


def _text_values(name: str, values: tuple[bytes, ...]) -> tuple[str | bytes, ...]:
    t = DEFAULT_SCHEMA.get(name)
    if t is not None and t.syntax is Syntax.OCTETS:
        return values
    return tuple(v.decode("utf-8") for v in values)


def slapd_content(tenant: Tenant, workdir: Path) -> SlapdContent:
    """Write the tenant's files into `workdir` and collect what slapd needs besides the LDIF."""
    write_tenant(tenant, workdir)
    passwords = {role: secrets.token_urlsafe(18) for role in Role}
    seeded = seed_directory(tenant, passwords)
    spec = tenant.spec
    config_ndn = normalize_dn(f"CN=Configuration,{spec.base_dn}")
    schema_ndn = normalize_dn(f"CN=Schema,CN=Configuration,{spec.base_dn}")
    in_ldif = {normalize_dn(dn) for dn, _ in directory_entries(tenant)}
    secrets_of = {
        normalize_dn(a.dn): a.password for a in seeded.accounts if a.role is not Role.ADMIN
    }
    domain: list[Entry] = []
    config: list[Entry] = []
    schema: list[Entry] = []
    subschema = normalize_dn(subschema_dn(f"CN=Schema,CN=Configuration,{spec.base_dn}"))
    for e in seeded.store.walk():
        if e.ndn in in_ldif or e.ndn == subschema:  # slapd publishes its own (cn=Subschema)
            continue
        attrs = [(name, _text_values(name, values)) for name, values in e.attrs.items()]
        if e.ndn in secrets_of:  # the admin is slapd's rootdn: its password is in slapd.conf
            attrs.append(("userPassword", (ssha(secrets_of[e.ndn]),)))
        if e.ndn == schema_ndn:
            # AD's dMD shares its name with X.500's dmd, which slapd knows: that one must have a
            # dmdName and may not have a cn. AD's schema container has a cn and no dmdName.
            attrs = [
                (n, ("top", "dMD", "extensibleObject") if n == "objectClass" else v)
                for n, v in attrs
            ]
            attrs.append(("dmdName", ("Schema",)))
        elif b"organizationalUnit" in e.attrs.get("objectClass", ()):
            # OpenLDAP's organizationalUnit (core.schema) holds none of AD's attributes
            # (objectCategory, gPLink, systemFlags of OU=Domain Controllers).
            attrs = [(n, (*v, "extensibleObject") if n == "objectClass" else v) for n, v in attrs]
        if e.ndn == schema_ndn or e.ndn.endswith("," + schema_ndn):
            schema.append((e.dn, attrs))
        elif e.ndn == config_ndn or e.ndn.endswith("," + config_ndn):
            config.append((e.dn, attrs))
        else:
            domain.append((e.dn, attrs))
    return SlapdContent(
        ldif=workdir / LDIF_NAME,
        base_dn=spec.base_dn,
        domain_entries=domain,
        partitions={schema[0][0]: schema, config[0][0]: config},
        passwords=passwords,
        endpoints=endpoints_for(seeded, "127.0.0.1", 0),
    )


@dataclass(slots=True)
class SlapdDirectory:
    """A running slapd with the fake's interface: `endpoints` and `stop()`."""

    endpoints: Endpoints
    info: SlapdInfo
    _stack: contextlib.ExitStack = field(repr=False)

    def stop(self) -> None:
        self._stack.close()

    def __repr__(self) -> str:  # short, and without the passwords (Hypothesis prints it)
        return f"SlapdDirectory({self.endpoints.ldap_url})"


def start_slapd(
    content: SlapdContent, *, max_page_size: int = MAX_PAGE_SIZE, durable: bool = False
) -> SlapdDirectory:
    """Start a fresh slapd holding `content`; the caller stops it.

    Not durable by default (``dbnosync``): a throwaway test directory needs no fsync.
    """
    with contextlib.ExitStack() as stack:
        info = stack.enter_context(
            running_slapd(
                content.ldif,
                content.base_dn,
                durable=durable,
                admin_password=content.passwords[Role.ADMIN],
                service_password=content.passwords[Role.WRITEBACK],
                entries=content.domain_entries,
                partitions=content.partitions,
                max_page_size=max_page_size,
            )
        )
        url = urlsplit(info.url)
        assert url.hostname and url.port
        endpoints = replace(
            content.endpoints, ldap_url=info.url, ldap_host=url.hostname, ldap_port=url.port
        )
        assert endpoints.admin_dn == info.admin_dn and endpoints.bind_dn == info.service_dn
        return SlapdDirectory(endpoints, info, stack.pop_all())


def samba_prepared(tenant: Tenant, workdir: Path) -> PreparedSamba:
    """A Samba domain holding the tenant (its LDIF's entries and the fake's seed), on disk."""
    return prepare_tenant(tenant, workdir / "samba")


@dataclass(slots=True)
class SambaDirectory:
    """A running Samba AD DC with the fake's interface: `endpoints` and `stop()`."""

    endpoints: Endpoints
    info: SambaInfo
    _stack: contextlib.ExitStack = field(repr=False)

    def stop(self) -> None:
        self._stack.close()

    def __repr__(self) -> str:
        return f"SambaDirectory({self.endpoints.ldap_url})"


def start_samba(prepared: PreparedSamba, endpoints: Endpoints) -> SambaDirectory:
    """Start a copy of `prepared`; `endpoints` (the fake's, for the same tenant) gets Samba's
    address and passwords. The caller stops it."""
    with contextlib.ExitStack() as stack:
        info = stack.enter_context(running_samba(prepared))
        ep = replace(
            endpoints,
            ldap_url=info.url,
            ldap_host=info.host,
            ldap_port=info.port,
            admin_dn=prepared.admin_dn,
            admin_password=prepared.admin_password,
            bind_dn=prepared.service_dn,
            bind_password=prepared.service_password,
            reader_dn=prepared.reader_dn,
            reader_password=prepared.reader_password,
        )
        return SambaDirectory(ep, info, stack.pop_all())


Directory = RunningTenant | SlapdDirectory | SambaDirectory


def backend_of(run: Any) -> str:
    """`SLAPD` for a `SlapdDirectory`, `SAMBA` for a `SambaDirectory`, else `FAKE`."""
    if isinstance(run, SlapdDirectory):
        return SLAPD
    return SAMBA if isinstance(run, SambaDirectory) else FAKE
