"""Turning an administrator's exports into a tenant folder `exwb serve --tenant` can serve.

`import_tenant` reads the files (AD, Exchange Online, optionally Graph), `build_tenant` does the
rest from records: pseudonymise record by record, keep what the fake AD can hold (the domain
root, OUs and containers, users, contacts and groups, attributes of its schema), join the cloud
recipients to their AD users (`join.py`), and write `directory.ldif`, `cloud.jsonl`,
`tenant.json` and the import report into a staging folder beside `out`, renamed into place only
once complete. AD objects are spooled to disk as they are read, so only the joins' small
references stay in memory.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import pickle
import shutil
import tempfile
import warnings as pywarnings
from collections import Counter
from collections.abc import Generator, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Protocol, TypeVar

from harness import __version__
from harness.core.adschema import (
    BACK_LINKS,
    DEFAULT_SCHEMA,
    AttributeType,
    InvalidValue,
    Syntax,
    default_category,
)
from harness.core.dn import (
    InvalidDN,
    escape_rdn_value,
    normalize_dn,
    normalize_rdns,
    parse_dn,
    split_rdn,
)
from harness.core.gcpause import paused
from harness.core.prefetch import Job, Prefetch, worth_a_child
from harness.tenant.files import (
    CLOUD_NAME,
    FORMAT,
    LDIF_NAME,
    MANIFEST_NAME,
    TenantFileError,
    WrittenFile,
    write_atomic,
)
from harness.tenant.imports.join import JoinResult, MailboxRef, UserRef, join
from harness.tenant.imports.records import (
    AdRecord,
    AdValue,
    ExportError,
    GraphUserRecord,
    MailboxRecord,
    Origin,
)
from harness.tenant.imports.report import (
    LISTED,
    REPORT_JSON,
    REPORT_MD,
    listing,
    report_markdown,
)
from harness.tenant.ldif import entry_text
from harness.tenant.model import (
    CUSTOM_ATTRIBUTE_COUNT,
    EXTENSION_CUSTOM_ATTRIBUTE_COUNT,
    USER_OBJECT_CLASSES,
    CloudMailbox,
    anchor_of,
    primary_smtp,
)

SOURCE = "import"
KINDS = ("ad", "exo", "graph")
CSV_FORMATS = frozenset({"csvde", "adcsv"})  # AD_FORMATS that are CSV
CONTAINER_KINDS = ("domain", "organizationalUnit", "container")
LEAF_KINDS = ("user", "contact", "group")
# Attributes the directory derives from the entry itself, and back links (memberOf,
# directReports), which it makes from the groups' member and the users' manager: not written.
DERIVED = frozenset(
    {"distinguishedName", "name", "createTimeStamp", "modifyTimeStamp", *BACK_LINKS}
)
# IdFix's well-known system objects (Microsoft facts §8.4): kept out of the joins.
_SYSTEM_PREFIXES = ("systemmailbox", "discoverysearchmailbox", "federatedemail")
_SYSTEM_RECIPIENTS = frozenset(
    {
        "discoverymailbox",
        "arbitrationmailbox",
        "auditlogmailbox",
        "auxauditlogmailbox",
        "monitoringmailbox",
        "supervisoryreviewpolicymailbox",
        "systemmailbox",
    }
)
# Where Windows PowerShell 5.1's Export-Csv (ASCII) leaves '?' for a non-ASCII letter.
_AD_NAME_ATTRIBUTES = (
    "cn",
    "displayname",
    "givenname",
    "sn",
    "mail",
    "userprincipalname",
    "proxyaddresses",
    "mailnickname",
)
_MAILBOX_NAME_PROPS = (
    "DisplayName",
    "Alias",
    "UserPrincipalName",
    "PrimarySmtpAddress",
    "WindowsEmailAddress",
    "EmailAddresses",
)


class RecordMapper(Protocol):
    """What `build_tenant` needs of a pseudonymiser (`pseudonym.Pseudonymiser`)."""

    def ad(self, rec: AdRecord) -> AdRecord: ...
    def mailbox(self, rec: MailboxRecord) -> MailboxRecord: ...
    def graph_user(self, rec: GraphUserRecord) -> GraphUserRecord: ...
    def domain(self, name: str) -> str: ...
    def dn(self, value: str) -> str: ...
    def summary(self) -> dict[str, Any]: ...


@dataclass(frozen=True, slots=True)
class InputFile:
    """One export read, for the report: which side, which file, how it was read."""

    kind: str  # "ad", "exo" or "graph"
    path: str
    format: str
    encoding: str


@dataclass(slots=True)
class ImportResult:
    out: Path
    manifest: dict[str, Any]
    report: dict[str, Any]
    written: dict[str, WrittenFile]


Entry = tuple[str, Sequence[tuple[str, tuple[AdValue, ...]]]]  # (dn, (name, values) pairs)


class TenantSink(Protocol):
    """Is given the tenant just before the import writes it (`exwb import --preflight` checks
    it without reading the folder back): `entries`, each directory.ldif entry in file order
    (an iterator reading a file of its own, so it may be consumed in another process, and
    must be consumed or closed), the mailboxes of cloud.jsonl, and `head`, the part of
    tenant.json known before the files are written. The sink must not change them."""

    def tenant(
        self, entries: Generator[Entry], mailboxes: Sequence[CloudMailbox], head: Mapping[str, Any]
    ) -> None: ...


class _Where:
    """How the report names a record's origin. Pseudonymised, an input is named by its side
    (`ad-1`, `exo`, `graph`): a path like /home/jdoe/contoso-users.ldif would give the real
    tenant away in a folder meant for a CI repository."""

    def __init__(self, inputs: Sequence[InputFile], hide: bool) -> None:
        self.labels: dict[str, str] = {}
        if hide:
            ads = [i for i in inputs if i.kind == "ad"]
            for n, i in enumerate(inputs, 1):
                several = i.kind == "ad" and len(ads) > 1
                self.labels[i.path] = f"ad-{n}" if several else i.kind
        self.hide = hide

    def path(self, path: str) -> str:
        if not self.hide:
            return path
        return self.labels.get(path) or Path(path).name

    def __call__(self, origin: Origin) -> str:
        label = self.path(origin.path)
        return f"{label}:{origin.line}" if origin.line else label


# ---------------------------------------------------------------------------- the folder
@contextlib.contextmanager
def staged_folder(out: Path) -> Iterator[Path]:
    """A staging folder beside `out`, renamed to `out` when the block succeeds and removed when
    it fails: `out` either gets every file or stays as it was. `out` must not exist or be empty."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ExportError(
            str(out),
            "the output folder exists and is not empty",
            "choose a new --out folder or empty this one",
        )
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        stage = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent))
    except OSError as e:
        raise ExportError(str(out), f"cannot create the output folder: {e.strerror}") from None
    try:
        yield stage
        if out.exists():
            out.rmdir()  # empty, checked above
        os.replace(stage, out)
        _fsync_dir(out.parent)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):  # not every filesystem lets a directory be fsynced
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


# ---------------------------------------------------------------------------- value helpers
def _get(attrs: Mapping[str, list[AdValue]], name: str) -> list[AdValue]:
    """An AD attribute's values whatever case the file spelled its name in."""
    values = attrs.get(name)
    if values is not None:
        return values
    low = name.casefold()
    for key, vs in attrs.items():
        if key.casefold() == low:
            return vs
    return []


def _text1(attrs: Mapping[str, list[AdValue]], name: str) -> str | None:
    for v in _get(attrs, name):
        if isinstance(v, str):
            return v
    return None


def _bytes1(attrs: Mapping[str, list[AdValue]], name: str) -> bytes | None:
    for v in _get(attrs, name):
        if isinstance(v, bytes):
            return v
    return None


def _text(value: Any) -> str | None:
    """A Get-Mailbox property as text; None when absent or empty."""
    if value.__class__ is str:
        return value or None
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, list):
        return _text(value[0]) if value else None
    s = str(value)
    return s if s else None


def _flag(value: Any) -> bool | None:
    """A Get-Mailbox boolean, as JSON (true) or as Export-Csv writes it ("True")."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        low = value.strip().lower()
        if low in ("true", "false"):
            return low == "true"
    return None


def _strings(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, list):
        return tuple(str(v) for v in value if v is not None and str(v) != "")
    s = str(value)
    return (s,) if s else ()


def _fold(s: str | None) -> str | None:
    return s.casefold() if s else None


# ---------------------------------------------------------------------------- AD side
@dataclass(slots=True)
class _Container:
    dn: str
    ndn: str
    kind: str
    attrs: list[tuple[str, tuple[AdValue, ...]]]
    depth: int
    seq: int
    origin: Origin | None  # None: created because a kept object needed it
    domain: str


@dataclass(slots=True)
class _Tally:
    """Count per key with the first example (object DN or file:line)."""

    counts: Counter[str] = field(default_factory=Counter)
    examples: dict[str, str] = field(default_factory=dict)
    details: dict[str, str] = field(default_factory=dict)

    def add(self, key: str, example: str, detail: str = "") -> None:
        self.counts[key] += 1
        self.examples.setdefault(key, example)
        if detail:
            self.details.setdefault(key, detail)

    def rows(self) -> list[dict[str, Any]]:
        return [
            {
                "name": k,
                "count": n,
                "example": self.examples[k],
                **({"why": self.details[k]} if k in self.details else {}),
            }
            for k, n in sorted(self.counts.items(), key=lambda kv: (-kv[1], kv[0]))
        ]


def _domain_of(rdns: list[tuple[tuple[str, str], ...]]) -> str:
    """The DNS name of a DN's trailing DC= components ('' when it has none)."""
    labels: list[str] = []
    for r in reversed(rdns):
        if len(r) != 1 or r[0][0].lower() != "dc":
            break
        labels.append(r[0][1])
    return ".".join(reversed(labels)).lower()


def _base_dn(domain: str) -> str:
    return ",".join(f"DC={part}" for part in domain.split("."))


def _is_system_user(rec: AdRecord) -> bool:
    """IdFix's exclusions: krbtgt, Exchange's system mailboxes, `$` accounts, CNF conflicts,
    isCriticalSystemObject (Microsoft facts §8.4)."""
    head = split_rdn(rec.dn)[0]
    names = [
        head.partition("=")[2],
        *(_text1(rec.attrs, n) or "" for n in ("cn", "sAMAccountName")),
    ]
    for name in names:
        low = name.casefold()
        if low == "krbtgt" or low.startswith(_SYSTEM_PREFIXES) or low.endswith("$"):
            return True
        if "\ncnf:" in low or "\\0acnf:" in low:
            return True
    critical = _text1(rec.attrs, "isCriticalSystemObject")
    return critical is not None and critical.upper() == "TRUE"


def _kind(rec: AdRecord) -> tuple[str | None, str]:
    """(kind kept, or None, and why it is left out)."""
    classes = {v.casefold() for v in _get(rec.attrs, "objectClass") if isinstance(v, str)}
    if not classes:
        # Get-ADUser exports may lack objectClass: a sign-in name means a user.
        if _text1(rec.attrs, "userPrincipalName") or _text1(rec.attrs, "sAMAccountName"):
            return "user", ""
        return None, "no objectClass"
    if "computer" in classes:
        return None, "computer"
    if "user" in classes or "inetorgperson" in classes:
        return "user", ""
    for cls, kind in (
        ("contact", "contact"),
        ("group", "group"),
        ("organizationalunit", "organizationalUnit"),
        ("container", "container"),
        ("domaindns", "domain"),
        ("domain", "domain"),
    ):
        if cls in classes:
            return kind, ""
    last = [v for v in _get(rec.attrs, "objectClass") if isinstance(v, str)][-1]
    return None, f"objectClass {last}"


_PICKLE = pickle.HIGHEST_PROTOCOL

_DEFAULT_CLASSES: dict[str, tuple[str, ...]] = {
    "user": USER_OBJECT_CLASSES,
    "contact": ("top", "person", "organizationalPerson", "contact"),
    "group": ("top", "group"),
    "organizationalUnit": ("top", "organizationalUnit"),
    "container": ("top", "container"),
    "domain": ("top", "domain", "domainDNS"),
}


def _child_ndn(head: str, parent_ndn: str) -> str:
    """normalize_dn of `head` below `parent_ndn`: only the first RDN is parsed (the parents
    repeat and are cached), and a plain one needs no parser at all (4x faster at 200k)."""
    if "\\" in head or "+" in head or '"' in head:
        first = normalize_rdns(parse_dn(head))
    else:
        attr, sep, value = head.partition("=")
        if not sep or not attr.strip():
            raise InvalidDN(f"missing '=' in {head!r}")
        first = f"{attr.strip().lower()}={escape_rdn_value(value.strip().casefold())}"
    return f"{first},{parent_ndn}" if parent_ndn else first


_UNSEEN: Any = object()
_NAMING = {"cn": "cn", "ou": "ou", "dc": "dc"}
_TEXT = (Syntax.STRING, Syntax.OID)
_PLAIN = (Syntax.STRING, Syntax.OID, Syntax.TIME)


def _accepted(t: AttributeType, v: AdValue) -> tuple[AdValue, str]:
    """The value as the fake stores it and '', or why AD's schema would refuse it."""
    if t.syntax is Syntax.OCTETS:
        if not isinstance(v, bytes):
            return v, "text where AD holds binary"
        too_long = t.range_upper is not None and len(v) > t.range_upper
    else:
        if isinstance(v, bytes):
            try:
                v = v.decode("utf-8")
            except UnicodeDecodeError:
                return v, "binary where AD holds text"
        if t.syntax not in _TEXT:  # strings need no parsing: integers, booleans, DNs do
            try:
                t.key(v.encode("utf-8"))
            except InvalidValue as e:
                return v, str(e)
        too_long = t.range_upper is not None and len(v) > t.range_upper
    return (v, f"longer than rangeUpper {t.range_upper}") if too_long else (v, "")


class _Directory:
    """The AD side as it streams in: containers in memory, other objects spooled to disk."""

    def __init__(
        self, spool: Path, mapper: RecordMapper | None, where: _Where, ascii_csv: bool = True
    ) -> None:
        self.mapper = mapper
        self.where = where
        # Only CSV exports can have been written as ASCII (Export-Csv in Windows PowerShell
        # 5.1); LDIF encodes non-ASCII values, so its names are not checked for '?'.
        self.ascii_csv = ascii_csv
        self.spool_path = spool
        self._spool = spool.open("wb")
        self.seq = 0
        self.read = 0
        self.containers: dict[str, _Container] = {}
        self.leaves: set[str] = set()  # ndn of every spooled object
        self.parents: dict[str, str] = {}  # parent ndn -> its DN as first written
        self.domains: Counter[str] = Counter()
        self.users: list[UserRef] = []
        self.user_domain: list[str] = []
        self.user_system: list[bool] = []
        self.kept: Counter[str] = Counter()
        self.left_out = _Tally()
        self.unknown = _Tally()
        self.refused = _Tally()
        self.duplicates: list[dict[str, str]] = []
        self.question_marks = _Tally()
        self.assumed_users = 0
        self._domain_cache: dict[str, str] = {}
        self._types: dict[str, AttributeType | None] = {}

    def add(self, raw: AdRecord) -> None:
        self.read += 1
        kind, why = _kind(raw)
        if kind is None:
            self.left_out.add(why, self.where(raw.origin))
            return
        system = kind == "user" and _is_system_user(raw)
        if not system and self.ascii_csv:
            self._check_question_marks(raw)
        rec = self.mapper.ad(raw) if self.mapper is not None else raw
        dn = rec.dn
        try:
            head, parent = split_rdn(dn)
            domain = self._domain_cache.get(parent)
            if domain is None:
                domain = _domain_of(parse_dn(parent)) if parent else ""
                self._domain_cache[parent] = domain
            parent_ndn = normalize_dn(parent) if parent else ""
            ndn = _child_ndn(head, parent_ndn)
            if kind == "domain":
                rdns = parse_dn(dn)
                if _domain_of(rdns) != ".".join(r[0][1] for r in rdns).lower():
                    kind = "container"  # a domain object below a non-DC RDN: hold it as one
                else:
                    domain = _domain_of(rdns)
        except InvalidDN as e:
            raise ExportError(rec.origin, f"invalid DN {dn!r}: {e}") from None
        if not domain:
            self.left_out.add("outside any domain (no DC= suffix)", dn)
            return
        if ndn in self.leaves or ndn in self.containers:
            self.duplicates.append({"dn": dn, "origin": self.where(rec.origin)})
            return
        self.domains[domain] += 1
        if parent_ndn:
            self.parents.setdefault(parent_ndn, parent)
        attrs = self._attributes(rec, kind, domain, head)
        self.seq += 1
        if kind in CONTAINER_KINDS:
            self.containers[ndn] = _Container(
                dn, ndn, kind, attrs, len(parse_dn(dn)), self.seq, rec.origin, domain
            )
            return
        self.leaves.add(ndn)
        user = -1
        if kind == "user":
            user = len(self.users)
            self.users.append(self._user_ref(rec, dn))
            self.user_domain.append(domain)
            self.user_system.append(system)
        # One pickle per object: a shared Pickler's memo would grow with every object read.
        pickle.dump((kind, dn, parent_ndn, domain, user, attrs), self._spool, _PICKLE)

    def _user_ref(self, rec: AdRecord, dn: str) -> UserRef:
        cg = _bytes1(rec.attrs, "mS-DS-ConsistencyGuid")
        og = _bytes1(rec.attrs, "objectGUID")
        proxies = tuple(v for v in _get(rec.attrs, "proxyAddresses") if isinstance(v, str))
        smtp = primary_smtp(proxies) or _text1(rec.attrs, "mail")
        return UserRef(
            dn=dn,
            origin=rec.origin,
            anchor=anchor_of(cg) if cg else anchor_of(og) if og else None,
            anchor_from_object_guid=cg is None and og is not None,
            upn=_fold(_text1(rec.attrs, "userPrincipalName")),
            smtp=_fold(smtp),
        )

    def _check_question_marks(self, rec: AdRecord) -> None:
        # Examples name file:line and the attribute only: the value may be a real name.
        for name, values in rec.attrs.items():
            if name.casefold() in _AD_NAME_ATTRIBUTES:
                for v in values:
                    if isinstance(v, str) and "?" in v:
                        self.question_marks.add(name, f"{self.where(rec.origin)} ({name})")

    def _attributes(
        self, rec: AdRecord, kind: str, domain: str, head: str
    ) -> list[tuple[str, tuple[AdValue, ...]]]:
        """The attributes the fake's schema knows, with values it accepts, canonical names."""
        out: dict[str, tuple[AdValue, ...]] = {}
        types = self._types
        for name, values in rec.attrs.items():
            t = types.get(name, _UNSEEN)
            if t is _UNSEEN:
                t = types[name] = DEFAULT_SCHEMA.get(name)
            if t is None:
                self.unknown.add(name, rec.dn)
                continue
            canon = t.name
            if canon in DERIVED:
                continue
            syntax, limit = t.syntax, t.range_upper
            if (
                canon not in out
                and (syntax in _PLAIN or syntax is Syntax.OCTETS)
                and (len(values) == 1 or not t.single)
            ):
                # The common case, without a call per value: text (or, for binary attributes,
                # bytes) that fits; strings, names and times need no parsing to be accepted.
                want = bytes if syntax is Syntax.OCTETS else str
                if all(v.__class__ is want and (limit is None or len(v) <= limit) for v in values):
                    out[canon] = tuple(values)
                    continue
            kept = list(out.get(canon, ()))
            for v in values:
                value, why = _accepted(t, v)
                if why:
                    self.refused.add(canon, rec.dn, why)
                else:
                    kept.append(value)
            if t.single and len(kept) > 1:
                why = "several values for a single-valued attribute (the first is kept)"
                self.refused.add(canon, rec.dn, why)
                del kept[1:]
            if kept:
                out[canon] = tuple(kept)
        classes = out.get("objectClass", ())
        if not any(isinstance(c, str) and c.casefold() in ("top", "person") for c in classes):
            # A CSV export names the most specific class only; AD's entry holds the chain.
            if kind == "user" and not classes:
                self.assumed_users += 1
            chain = list(_DEFAULT_CLASSES[kind])
            low = {c.casefold() for c in chain}
            extra = [c for c in classes if isinstance(c, str) and c.casefold() not in low]
            out["objectClass"] = (*chain, *extra)
        if kind in ("user", "contact", "group") and "objectCategory" not in out:
            cls = "user" if kind == "user" else kind
            category = f"CN={default_category(cls)},CN=Schema,CN=Configuration,{_base_dn(domain)}"
            out["objectCategory"] = (category,)
        # AD's naming attribute holds the RDN's value: keep them equal (a pseudonymiser that
        # keeps a well-known RDN such as OU=Users may still map the `ou` value).
        # An escaped value keeps its spaces (`CN=\\ Judith` is " Judith"); only unescaped
        # spacing around the `=` is not part of it.
        if "\\" in head or "+" in head:
            naming, value = parse_dn(head)[0][0]
        else:
            naming, _, value = head.partition("=")
            value = value.strip()
        naming_attribute = _NAMING.get(naming.strip().lower())
        if naming_attribute is not None:
            out[naming_attribute] = (value,)
        self.kept[kind] += 1
        return list(out.items())

    def close(self) -> None:
        self._spool.close()

    def spooled(
        self, handle: BinaryIO | None = None
    ) -> Iterator[tuple[str, str, str, str, int, list[Any]]]:
        with handle or self.spool_path.open("rb") as f:
            while True:
                try:
                    yield pickle.load(f)
                except EOFError:
                    return


# ---------------------------------------------------------------------------- cloud side
@dataclass(slots=True)
class _GraphRef:
    origin: Origin
    has_anchor_field: bool
    immutable_id: str | None
    sync_enabled: bool | None


def _is_system_mailbox(props: Mapping[str, Any]) -> bool:
    kind = (_text(props.get("RecipientTypeDetails")) or "").casefold()
    if kind in _SYSTEM_RECIPIENTS:
        return True
    for key in ("Name", "Alias", "DisplayName"):
        name = (_text(props.get(key)) or "").casefold()
        if name.startswith(_SYSTEM_PREFIXES):
            return True
    return False


def _mailbox(props: Mapping[str, Any], mailbox_id: str) -> CloudMailbox:
    """A CloudMailbox from Get-Mailbox's properties (immutable id and sync state set later)."""
    addresses = _strings(props.get("EmailAddresses"))
    primary = _text(props.get("PrimarySmtpAddress")) or primary_smtp(addresses) or ""
    return CloudMailbox(
        id=mailbox_id,
        user_principal_name=_text(props.get("UserPrincipalName")) or primary,
        display_name=_text(props.get("DisplayName")) or _text(props.get("Name")) or "",
        alias=_text(props.get("Alias")) or "",
        immutable_id=None,
        is_dir_synced=False,
        is_exchange_cloud_managed=bool(_flag(props.get("IsExchangeCloudManaged"))),
        recipient_type_details=_text(props.get("RecipientTypeDetails")) or "UserMailbox",
        email_addresses=addresses,
        windows_email_address=_text(props.get("WindowsEmailAddress")) or primary,
        legacy_exchange_dn=_text(props.get("LegacyExchangeDN")) or "",
        hidden_from_address_lists=bool(_flag(props.get("HiddenFromAddressListsEnabled"))),
        custom_attributes=tuple(
            _text(props.get(f"CustomAttribute{i}")) for i in range(1, CUSTOM_ATTRIBUTE_COUNT + 1)
        ),
        extension_custom_attributes=tuple(
            _strings(props.get(f"ExtensionCustomAttribute{i}"))
            for i in range(1, EXTENSION_CUSTOM_ATTRIBUTE_COUNT + 1)
        ),
    )


class _Cloud:
    def __init__(self, mapper: RecordMapper | None, where: _Where) -> None:
        self.mapper = mapper
        self.where = where
        self.graph: dict[str, _GraphRef] = {}
        self.graph_read = 0
        self.graph_with_anchor_field = 0
        self.mailboxes: list[CloudMailbox] = []
        self.refs: list[MailboxRef] = []
        self.joinable: list[int] = []  # mailbox index of each ref
        self.read = 0
        self.system = 0
        self.skipped: list[dict[str, str]] = []
        self.question_marks = _Tally()
        self.ids: set[str] = set()

    def add_graph(self, raw: GraphUserRecord) -> None:
        self.graph_read += 1
        rec = self.mapper.graph_user(raw) if self.mapper is not None else raw
        gid = _text(rec.props.get("id"))
        if gid is None:
            self.skipped.append({"origin": self.where(rec.origin), "why": "Graph user without id"})
            return
        if gid in self.graph:
            self.skipped.append(
                {"origin": self.where(rec.origin), "why": f"Graph user {gid} twice"}
            )
            return
        has = "onPremisesImmutableId" in rec.props
        self.graph_with_anchor_field += has
        sync = rec.props.get("onPremisesSyncEnabled")
        self.graph[gid] = _GraphRef(
            rec.origin,
            has,
            _text(rec.props.get("onPremisesImmutableId")),
            sync if isinstance(sync, bool) else None,
        )

    def add_mailbox(self, raw: MailboxRecord) -> None:
        self.read += 1
        system = _is_system_mailbox(raw.props)
        if not system:
            for key in _MAILBOX_NAME_PROPS:
                for v in _strings(raw.props.get(key)):
                    if "?" in v:
                        self.question_marks.add(key, f"{self.where(raw.origin)} ({key})")
        rec = self.mapper.mailbox(raw) if self.mapper is not None else raw
        props = rec.props
        mailbox_id = _text(props.get("ExternalDirectoryObjectId"))
        if mailbox_id is None:
            name = _text(props.get("UserPrincipalName")) or _text(props.get("Alias")) or "?"
            self.skipped.append(
                {
                    "origin": self.where(rec.origin),
                    "why": f"{name}: no ExternalDirectoryObjectId (not in Entra ID: left out)",
                }
            )
            return
        if mailbox_id in self.ids:
            self.skipped.append(
                {
                    "origin": self.where(rec.origin),
                    "why": f"ExternalDirectoryObjectId "
                    f"{mailbox_id} appears twice (the first is kept)",
                }
            )
            return
        self.ids.add(mailbox_id)
        mbx = _mailbox(props, mailbox_id)
        synced = _flag(props.get("IsDirSynced"))
        g = self.graph.get(mailbox_id)
        if synced is None and g is not None:
            synced = g.sync_enabled
        mbx.is_dir_synced = bool(synced)
        index = len(self.mailboxes)
        self.mailboxes.append(mbx)
        if system:
            self.system += 1
            return
        self.joinable.append(index)
        self.refs.append(
            MailboxRef(
                id=mailbox_id,
                origin=rec.origin,
                synced=synced,
                in_graph=g is not None and g.has_anchor_field,
                immutable_id=g.immutable_id if g is not None else None,
                upn=_fold(_text(props.get("UserPrincipalName"))),
                smtp=_fold(mbx.primary_smtp_address or _text(props.get("PrimarySmtpAddress"))),
            )
        )


# ---------------------------------------------------------------------------- building
def build_tenant(
    ad_records: Iterable[AdRecord],
    mailboxes: Iterable[MailboxRecord],
    graph_users: Iterable[GraphUserRecord] | None,
    out: Path,
    *,
    inputs: Sequence[InputFile] = (),
    pseudonymiser: RecordMapper | None = None,
    domain: str | None = None,
    writeback_ous: Sequence[str] = (),
    warnings: list[str] | None = None,
    sink: TenantSink | None = None,
) -> ImportResult:
    """Join the records and write the tenant folder `out` atomically (see the module doc).
    `warnings` (for the report) is read once the records are consumed, so readers may add to it
    while they stream; `sink` is given the tenant before it is written."""
    with staged_folder(out) as stage, paused():
        result = _build(
            ad_records,
            mailboxes,
            graph_users,
            stage,
            inputs,
            pseudonymiser,
            domain,
            writeback_ous,
            warnings if warnings is not None else [],
            sink,
        )
    result.out = out
    result.written = {
        name: WrittenFile(out / name, w.bytes, w.sha256) for name, w in result.written.items()
    }
    return result


def _source_name(inputs: Sequence[InputFile], kind: str, default: str) -> str:
    names = [i.path for i in inputs if i.kind == kind]
    return ", ".join(names) if names else default


def _build(
    ad_records: Iterable[AdRecord],
    mailboxes: Iterable[MailboxRecord],
    graph_users: Iterable[GraphUserRecord] | None,
    stage: Path,
    inputs: Sequence[InputFile],
    mapper: RecordMapper | None,
    domain: str | None,
    writeback_ous: Sequence[str],
    warnings: list[str],
    sink: TenantSink | None,
) -> ImportResult:
    where = _Where(inputs, hide=mapper is not None)
    cloud = _Cloud(mapper, where)
    if graph_users is not None:
        for g in graph_users:
            cloud.add_graph(g)
        if cloud.graph_read and not cloud.graph_with_anchor_field:
            warnings.append(
                "the Graph export has no onPremisesImmutableId (add it to $select): "
                "joined by UPN and primary SMTP address instead"
            )
    for m in mailboxes:
        cloud.add_mailbox(m)
    if not cloud.mailboxes:
        raise ExportError(
            _source_name(inputs, "exo", "the Exchange Online export"),
            "no mailboxes in the export",
            "export them with Get-Mailbox -ResultSize Unlimited",
        )

    ad_formats = {i.format for i in inputs if i.kind == "ad"}
    ascii_csv = not ad_formats or bool(ad_formats & CSV_FORMATS)
    directory = _Directory(stage / ".ad-spool", mapper, where, ascii_csv)
    try:
        for r in ad_records:
            directory.add(r)
    finally:
        directory.close()
    chosen = _choose_domain(directory, domain, mapper, inputs)
    base_dn = _base_dn(chosen)
    joinable = [
        i
        for i, d in enumerate(directory.user_domain)
        if d == chosen and not directory.user_system[i]
    ]
    if not joinable:
        raise ExportError(
            _source_name(inputs, "ad", "the AD export"),
            f"no AD users in domain {chosen}",
            'export the users too, e.g. ldifde -f users.ldif -r "(objectClass=user)"',
        )
    users = [directory.users[i] for i in joinable]
    joined = join(users, cloud.refs)
    stamped = _apply_joins(cloud, users, joined)

    created = _create_missing(directory, chosen, base_dn)
    blocked = {p for p in directory.parents if p in directory.leaves}
    ous = _writeback_ous(directory, cloud, users, joined, writeback_ous, mapper, base_dn)

    head: dict[str, Any] = {
        "format": FORMAT,
        "source": SOURCE,
        "importer": {"exwb-harness": __version__, "pseudonymised": mapper is not None},
        "base_dn": base_dn,
        "domains": _domains(chosen, cloud.mailboxes),
        # Left out rather than empty when nothing tells which OUs: `exwb serve` then uses its
        # default, and the report says to give --writeback-ou.
        **({"writeback_ous": ous["ous"]} if ous["ous"] else {}),
    }
    written: dict[str, WrittenFile] = {}
    ldif_counts: Counter[str] = Counter()
    stamped_dns = {users[j].dn for j in stamped}
    if sink is not None:
        # Its own handle on the spool, opened before the spool is unlinked below; the counts
        # and tallies it adds to are not the report's.
        spool = directory.spool_path.open("rb")
        copy = _ldif_entries(
            directory, chosen, base_dn, blocked, stamped_dns, Counter(), _Tally(), spool
        )
        sink.tenant(copy, cloud.mailboxes, head)
    entries = _ldif_entries(
        directory, chosen, base_dn, blocked, stamped_dns, ldif_counts, directory.left_out
    )
    written[LDIF_NAME] = _write(stage / LDIF_NAME, _ldif_chunks(chosen, entries))
    directory.spool_path.unlink()
    written[CLOUD_NAME] = _write(
        stage / CLOUD_NAME,
        (
            json.dumps(m.to_json(), ensure_ascii=False, separators=(",", ":")) + "\n"
            for m in cloud.mailboxes
        ),
    )
    synced = sum(1 for m in cloud.mailboxes if m.is_dir_synced)
    managed = sum(1 for m in cloud.mailboxes if m.is_exchange_cloud_managed)
    counts = {
        "ad_users": ldif_counts["user"],
        "contacts": ldif_counts["contact"],
        "groups": ldif_counts["group"],
        "organizational_units": ldif_counts["organizationalUnit"],
        "containers": ldif_counts["container"],
        "cloud_recipients": len(cloud.mailboxes),
        "synced": synced,
        "cloud_only": len(cloud.mailboxes) - synced,
        "cloud_managed": managed,
        "joined": sum(joined.rule_counts.values()),
    }
    manifest: dict[str, Any] = {
        **head,
        "counts": counts,
        "files": {name: {"bytes": w.bytes, "sha256": w.sha256} for name, w in written.items()},
    }
    written[MANIFEST_NAME] = _write(
        stage / MANIFEST_NAME, [json.dumps(manifest, indent=2, ensure_ascii=False) + "\n"]
    )
    report = _report(
        inputs,
        directory,
        cloud,
        users,
        joined,
        chosen,
        base_dn,
        created,
        ldif_counts,
        stamped,
        ous,
        mapper,
        warnings,
        counts,
    )
    written[REPORT_JSON] = _write(
        stage / REPORT_JSON, [json.dumps(report, indent=2, ensure_ascii=False) + "\n"]
    )
    written[REPORT_MD] = _write(stage / REPORT_MD, [report_markdown(report)])
    return ImportResult(stage, manifest, report, written)


def _write(path: Path, chunks: Iterable[str]) -> WrittenFile:
    try:
        return write_atomic(path, chunks)
    except TenantFileError as e:
        raise ExportError(str(path), str(e)) from None


def _choose_domain(
    directory: _Directory,
    domain: str | None,
    mapper: RecordMapper | None,
    inputs: Sequence[InputFile],
) -> str:
    found = sorted(directory.domains)
    where = _source_name(inputs, "ad", "the AD export")
    if not found:
        raise ExportError(
            where,
            "no AD objects in a domain (no DN ends in DC=...)",
            "export the domain partition with ldifde or csvde",
        )
    if domain is not None:
        wanted = domain.strip().lower()
        for name in (wanted, mapper.domain(wanted).lower() if mapper is not None else wanted):
            if name in directory.domains:
                return name
        raise ExportError(
            "--domain",
            f"{domain} is not a domain of the AD export",
            f"the export holds {', '.join(found)}",
        )
    if len(found) > 1:
        raise ExportError(
            where,
            f"the AD export holds several domains: {', '.join(found)}",
            "choose one with --domain (one domain per tenant)",
        )
    return found[0]


def _apply_joins(cloud: _Cloud, users: list[UserRef], joined: JoinResult) -> list[int]:
    """Give each cloud recipient its anchor; the users whose anchor is their objectGUID."""
    stamped: list[int] = []
    for k, ref in enumerate(cloud.refs):
        mbx = cloud.mailboxes[cloud.joinable[k]]
        j = joined.user_of[k]
        if j is not None:
            mbx.immutable_id = ref.immutable_id or users[j].anchor
            if ref.synced is None:
                mbx.is_dir_synced = True
        elif ref.in_graph and ref.immutable_id is not None:
            mbx.immutable_id = ref.immutable_id  # what the cloud holds, though AD lacks it
        if not mbx.is_dir_synced:
            mbx.immutable_id = None
    for j, u in enumerate(users):
        if u.joined and u.anchor_from_object_guid:
            stamped.append(j)
    return stamped


def _create_missing(directory: _Directory, chosen: str, base_dn: str) -> list[str]:
    """Create the domain root and any OU or container a kept object sits in but the export
    lacks (its parents first); returns their DNs."""
    created: list[str] = []
    root_ndn = normalize_dn(base_dn)
    if root_ndn not in directory.containers:
        label = chosen.split(".", 1)[0]
        directory.containers[root_ndn] = _Container(
            base_dn,
            root_ndn,
            "domain",
            [("objectClass", _DEFAULT_CLASSES["domain"]), ("dc", (label,))],
            0,
            0,
            None,
            chosen,
        )
        created.append(base_dn)
    seq = directory.seq
    for parent_ndn, parent_dn in list(directory.parents.items()):
        chain: list[tuple[str, str]] = []
        ndn, dn = parent_ndn, parent_dn
        while ndn and ndn not in directory.containers and ndn not in directory.leaves:
            if not ndn.endswith("," + root_ndn):
                break  # another domain's object: left out when written
            chain.append((ndn, dn))
            dn = split_rdn(dn)[1]
            ndn = normalize_dn(dn) if dn else ""
        for ndn, dn in reversed(chain):
            (attr, value), *_ = parse_dn(split_rdn(dn)[0])[0]
            kind = "organizationalUnit" if attr.lower() == "ou" else "container"
            naming = "ou" if kind == "organizationalUnit" else "cn"
            seq += 1
            directory.containers[ndn] = _Container(
                dn,
                ndn,
                kind,
                [("objectClass", _DEFAULT_CLASSES[kind]), (naming, (value,))],
                len(parse_dn(dn)),
                seq,
                None,
                chosen,
            )
            created.append(dn)
    return created


def _ldif_chunks(chosen: str, entries: Iterable[Entry]) -> Iterator[str]:
    """directory.ldif: its header, then each entry (`_ldif_entries`)."""
    yield f"# exwb-harness imported tenant: domain {chosen}\nversion: 1\n\n"
    for dn, attrs in entries:
        yield entry_text(dn, attrs)


def _ldif_entries(
    directory: _Directory,
    chosen: str,
    base_dn: str,
    blocked: set[str],
    stamped: set[str],
    counts: Counter[str],
    left_out: _Tally,
    spool: BinaryIO | None = None,
) -> Generator[Entry]:
    """The entries of directory.ldif in file order: the root, containers parents first, then
    the other objects as read; `spool`: read the spool from this handle."""
    root_ndn = normalize_dn(base_dn)
    kept = sorted(
        (
            c
            for c in directory.containers.values()
            if c.domain == chosen and (c.ndn == root_ndn or c.ndn.endswith("," + root_ndn))
        ),
        key=lambda c: (c.ndn != root_ndn, c.depth, c.seq),
    )
    written = set()
    for c in kept:
        parent = split_rdn(c.dn)[1]
        if c.ndn != root_ndn and normalize_dn(parent) not in written:
            left_out.add("inside an object the fake cannot hold", c.dn)
            continue
        written.add(c.ndn)
        counts[c.kind] += 1
        yield c.dn, c.attrs
    for kind, dn, parent_ndn, domain, user, attrs in directory.spooled(spool):
        if domain != chosen:
            left_out.add(f"in another domain ({domain})", dn)
            continue
        if parent_ndn in blocked or parent_ndn not in written:
            left_out.add("inside an object the fake cannot hold", dn)
            continue
        if user >= 0 and dn in stamped:
            held = dict(attrs)
            guid = held.get("objectGUID")
            if guid and "mS-DS-ConsistencyGuid" not in held:
                attrs = [*attrs, ("mS-DS-ConsistencyGuid", guid)]
        counts[kind] += 1
        yield dn, attrs


def _writeback_ous(
    directory: _Directory,
    cloud: _Cloud,
    users: list[UserRef],
    joined: JoinResult,
    given: Sequence[str],
    mapper: RecordMapper | None,
    base_dn: str,
) -> dict[str, Any]:
    """The OUs the writeback account may write: the given ones (mapped like every DN when
    pseudonymising) or, assumed, those directly holding the joined cloud-managed users."""
    if given:
        ous: list[str] = []
        for dn in given:
            try:
                if mapper is not None:
                    dn = mapper.dn(dn)  # the user names the real OU; the folder holds its pseudonym
                ndn = normalize_dn(dn)
            except ValueError as e:  # InvalidDN, or the pseudonymiser's "not a DN"
                raise ExportError("--writeback-ou", f"{dn!r} is not a DN: {e}") from None
            if ndn not in directory.containers:
                raise ExportError(
                    "--writeback-ou",
                    f"{dn} is not an OU or container of the AD export",
                    f"the domain is {base_dn}",
                )
            ous.append(directory.containers[ndn].dn)
        return {"source": "given", "ous": ous}
    # Cloud-managed users first (the ones the job writes); failing those, any joined user.
    for managed_only in (True, False):
        holding: dict[str, str] = {}
        for k, j in enumerate(joined.user_of):
            mbx = cloud.mailboxes[cloud.joinable[k]]
            if j is not None and (mbx.is_exchange_cloud_managed or not managed_only):
                parent = split_rdn(users[j].dn)[1]
                holding.setdefault(normalize_dn(parent), parent)
        if holding:
            basis = "cloud-managed" if managed_only else "joined"
            return {
                "source": "assumed",
                "basis": basis,
                "ous": [holding[k] for k in sorted(holding)],
            }
    return {"source": "assumed", "basis": "none", "ous": []}


def _domains(primary: str, mailboxes: Sequence[CloudMailbox]) -> dict[str, Any]:
    """The tenant's domains from the addresses it holds: the AD domain is primary."""
    seen: Counter[str] = Counter()
    for m in mailboxes:
        for a in m.email_addresses:
            prefix, sep, address = a.partition(":")
            if sep and prefix.casefold() == "smtp":
                seen[address.rpartition("@")[2].lower()] += 1
    onmicrosoft = sorted(
        (
            d
            for d in seen
            if d.endswith(".onmicrosoft.com") and not d.endswith(".mail.onmicrosoft.com")
        ),
        key=lambda d: (-seen[d], d),
    )
    routing = sorted(
        (d for d in seen if d.endswith(".mail.onmicrosoft.com")), key=lambda d: (-seen[d], d)
    )
    label = primary.split(".", 1)[0]
    name = (
        onmicrosoft[0]
        if onmicrosoft
        else routing[0].replace(".mail.", ".", 1)
        if routing
        else f"{label}.onmicrosoft.com"
    )
    return {
        "primary": primary,
        "secondary": sorted(d for d in seen if d != primary and not d.endswith(".onmicrosoft.com")),
        "onmicrosoft": name,
        "routing": routing[0]
        if routing
        else name.replace(".onmicrosoft.com", ".mail.onmicrosoft.com"),
    }


def _report(
    inputs: Sequence[InputFile],
    directory: _Directory,
    cloud: _Cloud,
    users: list[UserRef],
    joined: JoinResult,
    chosen: str,
    base_dn: str,
    created: list[str],
    ldif_counts: Counter[str],
    stamped: list[int],
    ous: dict[str, Any],
    mapper: RecordMapper | None,
    warnings: list[str],
    counts: dict[str, int],
) -> dict[str, Any]:
    """The import report's content (rendered as JSON and Markdown)."""
    where = cloud.where

    def mailbox(k: int) -> dict[str, str]:
        ref = cloud.refs[k]
        mbx = cloud.mailboxes[cloud.joinable[k]]
        return {"id": ref.id, "upn": mbx.user_principal_name, "origin": where(ref.origin)}

    def user(j: int) -> dict[str, str]:
        return {"dn": users[j].dn, "origin": where(users[j].origin)}

    for tally, what in ((directory.question_marks, "AD"), (cloud.question_marks, "mailbox")):
        n = sum(tally.counts.values())
        if n:
            first = tally.examples[min(tally.examples)]
            warnings.append(
                f"{n} {what} names or addresses contain '?', e.g. {first}: Windows "
                "PowerShell 5.1's Export-Csv writes ASCII and turns non-ASCII letters "
                "into '?' (export with -Encoding UTF8)"
            )
    if not ous["ous"]:
        warnings.append(
            "no AD user is joined to a mailbox, so no writeback OU could be assumed: "
            "give them with --writeback-ou"
        )
    if directory.assumed_users:
        warnings.append(
            f"{directory.assumed_users} AD objects without objectClass were taken as "
            "users (they have a sign-in name)"
        )
    without = [j for j, u in enumerate(users) if not u.joined]
    return {
        "format": "exwb-import-report/1",
        "inputs": [
            {"kind": i.kind, "path": where.path(i.path), "format": i.format, "encoding": i.encoding}
            for i in inputs
        ],
        "domain": chosen,
        "base_dn": base_dn,
        "counts": counts,
        "ad": {
            "read": directory.read,
            "kept": {k: ldif_counts[k] for k in (*CONTAINER_KINDS, *LEAF_KINDS)},
            "system_objects_not_joined": sum(directory.user_system),
            "left_out": directory.left_out.rows(),
            "created": created,
            "duplicate_dns": directory.duplicates,
            "unknown_attributes": directory.unknown.rows(),
            "refused_values": directory.refused.rows(),
            "stamped_consistency_guid": len(stamped),
        },
        "cloud": {
            "mailboxes_read": cloud.read,
            "kept": len(cloud.mailboxes),
            "system_mailboxes_not_joined": cloud.system,
            "skipped": cloud.skipped,
            "graph_users_read": cloud.graph_read,
            "graph_users_without_mailbox": sum(1 for g in cloud.graph if g not in cloud.ids),
        },
        "joins": {
            "rules": joined.rule_counts,
            "cloud_only": joined.cloud_only,
            "unmatched_mailboxes": listing(
                [{**mailbox(u.mailbox), "why": u.why} for u in joined.unmatched]
            ),
            "one_mailbox_several_ad_users": listing(
                [
                    {**mailbox(a.mailbox), "rule": a.rule, "ad_users": [user(j) for j in a.users]}
                    for a in joined.ambiguous
                ]
            ),
            "one_ad_user_several_mailboxes": listing(
                [
                    {**user(j), "mailboxes": [mailbox(k) for k in users[j].joined]}
                    for j in joined.shared
                ]
            ),
            "ad_users_without_mailbox": listing([user(j) for j in without[:LISTED]], len(without)),
        },
        "writeback_ous": ous,
        "pseudonymisation": mapper.summary() if mapper is not None else None,
        "warnings": warnings,
    }


# ---------------------------------------------------------------------------- from files
def import_tenant(
    ad_files: Sequence[Path],
    exo_file: Path,
    graph_file: Path | None,
    out: Path,
    *,
    pseudonymise: Path | None = None,
    formats: Mapping[str, str] | None = None,
    domain: str | None = None,
    writeback_ous: Sequence[str] = (),
    policy: Path | None = None,
    prefetch: bool | None = None,
    sink: TenantSink | None = None,
) -> ImportResult:
    """Read the exports (formats detected by content unless `formats` names them per side,
    "ad", "exo", "graph") and build the tenant folder `out`; raises ExportError on bad input.
    `prefetch`: parse the files in a second process (default: when they are large enough for
    it to pay, `prefetch.worth_a_child`); the result is the same either way. `sink` is given
    the tenant before it is written (`TenantSink`)."""
    from harness.tenant.imports.ad import AD_FORMATS, detect_ad_format, read_ad
    from harness.tenant.imports.exo import EXO_FORMATS, detect_exo_format, read_mailboxes
    from harness.tenant.imports.graph import GRAPH_FORMATS, detect_graph_format, read_graph_users
    from harness.tenant.imports.textfile import TextInput, open_text

    fmts = dict(formats or {})
    for kind, fmt in fmts.items():
        allowed = {"ad": AD_FORMATS, "exo": EXO_FORMATS, "graph": GRAPH_FORMATS}.get(kind)
        if allowed is None:
            raise ExportError("--format", f"unknown side {kind!r}", "use ad=, exo= or graph=")
        if fmt not in allowed:
            raise ExportError(
                "--format",
                f"{kind}={fmt} is not a known format",
                f"{kind} formats: {', '.join(allowed)}",
            )
    if not ad_files:
        raise ExportError("--ad", "no AD export given", "an import needs the AD side too")
    inputs: list[InputFile] = []
    for path in ad_files:
        src = open_text(path)
        fmt = fmts.get("ad") or detect_ad_format(src)
        inputs.append(InputFile("ad", str(path), fmt, src.encoding))
    cloud_sources: dict[str, TextInput] = {}
    for kind, side in (("exo", exo_file), ("graph", graph_file)):
        if side is not None:
            src = cloud_sources[kind] = open_text(side)
            inputs.append(InputFile(kind, str(side), fmts.get(kind, "detected"), src.encoding))
    mapper: RecordMapper | None = None
    if pseudonymise is not None:
        from harness.tenant.imports.pseudonym import Pseudonymiser, load_policy

        rules = load_policy(policy) if policy is not None else None
        mapper = Pseudonymiser.from_keyfile(pseudonymise, rules)

    # Formats are detected here, in this order, so a bad file is named at once as before;
    # the readers then get them by name.
    graph_fmt = None
    if graph_file is not None:
        graph_fmt = fmts.get("graph") or detect_graph_format(cloud_sources["graph"])
    exo_fmt = fmts.get("exo") or detect_exo_format(cloud_sources["exo"])
    # The readers, in the order build_tenant reads them: Graph, Exchange Online, AD.
    jobs: list[Job] = [(read_mailboxes, (exo_file, exo_fmt))]
    if graph_file is not None:
        jobs.insert(0, (read_graph_users, (graph_file, graph_fmt)))
    jobs += [(read_ad, (Path(i.path), i.format)) for i in inputs if i.kind == "ad"]
    if prefetch is None:
        prefetch = worth_a_child(Path(i.path) for i in inputs)
    heard: list[str] = []
    with contextlib.ExitStack() as stack:
        streams: list[Iterable[Any]]
        if prefetch:  # the files are parsed on the other core while this one builds
            streams = list(stack.enter_context(Prefetch(jobs)).streams())
        else:
            streams = [fn(*args) for fn, args in jobs]
        graph = streams.pop(0) if graph_file is not None else None
        mailboxes = streams.pop(0)
        return build_tenant(
            _heeding(itertools.chain.from_iterable(streams), heard),
            _heeding(mailboxes, heard),
            _heeding(graph, heard) if graph is not None else None,
            out,
            inputs=inputs,
            pseudonymiser=mapper,
            domain=domain,
            writeback_ous=writeback_ous,
            warnings=heard,
            sink=sink,
        )


R = TypeVar("R")
HEARD = 50  # distinct reader warnings kept for the report


def _heeding(records: Iterable[R], sink: list[str]) -> Iterator[R]:
    """`records`, adding what the reader warns about (`warnings.warn`) while it streams them
    to `sink`: one line per distinct message, with how often it came."""
    with pywarnings.catch_warnings(record=True) as caught:
        pywarnings.simplefilter("always")
        yield from records
    counts = Counter(
        str(w.message) for w in caught if not issubclass(w.category, DeprecationWarning)
    )
    for message, n in list(counts.items())[:HEARD]:
        sink.append(message if n == 1 else f"{message} ({n} times)")
