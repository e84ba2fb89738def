"""The engine's provisioning-log files as the fake Graph serves them (auditLogs/provisioning).

`FileSource(state_dirs)` is a `mockservers.cloud.provisioning.RecordSource` (structurally: the
engine does not import the fakes), which `exwb serve --writeback` installs on the tenant's
CloudService (`served_job`): the records of every log file of the job state folders, newest first,
read from disk on each request (a cycle's records appear as it writes them) and never all held
at once. A cursor names one record as `<folder index>:<file name>:<line>`; a page resumes after
it, so records written since the first page do not shift the later ones.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from harness.engine import log as provlog

INDEXED = 16  # files whose line offsets a FileSource keeps


class FileSource:
    """The log files of `state_dirs`, newest record first (a `RecordSource`)."""

    def __init__(self, state_dirs: Sequence[Path]) -> None:
        self.state_dirs = list(state_dirs)
        # The line offsets of the files read last, so paging through a large cycle's file
        # scans it once, not once a page (8 bytes a line, for at most INDEXED files).
        self._indexes: OrderedDict[Path, provlog.LineIndex] = OrderedDict()

    def _index(self, path: Path) -> provlog.LineIndex:
        index = self._indexes.pop(path, None) or provlog.LineIndex()
        self._indexes[path] = index
        while len(self._indexes) > INDEXED:
            self._indexes.popitem(last=False)
        return index

    def files(self) -> list[tuple[int, Path]]:
        """(folder index, file), newest first: by the time of each file's first record."""
        found = [
            (when, i, p)
            for i, d in enumerate(self.state_dirs)
            for when, p in provlog.timed_files(d)
        ]
        found.sort(key=lambda f: (f[0], f[1], f[2].name), reverse=True)
        return [(i, p) for _, i, p in found]

    def __call__(self, after: str | None) -> Iterator[tuple[str, dict[str, Any]]]:
        files = self.files()
        start, below = 0, None
        if after is not None:
            index, name, line = _cursor(after)
            at = [n for n, (i, p) in enumerate(files) if i == index and p.name == name]
            if not at:
                raise KeyError(after)
            start, below = at[0], line
        for n, (i, path) in enumerate(files[start:]):
            lines = self._index(path)
            for line, rec in provlog.read_newest_first(path, below if n == 0 else None, lines):
                yield f"{i}:{path.name}:{line}", rec


def _cursor(text: str) -> tuple[int, str, int]:
    index, _, rest = text.partition(":")
    name, _, line = rest.rpartition(":")
    if not (index.isdigit() and line.isdigit() and name):
        raise KeyError(text)
    return int(index), name, int(line)
