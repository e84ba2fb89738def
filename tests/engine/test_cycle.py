"""Writeback cycles over the wire: the fake cloud's Graph API to the fake AD over LDAP."""

from __future__ import annotations

import json
from datetime import timedelta

from ldap3 import BASE, MODIFY_REPLACE

from harness.core import clock
from harness.engine import log as provlog
from harness.engine.cycle import Skip, run_cycle
from harness.engine.log import ProvisioningLog
from harness.engine.rules import GA, PREVIEW
from harness.tenant import TenantSpec, generate
from tests.directory.ldap_clients import connect
from tests.support.engine import mailbox_pairs, simulated_time, writeback_credentials

TENANT = generate(
    TenantSpec(
        mailboxes=120,
        seed=12,
        cloud_managed_fraction=0.8,
        special_cn_fraction=0.2,
        non_ascii_fraction=0.2,
    )
)


def cycle(run, state_dir, mode="delta", profile=GA):
    return run_cycle(*writeback_credentials(run.endpoints), profile, state_dir, mode)


def ad_values(run, dn, attr):
    conn = connect(run)
    conn.search(dn, "(objectClass=*)", BASE, attributes=[attr])
    return sorted(v.decode() for v in conn.response[0]["raw_attributes"].get(attr) or [])


def edit(run, mbx, **fields):
    store = run.cloud.store
    current = run.call(store.get, mbx.id)
    return run.call(
        store.update, mbx.id, {k: v(current) if callable(v) else v for k, v in fields.items()}
    )


def test_initial_cycle_on_a_consistent_tenant_writes_nothing(run, tmp_path):
    report = cycle(run, tmp_path)
    assert report.watermark_moved and report.statuses["Failure"] == 0
    assert report.actions.get("Update", 0) == 0
    managed = len(mailbox_pairs(TENANT, True))
    assert report.statuses["Success"] == managed
    lines = [json.loads(x) for x in report.log_path.read_text().splitlines()]
    assert len(lines) == len(TENANT.mailboxes)
    assert {provlog.status(x) for x in lines} == {"Success", "Skipped"}
    state = json.loads((tmp_path / "state.json").read_text())
    assert state["delta_link"] and state["cycles"] == 1


def test_delta_writes_exactly_the_cloud_edits(run, tmp_path):
    cycle(run, tmp_path)
    user, mbx = mailbox_pairs(TENANT, True)[0]
    new_custom = ("Written by EXO", *mbx.custom_attributes[1:])
    extra = f"smtp:{mbx.alias}.alt@contoso.com"
    edit(
        run,
        mbx,
        custom_attributes=new_custom,
        email_addresses=lambda m: (*m.email_addresses, extra),
    )
    report = cycle(run, tmp_path)
    assert report.actions["Update"] == 1 and report.statuses["Success"] == 1
    assert ad_values(run, user.dn, "extensionAttribute1") == ["Written by EXO"]
    assert extra in ad_values(run, user.dn, "proxyAddresses")
    entry = json.loads(report.log_path.read_text().splitlines()[0])
    assert provlog.action(entry) == "Update" and provlog.target_dn(entry) == user.dn
    assert {m["displayName"] for m in provlog.modified(entry)} == {
        "extensionAttribute1",
        "proxyAddresses",
    }
    steps = [(s["name"], s["provisioningStepType"]) for s in provlog.steps(entry)]
    assert steps == [
        ("EntryImport", "Import"),
        ("EntryImport", "Matching"),
        ("EntrySynchronizationScoping", "Scoping"),
        ("EntryExportUpdate", "Export"),
    ]
    again = cycle(run, tmp_path)  # idempotent: nothing left to write
    assert again.objects == 0


def test_out_of_scope_edits_never_reach_ad(run, tmp_path):
    cycle(run, tmp_path)
    user, mbx = mailbox_pairs(TENANT, False)[0]
    edit(run, mbx, custom_attributes=("cloud value", *mbx.custom_attributes[1:]))
    report = cycle(run, tmp_path)
    assert report.statuses["Skipped"] == 1 and report.actions.get("Update", 0) == 0
    assert ad_values(run, user.dn, "extensionAttribute1") == (
        [user.extension_attributes[0]] if user.extension_attributes[0] else []
    )


def test_dry_run_reports_and_writes_nothing(run, tmp_path):
    cycle(run, tmp_path)
    user, mbx = mailbox_pairs(TENANT, True)[1]
    edit(
        run,
        mbx,
        custom_attributes=(*mbx.custom_attributes[:4], "staged", *mbx.custom_attributes[5:]),
    )
    before = json.loads((tmp_path / "state.json").read_text())
    report = cycle(run, tmp_path, "dry-run")
    assert report.pending == [
        {
            "dn": user.dn,
            "displayName": "extensionAttribute5",
            "oldValue": [user.extension_attributes[4]] if user.extension_attributes[4] else [],
            "newValue": ["staged"],
        }
    ]
    assert ad_values(run, user.dn, "extensionAttribute5") != ["staged"]
    assert json.loads((tmp_path / "state.json").read_text()) == before  # watermark kept
    assert cycle(run, tmp_path).actions["Update"] == 1  # the real cycle then writes it


def test_full_cycle_repairs_drift_made_in_ad(run, tmp_path):
    cycle(run, tmp_path)
    user, _ = mailbox_pairs(TENANT, True)[2]
    admin = connect(run)
    assert admin.modify(user.dn, {"extensionAttribute2": [(MODIFY_REPLACE, ["edited by hand"])]})
    assert cycle(run, tmp_path).objects == 0  # a delta cycle does not see AD-side drift
    report = cycle(run, tmp_path, "full")
    assert report.actions["Update"] == 1
    want = [user.extension_attributes[1]] if user.extension_attributes[1] else []
    assert ad_values(run, user.dn, "extensionAttribute2") == want


def unwritable_edit(run, tmp_path):
    """A cloud edit of a mailbox whose AD user the writeback account may no longer write."""
    cycle(run, tmp_path)
    user, mbx = mailbox_pairs(TENANT, True)[3]
    admin = connect(run)
    # Moved out of OU=Corp: the writeback account may no longer write it (insufficient access).
    assert admin.modify_dn(
        user.dn,
        user.dn.split(",", 1)[0] if "\\," not in user.dn else "CN=Moved",
        new_superior=f"CN=Users,{run.endpoints.base_dn}",
    )
    edit(run, mbx, custom_attributes=("after the move", *mbx.custom_attributes[1:]))
    return mbx


def escrow_of(state_dir, object_id):
    return json.loads((state_dir / "state.json").read_text())["escrow"].get(object_id)


def test_failures_are_escrowed_and_retried_on_the_documented_schedule(run, tmp_path):
    with simulated_time() as sim:
        start = sim.now()
        mbx = unwritable_edit(run, tmp_path)
        failed = cycle(run, tmp_path)
        assert failed.statuses["Failure"] == 1
        entry = json.loads(failed.log_path.read_text().splitlines()[0])
        assert provlog.error_code(entry) == 50 and "INSUFF_ACCESS_RIGHTS" in provlog.reason(entry)
        first = escrow_of(tmp_path, mbx.id)
        assert first["code"] == 50 and first["attempts"] == 1
        assert first["next_attempt"] == clock.iso(start + timedelta(hours=6))
        sim.advance(timedelta(hours=5))
        assert cycle(run, tmp_path).statuses["Failure"] == 0  # not due yet: not retried
        assert escrow_of(tmp_path, mbx.id)["attempts"] == 1
        # +6 h, +12 h, +24 h after the first failure, then every 24 h (facts §4.3).
        for hours, attempts in ((6, 2), (12, 3), (24, 4), (48, 5)):
            sim.advance_to(start + timedelta(hours=hours))
            assert cycle(run, tmp_path).statuses["Failure"] == 1
            e = escrow_of(tmp_path, mbx.id)
            assert e["attempts"] == attempts and e["first_failed"] == first["first_failed"]
        assert e["next_attempt"] == clock.iso(start + timedelta(hours=72))


def test_an_escrow_entry_is_dropped_28_days_after_the_first_failure(run, tmp_path):
    with simulated_time() as sim:
        start = sim.now()
        mbx = unwritable_edit(run, tmp_path)
        cycle(run, tmp_path)
        sim.advance_to(start + timedelta(days=27, hours=1))
        assert cycle(run, tmp_path).statuses["Failure"] == 1  # still retried daily
        sim.advance_to(start + timedelta(days=28, hours=1))
        dropped = cycle(run, tmp_path)
        assert dropped.escrow_dropped == 1 and dropped.statuses["Failure"] == 0
        assert escrow_of(tmp_path, mbx.id) is None
        entries = [json.loads(x) for x in dropped.log_path.read_text().splitlines()]
        assert [provlog.reason(e) for e in entries if provlog.source_id(e) == mbx.id] == [
            Skip.ESCROW_EXPIRED.value
        ]


def test_an_escrowed_object_that_changes_is_processed_by_the_delta_at_once(run, tmp_path):
    with simulated_time():
        mbx = unwritable_edit(run, tmp_path)
        cycle(run, tmp_path)
        edit(run, mbx, custom_attributes=("changed again", *mbx.custom_attributes[1:]))
        assert cycle(run, tmp_path).statuses["Failure"] == 1  # a new event, not the schedule
        assert escrow_of(tmp_path, mbx.id)["attempts"] == 2


def test_a_dry_run_keeps_the_escrow_of_what_it_did_not_write(run, tmp_path):
    with simulated_time() as sim:
        mbx = unwritable_edit(run, tmp_path)
        assert cycle(run, tmp_path).escrowed == 1
        sim.advance(timedelta(hours=6))  # the retry is due
        dry = cycle(run, tmp_path, "dry-run")
    entries = [json.loads(x) for x in dry.log_path.read_text().splitlines()]
    assert [provlog.reason(e) for e in entries if provlog.source_id(e) == mbx.id] == ["dry run"]
    assert dry.escrowed == 1  # not written, so the failure still stands


def test_log_files_are_numbered_one_per_file_in_the_order_written(tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "cycle-000002.jsonl").write_text("")  # a crashed cycle's log, its state unsaved
    (logs / "cycle-000002.2.jsonl").write_text("")  # an older exwb's name for the retry
    written = [
        ProvisioningLog(tmp_path, "retry"),
        ProvisioningLog(tmp_path, "next"),
        ProvisioningLog(tmp_path, "pod", kind="ondemand"),
    ]
    for log in written:
        log.close()
    names = [log.path.name for log in written]
    assert names == ["cycle-000003.jsonl", "cycle-000004.jsonl", "ondemand-000001.jsonl"]
    cycles = sorted(p.name for p in logs.glob("cycle-??????.jsonl"))
    assert cycles == ["cycle-000002.jsonl", "cycle-000003.jsonl", "cycle-000004.jsonl"]


def test_preview_profile_leaves_mail_alone(run, tmp_path):
    cycle(run, tmp_path, profile=PREVIEW)
    user, mbx = mailbox_pairs(TENANT, True)[4]
    new = f"{mbx.alias}.new@contoso.com"
    edit(
        run,
        mbx,
        windows_email_address=new,
        email_addresses=lambda m: (
            (*tuple(a.replace("SMTP:", "smtp:") for a in m.email_addresses), f"SMTP:{new}")
        ),
    )
    report = cycle(run, tmp_path, profile=PREVIEW)
    assert report.actions["Update"] == 1
    assert ad_values(run, user.dn, "mail") == [user.mail]
    assert f"SMTP:{new}" in ad_values(run, user.dn, "proxyAddresses")


def test_cli_cycle_and_verify(tmp_path):
    import subprocess
    import sys

    from mockservers.runtime import spawn_serve

    endpoints = tmp_path / "endpoints.json"
    proc = spawn_serve(endpoints, "--mailboxes", "80", "--seed", "3", "-q")
    try:
        exwb = [sys.executable, "-m", "harness"]
        common = ["--endpoints-file", str(endpoints)]
        res = subprocess.run(
            [*exwb, "verify", *common], capture_output=True, text=True, timeout=120
        )
        assert res.returncode == 0, res.stdout + res.stderr
        assert "clean" in res.stdout
        state = tmp_path / "state"
        res = subprocess.run(
            [*exwb, "cycle", *common, "--state-dir", str(state), "--json"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert res.returncode == 0, res.stdout + res.stderr
        assert json.loads(res.stdout)["watermarkMoved"] is True
        bad = subprocess.run(
            [*exwb, "cycle", "--endpoints-file", str(tmp_path / "missing.json")],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert bad.returncode == 2 and "Traceback" not in bad.stderr
    finally:
        proc.terminate()
        proc.communicate(timeout=60)
