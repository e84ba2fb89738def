"""Transport: send and receive connectors (Get-/Remove-SendConnector,
Get-/Set-/Remove-ReceiveConnector)."""

from __future__ import annotations

from typing import Any

from harness.core.dn import parse_dn
from harness.decommission.ems.shell import (
    ExchangeShell,
    Row,
    _base,
    _cmdlet,
    _get,
    _Obj,
    _Params,
    _rdn_value,
    _remove,
)


def _server_of(dn: str) -> str:
    """The server a DN below CN=<server>,CN=Servers belongs to."""
    rdns = parse_dn(dn)
    for i, rdn in enumerate(rdns[:-1]):
        if rdns[i + 1][0][1].casefold() == "servers":
            return rdn[0][1]
    return ""


# ====================================================================== transport
_SEND_ATTRS = (
    "routingList", "msExchSmtpSmartHost", "msExchSourceBridgeheadServersDN",
    "msExchSmtpSendTlsDomain", "msExchSmtpOutboundSecurityFlag",
)  # fmt: skip


def _send_connector_row(o: _Obj) -> Row:
    hosts = (o.one("msExchSmtpSmartHost") or "").replace(",", ";")
    return {
        **_base(o),
        "AddressSpaces": o.all("routingList"),
        "SmartHosts": [h.strip() for h in hosts.split(";") if h.strip()],
        "SourceTransportServers": [_rdn_value(d) for d in o.all("msExchSourceBridgeheadServersDN")],
        "TlsDomain": o.one("msExchSmtpSendTlsDomain"),
        "RequireTLS": bool(o.int("msExchSmtpOutboundSecurityFlag") & 64),
        "Enabled": True,
    }


@_cmdlet("Get-SendConnector", "Identity")
def _get_send_connector(sh: ExchangeShell, p: _Params) -> list[Row]:
    return _get(sh, p, "msExchRoutingSMTPConnector", _SEND_ATTRS, _send_connector_row)


@_cmdlet("Remove-SendConnector", "Identity", "Confirm")
def _remove_send_connector(sh: ExchangeShell, p: _Params) -> list[Row]:
    return _remove(sh, p, "msExchRoutingSMTPConnector")


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
    return _remove(sh, p, "msExchSmtpReceiveConnector", lambda o: [_receive_identity(o)])
