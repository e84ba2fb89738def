"""Listening addresses, anonymous access, credential errors, least privilege and secrets
(issue 9, "Security").

Already proved elsewhere, not repeated: the endpoints file is mode 0600 and removed on exit
(tests/directory/test_serve.py), anonymous rootDSE yes and anonymous domain search no
(tests/directory/test_ldap3_search.py), a wrong password and an unknown DN both get AD's 49
``data 52e`` (test_ldap3_search.py::test_bad_credentials_look_the_same), the writeback
account's denials on other attributes, the Service Accounts OU, add and delete, and the
reader's denial of a write (tests/directory/test_ldap3_modify.py), the read-only app's denial
of Set-Mailbox (tests/cloud/test_http.py), the Connect account's denial of Set-Mailbox and the
others' denial of the sync export (tests/cloud/test_dirsync.py).

Entra's token errors: a wrong secret for a known client is AADSTS7000215 (401
invalid_client) and an unknown client is AADSTS700016 (400 unauthorized_client). Real Entra
does tell these apart, and the fake follows Entra rather than hiding the difference
(tests/cloud/test_http.py::test_token_errors_are_entra_shaped); what must not differ is
everything else: a wrong secret says the same thing for every app and every wrong secret, and
nothing in an answer echoes the secret that was sent. AD, unlike Entra, does not tell a wrong
password from an unknown account: 49 with ``data 52e`` for both, in every bind name form.
"""

from __future__ import annotations

import json
import os
import re
import signal
import stat
from pathlib import Path

import pytest
from ldap3 import BASE, MODIFY_REPLACE, NONE, Connection, Server

from harness.tenant import TenantSpec, generate
from mockservers.directory.seed import seed_directory
from mockservers.runtime import spawn_serve, start_directory, start_tenant
from tests.cloud.http_client import cmdlet, graph_error, token, token_request

# --- exwb serve: where it listens ----------------------------------------------------------------


def listening(port: int) -> set[str]:
    """The IPv4 addresses a socket LISTENs on at `port` (from /proc/net/tcp, no psutil)."""
    found = set()
    for path in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(path) as f:
            next(f)
            for line in f:
                fields = line.split()
                local, state = fields[1], fields[3]
                addr, hexport = local.split(":")
                if state != "0A" or int(hexport, 16) != port:  # 0A: LISTEN
                    continue
                if len(addr) == 8:
                    found.add(".".join(str(b) for b in bytes.fromhex(addr)[::-1]))
                else:
                    found.add(f"ipv6:{addr}")
    return found


def serve(tmp_path: Path, *args: str) -> tuple[dict, str, str]:
    """Run `exwb serve`, read its endpoints and listening sockets, stop it: (ep, out, err)."""
    path = tmp_path / "endpoints.json"
    proc = spawn_serve(path, "--mailboxes", "50", "--seed", "2", *args, timeout=120)
    try:
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        ep = json.loads(path.read_text())
        ep["_listening"] = {
            "ldap": listening(ep["ldap_port"]),
            "http": listening(int(ep["graph_url"].rsplit(":", 1)[1].split("/")[0])),
        }
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    return ep, out, err


def secrets_of(ep: dict) -> list[str]:
    keys = [k for k in ep if re.search(r"password|secret", k)]
    values = [ep[k] for k in keys if ep[k]]
    assert len(values) >= 6, keys  # admin, writeback, reader; three apps
    return values


def test_serve_listens_on_loopback_only_and_keeps_secrets_off_stderr(tmp_path):
    ep, out, err = serve(tmp_path)
    assert ep["_listening"] == {"ldap": {"127.0.0.1"}, "http": {"127.0.0.1"}}
    assert "warning" not in err.lower()
    for secret in secrets_of(ep):
        assert secret not in err
    # stdout does print the writeback and admin passwords and the read-write app's secret: that
    # is what `exwb serve` is for (the user's own tools need them; tests/directory/test_serve.py).
    # The reader's password and the other apps' secrets are only in the 0600 endpoints file.
    for key in ("reader_password", "readonly_client_secret", "connect_client_secret"):
        assert ep[key] not in out, key


def test_listen_elsewhere_prints_a_warning(tmp_path):
    # 127.0.0.2 is "another address" without exposing anything beyond this host.
    ep, _out, err = serve(tmp_path, "--listen", "127.0.0.2")
    assert ep["_listening"] == {"ldap": {"127.0.0.2"}, "http": {"127.0.0.2"}}
    assert ep["ldap_url"].startswith("ldap://127.0.0.2:")
    assert "warning: listening on 127.0.0.2" in " ".join(err.split())
    for secret in secrets_of(ep):
        assert secret not in err


# --- the directory: anonymous access, bad credentials, least privilege --------------------------


@pytest.fixture(scope="module")
def tenant():
    return generate(TenantSpec(mailboxes=60, seed=23))


@pytest.fixture
def directory(tenant):
    r = start_directory(seed_directory(tenant))
    yield r
    r.stop()


def corp_user(tenant) -> str:
    return next(u.dn for u in tenant.ad_users if ",OU=Corp," in u.dn and u.mail)


def as_(run, who: str) -> Connection:
    ep = run.endpoints
    dn, pw = ep.account(who)
    conn = Connection(Server(ep.ldap_url, get_info=NONE), dn, pw)
    assert conn.bind(), conn.result
    return conn


def value_of(run, dn: str, attribute: str) -> list:
    conn = as_(run, "admin")
    assert conn.search(dn, "(objectClass=*)", BASE, attributes=[attribute])
    return conn.response[0]["raw_attributes"].get(attribute, [])


def test_anonymous_and_unauthenticated_binds_cannot_write_or_read(directory, tenant):
    ep = directory.endpoints
    dn = corp_user(tenant)
    server = Server(ep.ldap_url, get_info=NONE)
    anonymous = Connection(server)
    assert anonymous.bind()
    for conn in (anonymous,):  # (an empty password is anonymous too: the server says so)
        # The rootDSE is open.
        assert conn.search("", "(objectClass=*)", BASE, attributes=["defaultNamingContext"])
        # Nothing else: AD's "a successful bind must be completed" (operationsError, 1).
        assert not conn.search(dn, "(objectClass=*)", BASE)
        assert conn.result["result"] == 1, conn.result
        assert not conn.modify(dn, {"extensionAttribute1": [(MODIFY_REPLACE, ["anon"])]})
        assert conn.result["result"] == 1, conn.result
        assert not conn.delete(dn)
        assert conn.result["result"] == 1
        assert not conn.add(f"CN=Anon,OU=Corp,{ep.base_dn}", ["top", "user"])
        assert conn.result["result"] == 1
    assert b"anon" not in value_of(directory, dn, "extensionAttribute1")


@pytest.mark.parametrize("who", ["reader", "writeback"])
def test_wrong_password_and_unknown_account_are_indistinguishable_in_every_name_form(
    directory, who
):
    ep = directory.endpoints
    server = Server(ep.ldap_url, get_info=NONE)
    sam = "svc-lob-reader" if who == "reader" else "provAgentgMSA$"
    dn = ep.reader_dn if who == "reader" else ep.bind_dn
    pairs = [
        (dn, f"CN=Nobody At All,CN=Users,{ep.base_dn}"),
        (f"{ep.netbios_domain}\\{sam}", f"{ep.netbios_domain}\\nobody-at-all"),
        (f"{sam}@contoso.com", "nobody-at-all@contoso.com"),
    ]
    answers = set()
    for known, unknown in pairs:
        for name in (known, unknown):
            for _ in range(2):  # repeated failures: the same answer, no lockout hint
                conn = Connection(server, name, "wrong-Passw0rd!")
                assert not conn.bind()
                answers.add((conn.result["result"], conn.result["message"]))
    assert answers == {
        (
            49,
            "80090308: LdapErr: DSID-0C090569, comment: AcceptSecurityContext error, "
            "data 52e, v4563",
        )
    }
    assert as_(directory, who)  # and the right password still works


def test_writeback_account_least_privilege(directory, tenant):
    ep = directory.endpoints
    conn = as_(directory, "writeback")
    dn = corp_user(tenant)
    rdn, _ = dn.split(",", 1)
    # Rename and move: insufficientAccessRights (50), nothing moves.
    assert not conn.modify_dn(dn, "CN=Renamed")
    assert conn.result["result"] == 50, conn.result
    assert not conn.modify_dn(dn, rdn, new_superior=f"CN=Users,{ep.base_dn}")
    assert conn.result["result"] == 50, conn.result
    assert value_of(directory, dn, "distinguishedName")
    # Security-relevant attributes of an in-scope user.
    for attribute, value in (
        ("userAccountControl", "66048"),
        ("mS-DS-ConsistencyGuid", b"\x00" * 16),
        ("userPrincipalName", "evil@contoso.com"),
    ):
        assert not conn.modify(dn, {attribute: [(MODIFY_REPLACE, [value])]}), attribute
        assert conn.result["result"] == 50, (attribute, conn.result)
    # A writeback attribute outside OU=Corp: the administrator, the domain, configuration.
    for target in (ep.admin_dn, ep.base_dn, ep.configuration_dn, ep.reader_dn):
        assert not conn.modify(target, {"extensionAttribute1": [(MODIFY_REPLACE, ["x"])]})
        assert conn.result["result"] == 50, (target, conn.result)
    # Group membership: no way to grant itself anything.
    group = f"CN=Domain Admins,CN=Users,{ep.base_dn}"
    assert not conn.modify(group, {"member": [("MODIFY_ADD", [ep.bind_dn])]})
    assert conn.result["result"] in (32, 50), conn.result
    # Its own account is outside OU=Corp too.
    assert not conn.modify(ep.bind_dn, {"extensionAttribute1": [(MODIFY_REPLACE, ["x"])]})
    assert conn.result["result"] == 50


def test_reader_cannot_add_delete_or_rename(directory, tenant):
    ep = directory.endpoints
    conn = as_(directory, "reader")
    dn = corp_user(tenant)
    assert not conn.add(f"CN=New,OU=Corp,{ep.base_dn}", ["top", "person", "user"])
    assert conn.result["result"] == 50, conn.result
    assert not conn.delete(dn)
    assert conn.result["result"] == 50, conn.result
    assert not conn.modify_dn(dn, "CN=Renamed")
    assert conn.result["result"] == 50, conn.result


# --- the cloud: apps' least privilege ------------------------------------------------------------


@pytest.fixture(scope="module")
def cloud():
    r = start_tenant(generate(TenantSpec(mailboxes=40, seed=29, cloud_managed_fraction=0.9)))
    yield r
    r.stop()


def test_read_only_app_cannot_call_any_writing_cmdlet(cloud):
    ep = cloud.endpoints
    tok = token(ep, readonly=True)
    mbx = cmdlet(ep, token(ep), "Get-Mailbox", ResultSize=1).body["value"][0]
    for name, params in (
        ("Set-Mailbox", {"Identity": mbx["Guid"], "CustomAttribute1": "x"}),
        (
            "Set-Mailbox",
            {"Identity": mbx["Guid"], "EmailAddresses": {"Add": ["smtp:x@contoso.com"]}},
        ),
        ("Set-Mailbox", {"Identity": mbx["Guid"], "Type": "Shared"}),
    ):
        graph_error(cmdlet(ep, tok, name, **params), 403, "AccessDenied")
    after = cmdlet(ep, token(ep), "Get-Mailbox", Identity=mbx["Guid"]).body["value"][0]
    assert after["CustomAttribute1"] == mbx["CustomAttribute1"]
    assert after["RecipientTypeDetails"] == mbx["RecipientTypeDetails"]


def test_wrong_secrets_say_the_same_for_every_app_and_never_echo_the_secret(cloud):
    ep = cloud.endpoints
    seen = set()
    for cid in (ep.client_id, ep.readonly_client_id, ep.connect_client_id):
        for secret in ("wrong", "x" * 200, ep.client_secret[:-1]):
            r = token_request(ep, cid, secret)
            assert r.status == 401
            text = json.dumps(r.body)
            assert secret not in text
            for real in (ep.client_secret, ep.readonly_client_secret, ep.connect_client_secret):
                assert real not in text
            seen.add((r.body["error"], tuple(r.body["error_codes"])))
            # The description differs only in its trace, correlation id and timestamp.
            seen.add(
                re.sub(r" Trace ID: .*", "", r.body["error_description"]).replace(cid, "<app>")
            )
    assert len(seen) == 2, seen


# --- secrets in what `exwb run` writes ------------------------------------------------------------

SCENARIO = r"""
name: secrets
description: a small run whose every output is searched for the tenant's secrets
tenant:
  mailboxes: 200
  seed: 31
steps:
  - cycle: {mode: delta, name: initial}
  - edit:
      select: {filter: "IsExchangeCloudManaged -eq $true", sample: 3, name: edited}
      set:
        CustomAttribute1: "*)(objectClass=*{index}"
  - cycle: {mode: delta, name: edits}
  - expect:
      - log: {cycle: edits, actions: {Update: 3}, statuses: {Success: 3}}
      - ad: {select: edited, attribute: extensionAttribute1, value: "*)(objectClass=*{index}"}
      - ldap_search:
          select: edited
          filter: '(&(objectClass=user)(extensionAttribute1=\2a\29\28objectClass=\2a{index}))'
          entries: 1
"""


def test_no_secret_in_any_file_exwb_run_writes(tmp_path, monkeypatch, capfd):
    import harness.scenario.runner as runner
    from harness.cli import main

    captured: dict = {}
    real_start = runner.start_tenant

    def start_and_remember(tenant, *a, **kw):
        running = real_start(tenant, *a, **kw)
        captured["auth"] = running.cloud.auth  # its issued tokens, read after the run
        captured["endpoints"] = running.endpoints
        return running

    monkeypatch.setattr(runner, "start_tenant", start_and_remember)
    scenario = tmp_path / "secrets.yaml"
    scenario.write_text(SCENARIO)
    code = main(["run", str(scenario), "--results", str(tmp_path / "results")])
    out, err = capfd.readouterr()
    assert code == 0, out + err
    ep = captured["endpoints"]
    secrets = [
        ep.bind_password,
        ep.admin_password,
        ep.reader_password,
        ep.client_secret,
        ep.readonly_client_secret,
        ep.connect_client_secret,
        *captured["auth"]._verified,
    ]
    assert all(secrets) and len(captured["auth"]._verified) >= 2
    files = [p for p in (tmp_path / "results").rglob("*") if p.is_file()]
    names = {p.name for p in files}
    assert {"report.json", "junit.xml", "report.md"} <= names, names
    assert any("engine-state" in p.parts for p in files)  # the provisioning logs, the state
    for p in files:
        data = p.read_bytes()
        for s in secrets:
            assert s.encode() not in data, f"{p.relative_to(tmp_path)} holds a secret"
    for s in secrets:
        assert s not in out and s not in err
    # The hostile value was written and found, and nothing else matched.
    report = json.loads(next(p for p in files if p.name == "report.json").read_text())
    assert report["verdict"] == "passed", report.get("error")
