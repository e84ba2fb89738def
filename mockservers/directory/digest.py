"""SASL DIGEST-MD5 as AD's DC takes it (RFC 2831; AD keeps the digests of each account's
password, so it can check a response without the password in clear).

No library implements the server side of DIGEST-MD5 (Cyrus SASL's is C, pure-sasl's and
ldap3's are clients), and the exchange is a few MD5 digests (hashlib): the challenge, the
check of the client's response, and rspauth, the server's proof. Only qop "auth" is offered,
no security layer, as for NTLM (`ntlm.py`). The user name is a sAMAccountName (in the DC's
domain), DOMAIN\\sAMAccountName or a UPN; the realm is the domain's DNS name.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets as random

from mockservers.directory import errors
from mockservers.directory.ntlm import Logon, Secrets, Target

MAX_RESPONSE = 4096  # RFC 2831 2.1.2: a digest-response is at most 4096 bytes
# One directive: a token, "=", then a token or a quoted string (RFC 2831 7.1).
_DIRECTIVE = re.compile(rb'\s*([A-Za-z0-9_-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,"]*))\s*(,|$)')
_ONCE = frozenset(
    b"username realm nonce cnonce nc qop digest-uri response charset authzid maxbuf cipher".split()
)


def _h(data: bytes) -> bytes:
    return hashlib.md5(data).digest()


def _hex(data: bytes) -> bytes:
    return data.hex().encode()


def directives(text: bytes) -> dict[bytes, bytes]:
    """The directives of a digest-response; AD's invalid token for anything malformed."""
    if len(text) > MAX_RESPONSE:
        raise errors.bad_security_token()
    found: dict[bytes, bytes] = {}
    pos = 0
    while pos < len(text):
        m = _DIRECTIVE.match(text, pos)
        if m is None or m.end() == pos:
            raise errors.bad_security_token()
        key = m.group(1).lower()
        quoted = m.group(2)
        value = re.sub(rb"\\(.)", rb"\1", quoted, flags=re.S) if quoted is not None else m.group(3)
        if key in _ONCE and key in found:
            raise errors.bad_security_token()  # RFC 2831 2.1.2: each at most once
        found[key] = value
        pos = m.end()
    return found


class DigestAcceptor:
    """One DIGEST-MD5 logon: an empty first bind gets the challenge, the second the check."""

    __slots__ = ("_nonce", "target")

    def __init__(self, target: Target) -> None:
        self.target = target
        self._nonce: bytes | None = None

    def challenge(self) -> bytes:
        """The digest-challenge (RFC 2831 2.1.1)."""
        self._nonce = random.token_hex(16).encode()
        realm = self.target.dns_domain.encode()
        return (
            b'realm="' + realm + b'",nonce="' + self._nonce + b'",qop="auth",'
            b"charset=utf-8,algorithm=md5-sess"
        )

    def authenticate(self, response: bytes, secrets: Secrets) -> tuple[Logon, bytes]:
        """Check the digest-response; the logon and the rspauth to send back."""
        nonce, self._nonce = self._nonce, None  # a nonce answers one response only
        d = directives(response)
        need = (b"username", b"nonce", b"cnonce", b"nc", b"digest-uri", b"response")
        if nonce is None or any(k not in d for k in need):
            raise errors.bad_security_token()
        qop = d.get(b"qop", b"auth")
        if d[b"nonce"] != nonce or d[b"nc"] != b"00000001" or qop != b"auth":
            raise errors.bad_security_token()
        if not d[b"digest-uri"].lower().startswith(b"ldap/"):
            raise errors.bad_security_token()
        utf8 = d.get(b"charset", b"").lower() == b"utf-8"
        try:
            user = d[b"username"].decode("utf-8" if utf8 else "latin-1")
        except UnicodeDecodeError:
            raise errors.bad_security_token() from None
        authzid = d.get(b"authzid")
        if authzid and authzid != d[b"username"]:
            raise errors.invalid_credentials()  # acting as another account: not offered
        name = self._bind_name(user)
        found = secrets(name) if name is not None else None
        # An unknown user is checked against a password nobody has, so both fail alike.
        dn, password = found if found is not None else ("", random.token_hex(16))
        realm = d.get(b"realm", b"")
        realms = {b"", self.target.dns_domain.encode(), self.target.netbios_domain.encode()}
        if realm.lower() not in {r.lower() for r in realms}:
            raise errors.invalid_credentials()  # a DC keeps digests for its own realm only
        secret = _h(b":".join([d[b"username"], realm, _encode(password, utf8)]))
        a1 = b":".join([secret, nonce, d[b"cnonce"], *([authzid] if authzid else [])])
        key = _hex(_h(a1))

        def proof(a2: bytes) -> bytes:
            tail = b":".join([nonce, d[b"nc"], d[b"cnonce"], qop, _hex(_h(a2))])
            return _hex(_h(key + b":" + tail))

        expected = proof(b"AUTHENTICATE:" + d[b"digest-uri"])
        if not hmac.compare_digest(expected, d[b"response"].lower()) or found is None:
            raise errors.invalid_credentials()
        rspauth = b"rspauth=" + proof(b":" + d[b"digest-uri"])
        return Logon(dn, password, session_key=b"", flags=0), rspauth  # no security layer

    def _bind_name(self, user: str) -> str | None:
        if "=" in user:
            return None  # never a DN
        if "@" in user or "\\" in user:
            return user
        return f"{self.target.netbios_domain}\\{user}"


def _encode(password: str, utf8: bool) -> bytes:
    """RFC 2831 2.1.2.1: the password in ISO 8859-1 where it fits and the client said UTF-8."""
    if utf8:
        try:
            return password.encode("latin-1")
        except UnicodeEncodeError:
            return password.encode("utf-8")
    return password.encode("latin-1", "replace")
