"""`exwb serve --writeback` as a user runs it: a child process on the wall clock whose job writes
an administrator's Exchange Online edit to AD by itself, with no cycle run by hand."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
from ldap3 import BASE, NONE, Connection, Server

from harness.core.endpoints import Endpoints
from harness.tenant import TenantSpec, generate
from mockservers.runtime import spawn_serve
from tests.cloud.http_client import token
from tests.engine.exo_client import ExoAdmin
from tests.support.engine import mailbox_pairs

SPEC = TenantSpec(mailboxes=40, seed=5)  # the tenant `exwb serve -n 40 --seed 5` generates
WAIT = 90.0  # seconds an edit may take to arrive (generous: the machine is shared)


def ad_value(ep: Endpoints, dn: str, attr: str) -> list[str]:
    conn = Connection(Server(ep.ldap_url, get_info=NONE), ep.reader_dn, ep.reader_password)
    assert conn.bind(), conn.result
    try:
        conn.search(dn, "(objectClass=*)", BASE, attributes=[attr])
        return sorted(v.decode() for v in conn.response[0]["raw_attributes"].get(attr) or [])
    finally:
        conn.unbind()


def exwb(*argv: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "harness", *argv]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def ran(job_dir: Path) -> int:
    """Cycles the job in `job_dir` has run (its state file's count)."""
    return int(json.loads((job_dir / "state.json").read_text()).get("cycles", 0))


def serve_job(tmp_path: Path, *options: str) -> tuple[subprocess.Popen[str], Path, Path]:
    """`exwb serve` of SPEC's tenant with its job in tmp_path/job: (process, endpoints, job)."""
    job_dir = tmp_path / "job"
    path = tmp_path / "endpoints.json"
    served = ("-n", "40", "--seed", "5", "--writeback", "--job-state", str(job_dir))
    return spawn_serve(path, *served, *options, timeout=120), path, job_dir


def test_an_edit_in_exchange_online_arrives_in_ad_by_itself(tmp_path):
    user, mbx = mailbox_pairs(generate(SPEC), True)[0]
    proc, path, job_dir = serve_job(tmp_path, "--interval", "PT1S")
    try:
        ep = Endpoints(**json.loads(path.read_text()))
        deadline = time.monotonic() + WAIT
        # After the initial round, so that a scheduled delta cycle is what brings the edit.
        while not (job_dir / "state.json").exists() or not ran(job_dir):
            assert time.monotonic() < deadline, "the served job never ran its first cycle"
            time.sleep(0.2)
        ExoAdmin(ep).set_mailbox(mbx.id, CustomAttribute7="arrived by itself")
        while ad_value(ep, user.dn, "extensionAttribute7") != ["arrived by itself"]:
            assert time.monotonic() < deadline, "the served job never wrote the edit"
            time.sleep(0.2)
        status = exwb("status", "--state-dir", str(job_dir), "--json")
        assert status.returncode == 0, status.stderr
        job = json.loads(status.stdout)
        assert job["schedule"] == {"interval": "PT1S", "state": "Active"}
        assert job["exwb"]["nextRun"] is not None and job["exwb"]["cycles"] >= 2
        assert job["status"]["lastExecution"]["state"] == "Succeeded"
        # The job's provisioning log through Graph, as the user's automation reads it.
        logs = httpx.get(
            f"{ep.graph_url}/v1.0/auditLogs/provisioning",
            params={"$filter": f"provisioningAction eq 'update' and jobId eq '{job['id']}'"},
            headers={"Authorization": f"Bearer {token(ep, readonly=True)}"},
            timeout=60,
        )
        assert logs.status_code == 200, logs.text
        assert mbx.id in {r["sourceIdentity"]["id"] for r in logs.json()["value"]}
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert f"writeback job  {job_dir}  (every PT1S, profile ga" in out
    assert (job_dir / "state.json").exists()  # kept: it was given


def test_the_served_job_state_is_temporary_without_a_state_dir(tmp_path):
    path = tmp_path / "endpoints.json"
    proc = spawn_serve(path, "-n", "20", "--writeback", timeout=120)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    line = next(x for x in out.splitlines() if "writeback job" in x)
    assert "(every PT20M, profile ga; removed on exit)" in line
    assert not Path(line.split()[2]).exists()


def test_a_bad_interval_is_refused_before_anything_is_served():
    done = exwb("serve", "-n", "20", "--writeback", "--interval", "20 minutes")
    assert done.returncode == 2
    assert "argument --interval" in done.stderr and "ISO 8601" in done.stderr


def test_exwb_clock_runs_the_served_jobs_cycles_that_fall_due(tmp_path):
    """On simulated time nothing runs until the clock moves; `exwb clock --advance` (the admin
    route, as the read-write app) runs each 20-minute cycle that falls due, and an EXO edit
    made meanwhile reaches AD in the next one."""
    user, mbx = mailbox_pairs(generate(SPEC), True)[0]
    proc, path, job_dir = serve_job(
        tmp_path, "--clock", "simulated", "--clock-start", "2026-01-05T09:00:00Z"
    )
    try:
        ep = Endpoints(**json.loads(path.read_text()))
        assert exwb("clock", "--endpoints-file", str(path)).stdout.strip() == (
            "simulated clock: 2026-01-05T09:00:00Z"
        )
        moved = exwb("clock", "--endpoints-file", str(path), "--advance", "PT1H", "--json")
        assert moved.returncode == 0, moved.stderr
        # Cycles at +0, +20, +40 and +60 minutes: the initial round, then three deltas.
        assert json.loads(moved.stdout) == {
            "kind": "simulated",
            "now": "2026-01-05T10:00:00Z",
            "ran": 4,
        }
        ExoAdmin(ep).set_mailbox(mbx.id, CustomAttribute7="on the next cycle")
        assert ad_value(ep, user.dn, "extensionAttribute7") != ["on the next cycle"]
        assert exwb("clock", "--endpoints-file", str(path), "--advance", "PT19M").returncode == 0
        assert ad_value(ep, user.dn, "extensionAttribute7") != ["on the next cycle"]
        late = exwb("clock", "--endpoints-file", str(path), "--to", "2026-01-05T10:20:00Z")
        assert late.stdout.strip().endswith("ran 1 scheduled item(s)"), late.stdout
        assert ad_value(ep, user.dn, "extensionAttribute7") == ["on the next cycle"]
        job = json.loads(exwb("status", "--state-dir", str(job_dir), "--json").stdout)
        assert job["exwb"]["cycles"] == 5
        assert job["exwb"]["nextRun"] == "2026-01-05T10:40:00Z"
        back = exwb("clock", "--endpoints-file", str(path), "--to", "2026-01-01T00:00:00Z")
        assert back.returncode == 1 and "cannot go backwards" in back.stdout
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=120)


def test_exwb_clock_on_the_wall_clock_and_bad_input(tmp_path):
    path = tmp_path / "endpoints.json"
    proc = spawn_serve(path, "-n", "5", timeout=120)
    try:
        assert exwb("clock", "--endpoints-file", str(path)).stdout.startswith("wall clock: ")
        refused = exwb("clock", "--endpoints-file", str(path), "--advance", "PT1H")
        assert refused.returncode == 1 and "409" not in refused.stdout  # Graph's code, not a number
        assert refused.stdout.startswith("exwb clock: ") and "wall" in refused.stdout.lower()
        bad = exwb("clock", "--endpoints-file", str(path), "--advance", "1 hour")
        assert bad.returncode == 2 and "ISO 8601" in bad.stderr
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=120)
    missing = exwb("clock", "--endpoints-file", str(tmp_path / "none.json"))
    assert missing.returncode == 2 and "none.json" in missing.stderr
