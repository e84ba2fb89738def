"""Distinguished-name helpers (RFC 4514) shared by the generator and the directory."""

from __future__ import annotations

import re

# Characters escaped anywhere in a value. RFC 4514 requires '"+,;<>\' and allows an escaped
# '=' or '#' anywhere; we escape those too because common clients (ldap3's DN check, used on
# every operation by default) reject them unescaped, and AD itself escapes '='.
_SPECIAL = frozenset('"+,;<>\\=#')
_NEEDS_ESCAPE = re.compile(r'["+,;<>\\=#\x00]|^ | $')


def escape_rdn_value(value: str) -> str:
    """Escape an attribute value for use in a DN, as RFC 4514 section 2.4 requires.

    A leading or trailing space is escaped; NUL becomes ``\\00``.
    Non-ASCII characters are kept as they are (AD does the same).
    """
    if not _NEEDS_ESCAPE.search(value):
        return value
    out: list[str] = []
    last = len(value) - 1
    for i, ch in enumerate(value):
        if ch in _SPECIAL:
            out.append("\\" + ch)
        elif ch == "\x00":
            out.append("\\00")
        elif ch == " " and (i == 0 or i == last):
            out.append("\\" + ch)
        else:
            out.append(ch)
    return "".join(out)


def needs_escaping(value: str) -> bool:
    """True when `escape_rdn_value` would change `value`."""
    return escape_rdn_value(value) != value


def rdn(attribute: str, value: str) -> str:
    """One RDN, ``attribute=escaped value``."""
    return f"{attribute}={escape_rdn_value(value)}"
