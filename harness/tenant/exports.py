"""A tenant written out as the exports an administrator has, each with its quirks.

Microsoft facts §8.5 lists them: `ldifde -f` / `-u`, OpenLDAP's `ldapsearch -LLL`, `csvde -f` /
`-u`, `Get-ADUser ... | Export-Csv` (PowerShell 7 and Windows PowerShell 5.1), `Get-Mailbox ...
| ConvertTo-Json -Depth 4` (7 and 5.1) and `| Export-Csv`, saved pages of Graph's
`GET /v1.0/users?$select=...` and `Get-MgUser -All | ConvertTo-Json`. They are the project's
own fixtures for the import readers, the generate -> export -> import round trip and the 200k
benchmark, so every writer streams one object at a time and writes atomically.

Two formats are deliberately broken (`negative`): an unjoined Get-ADUser CSV
(`ADPropertyValueCollection` cells) and a Get-Mailbox JSON made at ConvertTo-Json's default
`-Depth 2` (`@{...}` / `System.Object[]` cells); the readers must refuse them.

What the model does not hold is derived deterministically from what it does: objectSid (a
domain SID from the base DN, RIDs in user order), the mailbox `Guid` / `ExchangeGuid` and
`WhenChanged` (from the mailbox id). GUID text is what PowerShell shows:
``uuid.UUID(bytes_le=objectGUID)``.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from json.encoder import encode_basestring
from pathlib import Path
from typing import Any

from harness.core.sid import FIRST_RID, DomainSid
from harness.tenant.files import WrittenFile, ensure_writable_dir, write_atomic
from harness.tenant.ldif import Entry, attribute_line, directory_entries, entry_text
from harness.tenant.model import (
    CUSTOM_ATTRIBUTE_COUNT,
    EXTENSION_CUSTOM_ATTRIBUTE_COUNT,
    AdUser,
    CloudMailbox,
    Tenant,
)

BOM = "\ufeff"
CRLF = "\r\n"
LDIFDE_WIDTH = 80
GRAPH_PAGE_SIZE = 100  # Graph's default page size for /users
GRAPH_ROOT = "https://graph.microsoft.com/v1.0"
GRAPH_SELECT = (
    "id",
    "userPrincipalName",
    "displayName",
    "mail",
    "proxyAddresses",
    "onPremisesImmutableId",
    "onPremisesSyncEnabled",
    "onPremisesExtensionAttributes",
)
ADPROPERTY_COLLECTION = "Microsoft.ActiveDirectory.Management.ADPropertyValueCollection"
PS_OBJECT_ARRAY = "System.Object[]"

Writer = Callable[[Tenant, Path], WrittenFile]


# ---------------------------------------------------------------- values the model lacks


def guid_text(guid: bytes) -> str:
    """An AD GUID (objectGUID, mS-DS-ConsistencyGuid bytes) as PowerShell prints it."""
    return str(uuid.UUID(bytes_le=guid))


def _derived_guid(mbx: CloudMailbox, what: str) -> str:
    """A random-looking (version 4) GUID text, fixed by the mailbox id."""
    h = hashlib.sha256(f"exwb:{what}:{mbx.id}".encode()).hexdigest()
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) % 4]}{h[17:20]}-{h[20:32]}"


_CHANGED_FROM = datetime(2025, 1, 1, tzinfo=UTC)
_CHANGED_SPAN = 580 * 86400  # to mid 2026, in seconds


def _when_changed(mbx: CloudMailbox) -> datetime:
    d = hashlib.sha256(f"exwb:whenchanged:{mbx.id}".encode()).digest()
    return _CHANGED_FROM + timedelta(seconds=int.from_bytes(d[:4], "little") % _CHANGED_SPAN)


# ---------------------------------------------------------------- AD: LDIF and csvde


def ad_entries(tenant: Tenant) -> Iterator[Entry]:
    """The domain partition as an export of it shows it: `directory_entries` (root, OUs, then
    users) with objectSid on the root and on every user, as ldifde and csvde export it."""
    sid = DomainSid.of(tenant.spec.base_dn)
    entries = directory_entries(tenant)
    for dn, attrs in itertools.islice(entries, 1 + len(tenant.ous)):
        if dn == tenant.base_dn:
            attrs = [*attrs, ("objectSid", (sid.binary(),))]
        yield dn, attrs
    for rid, (dn, attrs) in enumerate(entries, FIRST_RID):
        at = next(i for i, (name, _) in enumerate(attrs) if name == "objectGUID") + 1
        yield dn, [*attrs[:at], ("objectSid", (sid.binary(rid),)), *attrs[at:]]


def _ldifde_chunks(tenant: Tenant, bom: bool) -> Iterator[str]:
    # ldifde starts the file with an empty line and writes no version line.
    yield (BOM if bom else "") + CRLF
    for dn, attrs in ad_entries(tenant):
        lines = [attribute_line("dn", dn, LDIFDE_WIDTH), "changetype: add"]
        for name, values in attrs:
            lines.extend(attribute_line(name, v, LDIFDE_WIDTH) for v in values)
        yield "\n".join(lines).replace("\n", CRLF) + CRLF + CRLF


def write_ldifde(tenant: Tenant, path: Path) -> WrittenFile:
    """`ldifde -f`: ``changetype: add`` records, 80-column folding, base64 for binary and
    non-ASCII values, CRLF."""
    return write_atomic(path, _ldifde_chunks(tenant, bom=False))


def write_ldifde_unicode(tenant: Tenant, path: Path) -> WrittenFile:
    """`ldifde -u -f`: the same records in UTF-16LE with a byte order mark."""
    return write_atomic(path, _ldifde_chunks(tenant, bom=True), encoding="utf-16-le")


def write_ldapsearch(tenant: Tenant, path: Path) -> WrittenFile:
    """OpenLDAP `ldapsearch -LLL`: no version line, no comments, no changetype, 76-column
    folding, LF."""
    return write_atomic(path, (entry_text(dn, attrs) for dn, attrs in ad_entries(tenant)))


def _csvde_cell(values: tuple[str | bytes, ...]) -> str:
    if values and isinstance(values[0], bytes):
        return ";".join(f"X'{v.hex()}'" for v in values if isinstance(v, bytes))
    text = ";".join(v for v in values if isinstance(v, str))
    # csvde quotes only what needs it (a DN with its commas, a value with spaces at the ends).
    if any(c in text for c in ',"\r\n') or text != text.strip():
        return '"' + text.replace('"', '""') + '"'
    return text


def _csvde_chunks(tenant: Tenant, bom: bool) -> Iterator[str]:
    # csvde's header is the union of the attributes it found, in order of first appearance:
    # one pass to collect it, a second to write the rows.
    header: dict[str, None] = {"DN": None, "objectClass": None}
    for _, attrs in ad_entries(tenant):
        header.update((name, None) for name, _ in attrs)
    columns = list(header)[1:]
    yield (BOM if bom else "") + ",".join(header) + CRLF
    for dn, attrs in ad_entries(tenant):
        have = dict(attrs)
        cells = [_csvde_cell((dn,))]
        cells.extend(_csvde_cell(have[c]) if c in have else "" for c in columns)
        yield ",".join(cells) + CRLF


def write_csvde(tenant: Tenant, path: Path) -> WrittenFile:
    """`csvde -f`: a header row (DN, objectClass, ...), multi-values joined with ``;``, binary
    as ``X'hex'``, quotes where a cell needs them, CRLF."""
    return write_atomic(path, _csvde_chunks(tenant, bom=False))


def write_csvde_unicode(tenant: Tenant, path: Path) -> WrittenFile:
    """`csvde -u -f`: the same rows in UTF-16LE with a byte order mark."""
    return write_atomic(path, _csvde_chunks(tenant, bom=True), encoding="utf-16-le")


# ---------------------------------------------------------------- AD: Get-ADUser | Export-Csv


def _ps_csv_cell(value: str | bool | int | None) -> str:
    """Export-Csv quotes every value; $null is an empty, unquoted cell."""
    if value is None:
        return ""
    if isinstance(value, bool):
        value = "True" if value else "False"
    return '"' + str(value).replace('"', '""') + '"'


def _ps_csv_row(values: Iterable[str | bool | int | None]) -> str:
    return ",".join(_ps_csv_cell(v) for v in values) + CRLF


AD_USER_COLUMNS: tuple[str, ...] = (
    "DistinguishedName",
    "Enabled",
    "GivenName",
    "Name",
    "ObjectClass",
    "ObjectGUID",
    "SamAccountName",
    "SID",
    "Surname",
    "UserPrincipalName",
    "DisplayName",
    "Department",
    "EmailAddress",
    "mailNickname",
    "proxyAddresses",
    "targetAddress",
    "mS-DS-ConsistencyGuid",
    "userAccountControl",
    "pwdLastSet",
    "accountExpires",
    "lastLogonTimestamp",
    "legacyExchangeDN",
    "homeMDB",
    "msExchRecipientTypeDetails",
    "msExchRecipientDisplayType",
    "msExchRemoteRecipientType",
    "msExchHideFromAddressLists",
    *(f"extensionAttribute{i}" for i in range(1, CUSTOM_ATTRIBUTE_COUNT + 1)),
    *(f"msExchExtensionCustomAttribute{i}" for i in range(1, EXTENSION_CUSTOM_ATTRIBUTE_COUNT + 1)),
)
UAC_ACCOUNTDISABLE = 0x2


def _ad_user_row(user: AdUser, sid: str, joined: bool) -> Iterator[str | bool | int | None]:
    def multi(values: tuple[str, ...]) -> str:
        # What `$_.proxyAddresses -join ';'` gives, or the collection's type name unjoined.
        return ";".join(values) if joined else ADPROPERTY_COLLECTION

    yield user.dn
    yield not user.user_account_control & UAC_ACCOUNTDISABLE
    yield user.given_name
    yield user.cn
    yield "user"
    yield guid_text(user.object_guid)
    yield user.sam_account_name
    yield sid
    yield user.sn
    yield user.user_principal_name
    yield user.display_name
    yield user.department
    yield user.mail
    yield user.mail_nickname
    yield multi(user.proxy_addresses)
    yield user.target_address
    cg = user.consistency_guid
    yield base64.b64encode(cg).decode("ascii") if cg is not None else None
    yield user.user_account_control
    # Int64 properties as Get-ADUser -Properties shows them: the raw Interval values.
    yield user.pwd_last_set
    yield user.account_expires
    yield user.last_logon_timestamp
    yield user.legacy_dn
    yield user.home_mdb
    yield user.recipient_type_details
    yield user.recipient_display_type
    yield user.remote_recipient_type
    yield user.hide_from_address_lists
    yield from user.extension_attributes
    for values in user.extension_custom_attributes:
        yield multi(values)


def _ad_csv_chunks(tenant: Tenant, type_line: str | None, joined: bool) -> Iterator[str]:
    if type_line:
        yield f"#TYPE {type_line}{CRLF}"
    yield _ps_csv_row(AD_USER_COLUMNS)
    sid = DomainSid.of(tenant.spec.base_dn)
    for rid, user in enumerate(tenant.ad_users, FIRST_RID):
        yield _ps_csv_row(_ad_user_row(user, sid.text(rid), joined))


def write_ad_csv(tenant: Tenant, path: Path) -> WrittenFile:
    """PowerShell 7 `Get-ADUser -Filter * -Properties ... | Select-Object ..., @{n=
    'proxyAddresses';e={$_.proxyAddresses -join ';'}} | Export-Csv`: no #TYPE line, every
    cell quoted, UTF-8 without BOM, CRLF."""
    return write_atomic(path, _ad_csv_chunks(tenant, None, joined=True))


def write_ad_csv_ps51(tenant: Tenant, path: Path) -> WrittenFile:
    """The same in Windows PowerShell 5.1: a ``#TYPE Selected.Microsoft.ActiveDirectory.
    Management.ADUser`` first line (Select-Object's type) and ASCII, non-ASCII letters as
    ``?``."""
    chunks = _ad_csv_chunks(tenant, "Selected.Microsoft.ActiveDirectory.Management.ADUser", True)
    return write_atomic(path, chunks, encoding="ascii", errors="replace")


def write_ad_csv_unjoined(tenant: Tenant, path: Path) -> WrittenFile:
    """Negative fixture: Windows PowerShell 5.1 `Get-ADUser ... | Export-Csv` without the
    ``-join``: every multi-valued cell holds ``Microsoft.ActiveDirectory.Management.
    ADPropertyValueCollection``."""
    chunks = _ad_csv_chunks(tenant, "Microsoft.ActiveDirectory.Management.ADUser", False)
    return write_atomic(path, chunks, encoding="ascii", errors="replace")


# ---------------------------------------------------------------- Exchange Online: Get-Mailbox


def mailbox_properties(mbx: CloudMailbox) -> dict[str, Any]:
    """One recipient as `Get-Mailbox | Select-Object ...` shows it (PascalCase, Microsoft facts
    §8.5); `WhenChanged` as a datetime, formatted by each writer."""
    props: dict[str, Any] = {
        "Guid": _derived_guid(mbx, "guid"),
        "ExchangeGuid": _derived_guid(mbx, "exchangeguid"),
        "ExternalDirectoryObjectId": mbx.id,
        "UserPrincipalName": mbx.user_principal_name,
        "Alias": mbx.alias,
        "DisplayName": mbx.display_name,
        "PrimarySmtpAddress": mbx.primary_smtp_address,
        "WindowsEmailAddress": mbx.windows_email_address,
        "EmailAddresses": list(mbx.email_addresses),
    }
    for i, v in enumerate(mbx.custom_attributes, 1):
        props[f"CustomAttribute{i}"] = v or ""
    for i, vs in enumerate(mbx.extension_custom_attributes, 1):
        props[f"ExtensionCustomAttribute{i}"] = list(vs)
    props.update(
        RecipientTypeDetails=mbx.recipient_type_details,
        IsDirSynced=mbx.is_dir_synced,
        IsExchangeCloudManaged=mbx.is_exchange_cloud_managed,
        HiddenFromAddressListsEnabled=mbx.hidden_from_address_lists,
        LegacyExchangeDN=mbx.legacy_exchange_dn,
        WhenChanged=_when_changed(mbx),
    )
    return props


@dataclass(frozen=True, slots=True)
class _JsonStyle:
    """How one PowerShell's ConvertTo-Json lays out text."""

    indent: str
    colon: str
    date: Callable[[datetime], str]  # a datetime as its JSON token
    # Windows PowerShell 5.1's JavaScriptSerializer writes < > ' & as \u003c ... in strings.
    escape_html: bool


def _ms_date(dt: datetime) -> str:
    return f'"\\/Date({int(dt.timestamp() * 1000)})\\/"'  # 5.1 escapes the slashes


PS7_JSON = _JsonStyle("  ", ": ", lambda dt: encode_basestring(dt.isoformat()), False)
PS51_JSON = _JsonStyle("    ", ":  ", _ms_date, True)
_HTML = str.maketrans({"<": "\\u003c", ">": "\\u003e", "'": "\\u0027", "&": "\\u0026"})


def _json(value: Any, style: _JsonStyle, pad: str) -> str:
    """`value` as ConvertTo-Json lays it out at indentation `pad`, CRLF line ends. Written out
    rather than through json.dumps(indent=...), whose pure-Python encoder is 3x slower."""
    if isinstance(value, str):
        text = encode_basestring(value)
        return text.translate(_HTML) if style.escape_html else text
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, datetime):
        return style.date(value)
    inner = pad + style.indent
    if isinstance(value, list):
        if not value:
            return "[]"
        items = [_json(v, style, inner) for v in value]
    else:
        if not value:
            return "{}"
        items = [
            f"{_json(str(k), style, inner)}{style.colon}{_json(v, style, inner)}"
            for k, v in value.items()
        ]
    open_, close = ("[", "]") if isinstance(value, list) else ("{", "}")
    return f"{open_}{CRLF}{inner}" + f",{CRLF}{inner}".join(items) + f"{CRLF}{pad}{close}"


def _json_array(objects: Iterable[dict[str, Any]], count: int, style: _JsonStyle) -> Iterator[str]:
    """ConvertTo-Json of a pipeline: an array, or the bare object when it carried only one."""
    if count == 1:
        for obj in objects:
            yield _json(obj, style, "") + CRLF
        return
    pad = style.indent
    yield "["
    sep = CRLF
    for obj in objects:
        yield sep + pad + _json(obj, style, pad)
        sep = "," + CRLF
    yield CRLF + "]" + CRLF


def write_exo_json(tenant: Tenant, path: Path) -> WrittenFile:
    """PowerShell 7 `Get-Mailbox -ResultSize Unlimited | Select-Object ... | ConvertTo-Json
    -Depth 4 | Out-File`: 2-space indentation, ISO dates, UTF-8 without BOM, CRLF."""
    objs = (mailbox_properties(m) for m in tenant.mailboxes)
    return write_atomic(path, _json_array(objs, len(tenant.mailboxes), PS7_JSON))


def write_exo_json_ps51(tenant: Tenant, path: Path) -> WrittenFile:
    """The same in Windows PowerShell 5.1: 4-space indentation, ``"key":  value``, dates as
    ``"\\/Date(ms)\\/"``, ``< > ' &`` escaped, UTF-16LE with BOM (Out-File)."""
    objs = (mailbox_properties(m) for m in tenant.mailboxes)
    chunks = itertools.chain([BOM], _json_array(objs, len(tenant.mailboxes), PS51_JSON))
    return write_atomic(path, chunks, encoding="utf-16-le")


def _proxy_object_text(address: str) -> str:
    prefix, _, rest = address.partition(":")
    primary = "True" if prefix == "SMTP" else "False"
    return (
        f"@{{AddressString={rest}; IsPrimaryAddress={primary}; Prefix={prefix.upper()}; "
        f"ProxyAddressString={address}}}"
    )


def _too_shallow(props: dict[str, Any]) -> dict[str, Any]:
    """What ConvertTo-Json's default -Depth 2 leaves of a Get-Mailbox object: each proxy
    address object as its ``@{...}`` text, other collections as their type name."""
    out: dict[str, Any] = {}
    for key, value in props.items():
        if key == "EmailAddresses":
            out[key] = [_proxy_object_text(a) for a in value]
        elif isinstance(value, list):
            out[key] = PS_OBJECT_ARRAY if value else []
        else:
            out[key] = value
    return out


def write_exo_json_depth2(tenant: Tenant, path: Path) -> WrittenFile:
    """Negative fixture: Get-Mailbox through ConvertTo-Json without ``-Depth 4``."""
    objs = (_too_shallow(mailbox_properties(m)) for m in tenant.mailboxes)
    return write_atomic(path, _json_array(objs, len(tenant.mailboxes), PS7_JSON))


def _us_date(dt: datetime) -> str:
    """Export-Csv's DateTime in the en-US culture: ``1/15/2024 9:30:12 AM``."""
    hour = dt.hour % 12 or 12
    half = "AM" if dt.hour < 12 else "PM"
    return f"{dt.month}/{dt.day}/{dt.year} {hour}:{dt.minute:02d}:{dt.second:02d} {half}"


def _exo_csv_chunks(tenant: Tenant) -> Iterator[str]:
    header: list[str] | None = None
    for mbx in tenant.mailboxes:
        props = mailbox_properties(mbx)
        if header is None:
            header = list(props)
            yield _ps_csv_row(header)
        yield _ps_csv_row(
            ";".join(v) if isinstance(v, list) else _us_date(v) if isinstance(v, datetime) else v
            for v in props.values()
        )


def write_exo_csv(tenant: Tenant, path: Path) -> WrittenFile:
    """PowerShell 7 `Get-Mailbox ... | Select-Object ..., @{n='EmailAddresses';e={
    $_.EmailAddresses -join ';'}} | Export-Csv -NoTypeInformation`: every cell quoted,
    multi-values joined with ``;``, en-US dates, UTF-8 without BOM, CRLF."""
    return write_atomic(path, _exo_csv_chunks(tenant))


def write_exo_csv_ps51(tenant: Tenant, path: Path) -> WrittenFile:
    """The same from Windows PowerShell 5.1: ASCII, non-ASCII letters as ``?``."""
    return write_atomic(path, _exo_csv_chunks(tenant), encoding="ascii", errors="replace")


# ---------------------------------------------------------------- Graph users


def graph_user(mbx: CloudMailbox) -> dict[str, Any]:
    """The Graph user behind a recipient, with the properties of `GRAPH_SELECT`."""
    return {
        "id": mbx.id,
        "userPrincipalName": mbx.user_principal_name,
        "displayName": mbx.display_name,
        "mail": mbx.primary_smtp_address,
        "proxyAddresses": list(mbx.email_addresses),
        "onPremisesImmutableId": mbx.immutable_id,
        "onPremisesSyncEnabled": True if mbx.is_dir_synced else None,
        "onPremisesExtensionAttributes": {
            f"extensionAttribute{i}": v for i, v in enumerate(mbx.custom_attributes, 1)
        },
    }


def _skiptoken(page: int) -> str:
    return hashlib.sha256(f"exwb:skiptoken:{page}".encode()).hexdigest()


def _graph_chunks(tenant: Tenant, page_size: int) -> Iterator[str]:
    select = ",".join(GRAPH_SELECT)
    context = f"{GRAPH_ROOT}/$metadata#users({select})"
    everyone = iter(tenant.mailboxes)
    pages = iter(lambda: list(itertools.islice(everyone, page_size)), [])
    page = next(pages, [])
    n = 0
    yield "["
    while True:
        following = next(pages, None)
        body: dict[str, Any] = {
            "@odata.context": context,
            "value": [graph_user(m) for m in page],
        }
        if following is not None:
            body["@odata.nextLink"] = (
                f"{GRAPH_ROOT}/users?$select={select}&$skiptoken={_skiptoken(n + 1)}"
            )
        yield ("\n" if n == 0 else ",\n") + json.dumps(body, ensure_ascii=False)
        if following is None:
            break
        page, n = following, n + 1
    yield "\n]\n"


def write_graph_pages(tenant: Tenant, path: Path, page_size: int = GRAPH_PAGE_SIZE) -> WrittenFile:
    """Saved responses of ``GET /v1.0/users?$select=...`` following ``@odata.nextLink``: a JSON
    array of pages, each ``{"@odata.context", "value": [...], "@odata.nextLink"}`` (the last
    without a next link), compact, UTF-8, LF."""
    return write_atomic(path, _graph_chunks(tenant, page_size))


def mg_user(mbx: CloudMailbox) -> dict[str, Any]:
    """The same user as `Get-MgUser -Property ...` shows it: PascalCase names."""
    user = graph_user(mbx)
    ext = user.pop("onPremisesExtensionAttributes")
    out = {k[0].upper() + k[1:]: v for k, v in user.items()}
    out["OnPremisesExtensionAttributes"] = {k[0].upper() + k[1:]: v for k, v in ext.items()}
    return dict(sorted(out.items()))  # Get-MgUser lists properties alphabetically


def write_mguser_json(tenant: Tenant, path: Path) -> WrittenFile:
    """PowerShell 7 `Get-MgUser -All -Property ... | ConvertTo-Json -Depth 4 | Out-File`."""
    objs = (mg_user(m) for m in tenant.mailboxes)
    return write_atomic(path, _json_array(objs, len(tenant.mailboxes), PS7_JSON))


# ---------------------------------------------------------------- the table


@dataclass(frozen=True, slots=True)
class ExportFormat:
    """One export: the file it is written to, its writer, and the reader format
    (`harness.tenant.imports`: ``ldif``, ``csvde``, ``adcsv``, ``exo-json``, ...) it reads as."""

    file_name: str
    write: Writer
    side: str  # "ad", "exo" or "graph"
    reads_as: str
    negative: bool = False  # a broken export the readers must refuse

    def __call__(self, tenant: Tenant, path: Path) -> WrittenFile:
        return self.write(tenant, path)


EXPORT_FORMATS: dict[str, ExportFormat] = {
    "ldifde": ExportFormat("ldifde.ldf", write_ldifde, "ad", "ldif"),
    "ldifde-u": ExportFormat("ldifde-u.ldf", write_ldifde_unicode, "ad", "ldif"),
    "ldapsearch": ExportFormat("ldapsearch.ldif", write_ldapsearch, "ad", "ldif"),
    "csvde": ExportFormat("csvde.csv", write_csvde, "ad", "csvde"),
    "csvde-u": ExportFormat("csvde-u.csv", write_csvde_unicode, "ad", "csvde"),
    "get-aduser": ExportFormat("get-aduser.csv", write_ad_csv, "ad", "adcsv"),
    "get-aduser-ps51": ExportFormat("get-aduser-ps51.csv", write_ad_csv_ps51, "ad", "adcsv"),
    "get-aduser-unjoined": ExportFormat(
        "get-aduser-unjoined.csv", write_ad_csv_unjoined, "ad", "adcsv", negative=True
    ),
    "get-mailbox-json": ExportFormat("get-mailbox.json", write_exo_json, "exo", "exo-json"),
    "get-mailbox-json-ps51": ExportFormat(
        "get-mailbox-ps51.json", write_exo_json_ps51, "exo", "exo-json"
    ),
    "get-mailbox-json-depth2": ExportFormat(
        "get-mailbox-depth2.json", write_exo_json_depth2, "exo", "exo-json", negative=True
    ),
    "get-mailbox-csv": ExportFormat("get-mailbox.csv", write_exo_csv, "exo", "exo-csv"),
    "get-mailbox-csv-ps51": ExportFormat(
        "get-mailbox-ps51.csv", write_exo_csv_ps51, "exo", "exo-csv"
    ),
    "graph-users": ExportFormat("graph-users.json", write_graph_pages, "graph", "graph-json"),
    "get-mguser": ExportFormat("get-mguser.json", write_mguser_json, "graph", "mguser-json"),
}
DEFAULT_FORMATS: tuple[str, ...] = tuple(k for k, f in EXPORT_FORMATS.items() if not f.negative)


def export_tenant(
    tenant: Tenant, out_dir: Path, formats: Sequence[str] = DEFAULT_FORMATS
) -> dict[str, Path]:
    """Write `tenant` into `out_dir` in each of `formats` (names of `EXPORT_FORMATS`);
    name -> the file written. An unknown name raises ValueError before anything is written."""
    unknown = [name for name in formats if name not in EXPORT_FORMATS]
    if unknown:
        raise ValueError(
            f"unknown export format {unknown[0]!r} (known: {', '.join(EXPORT_FORMATS)})"
        )
    chosen = [(name, EXPORT_FORMATS[name]) for name in formats]
    ensure_writable_dir(out_dir)
    return {name: fmt(tenant, out_dir / fmt.file_name).path for name, fmt in chosen}
