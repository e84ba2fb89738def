"""An Exchange Online admin session over HTTP: cmdlets through ``POST .../InvokeCommand``.

What an administrator's script does against the EXO admin API, with the read-write app's
client-credentials token: run a cmdlet, follow ``@odata.nextLink`` for the rest of its output,
and read Exchange's error (its exception name and text) when the cmdlet is refused. The HTTP,
the token and the retries are `harness.clients.http`'s.
"""

from __future__ import annotations

from typing import Any

from harness.clients.http import EXO_SCOPE, ClientCredentials, HttpClient, ServiceError

# Attempts per request while Exchange throttles (429/503) or the connection drops.
MAX_TRIES = 5

Json = dict[str, Any]


class CmdletError(ServiceError):
    """A cmdlet refused: `status` (HTTP; 0 when Exchange could not be reached), `code`
    (Exchange's exception name), `message`."""


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
        timeout: float = 60.0,
        scope: str = EXO_SCOPE,
    ) -> None:
        self.exo_url = exo_url.rstrip("/")
        self.calls = 0
        auth = ClientCredentials(token_url, client_id, client_secret, scope)
        self._http = HttpClient(auth, timeout=timeout, max_retries=MAX_TRIES - 1, error=CmdletError)

    def close(self) -> None:
        self._http.close()

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

    def _call(self, method: str, url: str, body: Json | None) -> Json:
        payload = self._http.call(method, url, body)
        if payload is not None and not isinstance(payload, dict):
            raise CmdletError(200, "", f"{method} {url}: not a JSON object: {payload!r:.300}")
        self.calls += 1
        return payload or {}
