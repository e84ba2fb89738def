"""The engine's reader of cloud changes: Graph ``users/delta`` rounds over plain HTTP.

`GraphSource.pages` walks one delta round (a full one, or an incremental one from a stored
deltaLink) and yields `DeltaPage`s of EXO-named records (`to_exo_record`), ready for
`Profile.desired`. It gets its own client-credentials token, rides out throttling (429/503 with
Retry-After) and dropped connections, and falls back to a full round when Graph says the stored
link is no longer usable (410 resyncRequired, 400 syncStateNotFound). The token, the
connection and the retries are `harness.clients.http`'s.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from harness.clients.http import (
    DEFAULT_MAX_RETRIES,
    GRAPH_SCOPE,
    TOKEN_REFUSED,
    ClientCredentials,
    HttpClient,
    Response,
    ServiceError,
    decode_error,
    where,
)

SELECT = (
    "id,onPremisesImmutableId,onPremisesSyncEnabled,mail,proxyAddresses,"
    "onPremisesExtensionAttributes,exwbExchange"
)
# Identity properties copied into the EXO-named record when a reader selects them (the
# forward-sync model compares them; the writeback does not select them).
IDENTITY_PROPERTIES = (("displayName", "DisplayName"), ("userPrincipalName", "UserPrincipalName"))

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


def _describe(body: Any) -> str:
    code, message, _ = decode_error(body)
    return f"{code}: {message}" if code else message


def _source_error(e: ServiceError) -> SourceError:
    """The client's error as the engine's: a refused token is an auth failure."""
    return (SourceAuthError if e.code == TOKEN_REFUSED else SourceError)(e.message)


class GraphSource:
    """Reads Graph ``users/delta`` rounds; see `pages`."""

    def __init__(
        self,
        creds: CloudCredentials,
        *,
        page_size: int = 999,
        max_retries: int = DEFAULT_MAX_RETRIES,
        sleep: Callable[[float], None] = time.sleep,
        timeout: float = 60,
        read_ahead: bool = False,
    ) -> None:
        self.creds = creds
        self.read_ahead = read_ahead
        self.page_size = page_size
        self.max_retries = max_retries
        self.next_delta_link: str | None = None
        self.resynced = False
        self._auth = ClientCredentials(
            creds.token_url, creds.client_id, creds.client_secret, GRAPH_SCOPE
        )
        self._http = HttpClient(self._auth, timeout=timeout, max_retries=max_retries, sleep=sleep)
        # The client's counters: requests, retries, waited_seconds, throttled.
        self.stats = self._http.stats
        self._prefer = {"Prefer": f"odata.maxpagesize={page_size}"}

    def __enter__(self) -> GraphSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

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
                        raise SourceError(f"GET {where(urlsplit(url))}: 200 without a value list")
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
                        f"GET {where(urlsplit(url))}: page without next or delta link"
                    )
                code = decode_error(body)[0]
                if (status, code) in ((410, "resyncRequired"), (400, "syncStateNotFound")):
                    # Records already yielded stay valid: the engine applies desired state, so
                    # a full round on top of them is only repetition.
                    resyncs += 1
                    if resyncs > self.max_retries:
                        raise SourceError(
                            f"GET {where(urlsplit(url))}: resync failed {resyncs} times"
                        )
                    self.resynced = True
                    url = (headers.get("location") if status == 410 else None) or self.initial_url()
                    continue
                raise SourceError(f"GET {where(urlsplit(url))}: HTTP {status} {_describe(body)}")
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
            raise SourceError(f"GET {where(urlsplit(url))}: HTTP {status} {_describe(body)}")
        return to_exo_record(body)

    def _page(self, values: list[Json]) -> DeltaPage:
        page = DeltaPage([], [])
        for user in values:
            if "@removed" in user:
                page.removed.append(str(user.get("id")))
            else:
                page.records.append(to_exo_record(user))
        return page

    # ------------------------------------------------------------------------------ HTTP
    @property
    def _token(self) -> str | None:
        """The cached access token (None until the first request, or after a 401)."""
        return self._auth.token

    def _access_token(self) -> str:
        try:
            return self._auth.access_token(self._http)
        except ServiceError as e:
            raise _source_error(e) from e

    def _get(self, url: str) -> Response:
        return self._request("GET", url, None, self._prefer)

    def _post(self, url: str, body: Json) -> Response:
        """An authenticated JSON POST (ConnectClient's export to the sync service)."""
        return self._request("POST", url, body, None)

    def _request(
        self, method: str, url: str, body: Json | None, headers: dict[str, str] | None
    ) -> Response:
        try:
            return self._http.request(method, url, body, headers)
        except ServiceError as e:
            raise _source_error(e) from e


class _Ahead:
    """One GET running on a thread of its own; `result` waits for it (and raises its error)."""

    def __init__(self, get: Callable[[str], Response], url: str) -> None:
        self._get = get
        self._url = url
        self._answer: Response | None = None
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

    def result(self) -> Response:
        self._thread.join()
        if self._error is not None:
            raise self._error
        assert self._answer is not None
        return self._answer
