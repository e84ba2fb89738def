"""OAuth2 client-credentials tokens as Entra ID issues them, and bearer checks for the APIs.

Three app registrations exist per tenant: a read-write one (Exchange.ManageAsApp,
User.ReadWrite.All, Application.ReadWrite.All and the two *-OnPremisesSyncBehavior.ReadWrite.All
permissions: the admin's scripts, scenario edits and the decommission), a read-only one
(User.Read.All, Application.Read.All, Group.Read.All, OrgContact.Read.All: what a reporting
tool, or the writeback engine's reader, gets) and Entra Connect's sync account
(User.Read.All and Directory.Synchronization, a role of this harness standing in for the
"Directory Synchronization Accounts" identity: only it may call the dirsync export endpoint, and
it has none of the write roles, so Graph and EXO writes stay closed to it). Tokens are opaque
random strings with an expiry and the app's roles; they are never logged.
"""

from __future__ import annotations

import hmac
import secrets
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from mockservers.cloud import errors

# The decommission's Graph calls: service principals' keyCredentials, and the SOA transfer of
# groups and contacts (onPremisesSyncBehavior), each with its documented application permission.
APPLICATION_READ = ("Application.Read.All", "Application.ReadWrite.All")
APPLICATION_WRITE = "Application.ReadWrite.All"
GROUP_SOA_WRITE = "Group-OnPremisesSyncBehavior.ReadWrite.All"
CONTACT_SOA_WRITE = "Contacts-OnPremisesSyncBehavior.ReadWrite.All"
GROUP_SOA_READ = ("Group.Read.All", GROUP_SOA_WRITE)
CONTACT_SOA_READ = ("OrgContact.Read.All", CONTACT_SOA_WRITE)
WRITE_ROLES = frozenset(
    {
        "User.ReadWrite.All",
        "Directory.ReadWrite.All",
        "Exchange.ManageAsApp",
        APPLICATION_WRITE,
        GROUP_SOA_WRITE,
        CONTACT_SOA_WRITE,
    }
)
READ_WRITE_ROLES = (
    "User.Read.All",
    "User.ReadWrite.All",
    "Exchange.ManageAsApp",
    APPLICATION_WRITE,
    GROUP_SOA_WRITE,
    CONTACT_SOA_WRITE,
)
READ_ONLY_ROLES = ("User.Read.All", "Application.Read.All", "Group.Read.All", "OrgContact.Read.All")
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
    app: App
    expires_at: float
    audience: str

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


@dataclass(slots=True)
class Auth:
    tenant_id: str
    apps: dict[str, App]
    lifetime: int = 3600
    clock: Callable[[], float] = time.time
    _tokens: dict[str, Token] = field(default_factory=dict)

    @classmethod
    def for_tenant(cls, tenant_id: str, secrets_by_role: Mapping[str, str] | None = None) -> Auth:
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
        return cls(tenant_id, {a.client_id: a for a in apps})

    def app(self, name: str) -> App:
        return next(a for a in self.apps.values() if a.name == name)

    def issue(self, tenant: str, form: Mapping[str, str]) -> dict[str, object]:
        """The token endpoint: client credentials in the form body (RFC 6749 4.4)."""
        if (
            tenant not in (self.tenant_id, "organizations", "common")
            and tenant.casefold() != self.tenant_id
        ):
            raise errors.unknown_tenant(tenant)
        if form.get("grant_type", "") != "client_credentials":
            raise errors.unsupported_grant()
        scope = form.get("scope", "")
        if not scope:
            raise errors.missing_scope()
        if not scope.endswith("/.default"):
            raise errors.invalid_scope(scope)
        app = self.apps.get(form.get("client_id", ""))
        if app is None:
            raise errors.unknown_client(form.get("client_id", ""), self.tenant_id)
        if not hmac.compare_digest(form.get("client_secret", "").encode(), app.secret.encode()):
            raise errors.invalid_secret(app.client_id)
        token = secrets.token_urlsafe(48)
        self._tokens[token] = Token(
            app, self.clock() + self.lifetime, scope.removesuffix("/.default")
        )
        self._expire_old()
        return {
            "token_type": "Bearer",
            "expires_in": self.lifetime,
            "ext_expires_in": self.lifetime,
            "access_token": token,
        }

    def check(self, authorization: str | None) -> Token:
        """The token behind an Authorization header, or 401 in Graph's shape."""
        if not authorization:
            raise errors.token_empty()
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise errors.token_not_bearer()
        token = self._tokens.get(value.strip())
        if token is None:
            raise errors.token_unknown()
        if token.expires_at <= self.clock():
            raise errors.token_expired()
        return token

    def _expire_old(self) -> None:
        if len(self._tokens) > 10_000:
            now = self.clock()
            self._tokens = {k: t for k, t in self._tokens.items() if t.expires_at > now}
