"""What PowerShell writes: `ConvertTo-Json` and `Export-Csv` output, and its text forms.

The Exchange Online and Graph readers (`exo.py`, `graph.py`) share this: streaming the records
of a JSON export with the line each starts on, reading an Export-Csv file, and the text forms
PowerShell gives values (Microsoft facts §8.5): Windows PowerShell 5.1 dates
`"\\/Date(ms)\\/"`, `True`/`False` in CSV, an object or list it did not expand (`-Depth` too
small, or Export-Csv of a list) printed as `@{...}` or as its .NET type name, multi-values that
the exporter joined into one cell.
"""

from __future__ import annotations

import csv
import json
import re
import uuid
import warnings
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from harness.tenant.imports.records import ExportError, ExportWarning, Origin
from harness.tenant.imports.textfile import TextInput

DEPTH_HINT: Final = "re-export with ConvertTo-Json -Depth 4"
JSON_HINT: Final = "the file was cut short or edited; export it again"

_CHUNK = 1 << 20  # characters read at a time (tests make it small to cut records anywhere)
# One record (a mailbox, a user, a Graph page of at most 999 users: a few MB) is far below
# this; a single value this large is a file that is not a list of records.
MAX_VALUE = 64 * 1024 * 1024  # characters
# A JSON error this close to the end of the buffer may only mean the value goes on in the next
# chunk (a number or literal cut in two); further back it is a real error.
_CUT_MARGIN: Final = 64

_WS = re.compile(r"[ \t\r\n]*")
_MS_DATE = re.compile(r"/Date\((-?\d+)(?:[+-]\d{4})?\)/")
# How PowerShell prints an object it did not expand: the .NET type name of the object or list
# (`System.Object[]`, `System.Collections.ArrayList`, `Microsoft.Exchange.Data.
# ProxyAddressCollection`, `...MultiValuedProperty`1[System.String]`), or a PSObject's `@{a=1}`.
_TYPE_NAME = re.compile(
    r"(?:Deserialized\.|Selected\.)*(?:System|Microsoft)(?:\.[A-Za-z_][\w+]*)+"
    r"(?:`\d+\[[\w.,\[\] ]*\])?(?:\[\])?"
)
# Where one joined proxy address ends: a `;` or whitespace before the next `prefix:`. Spaces
# inside an x500 address and `;` inside an X400 one are not followed by a prefix.
_ADDRESS_SPLIT = re.compile(r"[;\s]+(?=[A-Za-z][A-Za-z0-9]{0,9}:)")


# --- JSON ------------------------------------------------------------------------------------


class _JsonScanner:
    """The records of a JSON export, decoded one at a time from a sliding text buffer with
    json's own decoder, so each record and each syntax error has its line."""

    def __init__(self, src: TextInput) -> None:
        self.path = str(src.path)
        self._stream = src.stream()
        self._decode = json.JSONDecoder().raw_decode
        self.buf = ""
        self.pos = 0
        self.line = 1  # line of buf[pos]
        self._col0 = 0  # column of buf[0] (text before it was dropped)
        self.eof = False

    def close(self) -> None:
        self._stream.close()

    def _fill(self, size: int = 0) -> bool:
        """Read the next chunk (dropping what is consumed); False at the end of the file."""
        if self.eof:
            return False
        nl = self.buf.rfind("\n", 0, self.pos)
        self._col0 = self.pos - nl - 1 if nl >= 0 else self._col0 + self.pos
        chunk = self._stream.read(max(size, _CHUNK))
        self.buf = self.buf[self.pos :] + chunk
        self.pos = 0
        if not chunk:
            self.eof = True
        return bool(chunk)

    def _advance(self, to: int) -> None:
        self.line += self.buf.count("\n", self.pos, to)
        self.pos = to

    def peek(self) -> str:
        """The next character after whitespace ("" at the end of the file)."""
        while True:
            self._advance(_WS.match(self.buf, self.pos).end())  # type: ignore[union-attr]
            if self.pos < len(self.buf):
                return self.buf[self.pos]
            if not self._fill():
                return ""

    def take(self) -> None:
        self._advance(self.pos + 1)

    def origin(self, at: int | None = None) -> Origin:
        at = self.pos if at is None else at
        return Origin(self.path, self.line + self.buf.count("\n", self.pos, at))

    def _column(self, at: int) -> int:
        nl = self.buf.rfind("\n", 0, at)
        return at - nl if nl >= 0 else self._col0 + at + 1

    def value(self) -> tuple[int, Any]:
        """(line it starts on, the decoded value) at the current position."""
        self.peek()
        while True:
            try:
                obj, end = self._decode(self.buf, self.pos)
            except json.JSONDecodeError as e:
                maybe_cut = e.msg.startswith("Unterminated string") or (
                    e.pos >= len(self.buf) - _CUT_MARGIN
                )
                if maybe_cut and not self.eof:
                    self._grow()
                    continue
                raise self._syntax_error(e) from None
            if end == len(self.buf) and not self.eof:  # a number may go on in the next chunk
                self._grow()
                continue
            line = self.line
            self._advance(end)
            return line, obj

    def _grow(self) -> None:
        if len(self.buf) - self.pos > MAX_VALUE:
            raise ExportError(
                self.origin(),
                f"one JSON value longer than {MAX_VALUE:,} characters",
                "export a JSON array of records (ConvertTo-Json writes one)",
            )
        # Double what is held: a long value is decoded again O(log n) times, not O(n).
        self._fill(len(self.buf) - self.pos)

    def _syntax_error(self, e: json.JSONDecodeError) -> ExportError:
        # At the end of the file, an error with nothing but whitespace after it (or a string
        # never closed) means the file stops inside a value: it was cut short.
        if e.msg.startswith("Unterminated string") or not self.buf[e.pos :].strip():
            return ExportError(self.origin(e.pos), "the file ends inside a JSON value", JSON_HINT)
        return ExportError(
            self.origin(e.pos), f"not valid JSON: {e.msg} (column {self._column(e.pos)})", JSON_HINT
        )

    def error(self, what: str, hint: str | None = JSON_HINT) -> ExportError:
        return ExportError(self.origin(), what, hint)


def json_kind(value: Any) -> str:
    """How to name a JSON value's type in a message."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "a list" if isinstance(value, list) else "an object"


def json_records(
    src: TextInput, noun: str, plural: str, hint: str
) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line it starts on, object) for each record of a JSON export, streamed.

    The file is a top-level array of objects (several arrays one after another too), or one
    object (PowerShell unwraps a one-element array), or objects one after another (JSON Lines,
    concatenated Graph pages). A top-level value that is not an object, or an array element
    that is not one, raises ExportError naming its line; `noun`/`plural` name a record in
    messages, `hint` says how to export the file right.
    """
    scan = _JsonScanner(src)
    try:
        first = scan.peek()
        if not first:
            raise scan.error("the file is empty", hint)
        while (c := scan.peek()) != "":
            if c == "[":
                yield from _array(scan, noun, hint)
                continue
            line, value = scan.value()
            if not isinstance(value, dict):
                raise ExportError(
                    Origin(scan.path, line),
                    f"the JSON is {json_kind(value)}, not a list of {plural} or a {noun} object",
                    hint,
                )
            yield line, value
    finally:
        scan.close()


def _array(scan: _JsonScanner, noun: str, hint: str) -> Iterator[tuple[int, dict[str, Any]]]:
    scan.take()
    if scan.peek() == "]":
        scan.take()
        return
    while True:
        line, value = scan.value()
        if not isinstance(value, dict):
            raise ExportError(
                Origin(scan.path, line),
                f"a list element is {json_kind(value)}, not a {noun} object",
                hint,
            )
        yield line, value
        c = scan.peek()
        if c == ",":
            scan.take()
            continue
        if c == "]":
            scan.take()
            return
        if not c:
            raise scan.error("the JSON ends inside a list")
        raise scan.error(f"not valid JSON: expected ',' or ']' after a list element, not {c!r}")


def json_head_keys(head: str) -> list[str]:
    """The object keys seen in the first characters of a JSON file, for format detection."""
    return re.findall(r'"([^"\\]{1,100})"\s*:', head)


# --- CSV -------------------------------------------------------------------------------------


def csv_rows(src: TextInput) -> tuple[int, list[str], Iterator[tuple[int, dict[str, str]]]]:
    """(header line, header, rows) of an Export-Csv file: the optional `#TYPE ...` first line
    skipped, the delimiter `,` (or `;`/tab from `-UseCulture`/`-Delimiter`) taken from the
    header. Rows come as (line they start on, column -> cell), streamed; a row with more or
    fewer cells than the header raises ExportError."""
    head = src.head(64 * 1024)
    lines = head.splitlines()
    type_line = bool(lines) and lines[0].startswith("#TYPE")
    header_text = lines[1 if type_line else 0] if len(lines) > int(type_line) else ""
    delimiter = ","
    if "," not in header_text:
        delimiter = ";" if ";" in header_text else "\t" if "\t" in header_text else ","
    stream = src.stream()
    reader = csv.reader(stream, delimiter=delimiter, strict=True)
    path = str(src.path)
    try:
        header = next(reader, None)
        if header is not None and type_line:
            header = next(reader, None)
    except csv.Error as e:
        stream.close()
        raise ExportError(Origin(path, reader.line_num), f"bad CSV: {e}") from None
    if not header or not any(h.strip() for h in header):
        stream.close()
        raise ExportError(Origin(path, reader.line_num or 1), "no header row", "export again")
    header_line = reader.line_num
    header = [h.strip() for h in header]
    return header_line, header, _rows(reader, stream, path, header)


def _rows(
    reader: Any, stream: Any, path: str, header: list[str]
) -> Iterator[tuple[int, dict[str, str]]]:
    try:
        start = reader.line_num + 1
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as e:
                raise ExportError(Origin(path, start), f"bad CSV: {e}", JSON_HINT) from None
            if row:  # csv gives [] for a blank line
                if len(row) != len(header):
                    raise ExportError(
                        Origin(path, start),
                        f"{len(row)} cells, the header has {len(header)}",
                        "a value with an unquoted comma or line break? Export-Csv quotes "
                        "every cell; export again rather than editing the file",
                    )
                yield start, dict(zip(header, row, strict=True))
            start = reader.line_num + 1
    finally:
        stream.close()


# --- values ----------------------------------------------------------------------------------


_MARK_STARTS: Final = ("@{", "System.", "Microsoft.", "Deserialized.", "Selected.")


def unexpanded(value: str) -> bool:
    """True when `value` is how PowerShell prints an object or list it did not write out: a
    .NET type name (`System.Object[]`, `System.Collections.ArrayList`,
    `Microsoft.Exchange.Data.ProxyAddressCollection`, ...) or a PSObject's `@{name=value; ...}`."""
    if not value.startswith(_MARK_STARTS) or len(value) > 400:
        return False
    if value.startswith("@{") and value.endswith("}"):
        return True
    return _TYPE_NAME.fullmatch(value) is not None


def identify(props: dict[str, Any], keys: tuple[str, ...], index: int, noun: str) -> str:
    """How a message names a record: the first of `keys` it has (UPN, address, GUID), else
    its place in the file."""
    for key in keys:
        v = props.get(key)
        if isinstance(v, str) and v and not unexpanded(v):
            return f"{noun} {v!r}"
    return f"{noun} #{index}"


def first_mangled(props: dict[str, Any], names: tuple[str, ...]) -> str | None:
    """`name 'value'` of the first name or address holding '?', if any."""
    for name in names:
        v = props.get(name)
        for text in v if isinstance(v, list) else (v,):
            if isinstance(text, str) and "?" in text:
                return f"{name} {text!r}"
    return None


def plain_value(value: Any) -> bool:
    """A scalar or a list of scalars: what an unknown property may pass through as."""
    if isinstance(value, list):
        return all(v is None or isinstance(v, str | int | float | bool) for v in value)
    return value is None or isinstance(value, str | int | float | bool)


_EPOCH: Final = datetime(1970, 1, 1)


def ps_date(value: str) -> str:
    """A date as ISO 8601 UTC (`2023-11-14T22:13:20Z`): Windows PowerShell 5.1's `/Date(ms)/`
    (UTC milliseconds; the offset some writers add is the local zone of display only) and ISO
    texts with a zone. Other texts (no zone, a culture's own format in CSV) come back as they
    are: their zone is unknown."""
    m = _MS_DATE.fullmatch(value)
    if m:
        when = _EPOCH + timedelta(milliseconds=int(m.group(1)))  # naive, UTC
    else:
        try:
            aware = datetime.fromisoformat(value)
        except ValueError:
            return value
        if aware.tzinfo is None:
            return value
        when = aware.astimezone(UTC).replace(tzinfo=None)
    text = when.isoformat()
    return (text.rstrip("0") if when.microsecond else text) + "Z"


def ps_bool(value: Any) -> bool | None:
    """JSON true/false, CSV `True`/`False` (any case); None for null or an empty cell. Anything
    else raises ValueError."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        v = value.strip().lower()
        if v in ("true", "false"):
            return v == "true"
        if not v:
            return None
    raise ValueError(value)


def split_addresses(cell: str) -> list[str]:
    """Proxy addresses that were joined into one text with `;` or spaces."""
    return [a.strip(" ;\t\r\n") for a in _ADDRESS_SPLIT.split(cell.strip(" ;\t\r\n")) if a.strip()]


def split_values(cell: str) -> list[str]:
    """Values of a multi-valued property joined with `;` (`-join ';'`)."""
    return [v.strip() for v in cell.split(";") if v.strip()]


def text_form(value: Any) -> str:
    """A scalar as PowerShell would print it (for properties read as text)."""
    if isinstance(value, bool):
        return "True" if value else "False"
    return str(value)


class Findings:
    """Warnings a reader collects while streaming: one per kind, with a count and the first
    example, appended to the caller's list when the file is read to its end (first-seen
    order, so the same file gives the same warnings)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._seen: dict[str, list[Any]] = {}  # key -> [count, example, text maker]

    def add(self, key: str, example: str, text: Callable[[int, str], str]) -> None:
        entry = self._seen.get(key)
        if entry is None:
            self._seen[key] = [1, example, text]
        else:
            entry[0] += 1

    def emit(self, out: list[str] | None) -> None:
        """To `out`; without one, as ExportWarnings, which the importer collects for its
        report while it streams (`build._heeding`)."""
        said = [f"{self.path}: {t(n, ex)}" for n, ex, t in self._seen.values()]
        if out is not None:
            out.extend(said)
            return
        for message in said:
            warnings.warn(ExportWarning(message), stacklevel=2)


def ascii_mangled(n: int, example: str) -> str:
    """The warning for names or addresses holding `?` (a non-ASCII letter lost on export)."""
    return (
        f"{n} record(s) have '?' in a name or address, e.g. {example}: non-ASCII letters "
        "lost on export? Windows PowerShell 5.1 writes ASCII by default in Export-Csv (and "
        "with Out-File -Encoding ASCII), turning them into '?' (hint: export again with "
        "-Encoding UTF8)"
    )


_GUID_TEXT: Final = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
SLOW: Final = object()  # quick_value's "convert it the long way"
_EMPTY_IS_NONE: Final = frozenset({"text", "enum", "guid", "date"})


def quick_value(kind: str, value: Any) -> Any:
    """A value of `kind` in its final form when that is quick to tell (most values): a
    non-empty text that is no unexpanded form, "" for a single-valued property (None: AD has
    no empty value), a JSON boolean, a canonical GUID, a JSON list of such texts, a
    `/Date(ms)/` date. Else `SLOW`: `ValueReader.convert` decides, and words any refusal."""
    cls = value.__class__
    if cls is str:
        if not value:
            return None if kind in _EMPTY_IS_NONE else SLOW
        if kind == "text":
            return SLOW if value.startswith(_MARK_STARTS) else value
        if kind == "guid":
            return value if _GUID_TEXT.fullmatch(value) else SLOW
        if kind == "date" and value.startswith("/Date("):
            return ps_date(value)
        return SLOW
    if cls is bool:
        return value if kind == "bool" else SLOW
    if cls is list and kind in ("list", "addresses"):
        ok = all(v.__class__ is str and not v.startswith(_MARK_STARTS) for v in value)
        return value if ok else SLOW
    return SLOW


class ValueReader:
    """Typing one record's values by kind (`guid`, `text`, `enum` (a text some exports write
    as a number), `list`, `addresses`, `bool`, `date`); every refusal names the record (`who`)
    and the property. Subclasses add the forms of their own exports (`item_object`, `text`)."""

    def __init__(self, origin: Origin, who: str, from_csv: bool, found: Findings) -> None:
        self.origin = origin
        self.who = who
        self.from_csv = from_csv
        self.found = found

    def fail(self, prop: str, what: str, hint: str | None = None) -> ExportError:
        return ExportError(self.origin, f"{self.who}: {prop} {what}", hint)

    def unexpanded(self, prop: str, value: str) -> ExportError:
        shown = value if len(value) <= 60 else value[:57] + "..."
        if self.from_csv:
            hint = (
                "Export-Csv writes a list as its type name; select it joined: "
                f"@{{n='{prop}';e={{$_.{prop} -join ';'}}}}"
            )
        else:
            hint = DEPTH_HINT
        return self.fail(prop, f"is the text {shown!r}, not its value", hint)

    def convert(self, prop: str, kind: str, value: Any) -> Any:
        if kind in ("list", "addresses"):
            return self.values(prop, value, kind == "addresses")
        if isinstance(value, str) and unexpanded(value):
            raise self.unexpanded(prop, value)
        if kind == "bool":
            try:
                return ps_bool(value)
            except ValueError:
                raise self.fail(prop, f"is {value!r}, not True or False") from None
        if isinstance(value, list | dict):
            what = f"holds {len(value)} values" if isinstance(value, list) else "is an object"
            raise self.fail(prop, f"{what}; one value expected", DEPTH_HINT)
        if value is None or value == "":
            return None
        if kind == "guid":
            return self.guid(prop, value)
        if kind == "date":
            return ps_date(value) if isinstance(value, str) else text_form(value)
        return self.text(prop, value)

    def text(self, prop: str, value: Any) -> str:
        return text_form(value)

    def guid(self, prop: str, value: Any) -> str:
        """Lowercase `8-4-4-4-12` form (PowerShell may write braces or capitals)."""
        try:
            return str(uuid.UUID(str(value)))
        except ValueError:
            raise self.fail(prop, f"{value!r} is not a GUID") from None

    def values(self, prop: str, value: Any, addresses: bool) -> list[str]:
        if value is None:
            return []
        if isinstance(value, str):
            if unexpanded(value):
                raise self.unexpanded(prop, value)
            return split_addresses(value) if addresses else split_values(value)
        if isinstance(value, dict):
            raise self.fail(prop, "is an object, not a list", DEPTH_HINT)
        out: list[str] = []
        for item in value:
            if isinstance(item, dict):
                out.append(self.item_object(prop, item))
            elif isinstance(item, str):
                if unexpanded(item):
                    raise self.unexpanded(prop, item)
                out.append(item)
            elif item is not None:
                out.append(text_form(item))
        return out

    def item_object(self, prop: str, item: dict[str, Any]) -> str:
        raise self.fail(prop, "holds an object where a text value is expected", DEPTH_HINT)
