"""The engine across simulated days: a delta link older than Graph's 7 days answers 410 with a
resync Location and the next cycle reads a full round; the reader's token outlives no jump."""

from __future__ import annotations

from datetime import timedelta

import pytest
import requests

from harness.engine.source import CloudCredentials, GraphSource
from tests.engine.test_cycle import TENANT, cycle, edit
from tests.engine.test_source import read_round
from tests.support.engine import mailbox_pairs, simulated_time, writeback_credentials

__all__ = ["TENANT"]  # the `tenant` fixture reads it


@pytest.fixture
def creds(run) -> CloudCredentials:
    return writeback_credentials(run.endpoints)[0]  # the engine's reader: the read-only app


def test_a_delta_link_older_than_7_days_is_410_with_a_resync_location(run, creds):
    with simulated_time() as sim, GraphSource(creds) as src:
        read_round(src, None)
        link = src.next_delta_link
        assert link is not None
        sim.advance(timedelta(days=7, seconds=1))
        token = requests.post(
            creds.token_url,
            data={
                "grant_type": "client_credentials",
                "client_id": creds.client_id,
                "client_secret": creds.client_secret,
                "scope": "https://graph.microsoft.com/.default",
            },
            timeout=30,
        ).json()["access_token"]
        r = requests.get(
            link,
            headers={"Authorization": f"Bearer {token}"},
            allow_redirects=False,
            timeout=30,
        )
        assert r.status_code == 410
        assert r.json()["error"]["code"] == "resyncRequired"
        assert "/v1.0/users/delta" in r.headers["Location"]
        assert "$deltatoken" not in r.headers["Location"]


def test_the_reader_renews_its_token_on_the_harness_clock(run, creds):
    """No 401 round trip: the cached token is known stale before it is sent."""
    with simulated_time() as sim, GraphSource(creds) as src:
        read_round(src, None)
        first, sent = src._token, src.stats["requests"]
        sim.advance(timedelta(days=7))
        records, _ = read_round(src, None)
        assert records and src._token != first
        assert src.stats["requests"] == sent + 2  # one token request, one page of 120 users


def test_a_cycle_after_8_days_reads_a_full_round_and_after_6_a_delta(run, tmp_path):
    _, mbx = mailbox_pairs(TENANT, True)[0]
    with simulated_time() as sim:
        first = cycle(run, tmp_path)
        assert first.statuses["Failure"] == 0 and not first.resynced
        sim.advance(timedelta(days=8))
        edit(run, mbx, custom_attributes=("after a week", *mbx.custom_attributes[1:]))
        stale = cycle(run, tmp_path)
        assert stale.resynced, "the 8-day-old delta link must have answered 410"
        assert stale.statuses["Failure"] == 0
        assert stale.actions.get("Update", 0) == 1  # the edit, found by the full round
        assert stale.objects == len(TENANT.mailboxes)  # every user, as a full round reads
        sim.advance(timedelta(days=6))
        edit(run, mbx, custom_attributes=("six days on", *mbx.custom_attributes[1:]))
        fresh = cycle(run, tmp_path)
        assert not fresh.resynced and fresh.statuses["Failure"] == 0
        assert fresh.objects == 1 and fresh.actions.get("Update", 0) == 1
