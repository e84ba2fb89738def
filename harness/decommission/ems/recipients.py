"""Exchange servers, mailboxes and client access (Autodiscover): Get-ExchangeServer,
Get-/Disable-Mailbox and Get-/Set-ClientAccessService."""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from harness.clients.exo import CmdletError
from harness.core.dn import escape_rdn_value, normalize_dn
from harness.decommission.ems.shell import (
    RECIPIENT_TASK,
    ExchangeShell,
    Row,
    _base,
    _cmdlet,
    _get,
    _Obj,
    _Params,
    _rdn_value,
)
from harness.engine.ldapwire import all_of, equal, present

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
    return _get(sh, p, "msExchExchangeServer", _SERVER_ATTRS, _server_row, _server_fqdn)


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
    changes: list[tuple[str, str, tuple[str, ...]]] = [
        ("delete", a, ()) for a in MAILBOX_ATTRIBUTES if o.all(a)
    ]
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
