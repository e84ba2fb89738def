"""The fake cloud's route table: every Graph, EXO admin API, token and sync request it serves.

Each `Route` names its handler, required application permission, fault operation and throttle
cost once; `server.CloudResource` matches a request here and reads the route. A handler gets
the request as a `Call` (the per-request context: captures, query, token, what was charged) and
returns (status, body, extra headers); `graph`, `exo` and `dirsync` compute the bodies.
"""

from __future__ import annotations

import base64
import json
import logging
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from io import BytesIO
from typing import Any
from urllib.parse import parse_qsl, quote, unquote

from twisted.web import server

from harness.core import clock
from harness.core.clock import ClockError, SimulatedClock
from mockservers.cloud import batch, delta, dirsync, entra, errors, exo, graph, provisioning
from mockservers.cloud import synchronization as sync
from mockservers.cloud.auth import (
    APPLICATION_READ,
    APPLICATION_WRITE,
    AUDIT_LOG_READ,
    CLOCK_ROLE,
    CONTACT_SOA_READ,
    CONTACT_SOA_WRITE,
    GROUP_SOA_READ,
    GROUP_SOA_WRITE,
    SYNC_JOBS_READ,
    SYNC_JOBS_WRITE,
    SYNC_ROLE,
    Token,
)
from mockservers.cloud.cursors import Page
from mockservers.cloud.hybrid import ServicePrincipal
from mockservers.cloud.service import CloudService
from mockservers.cloud.throttle import request_cost
from mockservers.http_routes import Cost, Route, RouteTable, markdown, request_origin

MAX_BODY = 4 * 1024 * 1024  # Graph refuses request bodies over 4 MB
Reply = tuple[int, Any, dict[str, str]]
Handler = Callable[["Call"], Reply]
_WRITE_VERBS = ("set-", "new-", "remove-", "enable-")
_ORIGIN_HEADERS = ("x-forwarded-host", "x-forwarded-proto", "host")  # what request_origin reads
log = logging.getLogger(__name__)
# How far one POST /exwb/clock/advance may move the clock: far beyond any documented lifetime
# (escrows 28 days, tombstones 180 days), short of datetime's range.
MAX_ADVANCE = timedelta(days=3660)
_PUBLIC_CACHE = {"Cache-Control": "max-age=86400, private"}  # as Entra sends its metadata


@dataclass(frozen=True, slots=True)
class Later:
    """A handler's body when the answer needs long work off the reactor thread (work that calls
    this reactor's own servers, as the clock's due cycles do): `server.CloudResource` runs
    `work` in a worker thread and answers with the Reply it returns, or the error it raises."""

    work: Callable[[], Reply]


@dataclass(slots=True)
class Call:
    """One request as its handler sees it; `charged` keeps the throttle's headers so that an
    error raised after charging carries them too."""

    service: CloudService
    request: server.Request
    route: Route[Handler]
    method: str
    query: dict[str, str]
    params: dict[str, str]
    token: Token | None = None
    expire_delta: bool = False  # an expire_delta fault: read the token as 7 days older
    charged: dict[str, str] = field(default_factory=dict)

    @property
    def caller(self) -> Token:
        if self.token is None:
            raise RuntimeError(f"{self.route.pattern} is public: it has no caller")
        return self.token

    def charge(self, units: int | None = None, write: bool | None = None) -> None:
        """Charge the route's declared cost; a deferred cost passes what it counted."""
        cost = self.route.cost or Cost()
        declared_units, declared_write = request_cost(cost, self.query)
        self.charged = self.service.throttle.charge(
            self.caller.app.client_id,
            declared_units if units is None else units,
            declared_write if write is None else write,
        )

    def body(self) -> bytes:
        data = self.request.content.read(MAX_BODY + 1) if self.request.content else b""
        if len(data) > MAX_BODY:
            raise errors.request_too_large()
        return data

    def json(self) -> Any:
        try:
            return json.loads(self.body() or b"null")
        except (ValueError, UnicodeDecodeError, RecursionError):  # deep nesting: not JSON to us
            raise errors.invalid_json() from None

    @property
    def base_url(self) -> str:
        """The origin the client called us on: links in a body are built on it."""
        get = self.request.getHeader  # only the three headers it reads, not all of them
        headers = {n: v for n in _ORIGIN_HEADERS if (v := get(n)) is not None}
        return request_origin(headers, self.request.isSecure(), self.service.base_url)

    def headers(self) -> dict[str, str]:
        """The request's headers, names lower-cased (the last value of a repeated one)."""
        return {
            k.decode("latin-1").lower(): v[-1].decode("latin-1")
            for k, v in self.request.requestHeaders.getAllRawHeaders()
        }


# ------------------------------------------------------------------ handlers
def _token(call: Call) -> Reply:
    form = dict(parse_qsl(call.body().decode("utf-8", "replace")))
    basic = call.request.getHeader("authorization")
    body = call.service.auth.issue(call.params["tenant"], form, call.base_url, basic)
    return 200, body, {"Cache-Control": "no-store"}


def _entra_tenant(call: Call) -> str:
    """The tenant id a discovery path names (its id, a domain of it, or a multi-tenant alias),
    or Entra's AADSTS90002 answer."""
    auth = call.service.auth
    name = call.params["tenant"]
    if not auth.names_tenant(name):
        raise errors.unknown_tenant(name)
    return auth.tenant_id


def _openid_configuration(version: str, call: Call) -> Reply:
    tenant = _entra_tenant(call)
    return 200, entra.openid_configuration(call.base_url, tenant, version), _PUBLIC_CACHE


def _jwks(call: Call) -> Reply:
    if "tenant" in call.params:
        _entra_tenant(call)
    return 200, call.service.auth.signer.jwks(), _PUBLIC_CACHE


def _instance_discovery(call: Call) -> Reply:
    endpoint = call.query.get("authorization_endpoint", "")
    body = entra.instance_discovery(call.base_url, endpoint)
    if body is None:
        raise errors.invalid_instance()
    return 200, body, _PUBLIC_CACHE


def _list_users(call: Call) -> Reply:
    svc = call.service
    return 200, graph.list_users(svc.store, call.query, call.base_url, call.headers()), {}


def _users_delta(call: Call) -> Reply:
    now = clock.now().timestamp()  # a token's age is on the harness clock (7 days, simulated)
    if call.expire_delta:
        # The token is read as if its 7 days had passed, so Graph's own expiry path answers
        # (410 resyncRequired with Location).
        now += delta.TOKEN_LIFETIME_SECONDS + 1
    svc = call.service
    return 200, graph.users_delta(svc.store, call.query, call.base_url, call.headers(), now), {}


def _get_user(call: Call) -> Reply:
    svc = call.service
    return 200, graph.get_user(svc.store, call.params["id"], call.query, call.base_url), {}


def _count_users(call: Call) -> Reply:
    """GET /v1.0/users/$count: the number as text/plain, as Graph answers it."""
    count = graph.count_users(call.service.store, call.query, call.headers())
    return 200, count, {"Content-Type": "text/plain;charset=utf-8"}


class _BatchedRequest(server.Request):
    """One request of a $batch as its route's handler sees it: its own method, URL, headers and
    body; the batch's connection (TLS, peer) and the headers that name the origin links follow.
    Never written to: its answer goes into the batch's body."""

    def __init__(self, outer: server.Request, sub: batch.SubRequest, path: str) -> None:
        super().__init__(outer.channel)
        self.method = sub.method.encode("ascii")
        self.uri = path.encode("utf-8")
        self.path = self.uri.split(b"?", 1)[0]
        for name in _ORIGIN_HEADERS:
            value = outer.getHeader(name)
            if value is not None:
                self.requestHeaders.setRawHeaders(name, [value])
        for name, value in sub.headers.items():
            if name not in _ORIGIN_HEADERS and name != "authorization":  # the batch's token
                self.requestHeaders.setRawHeaders(name, [value])
        # Twisted declares `content` None until a body arrives; a batched one already has.
        self.content = BytesIO(_batched_body(sub))  # type: ignore[assignment]
        self._forceSSL = outer.isSecure()


def _batched_body(sub: batch.SubRequest) -> bytes:
    """A batched request's body: JSON as JSON; a string under another Content-Type is base64,
    as Graph's batching encodes binary bodies."""
    if not sub.has_body:
        return b""
    if isinstance(sub.body, str) and "json" not in sub.headers.get("content-type", ""):
        try:
            return base64.b64decode(sub.body + "=" * (-len(sub.body) % 4), altchars=b"-_")
        except ValueError:
            return sub.body.encode("utf-8")
    return json.dumps(sub.body).encode("utf-8")


def _dispatch_batched(call: Call, sub: batch.SubRequest) -> batch.SubResponse:
    """Route one batched request through ROUTES as `CloudResource` routes a request sent alone:
    path, method, the caller's roles, the throttle charge, the handler, Graph's error body. It
    runs with the batch's token (already checked by the server); only /v1.0 routes answer."""
    rid = str(uuid.uuid4())
    path = "/v1.0/" + sub.url.lstrip("/")
    raw_path, _, raw_query = path.partition("?")
    query = dict(parse_qsl(raw_query, keep_blank_values=True))
    parts = split_path(raw_path)
    sub_call: Call | None = None
    try:
        match = ROUTES.match(sub.method, parts, query)
        if match is None or not match.route.pattern.startswith("/v1.0/"):
            raise errors.segment_not_found(parts[-1] if parts else "")
        if match.route.handler is _batch:
            raise errors.json_batch_invalid("a batch cannot contain $batch.")
        if not match.found:
            raise errors.method_not_allowed(match.allowed)
        route = match.route
        request = _BatchedRequest(call.request, sub, path)
        sub_call = Call(call.service, request, route, sub.method, query, match.params, call.caller)
        if route.roles and not call.caller.has_any(route.roles):
            raise errors.insufficient_privileges()
        if route.cost is not None and not route.cost.deferred:
            sub_call.charge()
        status, body, headers = route.handler(sub_call)
        headers = {**sub_call.charged, **headers}
    except errors.OAuthError as e:
        status, body, headers = e.status, e.body, {}
    except errors.CloudError as e:
        status, body = e.status, errors.error_body(e.code, e.message, rid)
        headers = {**(sub_call.charged if sub_call else {}), **e.headers}
    except Exception:
        log.exception("batched cloud request failed")
        failure = errors.internal_error()
        status, headers = failure.status, {}
        body = errors.error_body(failure.code, failure.message, rid)
    out = {"request-id": rid, "OData-Version": "4.0", **headers}
    if body is not None:
        out.setdefault("Content-Type", "application/json;odata.metadata=minimal;charset=utf-8")
    return batch.SubResponse(status, out, body)


def _batch(call: Call) -> Reply:
    """POST /v1.0/$batch (see batch.py)."""
    requests = batch.parse(call.json())
    body = batch.run(
        requests,
        lambda sub: _dispatch_batched(call, sub),
        lambda e: errors.error_body(e.code, e.message),
    )
    return 200, body, {}


def _list_service_principals(call: Call) -> Reply:
    svc = call.service
    return 200, graph.list_service_principals(svc.store.hybrid, call.query, call.base_url), {}


def _sp_key(call: Call) -> tuple[str, bool]:
    """(key, whether it is an appId) of a service principal route."""
    if "app_id" in call.params:
        return call.params["app_id"].replace("''", "'"), True  # OData doubles a quote
    return call.params["id"], False


def _get_service_principal(call: Call) -> Reply:
    svc, (key, by_app_id) = call.service, _sp_key(call)
    hybrid = svc.store.hybrid
    body = graph.get_service_principal(hybrid, key, call.query, call.base_url, by_app_id=by_app_id)
    return 200, body, {}


def _patch_service_principal(call: Call) -> Reply:
    key, by_app_id = _sp_key(call)
    graph.patch_service_principal(call.service.store.hybrid, key, call.json(), by_app_id=by_app_id)
    return 204, None, {}


def _get_sync_behavior(entity_set: str, call: Call) -> Reply:
    svc = call.service
    hybrid = svc.store.hybrid
    return 200, graph.get_sync_behavior(hybrid, entity_set, call.params["id"], call.base_url), {}


def _patch_sync_behavior(entity_set: str, call: Call) -> Reply:
    graph.patch_sync_behavior(call.service.store.hybrid, entity_set, call.params["id"], call.json())
    return 204, None, {}


def _check_tenant(call: Call) -> None:
    if call.params["tenant"].casefold() != call.service.tenant_id:
        raise errors.tenant_not_found(call.params["tenant"])


def _next_page(call: Call) -> Reply:
    """The next page of a cmdlet's output: a nextLink, by GET or POST (no body needed)."""
    _check_tenant(call)
    svc = call.service
    page = svc.cursors.resume(call.query["$skiptoken"], call.caller.app.client_id)
    if page is None:
        raise errors.invalid_skiptoken()
    call.charge()
    return 200, _exo_body(call, page), {}


def _invoke(call: Call) -> Reply:
    _check_tenant(call)
    svc = call.service
    payload = call.json()
    cmd = payload.get("CmdletInput") if isinstance(payload, dict) else None
    if not isinstance(cmd, dict) or not isinstance(cmd.get("CmdletName"), str):
        raise errors.not_a_cmdlet_input()
    params = cmd.get("Parameters") or {}
    if not isinstance(params, dict):
        raise errors.parameters_not_an_object()
    call.charge(write=cmd["CmdletName"].casefold().startswith(_WRITE_VERBS))
    result = exo.invoke(svc.store, cmd["CmdletName"], params, can_write=call.caller.can_write)
    return 200, _exo_body(call, svc.cursors.first(result, call.caller.app.client_id)), {}


def exo_base(origin: str, tenant_id: str) -> str:
    """The EXO admin API's base URL for `tenant_id` on `origin` (its InvokeCommand is below)."""
    return f"{origin}/adminapi/beta/{tenant_id}"


def _exo_body(call: Call, page: Page) -> dict[str, Any]:
    base = exo_base(call.base_url, call.service.tenant_id)
    body: dict[str, Any] = {
        "@odata.context": f"{base}/$metadata#Collection(Exchange.GenericHashTable)",
        "value": page.values,
    }
    if page.warnings:
        # The EXO V3 REST endpoint returns cmdlet warnings as an annotation of the body.
        body["@adminapi.warnings"] = list(page.warnings)
    if page.next_token is not None:
        body["@odata.nextLink"] = f"{base}/InvokeCommand?$skiptoken={quote(page.next_token)}"
    return body


def _dirsync(call: Call) -> Reply:
    """Entra Connect's export (see `dirsync`)."""
    _check_tenant(call)
    objects = dirsync.parse_batch(call.json())
    call.charge(units=len(objects))
    rid = call.request.responseHeaders.getRawHeaders("request-id", [None])[0]
    return 200, dirsync.export(call.service.store, objects, rid), {}


# ------------------------------------------------------------------ synchronization jobs
def _instantiate(call: Call) -> Reply:
    svc = call.service
    body = sync.instantiate(svc.store.hybrid, call.params["template"], call.json(), svc.tenant_id)
    context = f"{call.base_url}/v1.0/$metadata#microsoft.graph.applicationServicePrincipal"
    return 201, {"@odata.context": context, **body}, {}


def _sync_sp(call: Call) -> ServicePrincipal:
    return graph.find_service_principal(call.service.store.hybrid, call.params["id"])


def _later(work: Callable[[], Reply]) -> Reply:
    # A job's operations take its lock, which a running cycle holds while it calls this
    # reactor's LDAP and Graph: never wait for it on the reactor thread.
    return 200, Later(work), {}


def _list_jobs(call: Call) -> Reply:
    sp = _sync_sp(call)
    return _later(lambda: (200, sync.jobs_body(call.service.sync, call.base_url, sp.id), {}))


def _create_job(call: Call) -> Reply:
    sp, body = _sync_sp(call), call.json()

    def work() -> Reply:
        job = sync.create_job(call.service.sync, sp, body)
        return 201, sync.job_body(job, call.base_url, sp.id), {}

    return _later(work)


def _job(call: Call) -> sync.JobBackend:
    return call.service.sync.job(_sync_sp(call).id, call.params["job"])


def _get_job(call: Call) -> Reply:
    job, sp_id = _job(call), call.params["id"]
    return _later(lambda: (200, sync.job_body(job, call.base_url, sp_id), {}))


def _delete_job(call: Call) -> Reply:
    sp = _sync_sp(call)

    def work() -> Reply:
        sync.delete_job(call.service.sync, sp.id, call.params["job"])
        return 204, None, {}

    return _later(work)


def _job_action(action: str, call: Call) -> Reply:
    """start, pause: 204."""
    job = _job(call)

    def work() -> Reply:
        getattr(job, action)()
        return 204, None, {}

    return _later(work)


def _restart_job(call: Call) -> Reply:
    job, scope = _job(call), sync.restart_criteria(call.json())

    def work() -> Reply:
        try:
            job.restart(scope)
        except ValueError as e:
            raise errors.sync_bad_request(f"criteria.{e}.") from None
        return 204, None, {}

    return _later(work)


def _get_schema(call: Call) -> Reply:
    job = _job(call)
    return _later(lambda: (200, job.schema(), {}))


def _put_schema(call: Call) -> Reply:
    job, body = _job(call), call.json()
    if not isinstance(body, dict):
        raise errors.not_an_object()

    def work() -> Reply:
        try:
            job.put_schema(body)
        except ValueError as e:
            raise errors.sync_bad_request(str(e)) from None
        return 204, None, {}

    return _later(work)


def _provision_on_demand(call: Call) -> Reply:
    job, body = _job(call), call.json()

    def work() -> Reply:
        rule = job.schema()["synchronizationRules"][0]["id"]
        object_id = sync.on_demand_subject(body, rule)
        call.service.sync.charge_on_demand(job.id)
        key, value = job.provision_on_demand(object_id)
        return 200, sync.on_demand_body(key, value, call.base_url), {}

    return _later(work)


def _put_secrets(call: Call) -> Reply:
    sp, body = _sync_sp(call), call.json()

    def work() -> Reply:
        sync.put_secrets(call.service.sync, sp.id, body)
        return 204, None, {}

    return _later(work)


def _sync_routes() -> tuple[Route[Handler], ...]:
    sp = "/v1.0/servicePrincipals/{id}/synchronization"
    job = sp + "/jobs/{job}"
    read, write = _roles(SYNC_JOBS_READ), _roles(SYNC_JOBS_WRITE)

    def route(verb: str, pattern: str, handler: Handler, summary: str, roles: Any) -> Route:
        cost = Cost(write=verb != "GET")
        verbs = tuple(verb.split("|"))
        return Route(verbs, pattern, handler, summary, roles=roles, cost=cost, ignore_case=True)

    return (
        route(
            "POST",
            "/v1.0/applicationTemplates/{template}/instantiate",
            _instantiate,
            "Instantiate the writeback's application template (3b99513e-...): an application "
            "and its service principal",
            _roles(APPLICATION_WRITE),
        ),
        route("GET", sp + "/jobs", _list_jobs, "List a service principal's jobs", read),
        route("POST", sp + "/jobs", _create_job, "Create the writeback job (templateId)", write),
        route("PUT", sp + "/secrets", _put_secrets, "Set the job's secrets (Domain)", write),
        route("GET", job, _get_job, "Get a job: schedule, status, settings", read),
        route("DELETE", job, _delete_job, "Delete a job", write),
        route("POST", job + "/start", partial(_job_action, "start"), "Start a job", write),
        route("POST", job + "/pause", partial(_job_action, "pause"), "Pause a job", write),
        route("POST", job + "/restart", _restart_job, "Restart a job (criteria.resetScope)", write),
        route("GET", job + "/schema", _get_schema, "A job's schema (rules, scoping)", read),
        route(
            "PUT|PATCH",  # Graph documents PUT; msgraph-sdk sends PATCH
            job + "/schema",
            _put_schema,
            "Set a job's scoping filters (schema)",
            write,
        ),
        route(
            "POST",
            job + "/provisionOnDemand",
            _provision_on_demand,
            "Provision one user now (5 requests per 10 s)",
            write,
        ),
    )


# ------------------------------------------------------------------ the harness clock (extension)
def _clock_state(ran: int | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "kind": "simulated" if clock.current().simulated else "wall",
        "now": clock.now_iso(),
    }
    if ran is not None:
        body["ran"] = ran  # the scheduled calls (cycles, retries) that fell due and ran
    return body


def _list_provisioning(call: Call) -> Reply:
    """GET /v1.0/auditLogs/provisioning: the job's provisioning log (provisioning.py)."""
    svc = call.service
    return 200, provisioning.list_provisioning(svc.provisioning, call.query, call.base_url), {}


def _get_clock(call: Call) -> Reply:
    """GET /exwb/clock: the harness clock's kind and time."""
    return 200, _clock_state(), {}


def _advance_target(body: Any, now: datetime) -> datetime:
    """When `{"minutes"|"hours"|"days": n}` or `{"to": ISO}` moves the clock to; 400 if not."""
    if not isinstance(body, dict) or len(body) != 1:
        raise errors.clock_bad_advance(
            'The body must be one of {"minutes": n}, {"hours": n}, {"days": n}, {"to": "<ISO>"}.'
        )
    ((key, value),) = body.items()
    if key == "to":
        try:
            target = clock.parse_iso(value) if isinstance(value, str) else None
        except ValueError:
            target = None
        if target is None:
            raise errors.clock_bad_advance(f"'to' must be an ISO 8601 time, not {value!r}.")
    elif key in ("minutes", "hours", "days"):
        if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
            raise errors.clock_bad_advance(f"'{key}' must be a number of at least 0.")
        try:
            step = timedelta(**{key: value})
        except OverflowError:  # inf, or more days than datetime holds
            step = MAX_ADVANCE * 2
        target = now + min(step, MAX_ADVANCE * 2)
    else:
        raise errors.clock_bad_advance(f"Unknown key '{key}': use minutes, hours, days or to.")
    if target < now:
        raise errors.clock_bad_advance(
            f"Simulated time cannot go backwards (now {clock.iso(now)}, asked for "
            f"{clock.iso(target)})."
        )
    if target - now > MAX_ADVANCE:
        raise errors.clock_bad_advance(f"One advance moves the clock by at most {MAX_ADVANCE}.")
    return target


def _advance_clock(call: Call) -> Reply:
    """POST /exwb/clock/advance: move the simulated clock forward, running the work that falls
    due on the way (the served job's cycles call LDAP and Graph on this reactor, so it runs in
    a worker thread); 409 on the wall clock."""
    sim = clock.current()
    if not isinstance(sim, SimulatedClock):
        raise errors.clock_conflict(
            "The harness runs on the wall clock: serve with --clock simulated to move time."
        )
    target = _advance_target(call.json(), sim.now())

    def work() -> Reply:
        try:
            ran = sim.advance_to(target)
        except ClockError as e:  # another advance got there first
            raise errors.clock_conflict(str(e)) from None
        return 200, _clock_state(ran), {}

    return 200, Later(work), {}


# ------------------------------------------------------------------ the table
def _roles(*groups: tuple[str, ...] | str) -> tuple[str, ...]:
    return tuple(r for g in groups for r in ((g,) if isinstance(g, str) else g))


_SP_BY_APP_ID = "/v1.0/servicePrincipals(appId='{app_id:(?:[^']|'')*}')"


def _service_principal_routes(pattern: str) -> tuple[Route[Handler], ...]:
    """GET and PATCH of one service principal, by object id or by appId."""
    return (
        Route(
            ("GET",),
            pattern,
            _get_service_principal,
            "Get a service principal",
            roles=_roles(APPLICATION_READ),
            cost=Cost(),
            ignore_case=True,
        ),
        Route(
            ("PATCH",),
            pattern,
            _patch_service_principal,
            "Replace a service principal's keyCredentials",
            roles=_roles(APPLICATION_WRITE),
            cost=Cost(write=True),
            ignore_case=True,
        ),
    )


def _sync_behavior_routes(
    entity_set: str, read: tuple[str, ...], write: str
) -> tuple[Route[Handler], ...]:
    """GET and PATCH of {groups|contacts}/{id}/onPremisesSyncBehavior (the object's SOA)."""
    pattern = f"/v1.0/{entity_set}/{{id}}/onPremisesSyncBehavior"
    get: Handler = partial(_get_sync_behavior, entity_set)
    patch: Handler = partial(_patch_sync_behavior, entity_set)
    kind = entity_set[:-1]
    return (
        Route(
            ("GET",),
            pattern,
            get,
            f"Whether a synced {kind} is cloud-managed (its SOA)",
            roles=_roles(read),
            cost=Cost(),
            ignore_case=True,
        ),
        Route(
            ("PATCH",),
            pattern,
            patch,
            f"Move a synced {kind}'s SOA to the cloud or back",
            roles=_roles(write),
            cost=Cost(write=True),
            ignore_case=True,
        ),
    )


_TABLE: tuple[Route[Handler], ...] = (
    Route(
        ("POST",),
        "/{tenant}/oauth2/v2.0/token",
        _token,
        "Entra ID token endpoint: client credentials (RFC 6749 4.4), secret or certificate",
        fault="token",
        public=True,
    ),
    Route(
        ("GET",),
        "/{tenant}/v2.0/.well-known/openid-configuration",
        partial(_openid_configuration, "v2.0"),
        "Entra ID OpenID discovery document (v2.0)",
        public=True,
    ),
    Route(
        ("GET",),
        "/{tenant}/.well-known/openid-configuration",
        partial(_openid_configuration, "v1.0"),
        "Entra ID OpenID discovery document (v1.0)",
        public=True,
    ),
    Route(
        ("GET",),
        "/{tenant}/discovery/v2.0/keys",
        _jwks,
        "Entra ID signing keys (JWKS)",
        public=True,
    ),
    Route(("GET",), "/{tenant}/discovery/keys", _jwks, "Entra ID signing keys (v1.0)", public=True),
    Route(
        ("GET",),
        "/common/discovery/instance",
        _instance_discovery,
        "Entra ID instance discovery (what MSAL asks of an authority it does not know)",
        public=True,
    ),
    Route(("GET",), "/v1.0/users", _list_users, "List users", fault="users", cost=Cost(2)),
    Route(
        ("GET",),
        "/v1.0/users/delta|delta()",  # the SDK sends delta()
        _users_delta,
        "Delta query on users (rounds, $deltatoken, paging)",
        fault="delta",
        cost=Cost(2),
    ),
    Route(
        ("GET",),
        "/v1.0/users/$count",  # before users/{id}: the first matching route answers
        _count_users,
        "Count users ($filter, $search; needs ConsistencyLevel: eventual)",
        fault="users",
        cost=Cost(),
    ),
    Route(
        ("POST",),
        "/v1.0/$batch",
        _batch,
        "JSON batching: up to 20 requests, each routed, authorised and throttled as if alone",
        # Not throttled itself: Graph charges each request of the batch on its own.
    ),
    Route(("GET",), "/v1.0/users/{id}", _get_user, "Get a user", fault="users", cost=Cost(2)),
    Route(
        ("GET",),
        "/v1.0/servicePrincipals",
        _list_service_principals,
        "List service principals ($filter on id, appId, displayName)",
        roles=_roles(APPLICATION_READ),
        cost=Cost(),
        ignore_case=True,
    ),
    *_service_principal_routes(_SP_BY_APP_ID),
    *_service_principal_routes("/v1.0/servicePrincipals/{id}"),
    *_sync_routes(),
    Route(
        ("GET",),
        "/v1.0/auditLogs/provisioning",
        _list_provisioning,
        "List provisioningObjectSummary: the writeback job's provisioning log ($filter, $top, "
        "paging; newest first)",
        roles=_roles(AUDIT_LOG_READ),
        cost=Cost(),
    ),
    *_sync_behavior_routes("groups", GROUP_SOA_READ, GROUP_SOA_WRITE),
    *_sync_behavior_routes("contacts", CONTACT_SOA_READ, CONTACT_SOA_WRITE),
    Route(
        ("GET", "POST"),
        "/adminapi/beta/{tenant}/InvokeCommand",
        _next_page,
        "EXO admin API: the next page of a cmdlet's output (its nextLink)",
        fault="invoke",
        cost=Cost(deferred=True, note="once the $skiptoken is found"),
        needs=("$skiptoken",),
    ),
    Route(
        ("POST",),
        "/adminapi/beta/{tenant}/InvokeCommand",
        _invoke,
        "EXO admin API: run a cmdlet",
        fault="invoke",
        cost=Cost(
            write=True,
            deferred=True,
            note="a read for other cmdlets than Set-, New-, Remove-, Enable-",
        ),
    ),
    Route(
        ("POST",),
        "/exwb/dirsync/{tenant}/export",
        _dirsync,
        "Entra Connect's export of on-premises changes (this harness's stand-in)",
        roles=_roles(SYNC_ROLE),
        fault="dirsync",
        # The sync service is not Graph and its limits are not documented: charge it like
        # one Graph write whose cost grows with the batch.
        cost=Cost(write=True, deferred=True, note="its units are the number of exported objects"),
    ),
    Route(
        ("GET",),
        "/exwb/clock",
        _get_clock,
        "Harness extension: the harness clock's kind (wall or simulated) and time",
    ),
    Route(
        ("POST",),
        "/exwb/clock/advance",
        _advance_clock,
        "Harness extension: move the simulated clock forward by minutes, hours or days, or to "
        "a time, running the work that falls due",
        roles=_roles(CLOCK_ROLE),
    ),
)
ROUTES: RouteTable[Handler] = RouteTable(_TABLE)


def split_path(raw_path: str) -> list[str]:
    """A request path's segments, as this table matches them (decoded, no empty segments)."""
    return [p for p in unquote(raw_path).split("/") if p]


def graph_cost(path: str, query: Mapping[str, str], method: str) -> tuple[int, bool]:
    """(resource units, is a write) that the route of `method path` charges with `query`."""
    match = ROUTES.match(method, split_path(path), query)
    route = match.route if match is not None else None
    return request_cost(route.cost if route is not None and route.cost else Cost(), query)


def routes_markdown() -> str:
    """The table as Markdown, for the docs site."""
    return markdown(ROUTES) + (
        "\nA read's resource units drop by one with `$select` and by one with `$top` under 20, "
        "to at least 1 (Graph's documented cost table; `throttle.request_cost`).\n"
    )


_JOB_ROUTES = ("/synchronization", "/applicationTemplates/", "/auditLogs/", "/exwb/clock")


def job_routes_markdown() -> str:
    """The routes that operate the writeback job over time (Graph's synchronization API, its
    provisioning logs, the harness clock), for the README."""
    return markdown(r for r in ROUTES if any(p in r.pattern for p in _JOB_ROUTES))
