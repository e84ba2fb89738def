"""What an AD attribute's values are, for reading exports: binary or text, one value or many,
and the text forms Windows tools print binary values in (csvde's `X'hex'`, GUID and SID text,
base64).

The fake's schema (`harness/core/adschema.py`) is the ground truth for the attributes it knows;
the extra tables name common AD attributes it does not know, so that an export holding them
still reads right (bytes stay bytes, multi-values split) before the assembler reports them.
"""

from __future__ import annotations

import base64
import binascii
import re
import struct
import uuid
from typing import Final

from harness.core.adschema import DEFAULT_SCHEMA, Syntax

# Octet-string attributes of AD and Exchange that the fake's schema does not hold.
_EXTRA_BINARY: Final = frozenset(
    n.casefold()
    for n in (
        "msExchMailboxGuid", "msExchArchiveGUID", "msExchDisabledArchiveGUID",
        "msExchMasterAccountSid", "msExchMailboxSecurityDescriptor", "msExchSafeSendersHash",
        "msExchSafeRecipientsHash", "msExchBlockedSendersHash", "msExchUMSpokenName",
        "sIDHistory", "thumbnailPhoto", "jpegPhoto",
        "userCertificate", "userSMIMECertificate", "logonHours", "nTSecurityDescriptor",
        "terminalServer", "msDS-GenerationId", "msRTCSIP-UserRoutingGroupId", "replUpToDateVector",
        "repsFrom", "repsTo", "dSASignature", "msPKIAccountCredentials", "msPKIRoamingTimeStamp",
        "msPKIDPAPIMasterKeys", "msDS-ManagedPasswordId", "msDS-ManagedPasswordPreviousId",
    )
)  # fmt: skip

# Multi-valued attributes of AD and Exchange that the fake's schema does not hold.
_EXTRA_MULTI: Final = frozenset(
    n.casefold()
    for n in (
        "memberOf", "otherMailbox", "otherTelephone", "otherHomePhone", "otherMobile",
        "otherPager", "otherIpPhone", "otherFacsimileTelephoneNumber", "url", "showInAddressBook",
        "msExchPoliciesIncluded", "msExchPoliciesExcluded", "userCertificate",
        "userSMIMECertificate", "sIDHistory", "directReports", "publicDelegates",
        "publicDelegatesBL", "altSecurityIdentities", "msDS-KeyCredentialLink", "postalAddress",
        "msExchResourceMetaData", "dSCorePropagationData",
        "msExchUMAddresses",
    )
)  # fmt: skip

_SID_ATTRS: Final = frozenset(
    n.casefold() for n in ("objectSid", "sIDHistory", "msExchMasterAccountSid")
)

_binary_cache: dict[str, bool] = {}
_multi_cache: dict[str, bool] = {}


def _base(name: str) -> str:
    return name.split(";", 1)[0].casefold()


def is_binary(name: str) -> bool:
    """Whether attribute `name` (any case, options ignored) holds octet strings."""
    hit = _binary_cache.get(name)
    if hit is None:
        t = DEFAULT_SCHEMA.get(name)
        hit = t.syntax is Syntax.OCTETS if t is not None else _base(name) in _EXTRA_BINARY
        _binary_cache[name] = hit
    return hit


def is_multi(name: str) -> bool:
    """Whether attribute `name` is multi-valued in AD (any case, options ignored)."""
    hit = _multi_cache.get(name)
    if hit is None:
        t = DEFAULT_SCHEMA.get(name)
        hit = not t.single if t is not None else _base(name) in _EXTRA_MULTI
        _multi_cache[name] = hit
    return hit


def is_boolean(name: str) -> bool:
    t = DEFAULT_SCHEMA.get(name)
    return t is not None and t.syntax is Syntax.BOOLEAN


_GUID = re.compile(r"\{?[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}\}?")
_SID = re.compile(r"S-1-(\d+)((?:-\d+){0,15})", re.IGNORECASE)
_HEX = re.compile(r"X'([0-9a-fA-F]*)'")


def sid_bytes(text: str) -> bytes | None:
    """`S-1-5-21-...` as AD's binary SID (revision, count, 48-bit big-endian authority,
    32-bit little-endian sub-authorities), or None if `text` is not a SID."""
    m = _SID.fullmatch(text.strip())
    if m is None:
        return None
    authority = int(m.group(1))
    subs = [int(s) for s in m.group(2).split("-")[1:]]
    if authority >= 1 << 48 or any(s >= 1 << 32 for s in subs):
        return None
    return (
        bytes((1, len(subs)))
        + authority.to_bytes(6, "big")
        + b"".join(struct.pack("<I", s) for s in subs)
    )


def hex_value(text: str) -> bytes | None:
    """csvde's `X'0a1b...'` as bytes; None if `text` is not of that form."""
    m = _HEX.fullmatch(text)
    if m is None or len(m.group(1)) % 2:
        return None
    return bytes.fromhex(m.group(1))


def binary_from_text(name: str, text: str) -> bytes | None:
    """A binary attribute's value from its text form in a CSV export: `X'hex'` (csvde), a GUID
    (`Get-ADUser`'s ObjectGUID: AD's byte order, `uuid.bytes_le`), a SID (`S-1-5-...`) for SID
    attributes, or base64 (what the documented `[Convert]::ToBase64String` export gives).
    None when it is none of these."""
    raw = hex_value(text)
    if raw is not None:
        return raw
    t = text.strip()
    if _GUID.fullmatch(t):
        return uuid.UUID(t).bytes_le
    if _base(name) in _SID_ATTRS:
        sid = sid_bytes(t)
        if sid is not None:
            return sid
    try:
        return base64.b64decode(t, validate=True) if t else None
    except binascii.Error:
        return None
