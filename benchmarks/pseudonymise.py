"""Benchmark the pseudonymiser: records per second over a generated tenant.

    python benchmarks/pseudonymise.py [--mailboxes 200000]

Generates the tenant, turns it into the AD, Exchange Online and Graph records the export
readers yield (as tests/imports/test_pseudonym.py does), then times pseudonymising them in
order (AD, then mailboxes, then Graph users) and reports records/s and peak RSS. Figures are
wall time on this machine; compare ratios within one run, not numbers across machines.
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

from harness.tenant import TenantSpec, generate  # noqa: E402
from harness.tenant.imports.pseudo_names import name_data  # noqa: E402
from harness.tenant.imports.pseudonym import Pseudonymiser  # noqa: E402
from tests.imports.test_pseudonym import tenant_records  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mailboxes", type=int, default=200_000)
    args = ap.parse_args()
    tenant = generate(TenantSpec(mailboxes=args.mailboxes))
    ad, exo, graph = tenant_records(tenant)
    del tenant
    name_data()  # Faker's data: start-up cost, not per-record cost
    gc.collect()
    gc.disable()  # like the generator: the tables are acyclic, cyclic GC passes find nothing
    p = Pseudonymiser(bytes(range(32)))
    figures: dict[str, float] = {}
    total = 0
    t_all = time.perf_counter()
    for label, records, fn in (
        ("ad", ad, p.ad),
        ("mailboxes", exo, p.mailbox),
        ("graph", graph, p.graph_user),
    ):
        t0 = time.perf_counter()
        for rec in records:
            fn(rec)  # type: ignore[operator]
        dt = time.perf_counter() - t0
        figures[f"{label}_records"] = len(records)
        figures[f"{label}_per_s"] = round(len(records) / dt)
        total += len(records)
    dt = time.perf_counter() - t_all
    figures["all_records"] = total
    figures["all_seconds"] = round(dt, 2)
    figures["all_per_s"] = round(total / dt)
    figures["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
