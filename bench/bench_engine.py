"""Benchmark the writeback engine against `exwb serve` (first figures; issue 10 extends this).

    python bench/bench_engine.py --mailboxes 200000 [--changes 0.01]

Measures an initial cycle on a consistent tenant (reads everything, writes nothing), a delta
cycle after `changes` of the cloud-managed mailboxes got a new CustomAttribute1 through the EXO
API, and a no-change delta cycle.
"""

from __future__ import annotations

import argparse
import http.client
import json
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from harness.engine.cycle import run_cycle
from harness.engine.rules import GA
from harness.engine.source import CloudCredentials
from harness.engine.target import LdapCredentials
from mockservers.runtime import Endpoints, spawn_serve


def exo(ep: Endpoints, token: str, conn: http.client.HTTPConnection, name: str, **params) -> dict:
    body = json.dumps({"CmdletInput": {"CmdletName": name, "Parameters": params}})
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    conn.request("POST", urlsplit(f"{ep.exo_url}/InvokeCommand").path, body, headers)
    r = conn.getresponse()
    data = json.loads(r.read() or b"null")
    assert r.status == 200, data
    return data


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mailboxes", type=int, default=200_000)
    ap.add_argument("--changes", type=float, default=0.01)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        epf = Path(tmp) / "endpoints.json"
        proc = spawn_serve(epf, "-n", str(args.mailboxes), "-q")
        try:
            ep = Endpoints.read(epf)
            u = urlsplit(ep.graph_url)
            conn = http.client.HTTPConnection(u.hostname, u.port, timeout=300)
            form = urlencode(
                {
                    "grant_type": "client_credentials",
                    "client_id": ep.client_id,
                    "client_secret": ep.client_secret,
                    "scope": "https://outlook.office365.com/.default",
                }
            )
            conn.request(
                "POST",
                urlsplit(ep.token_url).path,
                form,
                {"Content-Type": "application/x-www-form-urlencoded"},
            )
            token = json.loads(conn.getresponse().read())["access_token"]
            cloud = CloudCredentials(
                ep.graph_url, ep.token_url, ep.readonly_client_id, ep.readonly_client_secret
            )
            ldap = LdapCredentials(ep.ldap_url, ep.bind_dn, ep.bind_password, ep.base_dn)
            state = Path(tmp) / "state"
            res = {}
            r = run_cycle(cloud, ldap, GA, state, "delta")
            res["initial_cycle_s"], res["initial_objects"] = round(r.seconds, 1), r.objects
            print(res, flush=True)
            conn = http.client.HTTPConnection(
                u.hostname, u.port, timeout=300
            )  # the old one idled out
            n = int(args.mailboxes * args.changes)
            ids: list[str] = []
            page = exo(
                ep,
                token,
                conn,
                "Get-Mailbox",
                ResultSize="Unlimited",
                Filter="IsExchangeCloudManaged -eq $true",
            )
            ids += [m["Guid"] for m in page["value"]]
            while len(ids) < n and page.get("@odata.nextLink"):
                conn.request(
                    "GET",
                    page["@odata.nextLink"].split(ep.graph_url, 1)[1],
                    headers={"Authorization": f"Bearer {token}"},
                )
                page = json.loads(conn.getresponse().read())
                ids += [m["Guid"] for m in page["value"]]
            ids = ids[:n]
            t0 = time.perf_counter()
            for i, mid in enumerate(ids):
                exo(ep, token, conn, "Set-Mailbox", Identity=mid, CustomAttribute1=f"bench-{i}")
            res["edits"], res["edit_s"] = len(ids), round(time.perf_counter() - t0, 1)
            r = run_cycle(cloud, ldap, GA, state, "delta")
            res["delta_cycle_s"], res["delta_updates"] = round(r.seconds, 2), r.actions["Update"]
            r = run_cycle(cloud, ldap, GA, state, "delta")
            res["no_change_delta_s"], res["no_change_objects"] = round(r.seconds, 2), r.objects
            print(json.dumps(res, indent=2))
        finally:
            proc.terminate()
            proc.communicate(timeout=60)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
