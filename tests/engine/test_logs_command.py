"""`exwb logs`: the provisioning log downloaded as the portal does, through the CLI entry, from
the logs real cycles wrote (and one failure written by the engine's own log writer)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from harness.engine import log as provlog
from harness.engine.log import Entry, LogContext, ProvisioningLog
from harness.report import provisioning_download as dl
from mockservers.runtime import start_tenant
from tests.engine.test_cycle import TENANT, cycle, edit
from tests.engine.test_job import cli
from tests.support.engine import mailbox_pairs

CA5 = 'from the cloud, "quoted"; ß'
FORMULA = '=HYPERLINK("http://example.invalid")'  # a display name Excel would run


@pytest.fixture(scope="module")
def state(tmp_path_factory) -> Path:
    """A job folder with a full cycle, a delta cycle with one edit, and one failure."""
    run = start_tenant(TENANT)
    folder = tmp_path_factory.mktemp("job")
    try:
        cycle(run, folder, "full")
        _, mbx = mailbox_pairs(TENANT, True)[0]
        edit(
            run,
            mbx,
            custom_attributes=lambda m: (*m.custom_attributes[:4], CA5, *m.custom_attributes[5:]),
        )
        cycle(run, folder, "delta")
    finally:
        run.stop()
    log = ProvisioningLog(folder, "failed-cycle", context=LogContext(job_id="job-1"))
    e = Entry("failing-user", "Update", target_dn="CN=Zoë Müller,OU=Corp,DC=contoso,DC=com")
    e.modified = [{"displayName": "extensionAttribute5", "oldValue": ["a"], "newValue": ["b"]}]
    e.step(0, "Success", "read from Exchange Online")
    e.step(3, "Failure", "LDAP 50: insufficient access")
    e.status, e.error_code, e.reason = "Failure", 50, "00002098: SecErr: DSID-03150F94"
    e.source_name = FORMULA
    log.write(e)
    log.close()
    return folder


def all_records(state: Path) -> list[dict]:
    return [r for p in provlog.log_files(state) for r in provlog.read(p)][::-1]


def read_csv(path: Path) -> list[dict[str, str]]:
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf") and b"\r\n" in raw  # what Excel reads as UTF-8
    with path.open(encoding="utf-8-sig", newline="") as f:
        return list(csv.DictReader(f))


def test_json_is_one_array_of_every_record_newest_first(state, capsys):
    code, out = cli(capsys, "logs", "--state-dir", str(state))
    assert code == 0, out
    assert json.loads(out) == all_records(state)
    assert json.loads(out)[0]["provisioningStatusInfo"]["errorInformation"]["errorCode"] == (
        "InsufficientRights"
    )


def test_json_to_a_file_filtered_by_cycle_and_status(state, capsys, tmp_path):
    records = all_records(state)
    delta = next(r["cycleId"] for r in records if r["cycleId"] != "failed-cycle")
    out_file = tmp_path / "logs.json"
    code, out = cli(
        capsys, "logs", "--state-dir", str(state), "--out", str(out_file), "--cycle", delta,
        "--status", "Success,skipped",
    )  # fmt: skip
    assert code == 0, out
    got = json.loads(out_file.read_text(encoding="utf-8"))
    assert got == [
        r for r in records if r["cycleId"] == delta and provlog.status(r) in ("Success", "Skipped")
    ]
    assert got and f"{len(got):,} records" in out


def test_csv_is_three_files_joined_on_the_change_id(state, capsys, tmp_path):
    code, out = cli(
        capsys, "logs", "--state-dir", str(state), "--format", "csv", "--out", str(tmp_path)
    )
    assert code == 0, out
    logs = read_csv(tmp_path / dl.LOGS)
    steps = read_csv(tmp_path / dl.STEPS)
    modified = read_csv(tmp_path / dl.MODIFIED)
    records = all_records(state)
    assert [row["Change ID"] for row in logs] == [r["changeId"] for r in records]
    assert list(logs[0]) == list(dl.LOG_COLUMNS)
    failed = logs[0]
    assert (failed["Status"], failed["Error Code"], failed["Target Identity Name"]) == (
        "Failure",
        "InsufficientRights",
        "Zoë Müller",
    )
    ids = {row["Change ID"] for row in logs}
    assert {row["Change ID"] for row in steps} <= ids and {r["Change ID"] for r in modified} <= ids
    assert len(steps) == sum(len(r["provisioningSteps"]) for r in records)
    export = next(
        s for s in steps if s["Change ID"] == failed["Change ID"] and s["Type"] == "Export"
    )
    assert export["Status"] == "Failure" and json.loads(export["Details"]) == {
        "LdapResultCode": "50"
    }
    edited = [m for m in modified if m["Property"] == "extensionAttribute5"]
    assert CA5 in [v for m in edited for v in json.loads(m["New Value"])]
    assert failed["Source Identity Name"] == "'" + FORMULA  # Excel shows it as text


def test_a_corrupt_line_is_named_by_file_and_line(state, capsys, tmp_path):
    broken = tmp_path / "broken"
    (broken / "logs").mkdir(parents=True)
    good = next(p for p in provlog.log_files(state) if p.stat().st_size)
    lines = good.read_text(encoding="utf-8").splitlines(keepends=True)
    bad = broken / "logs" / good.name
    bad.write_text(lines[0] + "{not json\n" + "".join(lines[1:]), encoding="utf-8")
    for fmt in ("json", "csv"):
        code, out = cli(
            capsys,
            "logs",
            "--state-dir",
            str(broken),
            "--format",
            fmt,
            "--out",
            str(tmp_path / fmt),
        )
        assert code == 2 and f"{bad}:2: not a JSON provisioning record" in out, out
        assert "Traceback" not in out


def test_bad_input_is_refused(capsys, tmp_path):
    code, out = cli(capsys, "logs", "--state-dir", str(tmp_path / "none"))
    assert code == 2 and "no such folder" in out
    code, out = cli(capsys, "logs", "--state-dir", str(tmp_path), "--status", "done")
    assert code == 2 and "each status must be one of success, failure" in out
    code, out = cli(capsys, "logs", "--state-dir", str(tmp_path))
    assert code == 0 and json.loads(out) == []  # no cycle yet: an empty array


def test_reading_newest_first_follows_a_growing_file(tmp_path):
    log = ProvisioningLog(tmp_path, "growing")
    for n in range(3):
        log.write(Entry(f"user-{n}"))
    log.close()
    index = provlog.LineIndex()
    got = [provlog.source_id(r) for _, r in provlog.read_newest_first(log.path, None, index)]
    assert got == ["user-2", "user-1", "user-0"]
    with log.path.open("a", encoding="utf-8") as f:  # the cycle writes on
        f.write(json.dumps(Entry("user-3").record("growing", 3)) + "\n")
        f.write('{"half a line')  # a record still being written is not read
    got = [(n, provlog.source_id(r)) for n, r in provlog.read_newest_first(log.path, 4, index)]
    assert got == [(3, "user-2"), (2, "user-1"), (1, "user-0")]
    assert next(provlog.read_newest_first(log.path, None, index))[0] == 4
    assert len(index.offsets) == 4
