"""Links in a body (nextLink, deltaLink) follow the origin the client called, as Graph's do, so a
client behind a TLS proxy or a name of its own can follow them."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from mockservers.http_routes import request_origin
from tests.cloud.http_client import call, cmdlet, exo_token, token

FALLBACK = "http://127.0.0.1:4711"


@pytest.mark.parametrize(
    ("headers", "secure", "origin"),
    [
        ({}, False, FALLBACK),
        ({"host": "127.0.0.1:4711"}, False, FALLBACK),
        ({"host": "graph.contoso.test"}, False, "http://graph.contoso.test"),
        ({"host": "localhost:8443"}, True, "https://localhost:8443"),
        ({"host": "[::1]:9000"}, False, "http://[::1]:9000"),
        ({"host": "a:1", "x-forwarded-proto": "https"}, False, "https://a:1"),
        ({"host": "a:1", "x-forwarded-proto": "HTTPS, http"}, False, "https://a:1"),
        (
            {"host": "a", "x-forwarded-host": "proxy.test:443, inner"},
            False,
            "http://proxy.test:443",
        ),
        # Not a host name or a scheme: ignored, never copied into a link.
        ({"host": "evil.test/x?y"}, False, FALLBACK),
        ({"host": "a b"}, False, FALLBACK),
        ({"host": "user@evil.test"}, False, FALLBACK),
        ({"host": "-bad.test"}, False, FALLBACK),
        ({"host": "x" * 300}, False, FALLBACK),
        ({"host": "a:123456"}, False, FALLBACK),
        ({"host": "a", "x-forwarded-proto": "javascript"}, False, "http://a"),
        ({"host": "a", "x-forwarded-host": "<script>"}, False, "http://a"),
    ],
)
def test_request_origin(headers, secure, origin):
    assert request_origin(headers, secure, FALLBACK) == origin


PROXY = {"Host": "graph.contoso.test:8443", "X-Forwarded-Proto": "https"}


def _through_proxy(url: str, real: str) -> str:
    """What the proxy does with a link: the same path and query, sent on to the fake."""
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}" == "https://graph.contoso.test:8443", url
    return f"{real}{parts.path}?{parts.query}"


def test_users_pages_link_to_the_proxy_and_follow_through_it(running):
    ep = running.endpoints
    tok = token(ep)
    r = call("GET", f"{ep.graph_url}/v1.0/users?$top=50&$select=id", token=tok, headers=PROXY)
    assert r.status == 200, r.body
    assert r.body["@odata.context"].startswith("https://graph.contoso.test:8443/v1.0/$metadata#")
    seen = [u["id"] for u in r.body["value"]]
    while "@odata.nextLink" in r.body:
        url = _through_proxy(r.body["@odata.nextLink"], ep.graph_url)
        r = call("GET", url, token=tok, headers=PROXY)
        assert r.status == 200, r.body
        seen.extend(u["id"] for u in r.body["value"])
    # The same users, in the same order, as paging without the proxy gives.
    r = call("GET", f"{ep.graph_url}/v1.0/users?$top=50&$select=id", token=tok)
    direct = [u["id"] for u in r.body["value"]]
    while "@odata.nextLink" in r.body:
        assert r.body["@odata.nextLink"].startswith(f"{ep.graph_url}/v1.0/users?")
        r = call("GET", r.body["@odata.nextLink"], token=tok)
        direct.extend(u["id"] for u in r.body["value"])
    assert len(seen) > 50
    assert seen == direct


def test_delta_links_follow_the_host(running):
    ep = running.endpoints
    tok = token(ep)
    r = call("GET", f"{ep.graph_url}/v1.0/users/delta?$select=id", token=tok, headers=PROXY)
    assert r.status == 200, r.body
    first = r.body.get("@odata.nextLink") or r.body["@odata.deltaLink"]
    assert first.startswith("https://graph.contoso.test:8443/v1.0/users/delta?"), first
    # The rest is asked for without the proxy's headers: those links are on the fake itself.
    proxied = True
    while "@odata.nextLink" in r.body:
        link = r.body["@odata.nextLink"]
        r = call("GET", _through_proxy(link, ep.graph_url) if proxied else link, token=tok)
        assert r.status == 200, r.body
        proxied = False
    link = r.body["@odata.deltaLink"]
    assert link.startswith(f"{ep.graph_url}/v1.0/users/delta?$deltatoken="), link
    # The deltaLink, asked for through the proxy, answers with the proxy's links again.
    r = call("GET", link, token=tok, headers=PROXY)
    assert r.status == 200, r.body
    assert r.body["@odata.deltaLink"].startswith("https://graph.contoso.test:8443/"), r.body


def test_exo_next_link_follows_the_host(running):
    ep = running.endpoints
    tok = exo_token(ep)
    running.call(setattr, __import__("mockservers.cloud.cursors", fromlist=["x"]), "EXO_PAGE", 40)
    try:
        r = call(
            "POST",
            f"{ep.exo_url}/InvokeCommand",
            token=tok,
            headers=PROXY,
            body={"CmdletInput": {"CmdletName": "Get-Mailbox", "Parameters": {}}},
        )
        assert r.status == 200, r.body
        link = r.body["@odata.nextLink"]
        assert link.startswith("https://graph.contoso.test:8443/adminapi/beta/"), link
        r = call("GET", _through_proxy(link, ep.graph_url), token=tok)
        assert r.status == 200, r.body
        assert r.body["value"]
        # Without the proxy, links stay on the address the fake listens on.
        r = cmdlet(ep, tok, "Get-Mailbox")
        assert r.body["@odata.nextLink"].startswith(f"{ep.exo_url}/InvokeCommand?"), r.body
    finally:
        running.call(
            setattr, __import__("mockservers.cloud.cursors", fromlist=["x"]), "EXO_PAGE", 1000
        )
