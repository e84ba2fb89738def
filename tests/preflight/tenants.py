"""Tenant folders for the pre-flight tests: a clean generated tenant, written by the real
writer, and the same tenant with one thing broken (in the model, in extra LDIF entries or in
the manifest) before it is written."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from harness.engine.rules import GA, Profile
from harness.preflight.run import PreflightReport, run_preflight
from harness.preflight.snapshot import from_folder
from harness.tenant import Tenant, TenantSpec, generate
from harness.tenant.files import LDIF_NAME, MANIFEST_NAME, write_tenant
from harness.tenant.ldif import entry_text
from harness.tenant.model import AdUser, CloudMailbox

SPEC = TenantSpec(mailboxes=40, seed=3)

Entry = tuple[str, list[tuple[str, tuple[str | bytes, ...]]]]


@dataclass
class Broken:
    """What to break: the model (`tenant`), extra AD entries, manifest keys, the options."""

    tenant: Callable[[Tenant], None] = lambda t: None
    entries: Callable[[Tenant], list[Entry]] = lambda t: []
    manifest: dict[str, object] = field(default_factory=dict)
    profile: Profile = GA
    writeback_ous: tuple[str, ...] = ()


def write(folder: Path, broken: Broken | None = None) -> Path:
    """A generated tenant, broken as asked, written to `folder` as `exwb generate` writes it."""
    b = broken or Broken()
    tenant = generate(SPEC)
    b.tenant(tenant)
    write_tenant(tenant, folder)
    extra = b.entries(tenant)
    if extra:
        with (folder / LDIF_NAME).open("a", encoding="utf-8") as f:
            f.writelines(entry_text(dn, attrs) for dn, attrs in extra)
    if b.manifest:
        path = folder / MANIFEST_NAME
        manifest = json.loads(path.read_text(encoding="utf-8"))
        path.write_text(json.dumps({**manifest, **b.manifest}), encoding="utf-8")
    return folder


def preflight(folder: Path, broken: Broken | None = None) -> PreflightReport:
    b = broken or Broken()
    write(folder, b)
    return run_preflight(from_folder(folder, b.profile, b.writeback_ous), examples=50)


def in_scope(t: Tenant, n: int = 0) -> tuple[AdUser, CloudMailbox]:
    """The `n`th synced, cloud-managed mailbox and its AD user."""
    pairs = [(u, m) for u, m in t.synced_pairs() if m.is_exchange_cloud_managed]
    return pairs[n]


def unmanaged(t: Tenant) -> tuple[AdUser, CloudMailbox]:
    return next((u, m) for u, m in t.synced_pairs() if not m.is_exchange_cloud_managed)


def contact(t: Tenant, name: str, *addresses: str) -> Entry:
    """An AD contact (never synchronized by the writeback) holding `addresses`."""
    return (
        f"CN={name},OU=Service Accounts,{t.base_dn}",
        [
            ("objectClass", ("top", "person", "organizationalPerson", "contact")),
            ("cn", (name,)),
            ("displayName", (name,)),
            ("proxyAddresses", addresses),
        ],
    )
