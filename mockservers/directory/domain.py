"""The objects every AD domain holds from its first DC's promotion on, as Windows Server 2016
creates them.

Directory tools take them for granted: ldapdomaindump and msldap read the domain object's
password and lockout policy and look groups up by their well-known RIDs (Domain Admins is
``<domain>-512``), an account's tokenGroups holds ``S-1-5-32-545`` because Domain Users is in
BUILTIN\\Users, and clients find the Users container by its well-known GUID (``<WKGUID=...>``).
What is here ([MS-ADTS] 6.1.1 and 6.1.2, [MS-SAMR] 2.2.1.14 for the RIDs; Samba provisions the
same set, its ``setup/provision*.ldif``):

- the containers: ``CN=Builtin`` (builtinDomain, ``S-1-5-32``), ``CN=System`` with
  AdminSDHolder and the two default group policies, ``OU=Domain Controllers`` with the DC's
  computer account, ``CN=ForeignSecurityPrincipals`` with the well-known principals the
  built-in groups hold, LostAndFound, Infrastructure, NTDS Quotas, Program Data, Keys;
- the built-in groups (domain local, ``GROUP_TYPE_BUILTIN_LOCAL_GROUP``) and the domain's
  well-known accounts and groups in ``CN=Users`` with AD's RIDs (below 1000: a generated
  tenant's principals get theirs from 1104 up, `harness.core.sid.FIRST_RID`, and keep them);
- the DC's server object and NTDS Settings in the configuration partition's Sites container,
  which the rootDSE's serverName and dsServiceName name;
- the domain object's policy attributes, and its wellKnownObjects and otherWellKnownObjects,
  listing only the well-known objects the store holds.

Objects the loaded data already holds are kept as they are (`_Loader.system`); so are the
domain object's attributes it already has. Not created: the DNS groups (DnsAdmins,
DnsUpdateProxy: the fake DC runs no DNS server), the RID Manager and RID Set, the System
container's other service objects (DFS, DomainUpdates, ...), security descriptors.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final

from harness.core.dn import normalize_dn
from harness.core.sid import DomainSid, sid_binary

DC_NAME: Final = "DC01"  # the fake DC's NetBIOS name (rootDSE, NTLM's CHALLENGE, its account)
DC_RID: Final = 1000  # the first DC's account: the first RID the RID master hands out
DC_OS: Final = ("Windows Server 2016 Datacenter", "10.0 (14393)")
SITE: Final = "Default-First-Site-Name"

# [MS-ADTS] 2.2.12 groupType: account (global) 0x2, resource (domain local) 0x4, universal
# 0x8, builtin local 0x1, security enabled 0x80000000.
GLOBAL: Final = -2147483646
DOMAIN_LOCAL: Final = -2147483644
UNIVERSAL: Final = -2147483640
BUILTIN_LOCAL: Final = -2147483643
# [MS-ADTS] 2.2.10 systemFlags: FLAG_DISALLOW_DELETE | FLAG_DOMAIN_DISALLOW_RENAME |
# FLAG_DOMAIN_DISALLOW_MOVE, as dcpromo sets it on the domain's fixed objects.
FIXED: Final = "-1946157056"
# The two default group policy objects: the same GUIDs in every domain.
DEFAULT_DOMAIN_POLICY: Final = "{31B2F340-016D-11D2-945F-00C04FB984F9}"
DEFAULT_DC_POLICY: Final = "{6AC1786C-016F-11D2-945F-00C04fB984F9}"

# The domain object's password and lockout policy, as a new domain has it (the Default Domain
# Policy's values, [MS-ADA*] for each attribute): minimum length 7, history 24, maximum age 42
# days, minimum age 1 day, complexity on (pwdProperties 1), no lockout (threshold 0) with a 30
# minute duration and window; intervals in 100 ns units, negative. Also what Samba provisions.
DOMAIN_POLICY: Final = {
    "minPwdLength": "7",
    "pwdHistoryLength": "24",
    "maxPwdAge": "-36288000000000",
    "minPwdAge": "-864000000000",
    "pwdProperties": "1",
    "lockoutThreshold": "0",
    "lockoutDuration": "-18000000000",
    "lockOutObservationWindow": "-18000000000",
    "forceLogoff": "-9223372036854775808",
    "ms-DS-MachineAccountQuota": "10",
}


@dataclass(frozen=True, slots=True)
class WellKnown:
    """One well-known account or group: its RID (or built-in SID), container and what AD
    gives it."""

    cn: str
    rid: int  # a domain RID, or the built-in alias's RID under S-1-5-32
    group_type: int = 0  # 0: a user account
    builtin: bool = False
    admin_count: bool = False  # protected by AdminSDHolder ([MS-ADTS] 3.1.1.6.1.1)
    members: tuple[str, ...] = ()  # RDN paths below the base: "CN=Domain Users,CN=Users"
    user_account_control: int = 0
    primary_group: int = 0  # a user's, where it is not Domain Users
    description: str = ""


_USERS = "CN=Users"
_ADMIN = f"CN=Administrator,{_USERS}"


def _in_users(cn: str) -> str:
    return f"CN={cn},{_USERS}"


def _fsp(sid: str) -> str:
    return f"CN={sid},CN=ForeignSecurityPrincipals"


# The accounts and groups a 2016 DC's promotion creates ([MS-ADTS] 6.1.1.6, [MS-SAMR]
# 2.2.1.14 for the RIDs; members and adminCount as dcpromo sets them).
WELL_KNOWN: Final = (
    WellKnown("Administrator", 500, admin_count=True, user_account_control=66048,
              description="Built-in account for administering the computer/domain"),
    WellKnown("Guest", 501, user_account_control=66082, primary_group=514,
              description="Built-in account for guest access to the computer/domain"),
    WellKnown("krbtgt", 502, admin_count=True, user_account_control=514,
              description="Key Distribution Center Service Account"),
    WellKnown("DefaultAccount", 503, user_account_control=66082,
              description="A user account managed by the system."),
    WellKnown("Enterprise Read-only Domain Controllers", 498, UNIVERSAL),
    WellKnown("Domain Admins", 512, GLOBAL, admin_count=True, members=(_ADMIN,),
              description="Designated administrators of the domain"),
    WellKnown("Domain Users", 513, GLOBAL, description="All domain users"),
    WellKnown("Domain Guests", 514, GLOBAL, description="All domain guests"),
    WellKnown("Domain Computers", 515, GLOBAL,
              description="All workstations and servers joined to the domain"),
    WellKnown("Domain Controllers", 516, GLOBAL, admin_count=True,
              description="All domain controllers in the domain"),
    WellKnown("Cert Publishers", 517, DOMAIN_LOCAL),
    WellKnown("Schema Admins", 518, UNIVERSAL, admin_count=True, members=(_ADMIN,),
              description="Designated administrators of the schema"),
    WellKnown("Enterprise Admins", 519, UNIVERSAL, admin_count=True, members=(_ADMIN,),
              description="Designated administrators of the enterprise"),
    WellKnown("Group Policy Creator Owners", 520, GLOBAL, members=(_ADMIN,)),
    WellKnown("Read-only Domain Controllers", 521, GLOBAL, admin_count=True),
    WellKnown("Cloneable Domain Controllers", 522, GLOBAL),
    WellKnown("Protected Users", 525, GLOBAL),
    WellKnown("Key Admins", 526, GLOBAL, admin_count=True),
    WellKnown("Enterprise Key Admins", 527, UNIVERSAL, admin_count=True),
    WellKnown("RAS and IAS Servers", 553, DOMAIN_LOCAL),
    WellKnown("Allowed RODC Password Replication Group", 571, DOMAIN_LOCAL),
    WellKnown("Denied RODC Password Replication Group", 572, DOMAIN_LOCAL, members=tuple(
        _in_users(g) for g in (
            "Read-only Domain Controllers", "Group Policy Creator Owners", "Domain Admins",
            "Cert Publishers", "Enterprise Admins", "Schema Admins", "Domain Controllers",
            "krbtgt",
        ))),
    WellKnown("Administrators", 544, BUILTIN_LOCAL, builtin=True, admin_count=True,
              members=(_in_users("Domain Admins"), _in_users("Enterprise Admins"), _ADMIN)),
    WellKnown("Users", 545, BUILTIN_LOCAL, builtin=True, members=(
        _in_users("Domain Users"), _fsp("S-1-5-4"), _fsp("S-1-5-11"))),
    WellKnown("Guests", 546, BUILTIN_LOCAL, builtin=True,
              members=(_in_users("Domain Guests"), _in_users("Guest"))),
    WellKnown("Account Operators", 548, BUILTIN_LOCAL, builtin=True, admin_count=True),
    WellKnown("Server Operators", 549, BUILTIN_LOCAL, builtin=True, admin_count=True),
    WellKnown("Print Operators", 550, BUILTIN_LOCAL, builtin=True, admin_count=True),
    WellKnown("Backup Operators", 551, BUILTIN_LOCAL, builtin=True, admin_count=True),
    WellKnown("Replicator", 552, BUILTIN_LOCAL, builtin=True, admin_count=True),
    WellKnown("Pre-Windows 2000 Compatible Access", 554, BUILTIN_LOCAL, builtin=True,
              members=(_fsp("S-1-5-11"),)),
    WellKnown("Remote Desktop Users", 555, BUILTIN_LOCAL, builtin=True),
    WellKnown("Network Configuration Operators", 556, BUILTIN_LOCAL, builtin=True),
    WellKnown("Incoming Forest Trust Builders", 557, BUILTIN_LOCAL, builtin=True),
    WellKnown("Performance Monitor Users", 558, BUILTIN_LOCAL, builtin=True),
    WellKnown("Performance Log Users", 559, BUILTIN_LOCAL, builtin=True),
    WellKnown("Windows Authorization Access Group", 560, BUILTIN_LOCAL, builtin=True,
              members=(_fsp("S-1-5-9"),)),
    WellKnown("Terminal Server License Servers", 561, BUILTIN_LOCAL, builtin=True),
    WellKnown("Distributed COM Users", 562, BUILTIN_LOCAL, builtin=True),
    WellKnown("IIS_IUSRS", 568, BUILTIN_LOCAL, builtin=True, members=(_fsp("S-1-5-17"),)),
    WellKnown("Cryptographic Operators", 569, BUILTIN_LOCAL, builtin=True),
    WellKnown("Event Log Readers", 573, BUILTIN_LOCAL, builtin=True),
    WellKnown("Certificate Service DCOM Access", 574, BUILTIN_LOCAL, builtin=True),
    WellKnown("RDS Remote Access Servers", 575, BUILTIN_LOCAL, builtin=True),
    WellKnown("RDS Endpoint Servers", 576, BUILTIN_LOCAL, builtin=True),
    WellKnown("RDS Management Servers", 577, BUILTIN_LOCAL, builtin=True),
    WellKnown("Hyper-V Administrators", 578, BUILTIN_LOCAL, builtin=True),
    WellKnown("Access Control Assistance Operators", 579, BUILTIN_LOCAL, builtin=True),
    WellKnown("Remote Management Users", 580, BUILTIN_LOCAL, builtin=True),
    WellKnown("Storage Replica Administrators", 582, BUILTIN_LOCAL, builtin=True),
)  # fmt: skip

# The well-known security principals the built-in groups hold, as foreign security principals
# ([MS-DTYP] 2.4.2.4): Interactive, Enterprise Domain Controllers, Authenticated Users, IUSR.
FOREIGN_PRINCIPALS: Final = ("S-1-5-4", "S-1-5-9", "S-1-5-11", "S-1-5-17")

# [MS-ADTS] 6.1.1.4 and 7.1.1.4: the well-known objects and their GUIDs (GUID_*_CONTAINER_W),
# by the attribute of the naming context's head that lists them and the object's RDNs below
# that head. Listed only where the object exists.
WELL_KNOWN_GUIDS: Final = (
    ("wellKnownObjects", "A9D1CA15768811D1ADED00C04FD8D5CD", "CN=Users"),
    ("wellKnownObjects", "AA312825768811D1ADED00C04FD8D5CD", "CN=Computers"),
    ("wellKnownObjects", "AB1D30F3768811D1ADED00C04FD8D5CD", "CN=System"),
    ("wellKnownObjects", "A361B2FFFFD211D1AA4B00C04FD7D83A", "OU=Domain Controllers"),
    ("wellKnownObjects", "2FBAC1870ADE11D297C400C04FD8D5CD", "CN=Infrastructure"),
    ("wellKnownObjects", "18E2EA80684F11D2B9AA00C04F79F805", "CN=Deleted Objects"),
    ("wellKnownObjects", "AB8153B7768811D1ADED00C04FD8D5CD", "CN=LostAndFound"),
    ("wellKnownObjects", "22B70C67D56E4EFB91E9300FCA3DC1AA", "CN=ForeignSecurityPrincipals"),
    ("wellKnownObjects", "09460C08AE1E4A4EA0F64AEE7DAA1E5A", "CN=Program Data"),
    ("wellKnownObjects", "F4BE92A4C777485E878E9421D53087DB", "CN=Microsoft,CN=Program Data"),
    ("wellKnownObjects", "6227F0AF1FC2410D8E3BB10615BB5B0F", "CN=NTDS Quotas"),
    ("otherWellKnownObjects", "1EB93889E40C45DF9F0C64D23BBB6237", "CN=Managed Service Accounts"),
    ("otherWellKnownObjects", "683A24E2E8164BD3AF86AC3C2CF3F981", "CN=Keys"),
)
# The configuration partition's: its Deleted Objects, LostAndFoundConfig and NTDS Quotas.
CONFIG_WELL_KNOWN_GUIDS: Final = (
    ("wellKnownObjects", "18E2EA80684F11D2B9AA00C04F79F805", "CN=Deleted Objects"),
    ("wellKnownObjects", "AB8153B7768811D1ADED00C04FD8D5CD", "CN=LostAndFoundConfig"),
    ("wellKnownObjects", "6227F0AF1FC2410D8E3BB10615BB5B0F", "CN=NTDS Quotas"),
)

# instanceType ([MS-ADTS] 2.2.11, [MS-ADA1] Instance-Type): writable (4) on every object; a
# naming context's head adds IT_NC_HEAD (1), and IT_NC_ABOVE (8) where the DC also holds the
# partition above it (configuration below the domain, schema below configuration).
NC_HEAD: Final = b"5"
NC_HEAD_BELOW_NC: Final = b"13"

System = Callable[..., None]  # _Loader.system: (dn, classes, **attributes)


def domain_objects(system: System, base: str, domain: str, schema_nc: str) -> None:
    """The domain partition's fixed objects (parents before children)."""
    sid = DomainSid.of(base)

    def category(cn: str) -> str:
        return f"CN={cn},{schema_nc}"

    def container(rdn: str, cls: str = "container", cat: str = "Container", **extra: str) -> None:
        system(f"{rdn},{base}", ("top", cls), cn=rdn.split(",", 1)[0][3:],
               objectCategory=category(cat), **extra)  # fmt: skip

    critical = {"systemFlags": FIXED, "isCriticalSystemObject": "TRUE"}
    system(f"CN=Builtin,{base}", ("top", "builtinDomain"), cn="Builtin",
           objectSid=sid_binary("S-1-5-32"), objectCategory=category("Builtin-Domain"),
           **critical)  # fmt: skip
    container("CN=System", **critical)
    container("CN=AdminSDHolder,CN=System", **critical)
    container("CN=Policies,CN=System", **critical)
    for guid, name, extensions in (
        (DEFAULT_DOMAIN_POLICY, "Default Domain Policy", _DOMAIN_POLICY_EXTENSIONS),
        (DEFAULT_DC_POLICY, "Default Domain Controllers Policy", _DC_POLICY_EXTENSIONS),
    ):
        gpo = f"CN={guid},CN=Policies,CN=System"
        system(f"{gpo},{base}", ("top", "container", "groupPolicyContainer"), cn=guid,
               displayName=name, gPCFunctionalityVersion="2", versionNumber="0", flags="0",
               gPCFileSysPath=f"\\\\{domain}\\sysvol\\{domain}\\Policies\\{guid}",
               gPCMachineExtensionNames=extensions,
               objectCategory=category("Group-Policy-Container"), **critical)  # fmt: skip
        for part in ("User", "Machine"):
            container(f"CN={part},{gpo}", **critical)
    system(f"OU=Domain Controllers,{base}", ("top", "organizationalUnit"),
           ou="Domain Controllers", objectCategory=category("Organizational-Unit"),
           gPLink=gp_link(DEFAULT_DC_POLICY, base), **critical)  # fmt: skip
    container("CN=ForeignSecurityPrincipals", **critical)
    for fsp in FOREIGN_PRINCIPALS:
        system(f"CN={fsp},CN=ForeignSecurityPrincipals,{base}",
               ("top", "foreignSecurityPrincipal"), cn=fsp, objectSid=sid_binary(fsp),
               objectCategory=category("Foreign-Security-Principal"))  # fmt: skip
    container("CN=LostAndFound", "lostAndFound", "Lost-And-Found", **critical)
    container("CN=Infrastructure", "infrastructureUpdate", "Infrastructure-Update", **critical)
    container("CN=NTDS Quotas", "msDS-QuotaContainer", "ms-DS-Quota-Container",
              systemFlags="-2147483648", isCriticalSystemObject="TRUE")  # fmt: skip
    container("CN=Program Data")
    container("CN=Microsoft,CN=Program Data")
    container("CN=Keys")
    # The built-in groups first: a dump lists CN=Builtin's subtree before CN=Users' (the
    # store's walk), so back links rebuilt from a reloaded dump come in the same order.
    for w in sorted(WELL_KNOWN, key=lambda w: not w.builtin):
        _well_known(system, w, base, sid, category)
    host = f"{DC_NAME}.{domain}"
    system(dc_account_dn(base), ("top", "person", "organizationalPerson", "user", "computer"),
           cn=DC_NAME, sAMAccountName=f"{DC_NAME}$", objectSid=sid.binary(DC_RID),
           userAccountControl="532480",  # SERVER_TRUST_ACCOUNT | TRUSTED_FOR_DELEGATION
           dNSHostName=host, operatingSystem=DC_OS[0], operatingSystemVersion=DC_OS[1],
           servicePrincipalName=[f"HOST/{host}", f"HOST/{DC_NAME}", f"ldap/{host}",
                                 f"ldap/{host}/{domain}", f"ldap/{DC_NAME}",
                                 f"GC/{host}/{domain}"],
           isCriticalSystemObject="TRUE", objectCategory=category("Computer"))  # fmt: skip


def _well_known(
    system: System, w: WellKnown, base: str, sid: DomainSid, category: Callable[[str], str]
) -> None:
    extra: dict[str, str | bytes | list[str]] = {"sAMAccountName": w.cn}
    if w.description:
        extra["description"] = w.description
    if w.admin_count:
        extra["adminCount"] = "1"
    if w.members:
        extra["member"] = [f"{m},{base}" for m in w.members]
    if w.group_type:
        classes: tuple[str, ...] = ("top", "group")
        extra["groupType"] = str(w.group_type)
        extra["objectCategory"] = category("Group")
    else:
        classes = ("top", "person", "organizationalPerson", "user")
        extra["userAccountControl"] = str(w.user_account_control)
        extra["objectCategory"] = category("Person")
        if w.primary_group:
            extra["primaryGroupID"] = str(w.primary_group)
    if w.builtin:
        extra["systemFlags"] = FIXED
        dn, binary = f"CN={w.cn},CN=Builtin,{base}", sid_binary(f"S-1-5-32-{w.rid}")
    else:
        dn, binary = _in_users(w.cn) + f",{base}", sid.binary(w.rid)
    system(dn, classes, cn=w.cn, objectSid=binary, isCriticalSystemObject="TRUE", **extra)


def configuration_objects(system: System, base: str, domain: str, schema_nc: str) -> None:
    """The DC's site, server object and NTDS Settings in the configuration partition."""
    config = f"CN=Configuration,{base}"

    def category(cn: str) -> str:
        return f"CN={cn},{schema_nc}"

    sites = f"CN=Sites,{config}"
    system(sites, ("top", "sitesContainer"), cn="Sites", systemFlags="-2113929216",
           objectCategory=category("Sites-Container"))  # fmt: skip
    site = f"CN={SITE},{sites}"
    system(site, ("top", "site"), cn=SITE, systemFlags="33554432",
           objectCategory=category("Site"))  # fmt: skip
    servers = f"CN=Servers,{site}"
    system(servers, ("top", "serversContainer"), cn="Servers", systemFlags="33554432",
           objectCategory=category("Servers-Container"))  # fmt: skip
    server = server_dn(base)
    system(server, ("top", "server"), cn=DC_NAME, dNSHostName=f"{DC_NAME}.{domain}",
           serverReference=dc_account_dn(base), systemFlags="1375731712",
           objectCategory=category("Server"))  # fmt: skip
    system(f"CN=NTDS Settings,{server}", ("top", "applicationSettings", "nTDSDSA"),
           cn="NTDS Settings", options="1", dMDLocation=schema_nc,
           hasMasterNCs=[config, schema_nc, base], systemFlags="33554432",
           objectCategory=category("NTDS-DSA"), **{"msDS-HasDomainNCs": base})  # fmt: skip


def administrator(base: str) -> dict[str, str | bytes]:
    """What the domain's Administrator account holds besides what the harness gives it."""
    w = WELL_KNOWN[0]
    return {
        "objectSid": DomainSid.of(base).binary(w.rid),
        "adminCount": "1",
        "isCriticalSystemObject": "TRUE",
        "description": w.description,
    }


def dc_account_dn(base: str) -> str:
    return f"CN={DC_NAME},OU=Domain Controllers,{base}"


def server_dn(base: str) -> str:
    """The DC's server object: the rootDSE's serverName."""
    return f"CN={DC_NAME},CN=Servers,CN={SITE},CN=Sites,CN=Configuration,{base}"


def gp_link(policy: str, base: str) -> str:
    """A gPLink value naming one policy, enabled and not enforced ([MS-GPOL] 2.2.2)."""
    return f"[LDAP://CN={policy},CN=Policies,CN=System,{base};0]"


def domain_attributes(base: str, schema_nc: str) -> dict[str, bytes]:
    """What the domain object holds besides the loaded data's: its policy, its default group
    policy link, category and flags ([MS-ADTS] 6.1.1.1.x; msDS-Behavior-Version 7: Windows
    Server 2016, as the rootDSE's domainFunctionality)."""
    attrs = {
        **DOMAIN_POLICY,
        "objectCategory": f"CN=Domain-DNS,{schema_nc}",
        "gPLink": gp_link(DEFAULT_DOMAIN_POLICY, base),
        "instanceType": NC_HEAD.decode(),
        "systemFlags": FIXED,
        "isCriticalSystemObject": "TRUE",
        "msDS-Behavior-Version": "7",
        "nTMixedDomain": "0",
        "uASCompat": "1",
        "serverState": "1",
        "fSMORoleOwner": f"CN=NTDS Settings,{server_dn(base)}",
    }
    return {name: value.encode("utf-8") for name, value in attrs.items()}


def well_known_values(
    table: tuple[tuple[str, str, str], ...], head: str, exists: Callable[[str], bool]
) -> Mapping[str, tuple[bytes, ...]]:
    """wellKnownObjects / otherWellKnownObjects of the naming context `head`: a DN-Binary value
    ``B:32:<guid>:<dn>`` for each object of `table` that exists (`exists` takes an ndn)."""
    out: dict[str, list[bytes]] = {}
    for attr, guid, rdns in table:
        dn = f"{rdns},{head}"
        if exists(normalize_dn(dn)):
            out.setdefault(attr, []).append(f"B:32:{guid}:{dn}".encode())
    return {attr: tuple(values) for attr, values in out.items()}


# gPCMachineExtensionNames of the two default policies (the client-side extensions their
# settings use: security, EFS recovery and registry for the domain's; security for the DC's).
_DOMAIN_POLICY_EXTENSIONS: Final = (
    "[{35378EAC-683F-11D2-A89A-00C04FBBCFA2}{53D6AB1B-2488-11D1-A28C-00C04FB94F17}]"
    "[{827D319E-6EAC-11D2-A4EA-00C04F79F83A}{803E14A0-B4FB-11D0-A0D0-00A0C90F574B}]"
    "[{B1BE8D72-6EAC-11D2-A4EA-00C04F79F83A}{53D6AB1B-2488-11D1-A28C-00C04FB94F17}]"
)
_DC_POLICY_EXTENSIONS: Final = (
    "[{827D319E-6EAC-11D2-A4EA-00C04F79F83A}{803E14A0-B4FB-11D0-A0D0-00A0C90F574B}]"
)
