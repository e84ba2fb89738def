"""Name pools for the generator, drawn once from Faker's locale data, and alias normalisation.

Faker's providers are used as data (their name lists), not called per user: drawing from the
lists with the generator's own seeded `random.Random` is about 50x faster and keeps the output
independent of Faker's internal random state.
"""

from __future__ import annotations

import hashlib
import importlib
import re
import unicodedata
from dataclasses import dataclass
from functools import cache

_ASCII_LOCALES = ("en_US", "en_GB", "nl_NL", "it_IT")
_NON_ASCII_LOCALES = ("de_DE", "fr_FR", "es_ES", "sv_SE", "da_DK", "pl_PL")

# Letters that NFKD does not decompose into an ASCII base letter.
_TRANSLIT = str.maketrans(
    {
        "ß": "ss",
        "æ": "ae",
        "Æ": "AE",
        "ø": "o",
        "Ø": "O",
        "ł": "l",
        "Ł": "L",
        "đ": "d",
        "Đ": "D",
        "œ": "oe",
        "Œ": "OE",
        "þ": "th",
        "ð": "d",
        "ı": "i",
    }
)
_NOT_ALIAS = re.compile(r"[^a-z0-9]+")


@dataclass(frozen=True, slots=True)
class NamePools:
    ascii_first: tuple[str, ...]
    ascii_last: tuple[str, ...]
    accented_first: tuple[str, ...]
    accented_last: tuple[str, ...]


def _names(locale: str, attr: str) -> list[str]:
    provider = importlib.import_module(f"faker.providers.person.{locale}").Provider
    return list(getattr(provider, attr, ()))


def _usable(name: str) -> bool:
    # Single tokens only: keeps display names "First Last" and aliases readable.
    return bool(name) and " " not in name and "-" not in name[:1] and len(name) <= 24


@cache
def name_pools() -> NamePools:
    """Deduplicated, order-preserving name lists (the order is part of determinism)."""

    def collect(locales: tuple[str, ...], attr: str, accented: bool) -> tuple[str, ...]:
        seen: dict[str, None] = {}
        for loc in locales:
            for n in _names(loc, attr):
                if _usable(n) and (not n.isascii()) == accented:
                    seen.setdefault(n, None)
        return tuple(seen)

    return NamePools(
        ascii_first=collect(_ASCII_LOCALES, "first_names", False),
        ascii_last=collect(_ASCII_LOCALES, "last_names", False),
        accented_first=collect(_NON_ASCII_LOCALES, "first_names", True),
        accented_last=collect(_NON_ASCII_LOCALES, "last_names", True),
    )


def pools_fingerprint() -> str:
    """Short digest of the name data: the generator's output is a function of it and the seed."""
    p = name_pools()
    data = "\x1e".join(
        "\x1f".join(pool)
        for pool in (p.ascii_first, p.ascii_last, p.accented_first, p.accented_last)
    )
    return hashlib.sha256(data.encode("utf-8")).hexdigest()[:16]


def to_ascii(text: str) -> str:
    """Fold to ASCII as Cloud Sync's NormalizeDiacritics does (é -> e, ß -> ss)."""
    if text.isascii():
        return text
    decomposed = unicodedata.normalize("NFKD", text.translate(_TRANSLIT))
    return decomposed.encode("ascii", "ignore").decode("ascii")


def alias_base(*parts: str) -> str:
    """A mail alias stem: ASCII, lower case, words joined by dots ("Zoë O'Neil" -> "zoe.oneil")."""
    words = [_NOT_ALIAS.sub("", to_ascii(p).lower()) for p in parts]
    return ".".join(w for w in words if w) or "user"
