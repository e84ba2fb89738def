"""A synchronous client of the on-premises estate's API (endpoints.onprem_url).

What an administrator does on the machines around the last Exchange Server: look at the hosts,
shut one down or start it, run ``Setup.exe /m:Uninstall``, remove a leftover service or a
certificate, read which devices still relay mail through the server, and edit public DNS.
Standard library only: one keep-alive `http.client` connection, HTTP Basic auth as the AD
admin. Every refusal raises `HostsError` with the HTTP status, the error code and its text.
"""

from __future__ import annotations

import base64
import http.client
import json
from typing import Any
from urllib.parse import quote, urlsplit

Json = dict[str, Any]


class HostsError(Exception):
    """The API refused: `status` (HTTP; 0 when unreachable), `code`, `message`, and `details`
    (Setup's failed prerequisite checks, each ``{"code", "message"}``)."""

    def __init__(
        self, status: int, code: str, message: str, details: list[Json] | None = None
    ) -> None:
        super().__init__(f"{code}: {message}" if code else f"HTTP {status}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.details = details or []


class OnpremHosts:
    """The estate API as `user` (the AD admin's DN or sAMAccountName) with `password`."""

    def __init__(self, onprem_url: str, user: str, password: str, timeout: float = 60.0) -> None:
        url = urlsplit(onprem_url)
        if url.scheme != "http" or not url.hostname:
            raise ValueError(f"not an http:// URL: {onprem_url!r}")
        self._netloc = (url.hostname, url.port or 80)
        self._prefix = url.path.rstrip("/")
        self.timeout = timeout
        token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
        self._auth = f"Basic {token}"
        self._conn: http.client.HTTPConnection | None = None

    @classmethod
    def from_endpoints(cls, endpoints: Any, timeout: float = 60.0) -> OnpremHosts:
        """A client for a running tenant's endpoints, as its AD admin."""
        if not endpoints.onprem_url:
            raise ValueError("the endpoints have no onprem_url (the estate is not running)")
        return cls(endpoints.onprem_url, endpoints.admin_dn, endpoints.admin_password, timeout)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

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
        data = None if body is None else json.dumps(body).encode("utf-8")
        headers = {"Authorization": self._auth, "Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        while True:
            reused = self._conn is not None
            conn = self._connection()
            try:
                conn.request(method, self._prefix + path, data, headers)
                resp = conn.getresponse()
                raw = resp.read()
                break
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError) as e:
                self.close()
                if not reused:
                    raise HostsError(0, "ConnectionFailed", f"{method} {path}: {e}") from None
                # The server closed the idle keep-alive connection before reading this
                # request: send it once more on a new one.
            except OSError as e:
                self.close()
                raise HostsError(0, "ConnectionFailed", f"{method} {path}: {e}") from None
        if resp.status == 204:
            return None
        try:
            payload = json.loads(raw) if raw else {}
        except ValueError:
            payload = None
        if 200 <= resp.status < 300 and payload is not None:
            return payload
        err = payload.get("error") if isinstance(payload, dict) else None
        if isinstance(err, dict):
            raise HostsError(
                resp.status,
                str(err.get("code", "")),
                str(err.get("message", "")),
                list(err.get("details") or []),
            )
        text = raw[:200].decode("utf-8", "replace")
        raise HostsError(resp.status, "", f"unexpected response to {method} {path}: {text}")

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            self._conn = http.client.HTTPConnection(*self._netloc, timeout=self.timeout)
        return self._conn


def _seg(value: str) -> str:
    return quote(value, safe="")
