"""Benchmark the writeback engine at one size: now a thin front to `exwb bench`.

    python benchmarks/bench_engine.py --mailboxes 200000 [--changes 0.01] [--no-slapd] [--out F]

The phases this script used to run itself (server start-up, the initial cycle, a full cycle
after every in-scope mailbox changed, verify, a delta and a no-change delta cycle, the
ldap3-loop floor, the same cycle and floor against OpenLDAP slapd) are `exwb bench`'s
(harness/bench/), which adds tenant generation, each cycle in a child process of its own and
the targets table. This runs it for one size and, with --out, copies its bench.json there.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness.cli import main as exwb


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mailboxes", default="200000")
    ap.add_argument("--changes", default="0.01")
    ap.add_argument("--no-slapd", action="store_true")
    ap.add_argument("--out", type=Path, default=None, help="also copy bench.json here")
    ap.add_argument("--results", type=Path, default=Path("results"))
    args = ap.parse_args()
    argv = ["bench", "--sizes", args.mailboxes, "--changes", args.changes]
    argv += ["--results", str(args.results)] + (["--no-slapd"] if args.no_slapd else [])
    before = set((args.results / "bench").glob("*"))  # the run adds DIR/bench/<UTC time>/
    code = exwb(argv)
    if code == 0 and args.out is not None:
        (run,) = set((args.results / "bench").glob("*")) - before
        args.out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(run / "bench.json", args.out)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
