"""Crashes and faults during writeback cycles: nothing the engine exported may be lost, nothing
may be written twice, and a cycle after the fault converges.

Faults are real ones on the wire: `LdapFaults` is a loopback TCP proxy in front of the fake AD
that answers busy (51) or unavailable (52) in AD's place, drops connections, or lets a write
reach AD and loses its answer; throttling is the fake Graph's own (429 with Retry-After); crashes
are a failing state save and SIGKILL of `exwb cycle`.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from ldap3 import SUBTREE, Connection

from harness.core import ber
from harness.core.endpoints import Endpoints
from harness.engine import log as provlog
from harness.engine.cycle import run_cycle
from harness.engine.rules import GA
from harness.engine.source import CloudCredentials
from harness.engine.target import LdapCredentials
from harness.engine.verify import verify
from harness.tenant import TenantSpec, generate
from harness.tenant.model import CloudMailbox
from mockservers.cloud.errors import CloudError
from mockservers.cloud.throttle import Throttle
from mockservers.runtime import RunningTenant, spawn_serve
from tests.cloud.http_client import call, token
from tests.engine.exo_client import (
    CmdletFailed,
    ExoAdmin,
    ad_entry,
    ad_snapshot,
    expected_ad,
    highest_usn,
    ldap_reader,
)
from tests.support.engine import EngineEnv, log_entries, writeback_credentials

# ------------------------------------------------------------------ the fault-injecting proxy

_OPS = {0x60: "bind", 0x63: "search", 0x66: "modify", 0x68: "add", 0x4A: "delete", 0x6C: "moddn"}
_ANSWER = {"bind": 0x61, "search": 0x65, "modify": 0x67, "add": 0x69, "delete": 0x6B}
_DIAGNOSTIC = {
    51: "00002024: SvcErr: DSID-03190E44, problem 5001 (BUSY), data 0",
    52: "00000005: SvcErr: DSID-03190E45, problem 5002 (UNAVAILABLE), data 0",
}
Script = Callable[[str, int], str | None]


def _id_and_op(message: bytes) -> tuple[int, str]:
    _, body, _ = ber.read_tlv(message)
    _, msg_id, pos = ber.read_tlv(body)
    return int.from_bytes(msg_id, "big", signed=True), _OPS.get(body[pos], "other")


class LdapFaults:
    """A loopback TCP proxy in front of an LDAP server that injects faults per operation.

    For every request `script(kind, n)` (kind "bind", "search", "modify", ...; n counts that
    kind from 1) says what happens to it:

    - "pass" (or None): forwarded;
    - "busy" / "unavailable": answered 51 / 52 with AD's diagnostic, not forwarded;
    - "drop": the connection is closed, the request is not forwarded (it never happened);
    - "lose-answer": forwarded, and the connection is closed when the answer comes back, before
      the client sees it (the operation happened; the client cannot know).

    `delay` holds every modify back that many seconds (to widen crash windows); `on_lost` runs
    when an answer is lost. `seen` counts requests by kind, `forwarded` those that reached the
    server, `injected` the faults.
    """

    def __init__(self, upstream_url: str, script: Script | None = None, delay: float = 0.0):
        parts = urlsplit(upstream_url)
        self.upstream = (parts.hostname or "127.0.0.1", parts.port or 389)
        self.script: Script = script or (lambda kind, n: None)
        self.delay = delay
        self.on_lost: Callable[[], None] | None = None
        self.seen: Counter[str] = Counter()
        self.forwarded: Counter[str] = Counter()
        self.injected: Counter[str] = Counter()
        self.connections = 0
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"ldap://127.0.0.1:{self._listener.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True, name="ldap-faults").start()

    def reset(self, script: Script | None = None) -> None:
        with self._lock:
            self.script = script or (lambda kind, n: None)
            self.seen.clear()
            self.forwarded.clear()
            self.injected.clear()
            self.connections = 0

    def close(self) -> None:
        self._listener.close()
        with self._lock:
            for s in list(self._sockets):
                _shut(s)

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(self.upstream, timeout=30)
        except OSError:
            _shut(client)
            return
        upstream.settimeout(None)
        for s in (client, upstream):  # no Nagle: small LDAP messages must not wait for ACKs
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self._lock:
            self.connections += 1
            self._sockets |= {client, upstream}
        lost: set[int] = set()
        send = threading.Lock()
        done = threading.Event()

        def close() -> None:
            done.set()
            with self._lock:
                self._sockets -= {client, upstream}
            _shut(client)
            _shut(upstream)

        def from_client(msg: bytes) -> bool:
            msg_id, kind = _id_and_op(msg)
            with self._lock:
                self.seen[kind] += 1
                action = self.script(kind, self.seen[kind]) or "pass"
                if action != "pass":
                    self.injected[action] += 1
            if action in ("busy", "unavailable"):
                code = 51 if action == "busy" else 52
                with send:
                    client.sendall(
                        ber.message(msg_id, ber.result(_ANSWER[kind], code, "", _DIAGNOSTIC[code]))
                    )
                return True
            if action == "drop":
                return False
            if action == "lose-answer":
                lost.add(msg_id)
            if kind == "modify" and self.delay:
                time.sleep(self.delay)
            with self._lock:
                self.forwarded[kind] += 1
            upstream.sendall(msg)
            return True

        def from_server(msg: bytes) -> bool:
            msg_id, _ = _id_and_op(msg)
            if msg_id in lost:
                if self.on_lost is not None:
                    self.on_lost()
                return False
            with send:
                client.sendall(msg)
            return True

        def pump(src: socket.socket, handle: Callable[[bytes], bool]) -> None:
            buf = bytearray()
            try:
                while not done.is_set():
                    data = src.recv(65536)
                    if not data:
                        break
                    buf += data
                    while (size := ber.message_size(buf)) is not None and len(buf) >= size:
                        msg = bytes(buf[:size])
                        del buf[:size]
                        if not handle(msg):
                            return
            except OSError:
                pass
            finally:
                close()

        threading.Thread(target=pump, args=(upstream, from_server), daemon=True).start()
        pump(client, from_client)


def _shut(s: socket.socket) -> None:
    with contextlib.suppress(OSError):
        s.shutdown(socket.SHUT_RDWR)
    s.close()


# ------------------------------------------------------------------ an in-process tenant

TENANT = generate(
    TenantSpec(mailboxes=120, seed=41, cloud_managed_fraction=0.85, non_ascii_fraction=0.2)
)
DOMAIN = TENANT.spec.domain
MANAGED = [
    (u, m)
    for u, m in TENANT.synced_pairs()
    if m.is_exchange_cloud_managed and m.recipient_type_details == "UserMailbox"
]


@dataclass
class Env(EngineEnv):
    """The engine writes through `proxy`, a fault-injecting LDAP proxy in front of the fake AD."""

    proxy: LdapFaults
    exo: ExoAdmin

    def creds(self) -> tuple[CloudCredentials, LdapCredentials]:
        return writeback_credentials(self.ep, ldap_url=self.proxy.url)

    def in_sync(self, mbx: CloudMailbox) -> None:
        user = TENANT.ad_user_by_anchor(mbx.immutable_id or "")
        assert user is not None
        assert ad_entry(self.conn, user.dn) == expected_ad(self.exo.mailbox(mbx.id)), user.dn

    def stored(self) -> dict[str, Any]:
        return json.loads((self.state / "state.json").read_text(encoding="utf-8"))


@pytest.fixture
def env(run: RunningTenant, tmp_path: Path) -> Iterator[Env]:
    ep = run.endpoints
    proxy = LdapFaults(ep.ldap_url)
    e = Env(run, ldap_reader(ep), tmp_path / "state", proxy, ExoAdmin(ep))
    first = e.converged()
    assert first.actions.get("Update", 0) == 0
    yield e
    e.close()
    proxy.close()


def edit_some(env: Env, first: int = 0) -> list[CloudMailbox]:
    """Edits of every kind on four cloud-managed mailboxes, as an admin makes them."""
    mbxs = [m for _, m in MANAGED[first : first + 4]]
    a, b, c, d = mbxs
    env.exo.set_mailbox(a.id, CustomAttribute1="after the crash?", CustomAttribute15="ü")
    env.exo.set_mailbox(b.id, ExtensionCustomAttribute2={"Add": ["one", "two"]})
    env.exo.set_mailbox(c.id, WindowsEmailAddress=f"{c.alias}.crash@{DOMAIN}")
    env.exo.set_mailbox(d.id, Type="Shared", EmailAddresses={"Add": [f"{d.alias}.x@{DOMAIN}"]})
    return mbxs


# ------------------------------------------------------------------ (a) failing state save


def crash_at_commit(env: Env, held: Path) -> list[CloudMailbox]:
    """Edit, then run a cycle whose state save fails after its exports: state.json is swapped
    for a directory (so the atomic rename onto it fails) when the first modify reaches AD,
    long after the state was loaded. The real file is kept at `held`."""
    edited = edit_some(env)

    def script(kind: str, n: int) -> None:
        if kind == "modify" and n == 1:
            (env.state / "state.json").rename(held)
            (env.state / "state.json").mkdir()

    env.proxy.reset(script)
    with pytest.raises(OSError):
        env.cycle()
    assert env.proxy.forwarded["modify"] == len(edited)  # every export was written
    return edited


def restore(env: Env, held: Path) -> None:
    (env.state / "state.json").rmdir()
    held.rename(env.state / "state.json")


def test_crash_between_export_and_watermark_commit(env, tmp_path):
    before = env.stored()
    held = tmp_path / "held-state.json"
    edited = crash_at_commit(env, held)
    # Nothing of the failed save is left behind, and the stored state is the old one.
    assert sorted(p.name for p in env.state.iterdir()) == ["logs", "state.json"]
    assert list((env.state / "state.json").iterdir()) == []
    assert json.loads(held.read_text(encoding="utf-8")) == before
    # AD already holds what was exported.
    for mbx in edited:
        env.in_sync(mbx)

    restore(env, held)
    usn = highest_usn(env.conn)
    env.proxy.reset()
    again = env.converged()
    # The same objects again, since the watermark did not move; nothing left to write.
    assert sorted(provlog.source_id(e) for e in log_entries(again)) == sorted(m.id for m in edited)
    assert again.actions.get("Update", 0) == 0 and again.statuses["Success"] == len(edited)
    assert env.proxy.seen["modify"] == 0 and highest_usn(env.conn) == usn
    after = env.stored()
    assert after["delta_link"] != before["delta_link"]
    assert after["cycles"] == before["cycles"] + 1
    for mbx in edited:
        env.in_sync(mbx)
    assert env.converged().objects == 0


def test_the_crashed_cycles_provisioning_log_survives_the_retry(env, tmp_path):
    held = tmp_path / "held-state.json"
    edited = crash_at_commit(env, held)
    restore(env, held)
    env.proxy.reset()
    env.converged()
    written: set[str] = set()
    for path in (env.state / "logs").glob("*.jsonl"):
        for line in path.read_text(encoding="utf-8").splitlines():
            entry = json.loads(line)
            if provlog.action(entry) == "Update" and provlog.status(entry) == "Success":
                written.add(provlog.source_id(entry))
    assert {m.id for m in edited} <= written


# ------------------------------------------------------------------ (c) faults during a cycle


def test_ldap_busy_and_unavailable_during_a_cycle_are_retried(env):
    edited = edit_some(env)
    faults = {1: "busy", 2: "busy", 3: "unavailable", 5: "busy"}
    env.proxy.reset(lambda kind, n: faults.get(n) if kind == "modify" else None)
    report = env.converged()
    assert report.actions["Update"] == len(edited)
    assert env.proxy.injected == Counter(busy=3, unavailable=1)
    # Each refused modify was sent again; AD saw each object's write at least once.
    assert env.proxy.seen["modify"] >= len(edited) + 4
    assert env.proxy.forwarded["modify"] >= len(edited)
    assert env.proxy.connections >= 2  # unavailable: a new connection, bound again
    for mbx in edited:
        env.in_sync(mbx)


def test_ldap_search_faults_during_delta_and_full_cycles_are_retried(env):
    edited = edit_some(env)
    faults = {1: "busy", 2: "drop", 3: "unavailable"}
    env.proxy.reset(lambda kind, n: faults.get(n) if kind == "search" else None)
    report = env.converged()
    assert report.actions["Update"] == len(edited)
    assert env.proxy.injected == Counter(busy=1, drop=1, unavailable=1)
    for mbx in edited:
        env.in_sync(mbx)
    # A full cycle reads AD in one paged search: dropped, it is read again from the start.
    more = edit_some(env, 4)
    env.proxy.reset(lambda kind, n: "drop" if kind == "search" and n == 1 else None)
    full = env.converged("full")
    assert full.actions["Update"] == len(more)
    assert env.proxy.injected == Counter(drop=1) and env.proxy.seen["search"] >= 2
    for mbx in more:
        env.in_sync(mbx)


def test_dropped_connection_before_a_modify_is_retried(env):
    edited = edit_some(env)
    env.proxy.reset(lambda kind, n: "drop" if kind == "modify" and n in (1, 3) else None)
    report = env.converged()
    assert report.actions["Update"] == len(edited)
    assert env.proxy.injected == Counter(drop=2)
    assert env.proxy.forwarded["modify"] >= len(edited)
    assert env.proxy.connections >= 3
    for mbx in edited:
        env.in_sync(mbx)


def test_lost_answer_to_a_replace_only_modify_converges(env):
    _, mbx = MANAGED[0]
    env.exo.set_mailbox(mbx.id, CustomAttribute3="answer lost", CustomAttribute4="twice")
    env.proxy.reset(lambda kind, n: "lose-answer" if kind == "modify" and n == 1 else None)
    report = env.converged()
    assert report.actions["Update"] == 1 and report.statuses["Success"] == 1
    assert env.proxy.forwarded["modify"] >= 2  # written, answer lost, written again
    env.in_sync(mbx)


def test_lost_answer_to_a_multi_valued_modify_converges_in_the_same_cycle(env):
    """The retry of an add whose answer was lost meets its own write (20 / 16 from AD): the
    engine must re-read and re-plan, not log a Failure and escrow an object AD already holds."""
    _, mbx = MANAGED[1]
    env.exo.set_mailbox(
        mbx.id,
        ExtensionCustomAttribute1={"Add": ["lost", "answer"]},
        EmailAddresses={"Add": [f"{mbx.alias}.lost@{DOMAIN}"]},
    )
    env.proxy.reset(lambda kind, n: "lose-answer" if kind == "modify" and n == 1 else None)
    report = env.cycle()
    env.in_sync(mbx)  # the first attempt did write everything
    assert report.statuses["Failure"] == 0, log_entries(report)
    assert report.actions["Update"] == 1
    assert env.stored()["escrow"] == {}


class CountingThrottle(Throttle):
    """The fake Graph's own throttle, recording when it refused whom, and when it let them in."""

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.refused: list[tuple[str, float, float]] = []  # app, when, Retry-After
        self.admitted: list[tuple[str, float]] = []

    def charge(self, app_id: str, units: int, write: bool) -> dict[str, str]:
        try:
            headers = super().charge(app_id, units, write)
        except CloudError as e:
            self.refused.append((app_id, time.monotonic(), float(e.headers["Retry-After"])))
            raise
        self.admitted.append((app_id, time.monotonic()))
        return headers


def test_graph_throttling_during_a_cycle_is_waited_out(env):
    edited = edit_some(env)
    ep = env.ep
    throttle = CountingThrottle(10.0, 1000.0, tenant_id=ep.tenant_id)  # 10 RU per 10 s
    env.run.call(setattr, env.run.cloud, "throttle", throttle)
    reader = ep.readonly_client_id
    # Another tool of the same app spends the reader's budget just before the cycle starts.
    tok = token(ep, readonly=True)
    for _ in range(30):
        if call("GET", f"{ep.graph_url}/v1.0/users?$select=id&$top=1", token=tok).status == 429:
            break
    else:
        pytest.fail("the throttle never refused")
    refused_before = len(throttle.refused)
    started = time.monotonic()
    report = env.converged()
    assert report.actions["Update"] == len(edited)
    for mbx in edited:
        env.in_sync(mbx)
    during = [r for r in throttle.refused[refused_before:] if r[0] == reader]
    assert during, "the cycle was never throttled"
    # Retry-After was honoured: the next admitted request came no sooner than it said.
    for _, when, wait in during:
        nxt = min(t for app, t in throttle.admitted if app == reader and t > when)
        assert nxt - when >= wait - 0.05
    assert time.monotonic() - started >= sum(w for *_, w in during) - 0.05


# ------------------------------------------------------------------ (b) kill -9 at random points

KILL_SPEC = ("--mailboxes", "260", "--seed", "17", "--knob", "special_cn_fraction=0.1")
EDITS_PER_ROUND = 70
# (seed, how the cycle is killed): when the k-th modify arrives (before it reaches AD), when AD
# answered the k-th (the write happened, the engine never learns), once the provisioning log
# has grown to some lines, or after a delay (mostly before any export).
ROUNDS = ((1, "modify"), (2, "answer"), (3, "log"), (5, "delay"))


def _anchors(conn: Connection, base_dn: str) -> dict[str, str]:
    """DN by source anchor (base64 of mS-DS-ConsistencyGuid) of every synced AD user."""
    entries = conn.extend.standard.paged_search(
        base_dn,
        "(mS-DS-ConsistencyGuid=*)",
        SUBTREE,
        attributes=["mS-DS-ConsistencyGuid"],
        paged_size=1000,
        generator=False,
    )
    return {
        base64.b64encode(e["raw_attributes"]["mS-DS-ConsistencyGuid"][0]).decode(): e["dn"]
        for e in entries
        if e["type"] == "searchResEntry"
    }


def _in_scope(rec: dict[str, Any]) -> bool:
    return bool(rec["IsDirSynced"] and rec["IsExchangeCloudManaged"]) and (
        rec["RecipientTypeDetails"] != "MailUser"
    )


def _random_text(rng: random.Random) -> str:
    pool = 'abcxyz ,+=#\\"<>;*()éßü東京😀-'
    return "".join(rng.choice(pool) for _ in range(rng.randint(1, 60)))


def _random_edit(rng: random.Random, rec: dict[str, Any], tag: str) -> dict[str, Any]:
    """One Set-Mailbox an admin could make on `rec` (in scope, handed back, or brought in)."""
    if not rec["IsDirSynced"]:
        return {"CustomAttribute1": _random_text(rng)}
    if not rec["IsExchangeCloudManaged"]:
        return {"IsExchangeCloudManaged": True, "CustomAttribute2": _random_text(rng)}
    alias = rec["Alias"]
    params: dict[str, Any] = {}
    for _ in range(rng.randint(1, 3)):
        kind = rng.choice(["custom", "custom", "clear", "ext", "proxy", "primary", "type"])
        if kind == "custom":
            params[f"CustomAttribute{rng.randint(1, 15)}"] = _random_text(rng)
        elif kind == "clear":
            params[f"CustomAttribute{rng.randint(1, 15)}"] = None
        elif kind == "ext":
            n = rng.randint(1, 5)
            current = rec[f"ExtensionCustomAttribute{n}"]
            params[f"ExtensionCustomAttribute{n}"] = {
                "Add": [f"{tag} {_random_text(rng)}"],
                "Remove": current[:1],
            }
        elif kind == "proxy":
            params["EmailAddresses"] = {"Add": [f"smtp:{alias}.{tag}@{DOMAIN}"]}
        elif kind == "primary":
            params["WindowsEmailAddress"] = f"{alias}.{tag}.p@{DOMAIN}"
        else:
            params["Type"] = rng.choice(["Regular", "Shared", "Room", "Equipment"])
    return params


def _cycle_cli(endpoints: Path, state: Path) -> subprocess.Popen[str]:
    cmd = [sys.executable, "-m", "harness", "cycle", "--endpoints-file", str(endpoints)]
    return subprocess.Popen(
        [*cmd, "--mode", "delta", "--state-dir", str(state)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def _log_lines(state: Path) -> int:
    """Provisioning-log lines on disk so far, over every cycle's file."""
    total = 0
    for path in (state / "logs").glob("*"):
        with contextlib.suppress(FileNotFoundError):
            total += path.read_bytes().count(b"\n")
    return total


def kill(pid: list[int]) -> str:
    """SIGKILL the cycle (its pid is the list's one item); the request in hand is dropped."""
    assert pid[0] > 0  # never 0: that would be our own process group
    os.kill(pid[0], signal.SIGKILL)
    return "drop"


def test_kill_9_at_random_points_then_converge(tmp_path):
    endpoints = tmp_path / "endpoints.json"
    serve = spawn_serve(endpoints, *KILL_SPEC, "-q", timeout=120)
    proxy: LdapFaults | None = None
    try:
        ep = Endpoints.read(endpoints)
        proxy = LdapFaults(ep.ldap_url, delay=0.002)
        via_proxy = tmp_path / "via-proxy.json"
        replace(ep, ldap_url=proxy.url, ldap_port=int(proxy.url.rsplit(":", 1)[1])).write(via_proxy)
        state = tmp_path / "state"
        assert run_cycle(*writeback_credentials(ep), GA, state, "delta").statuses["Failure"] == 0
        exo, conn = ExoAdmin(ep), ldap_reader(ep)
        killed_mid_export = 0
        pid: list[int] = [0]  # the running cycle's
        for seed, how in ROUNDS:
            rng = random.Random(seed)
            before = ad_snapshot(conn, ep.base_dn)
            stored = json.loads((state / "state.json").read_text(encoding="utf-8"))
            records = [r for r in exo.mailboxes() if r["RecipientTypeDetails"] != "MailUser"]
            changes = 0
            for i, rec in enumerate(rng.sample(records, EDITS_PER_ROUND)):
                try:
                    exo.set_mailbox(rec["id"], **_random_edit(rng, rec, f"s{seed}e{i}"))
                    changes += 1
                except CmdletFailed as e:  # e.g. a Type the mailbox has already: fine
                    assert e.status == 400, e
            assert changes >= EDITS_PER_ROUND * 0.9

            k = rng.randint(1, changes // 2)
            if how == "modify":
                proxy.reset(lambda kind, n, k=k: kill(pid) if kind == "modify" and n == k else None)
            elif how == "answer":
                proxy.reset(
                    lambda kind, n, k=k: "lose-answer" if kind == "modify" and n == k else None
                )
                proxy.on_lost = lambda: kill(pid) and None
            else:
                proxy.reset()
            lines = _log_lines(state)
            proc = _cycle_cli(via_proxy, state)
            pid[0] = proc.pid
            if how == "log":
                deadline = time.monotonic() + 30
                while _log_lines(state) - lines < k and proc.poll() is None:
                    assert time.monotonic() < deadline
                    time.sleep(0.001)
                proc.kill()
            elif how == "delay":
                time.sleep(rng.uniform(0, 1.5))
                proc.kill()
            _, err = proc.communicate(timeout=60)
            proxy.on_lost = None
            if how in ("modify", "answer"):
                assert proc.returncode == -signal.SIGKILL, err
                # The k-th write never reached AD, or reached it without the engine knowing
                # (a pipelining engine may have sent more before it died).
                if how == "modify":
                    assert proxy.seen["modify"] == k and proxy.forwarded["modify"] == k - 1
                else:
                    assert proxy.forwarded["modify"] >= k
                # Killed between export and commit: the watermark did not move.
                now = json.loads((state / "state.json").read_text(encoding="utf-8"))
                assert now["delta_link"] == stored["delta_link"]
            elif proc.returncode != -signal.SIGKILL:
                assert proc.returncode == 0, err  # it finished before the kill: fine too
            if proc.returncode == -signal.SIGKILL and proxy.forwarded["modify"]:
                killed_mid_export += 1

            # To completion, then AD equals the cloud for every in-scope mailbox and nothing
            # else in AD changed.
            proxy.reset()
            rerun = run_cycle(*writeback_credentials(ep, ldap_url=proxy.url), GA, state, "delta")
            assert rerun.statuses["Failure"] == 0, (seed, log_entries(rerun)[:3])
            cloud = {r["id"]: r for r in exo.mailboxes()}
            anchors = _anchors(conn, ep.base_dn)
            after = ad_snapshot(conn, ep.base_dn)
            in_scope_dns = set()
            for rec in cloud.values():
                if _in_scope(rec):
                    dn = anchors[rec["onPremisesImmutableId"]]
                    in_scope_dns.add(dn)
                    got = {a: v for a, v in after[dn].items() if a != "uSNChanged"}
                    assert got == expected_ad(rec), (seed, how, dn)
            for dn, values in before.items():
                if dn not in in_scope_dns:
                    assert after[dn] == values, (seed, how, dn)
            parity = verify(*writeback_credentials(ep), GA)
            assert parity.clean, (seed, parity.mismatches, parity.examples)
            assert (
                json.loads((state / "state.json").read_text())["delta_link"] != stored["delta_link"]
            )
        assert killed_mid_export >= 2  # at least the modify and answer rounds
        done = subprocess.run(
            [sys.executable, "-m", "harness", "verify", "--endpoints-file", str(endpoints)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        conn.unbind()
    finally:
        if proxy is not None:
            proxy.close()
        serve.terminate()
        serve.communicate(timeout=60)
