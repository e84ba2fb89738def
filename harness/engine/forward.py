"""The forward-sync model: Entra Connect Sync, AD -> cloud, as a cycle of its own.

One cycle: **Import AD** (one paged LDAP read of every user with a source anchor, bound as a
read-only account, as Connect's AD DS connector account only reads), **Import cloud** (a full
Graph delta round as Connect's sync account), **Join** by source anchor (base64 of
mS-DS-ConsistencyGuid = onPremisesImmutableId), **Export** what differs, in batches, to the
sync service that stands in for Connect's private one (`mockservers/cloud/dirsync.py`), and one
log line per exported object.

What is exported (docs/microsoft-facts.md §1.1, §1.4): identity attributes (displayName,
userPrincipalName) of every synced user; Exchange attributes (the writeback set read backwards, plus
msExchHideFromAddressLists) only of mailboxes that are not cloud-managed, since a Connect build
of 2.5.190.0 or later honours IsExchangeCloudManaged. An older build pushes them for
cloud-managed mailboxes too and so reverts edits made in Exchange Online. Only attributes whose
values differ are sent, so a second cycle exports nothing.

Not modelled: Connect's delta import (every cycle reads both sides in full, like its Initial
policy), creating cloud objects for new AD users, deleting cloud objects whose AD user is gone,
the export-deletion threshold and staging mode.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from harness.core import clock
from harness.core.endpoints import Endpoints
from harness.engine.log import open_next
from harness.engine.source import SELECT, CloudCredentials, GraphSource
from harness.engine.target import LdapCredentials, LdapError, LdapTarget
from harness.tenant import recipients as rt
from harness.tenant.model import (
    CUSTOM_ATTRIBUTE_COUNT,
    EXTENSION_CUSTOM_ATTRIBUTE_COUNT,
)

DEFAULT_BUILD = "2.5.190.0"
SOA_AWARE_BUILD = (2, 5, 190, 0)  # the first build that honours IsExchangeCloudManaged
EXPORT_BATCH = 100  # objects per call: the most the sync service takes
PAGE_SIZE = 1000
FORWARD_SELECT = f"{SELECT},displayName,userPrincipalName"
_BUILD = re.compile(r"[0-9]+(?:\.[0-9]+){1,3}")

Values = tuple[str, ...]
Json = dict[str, Any]


class ForwardError(Exception):
    """A failure that stops the cycle: AD unreadable, or the sync service answering badly."""


def parse_build(text: str) -> tuple[int, int, int, int]:
    """A Connect build ("2.5.190.0") as four integers, missing trailing parts as 0.

    Raises ValueError for anything but two to four dot-separated decimal numbers."""
    if not isinstance(text, str) or not _BUILD.fullmatch(text.strip()):
        raise ValueError(f"Connect build {text!r}: expected dotted integers such as 2.5.190.0")
    parts = [int(p) for p in text.strip().split(".")]
    a, b, c, d = parts + [0] * (4 - len(parts))
    return a, b, c, d


def honours_cloud_management(build: str) -> bool:
    """Whether this Connect build leaves Exchange attributes of cloud-managed mailboxes alone."""
    return parse_build(build) >= SOA_AWARE_BUILD


# ------------------------------------------------------------------------------ attribute flows
def _single(values: Values) -> str | None:
    return values[0] if values else None


def _cloud_single(value: Any) -> str | None:
    return value or None  # Get-Mailbox shows a cleared custom attribute as ""


def _multi(values: Values) -> list[str]:
    return list(values)


def _cloud_multi(value: Any) -> list[str]:
    return list(value or [])


def _set_key(value: Any) -> Any:
    # Multi-valued attributes are sets; the exact spelling counts (SMTP: marks the primary).
    return tuple(sorted(value))


def _same(value: Any) -> Any:
    return value


# AD's msExchRecipientTypeDetails of each Exchange Online type this tenant models.
_AD_TYPE: dict[str, int] = {
    **{name: v.type_details for name, v in rt.REMOTE_AD_VALUES.items()},
    rt.MAIL_USER: rt.ONPREM_USER_MAILBOX_TYPE_DETAILS,
}
_KNOWN_AD_TYPES = frozenset(_AD_TYPE.values())


def _ad_type(values: Values) -> str | None:
    v = _single(values)
    if v is None or not v.lstrip("-").isdigit() or int(v) not in _KNOWN_AD_TYPES:
        return None  # a type the cloud cannot represent is not exported: it would only fail
    return str(int(v))


def _cloud_type(value: Any) -> str | None:
    return str(_AD_TYPE[value]) if value in _AD_TYPE else None


def _ad_hidden(values: Values) -> bool:
    return bool(values) and values[0].upper() == "TRUE"


@dataclass(frozen=True, slots=True)
class Flow:
    """One attribute Connect exports: AD name (also the sync service's), EXO record key, and
    how each side's value becomes the exported JSON value."""

    ad: str
    exo: str
    exchange: bool
    from_ad: Callable[[Values], Any]
    from_cloud: Callable[[Any], Any]
    key: Callable[[Any], Any] = _same
    required: bool = False  # the cloud needs a value: an absent AD value is not exported

    def wanted(self, ad_values: Values, record: Json) -> tuple[Any, Any] | None:
        """(cloud value, AD value) when they differ and the AD value is exportable, else None."""
        new = self.from_ad(ad_values)
        if new is None and self.required:
            return None
        old = self.from_cloud(record.get(self.exo))
        if old is not None and new is not None and self.key(old) == self.key(new):
            return None
        return None if old is None and new is None else (old, new)


def _flows() -> tuple[Flow, ...]:
    identity = [
        Flow("displayName", "DisplayName", False, _single, _cloud_single, required=True),
        Flow(
            "userPrincipalName", "UserPrincipalName", False, _single, _cloud_single, required=True
        ),
    ]
    exchange = [
        *(
            Flow(f"extensionAttribute{i}", f"CustomAttribute{i}", True, _single, _cloud_single)
            for i in range(1, CUSTOM_ATTRIBUTE_COUNT + 1)
        ),
        *(
            Flow(
                f"msExchExtensionCustomAttribute{i}",
                f"ExtensionCustomAttribute{i}",
                True,
                _multi,
                _cloud_multi,
                _set_key,
            )
            for i in range(1, EXTENSION_CUSTOM_ATTRIBUTE_COUNT + 1)
        ),
        Flow("proxyAddresses", "EmailAddresses", True, _multi, _cloud_multi, _set_key),
        Flow("mail", "WindowsEmailAddress", True, _single, _cloud_single),
        Flow(
            "msExchRecipientTypeDetails",
            "RecipientTypeDetails",
            True,
            _ad_type,
            _cloud_type,
            required=True,
        ),
        Flow("msExchHideFromAddressLists", "HiddenFromAddressListsEnabled", True, _ad_hidden, bool),
    ]
    return (*identity, *exchange)


FLOWS = _flows()


@dataclass(slots=True)
class Pending:
    """One object to export: where it comes from and what changes."""

    anchor: str
    dn: str
    cloud_id: str
    cloud_managed: bool
    properties: dict[str, Any] = field(default_factory=dict)
    modified: list[dict[str, Any]] = field(default_factory=list)
    exchange_pushed: bool = False  # Exchange attributes of a cloud-managed mailbox among them


def plan_object(
    anchor: str, dn: str, ad: Mapping[str, Values], record: Json, honour_cloud_management: bool
) -> tuple[Pending, bool]:
    """What Connect exports for one joined user, and whether Exchange attributes differed but
    were held back because the mailbox is cloud-managed."""
    managed = bool(record.get("IsExchangeCloudManaged"))
    push_exchange = not (managed and honour_cloud_management)
    p = Pending(anchor, dn, str(record.get("id")), managed)
    withheld = False
    for flow in FLOWS:
        diff = flow.wanted(ad.get(flow.ad, ()), record)
        if diff is None:
            continue
        if flow.exchange and not push_exchange:
            withheld = True
            continue
        old, new = diff
        p.properties[flow.ad] = new
        p.modified.append({"displayName": flow.ad, "oldValue": old, "newValue": new})
        p.exchange_pushed |= flow.exchange and managed
    return p, withheld


# ------------------------------------------------------------------------------ report and log
@dataclass(slots=True)
class ForwardReport:
    cycle_id: str
    build: str
    honours_cloud_management: bool
    seconds: float = 0.0
    ad_users: int = 0
    cloud_objects: int = 0
    exported: int = 0
    unchanged: int = 0
    failed: int = 0
    skipped: Counter = field(default_factory=Counter)  # reason -> objects
    attributes: Counter = field(default_factory=Counter)  # AD attribute -> objects exported
    reverted: int = 0  # cloud-managed mailboxes whose Exchange attributes were pushed
    withheld: int = 0  # cloud-managed mailboxes whose differing Exchange attributes were kept
    log_path: Path | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "cycleId": self.cycle_id,
            "connectBuild": self.build,
            "honoursCloudManagement": self.honours_cloud_management,
            "seconds": round(self.seconds, 2),
            "adUsers": self.ad_users,
            "cloudObjects": self.cloud_objects,
            "exported": self.exported,
            "unchanged": self.unchanged,
            "failed": self.failed,
            "skipped": dict(self.skipped),
            "attributes": dict(sorted(self.attributes.items())),
            "revertedCloudManaged": self.reverted,
            "withheldCloudManaged": self.withheld,
            "log": str(self.log_path) if self.log_path else None,
        }


class ForwardLog:
    """One JSON line per exported object in `<state_dir>/logs/forward-<n>.jsonl`; the number
    follows the highest already there, so forward logs sit beside the writeback's cycle logs."""

    def __init__(self, state_dir: Path, cycle_id: str, build: str) -> None:
        self.path, self._file = open_next(state_dir / "logs", "forward")
        self.cycle_id = cycle_id
        self.build = build

    def write(self, p: Pending, status: str, code: str | None = None, reason: str = "") -> None:
        rec = {
            "cycleId": self.cycle_id,
            "activityDateTime": clock.now().isoformat(timespec="seconds"),
            "action": "Update",
            "status": status,
            "sourceDn": p.dn,
            "sourceAnchor": p.anchor,
            "targetId": p.cloud_id,
            "connectBuild": self.build,
            "isExchangeCloudManaged": p.cloud_managed,
            "exchangeAttributesPushed": p.exchange_pushed,
            "modifiedProperties": p.modified,
            "errorCode": code,
            "statusReason": reason,
        }
        self._file.write(json.dumps(rec, ensure_ascii=False) + "\n")

    def close(self) -> None:
        self._file.close()


# ------------------------------------------------------------------------------ the two sides
def read_ad(
    creds: LdapCredentials, attributes: Iterable[str], page_size: int = PAGE_SIZE
) -> Iterator[tuple[str, str, Mapping[str, Values]]]:
    """(anchor, DN, values by attribute) of every user with a source anchor: one paged search
    (the writeback engine's LDAP reader; an anchor held twice keeps its first holder)."""
    try:
        with LdapTarget(creds, list(attributes), page_size=page_size) as target:
            found = target.index()
    except LdapError as e:
        raise ForwardError(f"LDAP {creds.url} as {creds.bind_dn}: {e}") from None
    for anchor, obj in found.items():
        yield anchor, obj.dn, obj.values


class ConnectClient(GraphSource):
    """Connect's sync account: imports the cloud through Graph (identity properties selected
    too) and exports to the directory-synchronization service."""

    def __init__(self, creds: CloudCredentials, export_url: str, **kw: Any) -> None:
        super().__init__(creds, **kw)
        self.export_url = export_url

    def initial_url(self) -> str:
        base = self.creds.graph_url.rstrip("/")
        return f"{base}/v1.0/users/delta?{urlencode({'$select': FORWARD_SELECT})}"

    def export(self, objects: list[Json]) -> list[Json]:
        """POST one batch; the per-object results, in order. Exports carry desired values, so
        a retry after a lost answer only re-applies them."""
        status, _, payload = self._post(self.export_url, {"objects": objects})
        results = payload.get("value") if isinstance(payload, dict) else None
        if status != 200 or not isinstance(results, list) or len(results) != len(objects):
            error = payload.get("error") if isinstance(payload, dict) else None
            why = (
                f"{error.get('code')}: {error.get('message')}"
                if isinstance(error, dict)
                else repr(payload)[:200]
            )
            raise ForwardError(f"export to {self.export_url}: HTTP {status} {why}")
        return results


# ------------------------------------------------------------------------------ the cycle
def run_forward(
    cloud: CloudCredentials,
    ldap: LdapCredentials,
    export_url: str,
    state_dir: Path,
    build: str = DEFAULT_BUILD,
    *,
    batch_size: int = EXPORT_BATCH,
) -> ForwardReport:
    """Run one forward-sync cycle; `cloud` is Connect's sync account, `ldap` a read-only one.

    Raises ValueError for a malformed `build`, ForwardError or SourceError when a side cannot
    be read or the sync service refuses a batch as a whole; per-object failures are counted."""
    honour = honours_cloud_management(build)
    if not 1 <= batch_size <= EXPORT_BATCH:
        raise ValueError(f"batch_size must be 1 to {EXPORT_BATCH}")
    started = time.perf_counter()
    report = ForwardReport(str(uuid.uuid4()), build.strip(), honour)
    ad: dict[str, tuple[str, Mapping[str, Values]]] = {}
    duplicates: set[str] = set()
    for anchor, dn, values in read_ad(ldap, [f.ad for f in FLOWS]):
        report.ad_users += 1
        if anchor in ad:
            duplicates.add(anchor)  # Connect cannot tell which object the cloud one means
        ad[anchor] = (dn, values)
    pending: list[Pending] = []
    joined: set[str] = set()
    log = ForwardLog(state_dir, report.cycle_id, report.build)
    report.log_path = log.path
    try:
        # Not `with ConnectClient(...) as client`: GraphSource.__enter__ is typed to return a
        # GraphSource, and the export needs the Connect client's own methods.
        client = ConnectClient(cloud, export_url)
        with client:
            for page in client.pages(None):
                for record in page.records:
                    report.cloud_objects += 1
                    p = _join(record, ad, duplicates, joined, honour, report)
                    if p is not None:
                        pending.append(p)
            not_in_cloud = len(ad.keys() - joined)
            if not_in_cloud:
                report.skipped["no cloud object (a create: not modelled)"] += not_in_cloud
            for start in range(0, len(pending), batch_size):
                _export(client, pending[start : start + batch_size], report, log)
    finally:
        log.close()
    report.seconds = time.perf_counter() - started
    return report


def _join(
    record: Json,
    ad: dict[str, tuple[str, Mapping[str, Values]]],
    duplicates: set[str],
    joined: set[str],
    honour: bool,
    report: ForwardReport,
) -> Pending | None:
    """The export planned for one cloud object, or None (counted in the report)."""
    anchor = record.get("onPremisesImmutableId")
    if not record.get("IsDirSynced") or not anchor:
        return None  # cloud-only: not Connect's object
    if anchor not in ad:
        report.skipped["no AD user (a delete: not modelled)"] += 1
        return None
    joined.add(anchor)
    if anchor in duplicates:
        report.skipped["anchor held by several AD users"] += 1
        return None
    dn, values = ad[anchor]
    p, withheld = plan_object(anchor, dn, values, record, honour)
    report.withheld += withheld
    if not p.properties:
        report.unchanged += 1
        return None
    return p


def _export(
    client: ConnectClient, batch: list[Pending], report: ForwardReport, log: ForwardLog
) -> None:
    objects = [{"sourceAnchor": p.anchor, "properties": p.properties} for p in batch]
    for p, result in zip(batch, client.export(objects), strict=True):
        status = result.get("status") if isinstance(result, dict) else None
        if status == 200:
            report.exported += 1
            report.reverted += p.exchange_pushed
            report.attributes.update(p.properties.keys())
            log.write(p, "Success")
            continue
        body = result.get("body") if isinstance(result, dict) else None
        error = body.get("error") if isinstance(body, dict) else None
        error = error if isinstance(error, dict) else {}
        report.failed += 1
        log.write(p, "Failure", error.get("code"), error.get("message") or repr(result)[:200])


def connect_credentials(ep: Endpoints) -> tuple[CloudCredentials, LdapCredentials, str]:
    """Connect's sync account, the read-only AD account and the export URL of `ep`.

    Raises ValueError when the endpoints lack the cloud side or the Connect account."""
    if not ep.graph_url:
        raise ValueError("no graph_url (is the cloud side running?)")
    if not (ep.connect_client_id and ep.connect_client_secret and ep.dirsync_url):
        raise ValueError("no connect_client_id / dirsync_url (written by an older exwb serve?)")
    cloud = CloudCredentials(
        ep.graph_url, ep.token_url, ep.connect_client_id, ep.connect_client_secret
    )
    # Connect's AD DS connector account only reads: the reader, not the admin.
    ldap = LdapCredentials(ep.ldap_url, ep.reader_dn, ep.reader_password, ep.base_dn)
    return cloud, ldap, ep.dirsync_url
