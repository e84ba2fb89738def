"""LDAP injection (issue 9, "Security"): values holding ``*()\\`` and NUL never widen a search.

Two places put outside values into a filter. The engine (`harness.engine.ldapwire`) builds
filters as BER from values, so nothing in a value is ever read as filter syntax; its delta
matching (`LdapTarget.find_many`) looks anchors up that way. A scenario's `ldap_search` is
text, filled from the selected objects through `Template.render(..., escape_value)` and parsed
by `parse_filter` (harness/scenario/ldapfilter.py). Both are tested here with Hypothesis
values against the fake AD on a real socket: a hostile value written to one user is found on
that user alone, and a hostile value nobody holds finds nobody, never "everyone".
"""

from __future__ import annotations

import base64

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ldap3 import MODIFY_REPLACE, NONE, Connection, Server
from ldaptor.protocols import pureber, pureldap

from harness.engine.ldapwire import LdapConnection, all_of, equal
from harness.engine.target import ANCHOR_ATTRIBUTE, LdapCredentials, LdapTarget
from harness.scenario.ldapfilter import escape_value, parse_filter
from harness.scenario.templates import Template
from harness.tenant import TenantSpec, generate

HOSTILE = st.text(
    alphabet=st.sampled_from(["*", "(", ")", "\\", "\0", "=", "&", "|", "!", "a", "Z", "é", " "]),
    min_size=1,
    max_size=24,
)
CLASSIC = ["*", "*)(objectClass=*", "*)(|(objectClass=*)", "\\2a", "a\0*", ")(", "\\", "*)(!(cn=x"]
pytestmark = pytest.mark.shared_tenant  # `run`: one tenant's fake AD for the module
SETTINGS = settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.fixture(scope="module")
def tenant():
    return generate(TenantSpec(mailboxes=60, seed=17))


@pytest.fixture(scope="module")
def victims(tenant):
    """Two users in scope: the first holds the hostile value, the second a decoy."""
    users = [u for u in tenant.ad_users if ",OU=Corp," in u.dn and u.mail]
    return users[0].dn, users[1].dn


@pytest.fixture(scope="module")
def admin(shared_run):
    ep = shared_run.endpoints
    conn = Connection(Server(ep.ldap_url, get_info=NONE), ep.admin_dn, ep.admin_password)
    assert conn.bind()
    return conn


@pytest.fixture(scope="module")
def reader(shared_run):
    ep = shared_run.endpoints
    conn = LdapConnection(ep.ldap_url)
    conn.bind(ep.reader_dn, ep.reader_password)
    yield conn
    conn.close()


def dns(conn: LdapConnection, run, flt: bytes) -> list[str]:
    return sorted(dn for dn, _ in conn.search(run.endpoints.base_dn, "sub", flt, ["1.1"]))


def assertion_values(ber: bytes) -> list[bytes]:
    """The equality assertion values inside a filter's BER, as the server will read them."""
    out: list[bytes] = []

    def walk(f):
        if isinstance(f, pureldap.LDAPFilter_equalityMatch):
            v = f.assertionValue.value
            out.append(v if isinstance(v, bytes) else v.encode("utf-8"))
        elif isinstance(f, pureldap.LDAPFilter_and | pureldap.LDAPFilter_or):
            for child in f.data:
                walk(child)
        else:
            raise AssertionError(f"an unexpected filter part: {type(f).__name__}")

    f, _ = pureber.berDecodeObject(
        pureldap.LDAPBERDecoderContext_Filter(fallback=pureber.BERDecoderContext()), ber
    )
    walk(f)
    return out


# --- the scenario filter templates ---------------------------------------------------------------


@given(value=HOSTILE)
def test_escaped_values_parse_back_to_exactly_the_value(value):
    template = Template.parse("(&(objectClass=user)(extensionAttribute1={upn}))")
    text = template.render({"upn": value}, escape_value)
    parsed = parse_filter(text)  # never a syntax error, never a different filter shape
    assert parsed.attributes == frozenset({"objectClass", "extensionAttribute1"})
    assert assertion_values(parsed.ber) == [b"user", value.encode("utf-8")]


@pytest.mark.parametrize("value", CLASSIC)
def test_a_classic_payload_in_a_template_stays_one_value(value):
    text = Template.parse("(mail={upn})").render({"upn": value}, escape_value)
    assert assertion_values(parse_filter(text).ber) == [value.encode("utf-8")]


@SETTINGS
@given(value=st.one_of(st.sampled_from(CLASSIC), HOSTILE))
def test_template_search_finds_the_holder_or_nobody(run, admin, reader, victims, value):
    holder, decoy = victims
    assert admin.modify(holder, {"extensionAttribute1": [(MODIFY_REPLACE, [value])]}), admin.result
    assert admin.modify(decoy, {"extensionAttribute1": [(MODIFY_REPLACE, [value + "x"])]})
    template = Template.parse("(&(objectClass=user)(extensionAttribute1={upn}))")
    found = dns(reader, run, parse_filter(template.render({"upn": value}, escape_value)).ber)
    assert found == [holder]
    nobody = dns(reader, run, parse_filter(template.render({"upn": value + "q"}, escape_value)).ber)
    assert nobody == []


# --- the engine: filters built from values, and find_many -----------------------------------------


@SETTINGS
@given(value=st.one_of(st.sampled_from(CLASSIC), HOSTILE))
def test_engine_equality_filter_is_the_value_itself(run, admin, reader, victims, value):
    holder, _ = victims
    assert admin.modify(holder, {"extensionAttribute1": [(MODIFY_REPLACE, [value])]})
    flt = all_of(equal("objectClass", "user"), equal("extensionAttribute1", value))
    assert dns(reader, run, flt) == [holder]
    assert dns(reader, run, all_of(equal("extensionAttribute1", value + "\0"))) == []


@SETTINGS
@given(
    guid=st.binary(min_size=11, max_size=11).map(lambda b: b"*()\\\0" + b),
    stranger=st.binary(min_size=16, max_size=16),
)
def test_find_many_matches_exactly_the_anchors_held(run, admin, victims, guid, stranger):
    holder, _ = victims
    assert admin.modify(holder, {ANCHOR_ATTRIBUTE: [(MODIFY_REPLACE, [guid])]}), admin.result
    ep = run.endpoints
    creds = LdapCredentials(ep.ldap_url, ep.bind_dn, ep.bind_password, ep.base_dn)
    wanted = [base64.b64encode(guid).decode(), "*", "*)(objectClass=*", "\\2a", "\0"]
    if stranger != guid:
        wanted.append(base64.b64encode(stranger).decode())
    with LdapTarget(creds, ["extensionAttribute1"]) as target:
        found = target.find_many(wanted)
    assert {a: o.dn for a, o in found.items()} == {base64.b64encode(guid).decode(): holder}
