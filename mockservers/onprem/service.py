"""The on-premises estate as its HTTP API serves it, and who may sign in to it.

Every route needs HTTP Basic auth as a directory account (its DN, sAMAccountName,
DOMAIN\\name or UPN and password, checked by the fake AD): bad or missing credentials get 401
with WWW-Authenticate; the role a route requires (routes.py) is checked after that (403).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from harness.core import clock
from harness.core.ldapresult import LdapError
from harness.tenant.exchange_org import ExchangeOrg
from mockservers.directory.acl import Principal
from mockservers.directory.service import DirectoryService
from mockservers.onprem import errors
from mockservers.onprem.estate import Estate
from mockservers.requestlog import RequestLog


def _now() -> datetime:
    return clock.now()


@dataclass(slots=True)
class OnpremService:
    """The estate, the directory whose accounts sign in (and that Setup edits), the org."""

    estate: Estate
    directory: DirectoryService
    org: ExchangeOrg
    clock: Callable[[], datetime] = field(default=_now)
    log: RequestLog | None = None  # exwb serve --log / -v

    def authenticate(self, header: str | None) -> Principal:
        """The account named by a Basic Authorization header; 401 otherwise."""
        if not header or not header[:6].lower() == "basic ":
            raise errors.credentials_missing()
        try:
            raw = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise errors.credentials_malformed() from None
        name, sep, password = raw.partition(":")
        if not sep or not name:
            raise errors.credentials_malformed()
        if not any(c in name for c in "=@\\"):  # a bare sAMAccountName
            name = f"{self.directory.netbios}\\{name}"
        try:
            return self.directory.authenticate(name, password.encode("utf-8"))
        except LdapError:
            raise errors.credentials_wrong() from None

    @staticmethod
    def require(who: Principal, roles: tuple[str, ...]) -> None:
        """403 unless `who` holds one of `roles` (Role values, e.g. "admin")."""
        if who.role.value not in roles:
            raise errors.not_an_administrator(who.sam)
