"""Server-side sorting of search results (RFC 2891; AD's LDAP_SERVER_SORT_OID, [MS-ADTS]
3.1.1.3.4.1.x).

The request control carries a list of sort keys; AD honours one (Microsoft's LDAPSortKey page:
"Active Directory supports only a single sort key"). A key the server cannot sort by is not
ignored: the search done carries a sort result control saying why (RFC 2891 section 1.2), and
when the control was critical the search fails with unavailableCriticalExtension and no
entries. Values order by the attribute's syntax (integers as numbers, strings without case, as
the equality index keys them); a multi-valued attribute sorts by its least value, or its
greatest in reverse; an entry without the attribute sorts after every entry with it (RFC 2891
section 2: "treated as larger than all other values"). No explicit ordering rule is supported
(AD's language-specific ones included): one is inappropriateMatching.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

from harness.core import ber
from harness.core.adschema import AttributeType, Schema
from harness.core.ldapresult import Result
from mockservers.directory.entry import Entry

SORT_OID: Final = "1.2.840.113556.1.4.473"
SORT_RESPONSE_OID: Final = "1.2.840.113556.1.4.474"
_ORDERING_RULE, _REVERSE_ORDER, _ATTRIBUTE_TYPE = 0x80, 0x81, 0x80


@dataclass(frozen=True, slots=True)
class SortKey:
    attribute: str
    ordering_rule: str | None = None
    reverse: bool = False


@dataclass(frozen=True, slots=True)
class SortPlan:
    """What the server will do: sort by `t` (None: leave unsorted), and the sort result."""

    t: AttributeType | None
    reverse: bool
    code: Result
    attribute: str | None = None  # the key at fault, for the result control

    def response(self) -> bytes:
        """SortResult ::= SEQUENCE { sortResult ENUMERATED, attributeType [0] OPTIONAL }."""
        parts = [ber.integer(self.code, ber.ENUMERATED)]
        if self.attribute is not None:
            parts.append(ber.octets(self.attribute.encode("utf-8"), _ATTRIBUTE_TYPE))
        return ber.control(SORT_RESPONSE_OID, ber.sequence(*parts))

    def apply(self, entries: Iterable[Entry]) -> Iterable[Entry]:
        t = self.t
        if t is None:
            return entries
        pick = max if self.reverse else min
        present: list[tuple[Any, Entry]] = []
        missing: list[Entry] = []
        for e in entries:
            keys: list[Any] = []
            for v in e.values(t):
                try:
                    keys.append(t.key(v))
                except ValueError:  # a value the syntax does not take has no place in the order
                    continue
            if keys:
                present.append((pick(keys), e))
            else:
                missing.append(e)
        # Python's sort is stable in both directions: equal keys keep the search's order.
        present.sort(key=lambda p: p[0], reverse=self.reverse)
        ordered = [e for _k, e in present]
        # Absent is larger than any value: last in forward order, first in reverse.
        return missing + ordered if self.reverse else ordered + missing


def read_sort_keys(value: bytes) -> list[SortKey]:
    """SortKeyList ::= SEQUENCE OF SEQUENCE { attributeType, orderingRule [0] OPTIONAL,
    reverseOrder [1] BOOLEAN DEFAULT FALSE }; raises ber.BERError."""
    tag, body, _ = ber.read_tlv(value)
    if tag != ber.SEQUENCE:
        raise ber.BERError("sort key list is not a SEQUENCE")
    keys, pos = [], 0
    while pos < len(body):
        tag, item, pos = ber.read_tlv(body, pos)
        if tag != ber.SEQUENCE:
            raise ber.BERError("sort key is not a SEQUENCE")
        tag, name, at = ber.read_tlv(item)
        if tag != ber.OCTET_STRING or not name:
            raise ber.BERError("sort key has no attribute type")
        rule, reverse = None, False
        while at < len(item):
            tag, part, at = ber.read_tlv(item, at)
            if tag == _ORDERING_RULE:
                rule = part.decode("utf-8", "replace")
            elif tag == _REVERSE_ORDER and len(part) == 1:
                reverse = part != b"\x00"
            else:
                raise ber.BERError(f"unexpected element {tag:#x} in a sort key")
        keys.append(SortKey(name.decode("utf-8", "replace"), rule, reverse))
    if not keys:
        raise ber.BERError("empty sort key list")
    return keys


def plan(keys: list[SortKey], schema: Schema) -> SortPlan:
    if len(keys) > 1:  # AD sorts by one key only
        return SortPlan(None, False, Result.UNWILLING_TO_PERFORM)
    (key,) = keys
    t = schema.get(key.attribute)
    if t is None:
        return SortPlan(None, False, Result.NO_SUCH_ATTRIBUTE, key.attribute)
    if key.ordering_rule is not None:
        return SortPlan(None, False, Result.INAPPROPRIATE_MATCHING, key.attribute)
    return SortPlan(t, key.reverse, Result.SUCCESS)
