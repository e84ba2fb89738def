"""The load test (issue 9): concurrent LDAP and HTTP clients against one `exwb serve`.

    python benchmarks/load.py [--mailboxes 200000] [--seconds 60] [--ldap-clients 16]
                         [--http-clients 8] [--out results/load.json]

Starts `exwb serve -n N` (one process serves LDAP and HTTP) and runs, each client in its own
process (ldap3 and the JSON handling cost client CPU; threads would share one GIL):

* LDAP clients, a line-of-business app's mix as the read-only account: indexed equality
  searches by proxyAddresses and by mail, base reads of a DN, the first page of a paged search
  (then abandoned with a zero-size page, as RFC 2696 says); and modifies of extensionAttribute10
  as the writeback service account (each client its own slice of users, so no two clients
  write the same entry).
* HTTP clients: Graph users list (first page) and get by id, delta pages (a round followed
  page by page, restarting from its deltaLink), and EXO Get-Mailbox and Set-Mailbox
  (CustomAttribute2 on cloud-managed mailboxes).

Reported: per operation count, p50/p95/p99/max latency (ms) and throughput; errors (any error
fails the run: exit 1); the server's VmRSS/VmHWM from /proc before the load, sampled every
second during it and after it, and the RSS growth over the run's second half (more than
--max-growth-mb fails the run: memory that keeps growing under a steady load is a leak).
Clients and server share the machine's cores: the figures are for this machine, not the
server alone.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import os
import random
import tempfile
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ldap3 import BASE, MODIFY_REPLACE, NONE, SUBTREE, Connection, Server
from ldap3.utils.conv import escape_filter_chars

from benchmarks.http_json import EXO_SCOPE, JsonClient, app_token
from mockservers.runtime import spawn_serve

SAMPLE = 2000  # users the clients pick their targets from
PAGE = 200  # paged LDAP reads and Graph pages
LDAP_MIX = {  # operation: weight
    "ldap.search.proxyAddresses": 30,
    "ldap.search.mail": 25,
    "ldap.read.base": 20,
    "ldap.paged.page": 5,
    "ldap.modify": 20,
}
HTTP_MIX = {
    "graph.users.list": 10,
    "graph.users.get": 30,
    "graph.delta.page": 15,
    "exo.get_mailbox": 25,
    "exo.set_mailbox": 20,
}
BARRIER_TIMEOUT = 300.0  # seconds for every client process to start, connect and bind


# --- targets ---------------------------------------------------------------------------------


def _connect(url: str, dn: str, password: str) -> Connection:
    conn = Connection(Server(url, get_info=NONE), user=dn, password=password)
    if not conn.bind():
        raise RuntimeError(f"bind as {dn} failed: {conn.result}")
    return conn


def targets(ep: dict[str, Any], sample: int = SAMPLE) -> dict[str, Any]:
    """What the clients pick from: users (DN, mail, a proxy address) and cloud-managed ids."""
    conn = _connect(ep["ldap_url"], ep["reader_dn"], ep["reader_password"])
    conn.search(
        f"OU=Corp,{ep['base_dn']}",
        "(&(objectClass=user)(mail=*))",
        SUBTREE,
        attributes=["mail", "proxyAddresses"],
        paged_size=min(sample, 1000),
    )
    users = []
    for e in conn.response:
        if e.get("type") != "searchResEntry":
            continue
        raw = e["raw_attributes"]
        proxies = [v.decode() for v in raw.get("proxyAddresses", [])]
        users.append({"dn": e["dn"], "mail": raw["mail"][0].decode(), "proxy": proxies[-1]})
    conn.unbind()
    if not users:
        raise RuntimeError("no users with mail below OU=Corp")
    c = JsonClient(ep["graph_url"], app_token(ep), app_token(ep, EXO_SCOPE))
    status, body = c.request(
        "POST",
        f"{ep['exo_url']}/InvokeCommand",
        {
            "CmdletInput": {
                "CmdletName": "Get-Mailbox",
                "Parameters": {"ResultSize": sample, "Filter": "IsExchangeCloudManaged -eq $true"},
            }
        },
    )
    if status != 200:
        raise RuntimeError(f"Get-Mailbox: HTTP {status} {body}")
    managed = [m["ExternalDirectoryObjectId"] or m["Guid"] for m in body["value"]]
    status, body = c.request(
        "GET", f"{ep['graph_url']}/v1.0/users?$top={min(sample, 999)}&$select=id"
    )
    if status != 200:
        raise RuntimeError(f"users: HTTP {status} {body}")
    c.close()
    return {"users": users, "managed": managed, "ids": [u["id"] for u in body["value"]]}


# --- HTTP ------------------------------------------------------------------------------------


# --- client processes ------------------------------------------------------------------------


class _Recorder:
    def __init__(self) -> None:
        self.latencies: dict[str, list[float]] = {}
        self.errors: dict[str, int] = {}
        self.first_errors: list[str] = []

    def ok(self, op: str, seconds: float) -> None:
        self.latencies.setdefault(op, []).append(seconds)

    def error(self, op: str, detail: str) -> None:
        self.errors[op] = self.errors.get(op, 0) + 1
        if len(self.first_errors) < 5:
            self.first_errors.append(f"{op}: {detail}"[:300])

    def result(self, started: float, ended: float) -> dict[str, Any]:
        return {
            "latencies": self.latencies,
            "errors": self.errors,
            "first_errors": self.first_errors,
            "started": started,
            "ended": ended,
        }


def _pick(rng: random.Random, mix: dict[str, int]) -> str:
    return rng.choices(list(mix), weights=list(mix.values()))[0]


def ldap_client(
    ep: dict[str, Any], users: list[dict], mine: list[str], seconds: float, k: int, barrier=None
) -> dict[str, Any]:
    """One LDAP client: the mix of LDAP_MIX for `seconds`, once every client is ready."""
    rng = random.Random(k)
    rec = _Recorder()
    reader = _connect(ep["ldap_url"], ep["reader_dn"], ep["reader_password"])
    writer = _connect(ep["ldap_url"], ep["bind_dn"], ep["bind_password"])
    base = ep["base_dn"]
    if barrier is not None:
        barrier.wait(BARRIER_TIMEOUT)  # every client starts together, connected
    started = time.time()
    end, i = started + seconds, 0
    while time.time() < end:
        op = _pick(rng, LDAP_MIX)
        u = rng.choice(users)
        t0 = time.perf_counter()
        if op == "ldap.search.proxyAddresses":
            ok = reader.search(
                base, f"(proxyAddresses={escape_filter_chars(u['proxy'])})", SUBTREE,
                attributes=["mail", "displayName"],
            ) and len(reader.response) >= 1  # fmt: skip
        elif op == "ldap.search.mail":
            ok = reader.search(
                base, f"(mail={escape_filter_chars(u['mail'])})", SUBTREE,
                attributes=["proxyAddresses", "department"],
            ) and len(reader.response) >= 1  # fmt: skip
        elif op == "ldap.read.base":
            ok = reader.search(u["dn"], "(objectClass=*)", BASE, attributes=["*"])
        elif op == "ldap.paged.page":
            ok = reader.search(
                base, "(objectClass=user)", SUBTREE, attributes=["mail"], paged_size=PAGE
            )
            cookie = reader.result.get("controls", {}).get("1.2.840.113556.1.4.319", {})
            cookie = cookie.get("value", {}).get("cookie")
            if ok and cookie:  # abandon the rest: a zero-size page with the cookie
                reader.search(
                    base, "(objectClass=user)", SUBTREE, attributes=["mail"],
                    paged_size=0, paged_cookie=cookie,
                )  # fmt: skip
        else:
            dn = mine[i % len(mine)]
            ok = writer.modify(dn, {"extensionAttribute10": [(MODIFY_REPLACE, [f"load-{k}-{i}"])]})
        elapsed = time.perf_counter() - t0
        if ok:
            rec.ok(op, elapsed)
        else:
            conn = writer if op == "ldap.modify" else reader
            rec.error(op, str(conn.result))
        i += 1
    ended = time.time()
    reader.unbind()
    writer.unbind()
    return rec.result(started, ended)


def http_client(
    ep: dict[str, Any], ids: list[str], managed: list[str], seconds: float, k: int, barrier=None
) -> dict[str, Any]:
    """One HTTP client: the mix of HTTP_MIX for `seconds`, once every client is ready."""
    rng = random.Random(1000 + k)
    rec = _Recorder()
    c = JsonClient(ep["graph_url"], app_token(ep), app_token(ep, EXO_SCOPE))
    graph, invoke = ep["graph_url"], f"{ep['exo_url']}/InvokeCommand"
    prefer = {"Prefer": f"odata.maxpagesize={PAGE}"}
    delta = f"{graph}/v1.0/users/delta?$select=id,mail,proxyAddresses,onPremisesImmutableId"
    if barrier is not None:
        barrier.wait(BARRIER_TIMEOUT)  # every client starts together, connected
    started = time.time()
    end, i = started + seconds, 0
    while time.time() < end:
        op = _pick(rng, HTTP_MIX)
        t0 = time.perf_counter()
        if op == "graph.users.list":
            status, body = c.request("GET", f"{graph}/v1.0/users?$top={PAGE}")
        elif op == "graph.users.get":
            status, body = c.request("GET", f"{graph}/v1.0/users/{quote(rng.choice(ids))}")
        elif op == "graph.delta.page":
            status, body = c.request("GET", delta, headers=prefer)
            if status == 200:
                delta = body.get("@odata.nextLink") or body["@odata.deltaLink"]
        else:
            cmd = {"CmdletName": "Get-Mailbox", "Parameters": {"Identity": rng.choice(managed)}}
            if op == "exo.set_mailbox":
                cmd = {
                    "CmdletName": "Set-Mailbox",
                    "Parameters": {
                        "Identity": managed[(k + i * 7) % len(managed)],
                        "CustomAttribute2": f"load-{k}-{i}",
                    },
                }
            status, body = c.request("POST", invoke, {"CmdletInput": cmd})
        elapsed = time.perf_counter() - t0
        if status == 200:
            rec.ok(op, elapsed)
        else:
            rec.error(op, f"HTTP {status} {body}")
        i += 1
    ended = time.time()
    c.close()
    return rec.result(started, ended)


def _run_client(args: tuple[str, tuple]) -> dict[str, Any]:
    kind, params = args
    try:
        return (ldap_client if kind == "ldap" else http_client)(*params)
    except BaseException as e:  # a crashed client is an error of the run, not a hang
        barrier = params[-1]
        if barrier is not None:
            barrier.abort()
        return {"crashed": f"{kind} client: {type(e).__name__}: {e}"}


# --- memory ----------------------------------------------------------------------------------


def memory(pid: int) -> dict[str, float]:
    """VmRSS and VmHWM of `pid` in MB, from /proc."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = round(int(value.split()[0]) / 1024, 1)
    return out


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds `pid` used so far, from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class _Sampler(threading.Thread):
    def __init__(self, pid: int, every: float = 1.0) -> None:
        super().__init__(daemon=True)
        self.pid, self.every = pid, every
        self.samples: list[tuple[float, float]] = []  # (seconds since start, VmRSS MB)
        self.stop = threading.Event()
        self.t0 = time.time()

    def run(self) -> None:
        while not self.stop.wait(self.every):
            self.samples.append((round(time.time() - self.t0, 1), memory(self.pid)["VmRSS"]))


# --- the run ---------------------------------------------------------------------------------


def _percentile(values: list[float], q: float) -> float:
    k = min(len(values) - 1, max(0, round(q * (len(values) - 1))))
    return values[k]


def run_load(
    ep: dict[str, Any],
    server_pid: int,
    *,
    ldap_clients: int = 16,
    http_clients: int = 8,
    seconds: float = 60.0,
    max_growth_mb: float = 64.0,
) -> dict[str, Any]:
    """Run the clients against a serving tenant; the figures (see the module docstring)."""
    t = targets(ep)
    users, managed, ids = t["users"], t["managed"], t["ids"]
    if not managed or len(users) < ldap_clients:
        raise RuntimeError(f"too few targets: {len(users)} users, {len(managed)} managed")
    n = ldap_clients + http_clients
    ctx = multiprocessing.get_context("spawn")
    with ctx.Manager() as manager, ctx.Pool(n) as pool:
        barrier = manager.Barrier(n + 1)
        jobs = [
            ("ldap", (ep, users, [u["dn"] for u in users[k::ldap_clients]], seconds, k, barrier))
            for k in range(ldap_clients)
        ] + [("http", (ep, ids, managed, seconds, k, barrier)) for k in range(http_clients)]
        pending = pool.map_async(_run_client, jobs, chunksize=1)
        # A client that crashed before it started breaks the barrier; its result says why.
        with contextlib.suppress(threading.BrokenBarrierError):
            barrier.wait(BARRIER_TIMEOUT)  # the clients are connected: the load starts now
        start_at = time.time()
        before = memory(server_pid)
        cpu_before = cpu_seconds(server_pid)
        sampler = _Sampler(server_pid)
        sampler.t0 = start_at
        sampler.start()
        results = pending.get()
    sampler.stop.set()
    sampler.join()
    time.sleep(1.0)
    after = memory(server_pid)
    server_cpu = cpu_seconds(server_pid) - cpu_before

    out: dict[str, Any] = {
        "ldap_clients": ldap_clients,
        "http_clients": http_clients,
        "seconds": seconds,
        "cpus": os.cpu_count(),
        "operations": {},
        "errors": {},
        "first_errors": [],
    }
    lat: dict[str, list[float]] = {}
    for r in results:
        if "crashed" in r:
            out["errors"]["crashed"] = out["errors"].get("crashed", 0) + 1
            out["first_errors"].append(r["crashed"])
            continue
        for op, values in r["latencies"].items():
            lat.setdefault(op, []).extend(values)
        for op, count in r["errors"].items():
            out["errors"][op] = out["errors"].get(op, 0) + count
        out["first_errors"] += r["first_errors"]
    ran = [r for r in results if "started" in r]
    span = (max(r["ended"] for r in ran) - min(r["started"] for r in ran)) if ran else seconds
    out["late_start_s"] = round(max((r["started"] - start_at for r in ran), default=0.0), 2)
    out["wall_s"] = round(span, 2)
    out["server_cpu_pct"] = round(100 * server_cpu / span, 1)  # 100: one core busy all along
    for op in sorted(lat):
        v = sorted(lat[op])
        out["operations"][op] = {
            "count": len(v),
            "per_s": round(len(v) / span, 1),
            "p50_ms": round(_percentile(v, 0.50) * 1000, 2),
            "p95_ms": round(_percentile(v, 0.95) * 1000, 2),
            "p99_ms": round(_percentile(v, 0.99) * 1000, 2),
            "max_ms": round(v[-1] * 1000, 2),
        }
    total = sum(o["count"] for o in out["operations"].values())
    out["total"] = {"count": total, "per_s": round(total / span, 1)}
    samples = [s for s in sampler.samples if s[0] >= 0]
    half = [rss for at, rss in samples if at >= seconds / 2]
    growth = round(half[-1] - half[0], 1) if len(half) >= 2 else 0.0
    out["memory"] = {
        "before": before,
        "after": after,
        "peak_rss_mb": max((rss for _, rss in samples), default=after["VmRSS"]),
        "second_half_growth_mb": growth,
        "samples": samples,
    }
    out["failures"] = []
    if out["errors"]:
        out["failures"].append(f"{sum(out['errors'].values())} errors: {out['errors']}")
    if growth > max_growth_mb:
        out["failures"].append(
            f"server RSS grew {growth} MB over the second half (limit {max_growth_mb} MB)"
        )
    return out


def table(res: dict[str, Any]) -> str:
    rows = [
        f"{'operation':30} {'count':>8} {'per s':>8} {'p50':>8} {'p95':>8} {'p99':>8} {'max':>9}"
    ]
    for op, o in {**res["operations"], "total": res["total"]}.items():
        if op == "total":
            rows.append(f"{'total':30} {o['count']:>8} {o['per_s']:>8}")
            continue
        rows.append(
            f"{op:30} {o['count']:>8} {o['per_s']:>8} {o['p50_ms']:>8} {o['p95_ms']:>8} "
            f"{o['p99_ms']:>8} {o['max_ms']:>9}"
        )
    m = res["memory"]
    rows.append("latencies in ms")
    rows.append(
        f"server RSS: before {m['before']['VmRSS']} MB, peak {m['peak_rss_mb']} MB, after "
        f"{m['after']['VmRSS']} MB (HWM {m['after']['VmHWM']} MB); second-half growth "
        f"{m['second_half_growth_mb']} MB"
    )
    rows.append(
        f"{res['ldap_clients']} LDAP + {res['http_clients']} HTTP client processes, "
        f"{res['wall_s']} s, {res['cpus']} CPUs shared by clients and server (server CPU "
        f"{res['server_cpu_pct']}% of one core); errors: "
        f"{res['errors'] or 'none'}"
    )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mailboxes", type=int, default=200_000)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--ldap-clients", type=int, default=16)
    ap.add_argument("--http-clients", type=int, default=8)
    ap.add_argument("--max-growth-mb", type=float, default=64.0)
    ap.add_argument("--out", type=Path, help="write the figures here as JSON")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        epf = Path(tmp) / "endpoints.json"
        t0 = time.perf_counter()
        proc = spawn_serve(epf, "-n", str(args.mailboxes), "-q")
        ready_s = round(time.perf_counter() - t0, 1)
        try:
            ep = json.loads(epf.read_text())
            ready = memory(proc.pid)
            res = run_load(
                ep,
                proc.pid,
                ldap_clients=args.ldap_clients,
                http_clients=args.http_clients,
                seconds=args.seconds,
                max_growth_mb=args.max_growth_mb,
            )
        finally:
            proc.terminate()
            proc.wait(timeout=60)
    res = {"mailboxes": args.mailboxes, "serve_ready_s": ready_s, **res}
    res["memory"]["ready"] = ready
    print(table(res))
    for line in res["first_errors"]:
        print("error:", line)
    for line in res["failures"]:
        print("FAILED:", line)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(res, indent=2) + "\n")
    return 1 if res["failures"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
