"""The directory service behind the wire protocol: store, accounts, policy, limits.

The protocol layer (`server.py`) holds no state besides one connection's; everything the
directory knows is here, shared by all connections, so tests and `exwb serve` can start the same
service in-process or on a port.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field
from typing import Literal

from harness.core.adschema import DEFAULT_SCHEMA
from harness.core.dn import InvalidDN, normalize_dn
from mockservers.directory import errors
from mockservers.directory.acl import AccessPolicy, Principal
from mockservers.directory.notify import Notifier
from mockservers.directory.seed import QUERY_POLICY, Account, Seeded
from mockservers.directory.store import Store
from mockservers.directory.subschema import Published, publish, subschema_dn
from mockservers.faults import FaultPlan
from mockservers.requestlog import RequestLog


@dataclass(slots=True)
class Limits:
    """The LDAP policy values the server applies (AD's defaults), settable per tenant."""

    max_page_size: int = QUERY_POLICY["MaxPageSize"]
    max_receive_buffer: int = QUERY_POLICY["MaxReceiveBuffer"]
    # The most values of one attribute a search returns per entry; more are read by range
    # retrieval (`member;range=1500-*`, [MS-ADTS] 3.1.1.3.1.3.3).
    max_val_range: int = QUERY_POLICY["MaxValRange"]
    max_paged_searches_per_connection: int = 16
    # How a client's sizeLimit counts in a paged search. "per-request" (the default): each page
    # is a search request of its own and the limit bounds that request's entries, so msldap,
    # which sends sizeLimit=1000 with every 1,000-entry page, reads a whole large domain, as it
    # does against AD ([MS-ADTS] 3.1.1.3.4.1.1: paging splits the search "into multiple
    # searches, each of which returns no more objects than this limit"). "whole-search": the
    # limit counts every page's entries together (one reading of RFC 2696). No Microsoft text
    # says which AD does with sizeLimit itself: unconfirmed, hence a setting.
    paged_size_limit: Literal["per-request", "whole-search"] = "per-request"
    # Open change-notification searches per connection ([MS-ADTS] 3.1.1.3.4.1.9); one more is
    # adminLimitExceeded.
    max_notifications_per_connection: int = QUERY_POLICY["MaxNotificationPerConn"]
    # Bytes of notifications that may wait for a connection's reader once Twisted's send buffer
    # is full; past it the connection ends (the fake's bound: Microsoft documents none). What
    # one read of pipelined modifies (64 KiB, some 300 requests) notifies fits several times.
    notification_backlog: int = 4 << 20
    # A one-level or subtree search that reaches a naming context it does not enter (the
    # configuration partition, from the domain) ends with a continuation reference to it, as
    # AD's does ([MS-ADTS] 3.1.1.4.7; referrals.py). False: none, as slapd sends for its
    # separate databases, for a client that cannot take them.
    continuation_references: bool = True


@dataclass(slots=True)
class DirectoryService:
    store: Store
    accounts: tuple[Account, ...]
    base_dn: str
    domain: str
    netbios: str
    policy: AccessPolicy
    limits: Limits = field(default_factory=Limits)
    faults: FaultPlan = field(default_factory=FaultPlan)  # shared with the tenant's cloud
    log: RequestLog | None = None  # exwb serve --log / -v
    # Make the ANR and initial-substring indexes while the server is idle, not on the first
    # search that needs them (Store.warm_steps); off: on first use, as before.
    warm_indexes: bool = True
    _principals: dict[str, tuple[Principal, str]] = field(default_factory=dict)
    _published: Published | None = None
    _notifier: Notifier | None = None

    @property
    def subschema_ndn(self) -> str:
        """The normalised DN of the subschema entry (the rootDSE's subschemaSubentry)."""
        return normalize_dn(subschema_dn(f"CN=Schema,CN=Configuration,{self.base_dn}"))

    def subschema(self) -> Published:
        """The subschema entry's schema attributes, built once from the store's schema."""
        if self._published is None:
            self._published = publish(self.store.schema)
        return self._published

    @property
    def notifier(self) -> Notifier:
        """The open change-notification searches of every connection (notify.py)."""
        if self._notifier is None:
            self._notifier = Notifier(self.store)
        return self._notifier

    @classmethod
    def from_seed(
        cls, seeded: Seeded, writable_ous: tuple[str, ...] | None = None
    ) -> DirectoryService:
        spec = seeded.spec
        ous = writable_ous or (f"OU=Corp,{spec.base_dn}",)
        svc = cls(
            store=seeded.store,
            accounts=seeded.accounts,
            base_dn=spec.base_dn,
            domain=spec.domain,
            netbios=spec.netbios_name,
            policy=AccessPolicy(writable_subtrees=tuple(normalize_dn(o) for o in ous)),
        )
        for a in seeded.accounts:
            ndn = normalize_dn(a.dn)
            svc._principals[ndn] = (Principal(a.dn, ndn, a.sam, a.role), a.password)
        return svc

    def authenticate(self, name: str, password: bytes) -> Principal:
        """Resolve a simple bind's name (DN, UPN or DOMAIN\\sAMAccountName) and check it.

        Unknown names and wrong passwords fail alike (AD's data 52e), so a caller cannot tell
        which part was wrong.
        """
        ndn = self._resolve(name)
        hit = self._principals.get(ndn) if ndn else None
        expected = hit[1].encode("utf-8") if hit else b"\x00" * 24
        ok = hmac.compare_digest(password, expected)
        if hit is None or not ok:
            raise errors.invalid_credentials()
        return hit[0]

    def account_secret(self, name: str) -> tuple[str, str] | None:
        """The DN and password of the account a bind name resolves to (as `authenticate`
        resolves it), or None: for NTLM and DIGEST-MD5 binds, which prove the password without
        sending it."""
        ndn = self._resolve(name)
        hit = self._principals.get(ndn) if ndn else None
        return (hit[0].dn, hit[1]) if hit else None

    def _resolve(self, name: str) -> str | None:
        schema = DEFAULT_SCHEMA
        if "\\" in name and "=" not in name:
            domain, _, sam = name.partition("\\")
            if domain.casefold() not in (self.netbios.casefold(), self.domain.casefold()):
                return None
            hits = self.store.lookup(schema.get("sAMAccountName"), sam.casefold())  # type: ignore[arg-type]
        elif "@" in name and "=" not in name:
            hits = self.store.lookup(schema.get("userPrincipalName"), name.casefold())  # type: ignore[arg-type]
        else:
            try:
                return normalize_dn(name)
            except InvalidDN:
                return None
        hits = list(hits)
        return hits[0].ndn if len(hits) == 1 else None
