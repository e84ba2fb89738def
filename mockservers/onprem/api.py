"""The on-premises estate's HTTP API (twisted.web): sign-in, matching, error rendering.

The routes (hosts, Setup, SMTP receive log, DNS zones) and their handlers are in routes.py;
sign-in is `OnpremService.authenticate` (service.py). Errors leave as JSON
(``{"error": {"code", "message", "details"}}``, see `errors.py`); nothing a client sends can
crash the server.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from twisted.web import http, resource, server

from harness.tenant.exchange_org import ExchangeOrg
from harness.tenant.spec import TenantSpec
from mockservers import idle
from mockservers.directory.service import DirectoryService
from mockservers.http_routes import reason
from mockservers.onprem import errors
from mockservers.onprem.errors import OnpremError, dumps
from mockservers.onprem.estate import Estate
from mockservers.onprem.routes import ADMIN, ROUTES, Call
from mockservers.onprem.service import OnpremService
from mockservers.requestlog import mark

__all__ = ["OnpremResource", "OnpremService", "OnpremSite", "build_onprem", "listen_onprem"]

log = logging.getLogger(__name__)


class OnpremResource(resource.Resource):
    isLeaf = True

    def __init__(self, service: OnpremService) -> None:
        super().__init__()
        self.svc = service

    def render(self, request: server.Request) -> bytes:
        idle.touch()
        if self.svc.log is not None:
            mark(request, started=time.monotonic())
        request.setHeader("Content-Type", "application/json; charset=utf-8")
        try:
            status, body = self._answer(request)
            headers: dict[str, str] = {}
        except OnpremError as e:
            status, body, headers = e.status, e.body(), e.headers
            if self.svc.log is not None:
                mark(request, code=e.code, message=e.message)
        except Exception:
            log.exception("on-premises request failed")
            status, headers = 500, {}
            body = errors.internal_error().body()
        request.setResponseCode(status, reason(status))
        for k, v in headers.items():
            request.setHeader(k, v)
        return b"" if body is None else dumps(body)

    def _answer(self, request: server.Request) -> tuple[int, Any]:
        """Sign-in (401), the route's role (403), its path (404) and method (405), its handler."""
        who = self.svc.authenticate(request.getHeader("authorization"))
        method = (request.method or b"").decode("ascii", "replace")
        raw = (request.path or b"").decode("utf-8", "replace")
        match = ROUTES.match(method, [unquote(p) for p in raw.split("/") if p], {})
        # An unknown path is still only the admin's to ask about (403 before 404).
        self.svc.require(who, match.route.roles if match is not None else ADMIN)
        if match is None:
            raise errors.no_such_resource(method, raw)
        if not match.found:
            raise errors.method_not_allowed(method, match.allowed)
        return match.route.handler(Call(self.svc, request, match.params))


class OnpremSite(server.Site):
    """A Site without an access log line of its own: requests go to the service's RequestLog
    when `exwb serve --log` / `-v` set one."""

    def __init__(self, resource: OnpremResource) -> None:
        super().__init__(resource)
        self.svc = resource.svc

    def log(self, request: http.Request) -> None:
        if self.svc.log is not None:
            self.svc.log.http("onprem", request)


def make_site(service: OnpremService) -> OnpremSite:
    site = OnpremSite(OnpremResource(service))
    site.displayTracebacks = False
    return site


def build_onprem(
    directory: DirectoryService, spec: TenantSpec, estate: Estate | None = None
) -> OnpremService:
    """The estate service of `spec`'s tenant (a fresh estate from the spec by default)."""
    return OnpremService(estate or Estate.from_spec(spec), directory, ExchangeOrg(spec))


@dataclass(frozen=True, slots=True)
class OnpremListening:
    """The estate's open ports and their URLs (`https_url` empty without TLS)."""

    ports: list[Any]
    url: str
    https_url: str
    dns_port: int


def listen_onprem(
    reactor: Any,
    service: OnpremService,
    host: str,
    http_port: int = 0,
    dns_port: int = 0,
    tls: Any = None,
    https_port: int = 0,
) -> OnpremListening:
    """Serve the API (over HTTPS too with `tls`, twisted's TLS options) and DNS. Reactor
    thread only; on failure, nothing stays open."""
    from mockservers.onprem.dns_server import listen_dns

    site = make_site(service)
    opened: list[Any] = []
    try:
        opened.append(reactor.listenTCP(http_port, site, 50, host))
        if tls is not None:
            opened.append(reactor.listenSSL(https_port, site, tls, 50, host))
        dns_ports = listen_dns(
            reactor, service.estate, service.org.spec.domain.lower(), host, dns_port
        )
    except Exception:
        for port in opened:
            port.stopListening()
        raise
    url = f"http://{host}:{opened[0].getHost().port}"
    https = f"https://{host}:{opened[1].getHost().port}" if tls is not None else ""
    return OnpremListening([*opened, *dns_ports], url, https, dns_ports[0].getHost().port)
