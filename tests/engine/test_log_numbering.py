"""Numbering provisioning-log files stays cheap however many logs the folder holds.

A served job writes one log per cycle (about 2,000 over 28 days on the 20-minute schedule), so
`open_next` must not list the folder each time: these tests count listings, not seconds.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.engine.log import open_next


@pytest.fixture
def listings(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The folders listed (os.scandir, which Path.glob and os.listdir's callers go through)."""
    seen: list[str] = []
    scandir = os.scandir

    def counting(path: str | os.PathLike[str] = ".") -> object:
        seen.append(os.fspath(path))
        return scandir(path)

    monkeypatch.setattr(os, "scandir", counting)
    yield seen


def create(folder: Path, kind: str = "cycle") -> str:
    path, file = open_next(folder, kind)
    file.close()
    return path.name


def test_the_folder_is_listed_once_however_many_logs_follow(tmp_path, listings):
    logs = tmp_path / "logs"
    names = [create(logs) for _ in range(300)]
    assert names == [f"cycle-{n:06d}.jsonl" for n in range(1, 301)]
    assert len(listings) == 1  # the first call; the other 299 probe one name each


def test_logs_another_process_wrote_meanwhile_are_stepped_over(tmp_path, listings):
    logs = tmp_path / "logs"
    assert create(logs) == "cycle-000001.jsonl"
    for n in (2, 3, 4):  # `exwb cycle` on the same state folder, or a crashed cycle's log
        (logs / f"cycle-{n:06d}.jsonl").write_text("")
    assert create(logs) == "cycle-000005.jsonl"
    assert len(listings) == 1


def test_a_new_process_starts_above_the_highest_log_there(tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "cycle-000041.jsonl").write_text("")  # written by an earlier process
    (logs / "cycle-000007.2.jsonl").write_text("")  # an older exwb's name for a retry
    (logs / "forward-000090.jsonl").write_text("")  # another kind counts apart
    assert create(logs) == "cycle-000042.jsonl"
    assert create(logs, "forward") == "forward-000091.jsonl"
    assert create(logs, "ondemand") == "ondemand-000001.jsonl"


def test_an_emptied_folder_starts_again_at_one(tmp_path, listings):
    logs = tmp_path / "logs"
    for _ in range(3):
        create(logs)
    for p in logs.iterdir():
        p.unlink()
    assert create(logs) == "cycle-000001.jsonl"
    assert len(listings) == 2  # listed again because the last log it wrote is gone
