"""Name data for the pseudonymiser: which tokens are person names, and what replaces them.

Two disjoint sets drawn from Faker's locale data (as data, like `harness.tenant.names`):
*recognised* names (the locales most tenants, and our generator, draw from) and *replacement*
names (other locales, minus every recognised name). A pseudonym is never a recognised name, so
it cannot be mistaken for (or coincide with) a real person's common name. Replacements are
grouped by length: a name maps to one of the same length, so every length limit (cn 64,
mailNickname 64, UPN 113, proxyAddresses 256) holds or fails exactly as it did.
"""

from __future__ import annotations

import importlib
import unicodedata
from dataclasses import dataclass
from functools import cache

from harness.tenant.names import to_ascii

# The locales whose names we recognise (the generator's, `harness/tenant/names.py`, and more).
_RECOGNISED_LOCALES = (
    "en", "en_US", "en_GB", "en_IE", "nl_NL", "it_IT", "de_DE", "fr_FR", "es_ES", "sv_SE",
    "da_DK", "pl_PL", "pt_BR",
)  # fmt: skip
# The locales replacements come from.
_REPLACEMENT_LOCALES = (
    "fi_FI", "hu_HU", "cs_CZ", "sk_SK", "hr_HR", "sl_SI", "et_EE", "lv_LV", "lt_LT", "ro_RO",
    "tr_TR", "is_IS", "id_ID", "sw", "zu_ZA", "tw_GH", "yo_NG", "uz_UZ", "az_AZ",
)  # fmt: skip

CONSONANTS = "bcdfghjklmnprstvz"
VOWELS = "aeiou"


@dataclass(frozen=True, slots=True)
class NameData:
    recognised_first: frozenset[str]  # ASCII-folded, lower case
    recognised_last: frozenset[str]
    recognised: frozenset[str]
    # (role, length) -> replacement names (ASCII-folded, lower case), in a fixed order.
    replacements: dict[tuple[str, int], tuple[str, ...]]
    display: dict[str, str]  # ASCII-folded replacement -> its own spelling (accents), lower case


def _locale_names(locale: str, attr: str) -> list[str]:
    provider = importlib.import_module(f"faker.providers.person.{locale}").Provider
    try:
        return list(getattr(provider, attr, ()))
    except TypeError:  # a few locales compute the list in a property
        return []


def fold(token: str) -> str:
    """The comparison key of a word: ASCII-folded and lower case (Zoë and zoe are one key),
    or the case-folded word itself when folding leaves no letters (Cyrillic, CJK)."""
    if token.isascii():
        return token.lower()
    ascii_form = to_ascii(token).lower()
    return ascii_form if ascii_form.isalpha() else token.casefold()


@cache
def name_data() -> NameData:
    """The recognised and replacement names (loaded once; the order is part of determinism)."""

    def collect(locales: tuple[str, ...], attr: str) -> dict[str, str]:
        out: dict[str, str] = {}
        for loc in locales:
            for name in _locale_names(loc, attr):
                if name.isalpha() and all(ord(c) < 0x250 for c in name):
                    out.setdefault(fold(name), name.lower())
        return out

    rec_first = collect(_RECOGNISED_LOCALES, "first_names")
    rec_last = collect(_RECOGNISED_LOCALES, "last_names")
    recognised = frozenset(rec_first) | frozenset(rec_last)
    replacements: dict[tuple[str, int], list[str]] = {}
    display: dict[str, str] = {}
    for role, attr in (("first", "first_names"), ("last", "last_names")):
        for key, spelled in collect(_REPLACEMENT_LOCALES, attr).items():
            if key in recognised or not key.isascii() or len(key) != len(spelled):
                continue
            replacements.setdefault((role, len(key)), []).append(key)
            if spelled != key:
                display.setdefault(key, spelled)
    return NameData(
        recognised_first=frozenset(rec_first),
        recognised_last=frozenset(rec_last),
        recognised=recognised,
        replacements={k: tuple(v) for k, v in replacements.items()},
        display=display,
    )


def pseudo_word(length: int, entropy: bytes) -> str:
    """A pronounceable lower-case word of `length` letters drawn from `entropy` (>= length + 1
    bytes): consonants and vowels alternate, starting with either. One or two letters (an
    initial) draw from the whole alphabet, so all 26 initials have somewhere to go."""
    if length <= 2:
        return "".join(chr(97 + b % 26) for b in entropy[1 : length + 1])
    vowel = entropy[0] & 1 == 1
    out = []
    for i in range(length):
        b = entropy[i + 1]
        out.append(VOWELS[b % 5] if vowel else CONSONANTS[b % 17])
        vowel = not vowel
    return "".join(out)


def recase(pattern: str, word: str) -> str:
    """`word` in the case pattern of `pattern`: lower, UPPER, Title, or letter by letter."""
    if pattern.islower() or not any(c.isupper() for c in pattern):
        return word.lower()
    if pattern.isupper():
        return word.upper()
    if pattern[0].isupper() and pattern[1:].islower():
        return word[:1].upper() + word[1:].lower()
    return "".join(
        c.upper() if i < len(pattern) and pattern[i].isupper() else c.lower()
        for i, c in enumerate(word)
    )


_MARKS = ("\u0301", "\u0300", "\u0308", "\u0302", "\u030c", "\u0303")  # acute grave diaeresis ...


def with_mark(word: str, attempt: int) -> str:
    """`word` with one accent, its place and kind chosen by `attempt`: a spelling that is
    never ASCII, for a non-ASCII name whose folded pseudonym has no accented form of its own.
    Only accents that compose into one letter (é, not D + U+0301) keep the length."""
    options = [
        (i, composed)
        for mark in _MARKS
        for i, c in enumerate(word)
        if len(composed := unicodedata.normalize("NFC", c + mark)) == 1
    ]
    if not options:  # no letter takes an accent: a combining one, one character longer
        return word + _MARKS[attempt % len(_MARKS)]
    i, composed = options[attempt % len(options)]
    if attempt >= len(options):  # every single accent is taken: add a second one
        return with_mark(word[:i] + composed + word[i + 1 :], attempt // len(options) - 1)
    return word[:i] + composed + word[i + 1 :]
