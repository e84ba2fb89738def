"""Linked attributes ([MS-ADTS] 3.1.1.1.6) and range retrieval (3.1.1.3.1.3.3), over ldap3.

A group's `member` and a user's `manager` are forward links; the directory keeps their back
links, `memberOf` and `directReports`, on the objects they name, through adds, deletes, renames
and moves. A search returns at most MaxValRange (1,500) values of an attribute; the rest are
read with `member;range=1500-*`. On the fake, slapd and Samba unless marked (slapd keeps no back
links: ad_only).
"""

from __future__ import annotations

import pytest
from ldap3 import (
    BASE,
    LEVEL,
    MODIFY_ADD,
    MODIFY_DELETE,
    MODIFY_REPLACE,
    SUBTREE,
)
from ldap3.protocol.formatters.formatters import format_sid
from ldap3.utils.conv import escape_filter_chars

from harness.core.dn import normalize_dn, split_rdn
from mockservers.directory.ldif_io import dump_ldif, load_ldif
from mockservers.directory.seed import seed_directory
from mockservers.directory.store import MOD_ADD, MOD_DELETE
from tests.directory.ldap_clients import connect, is_ad, is_samba, plain
from tests.directory.test_ldap3_modify import lone_user, read, usn

OU = "OU=Corp,DC=contoso,DC=com"
GROUP = ["top", "group"]
CONTACT = ["top", "person", "organizationalPerson", "contact"]
OPERATIONS_ERROR, UNWILLING = 1, 53
RANGE_NOERR = "1.2.840.113556.1.4.1948"


def values(conn, dn: str, attr: str) -> set[str]:
    return {v.decode() for v in read(conn, dn, attr).get(attr, ())}


def norm(dns) -> set[str]:
    return {normalize_dn(d) for d in dns}


def found(conn, base: str, flt: str) -> set[str]:
    conn.search(base, flt, attributes=["1.1"])
    assert conn.result["result"] == 0, conn.result
    return norm(r["dn"] for r in conn.response if r["type"] == "searchResEntry")


def ranged(conn, dn: str, attr: str, controls=None) -> dict[str, list[bytes]]:
    """The entry's attributes when `attr` (with its range option) is asked for; an error: {}."""
    if not conn.search(dn, "(objectClass=*)", BASE, attributes=[attr], controls=controls):
        return {}
    return {k: list(v or ()) for k, v in conn.response[0]["raw_attributes"].items()}


@pytest.mark.ad_only("linked attributes")
def test_membership_changes_keep_member_of(fresh_directory, tenant):
    conn = connect(fresh_directory)
    a, b, c = (lone_user(tenant, n).dn for n in (1, 2, 3))
    g1, g2 = f"CN=Link Group 1,{OU}", f"CN=Link Group 2,{OU}"
    assert conn.add(g1, GROUP, {"member": [a, b]}), conn.result
    assert conn.add(g2, GROUP), conn.result
    assert conn.modify(g2, {"member": [(MODIFY_ADD, [a, c])]}), conn.result
    assert norm(values(conn, a, "memberOf")) == norm([g1, g2])
    assert norm(values(conn, b, "memberOf")) == norm([g1])
    assert found(conn, OU, f"(memberOf={g2})") == norm([a, c])
    assert conn.modify(g2, {"member": [(MODIFY_DELETE, [a])]}), conn.result
    assert norm(values(conn, a, "memberOf")) == norm([g1])
    assert conn.modify(g1, {"member": [(MODIFY_REPLACE, [c])]}), conn.result
    assert values(conn, a, "memberOf") == set() and values(conn, b, "memberOf") == set()
    assert norm(values(conn, c, "memberOf")) == norm([g1, g2])
    assert found(conn, OU, f"(memberOf={g1})") == norm([c])
    assert found(conn, OU, f"(&(objectClass=user)(!(memberOf={g1})))") >= norm([a, b])
    # A nested group has its own memberOf; its members' memberOf names only their own groups
    # (the whole chain is LDAP_MATCHING_RULE_IN_CHAIN's, not memberOf's).
    assert conn.modify(g1, {"member": [(MODIFY_ADD, [g2])]}), conn.result
    assert norm(values(conn, g2, "memberOf")) == norm([g1])
    assert norm(values(conn, a, "memberOf")) == set()


@pytest.mark.ad_only("linked attributes")
def test_manager_keeps_direct_reports(fresh_directory, tenant):
    conn = connect(fresh_directory)
    boss, other, x, y = (lone_user(tenant, n).dn for n in (4, 5, 6, 7))
    for report in (x, y):
        assert conn.modify(report, {"manager": [(MODIFY_REPLACE, [boss])]}), conn.result
    assert norm(values(conn, boss, "directReports")) == norm([x, y])
    assert conn.modify(y, {"manager": [(MODIFY_REPLACE, [other])]}), conn.result
    assert norm(values(conn, boss, "directReports")) == norm([x])
    assert norm(values(conn, other, "directReports")) == norm([y])
    assert conn.modify(x, {"manager": [(MODIFY_DELETE, [])]}), conn.result
    assert values(conn, boss, "directReports") == set()


@pytest.mark.ad_only("linked attributes")
def test_a_deleted_object_leaves_every_link(fresh_directory, tenant):
    conn = connect(fresh_directory)
    a = lone_user(tenant, 1).dn
    g, gone, gone_group = f"CN=Link Del G,{OU}", f"CN=Link Del C,{OU}", f"CN=Link Del H,{OU}"
    assert conn.add(gone, CONTACT), conn.result
    assert conn.add(g, GROUP, {"member": [a, gone]}), conn.result
    assert conn.add(gone_group, GROUP, {"member": [a]}), conn.result
    assert conn.modify(a, {"manager": [(MODIFY_REPLACE, [gone])]}), conn.result
    assert conn.delete(gone), conn.result
    assert norm(values(conn, g, "member")) == norm([a])  # the group lost the deleted member
    assert values(conn, a, "manager") == set()
    assert conn.delete(gone_group), conn.result
    assert norm(values(conn, a, "memberOf")) == norm([g])


@pytest.mark.ad_only("linked attributes")
def test_links_follow_renames_and_moves(fresh_directory, tenant):
    conn = connect(fresh_directory)
    ou = f"OU=Link Move,{OU}"
    assert conn.add(ou, ["top", "organizationalUnit"]), conn.result
    member, boss = f"CN=Link Member,{ou}", lone_user(tenant, 2).dn
    assert conn.add(member, CONTACT), conn.result
    g = f"CN=Link Rename G,{OU}"
    assert conn.add(g, GROUP, {"member": [member]}), conn.result
    assert conn.modify(member, {"manager": [(MODIFY_REPLACE, [boss])]}), conn.result
    # The member renamed: the group's value and the manager's back link carry its new name.
    assert conn.modify_dn(member, "CN=Link Member Renamed"), conn.result
    member = f"CN=Link Member Renamed,{ou}"
    assert norm(values(conn, g, "member")) == norm([member])
    assert norm(values(conn, boss, "directReports")) == norm([member])
    # Its OU renamed: the member moves with it, and so do the values naming it.
    assert conn.modify_dn(ou, "OU=Link Moved"), conn.result
    member = f"CN=Link Member Renamed,OU=Link Moved,{OU}"
    assert norm(values(conn, g, "member")) == norm([member])
    assert found(conn, OU, f"(member={member})") == norm([g])
    # The group moved to another parent: its member's memberOf follows.
    assert conn.modify_dn(g, "CN=Link Rename G", new_superior=f"OU=Link Moved,{OU}"), conn.result
    g = f"CN=Link Rename G,OU=Link Moved,{OU}"
    assert norm(values(conn, member, "memberOf")) == norm([g])
    assert found(conn, OU, f"(memberOf={g})") == norm([member])


@pytest.mark.ad_only("linked attributes")
def test_back_links_are_the_directory_s_own(fresh_directory, tenant):
    conn = connect(fresh_directory)
    a, b = lone_user(tenant, 1).dn, lone_user(tenant, 2).dn
    g = f"CN=Link Own G,{OU}"
    assert conn.add(g, GROUP), conn.result
    # Windows answers unwillingToPerform, 0000209A (ERROR_DS_CANT_MOD_SYSTEM_ONLY): a capture
    # in cannatag/ldap3 issue 808; Samba's ldap.py test_linked_attributes expects 53 too.
    assert not conn.modify(a, {"memberOf": [(MODIFY_ADD, [g])]})
    assert conn.result["result"] == UNWILLING, conn.result
    assert not conn.modify(a, {"directReports": [(MODIFY_REPLACE, [b])]})
    assert conn.result["result"] == UNWILLING, conn.result
    if not is_samba(fresh_directory):
        assert conn.result["message"].startswith("0000209A:"), conn.result
    assert not conn.add(f"CN=Link Own C,{OU}", CONTACT, {"memberOf": g})
    assert conn.result["result"] == UNWILLING, conn.result
    assert values(conn, g, "member") == set()


@pytest.mark.ad_only("linked attributes")
def test_a_membership_change_leaves_the_member_s_usn(fresh_directory, tenant):
    # The link is a change of the group (its uSNChanged moves), not of the member: a writeback
    # engine's delta scan on uSNChanged sees the group, not each member.
    conn = connect(fresh_directory)
    a = lone_user(tenant, 1).dn
    g = f"CN=Link USN G,{OU}"
    assert conn.add(g, GROUP), conn.result
    before_member, before_group = usn(conn, a), usn(conn, g)
    assert conn.modify(g, {"member": [(MODIFY_ADD, [a])]}), conn.result
    assert usn(conn, a) == before_member
    assert usn(conn, g) > before_group
    assert norm(values(conn, a, "memberOf")) == norm([g])


def _five_member_group(conn, tenant) -> tuple[str, set[str]]:
    g = f"CN=Range G,{OU}"
    members = [lone_user(tenant, n).dn for n in range(1, 6)]
    assert conn.add(g, GROUP, {"member": members}), conn.result
    return g, norm(members)


@pytest.mark.ad_only("range retrieval")
def test_range_retrieval_windows(fresh_directory, tenant):
    conn = plain(fresh_directory)
    g, members = _five_member_group(conn, tenant)
    got = ranged(conn, g, "member;range=0-1")
    assert list(got) == ["member;range=0-1"] and len(got["member;range=0-1"]) == 2
    # A window reaching the last value is labelled `*`; so is one asked past it.
    rest = ranged(conn, g, "member;range=2-*")
    assert list(rest) == ["member;range=2-*"] and len(rest["member;range=2-*"]) == 3
    assert list(ranged(conn, g, "member;range=2-10")) == ["member;range=2-*"]
    assert list(ranged(conn, g, "member;range=4-4")) == ["member;range=4-*"]
    assert list(ranged(conn, g, "member;range=1-2")) == ["member;range=1-2"]
    # The windows together are the values, each once.
    read_back = [*got["member;range=0-1"], *rest["member;range=2-*"]]
    assert norm(v.decode() for v in read_back) == members and len(read_back) == 5
    # The option's name is case-insensitive ([MS-ADTS]: an AttributeDescription option);
    # an attribute with fewer values than asked for gets its values under the range name.
    assert list(ranged(conn, g, "cn;range=0-*")) == ["cn;range=0-*"]
    assert not conn.search(g, "(objectClass=*)", BASE, attributes=["member;range=x-2"])
    assert conn.result["result"] == UNWILLING, conn.result


@pytest.mark.ad_only("range retrieval")
@pytest.mark.samba_differs("a value range past the last value", branches=True)
def test_a_range_past_the_last_value(fresh_directory, tenant):
    conn = plain(fresh_directory)
    g, _members = _five_member_group(conn, tenant)
    noerr = [(RANGE_NOERR, False, None)]
    if is_samba(fresh_directory):
        assert conn.search(g, "(objectClass=*)", BASE, attributes=["member;range=5-*"])
    else:
        assert not conn.search(g, "(objectClass=*)", BASE, attributes=["member;range=5-*"])
        assert conn.result["result"] == OPERATIONS_ERROR, conn.result
    # With LDAP_SERVER_RANGE_RETRIEVAL_NOERR_OID: success, and no values.
    got = ranged(conn, g, "member;range=5-*", controls=noerr)
    assert conn.result["result"] == 0, conn.result
    assert all(v == [] for v in got.values())
    assert ranged(conn, g, "member;range=0-*", controls=noerr)["member;range=0-*"]


@pytest.mark.ad_only("range retrieval")
@pytest.mark.samba_differs("MaxValRange")
def test_max_val_range_caps_a_plain_read_and_ldap3_reads_the_rest(fresh_directory):
    run = fresh_directory
    conn = connect(run)
    g = f"CN=Range Big,{OU}"
    assert conn.add(g, GROUP), conn.result
    dns = [f"CN=Range Contact {i:04},{OU}" for i in range(1600)]
    for dn in dns:
        assert conn.add(dn, CONTACT), conn.result
    for i in range(0, len(dns), 400):
        assert conn.modify(g, {"member": [(MODIFY_ADD, dns[i : i + 400])]}), conn.result
    raw = plain(run)
    for asked in (["member"], ["*"]):
        got = ranged(raw, g, asked[0])
        assert len(got["member;range=0-1499"]) == 1500 and "member" not in got
    last = ranged(raw, g, "member;range=1500-*")["member;range=1500-*"]
    assert len(last) == 100
    # ldap3's default (auto_range) follows the ranges and hands back all 1,600 under `member`.
    assert norm(values(conn, g, "member")) == norm(dns)
    # MaxValRange is a setting of the fake (the LDAP policy of the same name).
    run.call(setattr, run.service.limits, "max_val_range", 1000)
    got = ranged(raw, g, "member;range=200-*")
    assert list(got) == ["member;range=200-1199"] and len(got["member;range=200-1199"]) == 1000


# --- the store: links on load, snapshots and replay ---------------------------------------------


def test_loaded_forward_links_make_the_back_links(tmp_path, tenant):
    store = seed_directory(tenant).store
    contact = [("objectClass", [b"top", b"person", b"organizationalPerson", b"contact"])]
    a, b = (store.add(f"CN=Loaded {n},{OU}", contact).ndn for n in ("A", "B"))
    g = f"CN=Loaded G,{OU}"
    store.add(g, [("objectClass", [b"top", b"group"]), ("member", [store.entries[a].dn.encode()])])
    store.modify(normalize_dn(g), [(MOD_ADD, "member", [store.entries[b].dn.encode()])])
    store.modify(normalize_dn(g), [(MOD_DELETE, "member", [store.entries[a].dn.encode()])])
    path = tmp_path / "d.ldif"
    dump_ldif(store, path)
    # An export's memberOf is the directory's to make: one naming a group the file lacks goes.
    text = path.read_text(encoding="utf-8")
    stale = f"dn: {store.entries[a].dn}\n"
    assert stale in text
    text = text.replace(stale, f"{stale}memberOf: CN=Not Exported,{OU}\n", 1)
    path.write_text(text, encoding="utf-8")
    # A member of another domain has no object here, and no back link: it is found all the same.
    far = "CN=Far Away,OU=Staff,DC=fabrikam,DC=com"
    text = text.replace(f"dn: {g}\n", f"dn: {g}\nmember: {far}\n", 1)
    path.write_text(text, encoding="utf-8")
    again = load_ldif(path).store
    assert again.entries[b].attrs["memberOf"] == (g.encode(),)
    assert "memberOf" not in again.entries[a].attrs
    member_of, member = again.schema.get("memberOf"), again.schema.get("member")
    assert {e.ndn for e in again.lookup(member_of, normalize_dn(g))} == {b}
    # Each side answers for the other: (member=b) from b's memberOf, (member=far) held apart.
    assert {e.ndn for e in again.lookup(member, b)} == {normalize_dn(g)}
    assert {e.ndn for e in again.lookup(member, normalize_dn(far))} == {normalize_dn(g)}
    again.modify(normalize_dn(g), [(MOD_DELETE, "member", [far.encode()])])
    assert list(again.lookup(member, normalize_dn(far))) == []
    # A rename after loading follows into the back link.
    again.rename(normalize_dn(g), "CN=Loaded G2", True, None)
    assert again.entries[b].attrs["memberOf"] == (f"CN=Loaded G2,{OU}".encode(),)


# --- LDAP_MATCHING_RULE_IN_CHAIN ---------------------------------------------------------------

IN_CHAIN = "1.2.840.113556.1.4.1941"


@pytest.mark.ad_differs("in-chain matching rule")
def test_in_chain_follows_nested_groups_and_manager_chains(fresh_directory, tenant):
    conn = connect(fresh_directory)
    a, b, c, d = (lone_user(tenant, n).dn for n in (1, 2, 3, 4))
    g1, g2, g3 = (f"CN=Chain G{n},{OU}" for n in (1, 2, 3))
    assert conn.add(g3, GROUP, {"member": [c]}), conn.result
    assert conn.add(g2, GROUP, {"member": [b, g3]}), conn.result
    assert conn.add(g1, GROUP, {"member": [a, g2]}), conn.result

    def chain(attr: str, dn: str, base: str = OU) -> set[str]:
        return found(conn, base, f"({attr}:{IN_CHAIN}:={dn})")

    if not is_ad(fresh_directory):  # slapd: an unknown rule, Undefined, so nothing matches
        assert chain("memberOf", g1) == set() and chain("member", c) == set()
        return
    assert chain("memberOf", g1) == norm([a, g2, b, g3, c])  # every member, nested or not
    assert chain("memberOf", g3) == norm([c])
    assert chain("member", c) == norm([g3, g2, g1])  # every group c is in
    assert chain("member", a) == norm([g1])
    assert found(conn, OU, f"(&(objectClass=user)(memberOf:{IN_CHAIN}:={g1}))") == norm([a, b, c])
    chain_groups = f"(&(objectClass=group)(cn=Chain G*)(!(member:{IN_CHAIN}:={c})))"
    assert found(conn, OU, chain_groups) == set()  # the tenant's own groups aside
    # A manager chain: everyone below d.
    assert conn.modify(a, {"manager": [(MODIFY_REPLACE, [d])]}), conn.result
    assert conn.modify(b, {"manager": [(MODIFY_REPLACE, [a])]}), conn.result
    assert chain("manager", d) == norm([a, b])
    assert chain("directReports", b) == norm([a, d])  # b's managers, up the chain
    # The chain follows a change at once.
    assert conn.modify(g2, {"member": [(MODIFY_DELETE, [g3])]}), conn.result
    assert chain("memberOf", g1) == norm([a, g2, b])
    # An object that does not exist has no members; a rule on a non-DN attribute is Undefined.
    assert chain("memberOf", f"CN=No Such Group,{OU}") == set()
    assert chain("cn", g1) == set()


@pytest.mark.ad_only("linked attributes")
def test_in_chain_stops_at_a_cycle(fresh_directory, tenant):
    conn = connect(fresh_directory)
    a = lone_user(tenant, 1).dn
    g1, g2 = f"CN=Cycle G1,{OU}", f"CN=Cycle G2,{OU}"
    assert conn.add(g1, GROUP, {"member": [a]}), conn.result
    assert conn.add(g2, GROUP, {"member": [g1]}), conn.result
    assert conn.modify(g1, {"member": [(MODIFY_ADD, [g2])]}), conn.result
    # Each group is in the other, so each reaches itself; the search ends all the same.
    assert found(conn, OU, f"(memberOf:{IN_CHAIN}:={g1})") == norm([a, g1, g2])
    assert found(conn, OU, f"(member:{IN_CHAIN}:={a})") == norm([g1, g2])


# --- tokenGroups ---------------------------------------------------------------------------------


def _sid(conn, dn: str) -> str:
    return format_sid(read(conn, dn, "objectSid")["objectSid"][0])


def _token_groups(conn, dn: str) -> set[str]:
    assert conn.search(dn, "(objectClass=*)", BASE, attributes=["tokenGroups"]), conn.result
    return {format_sid(v) for v in conn.response[0]["raw_attributes"].get("tokenGroups", ())}


def _nested_groups(conn, member: str) -> tuple[str, str]:
    inner, outer, dist = (f"CN=Token {n},{OU}" for n in ("Inner", "Outer", "Distribution"))
    assert conn.add(inner, GROUP, {"member": [member]}), conn.result
    assert conn.add(outer, GROUP, {"member": [inner]}), conn.result
    assert conn.add(dist, GROUP, {"member": [member], "groupType": "2"}), conn.result  # no SID
    return inner, outer


@pytest.mark.ad_only("security principal identity")
def test_token_groups_are_the_security_groups_through_nesting(fresh_directory, tenant):
    conn = connect(fresh_directory)
    a = lone_user(tenant, 1).dn
    inner, outer = _nested_groups(conn, a)
    domain = _sid(conn, fresh_directory.endpoints.base_dn)
    # And the primary group, Domain Users, with the group it is in: BUILTIN\Users.
    wanted = {_sid(conn, inner), _sid(conn, outer), f"{domain}-513", "S-1-5-32-545"}
    assert _token_groups(conn, a) == wanted
    for every in ("*", "+"):  # constructed: only when named
        assert "tokenGroups" not in read(conn, a, every)
    # It follows the links at once.
    outer_sid = _sid(conn, outer)
    assert conn.modify(outer, {"member": [(MODIFY_DELETE, [inner])]}), conn.result
    assert outer_sid not in _token_groups(conn, a)


@pytest.mark.ad_only("security principal identity")
@pytest.mark.samba_differs("tokenGroups of a group", branches=True)
def test_a_groups_token_groups_are_the_groups_it_is_in(fresh_directory, tenant):
    conn = connect(fresh_directory)
    inner, outer = _nested_groups(conn, lone_user(tenant, 2).dn)
    if is_samba(fresh_directory):
        assert _token_groups(conn, inner) == set()  # Samba computes it for accounts only
    else:
        assert _token_groups(conn, inner) == {_sid(conn, outer)}
    assert _token_groups(conn, outer) == set()


@pytest.mark.ad_only("security principal identity")
def test_token_groups_need_a_base_search(fresh_directory, tenant):
    conn = connect(fresh_directory)
    a = lone_user(tenant, 1).dn
    parent = split_rdn(a)[1]
    account = escape_filter_chars(read(conn, a, "sAMAccountName")["sAMAccountName"][0].decode())
    for scope in (LEVEL, SUBTREE):
        conn.search(parent, f"(sAMAccountName={account})", scope, attributes=["tokenGroups"])
        assert conn.result["result"] == OPERATIONS_ERROR, conn.result
        assert conn.response == []
        if not is_samba(fresh_directory):  # Samba's text is its own (diagnostic texts)
            assert conn.result["message"].startswith("00002120:"), conn.result
    # Refused with the first entry found: a search that finds none succeeds (as Samba).
    conn.search(parent, "(cn=nobody at all)", SUBTREE, attributes=["tokenGroups"])
    assert conn.result["result"] == 0, conn.result
