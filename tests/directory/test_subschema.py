"""The subschema entry, as the clients that read it use it: ldap3's default get_info=SCHEMA
(typed values, checked names) and python-ldap's schema reader; and objectSid, which ldap3
renders as text only with the schema. On the fake, slapd and Samba unless marked."""

from __future__ import annotations

import os
import re
import uuid
from datetime import datetime
from pathlib import Path

import ldap
import ldap.schema
import pytest
from ldap3 import BASE, SCHEMA, Connection, Server

from harness.core.adschema import CLASS_NAMES, DEFAULT_SCHEMA
from harness.core.dn import normalize_dn
from harness.core.sid import FIRST_RID, DomainSid
from mockservers.directory.ad_classes import (
    AD_ATTRIBUTE_IDS,
    AD_CLASSES,
    ALL_FILE,
    ATTRIBUTES_FILE,
    CLASSES_FILE,
    all_of,
    generate,
    read_ldf,
)
from mockservers.directory.seed import seed_directory
from mockservers.directory.subschema import publish
from mockservers.runtime import start_directory
from tests.directory.ldap_clients import connect

SAMBA_SCHEMA_FILES = Path("/usr/share/samba/setup/ad-schema")
SID = re.compile(r"S-1-5-21-\d+-\d+-\d+")


def schema_server(run) -> tuple[Server, Connection]:
    """ldap3 as an application uses it by default: the server's schema read on bind."""
    ep = run.endpoints
    user, password = ep.account("reader")
    server = Server(ep.ldap_url, get_info=SCHEMA)
    conn = Connection(server, user, password, raise_exceptions=False)
    assert conn.bind(), conn.result
    assert server.schema is not None, "ldap3 read no schema from the subschema entry"
    return server, conn


def test_ldap3_reads_the_schema(directory):
    server, _ = schema_server(directory)
    types, classes = server.schema.attribute_types, server.schema.object_classes
    guid = types["objectGUID"]
    assert guid.oid == "1.2.840.113556.1.4.2"
    assert guid.syntax == "1.3.6.1.4.1.1466.115.121.1.40"
    assert guid.single_value
    assert types["sAMAccountName"].syntax == "1.3.6.1.4.1.1466.115.121.1.15"
    assert not types["proxyAddresses"].single_value
    assert types["extensionAttribute1"].single_value
    assert classes["user"].oid == "1.2.840.113556.1.5.9"
    assert classes["user"].superior == ["organizationalPerson"]
    assert classes["organizationalPerson"].superior == ["person"]


def test_ldap3_gives_typed_values_with_the_schema(directory, tenant):
    """What an application gets from entry.x.value: a GUID string, a datetime, an int."""
    _, conn = schema_server(directory)
    user = next(u for u in tenant.ad_users if u.consistency_guid is not None)
    wanted = ["objectGUID", "whenCreated", "userAccountControl", "sAMAccountName", "mail"]
    assert conn.search(user.dn, "(objectClass=*)", BASE, attributes=wanted), conn.result
    (e,) = conn.entries
    assert e.objectGUID.value == "{" + str(uuid.UUID(bytes_le=user.object_guid)) + "}"
    assert isinstance(e.whenCreated.value, datetime)
    assert e.userAccountControl.value == user.user_account_control
    assert e.sAMAccountName.value == user.sam_account_name


@pytest.mark.ad_only("the published schema")
def test_ldap3_accepts_ad_classes_and_attributes_the_directory_holds_none_of(directory):
    """ldap3 checks filter and attribute names against the schema; AD publishes all of its
    schema, so a filter on a class no object has (as ldapdomaindump sends) is no client error."""
    _, conn = schema_server(directory)
    base = directory.endpoints.base_dn
    conn.search(base, "(objectClass=trustedDomain)", attributes=["flatName"])
    assert conn.result["result"] == 0 and conn.entries == []


@pytest.mark.ad_only("security principal identity")
def test_ldap3_renders_sids_as_text(directory, tenant):
    """With the schema, objectSid reads as S-1-5-21-...: the domain's SID, and a user's, which
    is the domain's plus a RID (test_ldap3_search.py checks the binary values)."""
    _, conn = schema_server(directory)
    assert conn.search(
        directory.endpoints.base_dn, "(objectClass=*)", BASE, attributes=["objectSid"]
    )
    domain = conn.entries[0].objectSid.value
    assert SID.fullmatch(domain), domain
    assert conn.search(tenant.ad_users[0].dn, "(objectClass=*)", BASE, attributes=["objectSid"])
    assert re.fullmatch(re.escape(domain) + r"-\d+", conn.entries[0].objectSid.value)


def test_the_fake_gives_a_tenant_the_sids_its_exports_show(tenant):
    """The generated tenant's users get the RIDs of its ldifde and Get-ADUser exports
    (harness.tenant.exports), so an export and the fake agree; other principals follow."""
    run = start_directory(seed_directory(tenant))
    try:
        _, conn = schema_server(run)
        sid = DomainSid.of(tenant.spec.base_dn)
        for rid, user in list(enumerate(tenant.ad_users, FIRST_RID))[:: len(tenant.ad_users) // 7]:
            assert conn.search(user.dn, "(objectClass=*)", BASE, attributes=["objectSid"])
            assert conn.entries[0].objectSid.value == sid.text(rid)
        ep = run.endpoints
        assert conn.search(ep.admin_dn, "(objectClass=*)", BASE, attributes=["objectSid"])
        assert conn.entries[0].objectSid.value == sid.text(500)  # the domain's Administrator
    finally:
        run.stop()


def test_python_ldap_reads_the_schema(directory):
    """python-ldap's schema reader: what a user object must and may hold, through its classes
    (and, on AD, the auxiliary classes of its DIT content rule)."""
    ep = directory.endpoints
    user, password = ep.account("reader")
    conn = ldap.initialize(ep.ldap_url)
    try:
        conn.simple_bind_s(user, password)
        dn = conn.search_subschemasubentry_s(ep.base_dn)
        assert dn is not None
        sub = ldap.schema.SubSchema(conn.read_subschemasubentry_s(dn))
    finally:
        conn.unbind_s()
    must, may = sub.attribute_types(["user"])
    names = {n.casefold() for a in (*must.values(), *may.values()) for n in a.names}
    assert {"cn", "objectclass"} <= {n.casefold() for a in must.values() for n in a.names}
    wanted = {"samaccountname", "userprincipalname", "mail", "proxyaddresses", "displayname"}
    assert wanted | {"extensionattribute1", "ms-ds-consistencyguid"} <= names
    guid = sub.get_obj(ldap.schema.AttributeType, "objectGUID")
    assert guid.single_value and guid.syntax == "1.3.6.1.4.1.1466.115.121.1.40"


def test_the_schema_attributes_come_only_when_asked_for(directory):
    """attributeTypes, objectClasses and dITContentRules are operational (RFC 4512): a '*'
    search of the subschema entry does not carry them, a search naming them does."""
    conn = connect(directory, "reader")
    dn = subschema_of(conn)
    assert conn.search(dn, "(objectClass=*)", BASE, attributes=["*"])
    assert "attributeTypes" not in conn.entries[0].entry_attributes
    assert conn.search(dn, "(objectClass=subschema)", BASE, attributes=["attributeTypes"])
    assert len(conn.entries[0]["attributeTypes"].values) > 100


def subschema_of(conn: Connection) -> str:
    assert conn.search("", "(objectClass=*)", BASE, attributes=["subschemaSubentry"])
    return conn.entries[0]["subschemaSubentry"].value


# --------------------------------------------------------------- the published tables


def test_the_fake_publishes_every_name_once_and_nothing_dangling():
    published = publish(DEFAULT_SCHEMA)
    names = re.compile(rb"NAME '([^']+)'")
    types = [names.search(v).group(1).decode().casefold() for v in published.attribute_types]
    classes = [names.search(v).group(1).decode().casefold() for v in published.object_classes]
    assert len(types) == len(set(types)) and len(classes) == len(set(classes))
    assert {t.name.casefold() for t in DEFAULT_SCHEMA} <= set(types)
    assert {c.casefold() for c in CLASS_NAMES} <= set(classes)
    for v in published.object_classes + published.dit_content_rules:
        text = v.decode()
        for part in re.findall(r"(?:MUST|MAY) (\( [^)]* \)|\S+)", text):
            for n in part.strip("() ").split(" $ "):
                assert n.casefold() in types, f"{n} in {text[:60]}"
        sup = re.search(r"SUP (\S+)", text)
        assert sup is None or sup.group(1).casefold() in classes, text[:60]


def test_the_generated_tables_match_microsofts_schema_files():
    """ad_classes' table and ad_schema_2016.tsv are what `python -m
    mockservers.directory.ad_classes` makes of Microsoft's files (Samba's packages ship them)."""
    if not (SAMBA_SCHEMA_FILES / CLASSES_FILE).is_file():
        if os.environ.get("CI"):
            pytest.fail(f"{SAMBA_SCHEMA_FILES} is missing: install samba-ad-provision")
        pytest.skip(f"{SAMBA_SCHEMA_FILES} is missing (samba-ad-provision)")
    classes = read_ldf(SAMBA_SCHEMA_FILES / CLASSES_FILE)
    attributes = read_ldf(SAMBA_SCHEMA_FILES / ATTRIBUTES_FILE)
    assert generate(classes, attributes) == (list(AD_CLASSES), AD_ATTRIBUTE_IDS)
    assert all_of(classes, attributes) == ALL_FILE.read_text(encoding="utf-8")


def test_a_user_sid_in_a_filter_finds_the_user(tenant):
    """AD's way to resolve a SID (tokenGroups, a group's member SIDs) is a filter on objectSid
    with the binary value escaped."""
    run = start_directory(seed_directory(tenant))
    try:
        conn = connect(run, "reader")
        user = tenant.ad_users[3]
        sid = DomainSid.of(tenant.spec.base_dn).binary(FIRST_RID + 3)
        escaped = "".join(f"\\{b:02x}" for b in sid)
        assert conn.search(run.endpoints.base_dn, f"(objectSid={escaped})", attributes=["1.1"])
        assert [normalize_dn(e.entry_dn) for e in conn.entries] == [normalize_dn(user.dn)]
    finally:
        run.stop()
