"""The writeback engine against every directory backend: the fake AD, OpenLDAP slapd and Samba.

The cloud side is always the fake Exchange Online / Graph of `start_tenant`; AD is the fake's
LDAP server, a slapd loaded with the same tenant's LDIF or a Samba AD DC holding it
(tests/support/backends.py). The engine binds as the writeback service account, whose delegation
is the same on all three, so
its behaviour must be too: cycles converge, write exactly the cloud's edits and nothing out of
scope, repair drift, are idempotent, and report an ACL denial as a Failure with LDAP code 50.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from ldap3 import BASE, MODIFY_REPLACE

from harness.core.clock import SimulatedClock
from harness.core.dn import normalize_dn
from harness.engine import log as provlog
from harness.engine.anchor import MatchRule
from harness.engine.rules import Profile, load_profile
from harness.engine.source import CloudCredentials
from harness.engine.target import LdapCredentials
from harness.tenant import AdUser, CloudMailbox, TenantSpec, generate
from tests.directory.ldap_clients import connect, is_ad, is_samba
from tests.support.backends import SAMBA, SLAPD, Directory, start_samba, start_slapd
from tests.support.engine import (
    EngineEnv,
    log_entries,
    mailbox_pairs,
    simulated_time,
    writeback_credentials,
)

TENANT = generate(
    TenantSpec(
        mailboxes=80,
        seed=12,
        cloud_managed_fraction=0.8,
        special_cn_fraction=0.2,
        non_ascii_fraction=0.2,
        # CustomAttribute15 stays empty: the denial test maps it to an attribute AD holds none of
        custom_attribute_fill=(0.9, 0.6, 0.35, 0.2, *[0.1] * 10, 0.0),
    )
)


@dataclass
class Env(EngineEnv):
    """The engine reads the tenant's fake cloud and writes `ad`: the tenant's own fake AD, or
    slapd holding the same tenant (`conn` reads `ad`)."""

    ad: Directory

    def creds(self) -> tuple[CloudCredentials, LdapCredentials]:
        return writeback_credentials(self.ep, self.ad.endpoints)


@pytest.fixture
def env(run, backend, slapd_contents, samba_contents, tmp_path):
    if backend == SLAPD:
        ad = start_slapd(slapd_contents(TENANT))
    elif backend == SAMBA:
        ad = start_samba(samba_contents(TENANT), slapd_contents(TENANT).endpoints)
    else:
        ad = run
    e = Env(run, connect(ad, "reader"), tmp_path / "state", ad)
    yield e
    e.close()
    if ad is not run:
        ad.stop()


cycle = Env.cycle  # the tests read cycle(env, mode, profile=...)


def ad_values(env: Env, dn: str, attr: str) -> list[str]:
    conn = env.conn
    assert conn.search(dn, "(objectClass=*)", BASE, attributes=[attr]), conn.result
    return sorted(v.decode() for v in conn.response[0]["raw_attributes"].get(attr) or [])


def edit(env: Env, mbx, **fields):
    """Change a mailbox in the cloud store, as Set-Mailbox would (values or f(current))."""
    store = env.run.cloud.store
    current = env.run.call(store.get, mbx.id)
    changes = {k: v(current) if callable(v) else v for k, v in fields.items()}
    return env.run.call(store.update, mbx.id, changes)


def pairs(managed: bool) -> list[tuple[AdUser, CloudMailbox]]:
    return mailbox_pairs(TENANT, managed)


def test_initial_cycle_on_a_consistent_tenant_writes_nothing(env):
    report = cycle(env)
    assert report.watermark_moved and report.statuses["Failure"] == 0
    assert report.actions.get("Update", 0) == 0
    assert report.statuses["Success"] == len(pairs(True))
    assert {provlog.status(x) for x in log_entries(report)} == {"Success", "Skipped"}


def test_cloud_edits_converge_in_ad(env):
    cycle(env)
    user, mbx = pairs(True)[0]
    extra = f"smtp:{mbx.alias}.alt@contoso.com"
    edit(
        env,
        mbx,
        custom_attributes=("Written by EXO", *mbx.custom_attributes[1:]),
        email_addresses=lambda m: (*m.email_addresses, extra),
    )
    report = cycle(env)
    assert report.actions["Update"] == 1 and report.statuses["Success"] == 1
    assert ad_values(env, user.dn, "extensionAttribute1") == ["Written by EXO"]
    assert extra in ad_values(env, user.dn, "proxyAddresses")
    entry = log_entries(report)[0]
    assert normalize_dn(provlog.target_dn(entry)) == normalize_dn(user.dn)
    assert {m["displayName"] for m in provlog.modified(entry)} == {
        "extensionAttribute1",
        "proxyAddresses",
    }


def test_multi_valued_add_and_remove(env):
    cycle(env)
    user, mbx = next(
        (u, m)
        for u, m in pairs(True)
        if len([a for a in m.email_addresses if a.startswith("smtp:")]) >= 2
    )
    dropped = next(a for a in mbx.email_addresses if a.startswith("smtp:"))
    added = f"smtp:{mbx.alias}.new@contoso.com"
    edit(
        env,
        mbx,
        email_addresses=lambda m: (*(a for a in m.email_addresses if a != dropped), added),
        extension_custom_attributes=(
            ("one", "two", "Zürich"),
            *mbx.extension_custom_attributes[1:],
        ),
    )
    report = cycle(env)
    assert report.actions["Update"] == 1, log_entries(report)
    want = sorted(a for a in (*mbx.email_addresses, added) if a != dropped)
    assert ad_values(env, user.dn, "proxyAddresses") == want
    assert ad_values(env, user.dn, "msExchExtensionCustomAttribute1") == ["Zürich", "one", "two"]
    # Then one value out, one kept: exactly the difference is written.
    edit(env, mbx, extension_custom_attributes=(("two",), *mbx.extension_custom_attributes[1:]))
    report = cycle(env)
    assert report.actions["Update"] == 1
    assert ad_values(env, user.dn, "msExchExtensionCustomAttribute1") == ["two"]
    assert ad_values(env, user.dn, "proxyAddresses") == want


def test_out_of_scope_edits_are_never_written(env):
    cycle(env)
    user, mbx = pairs(False)[0]
    before = ad_values(env, user.dn, "extensionAttribute1")
    edit(env, mbx, custom_attributes=("cloud value", *mbx.custom_attributes[1:]))
    report = cycle(env)
    assert report.statuses["Skipped"] == 1 and report.actions.get("Update", 0) == 0
    assert ad_values(env, user.dn, "extensionAttribute1") == before


def test_a_full_cycle_repairs_drift_and_cycles_are_idempotent(env):
    cycle(env)
    user, _ = pairs(True)[2]
    want = ad_values(env, user.dn, "extensionAttribute2")
    admin = connect(env.ad)
    assert admin.modify(user.dn, {"extensionAttribute2": [(MODIFY_REPLACE, ["edited by hand"])]})
    assert cycle(env).objects == 0  # a delta cycle does not see AD-side drift
    report = cycle(env, "full")
    assert report.actions["Update"] == 1 and report.statuses["Failure"] == 0
    assert ad_values(env, user.dn, "extensionAttribute2") == want
    # Nothing left to write, whether asked for the changes or for everything.
    assert cycle(env).objects == 0
    again = cycle(env, "full")
    assert again.actions.get("Update", 0) == 0 and again.statuses["Failure"] == 0


@pytest.mark.ad_differs("AD diagnostic messages")
@pytest.mark.samba_differs("diagnostic texts", branches=True)
def test_acl_denial_is_a_failure_with_code_50(env, tmp_path):
    with simulated_time() as sim:
        acl_denial(env, tmp_path, sim)


def acl_denial(env: Env, tmp_path: Path, sim: SimulatedClock) -> None:
    # description is not among the attributes the writeback account may write.
    profile = tmp_path / "with-description.yaml"
    profile.write_text(
        "based_on: ga\nname: with-description\n"
        "mappings:\n  - {target: description, source: CustomAttribute15}\n",
        encoding="utf-8",
    )
    prof = load_profile(profile)
    first = cycle(env, profile=prof)
    assert first.statuses["Failure"] == 0 and first.actions.get("Update", 0) == 0
    user, mbx = pairs(True)[3]
    edit(env, mbx, custom_attributes=(*mbx.custom_attributes[:14], "not for AD"))
    report = cycle(env, profile=prof)
    assert report.statuses["Failure"] == 1 and report.statuses["Success"] == 0
    entry = next(x for x in log_entries(report) if provlog.status(x) == "Failure")
    assert normalize_dn(provlog.target_dn(entry)) == normalize_dn(user.dn)
    assert provlog.error_code(entry) == 50
    # AD names the missing right; slapd says no more than the code, Samba in its own words.
    windows_text = is_ad(env.ad) and not is_samba(env.ad)
    assert ("INSUFF_ACCESS_RIGHTS" in provlog.reason(entry)) is windows_text
    # One modify request: the allowed extensionAttribute15 was not written either.
    assert ad_values(env, user.dn, "description") == []
    assert ad_values(env, user.dn, "extensionAttribute15") == []
    # Escrowed: not retried before its first retry time (6 h after the failure, then 12 h,
    # 24 h and daily, harness.engine.escrow), and then failing the same way.
    assert cycle(env, profile=prof).statuses["Failure"] == 0
    sim.advance(timedelta(hours=6))
    assert cycle(env, profile=prof).statuses["Failure"] == 1


# --- the match rule (profile `match`) ------------------------------------------------------


def match_profile(tmp_path, rule: MatchRule) -> Profile:
    path = tmp_path / f"match-{rule.value}.yaml"
    path.write_text(f"based_on: ga\nname: match-{rule.value}\nmatch: {rule.value}\n", "utf-8")
    return load_profile(path)


def stamp_external_ids(env: Env, items: list[tuple[AdUser, CloudMailbox]]) -> None:
    """What Exchange hybrid writeback does: msDS-ExternalDirectoryObjectId = User_<cloud id>."""
    admin = connect(env.ad)
    for user, mbx in items:
        change = {"msDS-ExternalDirectoryObjectId": [(MODIFY_REPLACE, [f"User_{mbx.id}"])]}
        assert admin.modify(user.dn, change), admin.result


def outcome(report, mbx: CloudMailbox) -> tuple[str, str]:
    (entry,) = [e for e in log_entries(report) if provlog.source_id(e) == mbx.id]
    return provlog.status(entry), provlog.reason(entry)


@pytest.mark.parametrize("rule", list(MatchRule), ids=[r.value for r in MatchRule])
def test_each_match_rule_matches_by_its_own_attribute(env, tmp_path, rule):
    """A: mS-DS-ConsistencyGuid cleared; B: never stamped with msDS-ExternalDirectoryObjectId;
    C: both. Each rule matches exactly the users its attribute finds, in a full round (one
    read of AD) and a delta round (an OR search per page); the rest are Skipped."""
    profile = match_profile(tmp_path, rule)
    (user_a, a), (user_b, b), (user_c, c), *rest = pairs(True)
    stamp_external_ids(env, [(user_a, a), (user_c, c), *rest])
    admin = connect(env.ad)
    assert admin.modify(user_a.dn, {"mS-DS-ConsistencyGuid": [(MODIFY_REPLACE, [])]}), admin.result
    matched = {
        MatchRule.CONSISTENCY_GUID: {"B", "C"},
        MatchRule.OBJECT_GUID: {"A", "B", "C"},
        MatchRule.EXTERNAL_ID: {"A", "C"},
    }[rule]
    users = {"A": (user_a, a), "B": (user_b, b), "C": (user_c, c)}
    for round_, mode in enumerate(("full", "delta")):
        for _, mbx in users.values():
            edit(env, mbx, custom_attributes=(f"{rule.value} {round_}", *mbx.custom_attributes[1:]))
        report = cycle(env, mode, profile=profile)
        assert report.statuses["Failure"] == 0, log_entries(report)
        for name, (user, mbx) in users.items():
            written = ad_values(env, user.dn, "extensionAttribute1") == [f"{rule.value} {round_}"]
            assert written is (name in matched), (name, mode)
            assert outcome(report, mbx) == (
                ("Success", "") if name in matched else ("Skipped", "no matching AD user")
            )
    # The Matching step says what it looked for, by the rule's attribute.
    for name, (_, mbx) in users.items():
        (entry,) = [e for e in log_entries(report) if provlog.source_id(e) == mbx.id]
        matching = provlog.steps(entry)[1]["description"]
        if name not in matched:
            assert matching.startswith(f"no AD user with {rule.value} "), matching


@pytest.mark.parametrize(
    "rule", [MatchRule.CONSISTENCY_GUID, MatchRule.EXTERNAL_ID], ids=lambda r: r.value
)
def test_an_anchor_two_ad_users_hold_fails_the_object_and_writes_neither(env, tmp_path, rule):
    """The engine does not guess which of two AD users a cloud object means (objectGUID is
    unique in AD, so that rule cannot meet this)."""
    profile = match_profile(tmp_path, rule)
    (user_a, a), (user_b, _) = pairs(True)[:2]  # B takes A's anchor
    admin = connect(env.ad)
    if rule is MatchRule.EXTERNAL_ID:
        stamp_external_ids(env, [(user_a, a)])
        taken = f"User_{a.id}".encode()
    else:
        taken = base64.b64decode(a.immutable_id)
    assert admin.modify(user_b.dn, {rule.attribute: [(MODIFY_REPLACE, [taken])]}), admin.result
    edit(env, a, custom_attributes=("ambiguous", *a.custom_attributes[1:]))
    report = cycle(env, "full", profile=profile)
    assert outcome(report, a) == ("Failure", "source anchor held by more than one AD object")
    assert ad_values(env, user_a.dn, "extensionAttribute1") != ["ambiguous"]
    assert ad_values(env, user_b.dn, "extensionAttribute1") != ["ambiguous"]
