"""The served writeback job over 28 simulated days: what ~2,000 scheduled cycles cost.

    python benchmarks/lifecycle_28days.py [--mailboxes 20000] [--days 28] [--edits 3]
    python -m cProfile -s cumulative benchmarks/lifecycle_28days.py --days 2

Serves a generated tenant in-process (fake AD over LDAP, fake cloud over HTTP, on the reactor
thread), installs a SimulatedClock, starts the served job (`exwb serve --writeback`,
harness.commands.served_job) on the documented 20-minute schedule, and advances the clock one
day at a time; each day an administrator edits `--edits` mailboxes at 09:30, 13:10 and 16:50
(and so on), so most cycles are no-change deltas and a few write. Prints the cycles run, the
total seconds, the initial cycle, the seconds per no-change delta cycle (median of the cycles
the job's history keeps each day) and per writing one, and the peak RSS.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness.cli import build_parser
from harness.commands import served_job
from harness.core import clock
from harness.core.clock import SimulatedClock
from harness.engine.cycle import CycleReport
from harness.tenant import TenantSpec, generate
from mockservers.runtime import RunningTenant, start_tenant


def edit_at(run: RunningTenant, sim: SimulatedClock, ids: list[str], day: int, n: int) -> None:
    """Schedule the day's `n` admin edits (CustomAttribute3 of successive mailboxes)."""
    store = run.cloud.store if run.cloud is not None else None
    assert store is not None
    midnight = sim.now().replace(hour=0, minute=0, second=0)
    for k in range(n):
        when = midnight + timedelta(hours=9, minutes=30 + 220 * k)
        mbx_id = ids[(day * n + k) % len(ids)]

        def change(mbx_id: str = mbx_id, value: str = f"day {day} edit {k}") -> None:
            current = run.call(store.get, mbx_id)
            attrs = (*current.custom_attributes[:2], value, *current.custom_attributes[3:])
            run.call(store.update, mbx_id, {"custom_attributes": attrs})

        sim.call_at(when, change)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mailboxes", type=int, default=20_000)
    ap.add_argument("--days", type=int, default=28)
    ap.add_argument("--edits", type=int, default=3, help="admin edits per day")
    ap.add_argument("--seed", type=int, default=28)
    args = ap.parse_args()

    t0 = time.perf_counter()
    tenant = generate(TenantSpec(mailboxes=args.mailboxes, seed=args.seed))
    run = start_tenant(tenant)
    managed = [m.id for m in tenant.mailboxes if m.is_exchange_cloud_managed and m.is_dir_synced]
    del tenant
    print(f"tenant of {args.mailboxes:,} mailboxes served in {time.perf_counter() - t0:.1f} s")

    sim = SimulatedClock()
    previous = clock.install(sim)
    state_dir = Path(tempfile.mkdtemp(prefix="exwb-28days-"))
    serve_args = build_parser().parse_args(["serve", "--writeback", "--job-state", str(state_dir)])
    served = served_job.start(run.endpoints, serve_args)
    assert served is not None
    reports: list[CycleReport] = []
    job_run = served.job.run

    def recorded(mode: str = "delta") -> CycleReport:
        reports.append(job_run(mode))  # every scheduled cycle's report (seconds, actions)
        return reports[-1]

    served.job.run = recorded  # type: ignore[method-assign]
    try:
        t = time.perf_counter()
        sim.advance(timedelta(0))
        initial = time.perf_counter() - t
        print(f"initial cycle {initial:.1f} s")
        started = time.perf_counter()
        for day in range(args.days):
            edit_at(run, sim, managed, day, args.edits)
            sim.advance(timedelta(days=1))
        total = time.perf_counter() - started
    finally:
        served.stop()
        clock.install(previous)
        run.stop()
    cycles = served.schedule.cycles
    later = reports[1:]  # after the initial cycle
    no_change = [r.seconds for r in later if not r.objects]
    writing = [r.seconds for r in later if r.actions.get("Update")]
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"{args.days} days: {cycles:,} cycles in {total:.1f} s "
        f"({total / cycles * 1000:.1f} ms each)"
    )
    print(f"failed scheduled cycles: {len(served.schedule.failures)}")
    if no_change:
        print(
            f"no-change delta cycle: median {statistics.median(no_change) * 1000:.1f} ms, "
            f"max {max(no_change) * 1000:.1f} ms, first {no_change[0] * 1000:.1f} ms, "
            f"last {no_change[-1] * 1000:.1f} ms ({len(no_change):,} cycles)"
        )
    if writing:
        print(
            f"writing delta cycle: median {statistics.median(writing) * 1000:.1f} ms "
            f"({len(writing)} cycles)"
        )
    print(f"peak RSS {rss:,.0f} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
