"""LDAP load functions for any directory URL, and a slapd reference run.

    python benchmarks/ldap_load.py --mailboxes 20000 [--no-durable] [--seconds 10]

`modify_throughput` and `paged_read_time` work against any LDAP server (slapd here, the fake
directory later), so the same numbers can be compared. The ``__main__`` run generates a tenant
into a temporary directory, loads it into a throwaway slapd (tests/support/slapd.py) and prints
modify throughput with 1 and 4 clients and the time to page through every user.

Clients use ldap3, synchronously, one connection each; several clients run in separate
processes so that the client's CPU (ldap3 costs ~0.7 ms per modify) is not one GIL's worth.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import queue
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, NamedTuple

from ldap3 import MODIFY_REPLACE, NONE, SUBTREE, Connection, Server

BARRIER_TIMEOUT = 120.0  # seconds for every client to connect and bind


class PagedRead(NamedTuple):
    seconds: float
    entries: int


def _connect(url: str, bind_dn: str, password: str) -> Connection:
    conn = Connection(Server(url, get_info=NONE), user=bind_dn, password=password)
    if not conn.bind():
        raise RuntimeError(f"bind as {bind_dn} to {url} failed: {conn.result}")
    return conn


def _modify_loop(
    url: str,
    bind_dn: str,
    password: str,
    dns: list[str],
    attribute: str,
    tag: str,
    count: int | None,
    seconds: float | None,
    barrier: Any = None,
) -> dict[str, Any]:
    """One client: modify-replace `attribute` on `dns` in turn; returns counts and latencies."""
    conn = _connect(url, bind_dn, password)
    if barrier is not None:
        barrier.wait(BARRIER_TIMEOUT)  # every client starts together, after connecting
    latencies: list[float] = []
    errors, first_error = 0, None
    start_wall = time.time()
    start = time.perf_counter()
    deadline = start + seconds if seconds is not None else None
    i = 0
    while True:
        if count is not None and i >= count:
            break
        if deadline is not None and time.perf_counter() >= deadline:
            break
        dn = dns[i % len(dns)]
        t0 = time.perf_counter()
        # A fresh value every time, so that each operation really changes the entry.
        ok = conn.modify(dn, {attribute: [(MODIFY_REPLACE, [f"{tag}-{i}"])]})
        latencies.append(time.perf_counter() - t0)
        if not ok:
            errors += 1
            first_error = first_error or f"{dn}: {conn.result}"
        i += 1
    end_wall = time.time()
    conn.unbind()
    return {
        "operations": i,
        "errors": errors,
        "first_error": first_error,
        "start": start_wall,
        "end": end_wall,
        "latencies": latencies,
    }


def _worker(args: tuple, barrier: Any, results: Any) -> None:
    try:
        results.put(_modify_loop(*args, barrier=barrier))
    except BaseException as e:  # reported to the parent; a silent child would hang it
        results.put({"exception": f"{type(e).__name__}: {e}"})
        if barrier is not None:
            barrier.abort()


def _percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    k = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[k]


def modify_throughput(
    url: str,
    bind_dn: str,
    password: str,
    dns: list[str],
    attribute: str,
    clients: int,
    seconds_or_count: float | int,
) -> dict[str, Any]:
    """Measure modify-replace operations per second on `dns` with `clients` ldap3 clients.

    `seconds_or_count`: a float runs every client for that many seconds; an int is the total
    number of modifies, shared among the clients. `dns` is split into disjoint slices, one per
    client, so no two clients modify the same entry; each client cycles through its slice.
    Returns clients, operations, errors, seconds (first start to last end), ops_per_second,
    latency_ms (p50, p95, p99, max) and first_error.
    """
    if clients < 1:
        raise ValueError("clients must be at least 1")
    if len(dns) < clients:
        raise ValueError(f"need at least one DN per client ({len(dns)} DNs, {clients} clients)")
    if isinstance(seconds_or_count, bool) or seconds_or_count <= 0:
        raise ValueError("seconds_or_count must be a positive duration or count")
    seconds = float(seconds_or_count) if isinstance(seconds_or_count, float) else None
    total = seconds_or_count if isinstance(seconds_or_count, int) else None
    slices = [dns[c::clients] for c in range(clients)]
    counts: list[int | None] = (
        [total // clients + (1 if c < total % clients else 0) for c in range(clients)]
        if total is not None
        else [None] * clients
    )
    tag = f"bench-{os.getpid()}-{time.time_ns()}"
    jobs = [
        (url, bind_dn, password, slices[c], attribute, f"{tag}-{c}", counts[c], seconds)
        for c in range(clients)
    ]
    # One client runs in this process: no start-up cost, and the same code path otherwise.
    outcomes = [_modify_loop(*jobs[0])] if clients == 1 else _run_processes(jobs)
    failed = [o["exception"] for o in outcomes if "exception" in o]
    if failed:
        raise RuntimeError("load client failed: " + "; ".join(failed))
    operations = sum(o["operations"] for o in outcomes)
    span = max(o["end"] for o in outcomes) - min(o["start"] for o in outcomes)
    latencies = sorted(x for o in outcomes for x in o["latencies"])
    return {
        "clients": clients,
        "operations": operations,
        "errors": sum(o["errors"] for o in outcomes),
        "first_error": next((o["first_error"] for o in outcomes if o["first_error"]), None),
        "seconds": span,
        "ops_per_second": operations / span if span > 0 else float("nan"),
        "latency_ms": {
            "p50": _percentile(latencies, 0.50) * 1000,
            "p95": _percentile(latencies, 0.95) * 1000,
            "p99": _percentile(latencies, 0.99) * 1000,
            "max": (latencies[-1] if latencies else float("nan")) * 1000,
        },
    }


def _run_processes(jobs: list[tuple]) -> list[dict[str, Any]]:
    # spawn, not fork: the caller may have threads (pytest, Twisted) that fork would copy.
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(len(jobs))
    results = ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(job, barrier, results)) for job in jobs]
    for p in procs:
        p.start()
    outcomes: list[dict[str, Any]] = []
    try:
        while len(outcomes) < len(procs):
            try:
                outcomes.append(results.get(timeout=1.0))
            except queue.Empty:
                if all(not p.is_alive() for p in procs) and results.empty():
                    missing = len(procs) - len(outcomes)
                    raise RuntimeError(f"{missing} load client(s) died without a result") from None
    finally:
        for p in procs:
            p.join(timeout=10)
            if p.is_alive():
                p.terminate()
                p.join()
    return outcomes


def paged_read_time(
    url: str,
    bind_dn: str,
    password: str,
    base: str,
    filter: str,
    attributes: list[str],
    page_size: int = 1000,
) -> PagedRead:
    """Seconds to read every entry matching `filter` under `base` with ldap3's paged search."""
    conn = _connect(url, bind_dn, password)
    try:
        start = time.perf_counter()
        entries = 0
        for e in conn.extend.standard.paged_search(
            base, filter, SUBTREE, attributes=attributes, paged_size=page_size, generator=True
        ):
            if e.get("type") == "searchResEntry":
                entries += 1
        elapsed = time.perf_counter() - start
        if conn.result.get("result") not in (0, None):
            raise RuntimeError(f"paged search failed: {conn.result}")
    finally:
        conn.unbind()
    return PagedRead(elapsed, entries)


# ---------------------------------------------------------------------------- reference run
def _slapd_version() -> str:
    from tests.support.slapd import find_slapd

    slapd = find_slapd()
    if slapd is None:
        return "slapd not installed"
    out = subprocess.run([slapd, "-VV"], capture_output=True, text=True, check=False)
    first = (out.stderr or out.stdout).strip().splitlines()
    return first[0].strip() if first else slapd


def _fmt_modify(label: str, r: dict[str, Any]) -> str:
    lat = r["latency_ms"]
    return (
        f"{label:<28} {r['ops_per_second']:>9,.0f} ops/s  ({r['operations']:,} ops in "
        f"{r['seconds']:.1f} s, errors {r['errors']}; latency p50 {lat['p50']:.2f} ms, "
        f"p99 {lat['p99']:.2f} ms)"
    )


def main(argv: list[str] | None = None) -> int:
    """Generate a tenant, load it into slapd and print modify and paged-read figures."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--mailboxes", type=int, default=20_000)
    ap.add_argument(
        "--durable",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="flush every commit to disk (default); --no-durable sets slapd's dbnosync",
    )
    ap.add_argument("--seconds", type=float, default=10.0, help="duration of each modify run")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)

    # Run as a script, sys.path[0] is benchmarks/; the slapd helper lives in the tests package.
    root = Path(__file__).resolve().parents[1]
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    from harness.tenant import TenantSpec, generate
    from harness.tenant.files import LDIF_NAME, write_tenant
    from tests.support.slapd import running_slapd

    print(
        f"# python benchmarks/ldap_load.py {' '.join(argv if argv is not None else sys.argv[1:])}"
    )
    print(
        f"# {_slapd_version()}; {platform.python_implementation()} {platform.python_version()}; "
        f"{os.cpu_count()} CPUs; durable={args.durable}"
    )
    with tempfile.TemporaryDirectory(prefix="exwb-ldap-load-") as tmp:
        t0 = time.perf_counter()
        tenant = generate(TenantSpec(mailboxes=args.mailboxes, seed=args.seed))
        write_tenant(tenant, Path(tmp))
        t1 = time.perf_counter()
        print(f"generate + write {len(tenant.ad_users):,} AD users: {t1 - t0:.1f} s")
        dns = [u.dn for u in tenant.ad_users]
        base, category = tenant.base_dn, tenant.object_category_person
        del tenant  # the generator's objects are not needed while measuring
        with running_slapd(Path(tmp) / LDIF_NAME, base, durable=args.durable) as info:
            t2 = time.perf_counter()
            print(f"slapadd + start slapd: {t2 - t1:.1f} s")
            auth = (info.url, info.admin_dn, info.admin_password)
            for clients in (1, 4):
                r = modify_throughput(
                    *auth, dns, "extensionAttribute1", clients, float(args.seconds)
                )
                print(_fmt_modify(f"modify, {clients} client(s)", r))
                if r["first_error"]:
                    print(f"  first error: {r['first_error']}")
            read = paged_read_time(
                *auth,
                base,
                f"(&(objectClass=user)(objectCategory={category}))",
                ["sAMAccountName", "mail", "proxyAddresses"],
            )
            print(
                f"{'paged read, 1 client':<28} {read.seconds:>9.1f} s  ({read.entries:,} entries, "
                f"{read.entries / read.seconds:,.0f} entries/s, page size 1000)"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
