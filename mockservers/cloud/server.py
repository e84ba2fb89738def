"""The HTTP layer of the fake cloud (twisted.web): routing, auth, throttling, paging, errors.

State lives in `CloudService` (store, auth, throttle); `graph.py`, `exo.py` and `dirsync.py`
(``POST /exwb/dirsync/{tenant}/export``, the stand-in for Entra Connect's private sync service)
turn requests into response bodies. Every error leaves as Graph's JSON error body with the
matching status; nothing a client sends can crash the server.
"""

from __future__ import annotations

import contextlib
import json
import logging
import secrets
import socket
import struct
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from twisted.web import resource, server

from mockservers.cloud import delta, dirsync, errors, exo, graph
from mockservers.cloud.auth import (
    APPLICATION_READ,
    APPLICATION_WRITE,
    CONTACT_SOA_READ,
    CONTACT_SOA_WRITE,
    GROUP_SOA_READ,
    GROUP_SOA_WRITE,
    Auth,
    Token,
)
from mockservers.cloud.errors import CloudError, OAuthError, dumps, error_body
from mockservers.cloud.store import CloudStore
from mockservers.cloud.throttle import Throttle, graph_cost
from mockservers.faults import Fault, FaultPlan

log = logging.getLogger(__name__)

MAX_BODY = 4 * 1024 * 1024  # Graph refuses request bodies over 4 MB
EXO_PAGE = 1000
_EXO_CACHE = 64  # paged cmdlet results kept per service


@dataclass(slots=True)
class _ExoPages:
    result: exo.CmdletResult
    position: int
    client_id: str


@dataclass(slots=True)
class CloudService:
    store: CloudStore
    auth: Auth
    throttle: Throttle
    base_url: str = ""
    faults: FaultPlan = field(default_factory=FaultPlan)  # shared with the tenant's directory
    _pages: OrderedDict[str, _ExoPages] = field(default_factory=OrderedDict)

    @property
    def tenant_id(self) -> str:
        return self.auth.tenant_id


class CloudResource(resource.Resource):
    isLeaf = True

    def __init__(self, service: CloudService) -> None:
        super().__init__()
        self.svc = service

    def render(self, request: server.Request) -> bytes:
        rid = (request.getHeader("client-request-id") or str(uuid.uuid4()))[:64]
        request.setHeader("request-id", rid)
        request.setHeader("client-request-id", rid)
        request.setHeader("OData-Version", "4.0")
        request.setHeader("Content-Type", "application/json;odata.metadata=minimal;charset=utf-8")
        fault = None
        if self.svc.faults.http_armed:
            fault = self._fault(request)
            if fault is not None and fault.kind == "reset":
                _reset(request)
                return server.NOT_DONE_YET
            if fault is not None and fault.kind in ("throttle", "unavailable"):
                status, body, headers = _refusal(fault, rid, self._scope(request))
                request.setResponseCode(status)
                for k, v in headers.items():
                    request.setHeader(k, v)
                return dumps(body)
        try:
            status, body, headers = self._route(request)
        except OAuthError as e:
            status, body, headers = e.status, e.body, {}
        except CloudError as e:
            status, body = e.status, error_body(e.code, e.message, rid)
            headers = {**getattr(request, "exwb_charged", {}), **e.headers}
        except Exception:
            log.exception("cloud request failed")
            status, headers = 500, {}
            body = error_body("generalException", "An internal server error occurred.", rid)
        request.setResponseCode(status)
        for k, v in headers.items():
            request.setHeader(k, v)
        data = dumps(body) if body is not None else b""
        if body is None:
            request.responseHeaders.removeHeader("Content-Type")  # a 204 has no body to type
        if fault is not None and fault.kind == "truncated":
            _truncate(request, data)
            return server.NOT_DONE_YET
        return data

    # ------------------------------------------------------------------ faults
    def _fault(self, request: server.Request) -> Fault | None:
        """The fault the plan injects into this request, if any (expire_delta is marked on the
        request for the delta route; the others are answered by `render`)."""
        path = unquote(request.path.decode("utf-8", "replace")).rstrip("/")
        parts = [p for p in path.split("/") if p]
        token = False
        if len(parts) == 4 and parts[1:] == ["oauth2", "v2.0", "token"]:
            op = "token"
        elif parts[:2] == ["v1.0", "users"]:
            op = "delta" if len(parts) == 3 and parts[2] in ("delta", "delta()") else "users"
            if op == "delta":
                resume = graph.normalize_query(_query(request)).get("deltatoken")
                token = resume is not None and resume.strip().lower() != "latest"
        elif parts[:2] == ["adminapi", "beta"]:
            op = "invoke"
        elif parts[:2] == ["exwb", "dirsync"]:
            op = "dirsync"
        else:
            return None  # unknown paths get their 400 as usual
        fault = self.svc.faults.take("http", op, delta_token=token)
        if fault is not None:
            request.setHeader("x-exwb-fault", fault.name)
            request.exwb_expire = fault.kind == "expire_delta"
        return fault

    def _scope(self, request: server.Request) -> str | None:
        """'<app id>/<tenant id>' of the request's bearer token, None without a valid one."""
        try:
            token = self.svc.auth.check(request.getHeader("authorization"))
        except (CloudError, OAuthError):
            return None
        return f"{token.app.client_id}/{self.svc.tenant_id}"

    # ------------------------------------------------------------------ routing
    def _route(self, request: server.Request) -> tuple[int, Any, dict[str, str]]:
        method = request.method.decode("ascii", "replace")
        raw_path = request.path.decode("utf-8", "replace")
        path = unquote(raw_path).rstrip("/") or "/"
        query = _query(request)
        parts = [p for p in path.split("/") if p]
        length = request.getHeader("content-length")
        if length and length.isdigit() and int(length) > MAX_BODY:
            raise errors.request_too_large()

        if len(parts) == 4 and parts[1:] == ["oauth2", "v2.0", "token"]:
            _allow(method, "POST")
            form = dict(parse_qsl(_body(request).decode("utf-8", "replace")))
            return 200, self.svc.auth.issue(parts[0], form), {"Cache-Control": "no-store"}

        token = self.svc.auth.check(request.getHeader("authorization"))
        if parts[:2] == ["v1.0", "users"]:
            _allow(method, "GET")
            headers = self._charge(request, token, *graph_cost(path, query, method))
            base = self.svc.base_url
            hdrs = _lower_headers(request)
            if len(parts) == 2:
                return 200, graph.list_users(self.svc.store, query, base, hdrs), headers
            if len(parts) == 3 and parts[2] in ("delta", "delta()"):  # the SDK sends delta()
                now = time.time()
                if getattr(request, "exwb_expire", False):
                    # An expire_delta fault: the token is read as if its 7 days had passed, so
                    # Graph's own expiry path answers (410 resyncRequired with Location).
                    now += delta.TOKEN_LIFETIME_SECONDS + 1
                body = graph.users_delta(self.svc.store, query, base, hdrs, now)
                return 200, body, headers
            if len(parts) == 3:
                return 200, graph.get_user(self.svc.store, parts[2], query, base), headers
        if len(parts) >= 2 and parts[0] == "v1.0":
            answer = self._hybrid_graph(request, method, parts, query, token)
            if answer is not None:
                return answer
        if len(parts) == 4 and parts[:2] == ["adminapi", "beta"] and parts[3] == "InvokeCommand":
            if parts[2].casefold() != self.svc.tenant_id:
                raise errors.tenant_not_found(parts[2])
            return self._invoke(request, method, query, token)
        if len(parts) == 4 and parts[:2] == ["exwb", "dirsync"] and parts[3] == "export":
            return self._dirsync(request, method, parts[2], token)
        segment = parts[-1] if parts else ""
        raise errors.segment_not_found(segment)

    # ------------------------------------------------------------------ Graph: hybrid objects
    def _hybrid_graph(
        self,
        request: server.Request,
        method: str,
        parts: list[str],
        query: dict[str, str],
        token: Token,
    ) -> tuple[int, Any, dict[str, str]] | None:
        """servicePrincipals and {groups|contacts}/{id}/onPremisesSyncBehavior; None for any
        other path. Each needs its documented application permission (403 otherwise)."""
        hybrid, base = self.svc.store.hybrid, self.svc.base_url
        entity = parts[1]
        app_id = graph.service_principal_key(entity)
        if app_id is None and entity.casefold() == "serviceprincipals" and len(parts) == 2:
            _allow(method, "GET")
            _require(token, APPLICATION_READ)
            headers = self._charge(request, token, 1, False)
            return 200, graph.list_service_principals(hybrid, query, base), headers
        if (app_id is not None and len(parts) == 2) or (
            app_id is None and entity.casefold() == "serviceprincipals" and len(parts) == 3
        ):
            key, by_app_id = (app_id, True) if app_id is not None else (parts[2], False)
            _allow(method, "GET", "PATCH")
            if method == "GET":
                _require(token, APPLICATION_READ)
                headers = self._charge(request, token, 1, False)
                body = graph.get_service_principal(hybrid, key, query, base, by_app_id=by_app_id)
                return 200, body, headers
            _require(token, APPLICATION_WRITE)
            headers = self._charge(request, token, 1, True)
            graph.patch_service_principal(hybrid, key, _json(request), by_app_id=by_app_id)
            return 204, None, headers
        entity_set = entity.casefold()
        if (
            entity_set in graph.SYNC_KINDS
            and len(parts) == 4
            and parts[3].casefold() == "onpremisessyncbehavior"
        ):
            read, write = (
                (GROUP_SOA_READ, GROUP_SOA_WRITE)
                if entity_set == "groups"
                else (CONTACT_SOA_READ, CONTACT_SOA_WRITE)
            )
            _allow(method, "GET", "PATCH")
            if method == "GET":
                _require(token, read)
                headers = self._charge(request, token, 1, False)
                return 200, graph.get_sync_behavior(hybrid, entity_set, parts[2], base), headers
            _require(token, write)
            headers = self._charge(request, token, 1, True)
            graph.patch_sync_behavior(hybrid, entity_set, parts[2], _json(request))
            return 204, None, headers
        return None

    def _charge(self, request: server.Request, token: Token, units: int, write: bool) -> dict:
        headers = self.svc.throttle.charge(token.app.client_id, units, write)
        request.exwb_charged = headers  # errors raised after charging carry the headers too
        return headers

    # ------------------------------------------------------------------ dirsync
    def _dirsync(self, request: server.Request, method: str, tenant: str, token: Token):
        """Entra Connect's export (see `dirsync`): only the sync account may call it."""
        _allow(method, "POST")
        if tenant.casefold() != self.svc.tenant_id:
            raise errors.tenant_not_found(tenant)
        if not token.can_sync:
            raise errors.insufficient_privileges()
        objects = dirsync.parse_batch(_json(request))
        # The sync service is not Graph and its limits are not documented: charge it like one
        # Graph write whose cost grows with the batch (a resource unit per object).
        headers = self._charge(request, token, len(objects), True)
        rid = request.responseHeaders.getRawHeaders("request-id", [None])[0]
        return 200, dirsync.export(self.svc.store, objects, rid), headers

    # ------------------------------------------------------------------ EXO
    def _invoke(self, request: server.Request, method: str, query: dict[str, str], token: Token):
        skiptoken = query.get("$skiptoken")
        if skiptoken:  # a nextLink: GET or POST, the body is not needed again
            _allow(method, "GET", "POST")
            pages = self.svc._pages.get(skiptoken)
            if pages is None or pages.client_id != token.app.client_id:
                raise errors.invalid_skiptoken()
            headers = self._charge(request, token, 1, False)
            return 200, self._exo_page(skiptoken, pages), headers
        _allow(method, "POST")
        payload = _json(request)
        cmd = payload.get("CmdletInput") if isinstance(payload, dict) else None
        if not isinstance(cmd, dict) or not isinstance(cmd.get("CmdletName"), str):
            raise errors.not_a_cmdlet_input()
        params = cmd.get("Parameters") or {}
        if not isinstance(params, dict):
            raise errors.parameters_not_an_object()
        writes = cmd["CmdletName"].casefold().startswith(("set-", "new-", "remove-", "enable-"))
        headers = self._charge(request, token, 1, writes)
        result = exo.invoke(self.svc.store, cmd["CmdletName"], params, can_write=token.can_write)
        pages = _ExoPages(result, 0, token.app.client_id)
        return 200, self._exo_page(None, pages), headers

    def _exo_page(self, old_token: str | None, pages: _ExoPages) -> dict[str, Any]:
        items = pages.result.items
        end = min(len(items), pages.position + EXO_PAGE)
        value = [pages.result.render(x) for x in items[pages.position : end]]
        pages.position = end
        base = f"{self.svc.base_url}/adminapi/beta/{self.svc.tenant_id}"
        body: dict[str, Any] = {
            "@odata.context": f"{base}/$metadata#Collection(Exchange.GenericHashTable)",
            "value": value,
        }
        if old_token is None and pages.result.warnings:
            # The EXO V3 REST endpoint returns cmdlet warnings as an annotation of the body.
            body["@adminapi.warnings"] = list(pages.result.warnings)
        cache = self.svc._pages
        if old_token:
            cache.pop(old_token, None)
        if end < len(items):
            token = secrets.token_urlsafe(24)
            cache[token] = pages
            while len(cache) > _EXO_CACHE:
                cache.popitem(last=False)
            body["@odata.nextLink"] = f"{base}/InvokeCommand?$skiptoken={quote(token)}"
        return body


def _refusal(fault: Fault, rid: str, scope: str | None) -> tuple[int, Any, dict[str, str]]:
    """A throttle (429) or unavailable (503) fault's answer, as Graph sends them; `scope` is
    the app and tenant for x-ms-throttle-scope, when the request carried a valid token."""
    headers = {"Retry-After": str(int(fault.seconds))}
    if fault.kind == "unavailable":
        message = "The service is temporarily unavailable. Please retry after the time given."
        return 503, error_body("serviceNotAvailable", message, rid), headers
    headers["x-ms-throttle-information"] = "ResourceUnitLimitExceeded"
    if scope is not None:
        headers["x-ms-throttle-scope"] = f"Tenant_Application/ReadWrite/{scope}"
    return 429, error_body("TooManyRequests", "Too many requests.", rid), headers


def _truncate(request: server.Request, data: bytes) -> None:
    """Promise the whole body (Content-Length), send half of it, close: a truncated response."""
    request.setHeader("Content-Length", str(len(data)))
    request.write(data[: len(data) // 2])
    request.channel.transport.loseConnection()


def _reset(request: server.Request) -> None:
    """Close the connection with a TCP reset, sending nothing (a reset fault)."""
    transport = request.channel.transport
    handle = transport.getHandle() if hasattr(transport, "getHandle") else None
    if handle is not None:
        with contextlib.suppress(OSError):
            # Linger on, timeout 0: close() sends RST instead of FIN, as a crashed proxy would.
            handle.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abortConnection()


def _require(token: Token, roles: tuple[str, ...] | str) -> None:
    if not token.has_any(roles):
        raise errors.insufficient_privileges()


def _allow(method: str, *allowed: str) -> None:
    if method not in allowed:
        raise errors.method_not_allowed(allowed)


def _query(request: server.Request) -> dict[str, str]:
    raw = urlsplit(request.uri.decode("utf-8", "replace")).query
    return {k: v for k, v in parse_qsl(raw, keep_blank_values=True)}


def _lower_headers(request: server.Request) -> dict[str, str]:
    return {
        k.decode("latin-1").lower(): v[-1].decode("latin-1")
        for k, v in request.requestHeaders.getAllRawHeaders()
    }


def _body(request: server.Request) -> bytes:
    data = request.content.read(MAX_BODY + 1) if request.content else b""
    if len(data) > MAX_BODY:
        raise errors.request_too_large()
    return data


def _json(request: server.Request) -> Any:
    try:
        return json.loads(_body(request) or b"null")
    except (ValueError, UnicodeDecodeError, RecursionError):  # deep nesting: not JSON to us
        raise errors.invalid_json() from None


class CloudSite(server.Site):
    """A Site that does not write an access log line per request (200k requests in a bench)."""

    def log(self, request: server.Request) -> None:
        pass


def make_site(service: CloudService) -> CloudSite:
    site = CloudSite(CloudResource(service))
    site.displayTracebacks = False
    return site
