"""An emulated Exchange Management Shell: Exchange's on-premises cmdlets over plain LDAP.

Exchange's cmdlets read and write the organisation's objects in AD's configuration partition
(and the mailbox attributes of users in the domain partition); `ExchangeShell` does the same
through the engine's LDAP client, bound as the account given (the AD admin, as Exchange's own
permissions would require). Cmdlets return PowerShell-shaped dicts with Exchange's property
names (always Identity, Name and DistinguishedName) and refuse with Exchange's exception names
and texts as `CmdletError`s: an unknown identity is ``ManagementObjectNotFoundException``, a
directory refusal (e.g. insufficientAccessRights for a read-only account) an
``ADOperationException`` naming the domain controller.

Where Exchange keeps a property as a bit of a flags attribute, so does this shell (Exchange's
schema classes, decompiled): remote domains' TargetDeliveryDomain is bit 256 of
msExchRoutingAcceptMessageType, auth servers' and partner applications' Enabled bit 0 of
msExchAuthFlags. What it does not model: cmdlets outside the decommission (Get-Recipient,
Set-Mailbox, ...), -WhatIf/-Confirm, pipelines, and Exchange's RBAC (the directory's ACL
decides).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Final

from harness.engine.ldapwire import (
    SERVER_DOWN,
    LdapConnection,
    LdapError,
    all_of,
    equal,
    present,
)
from harness.scenario.exo import CmdletError
from harness.tenant.dn import InvalidDN, escape_rdn_value, normalize_dn, parse_dn
from harness.tenant.exchange_org import EXCHANGE_ONLINE_APP_ID, FEDERATION_TRUST
from harness.tenant.spec import TenantSpec

NOT_FOUND: Final = "ManagementObjectNotFoundException"
AMBIGUOUS: Final = "ManagementObjectAmbiguousException"
AD_ERROR: Final = "ADOperationException"
INVALID_OPERATION: Final = "InvalidOperationException"
RECIPIENT_TASK: Final = "RecipientTaskException"

# msExchRecipientTypeDetails -> RecipientTypeDetails.
RECIPIENT_TYPES: Final = {
    1: "UserMailbox",
    2: "LinkedMailbox",
    4: "SharedMailbox",
    16: "RoomMailbox",
    32: "EquipmentMailbox",
    8388608: "ArbitrationMailbox",
    536870912: "DiscoveryMailbox",
    68719476736: "PublicFolderMailbox",
    549755813888: "MonitoringMailbox",
}
_SYSTEM_KINDS: Final = {"ArbitrationMailbox", "PublicFolderMailbox", "MonitoringMailbox"}
# What Disable-Mailbox clears from the user (those present): the user stays, the mailbox goes.
MAILBOX_ATTRIBUTES: Final = (
    "homeMDB", "msExchHomeServerName", "msExchRecipientTypeDetails",
    "msExchRecipientDisplayType", "mailNickname", "mail", "proxyAddresses", "legacyExchangeDN",
    "msExchHideFromAddressLists", "msExchVersion",
)  # fmt: skip
TARGET_DELIVERY_DOMAIN: Final = 256  # msExchRoutingAcceptMessageType bit
DEFAULT_ACCEPT_MESSAGE_TYPES: Final = 30  # Exchange's default for a new remote domain
_REMOTE_DOMAIN_BITS: Final = {
    "AutoReplyEnabled": 2, "AutoForwardEnabled": 4, "DeliveryReportEnabled": 8,
    "NDREnabled": 16, "IsInternal": 64,
}  # fmt: skip
_AUTH_SERVER_TYPES: Final = {1: "MicrosoftACS", 4: "ADFS", 5: "AzureAD"}
_DOMAIN_TYPES: Final = {0: "Authoritative", 1: "ExternalRelay", 2: "InternalRelay"}

Row = dict[str, Any]


@dataclass(frozen=True, slots=True)
class _Obj:
    """One directory object: its DN and text values by lower-cased attribute name."""

    dn: str
    attrs: dict[str, list[str]] = field(default_factory=dict)

    def one(self, name: str) -> str | None:
        values = self.attrs.get(name.lower())
        return values[0] if values else None

    def all(self, name: str) -> list[str]:
        return list(self.attrs.get(name.lower(), ()))

    def int(self, name: str, default: int = 0) -> int:
        v = self.one(name)
        try:
            return int(v) if v is not None else default
        except ValueError:
            return default

    def flag(self, name: str) -> bool:
        return (self.one(name) or "").upper() == "TRUE"

    @property
    def name(self) -> str:
        return self.one("cn") or _rdn_value(self.dn)


def _rdn_value(dn: str) -> str:
    try:
        return parse_dn(dn)[0][0][1]
    except (InvalidDN, IndexError):
        return dn


def _no_names(o: _Obj) -> tuple[str, ...]:
    return ()


def _truth(value: Any, param: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower().lstrip("$")
    if text in ("true", "1"):
        return True
    if text in ("false", "0"):
        return False
    raise CmdletError(
        400,
        "ParameterBindingException",
        f"Cannot process argument transformation on parameter '{param}'. Cannot convert value "
        f'"{value}" to type "System.Boolean".',
    )


_BOOLEAN_PARAMETERS: Final = frozenset(
    {
        "Enabled", "TargetDeliveryDomain", "Arbitration", "PublicFolder", "Confirm",
        "DisableLastArbitrationMailboxAllowed", "DisableArbitrationMailboxWithOABsAllowed",
        *_REMOTE_DOMAIN_BITS,
    }
)  # fmt: skip


class _Params:
    """A cmdlet's parameters: case-insensitive names, unknown names refused as PowerShell does."""

    def __init__(self, cmdlet: str, allowed: tuple[str, ...], given: dict[str, Any]) -> None:
        self.cmdlet = cmdlet
        names = {a.lower(): a for a in allowed}
        self.values: dict[str, Any] = {}
        for key, value in given.items():
            canonical = names.get(key.lower().lstrip("-"))
            if canonical is None:
                raise CmdletError(
                    400,
                    "ParameterBindingException",
                    f"A parameter cannot be found that matches parameter name '{key}'.",
                )
            if canonical in _BOOLEAN_PARAMETERS:  # bound before the cmdlet runs, as in PowerShell
                value = _truth(value, canonical)
            self.values[canonical] = value

    def has(self, name: str) -> bool:
        return name in self.values

    def get(self, name: str, default: Any = None) -> Any:
        return self.values.get(name, default)

    def switch(self, name: str) -> bool:
        return name in self.values and _truth(self.values[name], name)

    def required(self, name: str) -> Any:
        if name not in self.values:
            raise CmdletError(
                400,
                "ParameterBindingException",
                f"{self.cmdlet}: missing an argument for parameter '{name}'.",
            )
        return self.values[name]


_CMDLETS: dict[str, tuple[str, tuple[str, ...], Callable[..., list[Row]]]] = {}


def _cmdlet(name: str, *params: str) -> Callable[[Callable[..., list[Row]]], Any]:
    def register(fn: Callable[..., list[Row]]) -> Callable[..., list[Row]]:
        _CMDLETS[name.lower()] = (name, params, fn)
        return fn

    return register


def cmdlets() -> list[str]:
    """The names of the cmdlets the shell implements."""
    return sorted(name for name, _, _ in _CMDLETS.values())


class ExchangeShell:
    """An Exchange Management Shell session over LDAP; use as a context manager.

    `base` is the tenant's spec or its domain's base DN (``DC=contoso,DC=com``); the Exchange
    organisation is found under the configuration partition.
    """

    def __init__(
        self,
        ldap_url: str,
        bind_dn: str,
        password: str,
        base: TenantSpec | str,
        timeout: float = 30.0,
    ) -> None:
        self.ldap_url = ldap_url
        self.bind_dn = bind_dn
        self._password = password
        self.base_dn = base.base_dn if isinstance(base, TenantSpec) else base
        labels = [v for rdn in parse_dn(self.base_dn) for a, v in rdn if a.lower() == "dc"]
        self.domain = ".".join(labels).lower()
        self.config_dn = f"CN=Configuration,{self.base_dn}"
        self.timeout = timeout
        self.dc = f"DC01.{self.domain}"  # replaced by the rootDSE's dnsHostName when it has one
        self.org_dn = ""
        self.org_name = ""
        self._conn: LdapConnection | None = None
        self._db_servers: dict[str, str] = {}  # mailbox database ndn -> owning server

    @classmethod
    def from_endpoints(cls, endpoints: Any) -> ExchangeShell:
        """A session as the AD admin of an endpoints file (mockservers.runtime.Endpoints)."""
        return cls(
            endpoints.ldap_url, endpoints.admin_dn, endpoints.admin_password, endpoints.base_dn
        )

    # ------------------------------------------------------------------ session
    def open(self) -> ExchangeShell:
        try:
            conn = LdapConnection(self.ldap_url, self.timeout)
        except LdapError as e:
            raise self._ad_error(e) from None
        try:
            conn.bind(self.bind_dn, self._password)
        except LdapError as e:
            conn.close()
            if e.code == 49:
                raise CmdletError(
                    401,
                    "ADInvalidCredentialsException",
                    f"The supplied credential for '{self.bind_dn}' is invalid.",
                ) from None
            raise self._ad_error(e) from None
        self._conn = conn
        try:
            rows = list(conn.search("", "base", present("objectClass"), ["dnsHostName"], 0))
            host = rows[0][1].get("dnsHostName") if rows else None
            if host:
                self.dc = host[0].decode("utf-8", "replace")
            exchange = f"CN=Microsoft Exchange,CN=Services,{self.config_dn}"
            orgs = self._search(exchange, "one", "msExchOrganizationContainer", ["cn"])
        except (LdapError, CmdletError):
            self.close()
            raise
        if not orgs:
            self.close()
            raise CmdletError(
                400,
                "OrgContainerNotFoundException",
                f"The Exchange organization container wasn't found in Active Directory on "
                f"'{self.dc}'. Run Setup /PrepareAD to create it.",
            )
        self.org_dn, self.org_name = orgs[0].dn, orgs[0].name
        return self

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> ExchangeShell:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def invoke(self, cmdlet: str, **params: Any) -> list[Row]:
        """Run one cmdlet (name in any case) with PowerShell-style parameters."""
        entry = _CMDLETS.get(cmdlet.strip().lower())
        if entry is None:
            raise CmdletError(
                400,
                "CommandNotFoundException",
                f"The term '{cmdlet}' is not recognized as the name of a cmdlet, function, "
                "script file, or operable program.",
            )
        if self._conn is None:
            raise RuntimeError("ExchangeShell is not open: use it as a context manager")
        name, allowed, fn = entry
        return fn(self, _Params(name, allowed, params))

    # ------------------------------------------------------------------ LDAP
    @property
    def conn(self) -> LdapConnection:
        assert self._conn is not None
        return self._conn

    def _ad_error(self, e: LdapError, dn: str = "") -> CmdletError:
        if e.code == SERVER_DOWN:
            return CmdletError(
                503,
                "ADTransientException",
                f"Active Directory server {self.dc} is not available. Error message: {e.message}",
            )
        if e.code == 50:
            said = e.message.strip()  # AD's SecErr line; some servers send none
            return CmdletError(
                400,
                AD_ERROR,
                f"Active Directory operation failed on {self.dc}. This error is not retriable. "
                "Additional information: Insufficient access rights to perform the operation."
                + (f"\nActive directory response: {said}" if said else ""),
            )
        if e.code == 68:
            return CmdletError(
                400,
                "ADObjectAlreadyExistsException",
                f"Active Directory operation failed on {self.dc}. The object '{dn}' already "
                "exists.",
            )
        return CmdletError(
            400,
            AD_ERROR,
            f"Active Directory operation failed on {self.dc}. Additional information: "
            f"{e.message.strip()} (LDAP result {e.code})",
        )

    def not_found(self, identity: str) -> CmdletError:
        return CmdletError(
            400,
            NOT_FOUND,
            f"The operation couldn't be performed because object '{identity}' couldn't be "
            f"found on '{self.dc}'.",
        )

    def _search(
        self, base: str, scope: str, object_class: str | None, attrs: Iterable[str]
    ) -> list[_Obj]:
        flt = equal("objectClass", object_class) if object_class else present("objectClass")
        return self._query(base, scope, flt, attrs)

    def _query(self, base: str, scope: str, flt: bytes, attrs: Iterable[str]) -> list[_Obj]:
        try:
            rows = list(self.conn.search(base, scope, flt, ["cn", *attrs]))
        except LdapError as e:
            if e.code == 32:  # the container itself is gone: nothing of that kind
                return []
            raise self._ad_error(e) from None
        objs = [
            _Obj(dn, {k.lower(): [v.decode("utf-8", "replace") for v in vs] for k, vs in a.items()})
            for dn, a in rows
        ]
        # By name, as Exchange lists them: a directory's own order is no contract.
        return sorted(objs, key=lambda o: (o.name.casefold(), o.dn))

    def _modify(self, dn: str, changes: list[tuple[str, str, tuple[str, ...]]]) -> None:
        try:
            self.conn.modify(dn, changes)
        except LdapError as e:
            if e.code == 32:
                raise self.not_found(_rdn_value(dn)) from None
            raise self._ad_error(e, dn) from None

    def _delete(self, dn: str, identity: str) -> None:
        try:
            self.conn.delete(dn)
        except LdapError as e:
            if e.code == 32:
                raise self.not_found(identity) from None
            raise self._ad_error(e, dn) from None

    def _add(self, dn: str, attrs: dict[str, list[str]]) -> None:
        try:
            self.conn.add(dn, attrs)
        except LdapError as e:
            raise self._ad_error(e, dn) from None

    # ------------------------------------------------------------------ lookups
    def _org(self, object_class: str, attrs: Iterable[str], under: str = "") -> list[_Obj]:
        base = f"{under},{self.org_dn}" if under else self.org_dn
        return self._search(base, "sub", object_class, attrs)

    def _pick(
        self, objs: list[_Obj], identity: Any, extra: Callable[[_Obj], Iterable[str]] = _no_names
    ) -> _Obj:
        """The one object `identity` names (name, DN or another of its names)."""
        ident = str(identity).strip()
        key = ident.casefold()
        try:
            ndn = normalize_dn(ident) if "=" in ident else None
        except InvalidDN:
            ndn = None
        hits = [
            o
            for o in objs
            if o.name.casefold() == key
            or (ndn is not None and normalize_dn(o.dn) == ndn)
            or any(x.casefold() == key for x in extra(o))
        ]
        if not hits:
            raise self.not_found(ident)
        if len(hits) > 1:
            raise CmdletError(
                400,
                AMBIGUOUS,
                f"The operation couldn't be performed because '{ident}' matches multiple entries.",
            )
        return hits[0]

    def _select(
        self,
        objs: list[_Obj],
        p: _Params,
        extra: Callable[[_Obj], Iterable[str]] = _no_names,
    ) -> list[_Obj]:
        if p.has("Identity") and p.get("Identity") is not None:
            return [self._pick(objs, p.get("Identity"), extra)]
        return objs

    def canonical_name(self, dn: str) -> str:
        """contoso.com/Users/Name: how Exchange shows a recipient's Identity."""
        parts = [v for rdn in reversed(parse_dn(dn)) for a, v in rdn if a.lower() != "dc"]
        return "/".join([self.domain, *parts])


def _base(o: _Obj, identity: str | None = None) -> Row:
    return {"Identity": identity or o.name, "Name": o.name, "DistinguishedName": o.dn}


def _server_of(dn: str) -> str:
    """The server a DN below CN=<server>,CN=Servers belongs to."""
    rdns = parse_dn(dn)
    for i, rdn in enumerate(rdns[:-1]):
        if rdns[i + 1][0][1].casefold() == "servers":
            return rdn[0][1]
    return ""


# ====================================================================== servers
_SERVER_ATTRS = ("serialNumber", "networkAddress", "msExchCurrentServerRoles")


def _server_fqdn(o: _Obj) -> list[str]:
    return [a.split(":", 1)[1] for a in o.all("networkAddress") if a.startswith("ncacn_ip_tcp:")]


def _server_row(o: _Obj) -> Row:
    fqdn = next(iter(_server_fqdn(o)), "")
    return {
        **_base(o),
        "Fqdn": fqdn,
        "AdminDisplayVersion": o.one("serialNumber") or "",
        "ServerRole": "Mailbox",
        "Edition": "Standard",
        "IsExchangeTrialEdition": False,
    }


@_cmdlet("Get-ExchangeServer", "Identity")
def _get_exchange_server(sh: ExchangeShell, p: _Params) -> list[Row]:
    servers = sh._org("msExchExchangeServer", _SERVER_ATTRS)
    return [_server_row(o) for o in sh._select(servers, p, _server_fqdn)]


# ====================================================================== mailboxes
_MAILBOX_READ = (
    "displayName", "mailNickname", "mail", "proxyAddresses", "sAMAccountName",
    "userPrincipalName", "homeMDB", "msExchRecipientTypeDetails", *MAILBOX_ATTRIBUTES,
)  # fmt: skip


def _kind(o: _Obj) -> str:
    n = o.int("msExchRecipientTypeDetails", 1)
    return RECIPIENT_TYPES.get(n, "UserMailbox")


def _mailboxes(sh: ExchangeShell, p: _Params) -> list[_Obj]:
    """The mailboxes of the kind the switches ask for (none: user mailboxes only)."""
    flt = all_of(equal("objectClass", "user"), present("homeMDB"))
    found = sh._query(sh.base_dn, "sub", flt, _MAILBOX_READ)
    if p.switch("Arbitration"):
        return [o for o in found if _kind(o) == "ArbitrationMailbox"]
    if p.switch("PublicFolder"):
        return [o for o in found if _kind(o) == "PublicFolderMailbox"]
    return [o for o in found if _kind(o) not in _SYSTEM_KINDS]


def _mailbox_names(sh: ExchangeShell) -> Callable[[_Obj], list[str]]:
    def names(o: _Obj) -> list[str]:
        out = [sh.canonical_name(o.dn)]
        for attr in ("mailNickname", "sAMAccountName", "userPrincipalName", "mail"):
            out += o.all(attr)
        out += [a.split(":", 1)[1] for a in o.all("proxyAddresses") if ":" in a]
        return out

    return names


@_cmdlet("Get-Mailbox", "Identity", "Arbitration", "PublicFolder", "ResultSize")
def _get_mailbox(sh: ExchangeShell, p: _Params) -> list[Row]:
    out = []
    for o in sh._select(_mailboxes(sh, p), p, _mailbox_names(sh)):
        db = o.one("homeMDB") or ""
        out.append(
            {
                **_base(o, sh.canonical_name(o.dn)),
                "Alias": o.one("mailNickname"),
                "DisplayName": o.one("displayName") or o.name,
                "PrimarySmtpAddress": o.one("mail"),
                "EmailAddresses": o.all("proxyAddresses"),
                "SamAccountName": o.one("sAMAccountName"),
                "UserPrincipalName": o.one("userPrincipalName"),
                "RecipientTypeDetails": _kind(o),
                "Database": _rdn_value(db) if db else None,
                "ServerName": _server_of_database(sh, db).lower() if db else None,
            }
        )
    return out


def _server_of_database(sh: ExchangeShell, db_dn: str) -> str:
    cache = sh._db_servers
    key = normalize_dn(db_dn)
    if key not in cache:
        found = sh._search(db_dn, "base", None, ["msExchOwningServer"])
        owner = found[0].one("msExchOwningServer") if found else None
        cache[key] = _rdn_value(owner) if owner else ""
    return cache[key]


@_cmdlet(
    "Disable-Mailbox",
    "Identity",
    "Arbitration",
    "PublicFolder",
    "DisableLastArbitrationMailboxAllowed",
    "DisableArbitrationMailboxWithOABsAllowed",
    "Confirm",
)
def _disable_mailbox(sh: ExchangeShell, p: _Params) -> list[Row]:
    identity = p.required("Identity")
    candidates = _mailboxes(sh, p)
    o = sh._pick(candidates, identity, _mailbox_names(sh))
    if (
        _kind(o) == "ArbitrationMailbox"
        and len(candidates) == 1
        and not p.switch("DisableLastArbitrationMailboxAllowed")
    ):
        raise CmdletError(
            400,
            RECIPIENT_TASK,
            f"The mailbox '{sh.canonical_name(o.dn)}' is the last arbitration mailbox in the "
            "organization. Disabling it may cause features such as moderation, mailbox moves "
            "and eDiscovery to stop working. To disable it anyway, use the "
            "DisableLastArbitrationMailboxAllowed parameter.",
        )
    changes = [("delete", a, ()) for a in MAILBOX_ATTRIBUTES if o.all(a)]
    sh._modify(o.dn, changes)
    return []


# ====================================================================== client access
def _scps(sh: ExchangeShell) -> dict[str, _Obj]:
    found = sh._org("serviceConnectionPoint", ["serviceBindingInformation", "keywords"])
    return {normalize_dn(o.dn): o for o in found}


def _scp_dn(server: _Obj) -> str:
    return f"CN={escape_rdn_value(server.name)},CN=Autodiscover,CN=Protocols,{server.dn}"


@_cmdlet("Get-ClientAccessService", "Identity")
def _get_cas(sh: ExchangeShell, p: _Params) -> list[Row]:
    scps = _scps(sh)
    out = []
    for s in sh._select(sh._org("msExchExchangeServer", _SERVER_ATTRS), p):
        scp = scps.get(normalize_dn(_scp_dn(s)))
        uri = scp.one("serviceBindingInformation") if scp else None
        out.append(
            {
                **_base(s),
                "Fqdn": _server_row(s)["Fqdn"],
                "AutoDiscoverServiceInternalUri": uri,
                "AutoDiscoverSiteScope": [
                    k.split("=", 1)[1] for k in (scp.all("keywords") if scp else []) if "=" in k
                ],
            }
        )
    return out


@_cmdlet("Set-ClientAccessService", "Identity", "AutoDiscoverServiceInternalUri", "Confirm")
def _set_cas(sh: ExchangeShell, p: _Params) -> list[Row]:
    server = sh._pick(sh._org("msExchExchangeServer", _SERVER_ATTRS), p.required("Identity"))
    uri = p.required("AutoDiscoverServiceInternalUri")
    scp = _scps(sh).get(normalize_dn(_scp_dn(server)))
    if scp is None:
        raise sh.not_found(f"{server.name}\\Autodiscover")
    if uri is None or str(uri).strip() in ("", "$null"):
        if scp.all("serviceBindingInformation"):
            sh._modify(scp.dn, [("delete", "serviceBindingInformation", ())])
    else:
        sh._modify(scp.dn, [("replace", "serviceBindingInformation", (str(uri),))])
    return []


# ====================================================================== transport
_SEND_ATTRS = (
    "routingList", "msExchSmtpSmartHost", "msExchSourceBridgeheadServersDN",
    "msExchSmtpSendTlsDomain", "msExchSmtpOutboundSecurityFlag",
)  # fmt: skip


@_cmdlet("Get-SendConnector", "Identity")
def _get_send_connector(sh: ExchangeShell, p: _Params) -> list[Row]:
    out = []
    for o in sh._select(sh._org("msExchRoutingSMTPConnector", _SEND_ATTRS), p):
        hosts = (o.one("msExchSmtpSmartHost") or "").replace(",", ";")
        out.append(
            {
                **_base(o),
                "AddressSpaces": o.all("routingList"),
                "SmartHosts": [h.strip() for h in hosts.split(";") if h.strip()],
                "SourceTransportServers": [
                    _rdn_value(d) for d in o.all("msExchSourceBridgeheadServersDN")
                ],
                "TlsDomain": o.one("msExchSmtpSendTlsDomain"),
                "RequireTLS": bool(o.int("msExchSmtpOutboundSecurityFlag") & 64),
                "Enabled": True,
            }
        )
    return out


@_cmdlet("Remove-SendConnector", "Identity", "Confirm")
def _remove_send_connector(sh: ExchangeShell, p: _Params) -> list[Row]:
    identity = p.required("Identity")
    o = sh._pick(sh._org("msExchRoutingSMTPConnector", ()), identity)
    sh._delete(o.dn, str(identity))
    return []


_RECEIVE_ATTRS = (
    "msExchSmtpReceiveBindings", "msExchSmtpReceiveRemoteIPRanges",
    "msExchSmtpReceiveTlsDomainCapabilities", "msExchSmtpReceiveFqdn",
)  # fmt: skip


def _receive_identity(o: _Obj) -> str:
    return f"{_server_of(o.dn)}\\{o.name}"


@_cmdlet("Get-ReceiveConnector", "Identity", "Server")
def _get_receive_connector(sh: ExchangeShell, p: _Params) -> list[Row]:
    found = sh._org("msExchSmtpReceiveConnector", _RECEIVE_ATTRS)
    if p.get("Server"):
        found = [o for o in found if _server_of(o.dn).casefold() == str(p.get("Server")).casefold()]
    return [
        {
            **_base(o, _receive_identity(o)),
            "Server": _server_of(o.dn),
            "Bindings": o.all("msExchSmtpReceiveBindings"),
            "RemoteIPRanges": o.all("msExchSmtpReceiveRemoteIPRanges"),
            "TlsDomainCapabilities": o.all("msExchSmtpReceiveTlsDomainCapabilities"),
            "Fqdn": o.one("msExchSmtpReceiveFqdn"),
            "Enabled": True,
        }
        for o in sh._select(found, p, lambda o: [_receive_identity(o)])
    ]


def _values(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return tuple(v.strip() for v in value.split(",") if v.strip() and v.strip() != "$null")
    return tuple(str(v) for v in value)


@_cmdlet("Set-ReceiveConnector", "Identity", "TlsDomainCapabilities", "RemoteIPRanges", "Confirm")
def _set_receive_connector(sh: ExchangeShell, p: _Params) -> list[Row]:
    found = sh._org("msExchSmtpReceiveConnector", _RECEIVE_ATTRS)
    o = sh._pick(found, p.required("Identity"), lambda o: [_receive_identity(o)])
    changes: list[tuple[str, str, tuple[str, ...]]] = []
    for param, attr in (
        ("TlsDomainCapabilities", "msExchSmtpReceiveTlsDomainCapabilities"),
        ("RemoteIPRanges", "msExchSmtpReceiveRemoteIPRanges"),
    ):
        if not p.has(param):
            continue
        values = _values(p.get(param))
        if values:
            changes.append(("replace", attr, values))
        elif o.all(attr):
            changes.append(("delete", attr, ()))
    if changes:
        sh._modify(o.dn, changes)
    return []


@_cmdlet("Remove-ReceiveConnector", "Identity", "Confirm")
def _remove_receive_connector(sh: ExchangeShell, p: _Params) -> list[Row]:
    identity = p.required("Identity")
    found = sh._org("msExchSmtpReceiveConnector", ())
    o = sh._pick(found, identity, lambda o: [_receive_identity(o)])
    sh._delete(o.dn, str(identity))
    return []


# ====================================================================== federation
_REL_ATTRS = (
    "msExchFedIsEnabled", "msExchFedDomainNames", "msExchFedTargetSharingEPR",
    "msExchFedTargetApplicationURI", "msExchFedTargetAutodiscoverEPR", "msExchFedEnabledActions",
)  # fmt: skip


@_cmdlet("Get-OrganizationRelationship", "Identity")
def _get_org_relationship(sh: ExchangeShell, p: _Params) -> list[Row]:
    out = []
    for o in sh._select(sh._org("msExchFedSharingRelationship", _REL_ATTRS), p):
        actions = set(o.all("msExchFedEnabledActions"))
        out.append(
            {
                **_base(o),
                "DomainNames": o.all("msExchFedDomainNames"),
                "Enabled": o.flag("msExchFedIsEnabled"),
                "TargetSharingEpr": o.one("msExchFedTargetSharingEPR"),
                "TargetApplicationUri": o.one("msExchFedTargetApplicationURI"),
                "TargetAutodiscoverEpr": o.one("msExchFedTargetAutodiscoverEPR"),
                "FreeBusyAccessEnabled": "MSExchange.SharingCalendarFreeBusyEnabled" in actions,
                "MailboxMoveEnabled": "MSExchange.MailboxMove" in actions,
                "DeliveryReportEnabled": "MSExchange.DeliveryReportEnabled" in actions,
                "MailTipsAccessEnabled": "MSExchange.MailTipsAccessEnabled" in actions,
            }
        )
    return out


@_cmdlet("Set-OrganizationRelationship", "Identity", "Enabled", "Confirm")
def _set_org_relationship(sh: ExchangeShell, p: _Params) -> list[Row]:
    o = sh._pick(sh._org("msExchFedSharingRelationship", ()), p.required("Identity"))
    if p.has("Enabled"):
        value = "TRUE" if _truth(p.get("Enabled"), "Enabled") else "FALSE"
        sh._modify(o.dn, [("replace", "msExchFedIsEnabled", (value,))])
    return []


@_cmdlet("Remove-OrganizationRelationship", "Identity", "Confirm")
def _remove_org_relationship(sh: ExchangeShell, p: _Params) -> list[Row]:
    identity = p.required("Identity")
    o = sh._pick(sh._org("msExchFedSharingRelationship", ()), identity)
    sh._delete(o.dn, str(identity))
    return []


_IOC_ATTRS = ("msExchFedIsEnabled", "msExchFedDomainNames", "msExchFedTargetAutodiscoverEPR")


@_cmdlet("Get-IntraOrganizationConnector", "Identity")
def _get_ioc(sh: ExchangeShell, p: _Params) -> list[Row]:
    return [
        {
            **_base(o),
            "TargetAddressDomains": o.all("msExchFedDomainNames"),
            "DiscoveryEndpoint": o.one("msExchFedTargetAutodiscoverEPR"),
            "Enabled": o.flag("msExchFedIsEnabled"),
        }
        for o in sh._select(sh._org("msExchIntraOrganizationConnector", _IOC_ATTRS), p)
    ]


@_cmdlet("Set-IntraOrganizationConnector", "Identity", "Enabled", "Confirm")
def _set_ioc(sh: ExchangeShell, p: _Params) -> list[Row]:
    o = sh._pick(sh._org("msExchIntraOrganizationConnector", ()), p.required("Identity"))
    if p.has("Enabled"):
        value = "TRUE" if _truth(p.get("Enabled"), "Enabled") else "FALSE"
        sh._modify(o.dn, [("replace", "msExchFedIsEnabled", (value,))])
    return []


@_cmdlet("Remove-IntraOrganizationConnector", "Identity", "Confirm")
def _remove_ioc(sh: ExchangeShell, p: _Params) -> list[Row]:
    identity = p.required("Identity")
    o = sh._pick(sh._org("msExchIntraOrganizationConnector", ()), identity)
    sh._delete(o.dn, str(identity))
    return []


_FOI_ATTRS = ("msExchFedIsEnabled", "msExchFedDelegationTrust", "msExchFedAccountNamespace")


def _foi(sh: ExchangeShell) -> _Obj | None:
    found = sh._search(sh.org_dn, "one", "msExchFedOrgId", _FOI_ATTRS)
    return found[0] if found else None


@_cmdlet("Get-FederatedOrganizationIdentifier", "Identity")
def _get_foi(sh: ExchangeShell, p: _Params) -> list[Row]:
    o = _foi(sh)
    if o is None:
        return []
    trust = o.one("msExchFedDelegationTrust")
    return [
        {
            **_base(o, sh.org_name),
            "Enabled": o.flag("msExchFedIsEnabled"),
            "AccountNamespace": o.one("msExchFedAccountNamespace"),
            "DelegationTrustLink": _rdn_value(trust) if trust else None,
            "DelegationTrustLinkDN": trust,
        }
    ]


@_cmdlet(
    "Set-FederatedOrganizationIdentifier",
    "Identity",
    "Enabled",
    "DelegationFederationTrust",
    "AccountNamespace",
    "Confirm",
)
def _set_foi(sh: ExchangeShell, p: _Params) -> list[Row]:
    o = _foi(sh)
    if o is None:
        raise sh.not_found(str(p.get("Identity") or "Federation"))
    changes: list[tuple[str, str, tuple[str, ...]]] = []
    if p.has("DelegationFederationTrust"):
        trust = sh._pick(sh._org("msExchFedTrust", ()), p.get("DelegationFederationTrust"))
        changes.append(("replace", "msExchFedDelegationTrust", (trust.dn,)))
    if p.has("AccountNamespace"):
        changes.append(("replace", "msExchFedAccountNamespace", (str(p.get("AccountNamespace")),)))
    if p.has("Enabled"):
        enabled = _truth(p.get("Enabled"), "Enabled")
        if enabled and not (
            o.one("msExchFedDelegationTrust") or p.has("DelegationFederationTrust")
        ):
            raise CmdletError(
                400,
                INVALID_OPERATION,
                "The federated organization identifier can't be enabled without a delegation "
                "federation trust. Use the DelegationFederationTrust parameter.",
            )
        changes.append(("replace", "msExchFedIsEnabled", ("TRUE" if enabled else "FALSE",)))
        if not enabled and o.one("msExchFedDelegationTrust"):
            # As Exchange does: a disabled identifier no longer delegates to the trust.
            changes.append(("delete", "msExchFedDelegationTrust", ()))
    if changes:
        sh._modify(o.dn, changes)
    return []


_TRUST_ATTRS = ("msExchFedOrgPrivCertificate", "msExchFedApplicationURI", "msExchFedTokenIssuerURI")


@_cmdlet("Get-FederationTrust", "Identity")
def _get_federation_trust(sh: ExchangeShell, p: _Params) -> list[Row]:
    return [
        {
            **_base(o),
            "OrgPrivCertificate": o.one("msExchFedOrgPrivCertificate"),
            "ApplicationUri": o.one("msExchFedApplicationURI"),
            "TokenIssuerUri": o.one("msExchFedTokenIssuerURI"),
        }
        for o in sh._select(sh._org("msExchFedTrust", _TRUST_ATTRS), p)
    ]


@_cmdlet("Remove-FederationTrust", "Identity", "Confirm")
def _remove_federation_trust(sh: ExchangeShell, p: _Params) -> list[Row]:
    identity = p.get("Identity") or FEDERATION_TRUST
    trust = sh._pick(sh._org("msExchFedTrust", ()), identity)
    users = []
    foi = _foi(sh)
    if foi is not None:
        link = foi.one("msExchFedDelegationTrust")
        if foi.flag("msExchFedIsEnabled"):
            users.append(f"{sh.org_name} (federated organization identifier: enabled)")
        elif link and normalize_dn(link) == normalize_dn(trust.dn):
            users.append(f"{sh.org_name} (federated organization identifier: delegation trust)")
    users += [
        f"{o.name} (organization relationship)" for o in sh._org("msExchFedSharingRelationship", ())
    ]
    if users:
        raise CmdletError(
            400,
            INVALID_OPERATION,
            f"Federation trust '{trust.name}' can't be removed because it's in use by the "
            f"following organization(s): {', '.join(users)}.",
        )
    sh._delete(trust.dn, str(identity))
    return []


# ====================================================================== domains
_RD_ATTRS = ("domainName", "msExchRoutingAcceptMessageType")


def _remote_domain_row(o: _Obj) -> Row:
    flags = o.int("msExchRoutingAcceptMessageType", DEFAULT_ACCEPT_MESSAGE_TYPES)
    return {
        **_base(o),
        "DomainName": o.one("domainName"),
        "TargetDeliveryDomain": bool(flags & TARGET_DELIVERY_DOMAIN),
        **{k: bool(flags & bit) for k, bit in _REMOTE_DOMAIN_BITS.items()},
    }


def _remote_domains(sh: ExchangeShell) -> list[_Obj]:
    return sh._org("msExchDomainContentConfig", _RD_ATTRS)


@_cmdlet("Get-RemoteDomain", "Identity")
def _get_remote_domain(sh: ExchangeShell, p: _Params) -> list[Row]:
    found = _remote_domains(sh)
    return [_remote_domain_row(o) for o in sh._select(found, p, lambda o: o.all("domainName"))]


@_cmdlet("New-RemoteDomain", "Name", "DomainName")
def _new_remote_domain(sh: ExchangeShell, p: _Params) -> list[Row]:
    name = str(p.required("Name")).strip()
    domain = str(p.required("DomainName")).strip().lower()
    for o in _remote_domains(sh):
        if (o.one("domainName") or "").casefold() == domain:
            raise CmdletError(
                400,
                "DuplicateRemoteDomainException",
                f"A remote domain with the domain name '{domain}' already exists ('{o.name}').",
            )
    formats = f"CN=Internet Message Formats,CN=Global Settings,{sh.org_dn}"
    dn = f"CN={escape_rdn_value(name)},{formats}"
    sh._add(
        dn,
        {
            "objectClass": ["top", "msExchDomainContentConfig"],
            "cn": [name],
            "domainName": [domain],
            "msExchRoutingAcceptMessageType": [str(DEFAULT_ACCEPT_MESSAGE_TYPES)],
        },
    )
    return [_remote_domain_row(sh._search(dn, "base", None, _RD_ATTRS)[0])]


@_cmdlet("Set-RemoteDomain", "Identity", "TargetDeliveryDomain", *_REMOTE_DOMAIN_BITS, "Confirm")
def _set_remote_domain(sh: ExchangeShell, p: _Params) -> list[Row]:
    o = sh._pick(_remote_domains(sh), p.required("Identity"), lambda o: o.all("domainName"))
    flags = o.int("msExchRoutingAcceptMessageType", DEFAULT_ACCEPT_MESSAGE_TYPES)
    for param, bit in (
        ("TargetDeliveryDomain", TARGET_DELIVERY_DOMAIN),
        *_REMOTE_DOMAIN_BITS.items(),
    ):
        if p.has(param):
            flags = flags | bit if _truth(p.get(param), param) else flags & ~bit
    sh._modify(o.dn, [("replace", "msExchRoutingAcceptMessageType", (str(flags),))])
    return []


@_cmdlet("Remove-RemoteDomain", "Identity", "Confirm")
def _remove_remote_domain(sh: ExchangeShell, p: _Params) -> list[Row]:
    identity = p.required("Identity")
    o = sh._pick(_remote_domains(sh), identity, lambda o: o.all("domainName"))
    if o.one("domainName") == "*":
        raise CmdletError(400, INVALID_OPERATION, "The default remote domain '*' can't be removed.")
    sh._delete(o.dn, str(identity))
    return []


@_cmdlet("Get-AcceptedDomain", "Identity")
def _get_accepted_domain(sh: ExchangeShell, p: _Params) -> list[Row]:
    found = sh._org(
        "msExchAcceptedDomain", ["msExchAcceptedDomainName", "msExchAcceptedDomainFlags"]
    )
    out = []
    for o in sh._select(found, p, lambda o: o.all("msExchAcceptedDomainName")):
        flags = o.int("msExchAcceptedDomainFlags")
        out.append(
            {
                **_base(o),
                "DomainName": o.one("msExchAcceptedDomainName"),
                "DomainType": _DOMAIN_TYPES.get(flags & 3, "Authoritative"),
                "Default": bool(flags & 4),
            }
        )
    return out


# ====================================================================== OAuth
@_cmdlet("Get-AuthConfig")
def _get_auth_config(sh: ExchangeShell, p: _Params) -> list[Row]:
    found = sh._search(
        sh.org_dn, "one", "msExchAuthAuthConfig", ["msExchAuthCertificateThumbprint"]
    )
    if not found:
        return []
    o = found[0]
    prints: list[str | None] = [*o.all("msExchAuthCertificateThumbprint"), None, None, None]
    return [
        {
            **_base(o),
            "CurrentCertificateThumbprint": prints[0],
            "PreviousCertificateThumbprint": prints[1],
            "NextCertificateThumbprint": prints[2],
            "ServiceName": EXCHANGE_ONLINE_APP_ID,
        }
    ]


_AUTH_ATTRS = (
    "msExchAuthIssuerName", "msExchAuthMetadataUrl", "msExchAuthRealm", "msExchAuthFlags",
    "msExchAuthAuthServerType", "msExchAuthApplicationIdentifier",
)  # fmt: skip


def _set_enabled_bit(sh: ExchangeShell, p: _Params, object_class: str) -> list[Row]:
    o = sh._pick(
        sh._org(object_class, _AUTH_ATTRS),
        p.required("Identity"),
        lambda o: o.all("msExchAuthApplicationIdentifier"),
    )
    if p.has("Enabled"):
        flags = o.int("msExchAuthFlags", 1)
        flags = flags | 1 if _truth(p.get("Enabled"), "Enabled") else flags & ~1
        sh._modify(o.dn, [("replace", "msExchAuthFlags", (str(flags),))])
    return []


@_cmdlet("Get-AuthServer", "Identity")
def _get_auth_server(sh: ExchangeShell, p: _Params) -> list[Row]:
    return [
        {
            **_base(o),
            "IssuerIdentifier": o.one("msExchAuthIssuerName"),
            "AuthMetadataUrl": o.one("msExchAuthMetadataUrl"),
            "Realm": o.one("msExchAuthRealm"),
            "Type": _AUTH_SERVER_TYPES.get(o.int("msExchAuthAuthServerType"), "Unknown"),
            "Enabled": bool(o.int("msExchAuthFlags", 1) & 1),
        }
        for o in sh._select(sh._org("msExchAuthAuthServer", _AUTH_ATTRS), p)
    ]


@_cmdlet("Set-AuthServer", "Identity", "Enabled", "Confirm")
def _set_auth_server(sh: ExchangeShell, p: _Params) -> list[Row]:
    return _set_enabled_bit(sh, p, "msExchAuthAuthServer")


@_cmdlet("Get-PartnerApplication", "Identity")
def _get_partner_application(sh: ExchangeShell, p: _Params) -> list[Row]:
    found = sh._org("msExchAuthPartnerApplication", _AUTH_ATTRS)
    return [
        {
            **_base(o),
            "ApplicationIdentifier": o.one("msExchAuthApplicationIdentifier"),
            "Realm": o.one("msExchAuthRealm") or "",
            "Enabled": bool(o.int("msExchAuthFlags", 1) & 1),
            "UseAuthServer": bool(o.int("msExchAuthFlags", 1) & 2),
        }
        for o in sh._select(found, p, lambda o: o.all("msExchAuthApplicationIdentifier"))
    ]


@_cmdlet("Set-PartnerApplication", "Identity", "Enabled", "Confirm")
def _set_partner_application(sh: ExchangeShell, p: _Params) -> list[Row]:
    return _set_enabled_bit(sh, p, "msExchAuthPartnerApplication")


# ====================================================================== hybrid configuration
_HYBRID_ATTRS = (
    "msExchCoexistenceOnPremisesSmartHost", "msExchCoexistenceDomains",
    "msExchCoexistenceFeatures", "msExchCoexistenceTransportServers",
    "msExchCoexistenceSecureMailCertificateThumbprint",
)  # fmt: skip


def _hybrid(sh: ExchangeShell) -> list[_Obj]:
    return sh._org("msExchCoexistenceRelationship", _HYBRID_ATTRS)


@_cmdlet("Get-HybridConfiguration")
def _get_hybrid_configuration(sh: ExchangeShell, p: _Params) -> list[Row]:
    return [
        {
            **_base(o),
            "OnPremisesSmartHost": o.one("msExchCoexistenceOnPremisesSmartHost"),
            "Domains": o.all("msExchCoexistenceDomains"),
            "Features": o.int("msExchCoexistenceFeatures"),
            "TransportServers": [_rdn_value(d) for d in o.all("msExchCoexistenceTransportServers")],
            "TlsCertificateThumbprint": o.one("msExchCoexistenceSecureMailCertificateThumbprint"),
        }
        for o in _hybrid(sh)
    ]


@_cmdlet("Remove-HybridConfiguration", "Confirm")
def _remove_hybrid_configuration(sh: ExchangeShell, p: _Params) -> list[Row]:
    found = _hybrid(sh)
    if not found:
        raise sh.not_found("Hybrid Configuration")
    for o in found:
        sh._delete(o.dn, "Hybrid Configuration")
    return []
