"""Reading in a second process (`core.prefetch`): what the caller sees is what reading
in-process gives: the same records in order, the readers' warnings, their errors at the same
point; a child that dies or a caller that gives up early leaves nothing behind.

The jobs below are this module's own functions: the child (`python -m harness.core.prefetch`)
imports them by name, as it imports the import's readers.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.core.prefetch import Prefetch, ReaderDied, worth_a_child
from harness.tenant.imports.records import ExportError, Origin


def numbers(n: int) -> Iterator[int]:
    yield from range(n)


def warns_then(n: int) -> Iterator[str]:
    for i in range(n):
        if i == 3:
            warnings.warn("a reader's warning", UserWarning, stacklevel=1)
        yield f"r{i}"
    warnings.warn("said at the end", UserWarning, stacklevel=1)


def fails_after(n: int) -> Iterator[int]:
    yield from range(n)
    raise ExportError(Origin("export.ldf", 12), "a record without dn:", "start it with dn:")


def dies_after(n: int) -> Iterator[int]:
    yield from range(n)
    os._exit(3)


def unpicklable_error() -> Iterator[int]:
    class Local(Exception):
        pass

    yield 1
    raise Local("local class")


def test_records_arrive_in_order_across_jobs_and_batches() -> None:
    with Prefetch([(numbers, (1300,)), (numbers, (0,)), (numbers, (5,))], batch=100) as pf:
        got = [list(s) for s in pf.streams()]
    assert got == [list(range(1300)), [], list(range(5))]


def test_warnings_are_reissued_here_while_the_stream_is_read() -> None:
    with Prefetch([(warns_then, (10,))], batch=4) as pf:
        (stream,) = pf.streams()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            items = list(stream)
    assert items == [f"r{i}" for i in range(10)]
    assert [str(w.message) for w in caught] == ["a reader's warning", "said at the end"]
    assert all(w.category is UserWarning for w in caught)


def test_an_export_error_is_raised_where_the_stream_met_it() -> None:
    with Prefetch([(fails_after, (700,)), (numbers, (3,))], batch=256) as pf:
        first, _ = pf.streams()
        seen = []
        with pytest.raises(ExportError) as e:
            for x in first:
                seen.append(x)
    assert seen == list(range(700))
    assert str(e.value) == "export.ldf:12: a record without dn: (hint: start it with dn:)"
    assert e.value.origin == Origin("export.ldf", 12) and e.value.hint == "start it with dn:"


def test_an_error_that_cannot_travel_is_described() -> None:
    with Prefetch([(unpicklable_error, ())]) as pf:
        (stream,) = pf.streams()
        with pytest.raises(RuntimeError, match="Local: local class"):
            list(stream)


def test_a_child_that_dies_is_said_not_hung_on() -> None:
    with Prefetch([(dies_after, (10,))], batch=4) as pf:
        (stream,) = pf.streams()
        with pytest.raises(ReaderDied, match="exit code 3"):
            list(stream)


def test_streams_are_read_in_order() -> None:
    with Prefetch([(numbers, (3,)), (numbers, (3,))]) as pf:
        first, second = pf.streams()
        with pytest.raises(RuntimeError, match="before stream 0 ended"):
            next(second)
        assert list(first) == [0, 1, 2]
        assert list(pf.streams()[1]) == [0, 1, 2]


def test_giving_up_early_stops_the_child() -> None:
    pf = Prefetch([(numbers, (10_000_000,))], batch=512)
    (stream,) = pf.streams()
    assert next(stream) == 0
    pf.close()  # the child is blocked on a full pipe: close must not wait for it
    assert pf._proc.returncode is not None


def test_worth_a_child_counts_the_bytes(tmp_path: Path) -> None:
    small = tmp_path / "a"
    small.write_bytes(b"x" * 10)
    assert worth_a_child([small], min_bytes=10)
    assert not worth_a_child([small, tmp_path / "missing"], min_bytes=11)
