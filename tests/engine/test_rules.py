from __future__ import annotations

import base64
from pathlib import Path

import pytest

from harness.engine.anchor import MatchRule
from harness.engine.rules import (
    GA,
    PREVIEW,
    Mapping,
    MappingError,
    ProfileError,
    load_profile,
)
from harness.tenant import TenantSpec, generate
from harness.tenant.recipients import REMOTE_AD_VALUES
from harness.tenant.writeback import GA_ATTRIBUTES, PREVIEW_ATTRIBUTES


def test_builtin_profiles() -> None:
    assert len(GA.targets) == 24 and set(GA.targets) == set(GA_ATTRIBUTES)
    assert len(PREVIEW.targets) == 23 and set(PREVIEW.targets) == set(PREVIEW_ATTRIBUTES)
    assert "mail" not in PREVIEW.targets
    assert GA.mailbox_limit == 600_000 and PREVIEW.mailbox_limit == 200_000
    assert GA.undocumented == () and PREVIEW.undocumented == ()


@pytest.fixture(scope="module")
def tenant():  # type: ignore[no-untyped-def]
    return generate(TenantSpec(mailboxes=200, seed=11))


def test_desired_matches_generated_ad(tenant) -> None:  # type: ignore[no-untyped-def]
    checked = 0
    for user, mbx in tenant.synced_pairs():
        if mbx.recipient_type_details not in REMOTE_AD_VALUES:
            continue  # on-premises mailboxes (MailUser) are never cloud-managed
        ad = dict(user.ldap_attributes(tenant.object_category_person))
        for profile in (GA, PREVIEW):
            desired = profile.desired(mbx.to_json())
            assert set(desired) == set(profile.targets)
            for target, values in desired.items():
                assert values == ad.get(target, ()), (target, user.dn)
        checked += 1
    assert checked > 100


def test_desired_values_shape() -> None:
    rec = {
        "RecipientTypeDetails": "SharedMailbox",
        "EmailAddresses": ["SMTP:a@x.com", "smtp:b@x.com"],
        "WindowsEmailAddress": "a@x.com",
        **{f"CustomAttribute{i}": "" for i in range(1, 16)},
        **{f"ExtensionCustomAttribute{i}": [] for i in range(1, 6)},
        "CustomAttribute3": "three",
        "ExtensionCustomAttribute2": ["p", "", "q"],
    }
    d = GA.desired(rec)
    assert d["msExchRecipientTypeDetails"] == ("34359738368",)
    assert d["msExchRecipientDisplayType"] == ("-2147483642",)
    assert d["proxyAddresses"] == ("SMTP:a@x.com", "smtp:b@x.com")
    assert d["mail"] == ("a@x.com",)
    assert d["extensionAttribute1"] == ()
    assert d["extensionAttribute3"] == ("three",)
    assert d["msExchExtensionCustomAttribute2"] == ("p", "q")
    assert d["msExchExtensionCustomAttribute1"] == ()


def test_unknown_recipient_type_names_target() -> None:
    with pytest.raises(MappingError, match=r"msExchRecipient.*: no remote AD values .*'MailUser'"):
        GA.desired({"RecipientTypeDetails": "MailUser"})


def test_list_for_single_valued_target_is_an_error() -> None:
    m = Mapping("extensionAttribute1", "ExtensionCustomAttribute1", None, False)
    with pytest.raises(MappingError, match="extensionAttribute1 is single-valued"):
        m.values({"ExtensionCustomAttribute1": ["a"]})


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "custom.yaml"
    p.write_text(text, encoding="utf-8")
    return p


def test_custom_profile(tmp_path: Path) -> None:
    p = write(
        tmp_path,
        """\
based_on: ga
mappings:
  - target: extensionAttribute1
    expression: 'ToUpper([CustomAttribute1])'
  - target: msExchHideFromAddressLists
    source: HiddenFromAddressListsEnabled
  - {target: msexchrecipienttypedetails, source: RecipientTypeDetails}
remove: [mail, proxyAddresses]
""",
    )
    prof = load_profile(p)
    assert prof.name == "custom" and prof.mailbox_limit == 600_000
    assert len(prof.targets) == 23
    assert "mail" not in prof.targets and "proxyAddresses" not in prof.targets
    assert [m.target for m in prof.undocumented] == ["msExchHideFromAddressLists"]
    rec = {
        "CustomAttribute1": "abc",
        "HiddenFromAddressListsEnabled": True,
        "RecipientTypeDetails": "RoomMailbox",
    }
    d = prof.desired(rec)
    assert d["extensionAttribute1"] == ("ABC",)
    assert d["msExchHideFromAddressLists"] == ("TRUE",)
    # a case-variant target resolves to the schema's name and keeps the derivation
    assert d["msExchRecipientTypeDetails"] == ("8589934592",)
    assert prof.targets.index("extensionAttribute1") == GA.targets.index("extensionAttribute1")


def test_the_match_rule_is_a_profile_setting(tmp_path: Path) -> None:
    assert GA.match is PREVIEW.match is MatchRule.CONSISTENCY_GUID  # what the engine always did
    assert load_profile(write(tmp_path, "based_on: ga\n")).match is MatchRule.CONSISTENCY_GUID
    for rule in MatchRule:  # attribute names, read without case as AD reads them
        text = f"based_on: preview\nmatch: {rule.value.upper()}\n"
        assert load_profile(write(tmp_path, text)).match is rule


def test_match_rule_keys_on_each_side() -> None:
    guid = bytes(range(16))
    immutable = base64.b64encode(guid).decode()
    record = {"id": "0A1B-c2", "onPremisesImmutableId": immutable}
    for rule in (MatchRule.CONSISTENCY_GUID, MatchRule.OBJECT_GUID):
        assert rule.cloud_key(record) == immutable == rule.ad_key(guid)
        assert rule.assertion(immutable) == guid
        assert rule.assertion("not base64!") is None  # no AD value can equal it
    ext = MatchRule.EXTERNAL_ID
    assert ext.cloud_key(record) == "0a1b-c2" == ext.ad_key(b"USER_0A1B-C2")
    assert ext.assertion("0a1b-c2") == b"User_0a1b-c2"
    assert ext.ad_key(b"Group_0a1b-c2") is None and ext.ad_key(b"User_") is None
    assert ext.cloud_key({"id": "", "onPremisesImmutableId": immutable}) is None
    assert MatchRule.CONSISTENCY_GUID.cloud_key({"id": "x", "onPremisesImmutableId": None}) is None
    assert ext.describe("abc") == "msDS-ExternalDirectoryObjectId User_abc"


def test_custom_profile_preview_and_name(tmp_path: Path) -> None:
    prof = load_profile(write(tmp_path, "based_on: preview\nname: contoso\n"))
    assert prof.name == "contoso" and prof.mailbox_limit == 200_000
    assert prof.targets == PREVIEW.targets


def test_expression_list_for_single_target(tmp_path: Path) -> None:
    p = write(
        tmp_path,
        "based_on: ga\nmappings:\n"
        "  - {target: extensionAttribute2, expression: '[EmailAddresses]'}\n",
    )
    prof = load_profile(p)
    with pytest.raises(MappingError, match="extensionAttribute2"):
        prof.desired({"EmailAddresses": ["a"], "RecipientTypeDetails": "UserMailbox"})


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("based_on: ga\nfoo: 1\n", 2, "unknown key 'foo'"),
        ("mappings: []\n", 1, "needs based_on"),
        ("based_on: gb\n", 1, "based_on must be one of ga, preview"),
        ("based_on: ga\nmappings:\n  - target: bogusAttr\n    source: X\n", 3, "unknown AD"),
        ("based_on: ga\nmappings:\n  - target: whenChanged\n    source: X\n", 3, "system-only"),
        (
            "based_on: ga\nmappings:\n  - target: mail\n    source: X\n    sorce: Y\n",
            5,
            "unknown key 'sorce' in a mapping",
        ),
        ("based_on: ga\nmappings:\n  - target: mail\n", 3, "exactly one of source or expr"),
        (
            "based_on: ga\nmappings:\n  - target: mail\n    source: A\n    expression: '[A]'\n",
            3,
            "exactly one of source or expression",
        ),
        ("based_on: ga\nmappings:\n  - source: A\n", 3, "needs a target"),
        (
            "based_on: ga\nmappings:\n\n  - target: mail\n    expression: 'ToLower([A]'\n",
            5,
            "expression for mail: column 12: expected ')'",
        ),
        (
            "based_on: ga\nmappings:\n  - target: mail\n    expression: 'Foo([A])'\n",
            4,
            "unknown function 'Foo'",
        ),
        (
            "based_on: ga\nmappings:\n"
            "  - {target: mail, source: A}\n  - {target: mail, source: B}\n",
            4,
            "mail is mapped twice",
        ),
        ("based_on: preview\nremove:\n  - mail\n", 3, "cannot remove 'mail'"),
        ("based_on: ga\nremove: mail\n", 2, "remove must be a list"),
        ("based_on: ga\nmappings: {a: 1}\n", 2, "mappings must be a list"),
        ("based_on: ga\nmappings:\n  - 3\n", 3, "a mapping must be a mapping"),
        ("based_on: ga\nmappings:\n  - {target: 5, source: A}\n", 3, "target must be a string"),
        ("based_on: ga\nbased_on: preview\n", 2, "duplicate key 'based_on'"),
        ("based_on: [ga\n", 2, "invalid YAML"),
        ("", 1, "empty profile"),
        ("- a\n", 1, "the profile must be a mapping"),
        (
            "based_on: ga\n\nmatch: immutableId\n",
            3,
            "match: 'immutableId' is not a match rule (one of mS-DS-ConsistencyGuid, objectGUID, "
            "msDS-ExternalDirectoryObjectId)",
        ),
        ("based_on: ga\nmatch: [objectGUID]\n", 2, "match must be a string"),
        (
            "based_on: ga\nmatch: msDS-ExternalDirectoryObjectId\nmappings:\n"
            "  - {target: msDS-ExternalDirectoryObjectId, source: CustomAttribute1}\n",
            2,
            "match: msDS-ExternalDirectoryObjectId is a mapping target",
        ),
    ],
)
def test_profile_errors_name_file_and_line(
    tmp_path: Path, text: str, line: int, fragment: str
) -> None:
    p = write(tmp_path, text)
    with pytest.raises(ProfileError) as info:
        load_profile(p)
    msg = str(info.value)
    assert msg.startswith(f"{p}:{line}: "), msg
    assert fragment in msg, msg
