"""The pseudonymiser value by value: key files, policy files, GUID and SID forms, addresses,
DNs, free-text policies and the one-line errors."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from harness.tenant.imports.pseudonym import FREE_TEXT_POLICIES, Pseudonymiser, load_policy
from harness.tenant.imports.records import (
    AdRecord,
    ExportError,
    GraphUserRecord,
    MailboxRecord,
    Origin,
)

KEY = b"\x11" * 32
GUID = uuid.UUID("0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9")


def ad(dn: str, **attrs: list[str | bytes]) -> AdRecord:
    return AdRecord(dn, dict(attrs), Origin("directory.ldif", 12))


def mbx(**props: object) -> MailboxRecord:
    return MailboxRecord(dict(props), Origin("mailboxes.json", 3))


def sid_bytes(*subs: int) -> bytes:
    return bytes([1, len(subs), 0, 0, 0, 0, 0, 5]) + b"".join(s.to_bytes(4, "little") for s in subs)


# ---------------------------------------------------------------------- key files
def test_key_file_as_hex_base64_or_raw_bytes(tmp_path: Path) -> None:
    raw = bytes(range(40))
    (tmp_path / "hex").write_text(raw.hex() + "\n")
    (tmp_path / "b64").write_text(base64.b64encode(raw).decode() + "\n")
    (tmp_path / "raw").write_bytes(raw)
    rec = ad("CN=Ann Lee,DC=contoso,DC=com", displayName=["Ann Lee"])
    outs = {
        name: Pseudonymiser.from_keyfile(tmp_path / name).ad(rec).dn
        for name in ("hex", "b64", "raw")
    }
    assert len(set(outs.values())) == 1
    assert outs["hex"] == Pseudonymiser(raw).ad(rec).dn


@pytest.mark.parametrize(
    ("content", "what"),
    [(None, "key file not found"), (b"", "empty"), (b"ab" * 8, "holds 8 bytes")],
)
def test_bad_key_file_is_one_line_with_the_hint(tmp_path: Path, content, what) -> None:
    path = tmp_path / "key"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ExportError) as e:
        Pseudonymiser.from_keyfile(path)
    msg = str(e.value)
    assert msg.startswith(f"{path}: ") and what in msg
    assert "secrets.token_hex(32)" in msg and "\n" not in msg


# ---------------------------------------------------------------------- policy files
def test_policy_file_lines_and_yaml(tmp_path: Path) -> None:
    lines = tmp_path / "policy.txt"
    lines.write_text("# free text\ndescription=keep\nCustomAttribute3 = drop\n")
    assert load_policy(lines) == {"description": "keep", "extensionAttribute3": "drop"}
    yml = tmp_path / "policy.yaml"
    yml.write_text("policies:\n  info: pseudonymize\n  department: keep\n")
    assert load_policy(yml) == {"info": "pseudonymise", "department": "keep"}


def test_policy_file_errors_name_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "policy.yaml"
    bad.write_text("description: keep\ntitle: scramble\n")
    with pytest.raises(ExportError, match=r"policy\.yaml:2: unknown policy 'scramble' for title"):
        load_policy(bad)
    bad.write_text("mail=keep\n")
    with pytest.raises(ExportError, match=r"policy\.yaml:1: mail is not a free-text attribute"):
        load_policy(bad)
    bad.write_text("description: [keep\n")
    with pytest.raises(ExportError, match=r"policy\.yaml:\d+: not a policy file"):
        load_policy(bad)


def test_policies_keep_drop_and_pseudonymise_across_sides() -> None:
    p = Pseudonymiser(KEY, {"extensionAttribute3": "keep", "info": "drop"})
    rec = ad(
        "CN=Ann Lee,OU=Staff,DC=contoso,DC=com",
        extensionAttribute3=["London"],
        info=["called about the reorg"],
        description=["Budget owner, London"],
    )
    out = p.ad(rec).attrs
    assert out["extensionAttribute3"] == ["London"]
    assert "info" not in out
    assert out["description"][0] != "Budget owner, London"
    assert len(out["description"][0]) == len("Budget owner, London")
    m = p.mailbox(mbx(CustomAttribute3="London", Notes="x", CustomAttribute4="Budget owner"))
    assert m.props["CustomAttribute3"] == "London"  # the same policy for EXO's spelling
    assert m.props["Notes"] is None
    # the same free text maps alike in AD and EXO
    assert m.props["CustomAttribute4"] == out["description"][0][: len("Budget owner")]
    summary = p.summary()
    assert summary["policies"]["extensionAttribute3"] == {"policy": "keep", "values": 2}
    assert summary["policies"]["info"]["policy"] == "drop"
    assert summary["counts"]["dropped_values"] == 2
    assert "London" not in repr({k: v for k, v in summary.items() if k != "policies"})
    assert set(FREE_TEXT_POLICIES.values()) == {"pseudonymise"}


def test_identity_attributes_refuse_a_policy() -> None:
    with pytest.raises(ExportError, match="userPrincipalName is not a free-text attribute"):
        Pseudonymiser(KEY, {"userPrincipalName": "keep"})
    with pytest.raises(ExportError, match="at least 32 bytes"):
        Pseudonymiser(b"short")


# ---------------------------------------------------------------------- GUIDs and SIDs
def test_guid_bytes_text_and_immutable_id_agree() -> None:
    p = Pseudonymiser(KEY)
    out = p.ad(
        ad(
            "CN=Ann Lee,DC=contoso,DC=com",
            objectGUID=[GUID.bytes_le],
            **{"mS-DS-ConsistencyGuid": [GUID.bytes_le], "msExchMailboxGuid": [GUID.bytes_le]},
        )
    ).attrs
    new = uuid.UUID(bytes_le=bytes(out["objectGUID"][0]))
    assert new != GUID and new.version == GUID.version and new.variant == GUID.variant
    m = p.mailbox(
        mbx(
            Guid=str(GUID),
            ExchangeGuid=str(GUID).upper(),
            ImmutableId=base64.b64encode(GUID.bytes_le).decode(),
            ExternalDirectoryObjectId="{" + str(GUID) + "}",
        )
    ).props
    assert m["Guid"] == str(new)
    assert m["ExchangeGuid"] == str(new).upper()
    assert m["ImmutableId"] == base64.b64encode(bytes(out["mS-DS-ConsistencyGuid"][0])).decode()
    assert m["ExternalDirectoryObjectId"] == "{" + str(new) + "}"
    g = p.graph_user(
        GraphUserRecord(
            {"id": str(GUID), "onPremisesImmutableId": str(GUID)}, Origin("users.json", 1)
        )
    ).props
    assert g["id"] == str(new) and g["onPremisesImmutableId"] == str(new)
    ext = p.ad(ad("CN=x,DC=contoso,DC=com", **{"msDS-ExternalDirectoryObjectId": [f"User_{GUID}"]}))
    assert ext.attrs["msDS-ExternalDirectoryObjectId"] == [f"User_{new}"]


def test_distinct_guids_stay_distinct() -> None:
    p = Pseudonymiser(KEY)
    guids = [uuid.UUID(int=i << 64 | i) for i in range(2000)]
    assert len({p._guid_text(str(g)) for g in guids}) == len(guids)


def test_sids_keep_rid_and_map_each_domain_consistently() -> None:
    p = Pseudonymiser(KEY)
    a = sid_bytes(21, 1111, 2222, 3333, 1104)
    b = sid_bytes(21, 1111, 2222, 3333, 1105)
    other = sid_bytes(21, 4444, 5555, 6666, 1104)
    builtin = (
        bytes([1, 2, 0, 0, 0, 0, 0, 5]) + (32).to_bytes(4, "little") + (544).to_bytes(4, "little")
    )
    out = p.ad(ad("CN=x,DC=contoso,DC=com", objectSid=[a], sIDHistory=[b, other, builtin])).attrs
    new_a, (new_b, new_other, new_builtin) = out["objectSid"][0], out["sIDHistory"]
    assert new_a[:8] == a[:8] and new_a[-4:] == a[-4:] and new_a[8:12] == a[8:12]
    assert new_a[12:24] != a[12:24]
    assert new_a[12:24] == bytes(new_b)[12:24] != bytes(new_other)[12:24]
    assert new_builtin == builtin
    text = p.graph_user(
        GraphUserRecord(
            {"onPremisesSecurityIdentifier": "S-1-5-21-1111-2222-3333-1104"}, Origin("u", 1)
        )
    ).props["onPremisesSecurityIdentifier"]
    subs = [int.from_bytes(bytes(new_a)[i : i + 4], "little") for i in range(8, 28, 4)]
    assert text == "S-1-5-" + "-".join(map(str, subs))


# ---------------------------------------------------------------------- addresses and DNs
def test_addresses_prefixes_case_and_name_tokens() -> None:
    p = Pseudonymiser(KEY)
    out = p.ad(
        ad(
            "CN=Smith\\, John,OU=Sales,DC=contoso,DC=com",
            givenName=["John"],
            sn=["Smith"],
            cn=["Smith, John"],
            displayName=["John Smith"],
            proxyAddresses=[
                "SMTP:John.Smith@contoso.com",
                "smtp:john.smith@contoso.mail.onmicrosoft.com",
                "smtp:jsmith@contoso.com",
                "sip:john.smith@contoso.com",
                "X500:/o=Contoso/ou=Exchange Administrative Group (FYDIBOHF23SPDLT)"
                "/cn=Recipients/cn=0123456789abcdef0123456789abcdef-John Smith",
            ],
        )
    ).attrs
    given, sn = str(out["givenName"][0]), str(out["sn"][0])
    assert out["displayName"] == [f"{given} {sn}"]
    assert out["cn"] == [f"{sn}, {given}"]
    primary, routing, short, sip, x500 = (str(v) for v in out["proxyAddresses"])
    assert primary.startswith(f"SMTP:{given}.{sn}@") and primary.endswith(".example")
    assert routing.startswith(f"smtp:{given.lower()}.{sn.lower()}@")
    assert routing.endswith(".mail.onmicrosoft.com")
    assert short.startswith(f"smtp:{given[0].lower()}{sn.lower()}@")
    assert sip.startswith("sip:")
    head = "/ou=Exchange Administrative Group (FYDIBOHF23SPDLT)/cn=Recipients/cn="
    assert x500.startswith("X500:/o=") and head in x500 and x500.endswith(f"-{given} {sn}")
    assert "/o=Contoso/" not in x500
    assert "0123456789abcdef0123456789abcdef" not in x500


def test_domains_one_to_one_depth_and_onmicrosoft() -> None:
    p = Pseudonymiser(KEY)
    names = ["contoso.com", "contoso.de", "contoso.co.uk", "eu.contoso.com", "fabrikam.com"]
    mapped = [p.domain(d) for d in names]
    assert len(set(mapped)) == len(names)
    assert all(m.endswith(".example") for m in mapped)
    assert [m.count(".") for m in mapped] == [d.count(".") for d in names]
    assert mapped[3].endswith("." + mapped[0])  # a subdomain stays under its parent
    label = p.domain("contoso.onmicrosoft.com").removesuffix(".onmicrosoft.com")
    assert label != "contoso" and "." not in label
    assert p.domain("contoso.mail.onmicrosoft.com") == f"{label}.mail.onmicrosoft.com"
    assert p.domain("CONTOSO.COM") == mapped[0].upper()
    assert p.domain("contoso.com") == Pseudonymiser(KEY).domain("contoso.com")


def test_dn_tree_well_known_containers_and_escaping() -> None:
    p = Pseudonymiser(KEY)
    user = p.ad(
        ad(
            "CN=#Lab \\+ Ops,OU=Paris,OU=Sites,DC=contoso,DC=com",
            manager=["CN=Ann Lee,CN=Users,DC=contoso,DC=com"],
            objectCategory=["CN=Person,CN=Schema,CN=Configuration,DC=contoso,DC=com"],
            homeMDB=[
                "CN=DB01,CN=Databases,CN=Exchange Administrative Group (FYDIBOHF23SPDLT),"
                "CN=Administrative Groups,CN=Contoso,CN=Microsoft Exchange,CN=Services,"
                "CN=Configuration,DC=contoso,DC=com"
            ],
        )
    )
    base = "DC=" + p.domain("contoso.com").replace(".", ",DC=")
    assert user.dn.startswith("CN=\\#") and "\\+" in user.dn  # escaped again by harness/core/dn
    assert user.dn.endswith(
        f",OU={p.dn('OU=Sites,' + 'DC=contoso,DC=com').split(',')[0][3:]},{base}"
    )
    assert str(user.attrs["manager"][0]).endswith(f",CN=Users,{base}")
    assert user.attrs["objectCategory"] == [f"CN=Person,CN=Schema,CN=Configuration,{base}"]
    mdb = str(user.attrs["homeMDB"][0])
    assert ",CN=Databases,CN=Exchange Administrative Group (FYDIBOHF23SPDLT)," in mdb
    assert "CN=Contoso," not in mdb and mdb.endswith(f",CN=Services,CN=Configuration,{base}")
    dom = p.ad(ad("DC=contoso,DC=com", dc=["contoso"]))
    assert dom.dn == base and dom.attrs["dc"] == [base.split(",")[0][3:]]


def test_kept_values_and_unknown_attributes() -> None:
    p = Pseudonymiser(KEY)
    out = p.ad(
        ad(
            "CN=x,DC=contoso,DC=com",
            objectClass=["top", "person", "organizationalPerson", "user"],
            userAccountControl=["512"],
            whenCreated=["20240115093012.0Z"],
            msExchHideFromAddressLists=["TRUE"],
            msExchUserCulture=["en-US"],
            customThing=["Project Falcon lead"],
        )
    ).attrs
    assert out["objectClass"] == ["top", "person", "organizationalPerson", "user"]
    assert out["userAccountControl"] == ["512"]
    assert out["whenCreated"] == ["20240115093012.0Z"]
    assert out["msExchHideFromAddressLists"] == ["TRUE"]
    assert out["customThing"] != ["Project Falcon lead"]
    m = p.mailbox(
        mbx(
            RecipientTypeDetails="UserMailbox",
            IsDirSynced=True,
            WhenCreated="\\/Date(1700000000000)\\/",
            ArchiveStatus="None",
            EmailAddresses=[],
            CustomAttribute1=None,
        )
    ).props
    assert m == {
        "RecipientTypeDetails": "UserMailbox",
        "IsDirSynced": True,
        "WhenCreated": "\\/Date(1700000000000)\\/",
        "ArchiveStatus": "None",
        "EmailAddresses": [],
        "CustomAttribute1": None,
    }


def test_graph_extension_attributes_follow_the_custom_attribute_policy() -> None:
    p = Pseudonymiser(KEY, {"extensionAttribute2": "drop"})
    g = p.graph_user(
        GraphUserRecord(
            {
                "displayName": "Ann Lee",
                "onPremisesExtensionAttributes": {
                    "extensionAttribute1": "E001234",
                    "extensionAttribute2": "secret",
                    "extensionAttribute3": None,
                },
            },
            Origin("users.json", 4),
        )
    ).props
    ext = g["onPremisesExtensionAttributes"]
    m = p.mailbox(mbx(CustomAttribute1="E001234")).props
    assert ext["extensionAttribute1"] == m["CustomAttribute1"] != "E001234"
    assert len(ext["extensionAttribute1"]) == 7
    assert ext["extensionAttribute2"] is None and ext["extensionAttribute3"] is None


def test_bad_dn_is_one_line_naming_file_line_and_attribute() -> None:
    p = Pseudonymiser(KEY)
    with pytest.raises(ExportError) as e:
        p.ad(ad("CN=x,DC=contoso,DC=com", manager=["not a dn"]))
    assert str(e.value).startswith("directory.ldif:12: manager: not a valid DN")
    with pytest.raises(ExportError, match=r"directory\.ldif:12: dn: not a valid DN"):
        p.ad(ad("CN=x,,DC=com"))


def test_every_initial_keeps_one_letter_and_its_case() -> None:
    p = Pseudonymiser(KEY)
    letters = "abcdefghijklmnopqrstuvwxyz"
    out = p.ad(ad("CN=x,DC=contoso,DC=com", initials=list(letters + letters.upper())))
    mapped = [str(v) for v in out.attrs["initials"]]
    assert all(len(v) == 1 for v in mapped)
    assert len(set(mapped[:26])) == 26 and "".join(mapped[26:]) == "".join(mapped[:26]).upper()


_DIGEST = """
import hashlib, json
from harness.tenant import TenantSpec, generate
from harness.tenant.imports.pseudonym import Pseudonymiser
from tests.imports.test_pseudonym import ad_records, graph_records, mailbox_records
t = generate(TenantSpec(mailboxes=60, seed=3))
p = Pseudonymiser(bytes(range(32)))
h = hashlib.sha256()
for r in ad_records(t):
    o = p.ad(r)
    h.update(repr((o.dn, sorted(o.attrs.items()))).encode())
for r in mailbox_records(t):
    h.update(json.dumps(p.mailbox(r).props, sort_keys=True).encode())
for r in graph_records(t):
    h.update(json.dumps(p.graph_user(r).props, sort_keys=True).encode())
h.update(json.dumps(p.summary(), sort_keys=True).encode())
print(h.hexdigest())
"""


def test_output_is_the_same_in_every_process() -> None:
    """No dependence on str hashing or set order: two interpreters with different hash seeds
    give byte-identical output."""
    root = Path(__file__).resolve().parents[2]
    digests = set()
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(root)}
        run = subprocess.run(
            [sys.executable, "-c", _DIGEST], env=env, cwd=root, capture_output=True, text=True
        )
        assert run.returncode == 0, run.stderr
        digests.add(run.stdout.strip())
    assert len(digests) == 1


def test_names_that_fold_alike_stay_two_names() -> None:
    """Eugène and Eugene (and Eugéne) are three users; folding them to one key for the alias
    must not merge their DNs, which would drop a user from the imported tenant."""
    from harness.tenant.imports.pseudonym import Pseudonymiser
    from harness.tenant.imports.records import AdRecord, Origin

    p = Pseudonymiser(bytes(range(32)))
    dns = [
        p.ad(
            AdRecord(
                f"CN={n} Mcdonald,OU=Sales,DC=contoso,DC=com",
                {"cn": [f"{n} Mcdonald"]},
                Origin("ad.ldf", i),
            )
        ).dn
        for i, n in enumerate(("Eugène", "Eugene", "Eugéne", "EUGÈNE"), 1)
    ]
    assert len({d.casefold() for d in dns[:3]}) == 3
    assert dns[3].casefold() == dns[0].casefold()  # case alone is the same name
    assert dns[1].split(",")[0].isascii() and not dns[0].split(",")[0].isascii()
