"""The pytest plugin (entry point ``pytest11: exwb``): scenarios as tests, and a fake tenant.

- ``pytest scenarios/`` collects every YAML scenario in a folder named ``scenarios`` (or any
  ``*.yaml`` named on the command line that has ``steps:``) as one test item. An invalid file is
  a collection error with its ``file:line``; a failed expectation or threshold fails the item
  with the step, line and detail. Reports go to ``--exwb-results DIR`` (default: pytest's
  temporary directory), as ``exwb run`` writes them; markers: ``exwb_scenario``.
- With pytest-xdist (``pytest -n auto scenarios/``) each worker process serves its own tenants
  on ports the OS picks, and each run claims its own report folder (``-2`` when a run of a
  scenario of the same name took it in the same second), so workers never share one.
- Fixtures for tests users write themselves: ``exwb_tenant_spec`` (override it to size the
  tenant), ``exwb_tenant`` (a running fake AD + Exchange Online, module-scoped),
  ``exwb_endpoints``, ``exwb_ldap`` (a factory of bound LDAP connections: admin, writeback,
  reader) and ``exwb_exo`` (an EXO admin session with the read-write app).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:  # the plugin loads in every pytest run: import the harness only when used
    from harness.clients.exo import ExoAdmin
    from harness.core.endpoints import Endpoints
    from harness.engine.ldapwire import LdapConnection
    from harness.report.model import ScenarioResult
    from harness.tenant import TenantSpec
    from mockservers.runtime import RunningTenant

SCENARIO_DIR = "scenarios"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("exwb", "exwb-harness scenarios")
    group.addoption(
        "--exwb-results",
        type=Path,
        default=None,
        metavar="DIR",
        help="write each scenario's reports to DIR/<scenario>/<UTC timestamp>/ "
        "(default: pytest's temporary directory)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "exwb_scenario: a YAML scenario run by exwb-harness")


def _is_scenario(path: Path, parent: pytest.Collector) -> bool:
    if path.suffix not in (".yaml", ".yml"):
        return False
    named = any(Path(a).resolve() == path.resolve() for a in parent.config.args)
    if not named and SCENARIO_DIR not in path.parts:
        return False
    try:  # a cheap look: scenario files have a top-level `steps:` key
        head = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    return any(line.startswith("steps:") for line in head.splitlines())


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if _is_scenario(file_path, parent):
        return ScenarioFile.from_parent(parent, path=file_path)
    return None


class ScenarioFailed(Exception):
    """A scenario whose verdict is not "passed"; carries the run's result dict."""

    def __init__(self, result: ScenarioResult) -> None:
        super().__init__(result.get("verdict"))
        self.result = result


class ScenarioFile(pytest.File):
    def collect(self) -> Iterator[pytest.Item]:
        from harness.scenario import ScenarioError, load_scenario

        try:
            scenario = load_scenario(self.path)
        except ScenarioError as e:
            raise self.CollectError(str(e)) from None
        item = ScenarioItem.from_parent(self, name=scenario.name, scenario=scenario)
        item.add_marker("exwb_scenario")
        yield item


class ScenarioItem(pytest.Item):
    def __init__(self, *, scenario: Any, **kw: Any) -> None:
        super().__init__(**kw)
        self.scenario = scenario

    def runtest(self) -> None:
        from harness.commands.run import claim_run_dir
        from harness.report import write_reports
        from harness.scenario import run_scenario

        base = self.config.getoption("exwb_results")
        if base is None:
            factory = getattr(self.config, "_tmp_path_factory", None)  # pytest's tmpdir plugin
            root = factory.getbasetemp() if factory else Path(tempfile.mkdtemp(prefix="exwb-"))
            base = root / "exwb-results"
        folder = claim_run_dir(Path(base), self.scenario.name)
        result = run_scenario(self.scenario, folder)
        result["results_dir"] = str(folder)
        write_reports(result, folder)
        self.user_properties.append(("exwb_results", str(folder)))
        if result["verdict"] != "passed":
            raise ScenarioFailed(result)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style=None) -> str:
        if not isinstance(excinfo.value, ScenarioFailed):
            return str(super().repr_failure(excinfo, style=style))
        r = excinfo.value.result
        lines = [f"scenario {r['scenario']} {str(r['verdict']).upper()} ({r['file']})"]
        if r.get("error"):
            lines.append(f"  error: {r['error']}")
        for e in r["expectations"]:
            if not e["passed"]:
                lines.append(f"  {r['file']}:{e['line']}: {e['name']}: {e['detail']}")
        for t in r["thresholds"]:
            if not t["passed"]:
                lines.append(f"  threshold {t['name']}: measured {t['measured']}, {t['limit']}")
        lines.append(f"  reports: {r.get('results_dir')}")
        return "\n".join(lines)

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, 0, f"exwb scenario: {self.name}"


# --- fixtures --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def exwb_tenant_spec() -> TenantSpec:
    """The tenant `exwb_tenant` serves; override this fixture to change its size or knobs."""
    from harness.tenant import TenantSpec

    return TenantSpec(mailboxes=200, seed=1)


@pytest.fixture(scope="module")
def exwb_tenant(exwb_tenant_spec: TenantSpec) -> Iterator[RunningTenant]:
    """A running fake AD (LDAP) and Exchange Online (HTTP) on loopback, for one module."""
    from harness.tenant import generate
    from mockservers.runtime import start_tenant

    run = start_tenant(generate(exwb_tenant_spec))
    try:
        yield run
    finally:
        run.stop()


@pytest.fixture(scope="module")
def exwb_endpoints(exwb_tenant: RunningTenant) -> Endpoints:
    """URLs and credentials of the running tenant (`harness.core.endpoints.Endpoints`)."""
    return exwb_tenant.endpoints


@pytest.fixture
def exwb_ldap(exwb_endpoints: Endpoints) -> Iterator[Callable[..., LdapConnection]]:
    """`exwb_ldap(role="reader")`: an LDAP connection bound as admin, writeback or reader
    (`harness.engine.ldapwire.LdapConnection`: search, modify_many); closed after the test."""
    from harness.engine.ldapwire import LdapConnection

    opened: list[LdapConnection] = []

    def connect(role: str = "reader") -> LdapConnection:
        if role not in exwb_endpoints.ACCOUNTS:
            raise ValueError(
                f"role must be one of {', '.join(exwb_endpoints.ACCOUNTS)}, not {role!r}"
            )
        conn = LdapConnection(exwb_endpoints.ldap_url)
        conn.bind(*exwb_endpoints.account(role))
        opened.append(conn)
        return conn

    yield connect
    for conn in opened:
        conn.close()


@pytest.fixture
def exwb_exo(exwb_endpoints: Endpoints) -> Iterator[ExoAdmin]:
    """An Exchange Online admin session (`harness.clients.exo.ExoAdmin`) as the read-write app."""
    from harness.clients.exo import ExoAdmin

    ep = exwb_endpoints
    with ExoAdmin(ep.exo_url, ep.token_url, ep.client_id, ep.client_secret) as exo:
        yield exo
