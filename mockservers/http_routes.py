"""Route tables of the fakes' HTTP servers (the cloud's Graph/EXO API, the on-premises API).

A `Route` declares once what a server needs to know about one kind of request: its methods,
its path pattern, its handler, the fault operation a fault plan names it by, its throttle cost
and the roles it requires. A server matches a request's path segments against its table and
reads the matched route; nothing parses the path a second time. `markdown` renders a table
for the docs, so the docs list exactly what the code routes.

Patterns are written as paths: ``/v1.0/users/{id}``. A segment is literal text, ``{name}`` (any
one segment, captured as `name`; ``{name:regex}`` only what the regex fits), or text around a
capture (``servicePrincipals(appId='{app}')``); ``a|b`` accepts either literal. Literals compare
exactly unless the route sets `ignore_case`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Generic, TypeVar

H = TypeVar("H")
_CAPTURE = re.compile(r"\{(\w+)(?::([^{}]+))?\}")


@dataclass(frozen=True, slots=True)
class Cost:
    """What one request takes from the throttle: `units` resource units, and one write from the
    write quota if `write`. `note` says, for the docs, how the handler refines it (`deferred`:
    the handler charges once it knows the size, e.g. one unit per exported object)."""

    units: int = 1
    write: bool = False
    deferred: bool = False
    note: str = ""

    def describe(self) -> str:
        text = f"{self.units} RU" + (" + 1 write" if self.write else "")
        return f"{text} ({self.note})" if self.note else text


@dataclass(frozen=True, slots=True)
class _Segment:
    """One segment of a pattern: literal alternatives, a whole-segment capture, or a regex (a
    capture with text around it). Literals and bare captures skip the regex engine: every
    request is matched against the table."""

    literals: frozenset[str] | None = None
    name: str = ""
    regex: re.Pattern[str] | None = None

    @classmethod
    def parse(cls, segment: str, ignore_case: bool) -> _Segment:
        if "{" not in segment:
            alts = segment.split("|")
            return cls(frozenset(a.casefold() for a in alts) if ignore_case else frozenset(alts))
        whole = _CAPTURE.fullmatch(segment)
        if whole is not None and whole.group(2) is None:
            return cls(name=whole.group(1))
        out, pos = [], 0
        for m in _CAPTURE.finditer(segment):
            out.append(re.escape(segment[pos : m.start()]))
            out.append(f"(?P<{m.group(1)}>{m.group(2) or '.+'})")
            pos = m.end()
        out.append(re.escape(segment[pos:]))
        return cls(regex=re.compile("".join(out), re.IGNORECASE if ignore_case else 0))


@dataclass(frozen=True, slots=True)
class Route(Generic[H]):
    methods: tuple[str, ...]
    pattern: str
    handler: H
    summary: str
    roles: tuple[str, ...] = ()  # any one of them; () = any signed-in caller
    fault: str | None = None  # the operation a fault plan's `on:` names (mockservers.faults)
    cost: Cost | None = None  # None: not throttled
    public: bool = False  # needs no credentials (the token endpoint)
    needs: tuple[str, ...] = ()  # query parameters the request must carry (non-empty)
    ignore_case: bool = False
    _segments: tuple[_Segment, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        compiled = tuple(_Segment.parse(s, self.ignore_case) for s in _split(self.pattern))
        object.__setattr__(self, "_segments", compiled)

    def match(self, parts: Sequence[str], query: Mapping[str, str]) -> dict[str, str] | None:
        """The captures of `parts` (a path's segments) if this route's pattern fits them and
        `query` has the parameters it needs."""
        if len(parts) != len(self._segments) or not all(query.get(q) for q in self.needs):
            return None
        params: dict[str, str] = {}
        for segment, part in zip(self._segments, parts, strict=True):
            if segment.literals is not None:
                if (part.casefold() if self.ignore_case else part) not in segment.literals:
                    return None
            elif segment.regex is None:
                params[segment.name] = part
            else:
                m = segment.regex.fullmatch(part)
                if m is None:
                    return None
                params.update(m.groupdict())
        return params

    def examples(self, value: str = "x") -> list[list[str]]:
        """Concrete paths (as segments) this route's pattern fits: each capture `value`, one
        path per literal alternative; what a test sends to reach every route."""
        paths: list[list[str]] = [[]]
        for segment in _split(self.pattern):
            if "|" in segment and "{" not in segment:
                options = segment.split("|")
            else:
                options = [_CAPTURE.sub(value, segment)]
            paths = [[*p, o] for p in paths for o in options]
        return paths


@dataclass(frozen=True, slots=True)
class Match(Generic[H]):
    """A request's route and captures. `found` is False when routes have the request's path but
    none its method: `route` is then the first of them, `allowed` their methods (for a 405)."""

    route: Route[H]
    params: dict[str, str]
    allowed: tuple[str, ...]
    found: bool


@dataclass(frozen=True, slots=True)
class RouteTable(Generic[H]):
    routes: tuple[Route[H], ...]
    _by_length: dict[int, tuple[Route[H], ...]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_length: dict[int, list[Route[H]]] = {}
        for route in self.routes:
            by_length.setdefault(len(route._segments), []).append(route)
        object.__setattr__(self, "_by_length", {n: tuple(rs) for n, rs in by_length.items()})

    def match(self, method: str, parts: Sequence[str], query: Mapping[str, str]) -> Match[H] | None:
        """The first route for this method and path; None when no route has this path."""
        allowed: list[str] = []
        fits: tuple[Route[H], dict[str, str]] | None = None
        for route in self._by_length.get(len(parts), ()):
            params = route.match(parts, query)
            if params is None:
                continue
            if method in route.methods:
                return Match(route, params, route.methods, True)
            allowed.extend(m for m in route.methods if m not in allowed)
            fits = fits or (route, params)
        if fits is None:
            return None
        return Match(fits[0], fits[1], tuple(allowed), False)

    def __iter__(self) -> Iterator[Route[H]]:
        return iter(self.routes)


def markdown(routes: Iterable[Route[H]]) -> str:
    """A Markdown table of `routes`: method, path, what it does, role, fault op, cost."""
    lines = [
        "| Method | Path | What it does | Required role | Fault operation | Throttle cost |",
        "|---|---|---|---|---|---|",
    ]
    for r in routes:
        roles = "none (public)" if r.public else " or ".join(r.roles) or "any signed-in caller"
        cost = r.cost.describe() if r.cost is not None else "not throttled"
        path = _CAPTURE.sub(lambda m: "{" + m.group(1) + "}", r.pattern)
        if r.needs:
            path += "?" + "&".join(f"{q}=..." for q in r.needs)
        cells = [", ".join(r.methods), f"`{path}`", r.summary, roles, r.fault or "-", cost]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + "\n"


def _split(pattern: str) -> list[str]:
    return [s for s in pattern.split("/") if s]


# A Host header's value: a DNS name, an IPv4 address or a bracketed IPv6 address, and a port.
_HOST = re.compile(
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}"
    r"[A-Za-z0-9])?)*\.?|\[[0-9A-Fa-f:.]{2,45}\])(?::[0-9]{1,5})?"
)


def request_origin(headers: Mapping[str, str], secure: bool, fallback: str) -> str:
    """The origin (``scheme://host[:port]``) a client used to reach us, for the absolute links a
    response carries (``@odata.nextLink``, ``@odata.deltaLink``, a 410's ``Location``).

    Graph builds its links on the host the client called; a client behind a TLS proxy must get
    links it can follow through that proxy. The host is ``X-Forwarded-Host`` or ``Host``, the
    scheme ``https`` on a TLS socket, else ``X-Forwarded-Proto``, else `fallback`'s. A header
    that is not a plain host name (or scheme) is ignored, so no text of a request's choosing
    beyond a host name reaches a link. `headers` has lower-cased names."""
    scheme, _, fallback_host = fallback.partition("://")
    if secure:
        scheme = "https"
    else:
        proto = headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
        if proto in ("http", "https"):
            scheme = proto
    host = fallback_host
    for name in ("x-forwarded-host", "host"):
        value = headers.get(name, "").split(",")[0].strip()
        if value and len(value) <= 261 and _HOST.fullmatch(value):
            host = value
            break
    return f"{scheme}://{host}"


def reason(status: int) -> bytes:
    """The status line's reason phrase (RFC 9110's), for every code we answer: Twisted's own
    table lacks some (429 went out as "429 Unknown Status")."""
    try:
        return HTTPStatus(status).phrase.encode("ascii")
    except ValueError:
        return b"Unknown Status"
