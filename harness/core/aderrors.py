"""AD's diagnostic texts for the refusals that the fake AD answers and the engine predicts.

The fake directory (`mockservers.directory.errors`) raises these; the engine's dry-run preview
(`harness.engine.preview`) names the same failures without writing. Both read the text from
here, so a preview says what AD would answer in the words AD uses, and the engine still never
imports the fake (tests/test_layers.py).
"""

from __future__ import annotations

from collections.abc import Iterable

from harness.core.adschema import AttributeType, InvalidValue
from harness.core.ldapresult import LdapError, Result


def insufficient_access() -> LdapError:
    return LdapError(
        Result.INSUFFICIENT_ACCESS_RIGHTS,
        "00002098: SecErr: DSID-03150F93, problem 4003 (INSUFF_ACCESS_RIGHTS), data 0\n",
    )


def attribute_error(code: Result, win32: str, problem: str, attribute: str) -> LdapError:
    """An AtrErr: AD names the Win32 code, the problem and the attribute it refused."""
    return LdapError(
        code,
        f"{win32}: AtrErr: DSID-03151904, #1:\n\t0: {win32}: DSID-03151904, problem {problem}, "
        f"data 0, Att ({attribute})\n",
    )


def constraint(attribute: str) -> LdapError:
    """A value over rangeUpper, two values for a single-valued attribute, a system attribute."""
    return attribute_error(
        Result.CONSTRAINT_VIOLATION, "00002082", "1005 (CONSTRAINT_ATT_TYPE)", attribute
    )


def invalid_syntax(attribute: str) -> LdapError:
    return LdapError(
        Result.INVALID_ATTRIBUTE_SYNTAX,
        "00000057: LdapErr: DSID-0C090D8A, comment: Error in attribute conversion operation, "
        f"data 0, v4563 ({attribute})",
    )


def value_refusal(t: AttributeType, values: Iterable[bytes]) -> LdapError | None:
    """What AD answers to writing `values` to `t` on syntax and size, checked value by value
    as AD does (the first bad value decides); None when every value fits."""
    for v in values:
        try:
            t.key(v)
        except InvalidValue:
            return invalid_syntax(t.name)
        if t.too_long(v):
            return constraint(t.name)
    return None
