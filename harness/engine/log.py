"""The provisioning log: one JSON line per object per cycle, in Microsoft Graph's own
`provisioningObjectSummary` shape (what `GET /auditLogs/provisioning` returns; microsoft-facts
§8.3): activityDateTime, id, changeId, cycleId, jobId, durationInMilliseconds, initiatedBy,
provisioningAction (update, other), provisioningStatusInfo {status (success, failure, skipped,
warning), errorInformation}, sourceIdentity, targetIdentity, sourceSystem, targetSystem,
servicePrincipal, modifiedProperties [{displayName, oldValue, newValue}], provisioningSteps
[{name, description, details, provisioningStepType, status}] and tenantId.

Graph's enum values are lower camel case in the record; the accessors at the end ("reading a
record") give them in the portal's spelling (Success, Failure, Update, Import), the spelling of
the engine's `Entry`, its cycle counters and scenario expectations. Every reader goes through
them, so the record's shape lives in this module. The raw LDAP result code of a failure is kept
in the failing step's `details.LdapResultCode` (`error_code`); the prose reason of a skip in the
deciding step's `details.SkipReason`/`Reason` (`reason`).
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
import uuid
from array import array
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

from harness.core import clock

# (name, provisioningStepType) of the four steps, as provisionOnDemand reports them for the
# EXO-to-AD writeback job (the matching step is named EntryImport there too).
STEPS = (
    ("EntryImport", "import"),
    ("EntryImport", "matching"),
    ("EntrySynchronizationScoping", "scoping"),
    ("EntryExportUpdate", "export"),
)
# The step a skip decided without one of the four (an escrow given up): microsoft-facts §8.2
# names the skip step of provisionOnDemand EntrySynchronizationSkip.
SKIP_STEP = ("EntrySynchronizationSkip", "processing")
_NS = uuid.UUID("0d6f5c55-3a52-4f0e-9f3e-6b8a1c7d2e90")  # exwb's: record ids are derived
# As Graph's documented examples name the provisioning service (initiatedBy of a scheduled
# cycle); the portal now says "Microsoft Entra", the log's examples were not updated.
SERVICE = "Azure AD Provisioning Service"
SOURCE_SYSTEM = "Microsoft Entra ID"
TARGET_SYSTEM = "Active Directory"
# Graph's errorCode names the provisioning logs use (microsoft-facts §8.3), for the LDAP result
# codes they fit; any other code is named by its LDAP result (an exwb assumption: the real
# service's names for them are not documented).
_ERROR_NAMES = {
    32: "InvalidAnchor",  # noSuchObject: the matched object no longer exists
    49: "InsufficientRights",
    50: "InsufficientRights",
    51: "Timeout",  # busy
    52: "Timeout",  # unavailable
    80: "InternalError",
}
_LDAP_NAMES = {
    19: "ConstraintViolation",
    20: "AttributeOrValueExists",
    21: "InvalidAttributeSyntax",
    53: "UnwillingToPerform",
    65: "ObjectClassViolation",
}
_RECOMMENDED = {
    "InsufficientRights": "Grant the writeback account write access to the attribute on the "
    "object or its OU (the gMSA's permissions), then retry.",
    "InvalidAnchor": "The matched AD object no longer exists: restore it or rematch the user.",
    "DuplicateTargetEntries": "More than one AD object holds the anchor: remove the duplicate.",
}


def error_name(code: int | None) -> str:
    """The errorCode a failure with LDAP result `code` (0: the engine's own) is logged with."""
    if code is None or code == 0:
        return "ExportFailed"
    return _ERROR_NAMES.get(code) or _LDAP_NAMES.get(code) or f"LdapResult{code}"


def _graph(value: str) -> str:
    """The portal's spelling of an enum value as Graph writes it: Success -> success."""
    known = _GRAPH.get(value)
    return known if known is not None else value[:1].lower() + value[1:]


_GRAPH = {
    v: v[:1].lower() + v[1:]
    for v in ("Success", "Failure", "Skipped", "Warning", "Update", "Other")
}


@lru_cache(maxsize=64)
def _uuid5(name: str) -> str:
    """str(uuid.uuid5(_NS, name)) without the UUID object (one per record, 200,000 a cycle)."""
    h = bytearray(hashlib.sha1(_NS.bytes + name.encode("utf-8")).digest()[:16])
    h[6] = (h[6] & 0x0F) | 0x50  # version 5
    h[8] = (h[8] & 0x3F) | 0x80  # RFC 4122 variant
    x = h.hex()
    return f"{x[:8]}-{x[8:12]}-{x[12:16]}-{x[16:20]}-{x[20:]}"


def shared(cycle_id: str, ctx: LogContext) -> dict[str, Any]:
    """The fields every record of one cycle (or on-demand run) has in common."""
    return {
        "tenantId": ctx.tenant_id,
        "jobId": ctx.job_id,
        "cycleId": cycle_id,
        "servicePrincipal": {
            "id": ctx.service_principal_id,
            "displayName": ctx.service_principal_name,
        },
        "sourceSystem": {
            "id": _uuid5(SOURCE_SYSTEM),
            "displayName": SOURCE_SYSTEM,
            "details": {},
        },
        "targetSystem": {
            "id": _uuid5(f"{TARGET_SYSTEM}/{ctx.service_principal_name}"),
            "displayName": TARGET_SYSTEM,
            "details": {
                "ServicePrincipalId": ctx.service_principal_id,
                "ServicePrincipalDisplayName": ctx.service_principal_name,
            },
        },
        "initiatedBy": {
            "id": ctx.initiator_id,
            "displayName": ctx.initiator_name,
            "initiatorType": ctx.initiator_type,
        },
    }


def _portal(value: str) -> str:
    return value[:1].upper() + value[1:]


def _values(values: list[str]) -> str | None:
    # modifiedProperty's oldValue and newValue are strings: a JSON array in text, the shape of
    # Graph's directory audit records (an assumption: how this job writes them is not
    # published); None when the attribute had no value.
    # json.dumps(values, ensure_ascii=False), without its per-call set-up (two per record).
    return "[" + ",".join(map(_quoted, values)) + "]" if values else None


def _unvalues(text: Any) -> list[str]:
    if text is None or text == "":
        return []
    if isinstance(text, list):
        return [str(v) for v in text]
    try:
        out = json.loads(text)
    except ValueError:
        return [str(text)]
    return [str(v) for v in out] if isinstance(out, list) else [str(out)]


_quoted = json.encoder.encode_basestring  # a str as a JSON string, non-ASCII kept


@dataclass(frozen=True, slots=True)
class LogContext:
    """What every record of one cycle (or on-demand run) shares: which job, tenant and service
    principal wrote it, and who started the run (Graph's initiator)."""

    job_id: str = ""
    tenant_id: str = ""
    service_principal_id: str = ""
    service_principal_name: str = ""
    initiator_type: str = "system"  # user, application, system
    initiator_id: str = ""
    initiator_name: str = SERVICE

    @staticmethod
    def tenant_of(token_url: str) -> str:
        """The tenant in a token endpoint's path (`https://host/<tenant>/oauth2/v2.0/token`)."""
        parts = [p for p in urlsplit(token_url).path.split("/") if p]
        return parts[0] if parts and parts[0] != "oauth2" else ""


@dataclass(slots=True)
class Entry:
    """One object's outcome as the cycle builds it: its status and action in the portal's
    spelling (Success, Update), as the cycle counts them, converted to Graph's by `record`."""

    source_id: str
    action: str = "Other"
    status: str = "Success"
    target_dn: str | None = None
    modified: list[dict[str, Any]] = field(default_factory=list)
    steps: list[dict[str, Any]] = field(default_factory=list)
    error_code: int | None = None  # the LDAP result code (0: the engine's own refusal)
    error_name: str | None = None  # Graph's errorCode when `error_code` does not say it
    reason: str = ""
    skip_reason: str | None = None  # the SkipReason token of a skip (NotInScope, ...)
    source_name: str = ""  # the user's display name or UPN, when the source gave one
    started: float = field(default_factory=time.perf_counter)

    def step(self, index: int, status: str, description: str) -> None:
        """Step `index` of STEPS finished with `status` (Success, Failure, Skipped); kept in
        Graph's spelling, as `record` writes it."""
        name, kind = STEPS[index]
        self.steps.append(
            {
                "name": name,
                "provisioningStepType": kind,
                "status": _graph(status),
                "description": description,
                "details": {},
            }
        )

    def record(self, cycle_id: str, index: int, ctx: LogContext | None = None) -> dict[str, Any]:
        """The entry as one provisioningObjectSummary; `index` (its place in the cycle's log)
        makes the derived ids unique when one object is logged twice in a cycle."""
        return {**self.own(cycle_id, index), **shared(cycle_id, ctx or LogContext())}

    def own(self, cycle_id: str, index: int) -> dict[str, Any]:
        """The fields that differ from record to record (`shared` has the others)."""
        change = _uuid5(f"{cycle_id}/{self.source_id}/{index}")
        status = _graph(self.status)
        return {
            "id": change,
            "activityDateTime": clock.now_iso(),
            "changeId": change,
            "provisioningAction": _graph(self.action),
            "durationInMilliseconds": int((time.perf_counter() - self.started) * 1000),
            "provisioningStatusInfo": {
                "status": status,
                "errorInformation": self._error() if status == "failure" else None,
            },
            "provisioningSteps": self._steps(),
            "modifiedProperties": [
                {
                    "displayName": m["displayName"],
                    "oldValue": _values(m["oldValue"]),
                    "newValue": _values(m["newValue"]),
                }
                for m in self.modified
            ],
            "sourceIdentity": {
                "id": self.source_id,
                "displayName": self.source_name,
                "identityType": "User",
                "details": {},
            },
            "targetIdentity": {
                "id": self.target_dn or "",
                "displayName": _rdn_value(self.target_dn),
                "identityType": "user",
                "details": {"DistinguishedName": self.target_dn} if self.target_dn else {},
            },
        }

    def _error(self) -> dict[str, Any]:
        name = self.error_name or error_name(self.error_code)
        code = self.error_code
        return {
            "errorCode": name,
            "reason": self.reason,
            "errorCategory": "nonServiceFailure" if code else "failure",
            "additionalDetails": f"LDAP result code {code}" if code else None,
            "recommendedAction": _RECOMMENDED.get(name),
        }

    def _steps(self) -> list[dict[str, Any]]:
        # Steps are stored as written (step() gives each its empty details); only the one that
        # gets details here is copied, so the entry itself is left as the cycle built it.
        steps = list(self.steps)
        if self.status == "Skipped" and self.reason:
            if not steps:
                name, kind = SKIP_STEP
                steps.append(
                    {
                        "name": name,
                        "provisioningStepType": kind,
                        "status": "skipped",
                        "description": self.reason,
                    }
                )
            details = {"SkipReason": self.skip_reason or "", "Reason": self.reason}
            steps[-1] = {**steps[-1], "details": details}
        elif self.status == "Failure" and self.error_code is not None:
            for i in range(len(steps) - 1, -1, -1):
                if steps[i]["status"] == "failure":
                    details = {"LdapResultCode": str(self.error_code)}
                    steps[i] = {**steps[i], "details": details}
                    break
        return steps


def _rdn_value(dn: str | None) -> str:
    """`Zoë Müller` of `CN=Zoë Müller,OU=...` (an escaped comma kept)."""
    if not dn:
        return ""
    first, i = dn, 0
    while (i := dn.find(",", i)) != -1:
        if dn[i - 1] != "\\":
            first = dn[:i]
            break
        i += 1
    return first.partition("=")[2].replace("\\,", ",")


def open_next(folder: Path, kind: str) -> tuple[Path, IO[str]]:
    """Create `<folder>/<kind>-<n>.jsonl` with n one above the highest of that kind there.

    The number counts log files, not cycles: a cycle retried after a crash (its state unsaved,
    its log a record of writes that reached AD) gets the next number instead of overwriting, so
    the names sort in the order the logs were written.

    The folder is listed once per process (a served job writes a log every cycle, thousands
    over a month, so listing it each time made every cycle slower than the last); after that
    the process remembers the last number it created and probes upward with an exclusive
    create, which steps past the logs another process (`exwb cycle` on the same state folder)
    or a crashed cycle wrote meanwhile. If the remembered log is gone (the folder was emptied)
    the folder is listed again.
    """
    key = (str(folder.absolute()), kind)
    prefix = f"{kind}-"
    with _last_lock:
        last = _last.get(key)
        if last is None or not (folder / f"{prefix}{last:06d}.jsonl").exists():
            folder.mkdir(parents=True, exist_ok=True)
            last = _highest(folder, prefix)
        n = last + 1
        while True:
            path = folder / f"{prefix}{n:06d}.jsonl"
            try:
                file = path.open("x", encoding="utf-8")
            except FileExistsError:  # another process (or a crashed cycle) took it
                n += 1
                continue
            _last[key] = n
            return path, file


# (absolute folder, kind) -> the number of the last log this process created there.
_last: dict[tuple[str, str], int] = {}
_last_lock = threading.Lock()


def _highest(folder: Path, prefix: str) -> int:
    """The highest n of `<prefix><n>.jsonl` in `folder` (0 if none): one listing."""
    highest = 0
    with os.scandir(folder) as it:
        for e in it:
            number = e.name.removeprefix(prefix).removesuffix(".jsonl")
            if e.name.startswith(prefix) and e.name.endswith(".jsonl") and number.isdigit():
                highest = max(highest, int(number))
    return highest


class ProvisioningLog:
    """Appends the entries of one cycle (or on-demand run) to `<state_dir>/logs/<kind>-<n>.jsonl`
    (`open_next` numbers it); `context` says which job wrote them (cycle.py derives it)."""

    def __init__(
        self,
        state_dir: Path,
        cycle_id: str,
        kind: str = "cycle",
        context: LogContext | None = None,
    ) -> None:
        self.path, self._file = open_next(state_dir / "logs", kind)
        self.cycle_id = cycle_id
        self.context = context or LogContext()
        self._written = 0
        # What every record of this log shares, encoded once: `write` joins it to each
        # record's own fields (the JSON encoder was most of a record's cost).
        self._shared = json.dumps(shared(cycle_id, self.context), ensure_ascii=False)[1:]

    def write(self, e: Entry) -> None:
        own = json.dumps(e.own(self.cycle_id, self._written), ensure_ascii=False)
        self._written += 1
        self._file.write(own[:-1] + ", " + self._shared + "\n")

    def close(self) -> None:
        self._file.close()


# --- reading the files ---


class LogError(ValueError):
    """A log line that is not a provisioning record; the message names file:line."""


KINDS = ("cycle", "ondemand")  # the writeback's logs (forward-*.jsonl is another log)


def log_files(state_dir: Path) -> list[Path]:
    """The writeback's log files of a state directory, oldest first (`timed_files`)."""
    return [p for _, p in timed_files(state_dir)]


def timed_files(state_dir: Path) -> list[tuple[str, Path]]:
    """(time of the first record, file) of the writeback's logs in `state_dir`, oldest first:
    by that time (cycles and on-demand runs interleave), then by name."""
    folder = state_dir / "logs"
    found = [p for kind in KINDS for p in folder.glob(f"{kind}-*.jsonl")]
    return sorted(((first_time(p), p) for p in found), key=lambda tp: (tp[0], tp[1].name))


def first_time(path: Path) -> str:
    """The activityDateTime of a log file's first record ("" for an empty or unreadable one)."""
    with path.open("rb") as f:
        line = f.readline()
    try:
        rec = json.loads(line)
    except ValueError:
        return ""
    return str(rec.get("activityDateTime") or "") if isinstance(rec, dict) else ""


def read(path: Path) -> Iterator[dict[str, Any]]:
    """The records of one log file in the order written; raises LogError naming file:line at a
    line that is not a JSON object. A last line without its newline (a cycle still writing) is
    left out."""
    with path.open("rb") as f:
        for number, raw in enumerate(f, 1):
            if not raw.endswith(b"\n"):
                return
            yield parse(raw, path, number)


def parse(raw: bytes, path: Path, number: int) -> dict[str, Any]:
    """One line of a log file as its record; LogError names `path:number` otherwise."""
    try:
        rec = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as e:
        raise LogError(f"{path}:{number}: not a JSON provisioning record ({e})") from None
    if not isinstance(rec, dict) or "provisioningStatusInfo" not in rec:
        raise LogError(
            f"{path}:{number}: not a provisioningObjectSummary (no provisioningStatusInfo)"
        )
    return rec


@dataclass(slots=True)
class LineIndex:
    """Where a log file's complete lines start; `extend` reads only what was appended since
    (log files only grow), so a reader paging through a file scans it once."""

    scanned: int = 0  # bytes read so far, up to the end of the last complete line
    offsets: array[int] = field(default_factory=lambda: array("q"))

    def extend(self, path: Path) -> LineIndex:
        with path.open("rb") as f:
            if os.fstat(f.fileno()).st_size < self.scanned:  # replaced, not grown: start over
                self.scanned, self.offsets = 0, array("q")
            f.seek(self.scanned)
            for raw in f:
                if not raw.endswith(b"\n"):
                    break
                self.offsets.append(self.scanned)
                self.scanned += len(raw)
        return self


def read_newest_first(
    path: Path, before: int | None = None, index: LineIndex | None = None
) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, record) of one file, newest first, holding only the lines' offsets;
    `before`: only the lines above that number (a page resuming inside the file); `index`: the
    file's LineIndex from an earlier read, brought up to date."""
    offsets = (index or LineIndex()).extend(path).offsets
    last = len(offsets) if before is None else min(len(offsets), before - 1)
    with path.open("rb") as f:
        for number in range(last, 0, -1):
            f.seek(offsets[number - 1])
            yield number, parse(f.readline(), path, number)


# --- reading a record: readers go through these, so the record's shape lives here ---
# Enum values come back in the portal's spelling (Success, Update, Import), as Entry holds them.


def status(rec: dict[str, Any]) -> str:
    """Success, Failure, Skipped or Warning."""
    return _portal(str(rec["provisioningStatusInfo"]["status"]))


def action(rec: dict[str, Any]) -> str:
    """Update or Other (Graph's provisioningAction: create, update, delete, ...)."""
    return _portal(str(rec["provisioningAction"]))


def source_id(rec: dict[str, Any]) -> str:
    return str(rec["sourceIdentity"]["id"])


def target_dn(rec: dict[str, Any]) -> str | None:
    """The matched AD object's DN, None when nothing matched."""
    return rec["targetIdentity"]["id"] or None


def error_info(rec: dict[str, Any]) -> dict[str, Any] | None:
    """Graph's provisioningErrorInfo of a failure: errorCode, reason, errorCategory, ..."""
    info = rec["provisioningStatusInfo"].get("errorInformation")
    return dict(info) if info else None


def error_code(rec: dict[str, Any]) -> int | None:
    """The LDAP result code of a failure (0: the engine's own refusal), None otherwise."""
    for s in rec.get("provisioningSteps") or []:
        code = (s.get("details") or {}).get("LdapResultCode")
        if code is not None:
            return int(code)
    return None


def reason(rec: dict[str, Any]) -> str:
    """Why it failed (AD's diagnostic) or was skipped; "" for a success."""
    info = rec["provisioningStatusInfo"].get("errorInformation")
    if info:
        return str(info.get("reason") or "")
    for s in reversed(rec.get("provisioningSteps") or []):
        why = (s.get("details") or {}).get("Reason")
        if why is not None:
            return str(why)
    return ""


def skip_reason(rec: dict[str, Any]) -> str | None:
    """The SkipReason token of a skip (NotInScope, ...), None when nothing gave one."""
    for s in reversed(rec.get("provisioningSteps") or []):
        token = (s.get("details") or {}).get("SkipReason")
        if token:
            return str(token)
    return None


def modified(rec: dict[str, Any]) -> list[dict[str, Any]]:
    """[{displayName, oldValue, newValue}] with the values as lists, as AD held them."""
    return [
        {
            "displayName": m["displayName"],
            "oldValue": _unvalues(m.get("oldValue")),
            "newValue": _unvalues(m.get("newValue")),
        }
        for m in rec.get("modifiedProperties") or []
    ]


def steps(rec: dict[str, Any]) -> list[dict[str, Any]]:
    """[{name, provisioningStepType, status, description, details}], the step type and status
    in the portal's spelling (Import, Success)."""
    return [
        {
            **s,
            "provisioningStepType": _portal(str(s["provisioningStepType"])),
            "status": _portal(str(s["status"])),
        }
        for s in rec.get("provisioningSteps") or []
    ]
