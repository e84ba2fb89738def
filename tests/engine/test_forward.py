"""Forward sync (Entra Connect model, AD -> cloud) over the wire: fake AD over LDAP, fake cloud
over HTTP, edits made as an admin would make them (LDAP modify, Set-Mailbox)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from ldap3 import MODIFY_ADD, MODIFY_REPLACE, NONE, Connection, Server

from harness.core.endpoints import Endpoints
from harness.engine.forward import (
    DEFAULT_BUILD,
    honours_cloud_management,
    parse_build,
    run_forward,
)
from harness.engine.forward import connect_credentials as credentials
from harness.tenant import AdUser, CloudMailbox, TenantSpec, generate
from mockservers.runtime import spawn_serve
from tests.cloud.http_client import call, cmdlet, token
from tests.directory.ldap_clients import connect
from tests.support.engine import mailbox_pairs

TENANT = generate(TenantSpec(mailboxes=80, seed=31, cloud_managed_fraction=0.7))
OLD_BUILD = "2.5.76.0"  # the preview's requirement: pushes Exchange attributes regardless


def forward(run, state_dir: Path, build: str = DEFAULT_BUILD):
    return run_forward(*credentials(run.endpoints), state_dir, build)


def pairs(managed: bool) -> list[tuple[AdUser, CloudMailbox]]:
    return mailbox_pairs(TENANT, managed)


def graph_user(run, user_id: str) -> dict:
    ep = run.endpoints
    select = (
        "displayName,userPrincipalName,proxyAddresses,onPremisesExtensionAttributes,exwbExchange"
    )
    r = call("GET", f"{ep.graph_url}/v1.0/users/{user_id}?$select={select}", token=token(ep, True))
    assert r.status == 200, r.body
    return r.body


def custom(run, user_id: str, n: int) -> str | None:
    return graph_user(run, user_id)["onPremisesExtensionAttributes"][f"extensionAttribute{n}"]


def set_mailbox(run, user_id: str, **params) -> None:
    r = cmdlet(run.endpoints, token(run.endpoints), "Set-Mailbox", Identity=user_id, **params)
    assert r.status == 200, r.body


def ad_edit(run, dn: str, **values) -> None:
    admin = connect(run)
    assert admin.modify(dn, {k: [(MODIFY_REPLACE, v)] for k, v in values.items()}), admin.result


def log_lines(report) -> list[dict]:
    return [json.loads(x) for x in report.log_path.read_text(encoding="utf-8").splitlines()]


def test_a_consistent_tenant_exports_nothing(run, tmp_path):
    report = forward(run, tmp_path)
    synced = sum(1 for _ in TENANT.synced_pairs())
    assert (report.exported, report.failed, report.unchanged) == (0, 0, synced)
    assert report.ad_users == synced and report.cloud_objects == len(TENANT.mailboxes)
    assert not report.skipped and report.log_path.name == "forward-000001.jsonl"
    assert log_lines(report) == []
    assert forward(run, tmp_path, OLD_BUILD).exported == 0  # no drift: nothing to revert either


def test_identity_attributes_flow_for_every_synced_user(run, tmp_path):
    (managed_user, managed), (plain_user, plain) = pairs(True)[0], pairs(False)[0]
    new_upn = f"renamed.{plain.alias}@{TENANT.spec.domain}"
    ad_edit(run, managed_user.dn, displayName=["Renamed In AD"])
    ad_edit(run, plain_user.dn, displayName=["Also Renamed"], userPrincipalName=[new_upn])
    report = forward(run, tmp_path)
    assert (report.exported, report.failed, report.withheld, report.reverted) == (2, 0, 0, 0)
    assert report.attributes == {"displayName": 2, "userPrincipalName": 1}
    assert graph_user(run, managed.id)["displayName"] == "Renamed In AD"
    assert graph_user(run, plain.id)["displayName"] == "Also Renamed"
    assert graph_user(run, new_upn)["userPrincipalName"] == new_upn  # resolvable by the new UPN
    gone = call(
        "GET",
        f"{run.endpoints.graph_url}/v1.0/users/{plain.user_principal_name}",
        token=token(run.endpoints, True),
    )
    assert gone.status == 404
    lines = {x["targetId"]: x for x in log_lines(report)}
    assert set(lines) == {managed.id, plain.id}
    entry = lines[managed.id]
    assert entry["status"] == "Success" and entry["sourceDn"] == managed_user.dn
    assert entry["sourceAnchor"] == managed.immutable_id
    assert entry["modifiedProperties"] == [
        {
            "displayName": "displayName",
            "oldValue": managed.display_name,
            "newValue": "Renamed In AD",
        }
    ]
    assert entry["exchangeAttributesPushed"] is False
    again = forward(run, tmp_path)  # idempotent
    assert again.exported == 0 and again.log_path.name == "forward-000002.jsonl"


def test_exchange_attributes_flow_only_for_mailboxes_not_cloud_managed(run, tmp_path):
    (managed_user, managed), (plain_user, plain) = pairs(True)[1], pairs(False)[1]
    extra = f"smtp:{plain.alias}.onprem@{TENANT.spec.domain}"
    for user in (managed_user, plain_user):
        ad_edit(run, user.dn, extensionAttribute3=["edited on-premises"])
    admin = connect(run)
    assert admin.modify(plain_user.dn, {"proxyAddresses": [(MODIFY_ADD, [extra])]})
    ad_edit(run, plain_user.dn, msExchHideFromAddressLists=["TRUE"])
    report = forward(run, tmp_path)
    assert (report.exported, report.withheld, report.reverted) == (1, 1, 0)
    assert report.attributes == {
        "extensionAttribute3": 1,
        "proxyAddresses": 1,
        "msExchHideFromAddressLists": 1,
    }
    assert custom(run, plain.id, 3) == "edited on-premises"
    got = graph_user(run, plain.id)
    assert extra in got["proxyAddresses"]
    assert got["exwbExchange"]["hiddenFromAddressListsEnabled"] is True
    assert custom(run, managed.id, 3) == managed.custom_attributes[2]  # the cloud keeps its own
    again = forward(run, tmp_path)
    assert (again.exported, again.withheld) == (0, 1)  # still differs, still held back


def test_an_old_connect_build_reverts_cloud_edits(run, tmp_path):
    user, mbx = pairs(True)[2]
    set_mailbox(run, mbx.id, CustomAttribute1="edited in Exchange Online")
    current = forward(run, tmp_path)
    assert (current.exported, current.withheld) == (0, 1)
    assert custom(run, mbx.id, 1) == "edited in Exchange Online"
    old = forward(run, tmp_path, OLD_BUILD)
    assert not old.honours_cloud_management
    assert (old.exported, old.reverted, old.withheld) == (1, 1, 0)
    assert old.attributes == {"extensionAttribute1": 1}
    assert custom(run, mbx.id, 1) == user.extension_attributes[0]  # AD's value is back
    (entry,) = log_lines(old)
    assert entry["connectBuild"] == OLD_BUILD and entry["isExchangeCloudManaged"] is True
    assert entry["exchangeAttributesPushed"] is True
    assert entry["modifiedProperties"][0]["oldValue"] == "edited in Exchange Online"
    assert forward(run, tmp_path, OLD_BUILD).exported == 0  # idempotent


def test_flipping_cloud_management_off_makes_ad_win(run, tmp_path):
    user, mbx = pairs(True)[3]
    set_mailbox(run, mbx.id, CustomAttribute2="cloud value", ExtensionCustomAttribute1=["c"])
    assert forward(run, tmp_path).exported == 0
    set_mailbox(run, mbx.id, IsExchangeCloudManaged=False)
    report = forward(run, tmp_path)
    assert (report.exported, report.reverted, report.withheld) == (1, 0, 0)
    assert report.attributes == {"extensionAttribute2": 1, "msExchExtensionCustomAttribute1": 1}
    got = graph_user(run, mbx.id)
    assert (
        got["onPremisesExtensionAttributes"]["extensionAttribute2"]
        == (user.extension_attributes[1])
    )
    assert got["exwbExchange"]["extensionCustomAttribute1"] == list(
        user.extension_custom_attributes[0]
    )
    assert forward(run, tmp_path).exported == 0


def test_a_refused_object_is_logged_and_the_cycle_goes_on(run, tmp_path):
    (user, mbx), (other_user, other) = pairs(False)[4], pairs(False)[5]
    taken = next(a for a in other.email_addresses if a.startswith("smtp:"))
    admin = connect(run)
    assert admin.modify(user.dn, {"proxyAddresses": [(MODIFY_ADD, [taken])]}), admin.result
    ad_edit(run, other_user.dn, displayName=["Still Exported"])
    report = forward(run, tmp_path)
    assert (report.exported, report.failed) == (1, 1)
    failure = next(x for x in log_lines(report) if x["status"] == "Failure")
    assert failure["targetId"] == mbx.id and failure["errorCode"] == "AttributeValueMustBeUnique"
    assert taken not in graph_user(run, mbx.id)["proxyAddresses"]
    assert graph_user(run, other.id)["displayName"] == "Still Exported"
    assert forward(run, tmp_path).failed == 1  # the conflict stays until AD is fixed


def test_exports_go_in_batches(run, tmp_path):
    chosen = pairs(False)[:7]
    for i, (user, _) in enumerate(chosen):
        ad_edit(run, user.dn, extensionAttribute15=[f"batch {i}"])
    report = run_forward(*credentials(run.endpoints), tmp_path, batch_size=3)
    assert report.exported == 7 and report.attributes == {"extensionAttribute15": 7}
    assert [custom(run, m.id, 15) for _, m in chosen] == [f"batch {i}" for i in range(7)]


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("2.5.190.0", (2, 5, 190, 0)),
        (" 2.5.76.0 ", (2, 5, 76, 0)),
        ("2.5.190", (2, 5, 190, 0)),
        ("2.10.0.0", (2, 10, 0, 0)),
    ],
)
def test_builds_parse_as_dotted_integers(text, parsed):
    assert parse_build(text) == parsed


def test_the_build_rule_compares_numbers_not_text():
    assert honours_cloud_management("2.5.190.0") and honours_cloud_management("2.10.0.0")
    assert honours_cloud_management("2.5.1000.0") and honours_cloud_management("3.0.0.0")
    assert not honours_cloud_management("2.5.76.0") and not honours_cloud_management("2.5.189.9")
    assert not honours_cloud_management("2.4.999.0")


@pytest.mark.parametrize(
    "text", ["", "2", "2.5.x.0", "2..5.0", "2.5.190.0.1", "v2.5.190.0", "-2.5"]
)
def test_malformed_builds_are_refused(text):
    with pytest.raises(ValueError, match="dotted integers"):
        parse_build(text)


def test_cli_forward(tmp_path):
    endpoints = tmp_path / "endpoints.json"
    proc = spawn_serve(endpoints, "--mailboxes", "40", "--seed", "5", "-q")
    try:
        ep = Endpoints.read(endpoints)
        exwb = [sys.executable, "-m", "harness", "forward", "--endpoints-file", str(endpoints)]
        state = ["--state-dir", str(tmp_path / "state")]

        def forward_cli(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run([*exwb, *args], capture_output=True, text=True, timeout=120)

        res = forward_cli(*state, "--json")
        assert res.returncode == 0, res.stdout + res.stderr
        first = json.loads(res.stdout)
        assert first["exported"] == 0 and first["connectBuild"] == DEFAULT_BUILD
        admin = Connection(Server(ep.ldap_url, get_info=NONE), ep.admin_dn, ep.admin_password)
        assert admin.bind()
        admin.search(ep.base_dn, "(&(objectClass=user)(mS-DS-ConsistencyGuid=*))")
        dn = admin.response[0]["dn"]
        assert admin.modify(dn, {"displayName": [(MODIFY_REPLACE, ["Edited Via LDAP"])]})
        admin.unbind()
        res = forward_cli(*state, "--json", "--connect-build", OLD_BUILD)
        assert res.returncode == 0, res.stdout + res.stderr
        report = json.loads(res.stdout)
        assert report["exported"] == 1 and report["attributes"] == {"displayName": 1}
        assert report["honoursCloudManagement"] is False
        assert Path(report["log"]).name == "forward-000002.jsonl"
        res = forward_cli(*state)  # the table
        assert res.returncode == 0 and "forward sync, Connect 2.5.190.0" in res.stdout
        for args in (
            ["--connect-build", "2.5.x"],
            ["--connect-build", ""],
        ):
            bad = forward_cli(*state, *args)
            assert bad.returncode == 2 and "Traceback" not in bad.stderr
            assert bad.stderr.count("\n") == 1 and "--connect-build" in bad.stderr
    finally:
        proc.terminate()
        proc.communicate(timeout=60)
    missing = subprocess.run(
        [sys.executable, "-m", "harness", "forward", "--endpoints-file", str(endpoints)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert missing.returncode == 2 and "Traceback" not in missing.stderr
    assert missing.stderr.startswith("exwb forward: error: --endpoints-file")
