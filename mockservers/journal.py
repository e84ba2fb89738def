"""Durable state for `exwb serve --state-dir D`: a base snapshot plus a write-ahead journal.

Layout of D (every file UTF-8 text, nothing pickled):

* ``state.json`` - format, the tenant spec the snapshot came from and the current generation
  ``N``; replaced atomically, so it always names a complete snapshot.
* ``secrets.json`` (mode 0600) - the directory accounts' passwords, the cloud apps' client ids
  and secrets, the delta-token key and the store nonce: credentials and deltaLinks handed out
  before a restart keep working after it.
* ``snap-N/`` - ``directory.ldif`` (the LDIF dump), ``cloud.jsonl`` (one recipient a line),
  ``changes.jsonl`` (the cloud change log, ``[seq, id, [properties]]`` a line: delta rounds
  after a restart see the changes made before it) and ``meta.json`` (highest USN, cloud seq).
* ``journal-N.jsonl`` - one JSON object a line per acknowledged write since snapshot N: the
  LDAP modify/add/delete/modifyDN as applied with the resulting USN and whenChanged, the cloud
  update (the recipient's new values) or delete with its sequence number.

The stores call the journal from their commit paths (`Store.journal`, `CloudStore.journal`,
None without a state dir: one attribute test per write). Each record is written with one
``write(2)`` on an O_APPEND descriptor and ``fdatasync``-ed before the store method returns,
hence before the server builds its response. A record cut short by kill -9 or a crash (the last
line, without its newline) is dropped on replay with a warning and truncated away; any other
bad line is a `StateError` naming file:line.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import secrets
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.tenant.files import TenantFileError, read_cloud_jsonl, write_atomic
from harness.tenant.model import CloudMailbox

if TYPE_CHECKING:
    from mockservers.cloud.store import Change as CloudChange
    from mockservers.cloud.store import CloudStore
    from mockservers.directory.entry import Entry
    from mockservers.directory.store import Store

FORMAT = "exwb-state/1"
STATE_NAME = "state.json"
SECRETS_NAME = "secrets.json"
_MAILBOX_FIELDS = tuple(f.name for f in fields(CloudMailbox))


class StateError(Exception):
    """The state directory cannot be used; the message names the file (and line)."""


# ------------------------------------------------------------------------------ value codec
def _enc(v: bytes) -> str | dict[str, str]:
    try:
        return v.decode("utf-8")
    except UnicodeDecodeError:
        return {"b64": base64.b64encode(v).decode("ascii")}


def _dec(v: Any) -> bytes:
    if isinstance(v, str):
        return v.encode("utf-8")
    if isinstance(v, dict) and isinstance(v.get("b64"), str):
        return base64.b64decode(v["b64"], validate=True)
    raise ValueError(f"bad value {v!r}")


def _enc_values(values: Sequence[bytes]) -> list[Any]:
    return [_enc(v) for v in values]


def _dec_values(values: Any) -> tuple[bytes, ...]:
    if not isinstance(values, list):
        raise ValueError("values must be a list")
    return tuple(_dec(v) for v in values)


# ------------------------------------------------------------------------------ the journal
class Journal:
    """Appends one JSON line per committed write and makes it durable before returning."""

    def __init__(self, path: Path, sync: bool = True) -> None:
        self.path = path
        self.sync = sync  # False only to measure what durability costs
        self.records = 0
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def append(self, record: dict[str, Any]) -> None:
        data = (json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n").encode()
        view = memoryview(data)
        while view:
            n = os.write(self._fd, view)
            view = view[n:]
        if self.sync:
            os.fdatasync(self._fd)
        self.records += 1

    # The directory store's hooks: called after the change is applied in memory.
    def ldap_modify(self, store: Store, ndn: str, changes: Sequence[Any], e: Entry) -> None:
        self.append(
            {
                "t": "ldap",
                "op": "modify",
                "ndn": ndn,
                "changes": [[op, name, _enc_values(vals)] for op, name, vals in changes],
                "usn": store.highest_usn,
                "when": _enc(e.attrs["whenChanged"][0]),
            }
        )

    def ldap_add(self, store: Store, e: Entry) -> None:
        attrs = {name: _enc_values(vals) for name, vals in e.attrs.items()}
        self.append(
            {"t": "ldap", "op": "add", "dn": e.dn, "attrs": attrs, "usn": store.highest_usn}
        )

    def ldap_delete(self, store: Store, ndn: str) -> None:
        self.append({"t": "ldap", "op": "delete", "ndn": ndn, "usn": store.highest_usn})

    def ldap_modify_dn(
        self,
        store: Store,
        ndn: str,
        new_rdn: str,
        delete_old: bool,
        new_superior: str | None,
        e: Entry,
    ) -> None:
        self.append(
            {
                "t": "ldap",
                "op": "modifyDN",
                "ndn": ndn,
                "new_rdn": new_rdn,
                "delete_old": delete_old,
                "new_superior": new_superior,
                "usn": store.highest_usn,
                "when": _enc(e.attrs["whenChanged"][0]),
            }
        )

    # The cloud store's hooks.
    def cloud_update(self, m: CloudMailbox, change: CloudChange) -> None:
        self.append({"t": "cloud", "op": "update", "seq": change.seq, "mailbox": m.to_json()})

    def cloud_delete(self, id_: str, change: CloudChange) -> None:
        self.append({"t": "cloud", "op": "delete", "seq": change.seq, "id": id_})


# ------------------------------------------------------------------------------ replay
@dataclass(slots=True)
class Replayed:
    records: int
    warning: str | None  # a torn last line that was dropped


def replay(path: Path, store: Store, cloud: CloudStore) -> Replayed:
    """Apply the journal's records to the stores (which must not journal meanwhile)."""
    from mockservers.directory import errors

    if not path.exists():
        return Replayed(0, None)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise StateError(f"cannot read {path}: {e.strerror}") from None
    lines = data.split(b"\n")
    tail = lines.pop()  # b"" when the file ends with a newline, else a torn record
    warning = None
    if tail:
        good = len(data) - len(tail)
        warning = (
            f"{path}:{len(lines) + 1}: dropped a torn last record ({len(tail)} bytes, "
            "no newline): a write cut short that was never acknowledged"
        )
        try:
            with path.open("r+b") as f:
                f.truncate(good)
                os.fsync(f.fileno())
        except OSError as e:
            raise StateError(f"cannot truncate {path}: {e.strerror}") from None
    saved_clock = store.clock
    try:
        for lineno, line in enumerate(lines, 1):
            where = f"{path}:{lineno}"
            try:
                rec = json.loads(line)
            except (ValueError, UnicodeDecodeError) as e:
                raise StateError(f"{where}: not a JSON record ({e})") from None
            try:
                _apply(rec, store, cloud)
            except StateError as e:
                raise StateError(f"{where}: {e}") from None
            except errors.LdapError as e:
                raise StateError(f"{where}: the directory refused the record: {e}") from None
            except (KeyError, TypeError, ValueError, IndexError, AttributeError) as e:
                raise StateError(f"{where}: malformed record ({type(e).__name__}: {e})") from None
    finally:
        store.clock = saved_clock
    return Replayed(len(lines), warning)


def _apply(rec: Any, store: Store, cloud: CloudStore) -> None:
    from mockservers.directory.store import split_dn

    if not isinstance(rec, dict):
        raise StateError("a record must be a JSON object")
    kind, op = rec.get("t"), rec.get("op")
    if kind == "ldap":
        usn = rec["usn"]
        if op in ("modify", "modifyDN"):
            when = _dec(rec["when"])
            store.clock = lambda: when
            if op == "modify":
                changes = [(int(c[0]), str(c[1]), _dec_values(c[2])) for c in rec["changes"]]
                store.modify(rec["ndn"], changes)
            else:
                store.rename(
                    rec["ndn"], rec["new_rdn"], bool(rec["delete_old"]), rec["new_superior"]
                )
        elif op == "add":
            attrs = {str(n): _dec_values(v) for n, v in rec["attrs"].items()}
            ndn, parent, _ = split_dn(rec["dn"])
            if ndn in store.entries or parent not in store.entries:
                raise StateError(f"cannot add {rec['dn']!r}: exists, or its parent does not")
            store.insert(rec["dn"], ndn, parent, attrs)
            store.highest_usn = max(store.highest_usn, usn)
        elif op == "delete":
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
    from mockservers.directory.ldif_io import dump_ldif

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


def load_snapshot(state: State) -> tuple[Any, list[CloudMailbox], list[list[Any]], dict[str, int]]:
    """(Seeded directory, recipients, cloud change log, meta) of the current snapshot."""
    from mockservers.directory.acl import Role
    from mockservers.directory.ldif_io import LdifError, load_ldif

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
    from mockservers.cloud.store import Change

    cloud.restore_log([Change(s, i, frozenset(p)) for s, i, p in log], seq)


def spec_differences(stored: dict[str, Any], given: dict[str, Any]) -> list[str]:
    out = []
    for key in sorted(set(stored) | set(given)):
        if stored.get(key) != given.get(key):
            out.append(f"{key}: state dir has {stored.get(key)!r}, given {given.get(key)!r}")
    return out
