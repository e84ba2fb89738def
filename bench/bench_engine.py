"""Benchmark the writeback engine against `exwb serve`, and against OpenLDAP slapd, in one run.

    python bench/bench_engine.py --mailboxes 200000 [--changes 0.01] [--no-slapd] [--out F]

For one tenant it measures, in this order: server start-up; an initial cycle on a consistent
tenant (reads everything, writes nothing); a full cycle after every cloud-managed mailbox got a
new CustomAttribute1 through the EXO API; `verify`; a delta cycle after `--changes` of them were
edited again; a no-change delta cycle; and the floor, the same number of single-attribute
modifies sent by a plain single-connection ldap3 loop as the writeback account. With slapd
installed it then loads the same tenant into slapd and measures the full cycle and the floor
there too. Figures are printed and written as JSON; ratios compare figures of this one run.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from ldap3 import MODIFY_REPLACE, NONE, Connection, Server

from harness.engine.cycle import CycleOptions, run_cycle
from harness.engine.rules import GA
from harness.engine.source import CloudCredentials
from harness.engine.target import LdapCredentials
from harness.engine.verify import verify
from mockservers.runtime import Endpoints, spawn_serve
from tests.cloud.http_client import call, token

ALLOW = CycleOptions(allow_mass_change=True)


def rss_mib(pid: int | None = None) -> float:
    """Peak RSS of a process (VmHWM), or of this one."""
    if pid is None:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid: int) -> float:
    """User + system CPU a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


SERVER_PIDS: list[int] = []  # whose CPU each cycle reports (exwb serve, slapd)


def cloud_managed(ep: Endpoints, tok: str) -> list[str]:
    """Ids of the cloud-managed mailboxes, through Get-Mailbox."""
    body = {
        "CmdletInput": {
            "CmdletName": "Get-Mailbox",
            "Parameters": {"ResultSize": "Unlimited", "Filter": "IsExchangeCloudManaged -eq $true"},
        }
    }
    r = call("POST", f"{ep.exo_url}/InvokeCommand", token=tok, body=body)
    ids = [m["Guid"] for m in r.body["value"]]
    while r.body.get("@odata.nextLink"):
        r = call("GET", r.body["@odata.nextLink"], token=tok)
        ids += [m["Guid"] for m in r.body["value"]]
    return ids


def edit(ep: Endpoints, tok: str, ids: list[str], tag: str) -> float:
    """Set CustomAttribute1 on every id with 4 client threads; returns seconds."""

    def one(pair: tuple[int, str]) -> None:
        i, mid = pair
        body = {
            "CmdletInput": {
                "CmdletName": "Set-Mailbox",
                "Parameters": {"Identity": mid, "CustomAttribute1": f"{tag}-{i}"},
            }
        }
        r = call("POST", f"{ep.exo_url}/InvokeCommand", token=tok, body=body)
        assert r.status == 200, r.body

    t0 = time.perf_counter()
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(one, enumerate(ids), chunksize=64))
    return time.perf_counter() - t0


def floor(ldap: LdapCredentials, dns: list[str]) -> float:
    """The same number of modifies from a plain synchronous ldap3 loop; returns modifies/s."""
    conn = Connection(Server(ldap.url, get_info=NONE), ldap.bind_dn, ldap.password, auto_bind=True)
    t0 = time.perf_counter()
    for i, dn in enumerate(dns):
        ok = conn.modify(dn, {"extensionAttribute1": [(MODIFY_REPLACE, [f"floor-{i}"])]})
        assert ok, conn.result
    seconds = time.perf_counter() - t0
    conn.unbind()
    return len(dns) / seconds


def in_scope_dns(log: Path) -> list[str]:
    with log.open(encoding="utf-8") as f:
        return [
            e["targetDn"]
            for e in map(json.loads, f)
            if e["action"] == "Update" and e["status"] == "Success"
        ]


def cycle(res: dict, label: str, *args, **kw):
    server0 = sum(cpu_seconds(p) for p in SERVER_PIDS)
    engine0 = time.process_time()
    r = run_cycle(*args, **kw)
    res[f"{label}_engine_cpu_s"] = round(time.process_time() - engine0, 1)
    res[f"{label}_server_cpu_s"] = round(sum(cpu_seconds(p) for p in SERVER_PIDS) - server0, 1)
    res[f"{label}_s"] = round(r.seconds, 2)
    res[f"{label}_updates"] = r.actions.get("Update", 0)
    res[f"{label}_objects_per_s"] = round(r.objects / r.seconds) if r.seconds else None
    assert r.statuses.get("Failure", 0) == 0, r.as_dict()
    print(label, json.dumps(r.as_dict()), flush=True)
    return r


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mailboxes", type=int, default=200_000)
    ap.add_argument("--changes", type=float, default=0.01)
    ap.add_argument("--no-slapd", action="store_true")
    ap.add_argument("--out", type=Path, default=None, help="write the figures as JSON here")
    args = ap.parse_args()
    res: dict = {"mailboxes": args.mailboxes}
    with tempfile.TemporaryDirectory() as tmp:
        epf = Path(tmp) / "endpoints.json"
        t0 = time.perf_counter()
        proc = spawn_serve(epf, "-n", str(args.mailboxes), "--seed", "1", "-q")
        res["serve_startup_s"] = round(time.perf_counter() - t0, 1)
        SERVER_PIDS[:] = [proc.pid]
        try:
            ep = Endpoints.read(epf)
            tok = token(ep)
            cloud = CloudCredentials(
                ep.graph_url, ep.token_url, ep.readonly_client_id, ep.readonly_client_secret
            )
            ldap = LdapCredentials(ep.ldap_url, ep.bind_dn, ep.bind_password, ep.base_dn)
            state = Path(tmp) / "state"
            cycle(res, "initial_cycle", cloud, ldap, GA, state, "delta")
            ids = cloud_managed(ep, tok)
            res["in_scope"] = len(ids)
            res["edit_all_s"] = round(edit(ep, tok, ids, "all"), 1)
            full = cycle(res, "full_all_changed", cloud, ldap, GA, state, "full", ALLOW)
            t0 = time.perf_counter()
            parity = verify(cloud, ldap, GA)
            res["verify_s"], res["verify_clean"] = round(time.perf_counter() - t0, 2), parity.clean
            some = ids[: int(len(ids) * args.changes)]
            edit(ep, tok, some, "delta")
            # 1% of 200,000 is above the default mass-change threshold of 500: allowed here.
            cycle(res, "delta_cycle", cloud, ldap, GA, state, "delta", ALLOW)
            cycle(res, "no_change_delta", cloud, ldap, GA, state, "delta", ALLOW)
            assert full.log_path is not None
            dns = in_scope_dns(full.log_path)
            res["floor_fake_modifies_per_s"] = round(floor(ldap, dns))
            res["engine_fake_modifies_per_s"] = round(
                res["full_all_changed_updates"] / res["full_all_changed_s"]
            )
            res["server_peak_rss_mib"] = round(rss_mib(proc.pid))
            if not args.no_slapd:
                slapd_part(res, args.mailboxes, cloud, Path(tmp), dns)
        finally:
            proc.terminate()
            proc.communicate(timeout=120)
    res["engine_peak_rss_mib"] = round(rss_mib())
    if "full_all_changed_slapd_s" in res:
        res["full_cycle_fake_over_slapd_speed"] = round(
            res["full_all_changed_slapd_s"] / res["full_all_changed_s"], 2
        )
    res["engine_over_floor_fake"] = round(
        res["engine_fake_modifies_per_s"] / res["floor_fake_modifies_per_s"], 2
    )
    print(json.dumps(res, indent=2))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(res, indent=2) + "\n")
    return 0


def slapd_part(res: dict, mailboxes: int, cloud: CloudCredentials, tmp: Path, dns: list[str]):
    from harness.tenant import TenantSpec, generate
    from harness.tenant.files import LDIF_NAME, write_tenant
    from tests.support.slapd import running_slapd, slapd_available

    if not slapd_available():
        print("slapd is not installed: skipping the slapd half", flush=True)
        return
    tenant = generate(TenantSpec(mailboxes=mailboxes, seed=1))
    write_tenant(tenant, tmp / "tenant")
    t0 = time.perf_counter()
    with running_slapd(tmp / "tenant" / LDIF_NAME, tenant.base_dn, durable=False) as info:
        res["slapd_startup_s"] = round(time.perf_counter() - t0, 1)
        SERVER_PIDS.append(info.pid)  # the cloud still answers from exwb serve
        ldap = LdapCredentials(info.url, info.service_dn, info.service_password, tenant.base_dn)
        # A fresh state: slapd holds the generated tenant, the cloud holds every edit so far.
        cycle(res, "full_all_changed_slapd", cloud, ldap, GA, tmp / "slapd-state", "full", ALLOW)
        res["floor_slapd_modifies_per_s"] = round(floor(ldap, dns))
        res["engine_slapd_modifies_per_s"] = round(
            res["full_all_changed_slapd_updates"] / res["full_all_changed_slapd_s"]
        )
        res["slapd_peak_rss_mib"] = round(rss_mib(info.pid))
    res["engine_over_floor_slapd"] = round(
        res["engine_slapd_modifies_per_s"] / res["floor_slapd_modifies_per_s"], 2
    )


if __name__ == "__main__":
    raise SystemExit(main())
