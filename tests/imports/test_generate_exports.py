"""`exwb generate --export`: a generated tenant written as an administrator's exports too."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.cli import main
from harness.tenant.exports import DEFAULT_FORMATS, EXPORT_FORMATS


def test_export_writes_the_named_formats_beside_the_tenant(tmp_path: Path) -> None:
    out = tmp_path / "t"
    rc = main(["generate", "-n", "20", "--out", str(out), "-q", "--export", "ldifde,csvde"])
    assert rc == 0
    names = sorted(p.name for p in (out / "exports").iterdir())
    assert names == sorted(EXPORT_FORMATS[n].file_name for n in ("ldifde", "csvde"))
    assert (out / "exports" / "ldifde.ldf").read_bytes().startswith(b"\r\n")  # ldifde's quirk


def test_all_is_every_readable_format(tmp_path: Path) -> None:
    out = tmp_path / "t"
    assert main(["generate", "-n", "10", "--out", str(out), "-q", "--export", "all"]) == 0
    written = {p.name for p in (out / "exports").iterdir()}
    assert written == {EXPORT_FORMATS[n].file_name for n in DEFAULT_FORMATS}
    assert "get-aduser-unjoined.csv" not in written  # a negative fixture only on request


def test_an_unknown_format_is_refused_before_anything_is_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "t"
    assert main(["generate", "-n", "10", "--out", str(out), "--export", "ldif2"]) == 2
    assert "--export: unknown format 'ldif2'" in capsys.readouterr().err
    assert not out.exists()
