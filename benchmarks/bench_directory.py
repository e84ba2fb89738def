"""Benchmark the fake AD against OpenLDAP slapd on the same tenant, in one run.

    python benchmarks/bench_directory.py --mailboxes 200000 [--seconds 10] [--out DIR]

Measures, for the fake (`exwb serve` in its own process) and for a throwaway slapd (mdb,
durable) loaded with the same generated LDIF: start-up, resident memory, server CPU per
base-object and per indexed-equality search, the time for ldap3 to page through every user,
and modify-replace throughput with one and with four ldap3 clients. Compare within one run.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from ldap3 import BASE, NONE, SUBTREE, Connection, Server

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.ldap_load import modify_throughput, paged_read_time
from harness.tenant import TenantSpec, generate
from harness.tenant.files import write_tenant
from mockservers.runtime import spawn_serve
from tests.support.slapd import running_slapd, slapd_available

PEOPLE = "(objectClass=user)"  # slapd has no objectCategory shorthand
TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def rss_mib(pid: int) -> tuple[float, float]:
    status = Path(f"/proc/{pid}/status").read_text()
    get = lambda key: int(re.search(rf"{key}:\s+(\d+) kB", status).group(1)) / 1024  # noqa: E731
    return get("VmRSS"), get("VmHWM")


def server_cpu_per_op(pid: int, conn: Connection, op: Any, n: int = 2000) -> float:
    """Microseconds of server CPU per operation (client waits for each reply)."""
    before = cpu_seconds(pid)
    for i in range(n):
        op(i)
    return (cpu_seconds(pid) - before) / n * 1e6


def measure(
    name: str,
    pid: int,
    url: str,
    bind_dn: str,
    password: str,
    base: str,
    users: list,
    seconds: float,
) -> dict[str, Any]:
    conn = Connection(Server(url, get_info=NONE), bind_dn, password, auto_bind=True)
    dns = [u.dn for u in users if u.target_address]
    res: dict[str, Any] = {"server": name}
    res["rss_mib"], res["peak_rss_mib"] = rss_mib(pid)

    def base_search(i: int) -> None:
        conn.search(dns[i * 7 % len(dns)], "(objectClass=*)", BASE, attributes=["mail"])

    def indexed_search(i: int) -> None:
        mail = users[i * 13 % len(users)].mail
        conn.search(base, f"(proxyAddresses=SMTP:{mail})", SUBTREE, attributes=["mail"])

    res["base_search_us_cpu"] = server_cpu_per_op(pid, conn, base_search)
    res["indexed_eq_us_cpu"] = server_cpu_per_op(pid, conn, indexed_search)
    conn.unbind()
    read = paged_read_time(
        url, bind_dn, password, base, PEOPLE, ["sAMAccountName", "mail", "proxyAddresses"]
    )
    res["page_all_users_s"], res["paged_entries"] = round(read.seconds, 1), read.entries
    for clients in (1, 4):
        before = cpu_seconds(pid)
        r = modify_throughput(url, bind_dn, password, dns, "extensionAttribute1", clients, seconds)
        res[f"modify_{clients}c_ops"] = round(r["ops_per_second"])
        res[f"modify_{clients}c_server_us_cpu"] = round(
            (cpu_seconds(pid) - before) / max(1, r["operations"]) * 1e6
        )
        res[f"modify_{clients}c_errors"] = r["errors"]
    res["rss_after_mib"], res["peak_rss_mib"] = rss_mib(pid)
    return {k: round(v, 1) if isinstance(v, float) else v for k, v in res.items()}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mailboxes", type=int, default=200_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--out", type=Path, default=Path("results/bench-directory"))
    args = ap.parse_args()
    spec = TenantSpec(mailboxes=args.mailboxes, seed=args.seed)
    tenant = generate(spec)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        endpoints = Path(tmp) / "endpoints.json"
        t0 = time.perf_counter()
        proc = spawn_serve(endpoints, "-n", str(args.mailboxes), "-s", str(args.seed))
        ready = time.perf_counter() - t0
        banner = proc.stdout.readline().strip()
        ep = json.loads(endpoints.read_text())
        fake = measure(
            "fake AD",
            proc.pid,
            ep["ldap_url"],
            ep["admin_dn"],
            ep["admin_password"],
            ep["base_dn"],
            tenant.ad_users,
            args.seconds,
        )
        fake["startup_s"] = round(ready, 1)
        fake["banner"] = banner
        proc.terminate()
        proc.wait(timeout=60)
        rows.append(fake)
        if slapd_available():
            write_tenant(tenant, Path(tmp) / "t")
            t0 = time.perf_counter()
            with running_slapd(Path(tmp) / "t" / "directory.ldif", spec.base_dn) as s:
                ready = time.perf_counter() - t0
                ref = measure(
                    "OpenLDAP slapd (mdb, durable)",
                    s.pid,
                    s.url,
                    s.admin_dn,
                    s.admin_password,
                    s.base_dn,
                    tenant.ad_users,
                    args.seconds,
                )
                ref["startup_s"] = round(ready, 1)
                rows.append(ref)
    keys = [k for k in rows[0] if k not in ("server", "banner")]
    print(f"{'':34}" + "".join(f"{r['server'][:28]:>30}" for r in rows))
    for k in keys:
        print(f"{k:34}" + "".join(f"{r.get(k, '')!s:>30}" for r in rows))
    if len(rows) == 2:
        for k in ("modify_1c_ops", "modify_4c_ops"):
            print(f"ratio fake/slapd {k}: {rows[0][k] / max(1, rows[1][k]):.2f}")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"bench-{args.mailboxes}.json").write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
