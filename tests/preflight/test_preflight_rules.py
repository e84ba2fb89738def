"""Every pre-flight rule stays quiet on a clean generated tenant and fires on one made to
break it; each broken tenant is the clean one written by the real writer with one change."""

from __future__ import annotations

import base64
import dataclasses
from pathlib import Path

import pytest

from harness.engine.rules import GA, PREVIEW, load_profile
from harness.preflight.rules import RULES, Severity
from harness.preflight.run import Outcome, PreflightReport
from harness.tenant import Tenant
from harness.tenant.model import anchor_of
from tests.preflight.tenants import Broken, contact, in_scope, preflight, unmanaged

LONG = "x" * 300


def outcome(report: PreflightReport, rule_id: str) -> Outcome:
    return next(o for o in report.outcomes if o.rule.id == rule_id)


def fired(report: PreflightReport) -> dict[str, int]:
    return {o.rule.id: o.count for o in report.outcomes if o.count}


def test_a_clean_generated_tenant_has_no_findings(tmp_path: Path) -> None:
    report = preflight(tmp_path)
    assert fired(report) == {}
    assert report.exit_code == 0
    assert report.counts()["in_scope"] > 0


def test_every_rule_has_a_case_below() -> None:
    # A rule without a breaking sample would pass here by never being checked.
    assert set(RULES) == {case.id for case in CASES}


def _set(attr: str, value: object, n: int = 0):
    def edit(t: Tenant) -> None:
        setattr(in_scope(t, n)[0], attr, value)

    return edit


def _proxy(*extra: str, n: int = 0):
    def edit(t: Tenant) -> None:
        user = in_scope(t, n)[0]
        user.proxy_addresses = (*user.proxy_addresses, *extra)

    return edit


def _custom(index: int, value: str, n: int = 0, mailbox=in_scope):
    def edit(t: Tenant) -> None:
        mbx = mailbox(t)[1] if mailbox is unmanaged else mailbox(t, n)[1]
        values = list(mbx.custom_attributes)
        values[index - 1] = value
        mbx.custom_attributes = tuple(values)

    return edit


def _both(*edits):
    def edit(t: Tenant) -> None:
        for e in edits:
            e(t)

    return edit


def _system_object(t: Tenant) -> None:
    user = in_scope(t)[0]
    user.cn = "SystemMailbox{1f05a927-0000}"
    user.proxy_addresses = (*user.proxy_addresses, "smtp:bad name@contoso.com")


def _same_upn(t: Tenant) -> None:
    in_scope(t, 1)[0].user_principal_name = in_scope(t, 0)[0].user_principal_name.upper()


def _same_alias(t: Tenant) -> None:
    in_scope(t, 1)[0].mail_nickname = in_scope(t, 0)[0].mail_nickname


def _shared_address(t: Tenant) -> None:
    a, b = in_scope(t, 0)[0], in_scope(t, 1)[0]
    a.proxy_addresses = (*a.proxy_addresses, "smtp:Shared.Box@contoso.com")
    b.proxy_addresses = (*b.proxy_addresses, "smtp:shared.box@CONTOSO.com")


def _foreign_anchor(t: Tenant) -> None:
    in_scope(t)[1].immutable_id = base64.b64encode(b"\x01" * 16).decode()


def _anchor_is_object_guid(t: Tenant) -> None:
    user, mbx = in_scope(t)
    user.consistency_guid = None
    mbx.immutable_id = anchor_of(user.object_guid)


def _unknown_type(t: Tenant) -> None:
    in_scope(t)[1].recipient_type_details = "NoSuchRecipientType"


def _two_users_one_anchor(t: Tenant) -> None:
    in_scope(t, 1)[0].consistency_guid = in_scope(t, 0)[0].consistency_guid


def _two_mailboxes_one_user(t: Tenant) -> None:
    in_scope(t, 1)[1].immutable_id = in_scope(t, 0)[1].immutable_id


def _address_taken(t: Tenant) -> list:
    return [contact(t, "Printer Queue", "SMTP:taken@contoso.com")]


def _new_address(t: Tenant) -> None:
    mbx = in_scope(t)[1]
    mbx.email_addresses = (*mbx.email_addresses, "smtp:taken@contoso.com")


def _profile(tmp: Path, text: str):
    path = tmp / "profile.yaml"
    path.write_text(text, encoding="utf-8")
    return load_profile(path)


@dataclasses.dataclass
class Case:
    id: str
    broken: Broken
    object: str = ""  # a substring the first example's object must hold
    quiet: Broken | None = None  # a near miss the rule must not report


def _name(t: Tenant, n: int = 0) -> str:
    return in_scope(t, n)[0].dn


CASES = [
    Case("idfix-proxy-length", Broken(_proxy("smtp:" + "a" * 250 + "@contoso.com"))),
    Case(
        "idfix-smtp-characters",
        Broken(_proxy("smtp:bad name@contoso.com")),
        quiet=Broken(_system_object),
    ),
    Case("idfix-smtp-characters", Broken(_proxy("x500:/o=Contoso/cn=[Recipients]"))),
    Case("idfix-smtp-format", Broken(_set("mail", "john..doe@contoso.com"))),
    Case("idfix-smtp-format", Broken(_proxy("smtp:@contoso.com"))),
    Case("idfix-smtp-tld", Broken(_proxy("smtp:j.doe@contoso.notatld"))),
    Case(
        "idfix-smtp-nonroutable",
        Broken(_proxy("smtp:j.doe@contoso.local")),
        quiet=Broken(
            _proxy("smtp:j.doe@tenant1.example"), manifest={"importer": {"pseudonymised": True}}
        ),
    ),
    Case("idfix-smtp-nonroutable", Broken(_proxy("smtp:j.doe@tenant1.example"))),
    Case("idfix-duplicate-address", Broken(_shared_address)),
    Case("idfix-duplicate-upn", Broken(_same_upn)),
    Case("idfix-duplicate-mailnickname", Broken(_same_alias)),
    Case("idfix-mail-length", Broken(_set("mail", "m" * 250 + "@contoso.com"))),
    Case("idfix-mailnickname", Broken(_set("mail_nickname", ".leading"))),
    Case("idfix-mailnickname", Broken(_set("mail_nickname", "n" * 65))),
    Case("idfix-displayname", Broken(_set("display_name", "   "))),
    Case("idfix-displayname", Broken(_set("display_name", "d" * 256))),
    Case(
        "idfix-givenname-length",
        Broken(_set("given_name", "g" * 64)),
        quiet=Broken(_set("given_name", "g" * 63)),
    ),
    Case("idfix-targetaddress-length", Broken(_set("target_address", "SMTP:" + LONG))),
    Case(
        "idfix-samaccountname",
        Broken(_set("sam_account_name", "s" * 21)),
        quiet=Broken(_set("sam_account_name", "s" * 20)),
    ),
    Case("idfix-samaccountname", Broken(_set("sam_account_name", "bad|name"))),
    Case("idfix-upn", Broken(_set("user_principal_name", "u" * 65 + "@contoso.com"))),
    Case("idfix-upn", Broken(_set("user_principal_name", "j.doe@" + "d" * 45 + ".com"))),
    Case("idfix-upn", Broken(_set("user_principal_name", "jörg.doe@contoso.com"))),
    Case("idfix-upn", Broken(_set("user_principal_name", "j doe@contoso.com"))),
    Case("idfix-upn", Broken(_set("user_principal_name", "no-at-sign"))),
    Case(
        "wb-schema-length",
        Broken(_custom(1, "c" * 1025)),
        quiet=Broken(_custom(1, "c" * 1024)),
    ),
    Case("wb-schema-syntax", Broken(_custom(2, "maybe"))),  # profile set in the test
    Case("wb-schema-single", Broken()),  # profile set in the test
    Case("wb-mapping", Broken(_unknown_type)),
    Case("wb-no-anchor", Broken(_foreign_anchor)),
    Case("wb-no-anchor", Broken(_anchor_is_object_guid)),
    Case("wb-duplicate-anchor", Broken(_two_users_one_anchor)),
    Case("wb-joined-twice", Broken(_two_mailboxes_one_user)),
    Case("wb-outside-writable-ou", Broken(writeback_ous=("OU=Elsewhere,DC=contoso,DC=com",))),
    Case(
        "wb-outside-writable-ou",
        Broken(
            manifest={
                "source": "import",
                "writeback_ous": ["OU=London,OU=Users,OU=Corp,DC=contoso,DC=com"],
            }
        ),
    ),
    Case("wb-address-collision", Broken(_new_address, entries=_address_taken)),
    Case("wb-mailbox-limit", Broken(profile=dataclasses.replace(GA, mailbox_limit=10))),
    Case("wb-preview-no-mail", Broken(profile=PREVIEW)),
    Case("wb-unmanaged-drift", Broken(_custom(3, "changed in the cloud", mailbox=unmanaged))),
    Case("wb-first-cycle", Broken(_custom(3, "changed in the cloud"))),
]


@pytest.mark.parametrize("case", CASES, ids=[f"{c.id}-{i}" for i, c in enumerate(CASES)])
def test_the_rule_fires_on_a_tenant_made_to_break_it(case: Case, tmp_path: Path) -> None:
    broken = case.broken
    if case.id == "wb-schema-syntax":
        broken = dataclasses.replace(
            broken,
            profile=_profile(
                tmp_path,
                "based_on: ga\nmappings:\n"
                "  - {target: msExchHideFromAddressLists, source: CustomAttribute2}\n",
            ),
        )
    if case.id == "wb-schema-single":
        broken = dataclasses.replace(
            broken,
            profile=_profile(
                tmp_path,
                "based_on: ga\nmappings:\n"
                "  - {target: extensionAttribute9, source: EmailAddresses}\n",
            ),
        )
    report = preflight(tmp_path / "broken", broken)
    found = fired(report)
    assert case.id in found, f"{case.id} did not fire; fired: {found}"
    o = outcome(report, case.id)
    assert o.examples and o.examples[0].object
    # Errors fail the run (exit 1); a warning or info finding alone does not.
    assert report.exit_code == (1 if o.rule.severity is Severity.ERROR else 0), found
    if case.quiet is not None:
        near = preflight(tmp_path / "near", case.quiet)
        assert case.id not in fired(near), fired(near)


def test_duplicates_name_every_object(tmp_path: Path) -> None:
    report = preflight(tmp_path, Broken(_shared_address))
    [f] = outcome(report, "idfix-duplicate-address").examples
    assert f.value == "smtp:Shared.Box@contoso.com"
    assert len(f.others) == 1 and f.others[0] != f.object
    assert f.others[0] in f.detail


def test_the_anchor_finding_says_when_the_guid_is_only_the_object_guid(tmp_path: Path) -> None:
    report = preflight(tmp_path, Broken(_anchor_is_object_guid))
    [f] = outcome(report, "wb-no-anchor").examples
    assert "objectGUID" in f.detail


def test_the_collision_names_the_other_object_and_its_scope(tmp_path: Path) -> None:
    report = preflight(tmp_path, Broken(_new_address, entries=_address_taken))
    [f] = outcome(report, "wb-address-collision").examples
    assert f.others == ("CN=Printer Queue,OU=Service Accounts,DC=contoso,DC=com",)
    assert "outside sync scope" in f.detail


def test_drift_names_the_attribute_and_both_values(tmp_path: Path) -> None:
    report = preflight(tmp_path, Broken(_custom(3, "changed in the cloud", mailbox=unmanaged)))
    o = outcome(report, "wb-unmanaged-drift")
    assert dict(o.by_attribute) == {"extensionAttribute3": 1}
    assert o.examples[0].value.endswith("-> changed in the cloud")


def test_a_long_value_is_shown_cut_with_its_length(tmp_path: Path) -> None:
    report = preflight(tmp_path, Broken(_custom(1, "c" * 1025)))
    [f] = outcome(report, "wb-schema-length").examples
    assert "(1,025 characters)" in f.value and len(f.value) < 100


def test_an_escaped_comma_in_the_name_does_not_move_the_user(tmp_path: Path) -> None:
    london = "OU=London,OU=Users,OU=Corp,DC=contoso,DC=com"
    escaped = f"CN=Doe\\, John,{london}"
    inside = f"CN=Doe\\, John\\,OU=Elsewhere,{london}"  # the escaped text looks like an RDN

    def move(t: Tenant) -> None:
        in_scope(t, 0)[0].dn = escaped
        in_scope(t, 1)[0].dn = inside

    report = preflight(tmp_path, Broken(move, writeback_ous=(london,)))
    o = outcome(report, "wb-outside-writable-ou")
    outside = {f.object for f in o.examples}
    assert o.count == len(outside) > 0  # every finding is among the examples
    assert escaped not in outside and inside not in outside
