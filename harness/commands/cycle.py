"""`exwb cycle`, `exwb verify` and `exwb status`: the writeback engine against a tenant."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from harness.commands import DEFAULT_STATE, read_endpoints
from harness.core.errors import UsageError

MASS_CHANGE_THRESHOLD = 500  # harness.engine.cycle.MASS_CHANGE_THRESHOLD, without importing it


PASSWORD_ENV = "EXWB_BIND_PASSWORD"
SECRET_ENV = "EXWB_CLIENT_SECRET"


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--endpoints-file",
        type=Path,
        metavar="F",
        help="the endpoints JSON written by exwb serve (or give the settings below)",
    )
    p.add_argument(
        "--profile",
        default="ga",
        metavar="P",
        help="ga (default), preview, or a custom profile YAML file",
    )
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    g = p.add_argument_group(
        "explicit connection settings",
        "Target any LDAP directory (OpenLDAP slapd, a lab AD) and any Graph endpoint; each "
        "overrides the endpoints file. Secrets come from a file or the environment, never "
        "from the command line (other users can read a process's arguments).",
    )
    g.add_argument("--ldap-url", metavar="URL", help="ldap://host:port or ldaps://host:port")
    g.add_argument("--bind-dn", metavar="DN", help="the writeback service account's DN")
    g.add_argument(
        "--bind-password-file",
        type=Path,
        metavar="FILE",
        help=f"file holding its password (default: ${PASSWORD_ENV})",
    )
    g.add_argument("--base-dn", metavar="DN", help="where users are searched")
    g.add_argument("--graph-url", metavar="URL", help="Graph root, e.g. http://127.0.0.1:8443")
    g.add_argument("--token-url", metavar="URL", help="the OAuth2 token endpoint")
    g.add_argument("--client-id", metavar="ID", help="the app that reads users")
    g.add_argument(
        "--client-secret-file",
        type=Path,
        metavar="FILE",
        help=f"file holding the app's secret (default: ${SECRET_ENV})",
    )


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "cycle",
        help="run one writeback cycle (Exchange Online -> AD)",
        description="Run one writeback cycle of the engine against the tenant in "
        "the endpoints file: import changes from Graph, match AD users by anchor, "
        "scope to cloud-managed mailboxes, export the minimal modifies over LDAP as "
        "the writeback service account. Exit 0 when every object succeeded, 1 when "
        "one failed or the mass-change guard stopped the cycle, 2 on bad input.",
    )
    _common(p)
    p.add_argument(
        "--mode",
        choices=("delta", "full", "dry-run"),
        default="delta",
        help="delta (default; the first one runs as the initial cycle), full, dry-run",
    )
    p.add_argument(
        "--object",
        metavar="ID",
        help="provision one object on demand (its id or UPN): the four steps and their outcome",
    )
    _state_dir(p)
    p.add_argument(
        "--allow-mass-change",
        action="store_true",
        help="export even when more objects would change than the mass-change threshold",
    )
    p.add_argument(
        "--mass-change-threshold",
        type=_count,
        default=MASS_CHANGE_THRESHOLD,
        metavar="N",
        help=f"stop before export when more than N objects would change "
        f"(default {MASS_CHANGE_THRESHOLD}, Entra Connect's deletion threshold)",
    )
    p.add_argument(
        "--quarantine-min-failures",
        type=_count,
        default=None,
        metavar="N",
        help="escrowed failures before the 40%% rule is evaluated (default: the documented "
        "5,000, scaled to the tenant)",
    )
    p.set_defaults(run=run_cycle_command)
    v = sub.add_parser(
        "verify",
        help="report whether AD matches the cloud for every in-scope mailbox",
        description="Round-trip parity report: per attribute, matches and mismatches "
        "between what the profile wants from Exchange Online and what AD holds, for "
        "every cloud-managed mailbox. Exit 0 when they agree, 1 when not.",
    )
    _common(v)
    v.set_defaults(run=run_verify_command)
    st = sub.add_parser(
        "status",
        help="show the writeback job's health (like Graph's synchronizationJob)",
        description="The job's state (Active, Paused, Quarantine, NotRun), its last "
        "execution, quarantine reason, escrowed failures and warnings. --pause, --resume "
        "and --restart change the job as the portal's buttons do. Exit 0 when the job is "
        "Active or has not run, 1 when paused or quarantined.",
    )
    _state_dir(st)
    st.add_argument(
        "--profile", default="ga", metavar="P", help="ga (default), preview, or a YAML file"
    )
    st.add_argument("--json", action="store_true", help="print the job as JSON")
    change = st.add_mutually_exclusive_group()
    change.add_argument("--pause", action="store_true", help="pause the job")
    change.add_argument("--resume", action="store_true", help="resume a paused job")
    change.add_argument(
        "--restart",
        action="store_true",
        help="restart provisioning: clear watermark, escrow and quarantine",
    )
    st.set_defaults(run=run_status_command)


def _state_dir(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--state-dir",
        type=Path,
        default=DEFAULT_STATE,
        metavar="D",
        help=f"watermark, escrow and provisioning logs (default {DEFAULT_STATE})",
    )


def _count(text: str) -> int:
    try:
        n = int(text.replace(",", "").replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if n < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must not be negative")
    return n


def _secret(path: Path | None, env: str, what: str, fallback: str) -> str:

    if path is not None:
        try:
            return path.read_text(encoding="utf-8").strip()
        except OSError as e:
            raise UsageError(f"{what} file {path}: {e.strerror}") from None
    return os.environ.get(env) or fallback


def _profile(name: str):
    from harness.engine.rules import BUILTIN_PROFILES, ProfileError, load_profile

    if name in BUILTIN_PROFILES:
        return BUILTIN_PROFILES[name]
    try:
        return load_profile(Path(name))
    except (ProfileError, OSError) as e:
        raise UsageError(str(e)) from None


def _load(args: argparse.Namespace):
    from harness.core.endpoints import Endpoints
    from harness.engine.source import CloudCredentials
    from harness.engine.target import LdapCredentials

    ep: Endpoints | None = None
    if args.endpoints_file is not None:
        ep = read_endpoints(args.endpoints_file)

    def given(flag: str | None, field: str) -> str:
        return flag or (str(getattr(ep, field) or "") if ep is not None else "")

    ldap = LdapCredentials(
        given(args.ldap_url, "ldap_url"),
        given(args.bind_dn, "bind_dn"),
        _secret(
            args.bind_password_file, PASSWORD_ENV, "--bind-password", given(None, "bind_password")
        ),
        given(args.base_dn, "base_dn"),
    )
    cloud = CloudCredentials(
        given(args.graph_url, "graph_url"),
        given(args.token_url, "token_url"),
        given(args.client_id, "readonly_client_id"),
        _secret(
            args.client_secret_file,
            SECRET_ENV,
            "--client-secret",
            given(None, "readonly_client_secret"),
        ),
    )
    missing = [
        flag
        for flag, value in (
            ("--ldap-url", ldap.url),
            ("--bind-dn", ldap.bind_dn),
            (f"--bind-password-file or ${PASSWORD_ENV}", ldap.password),
            ("--base-dn", ldap.base_dn),
            ("--graph-url", cloud.graph_url),
            ("--token-url", cloud.token_url),
            ("--client-id", cloud.client_id),
            (f"--client-secret-file or ${SECRET_ENV}", cloud.client_secret),
        )
        if not value
    ]
    if missing:
        where = f"{args.endpoints_file} has no value for" if args.endpoints_file else "missing"
        raise UsageError(f"{where}: {', '.join(missing)} (give --endpoints-file or the settings)")
    return cloud, ldap, _profile(args.profile)


def run_cycle_command(args: argparse.Namespace) -> int:
    from harness.engine.cycle import CycleError, CycleOptions, run_cycle, run_on_demand
    from harness.engine.health import QuarantinePolicy
    from harness.engine.source import SourceError
    from harness.engine.state import StateError
    from harness.engine.target import LdapTargetError

    cloud, ldap, profile = _load(args)
    policy = None
    if args.quarantine_min_failures is not None:
        policy = QuarantinePolicy(min_failures=args.quarantine_min_failures)
    options = CycleOptions(
        mass_change_threshold=args.mass_change_threshold,
        allow_mass_change=args.allow_mass_change,
        quarantine=policy,
    )
    out = Console(soft_wrap=True)
    try:
        if args.object:
            pod = run_on_demand(cloud, ldap, profile, args.state_dir, args.object, options)
        else:
            report = run_cycle(cloud, ldap, profile, args.state_dir, args.mode, options)
    except CycleError as e:
        out.print(f"exwb cycle: {e}", style="red", highlight=False)
        return 1
    except (SourceError, LdapTargetError, StateError) as e:
        raise UsageError(str(e)) from None
    if args.object:
        return _print_on_demand(out, pod, args.json)
    if args.json:
        out.print_json(json.dumps({**report.as_dict(), "pending": report.pending}))
    else:
        table = Table(title=f"{args.mode} cycle, profile {profile.name}")
        for col in ("objects", "Success", "Failure", "Skipped", "updates", "seconds", "objects/s"):
            table.add_column(col, justify="right")
        s = report.statuses
        rate = f"{report.objects / report.seconds:,.0f}" if report.seconds else "-"
        table.add_row(
            f"{report.objects:,}",
            f"{s['Success']:,}",
            f"{s['Failure']:,}",
            f"{s['Skipped']:,}",
            f"{report.actions['Update']:,}",
            f"{report.seconds:.1f}",
            rate,
        )
        out.print(table)
        for p in report.pending[:50]:
            change = f"{p['oldValue']} -> {p['newValue']}"
            out.print(f"  would write {p['displayName']} on {p['dn']}: {change}", highlight=False)
        if report.stopped:
            out.print(f"STOPPED: {report.stopped}", style="red", highlight=False)
        for w in report.warnings:
            out.print(f"warning: {w}", style="yellow", highlight=False)
        out.print(
            f"job {report.job_state}; {report.escrowed:,} escrowed; "
            f"provisioning log: {report.log_path}",
            highlight=False,
        )
    return 1 if report.statuses["Failure"] or report.stopped else 0


def _print_on_demand(out: Console, pod: Any, as_json: bool) -> int:
    if as_json:
        out.print_json(json.dumps(pod.entry))
    else:
        table = Table(title=f"provision on demand: {pod.entry['sourceId']}")
        for col in ("step", "type", "status", "description"):
            table.add_column(col)
        for step in pod.steps:
            table.add_row(
                step["name"], step["provisioningStepType"], step["status"], step["description"]
            )
        out.print(table)
        for m in pod.entry["modifiedProperties"]:
            out.print(f"  {m['displayName']}: {m['oldValue']} -> {m['newValue']}", highlight=False)
        out.print(f"{pod.status}: {pod.entry['statusReason'] or 'done'}", highlight=False)
    return 1 if pod.status == "Failure" else 0


def run_status_command(args: argparse.Namespace) -> int:
    from harness.engine.health import job_status
    from harness.engine.state import EngineState, StateError

    profile = _profile(args.profile)
    try:
        state = EngineState.load(args.state_dir)
    except StateError as e:
        raise UsageError(str(e)) from None
    if args.pause or args.resume or args.restart:
        if args.pause:
            state.paused = True
        elif args.resume:
            state.paused = False
        else:
            state.restart()
        state.save(args.state_dir)
    job = job_status(state, profile, str(args.state_dir.resolve()))
    out = Console(soft_wrap=True)
    if args.json:
        out.print_json(json.dumps(job))
    else:
        st, ex = job["status"], job["exwb"]
        out.print(f"job {job['id']}", highlight=False)
        out.print(f"state: {st['code']} (schedule {job['schedule']['interval']})", highlight=False)
        last = st["lastExecution"]
        if last:
            out.print(
                f"last execution: {last['state']}, {last['mode']} cycle {last['cycleId']}, "
                f"{last['countEntitled']:,} objects, {last['countExported']:,} exported, "
                f"{last['seconds']} s",
                highlight=False,
            )
        if st["quarantine"]:
            q = st["quarantine"]
            out.print(
                f"quarantined since {q['currentBegan']}: {q['reason']}: {q['error']}",
                style="red",
                highlight=False,
            )
        out.print(
            f"profile {ex['profile']}: {ex['inScope'] or 0:,} in scope of a documented limit "
            f"of {ex['mailboxLimit']:,}; {ex['escrowed']:,} escrowed",
            highlight=False,
        )
        for e in ex["escrowExamples"]:
            out.print(
                f"  escrowed {e['sourceId']}: LDAP {e['errorCode']} {e['reason']} "
                f"({e['attempts']} attempts since {e['firstFailed']})",
                highlight=False,
            )
        for w in ex["warnings"]:
            out.print(f"warning: {w}", style="yellow", highlight=False)
    return 0 if job["status"]["code"] in ("Active", "NotRun") else 1


def run_verify_command(args: argparse.Namespace) -> int:
    from harness.engine.source import SourceError
    from harness.engine.target import LdapTargetError
    from harness.engine.verify import verify

    cloud, ldap, profile = _load(args)
    try:
        parity = verify(cloud, ldap, profile)
    except (SourceError, LdapTargetError) as e:
        raise UsageError(str(e)) from None
    out = Console(soft_wrap=True)
    if args.json:
        out.print_json(
            json.dumps(
                {
                    "inScope": parity.in_scope,
                    "unmatched": parity.unmatched,
                    "matches": parity.matches,
                    "mismatches": parity.mismatches,
                    "examples": parity.examples,
                    "clean": parity.clean,
                }
            )
        )
    else:
        table = Table(
            title=f"parity of {parity.in_scope:,} cloud-managed mailboxes, profile {profile.name}"
        )
        for col in ("attribute", "match", "mismatch"):
            table.add_column(col, justify="right" if col != "attribute" else "left")
        for attr in profile.targets:
            table.add_row(attr, f"{parity.matches[attr]:,}", f"{parity.mismatches[attr]:,}")
        out.print(table)
        for attr, shown in parity.examples.items():
            for ex in shown:
                out.print(
                    f"  {attr} on {ex['dn']}: AD {ex['ad']} != cloud {ex['cloud']}", highlight=False
                )
        if parity.unmatched:
            out.print(
                f"{len(parity.unmatched)} in-scope mailbox(es) without an AD user", highlight=False
            )
        out.print("clean" if parity.clean else "NOT clean")
    return 0 if parity.clean else 1
