"""Object identifiers of the fake AD's attributes and classes, shared by the slapd and Samba
schemas.

Microsoft's attributeID where a public source gives it; otherwise a stable private OID under
`PRIVATE_ARC`, so that slapd and Samba name an attribute the same way.
"""

from __future__ import annotations

import hashlib
from typing import Final

from harness.core.adschema import AttributeType
from mockservers.directory.ad_classes import AD_ATTRIBUTE_IDS

PROJECT_UUID: Final = "83feb9e7-c862-4048-baf7-5e5ef76b7d4f"
PRIVATE_ARC: Final = "1.2.840.113556.1.8000.2554.33790.47591.51298.16456.47863.6184695.7044431"
"""OID arc for definitions with no known Microsoft OID.

Microsoft's documented way to name an AD schema extension without registering an arc: the
prefix 1.2.840.113556.1.8000.2554 followed by a GUID cut into seven numbers (the oidgen script
of "Obtaining an Object Identifier from Microsoft"); the GUID, `PROJECT_UUID`, was drawn once for
exwb-harness. Attributes live under ``.1.<a>.<b>``, classes under ``.2.<a>.<b>``, where a and b
are 14-bit numbers derived from the casefolded name (see `private_oid`), so OIDs stay stable
when DEFAULT_SCHEMA grows. (A 2.25 UUID arc would be shorter, but AD and Samba map each OID's
prefix to 32-bit attribute IDs and cannot encode 2.25's 128-bit arc.)
"""

# Microsoft attributeIDs of the attributes AD's own schema lacks, which Exchange's schema adds.
# Sources: the Exchange Server SDK attribute pages for extensionAttribute1..15, targetAddress
# and msExchHideFromAddressLists, and Exchange's schema LDIF as OpenChange publishes it
# (setup/AD/oc_provision_schema*.ldif) for the others. AD's own attributes take their IDs from
# Microsoft's schema files (`AD_ATTRIBUTE_IDS`).
MS_ARC: Final = "1.2.840.113556.1"
_MS = MS_ARC
EXCHANGE_ATTRIBUTE_OIDS: Final[dict[str, str]] = {
    "targetAddress": f"{_MS}.2.352",
    "msExchHideFromAddressLists": f"{_MS}.4.7000.102.73",
    "msExchRecipientDisplayType": f"{_MS}.4.7000.102.50730",
    "msExchRecipientTypeDetails": f"{_MS}.4.7000.102.50855",
    "homeMDB": "1.2.840.113556.1.2.244",
    "mailNickname": "1.2.840.113556.1.2.447",
    "msExchHomeServerName": "1.2.840.113556.1.4.7000.102.47",
    "msExchOwningServer": "1.2.840.113556.1.4.7000.102.11004",
    "msExchRoutingAcceptMessageType": "1.2.840.113556.1.4.7000.102.12517",
    "msExchSmtpOutboundSecurityFlag": "1.2.840.113556.1.4.7000.102.5016",
    "msExchSmtpSmartHost": "1.2.840.113556.1.4.7000.102.5024",
    "msExchSmtpSmartHostType": "1.2.840.113556.1.4.7000.102.5014",
    "msExchSourceBridgeheadServersDN": "1.2.840.113556.1.4.7000.102.12511",
    "routingList": "1.2.840.113556.1.2.354",
    **{f"extensionAttribute{i}": f"{_MS}.2.{422 + i}" for i in range(1, 11)},
    **{f"extensionAttribute{i}": f"{_MS}.2.{588 + i}" for i in range(11, 16)},
}


MICROSOFT_ATTRIBUTE_OIDS: Final[dict[str, str]] = {**AD_ATTRIBUTE_IDS, **EXCHANGE_ATTRIBUTE_OIDS}
"""Every attributeID Microsoft publishes for an attribute of DEFAULT_SCHEMA."""


def private_oid(kind: int, name: str) -> str:
    """A stable OID under PRIVATE_ARC: kind 1 for attributes, 2 for classes."""
    digest = int.from_bytes(hashlib.sha256(name.casefold().encode("utf-8")).digest()[:4], "big")
    return f"{PRIVATE_ARC}.{kind}.{(digest >> 14) & 0x3FFF}.{digest & 0x3FFF}"


def attribute_oid(attr: AttributeType) -> str:
    """Microsoft's attributeID for `attr` when known, else a private OID."""
    return MICROSOFT_ATTRIBUTE_OIDS.get(attr.name) or private_oid(1, attr.name)


# Microsoft's governsIDs for the Exchange classes, where a public source gives them (Exchange's
# schema LDIF as OpenChange publishes it, setup/AD/oc_provision_schema*.ldif).
MICROSOFT_CLASS_OIDS: Final[dict[str, str]] = {
    "msExchAdminGroup": "1.2.840.113556.1.5.7000.62.50011",
    "msExchAdminGroupContainer": "1.2.840.113556.1.5.7000.62.50019",
    "msExchBaseClass": "1.2.840.113556.1.5.7000.62.14",
    "msExchConnectors": "1.2.840.113556.1.5.7000.62.12003",
    "msExchContainer": "1.2.840.113556.1.5.7000.62.50010",
    "msExchCustomAttributes": "1.2.840.113556.1.5.7000.62.6",
    "msExchDomainContentConfig": "1.2.840.113556.1.5.7000.62.50027",
    "msExchExchangeServer": "1.2.840.113556.1.5.7000.62.50009",
    "msExchMailStorage": "1.2.840.113556.1.5.7000.62.5",
    "msExchOrganizationContainer": "1.2.840.113556.1.5.7000.62.50020",
    "msExchPrivateMDB": "1.2.840.113556.1.5.7000.62.11004",
    "msExchRoutingGroup": "1.2.840.113556.1.5.7000.62.12002",
    "msExchRoutingGroupContainer": "1.2.840.113556.1.5.7000.62.12001",
    "msExchRoutingSMTPConnector": "1.2.840.113556.1.5.7000.62.12008",
    "msExchServersContainer": "1.2.840.113556.1.5.7000.62.50013",
}


def class_oid(name: str) -> str:
    """Microsoft's governsID for the class `name` when known, else a private OID."""
    return MICROSOFT_CLASS_OIDS.get(name) or private_oid(2, name)
