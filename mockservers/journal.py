"""The write-ahead journal: one JSON line per acknowledged write, durable before the reply.

The stores call the journal from their commit paths (`Store.journal`, `CloudStore.journal`,
None without a state dir: one attribute test per write). Each record is written with one
``write(2)`` on an O_APPEND descriptor and ``fdatasync``-ed before the store method returns,
hence before the server builds its response. Records (one JSON object a line):

* ``{"t": "ldap", "op": "modify"|"add"|"delete"|"modifyDN", ...}`` - the LDAP write as applied,
  with the resulting USN and (modify, modifyDN) whenChanged;
* ``{"t": "cloud", "op": "update"|"delete", "seq": ...}`` - the recipient's new values, or its
  id, with the change's sequence number.

Reading (`read_records`) drops a record cut short by kill -9 or a crash (the last line, without
its newline) with a warning and truncates it away; a line that is not JSON is a `StateError`
naming file:line. Applying records to the stores, snapshots and the state directory around them
are `mockservers.state`: this module knows no store, so every service can sit above it.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from harness.tenant.model import CloudMailbox


class StateError(Exception):
    """The state directory cannot be used; the message names the file (and line)."""


# ------------------------------------------------------------------------------ value codec
def encode_value(v: bytes) -> str | dict[str, str]:
    """An attribute value as JSON: UTF-8 text as is, anything else as ``{"b64": ...}``."""
    try:
        return v.decode("utf-8")
    except UnicodeDecodeError:
        return {"b64": base64.b64encode(v).decode("ascii")}


def decode_value(v: Any) -> bytes:
    if isinstance(v, str):
        return v.encode("utf-8")
    if isinstance(v, dict) and isinstance(v.get("b64"), str):
        return base64.b64decode(v["b64"], validate=True)
    raise ValueError(f"bad value {v!r}")


def encode_values(values: Sequence[bytes]) -> list[Any]:
    return [encode_value(v) for v in values]


def decode_values(values: Any) -> tuple[bytes, ...]:
    if not isinstance(values, list):
        raise ValueError("values must be a list")
    return tuple(decode_value(v) for v in values)


# ------------------------------------------------------------------------------ what a hook reads
# Structural types: the hooks read a few fields, and naming the stores here would put the
# journal above the services that call it.
class _Usn(Protocol):
    @property
    def highest_usn(self) -> int: ...


class _Entry(Protocol):
    @property
    def dn(self) -> str: ...

    @property
    def attrs(self) -> Mapping[str, Sequence[bytes]]: ...


class _Change(Protocol):
    @property
    def seq(self) -> int: ...


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
    def ldap_modify(self, store: _Usn, ndn: str, changes: Sequence[Any], e: _Entry) -> None:
        self.append(
            {
                "t": "ldap",
                "op": "modify",
                "ndn": ndn,
                "changes": [[op, name, encode_values(vals)] for op, name, vals in changes],
                "usn": store.highest_usn,
                "when": encode_value(e.attrs["whenChanged"][0]),
            }
        )

    def ldap_add(self, store: _Usn, e: _Entry) -> None:
        attrs = {name: encode_values(vals) for name, vals in e.attrs.items()}
        self.append(
            {"t": "ldap", "op": "add", "dn": e.dn, "attrs": attrs, "usn": store.highest_usn}
        )

    def ldap_delete(self, store: _Usn, ndn: str, e: _Entry) -> None:
        # `e` is the tombstone: its whenChanged makes the replayed one the same.
        self.append(
            {
                "t": "ldap",
                "op": "delete",
                "ndn": ndn,
                "usn": store.highest_usn,
                "when": encode_value(e.attrs["whenChanged"][0]),
            }
        )

    def ldap_modify_dn(
        self,
        store: _Usn,
        ndn: str,
        new_rdn: str,
        delete_old: bool,
        new_superior: str | None,
        e: _Entry,
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
                "when": encode_value(e.attrs["whenChanged"][0]),
            }
        )

    # The cloud store's hooks.
    def cloud_update(self, m: CloudMailbox, change: _Change) -> None:
        self.append({"t": "cloud", "op": "update", "seq": change.seq, "mailbox": m.to_json()})

    def cloud_delete(self, id_: str, change: _Change) -> None:
        self.append({"t": "cloud", "op": "delete", "seq": change.seq, "id": id_})


# ------------------------------------------------------------------------------ reading it back
@dataclass(slots=True)
class Records:
    """The complete lines of a journal file; `warning` tells of a torn last line dropped."""

    path: Path
    lines: list[bytes]
    warning: str | None

    def __len__(self) -> int:
        return len(self.lines)

    def __iter__(self) -> Iterator[tuple[str, Any]]:
        """(``file:line``, record) pairs, parsed one at a time, so damage is found in order."""
        for lineno, line in enumerate(self.lines, 1):
            where = f"{self.path}:{lineno}"
            try:
                yield where, json.loads(line)
            except (ValueError, UnicodeDecodeError) as e:
                raise StateError(f"{where}: not a JSON record ({e})") from None


def read_records(path: Path) -> Records:
    """The records of `path` (none when it does not exist), a torn last line truncated away."""
    if not path.exists():
        return Records(path, [], None)
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
    return Records(path, lines, warning)
