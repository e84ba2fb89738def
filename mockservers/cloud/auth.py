"""OAuth2 client-credentials tokens as Entra ID issues them, and bearer checks for the APIs.

Three app registrations exist per tenant: a read-write one (Exchange.ManageAsApp,
User.ReadWrite.All, Application.ReadWrite.All and the two *-OnPremisesSyncBehavior.ReadWrite.All
permissions: the admin's scripts, scenario edits and the decommission), a read-only one
(User.Read.All, Application.Read.All, Group.Read.All, OrgContact.Read.All, AuditLog.Read.All,
Synchronization.Read.All:
what a reporting tool, or the writeback engine's reader, gets) and Entra Connect's sync account
(User.Read.All and Directory.Synchronization, a role of this harness standing in for the
"Directory Synchronization Accounts" identity: only it may call the dirsync export endpoint, and
it has none of the write roles, so Graph and EXO writes stay closed to it). The read-write app
also holds `Exwb.Clock.ReadWrite`, the harness's role for its clock's admin route, and
AuditLog.Read.All (the provisioning logs; Graph documents it together with Directory.Read.All,
which the fake does not separate from the read roles).

Apps authenticate with their secret or, for the read-write and read-only apps, with a client
certificate (`mockservers.pki`, a client assertion checked by `entra.check_assertion`). Tokens
are RS256 JWTs signed with the tenant's key (`entra.Signer`), with the app's roles in them; an
API verifies signature, issuer, lifetime and audience (`check`), and keeps the tokens it has
verified in a bounded cache so that a cycle's hundred thousand calls verify each token once.
Tokens are never logged.
"""

from __future__ import annotations

import base64
import heapq
import hmac
import secrets
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from urllib.parse import unquote_plus

from harness.core import clock as harness_clock
from mockservers.cloud import entra, errors
from mockservers.pki import Pki

# The decommission's Graph calls: service principals' keyCredentials, and the SOA transfer of
# groups and contacts (onPremisesSyncBehavior), each with its documented application permission.
APPLICATION_READ = ("Application.Read.All", "Application.ReadWrite.All")
APPLICATION_WRITE = "Application.ReadWrite.All"
GROUP_SOA_WRITE = "Group-OnPremisesSyncBehavior.ReadWrite.All"
CONTACT_SOA_WRITE = "Contacts-OnPremisesSyncBehavior.ReadWrite.All"
GROUP_SOA_READ = ("Group.Read.All", GROUP_SOA_WRITE)
CONTACT_SOA_READ = ("OrgContact.Read.All", CONTACT_SOA_WRITE)
# Graph's synchronization API (servicePrincipals/{id}/synchronization/...).
SYNC_JOBS_WRITE = "Synchronization.ReadWrite.All"
SYNC_JOBS_READ = ("Synchronization.Read.All", SYNC_JOBS_WRITE)
WRITE_ROLES = frozenset(
    {
        "User.ReadWrite.All",
        "Directory.ReadWrite.All",
        "Exchange.ManageAsApp",
        APPLICATION_WRITE,
        GROUP_SOA_WRITE,
        CONTACT_SOA_WRITE,
        SYNC_JOBS_WRITE,
    }
)
# The harness's own role for its clock's admin route (`POST /exwb/clock/advance`): an extension,
# held by the read-write app only, so a reader or the sync account cannot move the tenant's time.
CLOCK_ROLE = "Exwb.Clock.ReadWrite"
# Provisioning logs (GET /auditLogs/provisioning), read by the admin's and the reader's apps.
AUDIT_LOG_READ = "AuditLog.Read.All"
READ_WRITE_ROLES = (
    "User.Read.All",
    "User.ReadWrite.All",
    "Exchange.ManageAsApp",
    APPLICATION_WRITE,
    GROUP_SOA_WRITE,
    CONTACT_SOA_WRITE,
    SYNC_JOBS_WRITE,
    CLOCK_ROLE,
    AUDIT_LOG_READ,
)
READ_ONLY_ROLES = (
    "User.Read.All",
    "Application.Read.All",
    "Group.Read.All",
    "OrgContact.Read.All",
    "Synchronization.Read.All",
    AUDIT_LOG_READ,
)
SYNC_ROLE = "Directory.Synchronization"
CONNECT_ROLES = ("User.Read.All", SYNC_ROLE)


@dataclass(frozen=True, slots=True)
class App:
    client_id: str
    secret: str
    name: str
    roles: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Token:
    app: App  # the app, with the roles its token carries
    expires_at: float
    audience: str

    def for_audience(self, accepted: frozenset[str]) -> Token:
        """This token if its `aud` is one the API accepts; 401 in Graph's shape if not."""
        if self.audience not in accepted:
            raise errors.token_wrong_audience()
        return self

    @property
    def can_write(self) -> bool:
        return not WRITE_ROLES.isdisjoint(self.app.roles)

    def has_any(self, roles: tuple[str, ...] | str) -> bool:
        """Whether the app holds one of `roles` (a role name or several)."""
        wanted = (roles,) if isinstance(roles, str) else roles
        return any(r in self.app.roles for r in wanted)

    @property
    def can_sync(self) -> bool:
        """May export to the directory-synchronization endpoint (Entra Connect's account)."""
        return SYNC_ROLE in self.app.roles


def tenant_time() -> float:
    """Now on the harness clock (`harness.core.clock`), in seconds since the epoch: tokens'
    iat/nbf/exp and their checks follow it, so a simulated week expires a token as a real one
    would. Client assertions are checked on the wall clock: the client signs them with its own."""
    return harness_clock.now().timestamp()


# The app registrations given a client certificate (pki.APPS), by app name.
_CERTIFICATE_APPS = {"exwb-admin": "admin", "exwb-reader": "reader"}
_CACHE_LIMIT = 10_000  # verified tokens kept at most (the soonest to expire go first)


@dataclass(slots=True)
class Auth:
    tenant_id: str
    apps: dict[str, App]
    lifetime: int = 3600
    clock: Callable[[], float] = tenant_time
    pki: Pki | None = None  # signing key and client certificates; None: the process's own
    # The tenant's verified domains (casefolded): an authority may name the tenant by one, as
    # https://login.microsoftonline.com/contoso.onmicrosoft.com does.
    domains: frozenset[str] = frozenset()
    _verified: dict[str, Token] = field(default_factory=dict)
    _expiries: list[tuple[float, str]] = field(default_factory=list)  # heap of _verified's

    @classmethod
    def for_tenant(
        cls,
        tenant_id: str,
        secrets_by_role: Mapping[str, str] | None = None,
        pki: Pki | None = None,
    ) -> Auth:
        given = secrets_by_role or {}
        apps = [
            App(
                str(uuid.uuid4()),
                given.get("readwrite") or secrets.token_urlsafe(30),
                "exwb-admin",
                READ_WRITE_ROLES,
            ),
            App(
                str(uuid.uuid4()),
                given.get("readonly") or secrets.token_urlsafe(30),
                "exwb-reader",
                READ_ONLY_ROLES,
            ),
            App(
                str(uuid.uuid4()),
                given.get("connect") or secrets.token_urlsafe(30),
                "exwb-connect",
                CONNECT_ROLES,
            ),
        ]
        return cls(tenant_id, {a.client_id: a for a in apps}, pki=pki)

    def names_tenant(self, name: str) -> bool:
        """Whether an authority's tenant segment names this tenant: its id, a verified domain,
        or the multi-tenant aliases `organizations` and `common`."""
        folded = name.casefold()
        return folded in (self.tenant_id, "organizations", "common") or folded in self.domains

    def app(self, name: str) -> App:
        return next(a for a in self.apps.values() if a.name == name)

    @property
    def keys(self) -> Pki:
        if self.pki is None:
            from mockservers import pki

            self.pki = pki.shared()
        return self.pki

    @property
    def signer(self) -> entra.Signer:
        return entra.Signer(self.keys.signing)

    def certificate_file(self, name: str) -> str:
        """The PEM (key and certificate) app `name` may sign client assertions with; ''."""
        short = _CERTIFICATE_APPS.get(name)
        return str(self.keys.apps[short].path) if short else ""

    def _certificates(self, app: App) -> tuple[entra.ClientCertificate, ...]:
        short = _CERTIFICATE_APPS.get(app.name)
        return (entra.ClientCertificate.of(self.keys.apps[short]),) if short else ()

    def issue(
        self, tenant: str, form: Mapping[str, str], origin: str = "", basic: str | None = None
    ) -> dict[str, object]:
        """The token endpoint: client credentials (RFC 6749 4.4) with a secret in the form body
        or in HTTP Basic (`basic`, the Authorization header), or a client assertion (RFC 7523).
        `origin` is the token endpoint's as called (an assertion's `aud` names it)."""
        if not self.names_tenant(tenant):
            raise errors.unknown_tenant(tenant)
        if form.get("grant_type", "") != "client_credentials":
            raise errors.unsupported_grant()
        scope = form.get("scope", "")
        if not scope:
            raise errors.missing_scope()
        if not scope.endswith("/.default"):
            raise errors.invalid_scope(scope)
        client_id, secret = form.get("client_id", ""), form.get("client_secret")
        if basic is not None:
            client_id, secret = _basic(basic) or (client_id, secret)
        app = self.apps.get(client_id)
        if app is None:
            raise errors.unknown_client(client_id, self.tenant_id)
        assertion = form.get("client_assertion")
        if assertion is not None:
            if form.get("client_assertion_type") != entra.ASSERTION_TYPE:
                raise errors.unsupported_assertion_type()
            entra.check_assertion(
                assertion, app.client_id, self._certificates(app), origin, time.time()
            )
        elif secret is None:
            raise errors.missing_credential()
        elif not hmac.compare_digest(secret.encode(), app.secret.encode()):
            raise errors.invalid_secret(app.client_id)
        now = int(self.clock())
        claims = entra.access_claims(
            self.tenant_id,
            app.client_id,
            app.name,
            app.roles,
            entra.audience_for(scope),
            now,
            self.lifetime,
            certificate=assertion is not None,
        )
        return {
            "token_type": "Bearer",
            "expires_in": self.lifetime,
            "ext_expires_in": self.lifetime,
            "access_token": self.signer.sign(claims),
        }

    def check(self, authorization: str | None) -> Token:
        """The token behind an Authorization header, or 401 in Graph's shape."""
        if not authorization:
            raise errors.token_empty()
        scheme, _, value = authorization.partition(" ")
        value = value.strip()
        if scheme.lower() != "bearer" or not value:
            raise errors.token_not_bearer()
        token = self._verified.get(value)
        if token is None:
            token = self._verify(value)
        if token.expires_at <= self.clock():
            raise errors.token_expired()
        return token

    def _verify(self, value: str) -> Token:
        claims = self.signer.verify(value, self.tenant_id)
        app = self.apps.get(str(claims.get("appid", "")))
        exp, aud, roles = claims.get("exp"), claims.get("aud"), claims.get("roles", [])
        if (
            app is None
            or not isinstance(exp, int)
            or not isinstance(aud, str)
            or not isinstance(roles, list)
            or claims.get("tid") != self.tenant_id
        ):
            raise errors.token_invalid()
        token = Token(replace(app, roles=tuple(str(r) for r in roles)), float(exp), aud)
        self._forget_expired()
        self._verified[value] = token
        heapq.heappush(self._expiries, (token.expires_at, value))
        return token

    def _forget_expired(self) -> None:
        """Drop the expired tokens, and the soonest to expire beyond _CACHE_LIMIT.

        Every client asks for a token of its own (a scheduled cycle does, 72 times a day), so
        keeping them until a limit made the cache grow with the cycles run; this keeps those
        still alive. A heap by expiry finds them whatever order they were verified in (a
        wall-clock token ahead of simulated ones), each dropped once: O(log n) a token.
        """
        now = self.clock()
        verified, expiries = self._verified, self._expiries
        while expiries and (expiries[0][0] <= now or len(verified) >= _CACHE_LIMIT):
            _, value = heapq.heappop(expiries)
            verified.pop(value, None)


def _basic(header: str) -> tuple[str, str] | None:
    """(client id, secret) of an HTTP Basic Authorization header (client_secret_basic)."""
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, sep, password = base64.b64decode(value.strip(), validate=True).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        return None
    if not sep:
        return None
    return unquote_plus(user), unquote_plus(password)
