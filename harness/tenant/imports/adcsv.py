"""The two CSV forms of an AD export: `csvde -f` and `Get-ADUser ... | Export-Csv`.

csvde: a header of LDAP names, `DN` first; multi-values joined with `;` in one cell; binary
values as `X'hex'`; an empty cell is an absent attribute.

Export-Csv of Get-ADUser: an optional `#TYPE Microsoft.ActiveDirectory.Management.ADUser`
line (Windows PowerShell 5.1 without -NoTypeInformation), a header of PowerShell property
names (`DistinguishedName`, `ObjectGUID` as GUID text, `SID` as `S-1-5-...`, `Surname`, ...,
mapped to LDAP names below), every cell quoted. A multi-valued property that was not joined
prints as its .NET type name (`...ADPropertyValueCollection`), a byte array as `System.Byte[]`:
for an attribute the tenant keeps (proxyAddresses, mS-DS-ConsistencyGuid, ...) both are refused
with the calculated property that exports them properly.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from typing import Final

from harness.core.adschema import BACK_LINKS, DEFAULT_SCHEMA, Syntax
from harness.tenant.imports.advalues import (
    binary_from_text,
    hex_value,
    is_binary,
    is_boolean,
    is_multi,
)
from harness.tenant.imports.records import AdRecord, AdValue, ExportError, Origin
from harness.tenant.imports.textfile import MAX_LINE, TextInput

# Get-ADUser property names that differ from the LDAP attribute they show. Properties that
# AD computes (Enabled, LockedOut, PasswordLastSet as a date, ...) have no attribute; Enabled
# becomes userAccountControl when the export lacks it, the rest pass through by their own
# names for the assembler to report.
POWERSHELL_NAMES: Final = {
    k.casefold(): v
    for k, v in {
        "DistinguishedName": "dn",
        "ObjectGUID": "objectGUID",
        "SID": "objectSid",
        "SamAccountName": "sAMAccountName",
        "UserPrincipalName": "userPrincipalName",
        "GivenName": "givenName",
        "Surname": "sn",
        "Name": "cn",
        "EmailAddress": "mail",
        "ObjectClass": "objectClass",
        "DisplayName": "displayName",
        "Office": "physicalDeliveryOfficeName",
        "OfficePhone": "telephoneNumber",
        "MobilePhone": "mobile",
        "Fax": "facsimileTelephoneNumber",
        "HomePage": "wWWHomePage",
        "City": "l",
        "State": "st",
        "Country": "c",
        "StreetAddress": "streetAddress",
        "POBox": "postOfficeBox",
        "Organization": "o",
        "EmployeeID": "employeeID",
        "EmployeeNumber": "employeeNumber",
        "HomeDirectory": "homeDirectory",
        "HomeDrive": "homeDrive",
        "ScriptPath": "scriptPath",
        "ProfilePath": "profilePath",
        "LogonWorkstations": "userWorkstations",
    }.items()
}
_COLLECTION: Final = "Microsoft.ActiveDirectory.Management.ADPropertyValueCollection"
_BACK_LINKS: Final = frozenset(n.casefold() for n in BACK_LINKS)
_BYTES: Final = "System.Byte[]"
# Properties of the PowerShell object around the AD entry, which Export-Csv writes too.
_WRAPPER: Final = frozenset(
    ("PropertyNames", "AddedProperties", "RemovedProperties", "ModifiedProperties", "PropertyCount")
)
UAC_ENABLED: Final = "512"  # NORMAL_ACCOUNT
UAC_DISABLED: Final = "514"  # NORMAL_ACCOUNT | ACCOUNTDISABLE

csv.field_size_limit(MAX_LINE)  # the module's default (128 KiB) is below AD's own limits


def header_cells(line: str) -> list[str]:
    """The cells of a header line, with Export-Csv's delimiter: ',' or, with -UseCulture in
    locales whose list separator is ';' (German, French, ...), ';'."""
    return next(csv.reader([line], delimiter=_delimiter(line)), [])


def _delimiter(header: str) -> str:
    return ";" if header.count('";"') > header.count('","') else ","


def _rows(
    src: TextInput, skip_type_line: bool, delimiter: str = ","
) -> Iterator[tuple[int, list[str]]]:
    """(line the row starts on, cells) for each CSV row, blank lines skipped."""
    with src.stream() as f:
        reader = csv.reader(f, delimiter=delimiter, strict=True)
        last = 0
        try:
            for row in reader:
                start, last = last + 1, reader.line_num
                if not row or (len(row) == 1 and not row[0]):
                    continue
                if skip_type_line and start == 1 and row[0].startswith("#TYPE"):
                    continue
                yield start, row
        except csv.Error as e:
            raise ExportError(
                Origin(str(src.path), last + 1),
                f"not a well-formed CSV row: {e}",
                "a value with a comma, quote or line break must be in double quotes "
                "(with quotes doubled); was the file cut short?",
            ) from None


def _header(src: TextInput, rows: Iterator[tuple[int, list[str]]]) -> tuple[int, list[str]]:
    first = next(rows, None)
    if first is None:
        raise ExportError(Origin(str(src.path)), "no header row: the file is empty")
    return first


def _check_width(src: TextInput, line: int, row: list[str], header: list[str], hline: int) -> None:
    if len(row) != len(header):
        raise ExportError(
            Origin(str(src.path), line),
            f"{len(row)} columns where the header (line {hline}) has {len(header)}",
            "a value with a comma or line break must be in double quotes; "
            "was the file cut or edited?",
        )


_DN_SEPARATOR: Final = re.compile(r"(?<!\\);")


def _is_dn(name: str) -> bool:
    t = DEFAULT_SCHEMA.get(name)
    return t is not None and t.syntax is Syntax.DN


def _values(src: TextInput, line: int, column: str, name: str, cell: str) -> list[AdValue]:
    """The values of one cell: split on ';' for multi-valued attributes; bytes for binary
    ones (from their text forms), TRUE/FALSE for booleans (PowerShell prints True/False)."""
    if not is_multi(name):
        parts = [cell]
    elif _is_dn(name):
        # A DN escapes its own ';' as '\;' (RFC 4514) and never ends in '\': only an
        # unescaped ';' separates two members of a group.
        parts = [p for p in _DN_SEPARATOR.split(cell) if p]
    else:
        parts = [p for p in cell.split(";") if p]
    if is_binary(name):
        out: list[AdValue] = []
        for p in parts:
            raw = binary_from_text(name, p)
            if raw is None:
                raise ExportError(
                    Origin(str(src.path), line),
                    f"column {column!r}: {p[:40]!r} is not a binary value",
                    "binary values are X'hex' (csvde), a GUID, a SID (S-1-5-...) or base64",
                )
            out.append(raw)
        return out
    texts: list[AdValue] = []
    for p in parts:
        raw = hex_value(p)  # csvde writes text it cannot print in its code page as X'hex'
        if raw is not None:
            try:
                p = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise ExportError(
                    Origin(str(src.path), line),
                    f"column {column!r}: X'...' value is not UTF-8 text",
                    "run csvde with -u",
                ) from None
        if is_boolean(name) and p.casefold() in ("true", "false"):
            p = p.upper()
        texts.append(p)
    return texts


def read_csvde(src: TextInput) -> Iterator[AdRecord]:
    """Records of a `csvde -f` export."""
    rows = _rows(src, skip_type_line=False)
    hline, header = _header(src, rows)
    if header[0].strip().casefold() != "dn":
        raise ExportError(
            Origin(str(src.path), hline),
            f"the first column is {header[0]!r}, not DN",
            "csvde writes DN first; for Get-ADUser | Export-Csv use --format adcsv",
        )
    names = [h.strip() for h in header]
    path = str(src.path)
    for line, row in rows:
        _check_width(src, line, row, header, hline)
        dn = row[0]
        if not dn:
            raise ExportError(Origin(path, line), "a row without a DN")
        attrs: dict[str, list[AdValue]] = {}
        for name, cell in zip(names[1:], row[1:], strict=True):
            if cell:
                attrs.setdefault(name, []).extend(_values(src, line, name, name, cell))
        yield AdRecord(dn, attrs, Origin(path, line))


def read_adcsv(src: TextInput) -> Iterator[AdRecord]:
    """Records of a `Get-ADUser -Filter * -Properties ... | Export-Csv` export."""
    first = next((t for t in src.head(8192).splitlines() if not t.startswith("#TYPE")), "")
    rows = _rows(src, skip_type_line=True, delimiter=_delimiter(first))
    hline, header = _header(src, rows)
    path = str(src.path)
    columns = [h.strip() for h in header]
    names = [POWERSHELL_NAMES.get(c.casefold(), c) for c in columns]
    if "dn" not in names:
        raise ExportError(
            Origin(path, hline),
            "no DistinguishedName column",
            "Get-ADUser always has one: was it left out of Select-Object?",
        )
    dn_at = names.index("dn")
    enabled_at = next((i for i, c in enumerate(columns) if c.casefold() == "enabled"), None)
    skipped = {dn_at, enabled_at} | {i for i, c in enumerate(columns) if c in _WRAPPER}
    for line, row in rows:
        _check_width(src, line, row, header, hline)
        dn = row[dn_at]
        if not dn:
            raise ExportError(Origin(path, line), "a row without a DistinguishedName")
        attrs: dict[str, list[AdValue]] = {}
        spelled: dict[str, str] = {}  # casefolded LDAP name -> the first column's spelling
        for i, (column, name, cell) in enumerate(zip(columns, names, row, strict=True)):
            if not cell or i in skipped:
                continue
            if cell in (_COLLECTION, _BYTES) and (
                DEFAULT_SCHEMA.get(name) is None or name.casefold() in _BACK_LINKS
            ):
                # An attribute the tenant leaves out anyway (thumbnailPhoto, memberOf: the
                # directory makes back links from the groups' member, ...):
                # no reason to refuse the file. A text one is kept, placeholder and all, so
                # the import report can name it; a binary one cannot be, it has no bytes.
                if not is_binary(name):
                    attrs.setdefault(spelled.setdefault(name.casefold(), name), []).append(cell)
                continue
            if cell == _COLLECTION:
                raise ExportError(
                    Origin(path, line),
                    f"column {column!r} holds the text {_COLLECTION!r}, not its values",
                    f"join it in the export: @{{n='{column}';e={{$_.{column} -join ';'}}}}",
                )
            if cell == _BYTES:
                raise ExportError(
                    Origin(path, line),
                    f"column {column!r} holds the text {_BYTES!r}, not its bytes",
                    f"export it as base64: @{{n='{column}';"
                    f"e={{[Convert]::ToBase64String($_.'{column}')}}}}",
                )
            values = _values(src, line, column, name, cell)
            key = spelled.setdefault(name.casefold(), name)
            have = attrs.get(key)
            if have is None:
                attrs[key] = values
            else:
                # Get-ADUser -Properties * shows some attributes twice (EmailAddress and mail,
                # SID and objectSid): a value the other column gave is kept once.
                have.extend(v for v in values if v not in have)
        if enabled_at is not None and "useraccountcontrol" not in spelled:
            flag = row[enabled_at].strip().casefold()
            if flag in ("true", "false"):
                attrs["userAccountControl"] = [UAC_ENABLED if flag == "true" else UAC_DISABLED]
        yield AdRecord(dn, attrs, Origin(path, line))
