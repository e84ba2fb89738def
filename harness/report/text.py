"""Shared helpers of the report writers: cleaning text, formatting figures, counting outcomes.

`figure` is the one number formatter of the reports, the console and `exwb bench`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from harness.report.model import ScenarioResult

# XML 1.0 allows only these characters (https://www.w3.org/TR/xml/#charsets); anything else, even
# escaped as a character reference, makes the whole document unreadable to a CI system's parser.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
# C0/C1 controls but tab and newline: on a terminal they move the cursor or start escape sequences.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def xml_safe(text: str) -> str:
    """`text` without the characters XML 1.0 forbids; CR LF and CR become LF, as a parser would."""
    return _NOT_XML.sub("", text).replace("\r\n", "\n").replace("\r", "\n")


def printable(text: str) -> str:
    """`text` for a terminal: control characters shown as escapes instead of acting on it."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", unicode_safe(text))


def unicode_safe(text: str) -> str:
    """`text` encodable as UTF-8: lone surrogates (from undecodable file names) become escapes."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def jsonable(value: Any) -> Any:
    """A copy of `value` that json.dumps writes as strict, UTF-8-encodable JSON.

    Paths and other objects become strings, tuples lists, and NaN or infinities null: Python's
    json would write `NaN`, which jq, JavaScript and most CI tools refuse.
    """
    if isinstance(value, dict):
        return {unicode_safe(str(k)): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, str):
        return unicode_safe(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, bool | int | float):
        return value
    return unicode_safe(str(value))


def figure(value: object, digits: int = 2, *, fixed: bool = False) -> str:
    """A measured figure for people: thousands separators, '-' for none, at most `digits`
    decimals with trailing zeros dropped. `fixed` is for a column of measurements (exwb bench):
    exactly `digits` decimals, none from 1,000 up. Below 0.1 a figure keeps three decimals, so a
    cycle timed to the millisecond does not read as 0."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        if fixed and abs(value) >= 1000:
            digits = 0
        elif 0 < abs(value) < 0.1:
            digits = max(digits, 3)
        text = f"{value:,.{digits}f}"
        return text if fixed or "." not in text else text.rstrip("0").rstrip(".")
    return str(value)


def plural(n: int, noun: str, nouns: str | None = None) -> str:
    """'1 object', '2 objects', '10,000 objects'; `nouns` when the plural is not noun + s."""
    return f"{figure(n)} {noun if n == 1 else nouns or noun + 's'}"


def first_line(text: str, limit: int = 300) -> str:
    """The first line of `text`, shortened to `limit` characters (for one-line messages)."""
    line = text.strip().split("\n", 1)[0].strip()
    return line if len(line) <= limit else line[: limit - 1] + "…"


@dataclass(frozen=True, slots=True)
class Tally:
    """How a run's expectations and thresholds came out."""

    expectations_met: int
    expectations_failed: int
    thresholds_held: int
    thresholds_exceeded: int


def tally(result: ScenarioResult) -> Tally:
    expectations = result.get("expectations") or []
    thresholds = result.get("thresholds") or []
    met = sum(1 for e in expectations if e.get("passed"))
    held = sum(1 for t in thresholds if t.get("passed"))
    return Tally(met, len(expectations) - met, held, len(thresholds) - held)


def verdict(result: ScenarioResult) -> str:
    """PASSED, FAILED or ERROR; an unknown or missing verdict reads as ERROR, never as a pass."""
    value = str(result.get("verdict") or "error").lower()
    return value.upper() if value in ("passed", "failed") else "ERROR"


def cycle_statuses(statuses: Mapping[str, int] | None) -> tuple[int, int, int]:
    """(Success, Failure, Skipped) of a cycle report's statuses."""
    statuses = statuses or {}
    return (
        int(statuses.get("Success", 0)),
        int(statuses.get("Failure", 0)),
        int(statuses.get("Skipped", 0)),
    )
