"""`exwb serve --writeback`: the served tenant's writeback job, running on its schedule.

Once the tenant listens, `start` builds the job of the running tenant
(`WritebackJob.for_endpoints`: Graph as the read-only app, AD as the writeback account) and puts
it on the harness clock with `harness.engine.schedule.Schedule`, so a delta cycle runs every
interval (PT20M by default, as the real job) while the user's own tools watch AD: an edit made
in the fake cloud arrives in AD by itself, as in production.

Where cycles run. The engine calls LDAP and HTTP on servers that this process's twisted reactor
serves, so a cycle on the reactor thread would wait for itself forever. On the wall clock,
`call_at` fires on a daemon timer thread; on a simulated clock, the cycles that fall due run
inside whoever calls `advance` (the admin route does that off the reactor thread). A cycle that
would still start on the reactor thread is refused (recorded as a failed scheduled cycle, as
an unreachable server is) instead of deadlocking the tenant.

While the job is paused (`exwb status --pause`, Graph's `pause`) or disabled (4 weeks in
quarantine) the schedule looks again every interval, so `exwb status --resume` or a restart on
the same state folder takes effect without restarting the server.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from twisted.python.threadable import isInIOThread

from harness.commands.sync_api import domain_of, served_principal
from harness.core import clock
from harness.core.errors import UsageError
from harness.engine import logsource
from harness.engine.cycle import CycleError, CycleReport
from harness.engine.health import INTERVAL, iso_duration, parse_iso_duration
from harness.engine.job import WritebackJob
from harness.engine.rules import GA, Profile
from harness.engine.schedule import Schedule
from harness.engine.state import StateError

if TYPE_CHECKING:
    from rich.console import Console

    from harness.commands.sync_api import GraphJob
    from harness.core.endpoints import Endpoints
    from mockservers.cloud.service import CloudService

STOP_WAIT = 120.0  # seconds shutdown waits for a cycle in flight to save its state


def interval(text: str) -> timedelta:
    """--interval: an ISO 8601 duration longer than zero (argparse names the flag)."""
    try:
        span = parse_iso_duration(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    if span <= timedelta(0):
        raise argparse.ArgumentTypeError(f"{text!r} must be longer than zero")
    return span


def job_profile(text: str) -> Profile:
    """--job-profile: a built-in profile's name or a profile file, loaded at parse time."""
    from harness.commands.engine_args import profile_option

    try:
        return profile_option(text)
    except UsageError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def add_arguments(p: argparse.ArgumentParser) -> None:
    """`exwb serve`'s options for the served job."""
    g = p.add_argument_group(
        "writeback job",
        "Run the writeback engine's job inside the served tenant, on its schedule: cycles run "
        "by themselves and write cloud edits to AD, as the real job does every 20 minutes. "
        "`exwb status --state-dir <job state>` shows it.",
    )
    g.add_argument(
        "--writeback",
        action="store_true",
        help="run the writeback job on its schedule while serving",
    )
    g.add_argument(
        "--interval",
        type=interval,
        metavar="DURATION",
        help="the schedule's interval, ISO 8601 (default PT20M, the job's documented one)",
    )
    g.add_argument(
        "--job-state",
        type=Path,
        metavar="DIR",
        help="the job's state folder (default: <--state-dir>/job, else a temporary folder "
        "removed on exit)",
    )
    g.add_argument(
        "--job-profile",
        type=job_profile,
        metavar="P",
        help="the job's mapping profile: ga (default), preview, or a YAML file",
    )


@dataclass(slots=True)
class ServedJob:
    """The served job, its schedule and where its state lives."""

    job: _ServedWritebackJob
    schedule: Schedule
    state_dir: Path
    temporary: bool  # the state folder is removed on stop

    def stop(self, wait: float = STOP_WAIT) -> bool:
        """Cancel the next cycle and wait up to `wait` s for one in flight (never call it on
        the reactor thread while a cycle runs: the cycle needs the reactor). Returns False if
        a cycle was still running; a temporary state folder is then left in place."""
        self.schedule.stop()
        idle = _idle(self.job, wait)
        if idle and self.temporary:
            shutil.rmtree(self.state_dir, ignore_errors=True)
        return idle


def _idle(job: _ServedWritebackJob, wait: float) -> bool:
    if not job.running.acquire(timeout=wait):
        return False
    job.running.release()
    return True


def start(
    endpoints: Endpoints,
    args: argparse.Namespace,
    out: Console | None = None,
    cloud: CloudService | None = None,
) -> ServedJob | None:
    """With --writeback: build the tenant's job, start its schedule, serve its provisioning
    log from `cloud`'s Graph (`GET /v1.0/auditLogs/provisioning`), print where its state is
    and stop it (waiting for a cycle in flight) before the reactor shuts down. Without
    --writeback: None. On the reactor thread (exwb serve, once the tenant listens) an unusable
    job state folder is printed and stops the server; elsewhere it raises UsageError.

    With `cloud`, Graph's synchronization API is installed on it (`harness.commands.
    sync_api`): the served job under a service principal named after the AD domain, and jobs
    created through Graph in folders of their own (below --state-dir, else temporary)."""
    from mockservers.runtime import reactor

    try:
        served = _start(endpoints, args, out, cloud)
        if cloud is not None:
            _attach_api(endpoints, args, cloud, served)
        return served
    except UsageError as e:
        if not isInIOThread():
            raise
        print(f"exwb serve: error: {e}", file=sys.stderr)
        reactor.stop()
        return None


def _start(
    endpoints: Endpoints,
    args: argparse.Namespace,
    out: Console | None,
    cloud: CloudService | None = None,
) -> ServedJob | None:
    from twisted.internet import threads

    from mockservers.runtime import reactor

    options = (("--interval", args.interval), ("--job-state", args.job_state))
    given = [flag for flag, v in (*options, ("--job-profile", args.job_profile)) if v is not None]
    if not args.writeback:
        if given and out is not None:
            out.print(f"[yellow]warning:[/] {', '.join(given)} ignored without --writeback")
        return None
    profile = args.job_profile or GA
    span = args.interval or INTERVAL
    temporary = args.job_state is None and args.state_dir is None
    if args.job_state is not None:
        state_dir = args.job_state
    elif args.state_dir is not None:
        state_dir = args.state_dir / "job"
    else:
        state_dir = Path(tempfile.mkdtemp(prefix="exwb-job-"))
    job = _ServedWritebackJob.for_endpoints(endpoints, state_dir, profile, interval=span)
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
        job.keep_interval()  # `exwb status` on the folder shows the schedule it runs on
        # Before the schedule starts: the job's lock is then free on the reactor thread.
        job.set_domain(domain_of(endpoints.base_dn))
        job.set_service_principal(served_principal(endpoints.tenant_id, endpoints.base_dn).id)
    except OSError as e:
        raise UsageError(f"--job-state {state_dir}: {e.strerror}") from None
    except StateError as e:
        raise UsageError(f"--job-state: {e}") from None
    if cloud is not None:
        cloud.provisioning = logsource.FileSource([state_dir])  # GET /auditLogs/provisioning
    schedule = Schedule(job)
    served = ServedJob(job, schedule, state_dir, temporary)
    schedule.start()
    # Before the reactor stops, wait (off the reactor thread) for a cycle in flight to finish.
    reactor.callFromThread(
        reactor.addSystemEventTrigger,
        "before",
        "shutdown",
        lambda: threads.deferToThread(served.stop),
    )
    if out is not None:
        kept = "removed on exit" if temporary else f"exwb status --state-dir {state_dir}"
        out.print(
            f"  writeback job  {state_dir}  (every {iso_duration(span)}, profile "
            f"{profile.name}; {kept})",
            highlight=False,
        )
        out.file.flush()
    return served


def _attach_api(
    endpoints: Endpoints, args: argparse.Namespace, cloud: CloudService, served: ServedJob | None
) -> None:
    """Graph's synchronization API on `cloud` (see `start`)."""
    from twisted.internet import threads

    from harness.commands import sync_api
    from mockservers.runtime import reactor

    profile = args.job_profile or GA
    span = args.interval or INTERVAL
    temporary = args.state_dir is None
    root = args.state_dir / "sync-jobs" if args.state_dir else Path(tempfile.mkdtemp("-sync"))
    created: list[GraphJob] = []
    logs = cloud.provisioning
    if not isinstance(logs, logsource.FileSource):
        logs = cloud.provisioning = logsource.FileSource([])

    def new_job(folder: Path) -> WritebackJob:
        folder.mkdir(parents=True, exist_ok=True)
        logs.state_dirs.append(folder)  # its records in GET /auditLogs/provisioning too
        return _ServedWritebackJob.for_endpoints(endpoints, folder, profile, interval=span)

    pair = None
    if served is not None:
        sp = sync_api.served_principal(endpoints.tenant_id, endpoints.base_dn)
        pair = (sp, sync_api.GraphJob(served.job, served.schedule))
    sync_api.attach(cloud, new_job, root, pair, created.append)

    def stop() -> None:
        for job in created:
            if job.schedule is not None:
                job.schedule.stop()
        if temporary:
            shutil.rmtree(root, ignore_errors=True)

    reactor.callFromThread(
        reactor.addSystemEventTrigger, "before", "shutdown", lambda: threads.deferToThread(stop)
    )


class _ServedWritebackJob(WritebackJob):
    """A WritebackJob that refuses to run on the reactor thread and, paused or disabled, is
    looked at again every interval."""

    def __init__(self, *a: Any, **kw: Any) -> None:
        super().__init__(*a, **kw)
        self.running = threading.Lock()  # held while a scheduled cycle runs (stop waits)

    def keep_interval(self) -> None:
        with self._state() as state:
            state.interval = iso_duration(self.interval)

    def next_run(self) -> datetime | None:
        when = super().next_run()
        return clock.now() + self.interval if when is None else when

    def run(self, mode: str = "delta") -> CycleReport:
        if isInIOThread():
            raise CycleError(
                "a scheduled cycle cannot run on the reactor thread (it serves the LDAP and "
                "HTTP the cycle calls): advance the simulated clock from another thread"
            )
        if super().next_run() is None:
            why = "paused" if self.status()["schedule"]["state"] == "Paused" else "disabled"
            raise CycleError(f"the job in {self.state_dir} is {why}: not run")
        with self.running:
            return super().run(mode)
