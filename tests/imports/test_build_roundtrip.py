"""A generated tenant, turned into export records and built again, is the same tenant."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from harness.core.adschema import DEFAULT_SCHEMA, Syntax
from harness.tenant import TenantSpec, generate
from harness.tenant.files import CLOUD_NAME, LDIF_NAME, MANIFEST_NAME, cloud_chunks
from harness.tenant.imports.build import build_tenant
from harness.tenant.imports.records import AdRecord, GraphUserRecord, MailboxRecord, Origin
from harness.tenant.ldif import directory_entries
from harness.tenant.model import Tenant
from mockservers.directory.ldif_io import read_ldif


def ad_records(tenant: Tenant) -> Iterator[AdRecord]:
    """What an LDIF reader yields for the generated directory: binary as bytes, else text."""
    for n, (dn, attrs) in enumerate(directory_entries(tenant), 1):
        out: dict[str, list[str | bytes]] = {}
        for name, values in attrs:
            t = DEFAULT_SCHEMA.require(name)
            out[name] = [v if t.syntax is Syntax.OCTETS else str(v) for v in values]
        yield AdRecord(dn, out, Origin("ad.ldif", n))


def mailbox_records(tenant: Tenant) -> Iterator[MailboxRecord]:
    for n, m in enumerate(tenant.mailboxes, 1):
        props = m.to_json()
        props["ExternalDirectoryObjectId"] = props.pop("id")
        del props["onPremisesImmutableId"]  # Get-Mailbox does not show it: Graph does
        yield MailboxRecord(props, Origin("mailboxes.json", n))


def graph_records(tenant: Tenant) -> Iterator[GraphUserRecord]:
    for n, m in enumerate(tenant.mailboxes, 1):
        props = {
            "id": m.id,
            "onPremisesImmutableId": m.immutable_id,
            "onPremisesSyncEnabled": m.is_dir_synced or None,
        }
        yield GraphUserRecord(props, Origin("users.json", n))


def test_generated_tenant_round_trips(tmp_path: Path) -> None:
    spec = TenantSpec.from_mapping({"mailboxes": 60, "seed": 7})
    tenant = generate(spec)
    out = tmp_path / "t"
    result = build_tenant(ad_records(tenant), mailbox_records(tenant), graph_records(tenant), out)

    # The cloud side: byte for byte what exwb generate writes.
    assert (out / CLOUD_NAME).read_text() == "".join(cloud_chunks(tenant))
    # The directory: the same entries with the same values, parents first.
    want = {
        dn: {n: [v if isinstance(v, bytes) else v.encode() for v in vs] for n, vs in attrs}
        for dn, attrs in directory_entries(tenant)
    }
    got = {dn: dict(attrs) for dn, attrs in read_ldif(out / LDIF_NAME) if dn}
    assert got == want
    synced = sum(1 for m in tenant.mailboxes if m.is_dir_synced)
    assert result.report["joins"]["rules"]["graph"] == synced
    assert result.report["joins"]["unmatched_mailboxes"]["count"] == 0
    assert result.report["ad"]["unknown_attributes"] == []
    assert result.report["ad"]["refused_values"] == []
    manifest = result.manifest
    assert manifest["base_dn"] == spec.base_dn
    assert manifest["domains"]["onmicrosoft"] == spec.onmicrosoft_domain
    assert manifest["domains"]["routing"] == spec.routing_domain
    assert manifest["counts"]["ad_users"] == len(tenant.ad_users)
    assert manifest["counts"]["organizational_units"] == len(tenant.ous)
    assert (out / MANIFEST_NAME).exists()


def test_round_trip_without_graph_joins_by_upn(tmp_path: Path) -> None:
    tenant = generate(TenantSpec.from_mapping({"mailboxes": 40, "seed": 3}))
    out = tmp_path / "t"
    result = build_tenant(ad_records(tenant), mailbox_records(tenant), None, out)
    rules = result.report["joins"]["rules"]
    synced = sum(1 for m in tenant.mailboxes if m.is_dir_synced)
    assert rules["graph"] == 0 and rules["upn"] + rules["smtp"] == synced
    assert (out / CLOUD_NAME).read_text() == "".join(cloud_chunks(tenant))
