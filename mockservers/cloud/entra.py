"""Entra ID's sign-in surface as SDKs read it: discovery documents, the signing keys, access
tokens as signed JWTs, and client assertions (certificate credentials).

- OpenID discovery (``/{tenant}/v2.0/.well-known/openid-configuration`` and the v1 document),
  instance discovery (``/common/discovery/instance``, what MSAL asks before it trusts an
  authority it does not know) and the JWKS (``/{tenant}/discovery/v2.0/keys``). Every URL in
  them is built on the origin the client called, as the links in Graph's bodies are.
- Access tokens are RS256 JWTs with the claims Entra puts in an app-only v1.0 token (Graph's and
  Exchange's manifests accept v1.0 tokens, so that is the version Entra issues them): `aud`,
  `iss` (``https://sts.windows.net/{tid}/``), `iat`/`nbf`/`exp`, `appid`, `appidacr` (1: secret,
  2: certificate), `idp`, `idtyp`, `oid`/`sub`, `roles`, `tid`, `uti`, `ver`. Graph's own tokens
  also carry a `nonce` header that makes them unverifiable outside Microsoft; the fake's do not.
- A client assertion (RFC 7523, as MSAL and azure-identity build it: `x5t` or `x5t#S256` in the
  header, `iss` = `sub` = the client id, `aud` = the token endpoint) is verified against the
  certificates registered on the app.

Nothing here is a secret in a log: tokens and assertions are never written anywhere.
"""

from __future__ import annotations

import base64
import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from mockservers.cloud import errors
from mockservers.pki import KeyPair, b64url

if TYPE_CHECKING:
    from jwt.types import Options  # PyJWT 2.10+; only a type here

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ASSERTION_ALGORITHMS = ["RS256", "PS256"]  # what MSAL (RS256, PS256 from 1.29) signs with
ASSERTION_SKEW = 300  # seconds of clock skew Entra tolerates on nbf / exp
MAX_TOKEN = 16 * 1024  # an access or assertion JWT is a few KB; refuse before parsing more
# Audiences each API accepts: its App ID URI (with or without the slash) and its app id.
GRAPH_AUDIENCES = frozenset(
    {
        "https://graph.microsoft.com",
        "https://graph.microsoft.com/",
        "00000003-0000-0000-c000-000000000000",
    }
)
EXO_AUDIENCES = frozenset(
    {
        "https://outlook.office365.com",
        "https://outlook.office365.com/",
        "https://outlook.office.com",
        "00000002-0000-0ff1-ce00-000000000000",
    }
)
# Token endpoint paths an assertion's `aud` may name (v2.0, and the v1.0 endpoint Entra accepts).
# PyJWT checks the signature (and issuer, when given); times and audience are checked here,
# against the service's clock and with each service's own error.
_SIGNATURE_ONLY: Options = {
    "verify_aud": False,
    "verify_exp": False,
    "verify_nbf": False,
    "verify_iat": False,
}
_TOKEN_PATHS = ("/oauth2/v2.0/token", "/oauth2/token")
_LOGIN_HOSTS = ("login.microsoftonline.com",)


def v1_issuer(tenant_id: str) -> str:
    return f"https://sts.windows.net/{tenant_id}/"


@dataclass(frozen=True, slots=True)
class Signer:
    """The tenant's token-signing key (its certificate is the JWKS's `x5c`)."""

    pair: KeyPair

    @property
    def kid(self) -> str:
        return self.pair.x5t

    def sign(self, claims: Mapping[str, Any]) -> str:
        key = self.pair.key
        assert isinstance(key, rsa.RSAPrivateKey)
        return jwt.encode(
            dict(claims), key, algorithm="RS256", headers={"kid": self.kid, "x5t": self.kid}
        )

    def verify(self, token: str, tenant_id: str) -> dict[str, Any]:
        """The claims of an access token this tenant issued, checked for signature and issuer
        (expiry and audience are the caller's: their errors differ); raises CloudError."""
        if "." not in token:
            raise errors.token_unknown()
        if len(token) > MAX_TOKEN:
            raise errors.token_invalid()
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            raise errors.token_malformed() from None
        if header.get("kid") != self.kid:
            raise errors.token_invalid()
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self.pair.key.public_key(),  # type: ignore[arg-type]
                algorithms=["RS256"],
                issuer=v1_issuer(tenant_id),
                options=_SIGNATURE_ONLY,
            )
        except jwt.InvalidTokenError:
            raise errors.token_invalid() from None
        if not _canonical(token):
            raise errors.token_invalid()
        return claims

    def jwks(self) -> dict[str, Any]:
        public = self.pair.key.public_key()
        assert isinstance(public, rsa.RSAPublicKey)
        numbers = public.public_numbers()
        return {
            "keys": [
                {
                    "kty": "RSA",
                    "use": "sig",
                    "kid": self.kid,
                    "x5t": self.kid,
                    "n": _b64int(numbers.n),
                    "e": _b64int(numbers.e),
                    "x5c": [self.pair.der_b64],
                    "issuer": "https://login.microsoftonline.com/{tenantid}/v2.0",
                }
            ]
        }


def _canonical(token: str) -> bool:
    """Whether the signature is written the one way its bytes encode to: base64 decoders ignore
    the spare bits of the last character, so another spelling would verify as the same token,
    and a cache keyed by the text would hold two entries for it."""
    signature = token.rsplit(".", 1)[-1]
    try:
        raw = base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4))
    except ValueError:
        return False
    return b64url(raw) == signature


def _b64int(value: int) -> str:
    return b64url(value.to_bytes((value.bit_length() + 7) // 8, "big"))


def access_claims(
    tenant_id: str,
    client_id: str,
    app_name: str,
    roles: tuple[str, ...],
    audience: str,
    now: int,
    lifetime: int,
    certificate: bool,
) -> dict[str, Any]:
    """The claims of an app-only v1.0 access token, as Entra issues them."""
    oid = str(uuid.uuid5(uuid.NAMESPACE_URL, f"exwb:sp:{tenant_id}:{client_id}"))
    return {
        "aud": audience,
        "iss": v1_issuer(tenant_id),
        "iat": now,
        "nbf": now,
        "exp": now + lifetime,
        "aio": secrets.token_urlsafe(24),
        "app_displayname": app_name,
        "appid": client_id,
        "appidacr": "2" if certificate else "1",
        "idp": v1_issuer(tenant_id),
        "idtyp": "app",
        "oid": oid,
        "rh": secrets.token_urlsafe(16),
        "roles": list(roles),
        "sub": oid,
        "tenant_region_scope": "NA",
        "tid": tenant_id,
        "uti": secrets.token_urlsafe(16),
        "ver": "1.0",
        "xms_tcdt": now - 86_400 * 365,
    }


def audience_for(scope: str) -> str:
    """The `aud` of a token asked for with `scope` (``<resource>/.default``): the resource as
    written, as Entra writes the App ID URI the client named."""
    return scope.removesuffix("/.default")


# ------------------------------------------------------------------ client assertions
@dataclass(frozen=True, slots=True)
class ClientCertificate:
    """A certificate registered on an app (its keyCredentials): thumbprints and public key."""

    x5t: str
    x5t_s256: str
    public_key: Any

    @classmethod
    def of(cls, pair: KeyPair) -> ClientCertificate:
        return cls(pair.x5t, pair.x5t_s256, pair.cert.public_key())


def check_assertion(
    assertion: str,
    client_id: str,
    certificates: tuple[ClientCertificate, ...],
    origin: str,
    now: float,
) -> None:
    """Verify a client assertion for `client_id` (RFC 7523 section 3, Entra's rules); raises
    OAuthError with Entra's AADSTS code. `origin` is the token endpoint's, as called."""
    if len(assertion) > MAX_TOKEN or assertion.count(".") != 2:
        raise errors.assertion_malformed()
    try:
        header = jwt.get_unverified_header(assertion)
        unverified = jwt.decode(assertion, options={"verify_signature": False})
    except jwt.InvalidTokenError:
        raise errors.assertion_malformed() from None
    if unverified.get("iss") != client_id or unverified.get("sub") != client_id:
        raise errors.assertion_wrong_client(client_id)
    x5t, x5t_s256 = header.get("x5t"), header.get("x5t#S256")
    sha1, sha256 = _thumbprint(x5t), _thumbprint(x5t_s256)

    def registered(c: ClientCertificate) -> bool:
        return (sha1 is not None and c.x5t == sha1) or (sha256 is not None and c.x5t_s256 == sha256)

    cert = next((c for c in certificates if registered(c)), None)
    if cert is None:
        raise errors.assertion_unknown_key(str(x5t_s256 or x5t or ""), client_id)
    try:
        claims = jwt.decode(
            assertion,
            cert.public_key,
            algorithms=ASSERTION_ALGORITHMS,
            options=_SIGNATURE_ONLY,
        )
    except jwt.InvalidTokenError:
        raise errors.assertion_bad_signature() from None
    exp, nbf = claims.get("exp"), claims.get("nbf", now)
    if not isinstance(exp, int | float) or not isinstance(nbf, int | float):
        raise errors.assertion_malformed()
    if exp + ASSERTION_SKEW < now or nbf - ASSERTION_SKEW > now:
        raise errors.assertion_expired()
    if not _token_audience(claims.get("aud"), origin):
        raise errors.assertion_bad_audience(str(claims.get("aud")))


def _thumbprint(value: object) -> str | None:
    """A header's thumbprint in base64url without padding (JOSE's form). MSAL writes it in
    standard base64 with padding, so both spellings are read."""
    if not isinstance(value, str) or not value or len(value) > 128:
        return None
    try:
        raw = base64.b64decode(value.replace("-", "+").replace("_", "/") + "=" * (-len(value) % 4))
    except ValueError:
        return None
    return b64url(raw)


def _token_audience(aud: object, origin: str) -> bool:
    """Whether `aud` names a token endpoint of this tenant: on the origin the client called,
    or on Entra's own host (where the assertion would be valid too)."""
    if not isinstance(aud, str):
        return False
    try:
        parts, ours = urlsplit(aud), urlsplit(origin)
    except ValueError:  # "https://[..." : not a URL, so not ours
        return False
    host_ok = parts.netloc.casefold() == ours.netloc.casefold() or parts.hostname in _LOGIN_HOSTS
    path = parts.path.rstrip("/")
    return host_ok and parts.scheme == "https" and path.endswith(_TOKEN_PATHS)


# ------------------------------------------------------------------ discovery
def token_endpoint(origin: str, tenant_id: str) -> str:
    """The v2.0 token endpoint of `tenant_id` on `origin` (what the endpoints file names too)."""
    return f"{origin}/{tenant_id}/oauth2/v2.0/token"


def openid_configuration(origin: str, tenant_id: str, version: str = "v2.0") -> dict[str, Any]:
    """The OpenID Provider Configuration Entra publishes for a tenant (v2.0 or v1.0)."""
    base = f"{origin}/{tenant_id}"
    if version == "v2.0":
        oauth, issuer, keys = f"{base}/oauth2/v2.0", f"{base}/v2.0", f"{base}/discovery/v2.0/keys"
    else:
        oauth, issuer, keys = f"{base}/oauth2", v1_issuer(tenant_id), f"{base}/discovery/keys"
    return {
        "token_endpoint": token_endpoint(origin, tenant_id)
        if version == "v2.0"
        else f"{oauth}/token",
        "token_endpoint_auth_methods_supported": [
            "client_secret_post",
            "private_key_jwt",
            "client_secret_basic",
        ],
        "jwks_uri": keys,
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "issuer": issuer,
        "request_uri_parameter_supported": False,
        "authorization_endpoint": f"{oauth}/authorize",
        "end_session_endpoint": f"{oauth}/logout",
        "http_logout_supported": True,
        "frontchannel_logout_supported": True,
        "claims_supported": [
            "sub",
            "iss",
            "aud",
            "exp",
            "iat",
            "auth_time",
            "acr",
            "nonce",
            "tid",
            "ver",
        ],
        "tenant_region_scope": "NA",
        "cloud_instance_name": "microsoftonline.com",
        "cloud_graph_host_name": "graph.windows.net",
        "msgraph_host": "graph.microsoft.com",
        "rbac_url": "https://pas.windows.net",
    }


def instance_discovery(origin: str, authorization_endpoint: str) -> dict[str, Any] | None:
    """``/common/discovery/instance``'s answer for an authority on this origin (None: not ours,
    which Entra answers with `invalid_instance`)."""
    try:
        parts, ours = urlsplit(authorization_endpoint), urlsplit(origin)
    except ValueError:  # an unbalanced "[" in the host: no instance of ours
        return None
    host = ours.netloc
    segments = [s for s in parts.path.split("/") if s]
    # MSAL drops the port from the endpoint it asks about: compare host names only.
    if parts.hostname is None or parts.hostname != ours.hostname or not segments:
        return None
    tenant = segments[0]
    return {
        "tenant_discovery_endpoint": f"{origin}/{tenant}/v2.0/.well-known/openid-configuration",
        "api-version": "1.1",
        "metadata": [{"preferred_network": host, "preferred_cache": host, "aliases": [host]}],
    }
