"""Deterministic tenant generator: the same `TenantSpec` gives the same tenant on any machine.

Each aspect (kinds, names, attribute values, identifiers, times, logons, groups) draws from its
own seeded stream, so changing one knob does not reshuffle unrelated data: the group knobs leave
every user as it was. Uniqueness (sAMAccountName,
UPN, every proxy address, CN within its OU) is kept with sets of claimed keys, not by retrying
random draws, so generation cost is linear in the tenant size.
"""

from __future__ import annotations

import gc
import random
import uuid
from bisect import bisect
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from itertools import accumulate

from harness.core.dn import rdn
from harness.tenant import recipients as rt
from harness.tenant.exchange_org import ExchangeOrg
from harness.tenant.model import (
    ACCOUNT_EXPIRY_CLEARED,
    GROUP_TYPE_DOMAIN_LOCAL,
    GROUP_TYPE_GLOBAL,
    GROUP_TYPE_UNIVERSAL,
    NO_CUSTOM,
    NO_EXTENSION,
    AdGroup,
    AdUser,
    CloudMailbox,
    OrganizationalUnit,
    Tenant,
    anchor_of,
    group_type,
)
from harness.tenant.names import alias_base, name_pools, to_ascii
from harness.tenant.spec import MAILBOX_KINDS, TenantSpec

Progress = Callable[[int, int], None]

SITES = (
    "London",
    "New York",
    "Amsterdam",
    "Zürich",
    "São Paulo",
    "Sydney",
    "Singapore",
    "Toronto",
    "Paris",
    "Berlin",
    "Madrid",
    "Tokyo",
    "Dublin",
    "Warszawa",
    "Malmö",
    "København",
    "Chicago",
    "Austin",
    "Seattle",
    "Mumbai",
    "Bengaluru",
    "Johannesburg",
    "Auckland",
    "Montréal",
    "Zaragoza",
)
DEPARTMENTS = (
    "Sales",
    "Finance",
    "Human Resources",
    "Engineering",
    "Marketing",
    "Legal",
    "Operations",
    "IT",
    "Customer Service",
    "Research & Development",
    "Procurement",
    "Facilities",
)
SHARED_PURPOSES = (
    "Invoices",
    "Helpdesk",
    "Info",
    "Recruiting",
    "Support",
    "Orders",
    "Press",
    "Payroll",
    "Bookings",
    "Reception",
    "Careers",
    "Feedback",
)
# The department's name in group names: short enough that every group's sAMAccountName stays
# within the 20 characters IdFix allows.
DEPARTMENT_TOKENS = {
    "Sales": "Sales",
    "Finance": "Finance",
    "Human Resources": "HR",
    "Engineering": "Engineering",
    "Marketing": "Marketing",
    "Legal": "Legal",
    "Operations": "Operations",
    "IT": "IT",
    "Customer Service": "CustService",
    "Research & Development": "RnD",
    "Procurement": "Procurement",
    "Facilities": "Facilities",
}
EQUIPMENT = ("Projector", "Pool Car", "Camera Kit", "Laptop Loaner", "Van", "Microphone Set")
CONTRACTS = ("Permanent", "Contractor", "Intern", "Temporary", "Partner")
LICENSES = ("E3", "E5", "F3", "Business Premium", "Kiosk")
EXT_TAGS = (
    ("skill:python", "skill:sql", "skill:excel", "skill:sap", "skill:java", "skill:design"),
    ("lang:en", "lang:de", "lang:fr", "lang:es", "lang:sv", "lang:pl"),
    ("region:emea", "region:amer", "region:apac"),
    ("team:alpha", "team:beta", "team:gamma", "team:delta"),
    ("cert:iso27001", "cert:pci", "cert:sox"),
)
# Ways a display name ends up needing DN escaping, as seen in real directories.
_SPECIAL_CN = (
    lambda first, last, name: f"{last}, {first}" if first else f"{name}, Shared",
    lambda first, last, name: f"#{name}",
    lambda first, last, name: f" {name}",
    lambda first, last, name: f"{name} + Assistant",
    lambda first, last, name: f'{name} "Temp"',
    lambda first, last, name: f"{name}; External",
    lambda first, last, name: f"{name} <Contractor>",
    lambda first, last, name: f"{name} = Lab",
    lambda first, last, name: f"{name}\\Ops",
)

_EPOCH = datetime(2016, 1, 1, tzinfo=UTC)
_CREATED_SPAN = (datetime(2025, 12, 31, tzinfo=UTC) - _EPOCH).total_seconds()
_SOA_SWITCH = datetime(2026, 5, 15, tzinfo=UTC)
_CHANGED_SPAN = (datetime(2026, 8, 1, tzinfo=UTC) - _SOA_SWITCH).total_seconds()
_FIRST_USN = 20_000
_NOW = _SOA_SWITCH + timedelta(seconds=_CHANGED_SPAN)  # the tenant's present: its last change
_DAY = 86_400
_FILETIME_UNIX = 11_644_473_600  # seconds from 1601-01-01 (FILETIME's epoch) to 1970-01-01
# ms-DS-Logon-Time-Sync-Interval: lastLogonTimestamp moves when it is 14 days minus up to 5
# random days old ([MS-ADA2] ms-DS-Logon-Time-Sync-Interval), so an active account's is 0 to 14
# days old.
_LOGON_SYNC_DAYS = 14
_MAX_PASSWORD_AGE_DAYS = 90
# Exchange's values for a mail-enabled universal distribution group (msExchRecipientTypeDetails
# MailUniversalDistributionGroup, msExchRecipientDisplayType DistributionGroup).
_DL_TYPE_DETAILS = 256
_DL_DISPLAY_TYPE = 1
_EXO_LEGACY_DN = "/o=ExchangeLabs/ou=Exchange Administrative Group (FYDIBOHF23SPDLT)/cn=Recipients"


def generalized_time(dt: datetime) -> str:
    """AD's GeneralizedTime form, as whenCreated shows it: ``20240115093012.0Z``."""
    return dt.strftime("%Y%m%d%H%M%S.0Z")


def filetime(unix_seconds: float) -> int:
    """An Interval (Large Integer) time as pwdLastSet holds it: 100 ns units since 1601-01-01."""
    return int((unix_seconds + _FILETIME_UNIX) * 10_000_000)


class _Generator:
    def __init__(self, spec: TenantSpec) -> None:
        spec.validate()
        self.spec = spec
        s = spec.seed
        # One stream per aspect; str seeds are hashed with SHA-512, identical on every platform.
        self.r_kind = random.Random(f"exwb:{s}:kind")
        self.r_name = random.Random(f"exwb:{s}:name")
        self.r_attr = random.Random(f"exwb:{s}:attr")
        self.r_id = random.Random(f"exwb:{s}:id")
        self.r_time = random.Random(f"exwb:{s}:time")
        self.r_logon = random.Random(f"exwb:{s}:logon")
        self.r_group = random.Random(f"exwb:{s}:group")
        self.pools = name_pools()
        self.claimed_local: set[str] = set()  # mailbox local parts, reserved in every domain
        self.claimed_sam: set[str] = set()
        self.claimed_sam_folded: set[str] = set()  # users' and groups' (groups: generate)
        self.claimed_cn: set[tuple[int, str]] = set()
        self.alias_counter: dict[str, int] = {}
        self.display_counter: dict[str, int] = {}
        self.onprem_legacy_dn = (
            f"/o={spec.exchange_org}/ou=Exchange Administrative Group (FYDIBOHF23SPDLT)"
            "/cn=Recipients"
        )
        self.home_mdb = spec.mailbox_database_dn
        # The distribution groups Exchange Online lists (ExchangeOrg): their aliases are taken
        # whether or not the groups are generated, so no mailbox ever gets one.
        org = ExchangeOrg(spec)
        self.distribution_lists = (*org.groups_without_soa, *org.transferred_groups)
        self.claimed_local.update(g.address.partition("@")[0] for g in self.distribution_lists)
        self.ous = self._organizational_units()
        kinds = list(spec.mailbox_mix)
        self.kinds = [k for k in MAILBOX_KINDS if k in kinds and spec.mailbox_mix[k] > 0]
        self.kind_cum = list(accumulate(spec.mailbox_mix[k] for k in self.kinds))
        extra = sorted(spec.proxy_address_extra.items())
        self.extra_counts = [k for k, _ in extra]
        self.extra_cum = list(accumulate(w for _, w in extra))
        self.custom_rates = spec.custom_fill_rates
        self.ext_rates = spec.extension_fill_rates

    # ------------------------------------------------------------------ structure
    def _organizational_units(self) -> list[OrganizationalUnit]:
        base = self.spec.base_dn
        corp = f"OU=Corp,{base}"
        users = f"OU=Users,{corp}"
        sites = [*SITES, *(f"Site {n}" for n in range(len(SITES) + 1, 51))][: self.spec.site_ous]
        ous = [
            OrganizationalUnit(corp, "Corp", True),
            OrganizationalUnit(users, "Users", True),
            *(OrganizationalUnit(f"{rdn('OU', s)},{users}", s, True) for s in sites),
            OrganizationalUnit(f"OU=Shared Mailboxes,{corp}", "Shared Mailboxes", True),
            OrganizationalUnit(f"OU=Resources,{corp}", "Resources", True),
            OrganizationalUnit(f"OU=Service Accounts,{base}", "Service Accounts", False),
        ]
        self.site_ou_index = list(range(2, 2 + len(sites)))
        self.shared_ou_index = 2 + len(sites)
        self.resource_ou_index = self.shared_ou_index + 1
        self.service_ou_index = self.resource_ou_index + 1
        return ous

    # ------------------------------------------------------------------ uniqueness
    def _unique_alias(self, stem: str) -> str:
        """Reserve a mailbox local part: stem, stem2, stem3, ... (max 64 characters)."""
        stem = stem[:60].strip(".") or "user"
        n = self.alias_counter.get(stem, 1)
        alias = stem if n == 1 else f"{stem}{n}"
        while alias in self.claimed_local:
            n += 1
            alias = f"{stem}{n}"
        self.alias_counter[stem] = n + 1
        self.claimed_local.add(alias)
        return alias

    def _claim_local(self, local: str) -> bool:
        if not local or local in self.claimed_local:
            return False
        self.claimed_local.add(local)
        return True

    def _unique_sam(self, stem: str) -> str:
        stem = "".join(ch for ch in stem if ch.isalnum() or ch in "-_.")[:20].rstrip(".") or "user"
        sam, n = stem, 1
        while sam in self.claimed_sam:
            n += 1
            suffix = str(n)
            sam = stem[: 20 - len(suffix)] + suffix
        self.claimed_sam.add(sam)
        return sam

    def _unique_cn(self, ou: int, cn: str, sam: str) -> str:
        key = (ou, cn.casefold())
        if key in self.claimed_cn:
            cn = f"{cn} ({sam})"  # sAMAccountName is unique, so one step suffices
            key = (ou, cn.casefold())
        self.claimed_cn.add(key)
        return cn

    def _numbered(self, display: str) -> str:
        n = self.display_counter.get(display, 0) + 1
        self.display_counter[display] = n
        return display if n == 1 else f"{display} {n}"

    # ------------------------------------------------------------------ identities
    def _person(self) -> tuple[str, str]:
        r, p = self.r_name, self.pools
        if r.random() < self.spec.non_ascii_fraction:
            x = r.random()
            first = r.choice(p.accented_first if x < 0.7 else p.ascii_first)
            last = r.choice(p.accented_last if x >= 0.3 else p.ascii_last)
        else:
            first, last = r.choice(p.ascii_first), r.choice(p.ascii_last)
        return first, last

    def _identity(self, kind: str) -> tuple[str | None, str | None, str, str, int]:
        """(first, last, display name, alias stem, OU index) for a new mailbox of `kind`."""
        r = self.r_name
        first = last = None
        if kind == "user":
            first, last = self._person()
            display = f"{first} {last}"
            stem = alias_base(first, last)
            ou = r.choice(self.site_ou_index)
        elif kind == "shared":
            display = self._numbered(f"{r.choice(DEPARTMENTS)} {r.choice(SHARED_PURPOSES)}")
            stem = alias_base(*display.split())
            ou = self.shared_ou_index
        elif kind == "room":
            site = self.ous[r.choice(self.site_ou_index)].name
            display = self._numbered(f"Room {site} {r.randint(1, 9)}.{r.randint(1, 40):02d}")
            stem = alias_base(*display.split())
            ou = self.resource_ou_index
        else:
            display = self._numbered(f"{r.choice(EQUIPMENT)} {r.randint(1, 99)}")
            stem = alias_base(*display.split())
            ou = self.resource_ou_index
        if r.random() < self.spec.special_cn_fraction:
            display = r.choice(_SPECIAL_CN)(first, last, display)
        return first, last, display, stem, ou

    def _guid(self) -> bytes:
        return self.r_id.getrandbits(128).to_bytes(16, "little")

    def _cloud_id(self) -> str:
        return str(uuid.UUID(int=self.r_id.getrandbits(128), version=4))

    # ------------------------------------------------------------------ Exchange attributes
    def _addresses(self, alias: str, first: str | None, last: str | None) -> tuple[str, ...]:
        spec, r = self.spec, self.r_attr
        mail = f"{alias}@{spec.domain}"
        out = [
            f"SMTP:{mail}",
            f"smtp:{alias}@{spec.routing_domain}",
            f"smtp:{alias}@{spec.onmicrosoft_domain}",
        ]
        extra = self.extra_counts[bisect(self.extra_cum, r.random() * self.extra_cum[-1])]
        if extra:
            out.extend(self._secondary(alias, first, last, extra))
        if r.random() < spec.x500_fraction:
            # Migrated from Exchange Server: Exchange Online keeps the mailbox's old
            # legacyExchangeDN as an X500 address, and its AD user still holds that DN
            # (AdUser.legacy_dn).
            out.append(f"X500:{self.onprem_legacy_dn}/cn={r.getrandbits(128):032x}-{alias[:20]}")
        return tuple(out)

    def _secondary(self, alias: str, first: str | None, last: str | None, n: int) -> list[str]:
        spec = self.spec
        found = [f"smtp:{alias}@{d}" for d in spec.extra_domains[:n]]
        # Further addresses need their own local part, reserved tenant-wide.
        candidates = []
        if first and last:
            f, l_ = alias_base(first), alias_base(last)
            candidates += [f"{f[0]}{l_}".replace(".", ""), f"{f}_{l_}", f"{l_}.{f}"]
        candidates += [f"{alias}.{k}" for k in range(2, 2 + n)]
        for local in candidates:
            if len(found) >= n:
                break
            if self._claim_local(local):
                found.append(f"smtp:{local}@{spec.domain}")
        return found

    def _custom(self, i: int, site: str) -> tuple[str | None, ...]:
        r = self.r_attr
        vals: list[str | None] = []
        for k, rate in enumerate(self.custom_rates, 1):
            if r.random() >= rate:
                vals.append(None)
            elif k == 1:
                vals.append(f"E{r.randrange(10**6):06d}")
            elif k == 2:
                vals.append(f"CC-{r.randrange(1000, 10000)}")
            elif k == 3:
                vals.append(site)
            elif k == 4:
                vals.append(r.choice(CONTRACTS))
            elif k == 5:
                vals.append(r.choice(LICENSES))
            else:
                vals.append(f"value{k}-{r.randrange(10**5):05d}")
        return tuple(vals) if any(v is not None for v in vals) else NO_CUSTOM

    def _extension(self) -> tuple[tuple[str, ...], ...]:
        r = self.r_attr
        vals = []
        for k, rate in enumerate(self.ext_rates):
            if r.random() < rate:
                tags = EXT_TAGS[k]
                vals.append(tuple(r.sample(tags, r.randint(1, min(3, len(tags))))))
            else:
                vals.append(())
        return tuple(vals) if any(vals) else NO_EXTENSION

    # ------------------------------------------------------------------ objects
    def synced_mailbox(self, i: int) -> tuple[AdUser, CloudMailbox]:
        spec = self.spec
        kind = self.kinds[bisect(self.kind_cum, self.r_kind.random() * self.kind_cum[-1])]
        first, last, display, stem, ou = self._identity(kind)
        alias = self._unique_alias(stem)
        sam_stem = to_ascii(first[0] + last).lower() if first and last else alias.replace(".", "")
        sam = self._unique_sam(sam_stem)
        cn = self._unique_cn(ou, display, sam)
        ou_dn = self.ous[ou].dn
        r = self.r_attr
        addresses = self._addresses(alias, first, last)
        mail = f"{alias}@{spec.domain}"
        site = self.ous[ou].name if kind == "user" else self.ous[self.site_ou_index[0]].name
        custom = self._custom(i, site)
        ext = self._extension()
        hidden = r.random() < spec.hidden_fraction
        cloud_managed = r.random() < spec.cloud_managed_fraction
        cloud_type = rt.CLOUD_MAILBOX_TYPES[MAILBOX_KINDS.index(kind)]
        ad_values = rt.REMOTE_AD_VALUES[cloud_type]
        if kind == "user":
            uac = rt.UAC_NORMAL_ACCOUNT | (rt.UAC_DONT_EXPIRE_PASSWORD if r.random() < 0.1 else 0)
        else:
            uac = rt.UAC_NORMAL_ACCOUNT | rt.UAC_ACCOUNTDISABLE
        guid = self._guid()
        upn = f"{alias}@{spec.domain}"
        user = AdUser(
            dn=f"{rdn('CN', cn)},{ou_dn}",
            cn=cn,
            object_guid=guid,
            consistency_guid=guid,
            sam_account_name=sam,
            user_principal_name=upn,
            given_name=first,
            sn=last,
            display_name=display,
            department=r.choice(DEPARTMENTS) if kind == "user" else None,
            user_account_control=uac,
            mail=mail,
            mail_nickname=alias,
            proxy_addresses=addresses,
            target_address=f"SMTP:{alias}@{spec.routing_domain}",
            recipient_type_details=ad_values.type_details,
            recipient_display_type=ad_values.display_type,
            remote_recipient_type=ad_values.remote_type,
            hide_from_address_lists=True if hidden else None,
            extension_attributes=custom,
            extension_custom_attributes=ext,
        )
        mbx = CloudMailbox(
            id=self._cloud_id(),
            user_principal_name=upn,
            display_name=display,
            alias=alias,
            immutable_id=anchor_of(guid),
            is_dir_synced=True,
            is_exchange_cloud_managed=cloud_managed,
            recipient_type_details=cloud_type,
            email_addresses=addresses,
            windows_email_address=mail,
            legacy_exchange_dn=f"{_EXO_LEGACY_DN}/cn={self.r_id.getrandbits(128):032x}-{alias[:20]}",
            hidden_from_address_lists=hidden,
            custom_attributes=custom,
            extension_custom_attributes=ext,
        )
        return user, mbx

    def onprem_mailbox(self) -> tuple[AdUser, CloudMailbox]:
        """A mailbox still on Exchange Server: EXO knows it as a MailUser."""
        spec = self.spec
        first, last = self._person()
        display = f"{first} {last}"
        alias = self._unique_alias(alias_base(first, last))
        sam = self._unique_sam(to_ascii(first[0] + last).lower())
        ou = self.site_ou_index[0]
        cn = self._unique_cn(ou, display, sam)
        mail = f"{alias}@{spec.domain}"
        addresses = (f"SMTP:{mail}", f"smtp:{alias}@{spec.routing_domain}")
        guid = self._guid()
        user = AdUser(
            dn=f"{rdn('CN', cn)},{self.ous[ou].dn}",
            cn=cn,
            object_guid=guid,
            consistency_guid=guid,
            sam_account_name=sam,
            user_principal_name=mail,
            given_name=first,
            sn=last,
            display_name=display,
            department="IT",
            user_account_control=rt.UAC_NORMAL_ACCOUNT,
            mail=mail,
            mail_nickname=alias,
            proxy_addresses=addresses,
            home_mdb=self.home_mdb,
            recipient_type_details=rt.ONPREM_USER_MAILBOX_TYPE_DETAILS,
            recipient_display_type=rt.ONPREM_ACLABLE_MAILBOX_USER_DISPLAY_TYPE,
        )
        mbx = CloudMailbox(
            id=self._cloud_id(),
            user_principal_name=mail,
            display_name=display,
            alias=alias,
            immutable_id=anchor_of(guid),
            is_dir_synced=True,
            is_exchange_cloud_managed=False,
            recipient_type_details=rt.MAIL_USER,
            email_addresses=addresses,
            windows_email_address=mail,
            legacy_exchange_dn=f"{self.onprem_legacy_dn}/cn={self.r_id.getrandbits(128):032x}-{alias[:20]}",
        )
        user.legacy_exchange_dn = mbx.legacy_exchange_dn  # a mailbox on Exchange Server has one
        return user, mbx

    def cloud_only_mailbox(self) -> CloudMailbox:
        spec = self.spec
        first, last = self._person()
        alias = self._unique_alias(alias_base(first, last))
        mail = f"{alias}@{spec.domain}"
        return CloudMailbox(
            id=self._cloud_id(),
            user_principal_name=mail,
            display_name=f"{first} {last}",
            alias=alias,
            immutable_id=None,
            is_dir_synced=False,
            is_exchange_cloud_managed=False,
            recipient_type_details=rt.USER_MAILBOX,
            email_addresses=(f"SMTP:{mail}", f"smtp:{alias}@{spec.onmicrosoft_domain}"),
            windows_email_address=mail,
            legacy_exchange_dn=f"{_EXO_LEGACY_DN}/cn={self.r_id.getrandbits(128):032x}-{alias[:20]}",
        )

    def ad_only_user(self, n: int) -> AdUser:
        """A service account outside the sync scope: no mailbox, no cloud object."""
        name = f"svc-app{n:03d}"
        sam = self._unique_sam(name)
        ou = self.service_ou_index
        cn = self._unique_cn(ou, name, sam)
        return AdUser(
            dn=f"{rdn('CN', cn)},{self.ous[ou].dn}",
            cn=cn,
            object_guid=self._guid(),
            consistency_guid=None,
            sam_account_name=sam,
            user_principal_name=f"{sam}@{self.spec.domain}",
            given_name=None,
            sn=None,
            display_name=name,
            department=None,
            user_account_control=rt.UAC_NORMAL_ACCOUNT | rt.UAC_DONT_EXPIRE_PASSWORD,
        )

    def stamp_history(self, users: list[AdUser]) -> int:
        """Give every user whenCreated/whenChanged and USNs consistent with one history, then
        its logon and password times (`stamp_logons`)."""
        r, m = self.r_time, len(users)
        created = sorted(r.random() for _ in range(m))
        changed = sorted(r.random() for _ in range(m))
        order = list(range(m))
        r.shuffle(order)  # the order in which objects were last changed
        created_s = [int(c * _CREATED_SPAN) for c in created]
        for i, u in enumerate(users):
            u.when_created = generalized_time(_EPOCH + timedelta(seconds=created_s[i]))
            u.usn_created = _FIRST_USN + i
        for rank, i in enumerate(order):
            u = users[i]
            u.when_changed = generalized_time(
                _SOA_SWITCH + timedelta(seconds=int(changed[rank] * _CHANGED_SPAN))
            )
            u.usn_changed = _FIRST_USN + m + rank
        epoch = _EPOCH.timestamp()
        self.stamp_logons(users, [epoch + c for c in created_s])
        return _FIRST_USN + 2 * m - 1 if m else _FIRST_USN

    def stamp_logons(self, users: list[AdUser], created: list[float]) -> None:
        """pwdLastSet, accountExpires and lastLogonTimestamp, each after the account's
        creation (`created`, Unix seconds) and not after the tenant's present. The disabled
        accounts of shared and resource mailboxes never sign in: their password is the one set
        at creation. Of the others a few never signed in, some are stale (more than 90 days),
        most signed in within the last 14 days; passwords follow a 90-day policy, some
        overdue, except where they never expire."""
        r, now = self.r_logon, _NOW.timestamp()
        for u, c in zip(users, created, strict=True):
            uac = u.user_account_control
            if uac & rt.UAC_ACCOUNTDISABLE:
                u.pwd_last_set = filetime(c + r.random() * 600)
                continue
            x = r.random()
            if x < 0.03:  # never signed in: no lastLogonTimestamp; half must change it first
                u.pwd_last_set = 0 if r.random() < 0.5 else filetime(c + r.random() * 600)
            else:
                if x < 0.13:  # stale: 90 days to several years ago
                    at = c + r.random() * max(0.0, now - 90 * _DAY - c)
                else:
                    at = max(c, now - r.random() * _LOGON_SYNC_DAYS * _DAY)
                u.last_logon_timestamp = filetime(at)
                if uac & rt.UAC_DONT_EXPIRE_PASSWORD:
                    pwd = c + r.random() * (now - c)
                else:
                    pwd = max(c, now - r.random() * (_MAX_PASSWORD_AGE_DAYS + 30) * _DAY)
                u.pwd_last_set = filetime(pwd)
            y = r.random()
            if y >= 0.9:
                # Set once and cleared (0), or an end date: contractors, some already past.
                u.account_expires = (
                    ACCOUNT_EXPIRY_CLEARED
                    if y < 0.97
                    else filetime(now + (r.random() - 0.4) * 365 * _DAY)
                )

    # ------------------------------------------------------------------ groups
    def groups(self, users: list[AdUser], first_usn: int) -> tuple[list[AdGroup], int]:
        """The tenant's groups, members before the groups they are in, and the highest USN.

        Security groups follow AGDLP: accounts in global groups (their department's, their
        teams', which are nested in the department's, and All Staff), the department groups
        in a universal group, and global or universal groups in the domain local groups that
        are granted access. The distribution groups are Exchange Online's (ExchangeOrg),
        mail-enabled as Exchange Setup leaves them.
        """
        spec, r = self.spec, self.r_group
        base = spec.base_dn
        groups_ou = OrganizationalUnit(f"OU=Groups,OU=Corp,{base}", "Groups", True)
        dl_ou = OrganizationalUnit(
            f"OU=Distribution Groups,{groups_ou.dn}", "Distribution Groups", True
        )
        self.ous += [groups_ou, dl_ou]
        people = [u for u in users if u.department is not None]
        out: list[AdGroup] = []
        global_security = group_type(GROUP_TYPE_GLOBAL, True)

        def make(name: str, ou: str, kind: int, description: str, members: list[str]) -> AdGroup:
            g = AdGroup(
                dn=f"{rdn('CN', name)},{ou}",
                cn=name,
                object_guid=r.getrandbits(128).to_bytes(16, "little"),
                sam_account_name=self._unique_group_sam(name),
                description=description,
                group_type=kind,
                members=tuple(members),
            )
            out.append(g)
            return g

        # Teams: each account in 0 to 10 of its department's teams (`team_memberships`).
        weights = sorted(spec.team_memberships.items())
        counts = [k for k, _ in weights]
        cum = list(accumulate(w for _, w in weights))
        mean = sum(k * w for k, w in weights) / cum[-1]
        by_department: dict[str, list[AdUser]] = {d: [] for d in DEPARTMENTS}
        for u in people:
            by_department.setdefault(u.department or "", []).append(u)
        departments: list[AdGroup] = []
        for department, token in DEPARTMENT_TOKENS.items():
            staff = by_department[department]
            n_teams = round(len(staff) * mean / spec.team_group_size) if staff else 0
            n_teams = max(n_teams, 1) if staff and mean > 0 else n_teams
            teams: list[list[str]] = [[] for _ in range(n_teams)]
            for u in staff:
                k = min(counts[bisect(cum, r.random() * cum[-1])], n_teams)
                for t in r.sample(range(n_teams), k) if k else ():
                    teams[t].append(u.dn)
            team_groups = [
                make(
                    f"GG-{token}-T{t + 1:02d}",
                    groups_ou.dn,
                    global_security,
                    f"{department} team {t + 1}",
                    members,
                )
                for t, members in enumerate(teams)
            ]
            departments.append(
                make(
                    f"GG-{token}",
                    groups_ou.dn,
                    global_security,
                    f"Everyone in {department}",
                    [u.dn for u in staff] + [g.dn for g in team_groups],
                )
            )
        if spec.all_staff_group:
            make(
                "GG-All-Staff", groups_ou.dn, global_security, "Every member of staff",
                [u.dn for u in people],
            )  # fmt: skip
        every_department = make(
            "USG-Departments",
            groups_ou.dn,
            group_type(GROUP_TYPE_UNIVERSAL, True),
            "Every department's group",
            [g.dn for g in departments],
        )
        domain_local = group_type(GROUP_TYPE_DOMAIN_LOCAL, True)
        for (department, token), g in zip(DEPARTMENT_TOKENS.items(), departments, strict=True):
            make(
                f"DLG-{token}-RW",
                groups_ou.dn,
                domain_local,
                f"Modify rights on the {department} file share",
                [g.dn],
            )
        make(
            "DLG-Intranet-Read", groups_ou.dn, domain_local, "Read rights on the intranet",
            [every_department.dn],
        )  # fmt: skip

        # Distribution groups: members drawn from the staff; every tenth also holds the one
        # before it (distribution groups nest too).
        size = spec.distribution_group_size
        previous: AdGroup | None = None
        for i, dl in enumerate(self.distribution_lists, 1):
            n = min(r.randint(1, 2 * size - 1), len(people))
            members = [people[j].dn for j in sorted(r.sample(range(len(people)), n))]
            if previous is not None and i % 10 == 0:
                members.append(previous.dn)
            alias = dl.address.partition("@")[0]
            g = make(
                dl.name, dl_ou.dn, GROUP_TYPE_UNIVERSAL, f"Distribution list {dl.name}", members
            )
            g.display_name = dl.name
            g.mail = dl.address
            g.mail_nickname = alias
            g.proxy_addresses = (f"SMTP:{dl.address}",)
            g.legacy_exchange_dn = (
                f"{self.onprem_legacy_dn}/cn={r.getrandbits(128):032x}-{alias[:20]}"
            )
            g.recipient_type_details = _DL_TYPE_DETAILS
            g.recipient_display_type = _DL_DISPLAY_TYPE
            previous = g
        return out, self._stamp_groups(out, first_usn)

    def _unique_group_sam(self, name: str) -> str:
        # sAMAccountName is unique among users and groups alike, case-insensitively.
        sam, n = name, 1
        while sam.casefold() in self.claimed_sam_folded:
            n += 1
            sam = f"{name[: 20 - len(str(n))]}{n}"
        self.claimed_sam_folded.add(sam.casefold())
        return sam

    def _stamp_groups(self, groups: list[AdGroup], first_usn: int) -> int:
        """whenCreated/whenChanged and USNs after the users' history; the highest USN."""
        r, m = self.r_group, len(groups)
        order = list(range(m))
        r.shuffle(order)
        for i, g in enumerate(groups):
            g.when_created = generalized_time(
                _EPOCH + timedelta(seconds=int(r.random() * _CREATED_SPAN))
            )
            g.usn_created = first_usn + i
        for rank, i in enumerate(order):
            g = groups[i]
            g.when_changed = generalized_time(
                _SOA_SWITCH + timedelta(seconds=int(r.random() * _CHANGED_SPAN))
            )
            g.usn_changed = first_usn + m + rank
        return first_usn + 2 * m - 1 if m else first_usn - 1


def generate(spec: TenantSpec, progress: Progress | None = None) -> Tenant:
    """Build the tenant `spec` describes. `progress(done, total)` is called as objects are made."""
    # The model is hundreds of thousands of acyclic objects: cyclic GC passes over them cost
    # more than the generation itself at 200k and find nothing to free.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _generate(spec, progress)
    finally:
        if gc_was_enabled:
            gc.enable()


def _generate(spec: TenantSpec, progress: Progress | None) -> Tenant:
    g = _Generator(spec)
    total = spec.mailboxes + spec.onprem_mailboxes + spec.cloud_only_users + spec.ad_only_users
    ad_users: list[AdUser] = []
    mailboxes: list[CloudMailbox] = []
    step = 4096
    for i in range(spec.mailboxes):
        user, mbx = g.synced_mailbox(i)
        ad_users.append(user)
        mailboxes.append(mbx)
        if progress and (i + 1) % step == 0:
            progress(i + 1, total)
    for _ in range(spec.onprem_mailboxes):
        user, mbx = g.onprem_mailbox()
        ad_users.append(user)
        mailboxes.append(mbx)
    mailboxes.extend(g.cloud_only_mailbox() for _ in range(spec.cloud_only_users))
    ad_users.extend(g.ad_only_user(n) for n in range(1, spec.ad_only_users + 1))
    highest = g.stamp_history(ad_users)
    groups: list[AdGroup] = []
    if spec.groups:
        g.claimed_sam_folded = {s.casefold() for s in g.claimed_sam}
        groups, highest = g.groups(ad_users, highest + 1)
    if progress:
        progress(total, total)
    return Tenant(
        spec=spec,
        ous=g.ous,
        ad_users=ad_users,
        mailboxes=mailboxes,
        groups=groups,
        highest_usn=highest,
    )
