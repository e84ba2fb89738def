"""Benchmarks of the hot paths (issue 10), so that a regression shows in CI's figures.

Filter evaluation and index lookups in the fake AD, BER encoding and decoding on both sides of
the wire, diffing one object, and one page of delta on both sides of Graph. The data is built
once for the module from a generated tenant of `MAILBOXES` mailboxes (``EXWB_BENCH_MAILBOXES``
overrides it, to see whether a cost grows with the tenant). Every benchmark checks its result,
so a hot path that breaks fails here as well as in its own tests.

Several benchmarks call the server's and the engine's own private helpers (the search walk,
entry encoding, entry decoding, a delta page's decoding): those are the hot paths themselves,
and a public wrapper would add network I/O that drowns them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from ldaptor.protocols import pureber, pureldap

from harness.core.ber import header, message, octets, read_modify, sequence, tlv
from harness.engine.ldapwire import _entry, all_of, any_of, equal, modify_request, present
from harness.engine.rules import GA
from harness.engine.source import SELECT, CloudCredentials, GraphSource
from harness.engine.target import ANCHOR_ATTRIBUTE, FIND_BATCH, Change, plan
from harness.tenant import TenantSpec, generate
from harness.tenant.model import AdUser, CloudMailbox, Tenant
from mockservers.cloud import graph
from mockservers.cloud.errors import dumps
from mockservers.cloud.store import CloudStore
from mockservers.directory.acl import Principal, Role
from mockservers.directory.entry import Entry
from mockservers.directory.filters import compile_filter
from mockservers.directory.seed import seed_directory
from mockservers.directory.server import LdapProtocol, Selection
from mockservers.directory.service import DirectoryService
from mockservers.directory.store import SCOPE_SUBTREE, Store

MAILBOXES = int(os.environ.get("EXWB_BENCH_MAILBOXES", "20000"))
PAGE = FIND_BATCH  # users in a delta page and in the engine's OR search: 200, 1% of 20,000
LOOKUPS = 1000  # keys per index benchmark: its figures are per 1,000 lookups
GRAPH_URL = "http://127.0.0.1:8443"
NOW = 1_800_000_000.0
PREFER = {"prefer": "odata.maxpagesize=999"}  # the engine's page size (GraphSource)
MESSAGE_ID = 7

Measure = Callable[..., Any]  # the `measure` fixture (conftest.py)


@dataclass
class World:
    tenant: Tenant
    store: Store
    proto: LdapProtocol
    base: Entry
    cloud: CloudStore
    pairs: list[tuple[AdUser, CloudMailbox]]  # synced, cloud-managed: in writeback scope
    changed: list[tuple[AdUser, CloudMailbox]]  # changed in the cloud after `delta_query`
    delta_query: dict[str, str]  # an incremental round that returns `changed`

    def entry(self, user: AdUser) -> Entry:
        ndn = self.store.ndn_of(user.dn)
        assert ndn is not None, user.dn
        return self.store.entries[ndn]

    def current(self, user: AdUser) -> dict[str, tuple[str, ...]]:
        """The profile's attributes of `user` as the engine reads them (absent: ())."""
        attrs = self.entry(user).attrs
        return {t: tuple(v.decode("utf-8") for v in attrs.get(t, ())) for t in GA.targets}


@pytest.fixture(scope="module")
def world() -> World:
    tenant = generate(TenantSpec(mailboxes=MAILBOXES))
    seeded = seed_directory(tenant)
    service = DirectoryService.from_seed(seeded)
    store = seeded.store
    cloud = CloudStore.from_tenant(tenant)
    latest = graph.users_delta(
        cloud, {"$deltatoken": "latest", "$select": SELECT}, GRAPH_URL, {}, NOW
    )
    token = parse_qs(urlsplit(latest["@odata.deltaLink"]).query)["$deltatoken"][0]
    pairs = [(u, m) for u, m in tenant.synced_pairs() if m.is_exchange_cloud_managed]
    changed = pairs[:: max(1, len(pairs) // PAGE)][:PAGE]
    for i, (_, m) in enumerate(changed):
        cloud.update(m.id, {"custom_attributes": (f"bench-{i}", *m.custom_attributes[1:])})
    base = store.entries[store.ndn_of(tenant.base_dn) or ""]
    return World(
        tenant, store, LdapProtocol(service), base, cloud, pairs, changed, {"$deltatoken": token}
    )


# --- filter evaluation in the fake AD --------------------------------------------------------


def _decode_filter(raw: bytes) -> pureldap.LDAPFilter:
    """A filter as the server gets it: ldaptor's decoding of the BER the client sent."""
    context = pureldap.LDAPBERDecoderContext_Filter(fallback=pureber.BERDecoderContext())
    decoded, used = pureber.berDecodeObject(context, raw)
    assert used == len(raw)
    return decoded


def _filter_case(world: World, case: str) -> tuple[bytes, set[str]]:
    """(the BER filter, the DNs it must return) for one benchmark case."""
    if case == "equality-indexed":
        user = world.pairs[len(world.pairs) // 2][0]
        assert user.consistency_guid is not None
        return equal(ANCHOR_ATTRIBUTE, user.consistency_guid), {user.dn}
    if case == "and-or-200-indexed":  # what the engine sends to match a delta page
        users = [u for u, _ in world.changed]
        guids = [u.consistency_guid for u in users if u.consistency_guid is not None]
        flt = all_of(
            equal("objectClass", "user"), any_of(*(equal(ANCHOR_ATTRIBUTE, g) for g in guids))
        )
        return flt, {u.dn for u in users}
    if case == "present-scan":  # the engine's full read of every anchored user
        flt = all_of(equal("objectClass", "user"), present(ANCHOR_ATTRIBUTE))
        return flt, {u.dn for u in world.tenant.ad_users if u.consistency_guid is not None}
    if case == "substring-scan":  # (displayName=*son*)
        flt = tlv(0xA4, octets(b"displayName") + sequence(tlv(0x81, b"son")))
        every = world.store.scope_entries(world.base, SCOPE_SUBTREE)
        expected = {
            e.dn
            for e in every
            if any("son" in v.decode("utf-8").casefold() for v in e.attrs.get("displayName", ()))
        }
        return flt, expected
    raise AssertionError(case)


FILTER_CASES = ("equality-indexed", "and-or-200-indexed", "present-scan", "substring-scan")
FILTER_ROUNDS = {"equality-indexed": 200, "and-or-200-indexed": 20}  # scans: the minimum


@pytest.mark.benchmark(group="fake AD: compile and evaluate a search filter")
@pytest.mark.parametrize("case", FILTER_CASES)
def test_filter(world: World, measure: Measure, case: str) -> None:
    raw, expected = _filter_case(world, case)
    decoded = _decode_filter(raw)
    store, proto, base = world.store, world.proto, world.base

    def search() -> list[str]:
        flt = compile_filter(decoded, store.schema, store.schema_nc)
        return [e.dn for e in proto._matches(base, SCOPE_SUBTREE, flt)]

    assert expected  # a case that matches nothing would measure nothing
    found = measure(search, rounds=FILTER_ROUNDS.get(case, 5))
    assert len(found) == len(set(found)) and set(found) == expected


# --- index lookups ---------------------------------------------------------------------------


def _sample(world: World) -> list[AdUser]:
    users = [u for u, _ in world.pairs]
    return users[:: max(1, len(users) // LOOKUPS)][:LOOKUPS]


def _first_value(user: AdUser, attribute: str) -> bytes:
    if attribute == "objectGUID":
        return user.object_guid
    if attribute == ANCHOR_ATTRIBUTE:
        assert user.consistency_guid is not None
        return user.consistency_guid
    return user.proxy_addresses[-1].encode("utf-8")  # a secondary one where there are several


@pytest.mark.benchmark(group=f"fake AD: {LOOKUPS} index lookups")
@pytest.mark.parametrize("attribute", ["objectGUID", ANCHOR_ATTRIBUTE, "proxyAddresses"])
def test_index_lookup(world: World, measure: Measure, attribute: str) -> None:
    store = world.store
    t = store.schema.require(attribute)
    users = _sample(world)
    keys = [t.key(_first_value(u, attribute)) for u in users]
    lookup = store.lookup

    def lookups() -> list:
        return [lookup(t, k) for k in keys]

    hits = measure(lookups, rounds=20)
    assert [[e.dn for e in hit] for hit in hits] == [[u.dn] for u in users]


@pytest.mark.benchmark(group=f"fake AD: {LOOKUPS} index lookups")
def test_ndn_of(world: World, measure: Measure) -> None:
    users = _sample(world)
    dns = [u.dn for u in users]
    ndn_of = world.store.ndn_of

    def lookups() -> list[str | None]:
        return [ndn_of(dn) for dn in dns]

    ndns = measure(lookups, rounds=20)
    assert [world.store.entries[n].dn if n else None for n in ndns] == dns


# --- diffing one object ----------------------------------------------------------------------


def _diff_case(world: World, case: str) -> tuple[AdUser, dict, dict, list[Change]]:
    """(user, current AD values, desired values, the plan they must give)."""
    user, mbx = next((u, m) for u, m in world.pairs if len(m.email_addresses) >= 3)
    current = world.current(user)
    record = mbx.to_json()
    if case == "unchanged":
        return user, current, GA.desired(record), []
    gone, new = mbx.email_addresses[-1], f"smtp:bench.{mbx.alias}@{world.tenant.spec.domain}"
    record["CustomAttribute1"] = "bench"
    record["EmailAddresses"] = [*mbx.email_addresses[:-1], new]
    expected: list[Change] = [
        ("replace", "extensionAttribute1", ("bench",)),
        ("delete", "proxyAddresses", (gone,)),
        ("add", "proxyAddresses", (new,)),
    ]
    return user, current, GA.desired(record), expected


@pytest.mark.benchmark(group="engine: diff one object (target.plan)")
@pytest.mark.parametrize("case", ["unchanged", "changed"])
def test_plan(world: World, measure: Measure, case: str) -> None:
    _, current, desired, expected = _diff_case(world, case)
    changes = measure(plan, current, desired, rounds=20, iterations=50)
    assert changes == expected


# --- BER encoding and decoding ---------------------------------------------------------------


@pytest.mark.benchmark(group="BER encode and decode")
def test_encode_modify_request(world: World, measure: Measure) -> None:
    """The engine's ModifyRequest message for one changed user."""
    user, _, _, changes = _diff_case(world, "changed")

    def encode() -> bytes:
        return message(MESSAGE_ID, modify_request(user.dn, changes))

    raw = measure(encode, rounds=20, iterations=50)
    assert read_modify(raw) == _decoded_modify(user.dn, changes)


def _decoded_modify(dn: str, changes: list[Change]) -> tuple:
    ops = {"add": 0, "delete": 1, "replace": 2}
    return (
        MESSAGE_ID,
        dn.encode("utf-8"),
        [(ops[op], a.encode(), [v.encode("utf-8") for v in vs]) for op, a, vs in changes],
    )


@pytest.mark.benchmark(group="BER encode and decode")
def test_decode_modify_request(world: World, measure: Measure) -> None:
    """The fake AD's fast decoding of that ModifyRequest."""
    user, _, _, changes = _diff_case(world, "changed")
    raw = message(MESSAGE_ID, modify_request(user.dn, changes))
    decoded = measure(read_modify, raw, rounds=20, iterations=50)
    assert decoded == _decoded_modify(user.dn, changes)


def _writeback(world: World) -> Principal:
    """The engine's principal: what it may write shapes a reply only when it asks for
    allowedAttributesEffective, which the profile's read does not."""
    return next(p for p, _ in world.proto.svc._principals.values() if p.role is Role.WRITEBACK)


def _search_entry(world: World) -> tuple[AdUser, Selection, bytes]:
    """A user's SearchResultEntry as the fake sends it to the engine (the profile's attributes
    and the anchor, as the engine asks for them)."""
    user, _ = world.pairs[len(world.pairs) // 3]
    wanted = [t.encode() for t in (*GA.targets, ANCHOR_ATTRIBUTE)]
    selection = Selection.parse(wanted, world.proto.svc)
    raw = world.proto._encode_entry(
        MESSAGE_ID, world.entry(user), selection, False, _writeback(world)
    )
    return user, selection, raw


def _expected_attributes(world: World, user: AdUser) -> dict[str, list[bytes]]:
    attrs = world.entry(user).attrs
    names = (*GA.targets, ANCHOR_ATTRIBUTE)
    return {n: list(attrs[n]) for n in names if attrs.get(n)}


@pytest.mark.benchmark(group="BER encode and decode")
def test_encode_search_entry(world: World, measure: Measure) -> None:
    """The fake AD's SearchResultEntry encoding of one user."""
    user, selection, expected_raw = _search_entry(world)
    entry, proto = world.entry(user), world.proto

    raw = measure(
        proto._encode_entry,
        MESSAGE_ID,
        entry,
        selection,
        False,
        _writeback(world),
        rounds=20,
        iterations=50,
    )
    assert raw == expected_raw
    _, s, e = _entry_span(raw)
    dn, attrs = _entry(raw, s, e)
    assert dn == user.dn and attrs == _expected_attributes(world, user)


def _entry_span(raw: bytes) -> tuple[int, int, int]:
    """The protocol op's (tag, start, end) inside an LDAPMessage, as the engine frames it."""
    _, pos, _ = header(raw, 0)
    _, _, id_end = header(raw, pos)
    return header(raw, id_end)


@pytest.mark.benchmark(group="BER encode and decode")
def test_decode_search_entry(world: World, measure: Measure) -> None:
    """The engine's decoding of that SearchResultEntry."""
    user, _, raw = _search_entry(world)
    _, s, e = _entry_span(raw)
    dn, attrs = measure(_entry, raw, s, e, rounds=20, iterations=50)
    assert dn == user.dn and attrs == _expected_attributes(world, user)
    assert len(attrs) >= 5  # a realistic entry, not an empty one


# --- a page of delta -------------------------------------------------------------------------


@pytest.mark.benchmark(group=f"a page of delta ({PAGE} changed users)")
def test_graph_delta_page(world: World, measure: Measure) -> None:
    """The fake Graph's users/delta page of the round's changes, serialised as it is sent."""
    cloud, query = world.cloud, world.delta_query

    def page() -> bytes:
        return dumps(graph.users_delta(cloud, query, GRAPH_URL, PREFER, NOW))

    body = json.loads(measure(page, rounds=10))
    assert "@odata.deltaLink" in body and "@odata.nextLink" not in body
    assert [v["id"] for v in body["value"]] == [m.id for _, m in world.changed]
    first = body["value"][0]["onPremisesExtensionAttributes"]["extensionAttribute1"]
    assert first == "bench-0"


@pytest.mark.benchmark(group=f"a page of delta ({PAGE} changed users)")
def test_engine_delta_page(world: World, measure: Measure) -> None:
    """The engine's work on that page before matching: JSON decoding, EXO-named records
    (`to_exo_record`) and the profile's desired values."""
    body = dumps(graph.users_delta(world.cloud, world.delta_query, GRAPH_URL, PREFER, NOW))
    source = GraphSource(CloudCredentials(GRAPH_URL, GRAPH_URL, "bench", "bench"))

    def process() -> list[dict[str, tuple[str, ...]]]:
        page = source._page(json.loads(body)["value"])
        return [GA.desired(r) for r in page.records]

    desired = measure(process, rounds=10)
    n = len(world.changed)
    assert n == min(PAGE, len(world.pairs))
    assert [d["extensionAttribute1"] for d in desired] == [(f"bench-{i}",) for i in range(n)]
    for d, (user, _) in zip(desired, world.changed, strict=True):
        assert d["proxyAddresses"] == world.current(user)["proxyAddresses"]
