"""`exwb serve --clock simulated` end to end: a child process, its endpoints file, the clock's
admin route and the directory's time, with real clients."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest
import requests
from ldap3 import BASE, Connection, Server

from harness.core.endpoints import Endpoints
from mockservers.runtime import spawn_serve

START = "2026-03-02T08:00:00Z"


def token(ep: Endpoints, client_id: str, secret: str) -> dict[str, str]:
    form = {
        "grant_type": "client_credentials",
        "client_id": client_id,
        "client_secret": secret,
        "scope": "https://graph.microsoft.com/.default",
    }
    r = requests.post(ep.token_url, data=form, timeout=30)
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def current_time(ep: Endpoints) -> str:
    with Connection(Server(ep.ldap_url), auto_bind=True) as conn:
        conn.search("", "(objectClass=*)", BASE, attributes=["currentTime"])
        return str(conn.response[0]["raw_attributes"]["currentTime"][0].decode())


def test_serve_on_a_simulated_clock_that_the_admin_route_moves(tmp_path):
    path = tmp_path / "ep.json"
    proc = spawn_serve(path, "-n", "10", "--clock", "simulated", "--clock-start", START)
    try:
        ep = Endpoints.read(path)
        assert ep.clock == "simulated"
        reader = token(ep, ep.readonly_client_id, ep.readonly_client_secret)
        got = requests.get(f"{ep.graph_url}/exwb/clock", headers=reader, timeout=30)
        assert got.json() == {"kind": "simulated", "now": START}
        assert current_time(ep) == "20260302080000.0Z"
        admin = token(ep, ep.client_id, ep.client_secret)
        moved = requests.post(
            f"{ep.graph_url}/exwb/clock/advance", json={"days": 1}, headers=admin, timeout=60
        )
        assert moved.status_code == 200, moved.text
        assert moved.json()["now"] == "2026-03-03T08:00:00Z"
        assert current_time(ep) == "20260303080000.0Z"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=60)
    assert proc.returncode == 0


def test_served_on_the_wall_clock_by_default(tmp_path):
    path = tmp_path / "ep.json"
    proc = spawn_serve(path, "-n", "5")
    try:
        ep = Endpoints.read(path)
        assert ep.clock == "wall"
        admin = token(ep, ep.client_id, ep.client_secret)
        r = requests.post(
            f"{ep.graph_url}/exwb/clock/advance", json={"days": 1}, headers=admin, timeout=30
        )
        assert r.status_code == 409
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=60)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--clock-start", START], "--clock-start needs --clock simulated"),
        (["--clock", "simulated", "--clock-start", "soon"], "--clock-start"),
    ],
)
def test_bad_clock_options_are_refused_before_anything_is_served(tmp_path, args, message):
    cmd = [sys.executable, "-m", "harness", "serve", "-n", "5", *args]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode != 0 and message in done.stderr
