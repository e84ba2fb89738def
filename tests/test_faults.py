"""The fault plan (mockservers/faults.py) and what each fault does on the wire.

LDAP faults are checked with ldap3 (and the engine's pipelining client where order matters),
HTTP faults with http.client: real sockets against a real in-process tenant, no mocks.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections import deque
from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest
from ldap3 import BASE, MODIFY_REPLACE, NONE, Connection, Server
from ldap3.core.exceptions import LDAPException

from harness.core.endpoints import Endpoints
from harness.engine.ldapwire import ConnectionLost, LdapConnection
from harness.tenant import TenantSpec, generate
from mockservers.faults import FaultError, FaultPlan, FaultSpec, since

TENANT = generate(TenantSpec(mailboxes=40, seed=5, cloud_managed_fraction=0.9))
USERS = [u.dn for u, _ in TENANT.synced_pairs()]
# `run` (tests/conftest.py): a fresh tenant per test, so each test arms its own plan and counts
# from zero.


# ------------------------------------------------------------------ the plan, as state


def test_after_every_and_count() -> None:
    plan = FaultPlan()
    plan.arm("ldap", "busy", on="modify", after=2, every=2, count=3)
    hits = [plan.take("ldap", "modify") is not None for _ in range(10)]
    assert hits == [False, False, False, True, False, True, False, True, False, False]
    assert plan.injected() == {"ldap.busy": 3}
    assert plan.armed() == [] and not plan.ldap_armed  # spent: disarmed


def test_faults_only_see_their_server_and_operation() -> None:
    plan = FaultPlan()
    plan.arm("ldap", "unavailable", on="search")
    assert plan.ldap_armed and not plan.http_armed
    assert plan.take("ldap", "modify") is None
    assert plan.take("http", "users") is None
    fault = plan.take("ldap", "search")
    assert fault is not None and fault.kind == "unavailable"
    assert plan.injected_by_operation() == {"ldap.unavailable.search": 1}


def test_two_faults_due_on_one_request_are_both_injected_in_turn() -> None:
    plan = FaultPlan()
    plan.arm("ldap", "busy", on="modify", name="first")
    plan.arm("ldap", "drop", on="any", name="second")
    taken = [plan.take("ldap", "modify") for _ in range(3)]
    assert [f.name if f else None for f in taken] == ["first", "second", None]


def test_until_cleared_and_clearing() -> None:
    plan = FaultPlan()
    plan.arm("ldap", "busy", count=None, name="busy")
    plan.arm("http", "throttle", count=None)
    plan.arm("http", "reset", count=None)
    assert all(plan.take("ldap", "bind") for _ in range(50))
    assert [f.name for f in plan.clear("busy")] == ["busy"]
    assert not plan.ldap_armed and plan.http_armed
    assert plan.clear("nothing-by-that-name") == []
    assert len(plan.clear("http")) == 2 and not plan.http_armed
    assert plan.clear() == [] and plan.injected() == {"ldap.busy": 50}  # counts stay


def test_any_spares_the_token_endpoint_unless_it_is_named() -> None:
    plan = FaultPlan()
    plan.arm("http", "throttle", count=None)
    assert plan.take("http", "token") is None
    assert plan.take("http", "delta") is not None
    plan.arm("http", "unavailable", on="token")
    assert plan.take("http", "token").kind == "unavailable"  # type: ignore[union-attr]


def test_expire_delta_waits_for_a_request_with_a_delta_token() -> None:
    plan = FaultPlan()
    fault = plan.arm("http", "expire_delta")
    assert fault.spec.on == "delta"
    assert plan.take("http", "delta") is None  # an initial round or a page of one
    assert plan.take("http", "delta", delta_token=True) is fault
    assert plan.take("http", "delta", delta_token=True) is None


def test_concurrent_takes_inject_exactly_count() -> None:
    plan = FaultPlan()
    plan.arm("ldap", "busy", on="modify", count=500)
    hits: list[int] = []

    def worker() -> None:
        hits.append(sum(plan.take("ldap", "modify") is not None for _ in range(400)))

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(hits) == 500 and plan.injected() == {"ldap.busy": 500}


@pytest.mark.parametrize(
    ("options", "key", "fragment"),
    [
        ({"server": "smtp", "kind": "busy"}, "server", "unknown server"),
        ({"server": "ldap", "kind": "throttle"}, "kind", "throttle is an http fault"),
        ({"server": "http", "kind": "busy"}, "kind", "busy is an ldap fault"),
        ({"server": "ldap", "kind": "busy", "on": "delta"}, "on", "unknown ldap operation"),
        ({"server": "ldap", "kind": "slow"}, "seconds", "slow needs seconds"),
        ({"server": "ldap", "kind": "slow", "seconds": 61}, "seconds", "at most 60"),
        ({"server": "ldap", "kind": "busy", "seconds": 1}, "seconds", "slow fault only"),
        ({"server": "ldap", "kind": "busy", "retry_after": 1}, "retry_after", "http throttle"),
        ({"server": "http", "kind": "throttle", "retry_after": 1.5}, "retry_after", "whole"),
        ({"server": "http", "kind": "expire_delta", "on": "users"}, "on", "delta requests"),
        ({"server": "ldap", "kind": "busy", "count": 0}, "count", "at least 1"),
        ({"server": "ldap", "kind": "busy", "after": -1}, "after", "at least 0"),
        ({"server": "ldap", "kind": "busy", "every": 0}, "every", "at least 1"),
        ({"server": "ldap", "kind": "busy", "name": "all"}, "name", "reserved"),
    ],
)
def test_invalid_faults_name_the_parameter(options: dict[str, Any], key: str, fragment: str):
    with pytest.raises(FaultError) as info:
        FaultSpec(**options).checked()
    assert info.value.key == key and fragment in str(info.value)


def test_names_are_unique_while_armed() -> None:
    plan = FaultPlan()
    plan.arm("ldap", "busy", name="x")
    with pytest.raises(FaultError, match="already armed"):
        plan.arm("http", "reset", name="x")
    plan.take("ldap", "bind")  # spent: the name is free again
    plan.arm("http", "reset", name="x")


def test_describe_and_since() -> None:
    spec = FaultSpec("ldap", "busy", on="modify", after=10, count=5).checked()
    assert spec.describe() == "ldap busy on modify after 10, 5 times"
    spec = FaultSpec("http", "throttle", retry_after=2, count=None).checked()
    assert spec.describe() == "http throttle (Retry-After 2 s) on every operation, until cleared"
    assert since({"a": 1}, {"a": 3, "b": 1, "c": 0}) == {"a": 2, "b": 1}


# ------------------------------------------------------------------ LDAP on the wire


def ldap(ep: Endpoints) -> Connection:
    conn = Connection(
        Server(ep.ldap_url, get_info=NONE), ep.admin_dn, ep.admin_password, raise_exceptions=False
    )
    assert conn.bind(), conn.result
    return conn


def value(conn: Connection, dn: str, attribute: str) -> list[str]:
    assert conn.search(dn, "(objectClass=*)", BASE, attributes=[attribute]), conn.result
    return list(conn.entries[0][attribute].values)


def test_busy_answers_51_with_ads_diagnostic_and_the_next_request_succeeds(run):
    conn = ldap(run.endpoints)
    dn = USERS[0]
    run.faults.arm("ldap", "busy", on="modify")
    assert not conn.modify(dn, {"extensionAttribute9": [(MODIFY_REPLACE, ["first"])]})
    assert conn.result["result"] == 51
    assert conn.result["message"].startswith("0000200E: SvcErr: ")
    assert "problem 5001 (BUSY)" in conn.result["message"]
    assert value(conn, dn, "extensionAttribute9") == []  # refused: not performed
    assert conn.modify(dn, {"extensionAttribute9": [(MODIFY_REPLACE, ["second"])]}), conn.result
    assert value(conn, dn, "extensionAttribute9") == ["second"]
    assert run.faults.injected_by_operation() == {"ldap.busy.modify": 1}


def test_unavailable_on_a_search_answers_52_after_the_first_ones(run):
    conn = ldap(run.endpoints)
    run.faults.arm("ldap", "unavailable", on="search", after=2)
    assert value(conn, USERS[0], "cn") and value(conn, USERS[1], "cn")
    assert not conn.search(USERS[2], "(objectClass=*)", BASE)
    assert conn.result["result"] == 52
    assert "problem 5002 (UNAVAILABLE)" in conn.result["message"]
    assert value(conn, USERS[2], "cn")


def test_busy_on_any_operation_hits_a_bind(run):
    ep = run.endpoints
    run.faults.arm("ldap", "busy")
    conn = Connection(
        Server(ep.ldap_url, get_info=NONE), ep.admin_dn, ep.admin_password, raise_exceptions=False
    )
    assert not conn.bind() and conn.result["result"] == 51
    assert conn.bind(), conn.result


def test_drop_closes_that_connection_and_others_keep_working(run):
    ep = run.endpoints
    victim, bystander = ldap(ep), ldap(ep)
    dn = USERS[3]
    run.faults.arm("ldap", "drop", on="modify")
    with pytest.raises(LDAPException):
        victim.modify(dn, {"extensionAttribute9": [(MODIFY_REPLACE, ["dropped"])]})
        victim.search(dn, "(objectClass=*)", BASE)  # a closed socket fails one of the two
    assert value(bystander, dn, "extensionAttribute9") == []  # dropped: never performed
    assert bystander.modify(dn, {"extensionAttribute9": [(MODIFY_REPLACE, ["ok"])]})
    assert value(ldap(ep), dn, "extensionAttribute9") == ["ok"]
    assert run.faults.injected() == {"ldap.drop": 1}


def test_slow_delays_the_answer_without_blocking_other_connections(run):
    ep = run.endpoints
    slow, other = ldap(ep), ldap(ep)
    run.faults.arm("ldap", "slow", on="search", seconds=1.5)
    waited: list[float] = []

    def slow_search() -> None:
        t0 = time.perf_counter()
        value(slow, USERS[0], "cn")
        waited.append(time.perf_counter() - t0)

    thread = threading.Thread(target=slow_search)
    thread.start()
    while run.faults.injected() != {"ldap.slow": 1}:  # until the server holds the search
        time.sleep(0.01)
    # The reactor serves another connection while the answer is held: this modify completes
    # before the held search does.
    assert other.modify(USERS[1], {"extensionAttribute9": [(MODIFY_REPLACE, ["meanwhile"])]})
    assert thread.is_alive() and not waited
    thread.join()
    assert waited[0] >= 1.49


def test_requests_behind_a_slow_one_are_answered_after_it_in_order(run):
    ep = run.endpoints
    run.faults.arm("ldap", "slow", on="modify", seconds=0.4)
    with LdapConnection(ep.ldap_url) as conn:
        conn.bind(ep.admin_dn, ep.admin_password)
        queue = deque(
            (i, dn, [("replace", "extensionAttribute9", (f"v{i}",))])
            for i, dn in enumerate(USERS[:6])
        )
        t0 = time.perf_counter()
        answers = list(conn.modify_many(queue, window=6))
        seconds = time.perf_counter() - t0
    assert [key for key, _ in answers] == list(range(6))
    assert all(r.code == 0 for _, r in answers)
    assert seconds >= 0.39
    check = ldap(ep)
    assert [value(check, dn, "extensionAttribute9") for dn in USERS[:6]] == [
        [f"v{i}"] for i in range(6)
    ]


def test_a_request_held_by_slow_dies_with_its_connection(run):
    ep = run.endpoints
    dn = USERS[2]
    run.faults.arm("ldap", "slow", on="modify", seconds=0.3)
    conn = LdapConnection(ep.ldap_url, timeout=0.05)  # gives up before the answer
    conn.bind(ep.admin_dn, ep.admin_password)
    queue = deque([(0, dn, [("replace", "extensionAttribute9", ("held",))])])
    with pytest.raises(ConnectionLost):
        list(conn.modify_many(queue))
    time.sleep(0.4)  # the delayed call was cancelled with the connection, not run
    assert value(ldap(ep), dn, "extensionAttribute9") == []
    assert run.faults.injected() == {"ldap.slow": 1}


# ------------------------------------------------------------------ HTTP on the wire


class Http:
    """One keep-alive http.client connection to the fake cloud, as the read-only app."""

    def __init__(self, ep: Endpoints) -> None:
        self.ep = ep
        self.conn = http.client.HTTPConnection(urlsplit(ep.graph_url).netloc, timeout=10)
        self.token = ""

    def request(
        self, method: str, url: str, form: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], Any]:
        parts = urlsplit(url)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        headers = {"Accept": "application/json"}
        body = None
        if form is not None:
            body = urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        elif self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        self.conn.request(method, target, body=body, headers=headers)
        resp = self.conn.getresponse()
        raw = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, json.loads(raw or "null")

    def sign_in(self) -> int:
        status, _, body = self.request(
            "POST",
            self.ep.token_url,
            form={
                "grant_type": "client_credentials",
                "client_id": self.ep.readonly_client_id,
                "client_secret": self.ep.readonly_client_secret,
                "scope": "https://graph.microsoft.com/.default",
            },
        )
        if status == 200:
            self.token = body["access_token"]
        return status

    def users(self) -> tuple[int, dict[str, str], Any]:
        return self.request("GET", f"{self.ep.graph_url}/v1.0/users?$select=id&$top=5")

    def delta_round(self, url: str | None = None) -> tuple[str, int]:
        """Page through a delta round; (its deltaLink, users returned)."""
        url = url or f"{self.ep.graph_url}/v1.0/users/delta?$select=id,mail"
        seen = 0
        while True:
            status, _, body = self.request("GET", url)
            assert status == 200, body
            seen += len(body["value"])
            if "@odata.deltaLink" in body:
                return body["@odata.deltaLink"], seen
            url = body["@odata.nextLink"]


def graph_error(body: Any, code: str) -> None:
    err = body["error"]
    assert err["code"] == code and err["message"]
    assert {"date", "request-id", "client-request-id"} <= set(err["innerError"])


def test_throttle_is_429_with_retry_after_and_graphs_body(run):
    client = Http(run.endpoints)
    run.faults.arm("http", "throttle", on="users", retry_after=2, name="t")
    assert client.sign_in() == 200  # the token endpoint is exempt
    status, headers, body = client.users()
    assert status == 429
    assert headers["retry-after"] == "2"
    assert headers["x-ms-throttle-scope"].endswith(
        f"/{run.endpoints.readonly_client_id}/{run.endpoints.tenant_id}"
    )
    assert headers["x-exwb-fault"] == "t"
    graph_error(body, "TooManyRequests")
    status, _, body = client.users()  # same keep-alive connection
    assert status == 200 and len(body["value"]) == 5
    assert run.faults.injected_by_operation() == {"http.throttle.users": 1}


def test_unavailable_is_503_with_retry_after(run):
    client = Http(run.endpoints)
    assert client.sign_in() == 200
    run.faults.arm("http", "unavailable", count=2)
    for _ in range(2):
        status, headers, body = client.users()
        assert status == 503 and headers["retry-after"] == "1"
        graph_error(body, "serviceNotAvailable")
    assert client.users()[0] == 200


def test_a_fault_on_the_token_endpoint_must_name_it(run):
    client = Http(run.endpoints)
    run.faults.arm("http", "throttle", on="token")
    status, headers, _ = client.request("POST", run.endpoints.token_url, form={})
    assert status == 429 and headers["retry-after"] == "1"
    assert client.sign_in() == 200


def test_reset_closes_the_connection_without_a_response(run):
    client = Http(run.endpoints)
    assert client.sign_in() == 200
    run.faults.arm("http", "reset", on="users")
    with pytest.raises(ConnectionResetError):
        client.users()
    client.conn.close()
    assert client.users()[0] == 200  # http.client reconnects
    assert run.faults.injected() == {"http.reset": 1}


def test_expire_delta_answers_410_resync_and_a_fresh_round_works(run):
    client = Http(run.endpoints)
    assert client.sign_in() == 200
    link, everyone = client.delta_round()
    run.faults.arm("http", "expire_delta")
    again, _ = client.delta_round()  # a new round has no token: not expired
    status, headers, body = client.request("GET", link)
    assert status == 410
    graph_error(body, "resyncRequired")
    # Location starts a fresh full round with the same $select.
    assert "$select=id,mail" in headers["location"] and "deltatoken" not in headers["location"]
    fresh, count = client.delta_round(headers["location"])
    assert count == everyone
    assert client.delta_round(again)[1] == 0  # spent: tokens work again
    assert client.delta_round(fresh)[1] == 0
    assert run.faults.injected() == {"http.expire_delta": 1}


def test_a_fault_armed_on_the_run_reaches_both_servers(run):
    assert run.cloud is not None and run.cloud.faults is run.service.faults
    before = run.faults.injected()
    run.faults.arm("ldap", "busy", on="search")
    run.faults.arm("http", "throttle", on="users")
    conn, client = ldap(run.endpoints), Http(run.endpoints)
    assert not conn.search(USERS[0], "(objectClass=*)", BASE)
    assert client.sign_in() == 200 and client.users()[0] == 429
    assert since(before, run.faults.injected()) == {"http.throttle": 1, "ldap.busy": 1}


def test_truncated_sends_half_the_promised_body_and_the_engine_rereads_it(run):
    from harness.engine.source import CloudCredentials, GraphSource

    client = Http(run.endpoints)
    assert client.sign_in() == 200
    run.faults.arm("http", "truncated", on="users")
    with pytest.raises(http.client.IncompleteRead):
        client.users()
    client.conn.close()
    assert client.users()[0] == 200
    # The engine's reader treats a cut body like a dropped connection: it asks again.
    ep = run.endpoints
    run.faults.arm("http", "truncated", on="delta", count=2)
    creds = CloudCredentials(
        ep.graph_url, ep.token_url, ep.readonly_client_id, ep.readonly_client_secret
    )
    with GraphSource(creds, sleep=lambda s: None) as source:
        records = [r for page in source.pages(None) for r in page.records]
        assert source.stats["retries"] >= 2
    assert len(records) == len(run.cloud.store)
    assert run.faults.injected() == {"http.truncated": 3}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ldap:busy", {"server": "ldap", "kind": "busy", "on": "any", "count": 1}),
        ("ldap:busy:on=modify,after=10,count=5", {"on": "modify", "after": 10, "count": 5}),
        ("http:throttle:retry_after=2,count=unlimited", {"retry_after": 2, "count": None}),
        ("ldap:slow:seconds=0.5,name=lag", {"seconds": 0.5, "name": "lag"}),
    ],
)
def test_parse_fault_reads_the_command_line_form(text: str, expected: dict[str, Any]) -> None:
    from mockservers.faults import parse_fault

    spec = parse_fault(text)
    assert {k: getattr(spec, k) for k in expected} == expected


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("busy", "server:kind"),
        ("ldap:teleport", "unknown ldap fault"),
        ("ldap:busy:on=modify,after", "not key=value"),
        ("ldap:busy:colour=red", "unknown fault option"),
        ("ldap:busy:count=many", "not a number"),
        ("http:busy", "busy is an ldap fault"),
    ],
)
def test_parse_fault_refuses_bad_specs(text: str, fragment: str) -> None:
    from mockservers.faults import parse_fault

    with pytest.raises(FaultError, match=fragment):
        parse_fault(text)


def test_serve_arms_faults_from_the_command_line(tmp_path):
    import subprocess
    import sys

    from mockservers.runtime import spawn_serve

    endpoints = tmp_path / "endpoints.json"
    proc = spawn_serve(endpoints, "-n", "50", "-q", "--fault", "ldap:busy:on=modify,count=1")
    try:
        ep = Endpoints.read(endpoints)
        conn = Connection(Server(ep.ldap_url, get_info=NONE), ep.admin_dn, ep.admin_password)
        assert conn.bind()
        user = f"CN=Administrator,CN=Users,{ep.base_dn}"
        assert not conn.modify(user, {"description": [(MODIFY_REPLACE, ["x"])]})
        assert conn.result["result"] == 51
        assert conn.modify(user, {"description": [(MODIFY_REPLACE, ["x"])]}), conn.result
        conn.unbind()
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=60)
    assert "armed fault ldap.busy.1" in err
    bad = subprocess.run(
        [sys.executable, "-m", "harness", "serve", "-n", "10", "--fault", "ldap:teleport"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 2 and "--fault: unknown ldap fault 'teleport'" in bad.stderr
    assert "Traceback" not in bad.stderr
