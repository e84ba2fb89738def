"""The first cycle, previewed: a dry run says what a real cycle then does, object by object.

A served tenant is made to hold every kind of outcome: cloud edits that change AD, a custom
attribute over its target's rangeUpper (AD: 19), a cloud-managed user outside the writable OUs
(AD: 50, predicted from allowedAttributesEffective), a mailbox that is not cloud-managed
(skipped). The dry run's predictions are then checked against a real cycle on the same tenant:
the same objects, the same outcomes, the same codes and diagnostics.
"""

from __future__ import annotations

import base64

import pytest
from ldap3 import MODIFY_REPLACE

from harness.engine import log as provlog
from harness.engine.cycle import CycleOptions, run_cycle
from harness.engine.preview import NOT_CHECKED, Outcome, Preview
from harness.engine.rules import GA, load_profile
from harness.tenant import TenantSpec, generate
from tests.directory.ldap_clients import connect
from tests.support.engine import log_entries, mailbox_pairs, writeback_credentials
from tests.support.preview import Broken, break_tenant

TENANT = generate(TenantSpec(mailboxes=60, seed=21, cloud_managed_fraction=0.8))
MANAGED = mailbox_pairs(TENANT, True)


def _edit(run, mbx, **fields):
    run.call(run.cloud.store.update, mbx.id, fields)


@pytest.fixture
def broken(run) -> Broken:
    return break_tenant(run, TENANT)


def _dry(run, tmp_path, **opts) -> Preview:
    report = run_cycle(
        *writeback_credentials(run.endpoints), GA, tmp_path, "dry-run", CycleOptions(**opts)
    )
    assert report.preview is not None and not report.watermark_moved
    return report.preview


def test_the_preview_names_every_outcome(run, broken, tmp_path):
    changed, too_long, outside, unmanaged = (
        broken.changed,
        broken.too_long,
        broken.outside,
        broken.unmanaged,
    )
    preview = _dry(run, tmp_path)
    by_id = {o.source_id: o for o in preview.objects}
    for m in changed:
        assert by_id[m.id].outcome is Outcome.CHANGE and by_id[m.id].code is None
        user = TENANT.ad_user_by_anchor(m.immutable_id)
        assert user is not None and by_id[m.id].upn == user.user_principal_name
    first = {c.attribute: c for c in by_id[changed[0].id].changes}
    assert first["extensionAttribute1"].new == ("preview 0",)
    was = changed[0].custom_attributes[0]
    assert first["extensionAttribute1"].old == ((was,) if was else ())
    assert broken.extra_address in first["proxyAddresses"].new

    long = by_id[too_long.id]
    assert (long.outcome, long.code) == (Outcome.FAILURE, 19)
    assert long.diagnostic == (
        "00002082: AtrErr: DSID-03151904, #1:\n\t0: 00002082: DSID-03151904, problem 1005 "
        "(CONSTRAINT_ATT_TYPE), data 0, Att (extensionAttribute1)\n"
    )
    assert long.reason == "constraintViolation"

    moved = by_id[outside.id]
    assert (moved.outcome, moved.code) == (Outcome.FAILURE, 50)
    assert "problem 4003 (INSUFF_ACCESS_RIGHTS)" in moved.diagnostic
    assert moved.dn == broken.outside_dn
    assert preview.access_checked and preview.access != NOT_CHECKED

    skipped = by_id[unmanaged.id]
    assert (skipped.outcome, skipped.reason) == (Outcome.SKIPPED, "out of scope")

    counts = preview.by_attribute()
    assert counts["extensionAttribute1"] == {"change": 3, "failure": 2}
    assert counts["proxyAddresses"] == {"change": 1, "failure": 0}
    assert counts["extensionAttribute2"] == {"change": 1, "failure": 0}  # the markup
    assert preview.outcomes()["change"] == 4 and preview.outcomes()["failure"] == 2
    assert preview.failures() == {"19: constraintViolation": 1, "50: insufficientAccessRights": 1}
    assert preview.guard is None


def test_a_real_cycle_does_exactly_what_the_preview_said(run, broken, tmp_path):
    preview = _dry(run, tmp_path / "dry")
    report = run_cycle(*writeback_credentials(run.endpoints), GA, tmp_path / "real", "delta")
    real = {provlog.source_id(e): e for e in log_entries(report)}
    predicted = {o.source_id: o for o in preview.objects}
    assert len(real) == len(predicted) + preview.unchanged
    for sid, o in predicted.items():
        e = real[sid]
        if o.outcome is Outcome.CHANGE:
            assert (provlog.status(e), provlog.action(e)) == ("Success", "Update"), e
            assert provlog.modified(e) == [
                {"displayName": c.attribute, "oldValue": list(c.old), "newValue": list(c.new)}
                for c in o.changes
            ]
        elif o.outcome is Outcome.FAILURE:
            assert (provlog.status(e), provlog.error_code(e)) == ("Failure", o.code), e
            assert provlog.reason(e) == o.diagnostic
        else:
            assert (provlog.status(e), provlog.reason(e)) == ("Skipped", o.reason), e
    unchanged = [e for sid, e in real.items() if sid not in predicted]
    assert all(provlog.status(e) == "Success" and provlog.action(e) != "Update" for e in unchanged)


def test_the_mass_change_guard_is_predicted_not_applied(run, broken, tmp_path):
    preview = _dry(run, tmp_path, mass_change_threshold=2)
    assert preview.guard is not None and "6 objects would change" in preview.guard
    assert preview.outcomes()["change"] == 4  # still the whole preview


def test_a_directory_without_the_attribute_is_not_guessed_at(run, slapd_contents, tmp_path):
    """OpenLDAP slapd has no allowedAttributesEffective: the preview says access was not
    checked and predicts no 50, rather than reading the missing attribute as "no rights"."""
    from tests.support.backends import require_slapd, start_slapd

    require_slapd()
    m = MANAGED[0][1]
    _edit(run, m, custom_attributes=("on slapd", *m.custom_attributes[1:]))
    slapd = start_slapd(slapd_contents(TENANT))
    try:
        creds = writeback_credentials(run.endpoints, slapd.endpoints)
        report = run_cycle(*creds, GA, tmp_path, "dry-run")
    finally:
        slapd.stop()
    preview = report.preview
    assert preview is not None
    assert not preview.access_checked and preview.access == NOT_CHECKED
    assert preview.outcomes()["failure"] == 0
    assert [o.source_id for o in preview.objects if o.outcome is Outcome.CHANGE] == [m.id]


def test_a_value_outside_its_syntax_is_predicted_21_and_a_real_cycle_agrees(run, tmp_path):
    """A custom profile that copies free text into an integer target: AD answers 21."""
    profile_file = tmp_path / "syntax.yaml"
    profile_file.write_text(
        "based_on: ga\nname: syntax\nmappings:\n"
        "  - {target: msExchRecipientDisplayType, source: CustomAttribute15}\n",
        encoding="utf-8",
    )
    profile = load_profile(profile_file)
    m = MANAGED[0][1]
    _edit(run, m, custom_attributes=(*m.custom_attributes[:14], "maybe"))
    creds = writeback_credentials(run.endpoints)
    report = run_cycle(*creds, profile, tmp_path / "dry", "dry-run")
    assert report.preview is not None
    (o,) = [o for o in report.preview.objects if o.source_id == m.id]
    assert (o.outcome, o.code, o.reason) == (Outcome.FAILURE, 21, "invalidAttributeSyntax")
    assert o.diagnostic.endswith("(msExchRecipientDisplayType)")
    real = run_cycle(*creds, profile, tmp_path / "real", "delta")
    (e,) = [e for e in log_entries(real) if provlog.source_id(e) == m.id]
    assert (provlog.status(e), provlog.error_code(e), provlog.reason(e)) == (
        "Failure",
        21,
        o.diagnostic,
    )


def test_a_duplicate_anchor_is_named_as_the_real_cycle_names_it(run, tmp_path):
    """The engine refuses to guess which of two AD users a mailbox means: failure, code 0."""
    (user_a, a), (user_b, _) = MANAGED[0], MANAGED[1]  # B takes A's anchor
    admin = connect(run)
    guid = base64.b64decode(a.immutable_id)
    assert admin.modify(user_b.dn, {"mS-DS-ConsistencyGuid": [(MODIFY_REPLACE, [guid])]})
    preview = _dry(run, tmp_path / "dry")
    dup = {o.source_id: o for o in preview.objects}[a.id]
    assert (dup.outcome, dup.code) == (Outcome.FAILURE, 0)
    assert dup.reason == "source anchor held by more than one AD object"
    assert user_a.dn in dup.diagnostic and user_b.dn in dup.diagnostic
    real = run_cycle(*writeback_credentials(run.endpoints), GA, tmp_path / "real", "delta")
    logged = {provlog.source_id(e): e for e in log_entries(real)}[a.id]
    assert (provlog.status(logged), provlog.error_code(logged), provlog.reason(logged)) == (
        "Failure",
        0,
        dup.reason,
    )
