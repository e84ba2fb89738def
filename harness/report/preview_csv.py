"""preview.csv: the dry-run preview as one row per object and attribute, for Excel.

UTF-8 with a byte-order mark (without it Excel reads the file in the machine's ANSI code page
and mangles non-ASCII names), CRLF line ends and RFC 4180 quoting; multi-valued attributes are
joined with ``;``, as csvde and Export-Csv users expect. An object without a planned change
(skipped, or refused before planning) gets one row with an empty attribute.

Values come from the tenant, so anyone who can set a CustomAttribute can put text in this
file: a cell that Excel would run as a formula (starting with ``= + - @``, a tab or a carriage
return, OWASP's list) is written with a leading ``'``, which Excel shows as text. Plain
numbers (``-1``) are left as they are.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

COLUMNS = (
    "dn", "userPrincipalName", "sourceId", "attribute", "oldValue", "newValue", "outcome",
    "errorCode", "diagnostic", "reason",
)  # fmt: skip

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?\d+(\.\d+)?")


def cell(value: str) -> str:
    """`value` as a cell Excel shows as text, never evaluates."""
    if value.startswith(_FORMULA_START) and not _NUMBER.fullmatch(value):
        return "'" + value
    return value


def rows(preview: Mapping[str, Any], sep: str = ";") -> Iterator[tuple[str, ...]]:
    """The preview's rows in `COLUMNS` order, objects in the preview's order; multi-values
    joined with `sep`."""

    def joined(values: Sequence[Any]) -> str:
        return sep.join(str(v) for v in values)

    for o in preview["objects"]:
        code = "" if o["errorCode"] is None else str(o["errorCode"])
        head = (o["dn"] or "", o["userPrincipalName"], o["sourceId"])
        tail = (o["outcome"], code, o["diagnostic"], o["reason"])
        if not o["changes"]:
            yield (*head, "", "", "", *tail)
        for c in o["changes"]:
            yield (*head, c["attribute"], joined(c["oldValue"]), joined(c["newValue"]), *tail)


def write_csv(preview: Mapping[str, Any], path: Path) -> int:
    """Write preview.csv; returns the number of data rows."""
    n = 0
    with path.open("w", encoding="utf-8-sig", newline="") as f:
        w = csv.writer(f, lineterminator="\r\n")
        w.writerow(COLUMNS)
        for row in rows(preview):
            w.writerow([cell(v) for v in row])
            n += 1
    return n
