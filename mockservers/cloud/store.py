"""The cloud side's state: Exchange Online recipients, their indexes and an ordered change log.

Every accepted change to a recipient is one `Change` with a sequence number; Graph's delta
feed reads the log after a watermark. Not thread-safe: the HTTP server calls it from the
reactor thread only. Validation of what an admin may set lives in `exo.py` (policy); the store
applies a validated change atomically and keeps indexes and the log consistent.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from operator import itemgetter
from typing import TYPE_CHECKING, Any

from harness.tenant.model import CloudMailbox, Tenant
from mockservers.cloud.hybrid import HybridCloud

if TYPE_CHECKING:
    from mockservers.journal import Journal

# CloudMailbox field -> Exchange property name, for every field a change can touch.
EXO_PROPERTY = {
    "user_principal_name": "UserPrincipalName",
    "display_name": "DisplayName",
    "alias": "Alias",
    "is_exchange_cloud_managed": "IsExchangeCloudManaged",
    "recipient_type_details": "RecipientTypeDetails",
    "email_addresses": "EmailAddresses",
    "windows_email_address": "WindowsEmailAddress",
    "hidden_from_address_lists": "HiddenFromAddressListsEnabled",
    "custom_attributes": "CustomAttributes",  # expanded per index in Change.properties
    "extension_custom_attributes": "ExtensionCustomAttributes",
}


def address_key(address: str) -> str:
    """Uniqueness key of a proxy address: its type and address, case-insensitive.

    ``SMTP:a@b`` and ``smtp:a@b`` are the same address (primary or not)."""
    prefix, _, rest = address.partition(":")
    return f"{prefix.lower()}:{rest.lower()}"


@dataclass(frozen=True, slots=True)
class Change:
    """One accepted change: sequence number, recipient id, Exchange properties it changed."""

    seq: int
    id: str
    properties: frozenset[str]  # e.g. {"CustomAttribute1", "EmailAddresses"}; {"@deleted"}


@dataclass(slots=True)
class OrganizationConfig:
    """What Get-OrganizationConfig returns that the harness models."""

    name: str
    identity: str
    public_folders_enabled: str = "Local"  # Local | Remote | None
    exchange_attributes_cloud_managed_by_default: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "Name": self.name,
            "Identity": self.identity,
            "PublicFoldersEnabled": self.public_folders_enabled,
            "ExchangeAttributesCloudManagedByDefault": (
                self.exchange_attributes_cloud_managed_by_default
            ),
            **self.extra,
        }


class NotFound(KeyError):
    """No recipient has that identity."""


def _casefolded(value: str | None) -> tuple[str, ...]:
    return (value.casefold(),) if value else ()


# Graph user property -> the casefolded keys a recipient has in that property's sorted index
# (Graph compares strings case-insensitively). See `CloudStore.sorted_index`.
SORTED_KEYS: dict[str, Callable[[CloudMailbox], tuple[str, ...]]] = {
    "displayName": lambda m: _casefolded(m.display_name),
    "userPrincipalName": lambda m: _casefolded(m.user_principal_name),
    "mail": lambda m: _casefolded(m.windows_email_address),
    "mailNickname": lambda m: _casefolded(m.alias),
    "proxyAddresses": lambda m: tuple(dict.fromkeys(a.casefold() for a in m.email_addresses)),
    # Graph renders true for dir-synced users and null otherwise: one key, for `eq true`.
    "onPremisesSyncEnabled": lambda m: ("true",) if m.is_dir_synced else (),
}


class SortedIndex:
    """(casefolded value, id) pairs in sorted order: equality and prefix lookups by bisection.

    Serves Graph's `eq` and `startswith` on /users without a scan (a prefix is a contiguous
    range of the sorted keys), and `$orderby` (the pairs are already in that order). Kept current
    by the store on every write once built: one bisect and one list insert or delete per key
    that changed, a memmove of the list, not a re-sort."""

    __slots__ = ("entries",)

    def __init__(self, entries: Iterable[tuple[str, str]]) -> None:
        self.entries: list[tuple[str, str]] = sorted(entries)

    def add(self, key: str, id_: str) -> None:
        insort(self.entries, (key, id_))

    def remove(self, key: str, id_: str) -> None:
        i = bisect_left(self.entries, (key, id_))
        if i < len(self.entries) and self.entries[i] == (key, id_):
            del self.entries[i]

    def prefix_range(self, prefix: str) -> tuple[int, int]:
        """[start, end) of the entries whose key starts with `prefix` (casefolded)."""
        start = bisect_left(self.entries, (prefix,))
        # From `start` on, the keys with the prefix come first: bisect on "lacks the prefix".
        end = bisect_left(self.entries, True, start, key=lambda e: not e[0].startswith(prefix))
        return start, end

    def equal_range(self, key: str) -> tuple[int, int]:
        start = bisect_left(self.entries, (key,))
        return start, bisect_right(self.entries, key, start, key=itemgetter(0))

    def ids(self, span: tuple[int, int]) -> Iterator[str]:
        start, end = span
        return (id_ for _, id_ in self.entries[start:end])


class CloudStore:
    """Recipients by id with lookups by UPN, alias, anchor and proxy address, and a change log."""

    def __init__(self, mailboxes: Iterable[CloudMailbox], org: OrganizationConfig) -> None:
        self.org = org
        self.mailboxes: dict[str, CloudMailbox] = {}
        self._by_upn: dict[str, str] = {}
        self._by_alias: dict[str, str] = {}
        self._by_anchor: dict[str, str] = {}
        self._by_address: dict[str, str] = {}
        self._log: list[Change] = []
        self._log_seqs: list[int] = []
        self._property_sets: dict[frozenset[str], frozenset[str]] = {}
        self._sorted: dict[str, SortedIndex] = {}  # built on first use (sorted_index)
        self.seq = 0
        # `exwb serve --state-dir`: makes each committed change durable (mockservers/journal.py).
        self.journal: Journal | None = None
        # Exchange Online's hybrid objects (connectors, rules, groups, principals): empty until
        # a spec's are attached; `exwb serve --state-dir` persists them on their own.
        self._hybrid = HybridCloud(public_folders_enabled=org.public_folders_enabled)
        for m in mailboxes:
            self._add_indexes(m)
            self.mailboxes[m.id] = m

    @classmethod
    def from_tenant(cls, tenant: Tenant) -> CloudStore:
        spec = tenant.spec
        org = OrganizationConfig(name=spec.onmicrosoft_domain, identity=spec.onmicrosoft_domain)
        store = cls(tenant.mailboxes, org)
        store.hybrid = HybridCloud.from_spec(spec)
        return store

    # ------------------------------------------------------------------ hybrid
    @property
    def hybrid(self) -> HybridCloud:
        return self._hybrid

    @hybrid.setter
    def hybrid(self, hybrid: HybridCloud) -> None:
        """Attach a tenant's hybrid objects; PublicFoldersEnabled is theirs (it is persisted
        with them), so OrganizationConfig takes it from them."""
        self._hybrid = hybrid
        self.org.public_folders_enabled = hybrid.public_folders_enabled

    def set_public_folders_enabled(self, value: str) -> bool:
        """Set-OrganizationConfig -PublicFoldersEnabled; False when it already had that value."""
        changed = self._hybrid.set_public_folders_enabled(value)
        self.org.public_folders_enabled = self._hybrid.public_folders_enabled
        return changed

    # ------------------------------------------------------------------ reads
    def __len__(self) -> int:
        return len(self.mailboxes)

    def __iter__(self) -> Iterator[CloudMailbox]:
        return iter(self.mailboxes.values())

    def get(self, id_: str) -> CloudMailbox | None:
        return self.mailboxes.get(id_)

    def by_upn(self, upn: str) -> CloudMailbox | None:
        return self._get(self._by_upn.get(upn.casefold()))

    def by_anchor(self, immutable_id: str) -> CloudMailbox | None:
        return self._get(self._by_anchor.get(immutable_id))

    def by_address(self, address: str) -> CloudMailbox | None:
        """The recipient owning a proxy address ("smtp:x@y", "X500:/o=..."), or a bare SMTP."""
        key = address_key(address if ":" in address else f"smtp:{address}")
        return self._get(self._by_address.get(key))

    def resolve(self, identity: str) -> CloudMailbox:
        """An Exchange -Identity: id (GUID), UPN, primary or any SMTP address, alias."""
        m = (
            self.get(identity)
            or self.by_upn(identity)
            or self.by_address(identity)
            or self._get(self._by_alias.get(identity.casefold()))
        )
        if m is None:
            raise NotFound(identity)
        return m

    def owner_of(self, address: str) -> CloudMailbox | None:
        return self._get(self._by_address.get(address_key(address)))

    def sorted_index(self, prop: str) -> SortedIndex:
        """The sorted index of a Graph property in `SORTED_KEYS`, built on first use (a tenant
        that is never queried that way pays nothing) and maintained on writes after that."""
        index = self._sorted.get(prop)
        if index is None:
            keys = SORTED_KEYS[prop]
            index = SortedIndex((k, m.id) for m in self.mailboxes.values() for k in keys(m))
            self._sorted[prop] = index
        return index

    def changes_after(self, watermark: int) -> list[Change]:
        """Changes with seq > watermark, oldest first."""
        return self._log[bisect_right(self._log_seqs, watermark) :]

    # ------------------------------------------------------------------ writes
    def update(self, id_: str, values: Mapping[str, Any]) -> Change | None:
        """Replace CloudMailbox fields of one recipient; log what changed (None if nothing did).

        The caller has validated `values` (Exchange rules, address uniqueness)."""
        old = self.mailboxes[id_]
        new = replace(old, **values)
        changed = _changed_properties(old, new)
        if not changed:
            return None
        self._drop_indexes(old)
        self._add_indexes(new)
        self._update_sorted(old, new)
        self.mailboxes[id_] = new
        change = self._record(id_, changed)
        if self.journal is not None:
            self.journal.cloud_update(new, change)
        return change

    def delete(self, id_: str) -> Change:
        old = self.mailboxes.pop(id_)
        self._drop_indexes(old)
        self._update_sorted(old, None)
        change = self._record(id_, frozenset({"@deleted"}))
        if self.journal is not None:
            self.journal.cloud_delete(id_, change)
        return change

    def restore_log(self, changes: list[Change], seq: int) -> None:
        """Put back a change log saved with the recipients (a restart from a snapshot)."""
        self._log = list(changes)
        self._log_seqs = [c.seq for c in changes]
        self.seq = max(seq, self._log_seqs[-1] if changes else 0)

    # ------------------------------------------------------------------ helpers
    def _get(self, id_: str | None) -> CloudMailbox | None:
        return self.mailboxes.get(id_) if id_ is not None else None

    def _record(self, id_: str, properties: frozenset[str]) -> Change:
        self.seq += 1
        # A tenant sees few distinct sets ({"CustomAttribute1"} ...): one object each, not one
        # per change (~280 bytes a change over 200,000 edits).
        properties = self._property_sets.setdefault(properties, properties)
        change = Change(self.seq, id_, properties)
        self._log.append(change)
        self._log_seqs.append(self.seq)
        return change

    def _add_indexes(self, m: CloudMailbox) -> None:
        self._by_upn[m.user_principal_name.casefold()] = m.id
        self._by_alias[m.alias.casefold()] = m.id
        if m.immutable_id:
            self._by_anchor[m.immutable_id] = m.id
        for a in m.email_addresses:
            self._by_address[address_key(a)] = m.id

    def _drop_indexes(self, m: CloudMailbox) -> None:
        for index, key in (
            (self._by_upn, m.user_principal_name.casefold()),
            (self._by_alias, m.alias.casefold()),
            (self._by_anchor, m.immutable_id),
        ):
            if key is not None and index.get(key) == m.id:
                del index[key]
        for a in m.email_addresses:
            if self._by_address.get(address_key(a)) == m.id:
                del self._by_address[address_key(a)]

    def _update_sorted(self, old: CloudMailbox, new: CloudMailbox | None) -> None:
        """Move a recipient's keys in the sorted indexes built so far (only keys that changed:
        a custom attribute edit touches none)."""
        for prop, index in self._sorted.items():
            keys = SORTED_KEYS[prop]
            before, after = keys(old), keys(new) if new is not None else ()
            if before == after:
                continue
            for k in before:
                index.remove(k, old.id)
            for k in after:
                index.add(k, old.id)


def _changed_properties(old: CloudMailbox, new: CloudMailbox) -> frozenset[str]:
    out: set[str] = set()
    for name, prop in EXO_PROPERTY.items():
        a, b = getattr(old, name), getattr(new, name)
        if a == b:
            continue
        if name == "custom_attributes":
            out.update(
                f"CustomAttribute{i}"
                for i, (x, y) in enumerate(zip(a, b, strict=True), 1)
                if x != y
            )
        elif name == "extension_custom_attributes":
            out.update(
                f"ExtensionCustomAttribute{i}"
                for i, (x, y) in enumerate(zip(a, b, strict=True), 1)
                if x != y
            )
        else:
            out.add(prop)
    return frozenset(out)
