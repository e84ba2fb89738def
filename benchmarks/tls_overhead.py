"""Where TLS costs a writeback cycle: the same edit-then-full-cycle over plain LDAP + HTTP, LDAPS
only, HTTPS only, and both, alternated on one served tenant so that all see the same machine.

    python benchmarks/tls_overhead.py --mailboxes 200000 --rounds 1

Serves the tenant once (`exwb serve`). Each round, for each variant: CustomAttribute1 is set
on every in-scope mailbox (Set-Mailbox, as `exwb bench` does), then one full cycle over that
variant's URLs writes them back (the CA trusted through SSL_CERT_FILE; its own state dir).
Prints each cycle's own seconds (from its report) and the ratio to the plain cycle of the
round. `exwb bench`'s tls_over_plain is the "both" column. Timing only: nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from harness.bench.cloud_edits import in_scope_mailboxes, set_custom_attribute
from harness.core.endpoints import Endpoints
from mockservers.runtime import spawn_serve

VARIANTS = ("plain", "ldaps", "https", "both")


def cycle(ep: Endpoints, state: Path, variant: str, secrets: Path) -> float:
    ldaps = variant in ("ldaps", "both")
    https = variant in ("https", "both")
    cmd = [
        sys.executable, "-m", "harness", "cycle", "--mode", "full", "--allow-mass-change",
        "--json", "--ldap-url", ep.ldaps_url if ldaps else ep.ldap_url,
        "--bind-dn", ep.bind_dn, "--bind-password-file", str(secrets / "bind"),
        "--base-dn", ep.base_dn,
        "--graph-url", ep.https_graph_url if https else ep.graph_url,
        "--token-url", ep.https_token_url if https else ep.token_url,
        "--client-id", ep.readonly_client_id, "--client-secret-file", str(secrets / "client"),
        "--state-dir", str(state),
    ]  # fmt: skip
    env = dict(os.environ, SSL_CERT_FILE=ep.ca_file)
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if done.returncode not in (0, 1):
        raise SystemExit(f"exwb cycle exited {done.returncode}: {done.stderr[-2000:]}")
    return float(json.loads(done.stdout)["seconds"])


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--mailboxes", type=int, default=20_000)
    ap.add_argument("--rounds", type=int, default=1)
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
            ids = in_scope_mailboxes(ep)
            print(f"{len(ids):,} in-scope mailboxes; cycle seconds (ratio to plain)")
            print("| round | " + " | ".join(VARIANTS) + " |")
            print("|---" * (len(VARIANTS) + 1) + "|")
            for i in range(1, args.rounds + 1):
                took = {}
                for variant in VARIANTS:
                    set_custom_attribute(ep, ids, f"{variant}{i}")
                    took[variant] = cycle(ep, root / f"state-{variant}", variant, secrets)
                cells = [f"{took[v]:.2f} ({took[v] / took['plain']:.3f})" for v in VARIANTS]
                print(f"| {i} | " + " | ".join(cells) + " |", flush=True)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.communicate(timeout=120)


if __name__ == "__main__":
    main()
