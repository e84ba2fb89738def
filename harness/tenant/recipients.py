"""Exchange recipient types and the numeric values Exchange stores for them in AD.

Values are the documented bit-flag enums of Exchange (msExchRecipientTypeDetails,
msExchRecipientDisplayType, msExchRemoteRecipientType). The writeback engine derives the AD
values of a cloud-managed mailbox from its cloud type through `REMOTE_AD_VALUES`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

# Exchange Online RecipientTypeDetails of the mailboxes this harness models.
USER_MAILBOX: Final = "UserMailbox"
SHARED_MAILBOX: Final = "SharedMailbox"
ROOM_MAILBOX: Final = "RoomMailbox"
EQUIPMENT_MAILBOX: Final = "EquipmentMailbox"
MAIL_USER: Final = "MailUser"  # how EXO sees a synced user whose mailbox is still on-premises

CLOUD_MAILBOX_TYPES: Final = (USER_MAILBOX, SHARED_MAILBOX, ROOM_MAILBOX, EQUIPMENT_MAILBOX)

# msExchRemoteRecipientType flags.
REMOTE_PROVISION_MAILBOX: Final = 0x1
REMOTE_MIGRATED: Final = 0x4
REMOTE_ROOM: Final = 0x20
REMOTE_EQUIPMENT: Final = 0x40
REMOTE_SHARED: Final = 0x60

# msExchRecipientTypeDetails / msExchRecipientDisplayType of an on-premises user mailbox.
ONPREM_USER_MAILBOX_TYPE_DETAILS: Final = 1
ONPREM_ACLABLE_MAILBOX_USER_DISPLAY_TYPE: Final = 1073741824


@dataclass(frozen=True, slots=True)
class RemoteAdValues:
    """What AD holds for a mailbox that lives in Exchange Online (a "remote mailbox")."""

    type_details: int  # msExchRecipientTypeDetails
    display_type: int  # msExchRecipientDisplayType
    remote_type: int  # msExchRemoteRecipientType (migrated from on-premises)


REMOTE_AD_VALUES: Final[dict[str, RemoteAdValues]] = {
    # RemoteUserMailbox, SyncedMailboxUser, Migrated
    USER_MAILBOX: RemoteAdValues(2147483648, -2147483642, REMOTE_MIGRATED),
    # RemoteSharedMailbox, SyncedMailboxUser, Migrated | SharedMailbox
    SHARED_MAILBOX: RemoteAdValues(34359738368, -2147483642, REMOTE_MIGRATED | REMOTE_SHARED),
    # RemoteRoomMailbox, SyncedConferenceRoomMailbox, Migrated | RoomMailbox
    ROOM_MAILBOX: RemoteAdValues(8589934592, -2147481850, REMOTE_MIGRATED | REMOTE_ROOM),
    # RemoteEquipmentMailbox, SyncedEquipmentMailbox, Migrated | EquipmentMailbox
    EQUIPMENT_MAILBOX: RemoteAdValues(17179869184, -2147481594, REMOTE_MIGRATED | REMOTE_EQUIPMENT),
}

# userAccountControl flags used by the generator.
UAC_ACCOUNTDISABLE: Final = 0x2
UAC_NORMAL_ACCOUNT: Final = 0x200
UAC_DONT_EXPIRE_PASSWORD: Final = 0x10000
