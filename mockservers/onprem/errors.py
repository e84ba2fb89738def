"""Errors of the on-premises API, in the same JSON envelope as the fake cloud's.

``{"error": {"code", "message", "details": [{"code", "message"}...]}}``: `details` lists the
failed prerequisite checks of a refused Setup run, empty otherwise.
"""

from __future__ import annotations

import json
from typing import Any


class OnpremError(Exception):
    """An HTTP error with a code and text; `headers` are extra response headers."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: list[dict[str, str]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.details = details or []
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, "details": self.details}}


def bad_request(message: str, code: str = "BadRequest") -> OnpremError:
    return OnpremError(400, code, message)


def not_found(code: str, message: str) -> OnpremError:
    return OnpremError(404, code, message)


def conflict(code: str, message: str, details: list[dict[str, str]] | None = None) -> OnpremError:
    return OnpremError(409, code, message, details)


def dumps(body: Any) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
