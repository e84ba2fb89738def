"""A running fake tenant (LDAP + HTTP) for the cloud tests: real sockets, real clients."""

from __future__ import annotations

import pytest

from harness.tenant import TenantSpec, generate
from mockservers.cloud.store import CloudStore
from mockservers.runtime import start_tenant

SPEC = TenantSpec(mailboxes=300, seed=21, cloud_managed_fraction=0.8)


@pytest.fixture(scope="session")
def cloud_tenant():
    return generate(SPEC)


@pytest.fixture(scope="module")
def tenant():
    """A small tenant for the in-process Graph and delta tests."""
    return generate(TenantSpec(mailboxes=300, seed=3))


@pytest.fixture
def store(tenant):
    # A fresh store per test: updates replace mailbox objects, so the tenant stays pristine.
    return CloudStore.from_tenant(tenant)


@pytest.fixture
def running(cloud_tenant):
    """A fresh tenant per test: tests edit it."""
    run = start_tenant(cloud_tenant)
    yield run
    run.stop()
