"""The tenant model: on-premises AD users and Exchange Online mailboxes, joined by source anchor.

Objects are slotted dataclasses holding plain strings, ints and tuples so that 600,000 of each
fit in memory; values equal on both sides at generation time are the same Python objects.
`AdUser.ldap_attributes` and `AdGroup.ldap_attributes` are the one place that names the LDAP
attributes of a user and of a group; the LDIF writer and the directory load from them.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol

from harness.tenant.spec import TenantSpec

Values = tuple[str, ...]

CUSTOM_ATTRIBUTE_COUNT = 15
EXTENSION_CUSTOM_ATTRIBUTE_COUNT = 5
NO_CUSTOM: tuple[str | None, ...] = (None,) * CUSTOM_ATTRIBUTE_COUNT
NO_EXTENSION: tuple[Values, ...] = ((),) * EXTENSION_CUSTOM_ATTRIBUTE_COUNT

USER_OBJECT_CLASSES: Values = ("top", "person", "organizationalPerson", "user")
GROUP_OBJECT_CLASSES: Values = ("top", "group")

# accountExpires ([MS-ADA1] Account-Expires, Interval syntax): both mean "never"; AD writes
# 0x7FFFFFFFFFFFFFFF when it creates an account and 0 once an expiry date has been cleared.
ACCOUNT_NEVER_EXPIRES = 9223372036854775807
ACCOUNT_EXPIRY_CLEARED = 0

# groupType flags ([MS-ADTS] 2.2.12 / [MS-SAMR] 2.2.1.11): the scope bit, and the security bit
# that makes the value negative as a signed 32-bit integer (AD's Integer syntax).
GROUP_TYPE_GLOBAL = 0x2
GROUP_TYPE_DOMAIN_LOCAL = 0x4
GROUP_TYPE_UNIVERSAL = 0x8
GROUP_TYPE_SECURITY_ENABLED = 0x80000000


def group_type(scope: int, security: bool) -> int:
    """The signed 32-bit groupType AD stores: -2147483646 for a global security group."""
    value = scope | (GROUP_TYPE_SECURITY_ENABLED if security else 0)
    return value - (1 << 32) if value & GROUP_TYPE_SECURITY_ENABLED else value


def anchor_of(consistency_guid: bytes) -> str:
    """The cloud's onPremisesImmutableId for an AD mS-DS-ConsistencyGuid."""
    return base64.b64encode(consistency_guid).decode("ascii")


def primary_smtp(addresses: Values) -> str | None:
    """The address behind the one upper-case ``SMTP:`` prefix, if any."""
    for a in addresses:
        if a.startswith("SMTP:"):
            return a[5:]
    return None


class _Stamped(Protocol):
    when_created: str
    when_changed: str
    usn_created: int
    usn_changed: int


def _stamps(object_category: str, o: _Stamped) -> tuple[tuple[str, tuple[str]], ...]:
    """What every object carries the same way: its category, creation and change stamps."""
    return (
        ("objectCategory", (object_category,)),
        ("whenCreated", (o.when_created,)),
        ("whenChanged", (o.when_changed,)),
        ("uSNCreated", (str(o.usn_created),)),
        ("uSNChanged", (str(o.usn_changed),)),
    )


@dataclass(slots=True, eq=False)
class AdUser:
    """An on-premises AD user object with its Exchange attributes."""

    dn: str
    cn: str
    object_guid: bytes
    consistency_guid: bytes | None
    sam_account_name: str
    user_principal_name: str
    given_name: str | None
    sn: str | None
    display_name: str
    department: str | None
    user_account_control: int
    # The SAM's times, as Interval (FILETIME) values; lastLogonTimestamp None: never logged on.
    pwd_last_set: int = 0
    account_expires: int = ACCOUNT_NEVER_EXPIRES
    last_logon_timestamp: int | None = None
    when_created: str = ""
    when_changed: str = ""
    usn_created: int = 0
    usn_changed: int = 0
    # Exchange attributes; None / () when absent.
    mail: str | None = None
    mail_nickname: str | None = None
    proxy_addresses: Values = ()
    target_address: str | None = None
    # None: the DN of its X500 address, if it has one (`legacy_dn`).
    legacy_exchange_dn: str | None = None
    recipient_type_details: int | None = None
    recipient_display_type: int | None = None
    remote_recipient_type: int | None = None
    hide_from_address_lists: bool | None = None
    home_mdb: str | None = None
    extension_attributes: tuple[str | None, ...] = NO_CUSTOM
    extension_custom_attributes: tuple[Values, ...] = NO_EXTENSION

    def ldap_attributes(self, object_category: str) -> list[tuple[str, tuple[str | bytes, ...]]]:
        """The entry's attributes in LDAP form (name, values), absent ones left out, fixed order."""
        out: list[tuple[str, tuple[str | bytes, ...]]] = [
            ("objectClass", USER_OBJECT_CLASSES),
            ("cn", (self.cn,)),
        ]
        add = out.append
        if self.sn is not None:
            add(("sn", (self.sn,)))
        if self.given_name is not None:
            add(("givenName", (self.given_name,)))
        add(("displayName", (self.display_name,)))
        add(("sAMAccountName", (self.sam_account_name,)))
        add(("userPrincipalName", (self.user_principal_name,)))
        add(("objectGUID", (self.object_guid,)))
        if self.consistency_guid is not None:
            add(("mS-DS-ConsistencyGuid", (self.consistency_guid,)))
        if self.department is not None:
            add(("department", (self.department,)))
        add(("userAccountControl", (str(self.user_account_control),)))
        add(("pwdLastSet", (str(self.pwd_last_set),)))
        add(("accountExpires", (_account_expires_text(self.account_expires),)))
        if self.last_logon_timestamp is not None:
            add(("lastLogonTimestamp", (str(self.last_logon_timestamp),)))
        out.extend(_stamps(object_category, self))
        if self.mail is not None:
            add(("mail", (self.mail,)))
        if self.mail_nickname is not None:
            add(("mailNickname", (self.mail_nickname,)))
        if self.proxy_addresses:
            add(("proxyAddresses", self.proxy_addresses))
        if self.target_address is not None:
            add(("targetAddress", (self.target_address,)))
        legacy = self.legacy_dn
        if legacy is not None:
            add(("legacyExchangeDN", (legacy,)))
        if self.home_mdb is not None:
            add(("homeMDB", (self.home_mdb,)))
        if self.recipient_type_details is not None:
            add(("msExchRecipientTypeDetails", (str(self.recipient_type_details),)))
        if self.recipient_display_type is not None:
            add(("msExchRecipientDisplayType", (str(self.recipient_display_type),)))
        if self.remote_recipient_type is not None:
            add(("msExchRemoteRecipientType", (str(self.remote_recipient_type),)))
        if self.hide_from_address_lists is not None:
            add(
                (
                    "msExchHideFromAddressLists",
                    ("TRUE" if self.hide_from_address_lists else "FALSE",),
                )
            )
        for i, v in enumerate(self.extension_attributes, 1):
            if v is not None:
                add((f"extensionAttribute{i}", (v,)))
        for i, vs in enumerate(self.extension_custom_attributes, 1):
            if vs:
                add((f"msExchExtensionCustomAttribute{i}", vs))
        return out

    @property
    def anchor(self) -> str | None:
        return anchor_of(self.consistency_guid) if self.consistency_guid is not None else None

    @property
    def legacy_dn(self) -> str | None:
        """legacyExchangeDN: as set, else the DN of the X500 address a mailbox migrated from
        Exchange Server keeps in the cloud, which is the one its AD user still holds (derived,
        not stored: 80,000 of 200,000 users have one)."""
        if self.legacy_exchange_dn is not None:
            return self.legacy_exchange_dn
        for a in self.proxy_addresses:
            if a.startswith("X500:"):
                return a[5:]
        return None


_NEVER_TEXT = str(ACCOUNT_NEVER_EXPIRES)


def _account_expires_text(value: int) -> str:
    # Nearly every user holds the same value: one string for all of them.
    return _NEVER_TEXT if value == ACCOUNT_NEVER_EXPIRES else str(value)


@dataclass(slots=True, eq=False)
class AdGroup:
    """An AD group: security or distribution, its members (users' and groups' DNs) and, for a
    mail-enabled distribution group, the attributes Exchange stamps on it."""

    dn: str
    cn: str
    object_guid: bytes
    sam_account_name: str
    description: str
    group_type: int
    members: Values = ()
    when_created: str = ""
    when_changed: str = ""
    usn_created: int = 0
    usn_changed: int = 0
    # Exchange attributes of a mail-enabled group; None / () when absent.
    display_name: str | None = None
    mail: str | None = None
    mail_nickname: str | None = None
    proxy_addresses: Values = ()
    legacy_exchange_dn: str | None = None
    recipient_type_details: int | None = None
    recipient_display_type: int | None = None

    @property
    def security(self) -> bool:
        return self.group_type < 0

    def ldap_attributes(self, object_category: str) -> list[tuple[str, tuple[str | bytes, ...]]]:
        """The entry's attributes in LDAP form (name, values), absent ones left out, fixed order."""
        out: list[tuple[str, tuple[str | bytes, ...]]] = [
            ("objectClass", GROUP_OBJECT_CLASSES),
            ("cn", (self.cn,)),
            ("description", (self.description,)),
        ]
        add = out.append
        if self.display_name is not None:
            add(("displayName", (self.display_name,)))
        add(("sAMAccountName", (self.sam_account_name,)))
        add(("objectGUID", (self.object_guid,)))
        add(("groupType", (str(self.group_type),)))
        out.extend(_stamps(object_category, self))
        if self.members:
            add(("member", self.members))
        if self.mail is not None:
            add(("mail", (self.mail,)))
        if self.mail_nickname is not None:
            add(("mailNickname", (self.mail_nickname,)))
        if self.proxy_addresses:
            add(("proxyAddresses", self.proxy_addresses))
        if self.legacy_exchange_dn is not None:
            add(("legacyExchangeDN", (self.legacy_exchange_dn,)))
        if self.recipient_type_details is not None:
            add(("msExchRecipientTypeDetails", (str(self.recipient_type_details),)))
        if self.recipient_display_type is not None:
            add(("msExchRecipientDisplayType", (str(self.recipient_display_type),)))
        return out


@dataclass(slots=True, eq=False)
class CloudMailbox:
    """An Exchange Online recipient (a mailbox, or a MailUser for an on-premises mailbox)."""

    id: str
    user_principal_name: str
    display_name: str
    alias: str
    immutable_id: str | None
    is_dir_synced: bool
    is_exchange_cloud_managed: bool
    recipient_type_details: str
    email_addresses: Values
    windows_email_address: str
    legacy_exchange_dn: str
    hidden_from_address_lists: bool = False
    custom_attributes: tuple[str | None, ...] = NO_CUSTOM
    extension_custom_attributes: tuple[Values, ...] = NO_EXTENSION

    @property
    def primary_smtp_address(self) -> str | None:
        return primary_smtp(self.email_addresses)

    def to_json(self) -> dict[str, object]:
        """EXO-shaped record (empty custom attributes as "" and [], as Get-Mailbox shows them)."""
        rec: dict[str, object] = {
            "id": self.id,
            "UserPrincipalName": self.user_principal_name,
            "DisplayName": self.display_name,
            "Alias": self.alias,
            "onPremisesImmutableId": self.immutable_id,
            "IsDirSynced": self.is_dir_synced,
            "IsExchangeCloudManaged": self.is_exchange_cloud_managed,
            "RecipientTypeDetails": self.recipient_type_details,
            "EmailAddresses": list(self.email_addresses),
            "WindowsEmailAddress": self.windows_email_address,
            "PrimarySmtpAddress": self.primary_smtp_address,
            "HiddenFromAddressListsEnabled": self.hidden_from_address_lists,
            "LegacyExchangeDN": self.legacy_exchange_dn,
        }
        for i, v in enumerate(self.custom_attributes, 1):
            rec[f"CustomAttribute{i}"] = v or ""
        for i, vs in enumerate(self.extension_custom_attributes, 1):
            rec[f"ExtensionCustomAttribute{i}"] = list(vs)
        return rec

    @classmethod
    def from_json(cls, rec: dict[str, object]) -> CloudMailbox:
        """Inverse of `to_json`; raises KeyError/TypeError on a malformed record."""

        def text(key: str) -> str:
            v = rec[key]
            if not isinstance(v, str):
                raise TypeError(f"{key} must be a string")
            return v

        def strings(key: str) -> Values:
            v = rec[key]
            if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
                raise TypeError(f"{key} must be a list of strings")
            return tuple(v)

        def flag(key: str) -> bool:
            v = rec[key]
            if not isinstance(v, bool):
                raise TypeError(f"{key} must be true or false")
            return v

        immutable = rec["onPremisesImmutableId"]
        if immutable is not None and not isinstance(immutable, str):
            raise TypeError("onPremisesImmutableId must be a string or null")
        return cls(
            id=text("id"),
            user_principal_name=text("UserPrincipalName"),
            display_name=text("DisplayName"),
            alias=text("Alias"),
            immutable_id=immutable,
            is_dir_synced=flag("IsDirSynced"),
            is_exchange_cloud_managed=flag("IsExchangeCloudManaged"),
            recipient_type_details=text("RecipientTypeDetails"),
            email_addresses=strings("EmailAddresses"),
            windows_email_address=text("WindowsEmailAddress"),
            legacy_exchange_dn=text("LegacyExchangeDN"),
            hidden_from_address_lists=flag("HiddenFromAddressListsEnabled"),
            custom_attributes=tuple(
                text(f"CustomAttribute{i}") or None for i in range(1, CUSTOM_ATTRIBUTE_COUNT + 1)
            ),
            extension_custom_attributes=tuple(
                strings(f"ExtensionCustomAttribute{i}")
                for i in range(1, EXTENSION_CUSTOM_ATTRIBUTE_COUNT + 1)
            ),
        )


@dataclass(slots=True)
class OrganizationalUnit:
    dn: str
    name: str
    synced: bool  # in the sync scope of Entra Connect


@dataclass(slots=True, eq=False)
class Tenant:
    """One generated tenant: the AD domain partition and the Exchange Online recipients."""

    spec: TenantSpec
    ous: list[OrganizationalUnit]
    ad_users: list[AdUser]
    mailboxes: list[CloudMailbox]
    groups: list[AdGroup] = field(default_factory=list)  # members before the groups they are in
    highest_usn: int = 0
    _by_anchor: dict[str, AdUser] | None = field(default=None, repr=False)

    @property
    def base_dn(self) -> str:
        return self.spec.base_dn

    @property
    def object_category_person(self) -> str:
        return f"CN=Person,CN=Schema,CN=Configuration,{self.base_dn}"

    @property
    def object_category_group(self) -> str:
        return f"CN=Group,CN=Schema,CN=Configuration,{self.base_dn}"

    def ad_user_by_anchor(self, immutable_id: str) -> AdUser | None:
        """The AD user a cloud object joins to (index built on first use)."""
        if self._by_anchor is None:
            self._by_anchor = {u.anchor: u for u in self.ad_users if u.anchor is not None}
        return self._by_anchor.get(immutable_id)

    def synced_pairs(self) -> Iterator[tuple[AdUser, CloudMailbox]]:
        """Every synced cloud recipient with the AD user it is joined to."""
        for mbx in self.mailboxes:
            if mbx.immutable_id is not None:
                user = self.ad_user_by_anchor(mbx.immutable_id)
                if user is not None:
                    yield user, mbx
