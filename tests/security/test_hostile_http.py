"""Malformed HTTP against the fake Exchange Online / Graph (issue 9, "Bad input").

tests/cloud/test_http.py already proves: bad JSON and a non-cmdlet body to InvokeCommand (400),
a 5 MB body with Content-Length (413), DELETE on /v1.0/users (405), missing, made-up and expired
bearers (401), the token endpoint's Entra errors. These add what is left: bad bodies on the
token endpoint (Entra's OAuth shape, not Graph's), deeply nested JSON, a huge *chunked* body
(no Content-Length to refuse early), unknown query parameters, every wrong method with its
Allow header, unknown paths, bearer headers of every wrong form, raw non-HTTP bytes and a
half-sent request on the socket. Every error carries Graph's
``{"error": {"code", "message", "innerError": {"date", "request-id", "client-request-id"}}}``
(mockservers/cloud/errors.py), the token endpoint Entra's ``{"error", "error_description",
"error_codes", ...}``, and after each the server still answers a correct request.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
from urllib.parse import urlsplit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.tenant import TenantSpec, generate
from tests.cloud.http_client import call, cmdlet, exo_token, graph_error, token

JSON = {"Content-Type": "application/json"}
TENANT = generate(TenantSpec(mailboxes=40, seed=5, cloud_managed_fraction=0.8))
pytestmark = pytest.mark.shared_tenant


@pytest.fixture(scope="module")
def tok(shared_run):
    return token(shared_run.endpoints)


@pytest.fixture(scope="module")
def exo_tok(shared_run):
    """Exchange's admin API takes only tokens for Exchange."""
    return exo_token(shared_run.endpoints)


def still_serving(run, tok) -> None:
    ep = run.endpoints
    r = call("GET", f"{ep.graph_url}/v1.0/users?$top=1", token=tok)
    assert r.status == 200 and len(r.body["value"]) == 1
    r = cmdlet(ep, tok, "Get-Mailbox", ResultSize=1)
    assert r.status == 200 and len(r.body["value"]) == 1


def oauth_error(r, status: int, error: str, aadsts: str) -> None:
    assert r.status == status, r.body
    assert r.body["error"] == error
    assert r.body["error_description"].startswith(aadsts + ":")
    assert r.body["error_codes"] == [int(aadsts[6:])]
    assert {"timestamp", "trace_id", "correlation_id"} <= set(r.body)


# --- bodies --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw, headers",
    [
        pytest.param(b'{"grant_type": "client_credentials"}', JSON, id="json-instead-of-form"),
        pytest.param(b"\xff\x00&&==&%zz", {}, id="garbage-form"),
        pytest.param(b"", {}, id="empty"),
    ],
)
def test_bad_token_request_bodies_get_entras_oauth_error(run, tok, raw, headers):
    # Entra reads only a form: without grant_type it is AADSTS70003 unsupported_grant_type
    # (what the fake already answers for a wrong grant type; tests/cloud/test_http.py).
    r = call("POST", run.endpoints.token_url, raw=raw, headers=headers)
    oauth_error(r, 400, "unsupported_grant_type", "AADSTS70003")
    still_serving(run, tok)


def test_deeply_nested_json_is_a_bad_request_not_a_crash(run, tok, exo_tok):
    # Python's json recursion limit raised RecursionError inside the server: 500 before the fix.
    raw = b"[" * 100_000 + b"]" * 100_000
    r = call("POST", f"{run.endpoints.exo_url}/InvokeCommand", token=exo_tok, raw=raw, headers=JSON)
    graph_error(r, 400, "BadRequest")
    assert "valid JSON" in r.body["error"]["message"]
    still_serving(run, tok)


@pytest.mark.parametrize(
    "raw",
    [
        b'{"CmdletInput": {"CmdletName": "Get-Mailbox", "Parameters": [1]}}',
        b'{"CmdletInput": {"CmdletName": 7}}',
        b'{"CmdletInput": "Get-Mailbox"}',
        b"null",
        b'"\\ud800"',
        b'{"CmdletInput": {"CmdletName": "Get-Mailbox\xff"}}',
    ],
)
def test_wrong_json_shapes_to_invoke_command(run, tok, exo_tok, raw):
    r = call("POST", f"{run.endpoints.exo_url}/InvokeCommand", token=exo_tok, raw=raw, headers=JSON)
    graph_error(r, 400, "BadRequest")
    still_serving(run, tok)


def test_a_huge_chunked_body_is_413(run, tok, exo_tok):
    # No Content-Length to refuse up front: the body is read up to the 4 MB limit, then refused.
    url = urlsplit(f"{run.endpoints.exo_url}/InvokeCommand")
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
    chunk = b"a" * 65536
    conn.request(
        "POST",
        url.path,
        body=iter([b'{"CmdletInput": {"x": "'] + [chunk] * 80 + [b'"}}']),  # 5 MB
        headers={**JSON, "Authorization": f"Bearer {exo_tok}"},
        encode_chunked=True,
    )
    resp = conn.getresponse()
    body = json.loads(resp.read())
    conn.close()
    assert resp.status == 413
    assert body["error"]["code"] == "RequestEntityTooLarge"
    assert {"date", "request-id", "client-request-id"} <= set(body["error"]["innerError"])
    still_serving(run, tok)


def test_huge_token_request_is_413_in_graphs_shape(run, tok):
    big = b"grant_type=client_credentials&x=" + b"a" * (5 << 20)
    r = call(
        "POST",
        run.endpoints.token_url,
        raw=big,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    graph_error(r, 413, "RequestEntityTooLarge")
    still_serving(run, tok)


# --- parameters, methods, paths -----------------------------------------------------------------


def test_unknown_query_parameters_are_ignored_as_graph_ignores_them(run, tok, exo_tok):
    ep = run.endpoints
    plain = call("GET", f"{ep.graph_url}/v1.0/users?$top=3", token=tok)
    extra = call("GET", f"{ep.graph_url}/v1.0/users?$top=3&foo=bar&%00=%FF", token=tok)
    assert plain.status == extra.status == 200
    assert [u["id"] for u in plain.body["value"]] == [u["id"] for u in extra.body["value"]]
    r = cmdlet(ep, tok, "Get-Mailbox", ResultSize=1)
    r2 = call(
        "POST",
        f"{ep.exo_url}/InvokeCommand?junk=1",
        token=exo_tok,
        body={"CmdletInput": {"CmdletName": "Get-Mailbox", "Parameters": {"ResultSize": 1}}},
    )
    assert r.status == r2.status == 200
    assert r.body["value"] == r2.body["value"]


@pytest.mark.parametrize(
    "value, code",
    [
        ("$top=abc", "Request_BadRequest"),
        ("$top=0", "Request_BadRequest"),
        ("$filter=((", "BadRequest"),
    ],
)
def test_bad_values_of_known_query_parameters(run, tok, value, code):
    r = call("GET", f"{run.endpoints.graph_url}/v1.0/users?{value}", token=tok)
    graph_error(r, 400, code)
    still_serving(run, tok)


@pytest.mark.parametrize(
    "method, where, allowed",
    [
        ("GET", "token", "POST"),
        ("PUT", "token", "POST"),
        ("POST", "users", "GET"),
        ("PATCH", "users", "GET"),
        ("DELETE", "user", "GET"),
        ("GET", "invoke", "POST"),
        ("DELETE", "invoke", "POST"),
        ("GET", "dirsync", "POST"),
    ],
)
def test_wrong_methods_are_405_with_allow(run, tok, exo_tok, method, where, allowed):
    ep = run.endpoints
    url = {
        "token": ep.token_url,
        "users": f"{ep.graph_url}/v1.0/users",
        "user": f"{ep.graph_url}/v1.0/users/{next(iter(run.cloud.store)).id}",
        "invoke": f"{ep.exo_url}/InvokeCommand",
        "dirsync": ep.dirsync_url,
    }[where]
    bearer = exo_tok if where == "invoke" else tok
    r = call(method, url, token=bearer, raw=b"{}" if method in ("PUT", "PATCH", "POST") else None)
    graph_error(r, 405, "Request_BadRequest")
    assert r.headers.get("allow") == allowed
    still_serving(run, tok)


@pytest.mark.parametrize(
    "path", ["/", "/v1.0/groups", "/v1.0/users/a/b/c", "/beta/me", "/%FF%FE", "/../../etc/passwd"]
)
def test_unknown_paths_are_graphs_400(run, tok, path):
    r = call("GET", f"{run.endpoints.graph_url}{path}", token=tok)
    graph_error(r, 400, "BadRequest")
    assert r.body["error"]["message"].startswith("Resource not found for the segment")
    still_serving(run, tok)


def test_invoke_command_of_another_tenant_is_404(run, exo_tok):
    ep = run.endpoints
    url = f"{ep.graph_url}/adminapi/beta/11111111-2222-3333-4444-555555555555/InvokeCommand"
    r = call("POST", url, token=exo_tok, body={"CmdletInput": {"CmdletName": "Get-Mailbox"}})
    graph_error(r, 404, "NotFound")


# --- bearer tokens -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "authorization",
    [
        "",
        "Bearer",
        "Bearer ",
        "bearer x",
        "Basic dXNlcjpwYXNz",
        "Bearer eyJhbGciOiJub25lIn0.eyJyb2xlcyI6WyJFeGNoYW5nZS5NYW5hZ2VBc0FwcCJdfQ.",
        "Bearer " + "A" * 8000,
        "Bearer \u00e9\u00e9",
    ],
)
def test_garbage_bearers_are_401_with_www_authenticate(run, tok, authorization):
    ep = run.endpoints
    for method, url in (
        ("GET", f"{ep.graph_url}/v1.0/users"),
        ("POST", f"{ep.exo_url}/InvokeCommand"),
    ):
        r = call(
            method,
            url,
            raw=b'{"CmdletInput": {"CmdletName": "Get-Mailbox"}}' if method == "POST" else None,
            headers={"Authorization": authorization, **JSON}
            if authorization.isascii()
            else {"Authorization": authorization.encode("utf-8").decode("latin-1"), **JSON},
        )
        graph_error(r, 401, "InvalidAuthenticationToken")
        assert r.headers["www-authenticate"].startswith("Bearer")
    still_serving(run, tok)


def test_a_token_of_another_app_cannot_be_stretched_by_tampering(run, tok):
    # One character changed anywhere in a valid token: refused, never another identity.
    ep = run.endpoints
    for i in (0, len(tok) // 2, len(tok) - 1):
        bad = tok[:i] + ("A" if tok[i] != "A" else "B") + tok[i + 1 :]
        graph_error(
            call("GET", f"{ep.graph_url}/v1.0/users", token=bad), 401, "InvalidAuthenticationToken"
        )


# --- the socket ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "payload",
    [
        b"\x30\x0c\x02\x01\x01\x60\x07\x02\x01\x03\x04\x00\x80\x00",  # an LDAP bind
        b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" + b"\x00" * 32,  # a TLS ClientHello
        b"GET /v1.0/users HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
        b"GET /v1.0/users HTTP/9.9\r\n\r\n",
        b"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nhalf",  # then close
        b"\xff" * 70000,
    ],
)
def test_non_http_bytes_on_the_http_port(run, tok, payload):
    url = urlsplit(run.endpoints.graph_url)
    with socket.create_connection((url.hostname, url.port), 5) as s:
        s.settimeout(2)
        with contextlib.suppress(OSError):
            s.sendall(payload)
            s.recv(65536)
    still_serving(run, tok)


# --- signed tokens and client assertions ---------------------------------------------------------

_B64 = st.text(
    alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=+/", max_size=300
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(header=_B64, payload=_B64, signature=_B64)
def test_random_three_part_bearers_are_401_never_500(run, tok, header, payload, signature):
    r = call(
        "GET",
        f"{run.endpoints.graph_url}/v1.0/users?$top=1",
        headers={"Authorization": f"Bearer {header}.{payload}.{signature}"},
    )
    graph_error(r, 401, "InvalidAuthenticationToken")


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(assertion=st.one_of(_B64, st.builds(lambda a, b, c: f"{a}.{b}.{c}", _B64, _B64, _B64)))
def test_random_client_assertions_get_entras_error_never_500(run, assertion):
    ep = run.endpoints
    r = call(
        "POST",
        ep.token_url,
        form={
            "grant_type": "client_credentials",
            "client_id": ep.client_id,
            "scope": "https://graph.microsoft.com/.default",
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": assertion,
        },
    )
    assert r.status in (400, 401), (r.status, r.body)
    assert r.body["error"] in ("invalid_request", "invalid_client"), r.body
    assert r.body["error_description"].startswith("AADSTS")


def test_tokens_of_the_right_shape_but_wrong_claims_are_refused(run, tok):
    """The fake's own key signing claims it must still refuse: another tenant, an unknown app,
    a missing expiry (what a leaked signing key could not stretch into another identity)."""
    import jwt as pyjwt

    auth = run.cloud.auth
    claims = pyjwt.decode(tok, options={"verify_signature": False})
    for change in (
        {"tid": "11111111-2222-3333-4444-555555555555"},
        {"appid": "99999999-0000-0000-0000-000000000000"},
        {"exp": None},
        {"iss": "https://sts.windows.net/elsewhere/"},
    ):
        forged = auth.signer.sign({k: v for k, v in {**claims, **change}.items() if v is not None})
        r = call("GET", f"{run.endpoints.graph_url}/v1.0/users?$top=1", token=forged)
        graph_error(r, 401, "InvalidAuthenticationToken")
    still_serving(run, tok)
