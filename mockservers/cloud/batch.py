"""Graph's JSON batching (``POST /v1.0/$batch``): reading the batch, ordering it by dependsOn,
and assembling the responses. Microsoft Learn, "Combine multiple HTTP requests using JSON
batching".

A batch is ``{"requests": [{"id", "method", "url", "headers"?, "body"?, "dependsOn"?}]}`` with 1
to 20 requests; other properties are ignored, as Graph ignores ``depends_on``. Ids are unique
ignoring case; `url` is relative to the version (``/users?$top=1`` or ``users``); a `body` needs
a Content-Type header. The answer is ``{"responses": [{"id",
"status", "headers", "body"?}]}``, one per request, in request order. A request whose dependsOn
failed (status 400 or above, or 424 itself) is not run and answers 424. A batch that cannot be
read answers 400 as a whole.

How one request runs is not this module's business: `run` calls `dispatch` for each, which
routes it through the same route table as a request sent alone (routes.py `_batch`), so each is
authorised and throttled on its own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mockservers.cloud import errors

MAX_REQUESTS = 20
METHODS = ("GET", "POST", "PATCH", "PUT", "DELETE")


@dataclass(frozen=True, slots=True)
class SubRequest:
    """One request of a batch; `headers` with lower-cased names."""

    id: str
    method: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None
    has_body: bool = False
    depends_on: tuple[str, ...] = ()
    index: int = 0  # its place in the batch as sent


@dataclass(frozen=True, slots=True)
class SubResponse:
    status: int
    headers: dict[str, str]
    body: Any  # a JSON value; None for no body


def parse(payload: Any) -> list[SubRequest]:
    """The requests of a batch body, in execution order (dependencies first, otherwise as
    sent); raises CloudError (400) for a batch Graph would refuse whole."""
    if not isinstance(payload, dict) or not isinstance(payload.get("requests"), list):
        raise errors.json_batch_invalid('the body must be {"requests": [...]}.')
    raw = payload["requests"]
    if not raw:
        raise errors.json_batch_invalid("the batch has no requests.")
    if len(raw) > MAX_REQUESTS:
        raise errors.json_batch_too_many()
    requests = [_request(i, item) for i, item in enumerate(raw)]
    seen: set[str] = set()
    for r in requests:
        if r.id.casefold() in seen:
            raise errors.json_batch_duplicate_id(r.id)
        seen.add(r.id.casefold())
    return _ordered(requests)


def _request(i: int, item: Any) -> SubRequest:
    if not isinstance(item, dict):
        raise errors.json_batch_invalid(f"requests[{i}] is not an object.")
    id_, method, url = item.get("id"), item.get("method"), item.get("url")
    if not isinstance(id_, str) or not id_:
        raise errors.json_batch_invalid(f"requests[{i}].id must be a non-empty string.")
    if not isinstance(method, str) or method.upper() not in METHODS:
        raise errors.json_batch_invalid(f"requests[{i}].method must be one of {METHODS}.")
    # An absolute URL is not refused here: Graph routes it as a path and answers that request
    # 400 "Resource not found for the segment" (what msgraph-sdk-python's batch items get).
    if not isinstance(url, str) or not url:
        raise errors.json_batch_invalid(f"requests[{i}].url must be a relative URL.")
    headers = item.get("headers") or {}
    if not isinstance(headers, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
    ):
        raise errors.json_batch_invalid(f"requests[{i}].headers must map names to strings.")
    lowered = {k.lower(): v for k, v in headers.items()}
    has_body = "body" in item and item["body"] is not None
    if has_body and "content-type" not in lowered:
        raise errors.json_batch_invalid(f"requests[{i}] has a body but no Content-Type header.")
    depends = item.get("dependsOn") or []
    if not isinstance(depends, list) or not all(isinstance(d, str) for d in depends):
        raise errors.json_batch_invalid(f"requests[{i}].dependsOn must be a list of ids.")
    return SubRequest(
        id_, method.upper(), url, lowered, item.get("body"), has_body, tuple(depends), i
    )


def _ordered(requests: list[SubRequest]) -> list[SubRequest]:
    """Dependencies before dependants, otherwise in request order; a dependsOn naming no other
    request of the batch, or a cycle, refuses the batch."""
    by_id = {r.id.casefold(): r for r in requests}
    for r in requests:
        for d in r.depends_on:
            if d.casefold() not in by_id or d.casefold() == r.id.casefold():
                raise errors.json_batch_bad_dependency(r.id, d)
    done: set[str] = set()
    out: list[SubRequest] = []
    while len(out) < len(requests):
        ready = [
            r
            for r in requests
            if r.id.casefold() not in done and all(d.casefold() in done for d in r.depends_on)
        ]
        if not ready:  # everything left waits on something left: a cycle
            stuck = next(r for r in requests if r.id.casefold() not in done)
            raise errors.json_batch_bad_dependency(stuck.id, stuck.depends_on[0])
        for r in ready:
            done.add(r.id.casefold())
            out.append(r)
    return out


def run(
    requests: list[SubRequest],
    dispatch: Callable[[SubRequest], SubResponse],
    failed_body: Callable[[errors.CloudError], Any],
) -> dict[str, Any]:
    """Run the (ordered) requests; the body of ``POST /v1.0/$batch``. `failed_body` renders the
    424 of a request whose dependency failed."""
    status: dict[str, int] = {}
    answers: dict[str, dict[str, Any]] = {}
    for r in requests:
        failed = next((d for d in r.depends_on if status[d.casefold()] >= 400), None)
        if failed is not None:
            error = errors.failed_dependency(failed)
            response = SubResponse(
                error.status,
                {"Content-Type": "application/json"},
                failed_body(error),
            )
        else:
            response = dispatch(r)
        status[r.id.casefold()] = response.status
        answer: dict[str, Any] = {"id": r.id, "status": response.status}
        answer["headers"] = response.headers
        if response.body is not None:
            answer["body"] = response.body
        answers[r.id] = answer
    # Responses in the order the client sent the requests (Graph may reorder; ids correlate).
    order = sorted(requests, key=lambda r: r.index)
    return {"responses": [answers[r.id] for r in order]}
