"""Reading ahead in a second process: a child runs the readers while this process works.

An import of 200,000 mailboxes spends about a quarter of its time parsing files (LDIF, JSON)
and the rest on what it does with the records. `Prefetch` runs a list of reader
jobs, in order, in one child process and streams their records back in pickled batches, so the
parsing takes the second core. What the caller sees is what it would see reading in-process:
the same records in the same order, each job's warnings (`warnings.warn`) re-issued here as its
records arrive, and a job's exception raised here at the point of its stream where the child
met it. Memory stays bounded: the child blocks on the pipe once one batch waits unread. That
is enough when the child is the faster side, as the import's readers are; a chain of such
processes would need a queue between pipe and caller (tried for a pseudonymising stage: with
three processes on two cores it was no faster, see the bench notes in docs/benchmarks.md).

Jobs are read strictly in order (job 0 to its end, then job 1, ...), which is how every caller
consumes them. The child is `python -m harness.core.prefetch`, not a multiprocessing process:
multiprocessing's spawn re-runs the caller's main script, which a user's script without an
`if __name__ == "__main__"` guard does not survive, and fork is unsafe beside threads. So a
job is a module-level function (pickled by name) and picklable arguments. A child costs about
0.3 s to start: `worth_a_child` says when the inputs are large enough for it to pay.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
import struct
import subprocess
import sys
import tempfile
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Final

from harness.core.gcpause import paused

BATCH: Final = 512  # records per message: large enough that a message costs little per record
MIN_BYTES: Final = 32 << 20  # below this much input, reading in-process is as fast
_HEADER = struct.Struct("!I")  # each message: its length, then a pickle
_ROOT = str(Path(__file__).resolve().parents[2])  # where `harness` is importable from

Job = tuple[Callable[..., Iterable[Any]], tuple[Any, ...]]
_Warned = list[tuple[str, type[Warning]]]


def worth_a_child(paths: Iterable[Path], min_bytes: int = MIN_BYTES) -> bool:
    """Whether files this large are worth a reading process (missing files count as empty:
    the reader, in-process, then says what is wrong)."""
    total = 0
    for p in paths:
        try:
            total += p.stat().st_size
        except OSError:
            continue
    return total >= min_bytes


class ReaderDied(RuntimeError):
    """The reading process ended without saying why (killed, out of memory)."""


class Prefetch:
    """`with Prefetch(jobs) as pf:`, then read `pf.streams()` one after the other."""

    def __init__(self, jobs: Sequence[Job], *, batch: int = BATCH) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [_ROOT, env.get("PYTHONPATH")]))
        self._errors = tempfile.TemporaryFile()  # noqa: SIM115 - the child's stderr; close() closes it
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "harness.core.prefetch"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._errors,
            env=env,
        )
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._out: IO[bytes] = self._proc.stdout
        try:
            order = (list(jobs), batch)
            self._proc.stdin.write(pickle.dumps(order, pickle.HIGHEST_PROTOCOL))
            self._proc.stdin.close()
        except OSError:
            pass  # it died at once: the first read says so
        self._jobs = len(jobs)
        self._reading = 0  # the job whose records come next down the pipe

    def __enter__(self) -> Prefetch:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stop the child: at once if the caller gives up before the last stream's end."""
        if self._reading < self._jobs:
            self._proc.kill()
        try:
            self._proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._out.close()
        self._errors.close()

    def streams(self) -> list[Iterator[Any]]:
        """One iterator per job; each must be read to its end before the next is started."""
        return [self._records(i) for i in range(self._jobs)]

    def _message(self) -> tuple[str, Any, _Warned]:
        head = self._out.read(_HEADER.size)
        size = _HEADER.unpack(head)[0] if len(head) == _HEADER.size else -1
        data = self._out.read(size) if size > 0 else b""
        if len(data) != size:  # no message, or one cut short: the child is gone
            self._proc.wait()
            self._errors.seek(0)
            said = self._errors.read().decode("utf-8", "replace").strip().splitlines()
            raise ReaderDied(
                f"the reading process ended unexpectedly (exit code {self._proc.returncode}"
                + (f": {said[-1]}" if said else "")
                + ")"
            )
        with paused():  # a batch is thousands of acyclic objects
            message: tuple[str, Any, _Warned] = pickle.loads(data)
        return message

    def _records(self, index: int) -> Iterator[Any]:
        if index != self._reading:
            raise RuntimeError(f"stream {index} read before stream {self._reading} ended")
        while True:
            kind, payload, warned = self._message()
            for message, category in warned:
                warnings.warn(message, category, stacklevel=2)
            if kind == "items":
                yield from payload
            elif kind == "end":
                self._reading += 1
                return
            else:
                raise payload


def _child(out: IO[bytes], jobs: list[Job], batch: int) -> None:
    def send(kind: str, payload: Any, caught: list[warnings.WarningMessage]) -> None:
        warned: _Warned = [(str(w.message), w.category) for w in caught]
        caught.clear()
        data = pickle.dumps((kind, payload, warned), pickle.HIGHEST_PROTOCOL)
        out.write(_HEADER.pack(len(data)))
        out.write(data)
        out.flush()

    # A reader builds many small acyclic objects and lives only for its jobs: the cyclic
    # collector would only re-traverse them.
    with paused():
        for fn, args in jobs:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                buf: list[Any] = []
                try:
                    for item in fn(*args):
                        buf.append(item)
                        if len(buf) >= batch:
                            send("items", buf, caught)
                            buf = []
                    send("items", buf, caught)
                except Exception as e:  # the caller raises it where its stream met it
                    send("items", buf, caught)  # the records read before it
                    send("error", _portable(e), caught)
                    return
                send("end", None, caught)


def _portable(e: Exception) -> Exception:
    """`e` if it survives pickling as itself, else a RuntimeError saying what it was."""
    try:
        back = pickle.loads(pickle.dumps(e))
        if type(back) is type(e) and str(back) == str(e):
            return e
    except Exception:
        pass
    return RuntimeError(f"{type(e).__name__}: {e}")


def main() -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    jobs, batch = pickle.load(sys.stdin.buffer)
    with contextlib.suppress(BrokenPipeError):  # the caller stopped reading
        _child(sys.stdout.buffer, jobs, batch)
    return 0


if __name__ == "__main__":
    sys.exit(main())
