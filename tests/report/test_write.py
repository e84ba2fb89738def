import json
import os
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from harness import __version__
from harness.report import ReportError, run_dir, write_reports
from tests.report.samples import deep, error_run, failed_run, passed_run, provisioning_lines

NAMES = {
    "json": "report.json",
    "junit": "junit.xml",
    "markdown": "report.md",
    "provisioning": "provisioning.jsonl",
}


def write_logs(tmp_path: Path, *contents: bytes) -> list[Path]:
    paths = []
    for i, data in enumerate(contents, 1):
        path = tmp_path / "state" / "logs" / f"cycle-{i:06d}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        paths.append(path)
    return paths


def test_writes_the_four_files_and_returns_them_by_kind(tmp_path):
    out = tmp_path / "results" / "quickstart" / "20250301T120000Z"
    paths = write_reports(passed_run(), out)
    assert paths == {kind: out / name for kind, name in NAMES.items()}
    assert sorted(p.name for p in out.iterdir()) == sorted(NAMES.values())
    ET.parse(paths["junit"])
    assert paths["markdown"].read_text(encoding="utf-8").startswith("# quickstart: PASSED")
    assert paths["provisioning"].read_bytes() == b""


@pytest.mark.parametrize("make", [passed_run, failed_run, error_run])
def test_report_json_round_trips(tmp_path, make):
    run = make()
    before = deep(run)
    paths = write_reports(run, tmp_path)
    assert run == before, "write_reports must not change the caller's dict"
    raw = paths["json"].read_bytes()
    back = json.loads(raw.decode("utf-8"))
    assert back.pop("generatedBy") == f"exwb-harness {__version__}"
    assert back == run
    assert raw.endswith(b"}\n") and b'\n  "scenario": ' in raw  # pretty, one key a line
    if make is failed_run:
        assert "Zoë Müller".encode() in raw  # UTF-8, not \u escapes


def test_provisioning_logs_are_concatenated_in_order_line_for_line(tmp_path):
    first = "".join(provisioning_lines("c-1", 3)).encode("utf-8")
    second = "".join(provisioning_lines("c-2", 2)).encode("utf-8").replace(b"\n", b"\r\n")
    third_no_final_newline = b'{"cycleId": "c-3", "status": "Failure"}'
    logs = write_logs(tmp_path, first, second, third_no_final_newline)
    run = passed_run(logs)
    paths = write_reports(run, tmp_path / "out")
    data = paths["provisioning"].read_bytes()
    assert data == first + second + third_no_final_newline + b"\n"
    records = [json.loads(line) for line in data.decode("utf-8").splitlines()]
    assert [r["cycleId"] for r in records] == ["c-1"] * 3 + ["c-2"] * 2 + ["c-3"]
    assert json.loads(paths["json"].read_text(encoding="utf-8"))["warnings"] == run["warnings"]


def test_a_large_log_is_copied_whole(tmp_path):
    lines = provisioning_lines("c-1", 6000)  # over a megabyte: several copy batches
    (log,) = write_logs(tmp_path, "".join(lines).encode("utf-8"))
    assert log.stat().st_size > 1 << 20
    paths = write_reports(passed_run([log]), tmp_path / "out")
    assert paths["provisioning"].read_bytes() == log.read_bytes()


def test_a_missing_log_is_a_warning_not_a_crash(tmp_path):
    (log,) = write_logs(tmp_path, "".join(provisioning_lines("c-1", 2)).encode("utf-8"))
    missing = tmp_path / "state" / "logs" / "cycle-000009.jsonl"
    run = passed_run([missing, log])
    paths = write_reports(run, tmp_path / "out")
    assert paths["provisioning"].read_bytes() == log.read_bytes()
    warnings = json.loads(paths["json"].read_text(encoding="utf-8"))["warnings"]
    assert warnings[0] == run["warnings"][0]
    assert len(warnings) == 2
    assert str(missing) in warnings[1] and "missing" in warnings[1]
    # The other reports carry it too.
    assert str(missing) in paths["markdown"].read_text(encoding="utf-8")
    assert str(missing) in ET.parse(paths["junit"]).find("testsuite/system-err").text


def test_a_log_that_is_not_utf8_is_cut_with_a_warning(tmp_path):
    good = "".join(provisioning_lines("c-1", 2)).encode("utf-8")
    (log,) = write_logs(tmp_path, good + b'{"bad": "\xff"}\n' + good)
    paths = write_reports(passed_run([log]), tmp_path / "out")
    assert paths["provisioning"].read_bytes() == good
    warnings = json.loads(paths["json"].read_text(encoding="utf-8"))["warnings"]
    assert f"provisioning log {log} line 3 is not UTF-8; the log is cut there" in warnings


def test_unrepresentable_values_become_strict_json(tmp_path):
    run = passed_run()
    run["thresholds"][0]["measured"] = float("nan")
    run["steps"][0]["figures"] = {"path": tmp_path, "pair": (1, 2), "inf": float("inf")}
    run["file"] = "scen\udcffario.yaml"  # a lone surrogate from an undecodable file name
    paths = write_reports(run, tmp_path / "out")
    text = paths["json"].read_text(encoding="utf-8")
    back = json.loads(text, parse_constant=lambda c: pytest.fail(f"non-standard JSON {c}"))
    assert back["thresholds"][0]["measured"] is None
    assert back["steps"][0]["figures"] == {"path": str(tmp_path), "pair": [1, 2], "inf": None}
    assert back["file"] == "scen\\udcffario.yaml"


def test_rewrite_leaves_no_temporary_files(tmp_path):
    write_reports(failed_run(), tmp_path)
    paths = write_reports(passed_run(), tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(NAMES.values())
    assert json.loads(paths["json"].read_text(encoding="utf-8"))["verdict"] == "passed"


def test_unwritable_target_is_a_report_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ReportError, match="cannot create output directory"):
        write_reports(passed_run(), blocker / "out")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere")
def test_read_only_directory_is_a_report_error(tmp_path):
    tmp_path.chmod(0o500)
    try:
        with pytest.raises(ReportError, match="not writable"):
            write_reports(passed_run(), tmp_path)
    finally:
        tmp_path.chmod(0o700)


def test_run_dir_names_scenario_and_utc_time(tmp_path):
    started = datetime(2025, 3, 1, 14, 30, 5, tzinfo=timezone(timedelta(hours=2)))
    assert run_dir(tmp_path, "quickstart", started) == tmp_path / "quickstart" / "20250301T123005Z"
    assert run_dir(tmp_path, "../a b:c", started).parent == tmp_path / "a_b_c"
    now = run_dir(Path("results"), "x")
    assert now.parts[:2] == ("results", "x")
    assert datetime.strptime(now.name, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC) <= datetime.now(UTC)
