"""Request logs of the served tenant: one JSON object per line, for a user debugging a client.

`exwb serve --log FILE` writes every request (LDAP operations, Graph, EXO, token, hosts API);
`-v` prints the same lines to stderr. Refused and failed requests (HTTP 4xx/5xx, LDAP results
other than success, undecodable messages) carry the reason. A record says what was asked, by
whom and how it ended:

    {"ts": "2026-12-04T19:20:01.123Z", "proto": "http", "service": "cloud", "client":
     "127.0.0.1:51234", "method": "GET", "path": "/v1.0/users", "query": {"$top": "5"},
     "status": 401, "code": "InvalidAuthenticationToken", "message": "...", "ms": 0.8}

No secret is ever written: not the Authorization header, not a request body (the token form
holds the client secret or an assertion), not a password; the values of `$skiptoken` and
`$deltatoken`, which open a listing, are replaced by their length. Every field is capped, so a
hostile request cannot make one line large.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import parse_qsl

from harness.core import clock

MAX_FIELD = 300  # characters kept of any one value
MAX_QUERY = 20  # query parameters kept
_OPENERS = frozenset({"$skiptoken", "$deltatoken", "skiptoken", "deltatoken"})


class RequestLog:
    """Where records go: every one to `path` (JSON lines) and to `stream` (-v); with
    `failures_only`, the stream gets only the refused and failed ones."""

    def __init__(
        self, path: Path | None = None, stream: TextIO | None = None, failures_only: bool = False
    ) -> None:
        self._file = path.open("a", encoding="utf-8", buffering=1) if path else None
        self._stream = stream
        self._failures_only = failures_only
        self._lock = threading.Lock()  # the reactor writes; a test thread may read and close

    def emit(self, record: dict[str, Any], failed: bool) -> None:
        to_stream = self._stream is not None and (failed or not self._failures_only)
        if self._file is None and not to_stream:
            return
        line = json.dumps(
            {"ts": _now(), **{k: _cap(v) for k, v in record.items()}}, ensure_ascii=False
        )
        with self._lock:
            if self._file is not None:
                self._file.write(line + "\n")
            if to_stream and self._stream is not None:
                self._stream.write(line + "\n")
                self._stream.flush()

    def http(self, service: str, request: Any) -> None:
        """A finished twisted.web request (called from the Site's `log`)."""
        status = int(getattr(request, "code", 0) or 0)
        started = getattr(request, "exwb_started", None)
        peer = request.getClientAddress()
        record: dict[str, Any] = {
            "proto": "https" if request.isSecure() else "http",
            "service": service,
            "client": f"{getattr(peer, 'host', '?')}:{getattr(peer, 'port', '?')}",
            "method": (request.method or b"").decode("ascii", "replace"),
            "path": (request.path or b"").decode("utf-8", "replace"),
        }
        # The URI's query only: twisted's `request.args` also holds a form body's fields,
        # and the token endpoint's form holds the client secret.
        query = _query((request.uri or b"").partition(b"?")[2])
        if query:
            record["query"] = query
        record["status"] = status
        for name in ("code", "message", "app", "fault"):
            value = getattr(request, f"exwb_{name}", None)
            if value:
                record[name] = value
        agent = request.getHeader("user-agent")
        if agent:
            record["user_agent"] = agent
        record["bytes"] = int(getattr(request, "sentLength", 0) or 0)
        if started is not None:
            record["ms"] = round((time.monotonic() - started) * 1000, 1)
        self.emit(record, failed=status >= 400)

    def ldap(self, record: dict[str, Any], failed: bool) -> None:
        self.emit({"proto": "ldap", **record}, failed)

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None


def mark(request: Any, **fields: Any) -> None:
    """Note on a request what its log record says beyond the wire (error code, app, ...)."""
    for name, value in fields.items():
        setattr(request, f"exwb_{name}", value)


def _now() -> str:
    return clock.now().isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _query(raw: bytes) -> dict[str, str]:
    out: dict[str, str] = {}
    text = raw[: MAX_FIELD * MAX_QUERY].decode("utf-8", "replace")
    for name, value in parse_qsl(text, keep_blank_values=True)[:MAX_QUERY]:
        out[name] = f"<{len(value)} characters>" if name.lower() in _OPENERS else value
    return out


def _cap(value: Any) -> Any:
    if isinstance(value, str):
        return value if len(value) <= MAX_FIELD else value[:MAX_FIELD] + "..."
    if isinstance(value, dict):
        return {str(k)[:MAX_FIELD]: _cap(v) for k, v in list(value.items())[:MAX_QUERY]}
    return value
