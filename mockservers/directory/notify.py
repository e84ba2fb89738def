"""Change notification: LDAP_SERVER_NOTIFICATION_OID ([MS-ADTS] 3.1.1.3.4.1.9).

A search with this control gets no answer when it is made. It stays open, and each time an
object in its scope changes (added, modified, renamed or moved, deleted) the server sends one
SearchResultEntry under the search's message ID with the object's current attributes, those the
search asked for; it ends only when the client abandons it, binds again or goes away. What a
change is follows Microsoft's "Change Notifications in Active Directory Domain Services": for a
base search, the object's attributes change or it is deleted or moved; for a one-level search,
a child is created, deleted, moved (out or in) or modified; a subtree search (allowed on any
base since Windows Server 2003) sees every object below its base in the base's partition.
Renaming or moving an ancestor notifies no one about the objects below it, and what the
directory keeps itself (back links, such as a member's memberOf) is no change of that object.
Searches watch objects, not names: a watched object or container that is renamed is still
watched.

Two halves. `Notifier` is the directory's: every open notification search, keyed by the object
it watches, and the store's `watch` hook while at least one is open (with none open the hook is
None, so a write costs one attribute test). `Outbox` is one connection's: its open searches
(at most `Limits.max_notifications_per_connection`, AD's MaxNotificationPerConn) and the encoded
entries its reader has not taken yet. The connection registers as a streaming producer with its
transport; while Twisted's send buffer is full, entries wait in the outbox, and past
`Limits.notification_backlog` bytes waiting the connection is ended (`overflow`), as Microsoft
only says a client "must" process notifications quickly and a client that reconnects must
register again and re-read the objects anyway.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Final

from ldaptor.protocols import pureldap

from harness.core.adschema import Schema
from harness.core.ber import SCOPE_BASE, SCOPE_ONE, SCOPE_SUBTREE
from mockservers.directory import controls as controls_
from mockservers.directory import errors
from mockservers.directory.entry import Entry
from mockservers.directory.store import Store

log = logging.getLogger(__name__)
NOTIFICATION_OID: Final = "1.2.840.113556.1.4.528"
# [MS-ADTS] permits only (objectClass=*). Windows also takes the presence of the other
# attributes every object has, an AND of accepted terms and an OR with one accepted term:
# Samba's dsdb_notification.c, checked by its tests that are written to pass on Windows
# (source4/dsdb/tests/python/notification.py, test_invalid_filter).
_ON_EVERY_OBJECT: Final = frozenset({"objectclass", "objectguid", "distinguishedname", "name"})


def requested(controls: Iterable[Any] | None) -> bool:
    """Whether a request's controls ask for change notification (critical or not)."""
    return controls_.has(controls, NOTIFICATION_OID)


def check_filter(f: object, schema: Schema) -> None:
    """Refuse a notification filter AD refuses (unwillingToPerform)."""
    if not _accepted(f, schema):
        raise errors.notify_filter_too_complex()


def _accepted(f: object, schema: Schema) -> bool:
    if isinstance(f, pureldap.LDAPFilter_present):
        name = _text(f.value)
        t = schema.get(name)
        return (t.name if t is not None else name).casefold() in _ON_EVERY_OBJECT
    if isinstance(f, pureldap.LDAPFilter_and):
        kids = list(f)
        return bool(kids) and all(_accepted(k, schema) for k in kids)
    if isinstance(f, pureldap.LDAPFilter_or):
        return any(_accepted(k, schema) for k in f)
    return False


def _text(v: bytes | str) -> str:
    return v.decode("utf-8", "replace") if isinstance(v, bytes) else v


@dataclass(eq=False, slots=True)
class Subscription:
    """One open notification search: the object it watches (`base`), how (`scope`), and where
    a changed object goes (`deliver`, the connection's)."""

    msg_id: int
    base: Entry
    scope: int
    deliver: Callable[[Subscription, Entry], None]
    outbox: Outbox | None = None  # the connection's, once opened there


class Notifier:
    """Every open notification search of the directory, by the object its base names."""

    def __init__(self, store: Store) -> None:
        self.store = store
        # By scope: the watched entry -> its subscriptions (dicts: delivered in opening order).
        self._by_scope: dict[int, dict[Entry, dict[Subscription, None]]] = {
            SCOPE_BASE: {},
            SCOPE_ONE: {},
            SCOPE_SUBTREE: {},
        }
        self.open_count = 0

    def open(self, sub: Subscription) -> None:
        self._by_scope[sub.scope].setdefault(sub.base, {})[sub] = None
        self.open_count += 1
        self.store.watch = self.changed

    def subscriptions(self) -> list[Subscription]:
        """Every open notification search, of every connection."""
        return [s for watching in self._by_scope.values() for g in watching.values() for s in g]

    def close(self, sub: Subscription) -> None:
        watching = self._by_scope[sub.scope]
        subs = watching.get(sub.base)
        if subs is None or subs.pop(sub, False) is False:
            return
        if not subs:
            del watching[sub.base]
        self.open_count -= 1
        if not self.open_count:
            self.store.watch = None  # writes are free again

    def changed(self, e: Entry, old_parent: str | None) -> None:
        """The store's hook: `e` was written (`old_parent`: its parent before a move)."""
        for sub in self.audience(e, old_parent):
            try:
                sub.deliver(sub, e)
            except Exception:  # a write is committed: a notifier bug must not undo its answer
                log.exception("change notification for %s failed", e.dn)

    def audience(self, e: Entry, old_parent: str | None = None) -> list[Subscription]:
        """The open searches that see a change of `e`: watching it (base, subtree), its parent
        before or after a move (one-level), or an ancestor in its partition (subtree)."""
        base, one, sub = (self._by_scope[s] for s in (SCOPE_BASE, SCOPE_ONE, SCOPE_SUBTREE))
        found: dict[Subscription, None] = {}
        for watching in (base, sub):
            if e in watching:
                found.update(watching[e])
        store = self.store
        roots = store.naming_contexts
        if (one or sub) and e.ndn not in roots:  # a partition's root is no child of another's
            parents = [e.parent] if old_parent in (None, e.parent) else [e.parent, old_parent]
            for ndn in parents:
                cur = store.entries.get(ndn)
                if cur is not None and cur in one:
                    found.update(one[cur])
                while sub and cur is not None:
                    if cur in sub:
                        found.update(sub[cur])
                    if cur.ndn in roots:
                        break
                    cur = store.entries.get(cur.parent)
        return list(found)


class Outbox:
    """One connection's open notification searches and the entries waiting for its reader.

    `send` writes to the connection; `overflow` ends it (more than `limit` bytes waited)."""

    def __init__(
        self,
        notifier: Notifier,
        send: Callable[[bytes], None],
        overflow: Callable[[], None],
        limit: int,
    ) -> None:
        self.notifier = notifier
        self.send = send
        self.overflow = overflow
        self.limit = limit
        self.subs: dict[int, Subscription] = {}
        self.paused = False  # the transport's buffer is full (IPushProducer.pauseProducing)
        self.waiting: deque[tuple[int, bytes]] = deque()
        self.waiting_size = 0

    def open(self, sub: Subscription) -> None:
        old = self.subs.pop(sub.msg_id, None)
        if old is not None:  # a message ID reused while its search is open: the new one wins
            self.notifier.close(old)
        self.subs[sub.msg_id] = sub
        sub.outbox = self
        self.notifier.open(sub)

    def end(self, msg_id: int) -> None:
        """Close one search (abandoned, or ended by an error); drop its waiting entries."""
        sub = self.subs.pop(msg_id, None)
        if sub is None:
            return
        self.notifier.close(sub)
        if self.waiting:
            kept = [(m, d) for m, d in self.waiting if m != msg_id]
            self.waiting = deque(kept)
            self.waiting_size = sum(len(d) for _m, d in kept)

    def end_all(self) -> None:
        for msg_id in list(self.subs):
            self.end(msg_id)
        self.waiting.clear()
        self.waiting_size = 0

    def push(self, msg_id: int, data: bytes) -> None:
        """Send `data` now, or keep it until the reader catches up (in order)."""
        if not self.paused and not self.waiting:
            self.send(data)
            return
        self.waiting.append((msg_id, data))
        self.waiting_size += len(data)
        if self.waiting_size > self.limit:
            self.end_all()
            self.overflow()

    def pause(self) -> None:
        self.paused = True

    def resume(self) -> None:
        self.paused = False
        while self.waiting and not self.paused:  # a send may fill the buffer again
            _msg_id, data = self.waiting.popleft()
            self.waiting_size -= len(data)
            self.send(data)
