"""The on-premises API's route table: every route is reachable, answers for wrong methods and
unknown paths come from the table, and the docs table lists each route."""

from __future__ import annotations

import base64
import http.client
from urllib.parse import urlsplit

import pytest

from mockservers.onprem.routes import ADMIN, ROUTES, routes_markdown

ALL_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


@pytest.mark.parametrize("route", list(ROUTES), ids=lambda r: f"{'|'.join(r.methods)} {r.pattern}")
def test_every_route_is_reachable_and_needs_the_admin(route):
    assert route.roles == ADMIN
    for parts in route.examples():
        for method in route.methods:
            match = ROUTES.match(method, parts, {})
            assert match is not None and match.found, (method, parts)
            assert match.route is route, (method, parts, match.route.pattern)


def test_wrong_methods_and_unknown_paths_answer_from_the_table(run):
    ep = run.endpoints
    u = urlsplit(ep.onprem_url)
    auth = "Basic " + base64.b64encode(f"{ep.admin_dn}:{ep.admin_password}".encode()).decode()

    def send(method: str, path: str) -> http.client.HTTPResponse:
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
        conn.request(
            method, path, b"{}" if method in ("POST", "PUT") else None, {"Authorization": auth}
        )
        resp = conn.getresponse()
        resp.read()
        conn.close()
        return resp

    for route in ROUTES:
        parts = route.examples()[0]
        misses = [m for m in ALL_METHODS if (hit := ROUTES.match(m, parts, {})) and not hit.found]
        table = ROUTES.match(misses[0], parts, {})
        assert table is not None and set(route.methods) <= set(table.allowed)
        resp = send(misses[0], "/" + "/".join(parts))
        assert resp.status == 405, route.pattern
        assert resp.getheader("Allow") == ", ".join(table.allowed)
    assert ROUTES.match("GET", ["hosts", "x", "bogus"], {}) is None
    assert send("GET", "/hosts/x/bogus").status == 404


def test_routes_markdown_lists_each_route():
    rows = [line for line in routes_markdown().splitlines() if line.startswith("| ")][1:]
    assert len(rows) == len(ROUTES.routes)
    for route, row in zip(ROUTES, rows, strict=True):
        cells = [c.strip() for c in row.strip("|").split(" | ")]
        assert cells[0] == ", ".join(route.methods)
        assert cells[1] == f"`{route.pattern}`"
        assert cells[3] == "admin"
        assert cells[5] == "not throttled"
