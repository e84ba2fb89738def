"""The cloud edits a benchmark cycle writes back: Set-Mailbox through the EXO admin API.

What an administrator's script does: list the in-scope mailboxes (cloud-managed and synced
from AD) with Get-Mailbox, then set CustomAttribute1 on each from a few threads, each with its
own keep-alive connection and token (`ExoAdmin` is not shared between threads).
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from harness.clients.exo import ExoAdmin
from harness.core.endpoints import Endpoints

IN_SCOPE_FILTER = "IsExchangeCloudManaged -eq $true -and IsDirSynced -eq $true"
THREADS = 4


def _admin(ep: Endpoints) -> ExoAdmin:
    return ExoAdmin(ep.exo_url, ep.token_url, ep.client_id, ep.client_secret)


def in_scope_mailboxes(ep: Endpoints) -> list[str]:
    """Guids of the cloud-managed, dir-synced mailboxes, through Get-Mailbox."""
    with _admin(ep) as exo:
        items = exo.invoke_all("Get-Mailbox", ResultSize="Unlimited", Filter=IN_SCOPE_FILTER)
    return [str(m["Guid"]) for m in items]


def set_custom_attribute(ep: Endpoints, ids: list[str], tag: str, threads: int = THREADS) -> int:
    """Set CustomAttribute1 to ``<tag>-<n>`` on every id; returns the number of cmdlets run."""
    local = threading.local()
    admins: list[ExoAdmin] = []
    lock = threading.Lock()

    def one(pair: tuple[int, str]) -> None:
        exo = getattr(local, "exo", None)
        if exo is None:
            exo = local.exo = _admin(ep)
            with lock:
                admins.append(exo)
        n, guid = pair
        exo.invoke("Set-Mailbox", Identity=guid, CustomAttribute1=f"{tag}-{n}")

    try:
        with ThreadPoolExecutor(threads, thread_name_prefix="exo-edit") as pool:
            list(pool.map(one, enumerate(ids), chunksize=64))
    finally:
        for exo in admins:
            exo.close()
    return len(ids)
