"""Shared by the hostile-input and injection tests: the fake AD for a module's `tenant`."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from mockservers.directory.seed import seed_directory
from mockservers.runtime import RunningTenant, start_directory


@pytest.fixture(scope="module")
def run(tenant) -> Iterator[RunningTenant]:
    """The fake directory alone (these tests look at the fake's own wire and parsing)."""
    r = start_directory(seed_directory(tenant))
    yield r
    r.stop()
