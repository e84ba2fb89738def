"""What tombstones and DirSync cost the store at scale, compared within one run.

    python benchmarks/tombstone_cost.py [--mailboxes 200000] [--deletes 2000]
    PYTHONPATH=<a checkout before tombstones> python benchmarks/tombstone_cost.py --baseline

(`--baseline` times only the two searches, with code that predates tombstones.)

Seeds a store, then times, before and after `--deletes` users become tombstones: a subtree
scan of the domain (every entry through the filter, as a non-indexed search walks it), an
indexed search (``(sAMAccountName=...)``, 200 look-ups), and the check every search now makes
for the show-deleted control; then the deletes themselves, a search with the control (the
tombstones in scope), and a DirSync round after 100 changes (from the USN log). Store-level:
the server's wire costs are the same with and without the feature.
"""

from __future__ import annotations

import argparse
import time

from harness.core.ber import SCOPE_SUBTREE
from harness.core.dn import normalize_dn
from harness.tenant import TenantSpec, generate
from mockservers.directory.seed import seed_directory
from mockservers.directory.store import MOD_REPLACE, Store


def timed(fn, repeat: int = 1) -> float:
    start = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - start) / repeat


def searches(store: Store, root_ndn: str, names: list[bytes]) -> dict[str, float]:
    root = store.entries[root_ndn]
    sam = store.schema.require("sAMAccountName")

    def scan() -> int:
        n = 0
        for e in store.scope_entries(root, SCOPE_SUBTREE):
            if e.attrs.get("objectClass") and e.attrs.get("sAMAccountName"):
                n += 1
        return n

    def indexed() -> None:
        for v in names:
            for e in store.lookup(sam, sam.key(v)):
                assert store.in_scope(e, root_ndn, SCOPE_SUBTREE)

    out = {"subtree scan (s)": timed(scan), "200 indexed look-ups (ms)": timed(indexed) * 1000}
    if hasattr(store, "deleted"):
        from mockservers.directory.tombstones import shows_deleted

        controls = [(b"1.2.840.113556.1.4.319", False, b"0\x05\x02\x01\x00\x04\x00")]
        out["show-deleted check per search (us)"] = (
            timed(lambda: shows_deleted(controls), 10000) * 1e6
        )
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mailboxes", type=int, default=200_000)
    ap.add_argument("--deletes", type=int, default=2_000)
    ap.add_argument("--baseline", action="store_true")
    args = ap.parse_args()
    t0 = time.perf_counter()
    tenant = generate(TenantSpec(mailboxes=args.mailboxes))
    seeded = seed_directory(tenant)
    store = seeded.store
    print(f"seeded {len(store.entries):,} entries in {time.perf_counter() - t0:.1f} s")
    root_ndn = normalize_dn(tenant.spec.base_dn)
    users = tenant.ad_users
    names = [u.sam_account_name.encode() for u in users[args.deletes : args.deletes + 200]]
    timed(lambda: searches(store, root_ndn, names))  # warm
    before = searches(store, root_ndn, names)
    if args.baseline:
        for key, value in before.items():
            print(f"{key:40} {value:9.3f}")
        return
    from mockservers.directory import dirsync
    from mockservers.directory.acl import AccessPolicy, Principal, Role

    victims = [normalize_dn(u.dn) for u in users[: args.deletes]]
    per_delete = timed(lambda: store.delete(victims.pop()), args.deletes) * 1000
    after = searches(store, root_ndn, names)
    for key in before:
        print(f"{key:40} before {before[key]:9.3f}  after {after[key]:9.3f}")
    print(f"{'delete, leaving a tombstone (ms)':40} {per_delete:9.3f}")
    shown = timed(lambda: store.deleted_in_scope(root_ndn, SCOPE_SUBTREE), 20) * 1000
    print(f"{'tombstones in scope, with 417 (ms)':40} {shown:9.3f}  ({len(store.deleted):,})")
    admin = Principal("CN=Administrator", "cn=administrator", "Administrator", Role.ADMIN)
    base = store.entries[root_ndn]

    def encode(e, dn, attrs) -> bytes:
        return dn.encode()

    def round_(cookie: bytes) -> tuple[int, bytes]:
        n, more = 0, True
        while more:
            req = dirsync.Request(0, 0, cookie)
            answer = dirsync.search(
                store, AccessPolicy(), admin, base, lambda e: True, [], req, encode, 1000
            )
            n += len(answer.entries)
            value = answer.control
            cookie = value[-dirsync._COOKIE.size :]
            more = b"\x02\x01\x01" in value[:40]
        return n, cookie

    t = time.perf_counter()
    full, cookie = round_(b"")
    print(f"{'DirSync full round (s)':40} {time.perf_counter() - t:9.3f}  ({full:,} objects)")
    for u in users[args.deletes + 300 : args.deletes + 400]:
        store.modify(normalize_dn(u.dn), [(MOD_REPLACE, "description", [b"changed"])])
    t = time.perf_counter()
    delta, _ = round_(cookie)
    print(f"{'DirSync after 100 changes (ms)':40} {(time.perf_counter() - t) * 1000:9.3f}"
          f"  ({delta} objects)")  # fmt: skip


if __name__ == "__main__":
    main()
