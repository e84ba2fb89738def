"""`exwb serve` as a user runs it: a subprocess, an endpoints file, signals, LDIF in and out."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from ldap3 import BASE, MODIFY_REPLACE, NONE, Connection, Server

from harness.tenant import TenantSpec, generate
from harness.tenant.files import write_tenant
from mockservers.runtime import spawn_serve


def start_serve(tmp_path: Path, *args: str) -> tuple[subprocess.Popen, Path]:
    endpoints = tmp_path / "endpoints.json"
    return spawn_serve(endpoints, *args, timeout=120), endpoints


def stop(proc: subprocess.Popen, sig: int = signal.SIGTERM) -> tuple[int, str, str]:
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    return proc.returncode, out, err


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_serve_writes_private_endpoints_and_stops_cleanly(tmp_path, sig):
    proc, path = start_serve(tmp_path, "--mailboxes", "150", "--seed", "4")
    try:
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        ep = json.loads(path.read_text())
        for key in (
            "ldap_url",
            "base_dn",
            "bind_dn",
            "bind_password",
            "admin_dn",
            "admin_password",
        ):
            assert ep[key]
        assert ep["ldap_url"].startswith("ldap://127.0.0.1:")
        conn = Connection(Server(ep["ldap_url"], get_info=NONE), ep["bind_dn"], ep["bind_password"])
        assert conn.bind()
        conn.search(
            ep["base_dn"], "(&(objectCategory=person)(mail=*))", attributes=["mail"], paged_size=500
        )
        assert len(conn.entries) >= 150
    finally:
        code, out, err = stop(proc, sig)
    assert code == 0, err
    assert "Traceback" not in err
    assert ep["bind_password"] in out  # the credentials were printed for the user
    assert not path.exists()  # no stale credentials left behind


def test_serve_loads_ldif_and_dumps_final_state(tmp_path):
    tenant = generate(
        TenantSpec(mailboxes=60, seed=2, non_ascii_fraction=0.3, special_cn_fraction=0.3)
    )
    write_tenant(tenant, tmp_path / "t")
    dump = tmp_path / "final.ldif"
    proc, path = start_serve(
        tmp_path, "--ldif", str(tmp_path / "t" / "directory.ldif"), "--dump-ldif", str(dump)
    )
    user = tenant.ad_users[0]
    try:
        ep = json.loads(path.read_text())
        conn = Connection(Server(ep["ldap_url"], get_info=NONE), ep["bind_dn"], ep["bind_password"])
        assert conn.bind()
        assert conn.modify(user.dn, {"extensionAttribute7": [(MODIFY_REPLACE, ["after the run"])]})
        assert conn.search(user.dn, "(objectClass=*)", BASE, attributes=["displayName"])
        assert conn.entries[0].displayName.value == user.display_name
    finally:
        code, _, err = stop(proc)
    assert code == 0, err
    text = dump.read_text()
    assert "extensionAttribute7: after the run" in text
    # The dump loads again and holds the change.
    proc, path = start_serve(tmp_path, "--ldif", str(dump))
    try:
        ep = json.loads(path.read_text())
        conn = Connection(
            Server(ep["ldap_url"], get_info=NONE), ep["admin_dn"], ep["admin_password"]
        )
        assert conn.bind()
        conn.search(user.dn, "(objectClass=*)", BASE, attributes=["extensionAttribute7"])
        assert conn.entries[0].extensionAttribute7.value == "after the run"
    finally:
        assert stop(proc)[0] == 0


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            "version: 1\n\ndn: DC=contoso,DC=com\nobjectClass: top\n\n"
            "dn: CN=x,OU=Gone,DC=contoso,DC=com\nobjectClass: user\n",
            "does not exist",
        ),
        (
            "dn: DC=contoso,DC=com\nobjectClass: top\nbogusAttr: 1\n",
            "unknown attribute 'bogusAttr'",
        ),
        ("dn: DC=contoso,DC=com\nobjectClass:: ***\n", "directory.ldif:2: invalid base64"),
        ("dn: CN=Users,DC=contoso,DC=com\nobjectClass: top\n", "domain root"),
    ],
)
def test_bad_ldif_is_one_clear_line(tmp_path, content, message):
    ldif = tmp_path / "directory.ldif"
    ldif.write_text(content)
    res = subprocess.run(
        [sys.executable, "-m", "harness", "serve", "--ldif", str(ldif)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 2
    assert message in res.stderr and "Traceback" not in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1, res.stderr


def test_serve_rejects_bad_arguments():
    res = subprocess.run(
        [sys.executable, "-m", "harness", "serve", "--ldap-port", "70000"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 2 and "--ldap-port" in res.stderr
