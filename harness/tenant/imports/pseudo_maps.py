"""Keyed, one-to-one maps the pseudonymiser is built from.

`InjectiveMap` remembers every value it has mapped so that two values never share a
pseudonym (a keyed hash can collide; the table resolves that deterministically, first come
first served). GUIDs need no table: `GuidPermutation` is a keyed Feistel permutation, one-to-one
by construction, that keeps a GUID's version and variant bits.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Hashable
from hashlib import blake2b
from typing import Any, Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V", bound=Hashable)
T = TypeVar("T")


def mac(key: bytes, data: bytes) -> bytes:
    """HMAC-SHA256 of `data` under `key`."""
    return hmac.digest(key, data, "sha256")


def subkey(key: bytes, kind: str) -> bytes:
    """A key per kind of value, so a name and a domain with the same spelling map apart."""
    return mac(key, b"exwb-pseudonym/1/" + kind.encode("utf-8"))


def stream(key: bytes, data: bytes, n: int) -> bytes:
    """`n` keyed pseudo-random bytes for `data` (HMAC in counter mode)."""
    if n <= 32:
        return hmac.digest(key, b"\0\0\0\0" + data, "sha256")[:n]
    out = bytearray()
    block = 0
    while len(out) < n:
        out += mac(key, block.to_bytes(4, "big") + data)
        block += 1
    return bytes(out[:n])


class InjectiveMap(Generic[K, V]):
    """value -> pseudonym, never two values to one pseudonym.

    `make(attempt)` proposes a candidate; a candidate already given out, equal to the value
    itself or to any value seen so far (it would read as that original), or refused by
    `refuse`, is skipped for the next attempt. After `strict` attempts only "already given
    out" still counts, so a tiny space (one letter) cannot loop forever.
    """

    __slots__ = ("forward", "taken")

    def __init__(self) -> None:
        self.forward: dict[K, V] = {}
        self.taken: set[V] = set()

    def __len__(self) -> int:
        return len(self.forward)

    def get(self, value: K) -> V | None:
        return self.forward.get(value)

    def assign(
        self,
        value: K,
        make: Callable[[int], V],
        refuse: Callable[[V], bool] | None = None,
        strict: int = 64,
    ) -> V:
        got = self.forward.get(value)
        if got is not None:
            return got
        forward, taken = self.forward, self.taken
        attempt = 0
        while True:
            cand = make(attempt)
            if cand not in taken and (
                attempt >= strict
                or not (cand == value or cand in forward or (refuse is not None and refuse(cand)))
            ):
                break
            attempt += 1
        forward[value] = cand
        taken.add(cand)
        return cand


def memo(cache: dict[Any, Any], key: Any, value: T, limit: int = 1 << 18) -> T:
    """Remember `value` under `key`; a cache that is full is emptied first (cheap, and memory
    stays bounded at 200,000 users). Callers read plain `dict.get`, the fastest lookup."""
    if len(cache) >= limit:
        cache.clear()
    cache[key] = value
    return value


_M61 = (1 << 61) - 1
_M62 = (1 << 62) - 1


class GuidPermutation:
    """A keyed permutation of 128-bit GUIDs that keeps the version nibble and variant bits.

    The other 122 bits go through a four-round Feistel network on two 61-bit halves: one-to-one
    without a table, the same GUID always maps to the same GUID, and 200,000 users need no
    memory for it. The round function is keyed BLAKE2b (round keys derived from the key with
    HMAC-SHA256): a PRF like HMAC, at half its cost, and a user has several GUIDs.
    """

    __slots__ = ("_keys",)

    def __init__(self, key: bytes) -> None:
        self._keys = tuple(subkey(key, f"guid-round-{i}") for i in range(4))

    def __call__(self, value: int) -> int:
        fixed = value & ((0xF << 76) | (0x3 << 62))
        free = (value & _M62) | (((value >> 64) & 0xFFF) << 62) | ((value >> 80) << 74)
        left, right = free >> 61, free & _M61
        for k in self._keys:
            d = blake2b(right.to_bytes(8, "big"), key=k, digest_size=8).digest()
            left, right = right, left ^ (int.from_bytes(d, "big") & _M61)
        free = (left << 61) | right
        return fixed | (free & _M62) | (((free >> 62) & 0xFFF) << 64) | ((free >> 74) << 80)
