"""`tenant: {from: DIR}`: a scenario run on a tenant folder (as exwb import writes it) instead
of a generated tenant, with the folder's writeback OUs; and the loader's refusals."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.scenario import load_scenario, run_scenario
from harness.scenario.reader import ScenarioError
from harness.tenant import TenantSpec, generate
from harness.tenant.files import MANIFEST_NAME, write_tenant
from harness.tenant.model import AdUser, CloudMailbox, Tenant
from tests.scenario.conftest import exwb_run, reports, write


@pytest.fixture(scope="module")
def tenant() -> Tenant:
    return generate(TenantSpec(mailboxes=120, seed=9))


def london(tenant: Tenant) -> str:
    return next(ou.dn for ou in tenant.ous if ou.name == "London")


def imported_folder(tenant: Tenant, root: Path) -> Path:
    """The tenant's files with an imported tenant's manifest: writeback only in London."""
    folder = root / "tenant"
    write_tenant(tenant, folder)
    path = folder / MANIFEST_NAME
    data = json.loads(path.read_text("utf-8"))
    del data["spec"]
    data.update(source="import", writeback_ous=[london(tenant)])
    data["domains"]["primary"] = tenant.spec.domain
    path.write_text(json.dumps(data, indent=2), "utf-8")
    return folder


def managed_pair(tenant: Tenant, inside: bool) -> tuple[AdUser, CloudMailbox]:
    ou = london(tenant)
    return next(
        (u, m)
        for u, m in tenant.synced_pairs()
        if m.is_exchange_cloud_managed
        and m.recipient_type_details == "UserMailbox"
        and "OU=Corp," in u.dn
        and u.dn.endswith("," + ou) == inside
    )


SCENARIO = """\
name: from_folder
tenant: {{from: tenant}}
steps:
  - cycle: {{mode: delta, name: initial}}
  - edit:
      select: {{upns: ["{inside}"], name: inside}}
      set: {{CustomAttribute1: "from-folder {{domain}}"}}
  - edit:
      select: {{upns: ["{outside}"], name: outside}}
      set: {{CustomAttribute1: "from-folder {{domain}}"}}
  - cycle: {{mode: delta, name: after}}
  - expect:
      - log: {{cycle: after, statuses: {{Success: 1, Failure: 1}}}}
      - error_codes: {{cycle: after, present: [50]}}
      - ad: {{select: inside, attribute: extensionAttribute1, value: "from-folder {{domain}}"}}
      - ad: {{select: outside, attribute: extensionAttribute1, lacks: "from-folder {{domain}}"}}
"""


def test_scenario_runs_on_the_folder_with_its_writeback_ous(tenant, tmp_path, capsys):
    imported_folder(tenant, tmp_path)
    (_, inside), (_, outside) = managed_pair(tenant, True), managed_pair(tenant, False)
    text = SCENARIO.format(inside=inside.user_principal_name, outside=outside.user_principal_name)
    path = write(tmp_path, "from_folder", text)
    scenario = load_scenario(path)
    assert scenario.tenant_from == tmp_path / "tenant"
    assert scenario.tenant.domain == tenant.spec.domain
    code, _, err = exwb_run(capsys, str(path), "--results", str(tmp_path / "results"))
    (report,) = reports(tmp_path / "results")
    assert report["verdict"] == "passed", (err, report["error"], report["expectations"])
    assert code == 0
    assert report["tenant"]["from"] == str(tmp_path / "tenant")
    assert report["tenant"]["recipients"] == len(tenant.mailboxes)


def test_a_generated_folder_keeps_its_spec(tenant, tmp_path):
    write_tenant(tenant, tmp_path / "gen")
    path = write(tmp_path, "gen", "name: gen\ntenant: {from: gen}\nsteps: [{cycle: delta}]\n")
    scenario = load_scenario(path)
    assert scenario.tenant == tenant.spec
    result = run_scenario(scenario, tmp_path / "out")
    assert result["verdict"] == "passed", result["error"]
    assert result["tenant"]["recipients"] == len(tenant.mailboxes)


@pytest.mark.parametrize(
    ("tenant_yaml", "line", "message"),
    [
        ("{from: tenant, mailboxes: 10}", 2, "tenant.from and tenant.mailboxes are exclusive"),
        ("\n  seed: 3\n  from: tenant", 3, "tenant.from and tenant.seed are exclusive"),
        ("{from: nowhere}", 2, "tenant.from: "),
        ("{form: tenant}", 2, "'from'"),
    ],
)
def test_loader_refusals_name_the_line(tenant, tmp_path, tenant_yaml, line, message):
    imported_folder(tenant, tmp_path)
    path = write(tmp_path, "bad", f"name: bad\ntenant: {tenant_yaml}\nsteps: [{{cycle: delta}}]\n")
    with pytest.raises(ScenarioError) as e:
        load_scenario(path)
    assert str(e.value).startswith(f"{path}:{line}: "), str(e.value)
    assert message in str(e.value)


def test_sample_is_bounded_by_the_folders_recipients(tenant, tmp_path):
    imported_folder(tenant, tmp_path)
    n = len(tenant.mailboxes) + 1
    text = (
        "name: big\ntenant: {from: tenant}\nsteps:\n"
        f"  - edit: {{select: {{sample: {n}}}, set: {{CustomAttribute1: x}}}}\n"
    )
    with pytest.raises(ScenarioError, match=f"more than the tenant's {n - 1:,} mailboxes"):
        load_scenario(write(tmp_path, "big", text))
