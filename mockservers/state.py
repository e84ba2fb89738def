"""The state directory of `exwb serve --state-dir D`: a base snapshot, the journal since it,
and `Durable`, which loads D into a tenant's services and keeps them journaling into it.

Layout of D (every file UTF-8 text, nothing pickled):

* ``state.json`` - format, the tenant spec the snapshot came from and the current generation
  ``N``; replaced atomically, so it always names a complete snapshot.
* ``secrets.json`` (mode 0600) - the directory accounts' passwords, the cloud apps' client ids
  and secrets, the delta-token key and the store nonce: credentials and deltaLinks handed out
  before a restart keep working after it.
* ``snap-N/`` - ``directory.ldif`` (the LDIF dump), ``cloud.jsonl`` (one recipient a line),
  ``changes.jsonl`` (the cloud change log, ``[seq, id, [properties]]`` a line: delta rounds
  after a restart see the changes made before it) and ``meta.json`` (highest USN, cloud seq).
* ``journal-N.jsonl`` - the write-ahead journal since snapshot N (`mockservers.journal`).
* ``onprem.json``, ``hybrid.json`` - the on-premises estate and Exchange Online's hybrid
  objects, each the whole (small) state, rewritten atomically after each change.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import secrets
import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from harness.core.ldapresult import LdapError
from harness.tenant.files import (
    TenantFileError,
    ensure_writable_dir,
    read_cloud_jsonl,
    write_atomic,
)
from harness.tenant.model import CloudMailbox
from harness.tenant.spec import TenantSpec
from mockservers.cloud import delta
from mockservers.cloud.auth import App, Auth
from mockservers.cloud.hybrid import HybridCloud
from mockservers.cloud.server import CloudService
from mockservers.cloud.store import Change, CloudStore
from mockservers.directory.acl import Role
from mockservers.directory.ldif_io import LdifError, dump_ldif, load_ldif
from mockservers.directory.seed import Seeded
from mockservers.directory.service import DirectoryService
from mockservers.directory.store import Store, split_dn
from mockservers.journal import Journal, StateError, decode_value, decode_values, read_records
from mockservers.onprem.estate import Estate

FORMAT = "exwb-state/1"
STATE_NAME = "state.json"
SECRETS_NAME = "secrets.json"
ONPREM_NAME = "onprem.json"
HYBRID_NAME = "hybrid.json"
_MAILBOX_FIELDS = tuple(f.name for f in fields(CloudMailbox))


# ------------------------------------------------------------------------------ replay
@dataclass(slots=True)
class Replayed:
    records: int
    warning: str | None  # a torn last line that was dropped


def replay(path: Path, store: Store, cloud: CloudStore) -> Replayed:
    """Apply the journal's records to the stores (which must not journal meanwhile)."""
    records = read_records(path)
    saved_clock = store.clock
    try:
        for where, rec in records:
            try:
                _apply(rec, store, cloud)
            except StateError as e:
                raise StateError(f"{where}: {e}") from None
            except LdapError as e:
                raise StateError(f"{where}: the directory refused the record: {e}") from None
            except (KeyError, TypeError, ValueError, IndexError, AttributeError) as e:
                raise StateError(f"{where}: malformed record ({type(e).__name__}: {e})") from None
    finally:
        store.clock = saved_clock
    return Replayed(len(records), records.warning)


def _apply(rec: Any, store: Store, cloud: CloudStore) -> None:
    if not isinstance(rec, dict):
        raise StateError("a record must be a JSON object")
    kind, op = rec.get("t"), rec.get("op")
    if kind == "ldap":
        usn = rec["usn"]
        if op in ("modify", "modifyDN"):
            when = decode_value(rec["when"])
            store.clock = lambda: when
            if op == "modify":
                changes = [(int(c[0]), str(c[1]), decode_values(c[2])) for c in rec["changes"]]
                store.modify(rec["ndn"], changes)
            else:
                store.rename(
                    rec["ndn"], rec["new_rdn"], bool(rec["delete_old"]), rec["new_superior"]
                )
        elif op == "add":
            attrs = {str(n): decode_values(v) for n, v in rec["attrs"].items()}
            ndn, parent, _ = split_dn(rec["dn"])
            if ndn in store.entries or parent not in store.entries:
                raise StateError(f"cannot add {rec['dn']!r}: exists, or its parent does not")
            store.restore(rec["dn"], ndn, parent, attrs)
            store.highest_usn = max(store.highest_usn, usn)
        elif op == "delete":
            if "when" in rec:  # journals written before tombstones have none
                when_deleted = decode_value(rec["when"])
                store.clock = lambda: when_deleted
            store.delete(rec["ndn"])
        else:
            raise StateError(f"unknown directory operation {op!r}")
        if store.highest_usn != usn:
            raise StateError(f"replay reached USN {store.highest_usn}, the record says {usn}")
    elif kind == "cloud":
        seq = rec["seq"]
        if op == "update":
            m = CloudMailbox.from_json(rec["mailbox"])
            if m.id not in cloud.mailboxes:
                raise StateError(f"no recipient {m.id!r} to update")
            cloud.update(m.id, {f: getattr(m, f) for f in _MAILBOX_FIELDS})
        elif op == "delete":
            if rec["id"] not in cloud.mailboxes:
                raise StateError(f"no recipient {rec['id']!r} to delete")
            cloud.delete(rec["id"])
        else:
            raise StateError(f"unknown cloud operation {op!r}")
        if cloud.seq != seq:
            raise StateError(f"replay reached change {cloud.seq}, the record says {seq}")
    else:
        raise StateError(f"unknown record type {kind!r}")


# ------------------------------------------------------------------------------ snapshots
def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise StateError(f"cannot read {path}: {e.strerror}") from None
    except (ValueError, UnicodeDecodeError) as e:
        raise StateError(f"{path}: not valid JSON ({e})") from None


def _write_json(path: Path, obj: Any, mode: int | None = None) -> None:
    text = json.dumps(obj, indent=2, ensure_ascii=False) + "\n"
    try:
        write_atomic(path, [text])
        if mode is not None:
            os.chmod(path, mode)
    except TenantFileError as e:
        raise StateError(str(e)) from None


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _snap_dir(root: Path, gen: int) -> Path:
    return root / f"snap-{gen:06d}"


def journal_path(root: Path, gen: int) -> Path:
    return root / f"journal-{gen:06d}.jsonl"


def write_snapshot(root: Path, gen: int, store: Store, cloud: CloudStore) -> dict[str, int]:
    """Write snapshot `gen` (not yet current: `commit_generation` makes it so); sizes in bytes."""
    snap = _snap_dir(root, gen)
    if snap.exists():
        shutil.rmtree(snap)
    snap.mkdir(parents=True)
    try:
        dump_ldif(store, snap / "directory.ldif")
        write_atomic(
            snap / "cloud.jsonl",
            (
                json.dumps(m.to_json(), ensure_ascii=False, separators=(",", ":")) + "\n"
                for m in cloud
            ),
        )
        write_atomic(
            snap / "changes.jsonl",
            (
                json.dumps([c.seq, c.id, sorted(c.properties)], separators=(",", ":")) + "\n"
                for c in cloud.changes_after(0)
            ),
        )
    except TenantFileError as e:
        raise StateError(str(e)) from None
    _write_json(snap / "meta.json", {"highest_usn": store.highest_usn, "cloud_seq": cloud.seq})
    _fsync_dir(snap)
    journal_path(root, gen).touch(mode=0o600)
    return {p.name: p.stat().st_size for p in snap.iterdir()}


def commit_generation(root: Path, spec: dict[str, Any], gen: int) -> None:
    """Make snapshot `gen` (and its empty journal) current, atomically; drop older ones."""
    _fsync_dir(root)
    _write_json(root / STATE_NAME, {"format": FORMAT, "spec": spec, "generation": gen})
    _fsync_dir(root)
    for old in root.glob("snap-*"):
        if old.name != _snap_dir(root, gen).name:
            shutil.rmtree(old, ignore_errors=True)
    for old in root.glob("journal-*.jsonl"):
        if old.name != journal_path(root, gen).name:
            old.unlink(missing_ok=True)


@dataclass(slots=True)
class State:
    root: Path
    spec: dict[str, Any]
    generation: int
    secrets: dict[str, Any]

    @property
    def snapshot(self) -> Path:
        return _snap_dir(self.root, self.generation)

    @property
    def journal(self) -> Path:
        return journal_path(self.root, self.generation)


def has_state(root: Path) -> bool:
    return (root / STATE_NAME).exists()


def open_state(root: Path) -> State:
    state = _read_json(root / STATE_NAME)
    where = root / STATE_NAME
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise StateError(f"{where}: not an {FORMAT} state file")
    gen, spec = state.get("generation"), state.get("spec")
    if not isinstance(gen, int) or not isinstance(spec, dict):
        raise StateError(f"{where}: missing generation or spec")
    sec = _read_json(root / SECRETS_NAME)
    if not isinstance(sec, dict):
        raise StateError(f"{root / SECRETS_NAME}: not a JSON object")
    return State(root, spec, gen, sec)


def new_secrets() -> dict[str, Any]:
    return {"token_key": secrets.token_hex(32), "store_nonce": secrets.token_hex(4)}


def write_secrets(root: Path, sec: dict[str, Any]) -> None:
    _write_json(root / SECRETS_NAME, sec, mode=0o600)


def load_snapshot(
    state: State,
) -> tuple[Seeded, list[CloudMailbox], list[list[Any]], dict[str, int]]:
    """(Seeded directory, recipients, cloud change log, meta) of the current snapshot."""
    snap = state.snapshot
    passwords = {Role(k): v for k, v in state.secrets.get("passwords", {}).items()}
    try:
        seeded = load_ldif(snap / "directory.ldif", passwords)
        mailboxes = read_cloud_jsonl(snap / "cloud.jsonl")
    except (LdifError, TenantFileError) as e:
        raise StateError(str(e)) from None
    meta = _read_json(snap / "meta.json")
    log: list[list[Any]] = []
    path = snap / "changes.jsonl"
    try:
        with path.open(encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                try:
                    rec = json.loads(line)
                    seq, id_, props = rec
                    if not (isinstance(seq, int) and isinstance(id_, str)):
                        raise ValueError("expected [seq, id, [properties]]")
                    log.append([seq, id_, [str(p) for p in props]])
                except (ValueError, TypeError) as e:
                    raise StateError(f"{path}:{lineno}: {e}") from None
    except OSError as e:
        raise StateError(f"cannot read {path}: {e.strerror}") from None
    return seeded, mailboxes, log, meta


def restore_cloud_log(cloud: CloudStore, log: list[list[Any]], seq: int) -> None:
    cloud.restore_log([Change(s, i, frozenset(p)) for s, i, p in log], seq)


def spec_differences(stored: dict[str, Any], given: dict[str, Any]) -> list[str]:
    out = []
    for key in sorted(set(stored) | set(given)):
        if stored.get(key) != given.get(key):
            out.append(f"{key}: state dir has {stored.get(key)!r}, given {given.get(key)!r}")
    return out


# ------------------------------------------------------------------------------ a served tenant's D
class SpecMismatch(StateError):
    """The tenant options given differ from the tenant D holds; `differences` says how."""

    def __init__(self, root: Path, differences: list[str]) -> None:
        super().__init__(f"{root} holds a different tenant: " + "; ".join(differences))
        self.differences = differences


class Durable:
    """The state dir of one `exwb serve --state-dir D` run: snapshot, secrets and journal."""

    def __init__(
        self,
        root: Path,
        spec: dict[str, Any],
        generation: int,
        seeded: Seeded,
        secrets: dict[str, Any],
        resumed: bool = False,
    ) -> None:
        self.root = root
        self.spec = spec
        self.generation = generation
        self.seeded = seeded  # the directory to serve: D's snapshot, or the tenant as generated
        self.secrets = secrets
        self.resumed = resumed
        self.mailboxes: list[CloudMailbox] = []
        self.log: list[list[Any]] = []
        self.meta: dict[str, int] = {}
        self.journal: Journal | None = None
        self.notes: list[str] = []
        self.summary = ""

    @classmethod
    def resume(cls, root: Path, given: Mapping[str, Any] | None = None) -> Durable:
        """Open D, check the tenant options `given` (if any) against D's, load the snapshot.

        A bad option is the `SpecError` of `TenantSpec.from_mapping`; a different tenant is a
        `SpecMismatch`; damage is a `StateError`.
        """
        from harness.tenant.spec import SpecError

        state = open_state(root)
        try:
            stored = TenantSpec.from_mapping(state.spec)
        except SpecError as e:
            raise StateError(f"{root}/{STATE_NAME}: spec {e.knob}: {e.message}") from None
        if given:
            wanted = TenantSpec.from_mapping(dict(given), base=stored)
            diff = spec_differences(stored.as_dict(), wanted.as_dict())
            if diff:
                raise SpecMismatch(root, diff)
        seeded, mailboxes, log, meta = load_snapshot(state)
        seeded = dataclasses.replace(seeded, spec=stored)  # all knobs, not just the domain
        d = cls(root, state.spec, state.generation, seeded, state.secrets, resumed=True)
        d.mailboxes, d.log, d.meta = mailboxes, log, meta
        return d

    @classmethod
    def create(cls, root: Path, seeded: Seeded, cloud: CloudService) -> Durable:
        """A fresh D: secrets, snapshot 1 of the tenant as generated, an empty journal."""
        try:
            ensure_writable_dir(root)
        except TenantFileError as e:
            raise StateError(str(e)) from None
        d = cls(root, seeded.spec.as_dict(), 1, seeded, new_secrets())
        d.secrets["passwords"] = {a.role.value: a.password for a in seeded.accounts}
        d.secrets["apps"] = [
            {"name": a.name, "client_id": a.client_id, "secret": a.secret}
            for a in cloud.auth.apps.values()
        ]
        write_secrets(root, d.secrets)
        t = time.perf_counter()
        sizes = write_snapshot(root, 1, seeded.store, cloud.store)
        commit_generation(root, d.spec, 1)
        took = time.perf_counter() - t
        d.summary = (
            f"state dir {root}: wrote snapshot 1 in {took:.1f} s "
            f"({sum(sizes.values()) / 1e6:.1f} MB), journaling every write"
        )
        return d

    def attach(self, service: DirectoryService, cloud: CloudService, compact: bool) -> None:
        """Restore what a snapshot does not rebuild, replay the journal, start journaling."""
        store = service.store
        if self.resumed:
            store.highest_usn = max(store.highest_usn, int(self.meta.get("highest_usn", 0)))
            restore_cloud_log(cloud.store, self.log, int(self.meta.get("cloud_seq", 0)))
            fresh = Auth.for_tenant(cloud.auth.tenant_id)
            apps = {}
            for a in self.secrets.get("apps", []):
                roles = fresh.app(a["name"]).roles
                apps[a["client_id"]] = App(a["client_id"], a["secret"], a["name"], roles)
            if apps:
                cloud.auth.apps = apps
        # Tokens (deltaLinks, skip tokens) handed out before a restart must still open.
        delta.TOKENS = delta.StateTokens(bytes.fromhex(self.secrets["token_key"]))
        delta._state(cloud.store).nonce = self.secrets["store_nonce"]
        path = journal_path(self.root, self.generation)
        t = time.perf_counter()
        done = replay(path, store, cloud.store)
        if done.warning:
            self.notes.append(done.warning)
        if self.resumed:
            self.summary = (
                f"state dir {self.root}: resumed snapshot {self.generation} and "
                f"{done.records:,} journaled writes in {time.perf_counter() - t:.1f} s"
            )
        if compact and done.records:
            self.generation += 1
            write_snapshot(self.root, self.generation, store, cloud.store)
            commit_generation(self.root, self.spec, self.generation)
            self.summary += f"; compacted into snapshot {self.generation}"
        self.journal = Journal(journal_path(self.root, self.generation))
        store.journal = self.journal
        cloud.store.journal = self.journal

    def attach_estate(self, estate: Estate, cloud: CloudService) -> None:
        """Keep the on-premises estate (onprem.json) and Exchange Online's hybrid objects
        (hybrid.json) in D: loaded on resume, rewritten atomically after each change.

        Their changes are not in the journal: each file is the whole (small) state. A crash
        between an uninstall's journaled AD deletes and the estate's write leaves the host
        shown as installed; running Setup again then finds nothing left in AD to delete.
        """
        estate_path = self.root / ONPREM_NAME
        hybrid_path = self.root / HYBRID_NAME
        if self.resumed and estate_path.exists():
            try:
                loaded = Estate.from_json(_read_state_json(estate_path))
            except ValueError as e:
                raise StateError(f"{estate_path}: {e}") from None
            estate.hosts, estate.zones = loaded.hosts, loaded.zones
        if self.resumed and hybrid_path.exists():
            try:
                cloud.store.hybrid = HybridCloud.from_json(_read_state_json(hybrid_path))
            except ValueError as e:
                raise StateError(f"{hybrid_path}: {e}") from None

        def save_estate(_estate: Any = None) -> None:
            _write_state_json(estate_path, estate.to_json())

        def save_hybrid() -> None:
            _write_state_json(hybrid_path, cloud.store.hybrid.to_json())

        save_estate()
        save_hybrid()
        estate.on_change = save_estate
        cloud.store.hybrid.on_change = save_hybrid

    def close(self) -> None:
        if self.journal is not None:
            self.journal.close()


def _read_state_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise StateError(f"{path}: {e}") from None


def _write_state_json(path: Path, data: Any) -> None:
    """Atomically (temporary file, fsync, rename): a crash leaves the old or the new file."""
    write_atomic(path, [json.dumps(data, ensure_ascii=False, separators=(",", ":"))])
