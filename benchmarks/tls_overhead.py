"""What TLS and signed tokens cost a writeback cycle: the same full cycles over LDAP + HTTP and
over LDAPS + HTTPS, alternated on one served tenant so that both see the same machine.

    python benchmarks/tls_overhead.py --mailboxes 200000 --rounds 2

Serves the tenant once (`exwb serve`), runs one warm-up full cycle (it writes the first
cycle's changes), then `--rounds` pairs of full cycles: plain, then TLS (CA trusted through
SSL_CERT_FILE, the variable the engine's HTTPS and LDAPS clients read). Prints each cycle's
wall time and the TLS / plain ratio of each pair. Timing only: nothing here is asserted.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness.core.endpoints import Endpoints
from mockservers.runtime import spawn_serve


def cycle(ep: Endpoints, state: Path, tls: bool, secrets: Path) -> float:
    ldap = ep.ldaps_url if tls else ep.ldap_url
    graph = ep.https_graph_url if tls else ep.graph_url
    token = ep.https_token_url if tls else ep.token_url
    env = dict(os.environ, SSL_CERT_FILE=ep.ca_file)
    cmd = [
        sys.executable, "-m", "harness", "cycle", "--mode", "full", "--allow-mass-change",
        "--ldap-url", ldap, "--bind-dn", ep.bind_dn,
        "--bind-password-file", str(secrets / "bind"), "--base-dn", ep.base_dn,
        "--graph-url", graph, "--token-url", token, "--client-id", ep.readonly_client_id,
        "--client-secret-file", str(secrets / "client"), "--state-dir", str(state),
    ]  # fmt: skip
    started = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    took = time.perf_counter() - started
    if done.returncode not in (0, 1):
        raise SystemExit(f"exwb cycle exited {done.returncode}: {done.stderr[-2000:]}")
    return took


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mailboxes", type=int, default=20_000)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        path = root / "endpoints.json"
        proc = spawn_serve(path, "-n", str(args.mailboxes), "-q", timeout=1800)
        try:
            ep = Endpoints.read(path)
            secrets = root / "secrets"
            secrets.mkdir(mode=0o700)
            (secrets / "bind").write_text(ep.bind_password)
            (secrets / "client").write_text(ep.readonly_client_secret)
            warm = cycle(ep, root / "state", False, secrets)
            print(f"warm-up full cycle (writes): {warm:.1f} s")
            print("| round | plain (s) | TLS (s) | TLS / plain |")
            print("|---|---|---|---|")
            for i in range(1, args.rounds + 1):
                plain = cycle(ep, root / "state", False, secrets)
                tls = cycle(ep, root / "state", True, secrets)
                print(f"| {i} | {plain:.1f} | {tls:.1f} | {tls / plain:.3f} |", flush=True)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.communicate(timeout=120)


if __name__ == "__main__":
    main()
