"""Security identifiers as AD stores them, and the SAM values derived from an object's class.

The domain SID is derived from the base DN, so a tenant's SIDs are stable across its exports
(`harness.tenant.exports`). The fake AD stamps sAMAccountType and primaryGroupID on its security
principals with the functions below.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection
from dataclasses import dataclass
from typing import Final

FIRST_RID: Final = 1104  # RIDs below this are AD's built-in accounts and groups

# [MS-SAMR] 2.2.1.9 ACCOUNT_TYPE values, as sAMAccountType holds them.
SAM_GROUP_OBJECT: Final = 0x10000000
SAM_NON_SECURITY_GROUP_OBJECT: Final = 0x10000001
SAM_ALIAS_OBJECT: Final = 0x20000000
SAM_NON_SECURITY_ALIAS_OBJECT: Final = 0x20000001
SAM_USER_OBJECT: Final = 0x30000000  # 805306368, (sAMAccountType=805306368): every user
SAM_MACHINE_ACCOUNT: Final = 0x30000001
# [MS-ADTS] 2.2.12 groupType flags; the well-known RIDs of [MS-ADTS] 6.1.1.6.
GROUP_TYPE_DOMAIN_LOCAL: Final = 0x00000004
GROUP_TYPE_SECURITY_ENABLED: Final = 0x80000000
DOMAIN_USERS_RID: Final = 513
DOMAIN_COMPUTERS_RID: Final = 515
DOMAIN_CONTROLLERS_RID: Final = 516
SERVER_TRUST_ACCOUNT: Final = 0x2000  # userAccountControl of a DC


@dataclass(frozen=True, slots=True)
class DomainSid:
    """The domain's SID, S-1-5-21-a-b-c, derived from its base DN (stable for a tenant)."""

    sub: tuple[int, int, int]

    @classmethod
    def of(cls, base_dn: str) -> DomainSid:
        d = hashlib.sha256(f"exwb:sid:{base_dn}".encode()).digest()
        a, b, c = (int.from_bytes(d[i : i + 4], "little") for i in (0, 4, 8))
        return cls((a, b, c))

    def binary(self, rid: int | None = None) -> bytes:
        """The SID in AD's binary form (revision, count, authority big-endian, sub-authorities
        little-endian); `rid` None is the domain's own SID."""
        subs = (21, *self.sub) + (() if rid is None else (rid,))
        head = bytes((1, len(subs))) + (5).to_bytes(6, "big")
        return head + b"".join(s.to_bytes(4, "little") for s in subs)

    def text(self, rid: int | None = None) -> str:
        tail = "" if rid is None else f"-{rid}"
        return "S-1-5-21-" + "-".join(str(s) for s in self.sub) + tail


def principal_kind(classes: Collection[str]) -> str | None:
    """ "user", "computer" or "group" for a security principal's objectClass values (any case),
    else None (contacts, OUs, containers hold no SID)."""
    names = {c.lower() for c in classes}
    if "computer" in names:
        return "computer"
    if "user" in names:
        return "user"
    return "group" if "group" in names else None


def sam_account_type(kind: str, group_type: int = 0) -> int:
    """sAMAccountType for a principal of `kind` ([MS-SAMR] 2.2.1.9, [MS-ADTS] 3.1.1.5.2.2)."""
    if kind == "user":
        return SAM_USER_OBJECT
    if kind == "computer":
        return SAM_MACHINE_ACCOUNT
    security = bool(group_type & GROUP_TYPE_SECURITY_ENABLED)
    if group_type & GROUP_TYPE_DOMAIN_LOCAL:
        return SAM_ALIAS_OBJECT if security else SAM_NON_SECURITY_ALIAS_OBJECT
    return SAM_GROUP_OBJECT if security else SAM_NON_SECURITY_GROUP_OBJECT


def primary_group_id(kind: str, user_account_control: int = 0) -> int | None:
    """The RID AD gives a new account's primaryGroupID: Domain Users, Domain Computers, or
    Domain Controllers for a DC; groups have none."""
    if kind == "user":
        return DOMAIN_USERS_RID
    if kind == "computer":
        if user_account_control & SERVER_TRUST_ACCOUNT:
            return DOMAIN_CONTROLLERS_RID
        return DOMAIN_COMPUTERS_RID
    return None


def sid_text(binary: bytes) -> str:
    """A binary SID ([MS-DTYP] 2.4.2.2) in its string form, S-1-5-21-... (2.4.2.1)."""
    if len(binary) < 8 or len(binary) != 8 + 4 * binary[1]:
        raise ValueError("not a binary SID")
    authority = int.from_bytes(binary[2:8], "big")
    subs = [int.from_bytes(binary[i : i + 4], "little") for i in range(8, len(binary), 4)]
    return "-".join(["S", str(binary[0]), str(authority), *(str(s) for s in subs)])


def sid_binary(text: str) -> bytes:
    """A SID string, S-1-5-21-..., in AD's binary form; ValueError if it is not one."""
    parts = text.strip().split("-")
    if len(parts) < 3 or parts[0].upper() != "S" or not all(p.isdigit() for p in parts[1:]):
        raise ValueError(f"not a SID: {text!r}")
    revision, authority, *subs = (int(p) for p in parts[1:])
    if revision != 1 or authority >= 1 << 48 or len(subs) > 15 or any(s >= 1 << 32 for s in subs):
        raise ValueError(f"not a SID: {text!r}")
    head = bytes((revision, len(subs))) + authority.to_bytes(6, "big")
    return head + b"".join(s.to_bytes(4, "little") for s in subs)
