"""Timers, memory and CPU figures of processes, and the machine a benchmark ran on.

Linux figures come from /proc (VmHWM is a process's peak resident set, VmRSS its current one);
a child's own peak RSS and CPU come from `os.wait4`'s rusage when it exits. Where /proc is
missing a figure is None, never a guess.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from harness import __version__

MIB = 1024 * 1024


def _status_kib(pid: int, field: str) -> int | None:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    return None


def peak_rss_mib(pid: int) -> float | None:
    """A running process's peak resident set so far (VmHWM), in MiB."""
    kib = _status_kib(pid, "VmHWM")
    return None if kib is None else round(kib / 1024, 1)


def rss_mib(pid: int) -> float | None:
    """A running process's resident set now (VmRSS), in MiB."""
    kib = _status_kib(pid, "VmRSS")
    return None if kib is None else round(kib / 1024, 1)


def cpu_seconds(pid: int) -> float:
    """User + system CPU a running process has used so far (0.0 when it cannot be read)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class CpuMeter:
    """CPU used by a set of running processes (the servers) between `start` and `stop`."""

    def __init__(self, pids: list[int]) -> None:
        self.pids = list(pids)
        self._start = 0.0

    def start(self) -> None:
        self._start = sum(cpu_seconds(p) for p in self.pids)

    def stop(self) -> float:
        return round(sum(cpu_seconds(p) for p in self.pids) - self._start, 2)


@dataclass(frozen=True, slots=True)
class ChildRun:
    """A child process that ran to its end: exit code, output and its own resource figures."""

    returncode: int
    stdout: str
    stderr: str
    wall_s: float
    cpu_s: float  # user + system of the child itself
    peak_rss_mib: float  # the child's own ru_maxrss


def run_child(
    args: list[str], *, env: dict[str, str] | None = None, timeout: float = 3600.0
) -> ChildRun:
    """Run `python <args>` to its end; wall time, CPU and peak RSS are the child's own.

    `os.wait4` reaps the child and gives its own CPU. Peak RSS is the child's VmHWM, read
    while it runs: its rusage ru_maxrss would not do, since Linux carries into it the memory of
    the parent it was forked from (a 13 MiB child of a 700 MiB bench process reported 730 MiB).
    VmHWM belongs to the address space the exec made and only grows, so the last reading,
    at most ~50 ms before the child exits, is its peak; ru_maxrss stays the fallback for a
    child too short to be read.
    """
    import tempfile

    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, *args], stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=env
        )
        deadline = started + timeout
        hwm_kib: int | None = None
        polls = 0
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            polls += 1
            if polls % 10 == 0:
                hwm_kib = _status_kib(proc.pid, "VmHWM") or hwm_kib
            if time.perf_counter() > deadline:
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.005)
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return ChildRun(
            returncode=proc.returncode,
            stdout=out.read(),
            stderr=err.read(),
            wall_s=round(wall, 3),
            cpu_s=round(usage.ru_utime + usage.ru_stime, 2),
            peak_rss_mib=round((hwm_kib or usage.ru_maxrss) / 1024, 1),  # KiB on Linux
        )


class Stopwatch:
    """`with Stopwatch() as sw: ...` then `sw.seconds`."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._t0 = 0.0

    def __enter__(self) -> Stopwatch:
        self._t0 = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = round(time.perf_counter() - self._t0, 3)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith(("model name", "hardware", "cpu model")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return None


def machine() -> dict[str, object]:
    """The machine and software a run measured: CPU, cores, memory, OS, Python, exwb."""
    usable: int | None
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "usable_cores": usable,
        "memory_gib": _memory_gib(),
        "os": platform.platform(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "exwb": __version__,
    }


def machine_line(m: dict[str, object]) -> str:
    """One line for a report: CPU, cores, memory, OS, Python and exwb version."""
    return (
        f"{m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB, {m['os']}, "
        f"{m['python']}, exwb {m['exwb']}"
    )
