"""Reading Microsoft Graph user exports: saved `GET /v1.0/users` pages and `Get-MgUser` JSON.

What admins have (Microsoft facts §8.5):

    GET /v1.0/users?$select=id,userPrincipalName,onPremisesImmutableId,onPremisesSyncEnabled,
        proxyAddresses,mail,onPremisesExtensionAttributes        (each page saved as it came:
        one page, several pages one after another or in a JSON array, or an array of users)
    Get-MgUser -All -Property Id,OnPremisesImmutableId,... | ConvertTo-Json -Depth 4

Both formats are read the same way (the name says which tool made the file): property names
are matched case-insensitively and come out in Graph's camelCase (`Id` -> `id`,
`OnPremisesExtensionAttributes.ExtensionAttribute1` -> `onPremisesExtensionAttributes.
extensionAttribute1`), Get-MgUser's `AdditionalProperties` fill in what the model lacks, and
`@odata.*` annotations are dropped. A property the export did not select is absent from the
record; `onPremisesSyncEnabled` is True, False or None (cloud-only users have null).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

from harness.tenant.imports.exo import export_side
from harness.tenant.imports.pstext import (
    DEPTH_HINT,
    SLOW,
    Findings,
    ValueReader,
    ascii_mangled,
    first_mangled,
    identify,
    json_head_keys,
    json_records,
    plain_value,
    quick_value,
    unexpanded,
)
from harness.tenant.imports.records import ExportError, GraphUserRecord, Origin
from harness.tenant.imports.textfile import TextInput, open_text

GRAPH_FORMATS: Final = ("graph-json", "mguser-json")
EXTENSION_ATTRIBUTE_COUNT: Final = 15  # onPremisesExtensionAttributes.extensionAttribute1..15

_KINDS: Final = {
    "id": "guid",
    "userPrincipalName": "text",
    "onPremisesImmutableId": "text",
    "onPremisesSyncEnabled": "bool",
    "proxyAddresses": "addresses",
    "mail": "text",
    "mailNickname": "text",
    "displayName": "text",
    "givenName": "text",
    "surname": "text",
    "otherMails": "list",
    "accountEnabled": "bool",
    "userType": "text",
    "onPremisesSamAccountName": "text",
    "onPremisesUserPrincipalName": "text",
    "onPremisesDistinguishedName": "text",
    "onPremisesDomainName": "text",
    "onPremisesSecurityIdentifier": "text",
    "onPremisesLastSyncDateTime": "date",
    "createdDateTime": "date",
    "onPremisesExtensionAttributes": "extensions",
}
_CANONICAL: Final = {k.lower(): k for k in _KINDS}
_EXTENSIONS: Final = {
    f"extensionattribute{i}": f"extensionAttribute{i}"
    for i in range(1, EXTENSION_ATTRIBUTE_COUNT + 1)
}
_NAMES: Final = (
    "displayName",
    "givenName",
    "surname",
    "userPrincipalName",
    "mail",
    "mailNickname",
    "proxyAddresses",
)
_WHO: Final = ("userPrincipalName", "mail", "id")
# Get-MgUser's own keys (PascalCase) that a Graph response never has.
_MGUSER_KEYS: Final = frozenset({"Id", "OnPremisesImmutableId", "UserPrincipalName", "Mail"})
_SAVE_HINT: Final = "save the Graph response as it is, or Get-MgUser ... | ConvertTo-Json -Depth 4"


def detect_graph_format(src: TextInput) -> str:
    """`graph-json` (Graph's camelCase, `@odata.context`) or `mguser-json` (PascalCase)."""
    origin = Origin(str(src.path), 1)
    head = src.head(16 * 1024).lstrip()
    formats = f"formats: {', '.join(GRAPH_FORMATS)}; name the format with --format"
    if not head:
        raise ExportError(origin, "the file is empty", _SAVE_HINT)
    if not head.startswith(("[", "{", '"', "-")) and not head[:1].isdigit():
        raise ExportError(origin, "not a Graph users export: Graph exports are JSON", formats)
    keys = json_head_keys(head)
    side = export_side(keys)
    if side == "exo":
        raise ExportError(
            origin,
            "this looks like Get-Mailbox output, not a Graph users export",
            "give it with --exo; --graph takes saved GET /v1.0/users pages or Get-MgUser JSON",
        )
    if side is None and keys:
        raise ExportError(origin, "no Graph user properties in the file", formats)
    # No keys at all: JSON that holds no objects; json_records says what it holds instead.
    if any(k in _MGUSER_KEYS or k == "AdditionalProperties" for k in keys):
        return "mguser-json"
    return "graph-json"


def read_graph_users(
    path: Path, fmt: str | None = None, warnings: list[str] | None = None
) -> Iterator[GraphUserRecord]:
    """The users of a Graph export, streamed (a page at a time: Graph pages hold at most 999
    users). Detection happens now; bad records raise ExportError as they are read; warnings
    (names with '?', a last page that still has `@odata.nextLink`) go to `warnings` at the end."""
    src = open_text(path)
    if fmt is None:
        fmt = detect_graph_format(src)
    elif fmt not in GRAPH_FORMATS:
        raise ExportError(
            Origin(str(path)),
            f"unknown Graph export format {fmt!r}",
            f"formats: {', '.join(GRAPH_FORMATS)}",
        )
    return _read(src, warnings)


def _read(src: TextInput, warnings: list[str] | None = None) -> Iterator[GraphUserRecord]:
    path = str(src.path)
    found = Findings(path)
    n = 0
    next_link: tuple[int, str] | None = None  # the last page's nextLink, if it had one
    for line, obj in json_records(src, "user", "users", _SAVE_HINT):
        origin = Origin(path, line)
        users: list[Any] = [obj]
        if "value" in obj and not _has_id(obj):
            users = obj["value"]
            if not isinstance(users, list):
                raise ExportError(origin, "a page whose value is not a list of users", _SAVE_HINT)
            link = obj.get("@odata.nextLink")
            next_link = (line, link) if isinstance(link, str) and link else None
        else:
            next_link = None
        for raw in users:
            n += 1
            if not isinstance(raw, dict):
                raise ExportError(origin, f"user #{n} is not an object", _SAVE_HINT)
            yield _user(raw, origin, n, found)
    if not n:
        raise ExportError(
            Origin(path),
            "no users in the export",
            "is it the right file? GET /v1.0/users?$select=id,... or Get-MgUser -All",
        )
    if next_link is not None:
        line, link = next_link
        found.add(
            "nextlink",
            f"line {line}",
            lambda _n, ex: (
                f"the last page ({ex}) has @odata.nextLink: the export stops before the end "
                f"of the user list, {n} users read (hint: follow @odata.nextLink until a page "
                "has none and save every page, or use Get-MgUser -All)"
            ),
        )
    found.emit(warnings)


def _has_id(obj: dict[str, Any]) -> bool:
    return any(k.lower() == "id" for k in obj)


class _UserValues(ValueReader):
    def extensions(self, prop: str, value: Any) -> dict[str, str | None] | None:
        """onPremisesExtensionAttributes as {extensionAttributeN: text or None}."""
        if value is None:
            return None
        if isinstance(value, str) and unexpanded(value):
            raise self.unexpanded(prop, value)
        if not isinstance(value, dict):
            raise self.fail(prop, "is not an object of extensionAttribute1..15", DEPTH_HINT)
        out: dict[str, str | None] = {}
        for key, v in value.items():
            name = _EXTENSIONS.get(key.lower())
            if name is not None:
                out[name] = self.convert(f"{prop}.{name}", "text", v)
        return out


def _user(raw: dict[str, Any], origin: Origin, index: int, found: Findings) -> GraphUserRecord:
    merged: dict[str, Any] = {}
    for key, value in raw.items():
        if key == "AdditionalProperties" or key.startswith("@odata."):
            continue
        name = _CANONICAL.get(key.lower()) or key[:1].lower() + key[1:]
        if name in merged:
            raise ExportError(origin, f"{identify(merged, _WHO, index, 'user')}: {name} twice")
        merged[name] = value
    extra = raw.get("AdditionalProperties")
    if isinstance(extra, dict):  # Get-MgUser: what its model has no property for
        for key, value in extra.items():
            name = _CANONICAL.get(key.lower()) or key
            if not key.startswith("@odata.") and merged.get(name) is None:
                merged[name] = value
    who = identify(merged, _WHO, index, "user")
    conv = _UserValues(origin, who, False, found)
    props: dict[str, Any] = {}
    for name, value in merged.items():
        kind = _KINDS.get(name)
        if kind is None:
            if plain_value(value):  # other selected properties pass through; objects cannot be used
                props[name] = value
        elif (v := quick_value(kind, value)) is not SLOW:
            props[name] = v
        elif kind == "extensions":
            props[name] = conv.extensions(name, value)
        else:
            props[name] = conv.convert(name, kind, value)
    if props.get("id") is None:
        raise ExportError(
            origin, f"{who}: no id", "select it: $select=id,... or Get-MgUser -Property Id,..."
        )
    mangled = first_mangled(props, _NAMES)
    if mangled:
        found.add("ascii", f"{mangled} of {who} (line {origin.line})", ascii_mangled)
    return GraphUserRecord(props, origin)
