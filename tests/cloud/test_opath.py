"""OPATH filters: syntax, errors with positions, and evaluation against a reference model."""

from __future__ import annotations

import random
from dataclasses import dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mockservers.cloud.opath import (
    And,
    Comparison,
    Node,
    Not,
    OpathError,
    Or,
    Property,
    compile_filter,
    parse,
)


@dataclass
class Rec:
    name: str | None
    kind: str | None
    flag: bool
    tags: tuple[str, ...]


PROPS: dict[str, Property[Rec]] = {
    "name": Property("Name", "text", lambda r: r.name),
    "kind": Property("Kind", "text", lambda r: r.kind, "Kinds", frozenset({"alpha", "beta"})),
    "flag": Property("Flag", "bool", lambda r: r.flag),
    "tags": Property("Tags", "multi", lambda r: r.tags),
}


def matches(text: str, rec: Rec) -> bool:
    return compile_filter(text, PROPS)(rec)


# ---------------------------------------------------------------------- syntax
def test_the_documented_example_parses():
    node = parse("IsExchangeCloudManaged -eq $true -and RecipientTypeDetails -eq 'UserMailbox'")
    assert node == And(
        Comparison("IsExchangeCloudManaged", "eq", True),
        Comparison("RecipientTypeDetails", "eq", "UserMailbox"),
    )


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("Name -eq 'O''Brien'", "O'Brien"),
        ('Name -eq "say ""hi"""', 'say "hi"'),
        ('Name -eq "it\'s"', "it's"),
        ("Name -eq bare", "bare"),
        ("Name -eq $NULL", None),
        ("Name -EQ $False", False),
        ("{Name -eq 'x'}", "x"),
        ("  { Name -eq 'x' }  ", "x"),
        ("Name -eq '{x}'", "{x}"),
    ],
)
def test_values_quotes_and_braces(text, value):
    assert parse(text) == Comparison("Name", "eq", value)


def test_and_binds_tighter_than_or_and_not_takes_the_next_comparison():
    a, b, c = (Comparison(p, "eq", "1") for p in "abc")
    assert parse("a -eq 1 -or b -eq 1 -and c -eq 1") == Or(a, And(b, c))
    assert parse("(a -eq 1 -or b -eq 1) -and c -eq 1") == And(Or(a, b), c)
    assert parse("-not a -eq 1 -and b -eq 1") == And(Not(a), b)
    assert parse("-NOT (a -eq 1 -and b -eq 1)") == Not(And(a, b))
    assert parse("-not -not a -eq 1") == Not(Not(a))


@pytest.mark.parametrize(
    ("text", "position"),
    [
        ("", 1),
        ("Name", 5),
        ("Name -eq", 9),
        ("Name -lt 'x'", 6),
        ("Name -eq 'x", 10),
        ("(Name -eq 'x'", 14),
        ("Name -eq 'x')", 13),
        ("Name -eq 'x' -and", 18),
        ("Name -eq 'x' Name -eq 'y'", 14),
        ("-and Name -eq 'x'", 1),
        ("Name -eq $user", 10),
        ("Name -eq -or", 10),
    ],
)
def test_syntax_errors_name_the_position(text, position):
    with pytest.raises(OpathError) as err:
        parse(text)
    assert err.value.reason.startswith("Invalid filter syntax.")
    assert err.value.position == position


def test_binding_message_reads_like_exchange():
    with pytest.raises(OpathError) as err:
        parse("Alias -eq")
    assert err.value.binding_message("Alias -eq") == (
        'Cannot bind parameter \'Filter\' to the target. Exception setting "Filter": "Invalid '
        "filter syntax. For a description of the filter parameter syntax see the command help.\n"
        '"Alias -eq" at position 10."'
    )


@pytest.mark.parametrize(
    ("text", "reason", "position"),
    [
        ("Nope -eq 'x'", '"Nope" is not a recognized filterable property.', 1),
        ("Name -eq 1 -and Flag -eq 'maybe'", 'The value "maybe" could not be converted', 26),
        ("Kind -eq 'gamma'", 'The value "gamma" could not be converted to type Kinds.', 10),
        ("Flag -like 'T*'", 'The "-like" operator can\'t be used with property "Flag"', 1),
    ],
)
def test_binding_errors(text, reason, position):
    with pytest.raises(OpathError) as err:
        compile_filter(text, PROPS)
    assert err.value.reason.startswith(reason)
    assert err.value.position == position


# ---------------------------------------------------------------------- semantics
REC = Rec(name="Ann Lee", kind="Alpha", flag=True, tags=("x", "Yy"))
BLANK = Rec(name=None, kind=None, flag=False, tags=())


@pytest.mark.parametrize(
    ("text", "rec", "expected"),
    [
        ("name -eq 'ann lee'", REC, True),  # property names and values ignore case
        ("Name -ne 'Ann Lee'", REC, False),
        ("Name -like 'ann*'", REC, True),
        ("Name -like '*LEE'", REC, True),
        ("Name -like 'a*n*e'", REC, True),
        ("Name -like 'Ann'", REC, False),
        ("Name -notlike '*x*'", REC, True),
        ("Name -eq $null", BLANK, True),
        ("Name -eq ''", BLANK, True),
        ("Name -ne $null", REC, True),
        ("Flag -eq $true", REC, True),
        ("Flag -eq 'false'", BLANK, True),
        ("Flag -eq $null", REC, False),
        ("Flag -ne $null", BLANK, True),
        ("Kind -eq 'ALPHA'", REC, True),
        ("Kind -like 'al*'", REC, True),
        ("Tags -eq 'yy'", REC, True),
        ("Tags -ne 'x'", REC, False),
        ("Tags -like 'y*'", REC, True),
        ("Tags -eq $null", BLANK, True),
        ("Tags -ne $null", REC, True),
        ("Tags -like '*'", BLANK, False),
        ("Name -eq 'x' -or Tags -eq 'x' -and Flag -eq $false", REC, False),
        ("(Name -eq 'x' -or Tags -eq 'x') -and Flag -eq $true", REC, True),
    ],
)
def test_comparisons(text, rec, expected):
    assert matches(text, rec) is expected


# ---------------------------------------------------------------------- reference model
WORDS = ["a", "ab", "B", "a b", "o'b", 'q"r', "", "alpha", "Beta", "-x", "$y"]
PATTERNS = ["*", "a*", "*b", "a*b", "*a*", "A", "o'*", "**"]


@st.composite
def comparisons(draw: st.DrawFn) -> Comparison:
    prop = draw(st.sampled_from(["Name", "Kind", "Flag", "Tags"]))
    if prop == "Flag":
        op = draw(st.sampled_from(["eq", "ne"]))
        value = draw(st.sampled_from([True, False, None, "true", "FALSE"]))
        return Comparison(prop, op, value)
    op = draw(st.sampled_from(["eq", "ne", "like", "notlike"]))
    if op in ("like", "notlike"):
        value = draw(st.sampled_from([*PATTERNS, *WORDS, None]))
    elif prop == "Kind":
        value = draw(st.sampled_from(["alpha", "BETA", "Alpha", None, ""]))
    else:
        value = draw(st.sampled_from([*WORDS, None]))
    return Comparison(prop, op, value)


trees = st.recursive(
    comparisons(),
    lambda inner: st.one_of(
        st.builds(And, inner, inner), st.builds(Or, inner, inner), st.builds(Not, inner)
    ),
    max_leaves=8,
)
records = st.builds(
    Rec,
    name=st.sampled_from([*WORDS, None, "AB", "a  b"]),
    kind=st.sampled_from(["alpha", "beta", "Beta", None]),
    flag=st.booleans(),
    tags=st.lists(st.sampled_from([*WORDS, "A*B"]), max_size=3, unique=True).map(tuple),
)


def wildcard(pattern: str, s: str) -> bool:
    """`*`-only glob by greedy leftmost search (independent of the module's regex)."""
    parts = pattern.split("*")
    if len(parts) == 1:
        return s == pattern
    if not s.startswith(parts[0]):
        return False
    pos = len(parts[0])
    for middle in parts[1:-1]:
        found = s.find(middle, pos)
        if found < 0:
            return False
        pos = found + len(middle)
    return len(s) - pos >= len(parts[-1]) and s.endswith(parts[-1])


def reference(node: Node, r: Rec) -> bool:
    if isinstance(node, And):
        return reference(node.left, r) and reference(node.right, r)
    if isinstance(node, Or):
        return reference(node.left, r) or reference(node.right, r)
    if isinstance(node, Not):
        return not reference(node.operand, r)
    negate = node.op in ("ne", "notlike")
    if node.prop == "Flag":
        want = node.value if not isinstance(node.value, str) else node.value.lower() == "true"
        return (r.flag == want and want is not None) != negate
    want = "" if node.value is None else str(node.value).lower()
    like = node.op in ("like", "notlike")

    def same(v: str) -> bool:
        return wildcard(want, v.lower()) if like else v.lower() == want

    if node.prop == "Tags":
        hit = not r.tags if want == "" else any(same(t) for t in r.tags)
    else:
        hit = same((r.name if node.prop == "Name" else r.kind) or "")
    return hit != negate


def render(node: Node, rnd: random.Random, parent: int = 0) -> str:
    """Filter text for a tree: random spelling, parentheses only where precedence needs them."""
    level = {Or: 1, And: 2, Not: 3}.get(type(node), 4)
    if isinstance(node, And | Or):
        op = rnd.choice(["-and", "-AND", "-And"] if isinstance(node, And) else ["-or", "-OR"])
        text = f"{render(node.left, rnd, level)} {op} {render(node.right, rnd, level + 1)}"
    elif isinstance(node, Not):
        text = f"{rnd.choice(['-not', '-NOT'])} {render(node.operand, rnd, 3)}"
    else:
        prop = rnd.choice([node.prop, node.prop.upper(), node.prop.lower()])
        text = f"{prop} -{rnd.choice([node.op, node.op.upper()])} {literal(node.value, rnd)}"
    if level < parent or rnd.random() < 0.2:
        text = f"({rnd.choice(['', ' '])}{text}{rnd.choice(['', '  '])})"
    return text


def literal(value: str | bool | None, rnd: random.Random) -> str:
    if value is None or isinstance(value, bool):
        word = {None: "null", True: "true", False: "false"}[value]
        return "$" + rnd.choice([word, word.upper(), word.title()])
    if value.isalnum() and rnd.random() < 0.3:
        return value  # a bare word
    quote = rnd.choice(["'", '"'])
    return quote + value.replace(quote, quote * 2) + quote


@given(trees, st.lists(records, min_size=1, max_size=6), st.randoms(use_true_random=False))
def test_filters_evaluate_like_the_reference(tree, recs, rnd):
    text = render(tree, rnd)
    if rnd.random() < 0.2:
        text = "{" + text + "}"
    predicate = compile_filter(text, PROPS)
    assert [predicate(r) for r in recs] == [reference(tree, r) for r in recs], text


@given(st.text(alphabet="ab()-'\"$ {}eqnotlikd", max_size=30))
def test_garbage_is_rejected_with_opath_errors_only(text):
    try:
        compile_filter(text, PROPS)
    except OpathError as e:
        assert 1 <= e.position <= len(text) + 1
