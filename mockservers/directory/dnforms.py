"""AD's alternative forms of DNs and the extended DN form ([MS-ADTS] 3.1.1.3.1.2.4, 3.1.1.3.4.1.5).

A request may name an object as ``<GUID=object_guid>`` or ``<SID=sid>`` wherever it names one
by DN: a search base, the object of a modify, delete, compare or rename, a new superior, a
DN-valued attribute value. The GUID is the hex of its binary form (32 digits) or the dashed
string; the SID the hex of its binary form or ``S-1-5-...``. ``<WKGUID=guid,dn>`` names the
object that `dn` (a naming context's head) lists under the well-known GUID `guid` (32 hex
digits) in its wellKnownObjects, else its otherWellKnownObjects (MapWellKnownGuidToDN:
`parse_well_known`, `well_known_target`). The extended form a client gets back,
``<GUID=...>;<SID=...>;dn`` (LDAP_SERVER_EXTENDED_DN_OID), is accepted as input too, as Samba
accepts it (the GUID decides; Windows' handling is undocumented).
"""

from __future__ import annotations

import uuid
from typing import Final

from harness.core.sid import sid_binary, sid_text

EXTENDED_DN_OID: Final = "1.2.840.113556.1.4.529"


class BadDNForm(ValueError):
    """An alternative DN form whose GUID or SID does not parse."""


def is_alternative(text: str) -> bool:
    return text.startswith("<")


def parse_alternative(text: str) -> tuple[str, bytes]:
    """("objectGUID" or "objectSid", the binary value) that `text` names the object by."""
    found: dict[str, bytes] = {}
    rest = text
    while rest.startswith("<"):
        end = rest.find(">")
        if end < 0:
            raise BadDNForm(text)
        kind, sep, value = rest[1:end].partition("=")
        if not sep:
            raise BadDNForm(text)
        kind = kind.strip().upper()
        if kind == "GUID":
            found["objectGUID"] = _guid(value.strip(), text)
        elif kind == "SID":
            found["objectSid"] = _sid(value.strip(), text)
        else:  # WKGUID (parse_well_known) names no object by one of its own attributes
            raise BadDNForm(text)
        rest = rest[end + 1 :].lstrip()
        if rest.startswith(";"):
            rest = rest[1:].lstrip()
    for name in ("objectGUID", "objectSid"):
        if name in found:
            return name, found[name]
    raise BadDNForm(text)


def parse_well_known(text: str) -> tuple[str, str] | None:
    """(the GUID's 32 hex digits in upper case, the DN) of ``<WKGUID=guid,dn>``; None for any
    other form. BadDNForm when the GUID is not 32 hex digits or the DN is missing."""
    if text[:8].upper() != "<WKGUID=":
        return None
    if not text.endswith(">"):
        raise BadDNForm(text)
    guid, sep, dn = text[8:-1].partition(",")
    guid, dn = guid.strip(), dn.strip()
    if not sep or not dn or len(guid) != 32:
        raise BadDNForm(text)
    try:
        bytes.fromhex(guid)
    except ValueError:
        raise BadDNForm(text) from None
    return guid.upper(), dn


def well_known_target(values: tuple[bytes, ...], guid: str) -> str | None:
    """The DN part of the DN-Binary value ``B:32:<guid>:<dn>`` among `values` whose binary
    part is `guid` (32 hex digits in upper case), or None."""
    for v in values:
        kind, _, rest = v.decode("utf-8", "replace").partition(":")
        count, _, rest = rest.partition(":")
        binary, _, dn = rest.partition(":")
        if kind.upper() == "B" and count == "32" and binary.upper() == guid and dn:
            return dn
    return None


def _guid(value: str, text: str) -> bytes:
    try:
        if len(value) == 32:  # the hex of the binary form, bytes in stored order
            return bytes.fromhex(value)
        return uuid.UUID(value).bytes_le  # the dashed string ([RFC4122] 3)
    except ValueError:
        raise BadDNForm(text) from None


def _sid(value: str, text: str) -> bytes:
    try:
        if value[:2].upper() == "S-":
            return sid_binary(value)
        binary = bytes.fromhex(value)
        sid_text(binary)  # checks the structure
        return binary
    except ValueError:
        raise BadDNForm(text) from None


def extended_dn(dn: str, guid: bytes | None, sid: bytes | None, flag: int) -> str:
    """``<GUID=...>;<SID=...>;dn``: flag 0 gives the hex of the binary values, flag 1 the
    dashed GUID and the S-1-... SID ([MS-ADTS] 3.1.1.3.4.1.5)."""
    parts = []
    if guid is not None and len(guid) == 16:
        parts.append(f"<GUID={guid.hex() if flag == 0 else uuid.UUID(bytes_le=guid)}>")
    if sid is not None:
        parts.append(f"<SID={sid.hex() if flag == 0 else sid_text(sid)}>")
    return ";".join([*parts, dn])
