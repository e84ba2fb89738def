"""The on-premises estate's HTTP API (twisted.web): hosts, Setup, SMTP receive log, DNS zones.

Every route needs HTTP Basic auth as the AD admin (its DN, sAMAccountName, DOMAIN\\name or UPN
and password, checked by the fake AD): bad or missing credentials get 401 with
WWW-Authenticate, any other directory account 403. Errors leave as JSON
(``{"error": {"code", "message", "details"}}``, see `errors.py`); nothing a client sends can
crash the server.

Routes (names in paths are URL-encoded; lists come as ``{"value": [...]}``):
  GET    /hosts, /hosts/{host}
  POST   /hosts/{host}/shutdown | /start | /setup {"Mode": "Uninstall"}
  GET    /hosts/{host}/services | /certificates
  DELETE /hosts/{host}/services/{name}, /hosts/{host}/certificates/{thumbprint}
  GET    /hosts/{host}/smtp-receive-log;  DELETE /hosts/{host}/smtp-receive-log/{clientIp}
  GET    /dns/zones, /dns/zones/{zone}
  GET|PUT|DELETE /dns/zones/{zone}/records/{name}/{type}  (PUT {"ttl": 3600, "values": [...]})
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

from twisted.web import resource, server

from harness.core.ldapresult import LdapError
from harness.tenant.exchange_org import ExchangeOrg
from harness.tenant.spec import TenantSpec
from mockservers.directory.acl import Principal, Role
from mockservers.directory.service import DirectoryService
from mockservers.onprem import errors, setup
from mockservers.onprem.errors import OnpremError, dumps
from mockservers.onprem.estate import Estate

log = logging.getLogger(__name__)

MAX_BODY = 1024 * 1024
Reply = tuple[int, Any]


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(slots=True)
class OnpremService:
    """The estate, the directory whose accounts sign in (and that Setup edits), the org."""

    estate: Estate
    directory: DirectoryService
    org: ExchangeOrg
    clock: Callable[[], datetime] = field(default=_now)

    def authenticate(self, header: str | None) -> Principal:
        """The admin named by a Basic Authorization header; 401 / 403 otherwise."""
        if not header or not header[:6].lower() == "basic ":
            raise errors.credentials_missing()
        try:
            raw = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise errors.credentials_malformed() from None
        name, sep, password = raw.partition(":")
        if not sep or not name:
            raise errors.credentials_malformed()
        if not any(c in name for c in "=@\\"):  # a bare sAMAccountName
            name = f"{self.directory.netbios}\\{name}"
        try:
            who = self.directory.authenticate(name, password.encode("utf-8"))
        except LdapError:
            raise errors.credentials_wrong() from None
        if who.role is not Role.ADMIN:
            raise errors.not_an_administrator(who.sam)
        return who


class OnpremResource(resource.Resource):
    isLeaf = True

    def __init__(self, service: OnpremService) -> None:
        super().__init__()
        self.svc = service

    def render(self, request: server.Request) -> bytes:
        request.setHeader("Content-Type", "application/json; charset=utf-8")
        try:
            self.svc.authenticate(request.getHeader("authorization"))
            status, body = self._route(request)
            headers: dict[str, str] = {}
        except OnpremError as e:
            status, body, headers = e.status, e.body(), e.headers
        except Exception:
            log.exception("on-premises request failed")
            status, headers = 500, {}
            body = errors.internal_error().body()
        request.setResponseCode(status)
        for k, v in headers.items():
            request.setHeader(k, v)
        return b"" if body is None else dumps(body)

    def _route(self, request: server.Request) -> Reply:
        method = request.method.decode("ascii", "replace")
        raw = request.path.decode("utf-8", "replace")
        parts = [unquote(p) for p in raw.split("/") if p]
        if parts[:1] == ["hosts"]:
            return self._hosts(request, method, parts[1:])
        if parts[:2] == ["dns", "zones"]:
            return self._dns(request, method, parts[2:])
        raise errors.no_such_resource(method, raw)

    # ------------------------------------------------------------------ hosts
    def _hosts(self, request: server.Request, method: str, p: list[str]) -> Reply:
        estate = self.svc.estate
        if not p:
            _allow(method, "GET")
            return 200, {"value": [h.to_api() for h in estate.hosts.values()]}
        name = p[0]
        if len(p) == 1:
            _allow(method, "GET")
            return 200, estate.host(name).to_api()
        what = p[1]
        if len(p) == 2 and what in ("shutdown", "start"):
            _allow(method, "POST")
            h = estate.shutdown(name) if what == "shutdown" else estate.start(name)
            return 200, h.to_api()
        if len(p) == 2 and what == "setup":
            _allow(method, "POST")
            store = self.svc.directory.store
            return 200, setup.run_setup(estate, store, self.svc.org, name, _json(request))
        if what == "services" and len(p) in (2, 3):
            if len(p) == 2:
                _allow(method, "GET")
                return 200, {"value": [s.to_api() for s in estate.host(name).services]}
            _allow(method, "DELETE")
            estate.delete_service(name, p[2])
            return 204, None
        if what == "certificates" and len(p) in (2, 3):
            if len(p) == 2:
                _allow(method, "GET")
                return 200, {"value": [c.to_api() for c in estate.host(name).certificates]}
            _allow(method, "DELETE")
            estate.delete_certificate(name, p[2])
            return 204, None
        if what == "smtp-receive-log" and len(p) in (2, 3):
            if len(p) == 2:
                _allow(method, "GET")
                seen = estate.relay_clients(name, self.svc.clock())
                return 200, {"value": [r.to_api() for r in seen]}
            _allow(method, "DELETE")
            estate.forget_relay_client(name, p[2])
            return 204, None
        raise errors.no_such_resource(method, f"/hosts/{'/'.join(p)}")

    # ------------------------------------------------------------------ DNS
    def _dns(self, request: server.Request, method: str, p: list[str]) -> Reply:
        estate = self.svc.estate
        if not p:
            _allow(method, "GET")
            zones = [
                {"name": z.name, "serial": z.serial, "recordSets": len(z.records)}
                for z in estate.zones.values()
            ]
            return 200, {"value": zones}
        if len(p) == 1:
            _allow(method, "GET")
            return 200, estate.zone(p[0]).to_api()
        if len(p) == 4 and p[1] == "records":
            zone, name, rtype = p[0], p[2], p[3]
            _allow(method, "GET", "PUT", "DELETE")
            if method == "PUT":
                record, created = estate.put_record(zone, name, rtype, _json(request))
                return (201 if created else 200), record
            if method == "DELETE":
                estate.delete_record(zone, name, rtype)
                return 204, None
            z = estate.zone(zone)
            key = z.key(name, rtype)
            return 200, z.record_api(key)
        raise errors.no_such_resource(method, f"/dns/zones/{'/'.join(p)}")


def _allow(method: str, *allowed: str) -> None:
    if method not in allowed:
        raise errors.method_not_allowed(method, allowed)


def _json(request: server.Request) -> Any:
    data = request.content.read(MAX_BODY + 1) if request.content else b""
    if len(data) > MAX_BODY:
        raise errors.request_too_large()
    try:
        return json.loads(data or b"null")
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise errors.invalid_json() from None


class OnpremSite(server.Site):
    """A Site without an access log line per request."""

    def log(self, request: server.Request) -> None:
        pass


def make_site(service: OnpremService) -> OnpremSite:
    site = OnpremSite(OnpremResource(service))
    site.displayTracebacks = False
    return site


def build_onprem(
    directory: DirectoryService, spec: TenantSpec, estate: Estate | None = None
) -> OnpremService:
    """The estate service of `spec`'s tenant (a fresh estate from the spec by default)."""
    return OnpremService(estate or Estate.from_spec(spec), directory, ExchangeOrg(spec))


def listen_onprem(
    reactor: Any, service: OnpremService, host: str, http_port: int = 0, dns_port: int = 0
) -> tuple[list[Any], str, int]:
    """Serve the API and DNS; (listening ports, onprem_url, dns_port). Reactor thread only."""
    from mockservers.onprem.dns_server import listen_dns

    http = reactor.listenTCP(http_port, make_site(service), 50, host)
    try:
        dns_ports = listen_dns(
            reactor, service.estate, service.org.spec.domain.lower(), host, dns_port
        )
    except Exception:
        http.stopListening()
        raise
    url = f"http://{host}:{http.getHost().port}"
    return [http, *dns_ports], url, dns_ports[0].getHost().port
