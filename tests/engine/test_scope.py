"""The job's scoping filters (Graph schema's containerFilter and groupFilter) in real cycles:
users outside them are Skipped NotInScope and keep their AD values."""

from __future__ import annotations

import json

import pytest
from ldap3 import MODIFY_ADD

from harness.engine import log as provlog
from harness.engine.cycle import Skip
from harness.engine.scope import Members, Scope, ScopeError
from harness.engine.state import EngineState
from harness.tenant import TenantSpec, generate
from tests.directory.ldap_clients import connect
from tests.engine.test_cycle import ad_values, cycle, edit
from tests.support.engine import mailbox_pairs

TENANT = generate(TenantSpec(mailboxes=30, seed=21))


def scoped(state_dir, containers=(), groups=()) -> None:
    state = EngineState.load(state_dir)
    state.scope = Scope(tuple(containers), tuple(groups)).to_json()
    state.save(state_dir)


def tag(run, mbx, value):
    edit(run, mbx, custom_attributes=(value, *mbx.custom_attributes[1:]))


def skipped_not_in_scope(report) -> list[dict]:
    lines = [json.loads(x) for x in report.log_path.read_text().splitlines()]
    return [x for x in lines if provlog.reason(x) == Skip.NOT_IN_SCOPE.value]


def test_a_container_filter_writes_only_below_its_containers(run, tmp_path):
    cycle(run, tmp_path)
    (inside, a), (outside, b) = mailbox_pairs(TENANT, True)[:2]
    scoped(tmp_path, containers=[inside.dn.split(",", 1)[1].upper()])  # case-blind, as AD
    if outside.dn.split(",", 1)[1].casefold() == inside.dn.split(",", 1)[1].casefold():
        scoped(tmp_path, containers=[inside.dn])  # the DN itself is in its own container
    tag(run, a, "in scope")
    tag(run, b, "out of scope")
    report = cycle(run, tmp_path)
    assert ad_values(run, inside.dn, "extensionAttribute1") == ["in scope"]
    assert ad_values(run, outside.dn, "extensionAttribute1") != ["out of scope"]
    (skip,) = skipped_not_in_scope(report)
    assert provlog.target_dn(skip) == outside.dn
    assert provlog.steps(skip)[2]["status"].casefold() == "skipped"


def test_a_group_filter_writes_only_direct_members(run, tmp_path):
    cycle(run, tmp_path)
    (member, a), (other, b) = mailbox_pairs(TENANT, True)[:2]
    group = "CN=Writeback Pilot," + run.endpoints.base_dn
    admin = connect(run)
    assert admin.add(group, ["top", "group"], {"sAMAccountName": "wbpilot"}), admin.result
    assert admin.modify(group, {"member": [(MODIFY_ADD, [member.dn])]}), admin.result
    scoped(tmp_path, groups=[group])
    tag(run, a, "member")
    tag(run, b, "not a member")
    report = cycle(run, tmp_path)
    assert ad_values(run, member.dn, "extensionAttribute1") == ["member"]
    assert ad_values(run, other.dn, "extensionAttribute1") != ["not a member"]
    assert [provlog.target_dn(x) for x in skipped_not_in_scope(report)] == [other.dn]


def test_bad_filters_name_the_value():
    with pytest.raises(ScopeError, match="'no dn here'"):
        Scope(("no dn here",))
    assert Scope().everyone and Scope.from_json(None) == Scope()
    assert Scope(("OU=A,DC=x",)).below("cn=u,ou=a,dc=X") and not Scope(("OU=A,DC=x",)).below(
        "cn=u,ou=b,dc=x"
    )
    assert "CN=u,OU=a,DC=x" in Members(["cn=U,ou=A,dc=x"])
