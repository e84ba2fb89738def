"""From files to files: a generated tenant exported as an admin would, imported back.

Two promises of `exwb import` that only hold across the whole path (writers, encodings,
readers, joins, pseudonymiser, folder): the round trip gives the same tenant, and with
`--pseudonymise` no original token reaches any output file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from harness.tenant import TenantSpec, generate
from harness.tenant.exports import EXPORT_FORMATS, export_tenant
from harness.tenant.files import CLOUD_NAME, LDIF_NAME, read_cloud_jsonl
from harness.tenant.imports.ad import read_ad
from harness.tenant.imports.build import import_tenant
from harness.tenant.imports.exo import read_mailboxes
from harness.tenant.imports.graph import read_graph_users
from harness.tenant.model import CloudMailbox, Tenant
from tests.imports.test_pseudonym import ALLOWED, KEY, _tenant, _values, _words

# Each pairing reads through a different reader and encoding: LDIF (CRLF, folded at 80,
# UTF-16LE), ldapsearch LDIF, csvde (X'hex', ';'-joined, UTF-16LE), Get-ADUser CSV; Get-Mailbox
# JSON (PowerShell 7 and 5.1 with /Date()/ and UTF-16LE) and CSV; Graph pages and Get-MgUser.
PAIRINGS = [
    ("ldifde", "get-mailbox-json", "graph-users"),
    ("ldifde-u", "get-mailbox-json-ps51", "get-mguser"),
    ("ldapsearch", "get-mailbox-csv", None),
    ("csvde-u", "get-mailbox-json", "graph-users"),
    ("get-aduser", "get-mailbox-json-ps51", None),
]


@pytest.fixture(scope="module")
def tenant() -> Tenant:
    spec = TenantSpec.from_mapping(
        {"mailboxes": 120, "seed": 11, "non_ascii_fraction": 0.25, "special_cn_fraction": 0.1}
    )
    return generate(spec)


def _exported(tenant: Tenant, folder: Path, names: tuple[str | None, ...]) -> list[Path | None]:
    wanted = [n for n in names if n]
    written = export_tenant(tenant, folder, wanted)
    return [written[n] if n else None for n in names]


def _by_id(mailboxes: list[CloudMailbox]) -> dict[str, dict[str, Any]]:
    return {m.id: m.to_json() for m in mailboxes}


@pytest.mark.parametrize(
    ("ad", "exo", "graph"), PAIRINGS, ids=["+".join(filter(None, p)) for p in PAIRINGS]
)
def test_generate_export_import_gives_the_same_tenant(
    tenant: Tenant, tmp_path: Path, ad: str, exo: str, graph: str | None
) -> None:
    ad_file, exo_file, graph_file = _exported(tenant, tmp_path / "exports", (ad, exo, graph))
    assert ad_file and exo_file
    out = tmp_path / "imported"
    import_tenant([ad_file], exo_file, graph_file, out)

    # Exchange Online: every recipient, every property, joined to the same anchor.
    assert _by_id(read_cloud_jsonl(out / CLOUD_NAME)) == _by_id(tenant.mailboxes)

    # AD: every user with the attributes the generator gave it (the export adds objectSid,
    # which the model does not hold; the import may add what AD derives).
    imported = {r.dn.casefold(): r.attrs for r in read_ad(out / LDIF_NAME, "ldif")}
    for user in tenant.ad_users:
        got = {k.casefold(): v for k, v in imported[user.dn.casefold()].items()}
        for name, values in user.ldap_attributes(tenant.object_category_person):
            if name in ("whenCreated", "whenChanged", "uSNCreated", "uSNChanged"):
                continue  # the directory's own bookkeeping, not an export's data
            assert got.get(name.casefold()) == list(values), (user.dn, name)
    ous = {ou.dn.casefold() for ou in tenant.ous}
    if ad.startswith("get-aduser"):
        # Get-ADUser exports users only: the OUs that hold only groups are not in it.
        holding = {u.dn.casefold().split(",", 1)[1] for u in tenant.ad_users}
        ous = {o for o in ous if any(h == o or h.endswith("," + o) for h in holding)}
        assert not any(g.dn.casefold() in imported for g in tenant.groups)
    else:
        # The other AD exports hold the groups, which come back with their members.
        assert tenant.groups
        for g in tenant.groups:
            got = {k.casefold(): v for k, v in imported[g.dn.casefold()].items()}
            for name, values in g.ldap_attributes(tenant.object_category_group):
                if name not in ("whenCreated", "whenChanged", "uSNCreated", "uSNChanged"):
                    assert got.get(name.casefold()) == list(values), (g.dn, name)
    assert ous <= set(imported)


def _output_values(folder: Path) -> list[str]:
    """Every value in every file `exwb import` wrote: LDIF DNs and values, JSON values (keys are
    the formats' own names, not data), so a surviving token cannot hide in any of them."""
    out: list[str] = []
    for rec in read_ad(folder / LDIF_NAME, "ldif"):
        out.append(rec.dn)
        for vs in rec.attrs.values():
            out += [v if isinstance(v, str) else v.hex() for v in vs]

    def walk(v: Any) -> None:
        if isinstance(v, str):
            out.append(v)
        elif isinstance(v, list):
            for x in v:
                walk(x)
        elif isinstance(v, dict):
            for x in v.values():
                walk(x)

    for line in (folder / CLOUD_NAME).read_text(encoding="utf-8").splitlines():
        walk(json.loads(line))
    for name in ("tenant.json", "import-report.json"):
        walk(json.loads((folder / name).read_text(encoding="utf-8")))
    return out


def test_no_original_token_reaches_any_output_file(tmp_path: Path) -> None:
    t = _tenant()  # the pseudonymiser test's tenant: non-ASCII names, a duplicate, 1,024 chars
    files = _exported(t, tmp_path / "exports", ("ldifde", "get-mailbox-json-ps51", "graph-users"))
    ad_file, exo_file, graph_file = files
    assert ad_file and exo_file and graph_file
    key = tmp_path / "tenant.key"
    key.write_text(KEY.hex(), encoding="ascii")
    out = tmp_path / "imported"
    import_tenant([ad_file], exo_file, graph_file, out, pseudonymise=key)

    # What the exports held, read back by the same readers (so every spelling is covered).
    originals = _values(
        list(read_ad(ad_file)), list(read_mailboxes(exo_file)), list(read_graph_users(graph_file))
    )
    outputs = _output_values(out)
    out_values = {v.casefold() for v in outputs}
    surviving = {
        v
        for v in originals
        if len(v) >= 4 and v.casefold() in out_values and v.casefold() not in ALLOWED
    }
    assert not surviving
    assert not (_words(originals) - ALLOWED) & _words(outputs)
    # The Markdown report says the same as the JSON one; no long original value in it either.
    md = (out / "import-report.md").read_text(encoding="utf-8").casefold()
    assert not [v for v in set(originals) if len(v) >= 8 and v.casefold() in md]
    # The exports were real: names and the domain were there to lose.
    assert "contoso" in _words(originals)
    assert EXPORT_FORMATS["ldifde"].side == "ad"
