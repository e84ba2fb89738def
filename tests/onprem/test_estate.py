"""The estate model on its own: derived from the spec, and its JSON round trip."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from harness.tenant import TenantSpec
from mockservers.onprem.errors import OnpremError
from mockservers.onprem.estate import Estate

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def test_json_round_trip_keeps_every_change():
    estate = Estate.from_spec(TenantSpec(mailboxes=10, exchange_servers=3), NOW)
    seen: list[Estate] = []
    estate.on_change = seen.append
    estate.shutdown("EX02")
    estate.delete_service("EX01", "W3SVC")
    estate.put_record("contoso.de", "www", "AAAA", {"ttl": 300, "values": ["2001:db8::1"]})
    assert len(seen) == 3
    again = Estate.from_json(estate.to_json())
    assert again.to_json() == estate.to_json()
    assert again.host("ex02").state == "ShutDown"
    assert again.zone("contoso.de.").records[("www", "AAAA")].values == ["2001:db8::1"]


def test_relay_clients_age_out_of_the_30_day_window():
    estate = Estate.from_spec(TenantSpec(mailboxes=10, smtp_relay_clients=2), NOW)
    assert len(estate.relay_clients("EX01", NOW)) == 2
    assert len(estate.host("EX01").smtp_receive_log) == 3  # with one retired device
    assert estate.relay_clients("EX01", datetime(2027, 1, 1, tzinfo=UTC)) == []


def test_damaged_documents_and_unknown_names_are_clear_errors():
    with pytest.raises(ValueError, match="exwb-onprem/1"):
        Estate.from_json({"format": "something else"})
    with pytest.raises(ValueError, match="damaged"):
        Estate.from_json({"format": "exwb-onprem/1", "hosts": [{"name": 1}], "zones": []})
    estate = Estate.from_spec(TenantSpec(mailboxes=10), NOW)
    with pytest.raises(OnpremError) as e:
        estate.put_record("contoso.com", "@", "MX", {"ttl": "soon", "values": ["0 a.example."]})
    assert (e.value.status, e.value.code) == (400, "BadRequest")
    with pytest.raises(OnpremError) as e:
        estate.put_record("contoso.com", "@", "MX", {"values": ["0 a.example.", "0 a.example"]})
    assert "twice" in e.value.message
