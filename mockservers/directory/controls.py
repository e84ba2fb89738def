"""A request's controls as ldaptor hands them over: (controlType, criticality, controlValue)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = ["find", "has"]


def find(controls: Iterable[Any] | None, oid: str) -> tuple[bool, bytes | None] | None:
    """(criticality, value as bytes or None) of the first control `oid` among `controls`, or
    None when the request carries none."""
    for name, critical, value in controls or ():
        text = name.decode("utf-8", "replace") if isinstance(name, bytes) else name
        if text == oid:
            raw = value.encode("utf-8") if isinstance(value, str) else value
            return bool(critical), raw
    return None


def has(controls: Iterable[Any] | None, oid: str) -> bool:
    """Whether the request carries control `oid`, critical or not."""
    return find(controls, oid) is not None
