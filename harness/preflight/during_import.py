"""`exwb import --preflight`: the pre-flight of the tenant an import is about to write, run
while the import writes its files.

The import hands its `TenantSink` the entries and mailboxes just before writing them. At
200,000 mailboxes the pre-flight's own work (reading the entries into its snapshot, the first
cycle's plan, the rules) is about 15 s of CPU that the import's writing (about 20 s) need not
wait for. So on Linux the pre-flight runs in a forked child: it shares the import's memory
copy-on-write, reads the spooled entries through its own file handle (nothing is pickled on
the way in) and sends back only the finished texts. Elsewhere (no `fork`; macOS, where forking
a process that has loaded system frameworks is unsafe) it runs in the import's process before
the files are written. The texts are the same either way, and the same as `exwb preflight DIR`
writes of the folder afterwards.
"""

from __future__ import annotations

import contextlib
import io
import os
import pickle
import signal
import sys
import traceback
from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console

from harness.preflight import output
from harness.preflight.run import run_preflight
from harness.preflight.snapshot import from_import

if TYPE_CHECKING:
    from harness.engine.rules import Profile
    from harness.tenant.imports.build import Entry
    from harness.tenant.model import CloudMailbox


class PreflightFailed(RuntimeError):
    """The pre-flight's process raised, or ended without a report."""


@dataclass(frozen=True)
class Rendered:
    """What `exwb import --preflight` writes and prints: the report in its formats."""

    json: str
    markdown: str
    console: str
    exit_code: int


def can_fork() -> bool:
    return hasattr(os, "fork") and sys.platform.startswith("linux")


class ImportPreflight:
    """The import's `TenantSink` for `--preflight`; `result()` once the import has returned.
    `fork`: run beside the import's writing (default: where `can_fork`). Use it as a context
    manager, so a child is not left behind when the import fails."""

    def __init__(
        self, profile: Profile, folder: Path, console: Console, *, fork: bool | None = None
    ) -> None:
        self._profile = profile
        self._folder = folder
        self._console = console
        self._fork = can_fork() if fork is None else fork
        self._done: Rendered | None = None
        self._child: tuple[int, int] | None = None  # pid, read end of its pipe

    def __enter__(self) -> ImportPreflight:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def tenant(
        self, entries: Generator[Entry], mailboxes: Sequence[CloudMailbox], head: Mapping[str, Any]
    ) -> None:
        if not self._fork:
            self._done = self._render(entries, mailboxes, head)
            return
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: compute, send, and leave without the parent's exit handlers
            code = 0
            try:
                os.close(read)
                payload: tuple[str, Any] = ("ok", self._render(entries, mailboxes, head))
            except BaseException:
                payload, code = ("error", traceback.format_exc()), 1
            try:
                with os.fdopen(write, "wb") as f:
                    pickle.dump(payload, f)
            finally:
                os._exit(code)
        os.close(write)
        entries.close()  # its file handle is the child's to read
        self._child = (pid, read)

    def result(self) -> Rendered:
        if self._done is not None:
            return self._done
        if self._child is None:
            raise PreflightFailed("the import did not hand over its tenant")
        pid, read = self._child
        self._child = None
        with os.fdopen(read, "rb") as f:
            data = f.read()
        _, status = os.waitpid(pid, 0)
        try:
            kind, value = pickle.loads(data)
        except Exception:
            raise PreflightFailed(
                f"the pre-flight's process ended without a report ({_status(status)})"
            ) from None
        if kind != "ok":
            raise PreflightFailed(f"the pre-flight failed:\n{value}")
        self._done = value
        return value

    def close(self) -> None:
        """Stop a child whose report nobody will read."""
        if self._child is None:
            return
        pid, read = self._child
        self._child = None
        os.close(read)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)

    def _render(
        self, entries: Generator[Entry], mailboxes: Sequence[CloudMailbox], head: Mapping[str, Any]
    ) -> Rendered:
        snap = from_import(entries, mailboxes, self._profile, self._folder, head)
        report = run_preflight(snap)
        c, buffer = self._console, io.StringIO()
        text = Console(
            file=buffer,
            width=c.width,
            color_system=c.color_system,  # type: ignore[arg-type]
            force_terminal=c.is_terminal,
            no_color=c.no_color,
            soft_wrap=c.soft_wrap,
            highlight=False,
        )
        output.print_console(text, report)
        return Rendered(
            output.json_text(report), output.markdown(report), buffer.getvalue(), report.exit_code
        )


def _status(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"killed by signal {os.WTERMSIG(status)}"
    return f"exit {os.waitstatus_to_exitcode(status)}"
