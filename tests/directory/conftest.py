"""A running fake AD for the directory tests: real TCP on loopback, real clients."""

from __future__ import annotations

import pytest

from harness.tenant import TenantSpec, generate
from mockservers.directory.seed import seed_directory
from mockservers.runtime import start_directory

SPEC = TenantSpec(mailboxes=400, seed=11, special_cn_fraction=0.15, non_ascii_fraction=0.15)


@pytest.fixture(scope="session")
def tenant():
    return generate(SPEC)


@pytest.fixture(scope="session")
def directory(tenant):
    """A directory shared by read-only tests; write tests use `fresh_directory`."""
    run = start_directory(seed_directory(tenant))
    yield run
    run.stop()


@pytest.fixture
def fresh_directory(tenant):
    run = start_directory(seed_directory(tenant))
    yield run
    run.stop()
