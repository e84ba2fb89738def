from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import pytest
from hypothesis import HealthCheck, settings

if TYPE_CHECKING:  # imported where used, as the fixtures below do: collection stays light
    from harness.tenant import Tenant
    from mockservers.runtime import RunningTenant

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


# --- the directory backends ------------------------------------------------------------------
#
# `directory` and `fresh_directory` are the fake AD, OpenLDAP slapd or a Samba AD DC holding the
# same tenant (tests/support/backends.py), for any package whose conftest or module provides a
# `tenant` fixture. Every test that uses them runs once per backend: test ids end in [fake] /
# [slapd] / [samba]. Markers say where the backends differ; each names the difference, which the
# README lists ("Fake AD vs OpenLDAP slapd", "Fake AD vs Samba AD DC"):
#   ad_only(difference)       AD behaviour slapd does not have: skipped on slapd, with the reason
#                             (Samba, an AD, runs it);
#   ad_differs(difference)    fake and slapd run it, and it asserts each one's own behaviour;
#   samba_differs(difference) Samba answers otherwise than the fake (and, per the table, AD):
#                             skipped on Samba, with the reason; with branches=True it runs on
#                             Samba and asserts Samba's own behaviour (is_samba);
#   fake_only(reason)         looks inside the fake (its store, limits or index counters).

BACKEND_MARKERS = ("ad_only", "ad_differs", "samba_differs", "fake_only")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "shared_tenant: the module's tests share one running tenant (`run` is `shared_run`)",
    )


# Modules whose tests use the directory fixtures but still run on the fake only, and why. The
# owner of such a module marks its AD-specific assertions and removes it from here.
FAKE_ONLY_MODULES: dict[str, str] = {}


def pytest_generate_tests(metafunc):
    if "backend" in metafunc.fixturenames and metafunc.module.__name__ not in FAKE_ONLY_MODULES:
        from tests.support.backends import BACKENDS

        metafunc.parametrize("backend", BACKENDS, indirect=True, scope="module")


def pytest_collection_modifyitems(items):
    from tests.support.backends import DIFFERENCES, SAMBA, SAMBA_DIFFERENCES, SLAPD

    listed = {"ad_only": DIFFERENCES, "ad_differs": DIFFERENCES, "samba_differs": SAMBA_DIFFERENCES}
    skipped_on = {
        SLAPD: (("ad_only", "AD-only"), ("fake_only", "fake-only")),
        SAMBA: (("samba_differs", "Samba differs"), ("fake_only", "fake-only")),
    }
    for item in items:
        for name in BACKEND_MARKERS:
            for mark in item.iter_markers(name):
                if len(mark.args) != 1 or not str(mark.args[0]).strip():
                    raise pytest.UsageError(f"{item.nodeid}: @{name} needs one reason")
                if name in listed and mark.args[0] not in listed[name]:
                    raise pytest.UsageError(
                        f"{item.nodeid}: @{name}({mark.args[0]!r}) is not one of the differences"
                        " listed in tests/support/backends.py (and the README)"
                    )
        callspec = getattr(item, "callspec", None)
        on = callspec.params.get("backend") if callspec is not None else None
        for name, what in skipped_on.get(on, ()):
            mark = item.get_closest_marker(name)
            # samba_differs(..., branches=True): the test runs on Samba too and asserts Samba's
            # side itself (is_samba), as ad_differs tests do for slapd.
            if mark is not None and not mark.kwargs.get("branches"):
                item.add_marker(pytest.mark.skip(reason=f"{what}: {mark.args[0]}"))


@pytest.fixture(scope="module")
def backend(request):
    """The backend's name, "fake", "slapd" or "samba"; a reference server absent: a skip, or a
    failure under CI."""
    from tests.support.backends import SAMBA, SLAPD, require_samba, require_slapd

    name = getattr(request, "param", "fake")  # not parametrised: a FAKE_ONLY_MODULES module
    if name == SLAPD:
        require_slapd()
    elif name == SAMBA:
        require_samba()
    return name


@pytest.fixture(scope="session")
def slapd_contents(tmp_path_factory):
    """Each tenant's files and extra entries for slapd, prepared once per session."""
    from tests.support.backends import slapd_content

    prepared = {}

    def content_of(tenant):
        key = id(tenant)
        if key not in prepared:
            prepared[key] = (tenant, slapd_content(tenant, tmp_path_factory.mktemp("tenant")))
        return prepared[key][1]

    return content_of


@pytest.fixture(scope="session")
def samba_contents(tmp_path_factory):
    """Each tenant prepared as a Samba domain, once per session (about 10 s for 400 users)."""
    from tests.support.backends import samba_prepared

    prepared = {}

    def content_of(tenant):
        key = id(tenant)
        if key not in prepared:
            prepared[key] = (tenant, samba_prepared(tenant, tmp_path_factory.mktemp("samba")))
        return prepared[key][1]

    return content_of


def _start(backend, tenant, slapd_contents, max_page_size=None, samba_contents=None):
    from mockservers.directory.seed import seed_directory
    from mockservers.runtime import start_directory
    from tests.support.backends import SAMBA, SLAPD, start_samba, start_slapd

    if backend == SAMBA:
        if max_page_size is not None:
            pytest.skip("Samba ignores MaxPageSize (samba_differs: page size above MaxPageSize)")
        return start_samba(samba_contents(tenant), slapd_contents(tenant).endpoints)
    if backend == SLAPD:
        if max_page_size is None:
            return start_slapd(slapd_contents(tenant))
        return start_slapd(slapd_contents(tenant), max_page_size=max_page_size)
    run = start_directory(seed_directory(tenant))
    if max_page_size is not None:
        run.call(setattr, run.service.limits, "max_page_size", max_page_size)
    return run


@pytest.fixture(scope="module")
def directory(backend, tenant, slapd_contents, samba_contents):
    """A directory shared by a module's read-only tests; write tests use `fresh_directory`."""
    run = _start(backend, tenant, slapd_contents, samba_contents=samba_contents)
    yield run
    run.stop()


@pytest.fixture
def fresh_directory(backend, tenant, slapd_contents, samba_contents):
    """A directory of the test's own: a fresh fake, a fresh slapd (about 0.2 s to start) or a
    fresh copy of the tenant's Samba domain (about 1.5 s)."""
    run = _start(backend, tenant, slapd_contents, samba_contents=samba_contents)
    yield run
    run.stop()


@pytest.fixture
def directory_with(backend, tenant, slapd_contents, samba_contents):
    """Start a fresh directory with other limits: ``directory_with(max_page_size=50)``."""
    started = []

    def start(*, max_page_size: int):
        started.append(_start(backend, tenant, slapd_contents, max_page_size, samba_contents))
        return started[-1]

    yield start
    for run in started:
        run.stop()


# --- a running tenant ------------------------------------------------------------------------
#
# `tenant` is the module's TENANT (a generated tenant) unless a module or conftest defines its own
# `tenant` fixture; `run` serves it in-process (fake AD over LDAP, fake cloud over HTTP, the
# on-premises estate): a fresh one per test, so each test edits, arms faults and counts from
# zero. Modules whose tests only read, or each touch their own objects, say
# ``pytestmark = pytest.mark.shared_tenant`` and get one tenant for the module (`shared_run`;
# their module-scoped fixtures ask for `shared_run` by name).


@pytest.fixture(scope="module")
def tenant(request: pytest.FixtureRequest) -> Tenant:
    """The requesting module's TENANT."""
    from harness.tenant import Tenant

    found = getattr(request.module, "TENANT", None)
    if not isinstance(found, Tenant):
        raise pytest.UsageError(
            f"{request.module.__name__}: define TENANT (a generated tenant) or a `tenant` fixture"
        )
    return found


@pytest.fixture
def serve() -> Iterator[Callable[[Tenant], RunningTenant]]:
    """serve(tenant): a whole tenant running in-process, stopped after the test."""
    from mockservers.runtime import start_tenant

    runs: list[RunningTenant] = []

    def start(tenant: Tenant) -> RunningTenant:
        runs.append(start_tenant(tenant))
        return runs[-1]

    yield start
    for running in runs:
        running.stop()


@pytest.fixture(scope="module")
def shared_run(tenant: Tenant) -> Iterator[RunningTenant]:
    """The module's `tenant` running once for all the module's tests."""
    from mockservers.runtime import start_tenant

    running = start_tenant(tenant)
    yield running
    running.stop()


@pytest.fixture
def run(
    request: pytest.FixtureRequest, tenant: Tenant, serve: Callable[[Tenant], RunningTenant]
) -> RunningTenant:
    """The module's `tenant` running: fresh for this test, or `shared_run` (`shared_tenant`)."""
    if request.node.get_closest_marker("shared_tenant") is not None:
        shared: RunningTenant = request.getfixturevalue("shared_run")
        return shared
    return serve(tenant)
