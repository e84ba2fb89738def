"""The tenant: model, deterministic generator and file export."""

from harness.tenant.generator import generate
from harness.tenant.model import AdUser, CloudMailbox, OrganizationalUnit, Tenant
from harness.tenant.spec import MAX_MAILBOXES, SpecError, TenantSpec

__all__ = [
    "MAX_MAILBOXES",
    "AdUser",
    "CloudMailbox",
    "OrganizationalUnit",
    "SpecError",
    "Tenant",
    "TenantSpec",
    "generate",
]
