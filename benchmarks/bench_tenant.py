"""Benchmark the tenant generator and file export at several sizes, one process per size.

    python benchmarks/bench_tenant.py [--sizes 10000,200000] [--out results/bench-tenant]

Prints a table and writes results/bench-tenant/bench.json. Figures are wall time on this machine;
compare ratios within one run, not numbers across machines.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def rss_mib() -> float:
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def measure(size: int) -> dict[str, float]:
    """Run in a fresh process: generate, then write the files, reporting time and memory."""
    from harness.tenant import TenantSpec, generate
    from harness.tenant.files import write_tenant
    from harness.tenant.names import name_pools

    name_pools()  # Faker import and pool building are start-up cost, not per-tenant cost
    base = rss_mib()
    t0 = time.perf_counter()
    tenant = generate(TenantSpec(mailboxes=size))
    t1 = time.perf_counter()
    gc.collect()
    model = rss_mib()
    with tempfile.TemporaryDirectory() as d:
        written = write_tenant(tenant, Path(d))
        t2 = time.perf_counter()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "mailboxes": size,
        "generate_s": round(t1 - t0, 2),
        "write_s": round(t2 - t1, 2),
        "rss_model_mib": round(model, 1),
        "model_mib_above_start": round(model - base, 1),
        "peak_rss_mib": round(peak, 1),
        "ldif_mib": round(written["directory.ldif"].bytes / 2**20, 1),
        "jsonl_mib": round(written["cloud.jsonl"].bytes / 2**20, 1),
    }


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="10000,50000,200000")
    ap.add_argument("--out", type=Path, default=Path("results/bench-tenant"))
    ap.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(measure(args.one)))
        return 0
    rows = []
    for size in (int(s) for s in args.sizes.split(",")):
        res = subprocess.run(
            [sys.executable, __file__, "--one", str(size)],
            capture_output=True,
            text=True,
            check=True,
        )
        rows.append(json.loads(res.stdout.strip().splitlines()[-1]))
        r = rows[-1]
        print(
            f"{size:>8,} mailboxes: generate {r['generate_s']:6.2f} s  "
            f"write {r['write_s']:6.2f} s  "
            f"RSS {r['rss_model_mib']:7.1f} MiB (model {r['model_mib_above_start']:.1f})  "
            f"peak {r['peak_rss_mib']:7.1f} MiB  LDIF {r['ldif_mib']} MiB",
            flush=True,
        )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bench.json").write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
