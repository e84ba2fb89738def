"""`exwb preflight --endpoints-file`: the same rules against a running tenant (the fake AD over
LDAP as the writeback account, Graph as the engine's read-only app) agree with the folder."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from harness.cli import main
from harness.tenant import generate
from harness.tenant.files import write_tenant
from tests.preflight.tenants import SPEC, in_scope

TENANT = generate(SPEC)


def _report(args: list[str], out: Path) -> tuple[int, dict]:
    rc = main(["preflight", *args, "--json", str(out)])
    return rc, json.loads(out.read_text(encoding="utf-8"))


def test_a_running_tenant_reads_as_its_folder_does(run, tmp_path: Path) -> None:
    endpoints = tmp_path / "endpoints.json"
    run.endpoints.write(endpoints)
    rc, live = _report(["--endpoints-file", str(endpoints)], tmp_path / "live.json")
    write_tenant(TENANT, tmp_path / "tenant")
    _, folder = _report([str(tmp_path / "tenant")], tmp_path / "folder.json")
    assert rc == 0, live
    assert live["source"] == run.endpoints.ldap_url
    keys = ("cloud_recipients", "synced", "cloud_managed", "in_scope", "first_cycle_updates")
    for key in keys:
        assert live["counts"][key] == folder["counts"][key], key
    # The running directory also holds the service accounts the fake seeds beside the users.
    assert live["counts"]["ad_users"] > folder["counts"]["ad_users"]
    assert live["verdict"] == folder["verdict"] == "clean"


def test_a_cloud_edit_ad_would_refuse_is_found_before_any_cycle(run, tmp_path: Path) -> None:
    user, mbx = in_scope(TENANT)
    custom = ("c" * 1100, *mbx.custom_attributes[1:])
    run.call(run.cloud.store.update, mbx.id, {"custom_attributes": custom})
    endpoints = tmp_path / "endpoints.json"
    run.endpoints.write(endpoints)
    rc, live = _report(["--endpoints-file", str(endpoints)], tmp_path / "live.json")
    assert rc == 1
    rule = next(r for r in live["rules"] if r["id"] == "wb-schema-length")
    assert rule["count"] == 1
    assert rule["examples"][0]["object"] == user.dn
    assert rule["examples"][0]["attribute"] == "extensionAttribute1"


@pytest.mark.parametrize("url", ["ldap://127.0.0.1:1", "http://127.0.0.1:1"])
def test_an_unreachable_directory_is_one_line_and_exit_2(run, tmp_path: Path, url, capsys) -> None:
    endpoints = tmp_path / "endpoints.json"
    dataclasses.replace(run.endpoints, ldap_url=url).write(endpoints)
    assert main(["preflight", "--endpoints-file", str(endpoints)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "127.0.0.1:1" in err, err
