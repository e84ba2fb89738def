"""DirSync, LDAP_SERVER_DIRSYNC_OID ([MS-ADTS] 3.1.1.3.4.1.3, [MS-DRSR] 5.115): what changed in
a naming context since a cookie.

The request value is ``SEQUENCE { Flags INTEGER, MaxBytes INTEGER, Cookie OCTET STRING }``; the
answer carries the same OID with ``SEQUENCE { MoreResults INTEGER, unused INTEGER, CookieServer
OCTET STRING }``. The first call (no cookie) returns every object of the partition that matches
the filter; a call with a cookie returns the objects changed since, each with only the
attributes that changed (an attribute removed comes back with no values), always with
objectGUID and instanceType, and with parentGUID when its name or parent changed. Deleted
objects come back as their tombstones (isDeleted TRUE) without the show-deleted control.
Attributes AD does not replicate (systemFlags FLAG_ATTR_NOT_REPLICATED: uSNChanged,
whenChanged, back links such as memberOf; ad_classes.AD_NOT_REPLICATED) are never returned.

Changes are read from the store's USN log (`Store.usn_after`, a bisection, then only what the
page returns), so a DirSync at 200,000 objects does not scan them. Which attributes changed
is tracked per change from the first DirSync on (`Store.track_changes`); a change the store did
not track (before the first DirSync of this process) returns all the object's attributes: a
superset, never a loss.

Access ([MS-DRSR] 5.115.12): without LDAP_DIRSYNC_OBJECT_SECURITY the caller needs the
DS-Replication-Get-Changes control access right on the NC head (`AccessPolicy.may_replicate`),
and a base that is not an NC head holds no such right (insufficientAccessRights); with the flag
anyone bound may ask, a base below the NC head is unwillingToPerform, and a caller without the
right sees a tombstone only as its objectGUID with an empty DN (Samba's dirsync.py tests).

Not implemented: LDAP_DIRSYNC_INCREMENTAL_VALUES (the store keeps no per-value metadata, so a
changed linked attribute is returned whole, as without the flag), ancestors-first ordering
beyond the USN order, and the filtered attribute set.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Final

from harness.core import ber
from harness.core.adschema import Schema
from mockservers.directory import controls as controls_
from mockservers.directory import errors, tombstones
from mockservers.directory.acl import AccessPolicy, Principal
from mockservers.directory.ad_classes import AD_NOT_REPLICATED
from mockservers.directory.entry import WRITABLE_INSTANCE, Entry, Values
from mockservers.directory.store import Store

DIRSYNC_OID: Final = "1.2.840.113556.1.4.841"
OBJECT_SECURITY: Final = 0x00000001
ANCESTORS_FIRST_ORDER: Final = 0x00000800
PUBLIC_DATA_ONLY: Final = 0x00002000
INCREMENTAL_VALUES: Final = 0x80000000
# The fake's cookie: a signature, a version, the highest USN the caller has seen, and the
# objectGUID of the NC head, so a cookie of another directory (or partition) starts over.
_COOKIE = struct.Struct("<4sIQ16s")
_MAGIC: Final = b"MSDS"
# A response ends after MaxBytes of entries, but never below this floor: AD answers a
# MaxBytes of 1 with many objects (Samba's dirsync.py, written to pass on Windows), and the
# exact floor is not documented (unconfirmed).
MIN_BYTES: Final = 1 << 20
ALWAYS: Final = ("objectGUID", "instanceType")
_NOT_RETURNED: Final = frozenset(AD_NOT_REPLICATED) - {"objectGUID"}


@dataclass(frozen=True, slots=True)
class Request:
    flags: int
    max_bytes: int
    cookie: bytes


def read_request(controls: Iterable[Any] | None) -> Request | None:
    """The DirSync request among `controls`, None when there is none."""
    found = controls_.find(controls, DIRSYNC_OID)
    if found is not None:
        raw = found[1] or b""
        try:
            tag, body, _ = ber.read_tlv(raw)
            if tag != ber.SEQUENCE:
                raise ber.BERError("not a SEQUENCE")
            numbers = []
            pos = 0
            for _ in range(2):
                tag, number, pos = ber.read_tlv(body, pos)
                if tag != ber.INTEGER or not number:
                    raise ber.BERError("Flags and MaxBytes must be INTEGERs")
                numbers.append(int.from_bytes(number, "big", signed=True))
            tag, cookie, _ = ber.read_tlv(body, pos)
            if tag != ber.OCTET_STRING:
                raise ber.BERError("the cookie is not an OCTET STRING")
        except (ber.BERError, IndexError) as e:
            raise errors.bad_control_value(DIRSYNC_OID, str(e)) from None
        return Request(numbers[0] & 0xFFFFFFFF, numbers[1], cookie)
    return None


def cookie_for(usn: int, nc_guid: bytes) -> bytes:
    return _COOKIE.pack(_MAGIC, 1, usn, nc_guid.ljust(16, b"\0")[:16])


def usn_of_cookie(cookie: bytes, nc_guid: bytes) -> int:
    """The USN a cookie of this NC says the caller has seen; 0 for none or another NC's."""
    if not cookie:
        return 0
    if len(cookie) != _COOKIE.size or cookie[:4] != _MAGIC:
        raise errors.bad_control_value(DIRSYNC_OID, "the cookie is not one this server made")
    _magic, _version, usn, guid = _COOKIE.unpack(cookie)
    return usn if guid == nc_guid.ljust(16, b"\0")[:16] else 0


@dataclass(slots=True)
class Answer:
    entries: list[bytes]  # encoded SearchResultEntry messages
    control: bytes  # the response control


def search(
    store: Store,
    policy: AccessPolicy,
    who: Principal,
    base: Entry,
    matches: Callable[[Entry], bool],
    requested: Iterable[str],
    request: Request,
    encode: Callable[[Entry, str, list[tuple[str, Values]]], bytes],
    max_objects: int,
) -> Answer:
    """The DirSync answer to a search from `base` (`encode` writes one entry from its DN and
    attributes: the server's extended-DN forms apply)."""
    replicates = policy.may_replicate(who)
    nc_head = store.is_naming_context(base.ndn)
    if not request.flags & OBJECT_SECURITY:
        if not (nc_head and replicates):
            raise errors.replication_denied()
    elif not nc_head:
        raise errors.dirsync_not_nc_head()
    store.track_changes = True
    nc_guid = base.attrs.get("objectGUID", (b"",))[0]
    seen = usn_of_cookie(request.cookie, nc_guid)
    wanted = _wanted(store.schema, requested)
    limit = max(request.max_bytes, MIN_BYTES)
    suffix = "," + base.ndn
    out: list[bytes] = []
    size = 0
    last = seen
    more = False
    for usn, e in store.usn_after(seen):
        if len(out) >= max_objects or size >= limit:
            more = True
            break
        last = usn
        if not (e.ndn == base.ndn or e.ndn.endswith(suffix)) or store.partition_of(
            e.ndn
        ) != store.partition_of(base.ndn):
            continue
        if not matches(e):
            continue
        attrs = changed_attributes(store, e, seen, wanted)
        if attrs is None:
            continue
        dn = e.dn
        if tombstones.is_deleted(e.attrs) and not replicates:
            dn, attrs = "", [(n, v) for n, v in attrs if n in (*ALWAYS, "isDeleted")]
        encoded = encode(e, dn, attrs)
        out.append(encoded)
        size += len(encoded)
    if not more:
        last = store.highest_usn
    value = ber.sequence(
        ber.integer(int(more)), ber.integer(0), ber.octets(cookie_for(last, nc_guid))
    )
    return Answer(out, ber.control(DIRSYNC_OID, value))


def _wanted(schema: Schema, requested: Iterable[str]) -> frozenset[str] | None:
    """The canonical names asked for; None for every attribute (none named, or ``*``)."""
    names = [r.decode("utf-8", "replace") if isinstance(r, bytes) else r for r in requested]
    names = [n.strip() for n in names]
    if not names or "*" in names:
        return None
    out = set()
    for n in names:
        t = schema.get(n)
        if t is not None:
            out.add(t.name)
    return frozenset(out)


def changed_attributes(
    store: Store, e: Entry, seen: int, wanted: frozenset[str] | None
) -> list[tuple[str, Values]] | None:
    """The attributes of `e` to return to a caller who has seen USN `seen`: those changed
    since (a removed one with no values), objectGUID and instanceType, and parentGUID when the
    name changed; None when nothing asked for changed."""
    items: dict[str, Values] = dict(e.attrs)
    items["name"] = e.values(store.schema.require("name"))
    picked: list[tuple[str, Values]] = []
    for name, values in items.items():
        if name in _NOT_RETURNED or name in ALWAYS:
            continue
        if wanted is not None and name not in wanted:
            continue
        if seen and store.attribute_usn(e, name) <= seen:
            continue
        picked.append((name, values))
    if seen and not tombstones.is_deleted(e.attrs):
        for name in store.removed_since(e, seen):
            if name not in _NOT_RETURNED and (wanted is None or name in wanted):
                picked.append((name, ()))
    if not picked:
        return None
    nc_head = store.is_naming_context(e.ndn)
    always: list[tuple[str, Values]] = [
        ("objectGUID", e.attrs.get("objectGUID", ())),
        ("instanceType", e.attrs.get("instanceType") or WRITABLE_INSTANCE),  # as a search has it
    ]
    if not nc_head and any(n == "name" for n, _v in picked):
        parent = store.get(e.parent) or store.get_deleted(e.parent)
        if parent is not None and parent.attrs.get("objectGUID"):
            always.append(("parentGUID", parent.attrs["objectGUID"]))
    return always + picked
