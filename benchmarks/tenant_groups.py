"""What a tenant's AD groups cost: generate and seed the fake AD's store with and without them.

    python benchmarks/tenant_groups.py [--mailboxes 200000] [--rounds 3] [--knob NAME=VALUE ...]
                                       [--variants base,off,on --base-root DIR]

Each measurement runs in a fresh process: generate the tenant and seed
`mockservers.directory.seed.seed_directory` with it, as `exwb serve` starts, then drop the AD
model as serve does (it keeps the store and the mailboxes) and read the resident memory after a
full collection ("loaded_mib"), and again once the indexes serve makes while idle are made
("rss_mib", its steady state); the peak includes the model. The variants alternate (off, on,
off, on, ...) so that a machine busy with something else slows both alike; the medians and
their ratios are printed.
`--variants base,off,on --base-root DIR` adds a checkout without the groups (the commit
before them) as the first variant. Compare within one run, not across machines.
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

_CHILD = r"""
import gc, json, os, resource, sys, time
sys.path.insert(0, sys.argv[1])
from harness.tenant import TenantSpec, generate
from harness.tenant.names import name_pools
from mockservers.directory.seed import seed_directory

def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

knobs = json.loads(sys.argv[2])
name_pools()  # Faker's import is start-up cost of any variant
t0 = time.perf_counter()
tenant = generate(TenantSpec.from_mapping(knobs))
t1 = time.perf_counter()
seeded = seed_directory(tenant)
t2 = time.perf_counter()
groups = getattr(tenant, "groups", ())
counts = {"groups": len(groups), "members": sum(len(g.members) for g in groups)}
# What `exwb serve` keeps: the store and the cloud's mailboxes; the AD model goes.
mailboxes, groups = tenant.mailboxes, ()
del tenant
gc.collect()
loaded = rss()
# Then serve makes the ANR and prefix indexes while idle (Store.warm_steps): its steady state.
t3 = time.perf_counter()
for _ in getattr(seeded.store, "warm_steps", lambda: ())():
    pass
t4 = time.perf_counter()
gc.collect()
print(json.dumps({
    "generate_s": t1 - t0, "seed_s": t2 - t1, "total_s": t2 - t0, "warm_s": t4 - t3,
    "loaded_mib": loaded, "rss_mib": rss(),
    "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    "entries": len(seeded.store.entries), **counts,
}))
"""


def measure(root: Path, knobs: dict[str, Any]) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, str(root), json.dumps(knobs)],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mailboxes", type=int, default=200_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--knob", action="append", default=[], help="NAME=VALUE (JSON value)")
    ap.add_argument("--root", type=Path, default=ROOT, help="the checkout to measure")
    ap.add_argument(
        "--base-root", type=Path, help="the checkout `base` measures (one without the groups)"
    )
    ap.add_argument(
        "--variants",
        default="off,on",
        help="off (groups: false), on (the defaults), base (--base-root's defaults)",
    )
    args = ap.parse_args()
    extra = {k: json.loads(v) for k, _, v in (kv.partition("=") for kv in args.knob)}
    specs = {
        "base": {"mailboxes": args.mailboxes},  # no group knob: a checkout without them
        "off": {"mailboxes": args.mailboxes, **extra, "groups": False},
        "on": {"mailboxes": args.mailboxes, **extra},
    }
    variants = args.variants.split(",")
    if "base" in variants and args.base_root is None:
        ap.error("the base variant needs --base-root")
    results: dict[str, list[dict[str, float]]] = {v: [] for v in variants}
    for n in range(args.rounds):
        for v in variants:
            r = measure(args.base_root if v == "base" else args.root, specs[v])
            results[v].append(r)
            print(f"round {n + 1} {v:>4}: " + ", ".join(f"{k} {x:,.2f}" for k, x in r.items()))
    med = {v: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for v, rs in results.items()}
    print("\nmedians:")
    for v, m in med.items():
        print(f"  {v:>4}: " + ", ".join(f"{k} {x:,.2f}" for k, x in m.items()))
    pairs = list(itertools.pairwise(variants))
    if len(variants) > 2:
        pairs.append((variants[0], variants[-1]))
    for a, b in pairs:
        print(f"\n{b} / {a}:")
        for k in ("generate_s", "seed_s", "total_s", "warm_s", "loaded_mib", "rss_mib", "peak_mib"):
            print(f"  {k}: {med[b][k] / med[a][k]:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
