from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.engine.expressions import ExpressionError, compile_expression

REC = {
    "Name": "  Ada Lovelace  ",
    "Mail": "Ada@Contoso.com",
    "Empty": "",
    "Addrs": ["SMTP:ada@contoso.com", "smtp:a@contoso.com", "x500:/o=X"],
    "None": [],
    "Hidden": True,
}


def ev(text: str, rec: dict[str, object] | None = None) -> object:
    return compile_expression(text)(REC if rec is None else rec)


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ('"plain"', "plain"),
        ("42", "42"),
        ("[Mail]", "Ada@Contoso.com"),
        ("[Missing]", None),
        ("[Hidden]", "True"),
        ("[ Mail ]", "Ada@Contoso.com"),
        ('Join("-", "a", [Mail])', "a-Ada@Contoso.com"),
        ('Join(";", [Addrs])', "SMTP:ada@contoso.com;smtp:a@contoso.com;x500:/o=X"),
        ('Join("", [Missing], "b", [None])', "b"),
        ('Append([Mail], "!")', "Ada@Contoso.com!"),
        ('Append([Missing], "!")', "!"),
        ("ToLower([Mail])", "ada@contoso.com"),
        ('ToLower([Mail], "tr-TR")', "ada@contoso.com"),
        ("ToUpper([Mail])", "ADA@CONTOSO.COM"),
        ("ToUpper([Missing])", None),
        ("Trim([Name])", "Ada Lovelace"),
        ("Left([Mail], 3)", "Ada"),
        ("Left([Mail], 99)", "Ada@Contoso.com"),
        ("Mid([Mail], 5, 7)", "Contoso"),
        ("Mid([Mail], 1, 3)", "Ada"),
        ("Item([Addrs], 1)", "SMTP:ada@contoso.com"),
        ("Item([Addrs], 3)", "x500:/o=X"),
        ("Item([Addrs], 4)", None),
        ("Item([Mail], 1)", "Ada@Contoso.com"),
        ('Replace([Mail], "Contoso", , , "Fabrikam", , )', "Ada@Fabrikam.com"),
        ('Replace([Mail], , "[aeiou]", , "_", , )', "Ad_@C_nt_s_.c_m"),
        ('Replace([Mail], , "\\\\.com$", , "\\\\1", , )', "Ada@Contoso\\1"),
        ('IIF(IsNullOrEmpty([Empty]), "none", [Empty])', "none"),
        ('IIF(IsNullOrEmpty([None]), "none", "some")', "none"),
        ('IIF(IsPresent([Mail]), "yes", "no")', "yes"),
        ('IIF(Not(IsPresent([Mail])), "yes", "no")', "no"),
        ('IIF(IsNull([Missing]), "null", "x")', "null"),
        ('IIF(IsNull([Empty]), "null", "x")', "x"),
        ('IIF([Mail] = "Ada@Contoso.com", "eq", "ne")', "eq"),
        ('IIF([Mail] = "ada@contoso.com", "eq", "ne")', "ne"),  # case-sensitive
        ('IIF([Mail] <> "x", "ne", "eq")', "ne"),
        ('IIF(Item([Addrs], 1) = "SMTP:ada@contoso.com", "p", "q")', "p"),
        ('"say \\"hi\\" \\\\ ok"', 'say "hi" \\ ok'),
    ],
)
def test_functions(text: str, want: object) -> None:
    assert ev(text) == want


def test_lists_map_through_string_functions() -> None:
    assert ev("ToUpper([Addrs])") == ["SMTP:ADA@CONTOSO.COM", "SMTP:A@CONTOSO.COM", "X500:/O=X"]
    assert ev('Replace([Addrs], "contoso", , , "fab", , )') == [
        "SMTP:ada@fab.com",
        "smtp:a@fab.com",
        "x500:/o=X",
    ]
    assert ev("Left([Addrs], 4)") == ["SMTP", "smtp", "x500"]


def test_nesting_and_docs_example() -> None:
    assert ev("ToLower(Mid(Item([Addrs], 1), 6, 100))") == "ada@contoso.com"
    text = 'IIF(IsPresent([Empty]), [Empty], Join(".", ToUpper(Left(Trim([Name]), 3)), "x"))'
    assert ev(text) == "ADA.x"


def test_compiled_expression_metadata() -> None:
    c = compile_expression('Join(",", [B], ToLower([A]), [B])')
    assert c.attributes == frozenset({"A", "B"})
    assert c.text == 'Join(",", [B], ToLower([A]), [B])'
    assert c({"A": "X", "B": "y"}) == "y,x,y"


@pytest.mark.parametrize(
    ("text", "column", "fragment"),
    [
        ("", 1, "empty expression"),
        ("   ", 1, "empty expression"),
        ('"abc', 1, "unterminated string"),
        ("ToLower([Mail]", 15, "expected ')'"),
        ("ToLower[Mail])", 8, "expected '('"),
        ("[Mail", 1, "unterminated attribute"),
        ("[]", 1, "empty attribute"),
        ("Frobnicate([Mail])", 1, "unknown function 'Frobnicate'"),
        ("tolower([Mail])", 1, "unknown function 'tolower'"),
        ("ToLower()", 1, "ToLower takes 1 to 2 arguments, got 0"),
        ("Trim([A], [B])", 1, "Trim takes 1 argument, got 2"),
        ("ToLower([A], IsPresent([A]))", 14, "argument 2 must be a value"),
        ('Join(",")', 1, "Join takes at least 2 arguments, got 1"),
        ('Replace([A], "a", "b")', 1, "Replace takes 7 arguments, got 3"),
        ("[A] [B]", 5, "unexpected '[B]' after the expression"),
        ('Trim([A]) "s"', 11, "unexpected '\"s\"'"),
        ("Trim([A]) @", 11, "unexpected character '@'"),
        ("Trim(, )", 1, "Trim takes 1 argument, got 2"),
        ("Left([A], )", 1, "Left: argument 2 is empty"),
        ("Left([A], [B])", 11, "numChars must be an integer constant"),
        ("Item([A], 0)", 11, "1-based"),
        ("Mid([A], 0, 2)", 10, "1-based"),
        ('IIF("x", "a", "b")', 5, "must be a condition"),
        ('IIF(IsPresent([A]), IsPresent([A]), "b")', 21, "must be a value"),
        ("IsPresent([A])", 1, "wrap it in IIF"),
        ('[A] = "x"', 5, "wrap it in IIF"),
        ('Replace([A], , , , "b", , )', 1, "exactly one of oldValue or regexPattern"),
        ('Replace([A], "a", , "g", "b", , )', 21, "regexGroupName is not supported"),
        ('Replace([A], "a", , , , , )', 1, "replacementValue are required"),
        ('Replace([A], , "(", , "b", , )', 16, "bad regexPattern"),
        ('Replace([A], , [P], , "b", , )', 16, "must be a string constant"),
        ('IIF(IsPresent([A]) = "x", "a", "b")', 5, "cannot compare a condition"),
    ],
)
def test_errors_carry_column(text: str, column: int, fragment: str) -> None:
    with pytest.raises(ExpressionError) as info:
        compile_expression(text)
    assert info.value.column == column
    assert fragment in str(info.value)
    assert str(info.value).startswith(f"column {column}: ")


# --- property: random nestings agree with a Python reference --------------------------------

_text = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)


def _quote(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


@st.composite
def _tree(draw: st.DrawFn, depth: int = 3) -> tuple[str, str]:
    """(expression text, expected value) over string constants and the [S] attribute."""
    choice = draw(st.sampled_from(["const", "attr", "lower", "upper", "trim", "join"]))
    if depth == 0 or choice == "const":
        s = draw(_text)
        return _quote(s), s
    if choice == "attr":
        return "[S]", SAMPLE
    if choice == "join":
        sep = draw(_text)
        parts = draw(st.lists(_tree(depth - 1), min_size=1, max_size=3))
        text = f"Join({_quote(sep)}, {', '.join(t for t, _ in parts)})"
        return text, sep.join(v for _, v in parts)
    inner_text, inner = draw(_tree(depth - 1))
    fn = {"lower": ("ToLower", str.lower), "upper": ("ToUpper", str.upper)}.get(
        choice, ("Trim", str.strip)
    )
    return f"{fn[0]}({inner_text})", fn[1](inner)


SAMPLE = " MiXeD  ÄÖß\t"


@given(_tree())
def test_random_nesting_matches_reference(case: tuple[str, str]) -> None:
    text, want = case
    assert compile_expression(text)({"S": SAMPLE}) == want
