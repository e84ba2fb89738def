"""Templates and text LDAP filters, the two small languages inside a scenario."""

from __future__ import annotations

import pytest

from harness.engine.ldapwire import all_of, equal, present
from harness.scenario.ldapfilter import FilterSyntaxError, escape_value, parse_filter
from harness.scenario.templates import Template, TemplateError


def test_template_fields_repeats_and_braces() -> None:
    t = Template.parse("{alias}-{index} {{x}} {z*3}@{domain}")
    assert t.fields == {"alias", "index", "domain", "z*3"}
    assert t.render({"alias": "jo", "index": "2", "domain": "c.com"}) == "jo-2 {x} zzz@c.com"
    assert Template.parse("{x*1024}").render({}) == "x" * 1024


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("{nope}", "unknown template field"),
        ("a { b", "stray '{'"),
        ("}", "stray '}'"),
        ("{x*0}", "1 to"),
    ],
)
def test_bad_templates(text: str, fragment: str) -> None:
    with pytest.raises(TemplateError, match=fragment):
        Template.parse(text)


def test_a_field_without_a_value_is_an_error() -> None:
    with pytest.raises(TemplateError, match=r"\{dn\} has no value"):
        Template.parse("{dn}").render({"dn": None})


def test_values_are_escaped_for_filters() -> None:
    t = Template.parse("(cn={alias})")
    assert t.render({"alias": "a*(b)\\"}, escape_value) == r"(cn=a\2a\28b\29\5c)"


def test_simple_filters_encode_as_the_engine_builds_them() -> None:
    assert parse_filter("(mail=a@b.c)").ber == equal("mail", "a@b.c")
    assert parse_filter("(mail=*)").ber == present("mail")
    both = all_of(equal("objectClass", "user"), equal("mail", "x"))
    assert parse_filter(" (&(objectClass=user)(mail=x)) ").ber == both
    assert parse_filter(r"(cn=a\2ab)").ber == equal("cn", "a*b")
    assert parse_filter("(cn=Jürgen)").ber == equal("cn", "Jürgen")


def test_other_filter_forms_parse_and_name_their_attributes() -> None:
    rule = "1.2.840.113556.1.4.803"
    text = f"(|(!(cn=a*b*c))(uSNChanged>=5)(sn<=x)(sn~=y)(userAccountControl:{rule}:=2))"
    parsed = parse_filter(text)
    assert parsed.attributes == {"cn", "uSNChanged", "sn", "userAccountControl"}
    assert parsed.ber[0] == 0xA1


@pytest.mark.parametrize(
    "text", ["mail=x", "(mail=x", "(mail=x))", "(&)", "(=x)", "(mail=a(b)", r"(cn=\zz)"]
)
def test_malformed_filters(text: str) -> None:
    with pytest.raises(FilterSyntaxError):
        parse_filter(text)
