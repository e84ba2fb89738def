"""Keyed, deterministic, shape-preserving pseudonymisation of imported records.

Every identifying value is mapped by a function of (key, kind of value, value): never of the
file or the attribute it came from, so the same address in AD and in Exchange Online, or the
same GUID as AD bytes and as Graph text, maps to the same pseudonym and joins, uniqueness and
duplicates survive. Each kind keeps a one-to-one table (`pseudo_maps.InjectiveMap`; GUIDs a
keyed permutation), so two different values never share a pseudonym.

Shape is kept: text is mapped one token at a time (words, digit runs and embedded GUIDs; `.`,
`_`, `-`, spaces and other separators kept), so `john.smith@`, `John Smith` and `Smith, John`
use the same token map and an address's local part follows the pseudonymised name. A
person's name becomes another plausible name of the same length (`pseudo_names`; counted
after transliteration, Kjær as kjaer, the form its alias has), any other word a pronounceable
word of the same length, so a 1,024-character value stays 1,024 characters and every length
limit holds or fails as before.
`SMTP:`/`smtp:`/`X500:` prefixes and the case of each word are kept; domains map one-to-one to
`*.example` names (`<tenant>.onmicrosoft.com` and `<tenant>.mail.onmicrosoft.com` keep their
pattern, subdomains their depth); DNs keep their tree (well-known containers kept, `DC=`
labels following the domain map); SIDs keep their RID with the domain part remapped.

Free-text attributes follow a per-attribute policy (`keep`, `pseudonymise`, `drop`); numeric
attributes, Booleans, times and enumerations (`UserMailbox`) are not identifying and stay.

Limits: a pseudonym is never a recognised name nor a value seen earlier in the import, but a
pseudo-word can coincide with a word that appears only later (streaming cannot know it yet);
it then belongs to another value. Pseudonymised domains end in `.example` (RFC 2606), so a
top-level-domain check must accept it.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Final

import yaml

from harness.core.adschema import DEFAULT_SCHEMA, Syntax
from harness.core.dn import InvalidDN, parse_dn, rdn, split_rdn
from harness.tenant.imports.pseudo_maps import (
    GuidPermutation,
    InjectiveMap,
    mac,
    memo,
    stream,
    subkey,
)
from harness.tenant.imports.pseudo_names import fold, name_data, pseudo_word, recase, with_mark
from harness.tenant.imports.records import (
    AdRecord,
    ExportError,
    GraphUserRecord,
    MailboxRecord,
    Origin,
)

POLICIES: Final = ("keep", "pseudonymise", "drop")
KEY_HINT: Final = 'make one with: python -c "import secrets; print(secrets.token_hex(32))" > key'
MIN_KEY_BYTES: Final = 32

# Free-text attributes (AD lDAPDisplayName) and their default policy. Exchange Online's and
# Graph's spellings of the same data (CustomAttribute3, officeLocation, ...) share the entry,
# so a value compared across the three sides is treated alike.
FREE_TEXT_POLICIES: dict[str, str] = {
    name: "pseudonymise"
    for name in (
        "description", "info", "comment", "adminDescription", "physicalDeliveryOfficeName",
        "department", "division", "title", "company", "streetAddress", "postOfficeBox", "l",
        "st", "postalCode", "co", "c", "telephoneNumber", "otherTelephone", "mobile",
        "otherMobile", "homePhone", "facsimileTelephoneNumber", "ipPhone", "pager",
        "employeeID", "employeeNumber", "employeeType", "wWWHomePage",
        *(f"extensionAttribute{i}" for i in range(1, 16)),
        *(f"msExchExtensionCustomAttribute{i}" for i in range(1, 6)),
    )
}  # fmt: skip

_FREE_TEXT_ALIASES: Final = {
    **{f"customattribute{i}": f"extensionAttribute{i}" for i in range(1, 16)},
    **{f"extensioncustomattribute{i}": f"msExchExtensionCustomAttribute{i}" for i in range(1, 6)},
    "office": "physicalDeliveryOfficeName",
    "officelocation": "physicalDeliveryOfficeName",
    "jobtitle": "title",
    "companyname": "company",
    "phone": "telephoneNumber",
    "businessphones": "telephoneNumber",
    "mobilephone": "mobile",
    "fax": "facsimileTelephoneNumber",
    "faxnumber": "facsimileTelephoneNumber",
    "city": "l",
    "stateorprovince": "st",
    "state": "st",
    "countryorregion": "co",
    "country": "co",
    "notes": "info",
    "employeeid": "employeeID",
}

# How every identifying attribute or property is mapped (case-folded names, any side).
_KINDS: Final = {
    **dict.fromkeys(
        ("cn", "ou", "name", "displayname", "displaynameprintable", "givenname", "sn", "surname",
         "initials", "middlename", "mailnickname", "samaccountname", "alias", "firstname",
         "lastname", "simpledisplayname", "onpremisessamaccountname", "msexchassistantname"),
        "name",
    ),
    **dict.fromkeys(
        ("userprincipalname", "mail", "proxyaddresses", "targetaddress", "othermailbox",
         "msrtcsip-primaryuseraddress", "emailaddresses", "primarysmtpaddress",
         "windowsemailaddress", "microsoftonlineservicesid", "forwardingsmtpaddress",
         "externalemailaddress", "othermails", "imaddresses", "onpremisesuserprincipalname"),
        "address",
    ),
    **dict.fromkeys(("legacyexchangedn", "msexchhomeservername"), "x500"),
    **dict.fromkeys(
        ("objectguid", "ms-ds-consistencyguid", "msexchmailboxguid", "msexcharchiveguid",
         "guid", "exchangeguid", "archiveguid", "externaldirectoryobjectid"),
        "guid",
    ),
    **dict.fromkeys(
        ("objectsid", "sidhistory", "msexchmasteraccountsid", "onpremisessecurityidentifier",
         "sid", "mastersid"),
        "sid",
    ),
    **dict.fromkeys(("onpremisesimmutableid", "immutableid"), "anchor"),
    "msds-externaldirectoryobjectid": "extid",
    **dict.fromkeys(("distinguishedname", "onpremisesdistinguishedname"), "dn"),
    **dict.fromkeys(("onpremisesdomainname", "organizationalunitroot"), "domain"),
    **dict.fromkeys(("organizationalunit", "canonicalname"), "canonical"),
    "onpremisesextensionattributes": "nested",
    **dict.fromkeys(
        ("objectclass", "changetype", "recipienttype", "recipienttypedetails",
         "remoterecipienttype", "exchangeversion", "archivestatus", "exchangeuseraccountcontrol",
         "usertype", "usagelocation", "whencreated", "whenchanged", "whencreatedutc",
         "whenchangedutc", "whenmailboxcreated", "createddatetime", "isdirsynced",
         "isexchangecloudmanaged", "hiddenfromaddresslistsenabled", "accountenabled",
         "onpremisessyncenabled", "onpremiseslastsyncdatetime"),
        "keep",
    ),
}  # fmt: skip

_SYNTAX_KINDS: Final = {
    Syntax.DN: "dn",
    Syntax.OCTETS: "binary",
    Syntax.STRING: "auto",
    Syntax.OID: "keep",
    Syntax.BOOLEAN: "keep",
    Syntax.INTEGER: "keep",
    Syntax.LARGE_INTEGER: "keep",
    Syntax.TIME: "keep",
}

# RDN values AD and Exchange create themselves: kept, they say nothing about the tenant.
WELL_KNOWN_RDNS: Final = frozenset(
    v.casefold()
    for v in (
        "Users", "Computers", "Builtin", "System", "Microsoft Exchange System Objects",
        "Program Data", "ForeignSecurityPrincipals", "Domain Controllers",
        "Managed Service Accounts", "Configuration", "Schema", "Services", "Microsoft Exchange",
        "Administrative Groups", "Exchange Administrative Group (FYDIBOHF23SPDLT)",
        "First Administrative Group", "Databases", "Servers", "Recipients", "Sites",
        "Default-First-Site-Name", "Microsoft Exchange Hosted Organizations",
        "Microsoft Exchange Security Groups", "Monitoring Mailboxes", "LostAndFound",
        "Infrastructure", "Deleted Objects", "NTDS Quotas", "Keys", "TPM Devices",
        "ExchangeLabs", "First Organization", "External (FYDIBOHF25SPDLT)", "Partitions",
    )
)  # fmt: skip
# Values that are enumerations, not data (compared case-insensitively).
KEEP_VALUES: Final = frozenset(
    v.casefold()
    for v in (
        "True", "False", "None", "Unlimited", "Default", "Enabled", "Disabled", "User", "Member",
        "Guest", "UserMailbox", "SharedMailbox", "RoomMailbox", "EquipmentMailbox", "MailUser",
        "LinkedMailbox", "SchedulingMailbox", "DiscoveryMailbox", "RemoteUserMailbox",
        "RemoteSharedMailbox", "RemoteRoomMailbox", "RemoteEquipmentMailbox", "MailContact",
        "GuestMailUser", "GroupMailbox", "MailUniversalDistributionGroup",
        "MailUniversalSecurityGroup", "DynamicDistributionGroup", "UserMailboxPlan",
    )
)  # fmt: skip
_KEEP_SHAPE = re.compile(
    r"-?\d+(?:\.\d+)?"  # numbers
    r"|\d{14}(?:\.\d+)?Z"  # GeneralizedTime
    r"|\d{4}-\d\d-\d\d(?:[T ][\d:.]+(?:Z|[+-]\d\d:?\d\d)?)?"  # ISO 8601
    r"|\\?/Date\(-?\d+(?:[+-]\d{4})?\)\\?/"  # Windows PowerShell 5.1's ConvertTo-Json dates
    r"|\d{1,2}/\d{1,2}/\d{4} \d{1,2}:\d\d(?::\d\d)?(?: [AP]M)?"  # Export-Csv dates
)
_TOKEN = re.compile(
    r"(?P<g>[0-9A-Fa-f]{8}-(?:[0-9A-Fa-f]{4}-){3}[0-9A-Fa-f]{12})"
    r"|(?P<h>(?<![0-9A-Za-z])[0-9A-Fa-f]{32}(?![0-9A-Za-z]))"
    r"|(?P<w>[^\W\d_]+)"
    r"|(?P<d>\d+)"
)
_WORD = re.compile(r"[^\W\d_]+")
_GUID_TEXT = re.compile(
    r"\{?([0-9A-Fa-f]{8}-(?:[0-9A-Fa-f]{4}-){3}[0-9A-Fa-f]{12}|[0-9A-Fa-f]{32})\}?"
)
_SID_TEXT = re.compile(r"S-1-\d+(?:-\d+)+", re.IGNORECASE)
_HOST = re.compile(r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.)+[A-Za-z][A-Za-z0-9-]*\.?")
_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?")
_EXT_ID = re.compile(r"([A-Za-z]+_)(.+)")
_KEPT_DOMAINS: Final = frozenset(("onmicrosoft.com", "mail.onmicrosoft.com"))
_LINE_POLICY = re.compile(r"\s*([\w.;-]+)\s*=\s*(\S+)\s*")

Handler = Callable[[Any], Any]
# Entries the address, text and GUID memos hold: enough for the Exchange Online and Graph
# records of 200,000 users to find the values their AD records already mapped (the AD file is
# read first, so a smaller memo forgets them before they recur), at about 150 MiB each.
_WINDOW: Final = 1 << 20


class _Drop:
    """The handler of a dropped attribute."""


_DROP: Final = _Drop()
Pair = tuple[Handler, Handler]  # (for text values, for binary values)


class _BadValue(ValueError):
    """A value the pseudonymiser cannot read; the record method adds file:line."""


def _normal_policy(attr: str, policy: str, origin: Origin) -> str:
    p = policy.strip().casefold().replace("pseudonymize", "pseudonymise")
    if p not in POLICIES:
        raise ExportError(
            origin, f"unknown policy {policy!r} for {attr}", f"one of {', '.join(POLICIES)}"
        )
    kind = _KINDS.get(attr.casefold())
    if kind not in (None, "keep") and attr.casefold() not in _FREE_TEXT_ALIASES:
        raise ExportError(
            origin,
            f"{attr} is not a free-text attribute; it is always pseudonymised so joins survive",
            "policies apply to free text: description, department, extensionAttribute1, ...",
        )
    return p


def canonical_attribute(name: str) -> str:
    """The free-text policy name of an attribute: AD's lDAPDisplayName for the spellings of
    Exchange Online and Graph (`CustomAttribute3` -> `extensionAttribute3`)."""
    low = name.split(";", 1)[0].casefold()
    alias = _FREE_TEXT_ALIASES.get(low)
    if alias is not None:
        return alias
    for known in FREE_TEXT_POLICIES:
        if known.casefold() == low:
            return known
    return name


def load_policy(path: Path) -> dict[str, str]:
    """A policy file: `attr=policy` lines, or a YAML mapping `attr: policy` (optionally under a
    `policies:` key). Unknown policies and non-free-text attributes name file:line."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as e:
        raise ExportError(str(path), f"cannot read the policy file ({e.strerror})") from None
    except UnicodeDecodeError:
        raise ExportError(str(path), "the policy file is not UTF-8 text") from None
    entries: list[tuple[str, str, int]] = []
    significant = [
        (n, line) for n, line in enumerate(text.splitlines(), 1)
        if line.strip() and not line.lstrip().startswith("#")
    ]  # fmt: skip
    if significant and all(_LINE_POLICY.fullmatch(line) for _, line in significant):
        for n, line in significant:
            m = _LINE_POLICY.fullmatch(line)
            assert m is not None
            entries.append((m.group(1), m.group(2), n))
    else:
        entries = _yaml_policy(path, text)
    out: dict[str, str] = {}
    for attr, policy, at in entries:
        out[canonical_attribute(attr)] = _normal_policy(attr, policy, Origin(str(path), at))
    return out


def _yaml_policy(path: Path, text: str) -> list[tuple[str, str, int]]:
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as e:
        line = e.problem_mark.line + 1 if e.problem_mark is not None else 0
        raise ExportError(
            Origin(str(path), line),
            f"not a policy file: {e.problem}",
            "write attr=policy lines or a YAML mapping attr: policy",
        ) from None
    if root is None:
        return []
    if (
        isinstance(root, yaml.MappingNode)
        and len(root.value) == 1
        and root.value[0][0].value in ("policies", "policy")
        and isinstance(root.value[0][1], yaml.MappingNode)
    ):
        root = root.value[0][1]
    if not isinstance(root, yaml.MappingNode):
        raise ExportError(
            Origin(str(path), root.start_mark.line + 1),
            "not a policy file: expected a mapping of attribute to policy",
            "write attr=policy lines or a YAML mapping attr: policy",
        )
    entries = []
    for key, value in root.value:
        line = key.start_mark.line + 1
        if not isinstance(key, yaml.ScalarNode) or not isinstance(value, yaml.ScalarNode):
            raise ExportError(
                Origin(str(path), line), "each entry must be `attribute: policy`", None
            )
        entries.append((str(key.value), str(value.value), line))
    return entries


class Pseudonymiser:
    """Maps AD, Exchange Online and Graph records to pseudonymised ones under one key.

    One instance holds the tables for one import: the same value seen in any file maps to the
    same pseudonym. The output is a function of the key, the options and the inputs in order.
    """

    def __init__(self, key: bytes, policy: Mapping[str, str] | None = None) -> None:
        if len(key) < MIN_KEY_BYTES:
            raise ExportError(
                "key", f"a key needs at least {MIN_KEY_BYTES} bytes, got {len(key)}", KEY_HINT
            )
        self._policy = dict(FREE_TEXT_POLICIES)
        self._explicit: set[str] = set()
        for attr, p in (policy or {}).items():
            canon = canonical_attribute(attr)
            self._policy[canon] = _normal_policy(attr, p, Origin("policy"))
            self._explicit.add(canon)
        self._free_canon = {a.casefold(): a for a in self._policy} | _FREE_TEXT_ALIASES
        self._key_id = subkey(key, "key-id")[:6].hex()
        self._k_word = subkey(key, "word")
        self._k_digits = subkey(key, "digits")
        self._k_domain = subkey(key, "domain")
        self._k_sid = subkey(key, "sid")
        self._k_bytes = subkey(key, "bytes")
        self._perm = GuidPermutation(key)
        self._names = name_data()
        self._words: InjectiveMap[str, str] = InjectiveMap()
        self._digit_map: InjectiveMap[str, str] = InjectiveMap()
        self._domain_bases: InjectiveMap[str, str] = InjectiveMap()
        self._sids: InjectiveMap[tuple[int, ...], tuple[int, ...]] = InjectiveMap()
        self._short_bytes: InjectiveMap[bytes, bytes] = InjectiveMap()
        self._domains: dict[str, str] = {}
        self._word_cache: dict[str, str] = {}
        self._accents: InjectiveMap[str, str] = InjectiveMap()
        self._text_cache: dict[str, str] = {}
        self._dn_cache: dict[str, str] = {}
        self._x500_cache: dict[str, str] = {}
        self._address_cache: dict[str, str] = {}
        self._guid_cache: dict[int, int] = {}
        self._handlers: dict[str, dict[str, Pair | _Drop]] = {"ad": {}, "exo": {}, "graph": {}}
        self._given: tuple[str, ...] = ()
        self._touched: dict[str, int] = {}
        self._counts = {"ad_records": 0, "mailboxes": 0, "graph_users": 0, "dropped_values": 0}

    @classmethod
    def from_keyfile(cls, path: Path, policy: Mapping[str, str] | None = None) -> Pseudonymiser:
        """A key file holds >= 32 random bytes, or hex or base64 text of them."""
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise ExportError(str(path), "key file not found", KEY_HINT) from None
        except OSError as e:
            raise ExportError(str(path), f"cannot read the key file ({e.strerror})") from None
        text = data.strip()
        key = data
        if re.fullmatch(rb"(?:[0-9A-Fa-f]{2})+", text):
            key = bytes.fromhex(text.decode("ascii"))
        elif re.fullmatch(rb"[A-Za-z0-9+/]+={0,2}", text) and len(text) % 4 == 0:
            key = base64.b64decode(text)
        if not text:
            raise ExportError(str(path), "the key file is empty", KEY_HINT)
        if len(key) < MIN_KEY_BYTES:
            raise ExportError(
                str(path),
                f"the key file holds {len(key)} bytes; at least {MIN_KEY_BYTES} are needed",
                KEY_HINT,
            )
        return cls(key, policy)

    # ------------------------------------------------------------------ records
    def ad(self, rec: AdRecord) -> AdRecord:
        """The record with every value pseudonymised (dropped free text left out)."""
        self._counts["ad_records"] += 1
        attrs = rec.attrs
        given = attrs.get("givenName") or attrs.get("givenname") or attrs.get("GivenName")
        self._given = self._keys_of(given[0]) if given and isinstance(given[0], str) else ()
        out: dict[str, list[str | bytes]] = {}
        name = "dn"
        handlers = self._handlers["ad"]
        try:
            for name, values in attrs.items():
                pair = handlers.get(name) or self._handler(name, "ad")
                if isinstance(pair, _Drop):
                    self._counts["dropped_values"] += len(values)
                    continue
                fs, fb = pair
                if fs is _same:
                    out[name] = list(values)
                elif len(values) == 1:  # most attributes; a list comprehension costs a frame
                    v = values[0]
                    out[name] = [fs(v) if type(v) is str else fb(v)]
                else:
                    out[name] = [fs(v) if type(v) is str else fb(v) for v in values]
            name = "dn"
            dn = self.dn(rec.dn)
        except _BadValue as e:
            raise ExportError(rec.origin, f"{name}: {e}") from None
        if dn[:3].casefold() == "dc=":
            self._naming_dc(rec, dn, out)
        return AdRecord(dn, out, rec.origin)

    @staticmethod
    def _naming_dc(rec: AdRecord, dn: str, out: dict[str, list[str | bytes]]) -> None:
        """A domain object's `dc` is its RDN value, which follows the domain map, not the
        word map: copy it from the mapped DN."""
        for name in out:
            if name.casefold() == "dc":
                first = parse_dn(split_rdn(dn)[0])[0][0][1]
                old = parse_dn(split_rdn(rec.dn)[0])[0][0][1]
                pairs = zip(rec.attrs[name], out[name], strict=True)
                out[name] = [first if o == old else m for o, m in pairs]

    def mailbox(self, rec: MailboxRecord) -> MailboxRecord:
        """The Get-Mailbox record with every value pseudonymised (dropped free text None)."""
        self._counts["mailboxes"] += 1
        props = rec.props
        first = props.get("FirstName") or props.get("DisplayName")
        self._given = self._keys_of(first)[:1] if isinstance(first, str) else ()
        return MailboxRecord(self._props(props, "exo", rec.origin), rec.origin)

    def graph_user(self, rec: GraphUserRecord) -> GraphUserRecord:
        """The Graph user with every value pseudonymised (dropped free text None)."""
        self._counts["graph_users"] += 1
        first = rec.props.get("givenName") or rec.props.get("displayName")
        self._given = self._keys_of(first)[:1] if isinstance(first, str) else ()
        return GraphUserRecord(self._props(rec.props, "graph", rec.origin), rec.origin)

    def summary(self) -> dict[str, Any]:
        """What was done, without a single original value: the policy of each free-text
        attribute seen (or configured) with how many values it touched, and counts per kind."""
        seen = sorted(set(self._touched) | self._explicit, key=str.casefold)
        return {
            "key_id": self._key_id,
            "policies": {
                a: {
                    "policy": self._policy.get(a, "pseudonymise"),
                    "values": self._touched.get(a, 0),
                }
                for a in seen
            },
            "counts": {
                **self._counts,
                "words": len(self._words),
                "numbers": len(self._digit_map),
                "domains": len({d.lower() for d in self._domains}),
                "sid_domains": len(self._sids),
            },
        }

    def _props(self, props: Mapping[str, Any], side: str, origin: Origin) -> dict[str, Any]:
        out: dict[str, Any] = {}
        key = ""
        handlers = self._handlers[side]
        try:
            for key, value in props.items():
                pair = handlers.get(key) or self._handler(key, side)
                if type(value) is str and not isinstance(pair, _Drop):
                    out[key] = pair[0](value) if value else value
                else:
                    out[key] = self._apply(pair, value, side)
        except _BadValue as e:
            raise ExportError(origin, f"{key}: {e}") from None
        return out

    def _apply(self, pair: Pair | _Drop, value: Any, side: str) -> Any:
        if isinstance(pair, _Drop):
            self._counts["dropped_values"] += 1
            return [] if isinstance(value, list) else None
        if isinstance(value, str):
            return pair[0](value) if value else value
        if isinstance(value, list):
            fs = pair[0]
            return [
                (fs(v) if v else v) if type(v) is str else self._apply(pair, v, side) for v in value
            ]
        if isinstance(value, dict):
            return {k: self._apply(self._handler(k, side), v, side) for k, v in value.items()}
        return value  # bool, int, float, None

    # ------------------------------------------------------------------ dispatch
    def _handler(self, name: str, side: str) -> Pair | _Drop:
        got = self._handlers[side].get(name)
        if got is None:
            got = self._handlers[side][name] = self._make_handler(name, side)
        return got

    def _make_handler(self, name: str, side: str) -> Pair | _Drop:
        low = name.split(";", 1)[0].casefold()
        canon = self._free_canon.get(low)
        if canon is not None:
            return self._free_text(canon)
        kind = _KINDS.get(low)
        if kind is None and side == "ad":
            t = DEFAULT_SCHEMA.get(low)
            kind = _SYNTAX_KINDS[t.syntax] if t is not None else None
        if kind is None and low.startswith("@odata"):
            kind = "keep"
        binary, auto = self._binary, self._auto
        pairs: dict[str, Pair] = {
            "name": (self._name, binary),
            "address": (self._address, binary),
            "x500": (self._x500, binary),
            "guid": (self._guid_any, self._guid_bytes_or_other),
            "sid": (self._sid_text_or_auto, self._sid_bytes),
            "anchor": (self._anchor, binary),
            "extid": (self._extid, binary),
            "dn": (self._dn_strict if side == "ad" else self._dn_or_auto, binary),
            "domain": (self.domain, binary),
            "canonical": (self._canonical, binary),
            "nested": (auto, binary),
            "keep": (_same, _same),
            "binary": (auto, binary),
        }
        return pairs.get(kind or "auto", (auto, binary))

    def _free_text(self, canon: str) -> Pair | _Drop:
        policy = self._policy.get(canon, "pseudonymise")
        touched = self._touched
        touched.setdefault(canon, 0)
        if policy == "drop":
            return _DROP
        keep = policy == "keep"

        def text(v: str) -> str:
            touched[canon] += 1
            return v if keep else self._text(v)

        def raw(v: bytes) -> bytes:
            touched[canon] += 1
            return v if keep else self._binary(v)

        return text, raw

    # ------------------------------------------------------------------ words and numbers
    def _keys_of(self, text: str) -> tuple[str, ...]:
        return tuple(fold(w) for w in _WORD.findall(text))

    def _word(self, tok: str) -> str:
        hit = self._word_cache.get(tok)
        if hit is not None:
            return hit
        ps = self._word_key(fold(tok))
        if not tok.isascii():
            ps = self._accented(tok.casefold(), ps)
        return memo(self._word_cache, tok, recase(tok, ps))

    def _accented(self, word: str, base: str) -> str:
        """A non-ASCII word's pseudonym: the one of its folded form (so Zoë and the alias zoe
        agree), spelt with accents of its own. Eugène and Eugene fold alike but are two names
        (two users' DNs): an accented spelling never equals an ASCII pseudonym, and this
        one-to-one table keeps Eugène and Eugéne apart too."""
        display = self._names.display.get(base, base)

        def make(attempt: int) -> str:
            if attempt == 0 and not display.isascii():
                return display
            return with_mark(base, attempt)

        return self._accents.assign(word, make)

    def _word_key(self, key: str) -> str:
        """The pseudonym (lower case, ASCII) of a folded word."""
        got = self._words.get(key)
        if got is not None:
            return got
        data = self._names
        n = len(key)
        role = (
            "first"
            if key in data.recognised_first
            else "last"
            if key in data.recognised_last
            else None
        )
        pool = data.replacements.get((role, n), ()) if role else ()
        compound = None if role else self._compound(key)
        seed = key.encode("utf-8") + b"\0"
        k = self._k_word

        def make(attempt: int) -> str:
            if compound is not None:
                if attempt == 0:
                    return compound
                attempt -= 1
            if pool and attempt < 8:
                d = mac(k, seed + attempt.to_bytes(4, "big"))
                return pool[int.from_bytes(d[:8], "big") % len(pool)]
            length = n + attempt // 4000  # a full space (one letter) grows instead of looping
            return pseudo_word(length, stream(k, seed + attempt.to_bytes(4, "big"), length + 1))

        return self._words.assign(key, make, data.recognised.__contains__)

    def _compound(self, key: str) -> str | None:
        """`jsmith` and `johnsmith`: an initial or a name glued to a name keep that shape, the
        initial following the record's given name (`j` of John -> the initial of John's
        pseudonym). Decided once per word, so every later use agrees."""
        rec = self._names.recognised
        n = len(key)
        if n < 3 or not key.isascii():
            return None
        if key[1:] in rec:
            initial = next(
                (self._word_key(g)[0] for g in self._given if g[:1] == key[:1] and g != key),
                None,
            )
            return (initial or self._word_key(key[0])) + self._word_key(key[1:])
        for i in range(2, n - 1):
            if key[:i] in rec and key[i:] in rec:
                return self._word_key(key[:i]) + self._word_key(key[i:])
        return None

    def _digits(self, tok: str) -> str:
        got = self._digit_map.get(tok)
        if got is not None:
            return got
        n = len(tok)
        k = self._k_digits
        seed = tok.encode("utf-8") + b"\0"

        def make(attempt: int) -> str:
            length = n + attempt // 4000
            if length <= 36:  # one HMAC, one conversion: numbers are a large share of values
                x = int.from_bytes(mac(k, seed + attempt.to_bytes(4, "big"))[:16], "big")
                return f"{x:038d}"[-length:]
            raw = stream(k, seed + attempt.to_bytes(4, "big"), length)
            return "".join(str(b % 10) for b in raw)

        return self._digit_map.assign(tok, make)

    def _sub(self, m: re.Match[str]) -> str:
        g, s = m.lastgroup, m.group()
        if g == "w":
            return self._word(s)
        if g == "d":
            # numbers too: a sAMAccountName or alias may be an employee number (u104233)
            return self._digits(s)
        return self._guid_text(s) if g == "g" else self._hex32(s)

    def _text(self, value: str) -> str:
        """Any text, token by token: words, numbers and embedded GUIDs mapped, the rest kept.
        Names, address local parts, OU names and free text all go through here, so the same
        word maps alike wherever it appears."""
        hit = self._text_cache.get(value)
        if hit is not None:
            return hit
        return memo(self._text_cache, value, _TOKEN.sub(self._sub, value), _WINDOW)

    _name = _text

    # ------------------------------------------------------------------ addresses and domains
    def address(self, value: str) -> str:
        """An address with its prefix (`SMTP:`, `smtp:`, `X500:`, `sip:`) kept exactly."""
        got = self._address_cache.get(value)
        if got is None:
            got = memo(self._address_cache, value, self._map_address(value), _WINDOW)
        return got

    def _map_address(self, value: str) -> str:
        colon = value.find(":", 0, 17)
        if colon > 0 and value[:colon].isalnum() and value[0].isalpha():
            prefix, rest = value[: colon + 1], value[colon + 1 :]
            if prefix.casefold() == "x500:":
                return prefix + self._x500(rest)
        else:
            prefix, rest = "", value
        local, at, dom = rest.rpartition("@")
        if not at:
            return prefix + self._name(rest)
        name = self._text_cache.get(local) or self._text(local)
        return f"{prefix}{name}@{self._domains.get(dom) or self.domain(dom)}"

    _address = address

    def domain(self, name: str) -> str:
        """A DNS name mapped one-to-one: `contoso.com` -> `<word>.example`, subdomains keeping
        their depth, `<tenant>.onmicrosoft.com` and `<tenant>.mail.onmicrosoft.com` their
        pattern (the tenant label mapped like any word). Lengths stay close to the original."""
        got = self._domains.get(name)
        if got is not None:
            return got
        low = name.lower()
        trail = "." if low.endswith(".") else ""
        labels = low.rstrip(".").split(".")
        if not all(_LABEL.fullmatch(label) for label in labels):
            out = self._name(name)  # not a host name (SPO_<guid> and the like)
        elif ".".join(labels) in _KEPT_DOMAINS:
            out = low
        elif len(labels) >= 3 and labels[-2:] == ["onmicrosoft", "com"]:
            tail = 3 if labels[-3] == "mail" and len(labels) >= 4 else 2
            out = ".".join([*(self._label(x) for x in labels[:-tail]), *labels[-tail:]])
        elif len(labels) == 1:
            out = self._label(labels[0])
        else:
            base = ".".join(labels[-2:])
            k, seed = self._k_domain, base.encode("utf-8") + b"\0"
            length = max(3, len(base) - len(".example"))

            def make(attempt: int) -> str:
                n = length + attempt // 4000
                return pseudo_word(n, stream(k, seed + attempt.to_bytes(4, "big"), n + 1))

            word = self._domain_bases.assign(base, make)
            out = ".".join([*(self._label(x) for x in labels[:-2]), word, "example"])
        out += trail
        if name.isupper():
            out = out.upper()
        self._domains[name] = out
        return out

    def _label(self, label: str) -> str:
        return self._name(label).lower()

    def _x500(self, value: str) -> str:
        """`/o=Org/ou=Exchange Administrative Group (FYDIBOHF23SPDLT)/cn=Recipients/cn=<id>`:
        structure and well-known parts kept, the organisation and names mapped."""
        head, slash, last = value.rpartition("/")
        if slash:
            # the head (/o=Org/ou=.../cn=Recipients) is shared by every recipient: memoised
            got = self._x500_cache.get(head)
            head = memo(self._x500_cache, head, self._x500(head), 1 << 12) if got is None else got
        k, eq, v = last.partition("=")
        if eq and v and v.casefold() not in WELL_KNOWN_RDNS:
            last = f"{k}={self._name(v)}"
        return f"{head}{slash}{last}"

    # ------------------------------------------------------------------ DNs
    def dn(self, value: str) -> str:
        """A DN with its tree kept: well-known containers kept, names under `CN=Schema` (class
        names in objectCategory) kept, `DC=` labels following the domain map, other RDN values
        mapped like names. Raises ValueError for a string that is not a DN."""
        hit = self._dn_cache.get(value)
        if hit is not None:
            return hit
        try:
            out = self._map_dn(value)
        except InvalidDN as e:
            raise _BadValue(f"not a valid DN ({e})") from None
        return memo(self._dn_cache, value, out, 1 << 16)

    _dn_strict = dn

    def _dn_or_auto(self, value: str) -> str:
        try:
            return self.dn(value)
        except _BadValue:
            return self._text(value)

    def _map_dn(self, value: str) -> str:
        if not value.strip():
            return value
        first, rest = split_rdn(value)
        head = parse_dn(first)
        if len(head) != 1:
            raise InvalidDN(f"bad RDN {first!r}")
        if head[0][0][0].casefold() == "dc":
            rdns = parse_dn(value)
            if all(len(r) == 1 and r[0][0].casefold() == "dc" for r in rdns):
                labels = self.domain(".".join(r[0][1] for r in rdns)).split(".")
                if len(labels) == len(rdns):
                    return ",".join(rdn(r[0][0], lab) for r, lab in zip(rdns, labels, strict=True))
        under_schema = (
            rest[:28].casefold().replace(" ", "").startswith("cn=schema,cn=configuration")
        )
        mapped = "+".join(
            rdn(attr, v if under_schema else self._rdn_value(v)) for attr, v in head[0]
        )
        return f"{mapped},{self.dn(rest)}" if rest else mapped

    def _rdn_value(self, v: str) -> str:
        if v.casefold() in WELL_KNOWN_RDNS:
            return v
        if "." in v and _HOST.fullmatch(v):
            return self.domain(v)
        return self._name(v)

    def _canonical(self, value: str) -> str:
        """A canonical name, `contoso.com/Corp/Users` (Get-Mailbox's OrganizationalUnit)."""
        return "/".join(self._rdn_value(p) if p else p for p in value.split("/"))

    # ------------------------------------------------------------------ GUIDs, SIDs, binary
    def _guid_int(self, value: int) -> int:
        got = self._guid_cache.get(value)
        return memo(self._guid_cache, value, self._perm(value), _WINDOW) if got is None else got

    def _guid_bytes(self, b: bytes) -> bytes:
        """16 bytes in AD's order (`uuid.UUID(bytes_le=...)`): the same GUID as its text form."""
        be = b[3::-1] + b[5:3:-1] + b[7:5:-1] + b[8:]
        x = self._guid_int(int.from_bytes(be, "big")).to_bytes(16, "big")
        return x[3::-1] + x[5:3:-1] + x[7:5:-1] + x[8:]

    def _guid_text(self, s: str) -> str:
        x = f"{self._guid_int(int(s.replace('-', ''), 16)):032x}"
        if "-" in s:
            x = f"{x[:8]}-{x[8:12]}-{x[12:16]}-{x[16:20]}-{x[20:]}"
        return x.upper() if re.search("[A-F]", s) else x

    def _hex32(self, s: str) -> str:
        return self._guid_text(s)

    def _guid_any(self, v: str) -> str:
        m = _GUID_TEXT.fullmatch(v)
        if m is None:
            return self._auto(v)
        inner = m.group(1)
        return v.replace(inner, self._guid_text(inner))

    def _guid_bytes_or_other(self, b: bytes) -> bytes:
        return self._guid_bytes(b) if len(b) == 16 else self._binary(b)

    def _binary(self, b: bytes) -> bytes:
        """Other binary values: a GUID if 16 bytes long, else keyed bytes of the same length."""
        if len(b) == 16:
            return self._guid_bytes(b)
        if len(b) >= 8:
            return stream(self._k_bytes, b, len(b))
        k = self._k_bytes
        n = len(b)
        return self._short_bytes.assign(
            b, lambda attempt: stream(k, b + attempt.to_bytes(4, "big"), n + attempt // 4000)
        )

    def _sid_subs(self, auth: int, subs: list[int]) -> list[int]:
        """A domain SID's three sub-authorities mapped (one-to-one), the RID kept; well-known
        SIDs (S-1-5-18, S-1-5-32-544) kept."""
        if auth != 5 or len(subs) < 4 or subs[0] != 21:
            return subs
        k = self._k_sid
        domain = tuple(subs[1:4])
        seed = b"".join(s.to_bytes(4, "big") for s in domain)

        def make(attempt: int) -> tuple[int, ...]:
            raw = stream(k, seed + attempt.to_bytes(4, "big"), 12)
            return tuple(int.from_bytes(raw[i : i + 4], "big") for i in (0, 4, 8))

        return [21, *self._sids.assign(domain, make), *subs[4:]]

    def _sid_bytes(self, b: bytes) -> bytes:
        if len(b) < 8 or b[0] != 1 or len(b) != 8 + 4 * b[1]:
            return self._binary(b)
        auth = int.from_bytes(b[2:8], "big")
        subs = [int.from_bytes(b[i : i + 4], "little") for i in range(8, len(b), 4)]
        return b[:8] + b"".join(s.to_bytes(4, "little") for s in self._sid_subs(auth, subs))

    def _sid_text_or_auto(self, v: str) -> str:
        if not _SID_TEXT.fullmatch(v):
            return self._auto(v)
        parts = v.split("-")
        auth, subs = int(parts[2]), [int(p) for p in parts[3:]]
        return "-".join([parts[0], parts[1], parts[2], *map(str, self._sid_subs(auth, subs))])

    def _anchor(self, v: str) -> str:
        """onPremisesImmutableId: base64 of the source anchor's bytes (so it stays base64 of
        the remapped mS-DS-ConsistencyGuid), or a GUID's text."""
        try:
            raw = base64.b64decode(v, validate=True)
        except (binascii.Error, ValueError):
            raw = b""
        if raw and base64.b64encode(raw).decode("ascii") == v:
            return base64.b64encode(self._binary(raw)).decode("ascii")
        return self._guid_any(v) if _GUID_TEXT.fullmatch(v) else self._auto(v)

    def _extid(self, v: str) -> str:
        """msDS-ExternalDirectoryObjectId `User_<id>`: the prefix kept, the id mapped as Graph's."""
        m = _EXT_ID.fullmatch(v)
        if m is not None and _GUID_TEXT.fullmatch(m.group(2)):
            return m.group(1) + self._guid_any(m.group(2))
        return self._auto(v)

    # ------------------------------------------------------------------ anything else
    def _auto(self, v: Any) -> Any:
        """A value of an attribute we do not know, mapped by its shape; enumerations, numbers,
        times and Booleans kept."""
        if isinstance(v, bytes):
            return self._binary(v)
        if not isinstance(v, str) or not v or v.casefold() in KEEP_VALUES:
            return v
        if _KEEP_SHAPE.fullmatch(v):
            return v
        if _GUID_TEXT.fullmatch(v):
            return self._guid_any(v)
        if _SID_TEXT.fullmatch(v):
            return self._sid_text_or_auto(v)
        if v[:3].casefold() == "/o=":
            return self._x500(v)
        if "@" in v and " " not in v:
            return self.address(v)
        if "=" in v and "," in v:
            try:
                return self.dn(v)
            except _BadValue:
                pass
        if "." in v and _HOST.fullmatch(v):
            return self.domain(v)
        return self._text(v)


def _same(v: Any) -> Any:
    return v
