"""Binds as Windows tools make them (issue 19, item 5): NTLM through Sicily and SASL
GSS-SPNEGO, and SASL DIGEST-MD5.

Real clients over loopback: ldap3's NTLM (Sicily) and DIGEST-MD5, ldapdomaindump, msldap
(Sicily and GSS-SPNEGO), pyspnego's initiator driving GSS-SPNEGO on a raw socket, ldapsearch
for the root DSE and ldapwhoami for DIGEST-MD5 (Cyrus SASL). The fake only: slapd has neither
Sicily nor an NTLM SASL mechanism, so there is no reference to differ from; these assert AD's
own answers (MS-ADTS 5.1.1.1.3, [MS-NLMP], RFC 2831).
"""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import quote

import pytest
import spnego
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ldap3 import BASE, NONE, NTLM, SASL, SUBTREE, Connection, Server
from spnego._ntlm_raw.messages import Challenge

from harness.core import ber
from harness.tenant import TenantSpec, generate
from mockservers.directory.seed import seed_directory
from mockservers.directory.server import WHOAMI_OID
from mockservers.runtime import start_directory
from tests.security.test_hostile_ldap import PYTHON_NAME

HOSTILE = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
TENANT = generate(TenantSpec(mailboxes=40, seed=19))
WRONG_PASSWORD = (
    "80090308: LdapErr: DSID-0C090569, comment: AcceptSecurityContext error, data 52e, v4563"
)
INVALID_AUTH_METHOD = (
    "00002027: LdapErr: DSID-0C0905F0, comment: Invalid Authentication method, data 0, v4563"
)
SICILY_DISCOVERY, SICILY_NEGOTIATE, SICILY_RESPONSE = 0x89, 0x8A, 0x8B
IN_PROGRESS = 14


@pytest.fixture(scope="module")
def fake():
    """The fake AD alone (no cloud): NTLM is the directory's."""
    run = start_directory(seed_directory(TENANT))
    yield run
    run.stop()


def account(fake, role: str):
    """The seeded account of `role` (admin, writeback, reader)."""
    return next(a for a in fake.service.accounts if a.role.value == role)


def ntlm_conn(fake, user: str, password: str) -> Connection:
    return Connection(
        Server(fake.endpoints.ldap_url, get_info=NONE),
        user=user,
        password=password,
        authentication=NTLM,
        raise_exceptions=False,
    )


# A user below the writeback OU: the writeback account and the admin may write on it.
CORP_USER = next(u.dn for u in TENANT.ad_users if ",OU=Corp," in u.dn)


# --- the raw wire: BindRequests ldap3 cannot send, answers it would hide -------------------------


@dataclass
class Reply:
    msg_id: int
    tag: int
    code: int
    matched: bytes
    diagnostic: str
    creds: bytes | None  # serverSaslCreds, or an extended response's value


def bind(msg_id: int, choice: int, payload: bytes, name: bytes = b"") -> bytes:
    """A BindRequest with authentication choice `choice` (Sicily's, or SASL [3] built by
    `sasl`), `payload` its content."""
    body = ber.integer(3) + ber.octets(name) + ber.tlv(choice, payload)
    return ber.message(msg_id, ber.tlv(ber.APP_BIND_REQUEST, body))


def sasl(mechanism: bytes, creds: bytes | None) -> bytes:
    """SaslCredentials' content, `creds` left out when None."""
    return ber.octets(mechanism) + (ber.octets(creds) if creds is not None else b"")


def parse(raw: bytes) -> Reply:
    _, body, _ = ber.read_tlv(raw)
    _, msg_id, pos = ber.read_tlv(body)
    tag, op, _ = ber.read_tlv(body, pos)
    _, code, at = ber.read_tlv(op)
    _, matched, at = ber.read_tlv(op, at)
    _, diagnostic, at = ber.read_tlv(op, at)
    creds = None
    while at < len(op):
        t, value, at = ber.read_tlv(op, at)
        if t in (0x87, 0x8B):  # serverSaslCreds, extended response value
            creds = value
    return Reply(int.from_bytes(msg_id, "big"), tag, code[0], matched, diagnostic.decode(), creds)


class Wire:
    """One raw LDAP connection: send a request, read its one answer."""

    def __init__(self, fake) -> None:
        ep = fake.endpoints
        self.sock = socket.create_connection((ep.ldap_host, ep.ldap_port), 5)
        self.buf = b""

    def ask(self, request: bytes) -> Reply:
        self.sock.sendall(request)
        while True:
            try:
                _, _, end = ber.read_tlv(self.buf)
            except ber.BERError:
                data = self.sock.recv(65536)
                assert data, f"connection closed without an answer after {self.buf!r}"
                self.buf += data
                continue
            raw, self.buf = self.buf[:end], self.buf[end:]
            return parse(raw)

    def whoami(self) -> str:
        reply = self.ask(
            ber.message(
                90, ber.tlv(ber.APP_EXTENDED_REQUEST, ber.octets(WHOAMI_OID.encode(), 0x80))
            )
        )
        assert reply.code == 0, reply
        return (reply.creds or b"").decode()

    def simple_bind(self, fake, who: str = "reader") -> None:
        dn, password = fake.endpoints.account(who)
        reply = self.ask(bind(80, 0x80, password.encode(), dn.encode()))
        assert reply.code == 0, reply

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def wire(fake) -> Iterator[Wire]:
    w = Wire(fake)
    yield w
    w.close()


def clean(reply: Reply) -> Reply:
    """An answer fit for a client: a bind response, no Python in its words."""
    assert reply.tag == ber.APP_BIND_RESPONSE, reply
    assert not PYTHON_NAME.search(reply.diagnostic), reply
    assert "Traceback" not in reply.diagnostic and "spnego" not in reply.diagnostic.lower()
    return reply


def spnego_bind(wire: Wire, ctx: spnego.ContextProxy, mechanism: bytes = b"GSS-SPNEGO") -> Reply:
    """Run a GSS-SPNEGO exchange with pyspnego's initiator `ctx` to its end."""
    token = ctx.step()
    for msg_id in range(1, 5):
        reply = clean(wire.ask(bind(msg_id, 0xA3, sasl(mechanism, token))))
        if reply.code != IN_PROGRESS:
            if reply.code == 0 and reply.creds:
                ctx.step(reply.creds)  # the acceptor's mechListMIC: pyspnego checks it
            return reply
        assert reply.creds, reply
        token = ctx.step(reply.creds)
    raise AssertionError("the exchange did not end")


def initiator(fake, role: str = "reader", protocol: str = "negotiate", password: str | None = None):
    a = account(fake, role)
    return spnego.client(
        f"{fake.endpoints.netbios_domain}\\{a.sam}",
        a.password if password is None else password,
        hostname=f"dc01.{TENANT.spec.domain}",
        service="ldap",
        protocol=protocol,
    )


# --- ldap3: NTLM through Sicily -----------------------------------------------------------------


@pytest.mark.parametrize("role", ["admin", "writeback", "reader"])
def test_ldap3_ntlm_bind_has_the_rights_of_a_simple_bind(fake, role):
    ep = fake.endpoints
    a = account(fake, role)
    conn = ntlm_conn(fake, f"{ep.netbios_domain}\\{a.sam}", a.password)
    assert conn.bind(), conn.result
    assert conn.extend.standard.who_am_i() == f"u:{ep.netbios_domain}\\{a.sam}"
    simple = Connection(Server(ep.ldap_url, get_info=NONE), a.dn, a.password)
    assert simple.bind(), simple.result
    dn = CORP_USER
    # What each may write on a user, as the directory computes it for the bound principal.
    granted = []
    for c in (conn, simple):
        assert c.search(dn, "(objectClass=*)", BASE, attributes=["allowedAttributesEffective"])
        granted.append(sorted(c.response[0]["raw_attributes"].get("allowedAttributesEffective")))
    assert granted[0] == granted[1]
    assert bool(granted[0]) == (role != "reader")
    # And the directory enforces the same on a write.
    ok = conn.modify(dn, {"extensionAttribute9": [("MODIFY_REPLACE", [f"ntlm-{role}"])]})
    assert ok == (role != "reader"), conn.result
    if role == "reader":
        assert conn.result["result"] == 50, conn.result
    conn.unbind()
    simple.unbind()


def test_ldap3_ntlm_search_reads_users(fake):
    ep = fake.endpoints
    a = account(fake, "reader")
    conn = ntlm_conn(fake, f"{ep.netbios_domain}\\{a.sam}", a.password)
    assert conn.bind(), conn.result
    assert conn.search(ep.base_dn, "(&(objectClass=user)(mail=*))", SUBTREE, attributes=["mail"])
    assert len(conn.entries) >= len([u for u in TENANT.ad_users if u.mail]) > 0
    conn.unbind()


def test_ldap3_ntlm_with_the_dns_domain_and_upn(fake):
    ep = fake.endpoints
    a = account(fake, "writeback")
    conn = ntlm_conn(fake, f"{TENANT.spec.domain}\\{a.sam}", a.password)
    assert conn.bind(), conn.result
    # A UPN with no domain part, as Windows sends one ("\\" keeps ldap3's domain empty).
    conn = ntlm_conn(fake, f"\\{ep.bind_upn}", a.password)
    assert conn.bind(), conn.result
    assert conn.extend.standard.who_am_i() == f"u:{ep.netbios_domain}\\{a.sam}"


@pytest.mark.parametrize(
    "user, password",
    [
        pytest.param("{domain}\\{sam}", "not-the-password", id="wrong-password"),
        pytest.param("{domain}\\nobody-here", "{password}", id="unknown-user"),
        pytest.param("OTHERDOM\\{sam}", "{password}", id="other-domain"),
    ],
)
def test_ldap3_ntlm_refusals_are_52e(fake, user, password):
    a = account(fake, "reader")
    fill = {"domain": fake.endpoints.netbios_domain, "sam": a.sam, "password": a.password}
    conn = ntlm_conn(fake, user.format(**fill), password.format(**fill))
    assert not conn.bind()
    assert conn.result["result"] == 49, conn.result
    assert conn.result["message"] == WRONG_PASSWORD
    # Still anonymous: a search that needs a bind is refused.
    conn.search(fake.endpoints.base_dn, "(objectClass=user)", SUBTREE)
    assert conn.result["result"] == 1, conn.result


# --- msldap: Sicily and GSS-SPNEGO --------------------------------------------------------------


@pytest.mark.parametrize("scheme", ["ldap+sicily-password", "ldap+ntlm-password"])
def test_msldap_binds_and_lists_users(fake, scheme):
    factory = pytest.importorskip("msldap.commons.factory")
    ep = fake.endpoints
    a = account(fake, "reader")
    url = (
        f"{scheme}://{ep.netbios_domain}\\{quote(a.sam)}:{quote(a.password, safe='')}"
        f"@{ep.ldap_host}:{ep.ldap_port}/?timeout=10"
    )

    async def listing() -> tuple[str, list[str]]:
        client = factory.LDAPConnectionFactory.from_url(url).get_client()
        ok, err = await client.connect()
        assert ok, err
        try:
            who, err = await client.whoami()
            assert err is None, err
            names = []
            async for entry, err in client.pagedsearch(
                "(&(objectClass=user)(mail=*))", ["sAMAccountName"], tree=ep.base_dn
            ):
                assert err is None, err
                names.append(entry["attributes"]["sAMAccountName"])
            return who, names
        finally:
            await client.disconnect()

    who, names = asyncio.run(listing())
    assert who == f"u:{ep.netbios_domain}\\{a.sam}"
    assert len(names) >= len([u for u in TENANT.ad_users if u.mail]) > 0


@pytest.mark.parametrize("counting", ["per-request", "whole-search"])
def test_msldap_lists_a_domain_larger_than_a_page(counting):
    # msldap pages by 1,000 and sends sizeLimit=1000 with every page; it reads large domains
    # from AD, so AD bounds each request, not the search (Limits.paged_size_limit).
    factory = pytest.importorskip("msldap.commons.factory")
    tenant = generate(TenantSpec(mailboxes=1100, seed=5))
    run = start_directory(seed_directory(tenant))
    try:
        run.call(setattr, run.service.limits, "paged_size_limit", counting)
        ep = run.endpoints
        a = account(run, "reader")
        url = (
            f"ldap+ntlm-password://{ep.netbios_domain}\\{quote(a.sam)}:"
            f"{quote(a.password, safe='')}@{ep.ldap_host}:{ep.ldap_port}/?timeout=30"
        )

        async def listing() -> tuple[int, Exception | None]:
            client = factory.LDAPConnectionFactory.from_url(url).get_client()
            ok, err = await client.connect()
            assert ok, err
            try:
                n = 0
                async for _entry, err in client.pagedsearch(
                    "(objectClass=user)", ["sAMAccountName"], tree=ep.base_dn
                ):
                    if err is not None:
                        return n, err
                    n += 1
                return n, None
            finally:
                await client.disconnect()

        n, err = asyncio.run(listing())
    finally:
        run.stop()
    if counting == "per-request":
        assert err is None and n >= len(tenant.ad_users) > 1000
    else:  # the search ends after 1,000 entries with sizeLimitExceeded: msldap gives up
        assert err is not None and n == 1000


def test_msldap_wrong_password_is_52e(fake):
    factory = pytest.importorskip("msldap.commons.factory")
    ep = fake.endpoints
    a = account(fake, "reader")
    url = (
        f"ldap+sicily-password://{ep.netbios_domain}\\{quote(a.sam)}:wrong"
        f"@{ep.ldap_host}:{ep.ldap_port}"
    )

    async def attempt():
        client = factory.LDAPConnectionFactory.from_url(url).get_client()
        ok, err = await client.connect()
        await client.disconnect()
        return ok, err

    ok, err = asyncio.run(attempt())
    assert not ok
    assert "52e" in str(err) and "invalidCredentials" in str(err), err


# --- ldapdomaindump: ldap3's NTLM with its default options ---------------------------------------


def test_ldapdomaindump_binds_with_ntlm_and_dumps_users(fake, tmp_path):
    pytest.importorskip("ldapdomaindump")
    ep = fake.endpoints
    a = account(fake, "reader")
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "ldapdomaindump",
            "-u",
            f"{ep.netbios_domain}\\{a.sam}",
            # One argument, so a generated password that starts with "-" is not read as an
            # option by ldapdomaindump's argparse (token_urlsafe: 1 in 64).
            f"--password={a.password}",
            "-o",
            str(tmp_path),
            f"{ep.ldap_host}:{ep.ldap_port}",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "[+] Bind OK" in out.stdout, out.stdout + out.stderr
    # It runs to its end now that principals carry primaryGroupID and sAMAccountType.
    assert "[+] Domain dump finished" in out.stdout, out.stdout + out.stderr
    users = json.loads((tmp_path / "domain_users.json").read_text())
    assert len(users) >= len([u for u in TENANT.ad_users if u.mail]) > 0


# --- GSS-SPNEGO with pyspnego's initiator ------------------------------------------------------


@pytest.mark.parametrize("protocol", ["negotiate", "ntlm"])  # SPNEGO-wrapped, and bare NTLM
def test_gss_spnego_bind(fake, wire, protocol):
    ctx = initiator(fake, "writeback", protocol)
    reply = spnego_bind(wire, ctx)
    assert reply.code == 0, reply
    assert ctx.complete
    a = account(fake, "writeback")
    assert wire.whoami() == f"u:{fake.endpoints.netbios_domain}\\{a.sam}"


def test_gss_spnego_wrong_password(fake, wire):
    reply = spnego_bind(wire, initiator(fake, password="wrong"))
    assert (reply.code, reply.diagnostic) == (49, WRONG_PASSWORD)
    assert wire.whoami() == ""  # anonymous


def test_ntlmv1_is_refused(fake, wire, monkeypatch):
    # LM_COMPAT_LEVEL 1: pyspnego's initiator answers with NTLMv1, which a DC at its default
    # level refuses.
    monkeypatch.setenv("LM_COMPAT_LEVEL", "1")
    reply = spnego_bind(wire, initiator(fake, protocol="ntlm"))
    assert (reply.code, reply.diagnostic) == (49, WRONG_PASSWORD)


def test_root_dse_lists_what_is_implemented(fake):
    conn = Connection(Server(fake.endpoints.ldap_url, get_info=NONE))
    assert conn.bind()
    assert conn.search("", "(objectClass=*)", BASE, attributes=["supportedSASLMechanisms"])
    mechanisms = conn.response[0]["raw_attributes"]["supportedSASLMechanisms"]
    assert mechanisms == [b"GSS-SPNEGO", b"DIGEST-MD5"]


@pytest.mark.skipif(shutil.which("ldapsearch") is None, reason="ldapsearch is not installed")
def test_ldapsearch_reads_the_mechanisms(fake):
    url = fake.endpoints.ldap_url
    out = subprocess.run(
        ["ldapsearch", "-x", "-LLL", "-H", url, "-s", "base", "-b", "", "supportedSASLMechanisms"],
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert out.returncode == 0, out.stderr
    assert "supportedSASLMechanisms: GSS-SPNEGO" in out.stdout
    assert "supportedSASLMechanisms: DIGEST-MD5" in out.stdout


def ldapwhoami_digest(fake, password: str) -> subprocess.CompletedProcess[str]:
    if shutil.which("ldapwhoami") is None:
        pytest.skip("ldapwhoami is not installed")
    a = account(fake, "reader")
    url, realm = fake.endpoints.ldap_url, TENANT.spec.domain
    out = subprocess.run(
        ["ldapwhoami", "-H", url, "-Y", "DIGEST-MD5", "-U", a.sam, "-w", password, "-R", realm],
        capture_output=True,
        text=True,
        timeout=20,
    )
    if "No worthy mechs" in out.stderr:
        pytest.skip("this Cyrus SASL has no DIGEST-MD5 plugin")
    return out


def test_ldapwhoami_digest_md5(fake):
    # Cyrus SASL checks the server's rspauth too.
    out = ldapwhoami_digest(fake, account(fake, "reader").password)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"u:{fake.endpoints.netbios_domain}\\{account(fake, 'reader').sam}"
    out = ldapwhoami_digest(fake, "wrong")
    assert out.returncode == 49 and WRONG_PASSWORD in out.stderr, out.stderr


@pytest.mark.parametrize(
    "mechanism", [b"GSSAPI", b"EXTERNAL", b"PLAIN", b"CRAM-MD5", b"NTLM", b"", b"\xff"]
)
def test_unsupported_sasl_mechanism_is_auth_method_not_supported(fake, wire, mechanism):
    reply = clean(wire.ask(bind(1, 0xA3, sasl(mechanism, b"x"))))
    assert (reply.code, reply.diagnostic) == (7, INVALID_AUTH_METHOD)
    reply = clean(wire.ask(bind(2, 0xA3, sasl(mechanism, None))))  # no credentials at all
    assert reply.code == 7
    wire.simple_bind(fake)  # the connection goes on


def digest_conn(fake, user: str, password: str, realm: str | None = None) -> Connection:
    return Connection(
        Server(fake.endpoints.ldap_url, get_info=NONE),
        authentication=SASL,
        sasl_mechanism="DIGEST-MD5",
        sasl_credentials=(realm, user, password, None),
        raise_exceptions=False,
    )


@pytest.mark.parametrize("role", ["admin", "writeback", "reader"])
def test_ldap3_digest_md5_has_the_rights_of_a_simple_bind(fake, role):
    ep = fake.endpoints
    a = account(fake, role)
    conn = digest_conn(fake, a.sam, a.password)
    assert conn.bind(), conn.result
    assert conn.result["saslCreds"].startswith(b"rspauth=")
    assert conn.extend.standard.who_am_i() == f"u:{ep.netbios_domain}\\{a.sam}"
    dn = CORP_USER
    ok = conn.modify(dn, {"extensionAttribute9": [("MODIFY_REPLACE", [f"digest-{role}"])]})
    assert ok == (role != "reader"), conn.result


@pytest.mark.parametrize(
    "user, password",
    [("{sam}", "wrong"), ("nobody-here", "{password}"), ("CN=x,DC=contoso,DC=com", "{password}")],
)
def test_ldap3_digest_md5_refusals_are_52e(fake, user, password):
    a = account(fake, "reader")
    fill = {"sam": a.sam, "password": a.password}
    conn = digest_conn(fake, user.format(**fill), password.format(**fill))
    assert not conn.bind()
    assert (conn.result["result"], conn.result["message"]) == (49, WRONG_PASSWORD)


def test_ldap3_digest_md5_realms(fake):
    a = account(fake, "reader")
    for realm in (fake.endpoints.netbios_domain, TENANT.spec.domain.upper()):
        assert digest_conn(fake, a.sam, a.password, realm).bind(), realm
    conn = digest_conn(fake, a.sam, a.password, "other.example")
    assert not conn.bind()
    assert conn.result["result"] == 49, conn.result


def test_digest_md5_response_without_challenge_is_49(fake, wire):
    reply = clean(wire.ask(bind(1, 0xA3, sasl(b"DIGEST-MD5", b'username="x",nonce="y"'))))
    assert reply.code == 49, reply
    wire.simple_bind(fake)


DIRECTIVE_KEYS = ["username", "realm", "nonce", "cnonce", "nc", "qop", "digest-uri", "response"]


@st.composite
def digest_responses(draw, nonce: bytes) -> bytes:
    """Directive lists: the known keys (repeated, missing, unquoted, escaped) with the real
    nonce or another, and values of any bytes."""
    parts = []
    for key in draw(st.lists(st.sampled_from([*DIRECTIVE_KEYS, "authzid", "x"]), max_size=12)):
        value = draw(st.sampled_from([nonce, b"00000001", b"auth"]) | st.binary(max_size=40))
        quoted = b'"' + value.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'
        parts.append(key.encode() + b"=" + (quoted if draw(st.booleans()) else value))
    return draw(st.sampled_from([b",", b", ", b",,"])).join(parts)


@HOSTILE
@given(data=st.data())
def test_structured_digest_md5_responses(fake, data):
    w = Wire(fake)
    try:
        reply = clean(w.ask(bind(1, 0xA3, sasl(b"DIGEST-MD5", None))))
        nonce = reply.creds.split(b'nonce="')[1].split(b'"')[0]
        response = data.draw(digest_responses(nonce), label="response") or b"x"
        answered(w.ask(bind(2, 0xA3, sasl(b"DIGEST-MD5", response))), (49,))
        w.simple_bind(fake)
    finally:
        w.close()


@HOSTILE
@given(response=st.binary(max_size=600) | st.text(max_size=300).map(str.encode))
def test_random_digest_md5_responses(fake, response):
    w = Wire(fake)
    try:
        reply = clean(w.ask(bind(1, 0xA3, sasl(b"DIGEST-MD5", None))))
        assert reply.code == IN_PROGRESS and b'qop="auth"' in reply.creds, reply
        answered(w.ask(bind(2, 0xA3, sasl(b"DIGEST-MD5", response or b"x"))), (49,))
        w.simple_bind(fake)
    finally:
        w.close()


# --- Sicily step by step ----------------------------------------------------------------------


def negotiate_token(fake) -> tuple[spnego.ContextProxy, bytes]:
    ctx = initiator(fake, protocol="ntlm")
    return ctx, ctx.step()


def test_sicily_discovery_names_ntlm(wire):
    reply = clean(wire.ask(bind(1, SICILY_DISCOVERY, b"")))
    assert (reply.code, reply.matched) == (0, b"NTLM")
    assert wire.whoami() == ""


def test_sicily_step_by_step(fake, wire):
    ctx, token = negotiate_token(fake)
    reply = clean(wire.ask(bind(1, SICILY_NEGOTIATE, token, b"NTLM")))
    assert reply.code == 0 and reply.matched.startswith(b"NTLMSSP\x00\x02\x00\x00\x00"), reply
    challenge = Challenge.unpack(reply.matched)
    assert challenge.target_name == fake.endpoints.netbios_domain
    assert not challenge.flags & 0x30  # neither SIGN nor SEAL: no security layer
    reply = clean(wire.ask(bind(2, SICILY_RESPONSE, ctx.step(reply.matched), b"NTLM")))
    assert (reply.code, reply.matched, reply.diagnostic) == (0, b"", "")
    assert wire.whoami().endswith("\\" + account(fake, "reader").sam)


def test_sicily_response_without_negotiate_is_49(fake, wire):
    _ctx, token = negotiate_token(fake)
    reply = clean(wire.ask(bind(1, SICILY_RESPONSE, token)))
    assert reply.code == 49 and "AcceptSecurityContext error" in reply.diagnostic, reply
    wire.simple_bind(fake)


def test_another_bind_drops_the_exchange_in_progress(fake, wire):
    ctx, token = negotiate_token(fake)
    reply = clean(wire.ask(bind(1, SICILY_NEGOTIATE, token)))
    authenticate = ctx.step(reply.matched)
    wire.simple_bind(fake, "admin")
    # The AUTHENTICATE answers a challenge the connection no longer holds.
    reply = clean(wire.ask(bind(2, SICILY_RESPONSE, authenticate)))
    assert reply.code == 49, reply
    assert wire.whoami() == ""  # and the failed bind left it anonymous


def test_a_challenge_answers_one_authenticate(fake, wire):
    ctx, token = negotiate_token(fake)
    reply = clean(wire.ask(bind(1, SICILY_NEGOTIATE, token)))
    authenticate = ctx.step(reply.matched)
    assert clean(wire.ask(bind(2, SICILY_RESPONSE, authenticate))).code == 0
    assert clean(wire.ask(bind(3, SICILY_RESPONSE, authenticate))).code == 49  # a replay


# --- hostile input ------------------------------------------------------------------------------


@st.composite
def mangled(draw, original: bytes) -> bytes:
    raw = bytearray(original)
    kind = draw(st.sampled_from(["flip", "truncate", "extend", "length", "random"]))
    if kind == "flip":
        for _ in range(draw(st.integers(1, 4))):
            raw[draw(st.integers(0, len(raw) - 1))] ^= draw(st.integers(1, 255))
    elif kind == "truncate":
        raw = raw[: draw(st.integers(0, len(raw) - 1))]
    elif kind == "extend":
        raw += draw(st.binary(min_size=1, max_size=64))
    elif kind == "length":  # a security buffer's length or offset pointing anywhere
        at = draw(st.sampled_from([12, 14, 16, 20, 22, 24, 28, 36, 44, 52]))
        if at + 4 <= len(raw):
            raw[at : at + 4] = draw(st.sampled_from([b"\xff\xff\xff\xff", b"\xff\xff\x00\x00"]))
    else:
        raw = bytearray(b"NTLMSSP\x00" + draw(st.binary(max_size=120)))
    return bytes(raw)


def answered(reply: Reply, allowed: tuple[int, ...]) -> None:
    clean(reply)
    assert reply.code in allowed, reply


@HOSTILE
@given(data=st.data())
def test_mangled_negotiate(fake, data):
    _ctx, token = negotiate_token(fake)
    bad = data.draw(mangled(token), label="negotiate")
    w = Wire(fake)
    try:
        # Success is a mangling the NEGOTIATE survives (a flag, the version): a CHALLENGE back.
        answered(w.ask(bind(1, SICILY_NEGOTIATE, bad)), (0, 49))
        answered(w.ask(bind(2, 0xA3, sasl(b"GSS-SPNEGO", bad))), (IN_PROGRESS, 49))
        w.simple_bind(fake)
    finally:
        w.close()


@HOSTILE
@given(data=st.data())
def test_mangled_authenticate(fake, data):
    ctx, token = negotiate_token(fake)
    w = Wire(fake)
    try:
        reply = clean(w.ask(bind(1, SICILY_NEGOTIATE, token)))
        good = ctx.step(reply.matched)
        bad = data.draw(mangled(good), label="authenticate")
        if bad == good:
            return
        # The MIC covers the whole message: any change is a failed logon, never a bind.
        answered(w.ask(bind(2, SICILY_RESPONSE, bad)), (49,))
        assert w.whoami() == ""
        w.simple_bind(fake)
    finally:
        w.close()


@HOSTILE
@given(data=st.data())
def test_mangled_spnego_exchange(fake, data):
    ctx = initiator(fake)
    init = ctx.step()
    w = Wire(fake)
    try:
        bad = data.draw(mangled(init), label="NegTokenInit")
        answered(w.ask(bind(1, 0xA3, sasl(b"GSS-SPNEGO", bad))), (IN_PROGRESS, 49))
        reply = clean(w.ask(bind(2, 0xA3, sasl(b"GSS-SPNEGO", init))))
        assert reply.code == IN_PROGRESS and reply.creds  # a fresh NegTokenInit starts over
        final = ctx.step(reply.creds)
        bad = data.draw(mangled(final), label="NegTokenResp")
        reply = clean(w.ask(bind(3, 0xA3, sasl(b"GSS-SPNEGO", bad))))
        # Success only where the AUTHENTICATE inside came through whole (a mangled mechListMIC
        # tag reads as no mechListMIC): then it is the account's own logon.
        assert reply.code in (0, 49), reply
        reader = f"u:{fake.endpoints.netbios_domain}\\{account(fake, 'reader').sam}"
        assert w.whoami() == ("" if reply.code else reader)
        w.simple_bind(fake)
    finally:
        w.close()


@HOSTILE
@given(token=st.binary(max_size=300), second=st.binary(max_size=300))
def test_random_gss_spnego_tokens(fake, token, second):
    w = Wire(fake)
    try:
        answered(w.ask(bind(1, 0xA3, sasl(b"GSS-SPNEGO", token))), (IN_PROGRESS, 49))
        answered(w.ask(bind(2, 0xA3, sasl(b"GSS-SPNEGO", second))), (IN_PROGRESS, 49))
        w.simple_bind(fake)
    finally:
        w.close()


def test_oversized_token_is_refused_unread(fake, wire):
    _ctx, token = negotiate_token(fake)
    reply = clean(wire.ask(bind(1, SICILY_NEGOTIATE, token + b"\x00" * 100_000)))
    assert reply.code == 49, reply
    wire.simple_bind(fake)


@pytest.mark.parametrize(
    "auth",
    [
        pytest.param(ber.tlv(0x8C, b"x"), id="unknown-choice-12"),
        pytest.param(ber.tlv(0xA3, b"\x04"), id="sasl-truncated"),
        pytest.param(
            ber.tlv(0xA3, ber.octets(b"GSS-SPNEGO") + b"\x02\x01\x00"), id="sasl-creds-integer"
        ),
        pytest.param(ber.tlv(0x89, b"") + b"\x04\x00", id="trailing-element"),
    ],
)
def test_malformed_bind_request_gets_a_notice(fake, wire, auth):
    # Bad BER inside the BindRequest itself: AD's Notice of Disconnection, in AD's words.
    body = ber.integer(3) + ber.octets(b"") + auth
    reply = wire.ask(ber.message(1, ber.tlv(ber.APP_BIND_REQUEST, body)))
    assert reply.msg_id == 0 and reply.tag == ber.APP_EXTENDED_RESPONSE and reply.code == 2
    assert "Error decoding ldap message" in reply.diagnostic
    assert not PYTHON_NAME.search(reply.diagnostic)
