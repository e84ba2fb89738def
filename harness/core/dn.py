"""Distinguished-name helpers (RFC 4514) shared by the generator and the directory."""

from __future__ import annotations

import re
from functools import lru_cache

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


class InvalidDN(ValueError):
    """A string that is not a valid RFC 4514 distinguished name."""


_HEX = "0123456789abcdefABCDEF"
_ATTR_TYPE = re.compile(r"^(?:[A-Za-z][A-Za-z0-9-]*|\d+(?:\.\d+)*)$")

RDN = tuple[tuple[str, str], ...]


def parse_dn(dn: str) -> list[RDN]:
    """Split a DN into RDNs of (attribute type, unescaped value) pairs, left to right.

    Accepts RFC 4514 strings (``\\,`` and ``\\2C`` escapes, multi-valued RDNs with ``+``,
    spaces around separators). The empty string is the root DSE's DN and gives ``[]``.
    """
    if not dn.strip():
        return []
    rdns: list[RDN] = []
    current: list[tuple[str, str]] = []
    i, n = 0, len(dn)
    while True:
        # attribute type
        eq = dn.find("=", i)
        if eq < 0:
            raise InvalidDN(f"missing '=' in {dn!r}")
        attr = dn[i:eq].strip()
        if not _ATTR_TYPE.match(attr):
            raise InvalidDN(f"invalid attribute type {attr!r} in {dn!r}")
        i = eq + 1
        # value
        buf = bytearray()
        pending_space = 0  # unescaped trailing spaces are not part of the value
        while i < n and dn[i] == " ":
            i += 1
        while i < n:
            ch = dn[i]
            if ch == "\\":
                if i + 1 >= n:
                    raise InvalidDN(f"dangling escape at the end of {dn!r}")
                nxt = dn[i + 1]
                if nxt in _HEX and i + 2 < n and dn[i + 2] in _HEX:
                    buf += b" " * pending_space
                    buf.append(int(dn[i + 1 : i + 3], 16))
                    i += 3
                else:
                    buf += b" " * pending_space
                    buf += nxt.encode("utf-8")
                    i += 2
                pending_space = 0
            elif ch in ",+;":
                break
            elif ch == " ":
                pending_space += 1
                i += 1
            elif ch in '"<>':
                raise InvalidDN(f"unescaped {ch!r} in {dn!r}")
            else:
                buf += b" " * pending_space
                pending_space = 0
                buf += ch.encode("utf-8")
                i += 1
        try:
            value = buf.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidDN(f"escaped bytes are not UTF-8 in {dn!r}") from None
        current.append((attr, value))
        if i >= n:
            rdns.append(tuple(current))
            return rdns
        sep = dn[i]
        i += 1
        if sep != "+":
            rdns.append(tuple(current))
            current = []
        if i >= n:
            raise InvalidDN(f"{dn!r} ends with a separator")


def format_dn(rdns: list[RDN]) -> str:
    """The RFC 4514 string of parsed RDNs."""
    return ",".join("+".join(rdn(a, v) for a, v in r) for r in rdns)


def normalize_rdns(rdns: list[RDN]) -> str:
    """Case-insensitive comparison key: types lower-cased, values case-folded, one spelling."""
    return ",".join(
        "+".join(sorted(f"{a.lower()}={escape_rdn_value(v.casefold())}" for a, v in r))
        for r in rdns
    )


@lru_cache(maxsize=1 << 16)
def normalize_dn(dn: str) -> str:
    """Comparison key of a DN string (raises InvalidDN). Cached: the same DNs recur (parents,
    objectCategory, homeMDB, the entries a client works on)."""
    return normalize_rdns(parse_dn(dn))


def split_rdn(dn: str) -> tuple[str, str]:
    """(first RDN, rest) of a DN string, honouring escapes: ``CN=Smith\\, J,OU=x`` splits once."""
    i, n = 0, len(dn)
    while i < n:
        ch = dn[i]
        if ch == "\\":
            i += 2
            continue
        if ch == ",":
            return dn[:i], dn[i + 1 :].lstrip()
        i += 1
    return dn, ""
