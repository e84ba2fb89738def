import os

import pytest
from hypothesis import HealthCheck, settings

# "ci": fixed example database-free runs so CI is repeatable; "dev": more examples locally.
settings.register_profile(
    "ci",
    max_examples=25,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "dev", max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))


# The fake AD for any package whose conftest or module provides a `tenant` fixture.
@pytest.fixture(scope="module")
def directory(tenant):
    """A directory shared by a module's read-only tests; write tests use `fresh_directory`."""
    from mockservers.directory.seed import seed_directory
    from mockservers.runtime import start_directory

    run = start_directory(seed_directory(tenant))
    yield run
    run.stop()


@pytest.fixture
def fresh_directory(tenant):
    from mockservers.directory.seed import seed_directory
    from mockservers.runtime import start_directory

    run = start_directory(seed_directory(tenant))
    yield run
    run.stop()
