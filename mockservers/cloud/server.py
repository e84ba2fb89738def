"""The HTTP layer of the fake cloud (twisted.web): matching, auth, faults and error rendering.

State lives in `CloudService` (service.py: store, auth, throttle, faults, EXO cursors); every
request is matched in the route table (routes.py), which says per route who may call it, what
it costs and which fault operation it is; its handler answers through `graph.py`, `exo.py` and
`dirsync.py` (``POST /exwb/dirsync/{tenant}/export``, the stand-in for Entra Connect's private
sync service). Every error leaves as Graph's JSON error body with the matching status; nothing a
client sends can crash the server.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import struct
import time
import uuid
from collections.abc import Callable
from typing import Any, cast
from urllib.parse import parse_qsl, urlsplit

from twisted.internet import threads
from twisted.python.failure import Failure
from twisted.web import http, resource, server

from mockservers import idle
from mockservers.cloud import entra, errors, graph
from mockservers.cloud.errors import CloudError, OAuthError, dumps, error_body
from mockservers.cloud.routes import MAX_BODY, ROUTES, Call, Handler, Later, Reply, split_path
from mockservers.cloud.service import CloudService
from mockservers.faults import Fault
from mockservers.http_routes import Match, reason
from mockservers.requestlog import mark

__all__ = ["CloudResource", "CloudService", "CloudSite", "make_site"]

log = logging.getLogger(__name__)


class CloudResource(resource.Resource):
    isLeaf = True

    def __init__(self, service: CloudService) -> None:
        super().__init__()
        self.svc = service

    def render(self, request: server.Request) -> bytes | int:
        idle.touch()
        if self.svc.log is not None:
            mark(request, started=time.monotonic())
        rid = (request.getHeader("client-request-id") or str(uuid.uuid4()))[:64]
        request.setHeader("request-id", rid)
        request.setHeader("client-request-id", rid)
        request.setHeader("OData-Version", "4.0")
        request.setHeader("Content-Type", "application/json;odata.metadata=minimal;charset=utf-8")
        method = (request.method or b"").decode("ascii", "replace")
        query = _query(request)
        parts = _parts(request)
        match = ROUTES.match(method, parts, query)
        call = None
        if match is not None and match.found:
            call = Call(self.svc, request, match.route, method, query, match.params)
        fault = None
        if self.svc.faults.http_armed and match is not None:
            fault = self._fault(request, match, query)
            if fault is not None and self.svc.log is not None:
                mark(request, fault=fault.name)
            if fault is not None and fault.kind == "reset":
                _reset(request)
                return server.NOT_DONE_YET
            if fault is not None and fault.kind in ("throttle", "unavailable"):
                refusal = _refusal(fault, self._scope(request))
                request.setResponseCode(refusal.status, reason(refusal.status))
                for k, v in refusal.headers.items():
                    request.setHeader(k, v)
                return dumps(error_body(refusal.code, refusal.message, rid))
            if call is not None and fault is not None:
                call.expire_delta = fault.kind == "expire_delta"
        return self._respond(
            request, rid, call, fault, lambda: self._answer(request, parts, match, call)
        )

    def _respond(
        self,
        request: server.Request,
        rid: str,
        call: Call | None,
        fault: Fault | None,
        produce: Callable[[], Reply],
    ) -> bytes | int:
        """Write `produce`'s reply (or the error it raises, in Graph's shape) on `request`; the
        body's bytes, or NOT_DONE_YET when the reply is `Later` work, answered when it ends."""
        try:
            status, body, headers = produce()
            if isinstance(body, Later):
                self._later(request, rid, call, body)
                return server.NOT_DONE_YET
            headers = {**(call.charged if call else {}), **headers}
        except OAuthError as e:
            status, body, headers = e.status, e.body, {}
            if self.svc.log is not None:
                mark(request, code=e.body.get("error"), message=e.body.get("error_description"))
        except CloudError as e:
            status, body = e.status, error_body(e.code, e.message, rid)
            headers = {**(call.charged if call else {}), **e.headers}
            if self.svc.log is not None:
                mark(request, code=e.code, message=e.message)
        except Exception:
            log.exception("cloud request failed")
            failure = errors.internal_error()
            status, headers = failure.status, {}
            body = error_body(failure.code, failure.message, rid)
        if self.svc.log is not None and call is not None and call.token is not None:
            mark(request, app=call.token.app.client_id)
        request.setResponseCode(status, reason(status))
        for k, v in headers.items():
            request.setHeader(k, v)
        data = dumps(body) if body is not None else b""
        if body is None:
            request.responseHeaders.removeHeader("Content-Type")  # a 204 has no body to type
        if fault is not None and fault.kind == "truncated":
            _truncate(request, data)
            return server.NOT_DONE_YET
        return data

    def _later(self, request: server.Request, rid: str, call: Call | None, later: Later) -> None:
        """Run `later.work` in a worker thread (it may call this reactor's own servers: the
        clock's due cycles read LDAP and Graph) and answer the request when it ends."""
        lost: list[bool] = []
        request.notifyFinish().addErrback(lambda _: lost.append(True))

        def answer(outcome: Any) -> None:
            def produce() -> Reply:
                if isinstance(outcome, Failure):
                    outcome.raiseException()
                return cast(Reply, outcome)

            data = self._respond(request, rid, call, None, produce)
            if not lost and isinstance(data, bytes):
                request.write(data)
                request.finish()

        threads.deferToThread(later.work).addBoth(answer)

    def _answer(
        self,
        request: server.Request,
        parts: list[str],
        match: Match[Handler] | None,
        call: Call | None,
    ) -> tuple[int, Any, dict[str, str]]:
        """The matched route's answer: size limit, bearer token, method, role, cost, handler."""
        length = request.getHeader("content-length")
        if length and length.isdigit() and int(length) > MAX_BODY:
            raise errors.request_too_large()
        public = match is not None and match.route.public  # a wrong method too: 405, not 401
        token = None if public else self.svc.auth.check(request.getHeader("authorization"))
        if token is not None:  # Exchange's admin API takes Exchange's tokens, the rest Graph's
            exo = bool(parts) and parts[0].casefold() == "adminapi"
            token = token.for_audience(entra.EXO_AUDIENCES if exo else entra.GRAPH_AUDIENCES)
        if match is None:
            raise errors.segment_not_found(parts[-1] if parts else "")
        if call is None:
            raise errors.method_not_allowed(match.allowed)
        call.token = token
        route = call.route
        if route.roles and not call.caller.has_any(route.roles):
            raise errors.insufficient_privileges()
        if route.cost is not None and not route.cost.deferred:
            call.charge()
        return route.handler(call)

    # ------------------------------------------------------------------ faults
    def _fault(
        self, request: server.Request, match: Match[Handler], query: dict[str, str]
    ) -> Fault | None:
        """The fault the plan injects into this request, if any: by its route's fault operation,
        whatever its method (expire_delta is marked on the call; `render` answers the others)."""
        route = match.route
        if route.fault is None:
            return None
        resumes = False
        if route.fault == "delta":  # expire_delta only hits a delta round resumed from a token
            resume = graph.normalize_query(query).get("deltatoken")
            resumes = resume is not None and resume.strip().lower() != "latest"
        fault = self.svc.faults.take("http", route.fault, delta_token=resumes)
        if fault is not None:
            request.setHeader("x-exwb-fault", fault.name)
        return fault

    def _scope(self, request: server.Request) -> str | None:
        """'<app id>/<tenant id>' of the request's bearer token, None without a valid one."""
        try:
            token = self.svc.auth.check(request.getHeader("authorization"))
        except (CloudError, OAuthError):
            return None
        return f"{token.app.client_id}/{self.svc.tenant_id}"


def _refusal(fault: Fault, scope: str | None) -> CloudError:
    """A throttle (429) or unavailable (503) fault's answer, as Graph sends them; `scope` is
    the app and tenant for x-ms-throttle-scope, when the request carried a valid token."""
    retry_after = int(fault.seconds)
    if fault.kind == "unavailable":
        return errors.service_unavailable(retry_after)
    headers = {
        "Retry-After": str(retry_after),
        "x-ms-throttle-information": "ResourceUnitLimitExceeded",
    }
    if scope is not None:
        headers["x-ms-throttle-scope"] = f"Tenant_Application/ReadWrite/{scope}"
    return errors.too_many_requests(headers)


def _truncate(request: server.Request, data: bytes) -> None:
    """Promise the whole body (Content-Length), send half of it, close: a truncated response."""
    request.setHeader("Content-Length", str(len(data)))
    request.write(data[: len(data) // 2])
    transport = request.channel.transport
    if transport is not None:
        # zope.interface declares interface methods without self; mypy reads them as unbound.
        transport.loseConnection()  # type: ignore[misc]


def _reset(request: server.Request) -> None:
    """Close the connection with a TCP reset, sending nothing (a reset fault)."""
    transport = request.channel.transport
    if transport is None:
        return
    handle = transport.getHandle() if hasattr(transport, "getHandle") else None
    if handle is not None:
        with contextlib.suppress(OSError):
            # Linger on, timeout 0: close() sends RST instead of FIN, as a crashed proxy would.
            handle.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abortConnection()


def _query(request: server.Request) -> dict[str, str]:
    raw = urlsplit((request.uri or b"").decode("utf-8", "replace")).query
    return {k: v for k, v in parse_qsl(raw, keep_blank_values=True)}


def _parts(request: server.Request) -> list[str]:
    return split_path((request.path or b"").decode("utf-8", "replace"))


class CloudSite(server.Site):
    """A Site that writes no access log line of its own (200k requests in a bench): requests go
    to the service's RequestLog when `exwb serve --log` / `-v` set one."""

    def __init__(self, resource: CloudResource) -> None:
        super().__init__(resource)
        self.svc = resource.svc

    def log(self, request: http.Request) -> None:
        if self.svc.log is not None:
            self.svc.log.http("cloud", request)


def make_site(service: CloudService) -> CloudSite:
    site = CloudSite(CloudResource(service))
    site.displayTracebacks = False
    return site
