"""A served tenant made to show every outcome of a first-cycle preview (tests/engine/test_preview*,
tests/report/test_preview_html.py): cloud edits that change AD, a custom attribute over its
target's rangeUpper (AD: 19), a cloud-managed user moved out of the writable OUs (AD: 50), a
mailbox that is not cloud-managed (skipped), and a value holding markup."""

from __future__ import annotations

from dataclasses import dataclass

from harness.core.adschema import DEFAULT_SCHEMA
from harness.tenant import CloudMailbox, Tenant
from mockservers.runtime import RunningTenant
from tests.directory.ldap_clients import connect
from tests.support.engine import mailbox_pairs

_LIMIT = DEFAULT_SCHEMA.require("extensionAttribute1").range_upper or 0
TOO_LONG = "L" * (_LIMIT + 1)
MARKUP = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2">'


@dataclass(frozen=True)
class Broken:
    changed: list[CloudMailbox]  # extensionAttribute1 edited; the first also a proxy address
    extra_address: str
    too_long: CloudMailbox
    outside: CloudMailbox
    outside_dn: str
    unmanaged: CloudMailbox
    markup: CloudMailbox  # CustomAttribute2 holds MARKUP


def _custom(run: RunningTenant, m: CloudMailbox, index: int, value: str) -> None:
    values = list(m.custom_attributes)
    values[index] = value
    run.call(run.cloud.store.update, m.id, {"custom_attributes": tuple(values)})


def break_tenant(run: RunningTenant, tenant: Tenant) -> Broken:
    managed = [m for _, m in mailbox_pairs(tenant, True)]
    changed = managed[:3]
    for i, m in enumerate(changed):
        _custom(run, m, 0, f"preview {i}")
    extra = f"smtp:{changed[0].alias}.preview@contoso.com"
    store = run.cloud.store
    first = run.call(store.get, changed[0].id)
    run.call(store.update, first.id, {"email_addresses": (*first.email_addresses, extra)})
    too_long, outside, markup = managed[3], managed[4], managed[5]
    _custom(run, too_long, 0, TOO_LONG)
    _custom(run, outside, 0, "moved")
    _custom(run, markup, 1, MARKUP)
    user = next(u for u, m in mailbox_pairs(tenant, True) if m.id == outside.id)
    admin = connect(run)
    rdn = user.dn.split(",", 1)[0]
    where = f"OU=Service Accounts,{tenant.spec.base_dn}"
    assert admin.modify_dn(user.dn, rdn, new_superior=where), admin.result
    unmanaged = mailbox_pairs(tenant, False)[0][1]
    _custom(run, unmanaged, 0, "ignored")
    return Broken(changed, extra, too_long, outside, f"{rdn},{where}", unmanaged, markup)
