"""One directory entry: its DN, normalised DN and attribute values (as bytes)."""

from __future__ import annotations

from harness.core.adschema import AttributeType
from harness.core.dn import parse_dn

Values = tuple[bytes, ...]


class Entry:
    """A directory object. `attrs` maps canonical attribute names to value tuples.

    distinguishedName, name, createTimeStamp and modifyTimeStamp are not stored: `values`
    derives them, so a rename cannot leave them stale.
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
            rdns = parse_dn(self.dn)
            return (rdns[0][0][1].encode("utf-8"),) if rdns else ()
        if name == "createTimeStamp":
            return self.attrs.get("whenCreated", ())
        if name == "modifyTimeStamp":
            return self.attrs.get("whenChanged", ())
        return ()

    def __repr__(self) -> str:
        return f"Entry({self.dn!r})"


DERIVED_ATTRIBUTES = frozenset({"distinguishedName", "name", "createTimeStamp", "modifyTimeStamp"})
