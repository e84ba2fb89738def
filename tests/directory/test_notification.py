"""Change notification (LDAP_SERVER_NOTIFICATION_OID, 1.2.840.113556.1.4.528, [MS-ADTS]
3.1.1.3.4.1.9) over python-ldap's raw control and ldap3's extend.microsoft.persistent_search.

A notification search gets no answer when made; each change of an object in its scope brings
one entry under its message ID, with the attributes it asked for, until it is abandoned. On the
fake and Samba; slapd has no such control (ad_only; one ad_differs test shows its answer).
Nothing here sleeps to prove an absence: a later change that the same searches see is waited
for instead, and what came before it is all there was (a connection's answers keep their order;
on Samba, which looks for changes from time to time, such a check is weaker, never wrong).
"""

from __future__ import annotations

import contextlib
import socket
import time
from dataclasses import dataclass

import ldap
import pytest
from ldap.controls import LDAPControl
from ldap3 import ASYNC_STREAM, BASE, LEVEL, MODIFY_REPLACE, NONE, Connection, Server
from ldap3.utils.conv import escape_bytes
from ldaptor.protocols import pureber, pureldap

from harness.core.dn import normalize_dn
from mockservers.directory.server import _DECODER
from tests.directory.ldap_clients import connect, examined, is_ad, is_samba

NOTIFICATION_OID = "1.2.840.113556.1.4.528"
CORP = "OU=Corp,DC=contoso,DC=com"
CONTACT = ["top", "contact"]
WAIT = 15.0  # seconds a notification may take (Samba looks for changes periodically)
ADMIN_LIMIT, NO_SUCH_OBJECT, UNAVAILABLE = 11, 32, 52


@dataclass(frozen=True)
class Note:
    """What a notification search sent: an entry (`dn`, `attrs`) or its end (`code`)."""

    msg_id: int
    dn: str | None
    attrs: dict
    code: int | None = None


def python_ldap(run, who: str = "admin") -> ldap.ldapobject.LDAPObject:
    user, password = run.endpoints.account(who)
    conn = ldap.initialize(run.endpoints.ldap_url)
    conn.set_option(ldap.OPT_REFERRALS, 0)  # as AD clients set it
    conn.simple_bind_s(user, password)
    return conn


class Watcher:
    """A python-ldap connection holding notification searches, and what they send."""

    def __init__(self, run, who: str = "admin") -> None:
        self.conn = python_ldap(run, who)

    def watch(self, base: str, scope: int, attrs=None, flt="(objectClass=*)", critical=True):
        """Open a notification search and return its message ID once the server has taken it
        (a request answered after it on the same connection proves that); raise its refusal."""
        msg_id = self.conn.search_ext(
            base, scope, flt, attrs, serverctrls=[LDAPControl(NOTIFICATION_OID, critical)]
        )
        self.barrier()
        with contextlib.suppress(ldap.TIMEOUT):  # a refusal has come by now; an open search
            self.conn.result4(msg_id, all=0, timeout=0.01)  # has sent nothing
        return msg_id

    def barrier(self) -> None:
        """Return once the server has taken every request sent before (its answer to a later
        one on the same connection proves it). Samba has no WhoAmI: a root DSE read."""
        self.conn.search_s("", ldap.SCOPE_BASE, "(objectClass=*)", ["currentTime"])

    def until(self, *expected: tuple[int, str | None], timeout: float = WAIT) -> list[Note]:
        """Everything received until each (message ID, DN) of `expected` has come (a DN of
        None: the search's end)."""
        want = {(m, None if dn is None else normalize_dn(dn)) for m, dn in expected}
        got: list[Note] = []
        deadline = time.monotonic() + timeout
        while not want <= {(n.msg_id, n.dn) for n in got}:
            if time.monotonic() > deadline:
                raise AssertionError(f"waited {timeout} s for {want}; got {got}")
            try:
                kind, data, msg_id = self.conn.result4(ldap.RES_ANY, all=0, timeout=0.5)[:3]
            except ldap.TIMEOUT:
                continue
            except ldap.LDAPError as e:  # a search ended with an error
                info = e.args[0]
                got.append(Note(info.get("msgid", 0), None, {}, info["result"]))
                continue
            assert kind == ldap.RES_SEARCH_ENTRY, (kind, data)
            got += [Note(msg_id, normalize_dn(dn), attrs) for dn, attrs in data]
        return got


def seen(notes: list[Note]) -> set[tuple[int, str | None]]:
    return {(n.msg_id, n.dn) for n in notes}


@pytest.fixture()
def area(fresh_directory) -> tuple[object, Connection, str]:
    """(the directory, an admin ldap3 connection, an OU of the test's own with one contact)."""
    conn = connect(fresh_directory)
    ou = f"OU=Notify Test,{CORP}"
    assert conn.add(ou, ["top", "organizationalUnit"]), conn.result
    assert conn.add(f"CN=Existing,{ou}", CONTACT, {"sn": "x"}), conn.result
    return fresh_directory, conn, ou


def describe(conn: Connection, dn: str, text: str) -> None:
    assert conn.modify(dn, {"description": [(MODIFY_REPLACE, [text])]}), conn.result


@pytest.mark.ad_only("change notification")
def test_each_change_in_scope_is_one_entry_with_the_attributes_asked_for(area):
    run, writer, ou = area
    w = Watcher(run)
    one = w.watch(ou, ldap.SCOPE_ONELEVEL, ["cn", "uSNChanged"])
    base = w.watch(ou, ldap.SCOPE_BASE, ["ou"])
    sub = w.watch(CORP, ldap.SCOPE_SUBTREE, ["objectGUID"])
    child = f"CN=New,{ou}"
    assert writer.add(child, CONTACT, {"sn": "y"}), writer.result
    # The add: the one-level and the subtree search, once each, with what each asked for.
    added = w.until((one, child), (sub, child))
    assert sorted(n.msg_id for n in added) == sorted([one, sub])
    first = next(n.attrs for n in added if n.msg_id == one)
    assert set(first) == {"cn", "uSNChanged"} and first["cn"] == [b"New"]
    assert set(next(n.attrs for n in added if n.msg_id == sub)) == {"objectGUID"}
    # A modify of an attribute not asked for notifies too, with the current values.
    describe(writer, child, "changed")
    modified = w.until((one, child), (sub, child))
    assert sorted(n.msg_id for n in modified) == sorted([one, sub])
    now = next(n.attrs for n in modified if n.msg_id == one)
    assert int(now["uSNChanged"][0]) > int(first["uSNChanged"][0])
    # The OU itself: its base search and the subtree search, not the one-level one.
    describe(writer, ou, "changed too")
    own = w.until((base, ou), (sub, ou))
    assert sorted(n.msg_id for n in own) == sorted([base, sub])
    assert next(n.attrs for n in own if n.msg_id == base) == {"ou": [b"Notify Test"]}


@pytest.mark.ad_only("change notification")
def test_a_search_ends_only_when_abandoned_or_the_client_binds_again(area):
    run, writer, ou = area
    w = Watcher(run)
    first = w.watch(ou, ldap.SCOPE_ONELEVEL, ["cn"])
    second = w.watch(ou, ldap.SCOPE_ONELEVEL, ["cn"], critical=False)  # critical or not
    existing = f"CN=Existing,{ou}"
    describe(writer, existing, "one")
    assert sorted(n.msg_id for n in w.until((first, existing), (second, existing))) == sorted(
        [first, second]
    )
    w.conn.abandon(first)
    w.barrier()  # the abandon is taken
    describe(writer, existing, "two")
    assert [n.msg_id for n in w.until((second, existing))] == [second]


@pytest.mark.ad_only("change notification")
@pytest.mark.samba_differs("deleted and moved objects in notifications", branches=True)
def test_deletes_and_moves_are_changes_of_the_watched_object(area):
    run, writer, ou = area
    elsewhere = f"OU=Elsewhere,{CORP}"
    assert writer.add(elsewhere, ["top", "organizationalUnit"]), writer.result
    existing, moved = f"CN=Existing,{ou}", f"CN=Existing,{elsewhere}"
    w = Watcher(run)
    one = w.watch(ou, ldap.SCOPE_ONELEVEL, ["cn"])
    base = w.watch(existing, ldap.SCOPE_BASE, ["cn"])
    there = w.watch(elsewhere, ldap.SCOPE_ONELEVEL, ["cn"])
    # Moved out of one container into another; a new child of the first comes after.
    assert writer.modify_dn(existing, "CN=Existing", new_superior=elsewhere), writer.result
    marker = f"CN=Marker,{ou}"
    assert writer.add(marker, CONTACT, {"sn": "m"}), writer.result
    if is_samba(run):
        # Samba searches its scope for what changed: the move out of `ou` is not seen, and the
        # base search, whose DN is gone, ends with noSuchObject.
        notes = w.until((one, marker))
        assert (one, normalize_dn(moved)) not in seen(notes)
        if (base, None) not in seen(notes):
            notes += w.until((base, None))
        assert [n.code for n in notes if n.msg_id == base and n.code] == [NO_SUCH_OBJECT]
        assert writer.delete(marker), writer.result
        last = f"CN=Last,{ou}"
        assert writer.add(last, CONTACT, {"sn": "l"}), writer.result
        assert (one, normalize_dn(marker)) not in seen(w.until((one, last)))
        return
    notes = w.until((one, moved), (base, moved), (there, moved), (one, marker))
    assert seen(notes) == {(one, normalize_dn(moved)), (base, normalize_dn(moved)),
                           (there, normalize_dn(moved)), (one, normalize_dn(marker))}  # fmt: skip
    # Objects are watched, not names: the base search follows the object to its new name.
    describe(writer, moved, "moved")
    assert sorted(n.msg_id for n in w.until((base, moved), (there, moved))) == sorted([base, there])
    # A delete is a change too, notified as the tombstone: under CN=Deleted Objects now.
    assert writer.search(marker, "(objectClass=*)", "BASE", attributes=["objectGUID"])
    guid = writer.response[0]["raw_attributes"]["objectGUID"][0]
    assert writer.delete(marker), writer.result
    show_deleted = [("1.2.840.113556.1.4.417", True, None)]
    assert writer.search(
        CORP.split(",", 1)[1], f"(objectGUID={escape_bytes(guid)})", controls=show_deleted
    )
    tombstone = writer.response[0]["dn"]
    assert ",cn=deleted objects," in normalize_dn(tombstone)
    assert seen(w.until((one, tombstone))) == {(one, normalize_dn(tombstone))}


@pytest.mark.ad_only("change notification")
def test_a_back_link_is_no_change_of_the_member(area):
    run, writer, ou = area
    group, member = f"CN=Notify Group,{ou}", f"CN=Existing,{ou}"
    assert writer.add(group, ["top", "group"]), writer.result
    w = Watcher(run)
    watched = w.watch(member, ldap.SCOPE_BASE, ["memberOf"])
    children = w.watch(ou, ldap.SCOPE_ONELEVEL, ["member"])
    assert writer.modify(group, {"member": [(MODIFY_REPLACE, [member])]}), writer.result
    describe(writer, member, "after the link")  # the member's own change comes after
    notes = w.until((children, group), (watched, member), (children, member))
    assert seen(notes) == {(children, normalize_dn(group)), (watched, normalize_dn(member)),
                           (children, normalize_dn(member))}  # fmt: skip
    # The member's one notification is its own modify's, holding the back link.
    mine = next(n.attrs for n in notes if n.msg_id == watched)
    assert [normalize_dn(v.decode()) for v in mine["memberOf"]] == [normalize_dn(group)]


@pytest.mark.ad_only("change notification")
def test_only_the_filters_ad_takes_are_taken(area):
    run, _writer, ou = area
    w = Watcher(run)
    for flt in ("(objectClass=*)", "(objectGUID=*)", "(name=*)", "(|(objectClass=*)(cn=x))"):
        w.conn.abandon(w.watch(ou, ldap.SCOPE_BASE, ["cn"], flt=flt))
    for flt in ("(objectClass=user)", "(cn=*)", "(!(objectClass=*))", "(&(name=*)(cn=x))"):
        with pytest.raises(ldap.UNWILLING_TO_PERFORM) as refused:
            w.watch(ou, ldap.SCOPE_BASE, ["cn"], flt=flt)
        assert refused.value.args[0]["info"].startswith("000020B9")  # NOTIFY_FILTER_TOO_COMPLEX


@pytest.mark.ad_only("change notification")
@pytest.mark.samba_differs("the search past MaxNotificationPerConn", branches=True)
def test_a_connection_holds_max_notification_per_conn_searches(area):
    run, writer, ou = area
    w = Watcher(run)
    opened = [w.watch(ou, ldap.SCOPE_BASE, ["ou"]) for _ in range(5)]
    with pytest.raises(ldap.ADMINLIMIT_EXCEEDED) as refused:
        w.watch(ou, ldap.SCOPE_BASE, ["ou"])
    assert refused.value.args[0]["info"].startswith("00002024")
    # The five go on (Samba ends the first as well); another connection, the reader's (it may
    # read the OU), has its own.
    other = Watcher(run, "reader")
    theirs = other.watch(ou, ldap.SCOPE_BASE, ["ou"])
    describe(writer, ou, "five")
    going = opened[1:] if is_samba(run) else opened
    notes = w.until(*((m, ou) for m in going))
    if is_samba(run):
        assert Note(opened[0], None, {}, ADMIN_LIMIT) in notes
        notes = [n for n in notes if n.code is None]
    assert sorted(n.msg_id for n in notes) == sorted(going)
    assert [n.msg_id for n in other.until((theirs, ou))] == [theirs]
    w.conn.abandon(opened[1])  # one abandoned makes room for one more
    w.watch(ou, ldap.SCOPE_BASE, ["ou"])


@pytest.mark.ad_only("change notification")
def test_an_anonymous_client_cannot_watch(area):
    run, _writer, ou = area
    conn = ldap.initialize(run.endpoints.ldap_url)
    msg_id = conn.search_ext(
        ou, ldap.SCOPE_BASE, "(objectClass=*)", ["ou"],
        serverctrls=[LDAPControl(NOTIFICATION_OID, True)],
    )  # fmt: skip
    with pytest.raises(ldap.OPERATIONS_ERROR):
        conn.result4(msg_id, timeout=WAIT)


@pytest.mark.ad_only("change notification")
def test_ldap3_persistent_search_of_microsoft_sees_changes(area):
    run, writer, ou = area
    ep = run.endpoints
    conn = Connection(
        Server(ep.ldap_url, get_info=NONE), ep.admin_dn, ep.admin_password,
        client_strategy=ASYNC_STREAM, auto_bind=True,
    )  # fmt: skip
    search = conn.extend.microsoft.persistent_search(ou, LEVEL, ["cn"], streaming=False)
    try:
        conn.get_response(conn.search("", "(objectClass=*)", BASE, attributes=["currentTime"]))
        child = f"CN=Via ldap3,{ou}"
        assert writer.add(child, CONTACT, {"sn": "z"}), writer.result
        event = search.next(block=True, timeout=WAIT)
        assert event is not None and event["type"] == "searchResEntry"
        assert normalize_dn(event["dn"]) == normalize_dn(child)
        assert event["attributes"]["cn"] in ("Via ldap3", ["Via ldap3"])
    finally:
        search.stop()


@pytest.mark.ad_differs("change notification")
def test_without_the_control_a_server_answers_as_to_any_search(area):
    run, _writer, ou = area
    w = Watcher(run)
    if is_ad(run):  # taken, and open: nothing comes back
        w.watch(ou, ldap.SCOPE_BASE, ["ou"])
        with pytest.raises(ldap.TIMEOUT):
            w.conn.result4(ldap.RES_ANY, all=0, timeout=0.5)
        return
    # slapd: critical, unavailableCriticalExtension; not critical, an ordinary search.
    with pytest.raises(ldap.UNAVAILABLE_CRITICAL_EXTENSION):
        w.watch(ou, ldap.SCOPE_BASE, ["ou"])
    msg_id = w.conn.search_ext(
        ou, ldap.SCOPE_BASE, "(objectClass=*)", ["ou"],
        serverctrls=[LDAPControl(NOTIFICATION_OID, False)],
    )  # fmt: skip
    _kind, data = w.conn.result4(msg_id, timeout=WAIT)[:2]
    assert [normalize_dn(dn) for dn, _a in data] == [normalize_dn(ou)]


# --- inside the fake: the cost of nobody listening, and a slow reader ---------------------------


@pytest.mark.fake_only("the store's notification hook")
def test_a_write_pays_for_notification_only_while_someone_listens(area):
    run, writer, ou = area
    store = run.service.store

    def hook():
        return run.call(lambda: store.watch)

    assert hook() is None
    w = Watcher(run)
    w.conn.abandon(w.watch(ou, ldap.SCOPE_BASE, ["ou"]))
    w.barrier()
    assert hook() is None
    w.watch(ou, ldap.SCOPE_SUBTREE, ["ou"])
    assert hook() is not None
    w.conn.unbind_s()  # the connection's end closes its searches
    deadline = time.monotonic() + WAIT
    while hook() is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert hook() is None
    before = examined(run)
    describe(writer, ou, "nobody listens")
    assert examined(run) == before


def _message(msg_id: int, op, controls=None) -> bytes:
    return pureldap.LDAPMessage(op, id=msg_id, controls=controls).toWire()


def _messages(data: bytes) -> list[pureldap.LDAPMessage]:
    out = []
    while data:
        msg, used = pureber.berDecodeObject(_DECODER, data)
        if msg is None:
            break
        out.append(msg)
        data = data[used:]
    return out


def _slow_reader(run, base: str) -> socket.socket:
    """A connection with a small receive window that opens a subtree notification search
    asking for every attribute, and then reads nothing."""
    ep = run.endpoints
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect((ep.ldap_host, ep.ldap_port))
    s.sendall(_message(1, pureldap.LDAPBindRequest(dn=ep.admin_dn, auth=ep.admin_password)))
    assert _messages(s.recv(4096))[0].value.resultCode == 0
    watch = pureldap.LDAPSearchRequest(
        baseObject=base, scope=pureldap.LDAP_SCOPE_wholeSubtree,
        filter=pureldap.LDAPFilter_present("objectClass"), attributes=["*"],
    )  # fmt: skip
    s.sendall(_message(2, watch, [(NOTIFICATION_OID, True, None)]))
    return s


@pytest.mark.fake_only("the fake's notification backlog bound")
def test_a_reader_that_does_not_read_is_cut_off_and_the_others_get_everything(area):
    run, _writer, ou = area
    limit = 64 * 1024
    run.call(setattr, run.service.limits, "notification_backlog", limit)
    notifier, store = run.service.notifier, run.service.store
    slow = _slow_reader(run, ou)
    fast = Watcher(run)
    fast_id = fast.watch(ou, ldap.SCOPE_SUBTREE, ["*"])
    assert run.call(lambda: notifier.open_count) == 2
    existing = normalize_dn(f"CN=Existing,{ou}")

    def burst(n: int, start: int) -> int:
        """`n` changes; the most bytes waiting for a reader after them."""
        for i in range(start, start + n):
            store.modify(existing, [(2, "description", [b"x" * 500 + str(i).encode()])])
        return max((s.outbox.waiting_size for s in notifier.subscriptions() if s.outbox), default=0)

    # Bursts of 20 changes: what one reactor turn sends to the fast reader (about 25 KiB) fits
    # in Twisted's send buffer and the backlog, so a reader that reads between them keeps up.
    changes, most_waiting = 0, 0
    while run.call(lambda: notifier.open_count) == 2 and changes < 50_000:
        most_waiting = max(most_waiting, run.call(burst, 20, changes))
        changes += 20
        got: list[Note] = []
        while len(got) < 20:  # the fast reader, with every change
            got += fast.until((fast_id, existing))
        assert len(got) == 20 and {n.msg_id for n in got} == {fast_id}
    assert run.call(lambda: notifier.open_count) == 1, "the slow reader was never cut off"
    assert most_waiting <= limit
    # The slow reader, reading at last: the notifications sent before, then the notice.
    slow.settimeout(WAIT)
    data = b""
    while chunk := slow.recv(1 << 20):
        data += chunk
    slow.close()
    received = _messages(data)
    assert {m.id for m in received[:-1]} == {2}
    assert received[-1].id == 0 and received[-1].value.resultCode == UNAVAILABLE
    assert len(received) - 1 < changes  # it got some, not all: the rest were dropped
