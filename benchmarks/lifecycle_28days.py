"""The served writeback job over 28 simulated days: what ~2,000 scheduled cycles cost.

    python benchmarks/lifecycle_28days.py [--mailboxes 20000] [--days 28] [--edits 3]
    python benchmarks/lifecycle_28days.py --profile /tmp/prof   # early and late windows

Serves a generated tenant in-process (fake AD over LDAP, fake cloud over HTTP, on the reactor
thread), installs a SimulatedClock, starts the served job (`exwb serve --writeback`,
harness.commands.served_job) on the documented 20-minute schedule, and advances the clock one
day at a time; each day an administrator edits `--edits` mailboxes at 09:30, 13:10 and 16:50
(and so on), so most cycles are no-change deltas and a few write. Prints the cycles run, the
total seconds, the initial cycle, the seconds per no-change delta cycle and per writing one,
and the peak RSS. Flatness: the median no-change cycle of the first 10% of cycles and of the
last 10%, and their ratio, measured within one run (the machine's noise cancels out); a ratio
well above 1 means something grows with the number of cycles run. Both in wall time (the
cycle's own seconds) and in this process's CPU time (both threads), which other processes'
load on a shared machine disturbs less; and the 10th percentile of each window, which that load
(it only ever adds time) disturbs least.

`--profile DIR` profiles the cycles of those two windows (the engine's thread, which runs the
cycles, and the reactor thread, which serves the fakes) and writes `early-engine.pstats`,
`late-engine.pstats`, `early-fakes.pstats` and `late-fakes.pstats` there, then prints the
functions whose own time grew most from the early window to the late one.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import resource
import shutil
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

WINDOW = 0.1  # the first and the last tenth of the cycles are compared


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


class WindowProfiler:
    """cProfile of the cycles in the first and the last WINDOW of `expected` cycles, on both
    the calling thread and the reactor thread (cProfile sees one thread each)."""

    def __init__(self, run: RunningTenant, expected: int) -> None:
        self.run = run
        self.early_end = max(1, int(expected * WINDOW))
        self.late_start = expected - self.early_end
        self.profiles = {
            f"{w}-{t}": cProfile.Profile() for w in ("early", "late") for t in ("engine", "fakes")
        }

    def window(self, index: int) -> str | None:
        if 1 <= index <= self.early_end:
            return "early"
        return "late" if index >= self.late_start else None

    def enable(self, window: str) -> None:
        self.run.call(self.profiles[f"{window}-fakes"].enable)
        self.profiles[f"{window}-engine"].enable()

    def disable(self, window: str) -> None:
        self.profiles[f"{window}-engine"].disable()
        self.run.call(self.profiles[f"{window}-fakes"].disable)

    def report(self, out: Path, cycles: tuple[int, int]) -> None:
        """Write the four pstats files; print the functions whose own time per cycle grew most."""
        out.mkdir(parents=True, exist_ok=True)
        for name, prof in self.profiles.items():
            prof.dump_stats(out / f"{name}.pstats")
        for thread in ("engine", "fakes"):
            per: list[dict[tuple[str, int, str], float]] = []
            for window, n in zip(("early", "late"), cycles, strict=True):
                st = pstats.Stats(self.profiles[f"{window}-{thread}"]).stats  # type: ignore[attr-defined]
                per.append({fn: row[2] / max(n, 1) for fn, row in st.items()})
            grown = sorted(
                ((per[1].get(fn, 0.0) - per[0].get(fn, 0.0), fn) for fn in per[0].keys() | per[1]),
                reverse=True,
            )[:12]
            print(f"{thread}: own time per cycle that grew most (early -> late, ms)")
            for delta, (file, line, name) in grown:
                before, after = (
                    per[0].get((file, line, name), 0.0),
                    per[1].get((file, line, name), 0.0),
                )
                print(
                    f"  {delta * 1000:+7.3f}  {before * 1000:7.3f} -> {after * 1000:7.3f}  "
                    f"{name} {Path(file).name}:{line}"
                )


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mailboxes", type=int, default=20_000)
    ap.add_argument("--days", type=int, default=28)
    ap.add_argument("--edits", type=int, default=3, help="admin edits per day")
    ap.add_argument("--seed", type=int, default=28)
    ap.add_argument("--profile", type=Path, metavar="DIR", help="profile early and late cycles")
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
    cpu: list[float] = []  # process CPU seconds per cycle, in the order of reports
    job_run = served.job.run
    expected = args.days * 24 * 3 + 1  # the 20-minute schedule, the initial cycle first
    profiler = WindowProfiler(run, expected) if args.profile else None
    profiled = {"early": 0, "late": 0}

    def recorded(mode: str = "delta") -> CycleReport:
        window = profiler.window(len(reports)) if profiler else None
        if profiler and window:
            profiler.enable(window)
            profiled[window] += 1
        try:
            before = time.process_time()
            reports.append(job_run(mode))  # every scheduled cycle's report (seconds, actions)
            cpu.append(time.process_time() - before)
        finally:
            if profiler and window:
                profiler.disable(window)
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
        shutil.rmtree(state_dir, ignore_errors=True)  # ~2,000 provisioning logs
    cycles = served.schedule.cycles
    later = reports[1:]  # after the initial cycle
    no_change = [r.seconds for r in later if not r.objects]
    tenth = max(1, int(len(later) * WINDOW))
    # (wall, CPU) seconds of the no-change cycles among the first and the last tenth
    timed = list(zip(later, cpu[1:], strict=True))
    first = [(r.seconds, c) for r, c in timed[:tenth] if not r.objects]
    last = [(r.seconds, c) for r, c in timed[-tenth:] if not r.objects]
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
    if first and last:
        for label, k in (("wall", 0), ("CPU", 1)):
            early, late = (statistics.median(x[k] for x in w) for w in (first, last))
            low = [statistics.quantiles([x[k] for x in w], n=10)[0] for w in (first, last)]
            print(
                f"no-change delta cycle ({label}), first {WINDOW:.0%} of cycles: median "
                f"{early * 1000:.1f} ms ({len(first)}); last {WINDOW:.0%}: median "
                f"{late * 1000:.1f} ms ({len(last)}); ratio last/first {late / early:.2f} "
                f"(10th percentile {low[0] * 1000:.1f} -> {low[1] * 1000:.1f} ms, "
                f"ratio {low[1] / low[0]:.2f})"
            )
    if writing:
        print(
            f"writing delta cycle: median {statistics.median(writing) * 1000:.1f} ms "
            f"({len(writing)} cycles)"
        )
    print(f"peak RSS {rss:,.0f} MiB")
    if profiler and args.profile:
        profiler.report(args.profile, (profiled["early"], profiled["late"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
