"""Deterministic tenant generator: the same `TenantSpec` gives the same tenant on any machine.

Each aspect (kinds, names, attribute values, identifiers, times) draws from its own seeded
stream, so changing one knob does not reshuffle unrelated data. Uniqueness (sAMAccountName,
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
from harness.tenant.model import (
    NO_CUSTOM,
    NO_EXTENSION,
    AdUser,
    CloudMailbox,
    OrganizationalUnit,
    Tenant,
    anchor_of,
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
_EXO_LEGACY_DN = "/o=ExchangeLabs/ou=Exchange Administrative Group (FYDIBOHF23SPDLT)/cn=Recipients"


def generalized_time(dt: datetime) -> str:
    """AD's GeneralizedTime form, as whenCreated shows it: ``20240115093012.0Z``."""
    return dt.strftime("%Y%m%d%H%M%S.0Z")


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
        self.pools = name_pools()
        self.claimed_local: set[str] = set()  # mailbox local parts, reserved in every domain
        self.claimed_sam: set[str] = set()
        self.claimed_cn: set[tuple[int, str]] = set()
        self.alias_counter: dict[str, int] = {}
        self.display_counter: dict[str, int] = {}
        self.onprem_legacy_dn = (
            f"/o={spec.exchange_org}/ou=Exchange Administrative Group (FYDIBOHF23SPDLT)"
            "/cn=Recipients"
        )
        self.home_mdb = spec.mailbox_database_dn
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
        """Give every user whenCreated/whenChanged and USNs consistent with one history."""
        r, m = self.r_time, len(users)
        created = sorted(r.random() for _ in range(m))
        changed = sorted(r.random() for _ in range(m))
        order = list(range(m))
        r.shuffle(order)  # the order in which objects were last changed
        for i, u in enumerate(users):
            u.when_created = generalized_time(
                _EPOCH + timedelta(seconds=int(created[i] * _CREATED_SPAN))
            )
            u.usn_created = _FIRST_USN + i
        for rank, i in enumerate(order):
            u = users[i]
            u.when_changed = generalized_time(
                _SOA_SWITCH + timedelta(seconds=int(changed[rank] * _CHANGED_SPAN))
            )
            u.usn_changed = _FIRST_USN + m + rank
        return _FIRST_USN + 2 * m - 1 if m else _FIRST_USN


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
    if progress:
        progress(total, total)
    return Tenant(spec=spec, ous=g.ous, ad_users=ad_users, mailboxes=mailboxes, highest_usn=highest)
