"""Every writeback attribute, edited as an admin would (Set-Mailbox over the EXO admin API),
carried by delta cycles to the fake AD and read back over LDAP with ldap3.

AD must end up equal to what Exchange Online holds: `expected_ad` writes the documented mapping
out on its own (reference 1.2), so the engine's profile code is not its own oracle. Out-of-scope
edits must never reach AD, and a cycle after convergence must write nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ldap3 import BASE, MODIFY_REPLACE, NONE, Connection, Server
from ldap3.utils.dn import escape_rdn

from harness.core.dn import normalize_dn
from harness.engine import log as provlog
from harness.engine.cycle import CycleReport
from harness.engine.rules import GA, PREVIEW
from harness.tenant import TenantSpec, generate
from harness.tenant.model import AdUser, CloudMailbox
from harness.tenant.recipients import REMOTE_AD_VALUES
from mockservers.runtime import RunningTenant
from tests.engine.exo_client import (
    GA_TARGETS,
    CmdletFailed,
    ExoAdmin,
    ad_by_anchor,
    ad_entry,
    ad_snapshot,
    expected_ad,
    highest_usn,
    ldap_reader,
)
from tests.support.engine import EngineEnv, log_entries

TENANT = generate(
    TenantSpec(
        mailboxes=150,
        seed=31,
        cloud_managed_fraction=0.8,
        special_cn_fraction=0.25,
        non_ascii_fraction=0.2,
    )
)
DOMAIN = TENANT.spec.domain


@dataclass
class Env(EngineEnv):
    """`EngineEnv` with the admin's EXO session."""

    exo: ExoAdmin

    def converged(self, mode: str = "delta", **kw: Any) -> CycleReport:
        report = super().converged(mode, **kw)
        assert report.watermark_moved
        return report

    def ad(self, user: AdUser) -> dict[str, list]:
        return ad_entry(self.conn, user.dn)

    def cloud(self, mbx: CloudMailbox) -> dict[str, Any]:
        return self.exo.mailbox(mbx.id)

    def in_sync(self, user: AdUser, mbx: CloudMailbox) -> dict[str, Any]:
        """Assert AD holds exactly the cloud's values for every GA target; the cloud record."""
        rec = self.cloud(mbx)
        assert ad_entry(self.conn, user.dn) == expected_ad(rec), user.dn
        return rec


def start(run: RunningTenant, tmp: Path) -> Env:
    env = Env(run, ldap_reader(run.endpoints), tmp / "state", ExoAdmin(run.endpoints))
    initial = env.converged()
    assert initial.actions.get("Update", 0) == 0  # a generated tenant starts consistent
    return env


@pytest.fixture
def env(run: RunningTenant, tmp_path: Path) -> Iterator[Env]:
    e = start(run, tmp_path)
    yield e
    e.close()


@pytest.fixture(scope="module")
def shared(shared_run: RunningTenant, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    """One tenant for tests that each edit their own mailboxes (and for Hypothesis)."""
    e = start(shared_run, tmp_path_factory.mktemp("roundtrip"))
    yield e
    e.close()


def entry_for(report: CycleReport, mbx: CloudMailbox) -> dict[str, Any]:
    (entry,) = [e for e in log_entries(report) if provlog.source_id(e) == mbx.id]
    return entry


def modified(entry: dict[str, Any]) -> set[str]:
    return {m["displayName"] for m in provlog.modified(entry)}


def managed(kind: str = "UserMailbox") -> list[tuple[AdUser, CloudMailbox]]:
    return [
        (u, m)
        for u, m in TENANT.synced_pairs()
        if m.is_exchange_cloud_managed and m.recipient_type_details == kind
    ]


def plain_managed() -> list[tuple[AdUser, CloudMailbox]]:
    """Cloud-managed user mailboxes with ordinary CNs: the DN tests take the special ones."""
    return [(u, m) for u, m in managed() if "\\" not in u.dn.split(",OU=", 1)[0]]


USERS = plain_managed()


def one_edit(env: Env, user: AdUser, mbx: CloudMailbox, **params: Any) -> CycleReport:
    """Set-Mailbox, then a delta cycle that must update exactly this mailbox."""
    env.exo.set_mailbox(mbx.id, **params)
    report = env.converged()
    assert report.objects == 1 and report.actions["Update"] == 1, log_entries(report)
    assert provlog.target_dn(entry_for(report, mbx)) == user.dn
    return report


# ------------------------------------------------------------------ every GA attribute


def _edit_for(target: str, mbx: CloudMailbox) -> tuple[dict[str, Any], set[str]]:
    """The Set-Mailbox parameters that change `target`, and the AD attributes that change."""
    if target.startswith("extensionAttribute"):
        n = target.removeprefix("extensionAttribute")
        return {f"CustomAttribute{n}": f"CA{n} set in EXO for {mbx.alias}"}, {target}
    if target.startswith("msExchExtensionCustomAttribute"):
        n = target.removeprefix("msExchExtensionCustomAttribute")
        return {f"ExtensionCustomAttribute{n}": [f"ECA{n} one", f"ECA{n} two"]}, {target}
    if target == "msExchRecipientTypeDetails":
        # User -> Shared changes the type details only: both are SyncedMailboxUser to display.
        assert REMOTE_AD_VALUES["UserMailbox"].display_type == (
            REMOTE_AD_VALUES["SharedMailbox"].display_type
        )
        return {"Type": "Shared"}, {target}
    if target == "msExchRecipientDisplayType":
        return {"Type": "Room"}, {target, "msExchRecipientTypeDetails"}
    if target == "proxyAddresses":
        return {"EmailAddresses": {"Add": [f"smtp:{mbx.alias}.rt@{DOMAIN}"]}}, {target}
    assert target == "mail"
    # A new primary: mail changes and so do proxyAddresses (SMTP: moves to the new address).
    return {"WindowsEmailAddress": f"{mbx.alias}.primary@{DOMAIN}"}, {target, "proxyAddresses"}


@pytest.mark.parametrize("target", GA_TARGETS)
def test_every_ga_attribute_round_trips(shared, target):
    assert len(GA_TARGETS) == 24 and set(GA_TARGETS) == set(GA.targets)
    user, mbx = USERS[GA_TARGETS.index(target)]
    before = shared.ad(user)
    params, changing = _edit_for(target, mbx)
    report = one_edit(shared, user, mbx, **params)
    assert modified(entry_for(report, mbx)) == changing
    shared.in_sync(user, mbx)
    after = shared.ad(user)
    assert {a for a in GA_TARGETS if after[a] != before[a]} == changing


def test_all_24_attributes_in_one_set_mailbox(env):
    user, mbx = USERS[0]
    before = env.ad(user)
    params: dict[str, Any] = {f"CustomAttribute{i}": f"all-in-one {i}" for i in range(1, 16)}
    params |= {f"ExtensionCustomAttribute{i}": [f"aio {i}a", f"aio {i}b"] for i in range(1, 6)}
    params |= {
        "Type": "Equipment",
        "EmailAddresses": {"Add": [f"smtp:{mbx.alias}.aio@{DOMAIN}"]},
        "WindowsEmailAddress": f"{mbx.alias}.aio.primary@{DOMAIN}",
    }
    report = one_edit(env, user, mbx, **params)
    entry = entry_for(report, mbx)
    assert modified(entry) == set(GA_TARGETS)
    rec = env.in_sync(user, mbx)
    after = env.ad(user)
    for m in provlog.modified(entry):  # old and new values as AD held them
        attr = m["displayName"]
        cast = int if attr.startswith("msExchRecipient") else str
        assert sorted(map(cast, m["oldValue"])) == before[attr], attr
        assert sorted(map(cast, m["newValue"])) == after[attr], attr
    assert after["msExchRecipientTypeDetails"] == [
        REMOTE_AD_VALUES["EquipmentMailbox"].type_details
    ]
    assert rec["RecipientTypeDetails"] == "EquipmentMailbox"


# ------------------------------------------------------------------ values and limits


def test_custom_attribute_maximum_length(env):
    user, mbx = USERS[1]
    longest = ("Zürich–東京 " * 103)[:1024]
    assert len(longest) == 1024
    # extensionAttribute10 has AD's smallest rangeUpper (1024), so it is the tight one.
    one_edit(env, user, mbx, CustomAttribute1=longest, CustomAttribute10="x" * 1024)
    rec = env.in_sync(user, mbx)
    assert env.ad(user)["extensionAttribute1"] == [longest]
    assert env.ad(user)["extensionAttribute10"] == ["x" * 1024]
    # One character more is refused by Set-Mailbox, so it never reaches AD.
    usn = highest_usn(env.conn)
    for name in ("CustomAttribute1", "CustomAttribute2"):
        with pytest.raises(CmdletFailed) as err:
            env.exo.set_mailbox(mbx.id, **{name: "y" * 1025})
        assert err.value.code == "PropertyValidationException"
        assert "maximum length is 1024" in err.value.message
    assert env.cloud(mbx) == rec
    assert env.converged().objects == 0
    assert highest_usn(env.conn) == usn
    assert env.ad(user)["extensionAttribute1"] == [longest]


def test_extension_custom_attribute_maximum_length(env):
    user, mbx = USERS[2]
    values = ["é" * 2048, "b" * 2048, "ok"]
    one_edit(env, user, mbx, ExtensionCustomAttribute3=values)
    env.in_sync(user, mbx)
    assert env.ad(user)["msExchExtensionCustomAttribute3"] == sorted(values)
    with pytest.raises(CmdletFailed) as err:
        env.exo.set_mailbox(mbx.id, ExtensionCustomAttribute3={"Add": ["z" * 2049]})
    assert err.value.code == "PropertyValidationException"
    assert env.converged().objects == 0
    assert env.ad(user)["msExchExtensionCustomAttribute3"] == sorted(values)


def test_non_ascii_values_round_trip(env):
    user, mbx = USERS[3]
    single = "Größe: café, Straße – 東京都千代田区 😀 ñ"
    multi = ["é", "ß", "日本語の値", "emoji 🎉🚀", "Ærøskøbing"]
    one_edit(env, user, mbx, CustomAttribute3=single, ExtensionCustomAttribute2=multi)
    env.in_sync(user, mbx)
    got = env.ad(user)
    assert got["extensionAttribute3"] == [single]
    assert got["msExchExtensionCustomAttribute2"] == sorted(multi)


def test_multi_valued_extension_add_and_remove(env):
    user, mbx = USERS[4]
    one_edit(env, user, mbx, ExtensionCustomAttribute1=["alpha", "beta", "gamma"])
    report = one_edit(
        env, user, mbx, ExtensionCustomAttribute1={"Add": ["delta", "epsilon"], "Remove": "beta"}
    )
    (change,) = provlog.modified(entry_for(report, mbx))
    assert change["displayName"] == "msExchExtensionCustomAttribute1"
    assert sorted(change["oldValue"]) == ["alpha", "beta", "gamma"]
    assert sorted(change["newValue"]) == ["alpha", "delta", "epsilon", "gamma"]
    env.in_sync(user, mbx)
    # Adding a value that is there in another case respells it (EXO keeps the new form).
    one_edit(env, user, mbx, ExtensionCustomAttribute1={"Add": ["ALPHA"]})
    rec = env.in_sync(user, mbx)
    assert "ALPHA" in rec["ExtensionCustomAttribute1"]
    assert env.ad(user)["msExchExtensionCustomAttribute1"] == [
        "ALPHA",
        "delta",
        "epsilon",
        "gamma",
    ]
    # Removing every value removes the attribute.
    one_edit(
        env,
        user,
        mbx,
        ExtensionCustomAttribute1={"Remove": ["alpha", "delta", "epsilon", "gamma"]},
    )
    env.in_sync(user, mbx)
    assert env.ad(user)["msExchExtensionCustomAttribute1"] == []


def test_proxy_address_add_primary_change_and_remove(env):
    user, mbx = USERS[5]
    old_primary = mbx.primary_smtp_address
    new = f"{mbx.alias}.new@{DOMAIN}"

    one_edit(env, user, mbx, EmailAddresses={"Add": [new]})  # a bare address is a secondary
    env.in_sync(user, mbx)
    assert f"smtp:{new}" in env.ad(user)["proxyAddresses"]

    report = one_edit(env, user, mbx, WindowsEmailAddress=new)
    assert modified(entry_for(report, mbx)) == {"proxyAddresses", "mail"}
    env.in_sync(user, mbx)
    proxies = env.ad(user)["proxyAddresses"]
    assert f"SMTP:{new}" in proxies and f"smtp:{old_primary}" in proxies
    assert f"SMTP:{old_primary}" not in proxies and f"smtp:{new}" not in proxies
    assert [p for p in proxies if p.startswith("SMTP:")] == [f"SMTP:{new}"]
    assert env.ad(user)["mail"] == [new]

    # Back again, with EmailAddresses naming the primary by its SMTP: prefix.
    one_edit(env, user, mbx, EmailAddresses={"Add": [f"SMTP:{old_primary}"], "Remove": [new]})
    env.in_sync(user, mbx)
    proxies = env.ad(user)["proxyAddresses"]
    assert [p for p in proxies if p.startswith("SMTP:")] == [f"SMTP:{old_primary}"]
    assert all(new.casefold() not in p.casefold() for p in proxies)
    assert env.ad(user)["mail"] == [old_primary]


def test_mailbox_type_changes_set_both_recipient_attributes(env):
    user, mbx = USERS[6]
    for kind, cloud_type in (
        ("Shared", "SharedMailbox"),
        ("Room", "RoomMailbox"),
        ("Equipment", "EquipmentMailbox"),
        ("Regular", "UserMailbox"),
    ):
        one_edit(env, user, mbx, Type=kind)
        rec = env.in_sync(user, mbx)
        assert rec["RecipientTypeDetails"] == cloud_type
        got = env.ad(user)
        assert got["msExchRecipientTypeDetails"] == [REMOTE_AD_VALUES[cloud_type].type_details]
        assert got["msExchRecipientDisplayType"] == [REMOTE_AD_VALUES[cloud_type].display_type]


def test_clearing_values_removes_the_ad_attributes(env):
    user, mbx = USERS[7]
    one_edit(
        env,
        user,
        mbx,
        CustomAttribute6="six",
        CustomAttribute7="seven",
        ExtensionCustomAttribute4=["four"],
        ExtensionCustomAttribute5=["five"],
    )
    got = env.ad(user)
    assert got["extensionAttribute6"] == ["six"] and got["msExchExtensionCustomAttribute5"]
    one_edit(
        env,
        user,
        mbx,
        CustomAttribute6=None,
        CustomAttribute7="",
        ExtensionCustomAttribute4=None,
        ExtensionCustomAttribute5="",
    )
    env.in_sync(user, mbx)
    assert env.conn.search(user.dn, "(objectClass=*)", BASE, attributes=["*"])
    present = {k.casefold() for k in env.conn.response[0]["raw_attributes"]}
    for attr in (
        "extensionAttribute6",
        "extensionAttribute7",
        "msExchExtensionCustomAttribute4",
        "msExchExtensionCustomAttribute5",
    ):
        assert attr.casefold() not in present, attr


# ------------------------------------------------------------------ DN escaping

# CNs that need escaping in a DN (RFC 4514), one per special character, for users the admin
# renames in AD; the generated tenant adds its own (special_cn_fraction).
CRAFTED_CNS = (
    "Smith, John",
    "Anna Berg + Assistant",
    'Kara "Temp" Ferguson',
    "Back\\slash Lab",
    "#Helpdesk",
    "Ops = Lab",
    " Leading Space",
    "Trailing Space ",
    "Semi; <Angle>",
)


def _is_special(user: AdUser) -> bool:
    return "\\" in user.dn.split(",OU=", 1)[0]


def _first_rdn_value(dn: str) -> str:
    """The unescaped value of a DN's first RDN (RFC 4514: `\\c` and `\\XX` escapes)."""
    value = dn.split("=", 1)[1]
    out, i = bytearray(), 0
    while i < len(value):
        c = value[i]
        if c == "\\":
            pair = value[i + 1 : i + 3]
            if len(pair) == 2 and all(x in "0123456789abcdefABCDEF" for x in pair):
                out += bytes.fromhex(pair)
                i += 3
                continue
            out += value[i + 1].encode()
            i += 2
            continue
        if c in ",+":
            break
        out += c.encode()
        i += 1
    return out.decode("utf-8")


def test_users_whose_cn_needs_dn_escaping(env):
    ep = env.run.endpoints
    generated = [
        (u, m, u.dn, u.cn)
        for u, m in TENANT.synced_pairs()
        if m.is_exchange_cloud_managed and _is_special(u)
    ]
    assert len(generated) >= 5, "the tenant should have DN-escaped CNs"
    # The admin renames more users so that every kind of escape is covered whatever the seed.
    admin = Connection(Server(ep.ldap_url, get_info=NONE), ep.admin_dn, ep.admin_password)
    assert admin.bind()
    renamed = []
    for cn, (user, mbx) in zip(CRAFTED_CNS, USERS[-len(CRAFTED_CNS) - 1 : -1], strict=True):
        rdn = f"CN={escape_rdn(cn)}"
        assert admin.modify_dn(user.dn, rdn), admin.result
        renamed.append((user, mbx, f"{rdn},{user.dn.split(',', 1)[1]}", cn))
    admin.unbind()
    everyone = generated + renamed
    cns = [cn for *_, cn in everyone]
    assert set(',+"\\#= ;<>') <= set("".join(cns))
    assert any(cn.startswith(" ") for cn in cns) and any(cn.endswith(" ") for cn in cns)
    assert any(cn.startswith("#") for cn in cns)

    for mode in ("delta", "full"):
        for i, (_, mbx, _, _) in enumerate(everyone):
            env.exo.set_mailbox(
                mbx.id,
                CustomAttribute4=f"{mode} {i}",
                ExtensionCustomAttribute1=[f"{mode}, {i}", f"+{i}"],
            )
        report = env.converged(mode)
        assert report.actions["Update"] == len(everyone), mode
        entries = {provlog.source_id(e): e for e in log_entries(report)}
        for i, (user, mbx, dn, cn) in enumerate(everyone):
            entry = entries[mbx.id]
            assert provlog.status(entry) == "Success" and provlog.action(entry) == "Update", entry
            assert user.consistency_guid is not None
            found_dn, values = ad_by_anchor(env.conn, TENANT.base_dn, user.consistency_guid)
            # The log names the entry AD holds, spelled as AD returns it; its CN is exact.
            assert provlog.target_dn(entry) == found_dn, mode
            assert normalize_dn(found_dn) == normalize_dn(dn)
            assert _first_rdn_value(found_dn) == cn
            assert values == expected_ad(env.cloud(mbx)), dn
            assert values["extensionAttribute4"] == [f"{mode} {i}"]


# ------------------------------------------------------------------ profiles and scope


def test_preview_profile_never_writes_mail(env, tmp_path):
    preview_state = tmp_path / "preview"
    assert env.converged(profile=PREVIEW, state=preview_state).actions.get("Update", 0) == 0
    user, mbx = USERS[8]
    new = f"{mbx.alias}.preview@{DOMAIN}"
    env.exo.set_mailbox(mbx.id, WindowsEmailAddress=new)
    report = env.converged(profile=PREVIEW, state=preview_state)
    assert report.actions["Update"] == 1
    assert modified(entry_for(report, mbx)) == {"proxyAddresses"}
    got = env.ad(user)
    assert got["mail"] == [user.mail] != [new]
    assert f"SMTP:{new}" in got["proxyAddresses"]
    assert expected_ad(env.cloud(mbx), tuple(PREVIEW.targets)) == ad_entry(
        env.conn, user.dn, tuple(PREVIEW.targets)
    )
    usn = highest_usn(env.conn)
    full = env.converged("full", profile=PREVIEW, state=preview_state)
    assert full.actions.get("Update", 0) == 0 and highest_usn(env.conn) == usn
    assert env.ad(user)["mail"] == [user.mail]
    # The GA profile does write it: the edit was real.
    ga = env.converged()
    assert modified(entry_for(ga, mbx)) == {"mail"}
    assert env.ad(user)["mail"] == [new]


def _unmanaged() -> list[tuple[AdUser, CloudMailbox]]:
    return [
        (u, m)
        for u, m in TENANT.synced_pairs()
        if not m.is_exchange_cloud_managed and m.recipient_type_details == "UserMailbox"
    ]


def test_out_of_scope_edits_never_reach_ad(env):
    snapshot = ad_snapshot(env.conn, TENANT.base_dn)
    usn = highest_usn(env.conn)

    # AD is the source of authority: Exchange refuses the edit.
    user, mbx = _unmanaged()[0]
    with pytest.raises(CmdletFailed) as err:
        env.exo.set_mailbox(mbx.id, CustomAttribute1="not allowed")
    assert err.value.code == "TaskInvalidOperationException"

    # Edited while cloud-managed, handed back to AD before the cycle ran: Skipped.
    user2, mbx2 = USERS[9]
    env.exo.set_mailbox(mbx2.id, CustomAttribute1="edited then handed back")
    env.exo.set_mailbox(mbx2.id, IsExchangeCloudManaged=False)

    # A cloud-only mailbox (not dir-synced): editable in EXO, nothing to write in AD.
    cloud_only = [m for m in TENANT.mailboxes if not m.is_dir_synced]
    assert cloud_only
    env.exo.set_mailbox(cloud_only[0].id, CustomAttribute1="cloud only", CustomAttribute2="x")

    report = env.converged()
    assert report.statuses["Skipped"] == 2 and report.actions.get("Update", 0) == 0
    handed_back = entry_for(report, mbx2)
    assert provlog.status(handed_back) == "Skipped" and provlog.target_dn(handed_back) == user2.dn
    assert provlog.steps(handed_back)[2]["status"] == "Skipped"
    assert provlog.status(entry_for(report, cloud_only[0])) == "Skipped"
    assert highest_usn(env.conn) == usn
    assert ad_snapshot(env.conn, TENANT.base_dn) == snapshot
    # Nor does a full cycle write them.
    full = env.converged("full")
    assert full.actions.get("Update", 0) == 0 and highest_usn(env.conn) == usn

    # Turning cloud management on in the same call as an edit brings the mailbox into scope.
    env.exo.set_mailbox(mbx.id, IsExchangeCloudManaged=True, CustomAttribute5="now managed")
    report = env.converged()
    assert report.actions["Update"] == 1 and provlog.target_dn(entry_for(report, mbx)) == user.dn
    env.in_sync(user, mbx)
    assert env.ad(user)["extensionAttribute5"] == ["now managed"]


def test_a_converged_tenant_gets_no_writes(env):
    # A mix of edits first, converged by one delta cycle.
    edits = [
        (USERS[10], {"CustomAttribute1": "idem", "ExtensionCustomAttribute1": ["a", "b"]}),
        (USERS[11], {"WindowsEmailAddress": f"{USERS[11][1].alias}.idem@{DOMAIN}"}),
        (USERS[12], {"Type": "Room"}),
        (USERS[13], {"CustomAttribute2": None, "EmailAddresses": {"Add": ["x500:/o=Idem/cn=x"]}}),
        (USERS[14], {"ExtensionCustomAttribute2": {"Add": ["Ä", "ö"]}}),
    ]
    for (_, mbx), params in edits:
        env.exo.set_mailbox(mbx.id, **params)
    report = env.converged()
    assert report.actions["Update"] == len(edits)
    for (user, mbx), _ in edits:
        env.in_sync(user, mbx)

    snapshot = ad_snapshot(env.conn, TENANT.base_dn)
    usn = highest_usn(env.conn)
    again = env.converged()
    assert again.objects == 0
    full = env.converged("full")
    assert full.actions.get("Update", 0) == 0
    assert full.statuses["Success"] == sum(
        1 for m in TENANT.mailboxes if m.is_dir_synced and m.is_exchange_cloud_managed
    )
    dry = env.cycle("dry-run")
    assert dry.pending == []
    assert highest_usn(env.conn) == usn
    assert ad_snapshot(env.conn, TENANT.base_dn) == snapshot


def test_hand_edits_in_ad_are_repaired_once(env):
    """A full cycle repairs drift written by hand in AD, and the next full writes nothing."""
    user, mbx = USERS[15]
    admin = Connection(
        Server(env.run.endpoints.ldap_url, get_info=NONE),
        env.run.endpoints.admin_dn,
        env.run.endpoints.admin_password,
    )
    assert admin.bind()
    assert admin.modify(
        user.dn,
        {
            "extensionAttribute9": [(MODIFY_REPLACE, ["by hand"])],
            "proxyAddresses": [(MODIFY_REPLACE, [p.swapcase() for p in mbx.email_addresses])],
        },
    )
    admin.unbind()
    assert env.converged().objects == 0  # delta does not look at AD
    report = env.converged("full")
    assert report.actions["Update"] == 1
    assert modified(entry_for(report, mbx)) == {"extensionAttribute9", "proxyAddresses"}
    env.in_sync(user, mbx)
    usn = highest_usn(env.conn)
    assert env.converged("full").actions.get("Update", 0) == 0
    assert highest_usn(env.conn) == usn


# ------------------------------------------------------------------ Hypothesis

# LDAP filter and DN specials, whitespace, and any NUL-free, surrogate-free Unicode.
_SPECIALS = st.sampled_from([*'*()\\,+"#=<>; \t\r\n', "é", "ß", "東", "😀", "\u200b"])
_CHARS = st.one_of(_SPECIALS, st.characters(exclude_categories=("Cs",), exclude_characters="\x00"))
# Short values, and values near the 1024-character maximum (a plain text strategy rarely
# draws those).
_TEXT = st.one_of(
    st.text(_CHARS, min_size=1, max_size=64),
    st.text(_CHARS, min_size=1000, max_size=1024),
)


@settings(max_examples=20)
@given(
    single=_TEXT,
    multi=st.lists(
        st.text(_CHARS, min_size=1, max_size=200), min_size=1, max_size=4, unique_by=str.casefold
    ),
    slot=st.integers(1, 10),
)
def test_random_strings_round_trip_exactly(shared, single, multi, slot):
    user, mbx = USERS[-1]
    shared.exo.set_mailbox(
        mbx.id, **{f"CustomAttribute{slot}": single, "ExtensionCustomAttribute5": multi}
    )
    shared.converged()
    rec = shared.in_sync(user, mbx)
    assert rec[f"CustomAttribute{slot}"] == single  # Exchange kept the text as given
    got = shared.ad(user)
    assert got[f"extensionAttribute{slot}"] == [single]
    assert got["msExchExtensionCustomAttribute5"] == sorted(multi)
