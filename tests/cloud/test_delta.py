"""Graph users/delta: the endpoint as the HTTP layer calls it, and the mechanics under it.

Helpers shared with the list/get tests come from `test_graph`."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from functools import cache
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.tenant import TenantSpec, generate
from harness.tenant.model import Tenant
from mockservers.cloud import delta, graph
from mockservers.cloud.delta import Round, StateTokens
from mockservers.cloud.store import CloudStore
from tests.cloud.test_graph import (
    NOW,
    WRITEBACK_SELECT,
    B,
    assert_error,
    param,
    raises,
    set_custom,
    some_ids,
)


def delta_pages(
    store: CloudStore,
    query: dict[str, str],
    headers: Mapping[str, str] = {},
    now: float = NOW,
    between_pages: Any = None,
) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Run one delta round to its deltaLink; returns (pages, query for the next round)."""
    pages = [graph.users_delta(store, query, B, headers, now)]
    while "@odata.nextLink" in pages[-1]:
        if between_pages is not None:
            between_pages()
        link = pages[-1]["@odata.nextLink"]
        assert set(parse_qs(urlsplit(link).query)) == {"$skiptoken"}
        pages.append(
            graph.users_delta(store, {"$skiptoken": param(link, "$skiptoken")}, B, headers, now)
        )
    link = pages[-1]["@odata.deltaLink"]
    return pages, {"$deltatoken": param(link, "$deltatoken")}


def delta_values(store: CloudStore, query: dict[str, str], **kw: Any) -> tuple[list, dict]:
    pages, nxt = delta_pages(store, query, **kw)
    return [v for p in pages for v in p["value"]], nxt


# ---------------------------------------------------------------------------------- mechanics
def test_tokens_round_trip_and_reject_tampering() -> None:
    tokens = StateTokens(b"a" * 32)
    token = tokens.seal([1, "s", None, ["x"]])
    assert tokens.open(token) == [1, "s", None, ["x"]]
    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    forged_payload = json.dumps([1, "s", None, ["y"]], separators=(",", ":")).encode()
    forged = base64.urlsafe_b64encode(forged_payload + raw[-16:]).rstrip(b"=").decode()
    assert tokens.open(forged) is None
    assert StateTokens(b"b" * 32).open(token) is None
    for junk in ("", "!!", "abc", token[:-1]):
        assert tokens.open(junk) is None


def test_round_tokens_check_kind_store_and_age(store: CloudStore, tenant: Tenant) -> None:
    rnd = Round(store.seq, None, ("displayName",), None, "some-id")
    token = delta.seal_round(delta.TOKENS, store, rnd, "s", NOW)
    assert delta.open_round(delta.TOKENS, store, token, "s", NOW + 10) == rnd
    with pytest.raises(delta.InvalidToken):
        delta.open_round(delta.TOKENS, store, token, "d", NOW)
    with pytest.raises(delta.InvalidToken):
        delta.open_round(delta.TOKENS, CloudStore.from_tenant(tenant), token, "s", NOW)
    with pytest.raises(delta.ExpiredToken) as info:
        delta.open_round(delta.TOKENS, store, token, "s", NOW + delta.TOKEN_LIFETIME_SECONDS + 1)
    assert info.value.round == rnd


def test_ordered_ids_follow_deletions(store: CloudStore) -> None:
    ids = delta.ordered_ids(store)
    assert ids == sorted(store.mailboxes)
    set_custom(store, ids[3], 1, "x")  # an update leaves the order alone
    assert delta.ordered_ids(store) is ids
    for id_ in ids[::10][:5]:  # a few deletions: removed in place
        store.delete(id_)
    assert delta.ordered_ids(store) == sorted(store.mailboxes)
    for id_ in list(store.mailboxes)[:80]:  # many: rebuilt
        store.delete(id_)
    assert delta.ordered_ids(store) == sorted(store.mailboxes)


def test_page_after_resumes_after_a_missing_id() -> None:
    ids = ["a", "c", "e", "g"]
    assert delta.page_after(ids, None, 2) == (["a", "c"], True)
    assert delta.page_after(ids, "c", 2) == (["e", "g"], False)
    assert delta.page_after(ids, "d", 5) == (["e", "g"], False)  # "d" was deleted meanwhile
    assert delta.page_after(ids, "z", 5) == ([], False)


def test_graph_properties_of_exchange_changes() -> None:
    gp = delta.graph_properties
    assert gp(frozenset({"CustomAttribute7"})) == {"onPremisesExtensionAttributes"}
    assert gp(frozenset({"EmailAddresses", "WindowsEmailAddress"})) == {"proxyAddresses", "mail"}
    assert gp(frozenset({"ExtensionCustomAttribute2", "RecipientTypeDetails"})) == {"exwbExchange"}
    assert gp(frozenset({"Alias", "DisplayName", "UserPrincipalName"})) == {
        "mailNickname",
        "displayName",
        "userPrincipalName",
    }
    assert gp(frozenset({"@deleted"})) == {delta.DELETED}
    assert gp(frozenset({"SomethingNew"})) == {delta.WILDCARD}


def test_change_window_bounds_tracking_and_order(store: CloudStore) -> None:
    a, b, c, d = list(store.mailboxes)[:4]
    since = store.seq
    set_custom(store, a, 1, "1")
    store.update(b, {"display_name": "B"})
    set_custom(store, c, 2, "2")
    set_custom(store, a, 3, "3")
    until = store.seq
    set_custom(store, d, 1, "after the round started")
    ext = frozenset({"id", "onPremisesExtensionAttributes"})
    window = delta.change_window(store, since, until, ext, None)
    assert window == [
        (c, frozenset({"onPremisesExtensionAttributes"})),
        (a, frozenset({"onPremisesExtensionAttributes"})),
    ]
    assert delta.change_window(store, since, until, ext, None) is window  # cached
    both = ext | {"displayName"}
    assert [i for i, _ in delta.change_window(store, since, until, both, None)] == [b, c, a]
    assert [i for i, _ in delta.change_window(store, since, until, both, (b,))] == [b]
    store.delete(b)
    window = delta.change_window(store, until, store.seq, ext, None)
    assert [i for i, _ in window] == [d, b]  # deletions count whatever is tracked


def test_next_page_walks_full_and_incremental_rounds(store: CloudStore) -> None:
    tracked = frozenset({"id", "displayName"})
    rnd: Round | None = Round(store.seq, None, None, None)
    seen: list[str] = []
    while rnd is not None:
        page = delta.next_page(store, rnd, 50, tracked)
        seen += [i for i, changed in page.items if changed is None]
        rnd = page.rest
    assert seen == sorted(store.mailboxes)
    since = store.seq
    for i, id_ in enumerate(seen[:7]):
        store.update(id_, {"display_name": f"n{i}"})
    rnd = Round(store.seq, since, None, None)
    sizes = []
    while rnd is not None:
        page = delta.next_page(store, rnd, 3, tracked)
        sizes.append(len(page.items))
        rnd = page.rest
    assert sizes == [3, 3, 1]


# ------------------------------------------------------------------------------------ endpoint
def test_full_round_pages_and_links(store: CloudStore) -> None:
    pages, _ = delta_pages(store, {"$select": "id"}, {"prefer": "odata.maxpagesize=50"})
    n = len(store)
    assert [len(p["value"]) for p in pages] == [50] * (n // 50) + [n % 50]
    assert all("@odata.deltaLink" not in p for p in pages[:-1])
    assert pages[-1]["@odata.deltaLink"].startswith(f"{B}/v1.0/users/delta?$deltatoken=")
    ids = [u["id"] for p in pages for u in p["value"]]
    assert sorted(ids) == sorted(store.mailboxes)
    default, _ = delta_pages(store, {})
    assert [len(p["value"]) for p in default] == [200, n - 200]
    assert default[0]["@odata.context"] == f"{B}/v1.0/$metadata#users"
    assert list(default[0]["value"][0]) == list(delta.DEFAULT_PROPERTIES)
    big, _ = delta_pages(store, {}, {"prefer": "odata.maxpagesize=5000"})
    assert len(big) == 1


def test_select_shape_in_delta_puts_id_last(store: CloudStore) -> None:
    pages, _ = delta_pages(store, {"$select": "displayName,exwbExchange"})
    assert pages[0]["@odata.context"] == f"{B}/v1.0/$metadata#users(displayName,exwbExchange)"
    assert list(pages[0]["value"][0]) == ["displayName", "exwbExchange", "id"]


def test_edit_then_next_round_returns_exactly_that_user(store: CloudStore) -> None:
    _, nxt = delta_values(store, {"$select": WRITEBACK_SELECT})
    values, nxt = delta_values(store, nxt)
    assert values == []
    target = list(store)[10].id
    set_custom(store, target, 1, "E-CHANGED")
    values, nxt = delta_values(store, nxt)
    assert [v["id"] for v in values] == [target]
    assert values[0]["onPremisesExtensionAttributes"]["extensionAttribute1"] == "E-CHANGED"
    assert set(values[0]) == {"id", *WRITEBACK_SELECT.split(",")}
    assert delta_values(store, nxt)[0] == []


def test_each_changed_user_once_in_change_order(store: CloudStore) -> None:
    _, nxt = delta_values(store, {"$select": "onPremisesExtensionAttributes"})
    a, b, c = some_ids(store, 3)
    for id_, v in ((a, "1"), (b, "2"), (a, "3"), (c, "4")):
        set_custom(store, id_, 2, v)
    values, _ = delta_values(store, nxt, headers={"prefer": "odata.maxpagesize=1"})
    assert [v["id"] for v in values] == [b, a, c]
    assert values[1]["onPremisesExtensionAttributes"]["extensionAttribute2"] == "3"


@pytest.mark.parametrize(
    ("select", "returned"),
    [("id,displayName", False), ("onPremisesExtensionAttributes", True), (None, False)],
)
def test_select_limits_which_changes_count(
    store: CloudStore, select: str | None, returned: bool
) -> None:
    _, nxt = delta_values(store, {"$select": select} if select else {})
    target = list(store)[3].id
    set_custom(store, target, 1, "only-custom-attribute-1")
    values, _ = delta_values(store, nxt)
    assert [v["id"] for v in values] == ([target] if returned else [])


def test_exchange_only_properties_count_with_exwb_selected(store: CloudStore) -> None:
    _, plain = delta_values(store, {"$select": "displayName"})
    _, exwb = delta_values(store, {"$select": "displayName,exwbExchange"})
    m = list(store)[4]
    store.update(m.id, {"hidden_from_address_lists": not m.hidden_from_address_lists})
    assert delta_values(store, plain)[0] == []
    values, _ = delta_values(store, exwb)
    assert (
        values[0]["exwbExchange"]["hiddenFromAddressListsEnabled"]
        is not m.hidden_from_address_lists
    )


def test_primary_address_change_shows_in_mail(store: CloudStore) -> None:
    _, nxt = delta_values(store, {"$select": "mail"})
    m = list(store)[5]
    new = f"renamed.{m.alias}@contoso.com"
    addresses = (f"SMTP:{new}", *(a.replace("SMTP:", "smtp:") for a in m.email_addresses))
    store.update(m.id, {"email_addresses": addresses, "windows_email_address": new})
    values, _ = delta_values(store, nxt)
    assert values == [{"mail": new, "id": m.id}]


def test_deleted_user_is_removed(store: CloudStore) -> None:
    _, nxt = delta_values(store, {"$select": "displayName"})
    gone, edited = some_ids(store, 2)
    set_custom(store, gone, 1, "x")
    store.update(edited, {"display_name": "Renamed"})
    store.delete(gone)
    values, _ = delta_values(store, nxt)
    assert values == [
        {"displayName": "Renamed", "id": edited},
        {"@odata.type": "#microsoft.graph.user", "id": gone, "@removed": {"reason": "deleted"}},
    ]


@pytest.mark.parametrize("name", ["$deltatoken", "$deltaToken", "deltatoken"])
def test_deltatoken_latest(store: CloudStore, name: str) -> None:
    before, after = some_ids(store, 2)
    store.update(before, {"display_name": "Before latest"})
    body = graph.users_delta(store, {name: "latest", "$select": "displayName"}, B, {}, NOW)
    assert body["value"] == [] and "@odata.nextLink" not in body
    assert body["@odata.context"] == f"{B}/v1.0/$metadata#users(displayName)"
    nxt = {"$deltatoken": param(body["@odata.deltaLink"], "$deltatoken")}
    store.update(after, {"display_name": "After latest"})
    values, _ = delta_values(store, nxt)
    assert values == [{"displayName": "After latest", "id": after}]


def test_changes_during_a_round_appear_in_the_next(store: CloudStore) -> None:
    ids = sorted(store.mailboxes)
    early, late = ids[0], ids[-1]  # on the first page / on the last page of the round

    def edit() -> None:
        if store.get(early).display_name != "Edited mid-round":
            store.update(early, {"display_name": "Edited mid-round"})
            store.update(late, {"display_name": "Also edited"})

    pages, nxt = delta_pages(
        store, {"$select": "displayName"}, {"prefer": "odata.maxpagesize=100"}, between_pages=edit
    )
    firsts = {v["id"]: v for p in pages for v in p["value"]}
    assert firsts[early]["displayName"] != "Edited mid-round"  # returned before the edit
    assert firsts[late]["displayName"] == "Also edited"  # current state when its page came
    values, _ = delta_values(store, nxt)
    assert {v["id"]: v["displayName"] for v in values} == {
        early: "Edited mid-round",
        late: "Also edited",
    }


def test_incremental_round_pages_and_ignores_select_on_token(store: CloudStore) -> None:
    _, nxt = delta_values(store, {"$select": "onPremisesExtensionAttributes"})
    for i, id_ in enumerate(some_ids(store, 120)):
        set_custom(store, id_, 3, f"v{i}")
    pages, _ = delta_pages(
        store, {**nxt, "$select": "displayName"}, {"prefer": "odata.maxpagesize=50"}
    )
    assert [len(p["value"]) for p in pages] == [50, 50, 20]
    assert {tuple(v) for p in pages for v in p["value"]} == {
        ("onPremisesExtensionAttributes", "id")
    }


def test_return_minimal(store: CloudStore) -> None:
    select = {"$select": "displayName,mail,onPremisesExtensionAttributes"}
    _, nxt = delta_values(store, select)
    a, b = some_ids(store, 2)
    set_custom(store, a, 1, "min")
    store.update(b, {"display_name": "Minimal B"})
    minimal, _ = delta_values(store, nxt, headers={"prefer": "return=minimal"})
    ext_a = graph.get_user(store, a, {"$select": "onPremisesExtensionAttributes"}, B)
    assert minimal == [
        {"onPremisesExtensionAttributes": ext_a["onPremisesExtensionAttributes"], "id": a},
        {"displayName": "Minimal B", "id": b},
    ]
    full, _ = delta_values(store, nxt)
    assert [set(v) for v in full] == [
        {"displayName", "mail", "onPremisesExtensionAttributes", "id"}
    ] * 2
    first, _ = delta_values(store, select, headers={"prefer": "return=minimal"})
    assert len(first[0]) == 4  # a full round is never minimal


def test_tampered_or_foreign_tokens_are_sync_state_not_found(
    store: CloudStore, tenant: Tenant
) -> None:
    pages, nxt = delta_pages(store, {}, {"prefer": "odata.maxpagesize=100"})
    skip = param(pages[0]["@odata.nextLink"], "$skiptoken")
    token = nxt["$deltatoken"]
    listing = graph.list_users(store, {"$top": "1"}, B, {})
    other_store = CloudStore.from_tenant(tenant)
    cases = [
        (store, {"$deltatoken": token[:-2] + ("xy" if token[-2:] != "xy" else "yz")}),
        (store, {"$deltatoken": "not-a-token!"}),
        (store, {"$deltatoken": skip}),  # a skiptoken passed as a deltatoken
        (store, {"$skiptoken": token}),
        (store, {"$skiptoken": param(listing["@odata.nextLink"], "$skiptoken")}),
        (other_store, {"$deltatoken": token}),
    ]
    for target, query in cases:
        err = raises(graph.users_delta, target, query, B, {}, NOW)
        assert_error(err, 400, "syncStateNotFound")
    other = delta.StateTokens(b"k" * 32)
    err = raises(graph.users_delta, store, nxt, B, {}, NOW, tokens=other)
    assert_error(err, 400, "syncStateNotFound")


def test_expired_token_is_410_with_location(store: CloudStore) -> None:
    ids = some_ids(store, 2)
    f = " or ".join(f"id eq '{i}'" for i in ids)
    _, nxt = delta_values(store, {"$select": "displayName,mail", "$filter": f})
    later = NOW + delta.TOKEN_LIFETIME_SECONDS + 1
    err = raises(graph.users_delta, store, nxt, B, {}, later)
    assert_error(err, 410, "resyncRequired")
    location = err.headers["Location"]
    assert location.startswith(f"{B}/v1.0/users/delta?")
    assert param(location, "$select") == "displayName,mail"
    assert param(location, "$filter") == f
    fresh = graph.users_delta(store, {"$select": "displayName,mail", "$filter": f}, B, {}, later)
    assert sorted(v["id"] for v in fresh["value"]) == sorted(ids)
    assert delta_values(store, nxt, now=NOW + 3600)[0] == []  # still fine within 7 days


def test_delta_filter_by_ids(store: CloudStore) -> None:
    a, b, c = some_ids(store, 3)
    f = f"id eq '{a}' or id eq '{b}'"
    values, nxt = delta_values(store, {"$select": "displayName", "$filter": f})
    assert sorted(v["id"] for v in values) == sorted([a, b])
    store.update(b, {"display_name": "B"})
    store.update(c, {"display_name": "C"})
    values, _ = delta_values(store, nxt)
    assert values == [{"displayName": "B", "id": b}]


@pytest.mark.parametrize(
    "text",
    [
        "displayName eq 'x'",
        "id in ('a','b')",
        "id eq 'a' and id eq 'b'",
        "not a filter (",
        " or ".join(f"id eq 'id{i}'" for i in range(51)),
    ],
)
def test_delta_unsupported_filter_is_400(store: CloudStore, text: str) -> None:
    err = raises(graph.users_delta, store, {"$filter": text}, B, {}, NOW)
    assert_error(err, 400, "Request_UnsupportedQuery")


@pytest.mark.parametrize("option", ["$top", "$orderby", "$expand"])
def test_delta_rejects_top_orderby_expand(store: CloudStore, option: str) -> None:
    err = raises(graph.users_delta, store, {option: "5"}, B, {}, NOW)
    assert_error(err, 400, "Request_BadRequest")


# --------------------------------------------------------------------------------- replication
SELECT = ("displayName", "mail", "proxyAddresses", "onPremisesExtensionAttributes", "exwbExchange")


def _edit(store: CloudStore, pick: int, kind: str, value: int) -> None:
    ids = list(store.mailboxes)
    if not ids:
        return
    m = store.get(ids[pick % len(ids)])
    if kind == "delete":
        store.delete(m.id)
    elif kind == "custom":
        ca = list(m.custom_attributes)
        ca[value % 15] = None if value % 4 == 0 else f"v{value}"
        store.update(m.id, {"custom_attributes": tuple(ca)})
    elif kind == "extension":
        eca = list(m.extension_custom_attributes)
        eca[value % 5] = tuple(f"x{j}" for j in range(value % 3))
        store.update(m.id, {"extension_custom_attributes": tuple(eca)})
    elif kind == "primary":
        new = f"p{value}.{m.id[:8]}@contoso.com"
        rest = tuple(a.replace("SMTP:", "smtp:") for a in m.email_addresses)
        store.update(
            m.id, {"email_addresses": (f"SMTP:{new}", *rest), "windows_email_address": new}
        )
    elif kind == "flags":
        flags = {"hidden_from_address_lists": bool(value & 1), "display_name": f"Name {value}"}
        store.update(m.id, {**flags, "is_exchange_cloud_managed": bool(value & 2)})
    else:  # an edit outside the selection: must never confuse the replica
        store.update(m.id, {"alias": f"alias{value}{m.id[:6]}"})


edits = st.tuples(
    st.integers(0, 24),  # a few users, so that windows often hold several edits of one
    st.sampled_from(["custom", "extension", "primary", "flags", "alias", "delete"]),
    st.integers(0, 1000),
)
rounds = st.tuples(
    st.integers(1, 30),  # page size
    st.booleans(),  # Prefer: return=minimal
    st.lists(edits, max_size=4),  # edits between this round's pages
)
# Each window: edits, then a delta round (itself possibly interleaved with edits).
windows = st.lists(st.tuples(st.lists(edits, min_size=1, max_size=8), rounds), max_size=6)


def _apply(replica: dict[str, dict[str, Any]], values: list[dict[str, Any]]) -> None:
    for v in values:
        if "@removed" in v:
            replica.pop(v["id"], None)
        else:
            replica.setdefault(v["id"], {}).update(v)


def _round(store: CloudStore, query: dict, page: int, minimal: bool, mid: list) -> tuple:
    prefer = f"odata.maxpagesize={page}" + (", return=minimal" if minimal else "")
    pending = list(mid)

    def between() -> None:
        if pending:
            _edit(store, *pending.pop())

    pages, nxt = delta_pages(store, query, {"prefer": prefer}, between_pages=between)
    return [v for p in pages for v in p["value"]], nxt


@cache
def small_tenant() -> Tenant:
    # Small, so that shrinking a failure is quick; not a fixture, so that Hypothesis does not
    # print the whole tenant with a falsifying example.
    return generate(TenantSpec(mailboxes=40, seed=3))


@given(first=rounds, script=windows)
def test_delta_replica_converges(first: tuple, script: list) -> None:
    """The union of what delta rounds returned, applied in order, equals the store."""
    store = CloudStore.from_tenant(small_tenant())
    replica: dict[str, dict[str, Any]] = {}
    values, nxt = _round(store, {"$select": ",".join(SELECT)}, *first)
    _apply(replica, values)
    for window_edits, round_ in script:
        for edit in window_edits:
            _edit(store, *edit)
        values, nxt = _round(store, nxt, *round_)
        _apply(replica, values)
    values, _ = _round(store, nxt, 999, False, [])
    _apply(replica, values)
    render = delta.renderer((*SELECT, "id"))
    expected = {m.id: render(m) for m in store}
    # A short message: pytest's diff of two large dicts would dominate shrinking time.
    wrong = sorted(i for i in replica.keys() | expected.keys() if replica.get(i) != expected.get(i))
    assert not wrong, f"replica differs from the store for {len(wrong)} users, e.g. {wrong[0]}"
