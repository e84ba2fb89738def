"""`GET /v1.0/auditLogs/provisioning`: the writeback job's provisioning log as Graph lists it.

The records are Graph's `provisioningObjectSummary` as the engine writes them; this module
never reads the engine's files itself. The harness installs a `RecordSource` on the service
(`CloudService.provisioning`, `harness.engine.logsource.attach`): a callable that yields
(cursor, record) pairs newest first, resuming after a cursor it gave before. Without one the
log is empty, as a tenant's is before its first cycle.

What the List operation documents (provisioningobjectsummary-list): `$filter` with `eq`,
`contains`, `gt`, `lt` (case-sensitive), `$orderby`, `$top` and `$skiptoken`. Served here:
`$filter` clauses on the record's properties (a nested one as `provisioningStatusInfo/status`),
`eq`, `ne`, `gt`, `ge`, `lt`, `le` and `contains(prop,'text')`, joined with `and` and `or`,
grouped with parentheses (`activityDateTime` takes an unquoted ISO 8601 time, as Graph's
DateTimeOffset literals are written); `$orderby=activityDateTime desc` (the default order);
`$top` from 1 to `MAX_PAGE`; paging by `@odata.nextLink` with an opaque `$skiptoken`.
Assumptions (the page size is not documented for this list): the default and largest page is
1,000 records, as for the sign-in and directory-audit logs. A request streams over the records
and holds one page.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol
from urllib.parse import urlencode

from harness.core import clock
from mockservers.cloud import errors
from mockservers.cloud.graph_query import FilterReader

MAX_PAGE = 1000  # records per page: the default and the most $top may ask for (assumed)
RESOURCE = "microsoft.graph.provisioningObjectSummary"
CONTEXT = "$metadata#auditLogs/provisioning"
MAX_TERMS = 100  # comparisons in one $filter
# The properties a $filter may name, and whether they are times (compared as instants).
FILTERABLE: dict[str, bool] = {
    "id": False,
    "activityDateTime": True,
    "tenantId": False,
    "jobId": False,
    "cycleId": False,
    "changeId": False,
    "provisioningAction": False,
    "provisioningStatusInfo/status": False,
    "provisioningStatusInfo/errorInformation/errorCode": False,
    "sourceIdentity/id": False,
    "sourceIdentity/displayName": False,
    "sourceIdentity/identityType": False,
    "targetIdentity/id": False,
    "targetIdentity/displayName": False,
    "targetIdentity/identityType": False,
    "servicePrincipal/id": False,
    "servicePrincipal/displayName": False,
    "initiatedBy/displayName": False,
    "initiatedBy/initiatorType": False,
    "sourceSystem/displayName": False,
    "targetSystem/displayName": False,
}
_OPS = ("eq", "ne", "gt", "ge", "lt", "le")


class RecordSource(Protocol):
    """Where the records come from: (cursor, record) newest first, after `after` (None: from
    the newest). Raises KeyError for a cursor it does not know and ValueError for a record it
    cannot read."""

    def __call__(self, after: str | None) -> Iterator[tuple[str, dict[str, Any]]]: ...


# ------------------------------------------------------------------------------ $filter
@dataclass(frozen=True, slots=True)
class Clause:
    prop: str
    op: str  # eq ne gt ge lt le contains
    value: str | datetime


@dataclass(frozen=True, slots=True)
class Both:
    parts: tuple[Filter, ...]
    any_: bool  # or; else and


Filter = Clause | Both


class _Parser(FilterReader):
    """or := and ("or" and)*; and := primary ("and" primary)*;
    primary := "(" or ")" | contains "(" prop "," string ")" | prop op literal."""

    max_terms = MAX_TERMS

    def parse(self) -> Filter:
        node = self.either()
        self.at_end()
        return node

    def either(self) -> Filter:
        parts = [self.both()]
        while self.peek().lower() == "or":
            self.take()
            parts.append(self.both())
        return parts[0] if len(parts) == 1 else Both(tuple(parts), True)

    def both(self) -> Filter:
        parts = [self.primary()]
        while self.peek().lower() == "and":
            self.take()
            parts.append(self.primary())
        return parts[0] if len(parts) == 1 else Both(tuple(parts), False)

    def primary(self) -> Filter:
        if self.peek() == "(":
            self.take()
            self.nest()
            node = self.either()
            self.take(")")
            self.depth -= 1
            return node
        self.count_term()
        if self.peek().lower() == "contains":
            self.take()
            self.take("(")
            prop = self.prop()
            self.take(",")
            value = self.string()
            self.take(")")
            return Clause(prop, "contains", value)
        prop = self.prop()
        op = self.take().lower()
        if op not in _OPS:
            raise errors.invalid_filter()
        token = self.take()
        if FILTERABLE[prop]:
            return Clause(prop, op, _instant(token))
        if not token.startswith("'") or len(token) < 2:
            raise errors.invalid_filter()
        return Clause(prop, op, token[1:-1].replace("''", "'"))

    def prop(self) -> str:
        word = self.take()
        if word not in FILTERABLE:
            raise errors.unknown_property(word, RESOURCE)
        return word


def _instant(token: str) -> datetime:
    text = token[1:-1] if token.startswith("'") else token
    try:
        return clock.parse_iso(text)
    except ValueError:
        raise errors.invalid_filter() from None


def parse_filter(text: str) -> Filter:
    """A $filter's tree; Graph's 400 for what it cannot read or a property it cannot filter."""
    return _Parser(text).parse()


def _value(rec: dict[str, Any], prop: str) -> Any:
    value: Any = rec
    for part in prop.split("/"):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def matches(node: Filter, rec: dict[str, Any]) -> bool:
    if isinstance(node, Both):
        test = any if node.any_ else all
        return test(matches(p, rec) for p in node.parts)
    got = _value(rec, node.prop)
    if got is None:
        return node.op == "ne"
    if isinstance(node.value, datetime):
        try:
            left: Any = clock.parse_iso(str(got))
        except ValueError:
            return False
    else:
        left = str(got)
    right: Any = node.value
    if node.op == "contains":
        return str(right) in left
    return bool(_COMPARE[node.op](left, right))


_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "eq": lambda a, b: a == b,
    "ne": lambda a, b: a != b,
    "gt": lambda a, b: a > b,
    "ge": lambda a, b: a >= b,
    "lt": lambda a, b: a < b,
    "le": lambda a, b: a <= b,
}


# ------------------------------------------------------------------------------ paging
def _page_size(raw: str | None) -> int:
    if raw is None:
        return MAX_PAGE
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_PAGE:
        raise errors.invalid_top(raw, MAX_PAGE)
    return int(raw)


def _encode(cursor: str) -> str:
    return base64.urlsafe_b64encode(cursor.encode("utf-8")).decode("ascii").rstrip("=")


def _decode(token: str) -> str:
    try:
        return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise errors.invalid_page_token() from None


_KNOWN = frozenset({"$filter", "$top", "$skiptoken", "$orderby"})


def list_provisioning(
    source: RecordSource | None, query: dict[str, str], base_url: str
) -> dict[str, Any]:
    """One page of the log, newest first, as Graph answers the List operation."""
    unknown = sorted(k for k in query if k.startswith("$") and k not in _KNOWN)
    if unknown:
        raise errors.option_not_supported(unknown[0].lstrip("$"), "auditLogs/provisioning")
    order = " ".join(query.get("$orderby", "activityDateTime desc").split())
    if order != "activityDateTime desc":  # the files are read newest first, and only so
        raise errors.sorting_not_supported()
    size = _page_size(query.get("$top"))
    node = parse_filter(query["$filter"]) if "$filter" in query else None
    token = query.get("$skiptoken")
    after = _decode(token) if token is not None else None
    page: list[dict[str, Any]] = []
    more = False
    last = ""
    if source is not None:
        try:
            for cursor, rec in source(after):
                if node is not None and not matches(node, rec):
                    continue
                if len(page) == size:
                    more = True
                    break
                page.append(rec)
                last = cursor
        except KeyError:
            raise errors.invalid_page_token() from None
        except ValueError:
            raise errors.internal_error() from None
    body: dict[str, Any] = {"@odata.context": f"{base_url}/v1.0/{CONTEXT}", "value": page}
    if more:
        rest = {k: v for k, v in query.items() if k != "$skiptoken"}
        link = urlencode({**rest, "$skiptoken": _encode(last)}, safe="$'/:,()")
        body["@odata.nextLink"] = f"{base_url}/v1.0/auditLogs/provisioning?{link}"
    return body
