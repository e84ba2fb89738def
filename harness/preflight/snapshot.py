"""What the pre-flight rules read: one tenant's AD objects and cloud mailboxes, joined as the
writeback engine joins them, with every index a rule needs built once.

A snapshot comes from a tenant folder (`from_folder`: `directory.ldif`, `cloud.jsonl`,
`tenant.json`), from an import about to write one (`from_import`), or from a running directory
and Graph (`from_live`). Either way the AD side is an iterator of
``(dn, [(attribute, [values]), ...])`` and the cloud side a sequence of EXO-named records, so
the rules never know where the data came from. AD values are held in the engine's lean
`AdValues` (one shared position table), and the first cycle's plan is computed once per joined
mailbox with the engine's own `Profile.desired` and `plan`: what the rules call "would be
written" is exactly what `exwb cycle` would write.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from harness.core.adschema import DEFAULT_SCHEMA, Syntax
from harness.core.dn import InvalidDN, normalize_dn, split_rdn
from harness.core.errors import UsageError
from harness.core.gcpause import paused
from harness.core.ldapresult import SERVER_DOWN, LdapError
from harness.engine.ldapwire import Change
from harness.engine.rules import MappingError, Profile
from harness.engine.target import ANCHOR_ATTRIBUTE, SHARED_VALUES, AdValues, plan
from harness.tenant import files
from harness.tenant.files import CLOUD_NAME, LDIF_NAME, MANIFEST_NAME, read_cloud_jsonl
from harness.tenant.imports.records import AdValue
from harness.tenant.model import CloudMailbox, anchor_of

# The attributes the IdFix rules read, besides the profile's targets.
RULE_ATTRIBUTES: tuple[str, ...] = (
    "objectClass",
    "cn",
    "sAMAccountName",
    "userPrincipalName",
    "displayName",
    "givenName",
    "mail",
    "mailNickname",
    "proxyAddresses",
    "targetAddress",
    "isCriticalSystemObject",
)
GUID_ATTRIBUTE = "objectGUID"
_ANCHOR_LOW = ANCHOR_ATTRIBUTE.casefold()
_GUID_LOW = GUID_ATTRIBUTE.casefold()

# Where the writeback account may write when neither --writeback-ou nor an imported tenant's
# manifest says: the fake directory grants it OU=Corp,<base> (mockservers/directory/service.py,
# `DirectoryService.from_seed`), which is where the generator puts every synced user.
DEFAULT_WRITABLE_OU = "OU=Corp,{base_dn}"

# IdFix skips these well-known system objects (Microsoft facts §8.4): names, name prefixes.
SYSTEM_NAMES = frozenset({"krbtgt"})
SYSTEM_PREFIXES = ("systemmailbox", "discoverysearchmailbox", "federatedemail")

AdEntries = Iterable[tuple[str, Iterable[tuple[str, Sequence[AdValue]]]]]  # each name once
Record = Mapping[str, Any]


@dataclass(slots=True)
class AdEntry:
    """One AD object the rules look at (users, groups, contacts, anything holding an address)."""

    dn: str
    values: AdValues  # the rule attributes and the profile's targets, by canonical name
    kind: str  # user | group | contact | other
    system: bool  # a well-known system object IdFix excludes
    anchor: str | None  # base64 mS-DS-ConsistencyGuid: what the engine matches on


@dataclass(slots=True)
class Mailbox:
    """One cloud recipient and what the first cycle would do with it."""

    index: int  # in the cloud records (`Snapshot.record`)
    id: str
    label: str  # UserPrincipalName when known, else the id
    anchor: str | None  # onPremisesImmutableId
    dir_synced: bool  # IsDirSynced
    managed: bool  # IsExchangeCloudManaged
    ad: int | None = None  # index into `Snapshot.ad` when its anchor names exactly one user
    changes: list[Change] = field(default_factory=list)  # the first cycle's modify
    error: str | None = None  # the mapping or planning failure the cycle would log

    @property
    def synced(self) -> bool:
        """Synchronized from AD and carrying the anchor the engine matches on."""
        return self.dir_synced and self.anchor is not None

    @property
    def in_scope(self) -> bool:
        """What the engine exports: synchronized, matched and cloud-managed."""
        return self.synced and self.managed and self.ad is not None


@dataclass(slots=True)
class TenantInfo:
    source: str  # the folder, or the LDAP URL the snapshot was read from
    base_dn: str
    imported: bool  # tenant.json says "source": "import"
    pseudonymised: bool
    writable_ous: tuple[str, ...]
    writable_from: str  # option | tenant.json | default


@dataclass(slots=True)
class Snapshot:
    """A tenant as the rules read it; build it with `build`, `from_folder` or `from_live`."""

    info: TenantInfo
    profile: Profile
    ad: list[AdEntry]
    mailboxes: list[Mailbox]
    users_by_anchor: dict[str, list[int]]  # anchor -> AD users holding it (two: a conflict)
    guid_anchors: dict[str, int]  # base64 objectGUID -> AD user (the engine does not match it)
    addresses: dict[str, int | list[int]]  # address key -> the object(s) holding it
    joined_by: dict[int, list[int]]  # AD user -> mailboxes whose anchor names it
    memo: dict[str, Any] = field(default_factory=dict)  # what several rules compute once
    _records: Sequence[CloudMailbox | Record] = field(repr=False, default=())
    _writable: tuple[str, ...] = field(repr=False, default=())

    def record(self, i: int) -> Record:
        """Mailbox `i` as the EXO-named record the engine maps (made on demand: 200k are big)."""
        r = self._records[i]
        return r.to_json() if isinstance(r, CloudMailbox) else r

    def holders(self, key: str) -> list[int]:
        found = self.addresses.get(key)
        if found is None:
            return []
        return [found] if isinstance(found, int) else found

    def writable(self, dn: str) -> bool:
        """Whether `dn` is inside one of the OUs the writeback account may write."""
        try:
            # The parent: a few hundred OUs hold every user, so normalize_dn's cache hits.
            comma = dn.find(",")
            # split_rdn walks the DN a character at a time; only an escape needs it.
            parent = dn[comma + 1 :] if "\\" not in dn[:comma] else split_rdn(dn)[1]
            n = normalize_dn(parent)
        except InvalidDN:
            return False
        return any(n == ou or n.endswith("," + ou) for ou in self._writable)

    def in_sync_scope(self, i: int) -> bool:
        """Whether AD object `i` is joined to a synchronized cloud object."""
        return i in self.joined_by


def address_key(attribute: str, value: str) -> str | None:
    """The case-insensitive key two objects' addresses collide on: ``type:address``."""
    if attribute == "mail":
        return "smtp:" + value.casefold() if value else None
    prefix, sep, rest = value.partition(":")
    if not sep or not rest:
        return None
    return f"{prefix.casefold()}:{rest.casefold()}"


def _kind(classes: Sequence[str]) -> str:
    low = {c.casefold() for c in classes}
    if "computer" in low:
        return "other"
    for k in ("user", "group", "contact"):
        if k in low:
            return k
    return "other"


def _system(dn: str, values: AdValues) -> bool:
    critical = values.get("isCriticalSystemObject", ())
    if critical and critical[0].upper() == "TRUE":
        return True
    for name in (*values.get("cn", ()), *values.get("sAMAccountName", ())):
        low = name.casefold()
        if low in SYSTEM_NAMES or low.startswith(SYSTEM_PREFIXES) or low.endswith("$"):
            return True
    low_dn = dn.casefold()
    return "\\0acnf:" in low_dn or "\ncnf:" in low_dn  # a replication-conflict object


def _text(values: Sequence[AdValue]) -> tuple[str, ...]:
    """Text values as a tuple. Readers give text attributes as str (binary ones, which are
    not read here, as bytes), so only the first value's type is looked at."""
    if values[0].__class__ is bytes:
        return tuple(v if isinstance(v, str) else v.decode("utf-8", "replace") for v in values)
    return cast("tuple[str, ...]", tuple(values))


class _AdReader:
    """Turns raw entries into `AdEntry`s and fills the AD indexes as it goes."""

    def __init__(self, profile: Profile) -> None:
        names: list[str] = []
        for a in (*RULE_ATTRIBUTES, *profile.targets):
            t = DEFAULT_SCHEMA.get(a)
            names.append(t.name if t is not None else a)
        self.positions = {a: i for i, a in enumerate(dict.fromkeys(names))}
        self.canonical = {a.casefold(): a for a in self.positions}
        self.blank: list[tuple[str, ...]] = [()] * len(self.positions)
        # Equal values are shared, as the engine's reader shares them: the few object classes,
        # recipient types and departments of a tenant are then held once, not once per user.
        # An attribute with more distinct values than that is not shared any more.
        self.shared: dict[str, dict[tuple[str, ...], tuple[str, ...]] | None] = {
            a: {} for a in self.positions
        }
        self.spelled: dict[str, str | None] = {}  # name as spelled -> key, filled as met
        self.entries: list[AdEntry] = []
        self.by_anchor: dict[str, list[int]] = {}
        self.guids: dict[str, int] = {}
        self.addresses: dict[str, int | list[int]] = {}

    def _resolve(self, name: str) -> str | None:
        """Our key for an attribute as a file or server spells it (None: not read)."""
        low = name.split(";", 1)[0].casefold()
        key = self.canonical.get(low)
        if key is None and low in (_ANCHOR_LOW, _GUID_LOW):
            key = _ANCHOR_LOW if low == _ANCHOR_LOW else _GUID_LOW  # the constants: `add` uses `is`
        self.spelled[name] = key
        return key

    def add(self, dn: str, attrs: Iterable[tuple[str, Sequence[AdValue]]]) -> None:
        """One object, its attributes as (name, values) pairs, each name once."""
        values = self.blank.copy()
        anchor = guid = None
        spelled, positions, shared = self.spelled, self.positions, self.shared
        for name, raw in attrs:
            key = spelled[name] if name in spelled else self._resolve(name)
            if key is None or not raw:
                continue
            if key is _ANCHOR_LOW:
                anchor = _binary(raw[0])
            elif key is _GUID_LOW:
                guid = _binary(raw[0])
            else:
                v = _text(raw)
                cache = shared[key]
                if cache is not None:
                    one = cache.get(v)
                    if one is None:
                        if len(cache) >= SHARED_VALUES:
                            shared[key] = None  # names, addresses: hardly ever repeated
                        else:
                            cache[v] = v
                    else:
                        v = one
                values[positions[key]] = v
        av = AdValues(positions, tuple(values))
        kind = _kind(av.get("objectClass", ()))
        holds = av.get("mail", ()) or av.get("proxyAddresses", ())
        if kind == "other" and not holds:
            return  # OUs, containers, computers without addresses: no rule reads them
        i = len(self.entries)
        self.entries.append(AdEntry(dn, av, kind, _system(dn, av), anchor))
        if kind == "user" and anchor is not None:
            self.by_anchor.setdefault(anchor, []).append(i)
        if kind == "user" and guid is not None:
            self.guids.setdefault(guid, i)
        seen: set[str] = set()
        for attr in ("mail", "proxyAddresses"):
            for v in av.get(attr, ()):
                k = address_key(attr, v)
                if k is None or k in seen:
                    continue
                seen.add(k)
                held = self.addresses.get(k)
                if held is None:
                    self.addresses[k] = i
                elif isinstance(held, int):
                    self.addresses[k] = [held, i]
                else:
                    held.append(i)


def _binary(v: AdValue) -> str:
    """base64 of a binary value (a reader that gave text for one gets its UTF-8 bytes)."""
    return anchor_of(v if isinstance(v, bytes) else v.encode("utf-8"))


def build(
    entries: AdEntries,
    records: Sequence[CloudMailbox | Record],
    profile: Profile,
    info: TenantInfo,
) -> Snapshot:
    """Read AD, join every cloud record to it by anchor and plan the first cycle."""
    reader = _AdReader(profile)
    for dn, attrs in entries:
        reader.add(dn, attrs)
    writable: list[str] = []
    for ou in info.writable_ous:
        try:
            writable.append(normalize_dn(ou))
        except InvalidDN as e:
            raise UsageError(f"writeback OU {ou!r}: {e}") from None
    snap = Snapshot(
        info=info,
        profile=profile,
        ad=reader.entries,
        mailboxes=[],
        users_by_anchor=reader.by_anchor,
        guid_anchors=reader.guids,
        addresses=reader.addresses,
        joined_by={},
        _records=records,
        _writable=tuple(writable),
    )
    for i in range(len(records)):
        snap.mailboxes.append(_join(snap, i))
    return snap


def _join(snap: Snapshot, i: int) -> Mailbox:
    rec = snap.record(i)
    anchor = rec.get("onPremisesImmutableId") or None
    mbx = Mailbox(
        index=i,
        id=str(rec.get("id") or ""),
        label=str(rec.get("UserPrincipalName") or rec.get("id") or f"record {i + 1}"),
        anchor=anchor,
        dir_synced=bool(rec.get("IsDirSynced")),
        managed=bool(rec.get("IsExchangeCloudManaged")),
    )
    if not mbx.dir_synced or anchor is None:
        return mbx
    holders = snap.users_by_anchor.get(anchor, ())
    for h in holders:
        snap.joined_by.setdefault(h, []).append(i)
    if len(holders) != 1:
        return mbx  # none: no match; two: the engine refuses to guess
    mbx.ad = holders[0]
    try:
        mbx.changes = plan(snap.ad[mbx.ad].values, snap.profile.desired(rec))
    except (MappingError, ValueError) as e:
        mbx.error = str(e)
    return mbx


# --- sources ---------------------------------------------------------------------------------


def _writable(
    override: Sequence[str], manifest: Mapping[str, Any], base_dn: str
) -> tuple[tuple[str, ...], str]:
    if override:
        return tuple(override), "option"
    listed = manifest.get("writeback_ous")
    if isinstance(listed, list) and listed and all(isinstance(o, str) for o in listed):
        return tuple(listed), MANIFEST_NAME
    return (DEFAULT_WRITABLE_OU.format(base_dn=base_dn),), "default"


def _pseudonymised(manifest: Mapping[str, Any]) -> bool:
    """Whether the folder holds a pseudonymised import (its domains are `*.example`).

    The manifest's own flag (`importer.pseudonymised`, written by `exwb import`) comes first;
    the domains are the fallback, since pseudonymisation maps every domain to a `.example`
    name (RFC 2606's reserved TLD).
    """
    importer = manifest.get("importer")
    if isinstance(importer, dict) and isinstance(importer.get("pseudonymised"), bool):
        return importer["pseudonymised"]
    domains = manifest.get("domains")
    primary = domains.get("primary") if isinstance(domains, dict) else None
    return isinstance(primary, str) and primary.casefold().endswith(".example")


def read_manifest(folder: Path) -> dict[str, Any]:
    """The folder's tenant.json (the one reader `exwb serve --tenant` uses too)."""
    try:
        return files.read_manifest(folder)
    except files.TenantFileError as e:
        raise UsageError(str(e)) from None


def ldif_entries(path: Path) -> AdEntries:
    """The folder's directory.ldif as (dn, attributes), read by the import's LDIF reader."""
    from harness.tenant.imports.ad import read_ad

    return ((rec.dn, rec.attrs.items()) for rec in read_ad(path, "ldif"))


def from_folder(folder: Path, profile: Profile, writeback_ous: Sequence[str] = ()) -> Snapshot:
    """The tenant folder `exwb generate` or `exwb import` wrote.

    Raises UsageError for a folder that is not one, ExportError (file:line) for a malformed
    LDIF and TenantFileError (file:line) for a malformed cloud.jsonl.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise UsageError(f"{folder}: no such tenant folder")
    manifest = read_manifest(folder)
    for name in (LDIF_NAME, CLOUD_NAME):
        if not (folder / name).is_file():
            raise UsageError(f"{folder} is not a tenant folder: no {name}")
    info = _folder_info(folder, manifest, writeback_ous)
    with paused():  # millions of acyclic objects: the cyclic collector only slows the read
        records = read_cloud_jsonl(folder / CLOUD_NAME)
        return build(ldif_entries(folder / LDIF_NAME), records, profile, info)


def _folder_info(
    folder: Path, manifest: Mapping[str, Any], writeback_ous: Sequence[str]
) -> TenantInfo:
    base_dn = manifest["base_dn"]
    ous, where = _writable(writeback_ous, manifest, base_dn)
    return TenantInfo(
        source=str(folder),
        base_dn=base_dn,
        imported=manifest.get("source") == "import",
        pseudonymised=_pseudonymised(manifest),
        writable_ous=ous,
        writable_from=where,
    )


def from_import(
    entries: AdEntries,
    mailboxes: Sequence[CloudMailbox],
    profile: Profile,
    folder: Path,
    head: Mapping[str, Any],
) -> Snapshot:
    """The snapshot of the folder `exwb import` is about to write (see `TenantSink`): its
    directory.ldif entries in file order, its mailboxes, and the part of tenant.json known
    before writing. `from_folder` of that folder gives the same snapshot."""
    info = _folder_info(folder, head, ())
    with paused():
        return build(entries, mailboxes, profile, info)


def _live_entries(
    url: str, bind_dn: str, password: str, base_dn: str, profile: Profile
) -> AdEntries:
    """Every object under `base_dn` over LDAP (paged), binary attributes as bytes."""
    from harness.engine.ldapwire import LdapConnection, present

    names = list(dict.fromkeys([*RULE_ATTRIBUTES, *profile.targets]))
    names += [ANCHOR_ATTRIBUTE, GUID_ATTRIBUTE]
    try:
        conn = LdapConnection(url)
    except ValueError as e:  # not an ldap:// URL: the user's setting, said as the engine says it
        raise LdapError(SERVER_DOWN, str(e)) from None
    with conn:
        conn.bind(bind_dn, password)
        for dn, attrs in conn.search(base_dn, "sub", present("objectClass"), names):
            out: dict[str, Sequence[AdValue]] = {}
            for name, raw in attrs.items():
                t = DEFAULT_SCHEMA.get(name)
                binary = t is not None and t.syntax is Syntax.OCTETS
                out[name] = raw if binary else [v.decode("utf-8", "replace") for v in raw]
            yield dn, out.items()


def from_live(
    cloud: Any, ldap: Any, profile: Profile, writeback_ous: Sequence[str] = ()
) -> Snapshot:
    """A running directory (as the writeback account) and Graph (as the engine's read-only app).

    `cloud` and `ldap` are the engine's `CloudCredentials` and `LdapCredentials`. The cloud is
    read as one full delta round, the records the engine itself maps.
    """
    from harness.engine.source import GraphSource

    records: list[Record] = []
    with GraphSource(cloud) as source:
        for page in source.pages(None):
            records.extend(page.records)
    ous, where = _writable(writeback_ous, {}, ldap.base_dn)
    info = TenantInfo(
        source=ldap.url,
        base_dn=ldap.base_dn,
        imported=False,
        pseudonymised=False,
        writable_ous=ous,
        writable_from=where,
    )
    entries = _live_entries(ldap.url, ldap.bind_dn, ldap.password, ldap.base_dn, profile)
    with paused():
        return build(entries, records, profile, info)
