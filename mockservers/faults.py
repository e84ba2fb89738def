"""A fault plan both fake servers obey: named faults, armed and cleared while they serve.

State only: the LDAP server (`mockservers/directory/server.py`) and the HTTP server
(`mockservers/cloud/server.py`) ask the plan about each request (`FaultPlan.take`) and do on the
wire what the fault says. One plan serves one running tenant; tests and scenario steps arm it
from any thread (a lock guards it), the servers read it on the reactor thread.

A fault has a trigger over the requests it applies to (`on`: one operation, or `any`):
the first `after` of them pass, then every `every`-th one is hit, `count` times in all (None:
until cleared). Each fault counts every matching request; when two are due on the same request,
the one armed first is injected and the other on the next matching request.

| server | kind | on the wire |
|---|---|---|
| ldap | busy | result 51 with AD's diagnostic; the request is not performed |
| ldap | unavailable | result 52 with AD's diagnostic; the request is not performed |
| ldap | drop | the connection closes without an answer; the request is not performed |
| ldap | slow | the request is performed and answered `seconds` later (later requests wait) |
| http | throttle | 429 TooManyRequests, `Retry-After: retry_after`, Graph's error body |
| http | unavailable | 503 serviceNotAvailable, `Retry-After: retry_after`, Graph's error body |
| http | reset | the connection is reset (TCP RST) without a response |
| http | expire_delta | a delta request with a $deltatoken answers 410 resyncRequired |
| http | truncated | the full response's headers (Content-Length included), half its body, close |

`parse_fault` reads the command line's form of a spec (`exwb serve --fault SPEC`).
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

SERVERS = ("ldap", "http")
KINDS: dict[str, tuple[str, ...]] = {
    "ldap": ("busy", "unavailable", "drop", "slow"),
    "http": ("throttle", "unavailable", "reset", "expire_delta", "truncated"),
}
ANY = "any"
# Operations a fault may target. HTTP: `token` is the OAuth2 token endpoint (only hit when a
# fault names it: `any` leaves it alone, so clients can always authenticate), `users` list and
# get, `delta` the delta feed, `invoke` the EXO admin API, `dirsync` Connect's export.
OPERATIONS: dict[str, tuple[str, ...]] = {
    "ldap": ("bind", "search", "modify", "add", "delete", "moddn", "compare", "extended"),
    "http": ("token", "users", "delta", "invoke", "dirsync"),
}
CLEAR_ALL = "all"
MAX_SECONDS = 60.0  # a longer delay or Retry-After only makes a test hang
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9._-]{0,63}")


class FaultError(ValueError):
    """An invalid fault; `key` names the offending parameter, `hint` how to fix it."""

    def __init__(self, key: str, message: str, hint: str = "") -> None:
        super().__init__(message + (f" (hint: {hint})" if hint else ""))
        self.key = key
        self.message = message
        self.hint = hint


@dataclass(frozen=True, slots=True)
class FaultSpec:
    """What to arm: the fault, what it targets and its trigger (see the module docstring)."""

    server: str
    kind: str
    on: str = ANY
    after: int = 0
    count: int | None = 1  # None: until cleared
    every: int = 1
    seconds: float | None = None  # slow: the delay
    retry_after: int | None = None  # throttle, http unavailable: Retry-After (default 1)
    name: str | None = None

    def checked(self) -> FaultSpec:
        """This spec with defaults filled in; raises FaultError when it makes no sense."""
        if self.server not in SERVERS:
            raise FaultError("server", f"unknown server {self.server!r}", "ldap or http")
        kinds = KINDS[self.server]
        if self.kind not in kinds:
            other = next((s for s in SERVERS if self.kind in KINDS[s]), None)
            hint = f"{self.kind} is an {other} fault" if other else f"one of {', '.join(kinds)}"
            if other:
                hint += f"; {self.server} has {', '.join(kinds)}"
            raise FaultError("kind", f"unknown {self.server} fault {self.kind!r}", hint)
        on = self.on
        ops = OPERATIONS[self.server]
        if on != ANY and on not in ops:
            raise FaultError(
                "on", f"unknown {self.server} operation {on!r}", f"{ANY} or one of {', '.join(ops)}"
            )
        if self.kind == "expire_delta":
            if on not in (ANY, "delta"):
                raise FaultError("on", "expire_delta applies to delta requests only")
            on = "delta"
        for key, value, low in (("after", self.after, 0), ("every", self.every, 1)):
            if not _whole(value) or value < low:
                raise FaultError(key, f"{key} must be a whole number of at least {low}")
        if self.count is not None and (not _whole(self.count) or self.count < 1):
            raise FaultError("count", "count must be a whole number of at least 1", "or unlimited")
        seconds = self.seconds
        if self.kind == "slow":
            if seconds is None or not _number(seconds) or not 0 < seconds <= MAX_SECONDS:
                raise FaultError(
                    "seconds", f"slow needs seconds, above 0 and at most {MAX_SECONDS:g}"
                )
        elif seconds is not None:
            raise FaultError("seconds", "seconds is the delay of a slow fault only")
        retry_after = self.retry_after
        if self.kind in ("throttle", "unavailable") and self.server == "http":
            retry_after = 1 if retry_after is None else retry_after
            if not _whole(retry_after) or not 0 <= retry_after <= MAX_SECONDS:
                raise FaultError(
                    "retry_after", f"retry_after must be whole seconds, 0 to {MAX_SECONDS:g}"
                )
        elif retry_after is not None:
            raise FaultError("retry_after", "retry_after applies to http throttle and unavailable")
        if self.name is not None and not _NAME.fullmatch(str(self.name)):
            raise FaultError(
                "name", f"fault name {self.name!r} is not a name", "letters, digits, . _ -"
            )
        if self.name == CLEAR_ALL or self.name in SERVERS:
            raise FaultError("name", f"{self.name!r} is reserved for clear")
        return FaultSpec(
            self.server,
            self.kind,
            on,
            self.after,
            self.count,
            self.every,
            seconds,
            retry_after,
            self.name,
        )

    def describe(self) -> str:
        """E.g. 'ldap busy on modify after 10, 5 times'."""
        text = f"{self.server} {self.kind}"
        if self.kind == "slow":
            text += f" ({self.seconds:g} s)"
        if self.retry_after is not None:
            text += f" (Retry-After {self.retry_after} s)"
        text += f" on {'every operation' if self.on == ANY else self.on}"
        if self.after:
            text += f" after {self.after}"
        if self.every > 1:
            text += f", every {self.every}th"
        if self.count is None:
            return text + ", until cleared"
        return text + (", once" if self.count == 1 else f", {self.count} times")


_INTS = ("after", "count", "every", "retry_after")


def parse_fault(text: str) -> FaultSpec:
    """`server:kind[:key=value,...]` (e.g. ``ldap:busy:on=modify,after=10,count=5`` or
    ``http:throttle:retry_after=2,count=unlimited``) as a checked FaultSpec; raises FaultError."""
    parts = text.split(":", 2)
    if len(parts) < 2 or not all(parts[:2]):
        raise FaultError("", f"{text!r} is not a fault", "server:kind[:key=value,...]")
    options: dict[str, Any] = {}
    for item in parts[2].split(",") if len(parts) == 3 and parts[2] else ():
        key, eq, value = item.partition("=")
        key = key.strip()
        if not eq or not key:
            raise FaultError(key, f"{item!r} in {text!r} is not key=value")
        if key not in FaultSpec.__dataclass_fields__ or key in ("server", "kind"):
            known = ", ".join(
                k for k in FaultSpec.__dataclass_fields__ if k not in ("server", "kind")
            )
            raise FaultError(key, f"unknown fault option {key!r}", f"one of {', '.join(known)}")
        try:
            if key == "count" and value == "unlimited":
                options[key] = None
            elif key in _INTS:
                options[key] = int(value)
            elif key == "seconds":
                options[key] = float(value)
            else:
                options[key] = value
        except ValueError:
            raise FaultError(key, f"{key}={value!r} is not a number") from None
    return FaultSpec(parts[0], parts[1], **options).checked()


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


@dataclass(slots=True)
class Fault:
    """An armed fault and what it did so far."""

    name: str
    spec: FaultSpec
    seen: int = 0  # matching requests since it was armed
    owed: int = 0  # due, not yet injected (another fault took the request)
    injected: int = 0

    @property
    def spent(self) -> bool:
        return self.spec.count is not None and self.injected >= self.spec.count

    @property
    def server(self) -> str:
        return self.spec.server

    @property
    def kind(self) -> str:
        return self.spec.kind

    @property
    def seconds(self) -> float:
        """The delay (slow) or Retry-After (throttle, unavailable) in seconds."""
        return float(self.spec.seconds or self.spec.retry_after or 0)

    def as_dict(self) -> dict[str, Any]:
        out = {"name": self.name, **asdict(self.spec), "seen": self.seen}
        return out | {"injected": self.injected, "spent": self.spent}


@dataclass(slots=True)
class FaultPlan:
    """The faults armed on one tenant's servers, and counts of what was injected.

    `ldap_armed` and `http_armed` are plain flags the servers read before anything else, so a
    request costs one attribute read while nothing is armed.
    """

    ldap_armed: bool = False
    http_armed: bool = False
    _faults: dict[str, Fault] = field(default_factory=dict)  # armed, in arming order
    _counts: Counter[tuple[str, str, str]] = field(default_factory=Counter)  # server, kind, op
    _serial: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def arm(self, server: str, kind: str, **options: Any) -> Fault:
        """Arm a fault (options as `FaultSpec`'s); raises FaultError."""
        try:
            spec = FaultSpec(server, kind, **options)
        except TypeError as e:
            raise FaultError("", f"unknown fault option: {e}") from None
        return self.arm_spec(spec)

    def arm_spec(self, spec: FaultSpec) -> Fault:
        spec = spec.checked()
        with self._lock:
            name = spec.name
            if name is None:
                self._serial += 1
                name = f"{spec.server}.{spec.kind}.{self._serial}"
            elif name in self._faults:
                raise FaultError("name", f"a fault named {name!r} is already armed", "clear it")
            fault = self._faults[name] = Fault(name, spec)
            self._refresh()
        return fault

    def clear(self, what: str = CLEAR_ALL) -> list[Fault]:
        """Disarm every fault (`all`), a server's (`ldap`, `http`) or one by name; returns them.

        Counts of what was injected stay."""
        with self._lock:
            gone = [
                f
                for f in self._faults.values()
                if what in (CLEAR_ALL, f.name) or (what in SERVERS and f.server == what)
            ]
            for f in gone:
                del self._faults[f.name]
            self._refresh()
        return gone

    def take(self, server: str, op: str, *, delta_token: bool = False) -> Fault | None:
        """The fault to inject into this request, or None; counts it as injected.

        `op` is one of OPERATIONS[server]; `delta_token` marks a delta request that resumes
        from a $deltatoken (the only kind expire_delta applies to)."""
        with self._lock:
            chosen: Fault | None = None
            for f in self._faults.values():
                spec = f.spec
                if spec.server != server or f.spent:
                    continue
                if spec.on != op and (spec.on != ANY or op == "token"):
                    continue
                if spec.kind == "expire_delta" and not delta_token:
                    continue
                f.seen += 1
                n = f.seen - spec.after
                if n > 0 and n % spec.every == 0:
                    f.owed += 1
                if chosen is None and f.owed:
                    chosen = f
            if chosen is None:
                return None
            chosen.owed -= 1
            chosen.injected += 1
            self._counts[(server, chosen.kind, op)] += 1
            if chosen.spent:
                del self._faults[chosen.name]
                self._refresh()
            return chosen

    def _refresh(self) -> None:
        self.ldap_armed = any(f.server == "ldap" for f in self._faults.values())
        self.http_armed = any(f.server == "http" for f in self._faults.values())

    # --- reading ---

    def armed(self) -> list[dict[str, Any]]:
        """The faults still armed (spent ones are disarmed), as plain data."""
        with self._lock:
            return [f.as_dict() for f in self._faults.values()]

    def injected(self) -> dict[str, int]:
        """What was injected so far, by fault: {"ldap.busy": 5, "http.throttle": 2}."""
        with self._lock:
            out: Counter[str] = Counter()
            for (server, kind, _op), n in self._counts.items():
                out[f"{server}.{kind}"] += n
            return dict(sorted(out.items()))

    def injected_by_operation(self) -> dict[str, int]:
        """What was injected so far, by fault and operation: {"ldap.busy.modify": 5}."""
        with self._lock:
            return {f"{s}.{k}.{op}": n for (s, k, op), n in sorted(self._counts.items())}


def since(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    """Injections between two `FaultPlan.injected()` readings."""
    return {k: n - before.get(k, 0) for k, n in after.items() if n > before.get(k, 0)}
