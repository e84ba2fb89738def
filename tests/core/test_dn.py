from hypothesis import given
from hypothesis import strategies as st
from ldap3.utils.dn import parse_dn
from ldaptor.protocols.ldap.distinguishedname import DistinguishedName

from harness.core.dn import escape_rdn_value, needs_escaping, rdn


def test_escapes_rfc4514_specials():
    assert escape_rdn_value("Smith, John") == "Smith\\, John"
    assert escape_rdn_value("#Helpdesk") == "\\#Helpdesk"
    assert escape_rdn_value(" Reception") == "\\ Reception"
    assert escape_rdn_value("Trailing ") == "Trailing\\ "
    assert escape_rdn_value('a+b"c;d<e>f=g\\h') == 'a\\+b\\"c\\;d\\<e\\>f\\=g\\\\h'
    assert escape_rdn_value("Room #3") == "Room \\#3"
    assert escape_rdn_value("Zürich") == "Zürich"
    assert not needs_escaping("John Smith")


names = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc"))
    | st.sampled_from(list(' #,+"\\<>;=')),
    min_size=1,
    max_size=30,
)


@given(names)
def test_escaped_values_parse_back_with_independent_parsers(value):
    dn = f"{rdn('CN', value)},OU=Users,DC=contoso,DC=com"
    parsed = parse_dn(dn, escape=False, strip=False)  # ldap3 validates the escaping
    assert [p[0] for p in parsed] == ["CN", "OU", "DC", "DC"]
    first = DistinguishedName(dn).split()[0]  # ldaptor unescapes
    assert first.split()[0].value == value
