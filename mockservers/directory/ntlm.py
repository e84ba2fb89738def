"""NTLM as the fake AD's DC accepts it ([MS-NLMP]), bare (Sicily) or inside SPNEGO (RFC 4178).

The messages, the one-way functions, the MIC and the signing come from pyspnego
(`spnego._ntlm_raw`, `spnego._spnego`); this module only decides, as a DC's NTLM acceptor
does, what to answer. pyspnego's own acceptor (`spnego.server(protocol="ntlm")`) is not used:
it reads the accounts from the file named by the process-wide NTLM_USER_FILE variable (one
per process, while tests run several directories with different accounts in one; passwords
written to disk), re-reads it on every logon, advertises the host's name and a "WORKSTATION"
domain instead of the DC's, and accepts NTLMv1 unless the process-wide LM_COMPAT_LEVEL says
otherwise. Checking the NTLMv2 response against the account's password is a few lines with
its helpers (NTOWFv2, HMAC-MD5, RC4K).

Like a DC at its default LmCompatibilityLevel, only NTLMv2 responses are accepted: an NTLMv1
or LM-only response fails as a wrong password does (data 52e), and so does an anonymous one.
No SASL security layer is negotiated: the CHALLENGE never grants NTLMSSP_NEGOTIATE_SIGN or
_SEAL, so clients send the operations after the bind in clear, as they do with a DC whose
LDAP signing is not required (ldap3's NTLM never signs; msldap and Windows clients read the
flags and follow them).
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from spnego._ntlm_raw.crypto import hmac_md5, ntowfv1, ntowfv2, rc4init, rc4k, sealkey, signkey
from spnego._ntlm_raw.messages import (
    Authenticate,
    AvFlags,
    AvId,
    Challenge,
    FileTime,
    Negotiate,
    NegotiateFlags,
    NTClientChallengeV2,
    TargetInfo,
    Version,
)
from spnego._ntlm_raw.security import sign
from spnego._spnego import NegState, NegTokenInit, NegTokenResp, pack_mech_type_list, unpack_token

from mockservers.directory import errors

NTLM_OID = "1.3.6.1.4.1.311.2.2.10"  # NTLMSSP, as SPNEGO names it
SIGNATURE = b"NTLMSSP\x00"
# The most a client's NTLM message may hold; AD's own are a few hundred bytes. Anything longer
# is refused unparsed.
MAX_TOKEN = 8192

# What the CHALLENGE may grant of what the NEGOTIATE asks. Not SIGN/SEAL (no security layer,
# see the module's docstring), not LM_KEY or DATAGRAM (NTLMv1-era). KEY_EXCH as a DC grants
# it: clients such as asyauth (msldap) exchange a session key whatever the CHALLENGE says, and
# their SPNEGO mechListMIC is keyed with it.
_GRANTABLE = (
    NegotiateFlags.key_exch
    | NegotiateFlags.unicode
    | NegotiateFlags.oem
    | NegotiateFlags.request_target
    | NegotiateFlags.ntlm
    | NegotiateFlags.always_sign
    | NegotiateFlags.extended_session_security
    | NegotiateFlags.version
    | NegotiateFlags.key_128
    | NegotiateFlags.key_56
)
# What a DC always sets: it names its domain as the target and sends the AV pairs.
_ALWAYS = (
    NegotiateFlags.request_target
    | NegotiateFlags.ntlm
    | NegotiateFlags.always_sign
    | NegotiateFlags.target_type_domain
    | NegotiateFlags.target_info
)
_DC_VERSION = (10, 0, 17763, 15)  # Windows Server 2019, NTLM revision 15, as the root DSE's DC

Secrets = Callable[[str], tuple[str, str] | None]
"""A bind name (DOMAIN\\sAMAccountName or a UPN) -> its account's DN and password, or None."""


@dataclass(frozen=True, slots=True)
class Target:
    """The DC the CHALLENGE describes (its AV pairs)."""

    netbios_domain: str
    dns_domain: str
    computer: str  # the DC's NetBIOS name


@dataclass(frozen=True, slots=True)
class Logon:
    """A verified AUTHENTICATE: the account's DN and password, for the simple-bind path."""

    dn: str
    password: str
    session_key: bytes  # ExportedSessionKey
    flags: int  # the negotiated flags


def _bad_token() -> errors.LdapError:
    return errors.bad_security_token()


def _flags_of(negotiate: Negotiate) -> int:
    asked = negotiate.flags
    flags = (asked & _GRANTABLE) | _ALWAYS
    if flags & NegotiateFlags.unicode:
        flags &= ~NegotiateFlags.oem
    elif not flags & NegotiateFlags.oem:
        raise _bad_token()  # no text encoding for the names
    return flags


class NtlmAcceptor:
    """One NTLM logon: NEGOTIATE in, CHALLENGE out, AUTHENTICATE in. Used once."""

    __slots__ = ("_challenge", "_negotiate", "_server_challenge", "target")

    def __init__(self, target: Target) -> None:
        self.target = target
        self._negotiate: bytes | None = None
        self._challenge: bytes | None = None
        self._server_challenge = b""

    @property
    def challenged(self) -> bool:
        return self._challenge is not None

    def challenge(self, token: bytes) -> bytes:
        """The CHALLENGE_MESSAGE answering the NEGOTIATE_MESSAGE `token`."""
        if self._negotiate is not None:
            raise _bad_token()  # a second NEGOTIATE in the same logon
        negotiate = _parse(token, Negotiate)
        flags = _flags_of(negotiate)
        t = self.target
        info = TargetInfo()
        info[AvId.nb_domain_name] = t.netbios_domain
        info[AvId.nb_computer_name] = t.computer
        info[AvId.dns_domain_name] = t.dns_domain
        info[AvId.dns_computer_name] = f"{t.computer}.{t.dns_domain}".lower()
        info[AvId.dns_tree_name] = t.dns_domain
        info[AvId.timestamp] = FileTime.now()
        self._server_challenge = os.urandom(8)
        message = Challenge(
            flags,
            self._server_challenge,
            target_name=t.netbios_domain,
            target_info=info,
            version=Version(*_DC_VERSION) if flags & NegotiateFlags.version else None,
        ).pack()
        self._negotiate, self._challenge = token, message
        return message

    def authenticate(self, token: bytes, secrets: Secrets) -> Logon:
        """Check the AUTHENTICATE_MESSAGE `token`; raises AD's 49 when it does not prove the
        password of an account the directory knows."""
        if self._negotiate is None or self._challenge is None:
            raise _bad_token()  # an AUTHENTICATE with no CHALLENGE before it
        auth = _parse(token, Authenticate)
        try:
            user, domain = auth.user_name or "", auth.domain_name or ""
            nt = auth.nt_challenge_response or b""
            session_key_in = auth.encrypted_random_session_key or b""
        except Exception:  # as in _parse: names that are not UTF-16, offsets past the end
            raise _bad_token() from None
        if not user or len(nt) <= 24:
            # Anonymous, LM-only or NTLMv1 (a 24-byte response): refused, as a DC refuses
            # them at LmCompatibilityLevel 5.
            raise errors.invalid_credentials()
        name = _bind_name(user, domain, self.target)
        found = secrets(name) if name is not None else None
        # An unknown user is checked against a password nobody has, so both fail alike.
        dn, password = found if found is not None else ("", os.urandom(16).hex())
        key = ntowfv2(user, ntowfv1(password), domain)
        proof, blob = nt[:16], nt[16:]
        proved = hmac.compare_digest(hmac_md5(key, self._server_challenge + blob), proof)
        if not proved or found is None:
            raise errors.invalid_credentials()
        # NTLMv2's KeyExchangeKey is its SessionBaseKey ([MS-NLMP] 3.4.5.1).
        exchange_key = hmac_md5(key, proof)
        flags = auth.flags
        if flags & NegotiateFlags.key_exch and len(session_key_in) == 16:
            session_key = rc4k(exchange_key, session_key_in)
        else:
            session_key = exchange_key
        self._check_mic(auth, blob, session_key)
        self._negotiate = self._challenge = None  # a challenge answers one AUTHENTICATE only
        return Logon(dn, password, session_key, flags)

    def _check_mic(self, auth: Authenticate, blob: bytes, session_key: bytes) -> None:
        """[MS-NLMP] 3.2.5.1.2: a client that says it sent a MIC must have sent the right one."""
        try:
            pairs = NTClientChallengeV2.unpack(blob).av_pairs
            said = int(pairs.get(AvId.flags, 0)) & AvFlags.mic
        except Exception:  # as in _parse
            raise _bad_token() from None
        if not said:
            return
        sent = auth.mic
        if sent is None:
            raise errors.invalid_credentials()
        zeroed = Authenticate.unpack(auth.pack())
        zeroed.mic = b"\x00" * 16
        assert self._negotiate is not None and self._challenge is not None
        expected = hmac_md5(session_key, self._negotiate + self._challenge + zeroed.pack())
        if not hmac.compare_digest(expected, sent):
            raise errors.invalid_credentials()


def _bind_name(user: str, domain: str, target: Target) -> str | None:
    """The simple-bind name of an NTLM identity: a UPN (a sAMAccountName has no "@"), or
    DOMAIN\\user, the DC's own domain when the client named none. Never a DN: neither a
    sAMAccountName nor a domain has an "=", and a name that does is no account."""
    if "=" in user or "=" in domain:
        return None
    if "@" in user:
        return user
    return f"{domain or target.netbios_domain}\\{user}"


_M = TypeVar("_M", Negotiate, Authenticate)


def _parse(token: bytes, kind: type[_M]) -> _M:
    """`token` as an NTLM message of `kind`; any other bytes are AD's invalid token."""
    if len(token) > MAX_TOKEN or not token.startswith(SIGNATURE):
        raise _bad_token()
    try:
        message = kind.unpack(token)
    except Exception:  # pyspnego signals malformed bytes with assorted exceptions
        raise _bad_token() from None
    if not isinstance(message, kind):
        raise _bad_token()
    return message


# --- SPNEGO ---------------------------------------------------------------------------------


@dataclass(slots=True)
class Step:
    """What one step of a logon answers: a token for the client, and the logon once done."""

    token: bytes | None
    logon: Logon | None = None


class SpnegoAcceptor:
    """SASL GSS-SPNEGO with NTLM as its only mechanism (RFC 4178, [MS-SPNG]).

    A client that sends bare NTLM messages (no SPNEGO around them, as some do and AD allows)
    gets bare ones back.
    """

    __slots__ = ("_bare", "_mechs", "_started", "ntlm")

    def __init__(self, target: Target) -> None:
        self.ntlm = NtlmAcceptor(target)
        self._mechs: list[str] = []
        self._bare = False
        self._started = False

    def step(self, token: bytes, secrets: Secrets) -> Step:
        first, self._started = not self._started, True
        if len(token) > MAX_TOKEN:
            raise _bad_token()
        if token.startswith(SIGNATURE) and (first or self._bare):
            self._bare = True
            if not self.ntlm.challenged:
                return Step(self.ntlm.challenge(token))
            return Step(None, self.ntlm.authenticate(token, secrets))
        if self._bare:
            raise _bad_token()
        try:
            message = unpack_token(token)
        except Exception:  # as in _parse
            raise _bad_token() from None
        if first and isinstance(message, NegTokenInit):
            return self._init(message)
        if not first and isinstance(message, NegTokenResp):
            return self._resp(message, secrets)
        raise _bad_token()

    def _init(self, init: NegTokenInit) -> Step:
        self._mechs = [str(m) for m in init.mech_types]
        if NTLM_OID not in self._mechs:
            # Kerberos only: the fake has no KDC. A DC would try the ticket; here it is refused.
            raise errors.invalid_credentials()
        reply = NegTokenResp(NegState.accept_incomplete, supported_mech=NTLM_OID)
        if self._mechs[0] == NTLM_OID and init.mech_token:
            reply.response_token = self.ntlm.challenge(init.mech_token)
        # Else the optimistic token is another mechanism's: ask for NTLM's NEGOTIATE.
        return Step(reply.pack())

    def _resp(self, resp: NegTokenResp, secrets: Secrets) -> Step:
        token = resp.response_token
        if not token:
            raise _bad_token()
        if not self.ntlm.challenged:
            challenge = self.ntlm.challenge(token)
            return Step(NegTokenResp(NegState.accept_incomplete, response_token=challenge).pack())
        logon = self.ntlm.authenticate(token, secrets)
        mech_list = pack_mech_type_list(self._mechs)
        done = NegTokenResp(NegState.accept_complete)
        if resp.mech_list_mic is not None:
            # RFC 4178 5: the initiator's mechListMIC over the mechanisms it offered, checked
            # with its signing key, and the acceptor's in return (sequence number 0 each way).
            theirs = _mic(logon, "initiate", mech_list)
            if not hmac.compare_digest(theirs, resp.mech_list_mic):
                raise errors.invalid_credentials()
            done.mech_list_mic = _mic(logon, "accept", mech_list)
        return Step(done.pack(), logon)


def _mic(logon: Logon, usage: str, data: bytes) -> bytes:
    """GSS_GetMIC of `data` with `usage`'s keys, at sequence number 0 (with extended session
    security, which every client of a DC since Windows 2000 negotiates, each direction has
    its own keys and numbers)."""
    handle = rc4init(sealkey(logon.flags, logon.session_key, usage))
    return sign(logon.flags, handle, signkey(logon.flags, logon.session_key, usage), 0, data)
