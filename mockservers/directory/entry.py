"""One directory entry: its DN, normalised DN and attribute values (as bytes)."""

from __future__ import annotations

from typing import Final

from harness.core.adschema import AttributeType
from harness.core.dn import InvalidDN, parse_dn

Values = tuple[bytes, ...]


class Entry:
    """A directory object. `attrs` maps canonical attribute names to value tuples.

    distinguishedName, name, createTimeStamp and modifyTimeStamp are not stored: `values`
    derives them, so a rename cannot leave them stale; nor is instanceType, except where it
    is not 4 (`WRITABLE_INSTANCE`).
    """

    __slots__ = ("attrs", "dn", "ndn", "parent")

    def __init__(self, dn: str, ndn: str, parent: str, attrs: dict[str, Values]) -> None:
        self.dn = dn  # as the client spelled it when the entry was made
        self.ndn = ndn  # comparison key (harness.core.dn.normalize_dn)
        self.parent = parent  # ndn of the parent ("" for a naming context's root)
        self.attrs = attrs

    def values(self, t: AttributeType) -> Values:
        """Values of attribute type `t`, including the derived ones."""
        v = self.attrs.get(t.name)
        if v is not None:
            return v
        name = t.name
        if name == "distinguishedName":
            return (self.dn.encode("utf-8"),)
        if name == "name":
            return rdn_value(self.dn)
        if name == "createTimeStamp":
            return self.attrs.get("whenCreated", ())
        if name == "modifyTimeStamp":
            return self.attrs.get("whenChanged", ())
        if name == "instanceType":
            return WRITABLE_INSTANCE
        return ()

    def __repr__(self) -> str:
        return f"Entry({self.dn!r})"


def rdn_value(dn: str) -> Values:
    """The value of a DN's first RDN, as `name` holds it: without parsing the whole DN unless
    that RDN is escaped, quoted, multi-valued or hex (the store indexes `name` for 200,000
    entries on load)."""
    head = dn.split(",", 1)[0]
    value = head.partition("=")[2].strip(" ")
    if any(c in head for c in '\\+";') or value.startswith("#"):
        try:
            rdns = parse_dn(dn)
        except InvalidDN:
            return ()
        return (rdns[0][0][1].encode("utf-8"),) if rdns else ()
    return (value.encode("utf-8"),) if value else ()


# instanceType is stored only where it is not IT_WRITE alone (4, [MS-ADTS] 2.2.11): on the
# naming contexts' heads. Every other object's is constructed: 200,000 values fewer to keep.
WRITABLE_INSTANCE: Values = (b"4",)
DERIVED_ATTRIBUTES = frozenset(
    {"distinguishedName", "name", "createTimeStamp", "modifyTimeStamp", "instanceType"}
)
# The derived attributes a search for all user attributes ("*") returns, as AD returns them.
LISTED_DERIVED: Final = ("distinguishedName", "name", "instanceType")
