"""`exwb decommission` end to end against the running fakes (LDAP, EXO/Graph, hosts, DNS).

Clean and messy organisations come from the tenant knobs; each blocker is reached through its
own knob; both paths are executed; a run killed midway is resumed; writeback still converges
after the server is gone.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.cli import main
from harness.clients.exo import ExoAdmin
from harness.decommission.hosts import OnpremHosts
from harness.engine.cycle import run_cycle
from harness.engine.rules import GA
from harness.engine.source import CloudCredentials
from harness.engine.state import EngineState
from harness.engine.target import LdapCredentials
from harness.tenant import TenantSpec, generate
from mockservers.runtime import start_tenant
from tests.directory.ldap_clients import connect

CLEAN = {"mailboxes": 40, "seed": 5, "org_preset": "clean"}


def start(**knobs):
    spec = TenantSpec.from_mapping({**CLEAN, **knobs})
    return start_tenant(generate(spec))


def healthy_job(run, state: Path) -> None:
    """One writeback cycle, so the job is Active with a successful last run."""
    ep = run.endpoints
    cloud = CloudCredentials(
        ep.graph_url, ep.token_url, ep.readonly_client_id, ep.readonly_client_secret
    )
    ldap = LdapCredentials(ep.ldap_url, ep.bind_dn, ep.bind_password, ep.base_dn)
    report = run_cycle(cloud, ldap, GA, state, "delta")
    assert not report.stopped and report.statuses.get("Failure", 0) == 0


def decommission(run, tmp: Path, *args: str, capsys=None) -> tuple[int, dict]:
    ep_file = tmp / "endpoints.json"
    if not ep_file.exists():
        run.endpoints.write(ep_file)
    code = main(
        [
            "decommission", *args, "--endpoints-file", str(ep_file),
            "--state-dir", str(tmp / "state"), "--results", str(tmp / "results"), "--json",
        ]
    )  # fmt: skip
    out = capsys.readouterr().out if capsys else ""
    return code, (json.loads(out) if out.strip().startswith("{") else {})


def exo(run) -> ExoAdmin:
    ep = run.endpoints
    return ExoAdmin(ep.exo_url, ep.token_url, ep.client_id, ep.client_secret)


def config_dns(run, filt: str) -> list[str]:
    conn = connect(run)
    try:
        conn.search(run.endpoints.configuration_dn, filt, attributes=["cn"])
        return sorted(e.entry_dn for e in conn.entries)
    finally:
        conn.unbind()


@pytest.fixture
def clean_run():
    run = start()
    yield run
    run.stop()


def test_clean_org_plans_then_uninstalls_and_writeback_still_converges(clean_run, tmp_path, capsys):
    run = clean_run
    healthy_job(run, tmp_path / "state")
    code, plan = decommission(run, tmp_path, "--plan", capsys=capsys)
    assert code == 0, plan["blockers"]
    assert not plan["blocked"] and plan["serverState"] == "Running"
    pending = [s["id"] for s in plan["steps"] if s["status"] == "pending"]
    assert "uninstall-exchange" in pending and "shut-down-server" not in pending
    assert all(s["command"] and s["precondition"] and s["verification"] for s in plan["steps"])
    assert config_dns(run, "(objectClass=msExchExchangeServer)")

    code, done = decommission(run, tmp_path, "--execute", capsys=capsys)
    assert code == 0, done["error"]
    assert done["finished"] and done["serverState"] == "Uninstalled"
    # The hybrid objects are gone from both sides, and so is the server.
    assert config_dns(run, "(objectClass=msExchExchangeServer)") == []
    assert config_dns(run, "(objectClass=msExchCoexistenceRelationship)") == []
    assert config_dns(run, "(objectClass=msExchFedTrust)") == []
    with exo(run) as admin:
        for cmdlet in (
            "Get-InboundConnector",
            "Get-OutboundConnector",
            "Get-OrganizationRelationship",
            "Get-HybridApplication",
        ):
            assert admin.invoke_all(cmdlet) == [], cmdlet
        assert [i["Enabled"] for i in admin.invoke_all("Get-IntraOrganizationConnector")] == [False]
    host = OnpremHosts.from_endpoints(run.endpoints).host("EX01")
    assert host["state"] == "Uninstalled"
    # The reports: a Markdown checklist and the same as JSON.
    md = Path(done["reports"]["markdown"]).read_text()
    assert "- [x] **uninstall-exchange**" in md and "## Troubleshooting" in md

    # A re-run finds everything done and changes nothing.
    journal = tmp_path / "state" / "decommission.jsonl"
    before = journal.read_text().count('"started"')
    code, again = decommission(run, tmp_path, "--execute", capsys=capsys)
    assert code == 0 and again["executed"] == [] and again["finished"]
    assert journal.read_text().count('"started"') == before


def test_management_tools_path_shuts_down_and_refuses_to_uninstall(clean_run, tmp_path, capsys):
    run = clean_run
    healthy_job(run, tmp_path / "state")
    code, refused = decommission(
        run, tmp_path, "--execute", "--path", "management-tools", "--only", "uninstall-exchange",
        capsys=capsys,
    )  # fmt: skip
    assert code == 1 and "DO NOT uninstall" in refused["refused"]
    assert refused["serverState"] == "Running" and refused["executed"] == []
    code, done = decommission(
        run, tmp_path, "--execute", "--path", "management-tools", capsys=capsys
    )
    assert code == 0, done["error"]
    assert done["serverState"] == "ShutDown"
    # Never uninstalled: the server's object stays for the Management Tools, and so does the
    # coexistence remote domain they need.
    assert config_dns(run, "(objectClass=msExchExchangeServer)")
    assert OnpremHosts.from_endpoints(run.endpoints).host("EX01")["state"] == "ShutDown"
    assert any("shut down" in x["what"] for x in done["leftovers"])
    ids = [s["id"] for s in done["steps"]]
    assert "uninstall-exchange" not in ids and "keep-coexistence-remote-domain" in ids
    # A second run resumes nothing: the shut-down server no longer blocks a finished journal.
    code, again = decommission(
        run, tmp_path, "--execute", "--path", "management-tools", capsys=capsys
    )
    assert code == 0 and again["executed"] == []


BLOCKER_KNOBS = [
    ("OnPremMailboxes", {"onprem_mailboxes": 2}),
    ("ArbitrationMailboxes", {"arbitration_mailboxes": 2}),
    ("PublicFoldersNotMigrated", {"public_folders": "remote"}),
    ("MxNotExchangeOnline", {"dns_mx": "onprem"}),
    ("AutodiscoverNotExchangeOnline", {"dns_autodiscover": "onprem"}),
    ("SmtpRelayInUse", {"smtp_relay_clients": 1}),
    ("MailboxesNotCloudManaged", {"cloud_managed_fraction": 0.8}),
    ("GroupsOrContactsWithoutSoa", {"groups_without_soa": 1}),
    ("GroupsOrContactsWithoutSoa", {"contacts_without_soa": 1}),
    ("ConnectBuildTooOld", {"connect_build": "2.4.131.0"}),
    ("NotTheLastServer", {"exchange_servers": 2}),
]


@pytest.mark.parametrize(
    ("code", "knobs"), BLOCKER_KNOBS, ids=[f"{c}-{next(iter(k))}" for c, k in BLOCKER_KNOBS]
)
def test_each_blocker_comes_from_its_knob(code, knobs, tmp_path, capsys):
    run = start(**knobs)
    try:
        healthy_job(run, tmp_path / "state")
        rc, plan = decommission(run, tmp_path, "--plan", capsys=capsys)
        assert rc == 1
        assert [b["code"] for b in plan["blockers"]] == [code]
        assert plan["blockers"][0]["remedy"]
    finally:
        run.stop()


def test_unhealthy_or_never_run_writeback_blocks(clean_run, tmp_path, capsys):
    rc, plan = decommission(clean_run, tmp_path, "--plan", capsys=capsys)
    assert rc == 1 and [b["code"] for b in plan["blockers"]] == ["WritebackJobUnhealthy"]
    healthy_job(clean_run, tmp_path / "state")
    main(["status", "--state-dir", str(tmp_path / "state"), "--pause"])  # 1: not Active
    assert EngineState.load(tmp_path / "state").paused
    capsys.readouterr()
    rc, plan = decommission(clean_run, tmp_path, "--plan", capsys=capsys)
    assert rc == 1 and [b["code"] for b in plan["blockers"]] == ["WritebackJobUnhealthy"]


def test_a_shut_down_server_blocks_the_uninstall_path(clean_run, tmp_path, capsys):
    healthy_job(clean_run, tmp_path / "state")
    OnpremHosts.from_endpoints(clean_run.endpoints).shutdown("EX01")
    rc, plan = decommission(clean_run, tmp_path, "--plan", capsys=capsys)
    assert rc == 1 and [b["code"] for b in plan["blockers"]] == ["ServerNotRunning"]


def test_messy_org_is_blocked_and_execute_changes_nothing(tmp_path, capsys):
    run = start(org_preset="messy")
    try:
        healthy_job(run, tmp_path / "state")
        before = config_dns(run, "(objectClass=*)")
        rc, out = decommission(run, tmp_path, "--execute", capsys=capsys)
        assert rc == 1 and out["refused"] and out["executed"] == []
        assert len(out["blockers"]) >= 8
        assert config_dns(run, "(objectClass=*)") == before
        journal = tmp_path / "state" / "decommission.jsonl"
        assert not journal.exists() or '"step"' not in journal.read_text()
    finally:
        run.stop()


def test_the_federation_trust_cannot_go_before_what_uses_it(clean_run, tmp_path, capsys):
    healthy_job(clean_run, tmp_path / "state")
    rc, out = decommission(
        clean_run, tmp_path, "--execute", "--only", "remove-federation-trust", capsys=capsys
    )
    assert rc == 1 and "in use" in out["error"]
    assert config_dns(clean_run, "(objectClass=msExchFedTrust)")
    journal = (tmp_path / "state" / "decommission.jsonl").read_text().splitlines()
    assert json.loads(journal[-1])["status"] == "failed"
    # In order, the same step then succeeds.
    rc, out = decommission(clean_run, tmp_path, "--execute", capsys=capsys)
    assert rc == 0, out["error"]
    assert config_dns(clean_run, "(objectClass=msExchFedTrust)") == []


def test_stale_exchange_online_objects_are_cleaned_after_the_uninstall(tmp_path, capsys):
    run = start(stale_cloud_objects=3, uninstall_leftovers=True)
    try:
        healthy_job(run, tmp_path / "state")
        rc, plan = decommission(run, tmp_path, "--plan", capsys=capsys)
        assert rc == 0, plan["blockers"]
        stale = next(s for s in plan["steps"] if s["id"] == "remove-stale-cloud-objects")
        assert stale["status"] == "pending" and stale["remaining"]
        rc, done = decommission(run, tmp_path, "--execute", capsys=capsys)
        assert rc == 0, done["error"]
        with exo(run) as admin:
            rules = admin.invoke_all("Get-TransportRule")
            connectors = admin.invoke_all("Get-OutboundConnector") + admin.invoke_all(
                "Get-InboundConnector"
            )
        text = json.dumps(rules + connectors).casefold()
        assert "mail.contoso.com" not in text and connectors == []
        # Uninstall left MSExchangeTransport registered: the troubleshooting section says so.
        assert any("MSExchangeTransport" in x["what"] for x in done["leftovers"])
    finally:
        run.stop()


def test_a_run_killed_midway_resumes_where_it_stopped(clean_run, tmp_path):
    run = clean_run
    state = tmp_path / "state"
    healthy_job(run, state)
    ep_file = tmp_path / "endpoints.json"
    run.endpoints.write(ep_file)
    journal = state / "decommission.jsonl"
    # Slow every LDAP operation so the run is still going when it is killed.
    run.faults.arm("ldap", "slow", seconds=0.03, count=None, name="slow")
    cmd = [
        sys.executable, "-m", "harness", "decommission", "--execute", "--endpoints-file",
        str(ep_file), "--state-dir", str(state), "--results", str(tmp_path / "r"),
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        text = journal.read_text() if journal.exists() else ""
        if text.count('"status": "done"') >= 3:
            break
        if proc.poll() is not None:
            pytest.fail(f"the run ended before it could be killed: {proc.stderr.read()}")
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    run.faults.clear("slow")
    first = [json.loads(x) for x in journal.read_text().splitlines() if x.strip()]
    done_before = {r["step"] for r in first if r.get("status") == "done"}
    assert 3 <= len(done_before) < 19

    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    records = [json.loads(x) for x in journal.read_text().splitlines() if x.strip()][len(first) :]
    rerun = [r["step"] for r in records if r.get("status") == "started"]
    # Nothing finished before the kill ran again.
    assert not done_before & set(rerun)
    finals = [r for r in first + records if r.get("status") in ("done", "already-done")]
    steps = [r["step"] for r in finals]
    assert len(steps) == len(set(steps))  # each step completed once
    assert OnpremHosts.from_endpoints(run.endpoints).host("EX01")["state"] == "Uninstalled"


def test_a_messy_org_remediated_through_the_apis_then_retires(tmp_path, capsys):
    """Messy, minus what has no API here (mailbox moves, a Connect upgrade): each blocker is
    remedied the way its remedy says, through the same wire APIs, then the plan runs; the stale
    EXO objects (one routing through the HCW connector) and the leftover service are handled."""
    from harness.clients.http import GRAPH_SCOPE
    from harness.decommission.ems import ExchangeShell

    run = start(org_preset="messy", onprem_mailboxes=0, connect_build="2.5.190.0")
    ep = run.endpoints
    try:
        healthy_job(run, tmp_path / "state")
        rc, plan = decommission(run, tmp_path, "--plan", capsys=capsys)
        assert rc == 1 and len(plan["blockers"]) == 7, [b["code"] for b in plan["blockers"]]
        with ExchangeShell.from_endpoints(ep).open() as shell:
            for m in shell.invoke("Get-Mailbox", Arbitration=True):
                shell.invoke(
                    "Disable-Mailbox", Identity=m["Identity"], Arbitration=True,
                    DisableLastArbitrationMailboxAllowed=True,
                )  # fmt: skip
            for m in shell.invoke("Get-Mailbox", PublicFolder=True):
                shell.invoke("Disable-Mailbox", Identity=m["Identity"], PublicFolder=True)
        hosts = OnpremHosts.from_endpoints(ep)
        for relay in hosts.smtp_receive_log("EX01"):
            hosts.forget_relay_client("EX01", relay["clientIp"])
        for zone in hosts.zones():
            name = zone["name"]
            hosts.put_record(
                name, "@", "MX", [f"0 {name.replace('.', '-')}.mail.protection.outlook.com."]
            )
            hosts.put_record(name, "autodiscover", "CNAME", ["autodiscover.outlook.com."])
        graph = ExoAdmin(
            ep.graph_url, ep.token_url, ep.client_id, ep.client_secret, scope=GRAPH_SCOPE
        )
        with exo(run) as admin, graph:
            admin.invoke("Set-OrganizationConfig", PublicFoldersEnabled="Local")
            for m in admin.invoke_all(
                "Get-Mailbox", Filter="IsDirSynced -eq $true -and IsExchangeCloudManaged -eq $false"
            ):
                admin.invoke(
                    "Set-Mailbox",
                    Identity=m["ExternalDirectoryObjectId"],
                    IsExchangeCloudManaged=True,
                )
            for kind, cmdlet in (
                ("groups", "Get-DistributionGroup"),
                ("contacts", "Get-MailContact"),
            ):
                for o in admin.invoke_all(cmdlet):
                    if o["IsDirSynced"]:
                        path = (
                            f"/v1.0/{kind}/{o['ExternalDirectoryObjectId']}/onPremisesSyncBehavior"
                        )
                        graph.request("PATCH", path, {"isCloudManaged": True})
        healthy_job(run, tmp_path / "state")  # the flipped mailboxes reach AD
        rc, plan = decommission(run, tmp_path, "--plan", capsys=capsys)
        assert rc == 0, [b["code"] for b in plan["blockers"]]
        rc, done = decommission(run, tmp_path, "--execute", capsys=capsys)
        assert rc == 0, done["error"]
        assert done["serverState"] == "Uninstalled" and done["finished"]
        assert any("MSExchangeTransport" in x["what"] for x in done["leftovers"])
        with exo(run) as admin:
            assert admin.invoke_all("Get-OutboundConnector") == []
            assert all(
                "mail.contoso.com" not in json.dumps(r)
                for r in admin.invoke_all("Get-TransportRule")
            )
    finally:
        run.stop()
