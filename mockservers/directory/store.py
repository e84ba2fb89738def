"""The directory's state: entries by normalised DN, the tree, indexes and the USN counter.

All reads and writes of the fake AD go through one `Store`. It is not thread-safe: the LDAP
server calls it from the reactor thread only. Indexes map a comparison key to one entry or a
set of entries (most keys are unique, and a set per key would cost ~200 bytes x 200,000).
The indexed text attributes' keys are also kept in order (`OrderedKeys`), for initial-substring
lookups (`prefix`: ``(sn=Sm*)`` and ambiguous name resolution).
"""

from __future__ import annotations

import os
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Final

from harness.core import clock
from harness.core.aderrors import value_refusal
from harness.core.adschema import (
    BACK_LINKS,
    DEFAULT_SCHEMA,
    LINKS,
    AttributeType,
    InvalidValue,
    Schema,
    Syntax,
    default_category,
)
from harness.core.ber import (  # re-exported: the store's callers speak in these
    MOD_ADD,
    MOD_DELETE,
    MOD_REPLACE,
    SCOPE_BASE,
    SCOPE_ONE,
    SCOPE_SUBTREE,
)
from harness.core.dn import (
    InvalidDN,
    escape_rdn_value,
    format_dn,
    normalize_rdns,
    parse_dn,
    split_rdn,
)
from harness.core.sid import (
    FIRST_RID,
    GROUP_TYPE_SECURITY_ENABLED,
    DomainSid,
    primary_group_id,
    principal_kind,
    sam_account_type,
)
from mockservers.directory import errors, tombstones
from mockservers.directory.entry import DERIVED_ATTRIBUTES, Entry, Values, rdn_value
from mockservers.directory.ordered_keys import OrderedKeys
from mockservers.directory.structure import (
    STAMPED_ON_ADD,
    ClassRules,
    NoStructuralClass,
    Structure,
    UnknownClass,
    UnrelatedClasses,
)

if TYPE_CHECKING:
    from mockservers.journal import Journal

# accountExpires of an account that never expires, as AD sets it on a new one.
ACCOUNT_NEVER_EXPIRES: Final = 9223372036854775807
# [MS-ADTS] 2.2.12: GROUP_TYPE_ACCOUNT_GROUP | GROUP_TYPE_SECURITY_ENABLED, AD's default.
GLOBAL_SECURITY_GROUP = -2147483646
# The attributes AD keeps unique, with the refusal a duplicate gets.
UNIQUE_ATTRIBUTES: Final = (
    ("sAMAccountName", errors.account_name_exists),
    ("userPrincipalName", errors.upn_not_unique),
)

# Linked attributes (LINKS, BACK_LINKS in harness.core.adschema): a back link's change does not
# change the named object's uSNChanged (AD keeps links as rows of the linking object).
TOKEN_GROUPS: Final = "tokenGroups"  # constructed: Store.token_groups
LINK_SIDES: Final = {**LINKS, **BACK_LINKS}  # each linked attribute -> its other side
LINKED_ATTRIBUTES: Final = frozenset(LINK_SIDES)

# A modification as the server hands it to the store: (MOD_* operation, attribute, raw values).
# (The engine's client has its own shape, `harness.engine.ldapwire.Change`, with text values.)
Modification = tuple[int, str, Sequence[bytes]]


def now_generalized() -> bytes:
    """Now on the harness clock, as AD writes whenCreated/whenChanged (GeneralizedTime)."""
    return clock.now().strftime("%Y%m%d%H%M%S.0Z").encode("ascii")


def split_dn(dn: str) -> tuple[str, str, str]:
    """(ndn, parent ndn, RDN attribute) of a DN string; raises InvalidDN."""
    rdns = parse_dn(dn)
    if not rdns:
        raise InvalidDN("the empty DN names no entry")
    return normalize_rdns(rdns), normalize_rdns(rdns[1:]), rdns[0][0][0]


class Store:
    """Entries, the tree of parents and children, equality indexes and the USN log."""

    def __init__(
        self, schema: Schema = DEFAULT_SCHEMA, clock: Callable[[], bytes] = now_generalized
    ):
        self.schema = schema
        self.clock = clock
        self.entries: dict[str, Entry] = {}
        # Entries by the exact DN text they were stored with: clients send back the DNs they
        # were given, and parsing a DN cost a modify more than the modify itself. Stale keys
        # (deleted or renamed entries) are harmless: `ndn_of` checks what it finds.
        self._by_spelling: dict[str, Entry] = {}
        self.children: dict[str, dict[str, Entry]] = {}
        # Tombstones and the Deleted Objects containers (tombstones.py), by normalised DN and
        # by objectGUID: out of the tree, `entries` and every index, so that only a search with
        # the show-deleted control (or DirSync) sees them.
        self.deleted: dict[str, Entry] = {}
        self._deleted_guids: dict[bytes, Entry] = {}
        # Which attributes each change touched, by USN (DirSync returns only those): kept from
        # the first DirSync on (`track_changes`), as no older cookie can need them.
        self.track_changes = False
        self._changed: dict[Entry, dict[str, int]] = {}
        self.naming_contexts: list[str] = []  # ndns of the partition roots
        self._nc_set: set[str] = set()
        self._nc_by_depth: list[str] = []
        self.schema_nc = ""
        self.highest_usn = 0
        self._kinds: dict[Values, str | None] = {}  # objectClass values -> principal kind
        self._ints: dict[int, Values] = {}
        # objectSid: the domain's SID without a RID, the next RID to hand out, and the
        # principals loaded without one (stamped in load order by finish_load).
        self._sid_prefix = b""
        self._domain_sid: DomainSid | None = None
        self._next_rid = FIRST_RID
        self._unstamped: list[Entry] = []
        self._unlinked: list[Entry] = []  # loaded with forward links, linked by finish_load
        # While loading: each forward-link value once (a user's DN in every group naming it is
        # one bytes object, not one per group); emptied by finish_load.
        self._link_values: dict[bytes, bytes] = {}
        # The indexes kept from the start; those of the ANR attributes AD indexes but the
        # harness seldom searches (displayName, sn, name...) are made on first use
        # (`_index_of`), so a 200,000-entry load does not pay for them.
        # Linked attributes have no index of their own: each side is the other's index
        # (`_linked`), which at 200,000 users in a few groups each saves a set per user.
        self._eq: dict[str, dict[object, Entry | set[Entry]]] = {
            t.name: {} for t in schema if t.indexed and t.name not in LINK_SIDES
        }
        # Forward-link values that name no object here (an export's member of another domain):
        # the one part of a link the other side cannot answer for.
        self._dangling: dict[str, dict[object, set[Entry]]] = {f: {} for f in LINKS}
        # The keys of the text attributes among them, in order, for `prefix`: each made on its
        # first use too, then kept up to date.
        self._ordered: dict[str, OrderedKeys] = {
            t.name: OrderedKeys() for t in schema if t.prefix_indexed
        }
        self._types = {t.name: t for t in schema}
        # Indexes being made a slice at a time (`warm_steps`): a read that needs one finishes it.
        self._warming: dict[str, Iterator[None]] = {}
        self._partial: set[str] = set()  # those of them whose equality index is not whole yet
        self._usn_keys: list[int] = []  # ascending uSNChanged values, one per change
        self._usn_entries: list[Entry] = []
        self._usn_stale = 0
        # A compaction in progress, a few items per write (one pass over a 200k server's log
        # at once held the reactor for 2.4 s): the log as it was when it began, read from
        # `_old_pos` on, and what it kept so far. New changes go to `_usn_*` meanwhile, so
        # kept < old[_old_pos:] < new in USN order.
        self._old_keys: list[int] = []
        self._old_entries: list[Entry] = []
        self._old_pos = 0
        self._kept_keys: list[int] = []
        self._kept_entries: list[Entry] = []
        self.examined = 0  # entries a search evaluated: proves index use in tests
        self._key_cache: dict[Syntax, dict[bytes, object]] = {Syntax.OID: {}, Syntax.DN: {}}
        # `exwb serve --state-dir`: makes each committed write durable (mockservers/journal.py).
        self.journal: Journal | None = None
        # Called after each committed write with the entry and, for a move, its parent before
        # (mockservers/directory/notify.py sets it only while a notification search is open).
        self.watch: Callable[[Entry, str | None], None] | None = None
        self._structure: Structure | None = None
        self._schema_key: str | None = None

    # ------------------------------------------------------------------ reads
    def get(self, ndn: str) -> Entry | None:
        return self.entries.get(ndn)

    def lookup(self, t: AttributeType, key: object) -> Collection[Entry]:
        if t.name in LINK_SIDES:
            return self._linked(t, key)
        hit = self._index_of(t).get(key)
        if hit is None:
            return ()
        return (hit,) if isinstance(hit, Entry) else hit

    def _linked(self, t: AttributeType, key: object) -> Collection[Entry]:
        """``(member=X)``: the groups X's memberOf names (``(memberOf=G)``: the objects G's
        member names), and the holders of a `member` value naming no object here. Both sides
        of a link are kept for every object here, so each answers for the other."""
        found: dict[int, Entry] = {}
        target = self.entries.get(str(key))
        if target is not None:
            other = self._types[LINK_SIDES[t.name]]
            for v in target.attrs.get(other.name, ()):
                e = self.entries.get(str(self._dn_key(other, v)))
                if e is not None:
                    found[id(e)] = e
        for e in self._dangling.get(t.name, {}).get(key, ()):
            found[id(e)] = e
        return list(found.values())

    def prefix(self, t: AttributeType, initial: str) -> Collection[Entry]:
        """Entries with a value of prefix-indexed `t` whose key starts with `initial` (a
        case-folded text): the candidates of ``(t=initial*)``, each entry once."""
        ordered = self._ordered[t.name]
        idx = self._index_of(t)
        if not ordered.built and t.name in self._warming:
            self._finish_warming(t.name)
        if not ordered.built:
            ordered.build(k for k in idx if isinstance(k, str))
        found: dict[int, Entry] = {}
        for k in ordered.starting(initial):
            hit = idx[k]
            if isinstance(hit, Entry):
                found[id(hit)] = hit
            else:
                for e in hit:
                    found[id(e)] = e
        return found.values()

    def _index_of(self, t: AttributeType) -> dict[object, Entry | set[Entry]]:
        """The equality index of `t`, made from every entry on first use (one pass: about
        0.2 s an attribute at 200,000 entries) and kept up to date from then on."""
        if self._partial and t.name in self._partial:
            self._finish_warming(t.name)
        idx = self._eq.get(t.name)
        if idx is not None:
            return idx
        if not t.equality_indexed or t.name in LINK_SIDES:
            raise KeyError(t.name)
        idx = self._eq[t.name] = {}
        name = t.name
        for e in self.entries.values():
            values = e.attrs.get(name)
            if values is None and name == "name":
                values = _derived_name(e)
            if values:
                self._index_add(e, name, values)
        return idx

    def warm_steps(self) -> Iterator[None]:
        """Make the indexes kept for initial substrings and ANR (`prefix`), which are otherwise
        made on their first use, a slice at a time: a step takes about 5 ms at 200,000
        entries, where making them on first use holds the server for seconds. Writes made
        between steps keep what is made so far up to date; a read that needs an index before it
        is done finishes it first."""
        for name, ordered in list(self._ordered.items()):
            if ordered.built:
                continue
            steps = self._warming.get(name)
            if steps is None:
                steps = self._warming[name] = self._warm(self._types[name])
            yield from steps

    def _warm(self, t: AttributeType) -> Iterator[None]:
        name = t.name
        try:
            if name not in self._eq:
                self._eq[name] = {}  # kept up to date by writes from now on
                self._partial.add(name)
                entries = list(self.entries.values())
                for i in range(0, len(entries), _WARM_STEP):
                    for e in entries[i : i + _WARM_STEP]:
                        if self.entries.get(e.ndn) is not e:
                            continue  # deleted since: its values left the index with it
                        values = e.attrs.get(name)
                        if values is None and name == "name":
                            values = _derived_name(e)
                        if values:
                            self._index_add(e, name, values)  # idempotent after a write
                    yield
                self._partial.discard(name)
            yield from self._ordered[name].build_steps(list(self._eq[name]))
        finally:  # also when closed part way: what is unfinished is dropped, not half-used
            self._warming.pop(name, None)
            if name in self._partial:
                self._partial.discard(name)
                del self._eq[name]
            self._ordered[name].pending = None

    def _finish_warming(self, name: str) -> None:
        for _ in self._warming.get(name, ()):
            pass

    def usn_range(self, low: int | None, high: int | None) -> Iterable[Entry]:
        """Entries whose current uSNChanged is within [low, high], in USN order."""
        out = []
        current = self.entries  # live ones: tombstones are `usn_after`'s
        for keys, entries, start in (
            (self._kept_keys, self._kept_entries, 0),
            (self._old_keys, self._old_entries, self._old_pos),
            (self._usn_keys, self._usn_entries, 0),
        ):
            i = start if low is None else bisect_left(keys, low, start)
            j = len(keys) if high is None else bisect_right(keys, high, start)
            for k in range(i, j):
                e = entries[k]
                if current.get(e.ndn) is e and _usn_of(e) == keys[k]:
                    out.append(e)
        return out

    def usn_after(self, low: int) -> Iterator[tuple[int, Entry]]:
        """(uSNChanged, entry) of every entry, tombstones included, changed after USN `low`,
        in USN order, lazily: a DirSync page reads what it sends, not the rest of the log."""
        current = self._current
        segments = (
            (self._kept_keys, self._kept_entries, 0),
            (self._old_keys, self._old_entries, self._old_pos),
            (self._usn_keys, self._usn_entries, 0),
        )
        for keys, entries, start in segments:
            for k in range(bisect_right(keys, low, start), len(keys)):
                e = entries[k]
                if current(e) and _usn_of(e) == keys[k]:
                    yield keys[k], e

    def _current(self, e: Entry) -> bool:
        # A log item is the entry's current state: live, or a tombstone.
        return self.entries.get(e.ndn) is e or self.deleted.get(e.ndn) is e

    def get_deleted(self, ndn: str) -> Entry | None:
        """The tombstone or Deleted Objects container with this normalised DN, if any."""
        return self.deleted.get(ndn)

    def deleted_by_guid(self, guid: bytes) -> Entry | None:
        return self._deleted_guids.get(guid)

    def deleted_in_scope(self, base_ndn: str, scope: int) -> list[Entry]:
        """The deleted entries within the scope of a search from `base_ndn`, containers
        first: one look-up for a base search, a pass over the deleted ones otherwise."""
        if scope == SCOPE_BASE:
            hit = self.deleted.get(base_ndn)
            return [hit] if hit is not None else []
        if scope == SCOPE_ONE:
            return [e for e in self.deleted.values() if e.parent == base_ndn]
        nc = self.partition_of(base_ndn)
        suffix = "," + base_ndn
        return [
            e
            for e in self.deleted.values()
            if (e.ndn == base_ndn or e.ndn.endswith(suffix)) and self.partition_of(e.ndn) == nc
        ]

    def removed_since(self, e: Entry, usn: int) -> list[str]:
        """The tracked attributes of `e` removed by a change after USN `usn`."""
        changed = self._changed.get(e)
        if not changed:
            return []
        return [
            n for n, u in changed.items() if u > usn and n not in e.attrs and n not in ("", "name")
        ]

    def is_naming_context(self, ndn: str) -> bool:
        return ndn in self._nc_set

    def attribute_usn(self, e: Entry, name: str) -> int:
        """The USN of the last change to `e`'s attribute `name` as far as the store tracked
        it: an untracked attribute counts as changed with the entry's last change."""
        changed = self._changed.get(e)
        if changed is None:
            return _usn_of(e)
        return changed.get(name, changed[""])

    @property
    def usn_log_size(self) -> int:
        """Items in the USN log, superseded ones included (tests: compaction keeps it small)."""
        unread = len(self._old_keys) - self._old_pos
        return len(self._kept_keys) + unread + len(self._usn_keys)

    def matched_dn(self, ndn: str) -> str:
        """The DN of the closest existing ancestor, for noSuchObject's matchedDN."""
        rest = split_rdn(ndn)[1]
        while rest:
            candidate = self.entries.get(rest)
            if candidate is not None:
                return candidate.dn
            rest = split_rdn(rest)[1]
        return ""

    def ndn_of(self, dn: str) -> str | None:
        """The normalised DN of the entry stored with exactly this DN text, if there is one."""
        e = self._by_spelling.get(dn)
        if e is not None and e.dn == dn and self.entries.get(e.ndn) is e:
            return e.ndn
        return None

    def require(self, ndn: str) -> Entry:
        e = self.entries.get(ndn)
        if e is None:
            raise errors.no_such_object(self.matched_dn(ndn))
        return e

    def scope_entries(self, base: Entry, scope: int) -> list[Entry]:
        """Every entry in scope, parents before children (a snapshot: safe across pages)."""
        if scope == SCOPE_BASE:
            return [base]
        if scope == SCOPE_ONE:
            below = self.children.get(base.ndn, {})
            if self._nc_set.isdisjoint(below):
                return list(below.values())
            return [e for k, e in below.items() if k not in self._nc_set]  # another partition's
        out = [base]
        stack = [base.ndn]
        nc = self._nc_set
        while stack:
            kids = self.children.get(stack.pop())
            if kids:
                if nc.isdisjoint(kids):
                    out.extend(kids.values())
                    stack.extend(k for k in kids if k in self.children)
                else:  # another partition's root is not part of this subtree
                    inner = [e for k, e in kids.items() if k not in nc]
                    out.extend(inner)
                    stack.extend(e.ndn for e in inner if e.ndn in self.children)
        return out

    def in_scope(self, e: Entry, base_ndn: str, scope: int) -> bool:
        if self.entries.get(e.ndn) is not e:
            return False
        if scope == SCOPE_BASE:
            return e.ndn == base_ndn
        if scope == SCOPE_ONE:
            return e.parent == base_ndn and e.ndn not in self._nc_set
        if e.ndn != base_ndn and not e.ndn.endswith("," + base_ndn):
            return False
        return self.partition_of(e.ndn) == self.partition_of(base_ndn)

    def add_naming_context(self, ndn: str) -> None:
        """Declare a partition root; subtree searches do not cross into other partitions."""
        if ndn not in self._nc_set:
            self.naming_contexts.append(ndn)
            self._nc_set.add(ndn)
            self._nc_by_depth = sorted(self.naming_contexts, key=len, reverse=True)

    def partition_of(self, ndn: str) -> str:
        for nc in self._nc_by_depth:
            if ndn == nc or ndn.endswith("," + nc):
                return nc
        return ""

    def walk(self, deleted: bool = False) -> Iterator[Entry]:
        """Every entry, parents first, partitions in order of declaration; `deleted`: then the
        Deleted Objects containers and the tombstones (what a dump keeps)."""
        for root in sorted(self.naming_contexts, key=len):
            e = self.entries.get(root)
            if e is not None:
                yield from self.scope_entries(e, SCOPE_SUBTREE)
        if deleted:
            yield from list(self.deleted.values())  # containers before their tombstones

    # ------------------------------------------------------------------ loading
    def insert(self, dn: str, ndn: str, parent: str, attrs: dict[str, Values]) -> Entry:
        """Put a trusted entry in place (loading): no ACL, no schema checks, no USN bump.
        Back links are the directory's own: loaded ones are dropped and rebuilt from the
        forward links (an export's memberOf can name groups the export leaves out)."""
        for back in BACK_LINKS:
            attrs.pop(back, None)
        for forward in LINKS:
            values = attrs.get(forward)
            if values:
                memo = self._link_values
                attrs[forward] = tuple([memo.setdefault(v, v) for v in values])
        e = Entry(dn, ndn, parent, attrs)
        if tombstones.is_deleted(attrs):
            self._insert_deleted(e)
            return e
        self.entries[ndn] = e
        self._by_spelling[dn] = e
        self.children.setdefault(parent, {})[ndn] = e
        if parent not in self.entries:
            self.add_naming_context(ndn)
        for name, values in attrs.items():
            if name in self._eq:
                self._index_add(e, name, values)
        if "name" in self._eq:  # derived from the RDN: indexed by hand
            self._index_add(e, "name", _derived_name(e))
        usn = _usn_of(e)
        if usn:
            self._usn_keys.append(usn)
            self._usn_entries.append(e)
            self.highest_usn = max(self.highest_usn, usn)
        for forward in LINKS:
            if forward in attrs:
                self._unlinked.append(e)  # linked in finish_load: its targets may come later
                break
        if "objectSid" not in attrs and "sAMAccountType" in attrs and self._domain_sid:
            self._unstamped.append(e)  # a principal: its SID waits for finish_load
        return e

    def _insert_deleted(self, e: Entry) -> None:
        # A loaded tombstone or Deleted Objects container: in the deleted set and the USN log.
        self.deleted[e.ndn] = e
        guid = e.attrs.get("objectGUID")
        if guid:
            self._deleted_guids[guid[0]] = e
        usn = _usn_of(e)
        if usn:
            self._usn_keys.append(usn)
            self._usn_entries.append(e)
            self.highest_usn = max(self.highest_usn, usn)

    def add_missing(self, ndn: str, attrs: dict[str, Values]) -> None:
        """Give a loaded entry the attributes of `attrs` it does not hold (loading: the
        directory's own values for what the data left out; no USN, indexes kept)."""
        e = self.entries.get(ndn)
        if e is None:
            return
        for name, values in attrs.items():
            if name not in e.attrs and values:
                e.attrs[name] = values
                if name in self._eq:
                    self._index_add(e, name, values)

    def set_domain_sid(self, sid: DomainSid) -> None:
        """The domain's SID: security principals get objectSid from it, as a DC's RID pool
        hands them out (`FIRST_RID` up, past any RID already loaded)."""
        self._domain_sid = sid
        self._sid_prefix = sid.binary(0)[:-4]

    def finish_load(self) -> None:
        """Order the USN log after loading entries in arbitrary order, and give the principals
        loaded without an objectSid theirs, in load order (a generated tenant's users get the
        RIDs its exports show: `harness.tenant.exports`)."""
        for e in self._unstamped:
            if self.entries.get(e.ndn) is e:
                self._stamp_sid(e.attrs)
                self._index_add(e, "objectSid", e.attrs["objectSid"])
        self._unstamped = []
        self._link_loaded()
        self._unlinked = []
        self._link_values = {}
        pairs = sorted(zip(self._usn_keys, self._usn_entries, strict=True), key=lambda p: p[0])
        self._usn_keys = [p[0] for p in pairs]
        self._usn_entries = [p[1] for p in pairs]
        self._usn_stale = 0

    # ------------------------------------------------------------------ writes
    def modify(self, ndn: str, changes: Sequence[Modification]) -> Entry:
        """Apply all changes atomically with AD's result codes, then bump USN and whenChanged."""
        e = self.require(ndn)
        new = dict(e.attrs)
        touched: set[str] = set()
        for op, name, values in changes:
            t = self._type(name)
            if t.name in BACK_LINKS:
                raise errors.back_link_written(t.name)
            if t.system_only or t.name in DERIVED_ATTRIBUTES:
                raise errors.constraint(t.name)
            self._check_values(t, values)
            if t.single and op != MOD_DELETE and len(values) > 1:
                raise errors.value_exists(t.name)  # before duplicate checks, as AD orders them
            current = new.get(t.name, ())
            if op == MOD_ADD and t.name == self._rdn_type(e):
                raise errors.not_on_rdn(t.name)  # [MS-ADTS] 3.1.1.3.1.2.1
            if op == MOD_ADD:
                if not values:
                    raise errors.add_without_values(t.name)
                have = {t.key(v) for v in current}
                for v in values:
                    if t.key(v) in have:
                        raise errors.value_exists(t.name)
                    have.add(t.key(v))
                result = current + tuple(values)
            elif op == MOD_DELETE:
                if not current:
                    raise errors.no_such_attribute(t.name)
                if values:
                    gone = {t.key(v) for v in values}
                    present = {t.key(v) for v in current}
                    if not gone <= present:
                        raise errors.no_such_attribute(t.name)
                    result = tuple(v for v in current if t.key(v) not in gone)
                else:
                    result = ()
            elif op == MOD_REPLACE:
                if len({t.key(v) for v in values}) != len(values):
                    raise errors.value_exists(t.name)  # the same value twice in one request
                result = tuple(values)
            else:
                raise errors.unknown_modify_operation(op)
            if t.single and len(result) > 1:
                raise errors.value_exists(t.name)  # Samba's tests, written to pass on Windows
            if result:
                new[t.name] = result
            else:
                new.pop(t.name, None)
            touched.add(t.name)
        self._check_rdn_kept(e, new, touched)
        self._check_content(e, new, touched)
        if all(new.get(n) == e.attrs.get(n) for n in touched):
            return e  # nothing changed: AD writes nothing and the USN stays
        before = e.attrs
        self._commit(e, new, touched)
        for forward in touched.intersection(LINKS):
            self._relink(e, forward, before.get(forward, ()), new.get(forward, ()))
        if self.journal is not None:
            self.journal.ldap_modify(self, ndn, changes, e)
        if self.watch is not None:
            self.watch(e, None)
        return e

    def add(self, dn: str, attributes: Sequence[tuple[str, Sequence[bytes]]]) -> Entry:
        """Create an entry as AD does: parent must exist, objectClass required, system attributes
        (objectGUID, USNs, timestamps) set by the directory."""
        ndn, parent_ndn, rdn_attr = self._split(dn)
        if ndn in self.entries:
            raise errors.entry_exists()
        if parent_ndn not in self.entries:
            raise errors.no_such_object(self.matched_dn(ndn))
        attrs: dict[str, Values] = {}
        for name, values in attributes:
            t = self._type(name)
            if t.name in BACK_LINKS:
                raise errors.back_link_written(t.name)
            if t.system_only or t.name in DERIVED_ATTRIBUTES:
                raise errors.constraint(t.name)
            if not values:
                raise errors.constraint(t.name)
            self._check_values(t, values)
            merged = attrs.get(t.name, ()) + tuple(values)
            if len({t.key(v) for v in merged}) != len(merged):
                raise errors.value_exists(t.name)
            if t.single and len(merged) > 1:
                raise errors.single_value(t.name)
            attrs[t.name] = merged
        classes = attrs.get("objectClass")
        if not classes:
            raise errors.object_class_required()
        rules = self._rules(classes)
        for name in attrs:
            if name.casefold() not in rules.allowed:
                raise errors.not_allowed_for_class(name)
        rdn_t = self._type(rdn_attr)
        if rdn_t.name.casefold() != rules.rdn.casefold():
            raise errors.rdn_not_of_class(rdn_t.name)
        self._check_superior(rules, parent_ndn)
        first_value = parse_dn(dn)[0][0][1].encode("utf-8")
        have = attrs.get(rdn_t.name, ())
        if not have:
            attrs[rdn_t.name] = (first_value,)
        elif rdn_t.key(first_value) not in {rdn_t.key(v) for v in have}:
            raise errors.rdn_mismatch()
        now = self.clock()
        self.highest_usn += 1
        usn = str(self.highest_usn).encode("ascii")
        attrs["objectGUID"] = (os.urandom(16),)
        attrs["whenCreated"] = attrs["whenChanged"] = (now,)
        attrs["uSNCreated"] = attrs["uSNChanged"] = (usn,)
        category = self._default_category(classes)
        if category and "objectCategory" not in attrs:
            attrs["objectCategory"] = (category.encode("utf-8"),)
        self._default_principal(attrs)
        self.stamp_principal(attrs)
        self._check_unique(None, attrs)
        self._check_references(None, attrs, attrs)
        missing = rules.must - {n.casefold() for n in attrs} - STAMPED_ON_ADD
        if missing:
            raise errors.missing_required(min(missing))
        e = self.insert(dn, ndn, parent_ndn, attrs)
        self._link_now(e)
        if self.journal is not None:
            self.journal.ldap_add(self, e)
        if self.watch is not None:
            self.watch(e, None)
        return e

    def delete(self, ndn: str) -> Entry:
        """Turn a leaf into a tombstone (tombstones.py): out of the tree, its links and its
        indexes, into its partition's Deleted Objects container, with the delete's USN."""
        e = self.require(ndn)
        if self.children.get(ndn):
            raise errors.non_leaf()
        old_parent = e.parent
        container = self._deleted_objects(ndn)
        self._unlink_all(e)
        for name, values in e.attrs.items():
            if name in self._eq:
                self._index_remove(e, name, values)
        if "name" in self._eq:
            self._index_remove(e, "name", _derived_name(e))
        del self.entries[ndn]
        siblings = self.children.get(e.parent)
        if siblings is not None:
            siblings.pop(ndn, None)
        self.children.pop(ndn, None)
        rdn_attr, rdn_text = parse_dn(e.dn)[0][0]
        rdn_t = self.schema.get(rdn_attr)
        parent_dn = _parent_dn(e.dn)
        rdn = (rdn_t.name if rdn_t else rdn_attr, rdn_attr, rdn_text)
        dn, attrs = tombstones.tombstone(e.attrs, rdn, parent_dn, container.dn)
        self.highest_usn += 1
        attrs["uSNChanged"] = (str(self.highest_usn).encode("ascii"),)
        attrs["whenChanged"] = (self.clock(),)
        if self.track_changes:
            changed = self._changed.setdefault(e, {"": _usn_of(e)})
            for name in set(e.attrs) | set(attrs):
                if e.attrs.get(name) != attrs.get(name):
                    changed[name] = self.highest_usn
            changed["name"] = self.highest_usn
        e.dn, e.ndn, e.parent, e.attrs = dn, normalize_rdns(parse_dn(dn)), container.ndn, attrs
        self.deleted[e.ndn] = e
        guid = attrs.get("objectGUID")
        if guid:
            self._deleted_guids[guid[0]] = e
        self._usn_keys.append(self.highest_usn)
        self._usn_entries.append(e)
        self._note_stale()
        if self.journal is not None:
            self.journal.ldap_delete(self, ndn, e)
        if self.watch is not None:  # notified as its tombstone, to those watching where it was
            self.watch(e, old_parent)
        return e

    def _deleted_objects(self, ndn: str) -> Entry:
        """The Deleted Objects container of `ndn`'s partition, made (as a DC has it from the
        start) when a store built without the seed lacks it."""
        nc = self.partition_of(ndn)
        where = tombstones.container_ndn(nc)
        container = self.deleted.get(where)
        if container is not None:
            return container
        attrs = tombstones.container_attributes()
        self.highest_usn += 1
        usn = (str(self.highest_usn).encode("ascii"),)
        attrs["objectGUID"] = (os.urandom(16),)
        attrs["whenCreated"] = attrs["whenChanged"] = (self.clock(),)
        attrs["uSNCreated"] = attrs["uSNChanged"] = usn
        nc_entry = self.entries[nc]
        dn = f"CN={tombstones.DELETED_OBJECTS},{nc_entry.dn}"
        return self.insert(dn, where, nc, attrs)

    def rename(self, ndn: str, new_rdn: str, delete_old: bool, new_superior: str | None) -> Entry:
        """modifyDN: new RDN and/or new parent; descendants move along."""
        e = self.require(ndn)
        try:
            rdn_parts = parse_dn(new_rdn)
        except InvalidDN:
            raise errors.invalid_dn(new_rdn) from None
        if len(rdn_parts) != 1:
            raise errors.invalid_dn(new_rdn)
        parent_dn = new_superior if new_superior is not None else _parent_dn(e.dn)
        try:
            parent_ndn = normalize_rdns(parse_dn(parent_dn))
        except InvalidDN:
            raise errors.invalid_dn(parent_dn) from None
        if parent_ndn not in self.entries:
            raise errors.no_such_object(self.matched_dn(parent_ndn))
        new_dn = format_dn(rdn_parts) + ("," + self.entries[parent_ndn].dn if parent_ndn else "")
        new_ndn = normalize_rdns(parse_dn(new_dn))
        if new_ndn == parent_ndn or new_ndn.endswith("," + ndn) or parent_ndn.endswith("," + ndn):
            raise errors.unwilling("cannot move an entry below itself")
        if new_ndn in self.entries and new_ndn != ndn:
            raise errors.entry_exists()
        attr, value = rdn_parts[0][0]
        t = self._type(attr)
        rules = self._rules_of(e)
        if rules is not None:
            if t.name.casefold() != rules.rdn.casefold():
                raise errors.rename_rdn_not_of_class(t.name)
            if parent_ndn != e.parent:
                self._check_superior(rules, parent_ndn)
        new = dict(e.attrs)
        if delete_old or t.single:
            new[t.name] = (value.encode("utf-8"),)
        elif t.key(value.encode()) not in {t.key(v) for v in new.get(t.name, ())}:
            new[t.name] = (*new.get(t.name, ()), value.encode("utf-8"))
        old_parent = e.parent
        named = "name" in self._eq  # the RDN's value: the moved subtree keeps its own
        if named:
            self._index_remove(e, "name", _derived_name(e))
        moved = self._move(e, new_dn, new_ndn, parent_ndn)
        if named:
            self._index_add(e, "name", _derived_name(e))
        self._commit(e, new, {t.name, "name"})
        self._follow_moves(moved)
        if self.journal is not None:
            self.journal.ldap_modify_dn(self, ndn, new_rdn, delete_old, new_superior, e)
        if self.watch is not None:
            self.watch(e, old_parent)
        return e

    # ------------------------------------------------------------------ helpers
    def _type(self, name: str) -> AttributeType:
        t = self.schema.get(name)
        if t is None:
            raise errors.unknown_attribute(name)
        return t

    def _split(self, dn: str) -> tuple[str, str, str]:
        try:
            return split_dn(dn)
        except InvalidDN:
            raise errors.invalid_dn(dn) from None

    def _check_values(self, t: AttributeType, values: Sequence[bytes]) -> None:
        refusal = value_refusal(t, values)  # shared with the engine's dry-run preview
        if refusal is not None:
            raise refusal

    @property
    def structure(self) -> Structure:
        """The schema's class rules, built on the first write (a read-only store needs none)."""
        if self._structure is None:
            self._structure = Structure(self.schema)
        return self._structure

    def _rules(self, classes: Values) -> ClassRules:
        try:
            return self.structure.rules(classes)
        except UnknownClass as e:
            raise errors.unknown_class(str(e)) from None
        except UnrelatedClasses as e:
            raise errors.unrelated_classes(str(e)) from None
        except NoStructuralClass:
            raise errors.no_structural_class() from None

    def _check_superior(self, rules: ClassRules, parent_ndn: str) -> None:
        # possSuperiors ([MS-ADTS] 3.1.1.5.2.2): the parent is an instance of one of them.
        if rules.superiors is None:
            return
        parent = self.entries[parent_ndn].attrs.get("objectClass", ())
        closure = self.structure.class_closure(parent)
        if self.structure.superior_checked(closure) and not closure & rules.superiors:
            raise errors.illegal_superior(rules.structural)

    def _check_content(self, e: Entry, new: dict[str, Values], touched: set[str]) -> None:
        """A modify leaves the object within its classes: what it writes is allowed, what it
        removes is not required; a new objectClass list is checked whole."""
        if "objectClass" in touched:
            rules = self._rules(new.get("objectClass", ()))
            old = self._structural_of(e)
            if old and not self.structure.may_change(old, rules.structural):
                raise errors.structural_class_change()
            names: Iterable[str] = new
        else:
            known = self._rules_of(e)
            if known is None:
                return
            rules, names = known, touched
        for name in names:
            present = bool(new.get(name))
            if present and name.casefold() not in rules.allowed:
                raise errors.not_allowed_for_class(name)
            if not present and name.casefold() in rules.must:
                raise errors.missing_required(name)
        self._check_unique(e, {n: new[n] for n in touched if n in new})
        self._check_references(e, new, touched)

    def _default_principal(self, attrs: dict[str, Values]) -> None:
        # What AD fills in on a principal added without it ([MS-ADTS] 3.1.1.5.2.2 and
        # [MS-SAMR] 3.1.1.8.1): a group is a global security group, and an account gets a
        # generated, unique sAMAccountName ($ and 6 + 12 characters, as Windows makes it).
        kind = principal_kind([c.decode("utf-8", "replace") for c in attrs["objectClass"]])
        if kind is None:
            return
        if kind == "group" and "groupType" not in attrs:
            attrs["groupType"] = (str(GLOBAL_SECURITY_GROUP).encode(),)
        if "sAMAccountName" not in attrs:
            attrs["sAMAccountName"] = (f"${self._next_rid:06X}-{self.highest_usn:012X}".encode(),)

    def _check_unique(self, e: Entry | None, written: dict[str, Values]) -> None:
        # sAMAccountName is unique in the domain; userPrincipalName in the forest since
        # Windows Server 2012 R2 ([MS-ADTS] 3.1.1.5.2.2, 3.1.1.5.3.2). Both are indexed.
        for name, refuse in UNIQUE_ATTRIBUTES:
            values = written.get(name)
            if not values:
                continue
            t = self._types[name]
            for v in values:
                if any(other is not e for other in self.lookup(t, t.key(v))):
                    raise refuse()

    def _check_references(
        self, e: Entry | None, new: dict[str, Values], names: Iterable[str]
    ) -> None:
        """A DN-syntax value names an object that exists, where it falls in a naming context
        this directory holds (a foreign one AD resolves through a global catalog; the schema
        partition's classes are not entries here)."""
        for name in names:
            t = self._types.get(name)
            if t is None or t.syntax is not Syntax.DN or t.system_only or not new.get(name):
                continue
            if e is not None and new[name] == e.attrs.get(name):
                continue
            old = {t.key(v) for v in e.attrs.get(name, ())} if e is not None else set()
            for v in new[name]:
                key = t.key(v)
                if key in old or key in self.entries:
                    continue
                nc = self.partition_of(str(key))
                if nc and nc != self._schema_ndn():
                    raise errors.reference_missing(name, v.decode("utf-8", "replace"))

    def _schema_ndn(self) -> str:
        if self.schema_nc and self._schema_key is None:
            self._schema_key = normalize_rdns(parse_dn(self.schema_nc))
        return self._schema_key or ""

    def _rules_of(self, e: Entry) -> ClassRules | None:
        # None for a loaded object the schema cannot describe: its writes go unchecked.
        try:
            return self.structure.rules(e.attrs.get("objectClass", ()))
        except (UnknownClass, NoStructuralClass):
            return None

    def _structural_of(self, e: Entry) -> str:
        rules = self._rules_of(e)
        return rules.structural if rules is not None else ""

    def _rdn_type(self, e: Entry) -> str | None:
        # The canonical name of the entry's RDN attribute: the text before the first "=".
        t = self.schema.get(e.dn.split("=", 1)[0].strip())
        return t.name if t is not None else None

    def _check_rdn_kept(self, e: Entry, new: dict[str, Values], touched: set[str]) -> None:
        # The RDN's type is the text before the first "=" (a type holds no "=" or escapes);
        # parse the DN only when that attribute is among the changed ones.
        t = self.schema.get(e.dn.split("=", 1)[0].strip())
        if t is None or t.name not in touched:
            return
        rdns = parse_dn(e.dn)
        if not rdns:
            return
        attr, value = rdns[0][0]
        t = self.schema.get(attr)
        if t is None or t.name not in touched:
            return
        if t.key(value.encode("utf-8")) not in {t.key(v) for v in new.get(t.name, ())}:
            raise errors.not_on_rdn(t.name)

    def stamp_principal(self, attrs: dict[str, Values], loading: bool = False) -> str | None:
        """Give a security principal (user, computer, group) its sAMAccountType,
        primaryGroupID, pwdLastSet and accountExpires (accounts) and objectSid where it has
        none, as AD does on add; return its kind, None for any other object. While `loading`,
        objectSid waits for `finish_load`, so that RIDs loaded later are not handed out
        twice."""
        if tombstones.is_deleted(attrs):
            return None  # a loaded tombstone: it lost sAMAccountType on deletion
        classes = attrs.get("objectClass", ())
        kind = self._kinds.get(classes, "?")
        if kind == "?":
            kind = principal_kind([c.decode("utf-8", "replace") for c in classes])
            if len(self._kinds) < 256:  # loads repeat a few class lists; bound the rest
                self._kinds[classes] = kind
        if kind is None:
            return None
        # Only a group's groupType and a computer's userAccountControl matter: parse no other
        # (200k users on load).
        if "sAMAccountType" not in attrs:
            group_type = _int_of(attrs.get("groupType")) if kind == "group" else 0
            attrs["sAMAccountType"] = self._shared_int(sam_account_type(kind, group_type))
        if "primaryGroupID" not in attrs:
            uac = _int_of(attrs.get("userAccountControl")) if kind == "computer" else 0
            rid = primary_group_id(kind, uac)
            if rid is not None:
                attrs["primaryGroupID"] = self._shared_int(rid)
        if kind != "group":
            # Every account holds both in AD and Samba: pwdLastSet 0 until a password is set,
            # accountExpires "never" (msldap computes expiry from them and fails without).
            # The [MS-SAMR] text that says so was not found here.
            if "pwdLastSet" not in attrs:
                attrs["pwdLastSet"] = self._shared_int(0)
            if "accountExpires" not in attrs:
                attrs["accountExpires"] = self._shared_int(ACCOUNT_NEVER_EXPIRES)
        if self._domain_sid is not None:
            sid = attrs.get("objectSid")
            if sid:
                self._note_rid(sid[0])
            elif not loading:  # loading: insert queues it for finish_load
                self._stamp_sid(attrs)
        return kind

    def _note_rid(self, sid: bytes) -> None:
        # A loaded SID of this domain: the RID pool continues after it.
        if len(sid) == len(self._sid_prefix) + 4 and sid.startswith(self._sid_prefix):
            self._next_rid = max(self._next_rid, int.from_bytes(sid[-4:], "little") + 1)

    def _stamp_sid(self, attrs: dict[str, Values]) -> None:
        # The prefix plus four bytes, not DomainSid.binary: one per principal (200k on load).
        if "objectSid" not in attrs and self._domain_sid is not None:
            attrs["objectSid"] = (self._sid_prefix + self._next_rid.to_bytes(4, "little"),)
            self._next_rid += 1

    def _shared_int(self, n: int) -> Values:
        # A handful of values on every principal: one tuple each (200k users, 2 attributes).
        values = self._ints.get(n)
        if values is None:
            values = self._ints[n] = (str(n).encode(),)
        return values

    def _default_category(self, classes: Values) -> str | None:
        # Clients list classes from top to the most specific; AD stamps the latter's category.
        if not self.schema_nc or not classes:
            return None
        most_specific = classes[-1].decode("utf-8", "replace")
        return f"CN={default_category(most_specific)},{self.schema_nc}"

    def _commit(self, e: Entry, new: dict[str, Values], touched: set[str]) -> None:
        self.highest_usn += 1
        new["uSNChanged"] = (str(self.highest_usn).encode("ascii"),)
        new["whenChanged"] = (self.clock(),)
        for name in touched | {"uSNChanged"}:
            if name in self._eq:
                old, cur = e.attrs.get(name, ()), new.get(name, ())
                if old != cur:
                    self._index_remove(e, name, old)
                    self._index_add(e, name, cur)
        if self.track_changes:
            changed = self._changed.setdefault(e, {"": _usn_of(e)})
            for name in touched:
                changed[name] = self.highest_usn
        e.attrs = new
        self._usn_keys.append(self.highest_usn)
        self._usn_entries.append(e)
        self._note_stale()

    def _move(self, e: Entry, new_dn: str, new_ndn: str, parent_ndn: str) -> dict[str, Entry]:
        """Move `e` and its subtree; return the moved entries by their old normalised DN."""
        moved = self.scope_entries(e, SCOPE_SUBTREE)  # parents before children
        by_old = {m.ndn: m for m in moved}
        kids_of = {m.ndn: self.children.pop(m.ndn) for m in moved if m.ndn in self.children}
        self.children.get(e.parent, {}).pop(e.ndn, None)
        for m in moved:
            del self.entries[m.ndn]
        for m in moved:
            old = m.ndn
            if m is e:
                m.dn, m.ndn, m.parent = new_dn, new_ndn, parent_ndn
            else:
                parent = by_old[m.parent]  # already renamed: parents come first
                first = parse_dn(m.dn)[:1]
                m.dn = f"{format_dn(first)},{parent.dn}"
                m.ndn = f"{normalize_rdns(first)},{parent.ndn}"
                m.parent = parent.ndn
            by_old[old] = m
            self.entries[m.ndn] = m
            self._by_spelling[m.dn] = m
        for old_key, kids in kids_of.items():
            self.children[by_old[old_key].ndn] = {k.ndn: k for k in kids.values()}
        self.children.setdefault(parent_ndn, {})[new_ndn] = e
        return by_old

    # ------------------------------------------------------------------ linked attributes
    def restore(self, dn: str, ndn: str, parent: str, attrs: dict[str, Values]) -> Entry:
        """Put a journaled add back (replay): trusted as on load, its links made at once."""
        e = self.insert(dn, ndn, parent, attrs)
        self._link_now(e)
        return e

    def _link_loaded(self) -> None:
        """The loaded entries' forward links: each named object gets all its back links of
        the load at once (one at a time, each a copy of its attributes and a new index of its
        back links, made a 200,000-user load with groups twice as slow)."""
        entries, spelled = self.entries, self._by_spelling
        for forward, back in LINKS.items():
            t = self._types[forward]
            dangling = self._dangling[forward]
            pending: dict[int, tuple[Entry, list[tuple[str, bytes]]]] = {}
            for e in self._unlinked:
                values = e.attrs.get(forward)
                if not values or entries.get(e.ndn) is not e:
                    continue
                value = e.dn.encode("utf-8")  # one object for every back link naming e
                done: set[int] = set()
                for v in values:
                    # The member's entry by the DN text it was stored with, as `_dn_key`.
                    text = v.decode("utf-8", "replace")
                    target = spelled.get(text)
                    if target is None or target.dn != text or entries.get(target.ndn) is not target:
                        key = _safe_key(t, v)
                        target = entries.get(str(key))
                        if target is None:  # another domain's object: no back link
                            dangling.setdefault(key, set()).add(e)
                            continue
                    if id(target) in done:
                        continue
                    done.add(id(target))
                    if back in target.attrs:  # linked by an earlier load: one at a time
                        self._set_link(target, back, e.ndn, value)
                        continue
                    slot = pending.get(id(target))
                    if slot is None:
                        pending[id(target)] = (target, [(e.ndn, value)])
                    else:
                        slot[1].append((e.ndn, value))
            # Nothing has read the loaded entries yet: their attributes are set in place, in
            # the order `_set_link` keeps (by the linking object's DN).
            for target, found in pending.values():
                if len(found) > 1:
                    found.sort()
                target.attrs[back] = tuple([v for _, v in found])

    def _link_now(self, e: Entry) -> None:
        # An entry added after loading: its forward links take effect at once.
        if self._unlinked and self._unlinked[-1] is e:
            self._unlinked.pop()
            for forward in LINKS:
                self._relink(e, forward, (), e.attrs.get(forward, ()))

    def _relink(self, source: Entry, forward: str, old: Values, new: Values) -> None:
        """Source's forward link went from `old` to `new`: the named objects' back links
        follow. A value naming no object here (another domain's) has no back link."""
        t, back = self._types[forward], LINKS[forward]
        gone = {self._dn_key(t, v) for v in old}
        came = {self._dn_key(t, v) for v in new}
        me = source.ndn
        dangling = self._dangling[forward]
        for key in gone - came:
            target = self.entries.get(str(key))
            if target is not None:
                self._set_link(target, back, me, None)
            held = dangling.get(key)
            if held is not None:
                held.discard(source)
                if not held:
                    del dangling[key]
        value = source.dn.encode("utf-8")  # one object for every back link naming the source
        for key in came - gone:
            target = self.entries.get(str(key))
            if target is not None:
                self._set_link(target, back, me, value)
            else:  # another domain's object: no back link to answer for this value
                dangling.setdefault(key, set()).add(source)

    def _set_link(self, e: Entry, name: str, key: object, value: bytes | None) -> None:
        """Replace the value of `e`'s link attribute `name` whose key is `key` by `value`
        (None removes it; a new key is added): a directory-kept change, no USN."""
        t = self._types[name]
        current = e.attrs.get(name, ())
        at = next((i for i, v in enumerate(current) if self._dn_key(t, v) == key), None)
        if at is None:
            result = current if value is None else (*current, value)
        elif value is None:
            result = (*current[:at], *current[at + 1 :])
        else:  # the named object was renamed
            result = (*current[:at], value, *current[at + 1 :])
        if name in BACK_LINKS and len(result) > 1:
            # Back links in one order whatever their history (by the linking object's DN), so
            # a directory reloaded from its dump holds them as the running one did.
            result = tuple(sorted(result, key=lambda v: str(self._dn_key(t, v))))
        if result == current:
            return
        attrs = dict(e.attrs)
        if result:
            attrs[name] = result
        else:
            attrs.pop(name, None)
        if name in self._eq:
            self._index_remove(e, name, current)
            self._index_add(e, name, result)
        e.attrs = attrs

    def _unlink_all(self, e: Entry) -> None:
        # A deleted object leaves every link: its own forward links, and the values of other
        # objects' forward links that name it (a group loses the deleted member).
        for forward in LINKS:
            self._relink(e, forward, e.attrs.get(forward, ()), ())
        me = e.ndn
        for back, forward in BACK_LINKS.items():
            t = self._types[back]
            for v in e.attrs.get(back, ()):
                source = self.entries.get(str(_safe_key(t, v)))
                if source is not None:
                    self._set_link(source, forward, me, None)

    def token_groups(self, e: Entry) -> list[bytes]:
        """The constructed tokenGroups ([MS-ADTS] 3.1.1.4.5.19): the SIDs of the security
        groups `e` is in, directly or through nested groups, and of its primary group and the
        groups that one is in (Domain Users is in BUILTIN\\Users: S-1-5-32-545); none for an
        object without objectSid. Only the groups this directory holds count."""
        if "objectSid" not in e.attrs:
            return []
        member_of = self._types["memberOf"]
        sids: dict[bytes, None] = {}
        seen = {e.ndn}
        frontier = [e]
        primary = _int_of(e.attrs.get("primaryGroupID"))
        if primary and self._domain_sid is not None:
            # The primary group's membership is the account's primaryGroupID, not a member
            # value ([MS-ADTS] 3.1.1.4.5.19): its SID, then the groups it is in.
            primary_sid = self._sid_prefix + primary.to_bytes(4, "little")
            sids[primary_sid] = None
            for found in self.lookup(self._types["objectSid"], primary_sid):
                seen.add(found.ndn)
                frontier.append(found)
        while frontier:
            nxt = []
            for cur in frontier:
                for v in cur.attrs.get(member_of.name, ()):
                    group = self.entries.get(str(self._dn_key(member_of, v)))
                    if group is None or group.ndn in seen:
                        continue
                    seen.add(group.ndn)
                    nxt.append(group)
                    sid = group.attrs.get("objectSid", ())
                    if sid and _int_of(group.attrs.get("groupType")) & GROUP_TYPE_SECURITY_ENABLED:
                        sids[sid[0]] = None
            frontier = nxt
        return list(sids)

    def _follow_moves(self, moved: dict[str, Entry]) -> None:
        """Links name objects, not DNs: values naming a moved object now carry its new DN,
        on both sides of each link."""
        for old, m in moved.items():
            if m.ndn == old:
                continue
            value = m.dn.encode("utf-8")
            for name, other_side in (*LINKS.items(), *BACK_LINKS.items()):
                t = self._types[name]
                for v in m.attrs.get(name, ()):
                    key = str(_safe_key(t, v))
                    other = self.entries.get(key) or moved.get(key)
                    if other is not None:
                        self._set_link(other, other_side, old, value)

    def _dn_key(self, t: AttributeType, v: bytes) -> object:
        """The key of a DN value: the ndn of the entry stored with exactly this DN text (no
        parse, and the index shares the entry's string), else the value parsed."""
        try:
            text = v.decode("utf-8")
        except UnicodeDecodeError:
            return _safe_key(t, v)
        e = self._by_spelling.get(text)
        if e is not None and e.dn == text and self.entries.get(e.ndn) is e:
            return e.ndn
        return _safe_key(t, v)

    def _key(self, t: AttributeType, v: bytes) -> object:
        if t.syntax is Syntax.STRING:  # t.key's answer, without its dispatch (most keys)
            try:
                return v.decode("utf-8").casefold()
            except UnicodeDecodeError:
                return v
        if t.name in LINK_SIDES:
            # A link's values name objects here (a group's members): 200,000 distinct DNs
            # would fill the cache below, and the named entry already holds the key.
            return self._dn_key(t, v)
        # objectClass and objectCategory values repeat on every entry: parse each once.
        cache = self._key_cache.get(t.syntax)
        if cache is not None:
            k = cache.get(v)
            if k is None:
                k = cache[v] = _safe_key(t, v)
            return k
        return _safe_key(t, v)

    def _index_add(self, e: Entry, name: str, values: Values) -> None:
        idx, t = self._eq[name], self._types[name]
        ordered = self._ordered.get(name)  # not made yet: `prefix` makes it from the keys
        for v in values:
            k = self._key(t, v)
            cur = idx.get(k)
            if cur is None:
                idx[k] = e
                if ordered is not None and isinstance(k, str):
                    ordered.added(k)
            elif isinstance(cur, Entry):
                if cur is not e:
                    idx[k] = {cur, e}
            else:
                cur.add(e)

    def _index_remove(self, e: Entry, name: str, values: Values) -> None:
        idx, t = self._eq[name], self._types[name]
        ordered = self._ordered.get(name)
        for v in values:
            k = self._key(t, v)
            cur = idx.get(k)
            if cur is e:
                del idx[k]
                if ordered is not None and isinstance(k, str):
                    ordered.removed(k)
            elif isinstance(cur, set):
                cur.discard(e)
                if len(cur) == 1:
                    idx[k] = next(iter(cur))

    def _note_stale(self) -> None:
        # Every change leaves one superseded log item behind; compact when they dominate, a
        # few items per change, so that no one write pays for a pass over the whole log.
        self._usn_stale += 1
        if self._old_keys:
            self._compact_step()
        elif self._usn_stale > max(1024, len(self._usn_keys) // 2):
            self._old_keys, self._old_entries, self._old_pos = self._usn_keys, self._usn_entries, 0
            self._usn_keys, self._usn_entries = [], []
            self._usn_stale = 0

    def _compact_step(self) -> None:
        keys, entries, i = self._old_keys, self._old_entries, self._old_pos
        j = min(i + _COMPACT_STEP, len(keys))
        current, kept_keys, kept_entries = self._current, self._kept_keys, self._kept_entries
        for k in range(i, j):
            e = entries[k]
            if current(e) and _usn_of(e) == keys[k]:
                kept_keys.append(keys[k])
                kept_entries.append(e)
        self._old_pos = j
        if j == len(keys):  # done: what it kept precedes what changed meanwhile
            self._usn_keys = kept_keys + self._usn_keys
            self._usn_entries = kept_entries + self._usn_entries
            self._kept_keys, self._kept_entries = [], []
            self._old_keys, self._old_entries, self._old_pos = [], [], 0


# Entries a step of `Store.warm_steps` indexes: about 5 ms on these machines.
_WARM_STEP = 2048


# Log items a change examines while a compaction runs: it ends within a quarter of the
# writes that began it, long before the superseded items can dominate again.
_COMPACT_STEP = 8


def _usn_of(e: Entry) -> int:
    v = e.attrs.get("uSNChanged")
    return int(v[0]) if v else 0


def _derived_name(e: Entry) -> Values:
    """The value of `name` when the entry does not store one (entry.rdn_value)."""
    return () if "name" in e.attrs else rdn_value(e.dn)


def _safe_key(t: AttributeType, v: bytes) -> object:
    try:
        return t.key(v)
    except InvalidValue:
        return v  # loaded data that does not parse is still findable by its bytes


def _parent_dn(dn: str) -> str:
    return format_dn(parse_dn(dn)[1:])


def rdn_key(attr: str, value: str) -> str:
    """Normalised form of one RDN (what a child's ndn starts with)."""
    return f"{attr.lower()}={escape_rdn_value(value.casefold())}"


def _int_of(values: Values | None) -> int:
    """An integer attribute's first value, 0 when absent or not a number."""
    try:
        return int(values[0]) if values else 0
    except ValueError:
        return 0
