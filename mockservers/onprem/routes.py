"""The on-premises API's route table: hosts, Setup, SMTP receive log, DNS zones.

Names in paths are URL-encoded; lists come as ``{"value": [...]}``. Each `Route` declares its
methods, path, handler and required role once; `api.OnpremResource` matches a request here.
The API is not throttled and no fault plan names its requests.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from twisted.web import server

from mockservers.directory.acl import Role
from mockservers.http_routes import Route, RouteTable, markdown
from mockservers.onprem import errors, setup
from mockservers.onprem.estate import Estate
from mockservers.onprem.service import OnpremService

MAX_BODY = 1024 * 1024
ADMIN = (Role.ADMIN.value,)  # every route: the estate is the domain admin's
Reply = tuple[int, Any]
Handler = Callable[["Call"], Reply]


@dataclass(frozen=True, slots=True)
class Call:
    """One request as its handler sees it: the service, the captures of its path."""

    service: OnpremService
    request: server.Request
    params: dict[str, str]

    @property
    def estate(self) -> Estate:
        return self.service.estate

    def json(self) -> Any:
        data = self.request.content.read(MAX_BODY + 1) if self.request.content else b""
        if len(data) > MAX_BODY:
            raise errors.request_too_large()
        try:
            return json.loads(data or b"null")
        except (ValueError, UnicodeDecodeError, RecursionError):
            raise errors.invalid_json() from None


# ------------------------------------------------------------------ hosts
def _list_hosts(call: Call) -> Reply:
    return 200, {"value": [h.to_api() for h in call.estate.hosts.values()]}


def _get_host(call: Call) -> Reply:
    return 200, call.estate.host(call.params["host"]).to_api()


def _shutdown(call: Call) -> Reply:
    return 200, call.estate.shutdown(call.params["host"]).to_api()


def _start(call: Call) -> Reply:
    return 200, call.estate.start(call.params["host"]).to_api()


def _setup(call: Call) -> Reply:
    svc = call.service
    body = setup.run_setup(
        svc.estate, svc.directory.store, svc.org, call.params["host"], call.json()
    )
    return 200, body


def _list_services(call: Call) -> Reply:
    return 200, {"value": [s.to_api() for s in call.estate.host(call.params["host"]).services]}


def _delete_service(call: Call) -> Reply:
    call.estate.delete_service(call.params["host"], call.params["name"])
    return 204, None


def _list_certificates(call: Call) -> Reply:
    host = call.estate.host(call.params["host"])
    return 200, {"value": [c.to_api() for c in host.certificates]}


def _delete_certificate(call: Call) -> Reply:
    call.estate.delete_certificate(call.params["host"], call.params["thumbprint"])
    return 204, None


def _relay_clients(call: Call) -> Reply:
    seen = call.estate.relay_clients(call.params["host"], call.service.clock())
    return 200, {"value": [r.to_api() for r in seen]}


def _forget_relay_client(call: Call) -> Reply:
    call.estate.forget_relay_client(call.params["host"], call.params["client_ip"])
    return 204, None


# ------------------------------------------------------------------ DNS
def _list_zones(call: Call) -> Reply:
    zones = [
        {"name": z.name, "serial": z.serial, "recordSets": len(z.records)}
        for z in call.estate.zones.values()
    ]
    return 200, {"value": zones}


def _get_zone(call: Call) -> Reply:
    return 200, call.estate.zone(call.params["zone"]).to_api()


def _get_record(call: Call) -> Reply:
    p = call.params
    z = call.estate.zone(p["zone"])
    return 200, z.record_api(z.key(p["name"], p["type"]))


def _put_record(call: Call) -> Reply:
    p = call.params
    record, created = call.estate.put_record(p["zone"], p["name"], p["type"], call.json())
    return (201 if created else 200), record


def _delete_record(call: Call) -> Reply:
    p = call.params
    call.estate.delete_record(p["zone"], p["name"], p["type"])
    return 204, None


_RECORD = "/dns/zones/{zone}/records/{name}/{type}"

ROUTES: RouteTable[Handler] = RouteTable(
    tuple(
        Route(methods, pattern, handler, summary, roles=ADMIN)
        for methods, pattern, handler, summary in (
            (("GET",), "/hosts", _list_hosts, "List the estate's hosts"),
            (("GET",), "/hosts/{host}", _get_host, "Get a host"),
            (("POST",), "/hosts/{host}/shutdown", _shutdown, "Shut a host down (idempotent)"),
            (("POST",), "/hosts/{host}/start", _start, "Start a host (idempotent)"),
            (
                ("POST",),
                "/hosts/{host}/setup",
                _setup,
                'Exchange Setup: {"Mode": "Uninstall"} removes Exchange from the host',
            ),
            (("GET",), "/hosts/{host}/services", _list_services, "List a host's services"),
            (("DELETE",), "/hosts/{host}/services/{name}", _delete_service, "Delete a service"),
            (
                ("GET",),
                "/hosts/{host}/certificates",
                _list_certificates,
                "List a host's certificates",
            ),
            (
                ("DELETE",),
                "/hosts/{host}/certificates/{thumbprint}",
                _delete_certificate,
                "Delete a certificate",
            ),
            (
                ("GET",),
                "/hosts/{host}/smtp-receive-log",
                _relay_clients,
                "Clients the SMTP receive log saw in the last 30 days",
            ),
            (
                ("DELETE",),
                "/hosts/{host}/smtp-receive-log/{client_ip}",
                _forget_relay_client,
                "Forget a client (it was repointed)",
            ),
            (("GET",), "/dns/zones", _list_zones, "List the DNS zones"),
            (("GET",), "/dns/zones/{zone}", _get_zone, "Get a zone with its record sets"),
            (("GET",), _RECORD, _get_record, "Get a record set"),
            (
                ("PUT",),
                _RECORD,
                _put_record,
                'Create or replace a record set: {"ttl": 3600, "values": [...]}',
            ),
            (("DELETE",), _RECORD, _delete_record, "Delete a record set"),
        )
    )
)


def routes_markdown() -> str:
    """The table as Markdown, for the docs site."""
    return markdown(ROUTES)
