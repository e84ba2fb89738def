"""Deleted objects: AD's tombstones ([MS-ADTS] 3.1.1.5.5) and the show-deleted control.

The fake runs with the Recycle Bin optional feature off, AD's default: a delete turns the
object into a tombstone at once (3.1.1.5.5.6.1), with no deleted-object stage in between.
The tombstone keeps its objectGUID, objectSid and the attributes of `KEPT`, loses every other
value (objectCategory and sAMAccountType among them, so ``(objectCategory=person)`` never finds
it) and its links, and moves into its partition's ``CN=Deleted Objects`` container under its
delete-mangled RDN, ``<old RDN value>\\0ADEL:<objectGUID>``. It carries isDeleted TRUE and
lastKnownParent; msDS-LastKnownRDN is the Recycle Bin's (a deleted-object's, 3.1.1.5.5.6.2), so
a tombstone has none (nor has Samba's).

The store keeps tombstones and the Deleted Objects containers (themselves isDeleted TRUE,
6.1.1.4.2) apart from the live tree and out of every index (`Store.deleted`), so a search
without LDAP_SERVER_SHOW_DELETED_OID costs what it cost before and never sees one, a base search
on one included (noSuchObject); with the control, `Store.deleted_in_scope` adds those in scope.
Garbage collection after the tombstone lifetime (180 days, 6.1.1.4.2) needs a simulated clock
and is not done: tombstones stay until the store is rebuilt.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from typing import Any, Final

from harness.core.dn import escape_rdn_value
from mockservers.directory import controls as controls_
from mockservers.directory.ad_classes import AD_PRESERVED_ON_DELETE
from mockservers.directory.entry import Values

SHOW_DELETED_OID: Final = "1.2.840.113556.1.4.417"  # [MS-ADTS] 3.1.1.3.4.1.14
DELETED_OBJECTS: Final = "Deleted Objects"
TRUE: Final = (b"TRUE",)

# [MS-ADTS] 6.1.1.4.2: FLAG_DISALLOW_DELETE | FLAG_DOMAIN_DISALLOW_RENAME |
# FLAG_DOMAIN_DISALLOW_MOVE (0x8C000000), as the signed 32-bit integer AD shows.
CONTAINER_SYSTEM_FLAGS: Final = 0x8C000000 - (1 << 32)

# What a tombstone keeps besides its RDN attribute ([MS-ADTS] 3.1.1.5.5.6.1): the listed
# attributes, every attribute whose searchFlags carry fPRESERVEONDELETE (from Microsoft's schema
# files, ad_classes), and the marks of deletion. whenChanged and uSNChanged get the delete's.
ALWAYS_KEPT: Final = frozenset(
    {
        "nTSecurityDescriptor", "attributeID", "attributeSyntax", "dNReferenceUpdate",
        "dNSHostName", "flatName", "governsID", "groupType", "instanceType", "lDAPDisplayName",
        "legacyExchangeDN", "mS-DS-CreatorSID", "mSMQOwnerID", "nCName", "objectClass",
        "distinguishedName", "objectGUID", "objectSid", "oMSyntax", "proxiedObjectName", "name",
        "replPropertyMetaData", "sAMAccountName", "securityIdentifier", "sIDHistory",
        "subClassOf", "systemFlags", "trustPartner", "trustDirection", "trustType",
        "trustAttributes", "userAccountControl", "uSNChanged", "uSNCreated", "whenCreated",
    }
)  # fmt: skip
KEPT: Final = ALWAYS_KEPT | frozenset(AD_PRESERVED_ON_DELETE) | {
    "isDeleted", "lastKnownParent", "whenChanged",
}  # fmt: skip


def container_ndn(nc_ndn: str) -> str:
    """The normalised DN of a partition's Deleted Objects container."""
    return f"cn={DELETED_OBJECTS.casefold()},{nc_ndn}"


def container_attributes() -> dict[str, Values]:
    """A Deleted Objects container as AD makes it ([MS-ADTS] 6.1.1.4.2), without the
    directory-stamped GUID, USNs and times."""
    return {
        "objectClass": (b"top", b"container"),
        "cn": (DELETED_OBJECTS.encode(),),
        "description": (b"Default container for deleted objects",),
        "isDeleted": TRUE,
        "isCriticalSystemObject": TRUE,
        "showInAdvancedViewOnly": TRUE,
        "systemFlags": (str(CONTAINER_SYSTEM_FLAGS).encode(),),
    }


def guid_text(guid: bytes) -> str:
    """An objectGUID in the text form AD writes in a mangled RDN (little-endian fields)."""
    return str(uuid.UUID(bytes_le=guid)) if len(guid) == 16 else guid.hex()


def tombstone(
    attrs: Mapping[str, Values], rdn: tuple[str, str, str], parent_dn: str, container_dn: str
) -> tuple[str, dict[str, Values]]:
    """(DN, attributes) of the tombstone of an object with these attributes, RDN (the
    attribute's canonical name, its type as the DN spells it, the value) and parent: the values
    of `KEPT`, the RDN attribute with the mangled value, and the marks of deletion."""
    rdn_attr, rdn_type, rdn_value = rdn
    guid = attrs.get("objectGUID", (b"",))[0]
    mangled = f"{rdn_value}\nDEL:{guid_text(guid)}"
    dn = f"{rdn_type}={escape_rdn_value(rdn_value)}\\0ADEL:{guid_text(guid)},{container_dn}"
    kept = {name: values for name, values in attrs.items() if name in KEPT}
    kept[rdn_attr] = (mangled.encode("utf-8"),)
    kept["isDeleted"] = TRUE
    kept["lastKnownParent"] = (parent_dn.encode("utf-8"),)
    return dn, kept


def is_deleted(attrs: Mapping[str, Values]) -> bool:
    return attrs.get("isDeleted") == TRUE


def shows_deleted(controls: Iterable[Any] | None) -> bool:
    """True when the request carries LDAP_SERVER_SHOW_DELETED_OID (no value, 3.1.1.3.4.1.14)."""
    return controls_.has(controls, SHOW_DELETED_OID)
