"""The directory schema: every attribute the fake AD knows, with AD's syntax and limits.

Values are stored as the bytes a client sends and receives. `AttributeType.key` turns a value
into its comparison key (what equality, ordering and the indexes use): case-folded text for
AD's case-insensitive string syntaxes, a normalised DN for DN syntax, an int for integers, the
raw bytes for octet strings. Sizes follow the AD / Exchange schema (rangeUpper) where known.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import Enum
from typing import Final

from harness.core.dn import InvalidDN, normalize_dn


class Syntax(Enum):
    """AD attribute syntaxes (attributeSyntax OIDs 2.5.5.x) the fake uses."""

    STRING = "2.5.5.12"  # Unicode string, case-insensitive
    DN = "2.5.5.1"
    OID = "2.5.5.2"  # objectClass values: case-insensitive names
    BOOLEAN = "2.5.5.8"
    INTEGER = "2.5.5.9"  # 32-bit
    OCTETS = "2.5.5.10"
    TIME = "2.5.5.11"  # GeneralizedTime
    LARGE_INTEGER = "2.5.5.16"  # 64-bit


class InvalidValue(ValueError):
    """A value that does not fit its attribute's syntax."""


_INT32 = (-(2**31), 2**31 - 1)
_INT64 = (-(2**63), 2**63 - 1)


@dataclass(frozen=True, slots=True)
class AttributeType:
    name: str  # canonical lDAPDisplayName
    syntax: Syntax
    single: bool = True
    range_upper: int | None = None  # characters for strings, bytes for octets
    system_only: bool = False  # only the directory itself writes it
    operational: bool = False  # returned only when asked for by name (or '+')
    indexed: bool = False  # equality index kept by the store
    ordered: bool = False  # ordered index (range queries)
    # In AD's ANR attribute set (searchFlags fANR, [MS-ADTS] 3.1.1.3.1.3.4): what (anr=...)
    # searches. AD indexes each of them (fATTINDEX), and so does the store.
    anr: bool = False

    def key(self, value: bytes) -> object:
        """Comparison key of one value; raises InvalidValue when it does not parse."""
        s = self.syntax
        if s is Syntax.OCTETS:
            return value
        try:
            text = value.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidValue(f"{self.name}: value is not UTF-8") from None
        if s is Syntax.STRING or s is Syntax.OID:
            return text.casefold()
        if s is Syntax.INTEGER or s is Syntax.LARGE_INTEGER:
            try:
                n = int(text, 10)
            except ValueError:
                raise InvalidValue(f"{self.name}: {text!r} is not an integer") from None
            lo, hi = _INT32 if s is Syntax.INTEGER else _INT64
            if not lo <= n <= hi:
                raise InvalidValue(f"{self.name}: {n} is out of range")
            return n
        if s is Syntax.BOOLEAN:
            up = text.upper()
            if up not in ("TRUE", "FALSE"):
                raise InvalidValue(f"{self.name}: {text!r} is not TRUE or FALSE")
            return up
        if s is Syntax.DN:
            try:
                return normalize_dn(text)
            except InvalidDN as e:
                raise InvalidValue(f"{self.name}: {e}") from None
        return text  # TIME: GeneralizedTime strings order correctly as text

    def too_long(self, value: bytes) -> bool:
        if self.range_upper is None:
            return False
        size = len(value) if self.syntax is Syntax.OCTETS else len(value.decode("utf-8", "replace"))
        return size > self.range_upper

    @property
    def equality_indexed(self) -> bool:
        """The store keeps an equality index of it: the `indexed` attributes from the start,
        the rest of the ANR set from its first use."""
        return self.indexed or self.anr

    @property
    def prefix_indexed(self) -> bool:
        """The store can also list its keys by initial substring (`Store.prefix`): the
        case-insensitive text attributes among the equality-indexed ones."""
        return self.equality_indexed and self.syntax is Syntax.STRING


def _attrs() -> list[AttributeType]:
    S, D, OID, B, INT, X, T, L = (
        Syntax.STRING, Syntax.DN, Syntax.OID, Syntax.BOOLEAN, Syntax.INTEGER, Syntax.OCTETS,
        Syntax.TIME, Syntax.LARGE_INTEGER,
    )  # fmt: skip
    a = AttributeType
    out = [
        a("objectClass", OID, single=False, indexed=True),
        a("objectCategory", D, indexed=True),
        a("distinguishedName", D, system_only=True),
        a("name", S, range_upper=255, system_only=True, anr=True),
        a("cn", S, range_upper=64),
        a("ou", S, range_upper=64),
        a("dc", S, range_upper=255),
        a("sn", S, range_upper=64, anr=True),
        a("givenName", S, range_upper=64, anr=True),
        a("initials", S, range_upper=6),
        a("displayName", S, range_upper=256, anr=True),
        a("description", S, range_upper=1024),
        a("department", S, range_upper=64),
        a("company", S, range_upper=64),
        a("title", S, range_upper=128),
        a("physicalDeliveryOfficeName", S, range_upper=128, anr=True),
        a("telephoneNumber", S, range_upper=64),
        # Linked attributes ([MS-ADTS] 3.1.1.1.6): the directory keeps each back link
        # (system-only) from the forward links that name the object.
        a("manager", D),
        a("directReports", D, single=False, system_only=True),
        a("member", D, single=False, indexed=True),
        a("memberOf", D, single=False, system_only=True, indexed=True),
        a("sAMAccountName", S, range_upper=256, indexed=True, anr=True),
        a("userPrincipalName", S, range_upper=1024, indexed=True),
        a("objectGUID", X, range_upper=16, system_only=True, indexed=True),
        a("mS-DS-ConsistencyGuid", X, indexed=True),
        a("objectSid", X, range_upper=28, system_only=True, indexed=True),  # as AD indexes it
        # The SAM's view of a principal, stamped by the directory (harness.core.sid).
        a("sAMAccountType", INT, system_only=True, indexed=True),
        a("primaryGroupID", INT),
        a("groupType", INT),
        a("userAccountControl", INT),
        a("pwdLastSet", L),
        a("accountExpires", L),
        # Replicated logon time, updated once it is 14 - rand(5) days old ([MS-ADA1]); not
        # indexed here (AD indexes it: searches on it are ranges, which no index here serves).
        a("lastLogonTimestamp", L),
        a("whenCreated", T, system_only=True),
        a("whenChanged", T, system_only=True),
        a("uSNCreated", L, system_only=True),
        a("uSNChanged", L, system_only=True, indexed=True, ordered=True),
        a("createTimeStamp", T, system_only=True, operational=True),
        a("modifyTimeStamp", T, system_only=True, operational=True),
        a("lDAPAdminLimits", S, single=False),
        # Deletion ([MS-ADTS] 3.1.1.5.5): what a tombstone carries, and the flags of the
        # Deleted Objects container (6.1.1.4.2). The directory writes them.
        a("isDeleted", B, system_only=True),
        a("lastKnownParent", D, system_only=True),
        a("msDS-LastKnownRDN", S, range_upper=255, system_only=True),
        a("systemFlags", INT, system_only=True),
        a("isCriticalSystemObject", B, system_only=True),
        a("showInAdvancedViewOnly", B),
        a("mail", S, range_upper=256, indexed=True),
        # Exchange's schema update puts the alias in the ANR set (KB 243299: msExchMailNickname).
        a("mailNickname", S, range_upper=64, anr=True),
        a("proxyAddresses", S, single=False, range_upper=1123, indexed=True, anr=True),
        a("targetAddress", S, range_upper=1123),
        # Indexed by AD; here its index is made on first use, as the other ANR attributes'
        # are (a 200,000-user load holds 80,000 values, seldom searched).
        a("legacyExchangeDN", S, range_upper=2048, anr=True),
        a("homeMDB", D),
        a("msExchHomeServerName", S, range_upper=1024),
        a("msExchRecipientTypeDetails", L),
        a("msExchRecipientDisplayType", INT),
        a("msExchRemoteRecipientType", L),
        a("msExchHideFromAddressLists", B),
        # [MS-ADA2] 2.320: rangeUpper 256, searchFlags fATTINDEX (indexed). The writeback's
        # msDS-ExternalDirectoryObjectId match rule (harness/engine/anchor.py) relies on the index.
        a("msDS-ExternalDirectoryObjectId", S, range_upper=256, indexed=True),
        a("msExchVersion", L),
        a("msExchCurrentServerRoles", INT),
        a("serialNumber", S, single=False, range_upper=64),
        a("networkAddress", S, single=False, range_upper=256),
        a("serviceBindingInformation", S, single=False, range_upper=1024),
        a("keywords", S, single=False, range_upper=256),
        a("msExchCoexistenceOnPremisesSmartHost", S, range_upper=1024),
        a("msExchCoexistenceDomains", S, single=False, range_upper=1024),
        a("msExchCoexistenceFeatures", INT),
        a("msExchCoexistenceTransportServers", D, single=False),
        a("msExchCoexistenceSecureMailCertificateThumbprint", S, range_upper=1024),
        a("msExchCoexistenceExternalIPAddresses", S, single=False, range_upper=1024),
        # The Exchange organisation's configuration objects (names from Exchange's schema).
        a("msExchOwningServer", D),
        a("msExchServerSite", D),
        a("serviceDNSName", S, range_upper=256),
        a("serviceClassName", S, range_upper=256),
        a("msExchSmtpReceiveBindings", S, single=False, range_upper=1024),
        a("msExchSmtpReceiveRemoteIPRanges", S, single=False, range_upper=1024),
        a("msExchSmtpReceiveTlsDomainCapabilities", S, single=False, range_upper=1024),
        a("msExchSmtpReceiveFqdn", S, range_upper=256),
        a("msExchSmtpReceiveRole", INT),
        a("routingList", S, single=False, range_upper=1024),
        a("msExchSmtpSmartHost", S, range_upper=1024),
        a("msExchSmtpSmartHostType", INT),
        a("msExchSmtpOutboundSecurityFlag", INT),
        a("msExchSmtpSendTlsDomain", S, range_upper=256),
        a("msExchSourceBridgeheadServersDN", D, single=False),
        a("msExchFedOrgPrivCertificate", S, range_upper=1024),
        a("msExchFedApplicationURI", S, range_upper=1024),
        a("msExchFedTokenIssuerURI", S, range_upper=1024),
        a("msExchFedMetadataEPR", S, range_upper=1024),
        a("msExchFedIsEnabled", B),
        a("msExchFedDelegationTrust", D),
        a("msExchFedAccountNamespace", S, range_upper=256),
        a("msExchFedDomainNames", S, single=False, range_upper=256),
        a("msExchFedTargetApplicationURI", S, range_upper=1024),
        a("msExchFedTargetAutodiscoverEPR", S, range_upper=1024),
        a("msExchFedTargetSharingEPR", S, range_upper=1024),
        a("msExchFedEnabledActions", S, single=False, range_upper=1024),
        a("domainName", S, range_upper=256),
        a("msExchRoutingAcceptMessageType", INT),
        a("msExchAcceptedDomainName", S, range_upper=256),
        a("msExchAcceptedDomainFlags", INT),
        a("msExchAuthCertificateThumbprint", S, single=False, range_upper=256),
        a("msExchAuthIssuerName", S, range_upper=1024),
        a("msExchAuthMetadataUrl", S, range_upper=1024),
        a("msExchAuthRealm", S, range_upper=256),
        a("msExchAuthApplicationIdentifier", S, range_upper=256),
        a("msExchAuthAuthServerType", INT),
        a("msExchAuthFlags", INT),
        # Computer accounts.
        a("dNSHostName", S, range_upper=2048),
        a("operatingSystem", S, range_upper=256),
        a("operatingSystemVersion", S, range_upper=64),
        a("servicePrincipalName", S, single=False, range_upper=2048),
        # What every domain's own objects hold (mockservers/directory/domain.py): the
        # replication and system flags, the protected-account mark, the domain object's password
        # and lockout policy, group policy links, the DC's server object and NTDS settings.
        a("instanceType", INT, system_only=True),  # constructed unless stored (NC heads)
        a("systemFlags", INT, system_only=True),
        a("isCriticalSystemObject", B),
        a("showInAdvancedViewOnly", B),
        a("adminCount", INT),
        a("minPwdLength", INT),
        a("maxPwdAge", L),
        a("minPwdAge", L),
        a("pwdHistoryLength", INT),
        a("pwdProperties", INT),
        a("lockoutThreshold", INT),
        a("lockoutDuration", L),
        a("lockOutObservationWindow", L),
        a("forceLogoff", L),
        a("ms-DS-MachineAccountQuota", INT),
        a("msDS-Behavior-Version", INT, system_only=True),
        a("nTMixedDomain", INT),
        a("uASCompat", INT),
        a("serverState", INT),
        a("creationTime", L),
        a("fSMORoleOwner", D),
        # AD's syntax is DN-Binary (2.5.5.7, ``B:32:<guid>:<dn>``), which this schema does not
        # model: the values are kept and compared as text.
        a("wellKnownObjects", S, single=False, system_only=True),
        a("otherWellKnownObjects", S, single=False),
        a("gPLink", S),
        a("gPCFileSysPath", S),
        a("gPCFunctionalityVersion", INT),
        a("gPCMachineExtensionNames", S),
        a("gPCUserExtensionNames", S),
        a("versionNumber", INT),
        a("flags", INT),
        a("serverReference", D),
        a("serverReferenceBL", D, single=False, system_only=True),
        a("options", INT),
        a("dMDLocation", D),
        a("hasMasterNCs", D, single=False),
        a("msDS-HasDomainNCs", D),
    ]
    # Exchange custom attributes: rangeUpper 1024 for 1-10 and 2048 for 11-15 in the Exchange
    # schema (Graph documents 1024 for all fifteen).
    out += [
        a(f"extensionAttribute{i}", S, range_upper=1024 if i <= 10 else 2048) for i in range(1, 16)
    ]
    out += [
        a(f"msExchExtensionCustomAttribute{i}", S, single=False, range_upper=2048)
        for i in range(1, 6)
    ]
    return out


CLASS_NAMES: Final = (
        "top", "person", "organizationalPerson", "user", "inetOrgPerson", "group", "contact",
        "computer", "organizationalUnit", "container", "domain", "domainDNS", "configuration",
        "dMD", "classSchema", "attributeSchema", "msDS-GroupManagedServiceAccount",
        "queryPolicy", "msExchConfigurationContainer", "msExchOrganizationContainer",
        "msExchAdminGroupContainer", "msExchAdminGroup", "msExchServersContainer",
        "msExchExchangeServer", "msExchMDBContainer", "msExchPrivateMDB",
        "msExchCoexistenceRelationship", "msExchHybridConfiguration", "serviceConnectionPoint",
        "msExchContainer", "server", "msExchRoutingGroupContainer", "msExchRoutingGroup",
        "msExchConnectors", "msExchRoutingSMTPConnector", "msExchSmtpReceiveConnector",
        "msExchFedTrust", "msExchFedOrgId", "msExchFedSharingRelationship",
        "msExchIntraOrganizationConnector", "msExchDomainContentConfig", "msExchAcceptedDomain",
    "msExchAuthAuthConfig", "msExchAuthAuthServer", "msExchAuthPartnerApplication",
    "subSchema", "builtinDomain", "foreignSecurityPrincipal", "groupPolicyContainer",
    "infrastructureUpdate", "lostAndFound", "msDS-QuotaContainer", "sitesContainer", "site",
    "serversContainer", "applicationSettings", "nTDSDSA", "trustedDomain",
)  # fmt: skip
"""The object classes the fake AD knows, spelled as their lDAPDisplayNames."""
OBJECT_CLASSES: Final = frozenset(c.casefold() for c in CLASS_NAMES)


# defaultObjectCategory of the classes whose category is not their own name: AD resolves
# (objectCategory=user) to CN=Person, and stamps CN=Person on a new user.
_CATEGORY_NAMES: Final = {
    "user": "Person",
    "person": "Person",
    "organizationalperson": "Person",
    "inetorgperson": "Person",
    "contact": "Person",
    "organizationalunit": "Organizational-Unit",
    "domaindns": "Domain-DNS",
    "msds-groupmanagedserviceaccount": "ms-DS-Group-Managed-Service-Account",
    "builtindomain": "Builtin-Domain",
    "foreignsecurityprincipal": "Foreign-Security-Principal",
    "grouppolicycontainer": "Group-Policy-Container",
    "infrastructureupdate": "Infrastructure-Update",
    "lostandfound": "Lost-And-Found",
    "msds-quotacontainer": "ms-DS-Quota-Container",
    "sitescontainer": "Sites-Container",
    "serverscontainer": "Servers-Container",
    "applicationsettings": "Application-Settings",
    "ntdsdsa": "NTDS-DSA",
    "trusteddomain": "Trusted-Domain",
}


def default_category(class_name: str) -> str:
    """The CN of a class's defaultObjectCategory: ``user`` -> ``Person``, ``group`` -> ``Group``."""
    name = class_name.strip()
    return _CATEGORY_NAMES.get(name.casefold(), name[:1].upper() + name[1:])


@dataclass(slots=True)
class Schema:
    """Attribute types by case-insensitive name."""

    types: dict[str, AttributeType] = field(default_factory=dict)

    @classmethod
    def default(cls) -> Schema:
        return cls.of(_attrs())

    @classmethod
    def of(cls, attrs: Iterable[AttributeType]) -> Schema:
        return cls({t.name.casefold(): t for t in attrs})

    def get(self, name: str) -> AttributeType | None:
        """The attribute type called `name` (any case, `;options` ignored), or None."""
        return self.types.get(name.split(";", 1)[0].casefold())

    def require(self, name: str) -> AttributeType:
        """Like `get`, but an unknown name raises ValueError naming it."""
        t = self.get(name)
        if t is None:
            raise ValueError(f"{name} is not an attribute of the directory schema")
        return t

    def __iter__(self):
        return iter(self.types.values())

    def known_class(self, name: str) -> bool:
        return name.casefold() in OBJECT_CLASSES


DEFAULT_SCHEMA: Final = Schema.default()


# Linked attributes ([MS-ADTS] 3.1.1.1.6): each forward link and the back link the directory
# keeps on the objects it names. Back links are never written by clients (nor loaded: they are
# rebuilt from the forward links).
LINKS: Final = {
    "member": "memberOf",
    "manager": "directReports",
    "serverReference": "serverReferenceBL",
}
BACK_LINKS: Final = {back: forward for forward, back in LINKS.items()}
