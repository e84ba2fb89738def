"""The job's scoping filters: which matched AD users a cycle writes to.

Graph's synchronizationRule carries them (microsoft-facts §8.2): `containerFilter.
includedContainers` (OU distinguished names: an AD user below one of them is in scope) and
`groupFilter.includedGroups` (group distinguished names: a direct member of one of them is in
scope; nested groups are not followed, as Cloud Sync's group scoping does not follow them).
Both empty: every matched user. Both set: a user must pass both. A user out of scope is
Skipped with `NotInScope`, as provisionOnDemand reports it.

Which side the groups are on for this EXO-to-AD job is not documented: the harness reads them
as AD groups, like the containers (both name objects in the directory the job writes).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from harness.core.dn import InvalidDN, normalize_dn


class ScopeError(ValueError):
    """A scoping filter that is not usable; the message names the value."""


def _key(dn: str, what: str) -> str:
    try:
        return normalize_dn(dn)
    except InvalidDN as e:
        raise ScopeError(f"{what} {dn!r} is not a distinguished name ({e})") from None


@dataclass(frozen=True, slots=True)
class Scope:
    """The filters as written (`containers`, `groups`: DNs as the admin gave them)."""

    containers: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    # The containers' comparison keys, made once: `below` runs for every matched user.
    _suffixes: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        keys = tuple(_key(dn, "includedContainers value") for dn in self.containers)
        object.__setattr__(self, "_suffixes", keys)
        for dn in self.groups:
            _key(dn, "includedGroups value")

    @property
    def everyone(self) -> bool:
        return not self.containers and not self.groups

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> Scope:
        """From the state file's `scope` ({includedContainers, includedGroups})."""
        if not data:
            return cls()
        return cls(
            tuple(data.get("includedContainers") or ()), tuple(data.get("includedGroups") or ())
        )

    def to_json(self) -> dict[str, list[str]] | None:
        if self.everyone:
            return None
        return {"includedContainers": list(self.containers), "includedGroups": list(self.groups)}

    def below(self, dn: str) -> bool:
        """Whether `dn` is below (or is) one of the included containers; True without any."""
        if not self.containers:
            return True
        key = _key(dn, "object")
        return any(key == c or key.endswith("," + c) for c in self._suffixes)


class Members:
    """The direct members of the included groups, read once per cycle (their DN keys)."""

    def __init__(self, member_dns: Iterable[str]) -> None:
        self._keys = {_key(dn, "member") for dn in member_dns}

    def __contains__(self, dn: object) -> bool:
        return isinstance(dn, str) and _key(dn, "object") in self._keys
