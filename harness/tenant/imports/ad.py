"""Reading an AD export, whichever of the three forms an administrator made.

`ldif` (`ldifde -f`, OpenLDAP `ldapsearch -LLL`), `csvde` (`csvde -f`) and `adcsv`
(`Get-ADUser -Filter * -Properties ... | Export-Csv`) all come out as the same AdRecords:
attribute names as written (PowerShell property names mapped to LDAP names), values in file
order, binary attributes (objectGUID, objectSid, mS-DS-ConsistencyGuid, msExchMailboxGuid and
every other octet-string attribute) as bytes whatever the format.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Final

from harness.tenant.imports.adcsv import header_cells, read_adcsv, read_csvde
from harness.tenant.imports.advalues import is_binary
from harness.tenant.imports.ldif import read_ldif_records
from harness.tenant.imports.records import AdRecord, ExportError
from harness.tenant.imports.textfile import TextInput, open_text

_LDIF_LINE: Final = re.compile(r"[A-Za-z][A-Za-z0-9-]*(;[A-Za-z0-9=-]+)*::? ")
AD_FORMATS: Final = ("ldif", "csvde", "adcsv")
_HEAD: Final = 8192
_FORMATS_HINT: Final = (
    "AD exports are LDIF (ldifde -f, ldapsearch -LLL), csvde -f CSV (DN first) or "
    "Get-ADUser | Export-Csv (with DistinguishedName); name it with --format ldif|csvde|adcsv"
)


def detect_ad_format(src: TextInput) -> str:
    """`ldif`, `csvde` or `adcsv`, from the first lines; ExportError if none fits."""
    lines = src.head(_HEAD).splitlines()
    comment = False
    for i, line in enumerate(lines, 1):
        if i == 1 and line.startswith("#TYPE"):
            return "adcsv"  # Windows PowerShell 5.1 Export-Csv's type line
        if (comment and line[:1] == " ") or line[:1] == "#":
            comment = True  # an LDIF comment, folded or not
            continue
        comment = False
        text = line.strip()
        if not text:
            continue
        if text.lower().startswith(("dn:", "version:")) or _LDIF_LINE.match(text):
            return "ldif"  # an 'attribute: value' line: LDIF, if one missing its dn:
        header = [c.strip().casefold() for c in header_cells(text)]
        if header and header[0] == "dn":
            return "csvde"
        if "distinguishedname" in header:
            return "adcsv"
        raise ExportError(src.origin(i), "not an AD export this tool reads", _FORMATS_HINT)
    raise ExportError(src.origin(1), "no AD objects: the file is empty", _FORMATS_HINT)


def read_ad(path: Path, fmt: str | None = None) -> Iterator[AdRecord]:
    """Stream the objects of one AD export; `fmt` (one of AD_FORMATS) skips detection.

    Raises ExportError (file:line, hint) on a malformed file, and on one with no objects."""
    src = open_text(path)
    if fmt is None:
        fmt = detect_ad_format(src)
    elif fmt not in AD_FORMATS:
        raise ExportError(src.origin(), f"unknown AD export format {fmt!r}", _FORMATS_HINT)
    if fmt == "ldif":
        records = read_ldif_records(src, binary=is_binary)
    elif fmt == "csvde":
        records = read_csvde(src)
    else:
        records = read_adcsv(src)
    count = 0
    for rec in records:
        count += 1
        yield rec
    if not count:
        raise ExportError(src.origin(), "no AD objects in the file", _FORMATS_HINT)
