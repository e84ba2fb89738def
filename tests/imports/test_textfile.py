"""open_text: the encodings Windows tools write, refusals naming the first bad byte's line."""

from __future__ import annotations

import csv
import json
import tracemalloc

import pytest

from harness.tenant.imports import textfile
from harness.tenant.imports.records import ExportError
from harness.tenant.imports.textfile import HINT, open_text

TEXT = "dn: CN=Zoë,DC=x\r\ncn: Zoë 😀\n\nlast"


@pytest.mark.parametrize(
    ("prefix", "codec", "encoding"),
    [
        (b"", "utf-8", "utf-8"),
        (b"\xef\xbb\xbf", "utf-8", "utf-8-sig"),
        (b"\xff\xfe", "utf-16-le", "utf-16-le"),
        (b"\xfe\xff", "utf-16-be", "utf-16-be"),
    ],
)
def test_accepted_encodings_read_alike(tmp_path, prefix, codec, encoding):
    p = tmp_path / "f.txt"
    p.write_bytes(prefix + TEXT.encode(codec))
    src = open_text(p)
    assert src.encoding == encoding
    assert src.path == p
    assert list(src.lines()) == [(1, "dn: CN=Zoë,DC=x"), (2, "cn: Zoë 😀"), (3, ""), (4, "last")]
    assert src.head(6) == "dn: CN"  # no BOM in the text
    with src.stream() as f:
        assert f.read() == TEXT  # line ends untranslated, for csv
    assert "".join(src.chunks()) == TEXT


def test_lines_split_at_lf_only_and_strip_crlf(tmp_path):
    p = tmp_path / "f.txt"
    p.write_bytes(b"a\r\nb\rc\n\r\nd\r")
    assert list(open_text(p).lines()) == [(1, "a"), (2, "b\rc"), (3, ""), (4, "d")]


def test_crlf_split_across_chunks(tmp_path, monkeypatch):
    monkeypatch.setattr(textfile, "_CHUNK", 3)
    p = tmp_path / "f.txt"
    p.write_bytes(b"ab\r\ncd\r\n\r\nef")
    assert list(open_text(p).lines()) == [(1, "ab"), (2, "cd"), (3, ""), (4, "ef")]


def test_utf16_without_bom_is_refused(tmp_path):
    p = tmp_path / "export.ldif"
    p.write_bytes("dn: CN=A\r\ncn: A\r\n".encode("utf-16-le"))
    with pytest.raises(ExportError) as e:
        open_text(p)
    assert str(e.value) == (
        f"{p}:1: looks like UTF-16LE without a byte order mark (hint: save it as UTF-8, "
        "or as UTF-16 with a BOM (PowerShell: -Encoding Unicode))"
    )
    p.write_bytes("dn: CN=A\r\n".encode("utf-16-be"))
    with pytest.raises(ExportError, match="UTF-16BE without a byte order mark"):
        open_text(p)


def test_utf32_and_binary_files_are_refused(tmp_path):
    p = tmp_path / "f.bin"
    p.write_bytes(b"\xff\xfe\x00\x00" + "dn: x".encode("utf-32-le"))
    with pytest.raises(ExportError, match=r"f\.bin:1: UTF-32LE text is not supported"):
        open_text(p)
    p.write_bytes(b"PK\x03\x04\n\n\x14\x00\x00\x00\x08\x00zipped")
    with pytest.raises(ExportError) as e:
        open_text(p)
    assert str(e.value).startswith(f"{p}:3: a NUL byte: this is a binary file")


def test_latin1_in_the_first_bytes_is_refused_at_open(tmp_path):
    p = tmp_path / "names.csv"
    p.write_bytes("DN,cn\nCN=a,a\nCN=b,Beyoncé\n".encode("latin-1"))
    with pytest.raises(ExportError) as e:
        open_text(p)
    assert str(e.value) == f"{p}:3: not UTF-8: byte 0xE9 (hint: {HINT})"


def test_latin1_deep_in_the_file_names_its_line(tmp_path):
    p = tmp_path / "big.ldif"
    p.write_bytes(b"cn: ok\n" * 5000 + "cn: Beyoncé\n".encode("latin-1") + b"cn: ok\n")
    src = open_text(p)  # the first 4 KiB are fine
    with pytest.raises(ExportError) as e:
        list(src.lines())
    assert str(e.value) == f"{p}:5001: not UTF-8: byte 0xE9 (hint: {HINT})"
    with pytest.raises(ExportError) as e, src.stream() as f:
        list(csv.reader(f))
    assert str(e.value) == f"{p}:5001: not UTF-8: byte 0xE9 (hint: {HINT})"


def test_a_utf8_character_cut_by_a_fold_is_not_refused_at_open(tmp_path):
    p = tmp_path / "f.ldif"
    raw = "cn: Zoë".encode()
    p.write_bytes(raw[:-1] + b"\n " + raw[-1:] + b"\n")
    src = open_text(p)
    with pytest.raises(ExportError, match=r"f\.ldif:1: not UTF-8: byte 0xC3"):
        list(src.lines())  # strict line reading does refuse it
    parts = [line for _, line in src.lines(keep_partial=True)]
    assert src.mend(parts[0] + parts[1][1:], 1) == "cn: Zoë"


def test_mend_refuses_bytes_that_stay_undecodable(tmp_path):
    p = tmp_path / "f.ldif"
    p.write_bytes(b"cn: a\n" * 1000 + b"cn: caf\xe9\n")  # past the bytes open_text checks
    src = open_text(p)
    lines = list(src.lines(keep_partial=True))
    with pytest.raises(ExportError) as e:
        src.mend(lines[1000][1], 1001)
    assert str(e.value) == f"{p}:1001: not UTF-8: byte 0xE9 (hint: {HINT})"


def test_overlong_line_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(textfile, "MAX_LINE", 100)
    monkeypatch.setattr(textfile, "_CHUNK", 16)
    p = tmp_path / "f.txt"
    p.write_text("short\n" + "x" * 101 + "\nshort\n")
    with pytest.raises(ExportError, match=r"f\.txt:2: line longer than 100 characters"):
        list(open_text(p).lines())


def test_missing_file(tmp_path):
    with pytest.raises(ExportError, match=r"nope\.ldif: cannot read: No such file"):
        open_text(tmp_path / "nope.ldif")


def test_lines_stream_without_holding_the_file(tmp_path):
    p = tmp_path / "big.txt"
    line = "proxyAddresses: smtp:someone.with.a.long.name@contoso.mail.onmicrosoft.com\n"
    with p.open("w") as f:
        for _ in range(200):
            f.write(line * 1000)
    size = p.stat().st_size  # 15 MB
    tracemalloc.start()
    try:
        count = sum(1 for _ in open_text(p).lines())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == 200_000
    assert peak < size / 4


@pytest.mark.parametrize("codec", ["utf-8-sig", "utf-16"])
def test_utf8_stream_for_byte_parsers(tmp_path, codec):
    """ijson reads bytes: the same JSON in UTF-8 with a BOM or UTF-16 parses alike."""
    ijson = pytest.importorskip("ijson")
    p = tmp_path / "m.json"
    data = [{"DisplayName": f"Zoë {i} 😀", "Alias": "x" * (i % 700)} for i in range(3000)]
    p.write_text(json.dumps(data, ensure_ascii=False), encoding=codec)
    src = open_text(p)
    with src.utf8_stream() as f:
        assert list(ijson.items(f, "item")) == data
    with src.utf8_stream() as f:
        assert f.read(4) == b'[{"D'


def test_utf8_stream_names_the_bad_byte(tmp_path):
    p = tmp_path / "m.json"
    p.write_bytes(b'[\n{"a": "ok"},\n' * 2000 + b'{"a": "caf\xe9"}]')
    with pytest.raises(ExportError) as e, open_text(p).utf8_stream() as f:
        f.read()
    assert str(e.value) == f"{p}:4001: not UTF-8: byte 0xE9 (hint: {HINT})"
