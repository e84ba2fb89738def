"""Microsoft Graph v1.0 users (list, get, delta) and the hybrid objects, from the CloudStore.

The HTTP layer routes and calls pure functions; each returns the JSON body as a dict (None for
a 204) or raises `CloudError` (Graph's error envelope, extra headers in `CloudError.headers`):

* ``list_users(store, query, base_url, headers)``  - ``GET /v1.0/users`` ($filter, $search,
  $orderby and $count: graph_query.py)
* ``count_users(store, query, headers)``           - ``GET /v1.0/users/$count``
* ``get_user(store, key, query, base_url)``        - ``GET /v1.0/users/{id | userPrincipalName}``
* ``users_delta(store, query, base_url, headers, now)`` - ``GET /v1.0/users/delta``

and, over the hybrid objects (`CloudStore.hybrid`, see hybrid.py), the decommission's calls:

* ``list_service_principals`` / ``get_service_principal`` / ``patch_service_principal`` -
  ``GET /v1.0/servicePrincipals[?$filter=appId eq '...']``, ``GET|PATCH
  /v1.0/servicePrincipals/{id}`` and ``.../servicePrincipals(appId='...')`` (keyCredentials)
* ``get_sync_behavior`` / ``patch_sync_behavior`` - ``GET|PATCH
  /v1.0/{groups|contacts}/{id}/onPremisesSyncBehavior`` (the SOA transfer)

`query` holds the decoded query parameters (names case-insensitive, "$" optional), `headers`
lower-cased header names. Links are absolute, built on `base_url` (``http://host:port``).

User properties, from `CloudMailbox`: id, userPrincipalName, displayName, mail
(WindowsEmailAddress, null when empty), mailNickname (Alias), proxyAddresses (EmailAddresses),
onPremisesImmutableId, onPremisesSyncEnabled (true when dir-synced, else null as Graph shows
cloud-only users), onPremisesExtensionAttributes (extensionAttribute1..15 = CustomAttribute1..15,
null when empty). Other v1.0 user properties can be selected and render as null (or [] for
collections); without $select a user has Graph's default set.

The ``exwbExchange`` extension (not a Graph property: real Graph answers 400 to it)
--------------------------------------------------------------------------------------
The writeback engine needs Exchange Online state that Graph v1.0 does not expose. It is
returned only when named in $select (list, get and delta), as::

    "exwbExchange": {"isExchangeCloudManaged": bool, "recipientTypeDetails": str,
                     "hiddenFromAddressListsEnabled": bool,
                     "extensionCustomAttribute1": [str], ... "extensionCustomAttribute5": [str]}

and changes to those Exchange properties count for delta only when it is selected.

The user shape (property table, rendering) and the delta mechanics (paging order, watermarks,
change windows, tokens) live in `delta.py`.
"""

from __future__ import annotations

import base64
import hashlib
import re
import uuid
from collections.abc import Mapping
from functools import lru_cache
from typing import Any
from urllib.parse import quote

from harness.core import clock
from mockservers.cloud import delta, errors, graph_query
from mockservers.cloud.delta import Json, Round, StateTokens
from mockservers.cloud.errors import CloudError
from mockservers.cloud.hybrid import HybridCloud, HybridNotFound, ServicePrincipal, SyncedRecipient
from mockservers.cloud.store import CloudStore

LIST_DEFAULT_TOP = 100
MAX_PAGE_SIZE = 999
DELTA_DEFAULT_PAGE_SIZE = 200
DELTA_MAX_FILTER_IDS = 50
USER_TYPE = "#microsoft.graph.user"


@lru_cache(maxsize=512)
def _context(base_url: str, select: tuple[str, ...] | None, entity: bool = False) -> str:
    projection = f"({','.join(select)})" if select else ""
    return f"{base_url}/v1.0/$metadata#users{projection}{'/$entity' if entity else ''}"


# ------------------------------------------------------------------------------- query options
def normalize_query(query: Mapping[str, str]) -> dict[str, str]:
    """Query options keyed by lower-case name without the "$" ($deltaToken -> deltatoken)."""
    return {k.lower().removeprefix("$"): v for k, v in query.items()}


def parse_select(raw: str | None) -> tuple[str, ...] | None:
    """Canonical property names of a $select, in request order; None for no/empty $select."""
    if raw is None:
        return None
    out: list[str] = []
    for part in raw.split(","):
        name = part.strip()
        if not name:
            continue
        canonical = delta.canonical_property(name)
        if canonical is None:
            raise errors.unknown_property(name)
        if canonical not in out:
            out.append(canonical)
    return tuple(out) or None


def _parse_top(raw: str | None) -> int:
    if raw is None:
        return LIST_DEFAULT_TOP
    text = raw.strip()
    if not text.lstrip("-").isdigit() or not 1 <= int(text) <= MAX_PAGE_SIZE:
        raise errors.invalid_page_size(raw)
    return int(text)


def _parse_count(raw: str | None) -> bool:
    """Whether $count=true was asked (Graph honours it only with ConsistencyLevel: eventual)."""
    if raw is None or raw.strip().lower() == "false":
        return False
    if raw.strip().lower() != "true":
        raise errors.invalid_count(raw)
    return True


def _eventual(headers: Mapping[str, str]) -> bool:
    return headers.get("consistencylevel", "").strip().lower() == "eventual"


def _parse_prefer(raw: str) -> tuple[bool, int]:
    """(return=minimal asked, page size from odata.maxpagesize) of a Prefer header."""
    minimal, size = False, DELTA_DEFAULT_PAGE_SIZE
    for part in raw.split(","):
        name, _, value = part.partition("=")
        name, value = name.strip().lower(), value.strip().strip('"')
        if name == "return" and value.lower() == "minimal":
            minimal = True
        elif name == "odata.maxpagesize" and value.isdigit() and int(value) > 0:
            size = min(int(value), MAX_PAGE_SIZE)
    return minimal, size


def _reject(q: Mapping[str, str], options: tuple[str, ...], where: str) -> None:
    for option in options:
        if option in q:
            raise errors.option_not_supported(option, where)


# ------------------------------------------------------------------------------------- links
def _link(base_url: str, path: str, params: list[tuple[str, str]]) -> str:
    encoded = "&".join(f"{k}={quote(v, safe=',()/:@')}" for k, v in params)
    return f"{base_url}/v1.0/{path}" + (f"?{encoded}" if encoded else "")


def _delta_params(
    select: tuple[str, ...] | None, ids: tuple[str, ...] | None
) -> list[tuple[str, str]]:
    params: list[tuple[str, str]] = []
    if select:
        params.append(("$select", ",".join(select)))
    if ids is not None:
        params.append(("$filter", " or ".join(f"id eq '{i}'" for i in ids)))
    return params


# -------------------------------------------------------------------------------- list and get
def list_users(
    store: CloudStore,
    query: Mapping[str, str],
    base_url: str,
    headers: Mapping[str, str],
    *,
    tokens: StateTokens | None = None,
) -> Json:
    """GET /v1.0/users: $select, $top, $filter, $search, $orderby, $count (graph_query.py)."""
    tokens = tokens or delta.TOKENS
    q = normalize_query(query)
    _reject(q, ("expand", "skip"), "this simulated /users endpoint")
    select = parse_select(q.get("select"))
    top = _parse_top(q.get("top"))
    eventual = _eventual(headers)
    # Without ConsistencyLevel: eventual Graph ignores $count=true (Learn: "silently ignores").
    count = _parse_count(q.get("count")) and eventual
    uq = _user_query(q, eventual=eventual, counted=count)
    pool = graph_query.result_pool(store, uq)
    # The skiptoken is bound to everything else the query says, so it cannot be replayed elsewhere.
    fingerprint = hashlib.sha256(repr((select, uq.key, top, count)).encode()).hexdigest()[:16]
    after = (
        _open_list_token(tokens, store, q["skiptoken"], fingerprint, ordered=uq.order is not None)
        if "skiptoken" in q
        else None
    )
    chunk, more = graph_query.page(pool, after, top, uq.descending)
    body: Json = {"@odata.context": _context(base_url, select)}
    if count:
        body["@odata.count"] = len(pool)
    if more:
        last = chunk[-1] if isinstance(chunk[-1], str) else list(chunk[-1])
        token = tokens.seal(["L", delta.store_nonce(store), fingerprint, last])
        names = ("select", "filter", "search", "orderby", "top", "count")
        params = [(f"${k}", q[k]) for k in names if k in q]
        body["@odata.nextLink"] = _link(base_url, "users", [*params, ("$skiptoken", token)])
    render = delta.renderer(select or delta.DEFAULT_PROPERTIES)
    ids = (graph_query.entry_id(e) for e in chunk)
    body["value"] = [render(m) for i in ids if (m := store.get(i)) is not None]
    return body


def count_users(store: CloudStore, query: Mapping[str, str], headers: Mapping[str, str]) -> int:
    """GET /v1.0/users/$count: the number of users matching $filter and $search. It needs
    ConsistencyLevel: eventual, and the segment stands for $count=true in advanced queries."""
    if not _eventual(headers):
        raise errors.count_needs_eventual()
    q = normalize_query(query)
    uq = _user_query({**q, "orderby": ""}, eventual=True, counted=True)
    return len(graph_query.result_pool(store, uq))


def _user_query(q: Mapping[str, str], *, eventual: bool, counted: bool) -> graph_query.UserQuery:
    return graph_query.parse_user_query(
        (q.get("filter") or "").strip(),
        (q.get("search") or "").strip(),
        (q.get("orderby") or "").strip(),
        eventual=eventual,
        counted=counted,
    )


def _open_list_token(
    tokens: StateTokens, store: CloudStore, token: str, fingerprint: str, *, ordered: bool
) -> Any:
    """The cursor of a list $skiptoken: the last id, or its [sort key, id] with $orderby."""
    payload = tokens.open(token)
    nonce = delta.store_nonce(store)
    if not payload or len(payload) != 4 or payload[:3] != ["L", nonce, fingerprint]:
        raise errors.invalid_page_token()
    last = payload[3]
    if (
        ordered
        and isinstance(last, list)
        and len(last) == 2
        and all(isinstance(x, str) for x in last)
    ):
        return (last[0], last[1])
    if not ordered and isinstance(last, str):
        return last
    raise errors.invalid_page_token()


def get_user(store: CloudStore, key: str, query: Mapping[str, str], base_url: str) -> Json:
    """GET /v1.0/users/{id | userPrincipalName} with optional $select."""
    select = parse_select(normalize_query(query).get("select"))
    m = store.get(key) or store.get(key.lower()) or store.by_upn(key)
    if m is None:
        raise errors.resource_not_found(key)
    return {
        "@odata.context": _context(base_url, select, entity=True),
        **delta.renderer(select or delta.DEFAULT_PROPERTIES)(m),
    }


# --------------------------------------------------------------------------------------- delta
def users_delta(
    store: CloudStore,
    query: Mapping[str, str],
    base_url: str,
    headers: Mapping[str, str],
    now: float,
    *,
    tokens: StateTokens | None = None,
) -> Json:
    """GET /v1.0/users/delta: full rounds, incremental rounds from $deltatoken, paging."""
    tokens = tokens or delta.TOKENS
    q = normalize_query(query)
    _reject(q, ("top", "orderby", "expand"), "delta queries on users")
    minimal, size = _parse_prefer(headers.get("prefer", ""))
    rnd = _delta_round(store, q, base_url, now, tokens)
    if rnd is None:  # $deltatoken=latest: no data, sync from now on
        rnd = Round(store.seq, None, parse_select(q.get("select")), _delta_filter(q.get("filter")))
        return _delta_body(store, base_url, rnd, tokens, now, [], None)
    tracked = frozenset(rnd.select or delta.DEFAULT_PROPERTIES) | {"id"}
    page = delta.next_page(store, rnd, size, tracked)
    values = _render_delta(store, page.items, rnd.select, minimal)
    return _delta_body(store, base_url, rnd, tokens, now, values, page.rest)


def _delta_round(
    store: CloudStore, q: Mapping[str, str], base_url: str, now: float, tokens: StateTokens
) -> Round | None:
    """The round this request continues or starts; None for $deltatoken=latest."""
    deltatoken, skiptoken = q.get("deltatoken"), q.get("skiptoken")
    if deltatoken is not None and deltatoken.strip().lower() == "latest":
        return None
    if deltatoken is None and skiptoken is None:  # initial request: the only one with options
        select, ids = parse_select(q.get("select")), _delta_filter(q.get("filter"))
        return Round(store.seq, None, select, ids)
    kind, token = ("d", deltatoken) if deltatoken is not None else ("s", skiptoken)
    try:
        rnd = delta.open_round(tokens, store, token or "", kind, now)
    except delta.InvalidToken:
        raise errors.sync_state_not_found() from None
    except delta.ExpiredToken as expired:
        fresh = _link(
            base_url, "users/delta", _delta_params(expired.round.select, expired.round.ids)
        )
        raise errors.resync_required(fresh) from None
    if kind == "d":  # a new incremental round: changes since the token, up to now
        return Round(store.seq, rnd.watermark, rnd.select, rnd.ids, None)
    return rnd


def _delta_filter(raw: str | None) -> tuple[str, ...] | None:
    """Ids of a delta $filter: only `id eq '...'` joined with `or`, at most 50."""
    if raw is None or not raw.strip():
        return None
    try:
        node = graph_query.parse_filter(raw)
    except CloudError:
        raise errors.delta_filter_unsupported() from None
    ids: list[str] = []
    for term in _disjuncts(node):
        if not (
            isinstance(term, graph_query.Compare)
            and (term.prop, term.op) == ("id", "eq")
            and isinstance(term.value, str)
        ):
            raise errors.delta_filter_unsupported()
        ids.append(term.value.lower())  # object ids are lower-case GUIDs
    if len(ids) > DELTA_MAX_FILTER_IDS:
        raise errors.delta_filter_too_many(DELTA_MAX_FILTER_IDS)
    return tuple(dict.fromkeys(ids))


def _disjuncts(node: graph_query.Node) -> list[graph_query.Node]:
    """The terms of a filter joined with `or`, however parenthesised."""
    if isinstance(node, graph_query.Or):
        return [t for part in node.parts for t in _disjuncts(part)]
    return [node]


def _render_delta(
    store: CloudStore,
    items: list[tuple[str, frozenset[str] | None]],
    select: tuple[str, ...] | None,
    minimal: bool,
) -> list[Json]:
    chosen = select or delta.DEFAULT_PROPERTIES
    full = delta.renderer(delta.with_id(chosen))
    out: list[Json] = []
    for id_, changed in items:
        m = store.get(id_)
        if m is None:
            out.append({"@odata.type": USER_TYPE, "id": id_, "@removed": {"reason": "deleted"}})
        elif minimal and changed is not None and delta.WILDCARD not in changed:
            out.append(delta.renderer(delta.with_id(tuple(p for p in chosen if p in changed)))(m))
        else:
            out.append(full(m))
    return out


def _delta_body(
    store: CloudStore,
    base_url: str,
    rnd: Round,
    tokens: StateTokens,
    now: float,
    values: list[Json],
    rest: Round | None,
) -> Json:
    body: Json = {"@odata.context": _context(base_url, rnd.select)}
    if rest is not None:
        token = delta.seal_round(tokens, store, rest, "s", now)
        body["@odata.nextLink"] = _link(base_url, "users/delta", [("$skiptoken", token)])
    else:
        done = Round(rnd.watermark, None, rnd.select, rnd.ids)
        token = delta.seal_round(tokens, store, done, "d", now)
        body["@odata.deltaLink"] = _link(base_url, "users/delta", [("$deltatoken", token)])
    body["value"] = values
    return body


# ------------------------------------------------------- service principals and SOA of groups
# The decommission's Graph calls (hybrid.py holds the state): find the "Office 365 Exchange
# Online" principal and PATCH its keyCredentials without the hybrid OAuth key, and transfer the
# source of authority of dir-synced groups and contacts (onPremisesSyncBehavior).
SP_TYPE = "microsoft.graph.servicePrincipal"
SP_PROPERTIES = (
    "id",
    "appId",
    "displayName",
    "servicePrincipalType",
    "accountEnabled",
    "appOwnerOrganizationId",
    "servicePrincipalNames",
    "keyCredentials",
)
SP_FILTERABLE = ("id", "appId", "displayName")
KEY_PROPERTIES = (
    "customKeyIdentifier",
    "displayName",
    "endDateTime",
    "key",
    "keyId",
    "startDateTime",
    "type",
    "usage",
)
KEY_TYPES = ("AsymmetricX509Cert", "X509CertAndPassword")
KEY_USAGES = ("Verify", "Sign")
SYNC_KINDS = {"groups": "distribution_groups", "contacts": "mail_contacts"}
_SP_FILTER = re.compile(r"\s*([A-Za-z]+)\s+eq\s+'((?:[^']|'')*)'\s*")
_GUID = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")


def _sp_select(raw: str | None) -> tuple[str, ...]:
    if raw is None or not raw.strip():
        return SP_PROPERTIES
    by_key = {p.casefold(): p for p in SP_PROPERTIES}
    out: list[str] = []
    for part in raw.split(","):
        name = part.strip()
        canonical = by_key.get(name.casefold())
        if canonical is None:
            raise errors.unknown_property(name, SP_TYPE)
        if canonical not in out:
            out.append(canonical)
    return tuple(out)


def render_service_principal(sp: ServicePrincipal, select: tuple[str, ...]) -> Json:
    values: Json = {
        "id": sp.id,
        "appId": sp.app_id,
        "displayName": sp.display_name,
        "servicePrincipalType": "Application",
        "accountEnabled": True,
        "appOwnerOrganizationId": sp.app_owner_organization_id,
        "servicePrincipalNames": list(sp.service_principal_names),
        "keyCredentials": [dict(k) for k in sp.key_credentials],
    }
    return {name: values[name] for name in select}


def _sp_context(base_url: str, select: tuple[str, ...], entity: bool) -> str:
    projection = "" if select == SP_PROPERTIES else f"({','.join(select)})"
    return f"{base_url}/v1.0/$metadata#servicePrincipals{projection}{'/$entity' if entity else ''}"


def list_service_principals(hybrid: HybridCloud, query: Mapping[str, str], base_url: str) -> Json:
    """GET /v1.0/servicePrincipals: $filter (one `eq` on id, appId or displayName), $select."""
    q = normalize_query(query)
    _reject(
        q,
        ("top", "skip", "skiptoken", "orderby", "search", "expand", "count"),
        "this simulated /servicePrincipals endpoint",
    )
    select = _sp_select(q.get("select"))
    found = list(hybrid.service_principals)
    raw = (q.get("filter") or "").strip()
    if raw:
        match = _SP_FILTER.fullmatch(raw)
        if match is None:
            raise errors.invalid_filter()
        prop = next((p for p in SP_PROPERTIES if p.casefold() == match.group(1).casefold()), None)
        if prop is None:
            raise errors.unknown_property(match.group(1), SP_TYPE)
        if prop not in SP_FILTERABLE:
            raise errors.unsupported_filter(prop, "ServicePrincipal")
        value = match.group(2).replace("''", "'").casefold()
        found = [
            sp
            for sp in found
            if str(render_service_principal(sp, (prop,))[prop]).casefold() == value
        ]
    return {
        "@odata.context": _sp_context(base_url, select, False),
        "value": [render_service_principal(sp, select) for sp in found],
    }


def find_service_principal(
    hybrid: HybridCloud, key: str, by_app_id: bool = False
) -> ServicePrincipal:
    """The service principal of an id (or appId), or Graph's 404."""
    try:
        return hybrid.service_principal(key, by_app_id=by_app_id)
    except HybridNotFound:
        raise errors.resource_not_found(key) from None


def get_service_principal(
    hybrid: HybridCloud, key: str, query: Mapping[str, str], base_url: str, *, by_app_id: bool
) -> Json:
    """GET /v1.0/servicePrincipals/{id} or /v1.0/servicePrincipals(appId='{appId}')."""
    select = _sp_select(normalize_query(query).get("select"))
    sp = find_service_principal(hybrid, key, by_app_id)
    return {
        "@odata.context": _sp_context(base_url, select, True),
        **render_service_principal(sp, select),
    }


def patch_service_principal(hybrid: HybridCloud, key: str, body: Any, *, by_app_id: bool) -> None:
    """PATCH a service principal: only keyCredentials (the whole collection) can be set.

    Each entry either names an existing key by keyId (it is kept as stored: reads never return
    `key`, so a client sends back what it read) or is a new certificate with its base64 `key`.
    Keys left out are removed."""
    sp = find_service_principal(hybrid, key, by_app_id)
    if not isinstance(body, dict):
        raise errors.not_an_object()
    for name in body:
        if name == "keyCredentials" or name.startswith("@odata."):
            continue
        if name not in SP_PROPERTIES:
            raise errors.undeclared_property(name)
        if name in ("id", "appId", "appOwnerOrganizationId", "servicePrincipalType"):
            raise errors.read_only_property(name)
        raise errors.not_settable_here(name)
    if "keyCredentials" in body:
        hybrid.set_key_credentials(sp.id, _key_credentials(sp, body["keyCredentials"]))


def _key_credentials(sp: ServicePrincipal, value: Any) -> list[dict[str, Any]]:
    bad = errors.invalid_property_value("keyCredentials", "ServicePrincipal")
    if not isinstance(value, list):
        raise bad
    existing = {str(k["keyId"]).casefold(): k for k in sp.key_credentials}
    out: list[dict[str, Any]] = []
    for item in value:
        if not isinstance(item, dict):
            raise bad
        for name in item:
            if name not in KEY_PROPERTIES and not name.startswith("@odata."):
                raise errors.undeclared_property(name)
        key_id = item.get("keyId")
        if key_id is not None and (not isinstance(key_id, str) or not _GUID.fullmatch(key_id)):
            raise bad
        if key_id is not None and key_id.casefold() in existing and not item.get("key"):
            out.append(dict(existing[key_id.casefold()]))
        else:
            out.append(_new_key(item, key_id, bad))
    ids = [k["keyId"].casefold() for k in out]
    if len(set(ids)) != len(ids):
        raise bad  # the same keyId twice
    return out


def _new_key(item: dict[str, Any], key_id: str | None, bad: CloudError) -> dict[str, Any]:
    raw = item.get("key")
    try:
        der = base64.b64decode(raw, validate=True) if isinstance(raw, str) else b""
    except ValueError:
        der = b""
    if not der or item.get("type") not in KEY_TYPES or item.get("usage") not in KEY_USAGES:
        raise bad
    start = item.get("startDateTime") or clock.now_iso()
    end = item.get("endDateTime") or f"{int(start[:4]) + 1}{start[4:]}"
    if not isinstance(start, str) or not isinstance(end, str) or end <= start:
        raise bad
    thumbprint = base64.b64encode(hashlib.sha1(der).digest()).decode("ascii")
    return {
        "customKeyIdentifier": item.get("customKeyIdentifier") or thumbprint,
        "displayName": item.get("displayName"),
        "endDateTime": end,
        "key": None,  # never read back
        "keyId": key_id or str(uuid.uuid4()),
        "startDateTime": start,
        "type": item["type"],
        "usage": item["usage"],
    }


def _synced(hybrid: HybridCloud, entity_set: str, object_id: str) -> SyncedRecipient:
    try:
        return hybrid.recipient_by_id(SYNC_KINDS[entity_set], object_id)
    except HybridNotFound:
        raise errors.resource_not_found(object_id) from None


def get_sync_behavior(hybrid: HybridCloud, entity_set: str, object_id: str, base_url: str) -> Json:
    """GET /v1.0/{groups|contacts}/{id}/onPremisesSyncBehavior."""
    o = _synced(hybrid, entity_set, object_id)
    return {
        "@odata.context": (
            f"{base_url}/v1.0/$metadata#{entity_set}('{o.id}')/onPremisesSyncBehavior/$entity"
        ),
        "id": o.id,
        "isCloudManaged": not o.is_dir_synced,
    }


def patch_sync_behavior(hybrid: HybridCloud, entity_set: str, object_id: str, body: Any) -> None:
    """PATCH {"isCloudManaged": true}: the object's SOA moves to the cloud (IsDirSynced false
    in Exchange Online); false hands it back to on-premises AD."""
    o = _synced(hybrid, entity_set, object_id)
    if not isinstance(body, dict):
        raise errors.not_an_object()
    for name in body:
        if name == "id":
            raise errors.read_only_property("id")
        if name != "isCloudManaged" and not name.startswith("@odata."):
            raise errors.undeclared_property(name)
    if "isCloudManaged" in body:
        value = body["isCloudManaged"]
        if not isinstance(value, bool):
            raise errors.not_a_boolean(value)
        hybrid.set_cloud_managed(SYNC_KINDS[entity_set], o.id, value)
