"""`exwb bench`: time and memory of generation, serving, the engine's cycles and verify, against
the ldap3-loop floor and OpenLDAP slapd, at several tenant sizes (harness.bench)."""

from __future__ import annotations

import argparse
import re
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from harness.core.errors import UsageError

MAX_SIZE = 1_000_000
DEFAULT_SIZES = "10000,50000,200000"


def _one_size(text: str) -> int:
    from harness.commands.generate import count

    n = count(text)
    if not 1 <= n <= MAX_SIZE:
        raise argparse.ArgumentTypeError(f"size {text.strip()!r} is not between 1 and {MAX_SIZE:,}")
    return n


def parse_sizes(text: str) -> list[int]:
    """Sizes, ascending and without repeats.

    Separated by commas ("10000,50000,200000"), or by spaces or semicolons, in which case a
    comma inside a size groups thousands ("10,000 200,000"). Underscores group thousands
    anywhere ("200_000"), and k / m multiply ("200k").
    """
    if not text.strip():
        raise argparse.ArgumentTypeError("no sizes given")
    items = re.split(r"[;\s]+", text.strip()) if re.search(r"[;\s]", text.strip()) else None
    if items is None:
        items = text.split(",")
    sizes = []
    for item in items:
        if not item.strip():
            raise argparse.ArgumentTypeError(f"empty size in {text!r}")
        try:
            sizes.append(_one_size(item))
        except argparse.ArgumentTypeError as e:
            if "between" in str(e):
                raise
            what = f"{item.strip()!r} in {text!r}"
            raise argparse.ArgumentTypeError(f"{what} is not a size") from None
    return sorted(set(sizes))


def parse_changes(text: str) -> float:
    """A fraction of the in-scope mailboxes: 0.01 or 1%; above 0, at most 1."""
    raw = text.strip()
    try:
        value = float(raw[:-1]) / 100 if raw.endswith("%") else float(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a fraction (0.01 or 1%)") from None
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be above 0 and at most 1 (100%)")
    return value


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "bench",
        help="benchmark generation, serving, the engine's cycles and verify at several sizes",
        description="For each size, in one run on this machine: tenant generation, server "
        "start-up, the initial cycle, a full cycle after every in-scope mailbox changed, a "
        "delta cycle, a no-change delta cycle, exwb verify, the ldap3-loop floor, and the "
        "full cycle and floor against OpenLDAP slapd; wall time, objects/s, CPU and peak RSS "
        "of servers and engine. Writes bench.json, bench.md and bench.svg to "
        "DIR/bench/<UTC time>/. Progress on stderr, the summary on stdout. Exit 0 when it ran "
        "(missed targets are reported, not an exit code), 1 when a step failed (the files "
        "still hold the figures measured until then), 2 on bad input.",
    )
    p.add_argument(
        "--sizes",
        type=parse_sizes,
        default=parse_sizes(DEFAULT_SIZES),
        metavar="N,N,...",
        help=f"mailbox counts, 1 to {MAX_SIZE:,} (default {DEFAULT_SIZES}); also "
        "'10,000 200,000', 200_000, 200k",
    )
    p.add_argument(
        "--results",
        type=Path,
        default=Path("results"),
        metavar="DIR",
        help="write DIR/bench/<UTC time>/ (default results)",
    )
    p.add_argument(
        "--changes",
        type=parse_changes,
        default=0.01,
        metavar="F",
        help="fraction of in-scope mailboxes edited again for the delta cycle (default 0.01)",
    )
    p.add_argument("--no-slapd", action="store_true", help="skip the OpenLDAP slapd half")
    p.add_argument(
        "--no-samba",
        action="store_true",
        help="skip the Samba AD DC half (run at sizes up to 20,000 mailboxes; needs root)",
    )
    p.add_argument(
        "--no-tls",
        action="store_true",
        help="skip the second full cycle over LDAPS and HTTPS (tls_over_plain)",
    )
    p.add_argument(
        "--no-floor", action="store_true", help="skip the ldap3-loop floor (needs no ldap3)"
    )
    p.set_defaults(run=run)


def _progress(line: str) -> None:
    stamp = datetime.now(UTC).strftime("%H:%M:%S")
    print(f"exwb bench {stamp} {line}", file=sys.stderr, flush=True)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _out_dir(results: Path) -> Path:

    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = results / "bench" / stamp
    n = 1
    while out.exists():
        n += 1
        out = results / "bench" / f"{stamp}-{n}"
    try:
        out.mkdir(parents=True)
    except OSError as e:
        raise UsageError(f"--results {results}: {e.strerror}") from None
    return out


def _command_line(args: argparse.Namespace) -> str:
    words = ["exwb", "bench", "--sizes", ",".join(str(s) for s in args.sizes)]
    words += ["--results", str(args.results), "--changes", f"{args.changes:g}"]
    words += ["--no-slapd"] if args.no_slapd else []
    words += ["--no-samba"] if args.no_samba else []
    words += ["--no-floor"] if args.no_floor else []
    return " ".join(words)


def run(args: argparse.Namespace) -> int:
    from harness.bench.chart import chart_svg
    from harness.bench.floor import INSTALL_HINT, floor_available
    from harness.bench.measure import machine, machine_line
    from harness.bench.report import bench_json, write_reports
    from harness.bench.runner import (
        BenchOptions,
        run_bench,
        samba_skip_reason,
        slapd_skip_reason,
    )

    if not args.no_floor and not floor_available():
        raise UsageError(
            f"the floor needs ldap3, which is not installed: {INSTALL_HINT} "
            "(or run with --no-floor)"
        )
    out = _out_dir(args.results)
    skipped = slapd_skip_reason(not args.no_slapd)
    if skipped and not args.no_slapd:
        _progress(f"slapd half skipped: {skipped}")
    samba_skipped = samba_skip_reason(not args.no_samba)
    if samba_skipped and not args.no_samba:
        _progress(f"Samba half skipped: {samba_skipped}")
    options = BenchOptions(
        sizes=args.sizes,
        changes=args.changes,
        slapd=skipped is None,
        samba=samba_skipped is None,
        floor=not args.no_floor,
        tls=not args.no_tls,
    )
    host = machine()
    _progress(f"on {machine_line(host)}; sizes {', '.join(f'{s:,}' for s in args.sizes)}")
    started, t0 = _now(), time.perf_counter()
    results = run_bench(options, _progress)
    doc = bench_json(
        machine=host,
        options={
            "sizes": args.sizes,
            "changes": args.changes,
            "slapd": not args.no_slapd,
            "samba": not args.no_samba,
            "floor": not args.no_floor,
            "seed": options.seed,
        },
        slapd={"ran": options.slapd, "skipped": skipped},
        samba={"ran": options.samba, "skipped": samba_skipped},
        results=results,
        started=started,
        finished=_now(),
        command=_command_line(args),
    )
    paths = write_reports(doc, out, chart_svg(results, machine_line(host)))
    _summary(doc)
    wrote = ", ".join(str(p) for p in paths.values())
    _progress(f"done in {time.perf_counter() - t0:.0f} s; wrote {wrote}")
    failed = [r for r in results if r.get("error")]
    for r in failed:
        print(f"exwb bench: {r['mailboxes']:,} mailboxes failed: {r['error']}", file=sys.stderr)
    return 1 if failed else 0


def _summary(doc: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    from harness.bench.report import (
        PHASE_COLUMNS,
        TARGET_COLUMNS,
        phase_row,
        target_row,
    )

    console = Console(soft_wrap=True)
    console.width = max(console.width, 120)  # a pipe gets 80 columns: too few for the figures
    for r in doc["sizes"]:
        table = Table(title=f"{r['mailboxes']:,} mailboxes")
        for i, col in enumerate(PHASE_COLUMNS):
            table.add_column(col, justify="left" if i == 0 else "right")
        for name, figures in r["phases"].items():
            table.add_row(*phase_row(name, figures))
        console.print(table)
    targets = Table(title="Targets")
    for i, col in enumerate(TARGET_COLUMNS):
        targets.add_column(col, justify="left" if i == 0 else "right")
    for t in doc["targets"]:
        targets.add_row(*target_row(t))
    console.print(targets)
