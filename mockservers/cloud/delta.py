"""The Graph user shape, and the state behind Graph's user paging and ``users/delta``.

`graph.py` handles requests (query options, links, errors); this module knows how a
`CloudMailbox` maps to Graph user properties (rendering, and which Exchange change touches which
Graph property) and answers three questions:

* *Which users come next?* Pages walk the user ids in sorted order and resume after the last
  id a page returned, so a page costs a bisect plus a slice whatever the store's size, and
  deletions between pages neither skip nor repeat anyone. The sorted id list is cached per store
  and kept current from the change log (updates do not touch it; deletions remove one id).
* *What changed in a round?* A delta round started from a token with watermark ``since`` covers
  the changes ``since < seq <= until``, ``until`` being ``store.seq`` when the round started.
  Each changed user appears once, in the order of its latest change, with the Graph properties
  its changes touched; changes to properties the round does not track are dropped. Windows are
  cached per store so that paging a large window is linear overall.
* *Is this token ours?* Tokens are base64url of a compact JSON payload plus a truncated
  HMAC-SHA256 under a per-process key; they also carry a per-store nonce, so a token from an
  earlier store (a reset tenant) does not verify either.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from bisect import bisect_left, bisect_right
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import lru_cache
from operator import attrgetter
from typing import Any
from weakref import WeakKeyDictionary

from harness.tenant.model import CloudMailbox
from mockservers.cloud.store import CloudStore

TOKEN_LIFETIME_SECONDS = 7 * 24 * 3600  # Graph: delta tokens of directory objects live 7 days
DELETED = "@deleted"  # the Change property of a deletion, kept as-is among Graph properties
WILDCARD = "*"  # an Exchange property this module does not know: counts for every selection

_MAC_BYTES = 16
_TOKEN_VERSION = 1
_WINDOW_CACHE_SIZE = 16
# Removing ids one by one is a memmove of the whole list each; past this many, re-sort instead.
_MAX_INCREMENTAL_REMOVALS = 64

_EXCHANGE_TO_GRAPH: dict[str, tuple[str, ...]] = {
    "UserPrincipalName": ("userPrincipalName",),
    "DisplayName": ("displayName",),
    "Alias": ("mailNickname",),
    "EmailAddresses": ("proxyAddresses",),
    # Graph's mail is rendered from WindowsEmailAddress, which EXO rewrites with the primary SMTP.
    "WindowsEmailAddress": ("mail",),
    "IsExchangeCloudManaged": ("exwbExchange",),
    "RecipientTypeDetails": ("exwbExchange",),
    "HiddenFromAddressListsEnabled": ("exwbExchange",),
    DELETED: (DELETED,),
}
_EXCHANGE_TO_GRAPH.update(
    {f"CustomAttribute{i}": ("onPremisesExtensionAttributes",) for i in range(1, 16)}
)
_EXCHANGE_TO_GRAPH.update({f"ExtensionCustomAttribute{i}": ("exwbExchange",) for i in range(1, 6)})

_graph_cache: dict[frozenset[str], frozenset[str]] = {}


def graph_properties(exchange_properties: frozenset[str]) -> frozenset[str]:
    """The Graph user properties whose values a change to these Exchange properties affects."""
    hit = _graph_cache.get(exchange_properties)
    if hit is None:
        out: set[str] = set()
        for prop in exchange_properties:
            out.update(_EXCHANGE_TO_GRAPH.get(prop, (WILDCARD,)))
        hit = _graph_cache[exchange_properties] = frozenset(out)
    return hit


# -------------------------------------------------------------------------------- the user shape
# Graph's default user properties, in the order Graph writes them.
DEFAULT_PROPERTIES = (
    "businessPhones",
    "displayName",
    "givenName",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "surname",
    "userPrincipalName",
    "id",
)

Json = dict[str, Any]
Getter = Callable[[CloudMailbox], Any]


_EXTENSION_KEYS = tuple(f"extensionAttribute{i}" for i in range(1, 16))
_EXCHANGE_EXTENSION_KEYS = tuple(f"extensionCustomAttribute{i}" for i in range(1, 6))


def _mail(m: CloudMailbox) -> str | None:
    return m.windows_email_address or None


def _sync_enabled(m: CloudMailbox) -> bool | None:
    return True if m.is_dir_synced else None


def _proxy_addresses(m: CloudMailbox) -> list[str]:
    return list(m.email_addresses)


def _extension_attributes(m: CloudMailbox) -> dict[str, str | None]:
    return dict(zip(_EXTENSION_KEYS, m.custom_attributes, strict=True))


def _exwb_exchange(m: CloudMailbox) -> dict[str, Any]:
    out: dict[str, Any] = {
        "isExchangeCloudManaged": m.is_exchange_cloud_managed,
        "recipientTypeDetails": m.recipient_type_details,
        "hiddenFromAddressListsEnabled": m.hidden_from_address_lists,
    }
    for key, values in zip(_EXCHANGE_EXTENSION_KEYS, m.extension_custom_attributes, strict=True):
        out[key] = list(values)
    return out


def _null(m: CloudMailbox) -> None:
    return None


def _empty(m: CloudMailbox) -> list[Any]:
    return []


_GETTERS: dict[str, Getter] = {
    "id": attrgetter("id"),
    "userPrincipalName": attrgetter("user_principal_name"),
    "displayName": attrgetter("display_name"),
    "mail": _mail,
    "mailNickname": attrgetter("alias"),
    "proxyAddresses": _proxy_addresses,
    "onPremisesImmutableId": attrgetter("immutable_id"),
    "onPremisesSyncEnabled": _sync_enabled,
    "onPremisesExtensionAttributes": _extension_attributes,
    "exwbExchange": _exwb_exchange,
}
# Real v1.0 user properties the model lacks: selectable, rendered as [] or null.
_UNMODELLED_COLLECTIONS = """
    businessPhones imAddresses otherMails assignedLicenses assignedPlans provisionedPlans
    identities interests pastProjects responsibilities schools skills
    onPremisesProvisioningErrors licenseAssignmentStates
"""
_UNMODELLED_SCALARS = """
    accountEnabled ageGroup city companyName consentProvidedForMinor country createdDateTime
    creationType deletedDateTime department employeeHireDate employeeId employeeLeaveDateTime
    employeeOrgData employeeType externalUserState externalUserStateChangeDateTime faxNumber
    givenName jobTitle lastPasswordChangeDateTime legalAgeGroupClassification mobilePhone
    officeLocation onPremisesDistinguishedName onPremisesDomainName onPremisesLastSyncDateTime
    onPremisesSamAccountName onPremisesSecurityIdentifier onPremisesUserPrincipalName
    passwordPolicies passwordProfile postalCode preferredDataLocation preferredLanguage
    securityIdentifier showInAddressList signInSessionsValidFromDateTime state streetAddress
    surname usageLocation userType
"""
_GETTERS.update(dict.fromkeys(_UNMODELLED_COLLECTIONS.split(), _empty))
_GETTERS.update(dict.fromkeys(_UNMODELLED_SCALARS.split(), _null))
_CANONICAL = {name.lower(): name for name in _GETTERS}


def canonical_property(name: str) -> str | None:
    """The v1.0 spelling of a user property named case-insensitively, or None if there is none."""
    return _CANONICAL.get(name.lower())


@lru_cache(maxsize=512)
def renderer(properties: tuple[str, ...]) -> Callable[[CloudMailbox], Json]:
    """A function rendering a user with exactly these (canonical) properties, in this order."""
    pairs = tuple((name, _GETTERS[name]) for name in properties)

    def render(m: CloudMailbox) -> Json:
        return {name: get(m) for name, get in pairs}

    return render


def with_id(properties: tuple[str, ...]) -> tuple[str, ...]:
    """The properties, plus id at the end (where Graph writes it) unless already there."""
    return properties if "id" in properties else (*properties, "id")


# ---------------------------------------------------------------------------------------- tokens
class StateTokens:
    """Seals and opens opaque, tamper-evident tokens (JSON payload + truncated HMAC-SHA256)."""

    def __init__(self, key: bytes | None = None) -> None:
        self._key = key if key is not None else secrets.token_bytes(32)

    def seal(self, payload: list[Any]) -> str:
        """An opaque URL-safe token carrying `payload`."""
        raw = json.dumps(payload, separators=(",", ":")).encode("utf-8")
        return base64.urlsafe_b64encode(raw + self._mac(raw)).rstrip(b"=").decode("ascii")

    def open(self, token: str) -> list[Any] | None:
        """The payload of a token this instance sealed, or None for anything else."""
        try:
            blob = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        except (ValueError, binascii.Error):
            return None
        raw, mac = blob[:-_MAC_BYTES], blob[-_MAC_BYTES:]
        if not raw or not hmac.compare_digest(mac, self._mac(raw)):
            return None
        try:
            payload = json.loads(raw)
        except ValueError:
            return None
        return payload if isinstance(payload, list) else None

    def _mac(self, raw: bytes) -> bytes:
        return hmac.new(self._key, raw, hashlib.sha256).digest()[:_MAC_BYTES]


TOKENS = StateTokens()  # the process-wide default; its key dies with the process, as Graph's would


class InvalidToken(Exception):
    """The token was not issued by this process for this store, or is malformed."""


class ExpiredToken(Exception):
    """A genuine token older than TOKEN_LIFETIME_SECONDS; `round` says what it selected."""

    def __init__(self, round_: Round) -> None:
        super().__init__("expired")
        self.round = round_


# ----------------------------------------------------------------------------- per-store state
@dataclass(slots=True)
class _StoreState:
    nonce: str = field(default_factory=lambda: secrets.token_hex(4))
    ids: list[str] = field(default_factory=list)
    ids_seq: int = -1
    windows: OrderedDict[tuple[Any, ...], list[tuple[str, frozenset[str]]]] = field(
        default_factory=OrderedDict
    )


_states: WeakKeyDictionary[CloudStore, _StoreState] = WeakKeyDictionary()


def _state(store: CloudStore) -> _StoreState:
    st = _states.get(store)
    if st is None:
        st = _states[store] = _StoreState()
    return st


def store_nonce(store: CloudStore) -> str:
    """A random tag for this store object, so tokens cannot cross stores."""
    return _state(store).nonce


def ordered_ids(store: CloudStore) -> list[str]:
    """Every user id in sorted order; cached, and brought up to date from the change log.

    The list is shared: callers must not modify it."""
    st = _state(store)
    if st.ids_seq == store.seq and len(st.ids) == len(store):
        return st.ids
    if 0 <= st.ids_seq <= store.seq:
        deleted = [c.id for c in store.changes_after(st.ids_seq) if DELETED in c.properties]
        if len(deleted) <= _MAX_INCREMENTAL_REMOVALS:
            for id_ in deleted:
                i = bisect_left(st.ids, id_)
                if i < len(st.ids) and st.ids[i] == id_:
                    del st.ids[i]
    if len(st.ids) != len(store):  # first use, many deletions, or users added outside the log
        st.ids = sorted(store.mailboxes)
    st.ids_seq = store.seq
    return st.ids


def page_after(ids: list[str], after: str | None, size: int) -> tuple[list[str], bool]:
    """The `size` ids following `after` in a sorted list, and whether more follow them."""
    start = 0 if after is None else bisect_right(ids, after)
    return ids[start : start + size], start + size < len(ids)


# ------------------------------------------------------------------------------------ rounds
@dataclass(frozen=True, slots=True)
class Round:
    """Where a delta request stands.

    `since` is None for a full round (initial sync); otherwise the round covers changes in
    (since, watermark]. `position` is the last id returned (full round) or the index of the next
    entry in the change window (incremental round); None at the start of a round."""

    watermark: int
    since: int | None
    select: tuple[str, ...] | None
    ids: tuple[str, ...] | None
    position: str | int | None = None


@dataclass(slots=True)
class Page:
    """One page of a round: (id, Graph properties changed, or None for a full-state entry)."""

    items: list[tuple[str, frozenset[str] | None]]
    rest: Round | None  # the remainder of the round; None when this page ends it


def seal_round(tokens: StateTokens, store: CloudStore, rnd: Round, kind: str, now: float) -> str:
    """A $skiptoken (kind "s") or $deltatoken (kind "d") for `rnd`."""
    select = list(rnd.select) if rnd.select is not None else None
    ids = list(rnd.ids) if rnd.ids is not None else None
    payload = [_TOKEN_VERSION, kind, store_nonce(store), rnd.watermark, rnd.since]
    return tokens.seal([*payload, select, ids, rnd.position, int(now)])


def open_round(tokens: StateTokens, store: CloudStore, token: str, kind: str, now: float) -> Round:
    """The round a token describes; raises InvalidToken or ExpiredToken."""
    payload = tokens.open(token)
    if payload is None or len(payload) != 9:
        raise InvalidToken(token)
    version, kind_, nonce, watermark, since, select, ids, position, issued = payload
    if (version, kind_, nonce) != (_TOKEN_VERSION, kind, store_nonce(store)):
        raise InvalidToken(token)
    if not (isinstance(watermark, int) and 0 <= watermark <= store.seq):
        raise InvalidToken(token)  # cannot happen for this store's own tokens
    rnd = Round(
        watermark,
        since,
        tuple(select) if select is not None else None,
        tuple(ids) if ids is not None else None,
        position,
    )
    if now - issued > TOKEN_LIFETIME_SECONDS:
        raise ExpiredToken(rnd)
    return rnd


def next_page(store: CloudStore, rnd: Round, size: int, tracked: frozenset[str]) -> Page:
    """The next `size` entries of a round; `tracked` are the Graph properties it selects."""
    if rnd.since is None:
        return _full_page(store, rnd, size)
    window = change_window(store, rnd.since, rnd.watermark, tracked, rnd.ids)
    start = rnd.position if isinstance(rnd.position, int) else 0
    chunk = window[start : start + size]
    more = start + size < len(window)
    items: list[tuple[str, frozenset[str] | None]] = list(chunk)
    return Page(items, replace(rnd, position=start + size) if more else None)


def _full_page(store: CloudStore, rnd: Round, size: int) -> Page:
    if rnd.ids is None:
        pool = ordered_ids(store)
    else:
        pool = sorted({i for i in rnd.ids if store.get(i) is not None})
    after = rnd.position if isinstance(rnd.position, str) else None
    chunk, more = page_after(pool, after, size)
    return Page([(i, None) for i in chunk], replace(rnd, position=chunk[-1]) if more else None)


def change_window(
    store: CloudStore,
    since: int,
    until: int,
    tracked: frozenset[str],
    ids: tuple[str, ...] | None,
) -> list[tuple[str, frozenset[str]]]:
    """Users changed in (since, until] on tracked properties (or deleted), each once.

    Ordered by each user's latest qualifying change; paired with the Graph properties changed."""
    st = _state(store)
    key = (since, until, tracked, ids)
    hit = st.windows.get(key)
    if hit is not None:
        st.windows.move_to_end(key)
        return hit
    wanted = frozenset(ids) if ids is not None else None
    changed: dict[str, frozenset[str]] = {}
    for c in store.changes_after(since):
        if c.seq > until:
            break
        if wanted is not None and c.id not in wanted:
            continue
        props = graph_properties(c.properties)
        if not (props & tracked or WILDCARD in props or DELETED in props):
            continue
        previous = changed.pop(c.id, None)  # re-insert: order by latest change
        changed[c.id] = props if previous is None else previous | props
    window = list(changed.items())
    st.windows[key] = window
    if len(st.windows) > _WINDOW_CACHE_SIZE:
        st.windows.popitem(last=False)
    return window
