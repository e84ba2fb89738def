"""The engine's LDAP target: `plan` on its own, then reads and writes over TCP to the fake AD."""

from __future__ import annotations

import pytest
from ldap3 import MODIFY_REPLACE

from harness.core.dn import normalize_dn
from harness.engine.anchor import MatchRule
from harness.engine.rules import GA
from harness.engine.target import (
    AdObject,
    LdapCredentials,
    LdapTarget,
    LdapTargetError,
    plan,
)
from harness.tenant import TenantSpec, generate
from harness.tenant.model import AdUser
from mockservers.runtime import RunningTenant
from tests.directory.ldap_clients import connect as ldap_connect
from tests.directory.ldap_clients import examined, is_ad, is_samba

TARGETS = list(GA.targets)

# --- plan ---------------------------------------------------------------------------------


def test_plan_equal_is_empty():
    current = {"extensionAttribute1": ("a",), "proxyAddresses": ("SMTP:a@x", "smtp:b@x")}
    assert plan(current, dict(current)) == []
    assert plan({}, {"extensionAttribute1": (), "proxyAddresses": ()}) == []


def test_plan_single_valued_replace_and_clear():
    assert plan({"extensionAttribute1": ("a",)}, {"extensionAttribute1": ("b",)}) == [
        ("replace", "extensionAttribute1", ("b",))
    ]
    assert plan({}, {"mail": ("a@x",)}) == [("replace", "mail", ("a@x",))]
    assert plan({"extensionAttribute1": ("a",)}, {"extensionAttribute1": ()}) == [
        ("replace", "extensionAttribute1", ())
    ]
    with pytest.raises(ValueError):
        plan({}, {"mail": ("a@x", "b@x")})


def test_plan_multi_valued_is_exactly_the_difference_in_any_order():
    current = {"proxyAddresses": ("SMTP:a@x", "smtp:b@x", "smtp:c@x")}
    desired = {"proxyAddresses": ("smtp:d@x", "smtp:c@x", "SMTP:a@x")}
    assert plan(current, desired) == [
        ("delete", "proxyAddresses", ("smtp:b@x",)),
        ("add", "proxyAddresses", ("smtp:d@x",)),
    ]
    assert plan(current, {"proxyAddresses": tuple(reversed(current["proxyAddresses"]))}) == []
    assert plan(current, {"proxyAddresses": ()}) == [
        ("delete", "proxyAddresses", current["proxyAddresses"])
    ]
    # Attributes the profile does not manage are left alone.
    assert plan({"proxyAddresses": ("smtp:a@x",), "extensionAttribute9": ("k",)}, {}) == []


def test_plan_writes_case_only_changes_of_strings():
    # AD keeps the spelling written, and SMTP:/smtp: is primary/secondary to Exchange.
    current = {"proxyAddresses": ("SMTP:a@x", "smtp:b@x"), "extensionAttribute2": ("abc",)}
    desired = {"proxyAddresses": ("smtp:a@x", "SMTP:b@x"), "extensionAttribute2": ("ABC",)}
    assert plan(current, desired) == [
        ("delete", "proxyAddresses", ("SMTP:a@x", "smtp:b@x")),
        ("add", "proxyAddresses", ("smtp:a@x", "SMTP:b@x")),
        ("replace", "extensionAttribute2", ("ABC",)),
    ]
    # Values AD could not hold twice (same key) are desired once, the first spelling wins.
    assert plan({}, {"proxyAddresses": ("smtp:a@x", "SMTP:A@X")}) == [
        ("add", "proxyAddresses", ("smtp:a@x",))
    ]


def test_plan_normalised_syntaxes_compare_by_key():
    current = {
        "msExchRecipientTypeDetails": ("2147483648",),
        "msExchHideFromAddressLists": ("TRUE",),
    }
    desired = {
        "msExchRecipientTypeDetails": ("+2147483648",),
        "msExchHideFromAddressLists": ("true",),
    }
    assert plan(current, desired) == []
    assert plan(current, {"msExchRecipientTypeDetails": ("1",)}) == [
        ("replace", "msExchRecipientTypeDetails", ("1",))
    ]


def test_plan_refuses_unknown_attributes():
    with pytest.raises(ValueError, match="noSuchAttribute"):
        plan({}, {"noSuchAttribute": ("x",)})


# --- over LDAP ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tenant():
    spec = TenantSpec(mailboxes=120, seed=6, special_cn_fraction=0.2, non_ascii_fraction=0.2)
    return generate(spec)


def creds(run: RunningTenant, who: str = "writeback") -> LdapCredentials:
    ep = run.endpoints
    dn, password = (
        (ep.bind_dn, ep.bind_password) if who == "writeback" else (ep.admin_dn, ep.admin_password)
    )
    return LdapCredentials(ep.ldap_url, dn, password, ep.base_dn)


def expected_values(user: AdUser, tenant) -> dict[str, tuple[str, ...]]:
    attrs = dict(user.ldap_attributes(tenant.object_category_person))
    return {t: tuple(str(v) for v in attrs.get(t, ())) for t in TARGETS}


def writable_pair(tenant, n: int = 0):
    return [
        (u, m)
        for u, m in tenant.synced_pairs()
        if m.is_exchange_cloud_managed and u.dn.endswith("OU=Corp,DC=contoso,DC=com")
    ][n]


@pytest.mark.ad_differs("AD diagnostic messages")
def test_bind_failure_raises_with_ad_diagnostic(directory):
    bad = LdapCredentials(
        directory.endpoints.ldap_url,
        directory.endpoints.bind_dn,
        "wrong",
        directory.endpoints.base_dn,
    )
    with pytest.raises(LdapTargetError) as e:
        LdapTarget(bad, TARGETS)
    assert e.value.code == 49
    if is_ad(directory):
        assert "52e" in e.value.message


@pytest.mark.ad_differs("DN spelling in results")
@pytest.mark.samba_differs("DN spelling in results", branches=True)
def test_index_maps_every_synced_user(directory, tenant):
    with LdapTarget(creds(directory), TARGETS) as target:
        index = target.index()
        assert target.stats["searches"] == 1
    synced = [u for u in tenant.ad_users if u.consistency_guid is not None]
    assert set(index) == {u.anchor for u in synced}
    assert target.duplicate_anchors == {}
    for user in synced:
        obj = index[user.anchor]
        if is_ad(directory) and not is_samba(directory):  # the DN as written
            assert obj.dn == user.dn
        else:  # slapd's and Samba's escapes: the same DN
            assert normalize_dn(obj.dn) == normalize_dn(user.dn)
        assert obj.values == expected_values(user, tenant), user.dn


def test_index_pages_through_small_pages(directory):
    with (
        LdapTarget(creds(directory), TARGETS) as whole,
        LdapTarget(creds(directory), TARGETS, page_size=40) as paged,
    ):
        assert paged.index() == whole.index()
        assert paged.stats["searches"] == 1 and paged.stats["pages"] >= 4


@pytest.mark.ad_differs("DN spelling in results")
@pytest.mark.samba_differs("DN spelling in results", branches=True)
def test_find_by_anchor_including_escaped_and_non_ascii_cns(directory, tenant):
    synced = [u for u in tenant.ad_users if u.consistency_guid is not None]
    special = [u for u in synced if "\\" in u.cn or not u.cn.isascii() or "\\" in u.dn]
    assert special, "the tenant should have DN-escaped or non-ASCII CNs"
    with LdapTarget(creds(directory), TARGETS) as target:
        for user in [*special, *synced[:5]]:
            obj = target.find(user.anchor)
            assert obj is not None and obj.values == expected_values(user, tenant), user.dn
            if is_ad(directory) and not is_samba(directory):
                assert obj == AdObject(user.dn, expected_values(user, tenant)), user.dn
            else:
                assert normalize_dn(obj.dn) == normalize_dn(user.dn)
        assert target.find("AAAAAAAAAAAAAAAAAAAAAA==") is None
        with pytest.raises(ValueError):
            target.find("not base64!")


@pytest.mark.fake_only("counts the entries the fake's search examined")
@pytest.mark.parametrize("rule", list(MatchRule), ids=[r.value for r in MatchRule])
def test_every_match_rule_finds_users_from_an_index(fresh_directory, tenant, rule):
    """A delta page is matched with one OR search: an index hit per key under every rule,
    never a scan of the domain (what keeps a 200,000-user delta cheap)."""
    run = fresh_directory
    pairs = [(u, m) for u, m in tenant.synced_pairs()][:30]
    admin = ldap_connect(run)
    for user, mbx in pairs:  # Exchange hybrid writeback's stamp, for the last rule
        change = {"msDS-ExternalDirectoryObjectId": [(MODIFY_REPLACE, [f"User_{mbx.id}"])]}
        assert admin.modify(user.dn, change), admin.result
    keys = [rule.cloud_key(m.to_json()) for _, m in pairs]
    with LdapTarget(creds(run), TARGETS, match=rule) as target:
        before = examined(run)
        found = target.find_many(k for k in keys if k)
        assert examined(run) - before <= 2 * len(pairs)  # index hits, not a scan of the domain
        assert {normalize_dn(found[k].dn) for k in keys if k} == {
            normalize_dn(u.dn) for u, _ in pairs
        }
        whole = target.index()  # a full round: one paged read of every user with the attribute
        assert all(whole[k].dn == found[k].dn for k in keys if k)
    with pytest.raises(ValueError, match="is the match rule's attribute"):
        LdapTarget(creds(run), [*TARGETS, rule.attribute], match=rule)


def test_apply_writes_the_planned_change_as_the_writeback_account(fresh_directory, tenant):
    user, mbx = writable_pair(tenant)
    record = mbx.to_json()
    record["CustomAttribute1"] = "Cost centre 4711 – Zürich"
    record["EmailAddresses"] = [*record["EmailAddresses"], f"smtp:extra.{mbx.alias}@contoso.com"]
    desired = GA.desired(record)
    with LdapTarget(creds(fresh_directory), TARGETS) as target:
        current = target.find(user.anchor)
        assert current is not None
        changes = plan(current.values, desired)
        assert ("replace", "extensionAttribute1", ("Cost centre 4711 – Zürich",)) in changes
        assert ("add", "proxyAddresses", (f"smtp:extra.{mbx.alias}@contoso.com",)) in changes
        result = target.apply(current.dn, changes)
        assert result.ok and result.code == 0, result
        after = target.find(user.anchor)
        assert after is not None
        assert plan(after.values, desired) == []
        assert after.values["extensionAttribute1"] == ("Cost centre 4711 – Zürich",)
        assert set(after.values["proxyAddresses"]) == set(desired["proxyAddresses"])
        assert target.stats["modifies"] == 1
        assert target.apply(current.dn, []).ok


def test_apply_case_only_change_of_primary_address(fresh_directory, tenant):
    user, _ = writable_pair(tenant, 1)
    with LdapTarget(creds(fresh_directory), TARGETS) as target:
        current = target.find(user.anchor)
        assert current is not None
        demoted = tuple(
            "smtp:" + a[5:] if a.startswith("SMTP:") else a
            for a in current.values["proxyAddresses"]
        )
        changes = plan(current.values, {"proxyAddresses": demoted})
        assert [op for op, _, _ in changes] == ["delete", "add"]
        assert target.apply(current.dn, changes).ok
        assert set(target.read(current.dn).values["proxyAddresses"]) == set(demoted)


@pytest.mark.ad_differs("AD diagnostic messages")
@pytest.mark.ad_differs("single-valued and size constraints")
@pytest.mark.samba_differs("diagnostic texts", branches=True)
@pytest.mark.samba_differs("single-valued and size constraints", branches=True)
def test_apply_returns_ad_errors(fresh_directory, tenant):
    user, _ = writable_pair(tenant, 2)
    with LdapTarget(creds(fresh_directory), [*TARGETS, "displayName"]) as target:
        before = target.read(user.dn)
        denied = target.apply(
            user.dn,
            [("replace", "extensionAttribute2", ("x",)), ("replace", "displayName", ("Nope",))],
        )
        assert not denied.ok and denied.code == 50
        if is_ad(fresh_directory):
            samba = is_samba(fresh_directory)  # its own text; over rangeUpper: 21, not 19
            assert ("INSUFF_ACCESS_RIGHTS" in denied.message) is not samba
            too_long = target.apply(user.dn, [("replace", "extensionAttribute3", ("x" * 1025,))])
            assert not too_long.ok and too_long.code == (21 if samba else 19)
        assert target.read(user.dn) == before  # atomic: nothing of either request was written
        assert target.stats["retries"] == 0


def test_apply_reconnects_after_a_dropped_connection(fresh_directory, tenant):
    user, _ = writable_pair(tenant, 3)
    with LdapTarget(creds(fresh_directory), TARGETS, backoff=0.01) as target:
        assert target._conn is not None
        target._conn._sock.close()  # the socket dies under the client
        result = target.apply(user.dn, [("replace", "extensionAttribute5", ("after drop",))])
        assert result.ok, result
        assert target.stats["retries"] >= 1 and target.stats["reconnects"] >= 1
        assert target.read(user.dn).values["extensionAttribute5"] == ("after drop",)
        # Reads recover the same way.
        assert target._conn is not None
        target._conn._sock.close()  # the socket dies under the client
        assert target.find(user.anchor) is not None


def test_apply_gives_up_when_the_directory_is_gone(fresh_directory, tenant):
    user, _ = writable_pair(tenant, 4)
    with LdapTarget(creds(fresh_directory), TARGETS, backoff=0.01) as target:
        fresh_directory.stop()
        assert target._conn is not None
        target._conn._sock.close()  # the socket dies under the client
        result = target.apply(user.dn, [("replace", "extensionAttribute5", ("x",))])
        assert not result.ok and result.code == 81
        assert target.stats["retries"] == 4
