"""Errors of the fake cloud, rendered in Graph's error shape.

Graph: ``{"error": {"code", "message", "innerError": {"date", "request-id", ...}}}``.
The EXO admin API answers in the same envelope, with Exchange's cmdlet error text in `message`
and the Exchange exception name in `code`. Entra's token endpoint has its own OAuth2 shape
(`oauth_error_body`).
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any


class CloudError(Exception):
    """An HTTP error with Graph's body; `headers` are extra response headers (Retry-After...)."""

    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S")


def error_body(code: str, message: str, request_id: str | None = None) -> dict[str, Any]:
    rid = request_id or str(uuid.uuid4())
    return {
        "error": {
            "code": code,
            "message": message,
            "innerError": {"date": now_iso(), "request-id": rid, "client-request-id": rid},
        }
    }


def oauth_error_body(error: str, aadsts: str, description: str) -> dict[str, Any]:
    """Entra's token-endpoint error: ``{"error", "error_description", "error_codes", ...}``."""
    trace = str(uuid.uuid4())
    return {
        "error": error,
        "error_description": f"{aadsts}: {description} Trace ID: {trace} "
        f"Correlation ID: {uuid.uuid4()} Timestamp: {now_iso()}Z",
        "error_codes": [int(aadsts.removeprefix("AADSTS"))],
        "timestamp": f"{now_iso()}Z",
        "trace_id": trace,
        "correlation_id": str(uuid.uuid4()),
    }


def bad_request(message: str, code: str = "BadRequest") -> CloudError:
    return CloudError(400, code, message)


def not_found(message: str, code: str = "Request_ResourceNotFound") -> CloudError:
    return CloudError(404, code, message)


def dumps(body: Any) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
