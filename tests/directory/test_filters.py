"""Filter compilation: AD semantics, three-valued logic and index candidates."""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable

import pytest
from hypothesis import given
from hypothesis import strategies as st
from ldaptor.ldapfilter import parseFilter
from ldaptor.protocols import pureldap as p

from harness.core.adschema import DEFAULT_SCHEMA, AttributeType
from harness.core.dn import normalize_dn
from mockservers.directory.entry import Entry
from mockservers.directory.filters import CompiledFilter, FilterError, compile_filter

BASE = "DC=contoso,DC=com"
SCHEMA_NC = f"CN=Schema,CN=Configuration,{BASE}"
PERSON = f"CN=Person,{SCHEMA_NC}".encode()
USER_CLASSES = (b"top", b"person", b"organizationalPerson", b"user")
GUID = bytes(range(0x01, 0x11))  # includes bytes that are not valid UTF-8 on their own
OTHER_GUID = b"\xff" * 16


class FakeIndex:
    """Dict-based index over a fixed list of entries; records which methods were used."""

    def __init__(self, entries: Iterable[Entry]) -> None:
        self.entries = list(entries)
        self.calls: list[tuple[str, object, object]] = []
        self.by_key: dict[tuple[str, object], dict[int, Entry]] = {}
        self.by_ndn = {e.ndn: e for e in self.entries}
        for e in self.entries:
            for t in DEFAULT_SCHEMA:
                if t.equality_indexed:
                    for v in e.values(t):
                        self.by_key.setdefault((t.name, t.key(v)), {})[id(e)] = e

    def lookup(self, t: AttributeType, key: object) -> Collection[Entry]:
        assert t.equality_indexed
        self.calls.append(("lookup", t.name, key))
        return tuple(self.by_key.get((t.name, key), {}).values())

    def prefix(self, t: AttributeType, initial: str) -> Collection[Entry]:
        assert t.prefix_indexed
        self.calls.append(("prefix", t.name, initial))
        found: dict[int, Entry] = {}
        for (name, key), hits in self.by_key.items():
            if name == t.name and isinstance(key, str) and key.startswith(initial):
                found.update(hits)
        return tuple(found.values())

    def usn_range(self, low: int | None, high: int | None) -> Iterable[Entry]:
        self.calls.append(("usn_range", low, high))
        for e in self.entries:
            usn = int(e.attrs["uSNChanged"][0]) if "uSNChanged" in e.attrs else None
            if usn is not None and (low is None or usn >= low) and (high is None or usn <= high):
                yield e

    def get(self, ndn: str) -> Entry | None:
        self.calls.append(("get", ndn, None))
        return self.by_ndn.get(ndn)


def entry(rdn: str, **attrs: tuple[bytes, ...]) -> Entry:
    dn = f"CN={rdn},OU=Users,{BASE}"
    return Entry(dn, normalize_dn(dn), normalize_dn(f"OU=Users,{BASE}"), dict(attrs))


def user(rdn: str, sam: str, uac: int, usn: int, **more: tuple[bytes, ...]) -> Entry:
    return entry(
        rdn,
        objectClass=USER_CLASSES,
        objectCategory=(PERSON,),
        sAMAccountName=(sam.encode(),),
        userAccountControl=(str(uac).encode(),),
        uSNChanged=(str(usn).encode(),),
        whenCreated=(b"20240101000000.0Z",),
        **more,
    )


JSMITH = user(
    "John Smith",
    "jsmith",
    514,
    20450,
    objectGUID=(GUID,),
    proxyAddresses=(b"SMTP:John.Smith@contoso.com", b"smtp:js@contoso.co.uk"),
    mail=(b"John.Smith@contoso.com",),
    displayName=(b"John Smith",),
)
ADOE = user("Ann Doe", "adoe", 512, 9, objectGUID=(OTHER_GUID,), cn=("Müller".encode(),))
BWAYNE = user("Bruce Wayne", "bwayne", 66048, 10, description=(b"aba",))
CONTACT = entry(
    "Ext Contact",
    objectClass=(b"top", b"person", b"organizationalPerson", b"contact"),
    objectCategory=(PERSON,),
    uSNChanged=(b"11",),
    whenCreated=(b"20230615120000.0Z",),
)
COMPUTER = entry(
    "WS01",
    objectClass=(*USER_CLASSES, b"computer"),
    objectCategory=(f"CN=Computer,{SCHEMA_NC}".encode(),),
    sAMAccountName=(b"WS01$",),
    userAccountControl=(b"4096",),
    uSNChanged=(b"12",),
)
ALL = [JSMITH, ADOE, BWAYNE, CONTACT, COMPUTER]


def compiled(text: str | p.LDAPFilter) -> CompiledFilter:
    f = parseFilter(text) if isinstance(text, str) else text
    return compile_filter(f, DEFAULT_SCHEMA, SCHEMA_NC)


def hits(text: str | p.LDAPFilter, entries: Iterable[Entry] = ALL) -> list[str]:
    cf = compiled(text)
    return [e.dn.split(",")[0][3:] for e in entries if cf.matches(e)]


def cands(text: str, index: FakeIndex | None = None) -> list[Entry] | None:
    found = compiled(text).candidates(index or FakeIndex(ALL))
    return None if found is None else list(found)


# --- equality, approx, presence --------------------------------------------------------------


def test_equality_is_case_insensitive_on_multivalued_proxy_addresses():
    assert hits("(proxyAddresses=smtp:JOHN.SMITH@CONTOSO.COM)") == ["John Smith"]
    assert hits("(proxyAddresses=SMTP:js@Contoso.co.uk)") == ["John Smith"]
    assert hits("(proxyAddresses=smtp:nobody@contoso.com)") == []


def test_attribute_names_are_case_insensitive():
    assert hits("(SAMACCOUNTNAME=JSmith)") == ["John Smith"]


def test_binary_guid_equality_through_escaped_filter():
    escaped = "".join(f"\\{b:02x}" for b in GUID)
    assert hits(f"(objectGUID={escaped})") == ["John Smith"]
    assert hits("(objectGUID=" + "\\ff" * 16 + ")") == ["Ann Doe"]


def test_binary_guid_equality_from_wire_bytes():
    f = p.LDAPFilter_equalityMatch(
        attributeDesc=p.LDAPAttributeDescription(b"objectGUID"),
        assertionValue=p.LDAPAssertionValue(GUID),
    )
    assert hits(f) == ["John Smith"]


def test_escaped_utf8_and_literal_unicode_both_match():
    assert hits("(cn=M\\c3\\bcller)") == ["Ann Doe"]
    assert hits("(cn=MÜLLER)") == ["Ann Doe"]


def test_approx_match_is_equality():
    assert hits("(sAMAccountName~=ADOE)") == ["Ann Doe"]
    assert hits("(sAMAccountName~=ado)") == []


def test_assertion_that_does_not_parse_is_undefined():
    assert hits("(userAccountControl=abc)") == []
    assert hits("(!(userAccountControl=abc))") == []


def test_integer_equality_is_numeric():
    assert hits("(userAccountControl=0512)") == ["Ann Doe"]


def test_presence():
    assert hits("(objectClass=*)") == [e.dn.split(",")[0][3:] for e in ALL]
    assert len(hits("(distinguishedName=*)")) == len(ALL)  # derived, always present
    assert hits("(mail=*)") == ["John Smith"]
    assert hits("(!(userAccountControl=*))") == ["Ext Contact"]


def test_distinguished_name_equality_uses_normalised_dn():
    assert hits(f"(distinguishedName=cn=john smith, ou=USERS,{BASE.lower()})") == ["John Smith"]
    assert hits("(distinguishedName=not a dn)") == []


def test_empty_and_is_true_and_empty_or_is_false():
    assert len(hits(p.LDAPFilter_and([]))) == len(ALL)
    assert hits(p.LDAPFilter_or([])) == []
    assert len(hits(p.LDAPFilter_not(p.LDAPFilter_or([])))) == len(ALL)


# --- objectCategory --------------------------------------------------------------------------


def test_object_category_short_name_expands_to_schema_dn():
    assert hits("(objectCategory=person)") == [
        "John Smith",
        "Ann Doe",
        "Bruce Wayne",
        "Ext Contact",
    ]
    assert hits("(objectCategory=computer)") == ["WS01"]
    assert hits(f"(objectCategory=cn=person,{SCHEMA_NC.lower()})") == hits(
        "(objectCategory=Person)"
    )


def test_object_category_of_a_class_uses_its_default_category():
    # AD: (objectCategory=user) means the defaultObjectCategory of user, CN=Person.
    assert hits("(objectCategory=user)") == hits("(objectCategory=person)")


def test_person_user_idiom_with_disabled_bit():
    f = "(&(objectCategory=person)(objectClass=user)(userAccountControl:1.2.840.113556.1.4.803:=2))"
    assert hits(f) == ["John Smith"]


# --- bitwise matching rules ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rule", "value", "expected"),
    [
        ("803", "2", ["John Smith"]),  # ACCOUNTDISABLE
        ("804", "2", ["John Smith"]),
        ("803", "512", ["John Smith", "Ann Doe", "Bruce Wayne"]),
        ("803", "65536", ["Bruce Wayne"]),  # DONT_EXPIRE_PASSWORD
        ("803", "66050", []),
        ("804", "66050", ["John Smith", "Ann Doe", "Bruce Wayne"]),
        ("804", "4096", ["WS01"]),
        ("803", "two", []),
    ],
)
def test_bitwise_rules_on_user_account_control(rule, value, expected):
    assert hits(f"(userAccountControl:1.2.840.113556.1.4.{rule}:={value})") == expected


def test_negated_disabled_bit_keeps_entries_without_the_attribute():
    f = "(!(userAccountControl:1.2.840.113556.1.4.803:=2))"
    assert hits(f) == ["Ann Doe", "Bruce Wayne", "Ext Contact", "WS01"]


def test_bitwise_on_a_string_attribute_is_undefined():
    assert hits("(!(sAMAccountName:1.2.840.113556.1.4.803:=2))") == []


def test_extensible_without_rule_is_equality():
    assert hits("(sAMAccountName:=JSMITH)") == ["John Smith"]


def test_in_chain_rule_needs_the_directory():
    # The rule walks the directory's objects; compiled without one it is refused, not guessed.
    with pytest.raises(FilterError) as err:
        compiled("(memberOf:1.2.840.113556.1.4.1941:=CN=Admins,OU=Groups,DC=contoso,DC=com)")
    assert err.value.code == 53
    assert err.value.message == (
        "00000035: SvcErr: DSID-03152C30, problem 5003 (WILL_NOT_PERFORM), data 0\n"
    )


def test_dn_attributes_is_refused():
    with pytest.raises(FilterError) as err:
        compiled("(ou:dn:=Users)")
    assert err.value.code == 53
    assert "WILL_NOT_PERFORM" in err.value.message


def test_unknown_matching_rule_is_inappropriate_matching():
    with pytest.raises(FilterError) as err:
        compiled("(cn:2.5.13.2:=x)")
    assert err.value.code == 18
    assert err.value.message.startswith("00002024:")
    assert "(INAPPROPRIATE_MATCHING)" in err.value.message
    assert "2.5.13.2" in err.value.message


# --- ordering --------------------------------------------------------------------------------


def test_usn_ranges_compare_numerically():
    assert hits("(uSNChanged>=10)") == ["John Smith", "Bruce Wayne", "Ext Contact", "WS01"]
    assert hits("(uSNChanged<=9)") == ["Ann Doe"]
    assert hits("(&(uSNChanged>=10)(uSNChanged<=11))") == ["Bruce Wayne", "Ext Contact"]


def test_generalized_time_orders_as_text():
    assert hits("(whenCreated>=20240101000000.0Z)") == ["John Smith", "Ann Doe", "Bruce Wayne"]
    assert hits("(whenCreated<=20231231000000.0Z)") == ["Ext Contact"]


def test_string_ordering_uses_case_folded_text():
    assert hits("(sAMAccountName<=B)") == ["Ann Doe"]


# --- substrings ------------------------------------------------------------------------------


def test_substrings_initial_any_final():
    assert hits("(proxyAddresses=SMTP:john*)") == ["John Smith"]
    assert hits("(proxyAddresses=*@CONTOSO.CO.UK)") == ["John Smith"]
    assert hits("(displayName=jo*n*sm*h)") == ["John Smith"]
    assert hits("(sAMAccountName=*h*s*)") == []  # any pieces must appear in order


def test_substrings_do_not_overlap():
    assert hits("(description=ab*ba)") == []
    assert hits("(description=ab*a)") == ["Bruce Wayne"]


def test_substrings_on_dn_use_the_value_text():
    assert hits("(distinguishedName=cn=ann*ou=users*)") == ["Ann Doe"]
    assert hits("(objectCategory=*cn=computer*)") == ["WS01"]


def test_substrings_on_binary_compare_raw_bytes():
    assert hits("(objectGUID=\\01\\02*)") == ["John Smith"]
    assert hits("(objectGUID=*\\ff\\ff)") == ["Ann Doe"]


# --- unknown attributes and three-valued logic -----------------------------------------------


def test_unknown_attribute_is_undefined_not_an_error():
    assert hits("(fooBar=x)") == []
    assert hits("(!(fooBar=x))") == []
    assert hits("(!(fooBar=*))") == []
    assert hits("(|(fooBar=x)(sAMAccountName=jsmith))") == ["John Smith"]
    assert hits("(!(|(fooBar=x)(sAMAccountName=jsmith)))") == []


def test_not_of_and_with_a_false_child_is_true_despite_undefined():
    # AND(Undefined, FALSE) is FALSE, so its negation is TRUE.
    assert len(hits("(!(&(fooBar=x)(objectClass=nothing)))")) == len(ALL)
    # AND(Undefined, TRUE) is Undefined, and so is its negation.
    assert hits("(!(&(fooBar=x)(objectClass=user)))") == ["Ext Contact"]


# --- candidates ------------------------------------------------------------------------------


def test_indexed_equality_takes_candidates_from_the_index():
    index = FakeIndex(ALL)
    assert cands("(sAMAccountName=JSMITH)", index) == [JSMITH]
    assert index.calls == [("lookup", "sAMAccountName", "jsmith")]


def test_object_category_candidates_use_the_expanded_dn():
    index = FakeIndex(ALL)
    assert cands("(objectCategory=computer)", index) == [COMPUTER]
    assert index.calls == [("lookup", "objectCategory", normalize_dn(f"CN=Computer,{SCHEMA_NC}"))]


def test_dn_equality_candidates_come_from_get():
    index = FakeIndex(ALL)
    assert cands(f"(distinguishedName={ADOE.dn.upper()})", index) == [ADOE]
    assert index.calls[0][0] == "get"
    assert cands("(distinguishedName=CN=nobody,DC=x)") == []


def test_and_picks_the_smallest_candidate_set():
    index = FakeIndex(ALL)
    assert cands("(&(objectClass=user)(sAMAccountName=adoe)(description=x))", index) == [ADOE]
    assert len(index.calls) == 2  # both lookups asked, only one used


def test_and_prefers_lookups_over_ranges_and_merges_ranges():
    index = FakeIndex(ALL)
    assert cands("(&(uSNChanged>=1)(sAMAccountName=adoe))", index) == [ADOE]
    assert [c[0] for c in index.calls] == ["lookup"]
    index = FakeIndex(ALL)
    found = cands("(&(uSNChanged>=10)(uSNChanged<=11)(description=*))", index)
    assert found == [BWAYNE, CONTACT]
    assert index.calls == [("usn_range", 10, 11)]
    assert cands("(&(uSNChanged>=12)(uSNChanged<=11))") == []


def test_single_usn_bounds_become_ranges():
    index = FakeIndex(ALL)
    assert cands("(uSNChanged>=20000)", index) == [JSMITH]
    assert cands("(uSNChanged<=9)", index) == [ADOE]
    assert index.calls == [("usn_range", 20000, None), ("usn_range", None, 9)]


def test_or_of_indexed_children_is_the_union():
    found = cands("(|(sAMAccountName=jsmith)(objectCategory=person)(mail=john.smith@contoso.com))")
    assert found is not None
    assert sorted(e.dn for e in found) == sorted(e.dn for e in [JSMITH, ADOE, BWAYNE, CONTACT])


def test_or_with_an_unindexed_child_needs_a_scan():
    assert cands("(|(sAMAccountName=jsmith)(description=aba))") is None


@pytest.mark.parametrize(
    "text",
    [
        "(!(sAMAccountName=jsmith))",
        "(mail=*)",
        "(sAMAccountName=*smith)",  # no initial piece: nothing to look up
        "(description=ab*)",  # not indexed
        "(userAccountControl:1.2.840.113556.1.4.803:=2)",
        "(objectClass=*)",
    ],
)
def test_filters_without_index_support_need_a_scan(text):
    assert cands(text) is None


def test_an_initial_substring_on_an_indexed_text_attribute_is_a_prefix_lookup():
    index = FakeIndex(ALL)
    assert cands("(sAMAccountName=J*h*)", index) == [JSMITH]
    assert index.calls == [("prefix", "sAMAccountName", "j")]


def test_filters_that_are_never_true_have_no_candidates():
    assert cands("(fooBar=x)") == []
    assert cands("(&(description=aba)(userAccountControl=abc))") == []


# --- property: agreement with an independent reference evaluator -----------------------------

# name as spelled in filters -> (kind, canonical name); None: unknown to the schema
ATTRS = {
    "sAMAccountName": ("text", "sAMAccountName"),
    "PROXYADDRESSES": ("text", "proxyAddresses"),
    "description": ("text", "description"),
    "userAccountControl": ("int", "userAccountControl"),
    "uSNChanged": ("int", "uSNChanged"),
    "objectGUID": ("octets", "objectGUID"),
    "fooBar": None,
}
TEXT = st.text(alphabet="aAbBß", min_size=1, max_size=3)
INTS = st.sampled_from([0, 2, 9, 10, 11, 512, 514, 66048])
OCTETS = st.sampled_from([b"\x00", b"\xff", b"\x01\xff", b"A", b"a"])
RULES = {"803": "1.2.840.113556.1.4.803", "804": "1.2.840.113556.1.4.804"}


def _value_for(kind: str | None) -> st.SearchStrategy[bytes]:
    if kind == "int":
        return st.sampled_from([b"0", b"2", b"10", b"9", b"512", b"514", b"66048", b"x", b"-1"])
    if kind == "octets":
        return OCTETS
    return TEXT.map(str.encode)


@st.composite
def leaves(draw):
    name = draw(st.sampled_from(sorted(ATTRS)))
    kind = ATTRS[name][0] if ATTRS[name] else draw(st.sampled_from(["text", "int"]))
    op = draw(st.sampled_from(["eq", "approx", "ge", "le", "present", "sub", "bit"]))
    if op == "present":
        return ("present", draw(st.sampled_from([*ATTRS, "objectClass"])))
    if op == "sub":
        piece = OCTETS if kind == "octets" else TEXT.map(str.encode)
        initial = draw(st.none() | piece)
        middle = draw(st.lists(piece, max_size=2))
        final = draw(st.none() | piece)
        if initial is None and not middle and final is None:
            middle = [draw(piece)]
        return ("sub", name, initial, middle, final)
    if op == "bit":
        return ("bit", name, draw(st.sampled_from(sorted(RULES))), draw(_value_for("int")))
    return (op, name, draw(_value_for(kind)))


filters = st.recursive(
    leaves(),
    lambda kids: (
        st.tuples(st.sampled_from(["and", "or"]), st.lists(kids, max_size=3))
        | st.tuples(st.just("not"), kids)
    ),
    max_leaves=6,
)


@st.composite
def entries(draw):
    out = []
    for i in range(draw(st.integers(1, 6))):
        attrs: dict[str, tuple[bytes, ...]] = {"objectClass": (b"top", b"user")}
        for _, (kind, canon) in ((n, a) for n, a in ATTRS.items() if a):
            if draw(st.booleans()):
                single = canon != "proxyAddresses"
                size = 1 if single else draw(st.integers(1, 3))
                vals = draw(st.lists(_entry_value(kind), min_size=size, max_size=size))
                attrs[canon] = tuple(vals)
        dn = f"CN=e{i},OU=Users,{BASE}"
        out.append(Entry(dn, normalize_dn(dn), "", attrs))
    return out


def _entry_value(kind: str) -> st.SearchStrategy[bytes]:
    if kind == "int":
        return INTS.map(lambda n: str(n).encode())
    return OCTETS if kind == "octets" else TEXT.map(str.encode)


def to_ldap(f) -> p.LDAPFilter:
    op = f[0]
    if op in ("and", "or"):
        cls = p.LDAPFilter_and if op == "and" else p.LDAPFilter_or
        return cls([to_ldap(k) for k in f[1]])
    if op == "not":
        return p.LDAPFilter_not(to_ldap(f[1]))
    if op == "present":
        return p.LDAPFilter_present(f[1].encode())
    if op == "sub":
        _, name, initial, middle, final = f
        parts: list = [] if initial is None else [p.LDAPFilter_substrings_initial(initial)]
        parts += [p.LDAPFilter_substrings_any(m) for m in middle]
        parts += [] if final is None else [p.LDAPFilter_substrings_final(final)]
        return p.LDAPFilter_substrings(type=name.encode(), substrings=parts)
    if op == "bit":
        _, name, rule, value = f
        return p.LDAPFilter_extensibleMatch(
            matchingRule=RULES[rule], type=name.encode(), matchValue=value
        )
    cls = {
        "eq": p.LDAPFilter_equalityMatch,
        "approx": p.LDAPFilter_approxMatch,
        "ge": p.LDAPFilter_greaterOrEqual,
        "le": p.LDAPFilter_lessOrEqual,
    }[op]
    return cls(
        attributeDesc=p.LDAPAttributeDescription(f[1].encode()),
        assertionValue=p.LDAPAssertionValue(f[2]),
    )


def _comparable(kind: str, raw: bytes):
    """Reference comparison value, or None when the assertion is not valid for the kind."""
    if kind == "octets":
        return raw
    text = raw.decode()
    if kind == "int":
        return int(text) if re.fullmatch(r"-?\d+", text) else None
    return text.casefold()


def reference(f, e: Entry) -> bool | None:
    """RFC 4511 three-valued evaluation, written independently of the module under test."""
    op = f[0]
    if op == "and":
        results = [reference(k, e) for k in f[1]]
        return False if False in results else (None if None in results else True)
    if op == "or":
        results = [reference(k, e) for k in f[1]]
        return True if True in results else (None if None in results else False)
    if op == "not":
        r = reference(f[1], e)
        return None if r is None else not r
    name = f[1]
    if op == "present" and name == "objectClass":
        return True
    if ATTRS[name] is None:
        return None
    kind, canon = ATTRS[name]
    values = e.attrs.get(canon, ())
    if op == "present":
        return bool(values)
    if op == "sub":
        _, _, initial, middle, final = f
        if kind == "octets":
            return any(_bytes_sub(v, initial, middle, final) for v in values)
        pieces = [(x or b"").decode().casefold() for x in (initial, *middle, final)]
        pat = ".*".join(re.escape(x) for x in pieces)
        return any(re.fullmatch("(?s)" + pat, v.decode().casefold()) for v in values)
    if op == "bit":
        mask = _comparable("int", f[3])
        if kind != "int" or mask is None:
            return None
        nums = [int(v) for v in values]
        if f[2] == "803":
            return any(n & mask == mask for n in nums)
        return any(n & mask != 0 for n in nums)
    want = _comparable(kind, f[2])
    if want is None:
        return None
    have = [_comparable(kind, v) for v in values]
    if op in ("eq", "approx"):
        return want in have
    if op == "ge":
        return any(h >= want for h in have)
    return any(h <= want for h in have)


def _bytes_sub(v: bytes, initial, middle, final) -> bool:
    pat = b".*".join(re.escape(x or b"") for x in (initial, *middle, final))
    return re.fullmatch(b"(?s)" + pat, v) is not None


@given(filters, entries())
def test_matches_agrees_with_reference_and_candidates_cover_matches(f, ents):
    cf = compile_filter(to_ldap(f), DEFAULT_SCHEMA, SCHEMA_NC)
    matching = [e for e in ents if cf.matches(e)]
    assert matching == [e for e in ents if reference(f, e) is True]
    found = cf.candidates(FakeIndex(ents))
    if found is not None:
        ids = {id(e) for e in found}
        assert all(id(e) in ids for e in matching)
