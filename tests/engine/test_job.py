"""The writeback job around the cycles: mass-change guard, provision on demand, escrow and
quarantine, job health (`exwb status`), and explicit connection settings for `exwb cycle`."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
from datetime import timedelta

import pytest

from harness.cli import main
from harness.engine import log as provlog
from harness.engine.cycle import CycleError, CycleOptions, run_cycle, run_on_demand
from harness.engine.health import QuarantinePolicy
from harness.engine.rules import GA, load_profile
from harness.engine.state import EngineState
from tests.engine.test_cycle import TENANT, ad_values, edit
from tests.support.engine import (
    log_entries,
    mailbox_pairs,
    simulated_time,
    writeback_credentials,
)


def managed(n: int):
    return mailbox_pairs(TENANT, True)[:n]


def set_ca1(run, items, value: str) -> None:
    for i, (_, mbx) in enumerate(items):
        edit(run, mbx, custom_attributes=lambda m, i=i: (f"{value}-{i}", *m.custom_attributes[1:]))


# --- mass-change guard ---------------------------------------------------------------------


def test_mass_change_guard_stops_before_any_export(run, tmp_path):
    run_cycle(*writeback_credentials(run.endpoints), GA, tmp_path)  # initial: nothing to write
    link = EngineState.load(tmp_path).delta_link
    items = managed(8)
    set_ca1(run, items, "mass")
    guarded = CycleOptions(mass_change_threshold=5)
    report = run_cycle(*writeback_credentials(run.endpoints), GA, tmp_path, "delta", guarded)
    assert report.stopped and "8 objects would change" in report.stopped
    assert report.actions["Update"] == 8 and report.statuses == {"Skipped": 8}
    assert not report.watermark_moved and EngineState.load(tmp_path).delta_link == link
    for i, (user, _) in enumerate(items):  # nothing reached AD
        assert ad_values(run, user.dn, "extensionAttribute1") != [f"mass-{i}"]
    assert {provlog.reason(e) for e in log_entries(report)} == {"mass-change threshold exceeded"}
    assert report.job_state == "Quarantine"
    assert EngineState.load(tmp_path).quarantine.reason == "MassChangeThresholdExceeded"

    # The same delta, allowed: every held change is written and the job is Active again.
    allowed = dataclasses.replace(guarded, allow_mass_change=True)
    report = run_cycle(*writeback_credentials(run.endpoints), GA, tmp_path, "delta", allowed)
    assert report.stopped is None and report.actions["Update"] == 8
    assert report.statuses == {"Success": 8} and report.job_state == "Active"
    for i, (user, _) in enumerate(items):
        assert ad_values(run, user.dn, "extensionAttribute1") == [f"mass-{i}"]


def test_guard_at_exactly_the_threshold_lets_the_cycle_export(run, tmp_path):
    run_cycle(*writeback_credentials(run.endpoints), GA, tmp_path)
    set_ca1(run, managed(5), "edge")
    report = run_cycle(
        *writeback_credentials(run.endpoints),
        GA,
        tmp_path,
        "delta",
        CycleOptions(mass_change_threshold=5),
    )
    assert report.stopped is None and report.actions["Update"] == 5


def test_without_a_threshold_there_is_no_guard(run, tmp_path, capsys):
    """The guard is a harness extension: a cycle, the CLI and a scenario run without it unless
    a threshold is set, as the real job has none."""
    assert CycleOptions().mass_change_threshold is None
    run_cycle(*writeback_credentials(run.endpoints), GA, tmp_path)
    items = managed(40)
    set_ca1(run, items, "unguarded")
    report = run_cycle(*writeback_credentials(run.endpoints), GA, tmp_path, "delta")
    assert report.stopped is None and report.statuses == {"Success": 40}
    endpoints = tmp_path / "endpoints.json"
    run.endpoints.write(endpoints)
    common = ["cycle", "--endpoints-file", str(endpoints), "--state-dir", str(tmp_path)]
    set_ca1(run, items, "cli-unguarded")
    code, out = cli(capsys, *common)
    assert code == 0 and "mass-change" not in out
    for i, (user, _) in enumerate(items):
        assert ad_values(run, user.dn, "extensionAttribute1") == [f"cli-unguarded-{i}"]


# --- provision on demand -------------------------------------------------------------------


def test_on_demand_runs_the_four_steps_and_keeps_the_watermark(run, tmp_path):
    run_cycle(*writeback_credentials(run.endpoints), GA, tmp_path)
    before = EngineState.load(tmp_path)
    (user, mbx), (other_user, other) = managed(2)
    set_ca1(run, [(user, mbx), (other_user, other)], "pod")
    pod = run_on_demand(*writeback_credentials(run.endpoints), GA, tmp_path, mbx.id)
    assert pod.status == "Success"
    assert [(s["name"], s["provisioningStepType"], s["status"]) for s in pod.steps] == [
        ("EntryImport", "Import", "Success"),
        ("EntryImport", "Matching", "Success"),
        ("EntrySynchronizationScoping", "Scoping", "Success"),
        ("EntryExportUpdate", "Export", "Success"),
    ]
    assert provlog.modified(pod.entry) == [
        {
            "displayName": "extensionAttribute1",
            "oldValue": [mbx.custom_attributes[0]] if mbx.custom_attributes[0] else [],
            "newValue": ["pod-0"],
        }
    ]
    assert ad_values(run, user.dn, "extensionAttribute1") == ["pod-0"]
    assert ad_values(run, other_user.dn, "extensionAttribute1") != ["pod-1"]  # only that one
    after = EngineState.load(tmp_path)
    assert after.delta_link == before.delta_link and after.cycles == before.cycles
    # The next delta still sees both edits; the one written on demand needs nothing more.
    report = run_cycle(*writeback_credentials(run.endpoints), GA, tmp_path)
    assert report.actions["Update"] == 1 and report.statuses["Success"] == 2


def test_on_demand_reports_scoping_and_unknown_objects(run, tmp_path):
    _, mbx = mailbox_pairs(TENANT, False)[0]
    pod = run_on_demand(
        *writeback_credentials(run.endpoints), GA, tmp_path, mbx.user_principal_name
    )  # a UPN works too
    assert pod.status == "Skipped"
    assert [s["status"] for s in pod.steps] == ["Success", "Success", "Skipped"]
    assert "IsExchangeCloudManaged is false" in pod.steps[2]["description"]
    missing = run_on_demand(
        *writeback_credentials(run.endpoints), GA, tmp_path, "00000000-0000-0000-0000-000000000000"
    )
    assert missing.status == "Failure" and provlog.error_code(missing.entry) == 404
    assert EngineState.load(tmp_path).escrow == {}  # nothing there to retry


# --- escrow and quarantine -----------------------------------------------------------------


@pytest.fixture
def denied_profile(tmp_path):
    """A custom profile whose extra target the writeback account may not write (ACL: 50)."""
    path = tmp_path / "hide.yaml"
    path.write_text(
        "based_on: ga\nname: hide\nmappings:\n"
        "  - target: msExchHideFromAddressLists\n"
        "    expression: '\"TRUE\"'\n",  # hide everyone: a write the ACL denies
        encoding="utf-8",
    )
    return load_profile(path)


def test_per_object_failures_are_escrowed_and_quarantine_the_job(run, tmp_path, denied_profile):
    with simulated_time() as sim:
        escrow_and_recover(run, tmp_path, denied_profile, sim)


def escrow_and_recover(run, tmp_path, denied_profile, sim):
    state_dir = tmp_path / "state"
    report = run_cycle(*writeback_credentials(run.endpoints), denied_profile, state_dir, "full")
    in_scope = len([m for _, m in mailbox_pairs(TENANT, True) if not m.hidden_from_address_lists])
    assert report.statuses["Failure"] == in_scope  # each one denied, none stopped the cycle
    assert any("outside the documented writeback set" in w for w in report.warnings)
    failures = [e for e in log_entries(report) if provlog.status(e) == "Failure"]
    assert {provlog.error_code(e) for e in failures} == {50}
    assert all("INSUFF_ACCESS_RIGHTS" in provlog.reason(e) for e in failures)
    # The initial cycle reached the thresholds: its escrows are pruned and the job paused
    # (Graph's synchronizationStatus.escrowsPruned), not quarantined.
    state = EngineState.load(state_dir)
    assert state.escrows_pruned and state.paused and state.quarantine is None
    assert state.escrow == {} and report.job_state == "Paused"
    state.paused = False
    state.save(state_dir)
    # A later full round is no initial cycle: its failures are escrowed and quarantine the job.
    report = run_cycle(*writeback_credentials(run.endpoints), denied_profile, state_dir, "full")
    state = EngineState.load(state_dir)
    assert len(state.escrow) == in_scope and report.escrowed == in_scope
    assert state.quarantine is not None
    assert state.quarantine.reason == "EncounteredEscrowProportionThreshold"
    assert report.job_state == "Quarantine"

    # A delta with nothing new retries the escrowed objects once due, 6 h on (attempts grow).
    sim.advance(timedelta(hours=6))
    again = run_cycle(*writeback_credentials(run.endpoints), denied_profile, state_dir)
    assert again.statuses["Failure"] == in_scope
    assert {e.attempts for e in EngineState.load(state_dir).escrow.values()} == {2}

    # Fixed (the documented GA mapping): the escrowed objects succeed and the job recovers.
    fixed = run_cycle(*writeback_credentials(run.endpoints), GA, state_dir)
    assert fixed.statuses["Failure"] == 0 and fixed.job_state == "Active"
    assert EngineState.load(state_dir).escrow == {}


def test_thresholds_are_the_documented_ones_scaled_down():
    assert QuarantinePolicy.scaled(200_000) == QuarantinePolicy()
    assert QuarantinePolicy.scaled(600_000) == QuarantinePolicy()
    small = QuarantinePolicy.scaled(1_000)
    assert (small.min_failures, small.max_failures, small.absolute) == (25, 200, 300)
    assert QuarantinePolicy.scaled(10).min_failures == 10
    p = QuarantinePolicy()
    assert p.breached(4_999, 5_000, 4_999) is None  # below the evaluation floor
    assert p.breached(5_000, 10_000, 5_000) is not None  # 50% > 40%
    assert p.breached(5_000, 100_000, 5_000) is None  # 5%
    assert p.breached(100, 1_000_000, 40_001) is not None  # more than 40,000 escrowed
    assert p.breached(0, 1, 60_000) is not None  # the absolute limit


def test_refused_credentials_quarantine_the_job(run, tmp_path):
    cloud, ldap = writeback_credentials(run.endpoints)
    wrong = dataclasses.replace(ldap, password="not-the-password")
    with pytest.raises(CycleError, match="EncounteredQuarantineException"):
        run_cycle(cloud, wrong, GA, tmp_path)
    state = EngineState.load(tmp_path)
    assert state.quarantine.reason == "EncounteredQuarantineException"
    assert "49" in state.quarantine.detail and state.successive_failures == 1
    report = run_cycle(cloud, ldap, GA, tmp_path)  # fixed: the next cycle leaves quarantine
    assert report.job_state == "Active" and EngineState.load(tmp_path).quarantine is None


def test_a_tenant_above_the_profiles_limit_is_flagged(run, tmp_path):
    tiny = dataclasses.replace(GA, mailbox_limit=10)
    report = run_cycle(*writeback_credentials(run.endpoints), tiny, tmp_path, "full")
    assert any("exceed the ga profile's documented limit of 10" in w for w in report.warnings)
    assert not any(
        "limit" in w
        for w in run_cycle(*writeback_credentials(run.endpoints), GA, tmp_path / "b").warnings
    )


# --- exwb status and the CLI ---------------------------------------------------------------


def cli(capsys, *argv: str) -> tuple[int, str]:
    try:
        code = main(list(argv))
    except SystemExit as e:  # argparse's own usage errors
        code = int(e.code or 0)
    out = capsys.readouterr()
    return code, out.out + out.err


def test_status_pause_resume_restart(run, tmp_path, capsys):
    endpoints = tmp_path / "endpoints.json"
    run.endpoints.write(endpoints)
    state = str(tmp_path / "state")
    code, out = cli(capsys, "status", "--state-dir", state, "--json")
    assert code == 0 and json.loads(out)["status"]["code"] == "NotRun"

    code, out = cli(capsys, "cycle", "--endpoints-file", str(endpoints), "--state-dir", state)
    assert code == 0, out
    code, out = cli(capsys, "status", "--state-dir", state, "--json")
    job = json.loads(out)
    assert code == 0 and job["status"]["code"] == "Active"
    assert job["templateId"] == "Entra2ADExchangeOnlineAttributeWriteback"
    assert job["id"].startswith("Entra2ADExchangeOnlineAttributeWriteback.")
    assert job["schedule"]["interval"] == "PT20M"
    assert job["status"]["lastExecution"]["state"] == "Succeeded"
    assert job["status"]["synchronizedEntryCountByType"] == [
        {"key": "User to user", "value": len(mailbox_pairs(TENANT, True))}
    ]
    assert job["exwb"]["mailboxLimit"] == 600_000

    assert cli(capsys, "status", "--state-dir", state, "--pause")[0] == 1
    code, out = cli(capsys, "cycle", "--endpoints-file", str(endpoints), "--state-dir", state)
    assert code == 1 and "paused" in out
    (user, mbx) = managed(1)[0]
    set_ca1(run, [(user, mbx)], "while-paused")
    code, out = cli(  # provision on demand works on a paused job, as in the portal
        capsys, "cycle", "--endpoints-file", str(endpoints), "--state-dir", state, "--object",
        mbx.id, "--json",
    )  # fmt: skip
    assert code == 0 and provlog.status(json.loads(out)) == "Success"
    assert cli(capsys, "status", "--state-dir", state, "--resume")[0] == 0
    assert cli(capsys, "status", "--state-dir", state, "--restart")[0] == 0
    assert EngineState.load(tmp_path / "state").delta_link is None


def test_cli_guard_exit_codes(run, tmp_path, capsys):
    endpoints = tmp_path / "endpoints.json"
    run.endpoints.write(endpoints)
    common = ["cycle", "--endpoints-file", str(endpoints), "--state-dir", str(tmp_path / "s")]
    assert cli(capsys, *common)[0] == 0
    set_ca1(run, managed(4), "cli")
    code, out = cli(capsys, *common, "--mass-change-threshold", "3")
    assert code == 1 and "STOPPED: mass-change guard" in out
    code, out = cli(capsys, *common, "--mass-change-threshold", "3", "--allow-mass-change")
    assert code == 0, out
    code, out = cli(capsys, *common, "--mass-change-threshold", "-3")
    assert code == 2 and "must not be negative" in out


def test_cli_with_explicit_settings_and_secrets_from_file_and_environment(
    run, tmp_path, capsys, monkeypatch
):
    ep = run.endpoints
    password = tmp_path / "bind.pw"
    password.write_text(ep.bind_password + "\n", encoding="utf-8")
    monkeypatch.setenv("EXWB_CLIENT_SECRET", ep.readonly_client_secret)
    explicit = [
        "--ldap-url", ep.ldap_url, "--bind-dn", ep.bind_dn, "--bind-password-file",
        str(password), "--base-dn", ep.base_dn, "--graph-url", ep.graph_url, "--token-url",
        ep.token_url, "--client-id", ep.readonly_client_id,
    ]  # fmt: skip
    set_ca1(run, managed(2), "explicit")
    code, out = cli(capsys, "cycle", *explicit, "--state-dir", str(tmp_path / "s"), "--json")
    assert code == 0, out
    assert json.loads(out)["actions"]["Update"] == 2
    assert cli(capsys, "verify", *explicit)[0] == 0
    monkeypatch.delenv("EXWB_CLIENT_SECRET")
    code, out = cli(capsys, "verify", *explicit)
    assert code == 2 and "--client-secret-file or $EXWB_CLIENT_SECRET" in out
    assert ep.bind_password not in out
    code, out = cli(capsys, "verify", "--ldap-url", ep.ldap_url)
    assert code == 2 and "missing: --bind-dn" in out


@contextlib.contextmanager
def _reference_directory(kind: str, tmp_path, samba_contents, slapd_contents):
    """(url, writeback DN, its password) of a running slapd or Samba holding TENANT."""
    from harness.tenant.files import LDIF_NAME, write_tenant
    from tests.support.backends import require_samba, require_slapd, start_samba
    from tests.support.slapd import running_slapd

    if kind == "slapd":
        require_slapd()
        write_tenant(TENANT, tmp_path / "tenant")
        ldif = tmp_path / "tenant" / LDIF_NAME
        with running_slapd(ldif, TENANT.base_dn, durable=False) as info:
            yield info.url, info.service_dn, info.service_password
    else:
        require_samba()
        ad = start_samba(samba_contents(TENANT), slapd_contents(TENANT).endpoints)
        try:
            yield ad.endpoints.ldap_url, ad.endpoints.bind_dn, ad.endpoints.bind_password
        finally:
            ad.stop()


@pytest.mark.parametrize("kind", ["slapd", "samba"])
def test_cli_cycle_targets_a_real_directory_with_explicit_settings(
    kind, run, tmp_path, capsys, monkeypatch, samba_contents, slapd_contents
):
    """A user rehearses writeback into a real directory holding the same tenant: OpenLDAP slapd,
    or a Samba AD DC (an AD: schema, samldb's checks, the delegation as ACEs)."""
    if kind == "slapd" and os.environ.get("EXWB_SKIP_SLAPD") == "1":
        pytest.skip("slapd half disabled")
    ep = run.endpoints
    items = managed(3)
    set_ca1(run, items, kind)
    with _reference_directory(kind, tmp_path, samba_contents, slapd_contents) as (url, dn, pw):
        monkeypatch.setenv("EXWB_BIND_PASSWORD", pw)
        monkeypatch.setenv("EXWB_CLIENT_SECRET", ep.readonly_client_secret)
        explicit = [
            "--ldap-url", url, "--bind-dn", dn, "--base-dn", TENANT.base_dn,
            "--graph-url", ep.graph_url, "--token-url", ep.token_url, "--client-id",
            ep.readonly_client_id,
        ]  # fmt: skip
        code, out = cli(capsys, "cycle", *explicit, "--state-dir", str(tmp_path / "s"), "--json")
        assert code == 0, out
        assert json.loads(out)["actions"]["Update"] == 3
        assert cli(capsys, "verify", *explicit)[0] == 0
        again = json.loads(cli(capsys, "cycle", *explicit, "--state-dir", str(tmp_path / "s"),
                                "--json")[1])  # fmt: skip
        assert again["objects"] == 0
