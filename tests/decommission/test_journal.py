"""The decommission journal: append-only, fsync-ed, torn last line dropped, wrong tenant refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.decommission.journal import Journal, JournalError


def test_records_survive_a_reopen_and_the_last_event_wins(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    j = Journal.open(path, "tenant-a", "soa-uninstall")
    j.append({"step": "one", "status": "started"})
    j.append({"step": "one", "status": "done", "detail": "x"})
    j.append({"step": "two", "status": "started"})
    again = Journal.open(path, "tenant-a", "soa-uninstall")
    assert again.status("one") == "done" and again.completed("one")
    assert again.status("two") == "started" and not again.completed("two")
    assert again.status("three") is None
    assert [r["step"] for r in again.events()] == ["one", "one", "two"]


def test_a_record_torn_by_a_kill_is_dropped_and_cut_away(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    j = Journal.open(path, "t", "soa-uninstall")
    j.append({"step": "one", "status": "done"})
    with path.open("ab") as f:
        f.write(b'{"step": "two", "sta')
    again = Journal.open(path, "t", "soa-uninstall")
    assert again.status("two") is None
    assert path.read_bytes().endswith(b"\n")
    again.append({"step": "two", "status": "done"})
    assert Journal.open(path, "t", "soa-uninstall").completed("two")


def test_another_tenant_or_path_is_refused_by_name(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    Journal.open(path, "t", "soa-uninstall").append({"step": "one", "status": "done"})
    with pytest.raises(JournalError, match="belongs to tenant t"):
        Journal.open(path, "other", "soa-uninstall")
    with pytest.raises(JournalError, match="--path soa-uninstall"):
        Journal.open(path, "t", "management-tools")


def test_a_corrupt_line_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    Journal.open(path, "t", "soa-uninstall").append({"step": "one", "status": "done"})
    with path.open("a") as f:
        f.write("not json\n")
    with pytest.raises(JournalError, match=r"d\.jsonl:3: not a JSON record"):
        Journal.open(path, "t", "soa-uninstall")
