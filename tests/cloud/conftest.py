"""A running fake tenant (LDAP + HTTP) for the cloud tests: real sockets, real clients."""

from __future__ import annotations

import pytest

from harness.tenant import TenantSpec, generate
from mockservers.runtime import start_tenant

SPEC = TenantSpec(mailboxes=300, seed=21, cloud_managed_fraction=0.8)


@pytest.fixture(scope="session")
def cloud_tenant():
    return generate(SPEC)


@pytest.fixture
def running(cloud_tenant):
    """A fresh tenant per test: tests edit it."""
    run = start_tenant(cloud_tenant)
    yield run
    run.stop()
