"""The one HTTP client the harness talks to services with: Graph, the EXO admin API, the estate API.

`HttpClient` keeps one keep-alive `http.client` connection per host, authenticates each request
through an `Auth` strategy (`ClientCredentials`: an OAuth client-credentials token from the
token endpoint, renewed `TOKEN_RENEWAL_MARGIN` early on the harness clock, so a simulated
jump past its lifetime fetches a fresh one; `BasicAuth`: HTTP Basic), rides out throttling
(429/503, honouring Retry-After) and dropped connections with a bounded number of retries, and
decodes the services' JSON errors into a `ServiceError` (or the subclass a caller
names): Graph's and Exchange's ``{"error": {"code", "message", "details"}}`` and the token
endpoint's ``{"error", "error_description"}``.

Standard library only, so the engine's reader runs where only Python is installed.
"""

from __future__ import annotations

import base64
import http.client
import json
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple, Protocol
from urllib.parse import SplitResult, urlencode, urlsplit

from harness.core import clock

GRAPH_SCOPE = "https://graph.microsoft.com/.default"
EXO_SCOPE = "https://outlook.office365.com/.default"

# Renew a token five minutes before Entra ID says it expires, as MSAL and azure-identity do:
# Entra ID and the resource may disagree on the time by up to five minutes (the skew tokens are
# validated with), a token checked just before its end may be presented seconds later (a page of
# 999 users, a read-ahead started on another thread), and renewing early costs one token
# request an hour. A token shorter-lived than twice the margin is renewed at half its life.
TOKEN_RENEWAL_MARGIN = 300.0
# Wait this long after a 429/503 without a usable Retry-After (an HTTP date Graph does not send).
DEFAULT_RETRY_AFTER = 1.0
# The longest Retry-After honoured: a longer one is a broken server, not throttling.
MAX_RETRY_AFTER = 300.0
# Network failures back off 0.5 s, 1 s, 2 s ... up to this.
MAX_BACKOFF = 30.0
DEFAULT_MAX_RETRIES = 5
THROTTLED = frozenset({429, 503})
# `ServiceError.code` when the token endpoint refused the app (callers tell auth failures apart).
TOKEN_REFUSED = "TokenRequestFailed"
# `ServiceError.code` when the service could not be reached at all (`status` 0).
UNREACHABLE = "ConnectionFailed"
# Worth another attempt: the connection dropped, timed out, or the answer was cut short.
_RETRYABLE = (ConnectionError, TimeoutError, http.client.HTTPException)
# The server closed an idle keep-alive connection before reading the request: resend at once.
_STALE = (ConnectionResetError, BrokenPipeError, http.client.RemoteDisconnected)

Json = dict[str, Any]


class ServiceError(Exception):
    """A service refused a request or could not be reached: `status` (HTTP; 0 when unreachable),
    `code` (Graph's error code, Exchange's exception name), `message`, and `details` (the
    error's ``details`` list, e.g. Setup's failed prerequisite checks)."""

    def __init__(
        self, status: int, code: str, message: str, details: list[Json] | None = None
    ) -> None:
        super().__init__(f"{code}: {message}" if code else f"HTTP {status}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.details = details or []


class Response(NamedTuple):
    """A service's answer: `body` is the decoded JSON, the text of a non-JSON body, or None."""

    status: int
    headers: dict[str, str]
    body: Any


class Auth(Protocol):
    """How a request proves who sends it."""

    def header(self, client: HttpClient) -> str:
        """The Authorization header's value (may ask `client` for a token first)."""
        ...

    def refused(self) -> bool:
        """The service answered 401: forget the credential; True when a fresh one may pass."""
        ...


class BasicAuth:
    """HTTP Basic: the same header every time, so a 401 is final."""

    def __init__(self, user: str, password: str) -> None:
        token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
        self._header = f"Basic {token}"

    def header(self, client: HttpClient) -> str:
        return self._header

    def refused(self) -> bool:
        return False


class ClientCredentials:
    """An app's OAuth client-credentials token for `scope`, fetched when needed and renewed
    `TOKEN_RENEWAL_MARGIN` before it expires (or at once after a 401)."""

    def __init__(self, token_url: str, client_id: str, client_secret: str, scope: str) -> None:
        self.token_url = token_url
        self._form = urlencode(
            {
                "grant_type": "client_credentials",
                "client_id": client_id,
                "client_secret": client_secret,
                "scope": scope,
            }
        )
        self.token: str | None = None
        self._bearer = ""
        self._renew_at = 0.0

    def header(self, client: HttpClient) -> str:
        # On the harness clock, as the token service stamps and checks lifetimes: after a
        # simulated `advance(days=7)` the cached token is stale here too (one read per request).
        if self.token is None or clock.now().timestamp() >= self._renew_at:
            self._fetch(client)
        return self._bearer

    def access_token(self, client: HttpClient) -> str:
        """The current token, fetched first if there is none or it is due for renewal."""
        self.header(client)
        assert self.token is not None
        return self.token

    def refused(self) -> bool:
        self.token = None
        return True

    def _fetch(self, client: HttpClient) -> None:
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        status, _, body = client.send("POST", self.token_url, self._form, headers)
        token = body.get("access_token") if isinstance(body, dict) else None
        if status != 200 or not isinstance(token, str) or not token:
            code, message, _ = decode_error(body)
            why = f"{code}: {message}" if code else message
            place = where(urlsplit(self.token_url))
            raise client.error(
                status, TOKEN_REFUSED, f"token request to {place} failed: HTTP {status} {why}"
            )
        lifetime = float(body.get("expires_in", 3599))
        margin = min(TOKEN_RENEWAL_MARGIN, lifetime / 2)
        self._renew_at = clock.now().timestamp() + lifetime - margin
        self.token = token
        self._bearer = f"Bearer {token}"


def decode_error(body: Any) -> tuple[str, str, list[Json]]:
    """(code, message, details) of an error body: Graph's and Exchange's ``{"error": {...}}``,
    the token endpoint's ``{"error": "...", "error_description": "..."}``, or ("", the body)."""
    if isinstance(body, dict):
        err = body.get("error")
        if isinstance(err, dict):
            details = err.get("details")
            return (
                str(err.get("code", "")),
                str(err.get("message", "")),
                list(details) if isinstance(details, list) else [],
            )
        if isinstance(err, str):
            return err, str(body.get("error_description", "")), []
    return "", repr(body)[:300], []


def where(parts: SplitResult) -> str:
    """A URL for a message: without the query (skip and delta tokens say nothing to a reader)."""
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


def _retry_after(headers: Mapping[str, str]) -> float:
    try:
        return min(MAX_RETRY_AFTER, max(0.0, float(headers["retry-after"])))
    except (KeyError, ValueError):
        return DEFAULT_RETRY_AFTER


class HttpClient:
    """Requests to one service as one principal; see `call` (JSON in, JSON out, errors raised)
    and `request` (any status returned). Safe to share between threads: one request at a time.

    `stats` counts `requests` sent (token requests and resends included), `retries`, the
    seconds `waited_seconds` before retries, and answers `throttled` (429/503)."""

    def __init__(
        self,
        auth: Auth | None,
        *,
        timeout: float = 60.0,
        max_retries: int = DEFAULT_MAX_RETRIES,
        sleep: Callable[[float], None] = time.sleep,
        error: type[ServiceError] = ServiceError,
    ) -> None:
        self.auth = auth
        self.timeout = timeout
        self.max_retries = max_retries
        self.sleep = sleep
        self.error = error
        self.stats: dict[str, Any] = {
            "requests": 0,
            "retries": 0,
            "waited_seconds": 0.0,
            "throttled": 0,
        }
        self._conns: dict[tuple[str, str], http.client.HTTPConnection] = {}
        self._lock = threading.RLock()  # a read-ahead is a second thread on the same client

    def close(self) -> None:
        with self._lock:
            for conn in self._conns.values():
                conn.close()
            self._conns.clear()

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def call(self, method: str, url: str, body: Json | None = None) -> Any:
        """A JSON request; the decoded answer (None when empty, e.g. 204), or `error` raised with
        the service's code and message when it answers anything but 2xx with JSON."""
        status, _, payload = self.request(method, url, body)
        if 200 <= status < 300 and not isinstance(payload, str):
            return payload
        code, message, details = decode_error(payload)
        if not code and isinstance(payload, str):
            message = f"unexpected response to {method} {where(urlsplit(url))}: {payload[:200]}"
        raise self.error(status, code, message, details)

    def request(
        self,
        method: str,
        url: str,
        body: Json | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Response:
        """An authenticated request with retries; whatever the service finally answered. After
        a 401, one fresh credential when the auth strategy can get one."""
        data = None if body is None else json.dumps(body, ensure_ascii=False).encode("utf-8")
        sent = {"Accept": "application/json", **(headers or {})}
        if data is not None:
            sent["Content-Type"] = "application/json"
        with self._lock:
            renewed = False
            while True:
                if self.auth is not None:
                    sent["Authorization"] = self.auth.header(self)
                answer = self.send(method, url, data, sent)
                if answer.status != 401 or renewed or self.auth is None or not self.auth.refused():
                    return answer
                renewed = True  # revoked or expired before our estimate: once more, then give up

    def send(
        self, method: str, url: str, data: bytes | str | None, headers: Mapping[str, str]
    ) -> Response:
        """One request as given (no auth added), resent after throttling and network failures
        up to `max_retries` times; `error` raised when they are exhausted."""
        parts = urlsplit(url)
        key = (parts.scheme, parts.netloc)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        attempt = 0
        with self._lock:
            while True:
                reused = key in self._conns
                conn = self._connection(key)
                self.stats["requests"] += 1
                try:
                    conn.request(method, target, body=data, headers=headers)
                    resp = conn.getresponse()
                    raw = resp.read()
                except _RETRYABLE as e:
                    self._drop(key)
                    attempt += 1
                    if attempt > self.max_retries:
                        why = f"{e!r} after {attempt} attempts"
                        raise self.error(0, UNREACHABLE, f"{method} {where(parts)}: {why}") from e
                    if reused and isinstance(e, _STALE):
                        self.stats["retries"] += 1  # an idle connection closed: no reason to wait
                    else:
                        self._retry(min(MAX_BACKOFF, 0.5 * 2 ** (attempt - 1)))
                    continue
                except OSError as e:  # no such host, no route: retrying will not help
                    self._drop(key)
                    raise self.error(0, UNREACHABLE, f"{method} {where(parts)}: {e}") from e
                reply_headers = {k.lower(): v for k, v in resp.getheaders()}
                if resp.status not in THROTTLED:
                    return Response(resp.status, reply_headers, _decode(raw))
                self.stats["throttled"] += 1
                attempt += 1
                if attempt > self.max_retries:
                    code = decode_error(_decode(raw))[0]
                    why = f"HTTP {resp.status} after {attempt} attempts"
                    raise self.error(resp.status, code, f"{method} {where(parts)}: {why}")
                self._retry(_retry_after(reply_headers))

    def _retry(self, seconds: float) -> None:
        self.stats["retries"] += 1
        self.stats["waited_seconds"] += seconds
        self.sleep(seconds)

    def _connection(self, key: tuple[str, str]) -> http.client.HTTPConnection:
        conn = self._conns.get(key)
        if conn is None:
            scheme, netloc = key
            cls = http.client.HTTPSConnection if scheme == "https" else http.client.HTTPConnection
            conn = self._conns[key] = cls(netloc, timeout=self.timeout)
        return conn

    def _drop(self, key: tuple[str, str]) -> None:
        conn = self._conns.pop(key, None)
        if conn is not None:
            conn.close()


def _decode(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return raw.decode("utf-8", "replace")
