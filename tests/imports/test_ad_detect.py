"""detect_ad_format: which AD export a file is, by its content."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.tenant.imports.ad import AD_FORMATS, detect_ad_format, read_ad
from harness.tenant.imports.records import ExportError
from harness.tenant.imports.textfile import open_text

SAMPLES = Path(__file__).parent / "samples" / "ad"
HINT = (
    "AD exports are LDIF (ldifde -f, ldapsearch -LLL), csvde -f CSV (DN first) or "
    "Get-ADUser | Export-Csv (with DistinguishedName); name it with --format ldif|csvde|adcsv"
)


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("ldifde.ldif", "ldif"),
        ("ldapsearch.ldif", "ldif"),
        ("folded-midchar.ldif", "ldif"),  # starts with a folded comment
        ("utf16le-bom.ldif", "ldif"),
        ("csvde.csv", "csvde"),
        ("getaduser.csv", "adcsv"),  # #TYPE line
        ("collection.csv", "adcsv"),  # DistinguishedName in the header
    ],
)
def test_samples(name, fmt):
    assert detect_ad_format(open_text(SAMPLES / name)) == fmt


def test_formats():
    assert AD_FORMATS == ("ldif", "csvde", "adcsv")


def test_version_line_and_quoted_csv_header(tmp_path):
    p = tmp_path / "a"
    p.write_text("\n\nversion: 1\n")
    assert detect_ad_format(open_text(p)) == "ldif"
    p.write_text('"DN","cn"\n')
    assert detect_ad_format(open_text(p)) == "csvde"
    p.write_text('"SamAccountName","distinguishedName"\n')
    assert detect_ad_format(open_text(p)) == "adcsv"


def test_not_an_ad_export(tmp_path):
    p = tmp_path / "mailboxes.json"
    p.write_text('[\n  {"Guid": "x"}\n]\n')
    with pytest.raises(ExportError) as e:
        detect_ad_format(open_text(p))
    assert str(e.value) == f"{p}:1: not an AD export this tool reads (hint: {HINT})"
    p.write_text("\n\n")
    with pytest.raises(ExportError) as e:
        detect_ad_format(open_text(p))
    assert str(e.value) == f"{p}:1: no AD objects: the file is empty (hint: {HINT})"


def test_format_given_overrides_detection_and_is_checked(tmp_path):
    p = tmp_path / "a.txt"
    p.write_text("DN,cn\nCN=a,a\n")
    assert [r.dn for r in read_ad(p, "csvde")] == ["CN=a"]
    with pytest.raises(ExportError) as e:
        list(read_ad(p, "ldif"))  # read as LDIF, the header line is no 'attribute: value'
    assert str(e.value).startswith(f"{p}:1: a record must start with 'dn:'")
    with pytest.raises(ExportError) as e:
        list(read_ad(p, "xml"))
    assert str(e.value) == f"{p}: unknown AD export format 'xml' (hint: {HINT})"
