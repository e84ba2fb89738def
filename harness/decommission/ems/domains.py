"""Remote and accepted domains: Get-/New-/Set-/Remove-RemoteDomain, Get-AcceptedDomain."""

from __future__ import annotations

from typing import Final

from harness.clients.exo import CmdletError
from harness.core.dn import escape_rdn_value
from harness.decommission.ems.shell import (
    _REMOTE_DOMAIN_BITS,
    INVALID_OPERATION,
    ExchangeShell,
    Row,
    _base,
    _cmdlet,
    _get,
    _Obj,
    _Params,
    _remove,
    _truth,
)

TARGET_DELIVERY_DOMAIN: Final = 256  # msExchRoutingAcceptMessageType bit
DEFAULT_ACCEPT_MESSAGE_TYPES: Final = 30  # Exchange's default for a new remote domain
_DOMAIN_TYPES: Final = {0: "Authoritative", 1: "ExternalRelay", 2: "InternalRelay"}


# ====================================================================== domains
_REMOTE_DOMAIN = "msExchDomainContentConfig"
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
    return sh._org(_REMOTE_DOMAIN, _RD_ATTRS)


def _domain_names(o: _Obj) -> list[str]:
    return o.all("domainName")


@_cmdlet("Get-RemoteDomain", "Identity")
def _get_remote_domain(sh: ExchangeShell, p: _Params) -> list[Row]:
    return _get(sh, p, _REMOTE_DOMAIN, _RD_ATTRS, _remote_domain_row, _domain_names)


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
    o = sh._pick(_remote_domains(sh), p.required("Identity"), _domain_names)
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
    def refuse_default(o: _Obj) -> None:
        if o.one("domainName") == "*":
            raise CmdletError(
                400, INVALID_OPERATION, "The default remote domain '*' can't be removed."
            )

    return _remove(sh, p, _REMOTE_DOMAIN, _domain_names, _RD_ATTRS, refuse_default)


_ACCEPTED_ATTRS = ("msExchAcceptedDomainName", "msExchAcceptedDomainFlags")


def _accepted_domain_row(o: _Obj) -> Row:
    flags = o.int("msExchAcceptedDomainFlags")
    return {
        **_base(o),
        "DomainName": o.one("msExchAcceptedDomainName"),
        "DomainType": _DOMAIN_TYPES.get(flags & 3, "Authoritative"),
        "Default": bool(flags & 4),
    }


@_cmdlet("Get-AcceptedDomain", "Identity")
def _get_accepted_domain(sh: ExchangeShell, p: _Params) -> list[Row]:
    return _get(
        sh,
        p,
        "msExchAcceptedDomain",
        _ACCEPTED_ATTRS,
        _accepted_domain_row,
        lambda o: o.all("msExchAcceptedDomainName"),
    )
