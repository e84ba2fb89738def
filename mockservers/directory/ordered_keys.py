"""One attribute's index keys in sorted order, for initial-substring lookups (`Store.prefix`)."""

from __future__ import annotations

import heapq
from bisect import bisect_left, insort
from collections.abc import Iterator
from itertools import islice

__all__ = ["OrderedKeys"]

# Keys per chunk (a chunk holds from one to twice as many).
_CHUNK = 512
# Keys a step of `build_steps` sorts or merges: about 5 ms on these machines.
_STEP = 8192


class OrderedKeys:
    """Sorted chunks of up to 2 x `_CHUNK` keys, with each chunk's last key in `maxes`: a key
    that appears or vanishes costs two bisections and a shift within one chunk, not within a
    list of 200,000. Only new and vanished keys reach it (a second user called John changes
    nothing). The key strings are the equality index's own, so it costs a pointer per key.

    It is made either at once (`build`) or a slice at a time (`build_steps`, while the server
    is idle); the keys that appear or vanish meanwhile are noted and applied at the end.
    """

    __slots__ = ("built", "chunks", "maxes", "pending")

    def __init__(self) -> None:
        self.built = False
        self.chunks: list[list[str]] = []
        self.maxes: list[str] = []
        # (present, key) changes seen while `build_steps` runs; None when it does not.
        self.pending: list[tuple[bool, str]] | None = None

    def build(self, keys: Iterator[str] | list[str]) -> None:
        self._set(sorted(keys))

    def build_steps(self, keys: list[object]) -> Iterator[None]:
        """Build from `keys`, the index's keys as they are now (those that are not text are
        left out), a slice per step. The keys that appear or vanish are noted from this call
        on, not from the first step on."""
        self.pending = []
        return self._build(keys)

    def _build(self, keys: list[object]) -> Iterator[None]:
        runs = []
        for i in range(0, len(keys), _STEP):
            runs.append(sorted(k for k in keys[i : i + _STEP] if type(k) is str))
            yield
        merged = heapq.merge(*runs)
        chunks: list[list[str]] = []
        while part := list(islice(merged, _STEP)):  # _STEP is a multiple of _CHUNK
            chunks.extend(part[i : i + _CHUNK] for i in range(0, len(part), _CHUNK))
            yield
        pending, self.pending = self.pending or [], None
        self.chunks, self.maxes, self.built = chunks, [c[-1] for c in chunks], True
        for present, key in pending:
            if present and not self._contains(key):
                self.add(key)
            elif not present:
                self.remove(key)

    def _set(self, ordered: list[str]) -> None:
        self.chunks = [ordered[i : i + _CHUNK] for i in range(0, len(ordered), _CHUNK)]
        self.maxes = [c[-1] for c in self.chunks]
        self.built = True

    def added(self, key: str) -> None:
        """`key` is new in the index."""
        if self.built:
            self.add(key)
        elif self.pending is not None:
            self.pending.append((True, key))

    def removed(self, key: str) -> None:
        """`key` is no longer in the index."""
        if self.built:
            self.remove(key)
        elif self.pending is not None:
            self.pending.append((False, key))

    def add(self, key: str) -> None:
        chunks, maxes = self.chunks, self.maxes
        if not chunks:
            chunks.append([key])
            maxes.append(key)
            return
        i = min(bisect_left(maxes, key), len(maxes) - 1)
        chunk = chunks[i]
        insort(chunk, key)
        maxes[i] = chunk[-1]
        if len(chunk) > 2 * _CHUNK:
            chunks[i : i + 1] = [chunk[:_CHUNK], chunk[_CHUNK:]]
            maxes[i : i + 1] = [chunk[_CHUNK - 1], chunk[-1]]

    def remove(self, key: str) -> None:
        chunks, maxes = self.chunks, self.maxes
        i = bisect_left(maxes, key)
        if i == len(maxes):
            return
        chunk = chunks[i]
        j = bisect_left(chunk, key)
        if j < len(chunk) and chunk[j] == key:
            del chunk[j]
            if chunk:
                maxes[i] = chunk[-1]
            else:
                del chunks[i], maxes[i]

    def _contains(self, key: str) -> bool:
        i = bisect_left(self.maxes, key)
        if i == len(self.maxes):
            return False
        chunk = self.chunks[i]
        j = bisect_left(chunk, key)
        return j < len(chunk) and chunk[j] == key

    def starting(self, initial: str) -> list[str]:
        """The keys that start with `initial`, in order."""
        chunks, out = self.chunks, list[str]()
        i = bisect_left(self.maxes, initial)
        j = bisect_left(chunks[i], initial) if i < len(chunks) else 0
        while i < len(chunks):
            chunk = chunks[i]
            for k in range(j, len(chunk)):
                key = chunk[k]
                if not key.startswith(initial):
                    return out
                out.append(key)
            i, j = i + 1, 0
        return out
