"""A running fake AD for the directory tests: real TCP on loopback, real clients."""

from __future__ import annotations

import pytest

from harness.tenant import TenantSpec, generate

SPEC = TenantSpec(mailboxes=400, seed=11, special_cn_fraction=0.15, non_ascii_fraction=0.15)


@pytest.fixture(scope="session")
def tenant():
    return generate(SPEC)
