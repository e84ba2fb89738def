"""Pseudonymisation of a whole generated tenant: nothing original survives, joins, duplicates,
uniqueness, shapes and determinism do.

The tenant comes from the generator and is turned into the records the export readers yield
(AD attributes from `AdUser.ldap_attributes`, mailboxes from `CloudMailbox.to_json`, Graph
users from the same mailboxes), so the test sees the values a real import would.
"""

from __future__ import annotations

import base64
import json
import re
import uuid
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import pytest

from harness.core.dn import normalize_dn, parse_dn, split_rdn
from harness.tenant.generator import generate
from harness.tenant.imports.pseudonym import Pseudonymiser
from harness.tenant.imports.records import AdRecord, GraphUserRecord, MailboxRecord, Origin
from harness.tenant.model import Tenant
from harness.tenant.names import to_ascii
from harness.tenant.spec import TenantSpec

KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))
LONG = "Quarterly budget owner for the London office; contact John at extension 4411. " * 14
DUPLICATE = "smtp:shared.alias@contoso.com"

# Values that are not identifying and stay as they are (numbers, times, flags, enumerations).
NOT_IDENTIFYING = {
    "objectclass", "useraccountcontrol", "whencreated", "whenchanged", "usncreated",
    "usnchanged", "msexchrecipienttypedetails", "msexchrecipientdisplaytype",
    "msexchremoterecipienttype", "msexchhidefromaddresslists", "isdirsynced",
    "isexchangecloudmanaged", "recipienttypedetails", "hiddenfromaddresslistsenabled",
    "onpremisessyncenabled", "pwdlastset", "accountexpires", "lastlogontimestamp", "grouptype",
}  # fmt: skip
# Well-known words AD and Exchange put in every tenant, and the address prefixes; "cloud" is
# also a word of the import report's own ("cloud-managed"), and of the generated DL-Cloud-001.
ALLOWED = {
    "smtp", "x500", "onmicrosoft", "mail", "exchange", "administrative", "group", "groups",
    "fydibohf23spdlt", "recipients", "exchangelabs", "users", "schema", "configuration",
    "person", "databases", "services", "microsoft", "usermailbox", "sharedmailbox",
    "roommailbox", "equipmentmailbox", "mailuser", "cloud",
}  # fmt: skip
_GUIDISH = re.compile(r"[0-9a-f]{8}-(?:[0-9a-f]{4}-){3}[0-9a-f]{12}|[0-9a-f]{32}")
_SPLIT = re.compile(r"[\W_]+")


def _tenant() -> Tenant:
    spec = TenantSpec.from_mapping(
        {"mailboxes": 300, "seed": 7, "non_ascii_fraction": 0.2, "special_cn_fraction": 0.1}
    )
    t = generate(spec)
    # users and mailboxes 3 and 4 are synced pairs: give both a duplicate proxy address, and
    # the first a 1,024-character custom attribute
    for user, mbx in zip(t.ad_users[3:5], t.mailboxes[3:5], strict=True):
        user.proxy_addresses = (*user.proxy_addresses, DUPLICATE)
        mbx.email_addresses = user.proxy_addresses
    custom = (LONG[:1024], *t.ad_users[3].extension_attributes[1:])
    t.ad_users[3].extension_attributes = t.mailboxes[3].custom_attributes = custom
    return t


def ad_records(t: Tenant) -> Iterator[AdRecord]:
    """The tenant's OUs, domain object and users as an AD reader yields them (one at a time,
    so the benchmark can run 200,000 users without holding every record)."""
    for ou in t.ous:
        attrs: dict[str, list[str | bytes]] = {
            "objectClass": ["top", "organizationalUnit"],
            "ou": [ou.name],
        }
        yield AdRecord(ou.dn, attrs, Origin("directory.ldif"))
    yield AdRecord(
        t.base_dn,
        {"objectClass": ["top", "domain", "domainDNS"], "dc": [t.spec.domain_label]},
        Origin("directory.ldif"),
    )
    for i, u in enumerate(t.ad_users):
        attrs = {name: list(vs) for name, vs in u.ldap_attributes(t.object_category_person)}
        yield AdRecord(u.dn, attrs, Origin("directory.ldif", i + 1))


def mailbox_records(t: Tenant) -> Iterator[MailboxRecord]:
    for i, m in enumerate(t.mailboxes):
        yield MailboxRecord(m.to_json(), Origin("mailboxes.json", i + 1))


def graph_records(t: Tenant) -> Iterator[GraphUserRecord]:
    for i, m in enumerate(t.mailboxes):
        props = {
            "id": m.id,
            "onPremisesImmutableId": m.immutable_id,
            "onPremisesSyncEnabled": m.is_dir_synced,
            "userPrincipalName": m.user_principal_name,
            "mail": m.primary_smtp_address,
            "mailNickname": m.alias,
            "displayName": m.display_name,
            "proxyAddresses": list(m.email_addresses),
            "onPremisesExtensionAttributes": {
                f"extensionAttribute{k}": v for k, v in enumerate(m.custom_attributes, 1)
            },
        }
        yield GraphUserRecord(props, Origin("users.json", i + 1))


def tenant_records(t: Tenant) -> tuple[list[AdRecord], list[MailboxRecord], list[GraphUserRecord]]:
    return list(ad_records(t)), list(mailbox_records(t)), list(graph_records(t))


def _run(key: bytes, t: Tenant) -> tuple[Pseudonymiser, list[AdRecord], list[Any], list[Any]]:
    ad, exo, graph = tenant_records(t)
    p = Pseudonymiser(key)
    return p, [p.ad(r) for r in ad], [p.mailbox(r) for r in exo], [p.graph_user(r) for r in graph]


def _forms(v: str | bytes) -> list[str]:
    """A value as text, and a binary value in every spelling an export may use."""
    if isinstance(v, str):
        return [v]
    out = [v.hex(), base64.b64encode(v).decode()]
    if len(v) == 16:
        out.append(str(uuid.UUID(bytes_le=v)))
    return out


def _values(ad: list[AdRecord], exo: list[Any], graph: list[Any]) -> list[str]:
    out: list[str] = []
    for r in ad:
        out.append(r.dn)
        for name, vs in r.attrs.items():
            if name.casefold() not in NOT_IDENTIFYING:
                for v in vs:
                    out += _forms(v)

    def walk(name: str, v: Any) -> None:
        if isinstance(v, str) and name.casefold() not in NOT_IDENTIFYING:
            out.append(v)
        elif isinstance(v, list):
            for x in v:
                walk(name, x)
        elif isinstance(v, dict):
            for k, x in v.items():
                walk(k, x)

    for rec in (*exo, *graph):
        for k, v in rec.props.items():
            walk(k, v)
    return out


def _words(values: list[str]) -> set[str]:
    """Words of 4+ characters with at least one letter (GUIDs as whole words: their 4-digit
    groups would otherwise match other GUIDs by chance)."""
    words: set[str] = set()
    for v in values:
        low = v.casefold()
        words.update(_GUIDISH.findall(low))
        for w in _SPLIT.split(_GUIDISH.sub(" ", low)):
            if len(w) >= 4 and not w.isdigit():
                words.add(w)
    return words


@pytest.fixture(scope="module")
def tenant() -> Tenant:
    return _tenant()


@pytest.fixture(scope="module")
def result(tenant: Tenant) -> tuple[Pseudonymiser, list[AdRecord], list[Any], list[Any]]:
    return _run(KEY, tenant)


def test_no_original_value_or_word_survives(tenant, result) -> None:
    ad_in, exo_in, graph_in = tenant_records(tenant)
    _, ad, exo, graph = result
    originals = _values(ad_in, exo_in, graph_in)
    outputs = _values(ad, exo, graph)
    out_values = {v.casefold() for v in outputs}
    out_words = _words(outputs)
    surviving_values = {
        v
        for v in originals
        if len(v) >= 4 and v.casefold() in out_values and v.casefold() not in ALLOWED
    }
    assert not surviving_values
    surviving_words = (_words(originals) - ALLOWED) & out_words
    assert not surviving_words
    # and the input really had words to lose: names, the domain, the sites
    surname = next(u.sn for u in tenant.ad_users if u.sn and len(u.sn) >= 4)
    assert {"contoso", surname.casefold()} <= _words(originals)


def test_joins_survive(tenant, result) -> None:
    _, ad, exo, graph = result
    users = ad[len(tenant.ous) + 1 :]
    by_anchor = {
        base64.b64encode(r.attrs["mS-DS-ConsistencyGuid"][0]).decode(): r
        for r in users
        if "mS-DS-ConsistencyGuid" in r.attrs
    }
    pairs = 0
    for i, (src, out) in enumerate(zip(tenant.mailboxes, exo, strict=True)):
        assert graph[i].props["id"] == out.props["id"]
        assert graph[i].props["onPremisesImmutableId"] == out.props["onPremisesImmutableId"]
        if src.immutable_id is None:
            assert out.props["onPremisesImmutableId"] is None
            continue
        user = by_anchor[out.props["onPremisesImmutableId"]]
        assert user.attrs["userPrincipalName"] == [out.props["UserPrincipalName"]]
        assert user.attrs["mailNickname"] == [out.props["Alias"]]
        assert user.attrs["proxyAddresses"] == out.props["EmailAddresses"]
        # objectGUID and the consistency GUID were one GUID, and still are
        assert user.attrs["objectGUID"] == user.attrs["mS-DS-ConsistencyGuid"]
        pairs += 1
    assert pairs == len(list(tenant.synced_pairs()))


def test_duplicates_stay_duplicates_and_distinct_stays_distinct(tenant, result) -> None:
    ad_in, _, _ = tenant_records(tenant)
    _, ad, _, _ = result
    forward: dict[str, set[str]] = defaultdict(set)
    backward: dict[str, set[str]] = defaultdict(set)
    for src, out in zip(ad_in, ad, strict=True):
        for a, b in zip(
            src.attrs.get("proxyAddresses", []), out.attrs.get("proxyAddresses", []), strict=True
        ):
            assert isinstance(a, str) and isinstance(b, str)
            forward[a.casefold()].add(b.casefold())
            backward[b.casefold()].add(a.casefold())
    assert all(len(v) == 1 for v in forward.values())
    assert all(len(v) == 1 for v in backward.values())
    (dup,) = forward[DUPLICATE]
    holders = [
        r for r in ad if dup in [str(v).casefold() for v in r.attrs.get("proxyAddresses", [])]
    ]
    assert len(holders) == 2
    # sAMAccountName, UPN and DN stay unique
    for attr in ("sAMAccountName", "userPrincipalName"):
        vals = [str(r.attrs[attr][0]).casefold() for r in ad if attr in r.attrs]
        assert len(vals) == len(set(vals))
    assert len({normalize_dn(r.dn) for r in ad}) == len(ad)


def test_same_key_same_output_other_key_other_output(tenant, result) -> None:
    def dump(run: tuple[Pseudonymiser, list[AdRecord], list[Any], list[Any]]) -> str:
        _, ad, exo, graph = run
        rows = [[r.dn, {k: [_forms(v) for v in vs] for k, vs in r.attrs.items()}] for r in ad]
        return json.dumps([rows, [r.props for r in exo], [r.props for r in graph]])

    again = _run(KEY, tenant)
    assert dump(again) == dump(result)
    assert again[0].summary() == result[0].summary()
    other = _run(OTHER_KEY, tenant)
    _, ad1, _, _ = result
    _, ad2, _, _ = other
    assert dump(other) != dump(result)
    changed = sum(
        a.attrs["displayName"] != b.attrs["displayName"]
        for a, b in zip(ad1, ad2, strict=True)
        if "displayName" in a.attrs
    )
    assert changed > 0.9 * len(tenant.ad_users)


def test_addresses_keep_prefix_case_shape_and_domain_pattern(tenant, result) -> None:
    _, _, exo, _ = result
    spec = tenant.spec
    for src, out in zip(tenant.mailboxes, exo, strict=True):
        for a, b in zip(src.email_addresses, out.props["EmailAddresses"], strict=True):
            prefix = a.split(":", 1)[0]
            assert b.split(":", 1)[0] == prefix  # SMTP / smtp / X500 exactly
            if prefix.casefold() == "x500":
                assert b.count("/") == a.count("/")
                assert "/ou=Exchange Administrative Group (FYDIBOHF23SPDLT)/cn=Recipients/" in b
                continue
            local, dom = a[len(prefix) + 1 :].rsplit("@", 1)
            new_local, new_dom = b[len(prefix) + 1 :].rsplit("@", 1)
            assert len(new_local) == len(local)
            if dom == spec.routing_domain:
                assert re.fullmatch(r"[a-z0-9-]+\.mail\.onmicrosoft\.com", new_dom)
                assert len(new_dom) == len(dom)
            elif dom == spec.onmicrosoft_domain:
                assert re.fullmatch(r"[a-z0-9-]+\.onmicrosoft\.com", new_dom)
            else:
                assert new_dom.endswith(".example")
                assert new_dom.count(".") == dom.count(".")
    p = result[0]
    tenant_label = p.domain(spec.onmicrosoft_domain).split(".")[0]
    assert p.domain(spec.routing_domain) == f"{tenant_label}.mail.onmicrosoft.com"
    domains = [spec.domain, *spec.extra_domains, spec.onmicrosoft_domain, spec.routing_domain]
    assert len({p.domain(d) for d in domains}) == len(domains)


def test_names_keep_their_shape(tenant, result) -> None:
    _, ad, exo, _ = result
    users = ad[len(tenant.ous) + 1 :]
    initials = same_pattern = 0
    for src, out in zip(tenant.ad_users, users, strict=True):
        for attr in ("cn", "displayName", "sAMAccountName", "givenName", "sn"):
            if attr in out.attrs:
                # same length, counted after transliteration (Kjær's alias is kjaer)
                assert len(str(out.attrs[attr][0])) == len(to_ascii(getattr(src, _field(attr))))
        if src.cn == src.display_name:
            assert out.attrs["cn"] == out.attrs["displayName"]  # the CN follows the name
        if (
            src.given_name
            and src.sn
            and src.sam_account_name == (src.given_name[0] + src.sn).lower()
        ):
            same_pattern += 1
            given, sn = str(out.attrs["givenName"][0]), str(out.attrs["sn"][0])
            initials += out.attrs["sAMAccountName"] == [(given[0] + sn).lower()]
    assert same_pattern > 100
    assert initials >= 0.95 * same_pattern
    # the 1,024-character custom attribute stays 1,024 characters, in AD and Exchange Online
    assert len(str(users[3].attrs["extensionAttribute1"][0])) == 1024
    assert len(exo[3].props["CustomAttribute1"]) == 1024
    assert exo[3].props["CustomAttribute1"] == users[3].attrs["extensionAttribute1"][0]


def _field(attr: str) -> str:
    return {
        "cn": "cn",
        "displayName": "display_name",
        "sAMAccountName": "sam_account_name",
        "givenName": "given_name",
        "sn": "sn",
    }[attr]


def test_tree_shape_is_kept(tenant, result) -> None:
    ad_in, _, _ = tenant_records(tenant)
    _, ad, _, _ = result
    out_of = {normalize_dn(a.dn): normalize_dn(b.dn) for a, b in zip(ad_in, ad, strict=True)}
    for a, b in zip(ad_in, ad, strict=True):
        src, dst = parse_dn(a.dn), parse_dn(b.dn)
        assert [[t.casefold() for t, _ in r] for r in src] == [
            [t.casefold() for t, _ in r] for r in dst
        ]
        parent = split_rdn(a.dn)[1]
        if parent and normalize_dn(parent) in out_of:
            assert normalize_dn(split_rdn(b.dn)[1]) == out_of[normalize_dn(parent)]
    domain = ad[len(tenant.ous)]
    assert domain.attrs["dc"] == [parse_dn(domain.dn)[0][0][1]]
    users = ad[len(tenant.ous) + 1 :]
    category = str(users[0].attrs["objectCategory"][0])
    assert category == f"CN=Person,CN=Schema,CN=Configuration,{domain.dn}"
    # well-known containers keep their names
    assert any(",OU=Users," in r.dn for r in users)
