"""The Exchange Management Shell session: LDAP access, parameter binding and cmdlet dispatch.

`ExchangeShell` opens the session and runs cmdlets by name; the area modules of this package
register them with `_cmdlet`, and use the lookups (`_org`, `_pick`, `_select`) and the shared
cmdlet bodies below (`_get`, `_set_enabled`, `_remove`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Final

from harness.clients.exo import CmdletError
from harness.core.dn import InvalidDN, normalize_dn, parse_dn
from harness.engine.ldapwire import SERVER_DOWN, LdapConnection, LdapError, equal, present
from harness.tenant.spec import TenantSpec

NOT_FOUND: Final = "ManagementObjectNotFoundException"
AMBIGUOUS: Final = "ManagementObjectAmbiguousException"
AD_ERROR: Final = "ADOperationException"
INVALID_OPERATION: Final = "InvalidOperationException"
RECIPIENT_TASK: Final = "RecipientTaskException"

# Remote domains' boolean properties, as bits of msExchRoutingAcceptMessageType (bound as
# booleans, so here with the other boolean parameters).
_REMOTE_DOMAIN_BITS: Final = {
    "AutoReplyEnabled": 2, "AutoForwardEnabled": 4, "DeliveryReportEnabled": 8,
    "NDREnabled": 16, "IsInternal": 64,
}  # fmt: skip

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


def _ldap_bool(value: bool) -> str:
    """A Boolean attribute's value, as AD writes it (and `_Obj.flag` reads it)."""
    return "TRUE" if value else "FALSE"


def _get(
    sh: ExchangeShell,
    p: _Params,
    object_class: str,
    attrs: Iterable[str],
    row: Callable[[_Obj], Row],
    extra: Callable[[_Obj], Iterable[str]] = _no_names,
) -> list[Row]:
    """Get-*: a row for each object of the class, or for the one -Identity names."""
    return [row(o) for o in sh._select(sh._org(object_class, attrs), p, extra)]


def _set_enabled(
    sh: ExchangeShell,
    p: _Params,
    object_class: str,
    attr: str,
    encode: Callable[[_Obj, bool], str],
    attrs: Iterable[str] = (),
    extra: Callable[[_Obj], Iterable[str]] = _no_names,
) -> list[Row]:
    """Set-*: the object -Identity names gets -Enabled, as `encode` writes it into `attr`."""
    o = sh._pick(sh._org(object_class, attrs), p.required("Identity"), extra)
    if p.has("Enabled"):
        value = encode(o, _truth(p.get("Enabled"), "Enabled"))
        sh._modify(o.dn, [("replace", attr, (value,))])
    return []


def _remove(
    sh: ExchangeShell,
    p: _Params,
    object_class: str,
    extra: Callable[[_Obj], Iterable[str]] = _no_names,
    attrs: Iterable[str] = (),
    refuse: Callable[[_Obj], None] | None = None,
) -> list[Row]:
    """Remove-*: delete the object -Identity names, unless `refuse` raises for it."""
    identity = p.required("Identity")
    o = sh._pick(sh._org(object_class, attrs), identity, extra)
    if refuse is not None:
        refuse(o)
    sh._delete(o.dn, str(identity))
    return []
