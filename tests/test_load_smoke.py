"""benchmarks/load.py at a tiny size: its clients, figures and error accounting work (issue 9)."""

from __future__ import annotations

import json

import pytest

from benchmarks import load
from mockservers.runtime import spawn_serve


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    epf = tmp_path_factory.mktemp("load") / "endpoints.json"
    proc = spawn_serve(epf, "-n", "300", "-q")
    yield json.loads(epf.read_text()), proc.pid
    proc.terminate()
    proc.wait(timeout=60)


def test_a_short_load_run_reports_every_operation_and_the_server_memory(served):
    ep, pid = served
    res = load.run_load(ep, pid, ldap_clients=2, http_clients=2, seconds=3.0)
    assert res["errors"] == {} and res["failures"] == [], res["first_errors"]
    assert set(res["operations"]) == {*load.LDAP_MIX, *load.HTTP_MIX}
    for op, figures in res["operations"].items():
        assert figures["count"] > 0, op
        assert 0 < figures["p50_ms"] <= figures["p95_ms"] <= figures["p99_ms"] <= figures["max_ms"]
    mem = res["memory"]
    assert mem["before"]["VmRSS"] > 0 and mem["after"]["VmHWM"] >= mem["after"]["VmRSS"]
    assert mem["samples"], "RSS was not sampled during the run"
    assert "ldap.modify" in load.table(res)


def test_a_failed_operation_is_counted_as_an_error(served):
    ep, _ = served
    users = load.targets(ep, sample=20)["users"]
    gone = [f"CN=Nobody Here,OU=Corp,{ep['base_dn']}"]  # every modify of it fails: noSuchObject
    res = load.ldap_client(ep, users, gone, seconds=0.5, k=0)
    assert res["errors"].get("ldap.modify", 0) > 0 and res["latencies"]
    assert any("noSuchObject" in e for e in res["first_errors"]), res["first_errors"]
    assert not set(res["errors"]) - {"ldap.modify"}  # the reads still succeed
