"""`exwb serve --tenant DIR`: a tenant folder served as a user runs it, the writeback account
writing where the folder's tenant.json says it may, and one-line errors for a bad folder."""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path

import pytest
from ldap3 import BASE, MODIFY_REPLACE, NONE, Connection, Server

from harness.cli import main
from harness.tenant import TenantSpec, generate
from harness.tenant.files import MANIFEST_NAME, write_tenant
from harness.tenant.model import Tenant
from mockservers.runtime import spawn_serve


@pytest.fixture(scope="module")
def tenant() -> Tenant:
    return generate(TenantSpec(mailboxes=80, seed=5, non_ascii_fraction=0.2))


def london(tenant: Tenant) -> str:
    return next(ou.dn for ou in tenant.ous if ou.name == "London")


def tenant_folder(tenant: Tenant, root: Path, **manifest: object) -> Path:
    """A folder as exwb import writes it: the tenant's files, tenant.json marked imported."""
    folder = root / "tenant"
    write_tenant(tenant, folder)
    path = folder / MANIFEST_NAME
    data = json.loads(path.read_text("utf-8"))
    data.pop("spec")
    data.update({"source": "import", **manifest})
    path.write_text(json.dumps(data, indent=2), "utf-8")
    return folder


def mailbox_user_in(tenant: Tenant, ou: str, inside: bool):
    return next(
        u
        for u in tenant.ad_users
        if u.mail is not None and u.dn.endswith("," + ou) == inside and "OU=Corp," in u.dn
    )


def stop(proc: subprocess.Popen) -> tuple[int, str, str]:
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    return proc.returncode, out, err


def writeback_modify(ep: dict, dn: str, value: str) -> int:
    conn = Connection(Server(ep["ldap_url"], get_info=NONE), ep["bind_dn"], ep["bind_password"])
    assert conn.bind(), conn.result
    conn.modify(dn, {"extensionAttribute7": [(MODIFY_REPLACE, [value])]})
    return conn.result["result"]


def read_back(ep: dict, dn: str) -> str | None:
    conn = Connection(Server(ep["ldap_url"], get_info=NONE), ep["admin_dn"], ep["admin_password"])
    assert conn.bind()
    assert conn.search(dn, "(objectClass=*)", BASE, attributes=["extensionAttribute7"])
    return conn.entries[0].extensionAttribute7.value


def test_writeback_account_writes_inside_writeback_ous_only(tenant, tmp_path):
    ou = london(tenant)
    folder = tenant_folder(tenant, tmp_path, writeback_ous=[ou])
    inside, outside = mailbox_user_in(tenant, ou, True), mailbox_user_in(tenant, ou, False)
    endpoints = tmp_path / "endpoints.json"
    proc = spawn_serve(endpoints, "--tenant", str(folder), timeout=120)
    try:
        ep = json.loads(endpoints.read_text())
        assert ep["base_dn"] == tenant.base_dn
        assert writeback_modify(ep, inside.dn, "written back") == 0
        # Outside the folder's OUs (though inside the generated default, OU=Corp): refused.
        assert writeback_modify(ep, outside.dn, "refused") == 50
        assert read_back(ep, inside.dn) == "written back"
        assert read_back(ep, outside.dn) is None
    finally:
        code, out, err = stop(proc)
    assert code == 0, err
    assert "Traceback" not in err
    assert f"{len(tenant.mailboxes):,} recipients" in out


def test_state_dir_resume_keeps_the_folders_writeback_ous(tenant, tmp_path):
    ou = london(tenant)
    folder = tenant_folder(tenant, tmp_path, writeback_ous=[ou])
    inside, outside = mailbox_user_in(tenant, ou, True), mailbox_user_in(tenant, ou, False)
    args = ("--tenant", str(folder), "--state-dir", str(tmp_path / "state"))
    before = None
    for value in ("first start", "after restart"):
        endpoints = tmp_path / "endpoints.json"
        proc = spawn_serve(endpoints, *args, timeout=120)
        try:
            ep = json.loads(endpoints.read_text())
            assert read_back(ep, inside.dn) == before  # the restart resumed the journaled state
            assert writeback_modify(ep, inside.dn, value) == 0
            assert writeback_modify(ep, outside.dn, value) == 50
            before = value
        finally:
            code, _, err = stop(proc)
        assert code == 0, err


def test_generated_folder_keeps_the_default_writable_ou(tenant, tmp_path):
    write_tenant(tenant, tmp_path / "gen")
    ou = london(tenant)
    outside = mailbox_user_in(tenant, ou, False)  # under OU=Corp, the generated default
    endpoints = tmp_path / "endpoints.json"
    proc = spawn_serve(endpoints, "--tenant", str(tmp_path / "gen"), timeout=120)
    try:
        ep = json.loads(endpoints.read_text())
        assert writeback_modify(ep, outside.dn, "default scope") == 0
    finally:
        code, _, err = stop(proc)
    assert code == 0, err


def serve_error(capsys, *argv: str) -> str:
    assert main(["serve", *argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith("exwb serve: error: ")
    return err


def test_missing_folder_and_files_are_one_line(tenant, tmp_path, capsys):
    assert "not a directory" in serve_error(capsys, "--tenant", str(tmp_path / "nowhere"))
    folder = tenant_folder(tenant, tmp_path, writeback_ous=[london(tenant)])
    (folder / "cloud.jsonl").unlink()
    err = serve_error(capsys, "--tenant", str(folder))
    assert f"{folder / 'cloud.jsonl'}: no such file" in err
    (folder / MANIFEST_NAME).unlink()
    assert f"{folder / MANIFEST_NAME}: no such file" in serve_error(capsys, "--tenant", str(folder))


@pytest.mark.parametrize(
    ("manifest", "expected"),
    [
        ("{not json", "tenant.json:1: invalid JSON"),
        ('{"format": "other"}', "not a tenant manifest"),
        (None, "writeback_ous must be a non-empty list"),
        ("OU-missing", "is not an entry of"),
        ("base-mismatch", "is not the domain root"),
    ],
)
def test_bad_manifest_is_one_line(tenant, tmp_path, capsys, manifest, expected):
    folder = tenant_folder(tenant, tmp_path)
    path = folder / MANIFEST_NAME
    data = json.loads(path.read_text("utf-8"))
    if manifest is None:
        data["writeback_ous"] = "OU=Corp"
    elif manifest == "OU-missing":
        data["writeback_ous"] = [f"OU=Nowhere,{tenant.base_dn}"]
    elif manifest == "base-mismatch":
        data["base_dn"] = "DC=fabrikam,DC=com"
    if manifest in (None, "OU-missing", "base-mismatch"):
        path.write_text(json.dumps(data), "utf-8")
    else:
        path.write_text(manifest, "utf-8")
    assert expected in serve_error(capsys, "--tenant", str(folder))


def test_bad_cloud_line_names_file_and_line(tenant, tmp_path, capsys):
    folder = tenant_folder(tenant, tmp_path)
    with (folder / "cloud.jsonl").open("a", encoding="utf-8") as f:
        f.write('{"id": "x"}\n')
    err = serve_error(capsys, "--tenant", str(folder))
    assert f"cloud.jsonl:{len(tenant.mailboxes) + 1}: missing field" in err


def test_tenant_excludes_ldif_and_generation_options(tenant, tmp_path, capsys):
    folder = tenant_folder(tenant, tmp_path)
    assert "--tenant serves a tenant folder as it is" in serve_error(
        capsys, "--tenant", str(folder), "--mailboxes", "10"
    )
