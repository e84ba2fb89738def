"""The LDIF export, read back by an independent parser (ldaptor's) and checked line by line."""

import base64

import pytest
from ldaptor.protocols.ldap.distinguishedname import DistinguishedName
from ldaptor.protocols.ldap.ldifprotocol import LDIF

from harness.tenant import TenantSpec, generate
from harness.tenant.ldif import WIDTH, attribute_line, directory_entries, ldif_chunks


def parse_with_ldaptor(data: bytes):
    got = []

    class Collector(LDIF):
        def gotEntry(self, entry):
            got.append(entry)

    parser = Collector()
    parser.dataReceived(data)
    parser.connectionLost()
    return got


@pytest.fixture(scope="module")
def tenant():
    return generate(
        TenantSpec(
            mailboxes=300,
            seed=42,
            non_ascii_fraction=0.3,
            special_cn_fraction=0.3,
            x500_fraction=0.5,
        )
    )


@pytest.fixture(scope="module")
def ldif_bytes(tenant):
    return "".join(ldif_chunks(tenant)).encode("utf-8")


def encoded(value):
    return value if isinstance(value, bytes) else value.encode("utf-8")


def test_every_entry_reads_back_unchanged(tenant, ldif_bytes):
    parsed = parse_with_ldaptor(ldif_bytes)
    expected = list(directory_entries(tenant))
    entries = 1 + len(tenant.ous) + len(tenant.ad_users) + len(tenant.groups)
    assert len(parsed) == len(expected) == entries
    for entry, (dn, attributes) in zip(parsed, expected, strict=True):
        assert entry.dn == DistinguishedName(dn)
        assert {k.decode() for k in entry} == {name for name, _ in attributes}
        for name, values in attributes:
            assert set(entry[name.encode()]) == {encoded(v) for v in values}, (dn, name)


def test_lines_are_ascii_folded_and_separated(ldif_bytes):
    text = ldif_bytes.decode("ascii")  # non-ASCII values must all be base64
    lines = text.split("\n")
    assert lines[1] == "version: 1"
    assert all(len(line) <= WIDTH for line in lines)
    records = text.split("\n\n")
    assert all(r.startswith(("dn: ", "dn:: ", "#")) for r in records if r.strip())
    assert text.endswith("\n\n")


def test_binary_and_non_ascii_values_are_base64(tenant):
    user = next(u for u in tenant.ad_users if not u.display_name.isascii())
    line = attribute_line("displayName", user.display_name)
    assert line.startswith("displayName:: ")
    assert (
        base64.b64decode(line.split(":: ", 1)[1].replace("\n ", "")).decode() == user.display_name
    )
    guid_line = attribute_line("objectGUID", user.object_guid)
    assert base64.b64decode(guid_line.split(":: ")[1]) == user.object_guid


@pytest.mark.parametrize(
    ("value", "b64"),
    [
        ("plain", False),
        (" leading space", True),
        (":colon first", True),
        ("<angle first", True),
        ("trailing space ", True),
        ("line\nbreak", True),
        ("carriage\rreturn", True),
        ("mid: colon < ok", False),
        ("Zürich", True),
    ],
)
def test_safe_string_rules(value, b64):
    line = attribute_line("description", value)
    assert line.startswith("description:: " if b64 else "description: ")


def test_long_values_fold_and_unfold():
    value = "x" * 500
    line = attribute_line("description", value)
    assert all(len(part) <= WIDTH for part in line.split("\n"))
    assert line.replace("\n ", "") == f"description: {value}"
