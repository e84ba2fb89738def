"""`exwb serve` also serves the cloud side of the same tenant."""

from __future__ import annotations

import json

from harness.core.endpoints import Endpoints
from tests.cloud.http_client import call, cmdlet, token
from tests.directory.test_serve import start_serve, stop


def test_serve_starts_graph_and_exo_for_the_same_tenant(tmp_path):
    proc, path = start_serve(
        tmp_path, "--mailboxes", "120", "--seed", "8", "--throttle", "documented"
    )
    try:
        ep = Endpoints(**json.loads(path.read_text()))
        for key in ("graph_url", "token_url", "tenant_id", "client_id", "client_secret", "exo_url"):
            assert getattr(ep, key), key
        tok = token(ep)
        users = call(
            "GET", f"{ep.graph_url}/v1.0/users?$top=999&$select=id,onPremisesImmutableId", token=tok
        )
        assert users.status == 200
        anchors = {u["onPremisesImmutableId"] for u in users.body["value"]} - {None}
        assert len(anchors) == 120 + 3  # synced mailboxes + on-prem mailboxes (MailUsers)
        assert "x-ms-resource-unit" in users.headers  # the documented throttling profile is on
        r = cmdlet(ep, tok, "Get-OrganizationConfig")
        assert r.status == 200 and r.body["value"][0]["Name"].endswith(".onmicrosoft.com")
    finally:
        code, out, err = stop(proc)
    assert code == 0, err
    assert "graph_url" in out


def test_serve_rejects_a_bad_throttle_profile(tmp_path):
    import subprocess
    import sys

    res = subprocess.run(
        [sys.executable, "-m", "harness", "serve", "--throttle", "lots"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 2 and "--throttle" in res.stderr and "Traceback" not in res.stderr
