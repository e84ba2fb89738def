"""The fakes on a simulated harness clock, over loopback with real clients: AD's whenChanged and
rootDSE currentTime, Graph's error dates and token lifetimes, and the clock's admin route."""

from __future__ import annotations

from datetime import timedelta

import pytest
import requests
from ldap3 import BASE, MODIFY_REPLACE, Connection, Server

from harness.core import clock
from harness.tenant import TenantSpec, generate
from tests.support.engine import simulated_time

TENANT = generate(TenantSpec(mailboxes=12, seed=17))
GRAPH = "https://graph.microsoft.com/.default"


def token(ep, app: str = "admin") -> str:
    client_id, secret = {
        "admin": (ep.client_id, ep.client_secret),
        "reader": (ep.readonly_client_id, ep.readonly_client_secret),
        "connect": (ep.connect_client_id, ep.connect_client_secret),
    }[app]
    form = {
        "grant_type": "client_credentials",
        "client_id": client_id,
        "client_secret": secret,
        "scope": GRAPH,
    }
    r = requests.post(ep.token_url, data=form, timeout=30)
    assert r.status_code == 200, r.text
    return str(r.json()["access_token"])


def bearer(t: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {t}"}


def admin_ldap(ep) -> Connection:
    return Connection(Server(ep.ldap_url), ep.admin_dn, ep.admin_password, auto_bind=True)


def generalized(when) -> str:
    return when.strftime("%Y%m%d%H%M%S.0Z")


def test_when_changed_of_a_modify_is_the_simulated_time(run):
    with simulated_time() as sim, admin_ldap(run.endpoints) as conn:
        conn.search(run.endpoints.base_dn, "(&(objectClass=user)(mail=*))", attributes=["cn"])
        user_dn = conn.response[0]["dn"]
        sim.advance(timedelta(days=3, minutes=7))
        conn.modify(user_dn, {"description": [(MODIFY_REPLACE, ["on simulated time"])]})
        assert conn.result["result"] == 0, conn.result
        conn.search(user_dn, "(objectClass=*)", BASE, attributes=["whenChanged", "whenCreated"])
        raw = conn.response[0]["raw_attributes"]
        assert raw["whenChanged"] == [generalized(sim.now()).encode()]
        # Created when the tenant was served, on the wall clock: untouched by the modify.
        assert raw["whenCreated"] != raw["whenChanged"]


def test_entries_added_under_a_simulated_clock_are_created_then(run):
    with simulated_time() as sim, admin_ldap(run.endpoints) as conn:
        dn = f"CN=clock-probe,CN=Users,{run.endpoints.base_dn}"
        assert conn.add(dn, ["top", "container"]), conn.result
        conn.search(dn, "(objectClass=*)", BASE, attributes=["whenCreated", "whenChanged"])
        raw = conn.response[0]["raw_attributes"]
        assert raw["whenCreated"] == raw["whenChanged"] == [generalized(sim.now()).encode()]


def test_root_dse_current_time_follows_the_clock(run):
    with simulated_time() as sim:
        conn = Connection(Server(run.endpoints.ldap_url), auto_bind=True)  # anonymous, as AD
        try:
            for step in (timedelta(0), timedelta(days=9, hours=5)):
                sim.advance(step)
                conn.search("", "(objectClass=*)", BASE, attributes=["currentTime"])
                got = conn.response[0]["raw_attributes"]["currentTime"]
                assert got == [generalized(sim.now()).encode()]
        finally:
            conn.unbind()


def test_a_graph_error_body_carries_the_simulated_date(run):
    ep = run.endpoints
    with simulated_time() as sim:
        sim.advance(timedelta(hours=30))
        r = requests.get(
            f"{ep.graph_url}/v1.0/users/no-such-user", headers=bearer(token(ep)), timeout=30
        )
        assert r.status_code == 404
        assert r.json()["error"]["innerError"]["date"] == sim.now().strftime("%Y-%m-%dT%H:%M:%S")


def test_a_token_expires_when_the_clock_passes_its_lifetime(run):
    ep = run.endpoints
    users = f"{ep.graph_url}/v1.0/users?$top=1"
    with simulated_time() as sim:
        t = token(ep, "reader")
        assert requests.get(users, headers=bearer(t), timeout=30).status_code == 200
        sim.advance(timedelta(minutes=59))  # lifetime 3600 s: still valid
        assert requests.get(users, headers=bearer(t), timeout=30).status_code == 200
        sim.advance(timedelta(minutes=2))
        r = requests.get(users, headers=bearer(t), timeout=30)
        assert r.status_code == 401
        assert r.json()["error"]["code"] == "InvalidAuthenticationToken"
        assert "expired" in r.json()["error"]["message"]
        # A token issued now is stamped now, and passes.
        assert requests.get(users, headers=bearer(token(ep, "reader")), timeout=30).ok


# ------------------------------------------------------------------ the admin route
def test_reading_the_clock_needs_a_token_and_names_its_kind(run):
    ep = run.endpoints
    url = f"{ep.graph_url}/exwb/clock"
    r = requests.get(url, timeout=30)
    assert r.status_code == 401 and r.json()["error"]["code"] == "InvalidAuthenticationToken"
    wall = requests.get(url, headers=bearer(token(ep, "reader")), timeout=30).json()
    assert wall["kind"] == "wall"
    with simulated_time() as sim:
        got = requests.get(url, headers=bearer(token(ep, "reader")), timeout=30).json()
        assert got == {"kind": "simulated", "now": clock.iso(sim.now())}


def test_advancing_needs_the_clock_role(run):
    ep = run.endpoints
    url = f"{ep.graph_url}/exwb/clock/advance"
    with simulated_time() as sim:
        start = sim.now()
        r = requests.post(url, json={"days": 1}, timeout=30)
        assert r.status_code == 401
        for app in ("reader", "connect"):
            r = requests.post(url, json={"days": 1}, headers=bearer(token(ep, app)), timeout=30)
            assert r.status_code == 403, app
            assert r.json()["error"]["code"] == "Authorization_RequestDenied"
        assert sim.now() == start


@pytest.mark.parametrize(
    "body",
    [
        {},
        [],
        "days",
        {"days": 1, "hours": 2},
        {"weeks": 1},
        {"days": -1},
        {"days": "7"},
        {"days": True},
        {"days": 1e308},
        {"to": "next tuesday"},
        {"to": 20260105},
        {"to": "2025-01-01T00:00:00Z"},  # before the simulated start
        {"to": "9999-01-01T00:00:00Z"},  # beyond one advance's reach
    ],
)
def test_a_bad_advance_is_a_400_in_graphs_shape_and_moves_nothing(run, body):
    ep = run.endpoints
    with simulated_time() as sim:
        start = sim.now()
        r = requests.post(
            f"{ep.graph_url}/exwb/clock/advance", json=body, headers=bearer(token(ep)), timeout=30
        )
        assert r.status_code == 400, r.text
        err = r.json()["error"]
        assert err["code"] == "BadRequest" and err["message"] and "request-id" in err["innerError"]
        assert sim.now() == start


def test_advancing_the_wall_clock_is_a_409(run):
    ep = run.endpoints
    r = requests.post(
        f"{ep.graph_url}/exwb/clock/advance",
        json={"minutes": 5},
        headers=bearer(token(ep)),
        timeout=30,
    )
    assert r.status_code == 409 and r.json()["error"]["code"] == "Conflict"


def test_advancing_moves_time_and_runs_due_work_off_the_reactor(run):
    """Work due on the way runs at its own time, and may call the tenant's own LDAP server (a
    served job's cycle does): the advance must not hold the reactor while it runs."""
    ep = run.endpoints
    url = f"{ep.graph_url}/exwb/clock/advance"
    seen: list[tuple[object, int]] = []

    def due() -> None:
        with Connection(
            Server(ep.ldap_url), ep.reader_dn, ep.reader_password, auto_bind=True
        ) as conn:
            conn.search(ep.base_dn, "(objectClass=user)", attributes=["cn"])
            seen.append((clock.now(), len(conn.response)))

    with simulated_time() as sim:
        start = sim.now()
        sim.call_at(start + timedelta(minutes=20), due)
        sim.call_at(start + timedelta(hours=2), due)  # beyond the first advance
        admin = bearer(token(ep))
        r = requests.post(url, json={"minutes": 30}, headers=admin, timeout=60)
        assert r.status_code == 200, r.text
        assert r.json() == {
            "kind": "simulated",
            "now": clock.iso(start + timedelta(minutes=30)),
            "ran": 1,
        }
        assert [when for when, _ in seen] == [start + timedelta(minutes=20)]
        assert seen[0][1] > 0
        for body, expected in (
            ({"hours": 1}, start + timedelta(hours=1, minutes=30)),
            ({"days": 2}, start + timedelta(days=2, hours=1, minutes=30)),
            ({"to": "2026-02-01T00:00:00Z"}, clock.parse_iso("2026-02-01T00:00:00Z")),
            ({"minutes": 0}, clock.parse_iso("2026-02-01T00:00:00Z")),
        ):
            # A fresh token each time: the last advance outlived the one before.
            r = requests.post(url, json=body, headers=bearer(token(ep)), timeout=60)
            assert r.status_code == 200 and r.json()["now"] == clock.iso(expected), body
            assert sim.now() == expected
        assert [when for when, _ in seen][1] == start + timedelta(hours=2)
        got = requests.get(f"{ep.graph_url}/exwb/clock", headers=bearer(token(ep)), timeout=30)
        assert got.json()["now"] == "2026-02-01T00:00:00Z"
