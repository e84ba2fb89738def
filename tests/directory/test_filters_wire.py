"""Search filters over the wire, on the fake AD, on OpenLDAP slapd and on a Samba AD DC.

test_filters.py pins the fake's filter compiler on its own; here the same semantics (matching
by syntax, three-valued logic, substrings, ordering, AD's bitwise rules) are asked of both
servers through ldap3, over a handful of entries of this module's own below ``OU=Filter Lab``.
Where AD and slapd differ on purpose the case is marked with the difference, and so is a case
where Samba answers otherwise than the fake (tests/support/backends.py's SAMBA_DIFFERENCES).
"""

from __future__ import annotations

import pytest
from ldap3 import SUBTREE
from ldap3.utils.conv import escape_bytes

from tests.directory.ldap_clients import connect, is_ad
from tests.support.backends import SAMBA_DIFFERENCES

BASE = "DC=contoso,DC=com"
LAB = f"OU=Filter Lab,{BASE}"
SCHEMA_NC = f"CN=Schema,CN=Configuration,{BASE}"
PERSON = f"CN=Person,{SCHEMA_NC}"
USER = ["top", "person", "organizationalPerson", "user"]
GUID = bytes(range(0x01, 0x11))  # includes bytes that are not valid UTF-8 on their own
OTHER_GUID = b"\xff" * 16

ENTRIES = {
    "John Smith": (
        USER,
        {
            "objectCategory": PERSON,
            "sAMAccountName": "fl-jsmith",
            "userAccountControl": "514",
            "mS-DS-ConsistencyGuid": GUID,
            "proxyAddresses": ["SMTP:John.Smith@lab.contoso.com", "smtp:js@lab.contoso.co.uk"],
            "mail": "John.Smith@lab.contoso.com",
            "displayName": "John Smith",
        },
    ),
    "Anna Müller": (
        USER,
        {
            "objectCategory": PERSON,
            "sAMAccountName": "fl-amuller",
            "userAccountControl": "512",
            "mS-DS-ConsistencyGuid": OTHER_GUID,
        },
    ),
    "Bruce Wayne": (
        USER,
        {
            "objectCategory": PERSON,
            "sAMAccountName": "fl-bwayne",
            "userAccountControl": "66048",
            "description": "aba",
        },
    ),
    "Ext Contact": (
        ["top", "person", "organizationalPerson", "contact"],
        {"objectCategory": PERSON},
    ),
    "WS01": (
        [*USER, "computer"],
        {
            "objectCategory": f"CN=Computer,{SCHEMA_NC}",
            "sAMAccountName": "WS01$",
            "userAccountControl": "4096",
        },
    ),
}
ALL = set(ENTRIES)


@pytest.fixture(scope="module")
def lab(directory):
    """The lab entries, added once per module directory (this module's own)."""
    conn = connect(directory)
    assert conn.add(LAB, ["top", "organizationalUnit"]), conn.result
    for cn, (classes, attrs) in ENTRIES.items():
        assert conn.add(f"CN={cn},{LAB}", classes, attrs), (cn, conn.result)
    return connect(directory, "reader")


def hits(conn, text: str) -> set[str]:
    conn.search(LAB, text, SUBTREE, attributes=["cn", "ou"])
    assert conn.result["result"] == 0, (text, conn.result)
    return {
        (e["attributes"]["cn"] or e["attributes"]["ou"])[0]
        for e in conn.response
        if e["type"] == "searchResEntry"
    }


COMMON = [
    # equality: by the attribute's syntax, names in any case
    ("(proxyAddresses=smtp:JOHN.SMITH@LAB.CONTOSO.COM)", {"John Smith"}),
    ("(proxyAddresses=SMTP:js@Lab.Contoso.co.uk)", {"John Smith"}),
    ("(proxyAddresses=smtp:nobody@lab.contoso.com)", set()),
    ("(SAMACCOUNTNAME=FL-JSmith)", {"John Smith"}),
    ("(mS-DS-ConsistencyGuid=" + escape_bytes(GUID) + ")", {"John Smith"}),
    ("(mS-DS-ConsistencyGuid=" + "\\ff" * 16 + ")", {"Anna Müller"}),
    ("(mS-DS-ConsistencyGuid=" + escape_bytes(GUID.upper()[:15] + b"\x11") + ")", set()),
    ("(cn=Anna M\\c3\\bcller)", {"Anna Müller"}),  # escaped UTF-8
    ("(cn=ANNA MÜLLER)", {"Anna Müller"}),  # literal, other case
    ("(sAMAccountName:=FL-JSMITH)", {"John Smith"}),  # extensible, no rule: equality
    # presence
    ("(objectClass=*)", ALL | {"Filter Lab"}),
    ("(mail=*)", {"John Smith"}),
    ("(!(userAccountControl=*))", {"Ext Contact", "Filter Lab"}),
    # substrings
    ("(proxyAddresses=SMTP:john*)", {"John Smith"}),
    ("(proxyAddresses=*@LAB.CONTOSO.CO.UK)", {"John Smith"}),
    ("(displayName=jo*n*sm*h)", {"John Smith"}),
    ("(sAMAccountName=*h*s*)", set()),  # pieces must appear in order
    ("(description=ab*ba)", set()),  # pieces do not overlap
    ("(description=ab*a)", {"Bruce Wayne"}),
    # integers order and compare as numbers, strings as case-folded text
    ("(userAccountControl>=600)", {"Bruce Wayne", "WS01"}),
    ("(userAccountControl<=513)", {"Anna Müller"}),
    ("(&(userAccountControl>=513)(userAccountControl<=4096))", {"John Smith", "WS01"}),
    ("(sAMAccountName<=FL-B)", {"Anna Müller"}),
    # AD's bitwise rules (OpenLDAP implements them too)
    ("(userAccountControl:1.2.840.113556.1.4.803:=2)", {"John Smith"}),  # ACCOUNTDISABLE
    (
        "(userAccountControl:1.2.840.113556.1.4.803:=512)",
        {"John Smith", "Anna Müller", "Bruce Wayne"},
    ),
    ("(userAccountControl:1.2.840.113556.1.4.803:=66050)", set()),
    (
        "(userAccountControl:1.2.840.113556.1.4.804:=66050)",
        {"John Smith", "Anna Müller", "Bruce Wayne"},
    ),
    ("(userAccountControl:1.2.840.113556.1.4.804:=4096)", {"WS01"}),
    # NOT of a rule on an absent attribute: FALSE negated is TRUE
    (
        "(!(userAccountControl:1.2.840.113556.1.4.803:=2))",
        {"Anna Müller", "Bruce Wayne", "WS01", "Ext Contact", "Filter Lab"},
    ),
    (
        f"(&(objectCategory={PERSON})(objectClass=user))",
        {"John Smith", "Anna Müller", "Bruce Wayne"},
    ),
    # three-valued logic: an unknown attribute or a value that does not parse is Undefined
    ("(fooBar=x)", set()),
    ("(|(fooBar=x)(sAMAccountName=fl-jsmith))", {"John Smith"}),
    ("(!(&(fooBar=x)(sAMAccountName=nobody)))", ALL | {"Filter Lab"}),  # AND(Undefined, FALSE)
    ("(userAccountControl=abc)", set()),
]
# The NOT of an Undefined term is Undefined: Samba makes the term FALSE, so its NOT is TRUE.
UNDEFINED = [
    ("(!(fooBar=x))", set()),
    ("(!(fooBar=*))", set()),
    ("(!(|(fooBar=x)(sAMAccountName=fl-jsmith)))", set()),
    ("(!(&(fooBar=x)(objectClass=user)))", {"Ext Contact", "Filter Lab"}),
    ("(!(userAccountControl=abc))", set()),
]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        *(pytest.param(t, e, id=t) for t, e in COMMON),
        *(
            pytest.param(t, e, id=t, marks=pytest.mark.samba_differs("undefined filter terms"))
            for t, e in UNDEFINED
        ),
    ],
)
def test_filter(lab, text, expected):
    assert hits(lab, text) == expected


# (filter, fake AD's answer, slapd's answer, the difference): a set of names, or a result code.
DIFFERING = [
    (
        "(sAMAccountName~=FL-AMULLER)",
        {"Anna Müller"},  # AD: approximate match is equality
        {"Anna Müller", "Bruce Wayne", "John Smith"},  # slapd: by words, and "fl" is shared
        "approximate match",
    ),
    (
        "(objectCategory=person)",
        {"John Smith", "Anna Müller", "Bruce Wayne", "Ext Contact"},
        set(),  # not a DN: Undefined
        "objectCategory shorthand",
    ),
    (
        "(objectCategory=user)",  # AD: user's defaultObjectCategory, CN=Person
        {"John Smith", "Anna Müller", "Bruce Wayne", "Ext Contact"},
        set(),
        "objectCategory shorthand",
    ),
    (
        "(userAccountControl=0512)",
        {"Anna Müller"},
        set(),  # RFC 4517 integers have no leading zero: Undefined
        "integer assertions with leading zeros",
    ),
    (
        f"(distinguishedName=cn=john smith, ou=FILTER LAB,{BASE.lower()})",
        {"John Smith"},
        set(),  # slapd holds no distinguishedName values
        "distinguishedName attribute",
    ),
    (
        "(objectCategory=*cn=computer*)",
        {"WS01"},
        set(),  # DN syntax has no substrings rule: Undefined
        "substrings on DN and binary attributes",
    ),
    (
        "(mS-DS-ConsistencyGuid=\\01\\02*)",
        {"John Smith"},
        set(),
        "substrings on DN and binary attributes",
    ),
    (
        "(ou:dn:=Filter Lab)",
        53,
        ALL | {"Filter Lab"},  # every entry whose DN holds ou=Filter Lab
        "dn-attributes matching",
    ),
    (
        "(cn:2.5.13.5:=John Smith)",  # caseExactMatch
        18,  # AD: inappropriateMatching
        {"John Smith"},
        "standard matching rules in extensible filters",
    ),
    (
        "(cn:2.5.13.5:=john smith)",
        18,
        set(),
        "standard matching rules in extensible filters",
    ),
]


@pytest.mark.parametrize(
    ("text", "fake", "slapd"),
    [
        pytest.param(
            text,
            fake,
            slapd,
            id=text,
            marks=[
                pytest.mark.ad_differs(difference),
                # The same cases are where Samba, too, answers otherwise (not always as slapd).
                *(
                    [pytest.mark.samba_differs(difference)]
                    if difference in SAMBA_DIFFERENCES
                    else []
                ),
            ],
        )
        for text, fake, slapd, difference in DIFFERING
    ],
)
def test_filter_where_ad_and_slapd_differ(directory, lab, text, fake, slapd):
    expected = fake if is_ad(directory) else slapd
    if isinstance(expected, int):
        lab.search(LAB, text, SUBTREE, attributes=["cn"])
        assert lab.result["result"] == expected, lab.result
        assert lab.entries == []
    else:
        assert hits(lab, text) == expected
