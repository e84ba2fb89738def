"""`exwb serve --log FILE` and `-v`: what a user debugging a client reads, and what it never
holds (secrets, tokens, bodies)."""

from __future__ import annotations

import json
import signal
import socket
import urllib.error
import urllib.parse
import urllib.request

import pytest
from ldap3 import Connection, Server

from harness.core.endpoints import Endpoints
from mockservers.runtime import spawn_serve


def http(method: str, url: str, data: bytes | None = None, headers: dict | None = None) -> int:
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A tenant served with --log and -v, driven by a client that gets things wrong; the log
    lines and stderr once it stopped."""
    root = tmp_path_factory.mktemp("log")
    path, log = root / "ep.json", root / "requests.jsonl"
    proc = spawn_serve(path, "-n", "20", "--log", str(log), "-v", timeout=120)
    ep = Endpoints.read(path)
    form = {
        "grant_type": "client_credentials",
        "client_id": ep.client_id,
        "client_secret": ep.client_secret,
        "scope": "https://graph.microsoft.com/.default",
    }
    with urllib.request.urlopen(ep.token_url, data=urllib.parse.urlencode(form).encode()) as r:
        token = json.loads(r.read())["access_token"]
    auth = {"Authorization": f"Bearer {token}"}
    assert http("GET", f"{ep.graph_url}/v1.0/users?$top=3", headers=auth) == 200
    wrong = {**form, "client_secret": "wrong-secret-value"}
    assert http("POST", ep.token_url, urllib.parse.urlencode(wrong).encode()) == 401
    assert http("GET", f"{ep.graph_url}/v1.0/users", headers={"Authorization": "Bearer x"}) == 401
    assert http("GET", f"{ep.graph_url}/v1.0/users?$skiptoken=secretcursor", headers=auth) == 400
    refused = Connection(Server(ep.ldap_url), ep.reader_dn, "not-the-password")
    assert not refused.bind()
    refused.unbind()
    with Connection(Server(ep.ldap_url), ep.reader_dn, ep.reader_password, auto_bind=True) as c:
        c.search(ep.base_dn, "(sAMAccountName=nobody)", attributes=["cn"])
    with socket.create_connection((ep.ldap_host, ep.ldap_port), timeout=30) as raw:
        raw.sendall(b"\x30\x05\x02\x01\x01\x7e\x00")  # no LDAP operation: undecodable
        raw.recv(4096)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=60)
    records = [json.loads(line) for line in log.read_text().splitlines()]
    return ep, token, records, stderr, log.read_text()


def test_every_request_is_a_json_line_saying_what_and_how_it_ended(served):
    ep, _, records, _, _ = served
    http_records = [r for r in records if r["proto"] == "http"]
    assert {r["status"] for r in http_records} >= {200, 400, 401}
    refused = next(
        r for r in http_records if r["path"].endswith("/oauth2/v2.0/token") and r["status"] == 401
    )
    assert refused["code"] == "invalid_client" and "AADSTS7000215" in refused["message"]
    bad_bearer = next(r for r in http_records if r["path"] == "/v1.0/users" and r["status"] == 401)
    assert bad_bearer["code"] == "InvalidAuthenticationToken" and "ms" in bad_bearer
    listed = next(r for r in http_records if r["status"] == 200 and r["path"] == "/v1.0/users")
    assert listed["query"] == {"$top": "3"} and listed["app"] == ep.client_id
    assert all("ts" in r and "client" in r for r in records)


def test_ldap_operations_and_undecodable_messages_are_logged(served):
    ep, _, records, _, _ = served
    ldap = [r for r in records if r["proto"] == "ldap"]
    failed_bind = next(r for r in ldap if r["op"] == "bind" and r["result"] == 49)
    assert failed_bind["dn"] == ep.reader_dn and "52e" in failed_bind["diagnostic"]
    assert any(r["op"] == "search" and r["result"] == 0 for r in ldap)
    assert any(r["op"] == "undecodable" for r in ldap)


def test_no_secret_reaches_the_log_or_stderr(served):
    ep, token, _, stderr, text = served
    for secret in (
        ep.client_secret,
        "wrong-secret-value",
        ep.reader_password,
        "not-the-password",
        token,
        token.split(".")[2],
        "secretcursor",
    ):
        assert secret not in text and secret not in stderr


def test_verbose_prints_the_same_records_to_stderr(served):
    _, _, records, stderr, _ = served
    lines = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    assert [(r["proto"], r.get("op"), r.get("path")) for r in lines] == [
        (r["proto"], r.get("op"), r.get("path")) for r in records
    ]


def test_searches_say_scope_filter_and_size(served):
    _, _, records, _, _ = served
    search = next(r for r in records if r.get("op") == "search" and "nobody" in r["filter"])
    assert search["scope"] == "sub" and search["filter"] == "(sAMAccountName=nobody)"
    assert search["bytes"] > 0 and search["result"] == 0
    listed = next(r for r in records if r.get("path") == "/v1.0/users" and r["status"] == 200)
    assert listed["bytes"] > 100
