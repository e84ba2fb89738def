"""The benchmarks' HTTP client: one keep-alive connection speaking JSON, and an app's token.

Deliberately plain http.client (no retries, no token renewal) so that what is timed is the
fake cloud's answer, not a client's policy.
"""

from __future__ import annotations

import http.client
import json
from typing import Any
from urllib.parse import urlencode, urlsplit

GRAPH_SCOPE = "https://graph.microsoft.com/.default"
EXO_SCOPE = "https://outlook.office365.com/.default"


class JsonClient:
    """One keep-alive HTTP connection to the host of `base`, with a bearer `token` if given
    (and `exo_token` for the EXO admin API, which takes only Exchange's tokens)."""

    def __init__(self, base: str, token: str = "", exo_token: str = "") -> None:
        u = urlsplit(base)
        if u.hostname is None:
            raise ValueError(f"no host in {base!r}")
        self.conn = http.client.HTTPConnection(u.hostname, u.port, timeout=120)
        self.token = token
        self.exo_token = exo_token or token

    def request(
        self,
        method: str,
        url: str,
        body: Any = None,
        form: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        """(status, decoded JSON body; None when empty, the first 200 bytes when not JSON)."""
        u = urlsplit(url)
        hdrs = dict(headers or {})
        data = None
        if form is not None:
            data, hdrs["Content-Type"] = urlencode(form), "application/x-www-form-urlencoded"
        elif body is not None:
            data, hdrs["Content-Type"] = json.dumps(body), "application/json"
        bearer = self.exo_token if u.path.startswith("/adminapi/") else self.token
        if bearer:
            hdrs["Authorization"] = f"Bearer {bearer}"
        self.conn.request(method, u.path + (f"?{u.query}" if u.query else ""), data, hdrs)
        r = self.conn.getresponse()
        payload = r.read()
        try:
            return r.status, json.loads(payload) if payload else None
        except ValueError:
            return r.status, payload[:200]

    def close(self) -> None:
        self.conn.close()


def app_token(ep: dict[str, Any], scope: str = GRAPH_SCOPE) -> str:
    """A Graph (or `scope`) token for the read-write app of the endpoints JSON `ep`."""
    client = JsonClient(ep["graph_url"])
    try:
        status, body = client.request(
            "POST",
            ep["token_url"],
            form={
                "grant_type": "client_credentials",
                "client_id": ep["client_id"],
                "client_secret": ep["client_secret"],
                "scope": scope,
            },
        )
    finally:
        client.close()
    if status != 200:
        raise RuntimeError(f"token: HTTP {status} {body}")
    token: str = body["access_token"]
    return token
