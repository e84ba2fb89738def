"""Value templates: ``{alias}``, ``{upn}``, ``{index}`` ... filled in per selected object.

A template is text with fields in braces: ``{index}`` (1-based position in the selection),
``{id}``, ``{upn}``, ``{alias}``, ``{mail}`` (primary SMTP address), ``{domain}`` (the tenant's
primary domain), ``{dn}`` (the AD user's DN), and ``{C*N}``: the character C repeated N times
(``{x*1024}`` for a value at a length limit). ``{{`` and ``}}`` are literal braces. Templates
are parsed when the scenario loads, so an unknown field is a load error with its line.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

FIELDS = ("index", "id", "upn", "alias", "mail", "domain", "dn")
MAX_REPEAT = 100_000
_TOKEN = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")
_REPEAT = re.compile(r"(.)\*([0-9]+)", re.S)


class TemplateError(ValueError):
    """A template that cannot be parsed (unknown field, stray brace)."""


@dataclass(frozen=True, slots=True)
class Template:
    """Parsed template text: literal strings and field names, in order."""

    text: str
    parts: tuple[tuple[bool, str], ...] = ()  # (is a field, literal text or field name)

    @classmethod
    def parse(cls, text: str) -> Template:
        parts: list[tuple[bool, str]] = []
        pos = 0
        for m in _TOKEN.finditer(text):
            if m.start() > pos:
                parts.append((False, text[pos : m.start()]))
            token = m.group(0)
            if token in ("{{", "}}"):
                parts.append((False, token[0]))
            elif m.group(1) is None:
                raise TemplateError(f"stray {token!r} in {text!r} (write {token * 2} for a brace)")
            else:
                parts.append(_field(m.group(1)))
            pos = m.end()
        if pos < len(text):
            parts.append((False, text[pos:]))
        return cls(text, tuple(parts))

    @property
    def fields(self) -> frozenset[str]:
        return frozenset(name for is_field, name in self.parts if is_field)

    def render(self, values: Mapping[str, str | None], escape: Callable[[str], str] = str) -> str:
        """The text with fields filled in from `values` (passed through `escape`, e.g. for an
        LDAP filter); a field whose value is None raises TemplateError."""
        out = []
        for is_field, text in self.parts:
            if not is_field:
                out.append(text)
            elif (rep := _REPEAT.fullmatch(text)) is not None:
                out.append(escape(rep.group(1) * int(rep.group(2))))
            else:
                value = values.get(text)
                if value is None:
                    raise TemplateError(f"{{{text}}} has no value here (in {self.text!r})")
                out.append(escape(value))
        return "".join(out)


def _field(name: str) -> tuple[bool, str]:
    rep = _REPEAT.fullmatch(name)
    if rep is not None:
        if not 1 <= int(rep.group(2)) <= MAX_REPEAT:
            raise TemplateError(f"{{{name}}}: the count must be 1 to {MAX_REPEAT:,}")
        return True, name
    if name not in FIELDS:
        raise TemplateError(
            f"unknown template field {{{name}}} (fields: {', '.join(FIELDS)}, or {{x*N}})"
        )
    return True, name
