"""An emulated Exchange Management Shell: Exchange's on-premises cmdlets over plain LDAP.

Exchange's cmdlets read and write the organisation's objects in AD's configuration partition
(and the mailbox attributes of users in the domain partition); `ExchangeShell` does the same
through the engine's LDAP client, bound as the account given (the AD admin, as Exchange's own
permissions would require). Cmdlets return PowerShell-shaped dicts with Exchange's property
names (always Identity, Name and DistinguishedName) and refuse with Exchange's exception names
and texts as `CmdletError`s: an unknown identity is ``ManagementObjectNotFoundException``, a
directory refusal (e.g. insufficientAccessRights for a read-only account) an
``ADOperationException`` naming the domain controller.

Where Exchange keeps a property as a bit of a flags attribute, so does this shell (Exchange's
schema classes, decompiled): remote domains' TargetDeliveryDomain is bit 256 of
msExchRoutingAcceptMessageType, auth servers' and partner applications' Enabled bit 0 of
msExchAuthFlags. What it does not model: cmdlets outside the decommission (Get-Recipient,
Set-Mailbox, ...), -WhatIf/-Confirm, pipelines, and Exchange's RBAC (the directory's ACL
decides).
"""

from harness.decommission.ems import domains, federation, hybrid, recipients, transport
from harness.decommission.ems.domains import DEFAULT_ACCEPT_MESSAGE_TYPES, TARGET_DELIVERY_DOMAIN
from harness.decommission.ems.recipients import MAILBOX_ATTRIBUTES, RECIPIENT_TYPES
from harness.decommission.ems.shell import (
    AD_ERROR,
    AMBIGUOUS,
    INVALID_OPERATION,
    NOT_FOUND,
    RECIPIENT_TASK,
    ExchangeShell,
    Row,
    cmdlets,
)

# The area modules register their cmdlets when imported (above): importing the package is enough.
_AREAS = (recipients, transport, federation, domains, hybrid)

__all__ = [
    "AD_ERROR",
    "AMBIGUOUS",
    "DEFAULT_ACCEPT_MESSAGE_TYPES",
    "INVALID_OPERATION",
    "MAILBOX_ATTRIBUTES",
    "NOT_FOUND",
    "RECIPIENT_TASK",
    "RECIPIENT_TYPES",
    "TARGET_DELIVERY_DOMAIN",
    "ExchangeShell",
    "Row",
    "cmdlets",
]
