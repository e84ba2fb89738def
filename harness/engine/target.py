"""The writeback engine's view of on-premises AD over LDAP (ldap3): read users, plan, write.

`plan` turns current and desired values into the smallest modify; `LdapTarget` finds users by
source anchor (base64 of mS-DS-ConsistencyGuid) and applies one atomic ModifyRequest per user,
returning LDAP failures as results (the engine reports them per object) rather than raising.

Case-only changes: AD's Unicode string syntax compares case-insensitively but stores the
spelling it is given, and a case difference can matter to Exchange (``SMTP:`` marks the primary
proxy address, ``smtp:`` a secondary one). So string values are compared by their exact text
and a case-only change is written: a replace for a single-valued attribute, a delete of the old
spelling plus an add of the new one (in that order, in the same request) for a multi-valued one.
Other syntaxes (integers, booleans, DNs) are normalised by AD, so their comparison keys decide.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from ldap3 import BASE, MODIFY_ADD, MODIFY_DELETE, MODIFY_REPLACE, NONE, SUBTREE, Connection, Server
from ldap3.core.exceptions import (
    LDAPCommunicationError,
    LDAPException,
    LDAPResponseTimeoutError,
)
from ldap3.utils.conv import escape_bytes

from harness.tenant.model import anchor_of
from mockservers.directory.schema import DEFAULT_SCHEMA, AttributeType, InvalidValue, Syntax

Values = tuple[str, ...]
Change = tuple[str, str, Values]  # (op "add" | "delete" | "replace", attribute, values)

ANCHOR_ATTRIBUTE = "mS-DS-ConsistencyGuid"
PAGE_SIZE = 1000
MAX_TRIES = 5
RETRYABLE_CODES = frozenset({51, 52})  # busy, unavailable
SERVER_DOWN = 81  # wldap32's LDAP_SERVER_DOWN: no answer at all (client-side code)
_OPS = {"add": MODIFY_ADD, "delete": MODIFY_DELETE, "replace": MODIFY_REPLACE}
_PAGED_OID = "1.2.840.113556.1.4.319"

T = TypeVar("T")


class LdapTargetError(Exception):
    """A bind or read that failed; `code` is the LDAP result code, `message` AD's text."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"LDAP {code}: {message.strip()}")
        self.code = code
        self.message = message


@dataclass(frozen=True)
class LdapCredentials:
    url: str
    bind_dn: str
    password: str
    base_dn: str


@dataclass
class AdObject:
    """One AD user: its DN and the current values of the profile's targets (() = absent)."""

    dn: str
    values: dict[str, Values] = field(default_factory=dict)


@dataclass(frozen=True)
class WriteResult:
    ok: bool
    code: int
    message: str


# --- planning -----------------------------------------------------------------------------


_attribute = DEFAULT_SCHEMA.require


def _key(attr: AttributeType, v: str) -> object:
    """AD's comparison key; a value that does not parse is left for AD to reject."""
    try:
        return attr.key(v.encode("utf-8"))
    except InvalidValue:
        return v


def _identity(attr: AttributeType) -> Callable[[str], object]:
    """What makes two values the same for planning (see the module docstring)."""
    if attr.syntax in (Syntax.STRING, Syntax.OCTETS):
        return lambda v: v
    return lambda v: _key(attr, v)


def _unique(values: Iterable[str], attr: AttributeType) -> list[str]:
    """Values without repeats under AD's comparison key (AD can hold only one of them)."""
    first: dict[object, str] = {}
    for v in values:
        first.setdefault(_key(attr, v), v)
    return list(first.values())


def plan(current: dict[str, Values], desired: dict[str, Values]) -> list[Change]:
    """The minimal changes that turn `current` into `desired`, in `desired`'s attribute order.

    Single-valued: one replace (with () to clear) when the value differs. Multi-valued: a
    delete of exactly the values that are gone, then an add of the new ones. Attributes only
    in `current` are not managed and left alone; equal values give no change at all.
    """
    changes: list[Change] = []
    for name, want in desired.items():
        attr = _attribute(name)
        same = _identity(attr)
        have = current.get(name, ())
        if attr.single:
            if len(want) > 1:
                raise ValueError(f"{name} is single-valued but {len(want)} values are desired")
            if len(have) == len(want) and all(
                same(a) == same(b) for a, b in zip(have, want, strict=True)
            ):
                continue
            changes.append(("replace", name, tuple(want)))
            continue
        want_list = _unique(want, attr)
        want_ids = {same(v) for v in want_list}
        have_ids = {same(v) for v in have}
        gone = tuple(v for v in have if same(v) not in want_ids)
        new = tuple(v for v in want_list if same(v) not in have_ids)
        if gone:
            changes.append(("delete", name, gone))  # before the add: frees a case-only respelling
        if new:
            changes.append(("add", name, new))
    return changes


def _by_name(raw: Any) -> dict[str, list[bytes]]:
    """Raw attributes by case-folded name, without options (AD may answer `a;range=0-1499`)."""
    return {k.split(";", 1)[0].casefold(): list(v) for k, v in raw.items()}


# --- LDAP ---------------------------------------------------------------------------------


class LdapTarget:
    """AD as the engine sees it: users by anchor, and one atomic modify per user.

    Busy (51), unavailable (52) and a dropped connection are retried with exponential backoff
    on a new, re-bound connection, up to `MAX_TRIES` tries per operation.
    """

    def __init__(
        self,
        creds: LdapCredentials,
        attributes: list[str],
        *,
        timeout: float = 30,
        backoff: float = 0.2,
        page_size: int = PAGE_SIZE,
    ) -> None:
        self.creds = creds
        self.attributes = list(attributes)
        self.timeout = timeout
        self.backoff = backoff
        self.page_size = page_size
        self.stats: dict[str, int] = {
            "searches": 0, "pages": 0, "modifies": 0, "retries": 0, "reconnects": 0
        }  # fmt: skip
        self.duplicate_anchors: dict[str, list[str]] = {}  # anchor -> DNs beyond the first
        self._server = Server(creds.url, get_info=NONE, connect_timeout=timeout)
        self._conn: Connection | None = None
        self._connect()

    def __enter__(self) -> LdapTarget:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(LDAPException):  # already gone: nothing to free
                self._conn.unbind()
            self._conn = None

    def _connect(self) -> Connection:
        self.close()
        conn = Connection(
            self._server,
            self.creds.bind_dn,
            self.creds.password,
            receive_timeout=self.timeout,
            raise_exceptions=False,
            auto_referrals=False,
        )
        try:
            bound = conn.bind()
        except (LDAPCommunicationError, LDAPResponseTimeoutError) as e:
            raise LdapTargetError(SERVER_DOWN, f"cannot reach {self.creds.url}: {e}") from None
        if not bound:
            code, message = conn.result.get("result", 1), conn.result.get("message", "")
            conn.unbind()
            raise LdapTargetError(code, message)
        self._conn = conn
        return conn

    def _retrying(self, op: Callable[[Connection], T]) -> T:
        """Run `op`, retrying transient failures; the last failure is raised."""
        failure = LdapTargetError(SERVER_DOWN, "no attempt made")
        for attempt in range(MAX_TRIES):
            if attempt:
                self.stats["retries"] += 1
                time.sleep(self.backoff * 2 ** (attempt - 1))
            try:
                conn = self._conn
                if conn is None:
                    self.stats["reconnects"] += 1
                    conn = self._connect()
                return op(conn)
            except (LDAPCommunicationError, LDAPResponseTimeoutError) as e:
                failure = LdapTargetError(SERVER_DOWN, f"connection to {self.creds.url} lost: {e}")
            except LdapTargetError as e:
                if e.code not in RETRYABLE_CODES and e.code != SERVER_DOWN:
                    raise
                failure = e
            if failure.code != 51:  # busy: the connection is fine, only the DC is loaded
                self.close()  # the socket is unusable whatever ldap3 thinks: start over
        raise failure

    # --- reads ---

    def _search(self, conn: Connection, flt: str) -> list[dict[str, Any]]:
        """One paged subtree search below the base DN; the entries of all pages."""
        entries: list[dict[str, Any]] = []
        cookie: bytes | None = None
        while True:
            self.stats["pages"] += 1
            conn.search(
                self.creds.base_dn,
                flt,
                SUBTREE,
                attributes=[*self.attributes, ANCHOR_ATTRIBUTE],
                paged_size=self.page_size,
                paged_cookie=cookie,
            )
            result = conn.result
            if result.get("result", 1) != 0:
                raise LdapTargetError(result.get("result", 1), result.get("message", ""))
            entries += [e for e in conn.response or [] if e.get("type") == "searchResEntry"]
            control = (result.get("controls") or {}).get(_PAGED_OID) or {}
            cookie = control.get("value", {}).get("cookie") or None
            if not cookie:
                return entries

    def _objects(self, flt: str) -> list[tuple[str, AdObject]]:
        self.stats["searches"] += 1
        entries = self._retrying(lambda c: self._search(c, flt))
        out = []
        for entry in entries:
            raw = _by_name(entry["raw_attributes"])
            guid = raw.get(ANCHOR_ATTRIBUTE.casefold())
            if guid:
                out.append((anchor_of(guid[0]), self._object(entry["dn"], raw)))
        return out

    def _object(self, dn: str, raw: dict[str, list[bytes]]) -> AdObject:
        get = raw.get
        return AdObject(
            dn,
            {a: tuple(v.decode("utf-8") for v in get(a.casefold(), ())) for a in self.attributes},
        )

    def index(self) -> dict[str, AdObject]:
        """Every user with a source anchor, by anchor; one paged subtree search.

        Anchors held by more than one object keep the first and list the others in
        `duplicate_anchors`: the engine must not guess which one the cloud object means.
        """
        self.duplicate_anchors = {}
        found: dict[str, AdObject] = {}
        for anchor, obj in self._objects(f"(&(objectClass=user)({ANCHOR_ATTRIBUTE}=*))"):
            if anchor in found:
                self.duplicate_anchors.setdefault(anchor, []).append(obj.dn)
            else:
                found[anchor] = obj
        return found

    def find(self, anchor: str) -> AdObject | None:
        """The user whose mS-DS-ConsistencyGuid is `anchor` (base64), by an indexed search."""
        try:
            guid = base64.b64decode(anchor, validate=True)
        except binascii.Error:
            raise ValueError(f"{anchor!r} is not a base64 source anchor") from None
        flt = f"(&(objectClass=user)({ANCHOR_ATTRIBUTE}={escape_bytes(guid)}))"
        found = self._objects(flt)
        if len(found) > 1:
            dns = "; ".join(o.dn for _, o in found)
            raise LdapTargetError(0, f"anchor {anchor} is held by {len(found)} objects: {dns}")
        return found[0][1] if found else None

    def read(self, dn: str) -> AdObject:
        """The current values of one object by DN (after a write, or to re-plan)."""
        self.stats["searches"] += 1

        def op(conn: Connection) -> AdObject:
            conn.search(dn, "(objectClass=*)", BASE, attributes=self.attributes)
            result = conn.result
            if result.get("result", 1) != 0 or not conn.response:
                raise LdapTargetError(result.get("result", 1), result.get("message", ""))
            entry = conn.response[0]
            return self._object(entry["dn"], _by_name(entry["raw_attributes"]))

        return self._retrying(op)

    # --- writes ---

    def apply(self, dn: str, changes: list[Change]) -> WriteResult:
        """Write `changes` to `dn` in one atomic ModifyRequest; failures come back as results.

        A retry after a dropped connection may meet its own earlier write (the request reached
        AD but the answer was lost): then a delete or add fails with 16 or 20, and the caller
        should re-read and re-plan.
        """
        if not changes:
            return WriteResult(True, 0, "no changes")
        request: dict[str, list[tuple[str, list[str]]]] = {}
        for op, attribute, values in changes:
            if op not in _OPS:
                raise ValueError(f"unknown modify operation {op!r}")
            request.setdefault(attribute, []).append((_OPS[op], list(values)))

        def modify(conn: Connection) -> WriteResult:
            self.stats["modifies"] += 1
            ok = conn.modify(dn, request)
            code, message = conn.result.get("result", 1), conn.result.get("message", "")
            if not ok and code in RETRYABLE_CODES:
                raise LdapTargetError(code, message)
            return WriteResult(bool(ok), code, message)

        try:
            return self._retrying(modify)
        except LdapTargetError as e:
            return WriteResult(False, e.code, e.message)
