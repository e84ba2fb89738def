"""Paging cursors of the EXO admin API: a cmdlet's output kept between nextLink requests.

The REST endpoint sends at most `EXO_PAGE` objects per response; the rest waits under an opaque
$skiptoken for the app that ran the cmdlet. Cursors are state of the service, not of an HTTP
request: the HTTP layer asks for a page and renders it.
"""

from __future__ import annotations

import secrets
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from mockservers.cloud.exo import CmdletResult

EXO_PAGE = 1000
CACHE = 64  # paged cmdlet results kept per service; the oldest is dropped first


@dataclass(slots=True)
class _Cursor:
    result: CmdletResult
    position: int
    client_id: str


@dataclass(frozen=True, slots=True)
class Page:
    """One response's objects; `warnings` only on the first page; `next_token` if more remain."""

    values: list[dict[str, Any]]
    warnings: tuple[str, ...]
    next_token: str | None


@dataclass(slots=True)
class ExoCursors:
    _open: OrderedDict[str, _Cursor] = field(default_factory=OrderedDict)

    def first(self, result: CmdletResult, client_id: str) -> Page:
        """The first page of a cmdlet's output (a cursor is kept if there is more)."""
        return self._page(None, _Cursor(result, 0, client_id))

    def resume(self, token: str, client_id: str) -> Page | None:
        """The page after `token`, or None: unknown, expired, or another app's cursor."""
        cursor = self._open.get(token)
        if cursor is None or cursor.client_id != client_id:
            return None
        return self._page(token, cursor)

    def _page(self, old_token: str | None, cursor: _Cursor) -> Page:
        items = cursor.result.items
        end = min(len(items), cursor.position + EXO_PAGE)
        values = [cursor.result.render(x) for x in items[cursor.position : end]]
        cursor.position = end
        if old_token:
            self._open.pop(old_token, None)
        token = None
        if end < len(items):
            token = secrets.token_urlsafe(24)
            self._open[token] = cursor
            while len(self._open) > CACHE:
                self._open.popitem(last=False)
        warnings = cursor.result.warnings if old_token is None else ()
        return Page(values, warnings, token)
