"""The cloud's route table: every route is reachable, answers for wrong methods and unknown paths
come from the table, and the docs table lists each route."""

from __future__ import annotations

import pytest

from mockservers.cloud.routes import ROUTES, routes_markdown, split_path
from mockservers.http_routes import Route
from tests.cloud.http_client import call, exo_token, graph_error, token

ALL_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


def _query(route: Route) -> dict[str, str]:
    return {q: "t" for q in route.needs}


@pytest.mark.parametrize("route", list(ROUTES), ids=lambda r: f"{'|'.join(r.methods)} {r.pattern}")
def test_every_route_is_reachable(route):
    for parts in route.examples():
        for method in route.methods:
            match = ROUTES.match(method, parts, _query(route))
            assert match is not None and match.found, (method, parts)
            assert match.route is route, (method, parts, match.route.pattern)


def test_an_unknown_path_matches_no_route():
    for path in ("/", "/v1.0/groups", "/v1.0/users/a/b/c", "/beta/me", "/adminapi/beta/x"):
        assert ROUTES.match("GET", split_path(path), {}) is None, path


def test_wrong_methods_answer_405_with_the_tables_methods(running):
    """Over HTTP, for each route: a method none of its path's routes takes is a 405 whose Allow
    header lists the methods the table has for that path."""
    ep = running.endpoints
    tokens = {False: token(ep), True: exo_token(ep)}  # Exchange's routes take its tokens
    for route in ROUTES:
        parts = [ep.tenant_id if p == "x" else p for p in route.examples()[0]]
        tok = tokens[parts[0] == "adminapi"]
        query = _query(route)
        misses = [
            m for m in ALL_METHODS if (hit := ROUTES.match(m, parts, query)) and not hit.found
        ]
        wrong = misses[0]
        table = ROUTES.match(wrong, parts, query)
        assert table is not None and set(route.methods) <= set(table.allowed)
        qs = "&".join(f"{k}={v}" for k, v in query.items())
        url = f"{ep.graph_url}/{'/'.join(parts)}" + (f"?{qs}" if qs else "")
        r = call(wrong, url, token=tok, raw=b"{}" if wrong != "GET" else None)
        graph_error(r, 405, "Request_BadRequest")
        assert r.headers["allow"] == ", ".join(table.allowed), (wrong, route.pattern)


def test_routes_markdown_lists_each_route():
    table = routes_markdown()
    rows = [line for line in table.splitlines() if line.startswith("| ")][1:]  # no header
    assert len(rows) == len(ROUTES.routes)
    for route, row in zip(ROUTES, rows, strict=True):
        cells = [c.strip() for c in row.strip("|").split(" | ")]
        assert cells[0] == ", ".join(route.methods)
        assert cells[1].startswith("`/")
        assert cells[2] == route.summary.replace("|", "\\|")
        assert cells[4] == (route.fault or "-")


def test_a_wrong_method_on_the_public_token_route_is_405_without_a_token(running):
    r = call("GET", running.endpoints.token_url)
    graph_error(r, 405, "Request_BadRequest")
    assert r.headers["allow"] == "POST"
