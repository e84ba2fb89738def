"""Benchmark the fake cloud: Graph listing and delta at scale, Set-Mailbox throughput.

    python benchmarks/bench_cloud.py --mailboxes 200000 [--seconds 10] [--out DIR]

Starts `exwb serve` in its own process and measures, over HTTP with keep-alive connections:
listing every user with $top=999, a full delta round (odata.maxpagesize=999), a delta round
after 1% of the mailboxes changed, and Set-Mailbox (CustomAttribute1) throughput with one and
with four client processes. Compare within one run.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.http_json import EXO_SCOPE, JsonClient, app_token
from mockservers.runtime import spawn_serve


def follow(c: JsonClient, url: str, headers: dict[str, str] | None = None) -> tuple[int, dict]:
    """Every page from `url`; (objects, last body)."""
    n = 0
    while True:
        status, body = c.request("GET", url, headers=headers)
        assert status == 200, body
        n += len(body["value"])
        url = body.get("@odata.nextLink")
        if not url:
            return n, body


def set_mailbox_worker(args: tuple) -> tuple[int, float]:
    ep, exo_token, ids, seconds, tag = args  # Set-Mailbox: an Exchange token
    c = JsonClient(ep["graph_url"], exo_token)
    url = f"{ep['exo_url']}/InvokeCommand"
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        body = {
            "CmdletInput": {
                "CmdletName": "Set-Mailbox",
                "Parameters": {"Identity": ids[n % len(ids)], "CustomAttribute1": f"{tag}-{n}"},
            }
        }
        status, resp = c.request("POST", url, body=body)
        assert status == 200, resp
        n += 1
    return n, time.perf_counter() - start


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mailboxes", type=int, default=200_000)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--out", type=Path, default=Path("results/bench-cloud"))
    args = ap.parse_args()
    res: dict[str, Any] = {"mailboxes": args.mailboxes}
    with tempfile.TemporaryDirectory() as tmp:
        epf = Path(tmp) / "endpoints.json"
        proc = spawn_serve(epf, "-n", str(args.mailboxes), "-q")
        try:
            ep = json.loads(epf.read_text())
            token, exo = app_token(ep), app_token(ep, EXO_SCOPE)
            c = JsonClient(ep["graph_url"], token, exo)
            t0 = time.perf_counter()
            n, _ = follow(
                c, f"{ep['graph_url']}/v1.0/users?$top=999&$select=id,userPrincipalName,mail"
            )
            res["list_all_users_s"], res["listed"] = round(time.perf_counter() - t0, 1), n
            prefer = {"Prefer": "odata.maxpagesize=999"}
            t0 = time.perf_counter()
            sel = ",".join(
                [
                    "id",
                    "mail",
                    "proxyAddresses",
                    "onPremisesImmutableId",
                    "onPremisesExtensionAttributes",
                    "exwbExchange",
                ]
            )
            n, last = follow(c, f"{ep['graph_url']}/v1.0/users/delta?$select={sel}", prefer)
            res["full_delta_round_s"], res["delta_objects"] = round(time.perf_counter() - t0, 1), n
            _, page = c.request(
                "POST",
                f"{ep['exo_url']}/InvokeCommand",
                body={
                    "CmdletInput": {
                        "CmdletName": "Get-Mailbox",
                        "Parameters": {
                            "ResultSize": 5000,
                            "Filter": "IsExchangeCloudManaged -eq $true",
                        },
                    }
                },
            )
            ids = [m["Guid"] for m in page["value"]]
            for clients in (1, 4):
                work = [
                    (ep, exo, ids[k::clients], args.seconds, f"c{clients}-{k}")
                    for k in range(clients)
                ]
                with multiprocessing.get_context("spawn").Pool(clients) as pool:
                    done = pool.map(set_mailbox_worker, work)
                res[f"set_mailbox_{clients}c_per_s"] = round(
                    sum(n for n, _ in done) / max(s for _, s in done)
                )
            # A delta round after the writes above (each written mailbox once).
            t0 = time.perf_counter()
            n, _ = follow(c, last["@odata.deltaLink"], prefer)
            res["delta_after_writes_s"], res["delta_after_writes_objects"] = (
                round(time.perf_counter() - t0, 2),
                n,
            )
        finally:
            proc.terminate()
            proc.wait(timeout=60)
    print(json.dumps(res, indent=2))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"bench-{args.mailboxes}.json").write_text(json.dumps(res, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
