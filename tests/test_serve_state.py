"""`exwb serve --state-dir D`: the tenant survives restarts; kill -9 loses no acknowledged write."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import urllib.parse
from pathlib import Path

import pytest
from ldap3 import BASE, MODIFY_REPLACE, NONE, Connection, Server

from harness.core.endpoints import Endpoints
from harness.tenant import TenantSpec, generate
from mockservers import journal
from mockservers.cloud import delta
from mockservers.directory.seed import seed_directory
from mockservers.directory.service import DirectoryService
from mockservers.directory.store import MOD_ADD, MOD_REPLACE, split_dn
from mockservers.runtime import build_cloud, spawn_serve
from mockservers.state import Durable
from tests.cloud.http_client import call, cmdlet, token

N, SEED = 300, 7


# ------------------------------------------------------------------- in-process: exact state
def _state_of(service, cloud):
    store = service.store
    entries = {ndn: (e.dn, e.parent, dict(e.attrs)) for ndn, e in store.entries.items()}
    log = [(c.seq, c.id, c.properties) for c in cloud.store.changes_after(0)]
    mailboxes = {k: m.to_json() for k, m in cloud.store.mailboxes.items()}  # eq=False: by value
    return entries, store.highest_usn, mailboxes, log, cloud.store.seq


def _fresh(tmp_path, monkeypatch):
    monkeypatch.setattr(delta, "TOKENS", delta.TOKENS)  # attach() replaces the process's key
    tenant = generate(TenantSpec(mailboxes=40, seed=3))
    seeded = seed_directory(tenant)
    service = DirectoryService.from_seed(seeded)
    cloud = build_cloud(tenant.mailboxes, tenant.spec)
    root = tmp_path / "state"
    d = Durable.create(root, seeded, cloud)
    d.attach(service, cloud, compact=False)
    return tenant, service, cloud, d, root


def _resume(root, compact=False):
    d = Durable.resume(root)
    service = DirectoryService.from_seed(d.seeded)
    cloud = build_cloud(d.mailboxes, d.seeded.spec)
    d.attach(service, cloud, compact=compact)
    return service, cloud, d


def _write_everything(tenant, service, cloud, tag: str) -> None:
    store = service.store
    users = [u for u in tenant.ad_users if u.dn.endswith("OU=Corp,DC=contoso,DC=com")]
    u0, u1 = users[0], users[1]
    store.modify(store.ndn_of(u0.dn) or "", [(MOD_REPLACE, "extensionAttribute1", [tag.encode()])])
    store.modify(
        store.ndn_of(u1.dn) or "",
        [(MOD_ADD, "proxyAddresses", [f"smtp:{tag}@contoso.com".encode()])],
    )
    new_dn = f"CN=tmp {tag},OU=Corp,DC=contoso,DC=com"
    store.add(new_dn, [("objectClass", [b"top", b"person", b"user"]), ("sn", ["é\x00".encode()])])
    # A group naming the new user, and a manager: their back links replay and follow the move.
    group = f"CN=grp {tag},OU=Corp,DC=contoso,DC=com"
    store.add(group, [("objectClass", [b"top", b"group"]), ("member", [new_dn.encode()])])
    store.modify(split_dn(group)[0], [(MOD_ADD, "member", [u0.dn.encode()])])
    store.modify(store.ndn_of(u1.dn) or "", [(MOD_REPLACE, "manager", [new_dn.encode()])])
    e = store.rename(split_dn(new_dn)[0], f"CN=moved {tag}", True, None)
    assert e.attrs["memberOf"] == (group.encode(),) and e.attrs["directReports"]
    store.modify(e.ndn, [(MOD_REPLACE, "mS-DS-ConsistencyGuid", [b"\xff\xfe binary\x00"])])
    gone = f"CN=gone {tag},OU=Corp,DC=contoso,DC=com"
    store.add(gone, [("objectClass", [b"top", b"person", b"user"])])
    store.delete(split_dn(gone)[0])
    mbx = tenant.mailboxes
    cloud.store.update(mbx[0].id, {"custom_attributes": (tag,) * 15})
    cloud.store.update(mbx[1].id, {"email_addresses": (*mbx[1].email_addresses, f"smtp:{tag}@x")})
    cloud.store.delete(mbx[-1].id) if tag == "r1" else cloud.store.delete(mbx[-2].id)


def test_snapshot_and_journal_replay_to_the_identical_state(tmp_path, monkeypatch):
    tenant, service, cloud, d, root = _fresh(tmp_path, monkeypatch)
    _write_everything(tenant, service, cloud, "r1")
    before = _state_of(service, cloud)
    d.close()
    assert d.journal.records == 13
    service2, cloud2, d2 = _resume(root)
    assert _state_of(service2, cloud2) == before
    # Writes after the restart append to the same journal; compaction folds it into snapshot 2.
    _write_everything(tenant, service2, cloud2, "r2")
    before = _state_of(service2, cloud2)
    d2.close()
    service3, cloud3, d3 = _resume(root, compact=True)
    d3.close()
    assert _state_of(service3, cloud3) == before
    assert json.loads((root / "state.json").read_text())["generation"] == 2
    assert not (root / "journal-000001.jsonl").exists()
    assert (root / "journal-000002.jsonl").read_bytes() == b""
    service4, cloud4, d4 = _resume(root)
    d4.close()
    assert _state_of(service4, cloud4) == before
    # Credentials and the delta-token key are the same across restarts.
    assert [a.password for a in d4.seeded.accounts] == [a.password for a in d.seeded.accounts]
    assert set(cloud4.auth.apps) == set(cloud.auth.apps)


def test_a_torn_last_record_is_dropped_and_other_damage_names_file_and_line(tmp_path, monkeypatch):
    tenant, service, cloud, d, root = _fresh(tmp_path, monkeypatch)
    _write_everything(tenant, service, cloud, "r1")
    before = _state_of(service, cloud)
    d.close()
    path = root / "journal-000001.jsonl"
    good = path.read_bytes()
    path.write_bytes(good + b'{"t":"ldap","op":"mod')  # kill -9 in the middle of a write
    service2, cloud2, d2 = _resume(root)
    d2.close()
    assert _state_of(service2, cloud2) == before
    assert d2.notes and "journal-000001.jsonl:14: dropped a torn last record" in d2.notes[0]
    assert path.read_bytes() == good  # truncated, so the next append starts a clean line
    lines = good.split(b"\n")
    lines[3] = b'{"t":"ldap","op":"frobnicate","usn":1}'
    path.write_bytes(b"\n".join(lines))
    with pytest.raises(journal.StateError, match=r"journal-000001\.jsonl:4: unknown directory"):
        _resume(root)
    lines[3] = b"not json"
    path.write_bytes(b"\n".join(lines))
    with pytest.raises(journal.StateError, match=r"journal-000001\.jsonl:4: not a JSON record"):
        _resume(root)


# ------------------------------------------------------------------- exwb serve, kill -9
def _ep(path: Path) -> Endpoints:
    return Endpoints(**json.loads(path.read_text()))


def _start(
    tmp_path: Path, state: Path, rnd: int, *extra: str
) -> tuple[subprocess.Popen, Endpoints]:
    path = tmp_path / f"endpoints-{rnd}.json"
    proc = spawn_serve(path, "--state-dir", str(state), *extra, timeout=120)
    return proc, _ep(path)


def _kill(proc: subprocess.Popen) -> str:
    proc.send_signal(signal.SIGKILL)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    return err


def _ldap(ep: Endpoints, who: str) -> Connection:
    dn, pw = (ep.admin_dn, ep.admin_password) if who == "admin" else (ep.bind_dn, ep.bind_password)
    conn = Connection(Server(ep.ldap_url, get_info=NONE), dn, pw)
    assert conn.bind(), conn.result
    return conn


def _read(conn: Connection, dn: str, *attrs: str) -> dict[str, list[bytes]]:
    assert conn.search(dn, "(objectClass=*)", BASE, attributes=list(attrs))
    return conn.response[0]["raw_attributes"]


def _delta_link(ep: Endpoints, tok: str) -> str:
    url = f"{ep.graph_url}/v1.0/users/delta?$select=id,onPremisesExtensionAttributes"
    r = call("GET", url, token=tok)
    while "@odata.nextLink" in r.body:
        r = call("GET", r.body["@odata.nextLink"], token=tok)
    return r.body["@odata.deltaLink"]


def _delta_from(ep: Endpoints, tok: str, link: str) -> dict[str, dict]:
    """Follow a deltaLink (issued by an earlier process, on another port) on the server `ep`."""
    query = urllib.parse.urlsplit(link).query
    r = call("GET", f"{ep.graph_url}/v1.0/users/delta?{query}", token=tok)
    assert r.status == 200, r.body
    out = {u["id"]: u for u in r.body["value"]}
    while "@odata.nextLink" in r.body:
        r = call("GET", r.body["@odata.nextLink"], token=tok)
        out |= {u["id"]: u for u in r.body["value"]}
    return out


def test_every_acknowledged_write_survives_kill_9(tmp_path):
    tenant = generate(TenantSpec(mailboxes=N, seed=SEED))
    corp = [u for u in tenant.ad_users if u.dn.endswith("OU=Corp,DC=contoso,DC=com")]
    remote = [u for u in corp if u.target_address]
    mailboxes = [m for m in tenant.mailboxes if m.recipient_type_details == "UserMailbox"]
    state = tmp_path / "state"
    proc, ep = _start(tmp_path, state, 0, "-n", str(N), "--seed", str(SEED))
    first = ep
    ldap_expected: dict[tuple[str, str], bytes] = {}  # (dn, attribute) -> value
    usns: dict[str, bytes] = {}  # dn -> uSNChanged after its last acknowledged write
    graph_expected: dict[str, str] = {}  # mailbox id -> extensionAttribute7
    try:
        for rnd in range(1, 4):
            tok = token(ep)
            link = _delta_link(ep, tok)
            admin, svc = _ldap(ep, "admin"), _ldap(ep, "writeback")
            edited = []
            for i in range(5):
                user = corp[(rnd * 5 + i) % len(corp)]
                value = f"admin round {rnd} #{i}"
                assert admin.modify(user.dn, {"description": [(MODIFY_REPLACE, [value])]})
                ldap_expected[(user.dn, "description")] = value.encode()
                usns[user.dn] = _read(admin, user.dn, "uSNChanged")["uSNChanged"][0]
                user = remote[(rnd * 5 + i) % len(remote)]
                value = f"writeback round {rnd} #{i}"
                ok = svc.modify(user.dn, {"extensionAttribute1": [(MODIFY_REPLACE, [value])]})
                assert ok, svc.result
                ldap_expected[(user.dn, "extensionAttribute1")] = value.encode()
                usns[user.dn] = _read(admin, user.dn, "uSNChanged")["uSNChanged"][0]
                m = mailboxes[(rnd * 5 + i) % len(mailboxes)]
                value = f"cloud round {rnd} #{i}"
                r = cmdlet(
                    ep,
                    tok,
                    "Set-Mailbox",
                    Identity=m.id,
                    IsExchangeCloudManaged=True,
                    CustomAttribute7=value,
                )
                assert r.status == 200, r.body
                graph_expected[m.id] = value
                edited.append(m.id)
            err = _kill(proc)  # right after the last acknowledged response
            assert "Traceback" not in err
            proc, ep = _start(tmp_path, state, rnd)
            # Same credentials as the first run: clients keep theirs across restarts.
            for key in ("bind_password", "admin_password", "client_id", "client_secret"):
                assert getattr(ep, key) == getattr(first, key), key
            admin = _ldap(ep, "admin")
            for (dn, attr), value in ldap_expected.items():
                assert _read(admin, dn, attr)[attr] == [value], (dn, attr)
            for dn, usn in usns.items():
                assert _read(admin, dn, "uSNChanged")["uSNChanged"] == [usn], dn
            tok = token(ep)
            for id_, value in graph_expected.items():
                r = call(
                    "GET",
                    f"{ep.graph_url}/v1.0/users/{id_}?$select=id,onPremisesExtensionAttributes",
                    token=tok,
                )
                assert r.status == 200, r.body
                assert r.body["onPremisesExtensionAttributes"]["extensionAttribute7"] == value
            changed = _delta_from(ep, tok, link)  # taken before this round's writes
            assert set(changed) == set(edited)
            for id_ in edited:
                attrs = changed[id_]["onPremisesExtensionAttributes"]
                assert attrs["extensionAttribute7"] == graph_expected[id_]
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.communicate(timeout=60)


def test_a_torn_journal_line_is_dropped_with_a_warning(tmp_path):
    state = tmp_path / "state"
    proc, ep = _start(tmp_path, state, 0, "-n", "40")
    user = next(u for u in generate(TenantSpec(mailboxes=40)).ad_users if "OU=Corp" in u.dn)
    try:
        admin = _ldap(ep, "admin")
        assert admin.modify(user.dn, {"description": [(MODIFY_REPLACE, ["kept"])]})
    finally:
        _kill(proc)
    with (state / "journal-000001.jsonl").open("ab") as f:
        f.write(b'{"t":"ldap","op":"modify","ndn":"cn=')
    proc, ep = _start(tmp_path, state, 1)
    try:
        assert _read(_ldap(ep, "admin"), user.dn, "description")["description"] == [b"kept"]
        assert _ldap(ep, "admin").modify(user.dn, {"description": [(MODIFY_REPLACE, ["next"])]})
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "journal-000001.jsonl:2: dropped a torn last record" in err.replace("\n", "")
    assert "resumed snapshot 1 and 1 journaled writes" in out
    lines = (state / "journal-000001.jsonl").read_text().splitlines()
    assert len(lines) == 2 and all(json.loads(line)["t"] == "ldap" for line in lines)


def _serve(*args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "harness", "serve", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def test_a_different_spec_or_a_damaged_state_dir_is_a_clear_error(tmp_path):
    state = tmp_path / "state"
    proc, _ = _start(tmp_path, state, 0, "-n", "40", "--seed", "2")
    _kill(proc)
    res = _serve("--state-dir", str(state), "-n", "50", "--seed", "2")
    assert res.returncode == 2, res.stderr
    assert "mailboxes: state dir has 40, given 50" in res.stderr
    assert "seed" not in res.stderr.split("holds a different tenant:")[1].split("(drop")[0]
    res = _serve("--state-dir", str(state), "-k", "non_ascii_fraction=0.5")
    assert res.returncode == 2 and "non_ascii_fraction: state dir has" in res.stderr
    res = _serve("--state-dir", str(state), "--ldif", str(tmp_path / "x.ldif"))
    assert res.returncode == 2 and "drop --ldif" in res.stderr
    # Giving the same knobs as stored resumes the tenant.
    proc, _ = _start(tmp_path, state, 1, "-n", "40", "--seed", "2")
    _kill(proc)
    with (state / "journal-000001.jsonl").open("ab") as f:
        f.write(b"garbage\n")
    res = _serve("--state-dir", str(state))
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert "journal-000001.jsonl:1: not a JSON record" in res.stderr.replace("\n", "")


def test_without_a_state_dir_nothing_is_journaled(tmp_path):
    proc = spawn_serve(tmp_path / "ep.json", "-n", "40", timeout=120)
    try:
        ep = _ep(tmp_path / "ep.json")
        user = next(u for u in generate(TenantSpec(mailboxes=40)).ad_users if "OU=Corp" in u.dn)
        admin = _ldap(ep, "admin")
        assert admin.modify(user.dn, {"description": [(MODIFY_REPLACE, ["x"])]})
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "state dir" not in out
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # the endpoints file is removed
