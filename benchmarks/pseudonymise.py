"""Benchmark the pseudonymiser: records per second over a generated tenant.

    python benchmarks/pseudonymise.py [--mailboxes 200000]

Generates the tenant, turns it into the AD, Exchange Online and Graph records the export
readers yield (as tests/imports/test_pseudonym.py does), then times pseudonymising them in
order (AD, then mailboxes, then Graph users) and reports records per CPU second and per wall
second, and peak RSS. On a shared machine the CPU figure is the one to compare.
"""

from __future__ import annotations

import argparse
import gc
import json
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness.tenant import TenantSpec, generate
from harness.tenant.imports.pseudo_names import name_data
from harness.tenant.imports.pseudonym import Pseudonymiser
from tests.imports.test_pseudonym import ad_records, graph_records, mailbox_records


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mailboxes", type=int, default=200_000)
    args = ap.parse_args()
    tenant = generate(TenantSpec(mailboxes=args.mailboxes))
    name_data()  # Faker's data: start-up cost, not per-record cost
    gc.collect()
    gc.disable()  # like the generator: the tables are acyclic, cyclic GC passes find nothing
    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    p = Pseudonymiser(bytes(range(32)))
    figures: dict[str, float] = {"mailboxes": args.mailboxes}
    wall_all, cpu_all, total = time.perf_counter(), time.process_time(), 0
    sides = (
        ("ad", ad_records, p.ad),
        ("mailboxes", mailbox_records, p.mailbox),
        ("graph", graph_records, p.graph_user),
    )
    for label, records, fn in sides:
        wall, cpu, n = time.perf_counter(), time.process_time(), 0
        for rec in records(tenant):  # built one at a time, as a streaming reader yields them
            fn(rec)
            n += 1
        figures[f"{label}_records"] = n
        figures[f"{label}_per_cpu_s"] = round(n / (time.process_time() - cpu))
        figures[f"{label}_per_wall_s"] = round(n / (time.perf_counter() - wall))
        total += n
    figures["all_records"] = total
    figures["all_cpu_s"] = round(time.process_time() - cpu_all, 2)
    figures["all_wall_s"] = round(time.perf_counter() - wall_all, 2)
    figures["tenant_rss_mib"] = round(base_rss)
    figures["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
