"""The floor: the engine's modifies sent by the plainest possible client.

One ldap3 connection, bound as the writeback account, replaces extensionAttribute1 on each DN
in turn and waits for every reply before the next request: no pipelining, no concurrency, no
reads. The engine, which also reads the cloud, matches and diffs, is compared with it.
ldap3 is an optional dependency (the ``bench`` extra).
"""

from __future__ import annotations

import importlib.util
import time
from dataclasses import dataclass

INSTALL_HINT = "pip install -e '.[bench]'"


def floor_available() -> bool:
    """True when ldap3 can be imported."""
    return importlib.util.find_spec("ldap3") is not None


@dataclass(frozen=True, slots=True)
class FloorResult:
    modifies: int
    wall_s: float

    @property
    def modifies_per_s(self) -> float:
        return round(self.modifies / self.wall_s, 1) if self.wall_s else 0.0


class FloorError(RuntimeError):
    """A modify of the floor loop failed; the message has the server's result."""


def ldap3_floor(
    url: str, bind_dn: str, password: str, dns: list[str], tag: str = "floor"
) -> FloorResult:
    """Replace extensionAttribute1 on every DN with one synchronous ldap3 connection."""
    from ldap3 import MODIFY_REPLACE, NONE, Connection, Server
    from ldap3.core.exceptions import LDAPException

    try:
        conn = Connection(Server(url, get_info=NONE), bind_dn, password, auto_bind=True)
    except LDAPException as e:
        raise FloorError(f"bind to {url} failed: {e}") from None
    try:
        started = time.perf_counter()
        for i, dn in enumerate(dns):
            if not conn.modify(dn, {"extensionAttribute1": [(MODIFY_REPLACE, [f"{tag}-{i}"])]}):
                raise FloorError(f"modify of {dn} failed: {conn.result}")
        wall = time.perf_counter() - started
    except LDAPException as e:
        raise FloorError(f"the floor loop failed: {e}") from None
    finally:
        conn.unbind()
    return FloorResult(len(dns), round(wall, 3))
