"""Continuation references: the naming contexts below a search's base that it does not enter.

A one-level or subtree search stays in its base's naming context (the
store's `scope_entries`). Where another naming context lies in its scope, AD says so with a
SearchResultReference (RFC 4511 4.5.3, [MS-ADTS] 3.1.1.3.1.4): [MS-ADTS] 3.1.1.4.7 refers the
client to the dnsRoot of each crossRef listed in the base's naming context's subRefs whose
nCName is a child of the base (one-level) or below it (subtree). In this directory that is the
configuration partition, from the domain (`ldap://contoso.com/CN=Configuration,DC=contoso,
DC=com`), and the schema partition, from the configuration; the fake holds no DNS application
partitions (DomainDnsZones, ForestDnsZones), so it refers to none. Both crossRefs' dnsRoot is
the forest root domain's DNS name. A one-level reference names scope base (RFC 4511 4.5.3: "If
the originating search scope was singleLevel, the <scope> part of the URL will be 'base'"), as
Samba sends it; whether Windows adds it is unconfirmed.

LDAP_SERVER_DOMAIN_SCOPE_OID (1.2.840.113556.1.4.1339) and the SERVER_SEARCH_FLAG_DOMAIN_SCOPE
flag of LDAP_SERVER_SEARCH_OPTIONS_OID (1.2.840.113556.1.4.1340, [MS-ADTS] 3.1.1.3.4.1) ask
for none; its SERVER_SEARCH_FLAG_PHANTOM_ROOT flag asks the server to search the naming
contexts below the base too (not application partitions), so they are entered, not referred to.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import quote

from harness.core import ber
from harness.core.ber import SCOPE_BASE, SCOPE_ONE
from mockservers.directory import controls as controls_
from mockservers.directory import errors
from mockservers.directory.entry import Entry
from mockservers.directory.store import Store

DOMAIN_SCOPE_OID: Final = "1.2.840.113556.1.4.1339"
SEARCH_OPTIONS_OID: Final = "1.2.840.113556.1.4.1340"
DOMAIN_SCOPE: Final = 1  # SERVER_SEARCH_FLAG_DOMAIN_SCOPE (SSFDS): no continuation references
PHANTOM_ROOT: Final = 2  # SERVER_SEARCH_FLAG_PHANTOM_ROOT (SSFPR): search the NCs below too


@dataclass(frozen=True, slots=True)
class Options:
    """What a search's controls ask of naming contexts below its base."""

    refer: bool = True  # send continuation references (no domain-scope control or flag)
    phantom_root: bool = False


def options(controls: Iterable[Any] | None) -> Options:
    """Read the domain-scope and search-options controls of a search request."""
    flags = DOMAIN_SCOPE if controls_.has(controls, DOMAIN_SCOPE_OID) else 0
    found = controls_.find(controls, SEARCH_OPTIONS_OID)
    if found is not None:
        try:
            flags |= ber.read_flag_control(found[1] or b"")
        except ber.BERError as e:
            raise errors.bad_control_value(SEARCH_OPTIONS_OID, str(e)) from None
    # Bits other than the two are unused: the server "MUST ignore" them.
    return Options(refer=not flags & (DOMAIN_SCOPE | PHANTOM_ROOT), phantom_root=bool(flags & 2))


def subordinates(store: Store, base: Entry, scope: int) -> list[Entry]:
    """The roots of the naming contexts a search of `base` with `scope` would refer to: the
    subRefs of base's naming context that are children of base (one-level) or below it."""
    if scope == SCOPE_BASE:
        return []
    home = store.partition_of(base.ndn)
    found = []
    for ndn in store.naming_contexts:
        root = store.get(ndn)
        if root is None or ndn == home or store.partition_of(root.parent) != home:
            continue  # not a subRef of the base's naming context
        if root.parent == base.ndn or (scope != SCOPE_ONE and root.parent.endswith("," + base.ndn)):
            found.append(root)
    return found


def phantom_roots(store: Store, base: Entry, scope: int) -> list[Entry]:
    """Every naming context below `base` (and below those) that a phantom-root search also
    searches, shallowest first."""
    out: list[Entry] = []
    frontier = [base]
    while frontier:
        nxt = [r for b in frontier for r in subordinates(store, b, scope)]
        out += nxt
        frontier = nxt if scope != SCOPE_ONE else []
    return out


def references(msg_id: int, roots: Iterable[Entry], dns_root: str, scope: int) -> bytes:
    """One SearchResultReference message per naming context, `ldap://<dnsRoot>/<nCName>`."""
    suffix = "??base" if scope == SCOPE_ONE else ""
    out = []
    for root in roots:
        url = f"ldap://{dns_root}/{quote(root.dn, safe='=,')}{suffix}"
        ref = ber.sequence(ber.octets(url.encode("ascii")), tag=ber.APP_SEARCH_REFERENCE)
        out.append(ber.message(msg_id, ref))
    return b"".join(out)
