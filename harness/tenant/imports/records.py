"""What every export reader yields, before joining: one record type per side, one error.

The readers (`ad.py`, `exo.py`, `graph.py`) turn each file format into these records; the
pseudonymiser maps records to records; `build.py` joins them and writes the tenant folder.
A record keeps where it came from, so every later finding can name file:line.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

AdValue = str | bytes  # bytes for binary attributes (objectGUID, objectSid, ...), else text


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a record (or a finding about it) starts: file and 1-based line (0: unknown)."""

    path: str
    line: int = 0

    def __str__(self) -> str:
        return f"{self.path}:{self.line}" if self.line else self.path


@dataclass(slots=True)
class AdRecord:
    """One AD object. Attribute names as the file spells them (compare case-insensitively);
    values in file order, binary ones as bytes."""

    dn: str
    attrs: dict[str, list[AdValue]]
    origin: Origin


@dataclass(slots=True)
class MailboxRecord:
    """One Exchange Online recipient as Get-Mailbox shows it. Keys are Get-Mailbox's PascalCase
    property names (`Guid`, `ExternalDirectoryObjectId`, `EmailAddresses`, `CustomAttribute1`,
    ...); values are str, bool, int, None or list[str] (multi-valued properties always lists)."""

    props: dict[str, Any]
    origin: Origin


@dataclass(slots=True)
class GraphUserRecord:
    """One Graph user. Keys are Graph's camelCase names (`id`, `onPremisesImmutableId`,
    `onPremisesSyncEnabled`, `proxyAddresses`, `mail`, `onPremisesExtensionAttributes` as a
    dict of `extensionAttribute1..15`, ...), whatever the export spelled them."""

    props: dict[str, Any]
    origin: Origin


class ExportWarning(UserWarning):
    """Something a reader noticed that the import report should say (lost letters, a Graph
    export that stops early); the import collects them while it streams the records."""


class ExportError(Exception):
    """A malformed export: printed as one line, `file:line: what is wrong (hint: ...)`."""

    def __init__(self, origin: Origin | str, what: str, hint: str | None = None) -> None:
        self.origin = origin if isinstance(origin, Origin) else Origin(origin)
        self.what = what
        self.hint = hint
        super().__init__(str(self))

    def __reduce__(self) -> tuple[type[ExportError], tuple[Origin, str, str | None]]:
        # pickled whole (a reading process sends it to the importer), not as its message
        return (type(self), (self.origin, self.what, self.hint))

    def __str__(self) -> str:
        tail = f" (hint: {self.hint})" if self.hint else ""
        return f"{self.origin}: {self.what}{tail}"
