"""The admin's side of the engine tests: EXO cmdlets over HTTP, AD reads over LDAP (ldap3).

Edits go through the fake Exchange Online admin API (``InvokeCommand`` with the read-write
app's token), as an administrator's Set-Mailbox would; AD is read back with ldap3 as the
read-only line-of-business account. `expected_ad` says what AD must hold for a cloud mailbox,
written from the documented mapping table (reference 1.2) and the tenant model's recipient
values, independently of the engine's own profile code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ldap3 import BASE, NONE, SUBTREE, Connection, Server
from ldap3.utils.conv import escape_bytes

from harness.core.endpoints import Endpoints
from harness.tenant.recipients import REMOTE_AD_VALUES
from tests.cloud.http_client import call, exo_token

GA_TARGETS: tuple[str, ...] = (
    *(f"extensionAttribute{i}" for i in range(1, 16)),
    *(f"msExchExtensionCustomAttribute{i}" for i in range(1, 6)),
    "msExchRecipientDisplayType",
    "msExchRecipientTypeDetails",
    "proxyAddresses",
    "mail",
)
MULTI_VALUED = frozenset(
    {*(f"msExchExtensionCustomAttribute{i}" for i in range(1, 6))} | {"proxyAddresses"}
)


class CmdletFailed(AssertionError):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"HTTP {status} {code}: {message}")
        self.status, self.code, self.message = status, code, message


@dataclass
class ExoAdmin:
    """Runs cmdlets as the read-write app (Exchange.ManageAsApp)."""

    ep: Endpoints
    _token: str = field(default="", repr=False)

    def cmdlet(self, name: str, **params: Any) -> dict[str, Any]:
        if not self._token:
            self._token = exo_token(self.ep)
        r = call(
            "POST",
            f"{self.ep.exo_url}/InvokeCommand",
            token=self._token,
            body={"CmdletInput": {"CmdletName": name, "Parameters": params}},
        )
        if r.status != 200:
            err = (r.body or {}).get("error", {})
            raise CmdletFailed(r.status, err.get("code", "?"), err.get("message", ""))
        return r.body

    def set_mailbox(self, identity: str, **params: Any) -> dict[str, Any]:
        return self.cmdlet("Set-Mailbox", Identity=identity, **params)

    def mailbox(self, identity: str) -> dict[str, Any]:
        (rec,) = self.cmdlet("Get-Recipient", Identity=identity)["value"]
        return rec

    def mailboxes(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        body = self.cmdlet("Get-Recipient", ResultSize="Unlimited")
        while True:
            out += body["value"]
            link = body.get("@odata.nextLink")
            if not link:
                return out
            r = call("GET", link, token=self._token)
            assert r.status == 200, r.body
            body = r.body


def expected_ad(rec: dict[str, Any], targets: tuple[str, ...] = GA_TARGETS) -> dict[str, list]:
    """What AD must hold for a cloud-managed mailbox (Get-Mailbox record), per target.

    Single-valued strings as a one-item list (or [] when cleared), multi-valued as a sorted list
    with the exact spelling (SMTP:/smtp: matters), the recipient types as integers.
    """
    remote = REMOTE_AD_VALUES[rec["RecipientTypeDetails"]]
    out: dict[str, list] = {}
    for i in range(1, 16):
        v = rec[f"CustomAttribute{i}"]
        out[f"extensionAttribute{i}"] = [v] if v else []
    for i in range(1, 6):
        out[f"msExchExtensionCustomAttribute{i}"] = sorted(rec[f"ExtensionCustomAttribute{i}"])
    out["msExchRecipientDisplayType"] = [remote.display_type]
    out["msExchRecipientTypeDetails"] = [remote.type_details]
    out["proxyAddresses"] = sorted(rec["EmailAddresses"])
    out["mail"] = [rec["WindowsEmailAddress"]] if rec["WindowsEmailAddress"] else []
    return {t: out[t] for t in targets}


_INTEGERS = frozenset({"msExchRecipientDisplayType", "msExchRecipientTypeDetails"})


def ldap_reader(ep: Endpoints) -> Connection:
    conn = Connection(
        Server(ep.ldap_url, get_info=NONE), ep.reader_dn, ep.reader_password, raise_exceptions=False
    )
    assert conn.bind(), conn.result
    return conn


def _decode(attr: str, raw: list[bytes]) -> list:
    if attr in _INTEGERS:
        return sorted(int(v) for v in raw)
    return sorted(v.decode("utf-8") for v in raw)


def ad_entry(conn: Connection, dn: str, attrs: tuple[str, ...] = GA_TARGETS) -> dict[str, list]:
    """The values of `attrs` on `dn` ([] when absent), decoded as `expected_ad` gives them."""
    assert conn.search(dn, "(objectClass=*)", BASE, attributes=list(attrs)), conn.result
    raw = {k.casefold(): v for k, v in conn.response[0]["raw_attributes"].items()}
    return {a: _decode(a, raw.get(a.casefold(), [])) for a in attrs}


def ad_by_anchor(conn: Connection, base_dn: str, guid: bytes, attrs=GA_TARGETS):
    """(DN, values) of the user whose mS-DS-ConsistencyGuid is `guid`, found by search."""
    flt = f"(mS-DS-ConsistencyGuid={escape_bytes(guid)})"
    assert conn.search(base_dn, flt, SUBTREE, attributes=list(attrs)), conn.result
    (entry,) = [e for e in conn.response if e["type"] == "searchResEntry"]
    raw = {k.casefold(): v for k, v in entry["raw_attributes"].items()}
    return entry["dn"], {a: _decode(a, raw.get(a.casefold(), [])) for a in attrs}


def ad_snapshot(conn: Connection, base_dn: str, attrs=GA_TARGETS) -> dict[str, dict[str, list]]:
    """Every user below `base_dn` with its values of `attrs` and uSNChanged, by DN."""
    want = [*attrs, "uSNChanged"]
    entries = conn.extend.standard.paged_search(
        base_dn, "(objectClass=user)", SUBTREE, attributes=want, paged_size=1000, generator=False
    )
    out = {}
    for e in entries:
        if e["type"] != "searchResEntry":
            continue
        raw = {k.casefold(): v for k, v in e["raw_attributes"].items()}
        out[e["dn"]] = {a: _decode(a, raw.get(a.casefold(), [])) for a in want}
    return out


def highest_usn(conn: Connection) -> int:
    assert conn.search("", "(objectClass=*)", BASE, attributes=["highestCommittedUSN"])
    return int(conn.response[0]["raw_attributes"]["highestCommittedUSN"][0])
