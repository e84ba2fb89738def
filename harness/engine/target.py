"""The writeback engine's view of on-premises AD over LDAP (`ldapwire`): read users, plan, write.

`plan` turns current and desired values into the smallest modify; `LdapTarget` finds users by
the profile's match rule (`harness.engine.anchor`: by default base64 of mS-DS-ConsistencyGuid)
and applies one atomic ModifyRequest per user, returning LDAP failures as results (the engine
reports them per object) rather than raising.

Case-only changes: AD's Unicode string syntax compares case-insensitively but stores the
spelling it is given, and a case difference can matter to Exchange (``SMTP:`` marks the primary
proxy address, ``smtp:`` a secondary one). So string values are compared by their exact text
and a case-only change is written: a replace for a single-valued attribute, a delete of the old
spelling plus an add of the new one (in that order, in the same request) for a multi-valued one.
Other syntaxes (integers, booleans, DNs) are normalised by AD, so their comparison keys decide.
"""

from __future__ import annotations

import functools
import time
from collections import deque
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from harness.core.adschema import DEFAULT_SCHEMA, AttributeType, InvalidValue, Syntax
from harness.core.ber import BERError
from harness.core.ldapresult import SERVER_DOWN, LdapError, Result
from harness.engine.anchor import DEFAULT_MATCH, MatchRule
from harness.engine.ldapwire import (
    MODIFY_OPS,
    Attributes,
    Change,
    ConnectionLost,
    LdapConnection,
    Values,
    all_of,
    any_of,
    equal,
    present,
)

ANCHOR_ATTRIBUTE = DEFAULT_MATCH.attribute  # the default match rule's attribute
PAGE_SIZE = 1000
MAX_TRIES = 5
WINDOW = 64  # modifies in flight on the one connection
FIND_BATCH = 200  # anchors per OR search when matching a delta page
RETRYABLE_CODES = frozenset({Result.BUSY, Result.UNAVAILABLE})

T = TypeVar("T")
K = TypeVar("K", bound=Hashable)


# The same type as LdapError, under the name `harness/commands/cycle.py` imports.
LdapTargetError = LdapError


@dataclass(frozen=True)
class LdapCredentials:
    url: str
    bind_dn: str
    password: str
    base_dn: str


class AdValues(Mapping[str, Values]):
    """One object's values by attribute, read-only: a tuple in an order shared by all objects.

    A 200,000-user index holds one per user: ~290 bytes each where a dict took ~830.
    """

    __slots__ = ("_positions", "_values")

    def __init__(self, positions: dict[str, int], values: tuple[Values, ...]) -> None:
        self._positions = positions  # attribute -> index in `values`, shared
        self._values = values

    def __getitem__(self, name: str) -> Values:
        return self._values[self._positions[name]]

    def get(self, name: str, default: Any = None) -> Any:
        i = self._positions.get(name)
        return default if i is None else self._values[i]

    def __contains__(self, name: object) -> bool:
        return name in self._positions

    def __iter__(self) -> Iterator[str]:
        return iter(self._positions)

    def __len__(self) -> int:
        return len(self._positions)

    def __repr__(self) -> str:
        return repr(dict(self.items()))


@dataclass(slots=True)
class AdObject:
    """One AD user: its DN and the current values of the profile's targets (() = absent)."""

    dn: str
    values: Mapping[str, Values] = field(default_factory=dict)
    # Its key under the match rule (base64 mS-DS-ConsistencyGuid by default; anchor.py).
    anchor: str | None = field(default=None, compare=False)


@dataclass(frozen=True)
class WriteResult:
    ok: bool
    code: int
    message: str


# --- planning -----------------------------------------------------------------------------


_attribute = DEFAULT_SCHEMA.require


def _key(attr: AttributeType, v: str) -> object:
    """AD's comparison key; a value that does not parse is left for AD to reject."""
    try:
        return attr.key(v.encode("utf-8"))
    except InvalidValue:
        return v


def _identity(attr: AttributeType) -> Callable[[str], object]:
    """What makes two values the same for planning (see the module docstring)."""
    if attr.syntax in (Syntax.STRING, Syntax.OCTETS):
        return lambda v: v
    return lambda v: _key(attr, v)


@functools.lru_cache(maxsize=512)
def _rule(name: str) -> tuple[AttributeType, Callable[[str], object]]:
    attr = _attribute(name)
    return attr, _identity(attr)


def _unique(values: Iterable[str], attr: AttributeType) -> list[str]:
    """Values without repeats under AD's comparison key (AD can hold only one of them)."""
    first: dict[object, str] = {}
    for v in values:
        first.setdefault(_key(attr, v), v)
    return list(first.values())


def plan(current: Mapping[str, Values], desired: Mapping[str, Values]) -> list[Change]:
    """The minimal changes that turn `current` into `desired`, in `desired`'s attribute order.

    Single-valued: one replace (with () to clear) when the value differs. Multi-valued: a
    delete of exactly the values that are gone, then an add of the new ones. Attributes only
    in `current` are not managed and left alone; equal values give no change at all.
    """
    changes: list[Change] = []
    for name, want in desired.items():
        have = current.get(name, ())
        if have == want:  # the common case; AD cannot hold repeats, so neither does `want`
            continue
        attr, same = _rule(name)
        if attr.single:
            if len(want) > 1:
                raise ValueError(f"{name} is single-valued but {len(want)} values are desired")
            if len(have) == len(want) and all(
                same(a) == same(b) for a, b in zip(have, want, strict=True)
            ):
                continue
            changes.append(("replace", name, tuple(want)))
            continue
        want_list = _unique(want, attr)
        want_ids = {same(v) for v in want_list}
        have_ids = {same(v) for v in have}
        gone = tuple(v for v in have if same(v) not in want_ids)
        new = tuple(v for v in want_list if same(v) not in have_ids)
        if gone:
            changes.append(("delete", name, gone))  # before the add: frees a case-only respelling
        if new:
            changes.append(("add", name, new))
    return changes


# --- reading entries ------------------------------------------------------------------------

SHARED_VALUES = 1024  # distinct values per attribute that `_EntryReader` keeps to share


class _EntryReader:
    """Decodes one SearchResultEntry straight into an `AdObject` (`LdapConnection.search_entries`).

    A 200,000-user index is the engine's largest object, so it is built lean: the BER is
    walked inline (a call per element cost more than the decoding) and equal values are
    shared. The first `SHARED_VALUES` distinct values of each attribute are kept, each as the
    1-tuple an object holds, so the few recipient types and department codes of a tenant are
    decoded and stored once rather than once per user.
    """

    def __init__(self, attributes: list[str], match: MatchRule = DEFAULT_MATCH) -> None:
        # The match rule's attribute is read aside, into the object's anchor (its key).
        self.anchor_name = match.attribute.encode("ascii")
        self.anchor_wire = self.anchor_name.lower()
        self.anchor_key = match.ad_key
        self.positions = {a: i for i, a in enumerate(dict.fromkeys(attributes))}
        self.blank: list[Values] = [()] * len(self.positions)
        self.by_wire = {a.encode("ascii"): a for a in attributes}
        # The server's spelling of a requested name -> ours: AD answers in its own case, maybe
        # with options (member;range=0-1499).
        self.canonical = {a: a for a in attributes} | {a.casefold(): a for a in attributes}
        self.shared: dict[str, dict[bytes, Values]] = {a: {} for a in attributes}

    def _name(self, raw: bytes) -> str | None:
        """Our name for an attribute the server spelled differently (None: not requested)."""
        name = raw.decode("ascii")
        key = self.canonical.get(name)
        if key is None:
            key = self.canonical.get(name.split(";", 1)[0].casefold())
        return key

    def __call__(self, buf: bytes, pos: int, end: int) -> AdObject:
        # SearchResultEntry ::= SEQUENCE { objectName, attributes SEQUENCE OF
        #     SEQUENCE { type, vals SET OF value } }; each length in short or long form.
        n = buf[pos + 1]
        p = pos + 2
        if n & 0x80:
            k = n & 0x7F
            n = int.from_bytes(buf[p : p + k], "big")
            p += k
        dn = buf[p : p + n].decode("utf-8")
        p += n
        n = buf[p + 1]
        p += 2
        if n & 0x80:
            k = n & 0x7F
            n = int.from_bytes(buf[p : p + k], "big")
            p += k
        list_end = p + n
        values = self.blank.copy()
        anchor_raw = None
        by_wire, shared, positions = self.by_wire, self.shared, self.positions
        anchor_name = self.anchor_name
        while p < list_end:
            n = buf[p + 1]
            p += 2
            if n & 0x80:
                k = n & 0x7F
                n = int.from_bytes(buf[p : p + k], "big")
                p += k
            attr_end = p + n
            n = buf[p + 1]  # the type: an attribute name is shorter than 128 bytes
            if n & 0x80:
                raise BERError("attribute name longer than 127 bytes")
            raw_name = buf[p + 2 : p + 2 + n]
            p += 2 + n
            n = buf[p + 1]
            p += 2
            if n & 0x80:
                k = n & 0x7F
                n = int.from_bytes(buf[p : p + k], "big")
                p += k
            set_end = p + n
            key = by_wire.get(raw_name)
            if key is None and raw_name != anchor_name:
                key = self._name(raw_name)
            if key is None:
                if p < set_end and raw_name.split(b";", 1)[0].lower() == self.anchor_wire:
                    n = buf[p + 1]  # single-valued and short: a GUID, or User_<id>
                    if n & 0x80:
                        k = n & 0x7F
                        n = int.from_bytes(buf[p + 2 : p + 2 + k], "big")
                        anchor_raw = buf[p + 2 + k : p + 2 + k + n]
                    else:
                        anchor_raw = buf[p + 2 : p + 2 + n]
                p = attr_end
                continue
            cache = shared[key]
            found: list[Values] = []
            while p < set_end:
                n = buf[p + 1]
                p += 2
                if n & 0x80:
                    k = n & 0x7F
                    n = int.from_bytes(buf[p : p + k], "big")
                    p += k
                raw = buf[p : p + n]
                p += n
                one = cache.get(raw)
                if one is None:
                    one = (raw.decode("utf-8"),)
                    if len(cache) < SHARED_VALUES:
                        cache[raw] = one
                found.append(one)
            if p != set_end or set_end != attr_end:
                raise BERError(f"malformed values of {key} in the entry of {dn}")
            values[positions[key]] = found[0] if len(found) == 1 else tuple([v[0] for v in found])
        if p != list_end or list_end > end:
            raise BERError(f"malformed search entry for {dn}")
        obj = AdObject(dn, AdValues(positions, tuple(values)))
        obj.anchor = self.anchor_key(anchor_raw) if anchor_raw else None
        return obj


# --- LDAP ---------------------------------------------------------------------------------


class LdapTarget:
    """AD as the engine sees it: users by anchor (`match`, the profile's rule), and one atomic
    modify per user.

    Busy (51), unavailable (52) and a dropped connection are retried with exponential backoff
    on a new, re-bound connection, up to `MAX_TRIES` tries per operation. Writes are pipelined
    (`apply_many`): up to `window` modifies in flight on the one connection.
    """

    def __init__(
        self,
        creds: LdapCredentials,
        attributes: list[str],
        *,
        timeout: float = 30,
        backoff: float = 0.2,
        page_size: int = PAGE_SIZE,
        window: int = WINDOW,
        match: MatchRule = DEFAULT_MATCH,
    ) -> None:
        if any(a.casefold() == match.attribute.casefold() for a in attributes):
            raise ValueError(f"{match.attribute} is the match rule's attribute, not a target")
        self.creds = creds
        self.attributes = list(attributes)
        self.match = match
        self.timeout = timeout
        self.backoff = backoff
        self.page_size = page_size
        self.window = window
        self.stats: dict[str, int] = {
            "searches": 0, "pages": 0, "modifies": 0, "retries": 0, "reconnects": 0
        }  # fmt: skip
        self.waited = 0.0  # seconds slept in backoff before retries
        self.duplicate_anchors: dict[str, list[str]] = {}  # anchor -> DNs beyond the first
        self._reader = _EntryReader(self.attributes, match)
        self._conn: LdapConnection | None = None
        self._connect()

    def __enter__(self) -> LdapTarget:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _connect(self) -> LdapConnection:
        self.close()
        try:
            conn = LdapConnection(self.creds.url, self.timeout)
        except ValueError as e:
            raise LdapError(SERVER_DOWN, str(e)) from None
        try:
            conn.bind(self.creds.bind_dn, self.creds.password)
        except LdapError:
            conn.close()
            raise
        self._conn = conn
        return conn

    def _pause(self, attempt: int) -> None:
        self.stats["retries"] += 1
        delay = self.backoff * 2 ** (attempt - 1)
        self.waited += delay
        time.sleep(delay)

    def _retrying(self, op: Callable[[LdapConnection], T]) -> T:
        """Run `op`, retrying transient failures; the last failure is raised."""
        failure = LdapError(SERVER_DOWN, "no attempt made")
        for attempt in range(MAX_TRIES):
            if attempt:
                self._pause(attempt)
            try:
                conn = self._conn
                if conn is None:
                    self.stats["reconnects"] += 1
                    conn = self._connect()
                return op(conn)
            except LdapError as e:
                if e.code not in RETRYABLE_CODES and e.code != SERVER_DOWN:
                    raise
                failure = e
            if failure.code != Result.BUSY:  # busy: the connection is fine, only the DC is loaded
                self.close()  # the socket may be unusable: start over
        raise failure

    # --- reads ---

    def _search(self, base: str, scope: str, flt: bytes, anchor: bool) -> list[AdObject]:
        """One (paged) search; its entries as objects, with their anchors (when asked for).

        Each entry becomes an object as it is read: the raw entries of a 200,000-user search
        are never all held at once.
        """
        attrs = [*self.attributes, self.match.attribute] if anchor else self.attributes

        def op(conn: LdapConnection) -> list[AdObject]:
            before = conn.pages
            try:
                return list(
                    conn.search_entries(self._reader, base, scope, flt, attrs, self.page_size)
                )
            finally:
                self.stats["pages"] += conn.pages - before

        self.stats["searches"] += 1
        return self._retrying(op)

    def search_raw(
        self, flt: bytes, attributes: list[str], base: str | None = None
    ) -> list[tuple[str, Attributes]]:
        """Entries of one retried subtree search below the base DN (paged), as raw attributes;
        ``base=""`` reads the root DSE (a base search, unpaged)."""
        root = base == ""
        where = self.creds.base_dn if base is None else base
        page = 0 if root else self.page_size

        def op(conn: LdapConnection) -> list[tuple[str, Attributes]]:
            before = conn.pages
            try:
                return list(conn.search(where, "base" if root else "sub", flt, attributes, page))
            finally:
                self.stats["pages"] += conn.pages - before

        self.stats["searches"] += 1
        return self._retrying(op)

    def _users(self, flt: bytes) -> list[AdObject]:
        return [
            o
            for o in self._search(self.creds.base_dn, "sub", flt, anchor=True)
            if o.anchor is not None
        ]

    def index(self) -> dict[str, AdObject]:
        """Every user with a source anchor, by anchor; one paged subtree search.

        Anchors held by more than one object keep the first and list the others in
        `duplicate_anchors`: the engine must not guess which one the cloud object means.
        """
        self.duplicate_anchors = {}
        found: dict[str, AdObject] = {}
        self._keep_first(
            self._users(all_of(equal("objectClass", "user"), present(self.match.attribute))), found
        )
        return found

    def _keep_first(self, objs: list[AdObject], found: dict[str, AdObject]) -> None:
        """Add `objs` to `found` by anchor; a repeated anchor goes to `duplicate_anchors`."""
        for obj in objs:
            assert obj.anchor is not None
            if obj.anchor in found:
                self.duplicate_anchors.setdefault(obj.anchor, []).append(obj.dn)
            else:
                found[obj.anchor] = obj

    def find_many(self, anchors: Iterable[str]) -> dict[str, AdObject]:
        """The users holding `anchors` (keys under the match rule), by anchor; one OR search
        per `FIND_BATCH`.

        A key no AD value can equal (an immutable id that is not base64) is not looked up. A
        key held by more than one object keeps the first and lists the others in
        `duplicate_anchors`, as `index` does.
        """
        rule = self.match
        values = [v for a in set(anchors) if (v := rule.assertion(a)) is not None]
        found: dict[str, AdObject] = {}
        for i in range(0, len(values), FIND_BATCH):
            chunk = values[i : i + FIND_BATCH]
            flt = all_of(
                equal("objectClass", "user"),
                any_of(*(equal(rule.attribute, v) for v in chunk)),
            )
            self._keep_first(self._users(flt), found)
        return found

    def find(self, anchor: str) -> AdObject | None:
        """The user holding key `anchor` under the match rule, by an indexed search.

        Raises ValueError for a key no AD value can equal (an immutable id that is not base64)
        and LdapError when more than one object holds it.
        """
        if self.match.assertion(anchor) is None:
            raise ValueError(f"{anchor!r} is not a base64 source anchor")
        self.duplicate_anchors.pop(anchor, None)
        obj = self.find_many([anchor]).get(anchor)
        if obj is not None and anchor in self.duplicate_anchors:
            dns = "; ".join([obj.dn, *self.duplicate_anchors[anchor]])
            raise LdapError(0, f"anchor {anchor} is held by several objects: {dns}")
        return obj

    def read(self, dn: str) -> AdObject:
        """The current values of one object by DN (after a write, or to re-plan)."""
        found = self._search(dn, "base", present("objectClass"), anchor=False)
        if not found:
            raise LdapError(Result.NO_SUCH_OBJECT, f"{dn}: no such object")
        return found[0]

    # --- writes ---

    def apply(self, dn: str, changes: list[Change]) -> WriteResult:
        """Write `changes` to `dn` in one atomic ModifyRequest; failures come back as results."""
        if not changes:
            return WriteResult(True, 0, "no changes")
        try:
            return next(self.apply_many([(dn, dn, changes)]))[1]
        except ConnectionLost as e:
            return WriteResult(False, e.code, e.message)

    def apply_many(
        self, writes: Iterable[tuple[K, str, list[Change]]]
    ) -> Iterator[tuple[K, WriteResult]]:
        """Write each (key, DN, changes) as one atomic modify; yield (key, result) as answered.

        Pipelined: up to `window` requests in flight. A request answered busy or unavailable
        is sent again after a backoff; after a dropped connection, the requests that had no
        answer are sent again on a new connection. A resent request may meet its own earlier
        write (the request reached AD but the answer was lost): a delete or add then fails
        with 16 or 20, and the caller should re-read and re-plan.
        """
        items: dict[K, tuple[str, list[Change]]] = {}
        queue: deque[tuple[K, str, list[Change]]] = deque()
        for key, dn, changes in writes:
            if any(op not in MODIFY_OPS for op, _, _ in changes):
                raise ValueError(f"{dn}: unknown modify operation in {changes!r}")
            items[key] = (dn, changes)
            queue.append((key, dn, changes))
        tries: dict[K, int] = {}
        lost_in_a_row = 0
        while queue:
            again: list[K] = []
            failure: LdapError | None = None
            conn: LdapConnection | None = None
            try:
                conn = self._conn
                if conn is None:
                    self.stats["reconnects"] += 1
                    conn = self._connect()
                for key, r in conn.modify_many(queue, self.window):
                    self.stats["modifies"] += 1
                    lost_in_a_row = 0
                    if r.code in RETRYABLE_CODES and tries.get(key, 1) < MAX_TRIES:
                        again.append(key)
                        if r.code == Result.UNAVAILABLE:  # this DC is going away: start over
                            again += list(conn.in_flight.values())
                            self.close()
                            break
                    else:
                        yield key, WriteResult(r.code == 0, r.code, r.message)
            except ConnectionLost as e:
                failure = e
                again += list(conn.in_flight.values()) if conn is not None else []
                self.close()
                lost_in_a_row += 1
                if lost_in_a_row >= MAX_TRIES:
                    raise  # AD stays unreachable: the cycle stops, its watermark unmoved
            for key in again:
                tries[key] = tries.get(key, 1) + 1
            for key in [k for k in again if tries[k] > MAX_TRIES]:
                code = failure.code if failure else SERVER_DOWN
                yield key, WriteResult(False, code, f"gave up after {MAX_TRIES} tries")
            again = [k for k in again if tries[k] <= MAX_TRIES]
            if again or failure:
                self._pause(max([tries[k] for k in again] + [lost_in_a_row, 1]))
                queue.extendleft((k, *items[k]) for k in reversed(again))
