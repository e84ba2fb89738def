"""The stand-in for Entra Connect's private directory-synchronization service (AD -> cloud).

Real Entra Connect does not export through Graph: it calls a private sync web service as a
"Directory Synchronization Accounts" identity, and Entra then updates Exchange Online. This
module is that service's logic over a `CloudStore`; the HTTP layer routes
``POST /exwb/dirsync/{tenant}/export`` here (only the ``exwb-connect`` app may call it).

Request: a batch of up to `MAX_BATCH` objects keyed by source anchor, each with the AD-named
properties to set (AD syntax: a string, a list for multi-valued ones, null to clear)::

    {"objects": [{"sourceAnchor": "<onPremisesImmutableId>",
                  "properties": {"displayName": "...", "extensionAttribute1": null,
                                 "proxyAddresses": ["SMTP:a@contoso.com", ...],
                                 "msExchRecipientTypeDetails": "2147483648", ...}}]}

Response (200, like Graph's ``$batch``): one result per object, in order, each
``{"sourceAnchor", "status", "body"}``: 200 with ``{"id", "changedProperties"}`` (the Exchange
property names that changed; empty when the values were already there), or 400 / 404 / 409
with Graph's error body. Each object is validated as a whole and applied with one
`CloudStore.update`, so it shows in Graph's delta feed like any other change and a rejected
object changes nothing. A malformed batch raises `CloudError` 400 and nothing is applied.

Scope is Connect's job, not the service's: whether Exchange attributes of a cloud-managed
mailbox are sent at all depends on the Connect build (see `harness.engine.forward`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from harness.tenant import recipients as rt
from harness.tenant.model import (
    CUSTOM_ATTRIBUTE_COUNT,
    EXTENSION_CUSTOM_ATTRIBUTE_COUNT,
    CloudMailbox,
)
from mockservers.cloud import errors
from mockservers.cloud.errors import CloudError, error_body
from mockservers.cloud.exo import CUSTOM_MAX, EXTENSION_MAX
from mockservers.cloud.exo import _proxy as canonical_proxy  # the address rules of Set-Mailbox
from mockservers.cloud.store import CloudStore, address_key

MAX_BATCH = 100
DISPLAY_NAME_MAX = 256  # Entra's displayName limit
UPN_MAX = 113  # 64 characters before the @, 48 after: Entra's documented UPN limit
_UPN = re.compile(r"[^@\s]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9.-]{0,46}[A-Za-z0-9])?")

# msExchRecipientTypeDetails in AD -> RecipientTypeDetails in Exchange Online.
AD_TYPE_DETAILS: dict[int, str] = {
    **{v.type_details: name for name, v in rt.REMOTE_AD_VALUES.items()},
    rt.ONPREM_USER_MAILBOX_TYPE_DETAILS: rt.MAIL_USER,
}


@dataclass(frozen=True, slots=True)
class ExportObject:
    """One object of a batch: its source anchor and the AD-named properties to set."""

    anchor: str
    properties: dict[str, Any]


# ------------------------------------------------------------------------------- the batch
def parse_batch(payload: Any) -> list[ExportObject]:
    """The objects of a request body; raises CloudError 400 when the batch is malformed."""
    objects = payload.get("objects") if isinstance(payload, dict) else None
    if not isinstance(objects, list):
        raise errors.batch_not_an_object()
    if not 1 <= len(objects) <= MAX_BATCH:
        raise errors.batch_size(len(objects), MAX_BATCH)
    out: list[ExportObject] = []
    seen: set[str] = set()
    for i, obj in enumerate(objects):
        if not isinstance(obj, dict) or set(obj) - {"sourceAnchor", "properties"}:
            raise errors.batch_entry_shape(i)
        anchor, props = obj.get("sourceAnchor"), obj.get("properties")
        if not isinstance(anchor, str) or not anchor:
            raise errors.batch_anchor_empty(i)
        if not isinstance(props, dict):
            raise errors.batch_properties(i)
        if anchor in seen:
            # Two exports of one object in a batch: which one wins would be a guess.
            raise errors.batch_anchor_twice(i, anchor)
        seen.add(anchor)
        out.append(ExportObject(anchor, props))
    return out


def export(
    store: CloudStore, objects: list[ExportObject], request_id: str | None = None
) -> dict[str, Any]:
    """Apply each object; the per-object results as the response body."""
    return {"value": [_export_one(store, obj, request_id) for obj in objects]}


def _export_one(store: CloudStore, obj: ExportObject, request_id: str | None) -> dict[str, Any]:
    m = store.by_anchor(obj.anchor)
    try:
        if m is None or not m.is_dir_synced:
            raise errors.export_no_anchor(obj.anchor)
        values = _plan(store, m, obj.properties)
        change = store.update(m.id, values) if values else None
    except CloudError as e:
        body = error_body(e.code, e.message, request_id)
        return {"sourceAnchor": obj.anchor, "status": e.status, "body": body}
    changed = sorted(change.properties) if change is not None else []
    return {
        "sourceAnchor": obj.anchor,
        "status": 200,
        "body": {"id": m.id, "changedProperties": changed},
    }


# ------------------------------------------------------------------------------- properties
def _single(prop: str, value: Any) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise errors.export_not_a_string(prop)
    return value


def _multi(prop: str, value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise errors.export_not_a_list(prop)
    return tuple(value)


def _no_repeats(prop: str, values: tuple[str, ...], key: Callable[[str], str]) -> None:
    seen: set[str] = set()
    for v in values:
        if key(v) in seen:
            raise errors.export_value_twice(prop, v)
        seen.add(key(v))


def _plan(store: CloudStore, m: CloudMailbox, props: Mapping[str, Any]) -> dict[str, Any]:
    """Validate every property; the CloudMailbox fields to write."""
    values: dict[str, Any] = {}
    custom = list(m.custom_attributes)
    extension = list(m.extension_custom_attributes)
    for prop, raw in props.items():
        handler = _HANDLERS.get(prop)
        if handler is not None:
            handler(store, m, prop, raw, values)
        elif (i := _indexed(prop, "extensionAttribute", CUSTOM_ATTRIBUTE_COUNT)) is not None:
            v = _single(prop, raw)
            if v is not None and len(v) > CUSTOM_MAX:
                raise errors.export_too_long(prop, CUSTOM_MAX)
            custom[i] = v
            values["custom_attributes"] = tuple(custom)
        elif (
            i := _indexed(prop, "msExchExtensionCustomAttribute", EXTENSION_CUSTOM_ATTRIBUTE_COUNT)
        ) is not None:
            vs = _multi(prop, raw)
            if any(not 1 <= len(v) <= EXTENSION_MAX for v in vs):
                raise errors.export_value_lengths(prop, EXTENSION_MAX)
            _no_repeats(prop, vs, str.casefold)
            extension[i] = vs
            values["extension_custom_attributes"] = tuple(extension)
        else:
            raise errors.export_not_in_schema(prop)
    return values


def _indexed(prop: str, stem: str, count: int) -> int | None:
    """0-based N-1 for `<stem>N` with 1 <= N <= count (exact case, as the schema names it)."""
    digits = prop.removeprefix(stem)
    if digits == prop or not digits.isdigit() or digits.startswith("0"):
        return None
    n = int(digits)
    return n - 1 if 1 <= n <= count else None


Handler = Callable[[CloudStore, CloudMailbox, str, Any, dict[str, Any]], None]


def _display_name(store: CloudStore, m: CloudMailbox, prop: str, raw: Any, out: dict) -> None:
    v = _single(prop, raw)
    if v is None or not v.strip() or len(v) > DISPLAY_NAME_MAX:
        raise errors.export_display_name(prop, DISPLAY_NAME_MAX)
    out["display_name"] = v


def _upn(store: CloudStore, m: CloudMailbox, prop: str, raw: Any, out: dict) -> None:
    v = _single(prop, raw)
    if v is None or len(v) > UPN_MAX or not _UPN.fullmatch(v):
        raise errors.export_not_a_upn(prop)
    owner = store.by_upn(v)
    if owner is not None and owner.id != m.id:
        raise errors.export_not_unique(prop)
    out["user_principal_name"] = v


def _mail(store: CloudStore, m: CloudMailbox, prop: str, raw: Any, out: dict) -> None:
    v = _single(prop, raw)
    if v is not None:
        try:
            canonical_proxy(f"smtp:{v}")
        except CloudError as e:
            raise errors.export_invalid(prop, e.message) from None
    out["windows_email_address"] = v or ""


def _proxy_addresses(store: CloudStore, m: CloudMailbox, prop: str, raw: Any, out: dict) -> None:
    addresses = _multi(prop, raw)
    for a in addresses:
        if ":" not in a:
            raise errors.export_no_prefix(prop, a)
        try:
            canonical_proxy(a)
        except CloudError as e:
            raise errors.export_invalid(prop, e.message) from None
    _no_repeats(prop, addresses, address_key)
    if sum(a.startswith("SMTP:") for a in addresses) != 1:
        raise errors.export_one_primary(prop)
    for a in addresses:
        owner = store.owner_of(a)
        if owner is not None and owner.id != m.id:
            raise errors.export_not_unique(prop)
    out["email_addresses"] = addresses


def _type_details(store: CloudStore, m: CloudMailbox, prop: str, raw: Any, out: dict) -> None:
    v = _single(prop, str(raw) if isinstance(raw, int) and not isinstance(raw, bool) else raw)
    kind = AD_TYPE_DETAILS.get(int(v)) if v is not None and v.lstrip("-").isdigit() else None
    if kind is None:
        raise errors.export_unknown_type(prop, raw, sorted(AD_TYPE_DETAILS))
    out["recipient_type_details"] = kind


def _hide(store: CloudStore, m: CloudMailbox, prop: str, raw: Any, out: dict) -> None:
    if isinstance(raw, bool) or raw is None:
        out["hidden_from_address_lists"] = bool(raw)
        return
    v = _single(prop, raw)
    if v is None or v.upper() not in ("TRUE", "FALSE"):
        raise errors.export_not_a_flag(prop)
    out["hidden_from_address_lists"] = v.upper() == "TRUE"


_HANDLERS: dict[str, Handler] = {
    "displayName": _display_name,
    "userPrincipalName": _upn,
    "mail": _mail,
    "proxyAddresses": _proxy_addresses,
    "msExchRecipientTypeDetails": _type_details,
    "msExchHideFromAddressLists": _hide,
}
