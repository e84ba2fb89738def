"""LDAP search filters as text (RFC 4515), encoded as the BER that `LdapConnection.search` sends.

The engine builds its filters from values (`harness.engine.ldapwire`); a scenario's
line-of-business search is written as text, the way an application's configuration holds it:
``(&(objectClass=user)(proxyAddresses=smtp:jane@contoso.com))``. Supported: and, or, not,
equality, presence, substrings, ``>=``, ``<=``, ``~=`` and extensible matches
(``(userAccountControl:1.2.840.113556.1.4.803:=2)``), with ``\\xx`` escapes in values;
white space between the parts of a filter is ignored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from harness.core.ber import boolean, octets, sequence, tlv
from harness.engine.ldapwire import all_of, any_of, equal, present

_ATTR = re.compile(r"[A-Za-z][A-Za-z0-9-]*(?:;[A-Za-z0-9-]+)*|[0-9]+(?:\.[0-9]+)+")
_RULE = re.compile(r"[0-9]+(?:\.[0-9]+)+|[A-Za-z][A-Za-z0-9-]*")
_ESCAPES = {"\\": r"\5c", "*": r"\2a", "(": r"\28", ")": r"\29", "\0": r"\00"}


class FilterSyntaxError(ValueError):
    """Text that is not an RFC 4515 filter; the message says where."""


@dataclass(frozen=True, slots=True)
class ParsedFilter:
    ber: bytes
    attributes: frozenset[str]  # attribute descriptions named, as written


def escape_value(value: str) -> str:
    """`value` escaped for use inside a filter (RFC 4515 section 3)."""
    return "".join(_ESCAPES.get(c, c) for c in value)


def parse_filter(text: str) -> ParsedFilter:
    """Parse one filter; raises FilterSyntaxError."""
    p = _Parser(text.strip())
    ber = p.filter()
    if p.pos != len(p.text):
        p.fail("text after the end of the filter")
    return ParsedFilter(ber, frozenset(p.attributes))


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.attributes: set[str] = set()

    def fail(self, message: str) -> None:
        raise FilterSyntaxError(f"{message} at column {self.pos + 1} of {self.text!r}")

    def expect(self, char: str) -> None:
        if self.text[self.pos : self.pos + 1] != char:
            self.fail(f"expected {char!r}")
        self.pos += 1

    def space(self) -> None:
        # Not in RFC 4515 (the filter is sent as BER, so the server never sees it), but a
        # filter kept in a YAML file is easier to read wrapped between its parts.
        while self.pos < len(self.text) and self.text[self.pos] in " \t\r\n":
            self.pos += 1

    def filter(self) -> bytes:
        self.space()
        self.expect("(")
        c = self.text[self.pos : self.pos + 1]
        if c in ("&", "|"):
            self.pos += 1
            parts = []
            self.space()
            while self.text[self.pos : self.pos + 1] == "(":
                parts.append(self.filter())
                self.space()
            if not parts:
                self.fail(f"{c} needs at least one filter")
            out = all_of(*parts) if c == "&" else any_of(*parts)
        elif c == "!":
            self.pos += 1
            out = tlv(0xA2, self.filter())
        else:
            out = self.item()
        self.expect(")")
        self.space()
        return out

    def item(self) -> bytes:
        end = self.text.find(")", self.pos)
        if end < 0:
            self.fail("unclosed '('")
        body = self.text[self.pos : end]
        m = re.match(r"([^=~<>:]*)(:dn)?(?::([^:=]+))?:=|([^=~<>]*)(~=|>=|<=|=)", body)
        if m is None:
            self.fail("expected attribute=value")
            raise AssertionError  # unreachable: fail raises
        value_text = body[m.end() :]
        if m.group(4) is None:  # extensible match
            attr, dn, rule = m.group(1), m.group(2) is not None, m.group(3)
            if not attr and not rule:
                self.fail("an extensible match needs an attribute or a matching rule")
            if rule is not None and not _RULE.fullmatch(rule):
                self.fail(f"bad matching rule {rule!r}")
            parts = b""
            if rule is not None:
                parts += tlv(0x81, rule.encode("ascii"))
            if attr:
                parts += tlv(0x82, self.attribute(attr).encode("ascii"))
            parts += tlv(0x83, self.value(value_text))
            if dn:
                parts += tlv(0x84, boolean(True)[2:])
            self.pos = end
            return tlv(0xA9, parts)
        attr, op = self.attribute(m.group(4)), m.group(5)
        self.pos = end
        if op == "=" and value_text == "*":
            return present(attr)
        if op == "=" and _unescaped_star(value_text):
            return self.substrings(attr, value_text)
        value = self.value(value_text)
        if op == "=":
            return equal(attr, value)
        tag = {">=": 0xA5, "<=": 0xA6, "~=": 0xA8}[op]
        return sequence(octets(attr.encode("ascii")), octets(value), tag=tag)

    def attribute(self, name: str) -> str:
        if not _ATTR.fullmatch(name):
            self.fail(f"bad attribute description {name!r}")
        self.attributes.add(name)
        return name

    def substrings(self, attr: str, text: str) -> bytes:
        pieces = _split_stars(text)
        parts = b""
        for i, piece in enumerate(pieces):
            if not piece:
                continue
            tag = 0x80 if i == 0 else 0x82 if i == len(pieces) - 1 else 0x81
            parts += tlv(tag, self.value(piece))
        return sequence(octets(attr.encode("ascii")), sequence(parts), tag=0xA4)

    def value(self, text: str) -> bytes:
        out = bytearray()
        i = 0
        while i < len(text):
            c = text[i]
            if c == "\\":
                pair = text[i + 1 : i + 3]
                if not re.fullmatch(r"[0-9A-Fa-f]{2}", pair):
                    self.fail(f"bad escape {text[i : i + 3]!r} (write \\2a, \\28, \\5c ...)")
                out.append(int(pair, 16))
                i += 3
                continue
            if c in "()":
                self.fail(f"unescaped {c!r} in a value")
            out += c.encode("utf-8")
            i += 1
        return bytes(out)


def _unescaped_star(text: str) -> bool:
    return len(_split_stars(text)) > 1


def _split_stars(text: str) -> list[str]:
    """`text` split at the asterisks that are not part of an escape."""
    pieces, current, i = [], [], 0
    while i < len(text):
        if text[i] == "\\":
            current.append(text[i : i + 3])
            i += 3
        elif text[i] == "*":
            pieces.append("".join(current))
            current = []
            i += 1
        else:
            current.append(text[i])
            i += 1
    pieces.append("".join(current))
    return pieces
