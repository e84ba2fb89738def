"""`exwb serve` starts the estate; with --state-dir its changes survive a kill -9 and restart."""

from __future__ import annotations

import json
import signal
import subprocess
from dataclasses import asdict

import pytest

from harness.core.endpoints import Endpoints
from harness.decommission.dns import resolve
from harness.decommission.hosts import OnpremHosts
from harness.tenant import TenantSpec
from harness.tenant.exchange_org import ExchangeOrg
from mockservers.onprem.estate import HYBRID_AGENT
from mockservers.runtime import ServeFailed, spawn_serve
from tests.cloud.http_client import cmdlet, token
from tests.onprem.conftest import clear_mailboxes, exists

ORG = ExchangeOrg(TenantSpec(mailboxes=40, seed=1))


def _stop(proc: subprocess.Popen, sig: int) -> tuple[int, str, str]:
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    return proc.returncode, out, err


def test_old_endpoints_files_still_load(tmp_path):
    ep = Endpoints("ldap://h:1", "h", 1, "DC=x", "CN=Configuration,DC=x", "b", "b@x", "p",
                   "a", "p", "r", "p", "X")  # fmt: skip
    old = {k: v for k, v in asdict(ep).items() if k not in ("onprem_url", "dns_port")}
    path = tmp_path / "old.json"
    path.write_text(json.dumps(old))
    loaded = Endpoints.read(path)
    assert (loaded.onprem_url, loaded.dns_port) == ("", 0)


def test_estate_changes_survive_kill_9_with_a_state_dir(tmp_path):
    state, path = tmp_path / "state", tmp_path / "endpoints.json"
    server_dn, db_dn = ORG.server_dn("EX01"), ORG.database_dn("EX01")
    cloud_mx = f"0 {ORG.exo_mx}."
    proc = spawn_serve(path, "-n", "40", "--seed", "1", "--state-dir", str(state), timeout=120)
    try:
        ep = Endpoints.read(path)
        assert ep.onprem_url.startswith("http://127.0.0.1:") and ep.dns_port > 0
        assert resolve(ep.ldap_host, ep.dns_port, ep_domain(ep), "MX") == ["10 mail.contoso.com."]
        clear_mailboxes(ep, db_dn)
        with OnpremHosts.from_endpoints(ep) as c:
            assert c.setup("EX01")["result"] == "Succeeded"
            c.delete_service("EX01", HYBRID_AGENT)
            c.put_record("contoso.com", "@", "MX", [cloud_mx])
        tok = token(ep)
        gone = cmdlet(ep, tok, "Remove-InboundConnector", Identity=ORG.inbound_connector)
        assert gone.status == 200, gone.body
        hybrid_before = json.loads((state / "hybrid.json").read_text())
    finally:
        code, out, err = _stop(proc, signal.SIGKILL)  # right after the last acknowledged reply
    assert f"onprem_url     {ep.onprem_url}" in out
    assert f"port {ep.dns_port} UDP+TCP" in out
    assert "Traceback" not in err
    assert (state / "onprem.json").exists()

    path.unlink(missing_ok=True)  # kill -9 left it behind
    proc = spawn_serve(path, "--state-dir", str(state), timeout=120)
    try:
        ep = Endpoints.read(path)
        with OnpremHosts.from_endpoints(ep) as c:
            host = c.host("EX01")
            assert host["state"] == "Uninstalled"
            assert HYBRID_AGENT not in {s["name"] for s in host["services"]}
            assert c.record("contoso.com", "@", "MX")["values"] == [cloud_mx]
        assert resolve(ep.ldap_host, ep.dns_port, "contoso.com", "MX") == [cloud_mx]
        assert not exists(ep, server_dn) and not exists(ep, db_dn)  # the journal replayed
        assert json.loads((state / "hybrid.json").read_text()) == hybrid_before
        left = cmdlet(ep, token(ep), "Get-InboundConnector").body["value"]
        assert ORG.inbound_connector not in {x["Identity"] for x in left}
    finally:
        code, out, err = _stop(proc, signal.SIGTERM)
    assert code == 0, err
    assert "Traceback" not in err


def test_a_damaged_estate_file_is_a_clear_error(tmp_path):
    state, path = tmp_path / "state", tmp_path / "endpoints.json"
    proc = spawn_serve(path, "-n", "40", "--state-dir", str(state), timeout=120)
    _stop(proc, signal.SIGTERM)
    (state / "onprem.json").write_text('{"format": "exwb-onprem/1", "hosts": [{}]}')
    with pytest.raises(ServeFailed) as e:
        spawn_serve(path, "--state-dir", str(state), timeout=120)
    assert "onprem.json" in str(e.value) and "Traceback" not in str(e.value)


def ep_domain(ep: Endpoints) -> str:
    return ".".join(part[3:] for part in ep.base_dn.split(","))
