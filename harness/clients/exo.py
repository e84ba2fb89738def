"""An Exchange Online admin session over HTTP: cmdlets through ``POST .../InvokeCommand``.

What an administrator's script does against the EXO admin API, with the read-write app's
client-credentials token: run a cmdlet, follow ``@odata.nextLink`` for the rest of its output,
and read Exchange's error (its exception name and text) when the cmdlet is refused.
Standard library only: one keep-alive `http.client` connection per host.
"""

from __future__ import annotations

import http.client
import json
import time
from typing import Any
from urllib.parse import SplitResult, urlencode, urlsplit

EXO_SCOPE = "https://outlook.office365.com/.default"
MAX_TRIES = 5
MAX_WAIT = 30.0

Json = dict[str, Any]


class CmdletError(Exception):
    """A cmdlet refused: `status` (HTTP), `code` (Exchange's exception name), `message`."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}" if code else f"HTTP {status}: {message}")
        self.status = status
        self.code = code
        self.message = message


# Exchange's only sign that a Set-* cmdlet changed nothing is this warning's text: no code, no
# field (``@adminapi.warnings`` is a list of strings). It is matched here, once, where the rest
# of Exchange's answer is decoded, so callers branch on `modified_nothing` instead.
NOT_MODIFIED_WARNING = "The command completed successfully but no settings of "


def modified_nothing(page: Json) -> bool:
    """Whether a Set-* cmdlet's answer says it left the object as it was."""
    warnings = page.get("@adminapi.warnings") or []
    return any(str(w).startswith(NOT_MODIFIED_WARNING) for w in warnings)


class ExoAdmin:
    """Runs cmdlets as an app with Exchange.ManageAsApp; see `invoke` and `invoke_all`."""

    def __init__(
        self,
        exo_url: str,
        token_url: str,
        client_id: str,
        client_secret: str,
        timeout=60.0,
        scope: str = EXO_SCOPE,
    ) -> None:
        self.exo_url = exo_url.rstrip("/")
        self.scope = scope
        self.token_url = token_url
        self.client_id = client_id
        self.client_secret = client_secret
        self.timeout = timeout
        self.calls = 0
        self._conns: dict[str, http.client.HTTPConnection] = {}
        self._token: str | None = None
        self._expiry = 0.0

    def close(self) -> None:
        for conn in self._conns.values():
            conn.close()
        self._conns.clear()

    def __enter__(self) -> ExoAdmin:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def invoke(self, cmdlet: str, **parameters: Any) -> Json:
        """Run one cmdlet; its first page of output (``value``, ``@adminapi.warnings`` ...)."""
        body = {"CmdletInput": {"CmdletName": cmdlet, "Parameters": parameters}}
        return self._call("POST", f"{self.exo_url}/InvokeCommand", body)

    def invoke_all(self, cmdlet: str, **parameters: Any) -> list[Json]:
        """Every item a cmdlet returns, following its next links."""
        page = self.invoke(cmdlet, **parameters)
        items = list(page.get("value") or [])
        while link := page.get("@odata.nextLink"):
            page = self._call("GET", link, None)
            items += page.get("value") or []
        return items

    def request(self, method: str, path: str, body: Json | None = None) -> Json:
        """Any call under the base URL (Graph, with a Graph-scoped session); {} for a 204."""
        return self._call(method, f"{self.exo_url}{path}", body)

    # --- HTTP ---

    def _call(self, method: str, url: str, body: Json | None) -> Json:
        refreshed = False
        for attempt in range(1, MAX_TRIES + 1):
            headers = {
                "Authorization": f"Bearer {self._access_token()}",
                "Accept": "application/json",
            }
            status, reply_headers, payload = self._send(method, url, headers, body)
            if status == 200 and isinstance(payload, dict):
                self.calls += 1
                return payload
            if status == 204:
                self.calls += 1
                return {}
            if status == 401 and not refreshed:
                self._token, refreshed = None, True  # expired early: one fresh token
                continue
            if status in (429, 503) and attempt < MAX_TRIES:
                time.sleep(min(MAX_WAIT, _retry_after(reply_headers)))
                continue
            error = payload.get("error") if isinstance(payload, dict) else None
            if isinstance(error, dict):
                raise CmdletError(status, str(error.get("code", "")), str(error.get("message", "")))
            raise CmdletError(status, "", repr(payload)[:300])
        raise CmdletError(429, "TooManyRequests", f"still throttled after {MAX_TRIES} tries")

    def _access_token(self) -> str:
        if self._token is not None and time.monotonic() < self._expiry:
            return self._token
        form = urlencode(
            {
                "grant_type": "client_credentials",
                "client_id": self.client_id,
                "client_secret": self.client_secret,
                "scope": self.scope,
            }
        )
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        status, _, payload = self._send("POST", self.token_url, headers, form)
        if status != 200 or not isinstance(payload, dict) or "access_token" not in payload:
            detail = payload.get("error_description") if isinstance(payload, dict) else payload
            raise CmdletError(status, "TokenRequestFailed", str(detail)[:300])
        self._token = str(payload["access_token"])
        # Renew a minute early rather than meet a 401 in the middle of a step.
        self._expiry = time.monotonic() + max(0.0, float(payload.get("expires_in", 3600)) - 60)
        return self._token

    def _send(
        self, method: str, url: str, headers: dict[str, str], body: Json | str | None
    ) -> tuple[int, dict[str, str], Any]:
        parts = urlsplit(url)
        data = None
        if isinstance(body, dict):
            data = json.dumps(body, ensure_ascii=False).encode("utf-8")
            headers = {**headers, "Content-Type": "application/json"}
        elif isinstance(body, str):
            data = body.encode("utf-8")
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        for attempt in range(2):
            conn = self._connection(parts)
            try:
                conn.request(method, target, body=data, headers=headers)
                response = conn.getresponse()
                raw = response.read()
                break
            except (ConnectionError, http.client.HTTPException, TimeoutError):
                # A keep-alive connection the server closed: one fresh connection, then give up.
                conn.close()
                self._conns.pop(parts.netloc, None)
                if attempt:
                    raise
        reply_headers = {k.lower(): v for k, v in response.getheaders()}
        try:
            payload = json.loads(raw) if raw else None
        except ValueError:
            payload = raw.decode("utf-8", "replace")
        return response.status, reply_headers, payload

    def _connection(self, parts: SplitResult) -> http.client.HTTPConnection:
        conn = self._conns.get(parts.netloc)
        if conn is None:
            cls = (
                http.client.HTTPSConnection
                if parts.scheme == "https"
                else http.client.HTTPConnection
            )
            conn = cls(parts.netloc, timeout=self.timeout)
            self._conns[parts.netloc] = conn
        return conn


def _retry_after(headers: dict[str, str]) -> float:
    try:
        return max(0.0, float(headers["retry-after"]))
    except (KeyError, ValueError):
        return 1.0
