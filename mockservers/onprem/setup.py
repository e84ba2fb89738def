"""Exchange Setup's ``/m:Uninstall`` on one host of the estate, against the fake AD's store.

Setup runs its prerequisite checks first (the host must be running; no mailbox of any kind may
still have its homeMDB on the server's database) and refuses with every failed check. Then it
removes the server from Active Directory, the way Setup does: the server object with everything
under it (protocols, receive connectors, the Autodiscover SCP...) and its mailbox database,
children before parents, through `Store.delete` (so `exwb serve --state-dir` journals each
delete, as it does an LDAP delete), and the Exchange services and certificates from the host.

Runs in the reactor thread, like the LDAP server that shares the store.
"""

from __future__ import annotations

from typing import Any, Final

from harness.core.dn import InvalidDN, normalize_dn
from harness.tenant.exchange_org import ExchangeOrg
from mockservers.directory.store import SCOPE_SUBTREE, Store
from mockservers.onprem import errors
from mockservers.onprem.estate import (
    EXCHANGE_ROLE,
    LEFTOVER_SERVICE,
    P_EXCHANGE,
    Estate,
    Host,
)

MAILBOX_NAMES_SHOWN: Final = 10


def run_setup(estate: Estate, store: Store, org: ExchangeOrg, name: str, body: Any) -> dict:
    """``Setup.exe /m:<Mode>`` on host `name`; only Uninstall is supported."""
    mode = None
    if isinstance(body, dict):
        mode = next((v for k, v in body.items() if k.casefold() == "mode"), None)
    if not isinstance(mode, str):
        raise errors.setup_body()
    if mode.casefold() != "uninstall":
        raise errors.setup_mode(mode)
    return uninstall(estate, store, org, name)


def uninstall(estate: Estate, store: Store, org: ExchangeOrg, name: str) -> dict[str, Any]:
    """Uninstall Exchange Server from host `name`; see the module docstring."""
    host = estate.host(name)
    if host.role != EXCHANGE_ROLE or not host.installed:
        raise errors.exchange_not_installed(host.name)
    server = host.name.upper()
    failed: list[dict[str, str]] = []
    if not host.powered_on:
        failed.append(errors.check_host_not_running(host.name))
    db_dn = org.database_dn(server)
    holders = mailboxes_on(store, db_dn, org.spec.base_dn)
    if holders:
        db_name = db_dn.split(",", 1)[0].removeprefix("CN=")
        failed.append(errors.check_database_not_empty(db_name, holders, MAILBOX_NAMES_SHOWN))
    if failed:
        raise errors.prerequisites_failed(failed)
    removed = remove_subtree(store, org.server_dn(server)) + remove_subtree(store, db_dn)
    _remove_exchange_files(host, leftovers=org.spec.uninstall_leftovers)
    estate.changed()
    return {
        "mode": "Uninstall",
        "result": "Succeeded",
        "message": "The Exchange Server setup operation completed successfully.",
        "removedObjects": removed,
        "host": host.to_api(),
    }


def mailboxes_on(store: Store, database_dn: str, base_dn: str) -> list[str]:
    """Names (cn) of the entries of domain partition `base_dn` whose homeMDB is `database_dn`.

    homeMDB is not indexed, so this scans every entry once: about 0.1 s at 200,000 users,
    acceptable once per Setup run. Values shared by many users are the same bytes object
    (the loader interns homeMDB), so each distinct value is parsed once.
    """
    t = store.schema.get("homeMDB")
    if t is None:
        return []
    want = normalize_dn(database_dn)
    keys: dict[bytes, object] = {}
    domain_root = normalize_dn(base_dn)
    out = []
    for e in store.entries.values():
        values = e.attrs.get("homeMDB")
        if not values:
            continue
        for v in values:
            k = keys.get(v)
            if k is None:
                try:
                    k = keys[v] = t.key(v)
                except (ValueError, InvalidDN):
                    k = keys[v] = v
            if k == want and store.partition_of(e.ndn) == domain_root:
                cn = e.attrs.get("cn") or e.attrs.get("sAMAccountName") or (e.dn.encode(),)
                out.append(cn[0].decode("utf-8", "replace"))
                break
    return sorted(out, key=str.casefold)


def remove_subtree(store: Store, dn: str) -> list[str]:
    """Delete `dn` and everything under it, leaves first; the DNs removed (none if absent)."""
    base = store.get(normalize_dn(dn))
    if base is None:
        return []
    doomed = store.scope_entries(base, SCOPE_SUBTREE)  # parents before children
    removed = []
    for e in reversed(doomed):
        removed.append(e.dn)  # before: a delete turns `e` into its tombstone, renamed
        store.delete(e.ndn)
    return removed


def _remove_exchange_files(host: Host, leftovers: bool) -> None:
    """What Setup takes off the machine; `leftovers` keeps one service registered, as a
    failed cleanup does (stopped and disabled)."""
    kept = []
    for s in host.services:
        if s.product != P_EXCHANGE:
            kept.append(s)
        elif leftovers and s.name == LEFTOVER_SERVICE:
            s.status, s.start_type = "Stopped", "Disabled"
            kept.append(s)
    host.services = kept
    host.certificates = [c for c in host.certificates if not c.exchange]
    host.installed = False
