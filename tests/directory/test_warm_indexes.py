"""The ANR and initial-substring indexes made a slice at a time while the server is idle
(`Store.warm_steps`, `mockservers.idle.IdleWork`) hold what indexes made at once hold, whatever
writes come between the slices."""

from __future__ import annotations

import itertools
import time

import pytest
from ldap3 import NONE, Connection, Server
from twisted.internet.task import Clock

from harness.core.adschema import DEFAULT_SCHEMA
from harness.core.dn import normalize_dn
from harness.tenant import TenantSpec, generate
from mockservers import idle
from mockservers.directory import ordered_keys
from mockservers.directory import store as store_module
from mockservers.directory.seed import seed_directory
from mockservers.directory.store import MOD_ADD, MOD_DELETE, MOD_REPLACE, Store
from mockservers.runtime import start_directory

SPEC = TenantSpec(mailboxes=150, seed=8, special_cn_fraction=0.2, non_ascii_fraction=0.2)
PREFIXED = [t for t in DEFAULT_SCHEMA if t.prefix_indexed]


@pytest.fixture
def small_steps(monkeypatch):
    # Slices of a few entries and keys, so that writes fall between many of them.
    monkeypatch.setattr(store_module, "_WARM_STEP", 7)
    monkeypatch.setattr(ordered_keys, "_STEP", 11)


def _writes(store: Store, tenant, n: int):
    """A different write each time it is resumed: adds, renames, deletes and modifies of the
    attributes being indexed."""
    users = [normalize_dn(u.dn) for u in tenant.ad_users]
    ou = tenant.ous[0].dn
    for i in itertools.count():
        ndn = users[i % len(users)]
        if store.get(ndn) is None and i % 6 != 2:  # deleted or renamed by an earlier write
            yield
            continue
        match i % 6:
            case 0:
                store.modify(ndn, [(MOD_REPLACE, "displayName", [f"Zed Warm {i}".encode()])])
            case 1:
                store.modify(ndn, [(MOD_ADD, "proxyAddresses", [f"smtp:warm{i}@x.test".encode()])])
            case 2:
                store.add(
                    f"CN=Warm {i},{ou}",
                    [
                        ("objectClass", [b"top", b"person", b"organizationalPerson", b"user"]),
                        ("cn", [f"Warm {i}".encode()]),
                        ("sn", [f"Warmsn{i}".encode()]),
                        ("displayName", [f"Warm display {i}".encode()]),
                    ],
                )
            case 3:
                store.delete(ndn)
            case 4:
                e = store.get(ndn)
                if e is not None and e.attrs.get("sn"):
                    store.modify(ndn, [(MOD_DELETE, "sn", list(e.attrs["sn"]))])
            case 5:
                store.rename(ndn, f"CN=Renamed {i}", True, None)
        yield


def _state(store: Store) -> dict[str, tuple[dict, list]]:
    """Each prefix-indexed attribute's equality index (key -> DNs) and ordered keys."""
    out = {}
    for t in PREFIXED:
        idx = store._index_of(t)
        ordered = store._ordered[t.name]
        if not ordered.built:
            ordered.build(k for k in idx if isinstance(k, str))
        hits = {
            k: sorted(e.ndn for e in ((v,) if not isinstance(v, set) else v))
            for k, v in idx.items()
        }
        out[t.name] = (hits, [k for c in ordered.chunks for k in c])
    return out


@pytest.mark.parametrize("every", [1, 3])
def test_warming_between_writes_gives_the_indexes_made_at_once(small_steps, every):
    tenant = generate(SPEC)
    warmed, cold = seed_directory(tenant).store, seed_directory(tenant).store
    on_warmed, on_cold = _writes(warmed, tenant, 0), _writes(cold, tenant, 0)
    steps = 0
    for steps, _ in enumerate(warmed.warm_steps(), 1):
        if steps % every == 0:
            next(on_warmed)
            next(on_cold)
    assert steps > 200  # many slices, so many writes fell between them
    assert not warmed._warming and not warmed._partial
    for _ in range(30):  # and after: the made indexes are kept up to date
        next(on_warmed)
        next(on_cold)
    assert _state(warmed) == _state(cold)


def test_a_search_before_warming_ends_finishes_it_first(small_steps):
    tenant = generate(SPEC)
    store = seed_directory(tenant).store
    steps = store.warm_steps()
    while "displayName" not in store._partial:
        next(steps)
    t = DEFAULT_SCHEMA.get("displayName")
    first = tenant.ad_users[0]
    want = first.display_name.casefold()
    assert normalize_dn(first.dn) in {e.ndn for e in store.prefix(t, want[:3])}
    assert "displayName" not in store._warming  # finished by the search, not left half made
    assert list(steps) is not None  # the rest of the warming still runs to its end
    assert all(store._ordered[a.name].built for a in PREFIXED)


def test_warming_closed_part_way_leaves_no_half_made_index(small_steps):
    tenant = generate(SPEC)
    store = seed_directory(tenant).store
    steps = store.warm_steps()
    while "displayName" not in store._partial:
        next(steps)
    steps.close()
    assert "displayName" not in store._eq  # dropped: made again, whole, on first use
    t = DEFAULT_SCHEMA.get("displayName")
    first = tenant.ad_users[0]
    assert store.lookup(t, first.display_name.casefold())


def test_idle_work_runs_only_while_no_request_arrives():
    clock, done = Clock(), []

    def steps():
        for i in range(3):
            done.append(i)
            yield

    work = IdleWorkFor(steps(), clock, quiet=0.0)
    idle.touch()
    work.start()
    for _ in range(5):
        clock.advance(0.1)
    assert done == [0, 1, 2] and work.done  # budget 0: one step a tick

    waiting = IdleWorkFor(steps(), clock, quiet=3600.0)
    done.clear()
    idle.touch()  # a request just arrived: an hour of quiet is needed first
    waiting.start()
    for _ in range(5):
        clock.advance(0.1)
    assert done == [] and not waiting.done
    waiting.stop()
    assert not clock.getDelayedCalls()


def IdleWorkFor(steps, clock: Clock, quiet: float) -> idle.IdleWork:
    return idle.IdleWork(steps, clock, quiet=quiet, budget=0.0, tick=0.1)


def test_a_served_directory_makes_them_while_idle_and_answers_anr_from_them():
    """Over the wire: an idle server makes the indexes on its own (no search asked for them),
    then ldap3's ANR search is answered from them."""
    tenant = generate(SPEC)
    run = start_directory(seed_directory(tenant))
    try:
        store = run.service.store
        deadline = time.monotonic() + 60
        while not run.call(lambda: all(store._ordered[t.name].built for t in PREFIXED)):
            assert time.monotonic() < deadline, "the idle server did not make the indexes"
            time.sleep(0.2)
        user = next(u for u in tenant.ad_users if u.display_name.isascii())
        conn = Connection(
            Server(run.endpoints.ldap_url, get_info=NONE),
            run.endpoints.admin_dn,
            run.endpoints.admin_password,
            auto_bind=True,
        )
        conn.search(tenant.spec.base_dn, f"(anr={user.display_name[:4]})", attributes=["cn"])
        assert normalize_dn(user.dn) in {normalize_dn(e.entry_dn) for e in conn.entries}
        conn.unbind()
    finally:
        run.stop()
