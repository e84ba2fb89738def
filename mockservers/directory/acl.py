"""Who may do what in the fake AD: principals, roles and the checks the server applies.

Least privilege as a real writeback deployment grants it: the Cloud Sync agent's gMSA reads
everything and writes only the documented writeback attributes on user objects below the
configured OUs. An admin may do everything. Anything else gets AD's INSUFF_ACCESS_RIGHTS (50).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum

from harness.core.adschema import Schema
from harness.tenant.writeback import GA_ATTRIBUTES
from mockservers.directory import errors
from mockservers.directory.entry import DERIVED_ATTRIBUTES, Entry

# MS-ADTS 3.1.1.4.5.x: the constructed attribute listing what the bound principal may write on
# the object. Returned only when asked for by name; omitted when the list would be empty.
ALLOWED_ATTRIBUTES_EFFECTIVE = "allowedAttributesEffective"


class Role(Enum):
    ADMIN = "admin"
    WRITEBACK = "writeback"  # the Cloud Sync agent's service account
    READER = "reader"  # e.g. a line-of-business app's account


@dataclass(frozen=True, slots=True)
class Principal:
    dn: str
    ndn: str
    sam: str
    role: Role


@dataclass(frozen=True, slots=True)
class AccessPolicy:
    writeback_attributes: frozenset[str] = frozenset(GA_ATTRIBUTES)
    writable_subtrees: tuple[str, ...] = ()  # ndns below which the writeback account may write
    # Whether the writeback account holds DS-Replication-Get-Changes on the domain (DirSync
    # without LDAP_DIRSYNC_OBJECT_SECURITY). Microsoft's Cloud Sync installer grants its gMSA
    # the PasswordHashSync permissions (Replicating Directory Changes and ... All) with its
    # default "All" permission set (entra-docs cloud-sync/how-to-gmsa-cmdlets.md); the harness
    # defaults to least privilege, what writeback alone needs: off. The admin always holds it,
    # the reader never.
    writeback_replicates: bool = False

    def check_modify(self, who: Principal, entry: Entry, attributes: Iterable[str]) -> None:
        if who.role is Role.ADMIN:
            return
        if (
            who.role is Role.WRITEBACK
            and self._writeback_target(entry)
            and all(a in self.writeback_attributes for a in attributes)
        ):
            return
        raise errors.insufficient_access()

    def allowed_attributes(
        self, who: Principal, entry: Entry, writable: tuple[str, ...]
    ) -> tuple[str, ...]:
        """The attributes `who` may write on `entry`, what `check_modify` lets through, out of
        `writable` (`writable_attributes` of the schema: AD lists the class's writable
        attributes; the fake has no per-class lists, so an admin gets every one)."""
        if who.role is Role.ADMIN:
            return writable
        if who.role is Role.WRITEBACK and self._writeback_target(entry):
            return _subset(writable, self.writeback_attributes)
        return ()

    def may_replicate(self, who: Principal) -> bool:
        """Whether `who` holds DS-Replication-Get-Changes on the naming contexts."""
        return who.role is Role.ADMIN or (who.role is Role.WRITEBACK and self.writeback_replicates)

    def check_admin(self, who: Principal) -> None:
        """Add, delete and modifyDN are for the admin only."""
        if who.role is not Role.ADMIN:
            raise errors.insufficient_access()

    def _writeback_target(self, entry: Entry) -> bool:
        classes = {c.lower() for c in entry.attrs.get("objectClass", ())}
        if b"user" not in classes or b"computer" in classes:
            return False
        return any(entry.ndn.endswith("," + root) for root in self.writable_subtrees)


def writable_attributes(schema: Schema) -> tuple[str, ...]:
    """Every attribute of `schema` a client may write (not system-only, not derived)."""
    return tuple(t.name for t in schema if not t.system_only and t.name not in DERIVED_ATTRIBUTES)


@functools.lru_cache(maxsize=16)
def _subset(writable: tuple[str, ...], allowed: frozenset[str]) -> tuple[str, ...]:
    # Once per policy, not once per entry: a 200,000-object preview asks for every user.
    return tuple(a for a in writable if a in allowed)
