"""A plain HTTP client for the cloud tests (stdlib only: nothing of ours in between)."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

from harness.core.endpoints import Endpoints


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: Any
    reason: str = ""  # the status line's reason phrase


def call(
    method: str,
    url: str,
    *,
    token: str | None = None,
    body: Any = None,
    form: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
    raw: bytes | None = None,
) -> Response:
    data = raw
    hdrs = dict(headers or {})
    if form is not None:
        data = urllib.parse.urlencode(form).encode()
        hdrs["Content-Type"] = "application/x-www-form-urlencoded"
    elif body is not None:
        data = json.dumps(body).encode()
        hdrs["Content-Type"] = "application/json"
    if token:
        hdrs["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(url, data=data, method=method, headers=hdrs)
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            status, headers_, payload, phrase = r.status, dict(r.headers), r.read(), r.reason
    except urllib.error.HTTPError as e:
        status, headers_, payload, phrase = e.code, dict(e.headers), e.read(), e.reason
    return Response(
        status,
        {k.lower(): v for k, v in headers_.items()},
        json.loads(payload) if payload else None,
        phrase,
    )


GRAPH = "https://graph.microsoft.com/.default"
EXO = "https://outlook.office365.com/.default"


def token_request(ep: Endpoints, client_id: str, secret: str, scope: str = GRAPH) -> Response:
    """The token endpoint's answer to a client-credentials request for Graph (or `scope`)."""
    return call(
        "POST",
        ep.token_url,
        form={
            "grant_type": "client_credentials",
            "client_id": client_id,
            "client_secret": secret,
            "scope": scope,
        },
    )


def token(ep: Endpoints, readonly: bool = False, scope: str = GRAPH) -> str:
    """An access token for Graph (or `scope`: `EXO` for the admin API) of the read-write app,
    or of the read-only one."""
    cid, secret = (
        (ep.readonly_client_id, ep.readonly_client_secret)
        if readonly
        else (ep.client_id, ep.client_secret)
    )
    r = token_request(ep, cid, secret, scope)
    assert r.status == 200, r.body
    return r.body["access_token"]


def exo_token(ep: Endpoints, readonly: bool = False) -> str:
    """An access token for Exchange Online's admin API."""
    return token(ep, readonly, EXO)


def _claim(tok: str, name: str) -> str:
    """Claim `name` of an access token (unverified: the server verifies), '' if not a JWT."""
    try:
        claims = tok.split(".")[1]
        return json.loads(base64.urlsafe_b64decode(claims + "=" * (-len(claims) % 4)))[name]
    except (IndexError, ValueError, KeyError, TypeError):
        return ""


def cmdlet(ep: Endpoints, tok: str, name: str, **params: Any) -> Response:
    """Run an EXO cmdlet as the app `tok` belongs to. Exchange takes only Exchange tokens, so a
    Graph token of one of `ep`'s apps is traded for that app's Exchange token, as a client
    holds one token per resource; any other `tok` (empty, forged, an Exchange token) is sent
    as it is."""
    if _claim(tok, "aud") == GRAPH.removesuffix("/.default"):
        apps = {
            ep.client_id: False,
            ep.readonly_client_id: True,
        }
        app = _claim(tok, "appid")
        if app in apps:
            tok = exo_token(ep, readonly=apps[app])
        elif app == ep.connect_client_id:
            r = token_request(ep, ep.connect_client_id, ep.connect_client_secret, EXO)
            tok = r.body["access_token"]
    return call(
        "POST",
        f"{ep.exo_url}/InvokeCommand",
        token=tok,
        body={"CmdletInput": {"CmdletName": name, "Parameters": params}},
    )


def graph_error(r: Response, status: int, code: str) -> None:
    assert r.status == status, (r.status, r.body)
    err = r.body["error"]
    assert err["code"] == code, err
    assert err["message"]
    assert {"date", "request-id", "client-request-id"} <= set(err["innerError"])
