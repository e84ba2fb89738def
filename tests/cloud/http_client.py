"""A plain HTTP client for the cloud tests (stdlib only: nothing of ours in between)."""

from __future__ import annotations

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


def token_request(ep: Endpoints, client_id: str, secret: str) -> Response:
    """The token endpoint's answer to a client-credentials request for Graph."""
    return call(
        "POST",
        ep.token_url,
        form={
            "grant_type": "client_credentials",
            "client_id": client_id,
            "client_secret": secret,
            "scope": "https://graph.microsoft.com/.default",
        },
    )


def token(ep: Endpoints, readonly: bool = False) -> str:
    cid, secret = (
        (ep.readonly_client_id, ep.readonly_client_secret)
        if readonly
        else (ep.client_id, ep.client_secret)
    )
    r = token_request(ep, cid, secret)
    assert r.status == 200, r.body
    return r.body["access_token"]


def cmdlet(ep: Endpoints, tok: str, name: str, **params: Any) -> Response:
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
