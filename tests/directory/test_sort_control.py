"""Server-side sorting (RFC 2891, 1.2.840.113556.1.4.473) over python-ldap's SSSRequestControl.

AD sorts by one key, by the attribute's syntax, and says why when it cannot (the sort result
control), failing the search only when the control is critical. On the fake and Samba; slapd
runs without its sssvlv overlay (ad_only).
"""

from __future__ import annotations

import ldap
import pytest
from ldap.controls import SimplePagedResultsControl
from ldap.controls.sss import SSSRequestControl, SSSResponseControl

from tests.directory.ldap_clients import connect, is_samba

OU = "OU=Corp,DC=contoso,DC=com"
SORT_OU = f"OU=Sort Test,{OU}"
CONTACT = ["top", "person", "organizationalPerson", "contact"]
# Surnames in an order that is neither the add order nor a case-sensitive one.
SURNAMES = ["delta", "Alpha", "charlie", "Bravo", "echo", "alpha2", "Zulu", "mike"]
UNWILLING, NO_SUCH_ATTRIBUTE, INAPPROPRIATE_MATCHING = 53, 16, 18


@pytest.fixture()
def contacts(fresh_directory):
    conn = connect(fresh_directory)
    assert conn.add(SORT_OU, ["top", "organizationalUnit"]), conn.result
    for i, sn in enumerate(SURNAMES):
        assert conn.add(f"CN=Sort {i},{SORT_OU}", CONTACT, {"sn": sn}), conn.result
    assert conn.add(f"CN=Sort none,{SORT_OU}", CONTACT), conn.result  # no sn
    return fresh_directory


def python_ldap(run) -> ldap.ldapobject.LDAPObject:
    user, password = run.endpoints.account("admin")
    conn = ldap.initialize(run.endpoints.ldap_url)
    conn.set_option(ldap.OPT_REFERRALS, 0)
    conn.simple_bind_s(user, password)
    return conn


def sorted_search(conn, rules, critical=False, attr="sn", page=None):
    """(the values of `attr` in the order returned, the sort result control or None)."""
    controls = [SSSRequestControl(criticality=critical, ordering_rules=rules)]
    if page:
        controls.append(SimplePagedResultsControl(True, size=page, cookie=""))
    got, response = [], None
    while True:
        msgid = conn.search_ext(
            SORT_OU, ldap.SCOPE_ONELEVEL, "(objectClass=contact)", [attr], serverctrls=controls
        )
        _type, data, _id, ctrls = conn.result3(
            msgid,
            resp_ctrl_classes={
                SSSResponseControl.controlType: SSSResponseControl,
                SimplePagedResultsControl.controlType: SimplePagedResultsControl,
            },
        )
        got += [(attrs.get(attr) or [b""])[0].decode() for _dn, attrs in data if _dn]
        response = next((c for c in ctrls if isinstance(c, SSSResponseControl)), response)
        paged = [c for c in ctrls if c.controlType == SimplePagedResultsControl.controlType]
        if not page or not paged or not paged[0].cookie:
            return got, response
        controls[1].cookie = paged[0].cookie


def casefolded(values, reverse=False):
    present = sorted((v for v in values if v), key=str.casefold, reverse=reverse)
    missing = [v for v in values if not v]
    return missing + present if reverse else present + missing


@pytest.mark.ad_only("server-side sort")
@pytest.mark.samba_differs("the sort result control and reverse order", branches=True)
def test_a_sort_by_a_string_ignores_case_and_puts_absent_values_last(contacts):
    conn = python_ldap(contacts)
    got, response = sorted_search(conn, ["sn"])
    assert got == casefolded([*SURNAMES, ""])
    reversed_got, _ = sorted_search(conn, ["-sn"])
    if is_samba(contacts):  # no sort result control; reverseOrder not honoured
        assert response is None
        assert reversed_got == got
        return
    assert response is not None and response.sortResult == 0
    assert reversed_got == casefolded([*SURNAMES, ""], reverse=True)  # absent is largest


@pytest.mark.ad_only("server-side sort")
@pytest.mark.samba_differs("the sort result control and reverse order", branches=True)
def test_a_sort_by_an_integer_is_numeric_and_survives_paging(contacts):
    conn = python_ldap(contacts)
    got, _ = sorted_search(conn, ["uSNCreated"], attr="uSNCreated")
    assert [int(v) for v in got] == sorted(int(v) for v in got)
    paged, _ = sorted_search(conn, ["uSNCreated"], attr="uSNCreated", page=3)
    assert paged == got  # every page in the one order
    if not is_samba(contacts):  # Samba does not honour reverseOrder
        paged, response = sorted_search(conn, ["-uSNCreated"], attr="uSNCreated", page=3)
        assert paged == got[::-1]
        assert response is not None and response.sortResult == 0


@pytest.mark.ad_only("server-side sort")
@pytest.mark.samba_differs("the sort result control and reverse order", branches=True)
def test_a_sort_it_cannot_do_is_said_not_silently_skipped(contacts):
    conn = python_ldap(contacts)
    # Two keys: AD sorts by one only. Not critical: the entries, and the reason.
    got, response = sorted_search(conn, ["sn", "cn"])
    assert sorted(got) == sorted([*SURNAMES, ""])
    if is_samba(contacts):  # unsorted, and nothing says so; critical: no entries, success
        assert response is None
        assert sorted_search(conn, ["sn", "cn"], critical=True) == ([], None)
        return
    assert response is not None and response.sortResult == UNWILLING
    # Critical: the search fails, with no entries.
    with pytest.raises(ldap.UNAVAILABLE_CRITICAL_EXTENSION):
        sorted_search(conn, ["sn", "cn"], critical=True)
    # An attribute the schema lacks, and an ordering rule the server does not have.
    got, response = sorted_search(conn, ["noSuchAttributeAtAll"])
    assert len(got) == len(SURNAMES) + 1
    assert response is not None and response.sortResult == NO_SUCH_ATTRIBUTE
    got, response = sorted_search(conn, ["sn:1.2.840.113556.1.4.1499"])
    assert response is not None and response.sortResult == INAPPROPRIATE_MATCHING
