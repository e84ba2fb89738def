"""Opening an export as text: the encodings Windows tools write, streamed, errors as file:line.

`ldifde`/`csvde` write UTF-8 or, with `-u`, UTF-16LE with a BOM; Windows PowerShell 5.1's
`Out-File` and `>` write UTF-16LE with a BOM, its `Export-Csv` ASCII, PowerShell 7 UTF-8
without a BOM. Those (and UTF-16BE with a BOM) are accepted; anything else (UTF-16 without a
BOM, UTF-32, Latin-1 bytes, a binary file) is refused with the line of the first bad byte and
a hint. Nothing here reads a whole file into memory: a 200,000-user LDIF is about 500 MB.
"""

from __future__ import annotations

import codecs
import io
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Final, NoReturn

from harness.tenant.imports.records import ExportError, Origin

if TYPE_CHECKING:  # typeshed's name for what readinto fills
    from _typeshed import WriteableBuffer

MAX_LINE: Final = 16 * 1024 * 1024  # characters; a longer line is not an export, it is damage
_CHUNK: Final = 1 << 18  # characters per read: big enough for C to do the splitting
_SNIFF: Final = 4096  # bytes looked at for NULs (UTF-16 without a BOM, binary files)
_FOLD = re.compile(rb"\r?\n ")
_ESCAPED = re.compile(r"[\ud800-\udfff]")  # what surrogateescape/surrogatepass leave behind

# BOM -> (codec, name reported as TextInput.encoding). UTF-32 BOMs first: FF FE 00 00 starts
# with the UTF-16LE BOM.
_REFUSED_BOMS: Final = ((codecs.BOM_UTF32_LE, "UTF-32LE"), (codecs.BOM_UTF32_BE, "UTF-32BE"))
_BOMS: Final = (
    (codecs.BOM_UTF8, "utf-8", "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16-le", "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be", "utf-16-be"),
)
HINT: Final = (
    "save it as UTF-8 or UTF-16 with a BOM; run ldifde/csvde with -u, "
    "or Export-Csv/Out-File with -Encoding UTF8"
)


class TextInput:
    """One export file opened for reading as text, in the encoding its first bytes show.

    `encoding` is `utf-8`, `utf-8-sig` (UTF-8 with a BOM), `utf-16-le` or `utf-16-be` (both
    with a BOM). Each of `lines()`, `chunks()`, `stream()`, `utf8_stream()` and `head()` reads the
    file afresh from the start.
    """

    def __init__(self, path: Path, codec: str, encoding: str, skip: int) -> None:
        self.path = path
        self.encoding = encoding
        self._codec = codec  # the codec of the bytes after the BOM
        self._skip = skip  # BOM length
        # How undecodable bytes survive in keep_partial mode: UTF-8 bytes as U+DC80..U+DCFF,
        # UTF-16 code units as lone surrogates.
        self._partial = "surrogateescape" if codec == "utf-8" else "surrogatepass"

    def origin(self, line: int = 0) -> Origin:
        return Origin(str(self.path), line)

    def _open(self, errors: str) -> io.TextIOWrapper:
        raw = _open_binary(self.path)
        raw.seek(self._skip)
        # newline="": no translation; lines end at LF only (CRLF stripped by the callers), so a
        # stray CR inside a value does not split a line.
        return io.TextIOWrapper(raw, encoding=self._codec, errors=errors, newline="")

    def chunks(self, *, keep_partial: bool = False) -> Iterator[str]:
        """The text in pieces of _CHUNK characters, CRLF not translated (a piece may end between CR
        and LF). `keep_partial`: see `lines`."""
        with self._open(self._partial if keep_partial else "strict") as f:
            while True:
                try:
                    chunk = f.read(_CHUNK)
                except UnicodeDecodeError:
                    raise self._decode_error() from None
                if not chunk:
                    return
                yield chunk

    def lines(self, *, keep_partial: bool = False) -> Iterator[tuple[int, str]]:
        """(1-based line number, line without its CRLF/LF), streamed; a line longer than
        MAX_LINE characters raises ExportError.

        `keep_partial=True` is for formats that join lines (LDIF folding may split a UTF-8
        character or a UTF-16 surrogate pair across two lines): undecodable bytes are kept as
        lone surrogates instead of raising, and the caller passes the joined text to `mend`.
        """
        lineno = 0
        carry = ""
        # Split whole chunks in C rather than readline() per line: 4x faster on a big LDIF.
        for chunk in self.chunks(keep_partial=keep_partial):
            buf = carry + chunk if carry else chunk
            if "\r" in buf:
                buf = buf.replace("\r\n", "\n")
            lines = buf.split("\n")
            carry = lines.pop()
            # Only a line begun in an earlier chunk can be longer than a chunk.
            if lines and len(lines[0]) > MAX_LINE:
                self._too_long(lineno + 1)
            for line in lines:
                lineno += 1
                yield lineno, line
            if len(carry) > MAX_LINE:
                self._too_long(lineno + 1)
        if carry:
            yield lineno + 1, carry[:-1] if carry.endswith("\r") else carry

    def _too_long(self, line: int) -> NoReturn:
        raise ExportError(
            self.origin(line),
            f"line longer than {MAX_LINE:,} characters",
            "is this really a text export? a binary file or a damaged one",
        )

    def mend(self, text: str, line: int) -> str:
        """Text from `lines(keep_partial=True)` with characters split across lines rejoined;
        bytes that still do not decode raise ExportError naming `line`."""
        if text.isascii() or not _ESCAPED.search(text):
            return text
        try:
            return text.encode(self._codec, self._partial).decode(self._codec)
        except UnicodeDecodeError as e:
            bad = e.object[e.start : e.start + 1]
            raise ExportError(
                self.origin(line), f"not {self._label()}: byte 0x{bad.hex().upper()}", HINT
            ) from None

    def stream(self) -> io.TextIOWrapper:
        """A text stream of the content after the BOM, for csv and JSON parsers (line ends
        untranslated, as the csv module wants). A byte that does not decode raises ExportError
        naming its line."""
        raw = _open_binary(self.path)
        raw.seek(self._skip)
        return _Stream(raw, self, self._codec)

    def utf8_stream(self) -> io.BufferedReader:
        """The text as UTF-8 bytes (no BOM), whatever the file's encoding: for parsers that
        read bytes (ijson warns on text streams). Bad bytes raise ExportError as `stream()`."""
        return io.BufferedReader(_Utf8(self.stream()), _CHUNK)

    def head(self, n_chars: int) -> str:
        """The first `n_chars` characters (fewer for a short file), for format detection;
        undecodable bytes show as U+FFFD."""
        with self._open("replace") as f:
            return f.read(n_chars)

    def _label(self) -> str:
        return {"utf-8": "UTF-8", "utf-16-le": "UTF-16LE", "utf-16-be": "UTF-16BE"}[self._codec]

    def _decode_error(self) -> ExportError:
        line, byte = _first_bad_byte(self.path, self._skip, self._codec)
        return ExportError(self.origin(line), f"not {self._label()}: byte 0x{byte}", HINT)


class _Stream(io.TextIOWrapper):
    """A TextIOWrapper whose decoding errors become ExportError with file:line."""

    def __init__(self, raw: io.BufferedReader, owner: TextInput, codec: str) -> None:
        super().__init__(raw, encoding=codec, errors="strict", newline="")
        self._owner = owner

    def read(self, size: int | None = -1) -> str:
        try:
            return super().read(size)
        except UnicodeDecodeError:
            raise self._owner._decode_error() from None

    # typeshed types TextIOWrapper's readline/__next__ as overriding IOBase's bytes versions
    # with an ignore of its own; these overrides inherit that gap.
    def readline(self, size: int = -1) -> str:  # type: ignore[override]
        try:
            return super().readline(size)
        except UnicodeDecodeError:
            raise self._owner._decode_error() from None

    def __next__(self) -> str:  # type: ignore[override]
        line = self.readline()
        if not line:
            raise StopIteration
        return line


class _Utf8(io.RawIOBase):
    """A text stream re-encoded as UTF-8, for io.BufferedReader."""

    def __init__(self, text: io.TextIOWrapper) -> None:
        self._text = text
        self._pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        view = memoryview(buffer).cast("B")
        while len(self._pending) < len(view):
            chunk = self._text.read(_CHUNK)
            if not chunk:
                break
            self._pending += chunk.encode("utf-8")
        out = self._pending[: len(view)]
        self._pending = self._pending[len(out) :]
        view[: len(out)] = out
        return len(out)

    def close(self) -> None:
        self._text.close()
        super().close()


def _open_binary(path: Path) -> io.BufferedReader:
    try:
        return path.open("rb")
    except OSError as e:
        raise ExportError(Origin(str(path)), f"cannot read: {e.strerror}") from None


def _first_bad_byte(path: Path, skip: int, codec: str) -> tuple[int, str]:
    """(line, hex) of the first byte that does not decode; scanned again, only on error."""
    nl = "\n"
    decoder = codecs.getincrementaldecoder(codec)()
    lines = 1
    with _open_binary(path) as f:
        f.seek(skip)
        while True:
            chunk = f.read(_CHUNK)
            try:
                lines += decoder.decode(chunk, final=not chunk).count(nl)
            except UnicodeDecodeError as e:
                good = e.object[: e.start].decode(codec, "replace")
                return lines + good.count(nl), e.object[e.start : e.end].hex().upper()
            if not chunk:
                return lines, ""


def open_text(path: Path) -> TextInput:
    """The export at `path` as text; an encoding other than those accepted raises ExportError."""
    with _open_binary(path) as f:
        start = f.read(_SNIFF)
    for bom, name in _REFUSED_BOMS:
        if start.startswith(bom):
            raise ExportError(Origin(str(path), 1), f"{name} text is not supported", HINT)
    for bom, codec, name in _BOMS:
        if start.startswith(bom):
            return TextInput(path, codec, name, len(bom))
    nul = start.find(b"\x00")
    if nul >= 0:
        line = start[:nul].count(b"\n") + 1
        # ASCII text in UTF-16 without a BOM has a NUL in every other byte.
        pairs = start[: len(start) & ~1]
        le, be = pairs[1::2].count(0), pairs[0::2].count(0)
        if max(le, be) * 10 >= len(pairs) * 4:
            order = "LE" if le > be else "BE"
            raise ExportError(
                Origin(str(path), line),
                f"looks like UTF-16{order} without a byte order mark",
                "save it as UTF-8, or as UTF-16 with a BOM (PowerShell: -Encoding Unicode)",
            )
        raise ExportError(
            Origin(str(path), line),
            "a NUL byte: this is a binary file, not a text export",
            "give the LDIF, CSV or JSON export itself (not a zip or a database file)",
        )
    _check_utf8_start(path, start)
    return TextInput(path, "utf-8", "utf-8", 0)


def _check_utf8_start(path: Path, start: bytes) -> None:
    """Refuse a file whose first bytes are not UTF-8 (Latin-1, an ANSI code page) at once.

    LDIF folding (`\n ` or `\r\n `) may split a character, so folds are joined first; a
    character cut by the end of the sniffed bytes is not an error either."""
    parts = _FOLD.split(start)
    try:
        b"".join(parts).decode("utf-8")
        return
    except UnicodeDecodeError as e:
        if e.reason == "unexpected end of data" and e.end == len(e.object):
            return
        pos, line = e.start, 1
        for part in parts:
            if pos < len(part):
                line += part[:pos].count(b"\n")
                break
            pos -= len(part)
            line += part.count(b"\n") + 1
        bad = e.object[e.start : e.start + 1].hex().upper()
    raise ExportError(Origin(str(path), line), f"not UTF-8: byte 0x{bad}", HINT)
