"""Malformed LDAP against the fake AD (issue 9, "Bad input"), on a raw socket.

What tests/directory/test_wire.py already proves (garbage, a 1 GiB length, an undecodable
SEQUENCE, half a bind then close, random bytes) is not repeated here. These add: an unknown
application tag, a length just above MaxReceiveBuffer, an invalid filter inside a
SearchRequest, invalid DNs (34 invalidDNSyntax) on search and on both modify paths, a modify
operation number the fast path (`ber.read_modify`) lets through (protocolError 2), and
Hypothesis mutations of valid SearchRequests and ModifyRequests sent after a real bind.

In every case the answer is either a result code (never 80 "internal error": that would be an
exception caught inside the server) or a Notice of Disconnection with protocolError, and a
second, well-behaved ldap3 connection gets correct answers afterwards. The fake only: the
raw-socket assertions hold AD's exact wire behaviour, which slapd does not share.
"""

from __future__ import annotations

import contextlib
import re
import socket

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ldap3 import NONE, Connection, Server
from ldaptor import delta
from ldaptor.protocols import pureber, pureldap

from harness.core import ber
from harness.tenant import TenantSpec, generate
from mockservers.directory.server import _DECODER

OTHER = 80  # what the server answers when an exception reached its catch-all
NOTICE_OID = b"1.3.6.1.4.1.1466.20036"
# A Python exception's class name (UnknownBERTag, BERExceptionInsufficientData, KeyError, ...).
PYTHON_NAME = re.compile(r"\b(?:[A-Z][a-z]+)+(?:Error|Exception\w*|BER\w*|Tag)\b|BER[A-Z]")
pytestmark = pytest.mark.shared_tenant  # `run`: one tenant's fake AD for the module


@pytest.fixture(scope="module")
def tenant():
    return generate(TenantSpec(mailboxes=60, seed=9))


def user_dn(tenant) -> str:
    return next(u.dn for u in tenant.ad_users if ",OU=Corp," in u.dn and u.mail)


def still_serving(run, tenant) -> None:
    """A second, well-behaved client: bind, read one user, write one writeback attribute."""
    ep = run.endpoints
    conn = Connection(Server(ep.ldap_url, get_info=NONE), ep.bind_dn, ep.bind_password)
    assert conn.bind(), conn.result
    dn = user_dn(tenant)
    assert conn.search(dn, "(objectClass=user)", "BASE", attributes=["distinguishedName"])
    assert [e.entry_dn for e in conn.entries] == [dn]
    assert conn.modify(dn, {"extensionAttribute9": [("MODIFY_REPLACE", ["still-ok"])]})
    conn.unbind()


def decode_all(data: bytes) -> list[pureldap.LDAPMessage]:
    out = []
    while data:
        msg, used = pureber.berDecodeObject(_DECODER, data)
        assert msg is not None, data
        out.append(msg)
        data = data[used:]
    return out


def bind_request(run, msg_id: int = 1) -> bytes:
    ep = run.endpoints
    return pureldap.LDAPMessage(
        pureldap.LDAPBindRequest(dn=ep.bind_dn, auth=ep.bind_password), id=msg_id
    ).toWire()


def exchange(run, *payloads: bytes, bind: bool = True, timeout: float = 3.0) -> bytes:
    """Optionally bind, send the payloads, and read until the server closes, answers the last
    request completely (a response that is not a search entry or reference), or goes quiet for
    `timeout` seconds (a truncated request: the server waits for the rest, as it should).

    No half-close: the fake, like AD, drops a connection whose client has shut down its side.
    """
    ep = run.endpoints
    with socket.create_connection((ep.ldap_host, ep.ldap_port), 5) as s:
        s.settimeout(timeout)
        if bind:
            s.sendall(bind_request(run))
            [reply] = read_until_done(s)
            assert reply.value.resultCode == 0
        with contextlib.suppress(OSError):  # the server may close before all of it is sent
            for p in payloads:
                s.sendall(p)
        return read_raw(s)


def complete(data: bytes) -> bool:
    try:
        msgs = decode_all(data)
    except pureber.BERExceptionInsufficientData:
        return False
    return bool(msgs) and not isinstance(
        msgs[-1].value, pureldap.LDAPSearchResultEntry | pureldap.LDAPSearchResultReference
    )


def read_raw(s: socket.socket) -> bytes:
    got = b""
    try:
        while not complete(got) and (data := s.recv(65536)):
            got += data
    except (TimeoutError, ConnectionResetError):
        pass
    return got


def read_until_done(s: socket.socket) -> list[pureldap.LDAPMessage]:
    return decode_all(read_raw(s))


def notice(data: bytes) -> str:
    """The Notice of Disconnection that ends `data`: its diagnostic message."""
    msgs = decode_all(data)
    last = msgs[-1]
    assert last.id == 0, msgs
    assert isinstance(last.value, pureldap.LDAPExtendedResponse), msgs
    assert last.value.resultCode == 2
    assert last.value.responseName == NOTICE_OID
    text = last.value.errorMessage.decode()
    assert not PYTHON_NAME.search(text), text  # AD's words, not the fake's exception names
    return text


def only_result(data: bytes, msg_id: int = 2) -> pureldap.LDAPResult:
    [msg] = decode_all(data)
    assert msg.id == msg_id
    return msg.value


def modify_request(msg_id: int, dn: bytes, op: int, name: bytes, values: list[bytes]) -> bytes:
    """A control-free ModifyRequest, the shape `ber.read_modify` takes on its fast path."""
    change = ber.sequence(
        ber.integer(op, tag=ber.ENUMERATED),
        ber.sequence(ber.octets(name), ber.sequence(*map(ber.octets, values), tag=ber.SET)),
    )
    return ber.message(
        msg_id, ber.sequence(ber.octets(dn), ber.sequence(change), tag=ber.APP_MODIFY_REQUEST)
    )


# --- framing -------------------------------------------------------------------------------------


def test_unknown_application_tag_gets_protocol_error(run, tenant):
    # [APPLICATION 30] is no LDAP operation: AD answers a Notice of Disconnection.
    reply = exchange(run, ber.message(2, ber.tlv(0x7E, ber.octets(b"x"))))
    text = notice(reply)
    assert "DSID-" in text and "comment: Error decoding ldap message," in text, text
    still_serving(run, tenant)


def test_a_length_just_above_max_receive_buffer_is_refused_unread(run, tenant):
    limit = run.service.limits.max_receive_buffer
    header = bytes([0x30, 0x84]) + (limit + 1).to_bytes(4, "big")
    reply = exchange(run, header + b"\x02\x01\x02", bind=False)
    assert "MaxReceiveBuffer" in notice(reply)
    still_serving(run, tenant)


def test_a_message_at_max_receive_buffer_is_still_read(run, tenant):
    # A message just under the limit is framed and decoded, and gets a result code.
    limit = run.service.limits.max_receive_buffer
    dn = user_dn(tenant).encode()
    size = limit - 24
    while len(req := modify_request(2, dn, 2, b"extensionAttribute9", [b"a" * size])) > limit:
        size -= len(req) - limit
    assert limit - 16 < len(req) <= limit
    res = only_result(exchange(run, req))
    assert res.resultCode in (0, 19, 21), res  # written, or refused by the schema's rangeUpper
    still_serving(run, tenant)


# --- search --------------------------------------------------------------------------------------


def search_request(msg_id: int, base: bytes, filt: bytes) -> bytes:
    """A SearchRequest with a caller-built filter (raw BER), subtree, no attributes."""
    return ber.message(
        msg_id,
        ber.sequence(
            ber.octets(base),
            ber.integer(2, tag=ber.ENUMERATED),
            ber.integer(0, tag=ber.ENUMERATED),
            ber.integer(0),
            ber.integer(0),
            ber.boolean(False),
            filt,
            ber.sequence(ber.octets(b"1.1")),
            tag=0x63,
        ),
    )


@pytest.mark.parametrize(
    "filt",
    [
        pytest.param(ber.tlv(0xA9, b"\x04\x01x"), id="unknown-filter-choice"),
        pytest.param(ber.tlv(0xA3, b"\x04\x02cn"), id="equality-without-value"),
        pytest.param(ber.tlv(0xA0, b"\x04\x01x"), id="and-of-an-octet-string"),
        pytest.param(b"\x04\x05hello", id="universal-octet-string-as-filter"),
    ],
)
def test_invalid_filter_inside_a_search(run, tenant, filt):
    base = run.endpoints.base_dn.encode()
    reply = exchange(run, search_request(2, base, filt))
    msgs = decode_all(reply)
    # AD answers protocolError, either as the search's result or as a Notice of Disconnection.
    assert all(m.value.resultCode != OTHER for m in msgs if hasattr(m.value, "resultCode"))
    last = msgs[-1]
    assert last.value.resultCode == 2, msgs
    assert not any(isinstance(m.value, pureldap.LDAPSearchResultEntry) for m in msgs)
    still_serving(run, tenant)


@pytest.mark.parametrize(
    "base", [b"not a dn", b"CN=x,,DC=com", b"=x", b"CN=a\\", b"CN=\xc3,DC=contoso,DC=com"]
)
def test_invalid_base_dn_is_invalid_dn_syntax(run, tenant, base):
    reply = exchange(run, search_request(2, base, ber.octets(b"objectClass", tag=0x87)))
    res = only_result(reply)
    assert isinstance(res, pureldap.LDAPSearchResultDone)
    assert res.resultCode == 34, res
    still_serving(run, tenant)


# --- modify --------------------------------------------------------------------------------------


@pytest.mark.parametrize("dn", [b"not a dn", b"CN=x,,DC=com", b"=x", b"CN=a\\", b"CN=\xff"])
def test_invalid_dn_in_a_modify_is_invalid_dn_syntax(run, tenant, dn):
    req = modify_request(2, dn, 2, b"extensionAttribute9", [b"x"])
    assert ber.read_modify(req) is not None  # the fast path takes it
    res = only_result(exchange(run, req))
    assert res.resultCode == 34, res
    # The same DN through ldaptor's general decoder (a control makes the fast path step aside).
    slow = pureldap.LDAPMessage(
        pureldap.LDAPModifyRequest(
            object=dn,
            modification=[delta.Replace("extensionAttribute9", ["x"]).asLDAP()],
        ),
        id=3,
        controls=[("1.2.840.113556.1.4.1413", False, None)],  # permissive modify
    ).toWire()
    assert ber.read_modify(slow) is None
    res = only_result(exchange(run, slow), msg_id=3)
    assert res.resultCode == 34, res
    still_serving(run, tenant)


@pytest.mark.parametrize("op", [3, 7, 255])
def test_unknown_modify_operation_on_the_fast_path_is_protocol_error(run, tenant, op):
    dn = user_dn(tenant)
    req = modify_request(2, dn.encode(), op, b"extensionAttribute9", [b"x"])
    assert ber.read_modify(req) is not None
    res = only_result(exchange(run, req))
    assert res.resultCode == 2, res
    assert b"unknown modify operation" in res.errorMessage
    # Nothing was written.
    ep = run.endpoints
    conn = Connection(Server(ep.ldap_url, get_info=NONE), ep.admin_dn, ep.admin_password)
    assert conn.bind()
    conn.search(dn, "(objectClass=*)", "BASE", attributes=["extensionAttribute9"])
    assert "x" not in conn.entries[0].entry_attributes_as_dict.get("extensionAttribute9", [])
    still_serving(run, tenant)


def test_a_bind_name_that_is_not_utf8_is_invalid_dn_syntax(run, tenant):
    # Before the fix: UnicodeDecodeError inside the server, answered 80 "internal error".
    req = pureldap.LDAPMessage(pureldap.LDAPBindRequest(dn=b"CN=\xc3\x28", auth=b"pw"), id=1)
    res = only_result(exchange(run, req.toWire(), bind=False), msg_id=1)
    assert res.resultCode == 34, res
    still_serving(run, tenant)


def test_an_attribute_name_that_is_not_utf8_is_protocol_error(run, tenant):
    req = modify_request(2, user_dn(tenant).encode(), 2, b"extension\xffAttribute9", [b"x"])
    assert ber.read_modify(req) is not None
    res = only_result(exchange(run, req))
    assert res.resultCode == 2, res
    still_serving(run, tenant)


# --- Hypothesis: mutated valid messages, after a real bind ----------------------------------------


def valid_messages(run, tenant) -> list[bytes]:
    dn = user_dn(tenant).encode()
    return [
        modify_request(2, dn, 2, b"extensionAttribute9", [b"mutant"]),
        modify_request(2, dn, 0, b"proxyAddresses", [b"smtp:m@contoso.com", b"x500:/o=x"]),
        pureldap.LDAPMessage(
            pureldap.LDAPSearchRequest(
                baseObject=run.endpoints.base_dn,
                filter=pureldap.LDAPFilter_and(
                    [
                        pureldap.LDAPFilter_equalityMatch(
                            attributeDesc=pureldap.LDAPAttributeDescription("objectClass"),
                            assertionValue=pureldap.LDAPAssertionValue("user"),
                        ),
                        pureldap.LDAPFilter_substrings(
                            type="mail",
                            substrings=[pureldap.LDAPFilter_substrings_initial("a")],
                        ),
                    ]
                ),
                attributes=["mail"],
                sizeLimit=5,
            ),
            id=2,
        ).toWire(),
    ]


@st.composite
def mutants(draw, originals):
    raw = bytearray(draw(st.sampled_from(originals)))
    kind = draw(st.sampled_from(["flip", "truncate", "extend", "splice"]))
    if kind == "flip":
        for _ in range(draw(st.integers(1, 4))):
            i = draw(st.integers(0, len(raw) - 1))
            raw[i] ^= draw(st.integers(1, 255))
    elif kind == "truncate":
        raw = raw[: draw(st.integers(1, len(raw) - 1))]
    elif kind == "extend":
        raw += draw(st.binary(min_size=1, max_size=40))
    else:  # overwrite a run of bytes in the middle, lengths included
        i = draw(st.integers(0, len(raw) - 1))
        raw[i : i + 4] = draw(st.binary(min_size=0, max_size=6))
    return bytes(raw)


def check_answers(data: bytes) -> None:
    """Every answer is a result other than 80, and a closing server says why first."""
    try:
        msgs = decode_all(data)
    except pureber.BERExceptionInsufficientData:
        pytest.fail(f"a truncated answer: {data!r}")
    for m in msgs:
        code = getattr(m.value, "resultCode", None)
        assert code != OTHER, m.value  # an exception reached the server's catch-all
        if m.id == 0:
            assert code == 2 and m.value.responseName == NOTICE_OID
            assert not PYTHON_NAME.search(m.value.errorMessage.decode()), m.value


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_mutated_valid_messages_never_break_the_server(run, tenant, data):
    payload = data.draw(mutants(valid_messages(run, tenant)), label="payload")
    check_answers(exchange(run, payload, timeout=0.4))
    still_serving(run, tenant)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(payload=st.binary(min_size=1, max_size=200))
def test_random_bytes_after_a_bind(run, tenant, payload):
    # test_wire.py sends random bytes to an anonymous connection; here they follow a real bind,
    # so whatever decodes reaches the operations of an authenticated user.
    check_answers(exchange(run, b"\x30" + payload, timeout=0.4))
    still_serving(run, tenant)
