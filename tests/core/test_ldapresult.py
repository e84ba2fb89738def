"""One LdapError for the fake's server and the engine's client."""

from __future__ import annotations

import socket

import pytest

from harness.core.ldapresult import SERVER_DOWN, LdapError, Result
from harness.engine import ldapwire
from mockservers.directory import errors


def test_a_catalogued_error_carries_code_text_and_matched_dn():
    e = errors.no_such_object("OU=Corp,DC=contoso,DC=com")
    assert isinstance(e, LdapError)
    assert e.code == 32 and type(e.code) is int  # not the enum: callers compare and print it
    assert e.matched_dn == "OU=Corp,DC=contoso,DC=com"
    assert str(e) == f"LDAP 32: {e.message.strip()}"


def test_the_client_raises_the_same_type_with_the_client_side_code():
    with socket.socket() as s:  # a port nobody listens on: bound, never listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        with pytest.raises(LdapError) as err:
            ldapwire.LdapConnection(f"ldap://127.0.0.1:{port}", timeout=2)
    assert isinstance(err.value, ldapwire.ConnectionLost)
    assert err.value.code == SERVER_DOWN == 81
    assert SERVER_DOWN not in {int(r) for r in Result}  # no server ever answers it


def test_a_reply_becomes_the_error_with_the_servers_matched_dn():
    e = ldapwire.Reply(32, "OU=Corp,DC=contoso,DC=com", "no such object").error()
    assert (e.code, e.matched_dn, e.message) == (32, "OU=Corp,DC=contoso,DC=com", "no such object")
