"""The cmdlets behind the fake EXO admin API (``POST /adminapi/beta/{tenant}/InvokeCommand``).

`invoke` runs one cmdlet against a `CloudStore` and returns its output as a `CmdletResult`;
the HTTP layer pages and renders the items. Every failure is a `CloudError` whose `code` is the
Exchange exception name and whose message reads like Exchange's. Cmdlet and parameter names
are case-insensitive, as in PowerShell.

Set-Mailbox is the admin's write path and holds the policy: the write scope of dir-synced
mailboxes, value limits, proxy-address rules. It validates the whole request before it makes
exactly one `CloudStore.update`, so a rejected request changes nothing.

The hybrid cmdlets (Get-/Remove-InboundConnector, -OutboundConnector, -OrganizationRelationship,
-TransportRule, Get-/Set-IntraOrganizationConnector, Get-DistributionGroup, Get-MailContact,
Set-OrganizationConfig -PublicFoldersEnabled, Get-/Remove-HybridApplication -AppId) read and
change `CloudStore.hybrid` (hybrid.py). Remove-OutboundConnector refuses a connector that a
transport rule still routes through (RouteMessageOutboundConnector); that refusal's text is
modelled on Exchange's "in use" errors, not copied from a captured one.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from itertools import islice
from typing import Any

from harness.tenant import recipients as rt
from harness.tenant.model import CloudMailbox, primary_smtp
from mockservers.cloud import errors
from mockservers.cloud.errors import CloudError
from mockservers.cloud.hybrid import PUBLIC_FOLDERS_ENABLED, HybridInUse, HybridNotFound
from mockservers.cloud.opath import (
    GET_MAILBOX_TYPES,
    RECIPIENT_PROPERTIES,
    RECIPIENT_TYPE_DETAILS,
    RTD_TYPE,
    OpathError,
    compile_filter,
    render_recipient,
)
from mockservers.cloud.store import CloudStore, NotFound, address_key

SERVER = "EURPR01A001.PROD.OUTLOOK.COM"  # the domain controller that "couldn't find" an object
DEFAULT_RESULT_SIZE = 1000
CUSTOM_MAX = 1024
EXTENSION_MAX = 2048
CUSTOM = tuple(f"CustomAttribute{i}" for i in range(1, 16))
EXTENSION = tuple(f"ExtensionCustomAttribute{i}" for i in range(1, 6))
# Set-Mailbox -Type (ConvertibleMailboxSubType) -> RecipientTypeDetails.
MAILBOX_TYPES = dict(
    zip(("Regular", "Shared", "Room", "Equipment"), rt.CLOUD_MAILBOX_TYPES, strict=True)
)
ADDRESS_TYPES = ("SMTP", "X500", "X400", "SIP", "EUM")
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_SMTP = re.compile(rf"{_ATOM}(?:\.{_ATOM})*@(?:{_LABEL}\.)+{_LABEL}")
_UNLIMITED = "Microsoft.Exchange.Data.Unlimited`1[System.UInt32]"
_MVP = "Microsoft.Exchange.Data.MultiValuedProperty`1[System.String]"
_SUBTYPE = "Microsoft.Exchange.Data.Directory.Management.ConvertibleMailboxSubType"
_COMMON = ("ErrorAction", "WarningAction", "Verbose", "Debug")  # accepted, no effect
_TOO_MANY = (
    "By default only the first {n} items are returned. Use the ResultSize parameter to specify "
    'the number of items returned. To return all items specify "-ResultSize Unlimited". Be aware '
    "that, depending upon the actual quantity of items, returning all items can take a long "
    "time and consume a large amount of memory. Also, we don't recommend storing the results in "
    "a variable. Instead, pipe the results to another task or script to perform batch changes."
)
_MORE = (
    "There are more results available than are currently displayed. To view them, increase the "
    "value for the ResultSize parameter."
)


@dataclass(frozen=True, slots=True)
class CmdletResult:
    """A cmdlet's output: `items` in order; `render` turns one item into its JSON object.

    `warnings` are Exchange's WARNING lines, which the REST API returns beside the values."""

    items: Sequence[Any]
    render: Callable[[Any], dict[str, Any]]
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class MultiEdit:
    """A multi-valued parameter: a list replaces (`replace`), a hashtable adds and removes."""

    replace: tuple[str, ...] | None = None
    add: tuple[str, ...] = ()
    remove: tuple[str, ...] = ()


Runner = Callable[[CloudStore, dict[str, Any]], CmdletResult]


def invoke(
    store: CloudStore, cmdlet: str, parameters: dict[str, Any], *, can_write: bool
) -> CmdletResult:
    """Run one cmdlet; raises CloudError (400 Exchange errors, 403 for a read-only caller)."""
    spec = _CMDLETS.get(cmdlet.casefold()) if isinstance(cmdlet, str) else None
    if spec is None:
        raise errors.cmdlet_not_found(cmdlet)
    name, known, writes, run = spec
    if writes and not can_write:
        raise errors.cmdlet_read_only(name)
    return run(store, _bind_names(known, parameters or {}))


# ---------------------------------------------------------------------- errors
def _not_found(identity: str) -> CloudError:
    return errors.object_not_found(identity, SERVER)


def _cannot_convert(name: str, value: Any, target: str, detail: str) -> CloudError:
    return errors.cannot_convert(name, _type_name(value), target, detail)


def _type_name(value: Any) -> str:
    if isinstance(value, dict | list | tuple):
        return "System.Collections.Hashtable" if isinstance(value, dict) else "System.Object[]"
    return "" if value is None else str(value)


# ---------------------------------------------------------------------- parameter binding
def _bind_names(known: tuple[str, ...], parameters: dict[str, Any]) -> dict[str, Any]:
    """Parameters keyed by their canonical names; unknown or repeated names are errors."""
    if not isinstance(parameters, dict):
        raise errors.parameters_not_a_hashtable()
    by_key = {p.casefold(): p for p in known}
    out: dict[str, Any] = {}
    for key, value in parameters.items():
        name = by_key.get(str(key).casefold())
        if name is None:
            raise errors.unknown_parameter(key)
        if name in out:
            raise errors.parameter_repeated(name)
        out[name] = value
    return out


def _text(name: str, value: Any) -> str | None:
    """A string parameter: PowerShell turns scalars into text, not lists or hashtables."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool | int | float):
        return str(value)
    raise _cannot_convert(name, value, "System.String", "Specified method is not supported.")


def _flag(name: str, value: Any) -> bool:
    """A Boolean parameter: $true/$false or the numbers 1/0, as PowerShell binds them."""
    if isinstance(value, bool) or (isinstance(value, int) and value in (0, 1)):
        return bool(value)
    raise _cannot_convert(
        name,
        value,
        "System.Boolean",
        "Boolean parameters accept only Boolean values and numbers, such as $True, $False, 1 or 0.",
    )


def _strings(name: str, value: Any) -> tuple[str, ...]:
    items = () if value is None else value if isinstance(value, list | tuple) else (value,)
    if not all(isinstance(v, str) for v in items):
        raise _cannot_convert(name, value, _MVP, "Only strings are accepted.")
    return tuple(items)


def _multi(name: str, value: Any) -> MultiEdit:
    """A multi-valued parameter: null or "" clears, a list replaces, @{Add=;Remove=} edits."""
    if not isinstance(value, dict):
        return MultiEdit(replace=() if value == "" else _strings(name, value))
    edit: dict[str, tuple[str, ...]] = {}
    for key, items in value.items():
        if str(key).casefold() not in ("add", "remove"):
            detail = f"Only the hashtable keys 'Add' and 'Remove' are supported, not '{key}'."
            raise _cannot_convert(name, value, _MVP, detail)
        edit[str(key).casefold()] = _strings(name, items)
    return MultiEdit(add=edit.get("add", ()), remove=edit.get("remove", ()))


def _mailbox_type(name: str, value: Any) -> str:
    key = value.casefold() if isinstance(value, str) else None
    kind = next((t for n, t in MAILBOX_TYPES.items() if n.casefold() == key), None)
    if kind is None:
        raise errors.not_an_enumerator(name, value, _SUBTYPE, MAILBOX_TYPES)
    return kind


def _result_size(value: Any) -> int | None:
    """ResultSize: a positive number, or Unlimited (None)."""
    if value is None:
        return DEFAULT_RESULT_SIZE
    if isinstance(value, str) and value.strip().casefold() == "unlimited":
        return None
    number = int(value) if isinstance(value, str) and value.strip().isdigit() else value
    if isinstance(number, int) and not isinstance(number, bool) and 0 < number < 2**32:
        return number
    raise _cannot_convert(
        "ResultSize", value, _UNLIMITED, "The value must be a positive number or Unlimited."
    )


def _type_filter(value: Any, allowed: Sequence[str]) -> frozenset[str] | None:
    """RecipientTypeDetails: one name, a comma-separated string or a list; None = any."""
    names = [n.strip() for s in _strings("RecipientTypeDetails", value) for n in s.split(",")]
    by_key = {n.casefold(): n for n in RECIPIENT_TYPE_DETAILS}
    out = set()
    for n in filter(None, names):
        canonical = by_key.get(n.casefold())
        if canonical is None:
            raise errors.not_an_enumerator(
                "RecipientTypeDetails", n, RTD_TYPE, RECIPIENT_TYPE_DETAILS
            )
        if canonical not in allowed:
            raise errors.not_in_validate_set("RecipientTypeDetails", canonical, allowed)
        out.add(canonical)
    return frozenset(out) or None


# ---------------------------------------------------------------------- reads
def _get_recipients(store: CloudStore, params: dict[str, Any], *, mailboxes: bool) -> CmdletResult:
    """Get-Mailbox (mailboxes only) and Get-Recipient (mail users too)."""
    types = _type_filter(
        params.get("RecipientTypeDetails"),
        GET_MAILBOX_TYPES if mailboxes else RECIPIENT_TYPE_DETAILS,
    )
    limit = _result_size(params.get("ResultSize"))
    predicate = _compile(_text("Filter", params.get("Filter")))
    identity = _text("Identity", params.get("Identity"))

    def wanted(m: CloudMailbox) -> bool:
        if mailboxes and m.recipient_type_details not in rt.CLOUD_MAILBOX_TYPES:
            return False
        if types is not None and m.recipient_type_details not in types:
            return False
        return predicate is None or predicate(m)

    if identity is not None:
        # Exchange scopes the identity lookup by the other parameters: no match, not found.
        m = _resolve(store, identity)
        if not wanted(m):
            raise _not_found(identity)
        return CmdletResult([m], render_recipient)
    # References only: the HTTP layer renders the one page it sends.
    found = list(islice(filter(wanted, store), None if limit is None else limit + 1))
    if limit is None or len(found) <= limit:
        return CmdletResult(found, render_recipient)
    warning = _MORE if params.get("ResultSize") is not None else _TOO_MANY.format(n=limit)
    return CmdletResult(found[:limit], render_recipient, (warning,))


def _compile(text: str | None) -> Callable[[CloudMailbox], bool] | None:
    if text is None:
        return None
    try:
        return compile_filter(text, RECIPIENT_PROPERTIES)
    except OpathError as e:
        raise errors.parameter_binding(e.binding_message(text)) from None


def _resolve(store: CloudStore, identity: str, *, mailbox: bool = False) -> CloudMailbox:
    try:
        m = store.resolve(identity)
    except NotFound:
        raise _not_found(identity) from None
    if mailbox and m.recipient_type_details not in rt.CLOUD_MAILBOX_TYPES:
        raise _not_found(identity)  # a mail user is not a mailbox
    return m


# ---------------------------------------------------------------------- Set-Mailbox
_SET_PARAMETERS: dict[str, Callable[[str, Any], Any]] = {
    **dict.fromkeys(CUSTOM, _text),
    **dict.fromkeys(EXTENSION, _multi),
    "EmailAddresses": _multi,
    "WindowsEmailAddress": _text,
    "HiddenFromAddressListsEnabled": _flag,
    "Type": _mailbox_type,
    "IsExchangeCloudManaged": _flag,
}


def _set_mailbox(store: CloudStore, params: dict[str, Any]) -> CmdletResult:
    """Bind, resolve, check the write scope, validate, then apply in one store update."""
    identity = _text("Identity", params.get("Identity"))
    if identity is None:
        raise errors.missing_mandatory("Identity")
    edits = {n: bind(n, params[n]) for n, bind in _SET_PARAMETERS.items() if n in params}
    m = _resolve(store, identity, mailbox=True)
    _check_write_scope(m, edits)
    values = _plan(store, m, edits)
    if _flag("WhatIf", params.get("WhatIf", False)) or store.update(m.id, values) is None:
        unchanged = f"The command completed successfully but no settings of '{identity}' have "
        return CmdletResult([], render_recipient, (unchanged + "been modified.",))
    return CmdletResult([], render_recipient)


def _check_write_scope(m: CloudMailbox, edits: dict[str, Any]) -> None:
    """Exchange attributes of a dir-synced mailbox belong to AD unless it is cloud-managed.

    The flag counts at its value AFTER this request: switching to cloud management and editing
    in one call succeeds; switching back while editing is refused (AD would overwrite the edit).
    """
    managed = edits.get("IsExchangeCloudManaged", m.is_exchange_cloud_managed)
    blocked = [name for name in edits if name != "IsExchangeCloudManaged"]
    if not m.is_dir_synced or managed or not blocked:
        return
    raise errors.out_of_write_scope(m.alias, blocked)


def _plan(store: CloudStore, m: CloudMailbox, edits: dict[str, Any]) -> dict[str, Any]:
    """Validate every edit; the CloudMailbox fields to write (unchanged values included)."""
    custom = list(m.custom_attributes)
    extension = list(m.extension_custom_attributes)
    for name, value in edits.items():
        if name in CUSTOM:
            custom[CUSTOM.index(name)] = _custom_value(value)
        elif name in EXTENSION:
            i = EXTENSION.index(name)
            extension[i] = _edit_extension(extension[i], value)
    values: dict[str, Any] = {
        "custom_attributes": tuple(custom),
        "extension_custom_attributes": tuple(extension),
    }
    if "EmailAddresses" in edits or "WindowsEmailAddress" in edits:
        addresses = _plan_addresses(store, m, edits)
        values["email_addresses"] = addresses
        values["windows_email_address"] = primary_smtp(addresses)
    for param, field in (
        ("HiddenFromAddressListsEnabled", "hidden_from_address_lists"),
        ("Type", "recipient_type_details"),
        ("IsExchangeCloudManaged", "is_exchange_cloud_managed"),
    ):
        if param in edits:
            values[field] = edits[param]
    return values


def _custom_value(value: str | None) -> str | None:
    if not value:
        return None  # $null and "" both clear the attribute
    if len(value) > CUSTOM_MAX:
        raise errors.value_too_long(value, CUSTOM_MAX)
    return value


def _edit_extension(current: tuple[str, ...], edit: MultiEdit) -> tuple[str, ...]:
    """ExtensionCustomAttributeN after the edit; values compare case-insensitively, as in AD."""
    for v in (*(edit.replace or ()), *edit.add):
        if not v:
            raise errors.value_too_short()
        if len(v) > EXTENSION_MAX:
            raise errors.value_too_long(v, EXTENSION_MAX)
    new = _apply(current, edit, str.casefold)
    return current if _same_values(current, new) else tuple(new)


def _apply(current: Sequence[str], edit: MultiEdit, key: Callable[[str], str]) -> list[str]:
    """A list replaces; else remove, then add (an added value already there takes its form)."""
    if edit.replace is not None:
        _reject_duplicates(edit.replace, key)
        return list(edit.replace)
    _reject_duplicates(edit.add, key)
    gone = {key(v) for v in (*edit.remove, *edit.add)}
    return [v for v in current if key(v) not in gone] + list(edit.add)


# ---------------------------------------------------------------------- proxy addresses
def _plan_addresses(store: CloudStore, m: CloudMailbox, edits: dict[str, Any]) -> tuple[str, ...]:
    """EmailAddresses after the edit, then WindowsEmailAddress (which wins on the primary)."""
    addresses = list(m.email_addresses)
    if "EmailAddresses" in edits:
        addresses = _edit_addresses(addresses, edits["EmailAddresses"])
    if "WindowsEmailAddress" in edits:
        addresses = _make_primary(addresses, edits["WindowsEmailAddress"])
    primaries = sum(a.startswith("SMTP:") for a in addresses)
    if primaries != 1:
        raise errors.multiple_primaries() if primaries else errors.no_primary()
    _check_owners(store, m, addresses)
    return m.email_addresses if _same_values(m.email_addresses, addresses) else tuple(addresses)


def _edit_addresses(current: list[str], edit: MultiEdit) -> list[str]:
    parsed = MultiEdit(
        None if edit.replace is None else tuple(map(_proxy, edit.replace)),
        tuple(map(_proxy, edit.add)),
        edit.remove,  # not parsed, so that a malformed address already there can be removed
    )
    new = _apply(current, parsed, _address_key)
    if edit.replace is not None and not any(a.startswith("SMTP:") for a in new):
        # As in Exchange: with no "SMTP:" given, the first SMTP address becomes the primary.
        first = next((i for i, a in enumerate(new) if a.startswith("smtp:")), None)
        if first is not None:
            new[first] = f"SMTP:{new[first][5:]}"
    return new


def _address_key(address: str) -> str:
    return address_key(address if ":" in address else f"smtp:{address}")


def _make_primary(addresses: list[str], address: str | None) -> list[str]:
    """WindowsEmailAddress: the old primary becomes smtp:, the new address SMTP:."""
    if not address or not _SMTP.fullmatch(address):
        raise errors.invalid_smtp(address or "")
    key = address_key(f"smtp:{address}")
    out = [f"smtp:{a[5:]}" if a.startswith("SMTP:") else a for a in addresses]
    hit = next((i for i, a in enumerate(out) if address_key(a) == key), None)
    if hit is None:
        return [f"SMTP:{address}", *out]
    out[hit] = f"SMTP:{address}"
    return out


def _proxy(value: str) -> str:
    """A proxy address in canonical form; a bare address is a secondary SMTP address."""
    prefix, sep, rest = value.partition(":")
    if not sep:
        prefix, rest = "smtp", value
    kind = prefix.upper()
    if kind not in ADDRESS_TYPES:
        raise errors.unsupported_prefix(value, prefix)
    if kind == "SMTP":
        if not _SMTP.fullmatch(rest):
            raise errors.invalid_smtp(rest)
        return f"{'SMTP' if prefix == 'SMTP' else 'smtp'}:{rest}"
    if not rest.strip() or (kind == "X500" and not (rest.startswith("/") and len(rest) > 1)):
        raise errors.invalid_address(kind, value)
    return f"{kind if prefix == kind else kind.lower()}:{rest}"


def _check_owners(store: CloudStore, m: CloudMailbox, addresses: list[str]) -> None:
    mine = {address_key(a) for a in m.email_addresses}
    for a in addresses:
        owner = None if address_key(a) in mine else store.owner_of(a)
        if owner is not None and owner.id != m.id:
            raise errors.proxy_address_taken(a, owner.alias)


def _reject_duplicates(values: Sequence[str], key: Callable[[str], str]) -> None:
    seen: set[str] = set()
    for v in values:
        if key(v) in seen:
            raise errors.value_repeated(v)
        seen.add(key(v))


def _same_values(old: Sequence[str], new: Sequence[str]) -> bool:
    # Multi-valued properties are sets: a reordering alone is no change.
    return sorted(old) == sorted(new)


# ---------------------------------------------------------------------- hybrid objects
# What the Hybrid Configuration Wizard left in Exchange Online (mockservers/cloud/hybrid.py);
# Get-/Remove-HybridApplication stand for the HybridManagement module's calls.
_PF_TYPE = "Microsoft.Exchange.Data.PublicFoldersDeployment"


def _required(params: dict[str, Any], name: str) -> str:
    value = _text(name, params.get(name))
    if value is None or not value.strip():
        raise errors.missing_mandatory(name)
    return value


def _unchanged(identity: str) -> CmdletResult:
    return CmdletResult(
        [],
        dict,
        (
            f"The command completed successfully but no settings of '{identity}' have been "
            "modified.",
        ),
    )


def _hybrid_renderer(kind: str) -> Callable[[Any], dict[str, Any]]:
    if kind in ("distribution_groups", "mail_contacts"):
        return partial(lambda k, o: o.to_ps(k), kind)
    return lambda o: o.to_ps()


def _find_hybrid(store: CloudStore, kind: str, identity: str) -> Any:
    try:
        return store.hybrid.find(kind, identity)
    except HybridNotFound:
        raise _not_found(identity) from None


def _get_hybrid(kind: str, key: str = "Identity") -> Runner:
    """Get-<object> [-Identity]: one object, or all of them (ResultSize where it applies)."""
    render = _hybrid_renderer(kind)

    def run(store: CloudStore, params: dict[str, Any]) -> CmdletResult:
        limit = _result_size(params.get("ResultSize"))
        identity = _text(key, params.get(key))
        if identity is not None:
            return CmdletResult([_find_hybrid(store, kind, identity)], render)
        items = store.hybrid.all(kind)
        if limit is None or len(items) <= limit:
            return CmdletResult(items, render)
        warning = _MORE if params.get("ResultSize") is not None else _TOO_MANY.format(n=limit)
        return CmdletResult(items[:limit], render, (warning,))

    return run


def _remove_hybrid(kind: str, key: str = "Identity") -> Runner:
    """Remove-<object> -Identity; an unknown identity is ManagementObjectNotFoundException."""

    def run(store: CloudStore, params: dict[str, Any]) -> CmdletResult:
        identity = _required(params, key)
        try:
            store.hybrid.remove(kind, identity)
        except HybridNotFound:
            raise _not_found(identity) from None
        except HybridInUse as e:
            raise errors.connector_in_use(e.name, e.users) from None
        return CmdletResult([], dict)

    return run


def _set_intra_organization_connector(store: CloudStore, params: dict[str, Any]) -> CmdletResult:
    identity = _required(params, "Identity")
    kind = "intra_organization_connectors"
    if "Enabled" not in params:
        _find_hybrid(store, kind, identity)
        return _unchanged(identity)
    enabled = _flag("Enabled", params["Enabled"])
    try:
        changed = store.hybrid.set_enabled(kind, identity, enabled)
    except HybridNotFound:
        raise _not_found(identity) from None
    return CmdletResult([], dict) if changed else _unchanged(identity)


def _set_organization_config(store: CloudStore, params: dict[str, Any]) -> CmdletResult:
    if "PublicFoldersEnabled" not in params:
        return _unchanged(store.org.identity)
    raw = params["PublicFoldersEnabled"]
    key = raw.casefold() if isinstance(raw, str) else None
    value = next((v for v in PUBLIC_FOLDERS_ENABLED if v.casefold() == key), None)
    if value is None:
        raise errors.not_an_enumerator(
            "PublicFoldersEnabled", raw, _PF_TYPE, PUBLIC_FOLDERS_ENABLED
        )
    if not store.set_public_folders_enabled(value):
        return _unchanged(store.org.identity)
    return CmdletResult([], dict)


def _one(item: dict[str, Any]) -> CmdletResult:
    return CmdletResult([item], dict)


_GET = ("Identity", "ResultSize", "Filter", "RecipientTypeDetails", *_COMMON)
_SET = ("Identity", *_SET_PARAMETERS, "Confirm", "Force", "WhatIf", *_COMMON)
_H_GET = ("Identity", *_COMMON)
_H_GET_MANY = ("Identity", "ResultSize", *_COMMON)
_H_REMOVE = ("Identity", "Confirm", *_COMMON)
_H_APP_GET = ("AppId", *_COMMON)
_H_APP_REMOVE = ("AppId", "Confirm", *_COMMON)
_H_SET_IOC = ("Identity", "Enabled", "Confirm", *_COMMON)
_H_SET_ORG = ("PublicFoldersEnabled", "Confirm", *_COMMON)
_HYBRID_CMDLETS: tuple[tuple[str, tuple[str, ...], bool, Runner], ...] = (
    ("Get-InboundConnector", _H_GET, False, _get_hybrid("inbound_connectors")),
    ("Remove-InboundConnector", _H_REMOVE, True, _remove_hybrid("inbound_connectors")),
    ("Get-OutboundConnector", _H_GET, False, _get_hybrid("outbound_connectors")),
    ("Remove-OutboundConnector", _H_REMOVE, True, _remove_hybrid("outbound_connectors")),
    ("Get-OrganizationRelationship", _H_GET, False, _get_hybrid("organization_relationships")),
    (
        "Remove-OrganizationRelationship",
        _H_REMOVE,
        True,
        _remove_hybrid("organization_relationships"),
    ),
    (
        "Get-IntraOrganizationConnector",
        _H_GET,
        False,
        _get_hybrid("intra_organization_connectors"),
    ),
    ("Set-IntraOrganizationConnector", _H_SET_IOC, True, _set_intra_organization_connector),
    ("Get-TransportRule", _H_GET, False, _get_hybrid("transport_rules")),
    ("Remove-TransportRule", _H_REMOVE, True, _remove_hybrid("transport_rules")),
    ("Get-DistributionGroup", _H_GET_MANY, False, _get_hybrid("distribution_groups")),
    ("Get-MailContact", _H_GET_MANY, False, _get_hybrid("mail_contacts")),
    ("Set-OrganizationConfig", _H_SET_ORG, True, _set_organization_config),
    ("Get-HybridApplication", _H_APP_GET, False, _get_hybrid("hybrid_applications", "AppId")),
    (
        "Remove-HybridApplication",
        _H_APP_REMOVE,
        True,
        _remove_hybrid("hybrid_applications", "AppId"),
    ),
)
_MAILBOX_CMDLETS: tuple[tuple[str, tuple[str, ...], bool, Runner], ...] = (
    ("Get-Mailbox", _GET, False, partial(_get_recipients, mailboxes=True)),
    ("Get-Recipient", _GET, False, partial(_get_recipients, mailboxes=False)),
    ("Get-OrganizationConfig", _COMMON, False, lambda store, _: _one(store.org.to_json())),
    ("Set-Mailbox", _SET, True, _set_mailbox),
)
# (name, parameters, whether it writes, runner) by case-folded name, as PowerShell looks it up.
_CMDLETS: dict[str, tuple[str, tuple[str, ...], bool, Runner]] = {
    c[0].casefold(): c for c in (*_MAILBOX_CMDLETS, *_HYBRID_CMDLETS)
}
