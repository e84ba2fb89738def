"""Graph v1.0 users over the CloudStore: list and get, called as the HTTP layer will.

Delta is in `test_delta`, which shares this module's helpers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from mockservers.cloud import delta, graph
from mockservers.cloud.errors import CloudError, error_body
from mockservers.cloud.store import CloudStore

B = "http://127.0.0.1:8443"
NOW = 1_800_000_000.0
WRITEBACK_SELECT = (
    "displayName,mail,mailNickname,proxyAddresses,onPremisesExtensionAttributes,exwbExchange"
)


# ------------------------------------------------------------------------------------ helpers
def param(link: str, name: str) -> str:
    """One query parameter of an absolute link, decoded."""
    assert link.startswith(B + "/v1.0/")
    return parse_qs(urlsplit(link).query)[name][0]


def raises(fn: Any, *args: Any, **kw: Any) -> CloudError:
    with pytest.raises(CloudError) as info:
        fn(*args, **kw)
    return info.value


def assert_error(err: CloudError, status: int, code: str, message: str | None = None) -> None:
    """Status/code/message, and the Graph envelope the HTTP layer will render from them."""
    assert (err.status, err.code) == (status, code)
    if message is not None:
        assert err.message == message
    body = error_body(err.code, err.message)
    assert set(body) == {"error"}
    assert {"code", "message", "innerError"} <= set(body["error"])
    assert {"date", "request-id"} <= set(body["error"]["innerError"])


def list_all(store: CloudStore, query: dict[str, str], headers: Mapping[str, str] = {}) -> list:
    """Every page of a listing, following @odata.nextLink; returns the pages."""
    pages = [graph.list_users(store, query, B, headers)]
    while "@odata.nextLink" in pages[-1]:
        link = pages[-1]["@odata.nextLink"]
        pages.append(
            graph.list_users(store, {**query, "$skiptoken": param(link, "$skiptoken")}, B, headers)
        )
    return pages


def set_custom(store: CloudStore, id_: str, index: int, value: str | None) -> None:
    values = list(store.get(id_).custom_attributes)
    values[index - 1] = value
    store.update(id_, {"custom_attributes": tuple(values)})


def some_ids(store: CloudStore, n: int) -> list[str]:
    return [m.id for m in list(store)[:n]]


# --------------------------------------------------------------------------------------- list
def test_paging_returns_every_user_once(store: CloudStore) -> None:
    pages = list_all(store, {"$top": "37", "$select": "id"})
    ids = [u["id"] for p in pages for u in p["value"]]
    assert len(ids) == len(store) and set(ids) == set(store.mailboxes)
    assert [len(p["value"]) for p in pages[:-1]] == [37] * (len(pages) - 1)
    assert "@odata.nextLink" not in pages[-1]
    assert param(pages[0]["@odata.nextLink"], "$top") == "37"


def test_default_page_is_100(store: CloudStore) -> None:
    sizes = [len(p["value"]) for p in list_all(store, {})]
    assert sizes == [100] * (len(store) // 100) + [len(store) % 100]


def test_paging_survives_deletions_between_pages(store: CloudStore) -> None:
    first = graph.list_users(store, {"$top": "50", "$select": "id"}, B, {})
    seen = [u["id"] for u in first["value"]]
    store.delete(seen[-1])  # the page's last id, which the skiptoken resumes after
    gone = sorted(set(store.mailboxes) - set(seen))[:5]
    for id_ in gone:
        store.delete(id_)
    token = param(first["@odata.nextLink"], "$skiptoken")
    rest = list_all(store, {"$top": "50", "$select": "id", "$skiptoken": token})
    later = [u["id"] for p in rest for u in p["value"]]
    assert set(seen[:-1]) | set(later) == set(store.mailboxes)
    assert not set(seen) & set(later)


def test_default_properties_and_context(store: CloudStore) -> None:
    body = graph.list_users(store, {"$top": "1"}, B, {})
    assert body["@odata.context"] == f"{B}/v1.0/$metadata#users"
    user = body["value"][0]
    assert list(user) == list(delta.DEFAULT_PROPERTIES)
    m = store.get(user["id"])
    assert user["businessPhones"] == [] and user["jobTitle"] is None
    assert (user["displayName"], user["mail"]) == (m.display_name, m.windows_email_address)
    assert "exwbExchange" not in user and "proxyAddresses" not in user


def test_select_shape_context_and_case(store: CloudStore) -> None:
    body = graph.list_users(store, {"$select": "ID, Mail,proxyaddresses,id", "$top": "2"}, B, {})
    assert body["@odata.context"] == f"{B}/v1.0/$metadata#users(id,mail,proxyAddresses)"
    assert [list(u) for u in body["value"]] == [["id", "mail", "proxyAddresses"]] * 2


def test_select_renders_every_modelled_property(store: CloudStore) -> None:
    select = f"id,userPrincipalName,onPremisesImmutableId,onPremisesSyncEnabled,{WRITEBACK_SELECT}"
    users = [u for p in list_all(store, {"$select": select, "$top": "999"}) for u in p["value"]]
    for user in users:
        m = store.get(user["id"])
        assert user["mail"] == m.windows_email_address
        assert user["mailNickname"] == m.alias
        assert user["proxyAddresses"] == list(m.email_addresses)
        assert user["onPremisesImmutableId"] == m.immutable_id
        assert user["onPremisesSyncEnabled"] is (True if m.is_dir_synced else None)
        ext = user["onPremisesExtensionAttributes"]
        assert list(ext) == [f"extensionAttribute{i}" for i in range(1, 16)]
        assert list(ext.values()) == list(m.custom_attributes)
        assert user["exwbExchange"] == {
            "isExchangeCloudManaged": m.is_exchange_cloud_managed,
            "recipientTypeDetails": m.recipient_type_details,
            "hiddenFromAddressListsEnabled": m.hidden_from_address_lists,
            **{
                f"extensionCustomAttribute{i}": list(v)
                for i, v in enumerate(m.extension_custom_attributes, 1)
            },
        }
    assert {u["onPremisesSyncEnabled"] for u in users} == {True, None}  # both kinds present


def test_unmodelled_graph_properties_are_selectable(store: CloudStore) -> None:
    body = graph.list_users(store, {"$select": "accountEnabled,otherMails", "$top": "1"}, B, {})
    assert body["value"] == [{"accountEnabled": None, "otherMails": []}]


def test_select_unknown_property_is_400(store: CloudStore) -> None:
    err = raises(graph.list_users, store, {"$select": "id,colour"}, B, {})
    msg = "Could not find a property named 'colour' on type 'microsoft.graph.user'."
    assert_error(err, 400, "Request_BadRequest", msg)


@pytest.mark.parametrize(
    ("prop", "value"),
    [
        ("id", lambda m: m.id),
        ("id", lambda m: m.id.upper()),
        ("userPrincipalName", lambda m: m.user_principal_name.upper()),
        ("mail", lambda m: m.windows_email_address),
        ("onPremisesImmutableId", lambda m: m.immutable_id),
    ],
)
def test_filter_eq_on_each_property(store: CloudStore, prop: str, value: Any) -> None:
    m = list(store)[42]
    text = value(m).replace("'", "''")
    body = graph.list_users(store, {"$filter": f"{prop} eq '{text}'"}, B, {})
    assert [u["id"] for u in body["value"]] == [m.id]


def test_filter_or_in_and_proxy_addresses(store: CloudStore) -> None:
    a, b, c = list(store)[:3]
    f = f"id eq '{a.id}' or (userPrincipalName eq '{b.user_principal_name}')"
    assert {u["id"] for u in graph.list_users(store, {"$filter": f}, B, {})["value"]} == {
        a.id,
        b.id,
    }
    f = f"mail in ('{a.windows_email_address}', '{c.windows_email_address}', 'no@where.test')"
    assert {u["id"] for u in graph.list_users(store, {"$filter": f}, B, {})["value"]} == {
        a.id,
        c.id,
    }
    secondary = next(x for x in b.email_addresses if x.startswith("smtp:"))
    f = f"proxyAddresses/any(x:x eq '{secondary.upper()}')"
    assert [u["id"] for u in graph.list_users(store, {"$filter": f}, B, {})["value"]] == [b.id]


def test_filter_without_match_and_paged_filter(store: CloudStore) -> None:
    body = graph.list_users(store, {"$filter": "mail eq 'nobody@nowhere.test'"}, B, {})
    assert body["value"] == [] and "@odata.nextLink" not in body
    ids = some_ids(store, 5)
    f = " or ".join(f"id eq '{i}'" for i in ids)
    pages = list_all(store, {"$filter": f, "$top": "2", "$select": "id"})
    assert [len(p["value"]) for p in pages] == [2, 2, 1]
    assert {u["id"] for p in pages for u in p["value"]} == set(ids)


@pytest.mark.parametrize(
    ("text", "code", "message"),
    [
        (
            "jobTitle eq 'x'",  # a v1.0 property the model lacks: not filterable here
            "Request_UnsupportedQuery",
            "Unsupported or invalid query filter clause specified for property 'jobTitle' "
            "of resource 'User'.",
        ),
        (
            "mail ne 'x'",  # an advanced query without ConsistencyLevel and $count
            "Request_UnsupportedQuery",
            "Operator 'ne' is not supported because the required parameters might be missing. "
            "Try adding $count=true query parameter and ConsistencyLevel:eventual header. "
            "Refer to https://aka.ms/graph-docs/advanced-queries for more information",
        ),
        ("startswith(id,'a')", "Request_UnsupportedQuery", None),
        ("contains(mail,'a')", "Request_UnsupportedQuery", None),
        (
            "colour eq 'red'",
            "Request_BadRequest",
            "Could not find a property named 'colour' on type 'microsoft.graph.user'.",
        ),
        ("id eq 'unterminated", "BadRequest", None),
        ("id eq", "BadRequest", None),
        ("id eq 5", "BadRequest", None),
    ],
)
def test_unsupported_or_invalid_filter_is_400(
    store: CloudStore, text: str, code: str, message: str | None
) -> None:
    assert_error(raises(graph.list_users, store, {"$filter": text}, B, {}), 400, code, message)


@pytest.mark.parametrize("top", ["0", "1000", "-1", "ten", ""])
def test_top_out_of_bounds_is_400(store: CloudStore, top: str) -> None:
    msg = f"Invalid page size specified: '{top}'. Must be between 1 and 999 inclusive."
    assert_error(
        raises(graph.list_users, store, {"$top": top}, B, {}), 400, "Request_BadRequest", msg
    )


def test_top_bounds_accepted(store: CloudStore) -> None:
    assert len(graph.list_users(store, {"top": "1"}, B, {})["value"]) == 1
    body = graph.list_users(store, {"$TOP": "999"}, B, {})
    assert len(body["value"]) == len(store) and "@odata.nextLink" not in body


def test_count_needs_consistency_level(store: CloudStore) -> None:
    # Without ConsistencyLevel: eventual, Graph ignores $count=true (Learn: "silently ignores").
    assert "@odata.count" not in graph.list_users(store, {"$count": "true"}, B, {})
    eventual = {"consistencylevel": "eventual"}
    pages = list_all(store, {"$count": "true", "$top": "200"}, eventual)
    assert [p["@odata.count"] for p in pages] == [len(store)] * len(pages) and len(pages) == 2
    assert param(pages[0]["@odata.nextLink"], "$count") == "true"
    ids = some_ids(store, 3)
    f = " or ".join(f"id eq '{i}'" for i in ids)
    assert (
        graph.list_users(store, {"$count": "true", "$filter": f}, B, eventual)["@odata.count"] == 3
    )
    assert "@odata.count" not in graph.list_users(store, {"$count": "false"}, B, {})


def test_skiptoken_is_bound_to_its_query(store: CloudStore) -> None:
    first = graph.list_users(store, {"$top": "10", "$select": "id"}, B, {})
    token = param(first["@odata.nextLink"], "$skiptoken")
    for query in (
        {"$top": "11", "$select": "id"},
        {"$top": "10", "$select": "id,mail"},
        {"$top": "10"},
    ):
        err = raises(graph.list_users, store, {**query, "$skiptoken": token}, B, {})
        assert_error(err, 400, "Request_BadRequest")
    tampered = token[:-3] + ("AAA" if token[-3:] != "AAA" else "BBB")
    err = raises(
        graph.list_users, store, {"$top": "10", "$select": "id", "$skiptoken": tampered}, B, {}
    )
    assert_error(err, 400, "Request_BadRequest")


# ---------------------------------------------------------------------------------------- get
def test_get_by_id_and_by_upn(store: CloudStore) -> None:
    m = list(store)[7]
    by_id = graph.get_user(store, m.id, {}, B)
    by_upn = graph.get_user(store, m.user_principal_name.upper(), {}, B)
    assert by_id == by_upn
    assert by_id["@odata.context"] == f"{B}/v1.0/$metadata#users/$entity"
    assert by_id["id"] == m.id and by_id["userPrincipalName"] == m.user_principal_name
    sel = graph.get_user(store, m.id, {"$select": "id,exwbExchange"}, B)
    assert sel["@odata.context"] == f"{B}/v1.0/$metadata#users(id,exwbExchange)/$entity"
    assert set(sel) == {"@odata.context", "id", "exwbExchange"}


def test_get_unknown_is_404(store: CloudStore) -> None:
    key = "nobody@contoso.com"
    msg = (
        f"Resource '{key}' does not exist or one of its queried reference-property objects "
        "are not present."
    )
    assert_error(raises(graph.get_user, store, key, {}, B), 404, "Request_ResourceNotFound", msg)
    gone = next(iter(store)).id
    store.delete(gone)
    assert raises(graph.get_user, store, gone, {}, B).status == 404
