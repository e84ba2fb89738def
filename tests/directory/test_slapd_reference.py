"""OpenLDAP slapd as the reference directory: a generated tenant loads and behaves like AD.

These tests pin what the fake directory is measured against: the LDIF loads unchanged under
the generated schema, DN escaping and binary values survive, indexed lookups find one entry,
and the writeback service account may write only the GA attributes under OU=Corp.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from ldap3 import BASE, MODIFY_REPLACE, NONE, SUBTREE, Connection, Server
from ldap3.utils.conv import escape_bytes, escape_filter_chars

from harness.core.adschema import DEFAULT_SCHEMA, OBJECT_CLASSES
from harness.core.dn import needs_escaping, normalize_dn, parse_dn
from harness.tenant import AdUser, Tenant, TenantSpec, generate
from harness.tenant.files import LDIF_NAME, write_tenant
from tests.support.slapd import SlapdInfo, running_slapd, slapd_available

if not slapd_available():
    reason = "OpenLDAP slapd is not installed (apt-get install slapd ldap-utils)"
    if os.environ.get("CI"):
        # CI must exercise the reference directory; a silent skip would hide a broken image.
        pytest.fail(f"{reason}; CI is set, so this is an error, not a skip", pytrace=False)
    pytest.skip(reason, allow_module_level=True)

SUCCESS, SIZE_LIMIT, INVALID_CREDENTIALS, INSUFFICIENT_ACCESS = 0, 4, 49, 50


@dataclass(frozen=True)
class Reference:
    tenant: Tenant
    slapd: SlapdInfo

    @property
    def person_filter(self) -> str:
        category = escape_filter_chars(self.tenant.object_category_person)
        return f"(&(objectClass=user)(objectCategory={category}))"


@pytest.fixture(scope="module")
def ref(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Reference]:
    # Many special and non-ASCII names, so DN escaping and base64 LDIF values are exercised.
    tenant = generate(TenantSpec(mailboxes=300, non_ascii_fraction=0.3, special_cn_fraction=0.3))
    out = tmp_path_factory.mktemp("tenant")
    write_tenant(tenant, out)
    with running_slapd(out / LDIF_NAME, tenant.base_dn) as info:
        yield Reference(tenant, info)


def connect(info: SlapdInfo, dn: str, password: str) -> Connection:
    conn = Connection(Server(info.url, get_info=NONE), user=dn, password=password)
    assert conn.bind(), conn.result
    return conn


@pytest.fixture
def admin(ref: Reference) -> Iterator[Connection]:
    conn = connect(ref.slapd, ref.slapd.admin_dn, ref.slapd.admin_password)
    yield conn
    conn.unbind()


@pytest.fixture
def service(ref: Reference) -> Iterator[Connection]:
    conn = connect(ref.slapd, ref.slapd.service_dn, ref.slapd.service_password)
    yield conn
    conn.unbind()


def corp_user(tenant: Tenant, *, special: bool = False) -> AdUser:
    """A user under OU=Corp (in the writeback scope), optionally one whose CN needs escaping."""
    suffix = normalize_dn(f"OU=Corp,{tenant.base_dn}")
    for u in tenant.ad_users:
        in_corp = normalize_dn(u.dn).endswith("," + suffix)
        if in_corp and u.proxy_addresses and (not special or needs_escaping(u.cn)):
            return u
    raise AssertionError("the tenant has no such user under OU=Corp")


def search_one(conn: Connection, base: str, filt: str, attrs: list[str]) -> dict:
    assert conn.search(base, filt, SUBTREE, attributes=attrs), conn.result
    assert len(conn.response) == 1, [e.get("dn") for e in conn.response]
    return conn.response[0]


def test_every_generated_user_is_loaded(ref: Reference, service: Connection) -> None:
    # Paged as AD clients page; the service account is subject to the 1,000-entry page limit.
    entries = [
        e
        for e in service.extend.standard.paged_search(
            ref.tenant.base_dn,
            ref.person_filter,
            SUBTREE,
            attributes=["objectGUID"],
            paged_size=100,
            generator=True,
        )
        if e["type"] == "searchResEntry"
    ]
    assert len(entries) == len(ref.tenant.ad_users)
    assert service.result["result"] == SUCCESS
    # Same objects and same names: every escaped DN came back as the same DN.
    assert {e["raw_attributes"]["objectGUID"][0] for e in entries} == {
        u.object_guid for u in ref.tenant.ad_users
    }
    assert {normalize_dn(e["dn"]) for e in entries} == {
        normalize_dn(u.dn) for u in ref.tenant.ad_users
    }


def test_special_and_non_ascii_names_round_trip(ref: Reference, admin: Connection) -> None:
    user = corp_user(ref.tenant, special=True)
    entry = search_one(admin, user.dn, "(objectClass=*)", ["cn", "displayName", "objectGUID"])
    assert parse_dn(entry["dn"])[0][0][1] == user.cn
    assert entry["attributes"]["cn"] == [user.cn]
    assert entry["attributes"]["displayName"] == [user.display_name]
    non_ascii = next(u for u in ref.tenant.ad_users if not u.display_name.isascii())
    entry = search_one(admin, non_ascii.dn, "(objectClass=*)", ["displayName"])
    assert entry["attributes"]["displayName"] == [non_ascii.display_name]


def test_proxy_address_equality_finds_one_user(ref: Reference, service: Connection) -> None:
    user = corp_user(ref.tenant)
    address = user.proxy_addresses[-1]
    for value in (address, address.upper()):  # proxyAddresses matches case-insensitively in AD
        entry = search_one(
            service,
            ref.tenant.base_dn,
            f"(proxyAddresses={escape_filter_chars(value)})",
            ["objectGUID"],
        )
        assert entry["raw_attributes"]["objectGUID"] == [user.object_guid]


def test_binary_consistency_guid_equality(ref: Reference, service: Connection) -> None:
    user = next(u for u in ref.tenant.ad_users if u.consistency_guid is not None)
    assert user.consistency_guid is not None
    entry = search_one(
        service,
        ref.tenant.base_dn,
        f"(mS-DS-ConsistencyGuid={escape_bytes(user.consistency_guid)})",
        ["mS-DS-ConsistencyGuid"],
    )
    assert normalize_dn(entry["dn"]) == normalize_dn(user.dn)
    assert entry["raw_attributes"]["mS-DS-ConsistencyGuid"] == [user.consistency_guid]


def test_service_account_writes_a_writeback_attribute(
    ref: Reference, service: Connection, admin: Connection
) -> None:
    user = corp_user(ref.tenant, special=True)
    ok = service.modify(user.dn, {"extensionAttribute1": [(MODIFY_REPLACE, ["written back"])]})
    assert ok, service.result
    entry = search_one(admin, user.dn, "(objectClass=*)", ["extensionAttribute1"])
    assert entry["attributes"]["extensionAttribute1"] == ["written back"]


def test_service_account_cannot_write_other_attributes(ref: Reference, service: Connection) -> None:
    user = corp_user(ref.tenant)
    assert not service.modify(user.dn, {"displayName": [(MODIFY_REPLACE, ["Renamed"])]})
    assert service.result["result"] == INSUFFICIENT_ACCESS


def test_service_account_cannot_write_outside_corp(ref: Reference, service: Connection) -> None:
    outside = normalize_dn(f"OU=Service Accounts,{ref.tenant.base_dn}")
    user = next(u for u in ref.tenant.ad_users if normalize_dn(u.dn).endswith("," + outside))
    assert not service.modify(user.dn, {"extensionAttribute1": [(MODIFY_REPLACE, ["x"])]})
    assert service.result["result"] == INSUFFICIENT_ACCESS


def test_bad_password_is_invalid_credentials(ref: Reference) -> None:
    conn = Connection(
        Server(ref.slapd.url, get_info=NONE), user=ref.slapd.service_dn, password="wrong"
    )
    assert not conn.bind()
    assert conn.result["result"] == INVALID_CREDENTIALS


def test_service_account_exists_like_a_gmsa(ref: Reference, admin: Connection) -> None:
    entry = search_one(
        admin, ref.tenant.base_dn, "(sAMAccountName=provAgentgMSA$)", ["objectClass"]
    )
    assert normalize_dn(entry["dn"]) == normalize_dn(ref.slapd.service_dn)
    assert "msDS-GroupManagedServiceAccount" in entry["attributes"]["objectClass"]


def test_slapd_knows_every_schema_attribute_and_class(admin: Connection) -> None:
    assert admin.search(
        "cn=Subschema",
        "(objectClass=subschema)",
        BASE,
        attributes=["attributeTypes", "objectClasses"],
    ), admin.result
    subschema = admin.response[0]["attributes"]

    def names(definitions: list[str]) -> set[str]:
        out: set[str] = set()
        for d in definitions:
            m = re.search(r"NAME\s+(?:'([^']+)'|\(([^)]*)\))", d)
            if m:
                out.update(n.casefold() for n in re.findall(r"[^' ]+", m.group(1) or m.group(2)))
        return out

    # Empty differences, so that a failure names what is missing.
    known_attributes = names(subschema["attributeTypes"])
    assert {a.name.casefold() for a in DEFAULT_SCHEMA} - known_attributes == set()
    assert set(OBJECT_CLASSES) - names(subschema["objectClasses"]) == set()


def test_helper_reports_slapadd_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.ldif"
    bad.write_text(
        "dn: DC=example,DC=com\nobjectClass: top\nobjectClass: domain\nobjectClass: domainDNS\n"
        "dc: example\nnoSuchAttribute: x\n\n",
        encoding="utf-8",
    )
    with (
        pytest.raises(RuntimeError, match="noSuchAttribute"),
        running_slapd(bad, "DC=example,DC=com"),
    ):
        pass
