"""Loading the directory from LDIF (RFC 2849 content records) and dumping it back.

Errors name the file and line. Dumped files use the same writer as `exwb generate`, so a
generated tenant loads, and the directory after a run dumps, in one format.
"""

from __future__ import annotations

import base64
import binascii
import itertools
from collections.abc import Iterator
from pathlib import Path

from harness.core.adschema import DEFAULT_SCHEMA, Syntax
from harness.core.dn import InvalidDN, parse_dn
from harness.tenant.files import write_atomic
from harness.tenant.ldif import entry_text
from harness.tenant.spec import SpecError, TenantSpec
from mockservers.directory.acl import Role
from mockservers.directory.entry import Values
from mockservers.directory.seed import Seeded, SeedError, seed_entries
from mockservers.directory.store import Store

LdifEntry = tuple[str, list[tuple[str, list[bytes]]]]


class LdifError(ValueError):
    """Malformed LDIF; the message starts with file:line."""


def read_ldif(path: Path) -> Iterator[LdifEntry]:
    """Yield (dn, [(attribute, values)]) per record, attributes in file order."""
    try:
        f = path.open("rb")
    except OSError as e:
        raise LdifError(f"{path}: cannot read: {e.strerror}") from None
    with f:
        record: list[tuple[int, bytes]] = []
        logical: bytes | None = None
        start = 0
        for lineno, raw in enumerate(f, 1):
            line = raw.rstrip(b"\r\n")
            if line.startswith(b" "):
                if logical is None:
                    raise LdifError(
                        f"{path}:{lineno}: continuation line without a line to continue"
                    )
                logical += line[1:]
                continue
            if logical is not None:
                record.append((start, logical))
                logical = None
            if not line:
                if record:
                    yield _record(path, record)
                    record = []
                continue
            if line.startswith(b"#"):
                continue
            logical, start = line, lineno
        if logical is not None:
            record.append((start, logical))
        if record:
            yield _record(path, record)


def _record(path: Path, lines: list[tuple[int, bytes]]) -> LdifEntry:
    if lines[0][1].startswith(b"version:"):
        lines = lines[1:]
        if not lines:
            return ("", [])
    dn = ""
    attrs: dict[str, list[bytes]] = {}
    for i, (lineno, line) in enumerate(lines):
        name, sep, rest = line.partition(b":")
        if not sep or not name:
            raise LdifError(f"{path}:{lineno}: expected 'attribute: value'")
        try:
            if rest.startswith(b":"):
                value = base64.b64decode(rest[1:].strip(), validate=True)
            elif rest.startswith(b"<"):
                raise LdifError(f"{path}:{lineno}: URL values (':<') are not supported")
            else:
                value = rest.lstrip(b" ")
        except binascii.Error:
            raise LdifError(f"{path}:{lineno}: invalid base64 value") from None
        key = name.decode("ascii", "replace")
        if i == 0:
            if key.lower() != "dn":
                raise LdifError(f"{path}:{lineno}: a record must start with 'dn:'")
            try:
                dn = value.decode("utf-8")
            except UnicodeDecodeError:
                raise LdifError(f"{path}:{lineno}: the DN is not UTF-8") from None
            continue
        if key.lower() == "changetype":
            raise LdifError(f"{path}:{lineno}: change records are not supported, only entries")
        attrs.setdefault(key, []).append(value)
    return dn, list(attrs.items())


def load_ldif(path: Path, passwords: dict[Role, str] | None = None) -> Seeded:
    """A directory holding the entries of an LDIF file (e.g. `exwb generate`'s directory.ldif,
    or an earlier dump), plus AD's fixed objects where the file lacks them."""
    records = read_ldif(path)
    first = next((r for r in records if r[0]), None)
    if first is None:
        raise LdifError(f"{path}: no entries")
    try:
        parts = parse_dn(first[0])
    except InvalidDN as e:
        raise LdifError(f"{path}: first entry: {e}") from None
    labels = [v for rdn in parts for a, v in rdn if a.lower() == "dc"]
    if len(labels) != len(parts) or not labels:
        raise LdifError(
            f"{path}: the first entry must be the domain root (DC=...), not {first[0]!r}"
        )
    try:
        spec = TenantSpec.from_mapping({"domain": ".".join(labels).lower()})
    except SpecError as e:
        raise LdifError(f"{path}: domain root {first[0]!r}: {e.message}") from None
    schema = DEFAULT_SCHEMA

    def entries() -> Iterator[tuple[str, dict[str, Values]]]:
        for dn, attrs in itertools.chain([first], records):
            if not dn:
                continue
            out: dict[str, Values] = {}
            for name, values in attrs:
                t = schema.get(name)
                if t is None:
                    raise LdifError(f"{path}: entry {dn!r}: unknown attribute {name!r}")
                out[t.name] = out.get(t.name, ()) + tuple(values)
            yield dn, out

    try:
        return seed_entries(spec, entries(), passwords)
    except SeedError as e:
        raise LdifError(f"{path}: {e}") from None


def dump_ldif(store: Store, path: Path) -> int:
    """Write every entry (parents first) to `path` atomically; returns the number written."""
    count = 0

    def chunks() -> Iterator[str]:
        nonlocal count
        yield "version: 1\n\n"
        types = {t.name: t for t in store.schema}
        for e in store.walk():
            attrs: list[tuple[str, tuple[str | bytes, ...]]] = []
            for name, values in e.attrs.items():
                t = types.get(name)
                if t is None or t.syntax is Syntax.OCTETS:
                    attrs.append((name, values))
                else:
                    attrs.append((name, tuple(v.decode("utf-8", "replace") for v in values)))
            count += 1
            yield entry_text(e.dn, attrs)

    write_atomic(path, chunks())
    return count
