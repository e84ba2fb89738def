"""Invariants of generated tenants, over seeds, sizes and knobs."""

import base64
from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.core.dn import escape_rdn_value
from harness.tenant import TenantSpec, generate
from harness.tenant import recipients as rt
from harness.tenant.ldif import ldif_chunks
from harness.tenant.model import Tenant, primary_smtp

sizes = st.integers(min_value=1, max_value=250)
seeds = st.integers(min_value=0, max_value=2**32)
fractions = st.floats(min_value=0.0, max_value=1.0)


def make(size: int, seed: int, **knobs) -> Tenant:
    return generate(TenantSpec.from_mapping({"mailboxes": size, "seed": seed, **knobs}))


def assert_unique_casefolded(values, what):
    counts = Counter(v.casefold() for v in values)
    dupes = [v for v, n in counts.items() if n > 1]
    assert not dupes, f"duplicate {what}: {dupes[:5]}"


def check_invariants(t: Tenant) -> None:
    spec = t.spec
    users, mbxs = t.ad_users, t.mailboxes
    # Counts follow the knobs.
    assert len(users) == spec.mailboxes + spec.onprem_mailboxes + spec.ad_only_users
    assert len(mbxs) == spec.mailboxes + spec.onprem_mailboxes + spec.cloud_only_users

    # Identifiers unique in the tenant, case-insensitively.
    assert_unique_casefolded([u.sam_account_name for u in users], "sAMAccountName")
    assert all(1 <= len(u.sam_account_name) <= 20 for u in users)
    assert_unique_casefolded([u.user_principal_name for u in users], "AD UPN")
    assert_unique_casefolded([m.user_principal_name for m in mbxs], "cloud UPN")
    assert_unique_casefolded([u.dn for u in users] + [o.dn for o in t.ous], "DN")
    assert len({u.object_guid for u in users}) == len(users)
    assert len({m.id for m in mbxs}) == len(mbxs)
    # Every proxy address (without its prefix) belongs to one recipient only.
    owners: dict[str, str] = {}
    for m in mbxs:
        for a in m.email_addresses:
            key = a.split(":", 1)[1].casefold()
            assert owners.setdefault(key, m.id) == m.id, f"address {a} on two recipients"
    for u in users:
        for a in u.proxy_addresses:
            assert a.split(":", 1)[1].casefold() in owners

    # Exactly one primary SMTP per recipient, equal to mail / WindowsEmailAddress.
    for m in mbxs:
        primaries = [a for a in m.email_addresses if a.startswith("SMTP:")]
        assert len(primaries) == 1, m
        assert m.primary_smtp_address == m.windows_email_address == primaries[0][5:]
        assert all(a.split(":", 1)[0] in ("SMTP", "smtp", "X500") for a in m.email_addresses)
        assert len(set(m.email_addresses)) == len(m.email_addresses)
    for u in users:
        if u.mail is not None:
            assert primary_smtp(u.proxy_addresses) == u.mail
            assert sum(a.startswith("SMTP:") for a in u.proxy_addresses) == 1

    # Anchors join one to one; the anchor is base64(mS-DS-ConsistencyGuid).
    synced = [m for m in mbxs if m.is_dir_synced]
    assert len({m.immutable_id for m in synced}) == len(synced)
    joined = dict(((u.dn, m.id) for u, m in t.synced_pairs()))
    assert len(joined) == len(synced) == spec.mailboxes + spec.onprem_mailboxes
    for u in users:
        if u.consistency_guid is not None:
            assert u.consistency_guid == u.object_guid and len(u.object_guid) == 16
            assert base64.b64decode(u.anchor) == u.consistency_guid
    for m in mbxs:
        assert (m.immutable_id is None) == (not m.is_dir_synced)
        assert not (m.is_exchange_cloud_managed and not m.is_dir_synced)

    # Right after the SOA switch, AD equals the cloud on every Exchange attribute.
    for u, m in t.synced_pairs():
        assert u.mail == m.windows_email_address
        assert u.mail_nickname == m.alias
        assert set(u.proxy_addresses) == set(m.email_addresses)
        assert u.extension_attributes == m.custom_attributes
        assert u.extension_custom_attributes == m.extension_custom_attributes
        assert bool(u.hide_from_address_lists) == m.hidden_from_address_lists
        assert u.display_name == m.display_name
        if m.recipient_type_details == rt.MAIL_USER:
            assert u.recipient_type_details == rt.ONPREM_USER_MAILBOX_TYPE_DETAILS
            assert u.home_mdb and u.target_address is None
            assert not m.is_exchange_cloud_managed
        else:
            v = rt.REMOTE_AD_VALUES[m.recipient_type_details]
            assert (
                u.recipient_type_details,
                u.recipient_display_type,
                u.remote_recipient_type,
            ) == (v.type_details, v.display_type, v.remote_type)
            assert u.target_address == f"SMTP:{m.alias}@{spec.routing_domain}"
            assert f"smtp:{m.alias}@{spec.routing_domain}" in m.email_addresses
            assert f"smtp:{m.alias}@{spec.onmicrosoft_domain}" in m.email_addresses
        for values in m.extension_custom_attributes:
            assert len(set(values)) == len(values)

    # DNs are built from the escaped CN and a known OU.
    ou_dns = {o.dn for o in t.ous}
    for u in users:
        head = f"CN={escape_rdn_value(u.cn)},"
        assert u.dn.startswith(head) and u.dn[len(head) :] in ou_dns

    # One USN history: unique, increasing, changes after creation.
    usns = [u.usn_created for u in users] + [u.usn_changed for u in users]
    usns += [g.usn_created for g in t.groups] + [g.usn_changed for g in t.groups]
    assert len(set(usns)) == len(usns)
    assert t.highest_usn == max(usns)
    for u in users:
        assert u.usn_changed > u.usn_created
        assert u.when_changed > u.when_created
        assert len(u.when_created) == 17 and u.when_created.endswith(".0Z")


@given(size=sizes, seed=seeds)
def test_invariants_hold_with_default_knobs(size, seed):
    check_invariants(make(size, seed))


@given(
    size=sizes,
    seed=seeds,
    cloud=fractions,
    hidden=fractions,
    non_ascii=fractions,
    special=fractions,
    x500=fractions,
    fill=fractions,
    mix=st.fixed_dictionaries(
        {k: st.floats(min_value=0, max_value=5) for k in ("user", "shared", "room", "equipment")}
    ).filter(lambda d: sum(d.values()) > 0),
    extra=st.dictionaries(st.integers(0, 8), st.floats(0.1, 5), min_size=1, max_size=4),
)
def test_invariants_hold_for_any_knobs(
    size, seed, cloud, hidden, non_ascii, special, x500, fill, mix, extra
):
    check_invariants(
        make(
            size,
            seed,
            cloud_managed_fraction=cloud,
            hidden_fraction=hidden,
            non_ascii_fraction=non_ascii,
            special_cn_fraction=special,
            x500_fraction=x500,
            custom_attribute_fill=fill,
            mailbox_mix=mix,
            proxy_address_extra=extra,
        )
    )


def test_many_namesakes_stay_unique():
    # 3,000 people drawn from ~1,500 first names: namesakes collide on alias, sAMAccountName
    # and CN within one OU, and must all be made unique.
    t = make(3000, 5, site_ous=1, mailbox_mix={"user": 1}, proxy_address_extra={5: 1})
    check_invariants(t)
    assert any("(" in u.cn for u in t.ad_users), "expected CN collisions to be resolved"


def test_knobs_shape_the_tenant():
    t = make(
        400,
        3,
        cloud_managed_fraction=0,
        hidden_fraction=1,
        non_ascii_fraction=1,
        special_cn_fraction=1,
        mailbox_mix={"room": 1},
        x500_fraction=1,
        custom_attribute_fill=1,
        extension_custom_attribute_fill=0,
        ad_only_users=2,
        cloud_only_users=4,
        onprem_mailboxes=6,
    )
    synced = [m for m in t.mailboxes if m.is_dir_synced]
    assert not any(m.is_exchange_cloud_managed for m in t.mailboxes)
    rooms = [m for m in synced if m.recipient_type_details == rt.ROOM_MAILBOX]
    assert len(rooms) == 400
    assert all(m.hidden_from_address_lists for m in rooms)
    assert all(any(a.startswith("X500:") for a in m.email_addresses) for m in rooms)
    assert all(all(m.custom_attributes) for m in rooms)
    assert all(not any(m.extension_custom_attributes) for m in rooms)
    room_users = [u for u in t.ad_users if u.recipient_type_details == 8589934592]
    assert all("\\" in u.dn.split(",OU=")[0] or u.dn.startswith("CN=\\") for u in room_users)
    assert sum(m.recipient_type_details == rt.MAIL_USER for m in synced) == 6
    assert sum(not m.is_dir_synced for m in t.mailboxes) == 4
    assert sum(u.consistency_guid is None and u.mail is None for u in t.ad_users) == 2


def test_non_ascii_names_reach_every_form():
    t = make(200, 9, non_ascii_fraction=1, mailbox_mix={"user": 1})
    people = [u for u in t.ad_users if u.mail and u.given_name and u.home_mdb is None]
    assert all(not f"{u.given_name}{u.sn}".isascii() for u in people)
    # Aliases and addresses fold to ASCII, as Exchange requires.
    assert all(u.mail.isascii() and u.sam_account_name.isascii() for u in people)


def test_default_mix_contains_every_mailbox_type():
    t = make(2000, 11)
    kinds = Counter(m.recipient_type_details for m in t.mailboxes if m.is_dir_synced)
    assert set(kinds) == {*rt.CLOUD_MAILBOX_TYPES, rt.MAIL_USER}
    assert 0.8 < kinds[rt.USER_MAILBOX] / 2000 < 0.9
    managed = sum(m.is_exchange_cloud_managed for m in t.mailboxes) / 2000
    assert 0.92 < managed < 0.98


def ldif_of(t: Tenant) -> str:
    return "".join(ldif_chunks(t))


@given(size=st.integers(1, 120), seed=seeds)
def test_same_spec_same_bytes(size, seed):
    a, b = make(size, seed), make(size, seed)
    assert ldif_of(a) == ldif_of(b)
    assert [m.to_json() for m in a.mailboxes] == [m.to_json() for m in b.mailboxes]


def test_other_seed_other_tenant():
    assert ldif_of(make(50, 1)) != ldif_of(make(50, 2))


def test_streams_are_independent_of_unrelated_knobs():
    # Changing who is hidden must not rename anyone or change their identifiers.
    a = make(300, 4, hidden_fraction=0.0)
    b = make(300, 4, hidden_fraction=0.5)
    assert [(u.dn, u.object_guid) for u in a.ad_users] == [
        (u.dn, u.object_guid) for u in b.ad_users
    ]
    assert [m.hidden_from_address_lists for m in a.mailboxes] != [
        m.hidden_from_address_lists for m in b.mailboxes
    ]


@pytest.mark.parametrize("bad", [{"mailboxes": 0}, {"seed": -5}])
def test_generate_rejects_invalid_spec(bad):
    from harness.tenant import SpecError

    with pytest.raises(SpecError):
        generate(TenantSpec(**bad))
