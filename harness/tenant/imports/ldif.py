"""The one RFC 2849 LDIF reader: `ldifde -f`, OpenLDAP's `ldapsearch -LLL`, `exwb generate`.

Content records only (`changetype: add` is accepted, as ldifde writes it); folded lines (any
width: ldapsearch folds at 76 columns, ldifde at 80; a fold may split a character or a base64
group), `attr:: base64`, `dn::` base64 DNs, comments (folded too), `version: 1`. Attribute
options `;binary` and `;range=a-b` (ldifde's `member;range=0-1499` on big groups) are dropped
and the values kept. The fake directory's loader (`mockservers/directory/ldif_io.py`) reads
through this module too, so the fake and the importer agree on what an LDIF file says.

Speed matters (a 200,000-user export is 7 million lines), so records are cut out of whole
chunks of text and unfolded with `str.replace` in C; line numbers are worked out only when
there is an error to report.
"""

from __future__ import annotations

import binascii
import re
from collections.abc import Callable, Iterator
from typing import Final, NoReturn

from harness.tenant.imports.records import AdRecord, AdValue, ExportError, Origin
from harness.tenant.imports.textfile import MAX_LINE, TextInput

_NAME = re.compile(r"[A-Za-z][A-Za-z0-9-]*|[0-9]+(?:\.[0-9]+)*")
_DROPPED_OPTIONS: Final = ("binary", "range=")
_FOLD_WIDTHS: Final = range(76, 81)  # ldapsearch folds at 76 columns, ldifde at 80
MAX_RECORD: Final = 4 * MAX_LINE  # characters; bounds memory on a file without blank lines
_ESCAPED = re.compile(r"[\ud800-\udfff]")


def _attribute_name(raw: str) -> str | None:
    """`raw` (the text before ':') without the options this reader drops; None if it is not
    an attribute description."""
    base, _, opts = raw.partition(";")
    if not _NAME.fullmatch(base):
        return None
    if not opts:
        return base
    kept = [o for o in opts.split(";") if not o.lower().startswith(_DROPPED_OPTIONS)]
    return ";".join([base, *kept])


class _Parser:
    """Turns one record's text (blank-line separated, still folded) into an AdRecord."""

    def __init__(self, src: TextInput, binary: Callable[[str], bool], accept_add: bool) -> None:
        self.src = src
        self.path = str(src.path)
        self.binary = binary
        self.accept_add = accept_add
        self.first = True
        # The fast path: what precedes ': ' on an attribute line -> (attribute, binary?, is the
        # value base64?), learnt from the first such line.
        self.fast: dict[str, tuple[str, bool, bool]] = {}
        self.spelling: dict[str, str] = {}  # casefolded attribute -> its first spelling

    def fail(self, piece: str, start: int, index: int, what: str, hint: str | None) -> NoReturn:
        """Raise naming the physical line where logical line `index` of `piece` starts."""
        raise ExportError(Origin(self.path, _physical(piece, start, index)), what, hint)

    def record(self, piece: str, start: int) -> AdRecord | None:
        if piece[:1] == " ":
            raise ExportError(
                Origin(self.path, start),
                "continuation line without a line to continue",
                "a line starting with a space continues the line above; "
                "a blank line cannot be continued",
            )
        text = piece.replace("\n ", "") if "\n " in piece else piece
        if not text.isascii() and _ESCAPED.search(text):
            text = self.mend(piece, start, text)
        lines = text.split("\n")
        at = 0
        while at < len(lines) and lines[at][:1] == "#":
            at += 1
        if at == len(lines):
            return None  # comments only
        if self.first:
            self.first = False
            head = lines[at]
            if head[:8].lower() == "version:":
                if head[8:].strip() != "1":
                    self.fail(piece, start, at, f"unsupported LDIF {head!r}", "only version 1")
                at += 1
                while at < len(lines) and lines[at][:1] == "#":
                    at += 1
                if at == len(lines):
                    return None
        key, sep, rest = lines[at].partition(":")
        if not sep or key.lower() != "dn":
            self.fail(
                piece,
                start,
                at,
                "a record must start with 'dn:'",
                "records are separated by one blank line; was the 'dn:' line cut off?",
            )
        dn_value = self.value(piece, start, at, rest)
        if isinstance(dn_value, bytes):
            try:
                dn = dn_value.decode("utf-8")
            except UnicodeDecodeError:
                self.fail(piece, start, at, "the DN is not UTF-8", None)
        else:
            dn = dn_value
        origin = Origin(self.path, _physical(piece, start, at) if at else start)
        at += 1
        if at < len(lines) and lines[at][:11].lower() == "changetype:":
            kind = lines[at][11:].strip()
            if not (self.accept_add and kind.lower() == "add"):
                self.fail(
                    piece,
                    start,
                    at,
                    "change records are not supported, only entries",
                    f"this record is 'changetype: {kind}'; export entries with ldifde -f "
                    "or ldapsearch",
                )
            at += 1
        attrs: dict[str, list[AdValue]] = {}
        get_name = self.fast.get
        get_values = attrs.get
        value: AdValue
        for i in range(at, len(lines)):
            line = lines[i]
            key, sep, rest = line.partition(": ")
            hit = get_name(key) if sep else None
            if hit is None:
                if line[:1] == "#":
                    continue
                name, value = self.line(piece, start, i, line)
            else:
                name, is_bin, b64 = hit
                if b64:
                    value = self.base64_value(piece, start, i, name, is_bin, rest)
                elif rest[:1] == " ":
                    value = self.convert(piece, start, i, name, is_bin, rest)
                else:
                    value = rest.encode("utf-8") if is_bin else rest
            values = get_values(name)
            if values is None:
                attrs[name] = [value]
            else:
                values.append(value)
        return AdRecord(dn, attrs, origin)

    def line(self, piece: str, start: int, i: int, line: str) -> tuple[str, AdValue]:
        """(attribute, value) of an attribute line the fast path has not seen the like of;
        learns its shape for the fast path."""
        raw, sep, rest = line.partition(":")
        if sep and raw.lower() in ("dn", "changetype", "control"):
            self.fail(
                piece,
                start,
                i,
                f"'{raw}:' inside a record",
                "records are separated by one blank line; change records are not supported",
            )
        name = _attribute_name(raw) if sep else None
        if name is None:
            self.fail(
                piece,
                start,
                i,
                "expected 'attribute: value'",
                "a folded line continues with exactly one leading space",
            )
        # One spelling per attribute in the whole file: the first one seen.
        name = self.spelling.setdefault(name.casefold(), name)
        is_bin = self.binary(name)
        value = self.convert(piece, start, i, name, is_bin, rest)
        if rest[:1] == " ":
            self.fast[raw] = (name, is_bin, False)  # 'name: text'
        elif rest[:2] == ": ":
            self.fast[raw + ":"] = (name, is_bin, True)  # 'name:: base64'
        return name, value

    def base64_value(
        self, piece: str, start: int, i: int, name: str, is_bin: bool, rest: str
    ) -> AdValue:
        try:
            raw = binascii.a2b_base64(rest, strict_mode=True)
        except ValueError:  # binascii.Error, or non-ASCII text: the careful path explains
            return self.convert(piece, start, i, name, is_bin, ": " + rest)
        if is_bin:
            return raw
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return self.convert(piece, start, i, name, is_bin, ": " + rest)

    def convert(
        self, piece: str, start: int, i: int, name: str, is_bin: bool, rest: str
    ) -> AdValue:
        """An attribute's value in its Python form: bytes for a binary attribute, else text."""
        value = self.value(piece, start, i, rest)
        if is_bin:
            return value.encode("utf-8") if isinstance(value, str) else value
        if isinstance(value, str):
            return value
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            self.fail(
                piece,
                start,
                i,
                f"{name}: the base64 value is not UTF-8 text",
                "only binary attributes may hold bytes",
            )

    def value(self, piece: str, start: int, i: int, rest: str) -> str | bytes:
        """The value after the first ':' of a logical line: text, or bytes for '::' base64."""
        if rest[:1] == ":":
            try:
                return binascii.a2b_base64(rest[1:].strip(" "), strict_mode=True)
            except ValueError:
                self.fail(
                    piece,
                    start,
                    i,
                    "invalid base64 value",
                    "a '::' value must be complete base64; the file may be truncated or edited",
                )
        if rest[:1] == "<":
            self.fail(
                piece,
                start,
                i,
                "URL values (':<') are not supported",
                "put the value in the file, as base64 after '::'",
            )
        return rest.lstrip(" ")

    def mend(self, piece: str, start: int, text: str) -> str:
        """`text` with characters a fold split rejoined; the first logical line whose bytes
        still do not decode is the error."""
        try:
            return self.src.mend(text, start)
        except ExportError as e:
            for i, line in enumerate(text.split("\n")):
                try:
                    self.src.mend(line, start)
                except ExportError:
                    self.fail(piece, start, i, e.what, e.hint)
            raise


def _physical(piece: str, start: int, index: int) -> int:
    """The line number where logical line `index` of `piece` (starting on `start`) starts."""
    line, logical = start, -1
    for physical in piece.split("\n"):
        if physical[:1] != " ":
            logical += 1
            if logical == index:
                break
        line += 1
    return line


def read_ldif_records(
    src: TextInput, *, binary: Callable[[str], bool], accept_add: bool = True
) -> Iterator[AdRecord]:
    """Yield one AdRecord per LDIF content record, streaming.

    A value is bytes when `binary(attribute)` says so, else text (a base64 value that is not
    UTF-8 is an error naming its line and attribute). `accept_add=False` refuses even
    `changetype: add` (the fake's loader reads entries only)."""
    parser = _Parser(src, binary, accept_add)
    line = 1  # the line `carry` starts on
    carry = ""
    for chunk in src.chunks(keep_partial=True):
        buf = carry + chunk if carry else chunk
        if "\r" in buf:
            buf = buf.replace("\r\n", "\n")
        pieces = buf.split("\n\n")
        carry = pieces.pop()
        for piece in pieces:
            if piece[:1] == "\n":  # more than one blank line
                skipped = len(piece) - len(piece.lstrip("\n"))
                line += skipped
                piece = piece[skipped:]
            if piece:
                rec = parser.record(piece, line)
                if rec is not None:
                    yield rec
            line += piece.count("\n") + 2
        if len(carry) > MAX_RECORD:
            raise ExportError(
                Origin(parser.path, line),
                f"a record longer than {MAX_RECORD:,} characters",
                "records are separated by a blank line; is this an LDIF file?",
            )
    if carry.endswith("\r"):
        carry = carry[:-1]
    unterminated = bool(carry) and not carry.endswith("\n")
    skipped = len(carry) - len(carry.lstrip("\n"))
    piece = carry[skipped:].rstrip("\n")
    line += skipped
    if not piece:
        return
    if unterminated:
        last = piece.rsplit("\n", 1)[-1]
        if last[:1] == " " or len(last) in _FOLD_WIDTHS:
            raise ExportError(
                Origin(parser.path, line + piece.count("\n")),
                "the file ends in the middle of a folded line",
                "the export looks truncated; export it again",
            )
    rec = parser.record(piece, line)
    if rec is not None:
        yield rec
