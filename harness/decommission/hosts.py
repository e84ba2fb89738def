"""A synchronous client of the on-premises estate's API (endpoints.onprem_url).

What an administrator does on the machines around the last Exchange Server: look at the hosts,
shut one down or start it, run ``Setup.exe /m:Uninstall``, remove a leftover service or a
certificate, read which devices still relay mail through the server, and edit public DNS.
HTTP Basic auth as the AD admin, through `harness.clients.http`. Every refusal raises
`HostsError` with the HTTP status, the error code and its text.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

from harness.clients.http import BasicAuth, HttpClient, ServiceError

if TYPE_CHECKING:
    from harness.core.endpoints import Endpoints

Json = dict[str, Any]


class HostsError(ServiceError):
    """The API refused: `status` (HTTP; 0 when unreachable), `code`, `message`, and `details`
    (Setup's failed prerequisite checks, each ``{"code", "message"}``)."""


class OnpremHosts:
    """The estate API as `user` (the AD admin's DN or sAMAccountName) with `password`."""

    def __init__(self, onprem_url: str, user: str, password: str, timeout: float = 60.0) -> None:
        url = urlsplit(onprem_url)
        if url.scheme != "http" or not url.hostname:
            raise ValueError(f"not an http:// URL: {onprem_url!r}")
        self._base = onprem_url.rstrip("/")
        self._http = HttpClient(BasicAuth(user, password), timeout=timeout, error=HostsError)

    @classmethod
    def from_endpoints(cls, endpoints: Endpoints, timeout: float = 60.0) -> OnpremHosts:
        """A client for a running tenant's endpoints, as its AD admin."""
        if not endpoints.onprem_url:
            raise ValueError("the endpoints have no onprem_url (the estate is not running)")
        return cls(endpoints.onprem_url, endpoints.admin_dn, endpoints.admin_password, timeout)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> OnpremHosts:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ hosts
    def hosts(self) -> list[Json]:
        return self._call("GET", "/hosts")["value"]

    def host(self, name: str) -> Json:
        return self._call("GET", f"/hosts/{_seg(name)}")

    def shutdown(self, name: str) -> Json:
        """Power the host off (a host already off stays off); the host afterwards."""
        return self._call("POST", f"/hosts/{_seg(name)}/shutdown", {})

    def start(self, name: str) -> Json:
        return self._call("POST", f"/hosts/{_seg(name)}/start", {})

    def setup(self, name: str, mode: str = "Uninstall") -> Json:
        """``Setup.exe /m:<mode>``: {"mode", "result", "message", "removedObjects", "host"}.

        A refused run raises HostsError 409 SetupPrerequisiteCheckFailed whose `details` list
        the failed checks; a host without Exchange, 409 ExchangeNotInstalled.
        """
        return self._call("POST", f"/hosts/{_seg(name)}/setup", {"Mode": mode})

    def services(self, name: str) -> list[Json]:
        return self._call("GET", f"/hosts/{_seg(name)}/services")["value"]

    def delete_service(self, name: str, service: str) -> None:
        self._call("DELETE", f"/hosts/{_seg(name)}/services/{_seg(service)}")

    def certificates(self, name: str) -> list[Json]:
        return self._call("GET", f"/hosts/{_seg(name)}/certificates")["value"]

    def delete_certificate(self, name: str, thumbprint: str) -> None:
        self._call("DELETE", f"/hosts/{_seg(name)}/certificates/{_seg(thumbprint)}")

    def smtp_receive_log(self, name: str) -> list[Json]:
        """Clients that relayed through the host in the last 30 days (clientIp, clientHostname,
        mailFrom, connector, messages, lastSeen)."""
        return self._call("GET", f"/hosts/{_seg(name)}/smtp-receive-log")["value"]

    def forget_relay_client(self, name: str, client_ip: str) -> None:
        """The device at `client_ip` was repointed: drop it from the log."""
        self._call("DELETE", f"/hosts/{_seg(name)}/smtp-receive-log/{_seg(client_ip)}")

    # ------------------------------------------------------------------ DNS
    def zones(self) -> list[Json]:
        return self._call("GET", "/dns/zones")["value"]

    def zone(self, zone: str) -> Json:
        """{"name", "serial", "records": [{"name", "fqdn", "type", "ttl", "values"}...]}."""
        return self._call("GET", f"/dns/zones/{_seg(zone)}")

    def record(self, zone: str, name: str, rtype: str) -> Json:
        return self._call("GET", self._record_path(zone, name, rtype))

    def put_record(
        self, zone: str, name: str, rtype: str, values: list[str], ttl: int = 3600
    ) -> Json:
        """Create or replace the `rtype` record set at `name` ("@" is the zone apex)."""
        body = {"ttl": ttl, "values": values}
        return self._call("PUT", self._record_path(zone, name, rtype), body)

    def delete_record(self, zone: str, name: str, rtype: str) -> None:
        self._call("DELETE", self._record_path(zone, name, rtype))

    @staticmethod
    def _record_path(zone: str, name: str, rtype: str) -> str:
        return f"/dns/zones/{_seg(zone)}/records/{_seg(name)}/{_seg(rtype)}"

    # ------------------------------------------------------------------ HTTP
    def _call(self, method: str, path: str, body: Json | None = None) -> Any:
        return self._http.call(method, self._base + path, body)


def _seg(value: str) -> str:
    return quote(value, safe="")
