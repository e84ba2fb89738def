"""What change notification's store hook costs a write, before and after, in one run.

    python benchmarks/notify_hook.py --before REV [--mailboxes 200000] [--modifies 20000]

Seeds one store with a generated tenant, then times `Store.modify` (a description replace on
distinct users) in alternating rounds: with the store class of git revision REV (before the
hook), with today's and nobody listening (`watch` is None), with one notification search open
on an OU the writes are not in, and with one subtree search of the domain root that sees every
write (its delivery a no-op, so only the hook and the audience walk are timed). The same entry
objects serve every round: the classes differ only in their code.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import subprocess
import sys
import time
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from harness.core.ber import SCOPE_BASE, SCOPE_SUBTREE  # noqa: E402
from harness.core.dn import normalize_dn  # noqa: E402
from harness.tenant import TenantSpec, generate  # noqa: E402
from mockservers.directory import store as store_now  # noqa: E402
from mockservers.directory.notify import Notifier, Subscription  # noqa: E402
from mockservers.directory.seed import seed_directory  # noqa: E402


def store_class_at(rev: str) -> type:
    """The Store class as mockservers/directory/store.py was at `rev`."""
    source = subprocess.run(
        ["git", "-C", str(ROOT), "show", f"{rev}:mockservers/directory/store.py"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    module = types.ModuleType("mockservers.directory._store_before")
    module.__dict__["__name__"] = module.__name__
    exec(compile(source, f"{rev}:store.py", "exec"), module.__dict__)
    return module.Store


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", required=True, help="git revision of the store before")
    parser.add_argument("--mailboxes", type=int, default=200_000)
    parser.add_argument("--modifies", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    t = time.perf_counter()
    tenant = generate(TenantSpec(mailboxes=args.mailboxes, seed=1))
    seeded = seed_directory(tenant)
    store = seeded.store
    print(f"seeded {len(store.entries):,} entries in {time.perf_counter() - t:.1f} s")
    users = [normalize_dn(u.dn) for u in tenant.ad_users][: args.modifies]
    before, after = store_class_at(args.before), store_now.Store
    base = normalize_dn(tenant.spec.base_dn)
    elsewhere = next(e for e in store.entries.values() if e.ndn.startswith("cn=users,"))

    def listen(kind: str) -> Notifier | None:
        if kind in ("before", "nobody"):
            store.watch = None
            return None
        notifier = Notifier(store)
        if kind == "elsewhere":
            target, scope = elsewhere, SCOPE_BASE
        else:
            target, scope = store.entries[base], SCOPE_SUBTREE
        notifier.open(Subscription(1, target, scope, lambda sub, e: None))
        return notifier

    kinds = ("before", "nobody", "elsewhere", "domain subtree")
    timings: dict[str, list[float]] = {k: [] for k in kinds}
    for r in range(args.rounds):
        for kind in kinds:
            store.__class__ = before if kind == "before" else after
            listen(kind)
            value = f"round {r} {kind}".encode()
            gc.collect()
            t = time.perf_counter()
            for ndn in users:
                store.modify(ndn, [(2, "description", [value])])
            timings[kind].append((time.perf_counter() - t) / len(users) * 1e6)
            store.watch = None
    print(f"{len(users):,} modifies per round, {args.rounds} rounds (median, min) µs/modify:")
    for kind in kinds:
        print(f"  {kind:15s} {statistics.median(timings[kind]):6.2f}  {min(timings[kind]):6.2f}")


if __name__ == "__main__":
    main()
