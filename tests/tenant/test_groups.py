"""AD groups and the SAM times of users in generated tenants (issue 16)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.preflight.rules import SAM_INVALID
from harness.tenant import SpecError, TenantSpec, generate
from harness.tenant import recipients as rt
from harness.tenant.exchange_org import ExchangeOrg
from harness.tenant.generator import DEPARTMENT_TOKENS, filetime
from harness.tenant.ldif import directory_entries
from harness.tenant.model import ACCOUNT_EXPIRY_CLEARED, ACCOUNT_NEVER_EXPIRES, Tenant

GLOBAL_SECURITY, DOMAIN_LOCAL_SECURITY, UNIVERSAL_SECURITY = -2147483646, -2147483644, -2147483640
UNIVERSAL_DISTRIBUTION = 8
NOW = datetime(2026, 8, 1, tzinfo=UTC).timestamp()  # the generator's present
DAY = 86_400 * 10_000_000  # in FILETIME units
TOKENS = tuple(DEPARTMENT_TOKENS.values())


def make(size: int, seed: int = 3, **knobs) -> Tenant:
    return generate(TenantSpec.from_mapping({"mailboxes": size, "seed": seed, **knobs}))


def people(t: Tenant):
    return [u for u in t.ad_users if u.department is not None]


def direct_memberships(t: Tenant) -> Counter[str]:
    return Counter(m for g in t.groups for m in g.members)


def depth(t: Tenant) -> int:
    """The longest chain of groups in groups (1: a group holding no group)."""
    by_dn = {g.dn: g for g in t.groups}
    memo: dict[str, int] = {}
    for g in t.groups:  # members come first: their depth is known
        memo[g.dn] = 1 + max((memo[m] for m in g.members if m in by_dn), default=0)
    return max(memo.values(), default=0)


def check_groups(t: Tenant) -> None:
    """What holds for any tenant with groups."""
    users = {u.dn for u in t.ad_users}
    seen: set[str] = set()
    for g in t.groups:
        # Members name users or groups made before (a loader that checks members can follow
        # the order), each once.
        assert all(m in users or m in seen for m in g.members), g.dn
        assert len(set(g.members)) == len(g.members)
        seen.add(g.dn)
        assert g.group_type in (
            GLOBAL_SECURITY, DOMAIN_LOCAL_SECURITY, UNIVERSAL_SECURITY, UNIVERSAL_DISTRIBUTION
        )  # fmt: skip
        assert len(g.sam_account_name) <= 20 and not SAM_INVALID.search(g.sam_account_name)
        assert len(g.object_guid) == 16
    sams = [u.sam_account_name for u in t.ad_users] + [g.sam_account_name for g in t.groups]
    assert len({s.casefold() for s in sams}) == len(sams)
    # Security groups hold no service account (they are outside the sync scope, no person).
    service = {u.dn for u in t.ad_users if u.consistency_guid is None}
    assert not service & set(direct_memberships(t))
    # One USN history: the groups' after the users', unique, changed after made.
    usns = [u.usn_created for u in t.ad_users] + [u.usn_changed for u in t.ad_users]
    usns += [g.usn_created for g in t.groups] + [g.usn_changed for g in t.groups]
    assert len(set(usns)) == len(usns) and t.highest_usn == max(usns)
    assert all(g.usn_changed > g.usn_created for g in t.groups)


@given(size=st.integers(min_value=1, max_value=150), seed=st.integers(0, 2**32))
def test_group_invariants_hold(size, seed):
    check_groups(make(size, seed))


def test_the_scopes_and_types_are_ad_s():
    t = make(400, all_staff_group=True)
    types = Counter(g.group_type for g in t.groups)
    assert set(types) == {
        GLOBAL_SECURITY, DOMAIN_LOCAL_SECURITY, UNIVERSAL_SECURITY, UNIVERSAL_DISTRIBUTION
    }  # fmt: skip
    assert all(g.security == (g.group_type < 0) for g in t.groups)
    by_cn = {g.cn: g for g in t.groups}
    assert by_cn["GG-Sales"].group_type == GLOBAL_SECURITY
    assert by_cn["USG-Departments"].group_type == UNIVERSAL_SECURITY
    assert by_cn["DLG-Intranet-Read"].group_type == DOMAIN_LOCAL_SECURITY
    # Security groups in OU=Groups, distribution groups below it; both in the sync scope.
    groups_ou = f"OU=Groups,OU=Corp,{t.base_dn}"
    assert {o.dn for o in t.ous} >= {groups_ou, f"OU=Distribution Groups,{groups_ou}"}
    for g in t.groups:
        ou = f"OU=Distribution Groups,{groups_ou}" if g.group_type == 8 else groups_ou
        assert g.dn == f"CN={g.cn},{ou}" and g.description


def test_distribution_groups_are_exchange_online_s_and_mail_enabled():
    t = make(400)
    org = ExchangeOrg(t.spec)
    dls = [g for g in t.groups if g.group_type == UNIVERSAL_DISTRIBUTION]
    cloud = [*org.groups_without_soa, *org.transferred_groups]
    assert [(g.cn, g.mail) for g in dls] == [(c.name, c.address) for c in cloud]
    assert len(org.transferred_groups) == 2  # 5 per 1,000 mailboxes, at least 2
    assert len(ExchangeOrg(TenantSpec(mailboxes=10_000)).transferred_groups) == 50
    for g in dls:
        assert g.proxy_addresses == (f"SMTP:{g.mail}",)
        assert g.mail_nickname == g.mail.partition("@")[0] and g.display_name == g.cn
        assert g.legacy_exchange_dn.startswith(f"/o={t.spec.exchange_org}/ou=Exchange ")
        assert (g.recipient_type_details, g.recipient_display_type) == (256, 1)
    # No mailbox holds a distribution group's address.
    addresses = {a.casefold() for m in t.mailboxes for a in m.email_addresses}
    assert not {f"smtp:{g.mail}".casefold() for g in dls} & addresses
    # Security groups are not mail-enabled.
    assert all(g.mail is None and not g.proxy_addresses for g in t.groups if g.security)


def test_users_are_in_one_to_three_groups_and_groups_nest():
    t = make(2000, seed=5)
    counts = direct_memberships(t)
    staff = people(t)
    per_user = Counter(min(counts[u.dn], 4) for u in staff)
    assert per_user[0] == 0  # everyone is in their department's group
    assert (per_user[1] + per_user[2] + per_user[3]) / len(staff) > 0.9
    by_cn = {g.cn: g for g in t.groups}
    for u in staff[:50]:
        assert u.dn in by_cn[f"GG-{DEPARTMENT_TOKENS[u.department]}"].members
    # user -> team -> department -> USG-Departments -> DLG-Intranet-Read: four levels.
    assert depth(t) == 4
    team = by_cn["GG-Sales-T01"]
    assert team.dn in by_cn["GG-Sales"].members
    assert by_cn["GG-Sales"].dn in by_cn["USG-Departments"].members
    assert by_cn["USG-Departments"].members == tuple(by_cn[f"GG-{v}"].dn for v in TOKENS)
    assert by_cn["DLG-Intranet-Read"].members == (by_cn["USG-Departments"].dn,)
    # Teams are about team_group_size strong.
    teams = [g for g in t.groups if "-T" in g.cn]
    mean = sum(len(g.members) for g in teams) / len(teams)
    assert 0.6 * t.spec.team_group_size < mean < 1.5 * t.spec.team_group_size


def test_a_large_enough_tenant_has_a_group_past_1500_members():
    t = make(1520, mailbox_mix={"user": 1}, all_staff_group=True)
    (everyone,) = (g for g in t.groups if g.cn == "GG-All-Staff")
    assert len(everyone.members) == len(people(t)) > 1500
    assert max(len(g.members) for g in t.groups if g is not everyone) < 1500


def test_groups_are_deterministic_and_leave_the_users_alone():
    a, b = make(300, seed=9), make(300, seed=9)

    def key(t):
        return [(g.dn, g.members, g.object_guid, g.usn_changed, g.when_created) for g in t.groups]

    assert key(a) == key(b)
    other = make(300, seed=10)
    assert [g.members for g in other.groups] != [g.members for g in a.groups]
    # Groups off, or other group knobs: every user and mailbox is what it was.
    cat = a.object_category_person
    for variant in (
        make(300, seed=9, groups=False),
        make(300, seed=9, team_group_size=5, team_memberships={3: 1}, all_staff_group=True),
    ):
        assert [u.ldap_attributes(cat) for u in variant.ad_users] == [
            u.ldap_attributes(cat) for u in a.ad_users
        ]
        assert [m.to_json() for m in variant.mailboxes] == [m.to_json() for m in a.mailboxes]
    off = make(300, seed=9, groups=False)
    assert off.groups == [] and "Groups" not in {o.name for o in off.ous}


def test_directory_entries_hold_the_groups_after_their_members():
    t = make(120)
    entries = list(directory_entries(t))
    dns = [dn for dn, _ in entries]
    assert dns[-len(t.groups) :] == [g.dn for g in t.groups]
    position = {dn: i for i, dn in enumerate(dns)}
    for dn, attrs in entries[-len(t.groups) :]:
        values = dict(attrs)
        assert values["objectClass"] == ("top", "group")
        assert values["objectCategory"] == (f"CN=Group,CN=Schema,CN=Configuration,{t.base_dn}",)
        assert all(position[m] < position[dn] for m in values.get("member", ()))
        assert {"cn", "sAMAccountName", "description", "groupType", "objectGUID"} <= set(values)


# --- the SAM times and legacyExchangeDN of users ------------------------------------------------


def test_users_have_the_sam_times_every_account_has():
    t = make(3000, seed=4)
    created = {u.dn: datetime.strptime(u.when_created, "%Y%m%d%H%M%S.0Z") for u in t.ad_users}
    enabled = [u for u in t.ad_users if not u.user_account_control & rt.UAC_ACCOUNTDISABLE]
    disabled = [u for u in t.ad_users if u.user_account_control & rt.UAC_ACCOUNTDISABLE]
    now = filetime(NOW)
    for u in t.ad_users:
        made = filetime(created[u.dn].replace(tzinfo=UTC).timestamp())
        assert u.pwd_last_set == 0 or made <= u.pwd_last_set <= now
        if u.last_logon_timestamp is not None:
            assert made <= u.last_logon_timestamp <= now
        assert u.account_expires in (ACCOUNT_NEVER_EXPIRES, ACCOUNT_EXPIRY_CLEARED) or (
            0 < u.account_expires < now + 366 * DAY
        )
    # Shared and resource mailboxes' disabled accounts never sign in.
    assert all(u.last_logon_timestamp is None for u in disabled)
    ages = [(now - u.last_logon_timestamp) / DAY for u in enabled if u.last_logon_timestamp]
    never = sum(u.last_logon_timestamp is None for u in enabled)
    assert 0 < never < 0.1 * len(enabled)  # some never signed in
    assert sum(a <= 14 for a in ages) / len(ages) > 0.8  # most within the sync interval
    assert sum(a > 90 for a in ages) > 0.05 * len(ages)  # and some are stale
    expiries = Counter(u.account_expires for u in t.ad_users)
    assert expiries[ACCOUNT_NEVER_EXPIRES] > 0.85 * len(t.ad_users)
    assert expiries[ACCOUNT_EXPIRY_CLEARED] > 0
    assert any(ACCOUNT_EXPIRY_CLEARED < v < now for v in expiries)  # an expired contractor
    # In LDAP form: Interval values as decimal text, absent when never signed in.
    u = enabled[0]
    attrs = dict(u.ldap_attributes(t.object_category_person))
    assert attrs["pwdLastSet"] == (str(u.pwd_last_set),)
    assert attrs["accountExpires"] == (str(u.account_expires),)
    quiet = next(u for u in disabled)
    assert "lastLogonTimestamp" not in dict(quiet.ldap_attributes(t.object_category_person))


def test_legacy_exchange_dn_is_the_x500_of_migrated_mailboxes():
    t = make(500, seed=8)
    for u in t.ad_users:
        x500 = [a[5:] for a in u.proxy_addresses if a.startswith("X500:")]
        attrs = dict(u.ldap_attributes(t.object_category_person))
        if u.home_mdb is not None:  # still on Exchange Server: the mailbox's own DN
            mbx = next(m for m in t.mailboxes if m.user_principal_name == u.user_principal_name)
            assert attrs["legacyExchangeDN"] == (mbx.legacy_exchange_dn,)
        elif x500:
            assert attrs["legacyExchangeDN"] == (x500[0],)
        else:
            assert "legacyExchangeDN" not in attrs
    migrated = sum(1 for u in t.ad_users if u.legacy_dn is not None)
    assert 0.3 * 500 < migrated < 0.5 * 500  # x500_fraction 0.4


# --- knobs --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "knob", "text"),
    [
        ({"groups": "yes"}, "groups", "true or false"),
        ({"team_group_size": 4}, "team_group_size", "between 5"),
        ({"team_group_size": 5001}, "team_group_size", "and 5,000"),
        ({"team_memberships": {11: 1}}, "team_memberships", "between 0 and 10"),
        ({"team_memberships": {"one": 1}}, "team_memberships", "whole numbers of groups"),
        ({"team_memberships": {1: 0}}, "team_memberships", "above 0"),
        ({"team_memberships": {1: -1}}, "team_memberships", ">= 0"),
        ({"distribution_groups_per_1000": 101}, "distribution_groups_per_1000", "0 and 100"),
        ({"distribution_groups_per_1000": -1}, "distribution_groups_per_1000", "0 and 100"),
        ({"distribution_group_size": 0}, "distribution_group_size", "between 1"),
        ({"all_staff_group": 1}, "all_staff_group", "true or false"),
    ],
)
def test_bad_group_knobs_name_the_knob(data, knob, text):
    with pytest.raises(SpecError) as err:
        TenantSpec.from_mapping(data)
    assert err.value.knob == knob
    assert text in err.value.message


def test_group_knobs_round_trip_through_the_manifest_form():
    spec = TenantSpec.from_mapping({"team_memberships": {"0": 1, "2": 3}, "groups": False})
    assert spec.team_memberships == {0: 1, 2: 3}
    assert TenantSpec.from_mapping(spec.as_dict()) == spec


def test_no_distribution_groups_without_the_knob():
    t = make(200, distribution_groups_per_1000=0, groups_without_soa=0)
    assert not [g for g in t.groups if not g.security]
