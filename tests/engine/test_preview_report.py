"""`exwb cycle --mode dry-run --report DIR`: the preview's four files, through the real CLI.

preview.csv must open in Excel (BOM, CRLF, RFC 4180 quoting, multi-values joined with ';'),
preview.json carry the whole preview, preview.md summarise it, and the same tenant must give
byte-identical files on a second run.
"""

from __future__ import annotations

import csv
import io
import json

import pytest

from harness.cli import main
from harness.report.preview_csv import COLUMNS
from harness.report.preview_html import render_html
from harness.tenant import TenantSpec, generate
from tests.support.preview import MARKUP, TOO_LONG, break_tenant

TENANT = generate(
    TenantSpec(mailboxes=60, seed=21, cloud_managed_fraction=0.8, non_ascii_fraction=0.3)
)
NAMES = ("preview.json", "preview.md", "preview.csv", "preview.html")


def _dry(run, tmp_path, name: str, *extra: str) -> int:
    endpoints = tmp_path / "endpoints.json"
    run.endpoints.write(endpoints)
    state = str(tmp_path / f"state-{name}")
    argv = ["cycle", "--endpoints-file", str(endpoints), "--state-dir", state, "--mode"]
    return main([*argv, "dry-run", "--report", str(tmp_path / name), *extra])


@pytest.fixture
def broken(run):
    return break_tenant(run, TENANT)


def test_the_csv_opens_in_excel(run, broken, tmp_path):
    assert _dry(run, tmp_path, "a") == 1
    raw = (tmp_path / "a" / "preview.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # UTF-8 BOM: Excel reads the file as UTF-8
    body = raw[3:].decode("utf-8")
    rows = list(csv.DictReader(io.StringIO(body, newline="")))
    # CRLF ends each record; the LF inside AD's diagnostics stays inside quotes.
    assert body.endswith("\r\n") and body.count("\r\n") == len(rows) + 1
    assert tuple(rows[0]) == COLUMNS
    proxy = next(r for r in rows if r["attribute"] == "proxyAddresses")
    assert proxy["newValue"].split(";")[-1] == broken.extra_address
    assert proxy["outcome"] == "change" and proxy["errorCode"] == ""
    long = next(r for r in rows if r["newValue"] == TOO_LONG)
    assert (long["outcome"], long["errorCode"]) == ("failure", "19")
    assert long["diagnostic"].startswith("00002082: AtrErr: DSID-03151904, #1:\n\t0:")
    markup = next(r for r in rows if r["attribute"] == "extensionAttribute2")
    assert markup["newValue"] == MARKUP  # quotes doubled in the file, read back whole
    skipped = [r for r in rows if r["outcome"] == "skipped"]
    assert skipped and all(r["attribute"] == "" and r["reason"] for r in skipped)
    assert any(not r["dn"] and r["reason"] == "not synchronized from on-premises" for r in skipped)
    assert any(ord(ch) > 127 for r in rows for ch in r["dn"])  # non-ASCII names survive


def test_json_and_markdown_say_the_same(run, broken, tmp_path):
    _dry(run, tmp_path, "a")
    preview = json.loads((tmp_path / "a" / "preview.json").read_text(encoding="utf-8"))
    assert preview["outcomes"]["failure"] == 2 and preview["accessChecked"] is True
    assert preview["failures"] == {
        "19: constraintViolation": 1,
        "50: insufficientAccessRights": 1,
    }
    assert [o["outcome"] for o in preview["objects"][:2]] == ["failure", "failure"]
    md = (tmp_path / "a" / "preview.md").read_text(encoding="utf-8")
    assert "**4** objects would change, **2** would fail" in md
    assert "| extensionAttribute1 | 3 | 2 |" in md
    assert "&lt;script>" in md and "<script>" not in md


def test_the_same_tenant_gives_the_same_bytes(run, broken, tmp_path):
    _dry(run, tmp_path, "a")
    _dry(run, tmp_path, "b")
    for name in NAMES:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name


def test_a_large_preview_caps_the_page_and_points_to_the_csv(run, broken, tmp_path):
    _dry(run, tmp_path, "a")
    preview = json.loads((tmp_path / "a" / "preview.json").read_text(encoding="utf-8"))
    page = render_html(preview, max_rows=5)
    assert page.count('<tr class="') == 5
    assert "The first 5 of" in page and "preview.csv" in page


def test_report_without_a_dry_run_is_a_usage_error(run, tmp_path, capsys):
    endpoints = tmp_path / "endpoints.json"
    run.endpoints.write(endpoints)
    argv = ["cycle", "--endpoints-file", str(endpoints), "--report", str(tmp_path / "r")]
    assert main(argv) == 2
    assert "--report goes with --mode dry-run" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ('=HYPERLINK("http://x")', '\'=HYPERLINK("http://x")'),
        ("+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"),
        ("@SUM(1)", "'@SUM(1)"),
        ("-2+3", "'-2+3"),
        ("\tx", "'\tx"),
        ("-1", "-1"),
        ("+4.5", "+4.5"),
        ("cost centre 7", "cost centre 7"),
    ],
)
def test_a_cell_excel_would_evaluate_is_written_as_text(value, shown):
    """Tenant values reach the CSV unchanged except where Excel would run them as a formula."""
    from harness.report.preview_csv import cell

    assert cell(value) == shown
