"""Client-side helpers for the directory tests (ldap3 connections as each role)."""

from __future__ import annotations

from ldap3 import NONE, Connection, Server

from mockservers.runtime import RunningDirectory


def connect(run: RunningDirectory, who: str = "admin") -> Connection:
    ep = run.endpoints
    user, password = {
        "admin": (ep.admin_dn, ep.admin_password),
        "writeback": (ep.bind_dn, ep.bind_password),
        "reader": (ep.reader_dn, ep.reader_password),
    }[who]
    conn = Connection(Server(ep.ldap_url, get_info=NONE), user, password, raise_exceptions=False)
    assert conn.bind(), conn.result
    return conn


def examined(run: RunningDirectory) -> int:
    return run.call(lambda: run.service.store.examined)
