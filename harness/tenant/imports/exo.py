"""Reading Exchange Online mailbox exports: `Get-Mailbox` / `Get-EXOMailbox` as JSON or CSV.

What admins run (Microsoft facts §8.5):

    Get-Mailbox -ResultSize Unlimited | Select-Object ... | ConvertTo-Json -Depth 4 > m.json
    Get-EXOMailbox -ResultSize Unlimited -PropertySets Minimum,Custom,AddressList | ...
    ... | Export-Csv m.csv            (lists joined first: @{n='EmailAddresses';e={... -join ';'}})

Property names are matched case-insensitively and come out in Get-Mailbox's PascalCase;
values are typed (GUIDs lowercase, booleans, ISO 8601 UTC dates, lists for multi-valued
properties). A property the export did not include is absent from the record (not "empty"):
the preflight must not read an unexported CustomAttribute3 as one the cloud cleared. An
included but empty one is None (single-valued) or [] (multi-valued), as AD has no empty value.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

from harness.tenant.imports.pstext import (
    DEPTH_HINT,
    SLOW,
    Findings,
    ValueReader,
    ascii_mangled,
    csv_rows,
    first_mangled,
    identify,
    json_head_keys,
    json_records,
    plain_value,
    quick_value,
    text_form,
)
from harness.tenant.imports.records import ExportError, MailboxRecord, Origin
from harness.tenant.imports.textfile import TextInput, open_text
from harness.tenant.model import CUSTOM_ATTRIBUTE_COUNT, EXTENSION_CUSTOM_ATTRIBUTE_COUNT

EXO_FORMATS: Final = ("exo-json", "exo-csv")

GUID_PROPERTIES: Final = (
    "Guid",
    "ExchangeGuid",
    "ExternalDirectoryObjectId",
    "ArchiveGuid",
    "ExchangeObjectId",
)
TEXT_PROPERTIES: Final = (
    "UserPrincipalName",
    "Alias",
    "DisplayName",
    "Name",
    "PrimarySmtpAddress",
    "WindowsEmailAddress",
    *(f"CustomAttribute{i}" for i in range(1, CUSTOM_ATTRIBUTE_COUNT + 1)),
    "RecipientType",
    "RecipientTypeDetails",
    "LegacyExchangeDN",
    "DistinguishedName",
)
LIST_PROPERTIES: Final = (
    "EmailAddresses",
    *(f"ExtensionCustomAttribute{i}" for i in range(1, EXTENSION_CUSTOM_ATTRIBUTE_COUNT + 1)),
)
BOOL_PROPERTIES: Final = ("IsDirSynced", "IsExchangeCloudManaged", "HiddenFromAddressListsEnabled")
DATE_PROPERTIES: Final = (
    "WhenChanged",
    "WhenCreated",
    "WhenChangedUTC",
    "WhenCreatedUTC",
    "WhenMailboxCreated",
)
# Keys as Get-Mailbox spells them, and lowercased (input is matched case-insensitively).
_CANONICAL: Final = {
    k: p
    for p in (
        *GUID_PROPERTIES,
        *TEXT_PROPERTIES,
        *LIST_PROPERTIES,
        *BOOL_PROPERTIES,
        *DATE_PROPERTIES,
    )
    for k in (p, p.lower())
}
_KIND: Final = {
    **dict.fromkeys(GUID_PROPERTIES, "guid"),
    **dict.fromkeys(TEXT_PROPERTIES, "text"),
    **dict.fromkeys(LIST_PROPERTIES, "list"),
    "EmailAddresses": "addresses",
    "RecipientTypeDetails": "enum",  # may be a number to name
    **dict.fromkeys(BOOL_PROPERTIES, "bool"),
    **dict.fromkeys(DATE_PROPERTIES, "date"),
}
# Where Windows PowerShell 5.1's ASCII Export-Csv leaves '?' for a non-ASCII letter.
_NAME_PROPERTIES: Final = (
    "DisplayName",
    "Name",
    "Alias",
    "UserPrincipalName",
    "PrimarySmtpAddress",
    "WindowsEmailAddress",
    "EmailAddresses",
)

# RecipientTypeDetails as a number (Windows PowerShell 5.1 writes some enums so): the
# documented msExchRecipientTypeDetails flags, the same values harness/tenant/recipients.py
# uses for the AD side.
RECIPIENT_TYPE_DETAILS: Final = {
    1: "UserMailbox",
    2: "LinkedMailbox",
    4: "SharedMailbox",
    16: "RoomMailbox",
    32: "EquipmentMailbox",
    64: "MailContact",
    128: "MailUser",
    2147483648: "RemoteUserMailbox",
    8589934592: "RemoteRoomMailbox",
    17179869184: "RemoteEquipmentMailbox",
    34359738368: "RemoteSharedMailbox",
    137438953472: "TeamMailbox",
    1099511627776: "GroupMailbox",
}

# Keys (lowercase) that tell a mailbox export from a Graph users export, for detection.
MAILBOX_KEYS: Final = frozenset(
    {
        "guid",
        "externaldirectoryobjectid",
        "primarysmtpaddress",
        "emailaddresses",
        "recipienttypedetails",
        "alias",
        "exchangeguid",
        "isexchangecloudmanaged",
        "isdirsynced",
    }
)
GRAPH_KEYS: Final = frozenset(
    {
        "id",
        "@odata.context",
        "@odata.nextlink",
        "value",
        "onpremisesimmutableid",
        "onpremisessyncenabled",
        "proxyaddresses",
        "mail",
        "onpremisesextensionattributes",
        "additionalproperties",
    }
)
# A mailbox needs one of each pair: an id to join on, a name to match by.
_REQUIRED: Final = (
    ("ExternalDirectoryObjectId", "Guid"),
    ("UserPrincipalName", "PrimarySmtpAddress"),
)
_EXPORT_HINT: Final = "export: Get-Mailbox -ResultSize Unlimited | ... | ConvertTo-Json -Depth 4"
_SELECT_HINT: Final = (
    "include it in the export: Select-Object Guid,ExternalDirectoryObjectId,"
    "UserPrincipalName,PrimarySmtpAddress,EmailAddresses,..."
)


_LITERALS: Final = ("true", "false", "null")  # JSON scalars a file may (wrongly) be
_CSV_KEYS: Final = MAILBOX_KEYS | {"userprincipalname", "displayname"}  # two make a header


def export_side(keys: list[str]) -> str | None:
    """Which export the first keys of a JSON file look like: "exo", "graph" or None."""
    low = [k.lower() for k in keys]
    exo = sum(k in MAILBOX_KEYS for k in low)
    graph = sum(k in GRAPH_KEYS for k in low)
    if exo == graph == 0:
        return None
    return "exo" if exo > graph else "graph"


def detect_exo_format(src: TextInput) -> str:
    """`exo-json` or `exo-csv` from the first characters of the file."""
    head = src.head(16 * 1024).lstrip()
    if not head:
        raise ExportError(Origin(str(src.path), 1), "the file is empty", _EXPORT_HINT)
    first = head.splitlines()[0]
    columns = {c.strip().strip('"').lower() for c in re.split(r"[,;\t]", first)}
    if first.startswith("#TYPE") or len(columns & _CSV_KEYS) >= 2:
        return "exo-csv"
    if head.startswith(("[", "{")):
        if export_side(json_head_keys(head)) == "graph":
            raise ExportError(
                Origin(str(src.path), 1),
                "this looks like a Graph users export, not Get-Mailbox output",
                "give it with --graph; --exo takes Get-Mailbox ... | ConvertTo-Json -Depth 4",
            )
        return "exo-json"
    if head[:1] in ('"', "-") or head[:1].isdigit() or head.startswith(_LITERALS):
        return "exo-json"  # a JSON scalar: json_records says what it is and what is wanted
    raise ExportError(
        Origin(str(src.path), 1),
        "not a mailbox export this reader knows (neither JSON nor a CSV with Get-Mailbox columns)",
        f"formats: {', '.join(EXO_FORMATS)}; name the format with --format if it is one of them",
    )


def read_mailboxes(
    path: Path, fmt: str | None = None, warnings: list[str] | None = None
) -> Iterator[MailboxRecord]:
    """The mailboxes of an Exchange Online export, streamed. The format is detected now (an
    unknown one raises ExportError at once); bad records raise ExportError as they are read;
    warnings (non-ASCII letters lost, unknown enum numbers) go to `warnings` at the end."""
    src = open_text(path)
    if fmt is None:
        fmt = detect_exo_format(src)
    elif fmt not in EXO_FORMATS:
        raise ExportError(
            Origin(str(path)),
            f"unknown mailbox export format {fmt!r}",
            f"formats: {', '.join(EXO_FORMATS)}",
        )
    return _read(src, fmt, warnings)


def _read(src: TextInput, fmt: str, warnings: list[str] | None) -> Iterator[MailboxRecord]:
    path = str(src.path)
    found = Findings(path)
    if fmt == "exo-json":
        records: Iterator[tuple[int, dict[str, Any]]] = json_records(
            src, "mailbox", "mailboxes", _EXPORT_HINT
        )
    else:
        header_line, header, rows = csv_rows(src)
        _check_columns(Origin(path, header_line), header)
        records = rows
    n = 0
    for line, raw in records:
        n += 1
        yield _mailbox(raw, Origin(path, line), n, fmt == "exo-csv", found)
    if not n:
        raise ExportError(
            Origin(path),
            "no mailboxes in the export",
            "is it the right file? Get-Mailbox -ResultSize Unlimited | ...",
        )
    found.emit(warnings)


def _check_columns(origin: Origin, header: list[str]) -> None:
    low = {h.lower() for h in header}
    for a, b in _REQUIRED:
        if a.lower() not in low and b.lower() not in low:
            raise ExportError(origin, f"the header has no {a} or {b} column", _SELECT_HINT)


_WHO: Final = ("UserPrincipalName", "PrimarySmtpAddress", "Guid", "ExternalDirectoryObjectId")


def _mailbox(
    raw: dict[str, Any], origin: Origin, index: int, from_csv: bool, found: Findings
) -> MailboxRecord:
    props: dict[str, Any] = {}  # file order, so the same file gives the same records
    slow: list[str] = []  # properties whose value needs converting
    for key, value in raw.items():
        name = _CANONICAL.get(key) or _CANONICAL.get(key.lower())
        if name is None:
            if plain_value(value):  # other selected properties pass through; objects cannot be used
                props[key] = value if value != "" else None
        elif name in props:
            who = identify(props, _WHO, index, "mailbox")
            raise ExportError(origin, f"{who}: {name} appears twice")
        else:
            props[name] = v = quick_value(_KIND[name], value)
            if v is SLOW:
                props[name] = value
                slow.append(name)
    who = identify(props, _WHO, index, "mailbox")
    if slow:
        conv = _MailboxValues(origin, who, from_csv, found)
        for name in slow:
            props[name] = conv.convert(name, _KIND[name], props[name])
    for a, b in _REQUIRED:
        if props.get(a) is None and props.get(b) is None:
            raise ExportError(origin, f"{who}: no {a} or {b}", _SELECT_HINT)
    mangled = first_mangled(props, _NAME_PROPERTIES)
    if mangled:
        found.add("ascii", f"{mangled} of {who} (line {origin.line})", ascii_mangled)
    return MailboxRecord(props, origin)


class _MailboxValues(ValueReader):
    """Get-Mailbox's own forms: ProxyAddress objects, RecipientTypeDetails as a number."""

    def item_object(self, prop: str, item: dict[str, Any]) -> str:
        """A ProxyAddress object (Get-Mailbox in the Exchange Management Shell, -Depth 3+):
        `ProxyAddressString` is the `SMTP:a@b` text; else prefix and address rebuild it."""
        text = item.get("ProxyAddressString")
        if isinstance(text, str) and text:
            return text
        prefix, address = item.get("PrefixString"), item.get("AddressString")
        if isinstance(prefix, str) and isinstance(address, str) and prefix and address:
            primary = item.get("IsPrimaryAddress") is True
            return f"{prefix.upper() if primary else prefix.lower()}:{address}"
        raise self.fail(prop, "holds an object without ProxyAddressString", DEPTH_HINT)

    def text(self, prop: str, value: Any) -> str:
        text = text_form(value)
        if prop != "RecipientTypeDetails":
            return text
        if not text.isdigit():
            return text
        name = RECIPIENT_TYPE_DETAILS.get(int(text))
        if name is None:
            self.found.add(
                f"rtd:{text}",
                f"{self.who} (line {self.origin.line})",
                lambda n, ex: (
                    f"RecipientTypeDetails {text} is a number this reader does not know, kept "
                    f"as text, on {n} mailbox(es), e.g. {ex}"
                ),
            )
            return text
        return name
