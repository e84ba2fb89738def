"""Convergence as a property (issue 9): a Hypothesis state machine over a live fake tenant.

Rules make random cloud edits (Set-Mailbox over the EXO admin API: custom attributes, extension
custom attributes, an extra proxy address, the mailbox type), random edits by the on-prem admin
over LDAP (writeback attributes and unmapped ones, on in-scope and out-of-scope users), flips of
IsExchangeCloudManaged, arm and clear faults on both servers, and run delta or full cycles.

Checked after every cycle, from LDAP snapshots taken just before and after it (nobody else
writes meanwhile): every entry the engine changed is in scope (dir-synced and cloud-managed) and
only its profile attributes changed, and the cycle's provisioning log has a Success Update entry
naming that DN with each changed attribute among its modifiedProperties. Checked after every
fault-free full cycle (a rule, and each example's teardown): AD equals the cloud on every
in-scope object, by `verify` and by `expected_ad` (the mapping written out independently).

One tenant serves the whole test: each example starts from whatever the previous one left,
reading the model (which mailboxes are cloud-managed) back from the cloud.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    rule,
    run_state_machine_as_test,
)
from ldap3 import MODIFY_ADD, MODIFY_REPLACE
from ldap3.core.exceptions import LDAPException

from harness.clients.exo import CmdletError, ExoAdmin
from harness.core.dn import normalize_dn
from harness.engine import log as provlog
from harness.engine.cycle import CycleReport, run_cycle
from harness.engine.rules import GA
from harness.engine.verify import verify
from harness.tenant import TenantSpec, generate
from mockservers.faults import since
from mockservers.runtime import RunningTenant
from tests.directory.ldap_clients import connect
from tests.engine.exo_client import GA_TARGETS, ad_entry, ad_snapshot, expected_ad, ldap_reader
from tests.support.engine import EngineEnv, log_entries

TENANT = generate(
    TenantSpec(
        mailboxes=60,
        seed=47,
        cloud_managed_fraction=0.6,
        special_cn_fraction=0.2,
        non_ascii_fraction=0.2,
    )
)
DOMAIN = TENANT.spec.domain
MAILBOX_KINDS = ("UserMailbox", "SharedMailbox", "RoomMailbox", "EquipmentMailbox")
# Every dir-synced recipient: cloud id -> normalized AD DN (no rule renames or moves users).
SYNCED = {m.id: normalize_dn(u.dn) for u, m in TENANT.synced_pairs()}
DN_OF = {m.id: u.dn for u, m in TENANT.synced_pairs()}
# What the rules edit: dir-synced mailboxes (a MailUser takes no Set-Mailbox).
IDS = sorted(m.id for _, m in TENANT.synced_pairs() if m.recipient_type_details in MAILBOX_KINDS)
ALL_DNS = sorted(u.dn for u in TENANT.ad_users)  # in-scope or not: the admin edits any of them
UNMAPPED = ("department", "displayName")
WATCHED = (*GA_TARGETS, *UNMAPPED)
# Engine retries: LdapTarget and GraphSource give up on the 5th consecutive failure of one request.
FAULT_BUDGET = {"ldap": 4, "http": 4}
SERIAL = itertools.count(1)
TYPES = ("Regular", "Shared", "Room", "Equipment")

text = st.text(st.sampled_from("abcXYZ 019-é"), min_size=1, max_size=8).map(str.strip).filter(bool)


@dataclass
class Env(EngineEnv):
    exo: ExoAdmin
    cycles: int = 0
    full_checks: int = 0
    engine_changed: int = 0  # entries the engine changed, over all cycles
    refused: int = 0  # cloud edits Exchange refused (AD-managed mailboxes)

    def cloud_managed(self) -> set[str]:
        recs = self.exo.invoke_all("Get-Recipient", ResultSize="Unlimited")
        return {r["id"] for r in recs if r["IsDirSynced"] and r["IsExchangeCloudManaged"]}

    def snapshot(self) -> dict[str, dict[str, list]]:
        snap = ad_snapshot(self.conn, TENANT.base_dn, WATCHED)
        for values in snap.values():
            values.pop("uSNChanged")
        return {normalize_dn(dn): v for dn, v in snap.items()}


@pytest.fixture(scope="module")
def env(shared_run: RunningTenant, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    ep = shared_run.endpoints
    e = Env(
        shared_run,
        ldap_reader(ep),
        tmp_path_factory.mktemp("convergence") / "state",
        ExoAdmin(ep.exo_url, ep.token_url, ep.client_id, ep.client_secret),
    )
    yield e
    e.exo.close()
    e.close()


class Convergence(RuleBasedStateMachine):
    env: Env  # set by the test

    def __init__(self) -> None:
        super().__init__()
        self.env.run.faults.clear("all")
        self.managed = self.env.cloud_managed()  # the model, from the live cloud
        self.faulty = False
        self.budget = dict(FAULT_BUDGET)  # faults each server may still have armed

    # --- cloud edits, as an admin's Set-Mailbox ---
    # Draws never depend on the live state (Hypothesis replays them): an edit may pick a
    # mailbox AD manages, and Exchange must then refuse it.

    def _set_mailbox(self, mbx: str, **params: Any) -> None:
        for _ in range(20):  # armed throttles hit the admin too: outlast them
            try:
                self.env.exo.invoke("Set-Mailbox", Identity=mbx, **params)
                return
            except CmdletError as e:
                if e.status != 429 or not self.faulty:
                    raise
        raise AssertionError("still throttled after 20 tries")

    def _edit(self, mbx: str, **params: Any) -> None:
        try:
            self._set_mailbox(mbx, **params)
        except CmdletError as e:
            assert mbx not in self.managed and e.code == "TaskInvalidOperationException", e
            self.env.refused += 1
        else:
            assert mbx in self.managed, f"Exchange took an edit of AD-managed {mbx}"

    @rule(mbx=st.sampled_from(IDS), n=st.integers(1, 15), value=st.none() | text)
    def custom_attribute(self, mbx, n, value):
        self._edit(mbx, **{f"CustomAttribute{n}": value})

    @rule(mbx=st.sampled_from(IDS), n=st.integers(1, 5), add=st.booleans(), value=text)
    def extension_custom_attribute(self, mbx, n, add, value):
        self._edit(mbx, **{f"ExtensionCustomAttribute{n}": {"Add" if add else "Remove": [value]}})

    @rule(mbx=st.sampled_from(IDS), suffix=st.integers(0, 99))
    def extra_proxy_address(self, mbx, suffix):
        self._edit(mbx, EmailAddresses={"Add": [f"smtp:p{suffix}.{mbx[:8]}@{DOMAIN}"]})

    @rule(mbx=st.sampled_from(IDS), kind=st.sampled_from(TYPES))
    def mailbox_type(self, mbx, kind):
        self._edit(mbx, Type=kind)

    @rule(mbx=st.sampled_from(IDS), on=st.booleans())
    def flip_flag(self, mbx, on):
        self._set_mailbox(mbx, IsExchangeCloudManaged=on)
        (self.managed.add if on else self.managed.discard)(mbx)

    # --- the on-prem admin, over LDAP ---

    @rule(
        dn=st.sampled_from(ALL_DNS),
        attr=st.sampled_from(
            (*UNMAPPED, "extensionAttribute2", "extensionAttribute9", "proxyAddresses")
        ),
        value=text,
    )
    def admin_edit(self, dn, attr, value):
        if attr == "proxyAddresses":
            change = {attr: [(MODIFY_ADD, [f"smtp:admin.{abs(hash(value)) % 997}@{DOMAIN}"])]}
        else:
            change = {attr: [(MODIFY_REPLACE, [value])]}
        # A connection per edit: an armed LDAP fault may refuse the admin's modify too, and a
        # drop closes the connection. Any other failure is a bug.
        conn = connect(self.env.run)
        try:
            ok = conn.modify(dn, change)
            result = conn.result or {}
        except LDAPException as e:
            ok, result = False, {"result": None, "exception": repr(e)}
        finally:
            with contextlib.suppress(LDAPException):
                conn.unbind()
        if not ok:
            assert self.faulty or result.get("result") == 20, result  # 20: value exists

    # --- faults ---

    @rule(
        kind=st.sampled_from(("busy", "unavailable", "drop")),
        after=st.integers(0, 2),
        count=st.integers(1, 3),
    )
    def arm_ldap(self, kind, after, count):
        self._arm("ldap", kind, on="modify", after=after, count=count)

    @rule(
        on=st.sampled_from(("delta", "users", "any")),
        after=st.integers(0, 3),
        count=st.integers(1, 2),
    )
    def arm_http(self, on, after, count):
        # retry_after is whole seconds; 0 is the smallest the plan allows (and keeps this fast).
        self._arm("http", "throttle", on=on, after=after, count=count, retry_after=0)

    def _arm(self, server: str, kind: str, count: int, **options: Any) -> None:
        # Within the engine's retry budget (a server may fail one request MAX_TRIES - 1 times
        # in a row), so every cycle must complete. The model's own count, not the plan's:
        # draws must not depend on the servers.
        count = min(count, self.budget[server])
        if count:
            self.env.run.faults.arm(server, kind, count=count, **options)
            self.budget[server] -= count
            self.faulty = True

    @rule(
        kind=st.sampled_from(("busy", "unavailable", "drop")),
        index=st.integers(0, len(IDS)),
        value=text,
    )
    def cycle_through_faults(self, kind, index, value):
        """A cloud edit written by a delta cycle while its modify and delta read fault once."""
        editable = sorted(self.managed & set(IDS))
        if not editable:
            return
        mbx = editable[index % len(editable)]
        value = f"{value} #{next(SERIAL)}"  # a change, always: the engine must write it
        self.clear_faults()  # only these two faults armed
        self._edit(mbx, CustomAttribute1=value)
        plan = self.env.run.faults
        before = plan.injected()
        self._arm("ldap", kind, on="modify", count=1)
        self._arm("http", "throttle", on="delta", count=1, retry_after=0)
        report = self._cycle("delta")
        got = since(before, plan.injected())
        assert got.get(f"ldap.{kind}") and got.get("http.throttle"), got
        (entry,) = [e for e in log_entries(report) if provlog.source_id(e) == mbx]
        assert provlog.status(entry) == "Success", entry  # retried through both faults
        assert ad_entry(self.env.conn, DN_OF[mbx])["extensionAttribute1"] == [value]

    @rule()
    def clear_faults(self):
        self.env.run.faults.clear("all")
        self.faulty = False
        self.budget = dict(FAULT_BUDGET)

    # --- cycles ---

    @rule(mode=st.sampled_from(("delta", "full")))
    def cycle(self, mode):
        self._cycle(mode)

    @rule()
    def converge(self):
        self.clear_faults()
        self._cycle("full")
        self._check_converged()

    def teardown(self):
        self.converge()

    def _cycle(self, mode: str) -> CycleReport:
        env = self.env
        before = env.snapshot()
        in_scope = {SYNCED[i] for i in self.managed}
        report = run_cycle(*env.creds(), GA, env.state, mode)
        env.cycles += 1
        after = env.snapshot()
        assert set(after) == set(before), "the engine added or removed entries"
        entries = log_entries(report)
        written: dict[str, set[str]] = {}
        for e in entries:
            if provlog.status(e) == "Success" and provlog.action(e) == "Update":
                dn = normalize_dn(provlog.target_dn(e))
                written.setdefault(dn, set()).update(m["displayName"] for m in provlog.modified(e))
        for dn, old in before.items():
            new = after[dn]
            changed = {a for a in WATCHED if old[a] != new[a]}
            if not changed:
                continue
            env.engine_changed += 1
            assert dn in in_scope, f"{mode} cycle changed out-of-scope {dn}: {sorted(changed)}"
            assert changed <= set(GA.targets), f"{dn}: unmapped {sorted(changed - set(GA.targets))}"
            assert dn in written, f"{dn} changed ({sorted(changed)}) with no Success Update entry"
            assert changed <= written[dn], f"{dn}: {sorted(changed - written[dn])} not logged"
        if not self.faulty:
            assert report.statuses["Failure"] == 0, [
                e for e in entries if provlog.status(e) == "Failure"
            ]
        return report

    def _check_converged(self) -> None:
        env = self.env
        env.full_checks += 1
        parity = verify(*env.creds(), GA)
        assert parity.clean, (parity.unmatched, dict(parity.mismatches), parity.examples)
        recs = {r["id"]: r for r in env.exo.invoke_all("Get-Recipient", ResultSize="Unlimited")}
        assert {i for i in SYNCED if recs[i]["IsExchangeCloudManaged"]} == self.managed
        for mbx in sorted(self.managed & set(IDS)):  # and by the mapping written out here
            assert ad_entry(env.conn, DN_OF[mbx]) == expected_ad(recs[mbx]), DN_OF[mbx]


def test_engine_converges_under_random_edits_faults_and_cycles(env):
    Convergence.env = env
    run_state_machine_as_test(
        Convergence,
        # No shrinking: examples share one live tenant, so a shrunk replay starts from another
        # state and would not reproduce; the failing steps as first found are printed instead.
        settings=settings(
            settings.default,
            max_examples=15,
            stateful_step_count=20,
            phases=(Phase.explicit, Phase.reuse, Phase.generate),
        ),
    )
    assert env.cycles >= 15 and env.full_checks >= 15  # every example ended converged
    injected = env.run.faults.injected()
    print(
        f"cycles {env.cycles}, engine-changed entries {env.engine_changed}, refused edits "
        f"{env.refused}, faults injected {injected}"
    )
    # The rules did reach the engine: it wrote, Exchange refused edits, both servers faulted.
    assert env.engine_changed and env.refused
    assert any(k.startswith("ldap.") for k in injected), injected
    assert any(k.startswith("http.") for k in injected), injected
