"""Loading the directory from LDIF (RFC 2849 content records) and dumping it back.

Errors name the file and line. Dumped files use the same writer as `exwb generate`, so a
generated tenant loads, and the directory after a run dumps, in one format.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import cast

from harness.core.adschema import DEFAULT_SCHEMA, Syntax
from harness.core.dn import InvalidDN, parse_dn
from harness.tenant.files import write_atomic
from harness.tenant.imports.ldif import read_ldif_records
from harness.tenant.imports.records import ExportError
from harness.tenant.imports.textfile import open_text
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
    """Yield (dn, [(attribute, values)]) per record, attributes in file order, values as bytes.

    The importer's RFC 2849 reader does the reading, so the fake loads exactly what `exwb
    import` reads; only entries are accepted here (no `changetype`, not even add)."""
    try:
        for rec in read_ldif_records(open_text(path), binary=_all_bytes, accept_add=False):
            # binary=_all_bytes: every value is bytes, as the store keeps them.
            yield rec.dn, [(name, cast(list[bytes], values)) for name, values in rec.attrs.items()]
    except ExportError as e:
        raise LdifError(str(e)) from None


def _all_bytes(name: str) -> bool:
    return True


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
        for e in store.walk(deleted=True):
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
