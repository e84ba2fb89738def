"""Hostile bytes on the wire: the offending connection is closed with protocolError, and the
server keeps serving everyone else."""

from __future__ import annotations

import socket

from hypothesis import given, settings
from hypothesis import strategies as st
from ldaptor.protocols import pureber, pureldap

from mockservers.directory.server import _DECODER
from tests.directory.ldap_clients import connect


def raw_exchange(run, payload: bytes, timeout: float = 5.0) -> bytes:
    """Send bytes, then read until the server closes the connection (or the timeout)."""
    with socket.create_connection((run.endpoints.ldap_host, run.endpoints.ldap_port), 5) as s:
        s.settimeout(timeout)
        s.sendall(payload)
        chunks = []
        try:
            while True:
                data = s.recv(65536)
                if not data:
                    break
                chunks.append(data)
        except TimeoutError:
            chunks.append(b"<timeout>")
        return b"".join(chunks)


def notice_of_disconnection(data: bytes) -> pureldap.LDAPExtendedResponse:
    msg, _ = pureber.berDecodeObject(_DECODER, data)
    assert msg.id == 0
    assert msg.value.resultCode == 2
    return msg.value


def still_serving(run) -> None:
    conn = connect(run, "reader")
    assert conn.search(run.endpoints.base_dn, "(sAMAccountName=svc-lob-reader)")
    assert len(conn.entries) == 1


def test_garbage_gets_protocol_error_and_close(directory):
    reply = raw_exchange(directory, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    notice_of_disconnection(reply)
    still_serving(directory)


def test_oversized_length_is_refused_at_once(directory):
    # A header announcing 1 GiB: refused before any of it is buffered.
    reply = raw_exchange(directory, b"\x30\x84\x40\x00\x00\x00\x02\x01\x01")
    notice_of_disconnection(reply)
    still_serving(directory)


def test_well_framed_but_undecodable_message(directory):
    # A SEQUENCE whose content is not a messageID and an operation.
    reply = raw_exchange(directory, b"\x30\x05\x04\x03abc")
    notice_of_disconnection(reply)
    still_serving(directory)


def test_truncated_message_then_close_leaves_server_healthy(directory):
    with socket.create_connection(
        (directory.endpoints.ldap_host, directory.endpoints.ldap_port)
    ) as s:
        s.sendall(b"\x30\x0c\x02\x01\x01\x60\x07\x02\x01")  # half a bind request
    still_serving(directory)


def test_unknown_critical_control_is_refused(directory):
    from ldap3 import BASE

    conn = connect(directory, "reader")
    conn.search(
        directory.endpoints.base_dn,
        "(objectClass=*)",
        BASE,
        controls=[("1.2.3.4.5.6.7", True, None)],
    )
    assert conn.result["result"] == 12
    conn.search(
        directory.endpoints.base_dn,
        "(objectClass=*)",
        BASE,
        controls=[("1.2.3.4.5.6.7", False, None)],
    )
    assert conn.result["result"] == 0  # non-critical unknown controls are ignored


@settings(max_examples=30, deadline=None)
@given(st.binary(min_size=1, max_size=300))
def test_random_bytes_never_break_the_server(directory, payload):
    with socket.create_connection(
        (directory.endpoints.ldap_host, directory.endpoints.ldap_port)
    ) as s:
        s.settimeout(2)
        s.sendall(payload)
        s.shutdown(socket.SHUT_WR)
        try:
            while s.recv(65536):
                pass
        except (TimeoutError, ConnectionResetError):
            pass
    still_serving(directory)


def test_abandon_gets_no_reply_and_unbind_closes(directory):
    from ldaptor.protocols.pureldap import (
        LDAPAbandonRequest,
        LDAPMessage,
        LDAPSearchRequest,
        LDAPUnbindRequest,
    )

    stream = b"".join(
        LDAPMessage(op, id=n).toWire()
        for n, op in (
            (1, LDAPAbandonRequest(id=99)),  # nothing outstanding: no response at all
            (2, LDAPSearchRequest(baseObject="", scope=0)),  # the rootDSE
            (3, LDAPUnbindRequest()),  # the server closes the connection
        )
    )
    reply = raw_exchange(directory, stream)
    ids = []
    while reply:
        msg, used = pureber.berDecodeObject(_DECODER, reply)
        ids.append((msg.id, type(msg.value).__name__))
        reply = reply[used:]
    assert ids == [(2, "LDAPSearchResultEntry"), (2, "LDAPSearchResultDone")]
