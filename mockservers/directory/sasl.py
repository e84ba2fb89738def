"""The binds beyond simple that AD takes: NTLM through Microsoft's Sicily and through SASL
GSS-SPNEGO (`ntlm.py`), and SASL DIGEST-MD5 (`digest.py`).

`BindRequest` decodes every AuthenticationChoice AD reads (ldaptor knows only simple [0] and
SASL [3]; Sicily's [9] [10] [11] made it fail); `step` runs one bind of a multi-step exchange
against the connection's pending one. What is offered is declared once, in SASL_MECHANISMS
(listed as supportedSASLMechanisms in the root DSE) and SICILY_PACKAGES.

Sicily (MS-ADTS 5.1.1.1.3): sicilyPackageDiscovery [9] is answered success with the package
names in the matchedDN field (ldap3 tells a Sicily answer by that field starting with "NTLM");
sicilyNegotiate [10] carries the NEGOTIATE_MESSAGE and is answered success with the
CHALLENGE_MESSAGE in matchedDN; sicilyResponse [11] carries the AUTHENTICATE_MESSAGE.
SASL (RFC 4422 5, RFC 4511 4.2.2): each step but the last is answered saslBindInProgress (14)
with the server's token in serverSaslCreds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ldaptor.protocols import pureldap

from harness.core import ber
from harness.core.ldapresult import Result
from mockservers.directory import errors
from mockservers.directory.digest import DigestAcceptor
from mockservers.directory.ntlm import (
    SIGNATURE,
    Logon,
    NtlmAcceptor,
    Secrets,
    SpnegoAcceptor,
    Target,
)

SASL_BIND_IN_PROGRESS = Result.SASL_BIND_IN_PROGRESS  # RFC 4511 4.2.2
SERVER_SASL_CREDS = 0x87  # BindResponse's serverSaslCreds [7]

# The SASL mechanisms the fake implements, with what each is here, in AD's order. AD also
# lists GSSAPI (Kerberos: no KDC here) and EXTERNAL (TLS client certificates); a bind with
# either, or any other name, is refused with authMethodNotSupported.
SASL_MECHANISMS: dict[str, str] = {
    "GSS-SPNEGO": "SPNEGO (RFC 4178) with NTLMv2 inside, no security layer",
    "DIGEST-MD5": "RFC 2831, qop auth only (no security layer)",
}
SICILY_PACKAGES = "NTLM"  # AD exposes only NTLM through Sicily

# The AuthenticationChoice tags (RFC 4511 4.2; MS-ADTS 5.1.1.1.3 for Sicily's).
SIMPLE = 0x80
SASL = 0xA3
SICILY_DISCOVERY = 0x89
SICILY_NEGOTIATE = 0x8A
SICILY_RESPONSE = 0x8B
_CHOICES = (SIMPLE, SASL, SICILY_DISCOVERY, SICILY_NEGOTIATE, SICILY_RESPONSE)


class BindRequest(pureldap.LDAPBindRequest):
    """A BindRequest with any of AD's authentication choices: `choice` is its tag,
    `credentials` the password or token, `mechanism` the SASL mechanism."""

    choice: int
    mechanism: str
    credentials: bytes

    @classmethod
    def fromBER(cls, tag: int, content: bytes, berdecoder: Any = None) -> BindRequest:
        # Malformed: BERError, which the server answers with a Notice of Disconnection.
        t, version, pos = ber.read_tlv(content)
        if t != ber.INTEGER or not 0 < len(version) <= 4:
            raise ber.BERError("bad version")
        t, name, pos = ber.read_tlv(content, pos)
        if t != ber.OCTET_STRING:
            raise ber.BERError("bad name")
        choice, auth, pos = ber.read_tlv(content, pos)
        if pos != len(content) or choice not in _CHOICES:
            raise ber.BERError("bad authentication choice")
        mechanism, credentials = b"", auth
        if choice == SASL:
            t, mechanism, at = ber.read_tlv(auth)
            credentials = b""
            if t != ber.OCTET_STRING:
                raise ber.BERError("bad SASL mechanism")
            if at < len(auth):
                t, credentials, at = ber.read_tlv(auth, at)
                if t != ber.OCTET_STRING or at != len(auth):
                    raise ber.BERError("bad SASL credentials")
        sasl = choice == SASL
        r = cls(
            version=int.from_bytes(version, "big", signed=True),
            dn=name,
            auth=(mechanism, credentials) if sasl else credentials,
            tag=tag,
            sasl=sasl,
        )
        r.choice = choice
        # A mechanism name is ASCII (RFC 4422 3.1); anything else is no mechanism offered.
        r.mechanism = mechanism.decode("ascii", "replace")
        r.credentials = credentials
        return r


# A connection's multi-step bind in progress.
Pending = NtlmAcceptor | SpnegoAcceptor | DigestAcceptor | None


@dataclass(slots=True)
class Answer:
    """One bind's answer, and the exchange the connection keeps for the next step."""

    code: int = Result.SUCCESS
    matched: bytes = b""  # Sicily's serverCreds
    server_creds: bytes | None = None
    logon: Logon | None = None
    pending: Pending = None

    def response(self) -> bytes:
        """The BindResponse op (bytes in matchedDN: Sicily's are binary)."""
        body = ber.integer(self.code, ber.ENUMERATED) + ber.octets(self.matched) + ber.octets(b"")
        if self.server_creds is not None:
            body += ber.octets(self.server_creds, SERVER_SASL_CREDS)
        return ber.tlv(ber.APP_BIND_RESPONSE, body)


def step(req: BindRequest, pending: Pending, target: Target, secrets: Secrets) -> Answer:
    """Answer a bind that is not simple, continuing `pending` where the request continues it.

    Any other bind drops `pending` (the caller keeps only what the answer returns), so a
    connection holds at most one exchange. Refusals raise `LdapError`.
    """
    choice = req.choice
    if choice == SICILY_DISCOVERY:
        return Answer(matched=SICILY_PACKAGES.encode())
    if choice == SICILY_NEGOTIATE:
        sicily = NtlmAcceptor(target)
        return Answer(matched=sicily.challenge(req.credentials), pending=sicily)
    if choice == SICILY_RESPONSE:
        if not isinstance(pending, NtlmAcceptor):
            raise errors.bad_security_token()
        return Answer(logon=pending.authenticate(req.credentials, secrets))
    if req.mechanism not in SASL_MECHANISMS:
        raise errors.sasl_not_supported()
    if req.mechanism == "DIGEST-MD5":
        return _digest(req, pending, target, secrets)
    token = req.credentials
    spnego = pending if isinstance(pending, SpnegoAcceptor) and not _starts(token) else None
    spnego = spnego or SpnegoAcceptor(target)
    out = spnego.step(token, secrets)
    if out.logon is None:
        return Answer(SASL_BIND_IN_PROGRESS, server_creds=out.token or b"", pending=spnego)
    return Answer(server_creds=out.token, logon=out.logon)


def _starts(token: bytes) -> bool:
    """Whether a GSS-SPNEGO token opens an exchange: a client that starts over is not
    continuing the one it left (RFC 4513 5.2.1.1 lets it abandon a SASL bind so)."""
    initial_context_token = token[:1] == b"\x60"  # [APPLICATION 0], RFC 2743 3.1
    negotiate = token.startswith(SIGNATURE) and token[8:12] == b"\x01\x00\x00\x00"
    return initial_context_token or negotiate


def _digest(req: BindRequest, pending: Pending, target: Target, secrets: Secrets) -> Answer:
    """RFC 2831 2.1: a bind without credentials gets the challenge, the next one the check;
    success carries rspauth, the server's proof that it knows the password too."""
    if not req.credentials:
        digest = DigestAcceptor(target)
        return Answer(SASL_BIND_IN_PROGRESS, server_creds=digest.challenge(), pending=digest)
    if not isinstance(pending, DigestAcceptor):
        raise errors.bad_security_token()  # a response to no challenge (no reauthentication)
    logon, rspauth = pending.authenticate(req.credentials, secrets)
    return Answer(server_creds=rspauth, logon=logon)
