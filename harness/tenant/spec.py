"""The knobs of a generated tenant, with defaults, types and validation.

One `TenantSpec` describes a tenant completely: the same spec gives the same tenant. CLI flags
(`exwb generate --knob name=value`) and scenario files set knobs through `TenantSpec.from_mapping`,
which names the offending knob in every error.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import MISSING, asdict, dataclass, field, fields, replace
from typing import Any, Final

MAX_MAILBOXES: Final = 1_000_000
"""Largest tenant the generator accepts: above the 600,000 GA limit, to test beyond it."""

MAILBOX_KINDS: Final = ("user", "shared", "room", "equipment")

_DOMAIN_RE = re.compile(r"^(?=.{4,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")

# Fill rates of extensionAttribute1..15 in a typical estate: the first few carry HR data
# (employee id, cost centre, site), the rest are sparse.
_DEFAULT_CUSTOM_FILL: Final = (0.9, 0.6, 0.35, 0.2, 0.12, 0.08, 0.05, 0.05, 0.04, 0.04) + (
    0.03,
) * 5


class SpecError(ValueError):
    """A knob has a bad value; `knob` names it."""

    def __init__(self, knob: str, message: str) -> None:
        super().__init__(f"{knob}: {message}")
        self.knob = knob
        self.message = message


def _help(text: str, **kw: Any) -> Any:
    return field(metadata={"help": text}, **kw)


@dataclass(frozen=True, slots=True)
class TenantSpec:
    """Every knob of a generated tenant. Defaults give a realistic estate."""

    mailboxes: int = _help("synced Exchange Online mailboxes (1 to 1,000,000)", default=1000)
    seed: int = _help("random seed: the same spec and seed give the same tenant", default=1)
    domain: str = _help(
        "primary SMTP and UPN domain; the AD domain is named after it", default="contoso.com"
    )
    tenant_name: str = _help(
        "the <name>.onmicrosoft.com tenant name (default: the domain's first label)", default=""
    )
    secondary_domains: tuple[str, ...] = _help(
        "accepted domains for secondary addresses (default: <label>.co.uk, <label>.de)",
        default=(),
    )
    cloud_managed_fraction: float = _help(
        "share of synced mailboxes with IsExchangeCloudManaged = True", default=0.95
    )
    mailbox_mix: Mapping[str, float] = _help(
        "relative weights of user, shared, room and equipment mailboxes",
        default_factory=lambda: {"user": 0.85, "shared": 0.09, "room": 0.04, "equipment": 0.02},
    )
    hidden_fraction: float = _help("share of mailboxes hidden from address lists", default=0.02)
    custom_attribute_fill: tuple[float, ...] = _help(
        "fill rate of CustomAttribute1..15: one number for all, or a list of 15",
        default=_DEFAULT_CUSTOM_FILL,
    )
    extension_custom_attribute_fill: tuple[float, ...] = _help(
        "fill rate of ExtensionCustomAttribute1..5 (multi-valued): one number or a list of 5",
        default=(0.15, 0.08, 0.05, 0.03, 0.02),
    )
    proxy_address_extra: Mapping[int, float] = _help(
        "weights of the number of extra secondary SMTP addresses per mailbox",
        default_factory=lambda: {0: 0.35, 1: 0.4, 2: 0.17, 3: 0.06, 5: 0.02},
    )
    x500_fraction: float = _help(
        "share of mailboxes carrying an X500 address (migrated from on-premises)", default=0.4
    )
    non_ascii_fraction: float = _help("share of people with non-ASCII names", default=0.05)
    special_cn_fraction: float = _help(
        "share of objects whose CN needs DN escaping (comma, +, #, leading space, ...)",
        default=0.01,
    )
    site_ous: int = _help("number of site OUs that users are spread over (1 to 50)", default=6)
    ad_only_users: int = _help("AD users with no mailbox and no cloud object", default=5)
    cloud_only_users: int = _help("cloud-only mailboxes with no AD user", default=5)
    onprem_mailboxes: int = _help("mailboxes still on-premises (decommission blockers)", default=3)

    # AD groups (issue 16): security groups nested as AGDLP has it (accounts in global groups,
    # those in universal and domain local ones) and Exchange's mail-enabled distribution groups,
    # the ones Exchange Online lists (`groups_without_soa` and `distribution_groups_per_1000`).
    groups: bool = _help(
        "AD security and distribution groups with their memberships (false: users and OUs only)",
        default=True,
    )
    team_group_size: int = _help(
        "mean members of a team group, a global security group nested in its department's "
        "group (5 to 5,000)",
        default=30,
    )
    team_memberships: Mapping[int, float] = _help(
        "weights of the number of team groups a user account is in besides its department's "
        "group (0 to 10 groups)",
        default_factory=lambda: {0: 0.55, 1: 0.35, 2: 0.1},
    )
    all_staff_group: bool = _help(
        "a global security group GG-All-Staff holding every user account directly (past 1,500 "
        "members, so read in ranges, from about 1,800 mailboxes; off by default: a "
        "membership more per user)",
        default=False,
    )
    distribution_groups_per_1000: float = _help(
        "mail-enabled distribution groups whose SOA is already in Exchange Online, per 1,000 "
        "mailboxes (0 to 100; at least 2 when above 0); the groups_without_soa ones come on "
        "top",
        default=5.0,
    )
    distribution_group_size: int = _help(
        "mean members of a distribution group (1 to 5,000)", default=20
    )

    # The Exchange organisation around the last server (issue 7). Defaults are a messy estate
    # mid-migration; `org_preset: clean` sets every knob below (and the two above that block a
    # decommission) to a ready-to-retire organisation, and knobs given beside it still win.
    org_preset: str = _help(
        "preset for the decommission knobs: messy (the defaults) or clean (ready to retire)",
        default="messy",
    )
    exchange_servers: int = _help("Exchange servers still in the organisation (1 to 4)", default=1)
    arbitration_mailboxes: int = _help(
        "arbitration and system mailboxes still on the last server (0 to 8)", default=3
    )
    public_folders: str = _help(
        "public folders: remote (still on-premises, EXO PublicFoldersEnabled Remote), migrated "
        "or none",
        default="remote",
    )
    dns_mx: str = _help("where the MX records point: onprem or cloud", default="onprem")
    dns_autodiscover: str = _help(
        "where the Autodiscover record points: onprem or cloud", default="onprem"
    )
    smtp_relay_clients: int = _help(
        "devices and applications still relaying mail through the server (0 to 50)", default=2
    )
    groups_without_soa: int = _help(
        "dir-synced distribution groups without their own SOA transfer (0 to 1,000)", default=2
    )
    contacts_without_soa: int = _help(
        "dir-synced mail contacts without their own SOA transfer (0 to 1,000)", default=1
    )
    stale_cloud_objects: int = _help(
        "extra EXO connectors and transport rules that reference the on-premises organisation "
        "(0 to 20)",
        default=2,
    )
    connect_build: str = _help(
        "the installed Entra Connect Sync build (below 2.5.190.0 blocks a decommission)",
        default="2.4.131.0",
    )
    uninstall_leftovers: bool = _help(
        "whether uninstalling leaves an Exchange service registered on the host", default=True
    )

    # ----------------------------------------------------------------- derived names
    @property
    def domain_label(self) -> str:
        return self.domain.split(".", 1)[0]

    @property
    def onmicrosoft_name(self) -> str:
        return self.tenant_name or self.domain_label

    @property
    def onmicrosoft_domain(self) -> str:
        return f"{self.onmicrosoft_name}.onmicrosoft.com"

    @property
    def routing_domain(self) -> str:
        """The coexistence domain that targetAddress points to."""
        return f"{self.onmicrosoft_name}.mail.onmicrosoft.com"

    @property
    def extra_domains(self) -> tuple[str, ...]:
        label = self.domain_label
        return self.secondary_domains or (f"{label}.co.uk", f"{label}.de")

    @property
    def base_dn(self) -> str:
        return ",".join(f"DC={part}" for part in self.domain.split("."))

    @property
    def exchange_org(self) -> str:
        """The Exchange organisation's name (CN under CN=Microsoft Exchange)."""
        return self.domain_label.capitalize()

    @property
    def exchange_org_dn(self) -> str:
        services = f"CN=Services,CN=Configuration,{self.base_dn}"
        return f"CN={self.exchange_org},CN=Microsoft Exchange,{services}"

    @property
    def admin_group_dn(self) -> str:
        group = "CN=Exchange Administrative Group (FYDIBOHF23SPDLT)"
        return f"{group},CN=Administrative Groups,{self.exchange_org_dn}"

    @property
    def mailbox_database_dn(self) -> str:
        """homeMDB of the mailboxes still on-premises."""
        return f"CN=Mailbox Database 01,CN=Databases,{self.admin_group_dn}"

    @property
    def netbios_name(self) -> str:
        return self.domain_label.upper()[:15]

    @property
    def custom_fill_rates(self) -> tuple[float, ...]:
        return _expand(self.custom_attribute_fill, 15)

    @property
    def extension_fill_rates(self) -> tuple[float, ...]:
        return _expand(self.extension_custom_attribute_fill, 5)

    # ----------------------------------------------------------------- construction
    @classmethod
    def knob_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))

    @classmethod
    def knob_help(cls) -> dict[str, tuple[str, Any]]:
        """Knob name -> (help text, default)."""
        out: dict[str, tuple[str, Any]] = {}
        for f in fields(cls):
            if f.default is not MISSING:
                default = f.default
            elif f.default_factory is not MISSING:
                default = f.default_factory()
            else:  # every knob has a default: `TenantSpec()` is the default tenant
                raise TypeError(f"knob {f.name} has no default")
            out[f.name] = (f.metadata["help"], default)
        return out

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], base: TenantSpec | None = None) -> TenantSpec:
        """Build a validated spec from plain data (YAML, CLI), on top of `base` or the defaults.

        Raises `SpecError` naming the first bad knob.
        """
        known = set(cls.knob_names())
        values: dict[str, Any] = {}
        for key, raw in data.items():
            if key not in known:
                hint = _closest(str(key), known)
                raise SpecError(
                    str(key), "unknown knob" + (f"; did you mean {hint!r}?" if hint else "")
                )
            values[key] = _coerce(key, raw)
        start = base or cls()
        if "org_preset" in values:
            preset = ORG_PRESETS.get(values["org_preset"])
            if preset is None:
                raise SpecError(
                    "org_preset",
                    f"{values['org_preset']!r} is not a preset; expected one of "
                    + ", ".join(ORG_PRESETS),
                )
            start = replace(start, **preset)
        spec = replace(start, **values)
        spec.validate()
        return spec

    def validate(self) -> None:
        """Raise `SpecError` on the first knob whose value is out of range."""
        _int_range("mailboxes", self.mailboxes, 1, MAX_MAILBOXES)
        _int_range("seed", self.seed, 0, 2**63 - 1)
        if not _DOMAIN_RE.match(self.domain):
            raise SpecError("domain", f"{self.domain!r} is not a lower-case DNS domain name")
        if self.tenant_name and not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,62}", self.tenant_name):
            raise SpecError("tenant_name", f"{self.tenant_name!r} is not a valid tenant name")
        for d in self.secondary_domains:
            if not _DOMAIN_RE.match(d) or d == self.domain:
                raise SpecError("secondary_domains", f"{d!r} is not a distinct DNS domain name")
        for name in (
            "cloud_managed_fraction",
            "hidden_fraction",
            "x500_fraction",
            "non_ascii_fraction",
            "special_cn_fraction",
        ):
            _fraction(name, getattr(self, name))
        _weights("mailbox_mix", self.mailbox_mix, MAILBOX_KINDS)
        _weights("proxy_address_extra", self.proxy_address_extra, None)
        for k in self.proxy_address_extra:
            _int_range("proxy_address_extra", k, 0, 20)
        _rates("custom_attribute_fill", self.custom_attribute_fill, 15)
        _rates("extension_custom_attribute_fill", self.extension_custom_attribute_fill, 5)
        _int_range("site_ous", self.site_ous, 1, 50)
        for name in ("ad_only_users", "cloud_only_users", "onprem_mailboxes"):
            _int_range(name, getattr(self, name), 0, 100_000)
        _int_range("team_group_size", self.team_group_size, 5, 5000)
        _weights("team_memberships", self.team_memberships, None)
        for k in self.team_memberships:
            _int_range("team_memberships", k, 0, 10)
        if not 0.0 <= self.distribution_groups_per_1000 <= 100.0:
            raise SpecError(
                "distribution_groups_per_1000",
                f"must be between 0 and 100 (got {self.distribution_groups_per_1000})",
            )
        _int_range("distribution_group_size", self.distribution_group_size, 1, 5000)
        _choice("org_preset", self.org_preset, tuple(ORG_PRESETS))
        _int_range("exchange_servers", self.exchange_servers, 1, 4)
        _int_range("arbitration_mailboxes", self.arbitration_mailboxes, 0, 8)
        _choice("public_folders", self.public_folders, ("remote", "migrated", "none"))
        _choice("dns_mx", self.dns_mx, ("onprem", "cloud"))
        _choice("dns_autodiscover", self.dns_autodiscover, ("onprem", "cloud"))
        _int_range("smtp_relay_clients", self.smtp_relay_clients, 0, 50)
        _int_range("groups_without_soa", self.groups_without_soa, 0, 1000)
        _int_range("contacts_without_soa", self.contacts_without_soa, 0, 1000)
        _int_range("stale_cloud_objects", self.stale_cloud_objects, 0, 20)
        if not re.fullmatch(r"\d{1,5}(\.\d{1,5}){1,3}", self.connect_build):
            raise SpecError(
                "connect_build",
                f"{self.connect_build!r} is not a build number such as 2.5.190.0",
            )

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-able form (for manifests and reports)."""
        d = asdict(self)
        d["mailbox_mix"] = dict(self.mailbox_mix)
        d["proxy_address_extra"] = {str(k): v for k, v in self.proxy_address_extra.items()}
        d["team_memberships"] = {str(k): v for k, v in self.team_memberships.items()}
        for k in ("secondary_domains", "custom_attribute_fill", "extension_custom_attribute_fill"):
            d[k] = list(d[k])
        return d


# The `org_preset` presets: messy is the field defaults; clean is an organisation whose last
# Exchange Server can be retired (every mailbox in EXO and cloud-managed, public folders migrated,
# DNS on EXO, no relay, every group and contact with its own SOA, a current Connect build).
_ORG_KNOBS: Final = (
    "exchange_servers", "arbitration_mailboxes", "public_folders", "dns_mx", "dns_autodiscover",
    "smtp_relay_clients", "groups_without_soa", "contacts_without_soa", "stale_cloud_objects",
    "connect_build", "uninstall_leftovers", "onprem_mailboxes", "cloud_managed_fraction",
)  # fmt: skip
ORG_PRESETS: Final[dict[str, dict[str, Any]]] = {
    "messy": {f.name: f.default for f in fields(TenantSpec) if f.name in _ORG_KNOBS},
    "clean": {
        "exchange_servers": 1,
        "arbitration_mailboxes": 0,
        "public_folders": "migrated",
        "dns_mx": "cloud",
        "dns_autodiscover": "cloud",
        "smtp_relay_clients": 0,
        "groups_without_soa": 0,
        "contacts_without_soa": 0,
        "stale_cloud_objects": 0,
        "connect_build": "2.5.190.0",
        "uninstall_leftovers": False,
        "onprem_mailboxes": 0,
        "cloud_managed_fraction": 1.0,
    },
}


# --------------------------------------------------------------------- validation helpers
def _expand(rates: Sequence[float], n: int) -> tuple[float, ...]:
    return tuple(rates) * n if len(rates) == 1 else tuple(rates)


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _coerce(key: str, raw: Any) -> Any:
    """Turn YAML/CLI data into the knob's Python type; shape errors name the knob."""
    if key in ("custom_attribute_fill", "extension_custom_attribute_fill"):
        if _is_number(raw):
            return (float(raw),)
        if isinstance(raw, list | tuple) and all(_is_number(x) for x in raw):
            return tuple(float(x) for x in raw)
        raise SpecError(key, "expected a number or a list of numbers")
    if key == "secondary_domains":
        if isinstance(raw, str):
            raw = [raw]
        if isinstance(raw, list | tuple) and all(isinstance(x, str) for x in raw):
            return tuple(x.lower() for x in raw)
        raise SpecError(key, "expected a list of domain names")
    if key in ("mailbox_mix", "proxy_address_extra", "team_memberships"):
        if not isinstance(raw, Mapping):
            raise SpecError(key, "expected a mapping of weights")
        if key != "mailbox_mix":
            what = "extra addresses" if key == "proxy_address_extra" else "groups"
            try:
                return {int(k): v for k, v in raw.items()}
            except (TypeError, ValueError):
                raise SpecError(key, f"keys must be whole numbers of {what}") from None
        return dict(raw)
    default = TenantSpec.knob_help()[key][1]
    if isinstance(default, bool):
        if not isinstance(raw, bool):
            raise SpecError(key, f"expected true or false, got {raw!r}")
        return raw
    if not isinstance(default, int | float | str):
        return raw
    if isinstance(default, str):
        if not isinstance(raw, str):
            raise SpecError(key, f"expected text, got {raw!r}")
        return raw.lower() if key in ("domain", "tenant_name") else raw.strip()
    if isinstance(default, int) and not isinstance(default, bool):
        if isinstance(raw, bool) or not isinstance(raw, int):
            raise SpecError(key, f"expected a whole number, got {raw!r}")
        return raw
    if not _is_number(raw):
        raise SpecError(key, f"expected a number, got {raw!r}")
    return float(raw)


def _choice(name: str, v: str, allowed: Sequence[str]) -> None:
    if v not in allowed:
        raise SpecError(name, f"{v!r} is not one of {', '.join(allowed)}")


def _int_range(name: str, v: int, lo: int, hi: int) -> None:
    if not lo <= v <= hi:
        raise SpecError(name, f"must be between {lo:,} and {hi:,} (got {v:,})")


def _fraction(name: str, v: float) -> None:
    if not 0.0 <= v <= 1.0:
        raise SpecError(name, f"must be a fraction between 0 and 1 (got {v})")


def _rates(name: str, rates: Sequence[float], n: int) -> None:
    if len(rates) not in (1, n):
        raise SpecError(name, f"expected one number or a list of {n} (got {len(rates)})")
    for r in rates:
        _fraction(name, r)


def _weights(name: str, weights: Mapping[Any, float], allowed: Sequence[str] | None) -> None:
    for k, w in weights.items():
        if allowed is not None and k not in allowed:
            raise SpecError(name, f"unknown key {k!r}; expected some of {', '.join(allowed)}")
        if not _is_number(w) or w < 0:
            raise SpecError(name, f"weight of {k!r} must be a number >= 0 (got {w!r})")
    if not weights or sum(weights.values()) <= 0:
        raise SpecError(name, "at least one weight must be above 0")


def _closest(word: str, choices: set[str]) -> str | None:
    import difflib

    match = difflib.get_close_matches(word, sorted(choices), n=1)
    return match[0] if match else None
