"""GraphSource against the fake cloud over real HTTP: rounds, paging, throttling, auth, resync."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import pytest

from harness.engine.rules import GA, MappingError
from harness.engine.source import CloudCredentials, GraphSource, SourceError, to_exo_record
from harness.tenant import TenantSpec, generate
from mockservers.cloud.throttle import Throttle
from mockservers.runtime import RunningTenant

TENANT = generate(TenantSpec(mailboxes=150, seed=4))
pytestmark = pytest.mark.shared_tenant  # one running tenant for the module (tests/conftest.py)


@pytest.fixture
def creds(run: RunningTenant) -> CloudCredentials:
    # The engine's reader gets the read-only app.
    ep = run.endpoints
    return CloudCredentials(
        ep.graph_url, ep.token_url, ep.readonly_client_id, ep.readonly_client_secret
    )


def read_round(src: GraphSource, link: str | None) -> tuple[list[dict[str, Any]], list[str]]:
    records: list[dict[str, Any]] = []
    removed: list[str] = []
    for page in src.pages(link):
        records.extend(page.records)
        removed.extend(page.removed)
    return records, removed


def desired(record: dict[str, Any]) -> Any:
    """GA's wanted AD values, or the error: recipients GA cannot map (MailUser) must fail alike."""
    try:
        return GA.desired(record)
    except MappingError as e:
        return str(e)


def store_json(run: RunningTenant) -> dict[str, dict[str, Any]]:
    return run.call(lambda: {m.id: m.to_json() for m in run.cloud.store})


def test_full_round_reads_every_recipient_losslessly(run, creds) -> None:
    with GraphSource(creds) as src:
        records, removed = read_round(src, None)
    expected = store_json(run)
    ids = [r["id"] for r in records]
    assert len(ids) == len(set(ids)) and set(ids) == set(expected)
    assert removed == []
    assert src.next_delta_link and "deltatoken" in src.next_delta_link.lower()
    assert src.resynced is False
    for rec in records:
        assert desired(rec) == desired(expected[rec["id"]]), rec["id"]
        # Every field the reader fills matches Exchange's own view (immutable id: null if none).
        assert {k: v for k, v in rec.items() if k != "onPremisesImmutableId"} == {
            k: expected[rec["id"]][k] for k in rec if k != "onPremisesImmutableId"
        }
        assert rec["onPremisesImmutableId"] == (
            expected[rec["id"]]["onPremisesImmutableId"] or None
        )


def test_edit_then_delete_show_in_incremental_rounds(run, creds) -> None:
    with GraphSource(creds) as src:
        read_round(src, None)
        link = src.next_delta_link
        target = sorted(store_json(run))[7]
        old = run.call(run.cloud.store.get, target)
        attrs = ("edited by test", *old.custom_attributes[1:])
        run.call(run.cloud.store.update, target, {"custom_attributes": attrs})

        records, removed = read_round(src, link)
        assert [r["id"] for r in records] == [target] and removed == []
        assert records[0]["CustomAttribute1"] == "edited by test"
        assert desired(records[0]) == desired(store_json(run)[target])

        link = src.next_delta_link
        run.call(run.cloud.store.delete, target)
        records, removed = read_round(src, link)
        assert records == [] and removed == [target]
        assert src.next_delta_link


def test_page_size_is_honoured(run, creds) -> None:
    with GraphSource(creds, page_size=20) as src:
        pages = list(src.pages(None))
    total = len(store_json(run))
    assert [len(p.records) for p in pages[:-1]] == [20] * (len(pages) - 1)
    assert sum(len(p.records) for p in pages) == total
    assert len(pages) == -(-total // 20)


def test_throttling_is_waited_out(run, creds) -> None:
    now = [time.monotonic()]
    slept: list[float] = []

    def fake_sleep(seconds: float) -> None:
        # Advance the throttle's clock instead of the wall clock: the bucket refills at once.
        slept.append(seconds)
        now[0] += seconds

    throttle = Throttle.profile("20/1000", run.cloud.tenant_id)
    throttle.clock = lambda: now[0]
    previous = run.cloud.throttle
    run.call(setattr, run.cloud, "throttle", throttle)
    try:
        with GraphSource(creds, page_size=5, sleep=fake_sleep) as src:
            records, _ = read_round(src, None)
    finally:
        run.call(setattr, run.cloud, "throttle", previous)
    assert len(records) == len(store_json(run))
    assert src.next_delta_link
    assert src.stats["throttled"] > 0
    assert slept and all(s >= 1 for s in slept)
    assert src.stats["waited_seconds"] == sum(slept)
    assert src.stats["retries"] == len(slept)


def test_throttling_beyond_max_retries_fails(run, creds) -> None:
    throttle = Throttle.profile("1/1000", run.cloud.tenant_id)
    throttle.clock = lambda: 0.0  # frozen: the bucket never refills
    previous = run.cloud.throttle
    run.call(setattr, run.cloud, "throttle", throttle)
    try:
        src = GraphSource(creds, page_size=5, max_retries=2, sleep=lambda s: None)
        with src, pytest.raises(SourceError, match="429 after 3 attempts"):
            read_round(src, None)
    finally:
        run.call(setattr, run.cloud, "throttle", previous)


def test_expired_token_is_refreshed(run, creds) -> None:
    auth = run.cloud.auth
    with GraphSource(creds, page_size=50) as src:
        pages = src.pages(None)
        next(pages)
        first = src._token
        # Two hours on for the server: our cached token is expired there but not here.
        real_clock = auth.clock
        run.call(setattr, auth, "clock", lambda: real_clock() + 7200)
        try:
            rest = list(pages)
        finally:
            run.call(setattr, auth, "clock", real_clock)
    assert rest and src.next_delta_link
    assert src._token != first


def test_tampered_delta_link_forces_a_full_round(run, creds) -> None:
    with GraphSource(creds) as src:
        read_round(src, None)
        link = src.next_delta_link
        assert link is not None
        records, _ = read_round(src, link[:-4] + "AAAA")
    assert src.resynced is True
    assert {r["id"] for r in records} == set(store_json(run))
    assert src.next_delta_link


def test_wrong_secret_raises_invalid_client(creds) -> None:
    src = GraphSource(replace(creds, client_secret="wrong"))
    with src, pytest.raises(SourceError, match="invalid_client"):
        read_round(src, None)


def test_connection_refused_retries_then_fails(creds) -> None:
    slept: list[float] = []
    dead = replace(creds, token_url="http://127.0.0.1:9/token")  # discard port: nothing listens
    src = GraphSource(dead, max_retries=3, sleep=slept.append)
    with src, pytest.raises(SourceError, match="after 4 attempts"):
        read_round(src, None)
    assert slept == [0.5, 1.0, 2.0]


def test_record_without_exchange_state_is_refused() -> None:
    with pytest.raises(SourceError, match="user abc"):
        to_exo_record({"id": "abc", "mail": "a@b.c"})
