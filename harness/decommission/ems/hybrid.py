"""The hybrid's link to Exchange Online: OAuth (Get-AuthConfig, Get-/Set-AuthServer,
Get-/Set-PartnerApplication) and Get-/Remove-HybridConfiguration."""

from __future__ import annotations

from typing import Final

from harness.decommission.ems.shell import (
    ExchangeShell,
    Row,
    _base,
    _cmdlet,
    _get,
    _Obj,
    _Params,
    _rdn_value,
    _set_enabled,
)
from harness.tenant.exchange_org import EXCHANGE_ONLINE_APP_ID

_AUTH_SERVER_TYPES: Final = {1: "MicrosoftACS", 4: "ADFS", 5: "AzureAD"}


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


def _app_ids(o: _Obj) -> list[str]:
    return o.all("msExchAuthApplicationIdentifier")


def _enabled_bit(o: _Obj, enabled: bool) -> str:
    """msExchAuthFlags with bit 0 (Enabled) set or cleared."""
    flags = o.int("msExchAuthFlags", 1)
    return str(flags | 1 if enabled else flags & ~1)


def _set_enabled_bit(sh: ExchangeShell, p: _Params, object_class: str) -> list[Row]:
    return _set_enabled(sh, p, object_class, "msExchAuthFlags", _enabled_bit, _AUTH_ATTRS, _app_ids)


def _auth_server_row(o: _Obj) -> Row:
    return {
        **_base(o),
        "IssuerIdentifier": o.one("msExchAuthIssuerName"),
        "AuthMetadataUrl": o.one("msExchAuthMetadataUrl"),
        "Realm": o.one("msExchAuthRealm"),
        "Type": _AUTH_SERVER_TYPES.get(o.int("msExchAuthAuthServerType"), "Unknown"),
        "Enabled": bool(o.int("msExchAuthFlags", 1) & 1),
    }


@_cmdlet("Get-AuthServer", "Identity")
def _get_auth_server(sh: ExchangeShell, p: _Params) -> list[Row]:
    return _get(sh, p, "msExchAuthAuthServer", _AUTH_ATTRS, _auth_server_row)


@_cmdlet("Set-AuthServer", "Identity", "Enabled", "Confirm")
def _set_auth_server(sh: ExchangeShell, p: _Params) -> list[Row]:
    return _set_enabled_bit(sh, p, "msExchAuthAuthServer")


def _partner_application_row(o: _Obj) -> Row:
    return {
        **_base(o),
        "ApplicationIdentifier": o.one("msExchAuthApplicationIdentifier"),
        "Realm": o.one("msExchAuthRealm") or "",
        "Enabled": bool(o.int("msExchAuthFlags", 1) & 1),
        "UseAuthServer": bool(o.int("msExchAuthFlags", 1) & 2),
    }


@_cmdlet("Get-PartnerApplication", "Identity")
def _get_partner_application(sh: ExchangeShell, p: _Params) -> list[Row]:
    return _get(
        sh, p, "msExchAuthPartnerApplication", _AUTH_ATTRS, _partner_application_row, _app_ids
    )


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
