"""The engine's reader of cloud changes: Graph ``users/delta`` rounds over plain HTTP.

`GraphSource.pages` walks one delta round (a full one, or an incremental one from a stored
deltaLink) and yields `DeltaPage`s of EXO-named records (`to_exo_record`), ready for
`Profile.desired`. It gets its own client-credentials token, rides out throttling (429/503 with
Retry-After) and dropped connections, and falls back to a full round when Graph says the stored
link is no longer usable (410 resyncRequired, 400 syncStateNotFound).

Standard library only: one keep-alive `http.client` connection per host.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import SplitResult, quote, urlencode, urlsplit

SELECT = (
    "id,onPremisesImmutableId,onPremisesSyncEnabled,mail,proxyAddresses,"
    "onPremisesExtensionAttributes,exwbExchange"
)
GRAPH_SCOPE = "https://graph.microsoft.com/.default"
# Identity properties copied into the EXO-named record when a reader selects them (the
# forward-sync model compares them; the writeback does not select them).
IDENTITY_PROPERTIES = (("displayName", "DisplayName"), ("userPrincipalName", "UserPrincipalName"))
DEFAULT_RETRY_AFTER = 1.0
MAX_BACKOFF = 30.0
# Network failures worth a reconnect; anything else is a bug or a bad server and propagates.
_NETWORK_ERRORS = (ConnectionError, TimeoutError, http.client.IncompleteRead)

Json = dict[str, Any]


@dataclass(frozen=True)
class CloudCredentials:
    """Where Graph and its token endpoint are, and the app that reads."""

    graph_url: str
    token_url: str
    client_id: str
    client_secret: str


class SourceError(Exception):
    """An unrecoverable failure reading the cloud (auth, bad response, retries exhausted)."""


class SourceAuthError(SourceError):
    """The app could not get a token: wrong client id or secret, or no such tenant."""


@dataclass
class DeltaPage:
    """One page of a delta round: changed users (EXO-named) and ids of removed users."""

    records: list[Json]
    removed: list[str]


_CUSTOM = tuple((f"CustomAttribute{i}", f"extensionAttribute{i}") for i in range(1, 16))
_EXTENSION_CUSTOM = tuple(
    (f"ExtensionCustomAttribute{i}", f"extensionCustomAttribute{i}") for i in range(1, 6)
)


def to_exo_record(user: Json) -> Json:
    """A Graph user (selected with `SELECT`) as the EXO-named record `Profile.desired` takes."""
    uid = user.get("id")
    exo = user.get("exwbExchange")
    if not isinstance(exo, dict):
        # Without the Exchange state the engine cannot tell whether the user is in scope.
        raise SourceError(f"user {uid}: no exwbExchange in the Graph response (not selected?)")
    ext = user.get("onPremisesExtensionAttributes") or {}
    rec: Json = {
        "id": uid,
        "onPremisesImmutableId": user.get("onPremisesImmutableId"),
        "IsDirSynced": user.get("onPremisesSyncEnabled") is True,
        "IsExchangeCloudManaged": bool(exo.get("isExchangeCloudManaged")),
        "RecipientTypeDetails": exo.get("recipientTypeDetails"),
        "HiddenFromAddressListsEnabled": bool(exo.get("hiddenFromAddressListsEnabled")),
        "EmailAddresses": list(user.get("proxyAddresses") or []),
        "WindowsEmailAddress": user.get("mail") or "",
    }
    for exo_name, graph_name in _CUSTOM:
        rec[exo_name] = ext.get(graph_name) or ""
    for exo_name, graph_name in _EXTENSION_CUSTOM:
        rec[exo_name] = list(exo.get(graph_name) or ())
    for graph_name, exo_name in IDENTITY_PROPERTIES:
        if graph_name in user:
            rec[exo_name] = user[graph_name]
    return rec


def _error_code(body: Any) -> str:
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return str(body["error"].get("code", ""))
    return ""


def _describe(body: Any) -> str:
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        err = body["error"]
        return f"{err.get('code', '?')}: {err.get('message', '')}"
    return repr(body)[:200]


def _where(parts: SplitResult) -> str:
    # Without the query: skip and delta tokens are long and say nothing to a reader.
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


def _retry_after(headers: dict[str, str]) -> float:
    try:
        return max(0.0, float(headers["retry-after"]))
    except (KeyError, ValueError):
        return DEFAULT_RETRY_AFTER  # absent, or an HTTP date Graph does not send


class GraphSource:
    """Reads Graph ``users/delta`` rounds; see `pages`."""

    def __init__(
        self,
        creds: CloudCredentials,
        *,
        page_size: int = 999,
        max_retries: int = 5,
        sleep: Callable[[float], None] = time.sleep,
        timeout: float = 60,
        read_ahead: bool = False,
    ) -> None:
        self.creds = creds
        self.read_ahead = read_ahead
        self.page_size = page_size
        self.max_retries = max_retries
        self.sleep = sleep
        self.timeout = timeout
        self.next_delta_link: str | None = None
        self.resynced = False
        self.stats: dict[str, Any] = {
            "requests": 0,
            "retries": 0,
            "waited_seconds": 0.0,
            "throttled": 0,
        }
        self._conns: dict[tuple[str, str], http.client.HTTPConnection] = {}
        self._token: str | None = None
        self._token_expiry = 0.0
        self._lock = threading.RLock()  # one request at a time (a read-ahead is a second thread)

    def __enter__(self) -> GraphSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for conn in self._conns.values():
            conn.close()
        self._conns.clear()

    # ------------------------------------------------------------------------------ rounds
    def initial_url(self) -> str:
        return (
            f"{self.creds.graph_url.rstrip('/')}/v1.0/users/delta?{urlencode({'$select': SELECT})}"
        )

    def pages(self, delta_link: str | None) -> Iterator[DeltaPage]:
        """A delta round: from the start (None: every user) or from a stored deltaLink; after the
        generator is exhausted, self.next_delta_link holds the new deltaLink and self.resynced is
        True when the stored link had expired (410) and a full round was read instead.

        With `read_ahead`, the next page is requested before this one is handed over, so Graph
        renders page N+1 while the caller works on page N (a 200,000-user round is ~200 pages).
        """
        self.next_delta_link = None
        self.resynced = False
        url = delta_link or self.initial_url()
        resyncs = 0
        ahead: _Ahead | None = None
        try:
            while True:
                if ahead is not None:
                    status, headers, body = ahead.result()
                    ahead = None
                else:
                    status, headers, body = self._get(url)
                if status == 200:
                    if not isinstance(body, dict) or not isinstance(body.get("value"), list):
                        raise SourceError(f"GET {_where(urlsplit(url))}: 200 without a value list")
                    next_url = body.get("@odata.nextLink")
                    if next_url and self.read_ahead:
                        ahead = _Ahead(self._get, next_url)
                    yield self._page(body["value"])
                    if next_url:
                        url = next_url
                        continue
                    if body.get("@odata.deltaLink"):
                        self.next_delta_link = body["@odata.deltaLink"]
                        return
                    raise SourceError(
                        f"GET {_where(urlsplit(url))}: page without next or delta link"
                    )
                code = _error_code(body)
                if (status, code) in ((410, "resyncRequired"), (400, "syncStateNotFound")):
                    # Records already yielded stay valid: the engine applies desired state, so
                    # a full round on top of them is only repetition.
                    resyncs += 1
                    if resyncs > self.max_retries:
                        raise SourceError(
                            f"GET {_where(urlsplit(url))}: resync failed {resyncs} times"
                        )
                    self.resynced = True
                    url = (headers.get("location") if status == 410 else None) or self.initial_url()
                    continue
                raise SourceError(f"GET {_where(urlsplit(url))}: HTTP {status} {_describe(body)}")
        finally:
            if ahead is not None:  # the caller stopped early: let the request finish first
                ahead.wait()

    def authenticate(self) -> None:
        """Get a token now; raises SourceAuthError when the app's credentials are refused."""
        self._access_token()

    def user(self, user_id: str) -> Json | None:
        """One user's current EXO-named record (None when it no longer exists): the engine
        re-reads escrowed objects this way, since a delta round will not return them again."""
        base = self.creds.graph_url.rstrip("/")
        url = f"{base}/v1.0/users/{quote(user_id, safe='')}?{urlencode({'$select': SELECT})}"
        status, _, body = self._get(url)
        if status == 404:
            return None
        if status != 200 or not isinstance(body, dict):
            raise SourceError(f"GET {_where(urlsplit(url))}: HTTP {status} {_describe(body)}")
        return to_exo_record(body)

    def _page(self, values: list[Json]) -> DeltaPage:
        page = DeltaPage([], [])
        for user in values:
            if "@removed" in user:
                page.removed.append(str(user.get("id")))
            else:
                page.records.append(to_exo_record(user))
        return page

    # ------------------------------------------------------------------------------ auth
    def _access_token(self) -> str:
        if self._token is not None and time.monotonic() < self._token_expiry:
            return self._token
        form = {
            "grant_type": "client_credentials",
            "client_id": self.creds.client_id,
            "client_secret": self.creds.client_secret,
            "scope": GRAPH_SCOPE,
        }
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        status, _, body = self._send("POST", self.creds.token_url, headers, urlencode(form))
        if status != 200 or not isinstance(body, dict) or not body.get("access_token"):
            where = _where(urlsplit(self.creds.token_url))
            if isinstance(body, dict) and "error" in body:
                why = f"{body.get('error')}: {body.get('error_description', '')}"
            else:
                why = repr(body)[:200]
            raise SourceAuthError(f"token request to {where} failed: HTTP {status} {why}")
        lifetime = float(body.get("expires_in", 3599))
        # Renew a little early so a token does not expire between our check and Graph's.
        self._token_expiry = time.monotonic() + lifetime - min(300.0, lifetime / 10)
        self._token = str(body["access_token"])
        return self._token

    def _get(self, url: str) -> tuple[int, dict[str, str], Any]:
        with self._lock:
            return self._get_locked(url)

    def _get_locked(self, url: str) -> tuple[int, dict[str, str], Any]:
        refreshed = False
        while True:
            headers = {
                "Authorization": f"Bearer {self._access_token()}",
                "Prefer": f"odata.maxpagesize={self.page_size}",
            }
            status, resp_headers, body = self._send("GET", url, headers)
            if (
                status == 401
                and _error_code(body) == "InvalidAuthenticationToken"
                and not refreshed
            ):
                # Revoked or expired before our estimate: one fresh token, then give up.
                self._token = None
                refreshed = True
                continue
            return status, resp_headers, body

    # ------------------------------------------------------------------------------ HTTP
    def _connection(self, parts: SplitResult) -> http.client.HTTPConnection:
        key = (parts.scheme, parts.netloc)
        conn = self._conns.get(key)
        if conn is None:
            cls = (
                http.client.HTTPSConnection
                if parts.scheme == "https"
                else http.client.HTTPConnection
            )
            conn = self._conns[key] = cls(parts.netloc, timeout=self.timeout)
        return conn

    def _wait(self, seconds: float) -> None:
        self.stats["retries"] += 1
        self.stats["waited_seconds"] += seconds
        self.sleep(seconds)

    def _send(
        self, method: str, url: str, headers: dict[str, str], body: str | None = None
    ) -> tuple[int, dict[str, str], Any]:
        """One request with retries for throttling and network failures; JSON body or None."""
        with self._lock:
            return self._send_locked(method, url, headers, body)

    def _send_locked(
        self, method: str, url: str, headers: dict[str, str], body: str | None
    ) -> tuple[int, dict[str, str], Any]:
        parts = urlsplit(url)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        headers = {"Accept": "application/json", **headers}
        attempt = 0
        while True:
            conn = self._connection(parts)
            self.stats["requests"] += 1
            try:
                conn.request(method, target, body=body, headers=headers)
                resp = conn.getresponse()
                raw = resp.read()
            except _NETWORK_ERRORS as e:
                conn.close()
                attempt += 1
                if attempt > self.max_retries:
                    raise SourceError(
                        f"{method} {_where(parts)}: {e!r} after {attempt} attempts"
                    ) from e
                self._wait(min(MAX_BACKOFF, 0.5 * 2 ** (attempt - 1)))
                continue
            resp_headers = {k.lower(): v for k, v in resp.getheaders()}
            if resp.status in (429, 503):
                self.stats["throttled"] += 1
                attempt += 1
                if attempt > self.max_retries:
                    raise SourceError(
                        f"{method} {_where(parts)}: HTTP {resp.status} after {attempt} attempts"
                    )
                self._wait(_retry_after(resp_headers))
                continue
            try:
                payload = json.loads(raw) if raw else None
            except ValueError:
                if resp.status == 200:
                    raise SourceError(
                        f"{method} {_where(parts)}: 200 with a non-JSON body"
                    ) from None
                payload = raw[:200].decode("utf-8", "replace")
            return resp.status, resp_headers, payload


class _Ahead:
    """One GET running on a thread of its own; `result` waits for it (and raises its error)."""

    def __init__(self, get: Callable[[str], tuple[int, dict[str, str], Any]], url: str) -> None:
        self._get = get
        self._url = url
        self._answer: tuple[int, dict[str, str], Any] | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="exwb-graph-ahead", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._answer = self._get(self._url)
        except BaseException as e:  # re-raised on the reader's thread
            self._error = e

    def wait(self) -> None:
        self._thread.join()

    def result(self) -> tuple[int, dict[str, str], Any]:
        self._thread.join()
        if self._error is not None:
            raise self._error
        assert self._answer is not None
        return self._answer
