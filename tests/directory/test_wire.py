"""Hostile bytes on the wire: the offending connection is closed (by AD with a Notice of
Disconnection, protocolError), and the server keeps serving everyone else. Runs on the fake AD
on OpenLDAP slapd and on a Samba AD DC."""

from __future__ import annotations

import contextlib
import socket

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ldaptor.protocols import pureber, pureldap

from mockservers.directory.server import _DECODER
from tests.directory.ldap_clients import connect, is_ad, is_samba


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
        except ConnectionResetError:  # closed with unread bytes: a reset, also a close
            pass
        return b"".join(chunks)


def notice_of_disconnection(data: bytes) -> pureldap.LDAPExtendedResponse:
    msg, _ = pureber.berDecodeObject(_DECODER, data)
    assert msg.id == 0
    assert msg.value.resultCode == 2
    return msg.value


def closed_as_the_backend_closes(run, reply: bytes) -> None:
    """AD sends a Notice of Disconnection (protocolError) and closes; slapd just closes; Samba
    closes (often with a reset) without a notice."""
    assert not reply.endswith(b"<timeout>"), "the server kept the connection open"
    if is_samba(run):
        return
    if is_ad(run):
        notice_of_disconnection(reply)
    else:
        assert reply == b""


def still_serving(run) -> None:
    conn = connect(run, "reader")
    assert conn.search(run.endpoints.base_dn, "(sAMAccountName=svc-lob-reader)")
    assert len(conn.entries) == 1


# An HTTP request on the LDAP port. Its first bytes read as a BER header announcing 69 bytes
# ("G" then "E"), and slapd waits for all of them before it judges: a real client sends more.
HTTP_REQUEST = (
    b"GET / HTTP/1.1\r\nHost: dc01.contoso.com\r\nUser-Agent: curl/8.5.0\r\nAccept: */*\r\n\r\n"
)


@pytest.mark.ad_differs("wire errors")
@pytest.mark.samba_differs("wire errors", branches=True)
def test_garbage_gets_protocol_error_and_close(directory):
    reply = raw_exchange(directory, HTTP_REQUEST)
    closed_as_the_backend_closes(directory, reply)
    still_serving(directory)


@pytest.mark.ad_differs("wire errors")
@pytest.mark.samba_differs("wire errors", branches=True)
def test_oversized_length_is_refused_at_once(directory):
    # A header announcing 1 GiB: refused before any of it is buffered.
    reply = raw_exchange(directory, b"\x30\x84\x40\x00\x00\x00\x02\x01\x01")
    closed_as_the_backend_closes(directory, reply)
    still_serving(directory)


@pytest.mark.ad_differs("wire errors")
@pytest.mark.samba_differs("wire errors", branches=True)
def test_well_framed_but_undecodable_message(directory):
    # A SEQUENCE whose content is not a messageID and an operation.
    reply = raw_exchange(directory, b"\x30\x05\x04\x03abc")
    closed_as_the_backend_closes(directory, reply)
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
        # The server may close (even reset) the connection before all of it is sent.
        with contextlib.suppress(OSError):
            s.sendall(payload)
            s.shutdown(socket.SHUT_WR)
            while s.recv(65536):
                pass
    still_serving(directory)


def test_abandon_gets_no_reply_and_unbind_closes(directory):
    from ldaptor.protocols.pureldap import (
        LDAPAbandonRequest,
        LDAPMessage,
        LDAPSearchRequest,
        LDAPUnbindRequest,
    )

    ep = directory.endpoints
    with socket.create_connection((ep.ldap_host, ep.ldap_port), 5) as s:
        s.settimeout(5)
        s.sendall(
            LDAPMessage(LDAPAbandonRequest(id=99), id=1).toWire()  # nothing outstanding
            + LDAPMessage(LDAPSearchRequest(baseObject="", scope=0), id=2).toWire()  # rootDSE
        )
        reply, ids = b"", []
        while not ids or ids[-1][1] != "LDAPSearchResultDone":
            data = s.recv(65536)
            assert data, f"closed after {ids}"
            reply += data
            while True:
                try:
                    msg, used = pureber.berDecodeObject(_DECODER, reply)
                except pureber.BERExceptionInsufficientData:
                    break
                if msg is None:
                    break
                ids.append((msg.id, type(msg.value).__name__))
                reply = reply[used:]
        # The abandon got no response at all; the search its entry and its done.
        assert ids == [(2, "LDAPSearchResultEntry"), (2, "LDAPSearchResultDone")]
        # An unbind gets no response either: the server closes the connection. (Sent on its
        # own: slapd runs operations concurrently and may drop replies still outstanding.)
        s.sendall(LDAPMessage(LDAPUnbindRequest(), id=3).toWire())
        assert s.recv(65536) == b""
